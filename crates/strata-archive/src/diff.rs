//! Producing a layer tar from a directory's changes.
//!
//! Two sources, both walked in sorted order so the same changes always give
//! the same bytes:
//! - an overlay upper directory, which *is* the change set: overlay
//!   whiteouts become `.wh.<name>`, opaque directories get `.wh..wh..opq`;
//! - two complete trees (vfs), compared entry by entry: what is new or
//!   different in `upper` is written, what `upper` lost becomes a whiteout.
//!   Like Docker's naive differ, a file counts as changed when its type,
//!   size, mtime, mode, owner, link target, device or xattrs differ.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, OFlags, Stat};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::fsops::{self, OPAQUE_XATTR};
use crate::tarstream::{EntryKind, Time};
use crate::tarwrite::{Header, TarWriter};

pub enum Source<'a> {
    /// An overlay upper directory.
    OverlayUpper(&'a Path),
    /// A complete tree and the tree it started from (`None`: empty).
    Compare {
        lower: Option<&'a Path>,
        upper: &'a Path,
    },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Diffed {
    pub entries: u64,
    /// Bytes of regular-file content in the tar.
    pub size: u64,
    pub tar_size: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("making a layer from '{path}': {source}")]
pub struct DiffError {
    path: String,
    source: io::Error,
}

impl DiffError {
    /// Whether the writing stopped because the reader of the tar went
    /// away: then the reader's own error says why.
    pub fn reader_gone(&self) -> bool {
        self.source.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Writes the changes of `source` as a layer tar to `out`.
pub fn write_diff<W: Write>(source: &Source, out: W) -> Result<(W, Diffed), DiffError> {
    write_diff_leaving_out(source, &[], out)
}

/// [`write_diff`], leaving out the mount points a runtime made (`proc`,
/// `etc/hosts`): an empty regular file or an empty folder at one of
/// `mount_points` is not a change, and a folder holding one is written
/// only if something else in it is.
pub fn write_diff_leaving_out<W: Write>(
    source: &Source,
    mount_points: &[&str],
    out: W,
) -> Result<(W, Diffed), DiffError> {
    let (upper, lower) = match source {
        Source::OverlayUpper(upper) => (*upper, None),
        Source::Compare { lower, upper } => (*upper, Some(*lower)),
    };
    let err = |source| DiffError {
        path: upper.display().to_string(),
        source,
    };
    let upper_fd = fsops::open_dir(upper).map_err(err)?;
    let mut walk = Walk {
        tar: TarWriter::new(out),
        links: HashMap::new(),
        stats: Diffed::default(),
        overlay: lower.is_none(),
        mount_points: mount_points.iter().map(|p| p.as_bytes()).collect(),
        pending: Vec::new(),
    };
    let lower_fd = match lower.flatten() {
        Some(l) => Some(fsops::open_dir(l).map_err(err)?),
        None => None,
    };
    walk.dir(upper_fd.as_fd(), lower_fd.as_ref().map(|f| f.as_fd()), &[])
        .map_err(err)?;
    let (out, tar_size) = walk.tar.finish().map_err(err)?;
    Ok((
        out,
        Diffed {
            tar_size,
            ..walk.stats
        },
    ))
}

struct Walk<'a, W: Write> {
    tar: TarWriter<W>,
    /// (dev, ino) of multiply-linked files written so far -> first path.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: Diffed,
    overlay: bool,
    /// Paths (`proc`, `etc/hosts`) whose empty files and folders are
    /// left out.
    mount_points: Vec<&'a [u8]>,
    /// Folders holding a mount point, written only once something in
    /// them is (outermost first).
    pending: Vec<Header>,
}

fn mtime(st: &Stat) -> Time {
    // Whole seconds, as Docker writes layers.
    Time {
        sec: st.st_mtime,
        nsec: 0,
    }
}

fn whiteout_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut n = b".wh.".to_vec();
    n.extend_from_slice(name);
    fsops::join(dir, &n)
}

impl<W: Write> Walk<'_, W> {
    /// Walks `upper` (and, comparing, `lower`: the same directory before).
    fn dir(&mut self, upper: BorrowedFd, lower: Option<BorrowedFd>, real: &[u8]) -> io::Result<()> {
        let names = fsops::read_dir_names(upper)?;
        if let Some(lower) = lower {
            for gone in fsops::read_dir_names(lower)? {
                if names.binary_search(&gone).is_err() {
                    let st = fs_stat(lower, &gone)?;
                    self.marker(whiteout_path(real, &gone), &st)?;
                }
            }
        }
        for name in names {
            let Some(st) = fsops::lstat_at(upper, &name)? else {
                continue;
            };
            let path = fsops::join(real, &name);
            if self.overlay && fsops::is_whiteout(&st) {
                self.marker(whiteout_path(real, &name), &st)?;
                continue;
            }
            let before = match lower {
                Some(l) => fsops::lstat_at(l, &name)?,
                None => None,
            };
            let changed = match &before {
                None => true,
                Some(b) => differs(&st, b, upper, lower.expect("compared"), &name)?,
            };
            if fsops::is_dir(&st) {
                let lazy = self.holds_mount_point(&path) || self.mount_points.contains(&&path[..]);
                let pending = self.pending.len();
                if changed && lazy {
                    if let Some(h) = self.header(upper, &name, &path, &st)? {
                        self.pending.push(h);
                    }
                } else if changed {
                    self.entry(upper, &name, &path, &st)?;
                }
                if self.overlay
                    && fsops::xattr_at(upper, &name, OPAQUE_XATTR)?.as_deref() == Some(b"y")
                {
                    if !changed {
                        self.entry(upper, &name, &path, &st)?;
                    }
                    self.marker(whiteout_path(&path, b".wh..opq"), &st)?;
                }
                let sub = fsops::open_child_dir(upper, &name)?;
                let sub_lower: Option<OwnedFd> = match (&before, lower) {
                    (Some(b), Some(l)) if fsops::is_dir(b) => {
                        Some(fsops::open_child_dir(l, &name)?)
                    }
                    _ => None,
                };
                self.dir(sub.as_fd(), sub_lower.as_ref().map(|f| f.as_fd()), &path)?;
                // Nothing in it was written: neither is it.
                self.pending.truncate(pending);
            } else if changed && !self.is_mount_point(&path, &st) {
                self.entry(upper, &name, &path, &st)?;
            }
        }
        Ok(())
    }

    /// Whether `path` is a folder above one of the mount points.
    fn holds_mount_point(&self, path: &[u8]) -> bool {
        self.mount_points
            .iter()
            .any(|m| m.len() > path.len() && m.starts_with(path) && m[path.len()] == b'/')
    }

    /// Whether this is a mount point the runtime made: an empty file.
    fn is_mount_point(&self, path: &[u8], st: &Stat) -> bool {
        self.mount_points.contains(&path)
            && fsops::file_type(st) == FileType::RegularFile
            && st.st_size == 0
    }

    /// Writes the folders waiting for something in them to be written.
    fn write_pending(&mut self) -> io::Result<()> {
        for h in std::mem::take(&mut self.pending) {
            self.stats.entries += 1;
            self.tar.append(&h, &mut io::empty())?;
        }
        Ok(())
    }

    fn marker(&mut self, path: Vec<u8>, st: &Stat) -> io::Result<()> {
        self.write_pending()?;
        self.stats.entries += 1;
        self.tar
            .append(&Header::marker(path, mtime(st)), &mut io::empty())
    }

    /// The tar header of an entry; None for a kind a layer cannot hold.
    fn header(
        &self,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        st: &Stat,
    ) -> io::Result<Option<Header>> {
        let Some(kind) = EntryKind::of(st) else {
            return Ok(None);
        };
        Ok(Some(Header {
            path: path.to_vec(),
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid as u64,
            gid: st.st_gid as u64,
            size: 0,
            mtime: mtime(st),
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: layer_xattrs(dir, name)?,
        }))
    }

    fn entry(&mut self, dir: BorrowedFd, name: &[u8], path: &[u8], st: &Stat) -> io::Result<()> {
        let Some(mut h) = self.header(dir, name, path, st)? else {
            return Ok(());
        };
        self.write_pending()?;
        let kind = h.kind;
        self.stats.entries += 1;
        if kind != EntryKind::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.kind = EntryKind::Hardlink;
                h.link = first.clone();
                h.xattrs.clear();
                return self.tar.append(&h, &mut io::empty());
            }
            self.links.insert(key, path.to_vec());
        }
        match kind {
            EntryKind::Regular => {
                h.size = st.st_size as u64;
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?;
                self.stats.size += h.size;
                return self.tar.append(&h, &mut File::from(fd));
            }
            EntryKind::Symlink => {
                h.link = rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes();
            }
            EntryKind::Char | EntryKind::Block => {
                h.dev_major = rustix::fs::major(st.st_rdev);
                h.dev_minor = rustix::fs::minor(st.st_rdev);
            }
            _ => {}
        }
        self.tar.append(&h, &mut io::empty())
    }
}

