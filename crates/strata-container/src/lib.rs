//! Containers: a writable snapshot over an image's layers, the volumes and
//! mounts it was given, and a process run through an OCI runtime.
//!
//! Where things are:
//! - the record (`containers` table): ID, name, image, snapshot key and the
//!   [`ContainerConfig`], plus the volumes it uses (`container_volumes`);
//! - the writable layer: snapshot `container-<id>` on the init layer of
//!   the image's top layer (`strata_image::init_layer`, filled by
//!   `mount_points`); on nothing for an image without layers, and on the
//!   top layer itself for a container made before init layers;
//! - `<root>/containers/<id>/`: the OCI bundle (`config.json`, `rootfs/`
//!   where the snapshot is mounted while it runs), `state.json` (written by
//!   the monitor) and `container.log`.
//!
//! Order of work, for crash safety: `create` makes the snapshot and folder
//! before the record; `rm` removes the record before them. What a crash
//! leaves (a snapshot or folder no record owns) is found and removed by
//! [`Containers::check`].

pub mod config;
mod create;
pub mod files;
pub mod filter;
mod lifecycle;
pub mod monitor;
mod mount_points;
mod names;
mod query;
mod start;
mod subpath;
pub mod user;

use std::collections::HashSet;
use std::path::PathBuf;

use strata_image::Store;
use strata_store::meta::containers::{self as meta, ContainerRow};
use strata_volume::Volumes;

pub use config::{ContainerConfig, MountKind, MountPoint};
pub use create::CreateOptions;
pub use lifecycle::ExecOptions;
pub use monitor::{Launch, MonitorRequest};
pub use query::{Change, ChangeKind, Status, Summary};
pub use start::{Attached, Monitor, Started};

