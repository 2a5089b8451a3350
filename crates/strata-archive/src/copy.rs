//! Faithful copies of files and trees: content (reflinked where the
//! filesystem can, else copied in the kernel), owner, mode, xattrs, times,
//! device numbers and hardlinks.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;

use crate::fsops;

/// Totals of a tree copy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub bytes: u64,
    pub reflinked: bool,
}

/// Copies `src` (a tree we own) into the empty directory `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<CopyStats> {
    copy_tree_from(fsops::open_dir(src)?.as_fd(), dst)
}

/// Copies the tree under the open directory `src` into the empty directory
/// `dst`. Nothing below `src` is followed: symlinks are copied as links, so
/// a tree someone else controls (a container's) cannot lead the copy out.
pub fn copy_tree_from(src: BorrowedFd, dst: &Path) -> io::Result<CopyStats> {
    copy_tree_between(src, fsops::open_dir(dst)?.as_fd())
}

/// Copies the tree under `src` into the empty directory `dst`, both open
/// directories: every step is relative to them, nothing is followed.
pub fn copy_tree_between(src: BorrowedFd, dst: BorrowedFd) -> io::Result<CopyStats> {
    let src = src.try_clone_to_owned()?;
    let dst = dst.try_clone_to_owned()?;
    let root_stat = fs::fstat(&src)?;
    copy_meta(src.as_fd(), b".", &root_stat, dst.as_fd(), b".")?;
    let mut walk = Walk {
        dst_root: dst.try_clone()?,
        links: HashMap::new(),
        stats: CopyStats::default(),
    };
    walk.dir(src.as_fd(), dst.as_fd(), Vec::new())?;
    fsops::set_times_at(
        dst.as_fd(),
        b".",
        fsops::stat_mtime(&root_stat),
        Some(atime(&root_stat)),
    )?;
    Ok(walk.stats)
}

struct Walk {
    dst_root: OwnedFd,
    /// (dev, ino) of multiply-linked files already copied -> their new path.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: CopyStats,
}

impl Walk {
    fn dir(&mut self, src: BorrowedFd, dst: BorrowedFd, real: Vec<u8>) -> io::Result<()> {
        for name in fsops::read_dir_names(src)? {
            let Some(st) = fsops::lstat_at(src, &name)? else {
                continue;
            };
            let path = fsops::join(&real, &name);
            if fsops::is_dir(&st) {
                fs::mkdirat(dst, &name[..], Mode::from_raw_mode(0o700))?;
                copy_meta(src, &name, &st, dst, &name)?;
                let s = fsops::open_child_dir(src, &name)?;
                let d = fsops::open_child_dir(dst, &name)?;
                self.dir(s.as_fd(), d.as_fd(), path)?;
                fsops::set_times_at(dst, &name, fsops::stat_mtime(&st), Some(atime(&st)))?;
                continue;
            }
            if st.st_nlink > 1 && fsops::file_type(&st) != FileType::Directory {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = self.links.get(&key) {
                    fs::linkat(
                        self.dst_root.as_fd(),
                        &first[..],
                        dst,
                        &name[..],
                        AtFlags::empty(),
                    )?;
                    continue;
                }
                self.links.insert(key, path.clone());
            }
            let reflinked = copy_entry(src, &name, &st, dst, &name)?;
            self.stats.files += 1;
            if fsops::file_type(&st) == FileType::RegularFile {
                self.stats.bytes += st.st_size as u64;
                self.stats.reflinked |= reflinked;
            }
        }
        Ok(())
    }
}

fn atime(st: &Stat) -> crate::tarstream::Time {
    crate::tarstream::Time {
        sec: st.st_atime,
        nsec: st.st_atime_nsec as u32,
    }
}

/// Copies one non-directory entry with its metadata. Returns whether the
/// content was reflinked.
pub fn copy_entry(
    src: BorrowedFd,
    src_name: &[u8],
    st: &Stat,
    dst: BorrowedFd,
    dst_name: &[u8],
) -> io::Result<bool> {
    let mut reflinked = false;
    match fsops::file_type(st) {
        FileType::RegularFile => {
            let from = fs::openat(
                src,
                src_name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let to = fs::openat(
                dst,
                dst_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            reflinked = copy_content(&from, &to, st.st_size as u64)?;
        }
        FileType::Symlink => {
            let target = fs::readlinkat(src, src_name, Vec::new())?;
            fs::symlinkat(target.as_bytes(), dst, dst_name)?;
        }
        kind @ (FileType::CharacterDevice
        | FileType::BlockDevice
        | FileType::Fifo
        | FileType::Socket) => {
            fs::mknodat(dst, dst_name, kind, Mode::from_raw_mode(0o600), st.st_rdev)?;
        }
        FileType::Directory | FileType::Unknown => {
            return Err(io::Error::other(format!(
                "cannot copy '{}': not a file",
                String::from_utf8_lossy(src_name)
            )));
        }
    }
    copy_meta(src, src_name, st, dst, dst_name)?;
    fsops::set_times_at(dst, dst_name, fsops::stat_mtime(st), Some(atime(st)))?;
    Ok(reflinked)
}

/// Reflink, else in-kernel copy, else a plain read/write loop.
fn copy_content(from: &OwnedFd, to: &OwnedFd, len: u64) -> io::Result<bool> {
    if len > 0 {
        match fs::ioctl_ficlone(to, from) {
            Ok(()) => return Ok(true),
            Err(Errno::OPNOTSUPP | Errno::XDEV | Errno::INVAL | Errno::NOTTY | Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut left = len;
    while left > 0 {
        match fs::copy_file_range(from, None, to, None, left.min(1 << 30) as usize) {
            Ok(0) => break,
            Ok(n) => left -= n as u64,
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                let mut r = File::from(from.try_clone()?);
                let mut w = File::from(to.try_clone()?);
                io::copy(&mut r, &mut w)?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Owner, mode (not for symlinks) and xattrs from a source entry.
fn copy_meta(
    src: BorrowedFd,
    src_name: &[u8],
    st: &Stat,
    dst: BorrowedFd,
    dst_name: &[u8],
) -> io::Result<()> {
    fsops::chown_at(dst, dst_name, st.st_uid as u64, st.st_gid as u64)?;
    if fsops::file_type(st) != FileType::Symlink {
        fsops::chmod_at(dst, dst_name, st.st_mode & 0o7777)?;
    }
    for (key, value) in fsops::xattrs_at(src, src_name)? {
        fsops::set_xattr_at(dst, dst_name, &key, &value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    #[test]
    fn copies_content_modes_links_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::create_dir_all(src.join("d/e")).unwrap();
        std::fs::write(src.join("d/file"), b"content").unwrap();
        std::fs::set_permissions(src.join("d/file"), std::fs::Permissions::from_mode(0o4751))
            .unwrap();
        std::fs::hard_link(src.join("d/file"), src.join("hard")).unwrap();
        symlink("d/file", src.join("link")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        let stats = copy_tree(&src, &dst).unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(std::fs::read(dst.join("d/file")).unwrap(), b"content");
        let m = std::fs::metadata(dst.join("d/file")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4751);
        assert_eq!(m.nlink(), 2);
        assert_eq!(m.ino(), std::fs::metadata(dst.join("hard")).unwrap().ino());
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("d/file")
        );
        assert_eq!(
            std::fs::metadata(src.join("d")).unwrap().mtime(),
            std::fs::metadata(dst.join("d")).unwrap().mtime()
        );
    }
}
