//! The layer index: what it takes to rebuild a layer tar byte for byte from
//! the files of its snapshot, so a layer is stored once (as files) and can
//! still be exported with its original diff ID.
//!
//! While a tar is applied, every raw byte (headers, padding, trailers) goes
//! into the index, and every regular file's content is replaced by a
//! reference to where that content now lives: `(real path, size)`.
//! Rebuilding reads the references back from the snapshot. Content that the
//! same layer later overwrote or deleted is copied aside into the index
//! ("spilled") first, so duplicate entries rebuild exactly too.
//!
//! File format (integers little-endian):
//!
//! ```text
//! "SLIDX001"
//! zstd frame: records, each  1 varint(len) bytes      raw bytes
//!                            2 varint(size) varint(len) path   file content
//!                            0                        end
//! spill bytes
//! spill table: count x (u32 file number, u64 offset in spill, u64 length)
//! u64 records length, u64 spill length, u32 count, "SLIDXEND"
//! ```
//!
//! The trailer makes the spill table readable before the records, so
//! rebuilding is one pass and never holds a file in memory.

use rustix::fd::BorrowedFd;
use rustix::fs::OFlags;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::fsops;

const MAGIC: &[u8; 8] = b"SLIDX001";
const END_MAGIC: &[u8; 8] = b"SLIDXEND";
const TRAILER: u64 = 8 + 8 + 4 + 8;
const RAW: u8 = 1;
const FILE: u8 = 2;
const END: u8 = 0;
/// Raw bytes are gathered up to this size before becoming one record.
const RAW_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("layer index: {0}")]
    Io(#[from] io::Error),
    #[error("layer index is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "layer file '{path}' changed on disk since the layer was stored ({reason}); run 'strata system check'"
    )]
    Changed { path: String, reason: String },
}

/// Counts bytes written through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a layer index while a tar is applied.
pub struct IndexWriter<W: Write> {
    records: zstd::Encoder<'static, Counting<W>>,
    raw: Vec<u8>,
    files: u32,
    spill_dir: PathBuf,
    spill: Option<(tempfile_like::Temp, u64)>,
    spill_table: Vec<(u32, u64, u64)>,
}

/// A scratch file for spilled content, deleted when dropped.
mod tempfile_like {
    use std::fs::File;
    use std::path::{Path, PathBuf};

    pub struct Temp {
        pub file: File,
        path: PathBuf,
    }

    impl Temp {
        pub fn create(dir: &Path) -> std::io::Result<Temp> {
            let mut bytes = [0u8; 8];
            rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())?;
            let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let path = dir.join(format!("spill-{name}"));
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?;
            Ok(Temp { file, path })
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl<W: Write> IndexWriter<W> {
    /// `spill_dir` is scratch space on the same filesystem for the rare
    /// content that must be copied aside.
    pub fn new(mut out: W, spill_dir: &Path) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        let records = zstd::Encoder::new(
            Counting {
                inner: out,
                count: 0,
            },
            3,
        )?;
        Ok(IndexWriter {
            records,
            raw: Vec::with_capacity(RAW_CHUNK),
            files: 0,
            spill_dir: spill_dir.to_owned(),
            spill: None,
            spill_table: Vec::new(),
        })
    }

    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.raw.extend_from_slice(bytes);
        if self.raw.len() >= RAW_CHUNK {
            self.flush_raw()?;
        }
        Ok(())
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        let mut head = vec![RAW];
        varint(&mut head, self.raw.len() as u64);
        self.records.write_all(&head)?;
        self.records.write_all(&self.raw)?;
        self.raw.clear();
        Ok(())
    }

    /// Records that the next `size` bytes of the stream are the content of
    /// the file now at `real_path`; returns the file's number.
    pub fn file(&mut self, real_path: &[u8], size: u64) -> io::Result<u32> {
        self.flush_raw()?;
        let mut rec = vec![FILE];
        varint(&mut rec, size);
        varint(&mut rec, real_path.len() as u64);
        rec.extend_from_slice(real_path);
        self.records.write_all(&rec)?;
        let n = self.files;
        self.files += 1;
        Ok(n)
    }

