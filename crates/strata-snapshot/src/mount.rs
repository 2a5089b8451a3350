//! Performing a [`Mount`] description: the one place Strata mounts a
//! snapshot.
//!
//! overlayfs goes through the new mount API (`fsopen`/`fsconfig`/`fsmount`)
//! and adds lower layers one `lowerdir+` at a time (Linux 6.8+), so a stack
//! is not limited by the one-page option string of `mount(2)`: 200 layers
//! mount, up to the kernel's 500. Older kernels get `mount(2)` while the
//! options fit in a page.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount,
};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::Mount;

/// Options every overlay mount gets: no inode index, no redirects and no
/// metacopy, so an upper directory is always a plain, complete diff.
const OVERLAY_OPTIONS: &[(&str, &str)] = &[
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

#[derive(Debug, thiserror::Error)]
#[error("mounting {what} at {target}: {source}{detail}")]
pub struct MountError {
    what: &'static str,
    target: PathBuf,
    source: io::Error,
    /// What the kernel said about it, if anything.
    detail: String,
}

/// A mounted snapshot; unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
    mounted: bool,
}

impl Mounted {
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting failure.
    pub fn unmount(mut self) -> io::Result<()> {
        self.mounted = false;
        unmount(&self.target)
    }

    /// Leaves it mounted (for a container whose rootfs outlives us).
    pub fn keep(mut self) -> PathBuf {
        self.mounted = false;
        self.target.clone()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.target);
        }
    }
}

/// Unmounts `target` (detaching it if busy); nothing to do if it is not
/// mounted, or not there at all.
pub fn unmount(target: &Path) -> io::Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Mounts `mounts` (one description, as our drivers return) at `target`.
pub fn mount(mounts: &[Mount], target: &Path) -> Result<Mounted, MountError> {
    mount_with(mounts, target, false)
}

/// Like [`mount`], for a writable layer that is thrown away after one run
/// (`run --rm`): overlay gets `volatile`, so it never syncs its upper
/// directory, and unmounting it does not wait for a flush of the host
/// filesystem. After a host crash such an upper may not mount again, which
/// is nothing lost for a layer that was to be removed.
pub fn mount_scratch(mounts: &[Mount], target: &Path) -> Result<Mounted, MountError> {
    mount_with(mounts, target, true)
}

fn mount_with(mounts: &[Mount], target: &Path, volatile: bool) -> Result<Mounted, MountError> {
    let [m] = mounts else {
        return Err(MountError {
            what: "snapshot",
            target: target.to_owned(),
            source: io::Error::other(format!("expected one mount, got {}", mounts.len())),
            detail: String::new(),
        });
    };
    match m {
        Mount::Bind { source, readonly } => bind(source, *readonly, target),
        Mount::Overlay {
            lowers,
            upper,
            work,
        } => overlay(
            lowers,
            upper.as_deref().zip(work.as_deref()),
            volatile,
            target,
        ),
    }
    .map(|()| Mounted {
        target: target.to_owned(),
        mounted: true,
    })
}

fn bind(source: &Path, readonly: bool, target: &Path) -> Result<(), MountError> {
    let err = |source: Errno| MountError {
        what: "bind",
        target: target.to_owned(),
        source: source.into(),
        detail: String::new(),
    };
    rustix::mount::mount_bind(source, target).map_err(err)?;
    if readonly {
        let ro = rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "");
        if let Err(e) = ro {
            let _ = unmount(target);
            return Err(err(e));
        }
    }
    Ok(())
}

/// The upper and work directories of a writable overlay.
type Upper<'a> = Option<(&'a Path, &'a Path)>;

/// The options an overlay gets besides its directories.
fn overlay_options(volatile: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    let extra = volatile.then_some(("volatile", ""));
    OVERLAY_OPTIONS.iter().copied().chain(extra)
}

fn overlay(
    lowers: &[PathBuf],
    upper: Upper,
    volatile: bool,
    target: &Path,
) -> Result<(), MountError> {
    let volatile = volatile && upper.is_some();
    match overlay_fsconfig(lowers, upper, volatile, target) {
        Ok(()) => Ok(()),
        Err(Fsconfig::NoLowerdirPlus) => overlay_legacy(lowers, upper, volatile, target),
        Err(Fsconfig::Failed(e)) => Err(e),
    }
}

enum Fsconfig {
    /// The kernel predates `lowerdir+` (Linux 6.8).
    NoLowerdirPlus,
    Failed(MountError),
}

