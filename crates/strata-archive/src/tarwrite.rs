//! A small deterministic tar writer: ustar headers, with a PAX header only
//! when something does not fit (long names, big ids or sizes, xattrs).
//! Same input, same bytes: owner names are left empty and times are whole
//! seconds, as Docker writes layers.

use std::io::{self, Read, Write};

use crate::tarstream::{EntryKind, Time};

const BLOCK: usize = 512;

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: Time,
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Header {
    /// An empty regular file, as whiteouts are written.
    pub fn marker(path: Vec<u8>, mtime: Time) -> Header {
        Header {
            path,
            kind: EntryKind::Regular,
            mode: 0o600,
            uid: 0,
            gid: 0,
            size: 0,
            mtime,
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        }
    }
}

pub struct TarWriter<W: Write> {
    out: W,
    written: u64,
}

fn octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // The length prefix counts itself, so find the fixed point.
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out, written: 0 }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.put(&[0u8; BLOCK][..pad as usize])
    }

    /// Writes an entry; `content` must yield exactly `h.size` bytes.
    pub fn append(&mut self, h: &Header, content: &mut dyn Read) -> io::Result<()> {
        let mut name = h.path.clone();
        if h.kind == EntryKind::Directory && !name.ends_with(b"/") {
            name.push(b'/');
        }
        let mut block = [0u8; BLOCK];
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax_record(&mut pax, b"path", &name);
        } else {
            block[..name.len()].copy_from_slice(&name);
        }
        if h.link.len() > 100 {
            pax_record(&mut pax, b"linkpath", &h.link);
        } else {
            block[157..157 + h.link.len()].copy_from_slice(&h.link);
        }
        octal(&mut block[100..108], h.mode as u64 & 0o7777);
        if !octal(&mut block[108..116], h.uid) {
            pax_record(&mut pax, b"uid", h.uid.to_string().as_bytes());
            octal(&mut block[108..116], 0);
        }
        if !octal(&mut block[116..124], h.gid) {
            pax_record(&mut pax, b"gid", h.gid.to_string().as_bytes());
            octal(&mut block[116..124], 0);
        }
        let size = if h.kind == EntryKind::Regular {
            h.size
        } else {
            0
        };
        if !octal(&mut block[124..136], size) {
            pax_record(&mut pax, b"size", size.to_string().as_bytes());
            octal(&mut block[124..136], 0);
        }
        if h.mtime.sec < 0 || !octal(&mut block[136..148], h.mtime.sec as u64) {
            pax_record(&mut pax, b"mtime", h.mtime.sec.to_string().as_bytes());
            octal(&mut block[136..148], 0);
        }
        block[156] = match h.kind {
            EntryKind::Regular => b'0',
            EntryKind::Hardlink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::Char => b'3',
            EntryKind::Block => b'4',
            EntryKind::Directory => b'5',
            EntryKind::Fifo => b'6',
        };
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        octal(&mut block[329..337], h.dev_major as u64);
        octal(&mut block[337..345], h.dev_minor as u64);
        let mut xattrs = h.xattrs.clone();
        xattrs.sort();
        for (key, value) in &xattrs {
            let mut k = b"SCHILY.xattr.".to_vec();
            k.extend_from_slice(key);
            pax_record(&mut pax, &k, value);
        }
        if !pax.is_empty() {
            self.pax_header(&name, h.mtime, &pax)?;
        }
        checksum(&mut block);
        self.put(&block)?;
        if size > 0 {
            let n = io::copy(&mut content.take(size), &mut CountingWrite(self))?;
            if n != size {
                return Err(io::Error::other(format!(
                    "'{}' changed while being archived: {n} bytes, expected {size}",
                    String::from_utf8_lossy(&h.path)
                )));
            }
            self.pad(size)?;
        }
        Ok(())
    }

    fn pax_header(&mut self, name: &[u8], mtime: Time, records: &[u8]) -> io::Result<()> {
        let base = name
            .rsplit(|&b| b == b'/')
            .find(|c| !c.is_empty())
            .unwrap_or(b"entry");
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(&base[..base.len().min(88)]);
        let mut block = [0u8; BLOCK];
        block[..pax_name.len()].copy_from_slice(&pax_name);
        octal(&mut block[100..108], 0o644);
        octal(&mut block[108..116], 0);
        octal(&mut block[116..124], 0);
        octal(&mut block[124..136], records.len() as u64);
        octal(&mut block[136..148], mtime.sec.max(0) as u64);
        block[156] = b'x';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        checksum(&mut block);
        self.put(&block)?;
        self.put(records)?;
        self.pad(records.len() as u64)
    }

    /// Writes the end-of-archive blocks; returns the writer and the size of
    /// the whole tar.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.put(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

struct CountingWrite<'a, W: Write>(&'a mut TarWriter<W>);

impl<W: Write> Write for CountingWrite<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.out.write(buf)?;
        self.0.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.out.flush()
    }
}

fn checksum(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| b as u64).sum();
    octal(&mut block[148..155], sum);
    block[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarstream::TarReader;

    #[test]
    fn what_we_write_reads_back_exactly() {
        let long = format!("{}/name", "x".repeat(120)).into_bytes();
        let entries = [
            Header {
                path: long.clone(),
                kind: EntryKind::Regular,
                mode: 0o4755,
                uid: 5_000_000,
                gid: 7,
                size: 5,
                mtime: Time {
                    sec: 1_700_000_000,
                    nsec: 0,
                },
                link: Vec::new(),
                dev_major: 0,
                dev_minor: 0,
                xattrs: vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2])],
            },
            Header {
                kind: EntryKind::Char,
                dev_major: 1,
                dev_minor: 3,
                ..Header::marker(b"dev/null".to_vec(), Time::default())
            },
        ];
        let mut w = TarWriter::new(Vec::new());
        w.append(&entries[0], &mut &b"hello"[..]).unwrap();
        w.append(&entries[1], &mut io::empty()).unwrap();
        let (bytes, len) = w.finish().unwrap();
        assert_eq!(len, bytes.len() as u64);
        let mut r = TarReader::new(&bytes[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, long);
        assert_eq!((e.uid, e.gid, e.mode, e.size), (5_000_000, 7, 0o4755, 5));
        assert_eq!(e.xattrs, entries[0].xattrs);
        let mut buf = [0u8; 16];
        assert_eq!(r.read_content(&mut buf).unwrap(), 5);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.dev_major, e.dev_minor), (EntryKind::Char, 1, 3));
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn pax_lengths_count_themselves() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", &[b'a'; 93]);
        assert_eq!(out.len(), 103);
        assert!(out.starts_with(b"103 path="));
    }
}
