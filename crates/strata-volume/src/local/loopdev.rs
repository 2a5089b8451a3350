//! Loop devices for volume images, without `losetup`: a free device from
//! `/dev/loop-control`, configured in one `LOOP_CONFIGURE`. A device under
//! a mount has autoclear, so the kernel frees it when its last user (the
//! mount) goes; a raw block volume's device has no user that holds it
//! open, so it stays until detached.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_CAPACITY: libc::c_ulong = 0x4C07;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;
/// Tries before giving up when other processes keep taking the free device.
const ATTEMPTS: usize = 32;

/// `struct loop_info64` (linux/loop.h).
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    size_limit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` (linux/loop.h).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

/// A loop device we configured, held open until its user (a mount) has it.
pub struct Attached {
    _device: File,
    pub path: PathBuf,
}

/// How a loop device is attached.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// Freed by the kernel when its last user goes.
    pub autoclear: bool,
    pub read_only: bool,
}

/// Attaches `image` to a free loop device.
pub fn attach(image: &Path, flags: Flags) -> io::Result<Attached> {
    let backing = OpenOptions::new()
        .read(true)
        .write(!flags.read_only)
        .open(image)?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let config = config_for(&backing, image, flags);
    let mut last = io::Error::other("no attempt made");
    for _ in 0..ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument.
        let n = cvt(unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) })?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        match configure(&path, &config) {
            Ok(device) => {
                return Ok(Attached {
                    _device: device,
                    path,
                });
            }
            // Another process took it first, or udev has not caught up.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOENT)) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn config_for(backing: &File, image: &Path, flags: Flags) -> LoopConfig {
    // SAFETY: all-zero is a valid loop_config (plain integers and arrays).
    let mut config: LoopConfig = unsafe { std::mem::zeroed() };
    config.fd = backing.as_raw_fd() as u32;
    if flags.autoclear {
        config.info.flags |= LO_FLAGS_AUTOCLEAR;
    }
    if flags.read_only {
        config.info.flags |= LO_FLAGS_READ_ONLY;
    }
    let name = image.as_os_str().as_encoded_bytes();
    let len = name.len().min(LO_NAME_SIZE - 1);
    config.info.file_name[..len].copy_from_slice(&name[..len]);
    config
}

fn configure(path: &Path, config: &LoopConfig) -> io::Result<File> {
    // The kernel makes a device opened without write access read-only.
    let writable = config.info.flags & LO_FLAGS_READ_ONLY == 0;
    let device = OpenOptions::new().read(true).write(writable).open(path)?;
    // SAFETY: LOOP_CONFIGURE reads one loop_config, which outlives the call.
    cvt(unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE as _, config) })?;
    Ok(device)
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Loop devices in use and the files behind them (as the kernel names
/// them: absolute, with " (deleted)" appended once removed).
pub fn bound() -> io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/sys/block")? {
        let name = entry?.file_name();
        if !name.to_string_lossy().starts_with("loop") {
            continue;
        }
        let device = Path::new("/dev").join(name);
        if let Some(backing) = backing_file(&device)? {
            found.push((device, backing));
        }
    }
    Ok(found)
}

/// The file behind loop device `device`, None if it has none.
pub fn backing_file(device: &Path) -> io::Result<Option<PathBuf>> {
    let name = device.file_name().unwrap_or_default();
    let file = Path::new("/sys/block").join(name).join("loop/backing_file");
    match std::fs::read_to_string(&file) {
        Ok(backing) => Ok(Some(PathBuf::from(backing.trim_end_matches('\n')))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // Detached while we read it (another process let it go): the
        // kernel answers ENODEV, and the device has no file any more.
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The writable loop device `image` is attached to, if any (read-only
/// ones are private to whoever attached them).
pub fn backed_by(image: &Path) -> io::Result<Option<PathBuf>> {
    let image = image.canonicalize()?;
    Ok(bound()?
        .into_iter()
        .find(|(device, backing)| *backing == image && !is_read_only(device))
        .map(|(device, _)| device))
}

/// Whether loop device `device` was attached read-only.
pub fn is_read_only(device: &Path) -> bool {
    let name = device.file_name().unwrap_or_default();
    let ro = Path::new("/sys/block").join(name).join("ro");
    std::fs::read_to_string(ro).is_ok_and(|v| v.trim() == "1")
}

/// Detaches loop device `device` (or, if something still uses it, has
/// the kernel detach it when that user lets go).
pub fn detach(device: &Path) -> io::Result<()> {
    let file = File::open(device)?;
    // SAFETY: LOOP_CLR_FD takes no argument.
    match cvt(unsafe { libc::ioctl(file.as_raw_fd(), LOOP_CLR_FD as _) }) {
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()), // already free
        other => other.map(drop),
    }
}

/// Has loop device `device` take up its backing file's new size.
pub fn set_capacity(device: &Path) -> io::Result<()> {
    let file = File::open(device)?;
    // SAFETY: LOOP_SET_CAPACITY takes no argument.
    cvt(unsafe { libc::ioctl(file.as_raw_fd(), LOOP_SET_CAPACITY as _) }).map(drop)
}
