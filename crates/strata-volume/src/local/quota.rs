//! xfs project quotas, as Docker's local driver uses them for `size=`:
//! each sized volume's folder gets its own project ID with the inherit
//! flag (so everything made inside is charged to it) and a block hard
//! limit. Through `FS_IOC_FS[GS]ETXATTR` and `quotactl_fd(2)` (Linux
//! 5.14+), which needs no block device node.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use rustix::fs::FlockOperation;

const PRJQUOTA: u32 = 2;
const Q_XGETQUOTA: u32 = (b'X' as u32) << 8 | 3;
const Q_XSETQLIM: u32 = (b'X' as u32) << 8 | 4;
const Q_XGETQSTAT: u32 = (b'X' as u32) << 8 | 5;
const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;
const FS_PROJ_QUOTA: i8 = 1 << 1;
const FS_DQ_BSOFT: u16 = 1 << 2;
const FS_DQ_BHARD: u16 = 1 << 3;
const FS_XFLAG_PROJINHERIT: u32 = 0x200;
/// Quota blocks are 512-byte "basic blocks" whatever the filesystem's.
const BASIC_BLOCK: u64 = 512;

/// `struct fsxattr` (linux/fs.h).
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

const FS_IOC_FSGETXATTR: libc::c_ulong = rustix::ioctl::opcode::read::<FsXattr>(b'X', 31) as _;
const FS_IOC_FSSETXATTR: libc::c_ulong = rustix::ioctl::opcode::write::<FsXattr>(b'X', 32) as _;

/// `struct fs_disk_quota` (linux/dqblk_xfs.h).
#[repr(C)]
#[derive(Default)]
struct DiskQuota {
    version: i8,
    flags: i8,
    fieldmask: u16,
    id: u32,
    blk_hardlimit: u64,
    blk_softlimit: u64,
    ino_hardlimit: u64,
    ino_softlimit: u64,
    bcount: u64,
    icount: u64,
    itimer: i32,
    btimer: i32,
    iwarns: u16,
    bwarns: u16,
    timer_hi: [i8; 4],
    rtb_hardlimit: u64,
    rtb_softlimit: u64,
    rtbcount: u64,
    rtbtimer: i32,
    rtbwarns: u16,
    padding3: i16,
    padding4: [u8; 8],
}

/// `struct fs_qfilestat` and `struct fs_quota_stat` (linux/dqblk_xfs.h).
#[repr(C)]
#[derive(Default)]
struct QuotaFile {
    ino: u64,
    nblks: u64,
    nextents: u32,
}

#[repr(C)]
#[derive(Default)]
struct QuotaStat {
    version: i8,
    flags: u16,
    pad: i8,
    uquota: QuotaFile,
    gquota: QuotaFile,
    incoredqs: u32,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarnlimit: u16,
    iwarnlimit: u16,
}

const _: () = assert!(std::mem::size_of::<FsXattr>() == 28);
const _: () = assert!(std::mem::size_of::<DiskQuota>() == 112);
const _: () = assert!(std::mem::size_of::<QuotaStat>() == 80);
const _: () = assert!(std::mem::offset_of!(DiskQuota, bcount) == 40);
const _: () = assert!(std::mem::offset_of!(DiskQuota, rtb_hardlimit) == 72);
const _: () = assert!(std::mem::offset_of!(QuotaStat, flags) == 2);
const _: () = assert!(std::mem::offset_of!(QuotaStat, incoredqs) == 56);

/// `quotactl_fd(fd, QCMD(cmd, PRJQUOTA), id, addr)`.
fn quotactl<T>(fs: &File, cmd: u32, id: u32, addr: &mut T) -> io::Result<()> {
    let qcmd = (cmd << 8) | PRJQUOTA;
    // SAFETY: every command used here reads or writes one `T`, the kernel
    // structure it expects, which lives across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fs.as_raw_fd() as libc::c_long,
            qcmd as libc::c_long,
            id as libc::c_long,
            addr as *mut T,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `dir` is on xfs with project quotas enforced.
pub fn enforced(dir: &Path) -> bool {
    let on_xfs = rustix::fs::statfs(dir).is_ok_and(|s| s.f_type == libc::XFS_SUPER_MAGIC);
    if !on_xfs {
        return false;
    }
    let mut stat = QuotaStat {
        version: 1,
        ..Default::default()
    };
    File::open(dir)
        .and_then(|fs| quotactl(&fs, Q_XGETQSTAT, 0, &mut stat))
        .is_ok_and(|()| stat.flags & FS_QUOTA_PDQ_ENFD != 0)
}

fn get_xattr(file: &File) -> io::Result<FsXattr> {
    let mut attr = FsXattr::default();
    // SAFETY: FS_IOC_FSGETXATTR fills one fsxattr.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR as _, &mut attr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr)
}

/// The project ID of `path`.
pub fn project_of(path: &Path) -> io::Result<u32> {
    get_xattr(&File::open(path)?).map(|a| a.projid)
}

/// Gives `folder` (inside `dir`) a project ID no one uses, with the
/// inherit flag; returns the ID. Serialized by a lock on `dir`, so two
/// creates never pick the same one.
pub fn assign(dir: &Path, folder: &Path) -> io::Result<u32> {
    let base = File::open(dir)?;
    rustix::fs::flock(&base, FlockOperation::LockExclusive)?;
    let mut id = highest_in_use(dir, &base)? + 1;
    while !is_free(&base, id)? {
        id += 1;
    }
    let file = File::open(folder)?;
    let mut attr = get_xattr(&file)?;
    attr.projid = id;
    attr.xflags |= FS_XFLAG_PROJINHERIT;
    // SAFETY: FS_IOC_FSSETXATTR reads one fsxattr.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSSETXATTR as _, &attr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// The highest project ID of `dir` and the folders in it.
fn highest_in_use(dir: &Path, base: &File) -> io::Result<u32> {
    let mut highest = get_xattr(base)?.projid;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            highest = highest.max(project_of(&entry.path())?);
        }
    }
    Ok(highest)
}

