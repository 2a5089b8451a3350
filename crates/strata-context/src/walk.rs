//! Listing what one source copies: the source itself and, for a directory,
//! everything below it in name order, without what `.dockerignore` hides.
//! Nothing below the source is followed: symlinks are entries.
//!
//! A fully cached rebuild spends most of its time here (one `fstatat` per
//! file), so the walk has two phases: directories are listed one after the
//! other using the entry types `getdents` reports, then all entries are
//! stat'ed in parallel.

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self, AtFlags, FileType, OFlags, Stat};
use rustix::io::Errno;

use strata_archive::fsops;

use crate::ignore::{MatchState, path_str};
use crate::{ContextError, Source, Tree, io_err};

/// Most threads used to stat entries.
const MAX_THREADS: usize = 4;
/// Below this many entries a second thread costs more than it saves.
const PARALLEL_MIN: usize = 512;

pub(crate) struct Entry {
    /// Path relative to the tree root.
    pub path: Vec<u8>,
    /// Where the part relative to the source starts in `path`.
    rel_at: usize,
    pub stat: Stat,
}

impl Entry {
    /// Path relative to the source ("" for the source itself).
    pub fn rel(&self) -> &[u8] {
        self.path.get(self.rel_at..).unwrap_or_default()
    }

    pub fn name(&self) -> &[u8] {
        let rel = self.rel();
        rel.rsplit(|&b| b == b'/').next().unwrap_or(rel)
    }

    /// Depth below the source (0 for the source, 1 for its entries).
    pub fn depth(&self) -> usize {
        let rel = self.rel();
        if rel.is_empty() {
            0
        } else {
            1 + rel.iter().filter(|&&b| b == b'/').count()
        }
    }
}

/// Lists `source`, the source itself first, in pre-order.
pub(crate) fn walk(tree: &Tree, source: &Source) -> Result<Vec<Entry>, ContextError> {
    let path = source.path_bytes();
    if !source.is_dir() {
        let (parent, name) = split_parent(path);
        let dir = fsops::open_beneath(tree.root(), parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(io_err("opening directory", parent))?;
        let stat = fs::statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("stat", path)(e.into()))?;
        return Ok(vec![Entry {
            path: path.to_vec(),
            rel_at: path.len(),
            stat,
        }]);
    }
    let dir = fsops::open_beneath(tree.root(), path, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(io_err("opening directory", path))?;
    let mut lister = Lister {
        tree,
        found: Vec::new(),
    };
    let state = tree.ignore().state_of(&path_str(path));
    lister.dir(dir.as_fd(), path, &state)?;
    let stats = stat_all(dir.as_fd(), path.len(), &lister.found)?;

    let top = fs::fstat(&dir).map_err(|e| io_err("stat", path)(e.into()))?;
    let mut entries = Vec::with_capacity(lister.found.len() + 1);
    entries.push(Entry {
        path: path.to_vec(),
        rel_at: path.len(),
        stat: top,
    });
    let rel_at = if path.is_empty() { 0 } else { path.len() + 1 };
    for (path, stat) in lister.found.into_iter().zip(stats) {
        // `None`: removed since it was listed.
        if let Some(stat) = stat {
            entries.push(Entry { path, rel_at, stat });
        }
    }
    Ok(entries)
}

/// The first phase: paths of the entries to copy, in pre-order.
struct Lister<'a> {
    tree: &'a Tree,
    found: Vec<Vec<u8>>,
}

impl Lister<'_> {
    fn dir(
        &mut self,
        dir: BorrowedFd,
        path: &[u8],
        state: &MatchState,
    ) -> Result<(), ContextError> {
        let ignore = self.tree.ignore();
        for (name, kind) in
            fsops::read_dir_entries(dir).map_err(io_err("reading directory", path))?
        {
            let child = fsops::join(path, &name);
            let is_dir = match kind {
                FileType::Unknown => {
                    match fsops::lstat_at(dir, &name).map_err(io_err("stat", &child))? {
                        Some(st) => fsops::is_dir(&st),
                        None => continue, // removed while we walk
                    }
                }
                kind => kind == FileType::Directory,
            };
            let (child_state, excluded) = if ignore.is_empty() {
                (MatchState::default(), false)
            } else {
                let text = path_str(&child);
                let st = ignore.child_state(state, &text);
                let excluded = ignore.excluded_by(&st);
                // An excluded directory is still entered when a later `!`
                // rule could re-include something below it.
                if excluded && !(is_dir && ignore.exception_reaches_under(&st, &text)) {
                    continue;
                }
                (st, excluded)
            };
            let at = self.found.len();
            self.found.push(child);
            if is_dir {
                let sub = fsops::open_child_dir(dir, &name)
                    .map_err(io_err("opening directory", &self.found[at]))?;
                let child = self.found[at].clone();
                self.dir(sub.as_fd(), &child, &child_state)?;
                // An excluded directory is only there for what it re-includes.
                if excluded && self.found.len() == at + 1 {
                    self.found.truncate(at);
                }
            }
        }
        Ok(())
    }
}

/// The second phase: `lstat` of every path (relative to the tree root;
/// `base_len` bytes of it name the directory `base`), spread over the
/// cores. The paths are real (no symlinks in them but their last element)
/// and checked again where content is read or copied, so a path-based stat
/// is safe here.
fn stat_all(
    base: BorrowedFd,
    base_len: usize,
    paths: &[Vec<u8>],
) -> Result<Vec<Option<Stat>>, ContextError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(paths.len() / PARALLEL_MIN)
        .max(1);
    let chunk = paths.len().div_ceil(threads).max(1);
    let work = |paths: &[Vec<u8>]| -> Result<Vec<Option<Stat>>, ContextError> {
        paths
            .iter()
            .map(|path| {
                let rel = match path.get(base_len..) {
                    Some([b'/', rest @ ..]) if base_len > 0 => rest,
                    _ => path.as_slice(),
                };
                match fs::statat(base, rel, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => Ok(Some(st)),
                    Err(Errno::NOENT) => Ok(None),
                    Err(e) => Err(io_err("stat", path)(e.into())),
                }
            })
            .collect()
    };
    if threads == 1 {
        return work(paths);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| s.spawn(move || work(part)))
            .collect();
        let mut all = Vec::with_capacity(paths.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => all.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })
}

pub(crate) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}