/// Reads what the kernel logged on a filesystem context, for error messages.
fn kernel_log(fs: &OwnedFd) -> String {
    let mut out = String::new();
    let mut file = std::fs::File::from(fs.try_clone().expect("dup"));
    let mut buf = [0u8; 1024];
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(" (kernel: ");
        out.push_str(String::from_utf8_lossy(&buf[..n]).trim());
        out.push(')');
    }
    out
}

fn overlay_fsconfig(
    lowers: &[PathBuf],
    upper: Upper,
    volatile: bool,
    target: &Path,
) -> Result<(), Fsconfig> {
    let fail = |what: &'static str, fs: Option<&OwnedFd>, source: Errno| {
        Fsconfig::Failed(MountError {
            what,
            target: target.to_owned(),
            source: source.into(),
            detail: fs.map(kernel_log).unwrap_or_default(),
        })
    };
    let fs =
        fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| fail("overlay", None, e))?;
    for (i, lower) in lowers.iter().enumerate() {
        match fsconfig_set_string(&fs, "lowerdir+", lower) {
            Ok(()) => {}
            Err(Errno::INVAL) if i == 0 && kernel_log(&fs).contains("lowerdir+") => {
                return Err(Fsconfig::NoLowerdirPlus);
            }
            Err(e) => return Err(fail("overlay", Some(&fs), e)),
        }
    }
    if let Some((upper, work)) = upper {
        fsconfig_set_string(&fs, "upperdir", upper).map_err(|e| fail("overlay", Some(&fs), e))?;
        fsconfig_set_string(&fs, "workdir", work).map_err(|e| fail("overlay", Some(&fs), e))?;
    }
    for (key, value) in overlay_options(volatile) {
        let set = if value.is_empty() {
            rustix::mount::fsconfig_set_flag(&fs, key)
        } else {
            fsconfig_set_string(&fs, key, value)
        };
        set.map_err(|e| fail("overlay", Some(&fs), e))?;
    }
    fsconfig_create(&fs).map_err(|e| fail("overlay", Some(&fs), e))?;
    let attrs = if upper.is_none() {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| fail("overlay", Some(&fs), e))?;
    move_mount(
        mnt.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("overlay", Some(&fs), e))
}

fn overlay_legacy(
    lowers: &[PathBuf],
    upper: Upper,
    volatile: bool,
    target: &Path,
) -> Result<(), MountError> {
    let joined: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let mut data = format!("lowerdir={}", joined.join(":"));
    if let Some((upper, work)) = upper {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    for (key, value) in overlay_options(volatile) {
        data.push(',');
        data.push_str(key);
        if !value.is_empty() {
            data.push('=');
            data.push_str(value);
        }
    }
    let err = |source: io::Error, detail: String| MountError {
        what: "overlay",
        target: target.to_owned(),
        source,
        detail,
    };
    if data.len() >= 4096 {
        return Err(err(
            io::Error::other(format!("{} layers do not fit in one mount(2) call", lowers.len())),
            "; this kernel lacks overlay's lowerdir+ (Linux 6.8+): use fewer layers or a newer kernel".into(),
        ));
    }
    let flags = if upper.is_none() {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    let data = std::ffi::CString::new(data).map_err(|e| err(io::Error::other(e), String::new()))?;
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str())
        .map_err(|e| err(e.into(), String::new()))
}

/// Whether something is mounted exactly at `target` (per this process's
/// mount table; mounts made by another `strata` run show up here too).
pub fn is_mounted(target: &Path) -> io::Result<bool> {
    let target = match target.canonicalize() {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    strata_store::fsutil::is_mount_point(&target)
}

/// Mount points at or under `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut points = mount_points()?;
    points.retain(|p| p.starts_with(dir));
    Ok(points)
}

/// Every mount point in this process's mount table, in mount order.
fn mount_points() -> io::Result<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStringExt;
    let table = std::fs::read("/proc/self/mountinfo")?;
    Ok(table
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|point| std::ffi::OsString::from_vec(unescape_mountinfo(point)).into())
        .collect())
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unescape_mountinfo;

    #[test]
    fn mountinfo_escapes() {
        let check = |input: &[u8], expected: &[u8]| assert_eq!(unescape_mountinfo(input), expected);
        check(b"/plain", b"/plain");
        check(b"/a\\040b", b"/a b");
        check(b"/tab\\011x\\134", b"/tab\tx\\");
        check(b"/not\\9x", b"/not\\9x");
    }
}
