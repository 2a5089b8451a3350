//! The trash: folders the store no longer records, waiting to be deleted.
//!
//! Moving a folder in is one rename; deleting it frees its blocks, which
//! costs (0.1-0.3 ms a block where the filesystem discards online). So a
//! command that removes a snapshot or a container's folder moves it here,
//! and the trash is emptied when the command finishes ([`Trash::empty`],
//! from the store handle's drop), or by a process that outlives the
//! command: `run --rm` leaves it to the container's monitor, so the user
//! does not wait for it. What a killed process left here is deleted by
//! the next command that writes, or by a repair. Nothing in the trash is
//! ever read again, so emptying it needs no lock.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{random_hex, remove_any};

pub struct Trash {
    dir: PathBuf,
}

impl Trash {
    pub fn new(dir: &Path) -> Trash {
        Trash {
            dir: dir.to_owned(),
        }
    }

    /// Moves `path` into the trash; nothing to do if it is gone. Deletes
    /// it at once if it lives on another filesystem.
    pub fn put(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let to = self.dir.join(random_hex(8));
        match std::fs::rename(path, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => remove_any(path),
            Err(e) => Err(e),
        }
    }

    /// Deletes everything in the trash. Others may empty it at the same
    /// time: what they deleted first is not an error.
    pub fn empty(&self) -> io::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            match remove_any(&entry?.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_goes_in_is_gone_once_emptied() {
        let t = tempfile::tempdir().unwrap();
        let trash = Trash::new(&t.path().join("trash"));
        trash.empty().unwrap();
        let dir = t.path().join("snapshot");
        std::fs::create_dir_all(dir.join("fs/deep")).unwrap();
        std::fs::write(dir.join("fs/deep/file"), b"data").unwrap();
        trash.put(&dir).unwrap();
        assert!(!dir.exists(), "moved out at once");
        assert_eq!(
            std::fs::read_dir(t.path().join("trash")).unwrap().count(),
            1
        );
        trash.put(&t.path().join("never-was")).unwrap();
        trash.empty().unwrap();
        assert_eq!(
            std::fs::read_dir(t.path().join("trash")).unwrap().count(),
            0
        );
    }
}
