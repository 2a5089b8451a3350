//! The mount work behind pod volumes: what is mounted where (from
//! `/proc/self/mountinfo`), tmpfs for memory-backed emptyDirs, mount
//! points for subPaths, unmounting. A subPath is opened inside its volume
//! and bound through its fd by `strata_archive::fsops`.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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

/// Unmounts `target`; lazily if something still holds it.
pub fn unmount(target: &Path) -> io::Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::BUSY) => Ok(rustix::mount::unmount(target, UnmountFlags::DETACH)?),
        Err(e) => Err(e.into()),
    }
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
}
