//! Small filesystem helpers shared by the store's durability protocols.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Makes a folder's entries (creates, renames, deletes) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// Writes `bytes` to `path` atomically (a reader sees the old or the new
/// file, never half) but not durably: for run-time files that a reboot
/// makes meaningless anyway (a running container's state and bundle),
/// where two fsyncs would cost more than starting the container.
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

/// A hidden name beside `path` for writing it before renaming into place.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    path.with_file_name(format!(".{name}.strata-{}", random_hex(6)))
}

/// Writes `path` whole or not at all from a stream: `write` fills a
/// temp file beside it (through a 1 MiB buffer), which is fsynced and
/// renamed into place. On any failure the temp file goes and `path` is as
/// it was. `io_error` turns the I/O failures here into the caller's error.
pub fn write_streamed<E>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), E>,
    io_error: impl Fn(&Path, io::Error) -> E,
) -> Result<(), E> {
    let temp = temp_beside(path);
    let result = File::create_new(&temp)
        .map_err(|e| io_error(&temp, e))
        .and_then(|f| {
            let mut out = BufWriter::with_capacity(1 << 20, f);
            write(&mut out)?;
            let f = out
                .into_inner()
                .map_err(|e| io_error(&temp, e.into_error()))?;
            f.sync_all().map_err(|e| io_error(&temp, e))?;
            fs::rename(&temp, path).map_err(|e| io_error(path, e))
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = temp_beside(path);
    let result = (|| {
        let mut f = File::create_new(&temp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&temp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// `n` random bytes as hex, from the kernel's generator.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        filled +=
            rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())
                .expect("getrandom cannot fail with a valid buffer");
    }
    hex::encode(buf)
}

/// Removes a file or a whole folder tree; a missing path is not an error.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether something is mounted on `path` (compared with its parent's
/// mount; two statx calls, where reading the mount table grows with
/// every mount on the host); a missing `path` is not.
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (mount_of(path), mount_of(parent)) {
        (Ok(a), Ok(b)) => Ok(a != b),
        (Err(e), _) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Which mount `path` is on: its mount ID, or its device where statx
/// gives none (kernels before 5.8).
fn mount_of(path: &Path) -> io::Result<(u64, u64)> {
    use rustix::fs::{AtFlags, CWD, StatxFlags};
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT | AtFlags::STATX_DONT_SYNC;
    let st = rustix::fs::statx(CWD, path, flags, StatxFlags::MNT_ID)?;
    if st.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
        Ok((st.stx_mnt_id, 0))
    } else {
        Ok((st.stx_dev_major.into(), st.stx_dev_minor.into()))
    }
}
