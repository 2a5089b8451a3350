//! The store lock: a `flock` on `<root>/lock`.
//!
//! Commands that add to the store hold it shared, so any number run at once.
//! Work that removes what others may be building on (garbage collection,
//! reconcile, repair) holds it exclusive. The kernel drops the lock when a
//! process dies, so a killed `strata` never leaves the store locked.

use rustix::fs::{FlockOperation, flock};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

pub struct StoreLock {
    file: File,
    path: PathBuf,
    held: Option<LockMode>,
}

impl StoreLock {
    pub fn open(path: &Path) -> io::Result<StoreLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(StoreLock {
            file,
            path: path.to_owned(),
            held: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn held(&self) -> Option<LockMode> {
        self.held
    }

    /// Takes the lock in `mode`, waiting for other holders; `on_wait` is called
    /// once if it has to wait, so the user learns why nothing happens.
    pub fn acquire(&mut self, mode: LockMode, on_wait: impl FnOnce()) -> io::Result<()> {
        if !self.try_acquire(mode)? {
            on_wait();
            let op = match mode {
                LockMode::Shared => FlockOperation::LockShared,
                LockMode::Exclusive => FlockOperation::LockExclusive,
            };
            flock(&self.file, op)?;
            self.held = Some(mode);
        }
        Ok(())
    }

    /// Takes the lock in `mode` if nobody holds it in a conflicting mode.
    pub fn try_acquire(&mut self, mode: LockMode) -> io::Result<bool> {
        let op = match mode {
            LockMode::Shared => FlockOperation::NonBlockingLockShared,
            LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
        };
        match flock(&self.file, op) {
            Ok(()) => {
                self.held = Some(mode);
                Ok(true)
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub fn release(&mut self) -> io::Result<()> {
        flock(&self.file, FlockOperation::Unlock)?;
        self.held = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_coexist_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let mut a = StoreLock::open(&path).unwrap();
        let mut b = StoreLock::open(&path).unwrap();
        let mut c = StoreLock::open(&path).unwrap();
        assert!(a.try_acquire(LockMode::Shared).unwrap());
        assert!(b.try_acquire(LockMode::Shared).unwrap());
        assert!(!c.try_acquire(LockMode::Exclusive).unwrap());
        a.release().unwrap();
        b.release().unwrap();
        assert!(c.try_acquire(LockMode::Exclusive).unwrap());
        assert!(!a.try_acquire(LockMode::Shared).unwrap());
    }
}