    /// Copies aside the content of file number `file`, which is about to be
    /// overwritten or removed by a later entry of the same layer.
    pub fn spill(&mut self, file: u32, content: &mut dyn Read) -> io::Result<()> {
        if self.spill.is_none() {
            self.spill = Some((tempfile_like::Temp::create(&self.spill_dir)?, 0));
        }
        let (temp, len) = self.spill.as_mut().expect("just set");
        let mut w = BufWriter::new(&temp.file);
        let n = io::copy(content, &mut w)?;
        w.flush()?;
        self.spill_table.push((file, *len, n));
        *len += n;
        Ok(())
    }

    /// Finishes the index and returns the writer it was written to.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_raw()?;
        self.records.write_all(&[END])?;
        let Counting {
            inner: mut out,
            count: records_len,
        } = self.records.finish()?;
        let mut spill_len = 0;
        if let Some((mut temp, len)) = self.spill.take() {
            temp.file.seek(SeekFrom::Start(0))?;
            io::copy(&mut (&temp.file).take(len), &mut out)?;
            spill_len = len;
        }
        for (file, offset, len) in &self.spill_table {
            out.write_all(&file.to_le_bytes())?;
            out.write_all(&offset.to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
        }
        out.write_all(&records_len.to_le_bytes())?;
        out.write_all(&spill_len.to_le_bytes())?;
        out.write_all(&(self.spill_table.len() as u32).to_le_bytes())?;
        out.write_all(END_MAGIC)?;
        Ok(out)
    }
}

fn read_varint(r: &mut impl Read) -> Result<u64, IndexError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= ((b[0] & 0x7f) as u64) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(IndexError::Corrupt("varint too long".into()))
}

/// Rebuilds the layer tar described by `index`, reading file content from
/// the layer's own files under `files`, and writes it to `out`. Returns the
/// number of bytes written. The caller checks the digest.
pub fn rebuild(index: &File, files: BorrowedFd, out: &mut dyn Write) -> Result<u64, IndexError> {
    let total = index.metadata()?.len();
    if total < MAGIC.len() as u64 + TRAILER {
        return Err(IndexError::Corrupt("too short".into()));
    }
    let mut trailer = [0u8; TRAILER as usize];
    index.read_exact_at(&mut trailer, total - TRAILER)?;
    if &trailer[20..] != END_MAGIC {
        return Err(IndexError::Corrupt("bad trailer".into()));
    }
    let records_len = u64::from_le_bytes(trailer[0..8].try_into().unwrap());
    let spill_len = u64::from_le_bytes(trailer[8..16].try_into().unwrap());
    let count = u32::from_le_bytes(trailer[16..20].try_into().unwrap()) as u64;
    let spill_start = MAGIC.len() as u64 + records_len;
    let table_start = spill_start + spill_len;
    if table_start + count * 20 + TRAILER != total {
        return Err(IndexError::Corrupt("lengths do not add up".into()));
    }
    let mut table = vec![0u8; (count * 20) as usize];
    index.read_exact_at(&mut table, table_start)?;
    let spilled: HashMap<u32, (u64, u64)> = table
        .chunks_exact(20)
        .map(|c| {
            let file = u32::from_le_bytes(c[0..4].try_into().unwrap());
            let offset = u64::from_le_bytes(c[4..12].try_into().unwrap());
            let len = u64::from_le_bytes(c[12..20].try_into().unwrap());
            (file, (offset, len))
        })
        .collect();
    let mut magic = [0u8; 8];
    index.read_exact_at(&mut magic, 0)?;
    if &magic != MAGIC {
        return Err(IndexError::Corrupt("bad magic".into()));
    }

    let mut head = index.try_clone()?;
    head.seek(SeekFrom::Start(MAGIC.len() as u64))?;
    let mut records = zstd::Decoder::with_buffer(BufReader::new(head.take(records_len)))?;
    let mut written = 0u64;
    let mut file_no = 0u32;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let mut tag = [0u8];
        records.read_exact(&mut tag)?;
        match tag[0] {
            END => return Ok(written),
            RAW => {
                let len = read_varint(&mut records)?;
                written += copy_exact(&mut records, out, len, &mut buf)?;
            }
            FILE => {
                let size = read_varint(&mut records)?;
                let path_len = read_varint(&mut records)?;
                if path_len > 64 * 1024 {
                    return Err(IndexError::Corrupt("path too long".into()));
                }
                let mut path = vec![0u8; path_len as usize];
                records.read_exact(&mut path)?;
                written += match spilled.get(&file_no) {
                    Some(&(offset, len)) if len == size => {
                        let mut r = SpillReader {
                            file: index,
                            pos: spill_start + offset,
                            end: spill_start + offset + len,
                        };
                        copy_exact(&mut r, out, size, &mut buf)?
                    }
                    Some(_) => return Err(IndexError::Corrupt("spill length".into())),
                    None => copy_file(files, &path, size, out, &mut buf)?,
                };
                file_no += 1;
            }
            other => return Err(IndexError::Corrupt(format!("unknown record {other}"))),
        }
    }
}

