//! Filling an empty volume with what the image has at the mount point, as
//! Docker does on first use: content, owner and mode. A volume with
//! anything in it is never touched, so data written by earlier containers
//! always wins over the image.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::OFlags;
use rustix::io::Errno;
use strata_archive::{copy, fsops};

/// Copies `target` (a path inside the container's root filesystem
/// `rootfs`) into the volume folder `data` if `data` is empty and `target`
/// is a directory there. Returns whether it copied.
///
/// `target` is resolved inside `rootfs` with `openat2(RESOLVE_IN_ROOT)`, so
/// a symlink in the image cannot point the copy at host files.
pub fn fill_if_empty(data: &Path, rootfs: &Path, target: &str) -> io::Result<bool> {
    if std::fs::read_dir(data)?.next().is_some() {
        return Ok(false);
    }
    let root = fsops::open_dir(rootfs)?;
    let rel = Path::new(target.trim_start_matches('/'));
    let src = match fsops::open_in_root(
        std::os::fd::AsFd::as_fd(&root),
        rel.as_os_str().as_bytes(),
        OFlags::PATH | OFlags::DIRECTORY,
    ) {
        Ok(fd) => fd,
        // Nothing there, or not a directory: nothing to copy.
        Err(e) if matches!(Errno::from_io_error(&e), Some(Errno::NOENT | Errno::NOTDIR)) => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    copy::copy_tree_from(std::os::fd::AsFd::as_fd(&src), data)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    #[test]
    fn copies_into_an_empty_volume_only() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("var/lib/data")).unwrap();
        std::fs::write(rootfs.join("var/lib/data/seed"), b"from image").unwrap();
        std::fs::set_permissions(
            rootfs.join("var/lib/data"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        let data = t.path().join("vol");
        std::fs::create_dir(&data).unwrap();

        assert!(fill_if_empty(&data, &rootfs, "/var/lib/data").unwrap());
        assert_eq!(std::fs::read(data.join("seed")).unwrap(), b"from image");
        assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o7777, 0o750);

        std::fs::write(data.join("seed"), b"mine").unwrap();
        assert!(!fill_if_empty(&data, &rootfs, "/var/lib/data").unwrap());
        assert_eq!(std::fs::read(data.join("seed")).unwrap(), b"mine");
    }

    #[test]
    fn a_symlink_in_the_image_stays_inside_it() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let host = t.path().join("host-secret");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("key"), b"secret").unwrap();
        // An absolute link to the host folder: inside the root it means
        // <rootfs>/<host>, which does not exist.
        symlink(&host, rootfs.join("data")).unwrap();
        let data = t.path().join("vol");
        std::fs::create_dir(&data).unwrap();
        assert!(!fill_if_empty(&data, &rootfs, "/data").unwrap());
        assert!(std::fs::read_dir(&data).unwrap().next().is_none());
    }

    #[test]
    fn missing_or_file_targets_copy_nothing() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::write(rootfs.join("file"), b"x").unwrap();
        let data = t.path().join("vol");
        std::fs::create_dir(&data).unwrap();
        for target in ["/missing", "/file", "/missing/deeper"] {
            assert!(!fill_if_empty(&data, &rootfs, target).unwrap(), "{target}");
        }
    }
}
