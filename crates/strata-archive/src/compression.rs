//! Layer compression, recognised by magic bytes (never by file name).
//!
//! Gzip is parsed here (RFC 1952) and only the deflate data is handed to
//! zlib: the member's CRC32 costs a fifth of inflating, and when the caller
//! verifies a digest of the layer anyway it can ask to skip it
//! ([`Integrity::Digest`]). Member lengths (ISIZE) and header checksums are
//! always checked.

use flate2::{Crc, Decompress, FlushDecompress, Status};
use std::io::{self, BufRead, BufReader, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type suffix.
    pub fn media_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// What checks the decompressed content, and so whether gzip's CRC32 must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Nothing else does: every gzip member's CRC32 is checked.
    Crc,
    /// The caller checks a sha256 of the compressed or the uncompressed
    /// stream, which corrupt data cannot pass: the CRC32 would add nothing.
    Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("{0} compression is not supported for layers; use gzip, zstd or none")]
    Unsupported(&'static str),
    #[error("reading compressed data: {0}")]
    Io(#[from] io::Error),
}

/// Recognises the compression from the first bytes of a stream.
pub fn detect(head: &[u8]) -> Result<Compression, CompressionError> {
    Ok(match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => {
            return Err(CompressionError::Unsupported("xz"));
        }
        [b'B', b'Z', b'h', ..] => return Err(CompressionError::Unsupported("bzip2")),
        _ => Compression::None,
    })
}

/// Wraps `reader` so it yields the uncompressed stream, whatever the
/// compression turns out to be. Gzip CRCs are checked.
pub fn decompress<'a, R: Read + 'a>(
    reader: R,
) -> Result<(Compression, Box<dyn Read + 'a>), CompressionError> {
    decompress_buffered(BufReader::with_capacity(256 * 1024, reader), Integrity::Crc)
}

/// [`decompress`] for a reader that buffers already, with the checks the
/// caller needs.
pub fn decompress_buffered<'a, R: BufRead + 'a>(
    mut reader: R,
    integrity: Integrity,
) -> Result<(Compression, Box<dyn Read + 'a>), CompressionError> {
    let kind = detect(reader.fill_buf()?)?;
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(GzipReader::new(reader, integrity)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(reader)?),
    };
    Ok((kind, out))
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xe0;

/// Where a [`GzipReader`] is in its stream.
enum Part {
    Header,
    Deflate,
    Trailer,
    End,
}

/// A gzip stream of one or more members (pigz writes several), read as the
/// concatenation of their contents. Anything after the last member that is
/// not another member is an error, as for Docker.
pub struct GzipReader<R> {
    inner: R,
    inflate: Decompress,
    /// The current member's CRC32, when it is checked.
    crc: Option<Crc>,
    /// The current member's length so far, modulo 2^32 as ISIZE stores it.
    size: u32,
    part: Part,
}

impl<R: BufRead> GzipReader<R> {
    pub fn new(inner: R, integrity: Integrity) -> Self {
        GzipReader {
            inner,
            inflate: Decompress::new(false),
            crc: (integrity == Integrity::Crc).then(Crc::new),
            size: 0,
            part: Part::Header,
        }
    }

    /// Inflates into `buf`; Ok(0) only at the end of the member.
    fn inflate_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let input = self.inner.fill_buf()?;
        let at_eof = input.is_empty();
        let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self
            .inflate
            .decompress(input, buf, FlushDecompress::None)
            .map_err(|e| corrupt(format!("bad deflate data: {e}")))?;
        let consumed = (self.inflate.total_in() - in_before) as usize;
        let produced = (self.inflate.total_out() - out_before) as usize;
        self.inner.consume(consumed);
        if let Some(crc) = &mut self.crc {
            crc.update(&buf[..produced]);
        }
        self.size = self.size.wrapping_add(produced as u32);
        match status {
            Status::StreamEnd => self.part = Part::Trailer,
            _ if at_eof => return Err(truncated()),
            // zlib always moves when it has input and room: guard the loop.
            _ if consumed == 0 && produced == 0 => {
                return Err(corrupt("the deflate data makes no progress".into()));
            }
            _ => {}
        }
        Ok(produced)
    }

    fn check_trailer(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.inner
            .read_exact(&mut trailer)
            .map_err(eof_is_truncation)?;
        let [c0, c1, c2, c3, s0, s1, s2, s3] = trailer;
        if let Some(crc) = &self.crc
            && crc.sum() != u32::from_le_bytes([c0, c1, c2, c3])
        {
            return Err(corrupt(
                "a member's CRC32 does not match its content".into(),
            ));
        }
        if self.size != u32::from_le_bytes([s0, s1, s2, s3]) {
            return Err(corrupt(
                "a member's length does not match its trailer".into(),
            ));
        }
        Ok(())
    }

    fn start_member(&mut self) -> io::Result<()> {
        read_header(&mut self.inner)?;
        self.inflate.reset(false);
        if let Some(crc) = &mut self.crc {
            crc.reset();
        }
        self.size = 0;
        Ok(())
    }
}

