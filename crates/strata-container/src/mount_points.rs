//! What a container's init layer holds: the runtime's mount points
//! ([`MOUNT_POINTS`]) that the image lacks, so the runtime finds them and
//! makes nothing in the container's own layer. A top-level one is a folder
//! (`/dev`, `/proc`, `/sys`: file systems are mounted there), a nested one
//! an empty file (`/etc/hostname` and the others, 0644: a bundle file is
//! bound over it). A missing `/etc` is made root's, 0755; an existing one
//! keeps its owner and mode (overlay copies it up as it is).
//!
//! Paths resolve inside the layer's root (`RESOLVE_IN_ROOT`), so an
//! image's symlinked `/etc` leads where the runtime's mount would, never
//! out; an entry already there, of any kind, is left alone, and so is an
//! `/etc` that is no folder (the runtime copes with such an image as it
//! always has, in the container's layer).

use std::io;
use std::path::Path;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use strata_archive::fsops;
use strata_runtime::netfiles::MOUNT_POINTS;

/// Makes the mount points missing under `root` (a mounted init layer).
/// Modes are set outright, whatever the umask: every container of the
/// image shares them.
pub fn make(root: &Path) -> io::Result<()> {
    let root = fsops::open_dir(root)?;
    for point in MOUNT_POINTS {
        let Some((folder, name)) = point.split_once('/') else {
            make_folder(&root, point)?;
            continue;
        };
        make_folder(&root, folder)?;
        let Ok(folder) = fsops::open_in_root(
            root.as_fd(),
            folder.as_bytes(),
            OFlags::PATH | OFlags::DIRECTORY,
        ) else {
            // No folder (a link to nothing, or a file): the runtime
            // copes with that odd image in the container's layer, as it
            // always has.
            continue;
        };
        match rustix::fs::openat(
            &folder,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(file) => rustix::fs::fchmod(&file, Mode::from_raw_mode(0o644))?,
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Makes the folder `name` in `root` (root's, 0755) unless something
/// is there.
fn make_folder(root: &OwnedFd, name: &str) -> io::Result<()> {
    match rustix::fs::mkdirat(root, name, Mode::empty()) {
        Ok(()) => fsops::chmod_at(root.as_fd(), name.as_bytes(), 0o755),
        Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn makes_what_is_missing_and_keeps_what_is_there() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::set_permissions(root.join("etc"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(root.join("etc/hosts"), "kept\n").unwrap();
        // A symlinked /proc is the image's business.
        std::os::unix::fs::symlink("/elsewhere", root.join("proc")).unwrap();
        // Modes are the layer's, not the caller's umask: a thread with a
        // strict one of its own (umask is per file-system context).
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: only this thread's cwd, root and umask become
                // its own; it holds no state that assumes them shared.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }
                    .unwrap();
                rustix::process::umask(Mode::from_raw_mode(0o077));
                make(root).unwrap();
            })
            .join()
            .unwrap();
        });
        let mode = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mode();
        assert_eq!(mode("etc") & 0o7777, 0o700);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hosts")).unwrap(),
            "kept\n"
        );
        for file in ["etc/hostname", "etc/resolv.conf"] {
            assert_eq!(std::fs::read(root.join(file)).unwrap(), b"", "{file}");
            assert_eq!(mode(file) & 0o177777, 0o100644, "{file}");
        }
        for dir in ["dev", "sys"] {
            assert_eq!(mode(dir) & 0o177777, 0o040755, "{dir}");
        }
        assert!(
            std::fs::symlink_metadata(root.join("proc"))
                .unwrap()
                .is_symlink()
        );
        // Again: nothing to do, nothing changes.
        make(root).unwrap();
    }

    #[test]
    fn a_symlinked_etc_is_followed_inside_the_root_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("usr/etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // Absolute, to a folder the host has and the root lacks: skipped.
        std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
        make(&root).unwrap();
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(root.join("dev").is_dir());
        // To a folder inside: the files are made there.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/etc", root.join("etc")).unwrap();
        make(&root).unwrap();
        assert!(root.join("usr/etc/hostname").is_file());
    }
}
