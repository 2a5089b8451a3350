//! Docker's container mount grammar: `-v/--volume`, `--mount` and `--tmpfs`.
//!
//! Users bring `docker run` command lines to Strata and expect them to mean
//! what they mean to Docker: the same specs accepted, the same defaults, the
//! same refusals, in words they recognise. Docker splits the checks between
//! the CLI (docker/cli `opts/mount.go`, `internal/volumespec`) and the daemon
//! (moby `volume/mounts/linux_parser.go`, the `local` driver's name rule, the
//! tmpfs option merge). Strata is both, so each parser here applies both
//! halves in Docker's order and returns one typed [`MountSpec`], ready to be
//! stored as JSON.
//!
//! Errors keep Docker's wording; where Docker's message does not say what a
//! valid value looks like, a short hint follows in parentheses.
//!
//! Deliberate differences from Docker. Each one refuses something earlier or
//! explains it better; none gives an accepted spec a different meaning.
//! - `bind-recursive` accepts only `enabled` (the default). `disabled`,
//!   `writable` and `readonly` are refused as not supported, because Strata's
//!   bind mounts are always recursive. `bind-nonrecursive` is refused, as
//!   current Docker also does.
//! - `type=image` and `type=api-socket` are refused as not supported.
//! - Windows forms are not recognised: no drive letters in `-v`, and a
//!   backslash is an ordinary character, never a separator.
//! - An anonymous `-v /dst` target must be absolute and not `/`, like every
//!   other target. Docker does not check those anonymous volume paths.
//! - Volume names must pass [`validate_volume_name`] whatever the driver.
//!   Docker applies the rule only in its `local` driver.
//! - A `--mount` value must be one line. Docker's CSV reader silently drops
//!   everything after the first line.
//! - `--tmpfs` `size=`, `mode=` and empty option names are checked against
//!   the kernel's grammar here. Docker passes them through and the kernel
//!   refuses them when the container starts.
//! - A `tmpfs-size` too large for a signed 64-bit integer is refused. Docker
//!   wraps it around.
//! - `volume-subpath` is stored cleaned (`a/../b` becomes `b`), so the
//!   runtime never walks through a component that the path leaves again.
//! - [`check_unique_targets`] also reports two `--tmpfs` at one path. Docker
//!   keeps the last one and says nothing.

mod csv;
mod device;
mod error;
mod mount;
mod path;
mod size;
mod tmpfs;
mod volume;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use device::{DeviceSpec, parse_device};
pub use error::SpecError;
pub use mount::parse_mount;
pub use size::parse_size;
pub use tmpfs::parse_tmpfs;
pub use volume::{parse_volume, validate_volume_name};

/// A path inside a container as mount targets are stored: absolute (a
/// relative one is taken from `/`, as `docker cp` does) and cleaned like
/// Go's `path.Clean`, so it compares with a target component by component.
pub fn clean_container_path(path: &str) -> String {
    path::clean_str(&format!("/{path}"))
}

/// Mount propagation of a bind mount, spelled as Docker spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    #[default]
    Rprivate,
    Shared,
    Rshared,
    Slave,
    Rslave,
}

impl Propagation {
    /// Docker's spelling, as in `-v /src:/dst:rshared`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Rprivate => "rprivate",
            Self::Shared => "shared",
            Self::Rshared => "rshared",
            Self::Slave => "slave",
            Self::Rslave => "rslave",
        }
    }

    fn parse(mode: &str) -> Option<Self> {
        [
            Self::Private,
            Self::Rprivate,
            Self::Shared,
            Self::Rshared,
            Self::Slave,
            Self::Rslave,
        ]
        .into_iter()
        .find(|p| p.as_str() == mode)
    }
}

impl fmt::Display for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SELinux relabelling asked for with `-v …:z` or `-v …:Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relabel {
    /// `z`: a label shared by all containers.
    Shared,
    /// `Z`: a label private to this container.
    Private,
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    /// A named volume (the name passed [`validate_volume_name`]), or an
    /// anonymous one (`name` is `None`) that the engine creates and names.
    Volume {
        name: Option<String>,
        driver: Option<String>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        /// Do not copy the image's content at the target into an empty volume.
        nocopy: bool,
        /// A relative, cleaned directory inside the volume to mount instead.
        subpath: Option<String>,
    },
    /// An absolute, cleaned host path.
    Bind {
        path: PathBuf,
        propagation: Propagation,
        /// Create a missing host directory: always for `-v`, and for
        /// `--mount` only with `bind-create-src`.
        create_source: bool,
    },
    /// A tmpfs. `None` leaves the kernel's default (and the runtime's mode
    /// 1777); a `--tmpfs size=50%` is kept only in `options`.
    Tmpfs {
        /// Bytes.
        size: Option<u64>,
        /// Permission bits, as octal on the command line.
        mode: Option<u32>,
        /// The `--tmpfs` options exactly as given, e.g. `noexec`, `size=64m`.
        options: Vec<String>,
    },
}

impl Source {
    /// A volume with no driver, labels, options or subpath.
    fn volume(name: Option<String>, nocopy: bool) -> Self {
        Self::Volume {
            name,
            driver: None,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            nocopy,
            subpath: None,
        }
    }
}

/// One container mount, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub source: Source,
    /// The absolute, cleaned path inside the container.
    pub target: String,
    pub readonly: bool,
    pub relabel: Option<Relabel>,
}

/// Refuses two mounts at the same (cleaned) container path, as the daemon
/// does when it registers a container's mounts.
pub fn check_unique_targets(specs: &[MountSpec]) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    for spec in specs {
        let target = path::clean_str(&spec.target);
        if !seen.insert(target.clone()) {
            return Err(SpecError::DuplicateMountPoint { target });
        }
    }
    Ok(())
}
