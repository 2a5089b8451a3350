//! The cache checksum of a COPY: a sha256 over, per copied entry, its path
//! where it lands, type, permission bits, size, symlink target, content
//! digest and (for trees that keep owners) uid/gid. Times are left out, so
//! touching a file does not invalidate the cache.
//!
//! Content digests come from the [`StatCache`] when the file's stat is
//! unchanged; the rest are read in parallel, one thread per core.

use rustix::fd::AsFd;
use rustix::fs::{self, FileType, OFlags};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_archive::fsops;

use crate::statcache::{StatCache, StatKey};
use crate::walk::{Entry, split_parent, walk};
use crate::{ContextError, Source, Tree, io_err};

/// Most threads used to read files.
const MAX_THREADS: usize = 4;
/// A file changed less than this before we started reading it may change
/// again within the same filesystem timestamp tick, unseen by its stat: its
/// digest is used but not cached.
const RACY: Duration = Duration::from_millis(50);

pub(crate) fn checksum(
    tree: &Tree,
    sources: &[Source],
    cache: &mut StatCache,
) -> Result<String, ContextError> {
    let mut sum = Sha256::new();
    for source in sources {
        let entries = walk(tree, source)?;
        let digests = content_digests(tree, &entries, cache)?;
        field(&mut sum, if source.is_dir() { b"dir" } else { b"file" });
        for (entry, digest) in entries.iter().zip(digests) {
            // A file lands under its source name; a directory's entries
            // under their path inside it.
            let path = if source.is_dir() {
                entry.rel()
            } else {
                source.name_bytes()
            };
            record(tree, &mut sum, path, entry, digest)?;
        }
    }
    Ok(hex::encode(sum.finalize()))
}

/// Hashes one entry's description into `sum`; every field is
/// length-prefixed so no two different trees produce the same stream.
fn record(
    tree: &Tree,
    sum: &mut Sha256,
    path: &[u8],
    entry: &Entry,
    digest: Option<[u8; 32]>,
) -> Result<(), ContextError> {
    let st = &entry.stat;
    let kind = fsops::file_type(st);
    field(sum, path);
    field(sum, &[kind_byte(kind)]);
    field(sum, &(st.st_mode & 0o7777).to_le_bytes());
    if tree.keeps_owners() {
        field(sum, &st.st_uid.to_le_bytes());
        field(sum, &st.st_gid.to_le_bytes());
    }
    match kind {
        FileType::RegularFile => {
            field(sum, &(st.st_size as u64).to_le_bytes());
            field(sum, &digest.unwrap_or_default());
        }
        FileType::Symlink => field(sum, &link_target(tree, &entry.path)?),
        FileType::CharacterDevice | FileType::BlockDevice => {
            field(sum, &st.st_rdev.to_le_bytes());
        }
        _ => {}
    }
    Ok(())
}

fn field(sum: &mut Sha256, data: &[u8]) {
    sum.update((data.len() as u64).to_le_bytes());
    sum.update(data);
}

fn kind_byte(kind: FileType) -> u8 {
    match kind {
        FileType::RegularFile => b'f',
        FileType::Directory => b'd',
        FileType::Symlink => b'l',
        FileType::CharacterDevice => b'c',
        FileType::BlockDevice => b'b',
        FileType::Fifo => b'p',
        FileType::Socket => b's',
        FileType::Unknown => b'?',
    }
}

fn link_target(tree: &Tree, path: &[u8]) -> Result<Vec<u8>, ContextError> {
    let (parent, name) = split_parent(path);
    let dir = fsops::open_beneath(tree.root(), parent, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(io_err("opening directory", parent))?;
    let target = fs::readlinkat(dir.as_fd(), name, Vec::new())
        .map_err(|e| io_err("reading symlink", path)(e.into()))?;
    Ok(target.into_bytes())
}

/// Content digests of the regular files among `entries` (`None` for other
/// entries), from the cache where the stat matches, else read.
fn content_digests(
    tree: &Tree,
    entries: &[Entry],
    cache: &mut StatCache,
) -> Result<Vec<Option<[u8; 32]>>, ContextError> {
    let mut digests = vec![None; entries.len()];
    let mut todo = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if fsops::file_type(&entry.stat) != FileType::RegularFile {
            continue;
        }
        match cache.get(&entry.path, &StatKey::of(&entry.stat)) {
            Some(d) => digests[i] = Some(d),
            None => todo.push(i),
        }
    }
    if todo.is_empty() {
        return Ok(digests);
    }
    let started = now_ns() - RACY.as_nanos() as i64;
    for (i, digest) in hash_files(tree, entries, &todo)? {
        digests[i] = Some(digest);
        let key = StatKey::of(&entries[i].stat);
        if key.ctime_ns() < started {
            cache.insert(&entries[i].path, key, digest);
        }
    }
    Ok(digests)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Reads and hashes `entries[i]` for each `i` in `todo`, spreading the
/// files over the cores.
fn hash_files(
    tree: &Tree,
    entries: &[Entry],
    todo: &[usize],
) -> Result<Vec<(usize, [u8; 32])>, ContextError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(todo.len());
    let next = AtomicUsize::new(0);
    let work = || -> Result<Vec<(usize, [u8; 32])>, ContextError> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = Vec::new();
        loop {
            let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(done);
            };
            let path = &entries[i].path;
            let digest = hash_file(tree, path, &mut buf).map_err(io_err("reading", path))?;
            done.push((i, digest));
        }
    };
    if threads <= 1 {
        return work();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        let mut all = Vec::with_capacity(todo.len());
        for handle in handles {
            match handle.join() {
                Ok(done) => all.extend(done?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })
}

fn hash_file(tree: &Tree, path: &[u8], buf: &mut [u8]) -> io::Result<[u8; 32]> {
    let fd = fsops::open_beneath(tree.root(), path, OFlags::RDONLY)?;
    let mut file = File::from(fd);
    let mut sum = Sha256::new();
    loop {
        match file.read(buf) {
            Ok(0) => return Ok(sum.finalize().into()),
            Ok(n) => sum.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
