//! Copying block volume images: only the ranges that hold data, so a
//! sparse image stays sparse (the kernel reflinks where it can).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::error::{Result, io_err};

/// Writes the data of image `from` into the same offsets of image `to`,
/// which is at least as large and holds nothing yet.
pub fn image_into(from: &Path, to: &Path) -> Result<()> {
    let src = File::open(from).map_err(io_err("opening", from))?;
    let dst = OpenOptions::new()
        .write(true)
        .open(to)
        .map_err(io_err("opening", to))?;
    copy_data(&src, &dst).map_err(io_err("copying into", to))?;
    dst.sync_all().map_err(io_err("syncing", to))
}

/// Makes `to` (which must not exist) a copy of image `from`.
pub fn image_file(from: &Path, to: &Path) -> Result<()> {
    let len = std::fs::metadata(from)
        .map_err(io_err("reading", from))?
        .len();
    let dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io_err("creating", to))?;
    dst.set_len(len).map_err(io_err("sizing", to))?;
    drop(dst);
    image_into(from, to)
}

/// Copies each data range of `src` to the same offset in `dst`.
fn copy_data(src: &File, dst: &File) -> io::Result<()> {
    let len = src.metadata()?.len();
    let mut at = 0u64;
    while at < len {
        let start = match rustix::fs::seek(src, SeekFrom::Data(at)) {
            Ok(start) => start,
            Err(Errno::NXIO) => break, // only a hole is left
            Err(e) => return Err(e.into()),
        };
        let end = rustix::fs::seek(src, SeekFrom::Hole(start))?;
        copy_range(src, dst, start, end)?;
        at = end;
    }
    Ok(())
}

fn copy_range(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    let (mut from, mut to) = (start, start);
    while from < end {
        let chunk = (end - from).min(1 << 30) as usize;
        let n = rustix::fs::copy_file_range(src, Some(&mut from), dst, Some(&mut to), chunk)?;
        if n == 0 {
            return Err(io::Error::other("the image shrank while being copied"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn copies_data_and_keeps_holes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from.img");
        let mut f = std::fs::File::create(&from).unwrap();
        f.set_len(64 << 20).unwrap();
        for at in [0u64, 10 << 20, (64 << 20) - 4096] {
            f.seek(std::io::SeekFrom::Start(at)).unwrap();
            f.write_all(&[0xab; 4096]).unwrap();
        }
        drop(f);
        let to = dir.path().join("to.img");
        super::image_file(&from, &to).unwrap();
        assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());
        let blocks = std::fs::metadata(&to).unwrap().blocks() * 512;
        assert!(blocks < 4 << 20, "the copy is not sparse: {blocks} bytes");
    }
}
