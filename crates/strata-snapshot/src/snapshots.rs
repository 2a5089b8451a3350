//! What every driver shares: snapshot records in the metadata database and
//! one folder per snapshot, `<driver root>/snapshots/<id>/`, with the tree in
//! `fs/`. Numeric ids keep paths short, which matters for overlay's mount
//! options.
//!
//! Crash safety: a new snapshot's folder is built as `<id>.new` and renamed
//! into place; a removed one is renamed to `<id>.del` before its record goes.
//! `check` finds and clears what a crash can leave: `.new`/`.del` folders,
//! folders without records, records without folders, and transient
//! snapshots (a layer being extracted or an init layer being made).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use strata_store::meta::snapshots::{self as rows, NewSnapshot, SnapshotRow};
use strata_store::meta::{Db, Transaction};
use strata_store::trash::Trash;

use crate::{Info, Kind, Mount, Options, Problem, SnapshotError, Snapshotter, Usage};

/// The part of a storage driver that differs between drivers.
pub trait Driver {
    const NAME: &'static str;
    /// Fills the folder of a new snapshot, not yet visible under its final
    /// name. `parent` is the parent's `fs/` folder.
    fn populate(&self, dir: &Path, parent: Option<&Path>, kind: Kind) -> io::Result<()>;
    /// The mounts of the snapshot in `dir`, given its ancestors' `fs/`
    /// folders, nearest first.
    fn mounts(&self, dir: &Path, kind: Kind, ancestors: &[PathBuf]) -> Vec<Mount>;
}

pub struct Snapshots<D: Driver> {
    root: PathBuf,
    db: Rc<Db>,
    driver: D,
    /// Where a removed snapshot's folder goes to be deleted.
    trash: Trash,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

impl<D: Driver> Snapshots<D> {
    pub fn open(root: &Path, db: Rc<Db>, driver: D, trash: Trash) -> Result<Self, SnapshotError> {
        let dir = root.join("snapshots");
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(Snapshots {
            root: root.to_owned(),
            db,
            driver,
            trash,
        })
    }

    fn dir(&self, id: i64) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn row(tx: &Transaction, key: &str) -> rusqlite_result::Result<SnapshotRow> {
        Ok(rows::get(tx, key)?.ok_or_else(|| SnapshotError::NotFound(key.to_owned())))
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        opts: &Options,
    ) -> Result<Vec<Mount>, SnapshotError> {
        let (id, ancestors) = self.db.write(|tx| {
            if rows::get(tx, key)?.is_some() {
                return Ok(Err(SnapshotError::AlreadyExists(key.to_owned())));
            }
            let parent_row = match parent {
                None => None,
                Some(p) => match rows::get(tx, p)? {
                    None => return Ok(Err(SnapshotError::NotFound(p.to_owned()))),
                    Some(row) if row.kind != Kind::Committed => {
                        return Ok(Err(SnapshotError::InvalidState {
                            key: p.to_owned(),
                            reason: "is not committed, so it cannot be a parent".into(),
                        }));
                    }
                    Some(row) => Some(row),
                },
            };
            let id = rows::insert(
                tx,
                &NewSnapshot {
                    key,
                    parent: parent_row.as_ref().map(|r| r.id),
                    kind,
                    transient: opts.transient,
                    labels: &opts.labels,
                },
            )?;
            let ancestors = match &parent_row {
                Some(p) => rows::chain(tx, p.id)?,
                None => Vec::new(),
            };
            Ok(Ok((id, ancestors)))
        })??;
        let ancestors: Vec<PathBuf> = ancestors
            .iter()
            .map(|r| self.dir(r.id).join("fs"))
            .collect();
        let dir = self.dir(id);
        let new = dir.with_extension("new");
        let made = (|| {
            std::fs::create_dir(&new)?;
            self.driver
                .populate(&new, ancestors.first().map(PathBuf::as_path), kind)?;
            std::fs::rename(&new, &dir)
        })();
        if let Err(e) = made {
            let _ = strata_store::fsutil::remove_any(&new);
            let _ = self.db.write(|tx| rows::delete(tx, id));
            return Err(io_at(&new)(e));
        }
        Ok(self.driver.mounts(&dir, kind, &ancestors))
    }
}

/// The shape of a transaction closure that can fail for our reasons too.
mod rusqlite_result {
    pub type Result<T> =
        strata_store::meta::rusqlite::Result<std::result::Result<T, super::SnapshotError>>;
}

fn info(row: &SnapshotRow, parent: Option<String>) -> Info {
    Info {
        key: row.key.clone(),
        parent,
        kind: row.kind,
        labels: row.labels.clone(),
        created: row.created.clone(),
        updated: row.updated.clone(),
    }
}

impl<D: Driver> Snapshotter for Snapshots<D> {
    fn driver(&self) -> &'static str {
        D::NAME
    }

    fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Options,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::Active, opts)
    }

    fn view(
        &self,
        key: &str,
        parent: Option<&str>,
        opts: &Options,
    ) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::View, opts)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let (row, chain) = self.db.read(|tx| {
            let row = match Self::row(tx, key)? {
                Ok(row) => row,
                Err(e) => return Ok(Err(e)),
            };
            let chain = match row.parent {
                Some(p) => rows::chain(tx, p)?,
                None => Vec::new(),
            };
            Ok(Ok((row, chain)))
        })??;
        if row.kind == Kind::Committed {
            return Err(SnapshotError::InvalidState {
                key: key.to_owned(),
                reason: "is committed; take a view of it to mount it".into(),
            });
        }
        let ancestors: Vec<PathBuf> = chain.iter().map(|r| self.dir(r.id).join("fs")).collect();
        Ok(self.driver.mounts(&self.dir(row.id), row.kind, &ancestors))
    }

    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        let row = self.db.read(|tx| Self::row(tx, key))??;
        if row.kind != Kind::Active {
            return Err(SnapshotError::InvalidState {
                key: key.to_owned(),
                reason: "is not active, so it cannot be committed".into(),
            });
        }
        let fs = self.dir(row.id).join("fs");
        let (size, inodes) = strata_archive::fsops::disk_usage(&fs).map_err(io_at(&fs))?;
        self.db.write(|tx| {
            if rows::get(tx, name)?.is_some() {
                return Ok(Err(SnapshotError::AlreadyExists(name.to_owned())));
            }
            rows::commit(tx, row.id, name, size, inodes)?;
            Ok(Ok(()))
        })?
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let row = self.db.read(|tx| Self::row(tx, key))??;
        if self.db.read(|tx| rows::has_children(tx, row.id))? {
            return Err(SnapshotError::InvalidState {
                key: key.to_owned(),
                reason: "is the parent of other snapshots; remove them first".into(),
            });
        }
        // Files first: a crash between leaves a record without files,
        // which the check removes.
        let dir = self.dir(row.id);
        self.trash.put(&dir).map_err(io_at(&dir))?;
        self.db.write(|tx| rows::delete(tx, row.id))?;
        Ok(())
    }

    fn remove_unused(&self, key: &str) -> Result<bool, SnapshotError> {
        let removed = self.db.write(|tx| {
            let Some(row) = rows::get(tx, key)? else {
                return Ok(None);
            };
            if rows::has_children(tx, row.id)? {
                return Ok(None);
            }
            rows::delete(tx, row.id)?;
            Ok(Some(row.id))
        })?;
        let Some(id) = removed else {
            return Ok(false);
        };
        let dir = self.dir(id);
        self.trash.put(&dir).map_err(io_at(&dir))?;
        Ok(true)
    }

    fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
        self.db.read(|tx| {
            let row = match Self::row(tx, key)? {
                Ok(row) => row,
                Err(e) => return Ok(Err(e)),
            };
            let parent = match row.parent {
                Some(p) => rows::get_by_id(tx, p)?.map(|r| r.key),
                None => None,
            };
            Ok(Ok(info(&row, parent)))
        })?
    }

    fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let row = self.db.read(|tx| Self::row(tx, key))??;
        if let (Kind::Committed, Some(size), Some(inodes)) = (row.kind, row.size, row.inodes) {
            return Ok(Usage { size, inodes });
        }
        let fs = self.dir(row.id).join("fs");
        let (size, inodes) = strata_archive::fsops::disk_usage(&fs).map_err(io_at(&fs))?;
        Ok(Usage { size, inodes })
    }

    fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError> {
        let all = self.db.read(|tx| rows::list(tx))?;
        let keys: std::collections::HashMap<i64, String> =
            all.iter().map(|r| (r.id, r.key.clone())).collect();
        for row in &all {
            f(&info(row, row.parent.and_then(|p| keys.get(&p).cloned())));
        }
        Ok(())
    }

    fn files(&self, name: &str) -> Result<PathBuf, SnapshotError> {
        let row = self.db.read(|tx| Self::row(tx, name))??;
        if row.kind != Kind::Committed {
            return Err(SnapshotError::InvalidState {
                key: name.to_owned(),
                reason: "is not committed".into(),
            });
        }
        Ok(self.dir(row.id).join("fs"))
    }

    fn check(&self, repair: bool) -> Result<Vec<Problem>, SnapshotError> {
        let mut problems = Vec::new();
        let mut note = |what: String, repaired: bool| problems.push(Problem { what, repaired });
        let all = self.db.read(|tx| rows::list(tx))?;
        // Transient snapshots, newest first (children before parents).
        for row in all.iter().rev().filter(|r| r.transient) {
            if repair {
                self.remove(&row.key)?;
            }
            note(
                format!(
                    "{} snapshot '{}' left unfinished by an interrupted command",
                    D::NAME,
                    row.key
                ),
                repair,
            );
        }
        let ids: HashSet<i64> = all
            .iter()
            .filter(|r| !(repair && r.transient))
            .map(|r| r.id)
            .collect();
        let base = self.root.join("snapshots");
        let mut on_disk = HashSet::new();
        for entry in std::fs::read_dir(&base).map_err(io_at(&base))? {
            let path = entry.map_err(io_at(&base))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            match name.parse::<i64>() {
                Ok(id) if ids.contains(&id) => {
                    on_disk.insert(id);
                }
                _ => {
                    if repair {
                        strata_store::fsutil::remove_any(&path).map_err(io_at(&path))?;
                    }
                    note(
                        format!(
                            "{} folder {} belongs to no snapshot",
                            D::NAME,
                            path.display()
                        ),
                        repair,
                    );
                }
            }
        }
        for row in all
            .iter()
            .rev()
            .filter(|r| ids.contains(&r.id) && !on_disk.contains(&r.id))
        {
            let orphaned_children = all
                .iter()
                .any(|c| c.parent == Some(row.id) && on_disk.contains(&c.id));
            let fixed = repair && !orphaned_children;
            if fixed {
                self.db.write(|tx| rows::delete(tx, row.id))?;
            }
            note(
                format!("{} snapshot '{}' has no files on disk", D::NAME, row.key),
                fixed,
            );
        }
        Ok(problems)
    }
}
