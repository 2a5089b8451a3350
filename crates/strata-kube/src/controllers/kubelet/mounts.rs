//! The mount work behind pod volumes: what is mounted where (from
//! `/proc/self/mountinfo`), tmpfs for memory-backed emptyDirs, bind mounts
//! of subPaths, unmounting, and opening a subPath inside its volume
//! without letting a symlink lead out of it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

/// Every mount point of this process's mount namespace.
fn mount_points() -> io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect())
}

/// mountinfo writes space, tab, newline and backslash in a path as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(digits) if bytes[i] == b'\\' => {
                let value = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` as mountinfo names it: absolute, with symlinks resolved.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let path = canonical(path);
    Ok(mount_points()?.contains(&path))
}

/// The mount points at or below `dir`, deepest first (the order to
/// unmount them in).
pub fn mounts_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = canonical(dir);
    let mut below: Vec<PathBuf> = mount_points()?
        .into_iter()
        .filter(|p| p.starts_with(&dir))
        .collect();
    below.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    below.dedup();
    Ok(below)
}

/// Mounts a tmpfs on `target`, limited to `size` bytes if given.
pub fn mount_tmpfs(target: &Path, size: Option<u64>) -> io::Result<()> {
    let data = size.map(|bytes| CString::new(format!("size={bytes}")).expect("digits have no NUL"));
    rustix::mount::mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_deref(),
    )?;
    Ok(())
}

/// Bind-mounts what `source` (an open file descriptor) is on `target`:
/// through the descriptor, so what was checked is what gets mounted even
/// if the path is swapped meanwhile.
pub fn bind_fd(source: &OwnedFd, target: &Path) -> io::Result<()> {
    let through = format!("/proc/self/fd/{}", source.as_raw_fd());
    rustix::mount::mount_bind(through.as_str(), target)?;
    Ok(())
}

/// Unmounts `target`; lazily if something still holds it.
pub fn unmount(target: &Path) -> io::Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::BUSY) => Ok(rustix::mount::unmount(target, UnmountFlags::DETACH)?),
        Err(e) => Err(e.into()),
    }
}

/// Opens `sub` (relative) inside the folder `root`, making the folders
/// that are missing (mode 0755), as the kubelet does for subPaths. Every
/// step resolves inside `root`: a symlink planted in the volume, absolute
/// or full of `..`, cannot lead out of it.
pub fn open_subpath(root: &Path, sub: &str) -> io::Result<OwnedFd> {
    let root = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut walked = String::from(".");
    for part in sub.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let next = format!("{walked}/{part}");
        match open_in(&root, &next) {
            Ok(_) => {}
            Err(Errno::NOENT) => {
                let parent = open_in(&root, &walked)?;
                match rustix::fs::mkdirat(&parent, part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        walked = next;
    }
    Ok(open_in(&root, &walked)?)
}

fn open_in(root: &impl AsFd, path: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Makes what a bind mount of `source` can be mounted on at `target`: a
/// folder for a folder, an empty file for anything else.
pub fn make_target_for(source: &OwnedFd, target: &Path) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let kind = rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(source)?.st_mode);
    let is_dir = kind == rustix::fs::FileType::Directory;
    let made = if is_dir {
        std::fs::create_dir(target)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map(drop)
    };
    match made {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(field: &str, expected: &str) {
        assert_eq!(unescape(field), expected, "{field}");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        check("/plain/path", "/plain/path");
        check(r"/with\040space", "/with space");
        check(r"/tab\011and\012newline", "/tab\tand\nnewline");
        check(r"/back\134slash", r"/back\slash");
        // Not an escape: left as it is.
        check(r"/odd\9x", r"/odd\9x");
        check(r"/end\04", r"/end\04");
    }

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
            let fd = open_subpath(volume.path(), sub).map_err(|e| e.kind())?;
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
