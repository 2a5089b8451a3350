//! Who is writing: each command that adds to the store leaves a mark in
//! `<root>/writers/` while it works and takes it away when it finishes
//! cleanly. A mark found by a process holding the exclusive store lock
//! (so no live writer) was left by one that died, or that could not tidy
//! up after itself: only then does the store need a reconcile. Finding
//! none spares every command a walk of the whole store.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

pub struct Writers {
    dir: PathBuf,
    mine: RefCell<Option<PathBuf>>,
}

impl Writers {
    pub fn new(dir: &Path) -> Writers {
        Writers {
            dir: dir.to_owned(),
            mine: RefCell::new(None),
        }
    }

    /// Whether a writer left its mark, or the store predates marks (no
    /// folder yet): either way nobody can vouch for it. Ask only under the
    /// exclusive lock.
    pub fn interrupted(&self) -> io::Result<bool> {
        match std::fs::read_dir(&self.dir) {
            Ok(mut entries) => Ok(entries.next().is_some()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Forgets every mark, once the store has been reconciled.
    pub fn clear(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for entry in std::fs::read_dir(&self.dir)? {
            crate::fsutil::remove_any(&entry?.path())?;
        }
        Ok(())
    }

    /// Leaves this process's mark, before it changes anything.
    pub fn enter(&self) -> io::Result<()> {
        if self.mine.borrow().is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let mark = self.dir.join(format!(
            "{}-{}",
            std::process::id(),
            crate::fsutil::random_hex(4)
        ));
        std::fs::File::create(&mark)?;
        *self.mine.borrow_mut() = Some(mark);
        Ok(())
    }

    /// Takes this process's mark away: it finished, with nothing left to
    /// tidy up.
    pub fn leave(&self) -> io::Result<()> {
        match self.mine.borrow_mut().take() {
            Some(mark) => std::fs::remove_file(mark),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_left_behind_means_interrupted() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("writers");
        let w = Writers::new(&dir);
        assert!(w.interrupted().unwrap(), "no folder: nobody vouches");
        w.clear().unwrap();
        assert!(!w.interrupted().unwrap());
        w.enter().unwrap();
        assert!(w.interrupted().unwrap());
        w.leave().unwrap();
        assert!(!w.interrupted().unwrap());
        // A writer that died never leaves: the next one finds its mark.
        Writers::new(&dir).enter().unwrap();
        assert!(w.interrupted().unwrap());
        w.clear().unwrap();
        assert!(!w.interrupted().unwrap());
    }
}
