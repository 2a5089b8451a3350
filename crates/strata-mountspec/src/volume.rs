//! `-v/--volume [SOURCE:]TARGET[:OPTIONS]`. The short form is the one most
//! command lines and scripts use, and its meaning hangs on small details: a
//! source starting with `/` is a host path, one starting with `.` a host
//! path relative to the working directory (as the CLI has resolved them
//! since Docker 23), anything else a volume name, no source an anonymous
//! volume; each option kind may appear once. The CLI's
//! split (`volumespec.Parse`) runs first, then the daemon's checks
//! (`ParseMountRaw`), then the `local` driver's name rule, as in Docker.

use std::path::Path;

use crate::path::{check_target, clean, is_relative_path, resolve};
use crate::{MountSpec, Propagation, Relabel, Source, SpecError};

/// Parses one `-v` value; `cwd` is what a `.`-relative host path is
/// relative to.
pub fn parse_volume(spec: &str, cwd: &Path) -> Result<MountSpec, SpecError> {
    let Some(sections) = split(spec)? else {
        return anonymous(spec);
    };
    if sections.mode.is_none() && Modes::parse(sections.target).is_some() {
        return Err(SpecError::ModeWithoutTarget {
            spec: spec.to_owned(),
        });
    }
    with_source(spec, sections, cwd)
}

/// Docker's rule for names of `local` volumes: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`,
/// so never empty, never one character, never `/`, and no leading `.`.
pub fn validate_volume_name(name: &str) -> Result<(), SpecError> {
    if name.len() == 1 {
        return Err(SpecError::VolumeNameTooShort);
    }
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok {
        return Ok(());
    }
    Err(SpecError::InvalidVolumeName {
        name: name.to_owned(),
    })
}

/// The CLI's split into SOURCE, TARGET and OPTIONS; `None` for a lone
/// TARGET. Sections must not be empty and there are at most three. A spec of
/// one or two bytes is taken whole as a lone TARGET.
fn split(spec: &str) -> Result<Option<Sections<'_>>, SpecError> {
    match spec.len() {
        0 => return Err(SpecError::EmptyVolumeSpec),
        1 | 2 => return Ok(None),
        _ => {}
    }
    let count = spec.split(':').count();
    for (index, section) in spec.split(':').enumerate() {
        if section.is_empty() {
            return Err(SpecError::EmptySection {
                spec: spec.to_owned(),
            });
        }
        if index == 2 && count > 3 {
            return Err(SpecError::TooManyColons {
                spec: spec.to_owned(),
            });
        }
    }
    let Some((source, rest)) = spec.split_once(':') else {
        return Ok(None);
    };
    let (target, mode) = match rest.split_once(':') {
        Some((target, mode)) => (target, Some(mode)),
        None => (rest, None),
    };
    Ok(Some(Sections {
        source,
        target,
        mode,
    }))
}

/// SOURCE:TARGET[:OPTIONS], each non-empty.
struct Sections<'a> {
    source: &'a str,
    target: &'a str,
    mode: Option<&'a str>,
}

/// `-v /dst`: the whole spec is the target of a new anonymous volume.
fn anonymous(spec: &str) -> Result<MountSpec, SpecError> {
    let target = check_target(spec).map_err(|reason| invalid(spec, "volume", reason))?;
    Ok(MountSpec {
        source: Source::volume(None, false),
        target,
        readonly: false,
        relabel: None,
    })
}

fn with_source(spec: &str, sections: Sections, cwd: &Path) -> Result<MountSpec, SpecError> {
    let Sections {
        source,
        target,
        mode,
    } = sections;
    let mode = mode.unwrap_or_default();
    let modes = Modes::parse(mode).ok_or_else(|| SpecError::InvalidMode {
        mode: mode.to_owned(),
    })?;
    let kind = if source.starts_with('/') || is_relative_path(source) {
        "bind"
    } else {
        "volume"
    };
    let target = check_target(target).map_err(|reason| invalid(spec, kind, reason))?;
    let source = if kind == "bind" {
        bind(&resolve(source, cwd), &modes)
    } else {
        volume(source, &modes)
    }
    .map_err(|reason| invalid(spec, kind, reason))?;
    if let Source::Volume {
        name: Some(name), ..
    } = &source
    {
        validate_volume_name(name)?;
    }
    Ok(MountSpec {
        source,
        target,
        readonly: modes.readonly,
        relabel: modes.relabel,
    })
}

fn bind(path: &Path, modes: &Modes) -> Result<Source, SpecError> {
    if modes.nocopy {
        return Err(SpecError::NoCopyOnBind);
    }
    Ok(Source::Bind {
        path: clean(path),
        propagation: modes.propagation.unwrap_or_default(),
        create_source: true,
    })
}

fn volume(name: &str, modes: &Modes) -> Result<Source, SpecError> {
    if modes.propagation.is_some() {
        return Err(SpecError::PropagationOnVolume);
    }
    Ok(Source::volume(Some(name.to_owned()), modes.nocopy))
}

/// The daemon's wrapping: `invalid volume specification: 'SPEC': invalid
/// mount config for type "KIND": REASON`.
fn invalid(spec: &str, kind: &str, reason: SpecError) -> SpecError {
    SpecError::VolumeSpecification {
        spec: spec.to_owned(),
        reason: Box::new(SpecError::config(kind, reason)),
    }
}

/// The OPTIONS section: a comma list holding at most one of each kind.
#[derive(Default)]
struct Modes {
    readonly: bool,
    relabel: Option<Relabel>,
    propagation: Option<Propagation>,
    nocopy: bool,
}

/// The kinds of option; each may be given once.
#[derive(Clone, Copy)]
enum Kind {
    Access,
    Relabel,
    Copy,
    Consistency,
    Propagation,
}

impl Modes {
    /// `None` when an option is unknown, empty or of a kind already given.
    fn parse(mode: &str) -> Option<Self> {
        let mut modes = Self::default();
        if mode.is_empty() {
            return Some(modes);
        }
        let mut seen = [false; 5];
        for option in mode.split(',') {
            let kind = modes.apply(option)? as usize;
            if std::mem::replace(&mut seen[kind], true) {
                return None;
            }
        }
        Some(modes)
    }

    /// Records one option and says which kind it is.
    fn apply(&mut self, option: &str) -> Option<Kind> {
        match option {
            "rw" => Some(Kind::Access),
            "ro" => {
                self.readonly = true;
                Some(Kind::Access)
            }
            "z" | "Z" => {
                let private = option == "Z";
                self.relabel = Some(if private {
                    Relabel::Private
                } else {
                    Relabel::Shared
                });
                Some(Kind::Relabel)
            }
            "nocopy" => {
                self.nocopy = true;
                Some(Kind::Copy)
            }
            // Docker Desktop's consistency modes: accepted and ignored.
            "consistent" | "cached" | "delegated" => Some(Kind::Consistency),
            _ => {
                self.propagation = Some(Propagation::parse(option)?);
                Some(Kind::Propagation)
            }
        }
    }
}
