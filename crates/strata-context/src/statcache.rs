//! Content digests remembered by stat: a file whose (dev, ino, size, mtime,
//! ctime, mode) are unchanged is not read again.
//!
//! The cache file is binary: a magic, a record count, the records (path
//! length, path, six numbers, digest) and a sha256 of all of it, so a torn
//! or corrupt file is detected and taken as an empty cache. It is replaced
//! atomically (temp file + rename) and not fsynced: losing it only costs a
//! re-read.

use rustix::fs::Stat;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"STSCv001";
/// Past this many entries, entries not used since loading are dropped.
const MAX_ENTRIES: usize = 1 << 20;

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    mode: u32,
}

impl StatKey {
    pub fn of(st: &Stat) -> StatKey {
        StatKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec as i64,
            ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec as i64,
            mode: st.st_mode,
        }
    }

    pub fn ctime_ns(&self) -> i64 {
        self.ctime_ns
    }
}

struct Cached {
    key: StatKey,
    digest: [u8; 32],
    used: bool,
}

/// Path (relative to the tree root) -> stat -> sha256 of the content.
pub struct StatCache {
    /// Where it is saved; `None` for a cache that is never saved.
    file: Option<PathBuf>,
    entries: HashMap<Vec<u8>, Cached>,
    enabled: bool,
    dirty: bool,
}

impl StatCache {
    /// Loads the cache at `path`; missing or corrupt is an empty cache.
    pub fn load(path: &Path) -> StatCache {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|data| parse(&data))
            .unwrap_or_default();
        StatCache {
            file: Some(path.to_owned()),
            entries,
            enabled: true,
            dirty: false,
        }
    }

    /// A cache kept in memory only.
    pub fn in_memory() -> StatCache {
        StatCache {
            file: None,
            entries: HashMap::new(),
            enabled: true,
            dirty: false,
        }
    }

    /// A cache that never hits (for `--no-cache`) and is never saved.
    pub fn disabled() -> StatCache {
        StatCache {
            enabled: false,
            ..StatCache::in_memory()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&mut self, path: &[u8], key: &StatKey) -> Option<[u8; 32]> {
        if !self.enabled {
            return None;
        }
        let cached = self.entries.get_mut(path)?;
        if cached.key != *key {
            return None;
        }
        cached.used = true;
        Some(cached.digest)
    }

    pub(crate) fn insert(&mut self, path: &[u8], key: StatKey, digest: [u8; 32]) {
        if !self.enabled {
            return;
        }
        let cached = Cached {
            key,
            digest,
            used: true,
        };
        self.entries.insert(path.to_vec(), cached);
        self.dirty = true;
    }

    /// Writes the cache if it changed (temp file + rename).
    pub fn save(&self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.enabled || !self.dirty {
            return Ok(());
        }
        let data = self.encode();
        let mut tmp_name = file.as_os_str().to_owned();
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp_name);
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&data))
            .and_then(|()| std::fs::rename(&tmp, file));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn encode(&self) -> Vec<u8> {
        let keep_unused = self.entries.len() <= MAX_ENTRIES;
        let kept: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, c)| keep_unused || c.used)
            .collect();
        let mut out = Vec::with_capacity(16 + kept.len() * 120);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(kept.len() as u64).to_le_bytes());
        for (path, c) in kept {
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path);
            let k = &c.key;
            for n in [k.dev, k.ino, k.size, k.mtime_ns as u64, k.ctime_ns as u64] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(&k.mode.to_le_bytes());
            out.extend_from_slice(&c.digest);
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }
}

/// Decodes a cache file; `None` if anything is off.
fn parse(data: &[u8]) -> Option<HashMap<Vec<u8>, Cached>> {
    let (body, sum) = data.split_at_checked(data.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(8)? != MAGIC {
        return None;
    }
    let count = r.u64()?;
    // Each record is at least 84 bytes: a bogus count cannot make us
    // allocate more than the file's size warrants.
    let mut entries = HashMap::with_capacity((count as usize).min(body.len() / 84));
    for _ in 0..count {
        let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        let path = r.take(len)?.to_vec();
        let key = StatKey {
            dev: r.u64()?,
            ino: r.u64()?,
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            mode: u32::from_le_bytes(r.take(4)?.try_into().ok()?),
        };
        let digest = r.take(32)?.try_into().ok()?;
        let cached = Cached {
            key,
            digest,
            used: false,
        };
        entries.insert(path, cached);
    }
    r.0.is_empty().then_some(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> StatKey {
        StatKey {
            dev: 1,
            ino: n,
            size: 10,
            mtime_ns: 5,
            ctime_ns: 6,
            mode: 0o100644,
        }
    }

    #[test]
    fn round_trips_and_rejects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cache");
        let mut c = StatCache::load(&file);
        assert!(c.is_empty());
        c.insert(b"a/b", key(1), [7; 32]);
        c.insert(b"c", key(2), [8; 32]);
        c.save().unwrap();

        let mut c = StatCache::load(&file);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(b"a/b", &key(1)), Some([7; 32]));
        assert_eq!(c.get(b"a/b", &key(3)), None);

        let mut data = std::fs::read(&file).unwrap();
        data[20] ^= 1;
        std::fs::write(&file, &data).unwrap();
        assert!(StatCache::load(&file).is_empty());
        std::fs::write(&file, b"short").unwrap();
        assert!(StatCache::load(&file).is_empty());
    }

    #[test]
    fn disabled_never_hits() {
        let mut c = StatCache::disabled();
        c.insert(b"a", key(1), [1; 32]);
        assert_eq!(c.get(b"a", &key(1)), None);
    }
}
