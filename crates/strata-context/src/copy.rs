//! COPY and ADD into a root filesystem, with Docker's rules:
//!
//! - a source directory copies its contents, not itself; a source file
//!   lands at `dest`, or at `dest/<name>` when `dest` ends in `/` or is an
//!   existing directory; several sources need a `dest` ending in `/`;
//! - missing parents are created (0755); files and directories keep their
//!   mode and mtime; a destination directory created for a source directory
//!   takes that directory's metadata, an existing one keeps its own;
//! - symlinks inside copied directories are copied as symlinks; existing
//!   files are replaced, existing directories merged, and an existing
//!   symlink where a directory goes is followed (inside the root);
//! - the owner is `--chown`, else root for the build context, else the
//!   source's; `--chmod` applies to every copied file and directory.
//!
//! Every destination directory is resolved with [`inroot`], and every entry
//! is created by a single name inside an open directory without following
//! symlinks, so no symlink in the root filesystem can lead a write out of it.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use strata_archive::{copy::copy_entry, fsops};

use crate::inroot::{self, Missing};
use crate::walk::{Entry, split_parent, walk};
use crate::{ContextError, Source, Tree, archive, io_err, show};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `--chown=uid:gid`, already resolved to numbers.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`: permission bits for every copied file and directory.
    pub chmod: Option<u32>,
    /// ADD: extract local tar archives instead of copying them. Extracted
    /// entries keep the owners and modes recorded in the archive.
    pub extract_archives: bool,
}

/// What a copy amounted to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Non-directory entries copied.
    pub files: u64,
    /// Directories copied (created or merged).
    pub dirs: u64,
    /// Bytes of regular-file content copied.
    pub bytes: u64,
    /// Archives extracted (ADD).
    pub archives: u64,
}

/// Copies `sources` from `tree` into the root filesystem `rootfs` at
/// `dest` (absolute inside it, already joined with WORKDIR).
pub fn copy(
    tree: &Tree,
    sources: &[Source],
    rootfs: BorrowedFd,
    dest: &str,
    opts: &CopyOptions,
) -> Result<CopyStats, ContextError> {
    if sources.is_empty() {
        return Err(ContextError::NoSources);
    }
    let dir_intent = wants_dir(dest);
    if sources.len() > 1 && !dir_intent {
        return Err(ContextError::MultipleSourcesNeedDir {
            dest: dest.to_string(),
        });
    }
    let mut copier = Copier {
        tree,
        rootfs,
        opts,
        stats: CopyStats::default(),
    };
    for source in sources {
        if source.is_dir() {
            copier.dir_source(source, dest)?;
        } else {
            copier.file_source(source, dest, dir_intent)?;
        }
    }
    Ok(copier.stats)
}

/// Writes `content` as one file (`COPY <<EOF dest`): 0644 unless `--chmod`,
/// at `dest`, or at `dest/<name>` when `dest` ends in `/` or is a directory.
pub fn write_inline(
    rootfs: BorrowedFd,
    dest: &str,
    name: &str,
    content: &[u8],
    opts: &CopyOptions,
) -> Result<(), ContextError> {
    let name = name.rsplit('/').next().unwrap_or(name);
    let owner = opts.chown.unwrap_or((0, 0));
    let (dir, file_name, shown) =
        file_target(rootfs, dest, wants_dir(dest), name.as_bytes(), owner)?;
    clear_for_file(dir.as_fd(), &file_name, &shown, "inline file")?;
    let fd = fs::openat(
        &dir,
        file_name.as_slice(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| io_err("creating", &shown)(e.into()))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content).map_err(io_err("writing", &shown))?;
    fsops::chown_fd(file.as_fd(), owner.0.into(), owner.1.into())
        .map_err(io_err("chown", &shown))?;
    let mode = opts.chmod.unwrap_or(0o644);
    fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| io_err("chmod", &shown)(e.into()))?;
    Ok(())
}

/// Docker treats a destination ending in `/` (or naming `.`/`..`) as a
/// directory.
fn wants_dir(dest: &str) -> bool {
    matches!(dest.rsplit('/').next(), None | Some("" | "." | ".."))
}

/// The directory and name a single file goes to.
fn file_target(
    rootfs: BorrowedFd,
    dest: &str,
    dir_intent: bool,
    name: &[u8],
    owner: (u32, u32),
) -> Result<(OwnedFd, Vec<u8>, String), ContextError> {
    let is_dir = dir_intent
        || matches!(
            inroot::resolve_dir(rootfs, dest.as_bytes(), Missing::Stop),
            Ok(Some(_))
        );
    let (dir_path, file_name) = if is_dir {
        (dest.as_bytes(), name)
    } else {
        split_parent(dest.as_bytes())
    };
    let dir = open_dest_dir(rootfs, dir_path, owner)?;
    let shown = format!(
        "{}/{}",
        show(dir_path).trim_end_matches('/'),
        show(file_name)
    );
    Ok((dir.fd, file_name.to_vec(), shown))
}

/// Resolves (creating as needed) a destination directory inside the root.
fn open_dest_dir(
    rootfs: BorrowedFd,
    path: &[u8],
    owner: (u32, u32),
) -> Result<inroot::Dir, ContextError> {
    match inroot::resolve_dir(rootfs, path, Missing::Create(owner.0, owner.1)) {
        Ok(Some(dir)) => Ok(dir),
        Ok(None) => Err(io_err("creating directory", path)(Errno::NOENT.into())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            Err(ContextError::NotADirectory { path: show(path) })
        }
        Err(e) => Err(io_err("creating directory", path)(e)),
    }
}

/// Removes whatever non-directory is at `name` so a file can take its place.
fn clear_for_file(
    dir: BorrowedFd,
    name: &[u8],
    shown: &str,
    from: &str,
) -> Result<(), ContextError> {
    match fsops::lstat_at(dir, name).map_err(io_err("stat", shown))? {
        Some(st) if fsops::is_dir(&st) => Err(ContextError::ReplaceDir {
            path: shown.to_string(),
            from: from.to_string(),
        }),
        Some(_) => fs::unlinkat(dir, name, AtFlags::empty())
            .map_err(|e| io_err("removing", shown)(e.into())),
        None => Ok(()),
    }
}

/// A directory being copied: source and destination open, mtime to set
/// once its contents are in.
struct Level {
    src: OwnedFd,
    /// Opened for reading so its metadata can be set through it.
    dst: OwnedFd,
    /// Path from the root filesystem's root, symlinks resolved.
    real: Vec<u8>,
    mtime: Option<strata_archive::tarstream::Time>,
}

struct Copier<'a> {
    tree: &'a Tree,
    rootfs: BorrowedFd<'a>,
    opts: &'a CopyOptions,
    stats: CopyStats,
}

impl Copier<'_> {
    /// Owner of a copied entry.
    fn owner(&self, st: &Stat) -> (u32, u32) {
        match self.opts.chown {
            Some(owner) => owner,
            None if self.tree.keeps_owners() => (st.st_uid, st.st_gid),
            None => (0, 0),
        }
    }

    /// Owner of parent directories created on the way to `dest`.
    fn parent_owner(&self) -> (u32, u32) {
        self.opts.chown.unwrap_or((0, 0))
    }

    fn mode(&self, st: &Stat) -> u32 {
        self.opts.chmod.unwrap_or(st.st_mode & 0o7777)
    }

    fn file_source(
        &mut self,
        source: &Source,
        dest: &str,
        dir_intent: bool,
    ) -> Result<(), ContextError> {
        let path = source.path_bytes();
        let (parent, name) = split_parent(path);
        let src = fsops::open_beneath(self.tree.root(), parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(io_err("opening directory", parent))?;
        let st = fs::statat(&src, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("stat", path)(e.into()))?;
        if self.opts.extract_archives
            && fsops::file_type(&st) == FileType::RegularFile
            && self.try_extract(src.as_fd(), name, path, dest)?
        {
            return Ok(());
        }
        let (dir, file_name, shown) = file_target(
            self.rootfs,
            dest,
            dir_intent,
            source.name_bytes(),
            self.parent_owner(),
        )?;
        self.place(
            src.as_fd(),
            name,
            &st,
            dir.as_fd(),
            &file_name,
            &shown,
            path,
        )
    }

    /// ADD: extracts the file if it is a tar archive; false if it is not.
    fn try_extract(
        &mut self,
        src: BorrowedFd,
        name: &[u8],
        path: &[u8],
        dest: &str,
    ) -> Result<bool, ContextError> {
        let fd = fs::openat(
            src,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("opening", path)(e.into()))?;
        let Some(tar) = archive::open_tar(fd.into()).map_err(io_err("reading", path))? else {
            return Ok(false);
        };
        let dir = open_dest_dir(self.rootfs, dest.as_bytes(), self.parent_owner())?;
        // The extractor takes a path: the fd's magic link is the directory
        // we resolved, not something found by walking `dest` again.
        let target = PathBuf::from(format!("/proc/self/fd/{}", dir.fd.as_raw_fd()));
        let applied = archive::extract(tar, &target).map_err(|source| ContextError::Extract {
            archive: show(path),
            dest: dest.to_string(),
            source,
        })?;
        self.stats.archives += 1;
        self.stats.files += applied.entries;
        self.stats.bytes += applied.size;
        Ok(true)
    }

    fn dir_source(&mut self, source: &Source, dest: &str) -> Result<(), ContextError> {
        let entries = walk(self.tree, source)?;
        let Some((top, below)) = entries.split_first() else {
            return Ok(());
        };
        let path = source.path_bytes();
        let dir = open_dest_dir(self.rootfs, dest.as_bytes(), self.parent_owner())?;
        let dst = open_for_meta(dir.fd.as_fd()).map_err(io_err("opening directory", dest))?;
        if dir.created {
            self.set_dir_meta(dst.as_fd(), &top.stat)
                .map_err(io_err("setting metadata of", dest))?;
        }
        let src = fsops::open_beneath(self.tree.root(), path, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(io_err("opening directory", path))?;
        let mut stack = vec![Level {
            src,
            dst,
            real: dir.real,
            mtime: dir.created.then(|| fsops::stat_mtime(&top.stat)),
        }];
        for entry in below {
            while stack.len() > entry.depth() {
                finish(stack.pop())?;
            }
            let Some(parent) = stack.last() else {
                break;
            };
            if fsops::is_dir(&entry.stat) {
                let level = self.enter_dir(parent, entry)?;
                stack.push(level);
            } else {
                let shown = dest_path(&parent.real, entry.name());
                self.place(
                    parent.src.as_fd(),
                    entry.name(),
                    &entry.stat,
                    parent.dst.as_fd(),
                    entry.name(),
                    &shown,
                    &entry.path,
                )?;
            }
        }
        while let Some(level) = stack.pop() {
            finish(Some(level))?;
        }
        Ok(())
    }

    /// Creates or merges the directory for `entry` inside `parent`.
    fn enter_dir(&mut self, parent: &Level, entry: &Entry) -> Result<Level, ContextError> {
        let name = entry.name();
        let shown = dest_path(&parent.real, name);
        let src = fsops::open_child_dir(parent.src.as_fd(), name)
            .map_err(io_err("opening directory", &entry.path))?;
        let existing = fsops::lstat_at(parent.dst.as_fd(), name).map_err(io_err("stat", &shown))?;
        self.stats.dirs += 1;
        let real = fsops::join(&parent.real, name);
        let followed = match existing {
            Some(st) if fsops::file_type(&st) == FileType::Symlink => true,
            Some(st) if fsops::is_dir(&st) => false,
            Some(_) => {
                fs::unlinkat(parent.dst.as_fd(), name, AtFlags::empty())
                    .map_err(|e| io_err("removing", &shown)(e.into()))?;
                inroot::make_dir(parent.dst.as_fd(), name, 0o700, 0, 0)
                    .map_err(io_err("creating directory", &shown))?;
                false
            }
            None => {
                inroot::make_dir(parent.dst.as_fd(), name, 0o700, 0, 0)
                    .map_err(io_err("creating directory", &shown))?;
                false
            }
        };
        if followed {
            // An existing symlink (say lib -> usr/lib) is followed inside
            // the root, and what it points to keeps its own metadata.
            let dir = open_dest_dir(self.rootfs, &real, self.parent_owner())?;
            let dst = open_for_meta(dir.fd.as_fd()).map_err(io_err("opening directory", &shown))?;
            return Ok(Level {
                src,
                dst,
                real: dir.real,
                mtime: None,
            });
        }
        let dst = fs::openat(
            parent.dst.as_fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("opening directory", &shown)(e.into()))?;
        self.set_dir_meta(dst.as_fd(), &entry.stat)
            .map_err(io_err("setting metadata of", &shown))?;
        Ok(Level {
            src,
            dst,
            real,
            mtime: Some(fsops::stat_mtime(&entry.stat)),
        })
    }

    fn set_dir_meta(&self, dir: BorrowedFd, st: &Stat) -> io::Result<()> {
        let (uid, gid) = self.owner(st);
        fsops::chown_fd(dir, uid.into(), gid.into())?;
        Ok(fs::fchmod(dir, Mode::from_raw_mode(self.mode(st)))?)
    }

    /// Copies one non-directory `src_name` (stat `st`) to `dst_name`,
    /// replacing what is there, then applies owner and `--chmod`.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        src: BorrowedFd,
        src_name: &[u8],
        st: &Stat,
        dst: BorrowedFd,
        dst_name: &[u8],
        shown: &str,
        from: &[u8],
    ) -> Result<(), ContextError> {
        clear_for_file(dst, dst_name, shown, &show(from))?;
        copy_entry(src, src_name, st, dst, dst_name).map_err(io_err("copying to", shown))?;
        let owner = self.owner(st);
        let chowned = owner != (st.st_uid, st.st_gid);
        if chowned {
            fsops::chown_at(dst, dst_name, owner.0.into(), owner.1.into())
                .map_err(io_err("chown", shown))?;
        }
        // chown clears setuid/setgid bits: put them back.
        let is_link = fsops::file_type(st) == FileType::Symlink;
        if !is_link && (self.opts.chmod.is_some() || (chowned && st.st_mode & 0o6000 != 0)) {
            fsops::chmod_at(dst, dst_name, self.mode(st)).map_err(io_err("chmod", shown))?;
        }
        self.stats.files += 1;
        if fsops::file_type(st) == FileType::RegularFile {
            self.stats.bytes += st.st_size as u64;
        }
        Ok(())
    }
}

/// A directory's mtime is set once everything inside it is written.
fn finish(level: Option<Level>) -> Result<(), ContextError> {
    if let Some(Level {
        dst,
        real,
        mtime: Some(mtime),
        ..
    }) = level
    {
        fsops::set_times_fd(dst.as_fd(), mtime, None)
            .map_err(io_err("setting times of", dest_path(&real, b"")))?;
    }
    Ok(())
}

/// A readable handle on an `O_PATH` directory, for fchown/fchmod/futimens.
fn open_for_meta(dir: BorrowedFd) -> io::Result<OwnedFd> {
    Ok(fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `/real/name` for messages.
fn dest_path(real: &[u8], name: &[u8]) -> String {
    let mut p = String::from("/");
    p.push_str(&show(real));
    if !name.is_empty() {
        if !real.is_empty() {
            p.push('/');
        }
        p.push_str(&show(name));
    }
    p
}
