//! A streaming tar reader that accounts for every byte.
//!
//! Each byte of the stream is either *content* of a regular file (handed to
//! the caller through [`TarReader::read_content`]) or *raw* (headers,
//! extension records, padding, the end-of-archive blocks and anything after
//! them), which is collected for the caller to take with
//! [`TarReader::take_raw`]. The layer index relies on that split to rebuild a
//! layer tar byte for byte from the files on disk.
//!
//! Understood: ustar, GNU (long names `L`/`K`), PAX (`x` records; `g` is kept
//! raw and ignored, as Docker does). Extension headers larger than
//! [`MAX_EXTENSION`] are refused, so a hostile stream cannot make us buffer
//! gigabytes. Sparse files are refused with a clear error.

use std::io::{self, Read, Seek, SeekFrom};

const BLOCK: usize = 512;

/// The largest PAX or GNU long-name record we buffer.
pub const MAX_EXTENSION: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("read failed at byte {offset} of the tar stream: {source}")]
    Io { offset: u64, source: io::Error },
    #[error(
        "the tar stream ends in the middle of an entry (at byte {offset}); the file is truncated"
    )]
    Truncated { offset: u64 },
    #[error("bad tar header at byte {offset}: {reason}")]
    Header { offset: u64, reason: String },
    #[error("tar entry '{path}' uses type '{kind}', which layers do not support ({why})")]
    Unsupported {
        path: String,
        kind: char,
        why: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    Hardlink,
    Symlink,
    Char,
    Block,
    Directory,
    Fifo,
}

impl EntryKind {
    /// The kind a file on disk is archived as; None for what a tar cannot
    /// hold (sockets: Docker skips them too).
    pub fn of(st: &rustix::fs::Stat) -> Option<EntryKind> {
        use rustix::fs::FileType;
        Some(match crate::fsops::file_type(st) {
            FileType::Directory => EntryKind::Directory,
            FileType::RegularFile => EntryKind::Regular,
            FileType::Symlink => EntryKind::Symlink,
            FileType::CharacterDevice => EntryKind::Char,
            FileType::BlockDevice => EntryKind::Block,
            FileType::Fifo => EntryKind::Fifo,
            FileType::Socket | FileType::Unknown => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// One entry's metadata, with PAX and GNU overrides already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Bytes of content that follow the header.
    pub size: u64,
    pub mtime: Time,
    pub atime: Option<Time>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes from `SCHILY.xattr.*` records, in stream order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Default)]
struct Overrides {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Time>,
    atime: Option<Time>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse: bool,
}

pub struct TarReader<R> {
    inner: R,
    offset: u64,
    raw: Vec<u8>,
    /// Content bytes of the current entry not yet read by the caller.
    remaining: u64,
    /// Padding after the current entry's content.
    padding: u64,
    /// Whether the current entry's content is raw (not a regular file's data).
    content_is_raw: bool,
    done: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            offset: 0,
            raw: Vec::with_capacity(4 * BLOCK),
            remaining: 0,
            padding: 0,
            content_is_raw: false,
            done: false,
        }
    }