/// The snapshot label value marking a container's writable layer.
pub const SNAPSHOT_OWNER: &str = "container";
const SNAPSHOT_PREFIX: &str = "container-";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container name '{0}' is ambiguous; give more of the ID")]
    Ambiguous(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(
        "invalid container name '{0}': use letters, digits and _ . - (starting with a letter or digit)"
    )]
    BadName(String),
    #[error("{0}")]
    Invalid(String),
    /// The container's process did not start (`why`: the runtime's words,
    /// the command was not found, could not be run, ...; `status`:
    /// Docker's exit status for that, 127, 126 or 125).
    #[error("container {name} failed to start: {why}")]
    StartFailed {
        name: String,
        why: String,
        status: i32,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] strata_image::ImageError),
    #[error(transparent)]
    Volume(#[from] strata_volume::VolumeError),
    #[error(transparent)]
    Runtime(#[from] strata_runtime::RuntimeError),
    #[error(transparent)]
    Meta(#[from] strata_store::meta::MetaError),
    #[error(transparent)]
    Snapshot(#[from] strata_snapshot::SnapshotError),
    #[error(transparent)]
    Mount(#[from] strata_snapshot::mount::MountError),
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.into();
    move |source| ContainerError::Io { path, source }
}

/// How to start a monitor: `strata` re-executing itself (see
/// [`Monitor::spawn`]). The binary supplies it (it knows its own command
/// line).
pub type MonitorCommand<'a> = dyn Fn() -> std::process::Command + 'a;

/// The containers of one store.
pub struct Containers<'s> {
    pub(crate) store: &'s Store,
    pub(crate) volumes: Volumes,
    pub(crate) dir: PathBuf,
}

/// A container record with its configuration read.
#[derive(Debug, Clone)]
pub struct Container {
    pub row: ContainerRow,
    pub config: ContainerConfig,
}

impl Container {
    fn from_row(row: ContainerRow) -> Result<Container> {
        let config = serde_json::from_str(&row.config).map_err(|e| {
            ContainerError::Invalid(format!("container {} has a damaged record: {e}", row.name))
        })?;
        Ok(Container { row, config })
    }

    pub fn id(&self) -> &str {
        &self.row.id
    }

    pub fn name(&self) -> &str {
        &self.row.name
    }
}

impl<'s> Containers<'s> {
    pub fn new(store: &'s Store, volumes: Volumes) -> Containers<'s> {
        Containers {
            volumes,
            dir: containers_dir(store.root()),
            store,
        }
    }

    pub(crate) fn bundle(&self, id: &str) -> PathBuf {
        bundle_dir(&self.dir, id)
    }

    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.bundle(id).join("rootfs")
    }

    pub(crate) fn state_file(&self, id: &str) -> PathBuf {
        state_file(&self.bundle(id))
    }

    pub fn log_file(&self, id: &str) -> PathBuf {
        log_file(&self.bundle(id))
    }

    /// Finds a container by full ID, name, or unique ID prefix.
    pub fn get(&self, s: &str) -> Result<Container> {
        let db = self.store.db();
        let not_found = || ContainerError::NotFound(s.to_owned());
        let row = match db.read(|tx| meta::by_id(tx, s))? {
            Some(r) => r,
            None => match db.read(|tx| meta::by_name(tx, s.trim_start_matches('/')))? {
                Some(r) => r,
                None => {
                    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(not_found());
                    }
                    let ids = db.read(|tx| meta::ids_with_prefix(tx, s))?;
                    match ids.as_slice() {
                        [one] => db.read(|tx| meta::by_id(tx, one))?.ok_or_else(not_found)?,
                        [] => return Err(not_found()),
                        _ => return Err(ContainerError::Ambiguous(s.to_owned())),
                    }
                }
            },
        };
        Container::from_row(row)
    }

    /// Every container, newest first.
    pub fn all(&self) -> Result<Vec<Container>> {
        let rows = self.store.db().read(|tx| meta::list(tx))?;
        rows.into_iter().map(Container::from_row).collect()
    }

    /// Container folders and writable layers no record owns (a crash
    /// during create or rm), and volume folders no volume record owns; with
    /// `repair` (under the exclusive store lock), removes them.
    pub fn check(&self, repair: bool) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let known: Vec<String> = self.all()?.into_iter().map(|c| c.row.id).collect();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                // A folder whose runtime waits at its gate is a `run`
                // whose record is not written yet.
                if known.contains(&id) || strata_runtime::gate::Gate::held(&entry.path()) {
                    continue;
                }
                if repair {
                    self.remove_folder(&id)?;
                }
                found.push(format!(
                    "container folder {} belongs to no container",
                    entry.path().display()
                ));
            }
        }
        if self.store.recorded_driver()?.is_some() {
            let snapshots = self.store.snapshots()?;
            let owned: HashSet<String> = self
                .store
                .db()
                .read(|tx| meta::snapshots(tx))?
                .into_iter()
                .collect();
            let mut orphans = Vec::new();
            snapshots.walk(&mut |info| {
                if info
                    .labels
                    .get(strata_image::unpack::LAYER_LABEL)
                    .map(String::as_str)
                    == Some(SNAPSHOT_OWNER)
                    && !owned.contains(&info.key)
                {
                    orphans.push(info.key.clone());
                }
            })?;
            for key in orphans {
                if repair {
                    snapshots.remove(&key)?;
                }
                found.push(format!("writable layer {key} belongs to no container"));
            }
        }
        let running: Vec<String> = self
            .all()?
            .into_iter()
            .filter(|c| self.status(c).is_ok_and(|s| s.is_running()))
            .map(|c| c.row.id)
            .collect();
        let alive = |caller: &str| running.iter().any(|id| id == caller);
        found.extend(self.volumes.check_mounts(&alive, repair)?);
        for path in self.volumes.check(repair)? {
            found.push(format!(
                "volume folder {} belongs to no volume",
                path.display()
            ));
        }
        Ok(found)
    }

    /// Unmounts (if mounted) and removes a container's folder (into the
    /// store's trash).
    pub(crate) fn remove_folder(&self, id: &str) -> Result<()> {
        let rootfs = self.rootfs(id);
        strata_snapshot::mount::unmount(&rootfs).map_err(io_at(&rootfs))?;
        let dir = self.bundle(id);
        subpath::unmount_all(&dir.join("subpaths"));
        self.store.trash().put(&dir).map_err(io_at(&dir))
    }
}

/// `<root>/containers`: every container's folder.
pub(crate) fn containers_dir(root: &std::path::Path) -> PathBuf {
    root.join("containers")
}

/// A container's folder, which is also its OCI bundle.
pub(crate) fn bundle_dir(containers: &std::path::Path, id: &str) -> PathBuf {
    containers.join(id)
}

pub(crate) fn state_file(bundle: &std::path::Path) -> PathBuf {
    bundle.join("state.json")
}

pub(crate) fn log_file(bundle: &std::path::Path) -> PathBuf {
    bundle.join("container.log")
}

pub(crate) fn snapshot_key(id: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{id}")
}

/// Short IDs, as Docker prints them.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
