//! Kernel mounts of the local driver: a volume's `type`/`device`/`o`, or
//! its image's loop device, on its `_data`.
//!
//! `o` is split as Docker's `mount.ParseOptions` does: words that are
//! mount flags (`ro`, `nosuid`, `bind`, ...) become flags, propagation
//! words (`private`, `rshared`, ...) a separate call, the rest the data
//! string the filesystem reads (`size=64m,uid=1000`). Filesystems whose
//! mount needs user space (nfs, cifs, fuse, `o` with `addr=` or `loop`)
//! go through the system's `mount` helper instead.

use std::ffi::CString;
use std::path::Path;
use std::process::Command;

use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::command::run;
use super::error::{LocalError, Result};
use super::options::MountSpec;

/// Words of `o` that are flags: (word, flags, whether the word clears them).
const FLAGS: &[(&str, MountFlags, bool)] = &[
    ("defaults", MountFlags::empty(), false),
    ("ro", MountFlags::RDONLY, false),
    ("rw", MountFlags::RDONLY, true),
    ("nosuid", MountFlags::NOSUID, false),
    ("suid", MountFlags::NOSUID, true),
    ("nodev", MountFlags::NODEV, false),
    ("dev", MountFlags::NODEV, true),
    ("noexec", MountFlags::NOEXEC, false),
    ("exec", MountFlags::NOEXEC, true),
    ("sync", MountFlags::SYNCHRONOUS, false),
    ("async", MountFlags::SYNCHRONOUS, true),
    ("dirsync", MountFlags::DIRSYNC, false),
    ("noatime", MountFlags::NOATIME, false),
    ("atime", MountFlags::NOATIME, true),
    ("nodiratime", MountFlags::NODIRATIME, false),
    ("diratime", MountFlags::NODIRATIME, true),
    ("relatime", MountFlags::RELATIME, false),
    ("norelatime", MountFlags::RELATIME, true),
    ("strictatime", MountFlags::STRICTATIME, false),
    ("nostrictatime", MountFlags::STRICTATIME, true),
    ("bind", MountFlags::BIND, false),
    ("rbind", MountFlags::BIND.union(MountFlags::REC), false),
];

const PROPAGATION: &[(&str, MountPropagationFlags)] = &[
    ("private", MountPropagationFlags::PRIVATE),
    ("shared", MountPropagationFlags::SHARED),
    ("slave", MountPropagationFlags::DOWNSTREAM),
    ("unbindable", MountPropagationFlags::UNBINDABLE),
];

/// Filesystem types whose mount needs a user-space helper.
const HELPER_TYPES: &[&str] = &["nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs"];

/// `o` split into mount(2)'s arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub flags: MountFlags,
    pub propagation: MountPropagationFlags,
    pub data: String,
}

pub fn parse_o(o: &str) -> Parsed {
    let mut parsed = Parsed {
        flags: MountFlags::empty(),
        propagation: MountPropagationFlags::empty(),
        data: String::new(),
    };
    for word in o.split(',').filter(|w| !w.is_empty()) {
        if let Some((_, flags, clear)) = FLAGS.iter().find(|(w, ..)| *w == word) {
            parsed.flags.set(*flags, !clear);
        } else if let Some(p) = propagation(word) {
            parsed.propagation = p;
        } else {
            if !parsed.data.is_empty() {
                parsed.data.push(',');
            }
            parsed.data.push_str(word);
        }
    }
    parsed
}

fn propagation(word: &str) -> Option<MountPropagationFlags> {
    let (recursive, base) = match word.strip_prefix('r') {
        Some(base) if PROPAGATION.iter().any(|(w, _)| *w == base) => (true, base),
        _ => (false, word),
    };
    let (_, flags) = PROPAGATION.iter().find(|(w, _)| *w == base)?;
    Some(match recursive {
        true => *flags | MountPropagationFlags::REC,
        false => *flags,
    })
}

/// Whether `spec` is mounted by the system's `mount` helper.
pub fn needs_helper(spec: &MountSpec) -> bool {
    HELPER_TYPES.contains(&spec.fstype.as_str())
        || spec.fstype.starts_with("fuse")
        || spec
            .options
            .split(',')
            .any(|o| o.starts_with("addr=") || o == "loop")
}

/// Whether `spec` bind-mounts a host path (which must exist).
pub fn is_bind(spec: &MountSpec) -> bool {
    parse_o(&spec.options).flags.contains(MountFlags::BIND)
}