    /// Bytes consumed from the stream so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Takes the raw (non-content) bytes read since the last call.
    pub fn take_raw(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.raw)
    }

    /// Raw bytes read since the last take, without taking them.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn clear_raw(&mut self) {
        self.raw.clear();
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, TarError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => {
                    return Err(TarError::Truncated {
                        offset: self.offset + filled as u64,
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(TarError::Io {
                        offset: self.offset + filled as u64,
                        source,
                    });
                }
            }
        }
        self.offset += buf.len() as u64;
        Ok(true)
    }

    /// Reads `n` bytes into the raw buffer (headers, padding, skipped content).
    fn read_raw(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let chunk = n.min(buf.len() as u64) as usize;
            if !self.fill(&mut buf[..chunk])? {
                return Err(TarError::Truncated {
                    offset: self.offset,
                });
            }
            self.raw.extend_from_slice(&buf[..chunk]);
            n -= chunk as u64;
        }
        Ok(())
    }

    /// Finishes the current entry: what the caller did not read of its content
    /// is kept raw, then the padding.
    fn skip_rest(&mut self) -> Result<(), TarError> {
        if self.remaining > 0 {
            if !self.content_is_raw {
                // Unread regular-file content is still part of the stream.
                self.content_is_raw = true;
            }
            let n = self.remaining;
            self.remaining = 0;
            self.read_raw(n)?;
        }
        let pad = std::mem::take(&mut self.padding);
        self.read_raw(pad)
    }

    /// Reads a 512-byte block into the raw buffer; false at a clean EOF.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut block = [0u8; BLOCK];
        if !self.fill(&mut block)? {
            return Ok(None);
        }
        self.raw.extend_from_slice(&block);
        Ok(Some(block))
    }

    /// The next entry, or None at the end of the archive. Everything after the
    /// end-of-archive marker is read as raw bytes.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut ov = Overrides::default();
        loop {
            let header_offset = self.offset;
            let Some(block) = self.block()? else {
                // EOF without end-of-archive blocks: accepted, as GNU tar does.
                self.done = true;
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                self.drain()?;
                return Ok(None);
            }
            verify_checksum(&block, header_offset)?;
            let h = Header::parse(&block, header_offset)?;
            match h.typeflag {
                b'x' | b'L' | b'K' => {
                    if h.size > MAX_EXTENSION {
                        return Err(TarError::Header {
                            offset: header_offset,
                            reason: format!(
                                "extension header of {} bytes is larger than the {} byte limit",
                                h.size, MAX_EXTENSION
                            ),
                        });
                    }
                    let start = self.raw.len();
                    self.read_raw(h.size + pad(h.size))?;
                    let data = self.raw[start..start + h.size as usize].to_vec();
                    match h.typeflag {
                        b'x' => parse_pax(&data, &mut ov, header_offset)?,
                        b'L' => ov.path = Some(trim_nul(&data).to_vec()),
                        _ => ov.link = Some(trim_nul(&data).to_vec()),
                    }
                }
                b'g' => {
                    // Global PAX headers are ignored (as Docker does) but kept raw.
                    self.read_raw(h.size + pad(h.size))?;
                }
                _ => return self.entry(h, ov, header_offset).map(Some),
            }
        }
    }

    fn entry(&mut self, h: Header, ov: Overrides, offset: u64) -> Result<Entry, TarError> {
        let path = ov.path.unwrap_or(h.path);
        let show = || String::from_utf8_lossy(&path).into_owned();
        if ov.sparse || h.typeflag == b'S' {
            return Err(TarError::Unsupported {
                path: show(),
                kind: 'S',
                why: "sparse files cannot be stored in a layer; re-create the tar without --sparse",
            });
        }
        let kind = match h.typeflag {
            b'0' | b'\0' | b'7' if path.ends_with(b"/") => EntryKind::Directory,
            b'0' | b'\0' | b'7' => EntryKind::Regular,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::Char,
            b'4' => EntryKind::Block,
            b'5' | b'D' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            other => {
                return Err(TarError::Unsupported {
                    path: show(),
                    kind: other as char,
                    why: "unknown entry type",
                });
            }
        };
        let size = ov.size.unwrap_or(h.size);
        if size > i64::MAX as u64 {
            return Err(TarError::Header {
                offset,
                reason: format!("entry '{}' claims {size} bytes", show()),
            });
        }
        self.remaining = size;
        self.padding = pad(size);
        self.content_is_raw = kind != EntryKind::Regular;
        Ok(Entry {
            path,
            link: ov.link.unwrap_or(h.link),
            kind,
            mode: h.mode & 0o7777,
            uid: ov.uid.unwrap_or(h.uid),
            gid: ov.gid.unwrap_or(h.gid),
            size,
            mtime: ov.mtime.unwrap_or(Time {
                sec: h.mtime,
                nsec: 0,
            }),
            atime: ov.atime,
            dev_major: h.dev_major,
            dev_minor: h.dev_minor,
            xattrs: ov.xattrs,
        })
    }

    /// Reads content of the current regular file. Returns 0 at its end.
    pub fn read_content(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if self.remaining == 0 || self.content_is_raw {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(TarError::Truncated {
                        offset: self.offset,
                    });
                }
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(TarError::Io {
                        offset: self.offset,
                        source,
                    });
                }
            }
        };
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }

    /// Reads everything left in the stream as raw bytes.
    fn drain(&mut self) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        loop {
            match self.inner.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.offset += n as u64;
                    self.raw.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(TarError::Io {
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
    }
}

impl<R: Read + Seek> TarReader<R> {
    /// Skips the rest of the current entry without reading it (no raw
    /// capture): for indexing the members of an archive file.
    pub fn skip_content(&mut self) -> Result<(), TarError> {
        let n = self.remaining + self.padding;
        self.inner
            .seek(SeekFrom::Current(n as i64))
            .map_err(|source| TarError::Io {
                offset: self.offset,
                source,
            })?;
        self.offset += n;
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

struct Header {
    path: Vec<u8>,
    link: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    dev_major: u32,
    dev_minor: u32,
}

impl Header {
    fn parse(b: &[u8; BLOCK], offset: u64) -> Result<Header, TarError> {
        let num = |range: std::ops::Range<usize>, field: &str| {
            parse_number(&b[range]).ok_or_else(|| TarError::Header {
                offset,
                reason: format!("field '{field}' is not a number"),
            })
        };
        let posix = &b[257..263] == b"ustar\0";
        let name = trim_nul(&b[0..100]);
        let path = if posix && b[345] != 0 {
            let mut p = trim_nul(&b[345..500]).to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            p
        } else {
            name.to_vec()
        };
        let typeflag = b[156];
        let devices = matches!(typeflag, b'3' | b'4');
        Ok(Header {
            path,
            link: trim_nul(&b[157..257]).to_vec(),
            typeflag,
            mode: num(100..108, "mode")? as u32,
            uid: num(108..116, "uid")?,
            gid: num(116..124, "gid")?,
            size: num(124..136, "size")?,
            mtime: num(136..148, "mtime")? as i64,
            dev_major: if devices {
                num(329..337, "devmajor")? as u32
            } else {
                0
            },
            dev_minor: if devices {
                num(337..345, "devminor")? as u32
            } else {
                0
            },
        })
    }
}

/// Octal ASCII (space or NUL terminated), or GNU base-256 when the high bit
/// of the first byte is set.
fn parse_number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s: &[u8] = trim_nul(field);
    let s = s.trim_ascii();
    if s.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for &c in s {
        if !(b'0'..=b'7').contains(&c) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

fn verify_checksum(b: &[u8; BLOCK], offset: u64) -> Result<(), TarError> {
    let corrupt = || TarError::Header {
        offset,
        reason: "not a tar stream, or corrupted (bad checksum)".into(),
    };
    let stored = parse_number(&b[148..156]).ok_or_else(corrupt)?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &c) in b.iter().enumerate() {
        let c = if (148..156).contains(&i) { b' ' } else { c };
        unsigned += c as u64;
        signed += c as i8 as i64;
    }
    if stored != unsigned && stored as i64 != signed {
        return Err(corrupt());
    }
    Ok(())
}

fn parse_time(v: &[u8]) -> Option<Time> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let sec: i64 = sec.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Time { sec, nsec })
}

fn parse_pax(data: &[u8], ov: &mut Overrides, offset: u64) -> Result<(), TarError> {
    let bad = |reason: &str| TarError::Header {
        offset,
        reason: format!("malformed PAX record: {reason}"),
    };
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("length is not a number"))?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("length does not match the record"));
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("no '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let number = |v: &[u8]| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad("value is not a number"))
        };
        match key {
            b"path" => ov.path = Some(value.to_vec()),
            b"linkpath" => ov.link = Some(value.to_vec()),
            b"size" => ov.size = Some(number(value)?),
            b"uid" => ov.uid = Some(number(value)?),
            b"gid" => ov.gid = Some(number(value)?),
            b"mtime" => ov.mtime = Some(parse_time(value).ok_or_else(|| bad("bad mtime"))?),
            b"atime" => ov.atime = Some(parse_time(value).ok_or_else(|| bad("bad atime"))?),
            _ if key.starts_with(b"SCHILY.xattr.") => ov
                .xattrs
                .push((key[b"SCHILY.xattr.".len()..].to_vec(), value.to_vec())),
            _ if key.starts_with(b"GNU.sparse.") => ov.sparse = true,
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>, TarError> {
        let mut r = TarReader::new(tar);
        let mut out = Vec::new();
        let mut raw = Vec::new();
        while let Some(e) = r.next_entry()? {
            raw.extend(r.take_raw());
            let mut content = Vec::new();
            let mut buf = [0u8; 7];
            loop {
                let n = r.read_content(&mut buf)?;
                if n == 0 {
                    break;
                }
                content.extend_from_slice(&buf[..n]);
            }
            out.push((e, content));
        }
        raw.extend(r.take_raw());
        let content_len: usize = out.iter().map(|(_, c)| c.len()).sum();
        assert_eq!(
            raw.len() + content_len,
            tar.len(),
            "every byte accounted for"
        );
        Ok(out)
    }

    fn builder() -> tar::Builder<Vec<u8>> {
        tar::Builder::new(Vec::new())
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_gid(50);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, data).unwrap();
    }

    #[test]
    fn reads_what_tar_rs_writes_including_long_names_and_xattrs() {
        let mut b = builder();
        file(&mut b, "etc/hostname", b"strata\n");
        let long = format!("{}/file", "d".repeat(150));
        file(&mut b, &long, b"x");
        b.append_pax_extensions([
            ("SCHILY.xattr.user.k", b"v".as_slice()),
            ("mtime", b"1700000001.5"),
        ])
        .unwrap();
        file(&mut b, "with-xattr", b"");
        let tar = b.into_inner().unwrap();
        let got = entries(&tar).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0.path, b"etc/hostname");
        assert_eq!(got[0].0.mode, 0o4755);
        assert_eq!((got[0].0.uid, got[0].0.gid), (1000, 50));
        assert_eq!(got[0].1, b"strata\n");
        assert_eq!(got[1].0.path, long.as_bytes());
        assert_eq!(got[2].0.xattrs, vec![(b"user.k".to_vec(), b"v".to_vec())]);
        assert_eq!(
            got[2].0.mtime,
            Time {
                sec: 1_700_000_001,
                nsec: 500_000_000
            }
        );
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut b = builder();
        file(&mut b, "a", &[7u8; 2000]);
        let tar = b.into_inner().unwrap();
        let err = entries(&tar[..1200]).unwrap_err();
        assert!(matches!(err, TarError::Truncated { .. }), "{err}");
    }

    #[test]
    fn garbage_is_not_a_tar() {
        let err = entries(&[b'z'; 1024]).unwrap_err();
        assert!(err.to_string().contains("not a tar stream"), "{err}");
    }

    #[test]
    fn huge_extension_headers_are_refused() {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(MAX_EXTENSION + 1);
        h.set_path("pax").unwrap();
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend(std::iter::repeat_n(0u8, 4096));
        let err = entries(&tar).unwrap_err();
        assert!(err.to_string().contains("byte limit"), "{err}");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"   755 \0"), Some(0o755));
        assert_eq!(parse_number(b"\0\0\0"), Some(0));
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_number(b"9"), None);
    }
}
