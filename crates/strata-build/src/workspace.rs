//! A build's scratch folder, `<root>/builder/work/<random>`: the mounts of
//! its steps, runtime bundles, and the extracted context of `build -`.
//!
//! The build holds `lock` in it exclusively while it runs. A folder whose
//! lock nobody holds was left by a killed build: the next build stops the
//! containers it names, unmounts what is mounted under it, then removes it.
//! Nothing is removed while anything under it is still mounted.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use strata_runtime::{Runc, Runtime};

use crate::error::{Result, io_at};

/// Names runtime containers (`<runtime>\t<id>` lines) a build started.
const CONTAINERS: &str = "containers";

pub(crate) struct Workspace {
    dir: PathBuf,
    /// Held (flock'ed) for the life of the build.
    _lock: File,
    next: Cell<u32>,
    /// Descriptors the runtime reaches through /proc/self/fd.
    held: RefCell<Vec<OwnedFd>>,
}

impl Workspace {
    pub(crate) fn open(root: &Path) -> Result<Workspace> {
        let parent = root.join("builder/work");
        std::fs::create_dir_all(&parent).map_err(io_at(&parent))?;
        tidy(&parent);
        let dir = parent.join(strata_store::fsutil::random_hex(8));
        std::fs::create_dir(&dir).map_err(io_at(&dir))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(io_at(&lock_path))?;
        flock(lock.as_fd(), FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| io_at(&lock_path)(e.into()))?;
        Ok(Workspace {
            dir,
            _lock: lock,
            next: Cell::new(0),
            held: RefCell::new(Vec::new()),
        })
    }

    /// A new empty folder for one use (`what` names it for a reader).
    pub(crate) fn fresh(&self, what: &str) -> Result<PathBuf> {
        let n = self.next.get();
        self.next.set(n + 1);
        let p = self.dir.join(format!("{what}-{n}"));
        std::fs::create_dir(&p).map_err(io_at(&p))?;
        Ok(p)
    }

    /// Keeps `fd` open until the build ends.
    pub(crate) fn hold(&self, fd: OwnedFd) {
        self.held.borrow_mut().push(fd);
    }

    /// Notes a runtime container, so a killed build's is stopped later.
    pub(crate) fn note_container(&self, runtime: &Path, id: &str) -> Result<()> {
        let p = self.dir.join(CONTAINERS);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&p)
            .map_err(io_at(&p))?;
        writeln!(f, "{}\t{id}", runtime.display()).map_err(io_at(&p))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        remove(&self.dir);
    }
}

/// Removes the folders of builds that are gone.
fn tidy(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        let held = File::open(dir.join("lock"))
            .is_ok_and(|f| flock(f.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err());
        if !held {
            tracing::warn!("tidying up after an interrupted build: {}", dir.display());
            remove(&dir);
        }
    }
}

fn remove(dir: &Path) {
    if let Ok(text) = std::fs::read_to_string(dir.join(CONTAINERS)) {
        for (runtime, id) in text.lines().filter_map(|l| l.split_once('\t')) {
            let _ = Runc::new(Path::new(runtime)).delete(id, true);
        }
    }
    let mounted = strata_snapshot::mount::mounts_under(dir).unwrap_or_default();
    // Innermost first.
    for m in mounted.iter().rev() {
        let _ = strata_snapshot::mount::unmount(m);
    }
    if strata_snapshot::mount::mounts_under(dir)
        .unwrap_or_default()
        .is_empty()
    {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        tracing::warn!(
            "{} still has mounts; leaving it for the next build",
            dir.display()
        );
    }
}
