//! Whole directory trees as plain tars: [`write`] archives a tree as it is,
//! [`extract`] unpacks a tar into an empty directory as it was.
//!
//! Unlike layers ([`crate::apply`], [`crate::diff`]) nothing is interpreted:
//! `.wh.` names are ordinary files, device nodes may live anywhere, and a
//! symlink may point anywhere, because it is data that nothing here follows.
//!
//! Safety is by file descriptor, as everywhere in this crate. The walk
//! opens each directory below the one before with `O_NOFOLLOW`. Extraction
//! resolves an entry's parent with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` and creates the entry with `*at()` on its final
//! name. An entry that climbs out with `..`, is absolute, or lies below a
//! symlink is refused: a tar written from a real tree never has one, so the
//! archive is malformed or hostile.
//!
//! Written times are whole seconds ([`TarWriter`] writes no fractions), as
//! GNU tar's default format stores them; extraction keeps the fractions of
//! a tar that has them (PAX `mtime`).

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::rc::Rc;

use crate::apply::clean_path;
use crate::fsops;
use crate::tarstream::{Entry, EntryKind, TarError, TarReader, Time};
use crate::tarwrite::{Header, TarWriter};

/// Big writes: one syscall per MiB of tar instead of one per header.
const OUT_BUFFER: usize = 1 << 20;
/// File content is read from the tar and written in pieces this large.
const COPY_BUFFER: usize = 256 * 1024;

/// What a tree amounted to as a tar.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Entries, the root directory included.
    pub entries: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
    /// Bytes of the (uncompressed) tar stream.
    pub tar_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("'{path}': {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("writing the tar: {0}")]
    Write(io::Error),
    #[error("tar entry '{0}' climbs out with '..'; the archive is malformed or hostile")]
    Escape(String),
    #[error(
        "tar entry '{0}' has an absolute path; re-create the archive with relative paths (tar without -P)"
    )]
    Absolute(String),
    #[error(
        "tar entry '{path}' lies below '{parent}', which is a symlink or a file; the archive is malformed or hostile"
    )]
    NotBelowDirectory { path: String, parent: String },
    #[error("hardlink '{path}' -> '{target}': {reason}")]
    Hardlink {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("tar entry '{0}' names the top directory but is not a directory")]
    RootNotDirectory(String),
}

fn show(p: &[u8]) -> String {
    if p.is_empty() {
        return ".".into();
    }
    String::from_utf8_lossy(p).into_owned()
}

/// The error of a failed call on the entry at `path`; the path is spelled
/// out only on failure, since this sits on the hot path.
fn io_error<'a>(path: &'a [u8], op: &'static str) -> impl FnOnce(io::Error) -> TreeError + 'a {
    move |source| TreeError::Io {
        path: show(path),
        op,
        source,
    }
}

fn errno_error<'a>(path: &'a [u8], op: &'static str) -> impl FnOnce(Errno) -> TreeError + 'a {
    move |e| io_error(path, op)(e.into())
}

/// Writes the tree under the directory `src` to `out` as a tar, the root as
/// `./` first, then everything below in sorted order. Sockets are skipped:
/// a tar cannot hold them.
pub fn write(src: BorrowedFd, out: &mut dyn Write) -> Result<Totals, TreeError> {
    let broken = Cell::new(false);
    let sink = Sink {
        out,
        broken: &broken,
    };
    let mut walk = Walk {
        tar: TarWriter::new(BufWriter::with_capacity(OUT_BUFFER, sink)),
        links: HashMap::new(),
        totals: Totals::default(),
        broken: &broken,
    };
    let root = fs::fstat(src).map_err(errno_error(b"", "stat"))?;
    walk.entry(src, b".", b".", &root)?;
    walk.dir(src, b"")?;
    let (_, tar_size) = walk.tar.finish().map_err(TreeError::Write)?;
    Ok(Totals {
        tar_size,
        ..walk.totals
    })
}

/// The caller's writer, noting whether it failed, so a full disk is
/// reported as such and not blamed on the file being read.
struct Sink<'a> {
    out: &'a mut dyn Write,
    broken: &'a Cell<bool>,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).inspect_err(|_| self.broken.set(true))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().inspect_err(|_| self.broken.set(true))
    }
}

