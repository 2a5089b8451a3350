//! `--mount type=…,source=…,target=…,…`, the explicit form and the only one
//! for driver options, subpaths and `bind-create-src`. Docker reads it in
//! three passes and so does this module, in the same order so the same input
//! gets the same first error: the CLI reads the fields (`opts/mount.go`) and
//! refuses options of another mount type (`mount_utils.go`); then the daemon
//! checks the mount (`validateMountConfigImpl`), including that a bind
//! source exists, which is this crate's only filesystem access.

use std::collections::BTreeMap;
use std::path::Path;

use crate::path::{check_target, clean, clean_str, is_local, resolve};
use crate::{MountSpec, Propagation, Source, SpecError, csv, parse_size, validate_volume_name};

/// Parses one `--mount` value; a source starting with `.` is resolved
/// against `cwd`, as the Docker CLI resolves it against its own.
pub fn parse_mount(spec: &str, cwd: &Path) -> Result<MountSpec, SpecError> {
    let fields = Fields::read(spec)?;
    fields.check_exclusive()?;
    fields.check_supported()?;
    fields.into_spec(cwd)
}

/// Keys that may stand alone, meaning `=true`.
const FLAG_KEYS: [&str; 5] = [
    "readonly",
    "ro",
    "volume-nocopy",
    "bind-nonrecursive",
    "bind-create-src",
];

/// What the fields said, before any check across fields. An option group is
/// present once one of its keys was given, as in Docker's `mount.Mount`.
#[derive(Default)]
struct Fields {
    kind: String,
    source: String,
    target: String,
    readonly: bool,
    bind: Option<BindFields>,
    volume: Option<VolumeFields>,
    tmpfs: Option<TmpfsFields>,
    image: bool,
}

#[derive(Default)]
struct BindFields {
    propagation: Option<String>,
    /// A `bind-recursive` value other than `enabled`.
    recursive: Option<String>,
    create_source: bool,
}

#[derive(Default)]
struct VolumeFields {
    subpath: Option<String>,
    nocopy: bool,
    labels: BTreeMap<String, String>,
    driver: Option<String>,
    options: BTreeMap<String, String>,
}

#[derive(Default)]
struct TmpfsFields {
    size: u64,
    mode: u32,
}