/// Whether project `id` has neither usage nor limits (someone else's
/// project on the same filesystem has). Without quota accounting (ENOSYS,
/// ESRCH) nothing is known to use it.
fn is_free(fs: &File, id: u32) -> io::Result<bool> {
    let mut q = DiskQuota::default();
    match quotactl(fs, Q_XGETQUOTA, id, &mut q) {
        Ok(()) => Ok(q.bcount == 0 && q.icount == 0 && q.blk_hardlimit == 0),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENOSYS | libc::ESRCH)
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Sets project `id`'s block limit to `bytes` (0: no limit).
pub fn set_limit(dir: &Path, id: u32, bytes: u64) -> io::Result<()> {
    let blocks = bytes.div_ceil(BASIC_BLOCK);
    let mut q = DiskQuota {
        version: 1,
        flags: FS_PROJ_QUOTA,
        fieldmask: FS_DQ_BHARD | FS_DQ_BSOFT,
        id,
        blk_hardlimit: blocks,
        blk_softlimit: blocks,
        ..Default::default()
    };
    quotactl(&File::open(dir)?, Q_XSETQLIM, id, &mut q)
}

/// Bytes charged to project `id`.
pub fn usage(dir: &Path, id: u32) -> io::Result<u64> {
    let mut q = DiskQuota::default();
    match quotactl(&File::open(dir)?, Q_XGETQUOTA, id, &mut q) {
        Ok(()) => Ok(q.bcount * BASIC_BLOCK),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn command_numbers_match_the_kernel_headers() {
        assert_eq!(FS_IOC_FSGETXATTR, 0x801c_581f);
        assert_eq!(FS_IOC_FSSETXATTR, 0x401c_5820);
        let check = |name: &str, got: u32, expected: u32| assert_eq!(got, expected, "{name}");
        check("Q_XGETQUOTA", Q_XGETQUOTA, 0x5803);
        check("Q_XSETQLIM", Q_XSETQLIM, 0x5804);
        check("Q_XGETQSTAT", Q_XGETQSTAT, 0x5805);
    }

    /// An xfs mounted from a file for the test (root); unmounted on drop.
    struct Xfs {
        tmp: tempfile::TempDir,
    }

    impl Xfs {
        fn new() -> Xfs {
            let tmp = tempfile::tempdir().unwrap();
            let image = tmp.path().join("xfs.img");
            File::create(&image).unwrap().set_len(300 << 20).unwrap();
            let mnt = tmp.path().join("mnt");
            std::fs::create_dir(&mnt).unwrap();
            let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
            ok(Command::new("mkfs.xfs").arg("-q").arg(&image));
            ok(Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&mnt));
            Xfs { tmp }
        }

        fn mnt(&self) -> std::path::PathBuf {
            self.tmp.path().join("mnt")
        }
    }

    impl Drop for Xfs {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(self.mnt(), rustix::mount::UnmountFlags::DETACH);
        }
    }

    /// Project IDs through the ioctls, on an xfs without quota accounting
    /// (kernels without xfs quotas can still set them).
    #[test]
    fn assigns_distinct_inherited_projects() {
        let xfs = Xfs::new();
        let dir = xfs.mnt();
        assert!(!enforced(&dir), "mounted without prjquota");
        let (one, two) = (dir.join("one"), dir.join("two"));
        std::fs::create_dir(&one).unwrap();
        std::fs::create_dir(&two).unwrap();
        let first = assign(&dir, &one).unwrap();
        let second = assign(&dir, &two).unwrap();
        assert_eq!((first, second), (1, 2));
        std::fs::create_dir(one.join("inside")).unwrap();
        assert_eq!(project_of(&one.join("inside")).unwrap(), first, "inherited");
        assert_eq!(project_of(&two).unwrap(), second);
        assert_eq!(project_of(&dir).unwrap(), 0);
    }
}
