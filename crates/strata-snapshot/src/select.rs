//! Choosing the storage driver: the one the store was made with, else the
//! one asked for, else the best the host supports (overlay if a test mount
//! works, vfs otherwise). The choice is recorded in the store, so a store
//! never silently changes driver.

use std::path::Path;
use std::rc::Rc;

use strata_store::Layout;
use strata_store::meta::{Db, settings};
use strata_store::trash::Trash;

use crate::mount::mount;
use crate::overlay::Overlay;
use crate::snapshots::{Driver, Snapshots};
use crate::vfs::Vfs;
use crate::{Mount, SnapshotError, Snapshotter};

pub const DRIVERS: &[&str] = &[Overlay::NAME, Vfs::NAME];

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("unknown storage driver '{0}' (choose overlay or vfs)")]
    Unknown(String),
    #[error(
        "the store at {root} was made with the '{recorded}' storage driver and cannot be opened with '{requested}'; use --storage-driver {recorded}, or another --root for a {requested} store"
    )]
    Mismatch {
        root: String,
        recorded: String,
        requested: String,
    },
    #[error("the overlay storage driver does not work here ({0}); use --storage-driver vfs")]
    OverlayUnsupported(String),
}

/// The driver the store records, if it has one yet.
pub fn recorded(db: &Db) -> Result<Option<String>, SnapshotError> {
    Ok(db.read(|tx| settings::get(tx, "driver"))?)
}

/// Opens the store's storage driver (choosing and recording one for a new
/// store). `root` is the store root; `scratch` a folder on the same
/// filesystem for the overlay test mount.
pub fn open(
    root: &Path,
    scratch: &Path,
    db: Rc<Db>,
    requested: Option<&str>,
) -> Result<Box<dyn Snapshotter>, SnapshotError> {
    if let Some(r) = requested
        && !DRIVERS.contains(&r)
    {
        return Err(SelectError::Unknown(r.to_owned()).into());
    }
    let name = match (recorded(&db)?, requested) {
        (Some(recorded), Some(requested)) if recorded != requested => {
            return Err(SelectError::Mismatch {
                root: root.display().to_string(),
                recorded,
                requested: requested.to_owned(),
            }
            .into());
        }
        (Some(recorded), _) => recorded,
        (None, requested) => {
            let chosen = match requested {
                Some(Overlay::NAME) => {
                    overlay_works(scratch).map_err(SelectError::OverlayUnsupported)?;
                    Overlay::NAME
                }
                Some(other) => other,
                None if overlay_works(scratch).is_ok() => Overlay::NAME,
                None => Vfs::NAME,
            };
            // Another process may have chosen first: theirs stands.
            let stored = db.write(|tx| {
                if let Some(existing) = settings::get(tx, "driver")? {
                    return Ok(existing);
                }
                settings::set(tx, "driver", chosen)?;
                Ok(chosen.to_owned())
            })?;
            return open(root, scratch, db, Some(&stored));
        }
    };
    let dir = root.join(&name);
    let trash = || Trash::new(&Layout::new(root).trash());
    Ok(match name.as_str() {
        Overlay::NAME => Box::new(Snapshots::open(&dir, db, Overlay, trash())?),
        Vfs::NAME => Box::new(Snapshots::open(&dir, db, Vfs, trash())?),
        other => return Err(SelectError::Unknown(other.to_owned()).into()),
    })
}

/// Mounts a two-layer overlay with an upper layer in `scratch` and writes
/// through it: what the overlay driver will need.
pub fn overlay_works(scratch: &Path) -> Result<(), String> {
    let dir = scratch.join(format!(
        "overlay-probe-{}",
        strata_store::fsutil::random_hex(6)
    ));
    let result = (|| {
        for d in ["l1", "l2", "upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        std::fs::write(dir.join("l2/file"), b"lower").map_err(|e| e.to_string())?;
        let m = Mount::Overlay {
            lowers: vec![dir.join("l1"), dir.join("l2")],
            upper: Some(dir.join("upper")),
            work: Some(dir.join("work")),
        };
        let mounted = mount(&[m], &dir.join("merged")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("merged/file"), b"upper").map_err(|e| e.to_string())?;
        mounted.unmount().map_err(|e| e.to_string())?;
        match std::fs::read(dir.join("upper/file")) {
            Ok(b) if b == b"upper" => Ok(()),
            _ => Err("writes through the overlay did not reach the upper directory".into()),
        }
    })();
    let _ = strata_store::fsutil::remove_any(&dir);
    result
}