impl<R: BufRead> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.part {
                Part::Header => {
                    self.start_member()?;
                    self.part = Part::Deflate;
                }
                Part::Deflate => {
                    let n = self.inflate_into(buf)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                Part::Trailer => {
                    self.check_trailer()?;
                    self.part = if self.inner.fill_buf()?.is_empty() {
                        Part::End
                    } else {
                        Part::Header
                    };
                }
                Part::End => return Ok(0),
            }
        }
    }
}

/// Reads a member header, checking its CRC16 when it has one.
fn read_header<R: BufRead>(inner: &mut R) -> io::Result<()> {
    let mut h = HeaderReader {
        inner,
        crc: Crc::new(),
    };
    let mut magic = [0u8; 2];
    h.read_exact(&mut magic)?;
    if magic != [0x1f, 0x8b] {
        return Err(corrupt(
            "data after a member is not another gzip member".into(),
        ));
    }
    // Method, flags, mtime, extra flags, OS.
    let mut fixed = [0u8; 8];
    h.read_exact(&mut fixed)?;
    let [method, flags, ..] = fixed;
    if method != 8 {
        return Err(corrupt(format!("unknown compression method {method}")));
    }
    if flags & RESERVED != 0 {
        return Err(corrupt(format!("reserved header flags set ({flags:#04x})")));
    }
    if flags & FEXTRA != 0 {
        let mut len = [0u8; 2];
        h.read_exact(&mut len)?;
        h.skip(usize::from(u16::from_le_bytes(len)))?;
    }
    if flags & FNAME != 0 {
        h.skip_string()?;
    }
    if flags & FCOMMENT != 0 {
        h.skip_string()?;
    }
    if flags & FHCRC != 0 {
        let expected = h.crc.sum() as u16;
        let mut stored = [0u8; 2];
        h.inner.read_exact(&mut stored).map_err(eof_is_truncation)?;
        if u16::from_le_bytes(stored) != expected {
            return Err(corrupt("the header checksum does not match".into()));
        }
    }
    Ok(())
}

/// Reads header bytes, adding them to the header's CRC.
struct HeaderReader<'a, R> {
    inner: &'a mut R,
    crc: Crc,
}

impl<R: BufRead> HeaderReader<'_, R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf).map_err(eof_is_truncation)?;
        self.crc.update(buf);
        Ok(())
    }

    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let buf = fill(self.inner)?;
            let take = buf.len().min(n);
            self.crc.update(&buf[..take]);
            self.inner.consume(take);
            n -= take;
        }
        Ok(())
    }

    /// Skips a zero-terminated field (name, comment): any length, streamed.
    fn skip_string(&mut self) -> io::Result<()> {
        loop {
            let buf = fill(self.inner)?;
            let (take, done) = match buf.iter().position(|&b| b == 0) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            self.crc.update(&buf[..take]);
            self.inner.consume(take);
            if done {
                return Ok(());
            }
        }
    }
}

/// The buffered bytes; the end of the stream is an error inside a header.
fn fill<R: BufRead>(r: &mut R) -> io::Result<&[u8]> {
    match r.fill_buf()? {
        [] => Err(truncated()),
        buf => Ok(buf),
    }
}

fn corrupt(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {reason}"))
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "gzip: the stream ends early")
}

