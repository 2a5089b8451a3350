//! The content store: immutable blobs addressed by their sha256 digest.
//!
//! Durability protocol for a blob (see ARCHITECTURE.md):
//! 1. bytes go to a fresh file in `ingest/`, hashed while written;
//! 2. the digest (and size, when known) is checked against what the caller expected;
//! 3. the file is fsynced, renamed to `blobs/sha256/<hex>`, and the folder is fsynced.
//!
//! A blob is therefore either absent or complete and verified; a crash leaves
//! at most a file in `ingest/`, which reconcile removes.

use crate::digest::{Digest, Hasher};
use crate::failpoint;
use crate::fsutil::{self, random_hex};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {0} is not in the content store")]
    NotFound(Digest),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What an ingest must turn out to be; checked before the blob becomes visible.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    /// Names the bytes in errors ("layer 2 of busybox.tar", ...).
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the content store under `dir`.
    pub fn open(dir: &Path) -> Result<ContentStore, ContentError> {
        let blobs = dir.join("blobs/sha256");
        let ingest = dir.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(io_at(d))?;
        }
        Ok(ContentStore { blobs, ingest })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::NotFound(digest.clone()),
            _ => io_at(&path)(e),
        })
    }

    /// Reads a whole blob; for small ones (manifests, configs).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut buf = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_at(&self.path(digest)))?;
        Ok(buf)
    }

    /// Starts writing a blob.
    pub fn writer(&self, expected: Expected) -> Result<Ingest, ContentError> {
        let temp = self.ingest.join(random_hex(16));
        let file = File::create_new(&temp).map_err(io_at(&temp))?;
        Ok(Ingest {
            file: Some(io::BufWriter::with_capacity(256 * 1024, file)),
            temp,
            blobs: self.blobs.clone(),
            hasher: Hasher::default(),
            expected,
            committed: false,
        })
    }

    /// Writes a small blob in one go.
    pub fn write_all(&self, bytes: &[u8], expected: Expected) -> Result<Digest, ContentError> {
        let mut ingest = self.writer(expected)?;
        ingest.write_all(bytes).map_err(io_at(&ingest.temp))?;
        ingest.commit()
    }

    /// Every blob on disk.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_at(&self.blobs))? {
            let entry = entry.map_err(io_at(&self.blobs))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Files in `blobs/sha256` whose names are not digests (left by tools or hands).
    pub fn strays(&self) -> Result<Vec<PathBuf>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_at(&self.blobs))? {
            let entry = entry.map_err(io_at(&self.blobs))?;
            let name = entry.file_name();
            if name
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_none()
            {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Re-hashes a blob and checks it still matches its name.
    pub fn verify(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.path(digest);
        let mut file = self.open_blob(digest)?;
        let mut hasher = Hasher::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io_at(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(ContentError::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Files left in `ingest/` by writers that never committed.
    pub fn ingests(&self) -> Result<Vec<PathBuf>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.ingest).map_err(io_at(&self.ingest))? {
            out.push(entry.map_err(io_at(&self.ingest))?.path());
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written. Dropping it without [`Ingest::commit`] discards it.
pub struct Ingest {
    file: Option<io::BufWriter<File>>,
    temp: PathBuf,
    blobs: PathBuf,
    hasher: Hasher,
    expected: Expected,
    committed: bool,
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Verifies, makes durable and publishes the blob; returns its digest.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        let file = self.file.take().expect("ingest committed twice");
        let file = file
            .into_inner()
            .map_err(|e| io_at(&self.temp)(e.into_error()))?;
        let hasher = std::mem::take(&mut self.hasher);
        let size = hasher.len();
        let actual = hasher.finish();
        let what = &self.expected.what;
        if let Some(expected) = self.expected.size
            && expected != size
        {
            return Err(ContentError::SizeMismatch {
                what: what.clone(),
                expected,
                actual: size,
            });
        }
        if let Some(expected) = &self.expected.digest
            && expected != &actual
        {
            return Err(ContentError::DigestMismatch {
                what: what.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        file.sync_all().map_err(io_at(&self.temp))?;
        drop(file);
        failpoint::hit("content-before-rename");
        let dest = self.blobs.join(actual.hex());
        fs::rename(&self.temp, &dest).map_err(io_at(&dest))?;
        self.committed = true;
        fsutil::sync_dir(&self.blobs).map_err(io_at(&self.blobs))?;
        Ok(actual)
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("write after commit").write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("flush after commit").flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.committed {
            // Never published: the bytes were not visible to anyone.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn write_read_verify() {
        let (_dir, store) = store();
        let d = store.write_all(b"hello", Expected::default()).unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.size(&d).unwrap(), 5);
        store.verify(&d).unwrap();
        assert_eq!(store.list().unwrap(), vec![d]);
        assert!(store.ingests().unwrap().is_empty());
    }

    #[test]
    fn wrong_digest_is_refused_and_leaves_nothing() {
        let (_dir, store) = store();
        let expected = Expected {
            digest: Some(Digest::of(b"other")),
            size: None,
            what: "layer 1".into(),
        };
        let err = store.write_all(b"hello", expected).unwrap_err();
        assert!(
            err.to_string().starts_with("layer 1: digest mismatch"),
            "{err}"
        );
        assert!(store.list().unwrap().is_empty());
        assert!(store.ingests().unwrap().is_empty());
    }

    #[test]
    fn wrong_size_is_refused() {
        let (_dir, store) = store();
        let expected = Expected {
            digest: None,
            size: Some(4),
            what: "config".into(),
        };
        let err = store.write_all(b"hello", expected).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: size mismatch: expected 4 bytes, got 5"
        );
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn dropped_ingest_is_discarded() {
        let (_dir, store) = store();
        let mut w = store.writer(Expected::default()).unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(store.ingests().unwrap().is_empty());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn corrupted_blob_fails_verify() {
        let (_dir, store) = store();
        let d = store.write_all(b"hello", Expected::default()).unwrap();
        fs::write(store.path(&d), b"jello").unwrap();
        let err = store.verify(&d).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    }
}
