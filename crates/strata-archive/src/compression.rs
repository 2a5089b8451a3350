//! Layer compression, recognised by magic bytes (never by file name).

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
/// compression turns out to be.
pub fn decompress<'a, R: Read + 'a>(
    reader: R,
) -> Result<(Compression, Box<dyn Read + 'a>), CompressionError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let kind = detect(buffered.fill_buf()?)?;
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(buffered),
        // Multi-member gzip streams are legal (pigz writes them).
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buffered)?),
    };
    Ok((kind, out))
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
}
