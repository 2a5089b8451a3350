//! Snapshots: point-in-time copies of CSI volumes, kept in
//! `<root>/csi/snapshots/<id>/` as `data/` (the tree of a folder or image
//! volume, reflinked where the filesystem can) or `disk.img` (a block
//! volume's image, sparse).
//!
//! The row goes in first, not ready; the copy is made in `<id>.tmp` and
//! renamed into place; then the row is marked ready. A crash leaves a row
//! that is not ready, which [`Storage::reconcile_snapshots`] removes with
//! its folder.

use std::path::{Path, PathBuf};

use strata_store::meta::csi::{self as meta, SnapshotRow};

use super::{Kind, Storage, copy, derived_id};
use crate::error::{CsiError, Result, io_err};

const DATA: &str = "data";
const IMAGE: &str = "disk.img";

/// A snapshot: its ID, CSI name, source volume, size, readiness and
/// creation time (RFC 3339), as recorded.
pub type Snapshot = SnapshotRow;

/// Which snapshots ListSnapshots wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotFilter<'a> {
    pub id: Option<&'a str>,
    pub source: Option<&'a str>,
}

impl Storage {
    pub fn snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        Ok(self.db.read(|tx| meta::snapshot(tx, id))?)
    }

    pub fn snapshot_named(&self, name: &str) -> Result<Option<Snapshot>> {
        Ok(self.db.read(|tx| meta::snapshot_named(tx, name))?)
    }

    /// Takes snapshot `name` of volume `source`. The caller has checked
    /// that no snapshot of that name exists.
    pub fn create_snapshot(&self, name: &str, source: &str) -> Result<Snapshot> {
        let volume = self.existing(source)?;
        let row = SnapshotRow {
            id: derived_id("snap-", name),
            name: name.to_owned(),
            source: source.to_owned(),
            size: volume.capacity,
            ready: false,
            created: strata_store::meta::now(),
        };
        if !self.db.write(|tx| meta::insert_snapshot(tx, &row))? {
            return Err(CsiError::Aborted(format!(
                "snapshot {name} is being taken by another call; try again"
            )));
        }
        let taken = self.copy_out(&row.id, source, volume.kind);
        if let Err(e) = taken {
            let _ = self.discard_snapshot(&row.id);
            return Err(e);
        }
        self.db.write(|tx| meta::set_snapshot_ready(tx, &row.id))?;
        Ok(Snapshot { ready: true, ..row })
    }

    /// Copies volume `source` into the snapshot folder of `id`.
    fn copy_out(&self, id: &str, source: &str, kind: Kind) -> Result<()> {
        let folder = self.snapshot_dir(id);
        let temp = temp_of(&folder);
        remove(&temp)?;
        std::fs::create_dir_all(&temp).map_err(io_err("creating", &temp))?;
        match kind {
            Kind::Block => {
                copy::image_file(&self.volumes.local().image(source), &temp.join(IMAGE))?
            }
            Kind::Dir | Kind::Image => {
                let data = temp.join(DATA);
                std::fs::create_dir(&data).map_err(io_err("creating", &data))?;
                self.volumes.with_mounted(source, |src| {
                    Ok(strata_volume::backup::clone_tree(src, &data).map(drop)?)
                })?;
                strata_archive::fsops::syncfs_of(&data).map_err(io_err("syncing", &data))?;
            }
        }
        strata_store::fsutil::sync_dir(&temp).map_err(io_err("syncing", &temp))?;
        std::fs::rename(&temp, &folder).map_err(io_err("renaming into place", &folder))?;
        let parent = folder.parent().expect("a snapshot folder has a parent");
        strata_store::fsutil::sync_dir(parent).map_err(io_err("syncing", parent))
    }

    /// Deletes snapshot `id`; one that does not exist is already deleted.
    pub fn delete_snapshot(&self, id: &str) -> Result<()> {
        self.discard_snapshot(id)
    }

    fn discard_snapshot(&self, id: &str) -> Result<()> {
        let folder = self.snapshot_dir(id);
        remove(&temp_of(&folder))?;
        remove(&folder)?;
        Ok(self.db.write(|tx| meta::delete_snapshot(tx, id))?)
    }

    /// Up to `limit` snapshots matching `filter` with IDs after `after`.
    pub fn list_snapshots(
        &self,
        filter: SnapshotFilter,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Snapshot>> {
        if let Some(id) = filter.id {
            let found = self.snapshot(id)?.filter(|s| {
                s.id.as_str() > after && filter.source.is_none_or(|src| s.source == src)
            });
            return Ok(found.into_iter().collect());
        }
        let rows = self
            .db
            .read(|tx| meta::snapshots_after(tx, filter.source, after, limit))?;
        Ok(rows)
    }

    /// Fills new volume `id` (of `kind`) from snapshot `snapshot`.
    pub(super) fn restore(&self, snapshot: &str, id: &str, kind: Kind) -> Result<()> {
        let found = self
            .snapshot(snapshot)?
            .ok_or_else(|| CsiError::NotFound(format!("snapshot {snapshot} does not exist")))?;
        if !found.ready {
            return Err(CsiError::FailedPrecondition(format!(
                "snapshot {snapshot} is not ready yet; try again when it is"
            )));
        }
        let folder = self.snapshot_dir(snapshot);
        let image = folder.join(IMAGE);
        match (image.exists(), kind == Kind::Block) {
            (true, true) => copy::image_into(&image, &self.volumes.local().image(id)),
            (false, false) => Ok(self.volumes.with_mounted(id, |dst| {
                Ok(strata_volume::backup::clone_tree(&folder.join(DATA), dst).map(drop)?)
            })?),
            (block, _) => Err(CsiError::InvalidArgument(format!(
                "snapshot {snapshot} is of a {} volume and cannot fill a {kind:?} volume",
                if block { "block" } else { "filesystem" }
            ))),
        }
    }

    /// Removes snapshots a crash left unfinished, and folders no snapshot
    /// owns. Returns the IDs or folders removed.
    pub fn reconcile_snapshots(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for row in self.db.read(|tx| meta::unready_snapshots(tx))? {
            self.discard_snapshot(&row.id)?;
            removed.push(row.id);
        }
        let dir = self.csi_dir().join("snapshots");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err("reading", &dir))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if self.snapshot(&name)?.is_none() {
                remove(&path)?;
                removed.push(path.display().to_string());
            }
        }
        Ok(removed)
    }

    fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.csi_dir().join("snapshots").join(id)
    }
}

/// Where a snapshot is copied before it is renamed into place: a name no
/// snapshot ID can have (IDs never start with a dot).
fn temp_of(folder: &Path) -> PathBuf {
    let name = folder.file_name().unwrap_or_default().to_string_lossy();
    folder.with_file_name(format!(".{name}.tmp"))
}

fn remove(path: &Path) -> Result<()> {
    strata_store::fsutil::remove_any(path).map_err(io_err("removing", path))
}