struct Walk<'a> {
    tar: TarWriter<BufWriter<Sink<'a>>>,
    /// (dev, ino) of multiply-linked files written so far -> first path.
    links: HashMap<(u64, u64), Vec<u8>>,
    totals: Totals,
    broken: &'a Cell<bool>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: BorrowedFd, real: &[u8]) -> Result<(), TreeError> {
        let names = fsops::read_dir_names(dir).map_err(io_error(real, "read directory"))?;
        for name in names {
            let path = fsops::join(real, &name);
            // Gone since the listing: nothing to archive.
            let Some(st) = fsops::lstat_at(dir, &name).map_err(io_error(&path, "stat"))? else {
                continue;
            };
            self.entry(dir, &name, &path, &st)?;
            if fsops::is_dir(&st) {
                let sub = fsops::open_child_dir(dir, &name).map_err(io_error(&path, "open"))?;
                self.dir(sub.as_fd(), &path)?;
            }
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        st: &Stat,
    ) -> Result<(), TreeError> {
        let Some(kind) = EntryKind::of(st) else {
            return Ok(());
        };
        self.totals.entries += 1;
        let mut h = Header {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid.into(),
            gid: st.st_gid.into(),
            mtime: fsops::stat_mtime(st),
            ..Header::marker(path.to_vec(), Time::default())
        };
        if kind != EntryKind::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.kind = EntryKind::Hardlink;
                h.link = first.clone();
                return self.append(&h, &mut io::empty());
            }
            self.links.insert(key, path.to_vec());
        }
        h.xattrs = fsops::xattrs_at(dir, name).map_err(io_error(path, "list xattrs"))?;
        match kind {
            EntryKind::Regular => return self.regular(dir, name, h, st),
            EntryKind::Symlink => {
                h.link = fs::readlinkat(dir, name, Vec::new())
                    .map_err(errno_error(path, "read link"))?
                    .into_bytes();
            }
            EntryKind::Char | EntryKind::Block => {
                h.dev_major = fs::major(st.st_rdev);
                h.dev_minor = fs::minor(st.st_rdev);
            }
            _ => {}
        }
        self.append(&h, &mut io::empty())
    }

    fn regular(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        mut h: Header,
        st: &Stat,
    ) -> Result<(), TreeError> {
        // O_NOFOLLOW: swapped for a symlink since the stat, it fails.
        // O_NONBLOCK: swapped for a fifo, it does not hang the export.
        let fd = fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_error(&h.path, "open"))?;
        h.size = st.st_size as u64;
        self.totals.bytes += h.size;
        self.append(&h, &mut File::from(fd))
    }

    fn append(&mut self, h: &Header, content: &mut dyn Read) -> Result<(), TreeError> {
        self.tar.append(h, content).map_err(|e| {
            if self.broken.get() {
                TreeError::Write(e)
            } else {
                io_error(&h.path, "read")(e)
            }
        })
    }
}

/// Extracts the tar stream `reader` into the directory `root`, which the
/// caller made sure is empty. A later entry of the same path replaces an
/// earlier one, as tar does. Nothing is synced to disk.
pub fn extract<R: Read>(reader: R, root: BorrowedFd) -> Result<Totals, TreeError> {
    let mut x = Extractor {
        root: root.try_clone_to_owned().map_err(io_error(b"", "open"))?,
        parent: None,
        dir_times: Vec::new(),
        buf: vec![0u8; COPY_BUFFER],
        totals: Totals::default(),
    };
    let mut tar = TarReader::new(reader);
    while let Some(entry) = tar.next_entry()? {
        // Headers and padding pile up in the reader for the layer index,
        // which this does not keep.
        tar.clear_raw();
        x.totals.entries += 1;
        x.entry(&mut tar, &entry)?;
    }
    x.totals.tar_size = tar.offset();
    x.set_dir_times()?;
    Ok(x.totals)
}

struct Extractor {
    root: OwnedFd,
    /// The last parent directory resolved (tar path, fd): consecutive
    /// entries mostly share it.
    parent: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Directory times, set once nothing more is created inside.
    dir_times: Vec<(Vec<u8>, Time, Option<Time>)>,
    buf: Vec<u8>,
    totals: Totals,
}

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