/// Mounts `spec` on `target`.
pub fn mount_spec(spec: &MountSpec, target: &Path) -> Result<()> {
    if needs_helper(spec) {
        return helper(spec, target);
    }
    let o = parse_o(&spec.options);
    if o.flags.contains(MountFlags::BIND) && !Path::new(&spec.device).exists() {
        return Err(LocalError::NoDevice(spec.device.clone().into()));
    }
    let fail = |source: Errno| LocalError::Mount {
        device: spec.device.clone(),
        fstype: spec.fstype.clone(),
        target: target.to_owned(),
        source: source.into(),
        hint: "; check the volume's type=, device= and o= options (the kernel log says more)",
    };
    kernel_mount(&spec.device, &spec.fstype, o.flags, &o.data, target).map_err(fail)?;
    finish(&o, target).map_err(|e| {
        let _ = unmount(target);
        fail(e)
    })
}

/// What the first mount(2) call could not do: the flags of a bind mount
/// (which it ignores; a remount applies them) and the propagation.
fn finish(o: &Parsed, target: &Path) -> rustix::io::Result<()> {
    let rest = o.flags - MountFlags::BIND - MountFlags::REC;
    if o.flags.contains(MountFlags::BIND) && !rest.is_empty() {
        rustix::mount::mount_remount(target, MountFlags::BIND | rest, "")?;
    }
    if !o.propagation.is_empty() {
        rustix::mount::mount_change(target, o.propagation)?;
    }
    Ok(())
}

/// Mounts the filesystem on block device `device` on `target`.
pub fn mount_device(device: &Path, fstype: &str, data: &str, target: &Path) -> Result<()> {
    let name = device.to_string_lossy();
    kernel_mount(&name, fstype, MountFlags::empty(), data, target).map_err(|source| {
        LocalError::Mount {
            device: name.into_owned(),
            fstype: fstype.to_owned(),
            target: target.to_owned(),
            source: source.into(),
            hint: "; the kernel log (dmesg) says why",
        }
    })
}

fn kernel_mount(
    device: &str,
    fstype: &str,
    flags: MountFlags,
    data: &str,
    target: &Path,
) -> rustix::io::Result<()> {
    let data = CString::new(data).map_err(|_| Errno::INVAL)?;
    rustix::mount::mount(device, target, fstype, flags, data.as_c_str())
}

/// `mount -t TYPE [-o O] DEVICE TARGET`, reporting its stderr on failure.
fn helper(spec: &MountSpec, target: &Path) -> Result<()> {
    let mut command = Command::new("mount");
    command.arg("-t").arg(&spec.fstype);
    if !spec.options.is_empty() {
        command.arg("-o").arg(&spec.options);
    }
    command.arg(&spec.device).arg(target);
    run(&mut command)
}

/// Unmounts `target` (detaching it if busy); not mounted is fine.
pub fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(LocalError::Io {
            what: "unmounting",
            path: target.to_owned(),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_o_like_docker() {
        let check = |o: &str, flags: MountFlags, propagation: MountPropagationFlags, data: &str| {
            let expected = Parsed {
                flags,
                propagation,
                data: data.to_owned(),
            };
            assert_eq!(parse_o(o), expected, "{o}");
        };
        let none = MountPropagationFlags::empty();
        check("", MountFlags::empty(), none, "");
        check(
            "size=64m,uid=1000",
            MountFlags::empty(),
            none,
            "size=64m,uid=1000",
        );
        check(
            "ro,nosuid,size=1m,nodev",
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
            none,
            "size=1m",
        );
        check("ro,rw", MountFlags::empty(), none, "");
        check("bind", MountFlags::BIND, none, "");
        check(
            "rbind,ro",
            MountFlags::BIND | MountFlags::REC | MountFlags::RDONLY,
            none,
            "",
        );
        check(
            "bind,rprivate",
            MountFlags::BIND,
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
            "",
        );
        check(
            "shared",
            MountFlags::empty(),
            MountPropagationFlags::SHARED,
            "",
        );
        check("defaults,,noatime", MountFlags::NOATIME, none, "");
        check(
            "addr=1.2.3.4,rw,nfsvers=4",
            MountFlags::empty(),
            none,
            "addr=1.2.3.4,nfsvers=4",
        );
        check("rsize=8192", MountFlags::empty(), none, "rsize=8192");
    }

    #[test]
    fn helper_types() {
        let check = |fstype: &str, options: &str, expected: bool| {
            let spec = MountSpec {
                fstype: fstype.into(),
                device: "x".into(),
                options: options.into(),
            };
            assert_eq!(needs_helper(&spec), expected, "{fstype} {options}");
        };
        check("nfs", "", true);
        check("cifs", "username=u", true);
        check("fuse.sshfs", "", true);
        check("ext4", "addr=1.2.3.4", true);
        check("ext4", "loop", true);
        check("tmpfs", "size=1m", false);
        check("ext4", "ro", false);
        check("none", "bind", false);
    }
}
