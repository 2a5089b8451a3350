//! Storage drivers, shaped like containerd's snapshotters.
//!
//! A snapshot is a directory tree with a parent. *Committed* snapshots are
//! immutable and may be parents; *active* ones are writable and can be
//! committed; *views* are read-only. Keys name active snapshots and views,
//! names name committed ones; they share one namespace.
//!
//! The invariant that shapes this crate: **snapshotters never mount; they
//! return mounts.** [`Snapshotter::prepare`] and [`Snapshotter::view`]
//! describe how to assemble the tree ([`Mount`]); [`mount`] performs such a
//! description when something needs the tree mounted. So drivers stay pure
//! bookkeeping plus directory work, and layer extraction can write straight
//! into an overlay upper directory without mounting anything.
//!
//! Lifecycle, importing a layer:
//! 1. `prepare("extract-…", Some(parent_chain))` gives the mounts of a new
//!    writable snapshot on the parent;
//! 2. the layer tar is applied into it;
//! 3. `commit(chain_id, "extract-…")` makes it an immutable layer.
//!
//! Running a container: `prepare(container_key, Some(image_top_chain))`,
//! mount what it returns as the rootfs, and `remove` it with the container.

pub mod mount;
pub mod overlay;
pub mod select;
mod snapshots;
pub mod vfs;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use snapshots::Snapshots;
pub use strata_store::meta::snapshots::Kind;

/// How to assemble a snapshot's tree: a description, not a mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    /// Bind-mount `source`.
    Bind { source: PathBuf, readonly: bool },
    /// overlayfs: `lowers` topmost first; without `upper` it is read-only.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: Option<PathBuf>,
        work: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub key: String,
    pub parent: Option<String>,
    pub kind: Kind,
    pub labels: BTreeMap<String, String>,
    pub created: String,
    pub updated: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of disk used by the snapshot's own files (not its parents').
    pub size: u64,
    pub inodes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub labels: BTreeMap<String, String>,
    /// Scratch work (layer extraction): reconcile may remove it when no
    /// process holds the store lock.
    pub transient: bool,
}

/// Something `check` found wrong with the driver's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub repaired: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot '{0}' does not exist")]
    NotFound(String),
    #[error("snapshot '{0}' already exists")]
    AlreadyExists(String),
    #[error("snapshot '{key}' {reason}")]
    InvalidState { key: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] strata_store::meta::MetaError),
    #[error(transparent)]
    Select(#[from] select::SelectError),
}

/// The storage driver seam. Implementations: [`overlay`], [`vfs`].
pub trait Snapshotter {
    /// The driver's name (`overlay`, `vfs`).
    fn driver(&self) -> &'static str;
    /// A new writable snapshot on the committed `parent` (None: empty).
    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Options,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// A new read-only snapshot of the committed `parent`.
    fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Options,
    ) -> Result<Vec<Mount>, SnapshotError>;
    /// The mounts of an existing active snapshot or view.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;
    /// Makes the active snapshot `key` the committed snapshot `name`,
    /// recording its usage so [`Snapshotter::usage`] never walks it again.
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;
    /// Removes a snapshot that is nobody's parent. Its files go to the
    /// store's trash ([`strata_store::trash`]), deleted when it is emptied.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;
    /// Removes `key` unless a snapshot stands on it (then false), safe
    /// against a `prepare` on it by another process under the shared
    /// store lock: the check and the record's deletion are one
    /// transaction, so a later prepare finds no parent. The files go to
    /// the trash after, so a crash between leaves a folder no record
    /// owns, which [`Snapshotter::check`] removes.
    fn remove_unused(&self, key: &str) -> Result<bool, SnapshotError>;
    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;
    /// Every snapshot, oldest first.
    fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError>;
    /// Where the files a committed snapshot added can be read, at their
    /// paths (overlay: its upper directory; vfs: its whole tree).
    fn files(&self, name: &str) -> Result<PathBuf, SnapshotError>;
    /// Compares the driver's folders with its records; with `repair`,
    /// removes half-made or orphaned snapshots. Only call with `repair`
    /// under the exclusive store lock.
    fn check(&self, repair: bool) -> Result<Vec<Problem>, SnapshotError>;
}