impl Extractor {
    fn entry<R: Read>(&mut self, tar: &mut TarReader<R>, e: &Entry) -> Result<(), TreeError> {
        if e.path.starts_with(b"/") {
            return Err(TreeError::Absolute(show(&e.path)));
        }
        let path = clean_path(&e.path).ok_or_else(|| TreeError::Escape(show(&e.path)))?;
        if path.is_empty() {
            return self.root_entry(e);
        }
        let (parent, name) = split_parent(&path);
        let dir = self.parent(parent, &path)?;
        let dir = dir.as_fd();
        match e.kind {
            EntryKind::Directory => self.directory(dir, name, &path, e),
            EntryKind::Regular => self.regular(tar, dir, name, &path, e),
            EntryKind::Hardlink => self.hardlink(dir, name, &path, e),
            EntryKind::Symlink => {
                self.create(dir, name, &path, || fs::symlinkat(&e.link[..], dir, name))?;
                self.meta_at(dir, name, &path, e)
            }
            EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
                let kind = match e.kind {
                    EntryKind::Char => FileType::CharacterDevice,
                    EntryKind::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                // A fifo's numbers are 0/0 as the reader parsed them.
                let dev = fs::makedev(e.dev_major, e.dev_minor);
                let mode = Mode::from_raw_mode(0o600);
                self.create(dir, name, &path, || fs::mknodat(dir, name, kind, mode, dev))?;
                self.meta_at(dir, name, &path, e)
            }
        }
    }

