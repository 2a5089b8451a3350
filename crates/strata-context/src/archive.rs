//! ADD's local archives: a file is extracted when its content is a tar,
//! plain or compressed with gzip, bzip2, xz or zstd. This is decided by the
//! magic bytes and a valid first tar header, never by the file name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use strata_archive::{Applied, ApplyError, Format};

const TAR_BLOCK: usize = 512;

/// `reader` decompressed, if it starts with a known compression magic.
fn decoder<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        [b'B', b'Z', b'h', ..] => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => {
            Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(reader))
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::Decoder::with_buffer(reader)?),
        _ => Box::new(reader),
    })
}

/// The file's tar stream if it is a (possibly compressed) tar archive.
/// The first block, already read to check it, is put back in front.
pub(crate) fn open_tar(file: File) -> io::Result<Option<Box<dyn Read>>> {
    let mut stream = decoder(BufReader::with_capacity(256 * 1024, file))?;
    let mut first = vec![0u8; TAR_BLOCK];
    let mut filled = 0;
    while filled < TAR_BLOCK {
        match stream.read(&mut first[filled..]) {
            Ok(0) => return Ok(None),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Corrupt compressed data: not an archive, copied as a file.
            Err(_) => return Ok(None),
        }
    }
    if !is_tar_header(&first) {
        return Ok(None);
    }
    Ok(Some(Box::new(io::Cursor::new(first).chain(stream))))
}

/// Whether `block` is a tar header: a name, and a checksum field that
/// matches the block's bytes (with the field itself counted as spaces).
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() != TAR_BLOCK || block[0] == 0 {
        return false;
    }
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { b' ' } else { b } as u64)
        .sum();
    // Some old tars summed signed bytes.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { b' ' as i8 } else { b as i8 } as i64)
        .sum();
    stored == unsigned || stored as i64 == signed
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, 8).ok()
}

/// Extracts `tar` into the directory at `target` (a `/proc/self/fd/N` path
/// of a directory resolved inside the root filesystem): entries cannot
/// leave it.
pub(crate) fn extract(tar: Box<dyn Read>, target: &Path) -> Result<Applied, ApplyError> {
    strata_archive::apply::<_, io::Sink>(tar, target, Format::Plain, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_a_tar_header() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_cksum();
        builder.append_data(&mut header, "x", &b"hi"[..]).unwrap();
        let data = builder.into_inner().unwrap();
        assert!(is_tar_header(&data[..TAR_BLOCK]));
        let mut bad = data[..TAR_BLOCK].to_vec();
        bad[0] ^= 1;
        assert!(!is_tar_header(&bad));
        assert!(!is_tar_header(&[b'a'; TAR_BLOCK]));
    }
}
