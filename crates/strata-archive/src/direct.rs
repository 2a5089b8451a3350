//! Writing large files around the page cache (`O_DIRECT`).
//!
//! A layer load is CPU-bound, and a file written through the page cache
//! costs the kernel a copy, page allocation and writeback: `dd` of 1 GiB
//! followed by `sync` took 1.3-1.5 s of system time on the bench machine,
//! against 0.26 s with `oflag=direct` (bench/RESULTS.md, issue 2). Large
//! files are therefore written in aligned chunks straight to the disk; only
//! the unaligned tail goes through the page cache. Where the filesystem
//! refuses `O_DIRECT` (or an alignment), the file is written normally.
//! Durability is unchanged: the layer's final `syncfs` still covers the
//! metadata, the tail and the disk's cache.

use rustix::fd::AsFd;
use rustix::fs::OFlags;
use rustix::io::Errno;
use std::fs::File;
use std::io;

/// Files at least this large are written directly. Smaller ones are not
/// worth a synchronous write each: the page cache batches them.
pub const DIRECT_MIN: u64 = 4 << 20;
/// Buffer address, file offset and length alignment (the largest logical
/// block size in common use; a larger one makes the write fall back).
const ALIGN: usize = 4096;
/// Bytes per direct write.
const CHUNK: usize = 1 << 20;

/// An aligned chunk buffer, reused from file to file.
pub struct DirectBuf {
    mem: Vec<u8>,
}

impl Default for DirectBuf {
    fn default() -> Self {
        DirectBuf {
            mem: vec![0; CHUNK + ALIGN],
        }
    }
}

impl DirectBuf {
    fn chunk(&mut self) -> &mut [u8] {
        let start = self.mem.as_ptr().align_offset(ALIGN);
        &mut self.mem[start..start + CHUNK]
    }
}

/// A new file being written, directly while the filesystem lets it.
pub struct DirectWriter<'a> {
    file: &'a File,
    buf: &'a mut [u8],
    /// Bytes in `buf` not yet written.
    fill: usize,
    direct: bool,
}

impl<'a> DirectWriter<'a> {
    /// Starts writing `file` (empty, opened for writing) at offset 0.
    pub fn new(file: &'a File, buf: &'a mut DirectBuf) -> DirectWriter<'a> {
        let direct = set_direct(file, true).is_ok();
        DirectWriter {
            file,
            buf: buf.chunk(),
            fill: 0,
            direct,
        }
    }

    /// Where the next bytes are to be read into (never empty).
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.fill..]
    }

    /// Takes `n` bytes read into [`DirectWriter::spare`], writing the chunk
    /// once it is full.
    pub fn filled(&mut self, n: usize) -> io::Result<()> {
        self.fill += n;
        if self.fill == self.buf.len() {
            self.write_out(0, self.fill)?;
            self.fill = 0;
        }
        Ok(())
    }

    /// Writes what is left: the aligned part directly, the tail through
    /// the page cache. Says whether the filesystem took direct writes.
    pub fn finish(mut self) -> io::Result<bool> {
        let aligned = self.fill / ALIGN * ALIGN;
        self.write_out(0, aligned)?;
        let took = self.direct;
        if self.direct && aligned < self.fill {
            set_direct(self.file, false)?;
            self.direct = false;
        }
        self.write_out(aligned, self.fill)?;
        Ok(took)
    }

    /// Writes `buf[start..end]` at the file's offset. A direct write the
    /// filesystem refuses (EINVAL: alignment, or a short write left the
    /// offset unaligned) is retried through the page cache.
    fn write_out(&mut self, start: usize, end: usize) -> io::Result<()> {
        let mut done = start;
        while done < end {
            match rustix::io::write(self.file, &self.buf[done..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(Errno::INVAL) if self.direct => {
                    set_direct(self.file, false)?;
                    self.direct = false;
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Turns `O_DIRECT` on or off for an open file.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_fd();
    let flags = rustix::fs::fcntl_getfl(fd)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    Ok(rustix::fs::fcntl_setfl(fd, flags)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Writes `len` bytes of a known pattern through a DirectWriter fed
    /// `piece` bytes at a time, after `prefix` written normally, into a new
    /// file under `dir`. The file must read back identical; returns whether
    /// the writer was still writing directly at the end.
    fn check(dir: &std::path::Path, prefix: &[u8], len: usize, piece: usize) -> bool {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let path = dir.join(format!("f-{}-{len}-{piece}", prefix.len()));
        let mut file = File::create_new(&path).unwrap();
        file.write_all(prefix).unwrap();
        let mut buf = DirectBuf::default();
        let mut out = DirectWriter::new(&file, &mut buf);
        let mut src = &data[..];
        while !src.is_empty() {
            let spare = out.spare();
            let n = piece.min(spare.len()).min(src.len());
            spare[..n].copy_from_slice(&src[..n]);
            src = &src[n..];
            out.filled(n).unwrap();
        }
        let direct = out.finish().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(
            back.len(),
            prefix.len() + len,
            "length of {}",
            path.display()
        );
        assert!(back[..prefix.len()] == *prefix && back[prefix.len()..] == data[..]);
        direct
    }

    #[test]
    fn files_read_back_whatever_the_size_and_pieces() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, ALIGN, CHUNK, CHUNK * 2 + ALIGN * 3, CHUNK * 5 + 12345] {
            for piece in [1000, ALIGN, 256 << 10, CHUNK] {
                // ext4 and tmpfs (where tests put temporary files) take
                // direct writes.
                assert!(check(dir.path(), b"", len, piece), "{len} bytes not direct");
            }
        }
    }

    #[test]
    fn a_refused_direct_write_goes_through_the_page_cache() {
        // An unaligned offset makes every direct write fail with EINVAL.
        let dir = tempfile::tempdir().unwrap();
        for len in [CHUNK - 1, CHUNK * 3 + 7] {
            assert!(
                !check(dir.path(), b"x", len, 256 << 10),
                "{len} bytes direct"
            );
        }
    }
}