    /// The directory `rel` (a tar path), made with its missing ancestors.
    fn parent(&mut self, rel: &[u8], path: &[u8]) -> Result<Rc<OwnedFd>, TreeError> {
        if let Some((cached, fd)) = &self.parent
            && cached == rel
        {
            return Ok(fd.clone());
        }
        let fd = match self.open_dir(rel, path)? {
            Some(fd) => fd,
            None => self.make_dirs(rel, path)?,
        };
        let fd = Rc::new(fd);
        self.parent = Some((rel.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Opens the directory `rel` strictly beneath the root, through no
    /// symlink; `None` if part of it does not exist yet.
    fn open_dir(&self, rel: &[u8], path: &[u8]) -> Result<Option<OwnedFd>, TreeError> {
        match fsops::open_beneath(self.root.as_fd(), rel, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) => match Errno::from_io_error(&e) {
                Some(Errno::NOENT) => Ok(None),
                Some(Errno::LOOP | Errno::NOTDIR) => Err(not_below_dir(path, rel)),
                _ => Err(io_error(path, "open parent directory")(e)),
            },
        }
    }

    /// `mkdir -p rel`, one component at a time, never through a symlink.
    fn make_dirs(&self, rel: &[u8], path: &[u8]) -> Result<OwnedFd, TreeError> {
        let mut fd = self
            .root
            .try_clone()
            .map_err(io_error(path, "open parent directory"))?;
        for comp in rel.split(|&b| b == b'/') {
            match fs::mkdirat(&fd, comp, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_error(path, "create parent directory")(e)),
            }
            fd = fsops::open_child_dir(fd.as_fd(), comp).map_err(
                |e| match Errno::from_io_error(&e) {
                    Some(Errno::LOOP | Errno::NOTDIR) => not_below_dir(path, rel),
                    _ => io_error(path, "open parent directory")(e),
                },
            )?;
        }
        Ok(fd)
    }

    /// Runs `make`; if the name is taken, clears it and runs `make` again.
    fn create<T>(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        make: impl Fn() -> rustix::io::Result<T>,
    ) -> Result<T, TreeError> {
        match make() {
            Err(Errno::EXIST) => {
                self.remove(dir, name, path)?;
                make()
            }
            other => other,
        }
        .map_err(errno_error(path, "create"))
    }

    fn remove(&mut self, dir: BorrowedFd, name: &[u8], path: &[u8]) -> Result<(), TreeError> {
        // The cached parent may be what goes, or lie below it.
        self.parent = None;
        fsops::remove_all_at(dir, name, &mut |_| Ok(())).map_err(io_error(path, "replace"))
    }

    fn root_entry(&mut self, e: &Entry) -> Result<(), TreeError> {
        if e.kind != EntryKind::Directory {
            return Err(TreeError::RootNotDirectory(show(&e.path)));
        }
        let fd = fs::openat(
            &self.root,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_error(b"", "open"))?;
        meta_fd(fd.as_fd(), b"", e)?;
        self.dir_times.push((Vec::new(), e.mtime, e.atime));
        Ok(())
    }

    fn directory(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        e: &Entry,
    ) -> Result<(), TreeError> {
        let mode = Mode::from_raw_mode(0o700);
        match fs::mkdirat(dir, name, mode) {
            Err(Errno::EXIST) if !is_dir_at(dir, name) => {
                self.create(dir, name, path, || fs::mkdirat(dir, name, mode))?;
            }
            Ok(()) | Err(Errno::EXIST) => {}
            Err(err) => return Err(errno_error(path, "create")(err)),
        }
        let fd = fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_error(path, "open"))?;
        meta_fd(fd.as_fd(), path, e)?;
        self.dir_times.push((path.to_vec(), e.mtime, e.atime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        e: &Entry,
    ) -> Result<(), TreeError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = self.create(dir, name, path, || {
            fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))
        })?;
        let mut file = File::from(fd);
        loop {
            let n = tar.read_content(&mut self.buf)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(io_error(path, "write"))?;
        }
        self.totals.bytes += e.size;
        meta_fd(file.as_fd(), path, e)?;
        fsops::set_times_fd(file.as_fd(), e.mtime, e.atime).map_err(io_error(path, "set times"))
    }

    fn hardlink(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        e: &Entry,
    ) -> Result<(), TreeError> {
        let err = |reason| TreeError::Hardlink {
            path: show(path),
            target: show(&e.link),
            reason,
        };
        // Link targets name earlier members; a leading '/' means the top.
        let target = clean_path(&e.link)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err("the target is not a file in the archive"))?;
        if target == path {
            return Ok(());
        }
        let (tparent, tname) = split_parent(&target);
        let tdir = self
            .open_dir(tparent, path)?
            .ok_or_else(|| err("the target is not in the archive before the link"))?;
        let link = || fs::linkat(&tdir, tname, dir, name, AtFlags::empty());
        match self.create(dir, name, path, link) {
            Err(TreeError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(err("the target is not in the archive before the link"))
            }
            other => other,
        }
    }

    /// Owner, mode, xattrs and times of a symlink, device or fifo.
    fn meta_at(
        &self,
        dir: BorrowedFd,
        name: &[u8],
        path: &[u8],
        e: &Entry,
    ) -> Result<(), TreeError> {
        fsops::chown_at(dir, name, e.uid, e.gid).map_err(io_error(path, "chown"))?;
        if e.kind != EntryKind::Symlink {
            fsops::chmod_at(dir, name, e.mode).map_err(io_error(path, "chmod"))?;
        }
        for (key, value) in &e.xattrs {
            fsops::set_xattr_at(dir, name, key, value).map_err(io_error(path, "set xattr"))?;
        }
        fsops::set_times_at(dir, name, e.mtime, e.atime).map_err(io_error(path, "set times"))
    }

    fn set_dir_times(&self) -> Result<(), TreeError> {
        for (path, mtime, atime) in &self.dir_times {
            let (up, name) = split_parent(path);
            let name: &[u8] = if name.is_empty() { b"." } else { name };
            // Replaced or removed by a later entry: nothing to set.
            let Ok(Some(up)) = self.open_dir(up, path) else {
                continue;
            };
            if is_dir_at(up.as_fd(), name) {
                fsops::set_times_at(up.as_fd(), name, *mtime, *atime)
                    .map_err(io_error(path, "set times"))?;
            }
        }
        Ok(())
    }
}

/// Owner, then mode (a chown clears set-id bits), then xattrs (a chown
/// clears capabilities) of an open file or directory.
fn meta_fd(fd: BorrowedFd, path: &[u8], e: &Entry) -> Result<(), TreeError> {
    fsops::chown_fd(fd, e.uid, e.gid).map_err(io_error(path, "chown"))?;
    fs::fchmod(fd, Mode::from_raw_mode(e.mode)).map_err(errno_error(path, "chmod"))?;
    for (key, value) in &e.xattrs {
        fs::fsetxattr(fd, &key[..], value, fs::XattrFlags::empty())
            .map_err(errno_error(path, "set xattr"))?;
    }
    Ok(())
}

fn is_dir_at(dir: BorrowedFd, name: &[u8]) -> bool {
    matches!(fsops::lstat_at(dir, name), Ok(Some(st)) if fsops::is_dir(&st))
}

fn not_below_dir(path: &[u8], parent: &[u8]) -> TreeError {
    TreeError::NotBelowDirectory {
        path: show(path),
        parent: show(parent),
    }
}
