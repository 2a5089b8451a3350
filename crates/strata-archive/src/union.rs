//! Path resolution over an overlay stack, without mounting it.
//!
//! Layers are applied straight into the new snapshot's upper directory. Most
//! entries name a directory that already exists there, but a tar may also
//! write into a directory that only a lower layer has, or through a symlink
//! a lower layer holds. [`Union`] resolves such paths the way overlayfs
//! would (upper first, then lowers top-down; whiteouts and opaque
//! directories hide what is below), and copies directories up into the upper
//! directory with their owner, mode and times, as the kernel does on a
//! write. Symlinks are followed lexically and clamped at the root, like
//! `RESOLVE_IN_ROOT`.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, FileType, Mode, Stat};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;

use crate::fsops::{self, OPAQUE_XATTR};
use crate::tarstream::Time;

/// Symlinks followed in one resolution before giving up (as the kernel's ELOOP).
const MAX_LINKS: u32 = 40;

pub struct Union {
    upper: OwnedFd,
    lowers: Vec<OwnedFd>,
}

/// A directory in the upper layer, with the lowers still merged into it.
pub struct UnionDir {
    pub fd: OwnedFd,
    /// Path relative to the root, real (no symlinks), "" for the root.
    pub real: Vec<u8>,
    /// Lowers (indexes, topmost first) that contribute to this directory.
    live: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ResolveMode {
    /// Copy up directories the merged view has; missing ones end the walk.
    Materialize,
    /// Also create missing directories (root-owned, 0755).
    Create,
}

/// A directory the walk made in the upper layer.
pub struct NewDir {
    pub real: Vec<u8>,
    /// For a copy of a lower directory, the mtime it must end with; `None`
    /// for a directory that did not exist below (new in this layer).
    pub copied_up: Option<Time>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnionError {
    #[error("'{0}' is not a directory")]
    NotADirectory(String),
    #[error("too many levels of symbolic links resolving '{0}'")]
    Loop(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl From<rustix::io::Errno> for UnionError {
    fn from(e: rustix::io::Errno) -> Self {
        UnionError::Io(e.into())
    }
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

impl Union {
    /// `lowers` are the parent layers' directories, topmost first.
    pub fn new(upper: &std::path::Path, lowers: &[PathBuf]) -> io::Result<Union> {
        Ok(Union {
            upper: fsops::open_dir(upper)?,
            lowers: lowers
                .iter()
                .map(|l| fsops::open_dir(l))
                .collect::<io::Result<_>>()?,
        })
    }

    fn root(&self) -> io::Result<UnionDir> {
        let fd = fsops::open_child_dir(self.upper.as_fd(), b".")?;
        let live = if self.is_opaque(self.upper.as_fd(), b".")? {
            Vec::new()
        } else {
            let mut live = Vec::new();
            for (i, lower) in self.lowers.iter().enumerate() {
                live.push(i);
                if self.is_opaque(lower.as_fd(), b".")? {
                    break;
                }
            }
            live
        };
        Ok(UnionDir {
            fd,
            real: Vec::new(),
            live,
        })
    }

    fn is_opaque(&self, dir: BorrowedFd, name: &[u8]) -> io::Result<bool> {
        Ok(fsops::xattr_at(dir, name, OPAQUE_XATTR)?.as_deref() == Some(b"y"))
    }

    fn lower_stat(&self, layer: usize, real: &[u8]) -> io::Result<Option<Stat>> {
        fsops::lstat_at(self.lowers[layer].as_fd(), real)
    }

    /// What the lowers show at `name` inside `dir`: the topmost entry, unless
    /// a whiteout hides it.
    pub fn lower_child(&self, dir: &UnionDir, name: &[u8]) -> io::Result<Option<(usize, Stat)>> {
        let real = fsops::join(&dir.real, name);
        for &l in &dir.live {
            match self.lower_stat(l, &real)? {
                None => continue,
                Some(st) if fsops::is_whiteout(&st) => return Ok(None),
                Some(st) => return Ok(Some((l, st))),
            }
        }
        Ok(None)
    }

    /// The lowers contributing to `dir/name`, a directory.
    fn descend(&self, dir: &UnionDir, name: &[u8]) -> io::Result<Vec<usize>> {
        let real = fsops::join(&dir.real, name);
        let mut live = Vec::new();
        for &l in &dir.live {
            match self.lower_stat(l, &real)? {
                None => continue,
                Some(st) if fsops::is_dir(&st) => {
                    live.push(l);
                    if self.is_opaque(self.lowers[l].as_fd(), &real)? {
                        break;
                    }
                }
                Some(_) => break,
            }
        }
        Ok(live)
    }

    /// The lower directory fd and path of a lower entry, for copying it up.
    pub fn lower_dir(&self, layer: usize) -> BorrowedFd<'_> {
        self.lowers[layer].as_fd()
    }

    /// Resolves the directory `path` (root-relative, normalized) in the
    /// merged view, copying directories up into the upper layer as needed.
    /// Returns `None` if it does not exist and `mode` does not create it.
    pub fn resolve_dir(
        &self,
        path: &[u8],
        mode: ResolveMode,
        made: &mut Vec<NewDir>,
    ) -> Result<Option<UnionDir>, UnionError> {
        let mut todo: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        let mut dir = self.root()?;
        let mut links = 0;
        while let Some(comp) = todo.pop_front() {
            if comp == b".." {
                // Only reachable through a symlink target: climb, clamped at the root.
                let mut parts: Vec<Vec<u8>> = components(&dir.real).map(<[u8]>::to_vec).collect();
                parts.pop();
                for p in parts.into_iter().rev() {
                    todo.push_front(p);
                }
                dir = self.root()?;
                continue;
            }
            let here = fsops::join(&dir.real, &comp);
            let target = match fsops::lstat_at(dir.fd.as_fd(), &comp)? {
                Some(st) if fsops::is_dir(&st) => {
                    let live = if self.is_opaque(dir.fd.as_fd(), &comp)? {
                        Vec::new()
                    } else {
                        self.descend(&dir, &comp)?
                    };
                    Step::Enter(live)
                }
                Some(st) if fsops::file_type(&st) == FileType::Symlink => Step::Follow(
                    fs::readlinkat(dir.fd.as_fd(), &comp[..], Vec::new())?.into_bytes(),
                ),
                Some(st) if fsops::is_whiteout(&st) => {
                    // Deleted earlier in this layer: a new directory hides what was below.
                    if mode != ResolveMode::Create {
                        return Ok(None);
                    }
                    fs::unlinkat(dir.fd.as_fd(), &comp[..], fs::AtFlags::empty())
                        .map_err(io::Error::from)?;
                    self.make_dir(&dir, &comp, None, made)?;
                    fsops::set_xattr_at(dir.fd.as_fd(), &comp, OPAQUE_XATTR.as_bytes(), b"y")?;
                    Step::Enter(Vec::new())
                }
                Some(_) => return Err(UnionError::NotADirectory(show(&here))),
                None => match self.lower_child(&dir, &comp)? {
                    Some((l, st)) if fsops::is_dir(&st) => {
                        self.make_dir(&dir, &comp, Some((l, &st)), made)?;
                        Step::Enter(self.descend(&dir, &comp)?)
                    }
                    Some((l, st)) if fsops::file_type(&st) == FileType::Symlink => Step::Follow(
                        fs::readlinkat(self.lowers[l].as_fd(), &here[..], Vec::new())?.into_bytes(),
                    ),
                    Some(_) => return Err(UnionError::NotADirectory(show(&here))),
                    None if mode == ResolveMode::Create => {
                        self.make_dir(&dir, &comp, None, made)?;
                        Step::Enter(Vec::new())
                    }
                    None => return Ok(None),
                },
            };
            match target {
                Step::Enter(live) => {
                    let fd = fsops::open_child_dir(dir.fd.as_fd(), &comp)?;
                    dir = UnionDir {
                        fd,
                        real: here,
                        live,
                    };
                }
                Step::Follow(link) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(UnionError::Loop(show(path)));
                    }
                    for c in components(&link)
                        .map(<[u8]>::to_vec)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                    {
                        todo.push_front(c);
                    }
                    if link.starts_with(b"/") {
                        dir = self.root()?;
                    }
                }
            }
        }
        Ok(Some(dir))
    }

    /// Creates `name` in the upper `dir`: a copy of the lower directory's
    /// owner, mode and xattrs when there is one, else root-owned 0755.
    fn make_dir(
        &self,
        dir: &UnionDir,
        name: &[u8],
        lower: Option<(usize, &Stat)>,
        made: &mut Vec<NewDir>,
    ) -> io::Result<()> {
        let real = fsops::join(&dir.real, name);
        let (mode, uid, gid, mtime) = match lower {
            Some((_, st)) => (
                st.st_mode & 0o7777,
                st.st_uid as u64,
                st.st_gid as u64,
                Some(fsops::stat_mtime(st)),
            ),
            None => (0o755, 0, 0, None),
        };
        fs::mkdirat(dir.fd.as_fd(), name, Mode::from_raw_mode(0o700)).map_err(io::Error::from)?;
        fsops::chown_at(dir.fd.as_fd(), name, uid, gid)?;
        fsops::chmod_at(dir.fd.as_fd(), name, mode)?;
        if let Some((l, _)) = lower {
            for (key, value) in fsops::xattrs_at(self.lowers[l].as_fd(), &real)? {
                if !key.starts_with(b"trusted.overlay.") {
                    fsops::set_xattr_at(dir.fd.as_fd(), name, &key, &value)?;
                }
            }
        }
        made.push(NewDir {
            real,
            copied_up: mtime,
        });
        Ok(())
    }
}

enum Step {
    Enter(Vec<usize>),
    Follow(Vec<u8>),
}