fn fs_stat(dir: BorrowedFd, name: &[u8]) -> io::Result<Stat> {
    fsops::lstat_at(dir, name)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Xattrs that belong in a layer: all but overlayfs' own bookkeeping.
fn layer_xattrs(dir: BorrowedFd, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut x = fsops::xattrs_at(dir, name)?;
    x.retain(|(k, _)| !k.starts_with(b"trusted.overlay.") && !k.starts_with(b"user.overlay."));
    Ok(x)
}

/// Whether an entry differs from what was there before (naive comparison).
fn differs(
    a: &Stat,
    b: &Stat,
    a_dir: BorrowedFd,
    b_dir: BorrowedFd,
    name: &[u8],
) -> io::Result<bool> {
    let kind = fsops::file_type(a);
    if kind != fsops::file_type(b)
        || a.st_mode != b.st_mode
        || a.st_uid != b.st_uid
        || a.st_gid != b.st_gid
        || a.st_mtime != b.st_mtime
        || a.st_mtime_nsec != b.st_mtime_nsec
        || (kind != FileType::Directory && a.st_size != b.st_size)
        || a.st_rdev != b.st_rdev
    {
        return Ok(true);
    }
    if kind == FileType::Symlink
        && rustix::fs::readlinkat(a_dir, name, Vec::new())?
            != rustix::fs::readlinkat(b_dir, name, Vec::new())?
    {
        return Ok(true);
    }
    Ok(layer_xattrs(a_dir, name)? != layer_xattrs(b_dir, name)?)
}