struct SpillReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for SpillReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn copy_exact(
    r: &mut dyn Read,
    out: &mut dyn Write,
    len: u64,
    buf: &mut [u8],
) -> Result<u64, IndexError> {
    let mut left = len;
    while left > 0 {
        let want = (buf.len() as u64).min(left) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(IndexError::Corrupt("record shorter than its length".into()));
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(len)
}

fn copy_file(
    files: BorrowedFd,
    path: &[u8],
    size: u64,
    out: &mut dyn Write,
    buf: &mut [u8],
) -> Result<u64, IndexError> {
    let changed = |reason: String| IndexError::Changed {
        path: String::from_utf8_lossy(path).into_owned(),
        reason,
    };
    let fd =
        fsops::open_beneath(files, path, OFlags::RDONLY).map_err(|e| changed(e.to_string()))?;
    let mut file = File::from(fd);
    let actual = file.metadata()?.len();
    if actual != size {
        return Err(changed(format!("{actual} bytes, expected {size}")));
    }
    copy_exact(&mut file, out, size, buf).map_err(|e| match e {
        IndexError::Corrupt(_) => changed("shorter than expected".into()),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn rebuilds_raw_files_and_spills() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir_all(files.join("d")).unwrap();
        std::fs::write(files.join("d/a"), b"final").unwrap();
        let index_path = dir.path().join("index");
        let out = File::create(&index_path).unwrap();
        let mut w = IndexWriter::new(out, dir.path()).unwrap();
        w.raw(b"<header1>").unwrap();
        let first = w.file(b"d/a", 5).unwrap();
        w.raw(b"<header2>").unwrap();
        // The first "d/a" is overwritten later in the layer: its content is spilled.
        w.spill(first, &mut &b"first"[..]).unwrap();
        w.file(b"d/a", 5).unwrap();
        w.raw(&[0u8; 1024]).unwrap();
        w.finish().unwrap().sync_all().unwrap();

        let index = File::open(&index_path).unwrap();
        let root = fsops::open_dir(&files).unwrap();
        let mut rebuilt = Vec::new();
        let n = rebuild(&index, root.as_fd(), &mut rebuilt).unwrap();
        let mut expected = b"<header1>first<header2>final".to_vec();
        expected.extend([0u8; 1024]);
        assert_eq!(rebuilt, expected);
        assert_eq!(n, expected.len() as u64);
    }

    #[test]
    fn a_changed_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"12345").unwrap();
        let mut w = IndexWriter::new(Vec::new(), dir.path()).unwrap();
        w.file(b"a", 4).unwrap();
        let bytes = w.finish().unwrap();
        let index_path = dir.path().join("index");
        std::fs::write(&index_path, bytes).unwrap();
        let root = fsops::open_dir(dir.path()).unwrap();
        let err = rebuild(
            &File::open(&index_path).unwrap(),
            root.as_fd(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
    }
}