fn eof_is_truncation(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        truncated()
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
        }
    }

    #[test]
    fn detects_by_magic_and_decompresses() {
        for kind in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let packed = roundtrip(kind, b"hello layer");
            let (got, mut r) = decompress(&packed[..]).unwrap();
            assert_eq!(got, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"hello layer");
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let packed = roundtrip(Compression::Gzip, &[42u8; 100_000]);
        let (_, mut r) = decompress(&packed[..packed.len() / 2]).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn xz_is_refused_by_name() {
        let err = detect(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "xz compression is not supported for layers; use gzip, zstd or none"
        );
    }

    /// Optional header fields of a hand-made gzip member.
    #[derive(Default, Clone, Copy)]
    struct Fields<'a> {
        extra: Option<&'a [u8]>,
        name: Option<&'a [u8]>,
        comment: Option<&'a [u8]>,
        header_crc: bool,
    }

    /// One gzip member, written by hand so every header field is exercised
    /// independently of any encoder's choices.
    fn member(data: &[u8], f: Fields) -> Vec<u8> {
        let flags = [
            (f.header_crc, FHCRC),
            (f.extra.is_some(), FEXTRA),
            (f.name.is_some(), FNAME),
            (f.comment.is_some(), FCOMMENT),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit);
        let mut out = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
        if let Some(extra) = f.extra {
            out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            out.extend_from_slice(extra);
        }
        for field in [f.name, f.comment].into_iter().flatten() {
            out.extend_from_slice(field);
            out.push(0);
        }
        if f.header_crc {
            let mut crc = Crc::new();
            crc.update(&out);
            out.extend_from_slice(&(crc.sum() as u16).to_le_bytes());
        }
        let mut deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(data).unwrap();
        out.extend(deflate.finish().unwrap());
        let mut crc = Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }

    /// Reads `stream` through buffers of several sizes (1 byte splits every
    /// field across reads) and compares with `expected`: the content, or a
    /// fragment of the error.
    fn check(stream: &[u8], integrity: Integrity, expected: Result<&[u8], &str>) {
        for capacity in [1, 7, 64 * 1024] {
            let reader = BufReader::with_capacity(capacity, stream);
            let mut out = Vec::new();
            let got = GzipReader::new(reader, integrity).read_to_end(&mut out);
            match (got, expected) {
                (Ok(_), Ok(want)) => assert_eq!(out, want, "capacity {capacity}"),
                (Err(e), Err(want)) => {
                    assert!(e.to_string().contains(want), "{e} lacks '{want}'")
                }
                (got, want) => panic!("capacity {capacity}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn gzip_header_fields_are_parsed() {
        let data = content(100_000);
        let all = Fields {
            extra: Some(b"AB\x02\x00hi"),
            name: Some(b"layer.tar"),
            comment: Some(b"made by hand"),
            header_crc: true,
        };
        let cases = [
            Fields::default(),
            Fields {
                extra: Some(b""),
                ..Fields::default()
            },
            Fields {
                name: Some(b""),
                ..Fields::default()
            },
            Fields {
                header_crc: true,
                ..Fields::default()
            },
            all,
        ];
        for fields in cases {
            for integrity in [Integrity::Crc, Integrity::Digest] {
                check(&member(&data, fields), integrity, Ok(&data));
            }
        }
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let (a, b) = (content(70_000), b"second member".to_vec());
        let named = Fields {
            name: Some(b"b"),
            header_crc: true,
            ..Fields::default()
        };
        let stream = [
            member(&a, Fields::default()),
            member(b"", Fields::default()),
            member(&b, named),
        ]
        .concat();
        check(&stream, Integrity::Crc, Ok(&[a, b].concat()));
        // What a real encoder writes, twice (as pigz does).
        let twice = [
            roundtrip(Compression::Gzip, b"one "),
            roundtrip(Compression::Gzip, b"two"),
        ]
        .concat();
        check(&twice, Integrity::Digest, Ok(b"one two"));
    }

    #[test]
    fn gzip_damage_is_found() {
        let data = content(50_000);
        let good = member(&data, Fields::default());
        let len = good.len();
        let flip = |at: usize| {
            let mut bad = good.clone();
            bad[at] ^= 0x55;
            bad
        };
        let with_crc = member(
            &data,
            Fields {
                name: Some(b"x"),
                header_crc: true,
                ..Fields::default()
            },
        );
        let mut bad_header_crc = with_crc.clone();
        bad_header_crc[12] ^= 1; // the name byte: the header CRC16 no longer matches

        // (stream, what checking CRCs finds, what trusting a digest finds)
        let cases: [(Vec<u8>, &str, Option<&str>); 9] = [
            (flip(len - 8), "CRC32", None),
            (flip(len - 3), "length", Some("length")),
            (good[..len / 2].to_vec(), "ends early", Some("ends early")),
            (good[..len - 4].to_vec(), "ends early", Some("ends early")),
            (with_crc[..11].to_vec(), "ends early", Some("ends early")),
            (bad_header_crc, "header checksum", Some("header checksum")),
            (
                [&good[..], b"junk"].concat(),
                "not another gzip member",
                Some("not another"),
            ),
            (flip(2), "compression method", Some("compression method")),
            (
                {
                    let mut r = good.clone();
                    r[3] = 0x20;
                    r
                },
                "reserved",
                Some("reserved"),
            ),
        ];
        for (stream, checked, trusted) in cases {
            check(&stream, Integrity::Crc, Err(checked));
            match trusted {
                Some(err) => check(&stream, Integrity::Digest, Err(err)),
                None => check(&stream, Integrity::Digest, Ok(&data)),
            }
        }
    }
}
