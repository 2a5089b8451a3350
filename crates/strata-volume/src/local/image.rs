//! Sized volumes on hosts without project quotas: a sparse image file of
//! the volume's size holding its own filesystem, so writing past the size
//! fails with ENOSPC whatever the host's filesystem is.
//!
//! The image is made under a temporary name and renamed into place only
//! once formatted, so an interrupted create never leaves an image that
//! looks usable. ext4 is formatted with its journal (a crash of the host
//! never needs an fsck before the next mount) and without reserved
//! blocks; discard stays on because on a fresh sparse file it is free and
//! lets mkfs mark the inode tables zeroed, so the kernel does not write
//! them after the first mount. `lost+found` is removed with `debugfs`
//! (best effort: it is cosmetic, and e2fsck makes it again when needed),
//! so a container sees an empty volume, as with a plain one.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::command::run;
use super::error::{LocalError, Result, io_err};
use super::loopdev;
use super::mount::mount_device;
use super::options::Fs;

/// The image's name in the volume's folder.
pub const IMAGE: &str = "disk.img";
const TEMP: &str = "disk.img.tmp";
/// The smallest filesystem current mkfs.xfs makes.
const XFS_MIN: u64 = 300 << 20;
/// Mount options: give freed blocks back to the host (the loop device
/// punches holes in the image), so the image only takes what is used.
const OPTIONS: &str = "discard";

/// Makes `<folder>/disk.img`: `size` bytes, formatted with `fs`.
pub fn make(folder: &Path, size: u64, fs: Fs) -> Result<()> {
    let temp = folder.join(TEMP);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(io_err("creating", &temp))?;
    file.set_len(size).map_err(io_err("sizing", &temp))?;
    drop(file);
    format(&temp, size, fs)?;
    let image = folder.join(IMAGE);
    std::fs::rename(&temp, &image).map_err(io_err("renaming into place", &image))
}

fn format(image: &Path, size: u64, fs: Fs) -> Result<()> {
    match fs {
        Fs::Ext4 => {
            run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0", "-E"])
                .arg("lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0")
                .arg(image))?;
            remove_lost_found(image);
            Ok(())
        }
        Fs::Xfs => mkfs_xfs(image, size),
        Fs::Raw => Ok(()),
    }
}

fn mkfs_xfs(image: &Path, size: u64) -> Result<()> {
    match run(Command::new("mkfs.xfs").arg("-q").arg(image)) {
        Err(LocalError::Command {
            command,
            status,
            mut stderr,
        }) if size < XFS_MIN => {
            stderr.push_str("; use size=300M or more, or fs=ext4");
            Err(LocalError::Command {
                command,
                status,
                stderr,
            })
        }
        other => other,
    }
}

pub(super) fn remove_lost_found(image: &Path) {
    let _ = Command::new("debugfs")
        .args(["-w", "-R", "rmdir lost+found"])
        .arg(image)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Mounts `image` (formatted with `fs`) on `target`.
///
/// If a loop device still holds the image (a busy mount that an earlier
/// unmount could only detach), that device is mounted again: the kernel
/// then shares its filesystem, where a second device would mount the same
/// filesystem twice and corrupt it.
pub fn mount(image: &Path, fs: Fs, target: &Path) -> Result<()> {
    let held =
        loopdev::backed_by(image).map_err(io_err("looking for the loop device of", image))?;
    if let Some(device) = held {
        return mount_device(&device, fs.as_str(), OPTIONS, target);
    }
    let flags = loopdev::Flags {
        autoclear: true,
        read_only: false,
    };
    let attached =
        loopdev::attach(image, flags).map_err(io_err("attaching a loop device to", image))?;
    mount_device(&attached.path, fs.as_str(), OPTIONS, target)
    // `attached` closes here: the mount holds the device now, and
    // autoclear frees it when the mount goes.
}
