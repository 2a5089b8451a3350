//! File-descriptor-based filesystem operations.
//!
//! Everything that touches a tree we do not fully trust (a layer being
//! extracted, a container rootfs) goes through these: a path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` so `..` and symlinks are clamped to the root,
//! and every create, remove or change happens with `*at()` calls on a single
//! name inside an already-resolved directory fd. No path string is ever
//! joined and then handed to the kernel.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;
use std::io;
use std::path::Path;

use crate::tarstream::Time;

/// Opens a directory we own (a store path) as an `O_PATH` handle.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Resolves `rel` inside `root` as if `root` were `/`, and opens it.
pub fn open_in_root(root: BorrowedFd, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    Ok(fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Opens `sub` (relative) inside the folder `root` as an `O_PATH` handle
/// with `flags` (`O_DIRECTORY`: it must be a folder), making the folders
/// that are missing (mode 0755): a volume subpath, for a container or a
/// pod. Every step resolves inside `root`, so a symlink planted there,
/// absolute or full of `..`, cannot lead out of it.
pub fn open_making_folders(root: &Path, sub: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let root = open_dir(root)?;
    let mut walked = String::from(".");
    for part in sub.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let next = format!("{walked}/{part}");
        match open_in_root(root.as_fd(), next.as_bytes(), OFlags::PATH) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = open_in_root(root.as_fd(), walked.as_bytes(), OFlags::PATH)?;
                match fs::mkdirat(&parent, part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e),
        }
        walked = next;
    }
    open_in_root(root.as_fd(), walked.as_bytes(), OFlags::PATH | flags)
}

/// Bind-mounts what `source` (an open file descriptor) is on `target`:
/// through the descriptor, so what was checked is what gets mounted even
/// if the path is swapped meanwhile.
pub fn bind_fd(source: BorrowedFd, target: &Path) -> io::Result<()> {
    let through = format!("/proc/self/fd/{}", source.as_raw_fd());
    rustix::mount::mount_bind(through.as_str(), target)?;
    Ok(())
}

