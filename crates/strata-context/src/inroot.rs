//! Resolving destination directories inside a root filesystem we do not
//! trust: an fd-based walk, one name at a time, never following a symlink
//! by the kernel. A symlink met on the way is read and its target walked
//! instead, with `/` and `..` clamped to the root, the way the path would
//! resolve inside the container. So `/app -> /etc` leads to the root's
//! `etc`, `-> ../../..` to the root itself, and nothing outside the root
//! can ever be reached, whatever changes under us meanwhile.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io;

use strata_archive::fsops;

/// Symlinks followed in one resolution before giving up, as Linux does.
const MAX_LINKS: usize = 40;

/// A directory resolved inside the root.
pub(crate) struct Dir {
    /// `O_PATH` handle.
    pub fd: OwnedFd,
    /// Its path from the root with every symlink resolved.
    pub real: Vec<u8>,
    /// Whether the last element was created by this resolution.
    pub created: bool,
}

/// What to do about missing directories.
#[derive(Clone, Copy)]
pub(crate) enum Missing {
    /// Report `Ok(None)`.
    Stop,
    /// Create them (mode 0755) owned by this uid/gid.
    Create(u32, u32),
}

/// Resolves `path` (absolute or not, always taken from `root`) to a
/// directory. A non-directory on the way is `ENOTDIR`.
pub(crate) fn resolve_dir(
    root: BorrowedFd,
    path: &[u8],
    missing: Missing,
) -> io::Result<Option<Dir>> {
    // Elements still to walk, next one last.
    let mut todo: Vec<Vec<u8>> = elements(path).rev().map(<[u8]>::to_vec).collect();
    let mut real: Vec<Vec<u8>> = Vec::new();
    let mut fd = open_root(root)?;
    let mut links = 0;
    let mut created = false;
    while let Some(name) = todo.pop() {
        created = false;
        if name == b".." {
            real.pop();
            fd = fsops::open_beneath(root, &real.join(&b'/'), OFlags::PATH | OFlags::DIRECTORY)?;
            continue;
        }
        match fsops::lstat_at(fd.as_fd(), &name)? {
            None => {
                let Missing::Create(uid, gid) = missing else {
                    return Ok(None);
                };
                make_dir(fd.as_fd(), &name, 0o755, uid, gid)?;
                created = true;
            }
            Some(st) if fsops::file_type(&st) == FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = fs::readlinkat(fd.as_fd(), name.as_slice(), Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    real.clear();
                    fd = open_root(root)?;
                }
                todo.extend(elements(target).rev().map(<[u8]>::to_vec));
                continue;
            }
            Some(st) if !fsops::is_dir(&st) => return Err(Errno::NOTDIR.into()),
            Some(_) => {}
        }
        fd = fsops::open_child_dir(fd.as_fd(), &name)?;
        real.push(name);
    }
    Ok(Some(Dir {
        fd,
        real: real.join(&b'/'),
        created,
    }))
}

fn open_root(root: BorrowedFd) -> io::Result<OwnedFd> {
    fsops::open_beneath(root, b".", OFlags::PATH | OFlags::DIRECTORY)
}

/// Creates directory `name` in `dir` with exactly `mode` (whatever the
/// umask) and owner.
pub(crate) fn make_dir(
    dir: BorrowedFd,
    name: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> io::Result<()> {
    fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
    fsops::chown_at(dir, name, uid.into(), gid.into())?;
    fsops::chmod_at(dir, name, mode)
}

/// The path's elements, without empty ones and `.`.
pub(crate) fn elements(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|e| !e.is_empty() && *e != b".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        let rootfd = fsops::open_dir(&root).unwrap();
        let d = resolve_dir(rootfd.as_fd(), b"/abs", Missing::Stop)
            .unwrap()
            .unwrap();
        assert_eq!(d.real, b"etc");
        let d = resolve_dir(rootfd.as_fd(), b"up/x/y", Missing::Create(0, 0))
            .unwrap()
            .unwrap();
        assert_eq!(d.real, b"x/y");
        assert!(d.created);
        assert!(root.join("x/y").is_dir());
        assert!(
            resolve_dir(rootfd.as_fd(), b"nope", Missing::Stop)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn symlink_loops_end() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        let rootfd = fsops::open_dir(tmp.path()).unwrap();
        let err = resolve_dir(rootfd.as_fd(), b"a/x", Missing::Stop)
            .err()
            .unwrap();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }
}