impl Fields {
    /// The CLI's pass over the fields, in order.
    fn read(spec: &str) -> Result<Self, SpecError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(SpecError::EmptyMountSpec);
        }
        let mut fields = Self {
            kind: "volume".to_owned(),
            ..Self::default()
        };
        for field in csv::read_record(spec)? {
            let (key, value) = split_field(&field)?;
            fields.apply(&key, value, &field)?;
        }
        Ok(fields)
    }

    fn apply(&mut self, key: &str, value: Option<&str>, field: &str) -> Result<(), SpecError> {
        let text = value.unwrap_or_default();
        match key {
            "type" => self.kind = text.to_lowercase(),
            "source" | "src" => self.source = text.to_owned(),
            "target" | "dst" | "destination" => self.target = text.to_owned(),
            "readonly" | "ro" => self.readonly = parse_bool(key, value)?,
            "consistency" => {}
            "bind-propagation" => self.bind().propagation = Some(text.to_lowercase()),
            "bind-nonrecursive" => return Err(SpecError::BindNonRecursive),
            "bind-recursive" => self.recursive(text)?,
            "bind-create-src" => self.bind().create_source = parse_bool(key, value)?,
            "volume-subpath" => self.volume().subpath = Some(text.to_owned()),
            "volume-nocopy" => self.volume().nocopy = parse_bool(key, value)?,
            "volume-label" => insert_pair(&mut self.volume().labels, text),
            "volume-driver" => self.volume().driver = Some(text.to_owned()),
            "volume-opt" => insert_pair(&mut self.volume().options, text),
            "image-subpath" => self.image = true,
            "tmpfs-size" => self.tmpfs().size = tmpfs_size(text)?,
            "tmpfs-mode" => self.tmpfs().mode = tmpfs_mode(text)?,
            _ => {
                return Err(SpecError::UnknownOption {
                    key: key.to_owned(),
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// `enabled` is the default and, as in Docker, touches nothing.
    fn recursive(&mut self, value: &str) -> Result<(), SpecError> {
        match value {
            "enabled" => {}
            "disabled" | "writable" | "readonly" => self.bind().recursive = Some(value.to_owned()),
            _ => {
                return Err(SpecError::InvalidBindRecursive {
                    value: value.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn bind(&mut self) -> &mut BindFields {
        self.bind.get_or_insert_with(Default::default)
    }

    fn volume(&mut self) -> &mut VolumeFields {
        self.volume.get_or_insert_with(Default::default)
    }

    fn tmpfs(&mut self) -> &mut TmpfsFields {
        self.tmpfs.get_or_insert_with(Default::default)
    }

    /// The CLI's refusal of another type's options, in its order.
    fn check_exclusive(&self) -> Result<(), SpecError> {
        let groups = [
            ("bind", self.bind.is_some()),
            ("volume", self.volume.is_some()),
            ("image", self.image),
            ("tmpfs", self.tmpfs.is_some()),
        ];
        for (group, given) in groups {
            if given && self.kind != group {
                return Err(SpecError::MixedOptions {
                    group,
                    kind: self.kind.clone(),
                });
            }
        }
        Ok(())
    }

    /// What Docker has and Strata does not.
    fn check_supported(&self) -> Result<(), SpecError> {
        if matches!(self.kind.as_str(), "image" | "api-socket") {
            return Err(SpecError::UnsupportedType {
                kind: self.kind.clone(),
            });
        }
        match self.bind.as_ref().and_then(|b| b.recursive.clone()) {
            Some(value) => Err(SpecError::UnsupportedBindRecursive { value }),
            None => Ok(()),
        }
    }

    /// The daemon's checks: the target first, then the type's own rules.
    fn into_spec(self, cwd: &Path) -> Result<MountSpec, SpecError> {
        let kind = self.kind.clone();
        let config = |reason| SpecError::config(&kind, reason);
        if self.target.is_empty() {
            return Err(config(SpecError::MissingTarget));
        }
        let target = check_target(&self.target).map_err(config)?;
        let readonly = self.readonly;
        let source = match kind.as_str() {
            "bind" => self.bind_source(cwd),
            "volume" => self.volume_source(cwd),
            "tmpfs" => self.tmpfs_source(),
            _ => Err(config(SpecError::UnknownType)),
        }?;
        Ok(MountSpec {
            source,
            target,
            readonly,
            relabel: None,
        })
    }

    fn bind_source(self, cwd: &Path) -> Result<Source, SpecError> {
        let config = |reason| SpecError::config("bind", reason);
        if self.source.is_empty() {
            return Err(config(SpecError::MissingSource));
        }
        let bind = self.bind.unwrap_or_default();
        let propagation = match bind.propagation {
            None => Propagation::default(),
            Some(mode) => Propagation::parse(&mode)
                .ok_or_else(|| config(SpecError::InvalidPropagation { mode }))?,
        };
        let path = resolve(&self.source, cwd);
        let shown = path.to_string_lossy().into_owned();
        if !path.is_absolute() {
            return Err(config(SpecError::RelativePath { path: shown }));
        }
        if !bind.create_source && !path.exists() {
            return Err(config(SpecError::BindSourceMissing { path: shown }));
        }
        Ok(Source::Bind {
            path: clean(&path),
            propagation,
            create_source: bind.create_source,
        })
    }

    fn volume_source(self, cwd: &Path) -> Result<Source, SpecError> {
        let config = |reason| SpecError::config("volume", reason);
        let volume = self.volume.unwrap_or_default();
        let name = (!self.source.is_empty()).then_some(self.source);
        if let Some(subpath) = &volume.subpath {
            if name.is_none() {
                return Err(config(SpecError::AnonymousSubpath));
            }
            if !is_local(subpath) {
                let subpath = subpath.clone();
                return Err(config(SpecError::InvalidSubpath { subpath }));
            }
        }
        if let Some(name) = &name {
            check_volume_name(name, cwd)?;
        }
        Ok(Source::Volume {
            name,
            driver: volume.driver,
            labels: volume.labels,
            options: volume.options,
            nocopy: volume.nocopy,
            subpath: volume.subpath.as_deref().map(clean_str),
        })
    }

    fn tmpfs_source(self) -> Result<Source, SpecError> {
        if !self.source.is_empty() {
            return Err(SpecError::config("tmpfs", SpecError::ExtraSource));
        }
        let tmpfs = self.tmpfs.unwrap_or_default();
        // Docker treats 0 as "not set" for both.
        Ok(Source::Tmpfs {
            size: (tmpfs.size != 0).then_some(tmpfs.size),
            mode: (tmpfs.mode != 0).then_some(tmpfs.mode),
            options: Vec::new(),
        })
    }
}

/// Splits `key=value` and applies the CLI's checks on both halves; the key
/// comes back lower-cased, the value untouched (`None` for a bare key).
fn split_field(field: &str) -> Result<(String, Option<&str>), SpecError> {
    let (key, value) = match field.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (field, None),
    };
    if key.trim() != key {
        return Err(SpecError::KeyWhitespace {
            key: key.trim().to_owned(),
            field: field.to_owned(),
        });
    }
    if let Some(value) = value {
        check_value(key, value, field)?;
    }
    let key = key.to_lowercase();
    if value.is_none() && !FLAG_KEYS.contains(&key.as_str()) {
        return Err(SpecError::NotKeyValue {
            field: field.to_owned(),
        });
    }
    Ok((key, value))
}

fn check_value(key: &str, value: &str, field: &str) -> Result<(), SpecError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SpecError::EmptyValue {
            key: key.to_owned(),
        });
    }
    if trimmed != value {
        return Err(SpecError::ValueWhitespace {
            key: key.to_owned(),
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// The CLI's booleans: bare is `true`; otherwise `1`, `true`, `0` or `false`.
fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, SpecError> {
    match value {
        None | Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(other) => Err(SpecError::InvalidBool {
            key: key.to_owned(),
            value: other.to_owned(),
        }),
    }
}

/// `k=v` into a map; `k` alone maps to `""` and an empty key is dropped, as
/// the CLI does for `volume-label` and `volume-opt`.
fn insert_pair(map: &mut BTreeMap<String, String>, pair: &str) {
    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
    if !key.is_empty() {
        map.insert(key.to_owned(), value.to_owned());
    }
}

fn tmpfs_size(text: &str) -> Result<u64, SpecError> {
    parse_size(text).map_err(|_| SpecError::InvalidTmpfsSize {
        value: text.to_owned(),
    })
}

fn tmpfs_mode(text: &str) -> Result<u32, SpecError> {
    parse_octal(text).ok_or_else(|| SpecError::InvalidTmpfsMode {
        value: text.to_owned(),
    })
}

/// Octal digits only (Go's `ParseUint(s, 8, 32)`), within 32 bits.
pub(crate) fn parse_octal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| matches!(b, b'0'..=b'7')) {
        return None;
    }
    u32::from_str_radix(text, 8).ok()
}

/// A volume source that is (or, starting with `.`, became) a path gets a
/// message pointing at `type=bind`; anything else meets the name rule.
fn check_volume_name(name: &str, cwd: &Path) -> Result<(), SpecError> {
    if name.contains('/') || name.starts_with('.') {
        let path = resolve(name, cwd).to_string_lossy().into_owned();
        return Err(SpecError::config(
            "volume",
            SpecError::VolumeSourceIsPath { path },
        ));
    }
    validate_volume_name(name)
}