/// Opens `rel` strictly beneath `root`, following no symlinks at all: for
/// paths we recorded ourselves as real paths.
pub fn open_beneath(root: BorrowedFd, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    Ok(fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Opens the directory `name` in `dir` without following a symlink.
pub fn open_child_dir(dir: BorrowedFd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` in `dir`; `None` if it does not exist.
pub fn lstat_at(dir: BorrowedFd, name: &[u8]) -> io::Result<Option<Stat>> {
    match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

pub fn is_dir(st: &Stat) -> bool {
    file_type(st) == FileType::Directory
}

/// An overlayfs whiteout: a character device with device number 0/0.
pub fn is_whiteout(st: &Stat) -> bool {
    file_type(st) == FileType::CharacterDevice && st.st_rdev == 0
}

pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The magic `/proc` path naming `name` inside an open directory; used only
/// for the `l*xattr` calls, which have no `*at` form.
pub fn proc_path(dir: BorrowedFd, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    p
}

/// The real path of an open fd, as the kernel knows it.
pub fn real_path(fd: BorrowedFd) -> io::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    Ok(link.as_os_str().as_bytes().to_vec())
}

/// Names in a directory, sorted (so walks and tars are deterministic).
pub fn read_dir_names(dir: BorrowedFd) -> io::Result<Vec<Vec<u8>>> {
    Ok(read_dir_entries(dir)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Names in a directory with the type `getdents` reports for each (which
/// may be `Unknown` on some filesystems), sorted by name.
pub fn read_dir_entries(dir: BorrowedFd) -> io::Result<Vec<(Vec<u8>, FileType)>> {
    let fd = fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    let mut d = fs::Dir::read_from(&fd)?;
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push((name.to_vec(), entry.file_type()));
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Extended attributes of `name` in `dir` (not following a symlink).
pub fn xattrs_at(dir: BorrowedFd, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let path = proc_path(dir, name);
    let mut list = vec![0u8; 1024];
    let len = loop {
        match fs::llistxattr(&path[..], &mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => list.resize(list.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for key in list[..len].split(|&b| b == 0).filter(|k| !k.is_empty()) {
        if let Some(value) = get_xattr_path(&path, key)? {
            out.push((key.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

fn get_xattr_path(path: &[u8], key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut value = vec![0u8; 256];
    loop {
        match fs::lgetxattr(path, key, &mut value[..]) {
            Ok(n) => {
                value.truncate(n);
                return Ok(Some(value));
            }
            Err(Errno::RANGE) => value.resize(value.len() * 4, 0),
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One extended attribute of `name` in `dir`, if set.
pub fn xattr_at(dir: BorrowedFd, name: &[u8], key: &str) -> io::Result<Option<Vec<u8>>> {
    get_xattr_path(&proc_path(dir, name), key.as_bytes())
}

pub fn set_xattr_at(dir: BorrowedFd, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(fs::lsetxattr(
        &proc_path(dir, name)[..],
        key,
        value,
        fs::XattrFlags::empty(),
    )?)
}

/// Sets an xattr on the object an fd (even an `O_PATH` one) refers to.
pub fn set_xattr_fd(fd: BorrowedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(fs::setxattr(&path, key, value, fs::XattrFlags::empty())?)
}

pub fn timespec(t: Time) -> Timespec {
    Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec as _,
    }
}

pub fn stat_mtime(st: &Stat) -> Time {
    Time {
        sec: st.st_mtime,
        nsec: st.st_mtime_nsec as u32,
    }
}

/// Sets atime and mtime of `name` in `dir` without following a symlink.
pub fn set_times_at(
    dir: BorrowedFd,
    name: &[u8],
    mtime: Time,
    atime: Option<Time>,
) -> io::Result<()> {
    let times = Timestamps {
        last_access: timespec(atime.unwrap_or(mtime)),
        last_modification: timespec(mtime),
    };
    let name: &[u8] = if name.is_empty() { b"." } else { name };
    Ok(fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?)
}

pub fn set_times_fd(fd: BorrowedFd, mtime: Time, atime: Option<Time>) -> io::Result<()> {
    let times = Timestamps {
        last_access: timespec(atime.unwrap_or(mtime)),
        last_modification: timespec(mtime),
    };
    Ok(fs::futimens(fd, &times)?)
}

/// Sets owner of `name` in `dir` (not following a symlink).
pub fn chown_at(dir: BorrowedFd, name: &[u8], uid: u64, gid: u64) -> io::Result<()> {
    let name: &[u8] = if name.is_empty() { b"." } else { name };
    let (uid, gid) = ids(uid, gid)?;
    Ok(fs::chownat(
        dir,
        name,
        Some(uid),
        Some(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

pub fn chown_fd(fd: BorrowedFd, uid: u64, gid: u64) -> io::Result<()> {
    let (uid, gid) = ids(uid, gid)?;
    Ok(fs::fchown(fd, Some(uid), Some(gid))?)
}

fn ids(uid: u64, gid: u64) -> io::Result<(rustix::fs::Uid, rustix::fs::Gid)> {
    let uid =
        u32::try_from(uid).map_err(|_| io::Error::other(format!("uid {uid} is out of range")))?;
    let gid =
        u32::try_from(gid).map_err(|_| io::Error::other(format!("gid {gid} is out of range")))?;
    Ok((
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    ))
}

/// Sets permission bits of `name` in `dir`, which must not be a symlink
/// (Linux cannot chmod a symlink; callers skip them).
pub fn chmod_at(dir: BorrowedFd, name: &[u8], mode: u32) -> io::Result<()> {
    let name: &[u8] = if name.is_empty() { b"." } else { name };
    Ok(fs::chmodat(
        dir,
        name,
        Mode::from_raw_mode(mode),
        AtFlags::empty(),
    )?)
}

/// What [`remove_all_at`] is about to delete.
pub struct Removal<'a> {
    /// Path relative to the directory the removal started in.
    pub rel: &'a [u8],
    pub dir: BorrowedFd<'a>,
    pub name: &'a [u8],
    pub stat: &'a Stat,
}

/// Removes `name` in `dir` and, if it is a directory, everything below it,
/// never following a symlink. `before` sees every entry before it goes.
pub fn remove_all_at(
    dir: BorrowedFd,
    name: &[u8],
    before: &mut dyn FnMut(&Removal) -> io::Result<()>,
) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    remove_tree(dir, name, name, &st, before)
}

fn remove_tree(
    dir: BorrowedFd,
    name: &[u8],
    rel: &[u8],
    st: &Stat,
    before: &mut dyn FnMut(&Removal) -> io::Result<()>,
) -> io::Result<()> {
    before(&Removal {
        rel,
        dir,
        name,
        stat: st,
    })?;
    if is_dir(st) {
        let child_dir = open_child_dir(dir, name)?;
        for child in read_dir_names(child_dir.as_fd())? {
            if let Some(cst) = lstat_at(child_dir.as_fd(), &child)? {
                let mut child_rel = rel.to_vec();
                child_rel.push(b'/');
                child_rel.extend_from_slice(&child);
                remove_tree(child_dir.as_fd(), &child, &child_rel, &cst, before)?;
            }
        }
        fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// Makes a whiteout (char device 0/0) named `name` in `dir`.
pub fn mknod_whiteout(dir: BorrowedFd, name: &[u8]) -> io::Result<()> {
    Ok(fs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )?)
}

/// Flushes everything written to the filesystem holding `fd`.
/// Flushes the whole filesystem holding `path` (one call instead of an fsync
/// per extracted file). syncfs needs a real descriptor, not an O_PATH one.
pub fn syncfs_of(path: &Path) -> io::Result<()> {
    let fd = fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fs::syncfs(&fd)?)
}

/// Starts writeback of a file's dirty pages without waiting for it, so the
/// disk works while extraction goes on and the final `syncfs` has less left
/// to wait for. Advisory: failure only loses the head start.
pub fn start_writeback(fd: BorrowedFd) {
    // SAFETY: plain syscall on a valid descriptor; no memory is passed.
    unsafe {
        libc::sync_file_range(fd.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Joins a real relative path and a name ("" is the root).
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    p.extend_from_slice(parent);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// Disk space (allocated bytes) and inodes used by a tree we own, counting
/// hardlinked files once.
pub fn disk_usage(root: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let m = entry.metadata()?;
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            bytes += m.blocks() * 512;
            inodes += 1;
            if m.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    Ok((bytes, inodes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn subpaths_stay_inside_their_volume() {
        let volume = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host").unwrap();
        // Symlinks a container could plant: out by `..`, and absolute.
        std::os::unix::fs::symlink("../../..", volume.path().join("up")).unwrap();
        std::os::unix::fs::symlink(outside.path(), volume.path().join("abs")).unwrap();
        std::fs::create_dir(volume.path().join("real")).unwrap();
        std::fs::write(volume.path().join("real/file"), b"in volume").unwrap();
        let inside = volume.path().canonicalize().unwrap();
        let resolved = |sub: &str| {
            let fd =
                open_making_folders(volume.path(), sub, OFlags::empty()).map_err(|e| e.kind())?;
            Ok(std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap())
        };
        let check = |sub: &str, expected: Result<PathBuf, io::ErrorKind>| {
            assert_eq!(resolved(sub), expected, "{sub}");
        };
        // What is missing is made, as folders.
        check("new/deeper", Ok(inside.join("new/deeper")));
        assert!(volume.path().join("new/deeper").is_dir());
        check("./real//file", Ok(inside.join("real/file")));
        // `..` stops at the volume's top.
        check("up/secret", Ok(inside.join("secret")));
        // An absolute link resolves as if the volume were `/`, where it
        // leads nowhere.
        check("abs/x", Err(io::ErrorKind::NotFound));
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"host"
        );
        assert!(!outside.path().join("x").exists());
    }
}
