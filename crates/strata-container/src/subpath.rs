//! Volume subpaths (`--mount volume-subpath=`) made reachable by the
//! runtime. A subpath is opened by fd inside its volume, so a symlink a
//! container planted there cannot lead out of it. The runtime mounts in
//! the container's new mount namespace, where a bind of our fd's
//! `/proc/<pid>/fd` path is refused (EINVAL: the source's mount belongs
//! to another namespace). So each one is bind-mounted through the fd at
//! `<bundle>/subpaths/<n>` in ours, the path the bundle names, as Docker's
//! "safe paths"; once the runtime has its own mount (or the start failed)
//! they are unmounted. One left by a killed `strata` is unmounted by the
//! next start or removal of the container.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use strata_archive::fsops;

use crate::{Result, io_at};

/// The subpaths mounted for one start; unmounted when dropped.
pub(crate) struct Subpaths {
    dir: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Subpaths {
    /// For a start of the container whose bundle is `bundle`; unmounts
    /// what an earlier one left.
    pub(crate) fn new(bundle: &Path) -> Subpaths {
        let dir = bundle.join("subpaths");
        unmount_all(&dir);
        Subpaths {
            dir,
            mounted: Vec::new(),
        }
    }

    /// Mounts `sub` of the volume folder `data` (made if missing); the
    /// path to give the runtime.
    pub(crate) fn mount(&mut self, data: &Path, sub: &str) -> Result<PathBuf> {
        let fd = fsops::open_making_folders(data, sub, OFlags::DIRECTORY)
            .map_err(io_at(data.join(sub)))?;
        let at = self.dir.join(self.mounted.len().to_string());
        std::fs::create_dir_all(&at).map_err(io_at(&at))?;
        fsops::bind_fd(fd.as_fd(), &at).map_err(io_at(&at))?;
        self.mounted.push(at.clone());
        Ok(at)
    }

    /// The runtime has its own mounts: ours can go.
    pub(crate) fn release(&mut self) {
        for at in self.mounted.drain(..) {
            if let Err(e) = strata_snapshot::mount::unmount(&at) {
                tracing::warn!("unmounting {}: {e}", at.display());
            }
        }
    }
}

impl Drop for Subpaths {
    fn drop(&mut self) {
        self.release();
    }
}

/// Unmounts every subpath mount point under `dir` (none is not an error).
pub(crate) fn unmount_all(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = strata_snapshot::mount::unmount(&entry.path());
    }
}
