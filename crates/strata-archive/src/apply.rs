//! Applying an OCI layer tar to a directory.
//!
//! Safety: entry paths are cleaned lexically and refused if they climb out
//! of the root or are absolute; the parent directory of every entry is
//! resolved inside the root (`RESOLVE_IN_ROOT`, or [`Union`] for overlay),
//! and the entry itself is created with `*at()` on its single final name,
//! never following a symlink there. Relative symlinks that climb out of the
//! root and hardlinks to paths outside it are refused, as Docker does. So a
//! layer can never write outside the directory it is applied to.
//!
//! Whiteouts follow the OCI image spec: `.wh.<name>` hides `<name>` from the
//! layers below, `.wh..wh..opq` hides everything below in its directory; a
//! whiteout never hides what the same layer adds. With [`Format::Plain`] they
//! delete; with [`Format::Overlay`] they become overlayfs whiteouts (char
//! device 0/0) and `trusted.overlay.opaque=y`.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::copy;
use crate::direct::{DIRECT_MIN, DirectBuf, DirectWriter};
use crate::fsops::{self, OPAQUE_XATTR};
use crate::index::IndexWriter;
use crate::tarstream::Time;
use crate::tarstream::{Entry, EntryKind, TarError, TarReader};
use crate::union::{ResolveMode, Union, UnionDir, UnionError};
use crate::writeback::Writeback;

/// How the target directory relates to the layers below it.
pub enum Format<'a> {
    /// The directory holds the whole filesystem so far; whiteouts delete.
    Plain,
    /// The directory is an overlay upper layer over `lowers` (topmost first).
    Overlay { lowers: &'a [PathBuf] },
}

/// What an applied layer amounted to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub entries: u64,
    /// Bytes of regular-file content (what the layer adds to disk).
    pub size: u64,
    /// Bytes of the (uncompressed) tar stream.
    pub tar_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error(
        "tar entry '{0}' climbs out of the layer with '..'; the archive is malformed or hostile"
    )]
    Escape(String),
    #[error(
        "tar entry '{0}' has an absolute path; layer entries must be relative (re-create the tar without -P)"
    )]
    Absolute(String),
    #[error(
        "symlink '{path}' -> '{target}' points outside the layer; the archive is malformed or hostile"
    )]
    SymlinkEscape { path: String, target: String },
    #[error("hardlink '{path}' -> '{target}': {reason}")]
    Hardlink {
        path: String,
        target: String,
        reason: String,
    },
    #[error("device node '{path}' ({kind} {major}:{minor}) {reason}")]
    Device {
        path: String,
        kind: &'static str,
        major: u32,
        minor: u32,
        reason: &'static str,
    },
    #[error("tar entry '{path}': {reason}")]
    Invalid { path: String, reason: String },
    #[error("tar entry '{path}': {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("writing the layer index: {0}")]
    Index(io::Error),
}

/// The error for a failed filesystem call on the entry at `path` (the path
/// is only spelled out if the call fails: this sits on the hot path).
fn io_error<'a>(path: &'a [u8], op: &'static str) -> impl FnOnce(io::Error) -> ApplyError + 'a {
    move |source| ApplyError::Io {
        path: show(path),
        op,
        source,
    }
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Cleans a tar path: strips `./` and empty components, resolves `..`
/// lexically. `None` if it climbs above the root.
pub fn clean_path(path: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn hash(path: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// A resolved parent directory, cached across consecutive entries.
struct Parent {
    tar_path: Vec<u8>,
    fd: OwnedFd,
    real: Vec<u8>,
    /// Overlay only: lowers still merged into this directory.
    union: Option<UnionDir>,
}

struct DirTime {
    real: Vec<u8>,
    mtime: Time,
    atime: Option<Time>,
}

enum Existing {
    Nothing,
    KeptDir,
    Replaced,
}

/// Applies the tar stream `reader` to `target`.
///
/// `index`, when given, receives the layer index (see [`crate::index`]).
/// The caller makes the result durable (one `syncfs`) before recording it.
pub fn apply<R: Read, W: Write>(
    reader: R,
    target: &Path,
    format: Format,
    index: Option<&mut IndexWriter<W>>,
) -> Result<Applied, ApplyError> {
    let root_err = |source| ApplyError::Io {
        path: ".".into(),
        op: "open the target directory",
        source,
    };
    let root = fsops::open_dir(target).map_err(root_err)?;
    let root_real = fsops::real_path(root.as_fd()).map_err(root_err)?;
    let union = match format {
        Format::Plain => None,
        Format::Overlay { lowers } => Some(Union::new(target, lowers).map_err(root_err)?),
    };
    let mut applier = Applier {
        root,
        root_real,
        union,
        index,
        parent: None,
        written: HashSet::new(),
        touched: HashSet::new(),
        content: HashMap::new(),
        dir_times: Vec::new(),
        buf: vec![0u8; 256 * 1024],
        direct_buf: None,
        writeback: Writeback::start(),
        stats: Applied::default(),
    };
    let mut tar = TarReader::new(reader);
    while let Some(entry) = tar.next_entry()? {
        applier.raw(&mut tar)?;
        applier.stats.entries += 1;
        applier.entry(&mut tar, entry)?;
    }
    applier.raw(&mut tar)?;
    applier.stats.tar_size = tar.offset();
    applier.finish()?;
    Ok(applier.stats)
}

struct Applier<'a, W: Write> {
    root: OwnedFd,
    root_real: Vec<u8>,
    union: Option<Union>,
    index: Option<&'a mut IndexWriter<W>>,
    parent: Option<Rc<Parent>>,
    /// Real paths this layer created (hashed: bounded memory on huge layers).
    written: HashSet<u64>,
    /// Ancestors of written paths.
    touched: HashSet<u64>,
    /// Regular files this layer wrote -> their file number in the index.
    content: HashMap<u64, u32>,
    /// Directory times to set once all entries are in.
    dir_times: Vec<DirTime>,
    buf: Vec<u8>,
    /// For files written around the page cache, made at the first.
    direct_buf: Option<DirectBuf>,
    /// Takes each written file, to start its writeback and close it.
    writeback: Writeback,
    stats: Applied,
}

impl<W: Write> Applier<'_, W> {
    fn raw<R: Read>(&mut self, tar: &mut TarReader<R>) -> Result<(), ApplyError> {
        if let Some(index) = self.index.as_deref_mut() {
            index.raw(tar.raw()).map_err(ApplyError::Index)?;
        }
        tar.clear_raw();
        Ok(())
    }

    fn is_overlay(&self) -> bool {
        self.union.is_some()
    }

    fn entry<R: Read>(&mut self, tar: &mut TarReader<R>, e: Entry) -> Result<(), ApplyError> {
        if e.path.starts_with(b"/") {
            return Err(ApplyError::Absolute(show(&e.path)));
        }
        let path = clean_path(&e.path).ok_or_else(|| ApplyError::Escape(show(&e.path)))?;
        if path.is_empty() {
            return self.root_entry(&e);
        }
        let (parent, name) = split_parent(&path);
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            return self.whiteout(parent, hidden, &path);
        }
        match e.kind {
            EntryKind::Symlink => {
                check_symlink(parent, &e.link).map_err(|()| ApplyError::SymlinkEscape {
                    path: show(&path),
                    target: show(&e.link),
                })?
            }
            EntryKind::Char | EntryKind::Block => check_device(&path, &e)?,
            _ => {}
        }
        let io_err = |op| {
            let p = show(&path);
            move |source| ApplyError::Io {
                path: p,
                op,
                source,
            }
        };
        let dir = self.parent(parent, &path)?;
        let real = fsops::join(&dir.real, name);
        match e.kind {
            EntryKind::Directory => self.directory(&dir, name, &real, &e),
            EntryKind::Regular => self.regular(tar, &dir, name, &real, &e),
            EntryKind::Symlink => {
                self.replace(&dir, name, &real, false)?;
                fs::symlinkat(&e.link[..], dir.fd.as_fd(), name)
                    .map_err(|e| io_err("create symlink")(e.into()))?;
                self.finish_entry(&dir, name, &real, &e)
            }
            EntryKind::Hardlink => self.hardlink(&dir, name, &real, &path, &e),
            EntryKind::Char | EntryKind::Block | EntryKind::Fifo => {
                self.replace(&dir, name, &real, false)?;
                let (kind, dev) = match e.kind {
                    EntryKind::Char => (
                        FileType::CharacterDevice,
                        fs::makedev(e.dev_major, e.dev_minor),
                    ),
                    EntryKind::Block => {
                        (FileType::BlockDevice, fs::makedev(e.dev_major, e.dev_minor))
                    }
                    _ => (FileType::Fifo, 0),
                };
                fs::mknodat(dir.fd.as_fd(), name, kind, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| io_err("mknod")(e.into()))?;
                self.finish_entry(&dir, name, &real, &e)
            }
        }
    }

    /// Resolves (and creates, copying up in overlay) the parent directory.
    fn parent(&mut self, tar_parent: &[u8], path: &[u8]) -> Result<Rc<Parent>, ApplyError> {
        if let Some(p) = &self.parent
            && p.tar_path == tar_parent
        {
            return Ok(p.clone());
        }
        let p = Rc::new(
            self.resolve(tar_parent, true, path)?
                .expect("resolve creates missing directories"),
        );
        self.parent = Some(p.clone());
        Ok(p)
    }

    /// Resolves a directory; with `create`, missing ones are made.
    fn resolve(
        &mut self,
        dir: &[u8],
        create: bool,
        path: &[u8],
    ) -> Result<Option<Parent>, ApplyError> {
        let union_err = |e: UnionError| match e {
            UnionError::Io(source) => ApplyError::Io {
                path: show(path),
                op: "resolve parent directory",
                source,
            },
            e => ApplyError::Invalid {
                path: show(path),
                reason: e.to_string(),
            },
        };
        if let Some(union) = &self.union {
            let mode = if create {
                ResolveMode::Create
            } else {
                ResolveMode::Materialize
            };
            let mut made = Vec::new();
            let found = match union.resolve_dir(dir, mode, &mut made) {
                // Looking up without creating: a non-directory on the way
                // means there is nothing there (as for Plain's ENOTDIR).
                Err(UnionError::NotADirectory(_)) if !create => None,
                other => other.map_err(union_err)?,
            };
            for m in made {
                match m.copied_up {
                    Some(mtime) => self.dir_times.push(DirTime {
                        real: m.real,
                        mtime,
                        atime: None,
                    }),
                    None => self.mark_written(&m.real),
                }
            }
            return Ok(found.map(|u| Parent {
                tar_path: dir.to_vec(),
                fd: u.fd.try_clone().expect("dup"),
                real: u.real.clone(),
                union: Some(u),
            }));
        }
        let io_err = |source| ApplyError::Io {
            path: show(path),
            op: "resolve parent directory",
            source,
        };
        let fd = match fsops::open_in_root(self.root.as_fd(), dir, OFlags::PATH | OFlags::DIRECTORY)
        {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                self.mkdir_all(dir, path, 0)?;
                fsops::open_in_root(self.root.as_fd(), dir, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(io_err)?
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) && !create => {
                return Ok(None);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(ApplyError::Invalid {
                    path: show(path),
                    reason: format!("a parent in '{}' is not a directory", show(dir)),
                });
            }
            Err(e) => return Err(io_err(e)),
        };
        let real = self.real_of(fd.as_fd()).map_err(io_err)?;
        Ok(Some(Parent {
            tar_path: dir.to_vec(),
            fd,
            real,
            union: None,
        }))
    }

    /// The root-relative real path of an fd inside the root.
    fn real_of(&self, fd: BorrowedFd) -> io::Result<Vec<u8>> {
        let abs = fsops::real_path(fd)?;
        if abs == self.root_real {
            return Ok(Vec::new());
        }
        abs.strip_prefix(&self.root_real[..])
            .and_then(|r| r.strip_prefix(b"/"))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::other("resolved outside the target directory"))
    }

    /// `mkdir -p` inside the root (Plain format), following symlinks clamped
    /// to the root as the kernel's `RESOLVE_IN_ROOT` does.
    fn mkdir_all(&mut self, dir: &[u8], path: &[u8], depth: u32) -> Result<(), ApplyError> {
        let io_err = |source| ApplyError::Io {
            path: show(path),
            op: "create parent directory",
            source,
        };
        if depth > 40 {
            return Err(ApplyError::Invalid {
                path: show(path),
                reason: "too many levels of symbolic links".into(),
            });
        }
        let comps: Vec<&[u8]> = dir
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        for i in 0..comps.len() {
            let prefix = comps[..=i].join(&b'/');
            match fsops::open_in_root(self.root.as_fd(), &prefix, OFlags::PATH | OFlags::DIRECTORY)
            {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(io_err(e)),
            }
            let up = comps[..i].join(&b'/');
            let up_fd =
                fsops::open_in_root(self.root.as_fd(), &up, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(io_err)?;
            match fs::mkdirat(up_fd.as_fd(), comps[i], Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    let real = fsops::join(&self.real_of(up_fd.as_fd()).map_err(io_err)?, comps[i]);
                    self.mark_written(&real);
                }
                Err(Errno::EXIST) => {
                    // A dangling symlink: create what it points at, inside the root.
                    let link = fs::readlinkat(up_fd.as_fd(), comps[i], Vec::new())
                        .map_err(|e| io_err(e.into()))?;
                    let link = link.as_bytes();
                    let target = if link.starts_with(b"/") {
                        clean_path(link).unwrap_or_default()
                    } else {
                        clamp(&fsops::join(&up, link))
                    };
                    self.mkdir_all(&target, path, depth + 1)?;
                }
                Err(e) => return Err(io_err(e.into())),
            }
        }
        Ok(())
    }

    /// Records that this layer wrote `real`, and so has content in each of
    /// its ancestors.
    fn mark_written(&mut self, real: &[u8]) {
        self.written.insert(hash(real));
        let mut p = real;
        while let Some(i) = p.iter().rposition(|&b| b == b'/') {
            p = &p[..i];
            if !self.touched.insert(hash(p)) {
                return;
            }
        }
        self.touched.insert(hash(b""));
    }

    fn this_layer(&self, real: &[u8]) -> bool {
        let h = hash(real);
        self.written.contains(&h) || self.touched.contains(&h)
    }

    /// Clears what is at `name` so a new entry can take its place. An
    /// existing directory stays when the new entry is a directory too.
    fn replace(
        &mut self,
        dir: &Parent,
        name: &[u8],
        real: &[u8],
        new_is_dir: bool,
    ) -> Result<Existing, ApplyError> {
        let st = fsops::lstat_at(dir.fd.as_fd(), name).map_err(|source| ApplyError::Io {
            path: show(real),
            op: "stat",
            source,
        })?;
        match st {
            None => Ok(Existing::Nothing),
            Some(st) if new_is_dir && fsops::is_dir(&st) => Ok(Existing::KeptDir),
            Some(_) => {
                self.remove(dir.fd.as_fd(), name, &dir.real)?;
                Ok(Existing::Replaced)
            }
        }
    }

    /// Removes `name` (recursively), first spilling into the index the
    /// content of any file this layer wrote there.
    fn remove(&mut self, dir: BorrowedFd, name: &[u8], dir_real: &[u8]) -> Result<(), ApplyError> {
        let mut invalidates = false;
        let index = &mut self.index;
        let content = &mut self.content;
        fsops::remove_all_at(dir, name, &mut |r| {
            let real = fsops::join(dir_real, r.rel);
            if fsops::is_dir(r.stat) || fsops::file_type(r.stat) == FileType::Symlink {
                invalidates = true;
            } else if let (Some(index), Some(file_no)) =
                (index.as_deref_mut(), content.remove(&hash(&real)))
            {
                let fd = fs::openat(
                    r.dir,
                    r.name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                index.spill(file_no, &mut File::from(fd))?;
            }
            Ok(())
        })
        .map_err(|source| ApplyError::Io {
            path: show(&fsops::join(dir_real, name)),
            op: "remove",
            source,
        })?;
        if invalidates {
            // A cached parent may have been inside, or resolved through, what went.
            self.parent = None;
        }
        Ok(())
    }

    fn root_entry(&mut self, e: &Entry) -> Result<(), ApplyError> {
        if e.kind != EntryKind::Directory {
            return Err(ApplyError::Invalid {
                path: show(&e.path),
                reason: "the layer's root must be a directory".into(),
            });
        }
        let root = Parent {
            tar_path: Vec::new(),
            fd: self.root.try_clone().expect("dup"),
            real: Vec::new(),
            union: None,
        };
        self.set_meta(&root, b"", b"", e, true)?;
        self.dir_times.push(DirTime {
            real: Vec::new(),
            mtime: e.mtime,
            atime: e.atime,
        });
        Ok(())
    }

    fn directory(
        &mut self,
        dir: &Parent,
        name: &[u8],
        real: &[u8],
        e: &Entry,
    ) -> Result<(), ApplyError> {
        let existing = self.replace(dir, name, real, true)?;
        if !matches!(existing, Existing::KeptDir) {
            fs::mkdirat(dir.fd.as_fd(), name, Mode::from_raw_mode(0o700)).map_err(|source| {
                ApplyError::Io {
                    path: show(real),
                    op: "mkdir",
                    source: source.into(),
                }
            })?;
        }
        if self.is_overlay() && matches!(existing, Existing::Replaced) {
            // Whatever it replaces (a whiteout, a file) was hiding the lowers'
            // entry here: the new directory must keep hiding it.
            fsops::set_xattr_at(dir.fd.as_fd(), name, OPAQUE_XATTR.as_bytes(), b"y").map_err(
                |source| ApplyError::Io {
                    path: show(real),
                    op: "set opaque",
                    source,
                },
            )?;
        }
        self.set_meta(dir, name, real, e, true)?;
        self.dir_times.push(DirTime {
            real: real.to_vec(),
            mtime: e.mtime,
            atime: e.atime,
        });
        self.mark_written(real);
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        dir: &Parent,
        name: &[u8],
        real: &[u8],
        e: &Entry,
    ) -> Result<(), ApplyError> {
        let io_err = |op| io_error(real, op);
        let create = || {
            fs::openat(
                dir.fd.as_fd(),
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        };
        // Most names are new: try to create first, and only replace (and
        // stat) what turns out to be there. One syscall less per file.
        let fd = match create() {
            Err(rustix::io::Errno::EXIST) => {
                self.replace(dir, name, real, false)?;
                create()
            }
            other => other,
        }
        .map_err(|e| io_err("create")(e.into()))?;
        if let Some(index) = self.index.as_deref_mut() {
            let file_no = index.file(real, e.size).map_err(ApplyError::Index)?;
            self.content.insert(hash(real), file_no);
        }
        let file = File::from(fd);
        if e.size >= DIRECT_MIN {
            self.write_direct(tar, &file, real)?;
        } else {
            self.write_buffered(tar, &file, real)?;
        }
        self.stats.size += e.size;
        let fd = file.as_fd();
        fsops::chown_fd(fd, e.uid, e.gid).map_err(io_err("chown"))?;
        fs::fchmod(fd, Mode::from_raw_mode(e.mode)).map_err(|e| io_err("chmod")(e.into()))?;
        for (key, value) in &e.xattrs {
            fs::fsetxattr(fd, &key[..], value, fs::XattrFlags::empty())
                .map_err(|e| io_err("set xattr")(e.into()))?;
        }
        fsops::set_times_fd(fd, e.mtime, e.atime).map_err(io_err("set times"))?;
        self.writeback.file(file);
        self.mark_written(real);
        Ok(())
    }

    /// Writes a large file's content around the page cache.
    fn write_direct<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        file: &File,
        real: &[u8],
    ) -> Result<(), ApplyError> {
        let buf = self.direct_buf.get_or_insert_with(DirectBuf::default);
        let mut out = DirectWriter::new(file, buf);
        loop {
            let n = tar.read_content(out.spare())?;
            if n == 0 {
                break;
            }
            out.filled(n).map_err(io_error(real, "write"))?;
        }
        out.finish().map_err(io_error(real, "write"))?;
        Ok(())
    }

    /// Writes a file's content through the page cache.
    fn write_buffered<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        mut file: &File,
        real: &[u8],
    ) -> Result<(), ApplyError> {
        loop {
            let n = tar.read_content(&mut self.buf)?;
            if n == 0 {
                return Ok(());
            }
            file.write_all(&self.buf[..n])
                .map_err(io_error(real, "write"))?;
        }
    }

    fn hardlink(
        &mut self,
        dir: &Parent,
        name: &[u8],
        real: &[u8],
        path: &[u8],
        e: &Entry,
    ) -> Result<(), ApplyError> {
        let err = |reason: &str| ApplyError::Hardlink {
            path: show(path),
            target: show(&e.link),
            reason: reason.to_owned(),
        };
        // Hardlink targets name archive members; a leading '/' means the layer root.
        let target = clean_path(&e.link)
            .ok_or_else(|| err("the target climbs out of the layer with '..'"))?;
        if target.is_empty() {
            return Err(err("the target is the layer root"));
        }
        let (tparent, tname) = split_parent(&target);
        let tdir = self
            .resolve(tparent, false, path)?
            .ok_or_else(|| err("the target does not exist in the layer"))?;
        let treal = fsops::join(&tdir.real, tname);
        if treal == real {
            return Ok(());
        }
        let st = fsops::lstat_at(tdir.fd.as_fd(), tname).map_err(|source| ApplyError::Io {
            path: show(path),
            op: "stat hardlink target",
            source,
        })?;
        match st {
            Some(st) if fsops::is_dir(&st) => return Err(err("the target is a directory")),
            Some(st) if !(self.is_overlay() && fsops::is_whiteout(&st)) => {}
            _ => self
                .copy_up(&tdir, tname)
                .map_err(|()| err("the target does not exist in the layer"))?,
        }
        self.replace(dir, name, real, false)?;
        fs::linkat(
            tdir.fd.as_fd(),
            tname,
            dir.fd.as_fd(),
            name,
            AtFlags::empty(),
        )
        .map_err(|source| ApplyError::Io {
            path: show(path),
            op: "link",
            source: source.into(),
        })?;
        self.link_metadata(dir, name, path, e)?;
        self.mark_written(real);
        Ok(())
    }

    /// A hardlink entry's owner, mode and times apply to the file it links
    /// to, as Docker and podman unpack it (a symlink keeps its mode).
    fn link_metadata(
        &self,
        dir: &Parent,
        name: &[u8],
        path: &[u8],
        e: &Entry,
    ) -> Result<(), ApplyError> {
        let io_err = |op| io_error(path, op);
        let fd = dir.fd.as_fd();
        fsops::chown_at(fd, name, e.uid, e.gid).map_err(io_err("chown"))?;
        let symlink = fsops::lstat_at(fd, name)
            .map_err(io_err("stat"))?
            .is_some_and(|st| fsops::file_type(&st) == fs::FileType::Symlink);
        if !symlink {
            fsops::chmod_at(fd, name, e.mode).map_err(io_err("chmod"))?;
            fsops::set_times_at(fd, name, e.mtime, e.atime).map_err(io_err("set times"))?;
        }
        Ok(())
    }

    /// Overlay: brings a lower layer's file into the upper layer so it can
    /// be hardlinked. Err(()) if the merged view has no such file.
    fn copy_up(&mut self, dir: &Parent, name: &[u8]) -> Result<(), ()> {
        let (Some(union), Some(udir)) = (&self.union, &dir.union) else {
            return Err(());
        };
        let Ok(Some((layer, st))) = union.lower_child(udir, name) else {
            return Err(());
        };
        if fsops::is_dir(&st) {
            return Err(());
        }
        let src = fsops::open_in_root(
            union.lower_dir(layer),
            &dir.real,
            OFlags::PATH | OFlags::DIRECTORY,
        )
        .map_err(|_| ())?;
        if let Ok(Some(_)) = fsops::lstat_at(dir.fd.as_fd(), name) {
            // A whiteout made earlier in this layer: the file was deleted.
            return Err(());
        }
        copy::copy_entry(src.as_fd(), name, &st, dir.fd.as_fd(), name).map_err(|_| ())?;
        Ok(())
    }

    /// Owner, mode, xattrs; times too unless it is a directory (those are set
    /// last, once nothing more is created inside).
    fn set_meta(
        &mut self,
        dir: &Parent,
        name: &[u8],
        real: &[u8],
        e: &Entry,
        is_dir: bool,
    ) -> Result<(), ApplyError> {
        let io_err = |op| io_error(real, op);
        let d = dir.fd.as_fd();
        fsops::chown_at(d, name, e.uid, e.gid).map_err(io_err("chown"))?;
        if e.kind != EntryKind::Symlink {
            fsops::chmod_at(d, name, e.mode).map_err(io_err("chmod"))?;
        }
        let target: &[u8] = if name.is_empty() { b"." } else { name };
        for (key, value) in &e.xattrs {
            fsops::set_xattr_at(d, target, key, value).map_err(io_err("set xattr"))?;
        }
        if !is_dir {
            fsops::set_times_at(d, name, e.mtime, e.atime).map_err(io_err("set times"))?;
        }
        Ok(())
    }

    fn finish_entry(
        &mut self,
        dir: &Parent,
        name: &[u8],
        real: &[u8],
        e: &Entry,
    ) -> Result<(), ApplyError> {
        self.set_meta(dir, name, real, e, false)?;
        self.mark_written(real);
        Ok(())
    }

    /// `.wh.<hidden>` in `parent` (or `.wh..wh..opq`).
    fn whiteout(&mut self, parent: &[u8], hidden: &[u8], path: &[u8]) -> Result<(), ApplyError> {
        if hidden == b".wh..opq" {
            return self.opaque(parent, path);
        }
        if hidden.starts_with(b".wh.") {
            return Ok(()); // aufs bookkeeping (.wh..wh.plnk and friends): meaningless here
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(ApplyError::Invalid {
                path: show(path),
                reason: "a whiteout must name a file".into(),
            });
        }
        // Nothing to hide when the directory does not exist below.
        let Some(dir) = self.resolve(parent, false, path)? else {
            return Ok(());
        };
        let real = fsops::join(&dir.real, hidden);
        let io_err = |op| io_error(path, op);
        let st = fsops::lstat_at(dir.fd.as_fd(), hidden).map_err(io_err("stat"))?;
        if self.this_layer(&real) {
            // Only what is below this layer is hidden: a directory of ours
            // loses its lower content, anything else of ours stays.
            if st.is_some_and(|st| fsops::is_dir(&st)) {
                let sub = fsops::open_child_dir(dir.fd.as_fd(), hidden).map_err(io_err("open"))?;
                return self.opaque_at(sub.as_fd(), &real, path);
            }
            return Ok(());
        }
        if let (Some(union), Some(udir)) = (&self.union, &dir.union) {
            if st.is_some_and(|st| fsops::is_whiteout(&st)) {
                return Ok(());
            }
            // Like the kernel, whiteout only what a lower layer has: overlayfs
            // shows whiteouts as entries in directories with nothing below.
            let below = union
                .lower_child(udir, hidden)
                .map_err(io_err("stat lower"))?;
            if st.is_some() {
                self.remove(dir.fd.as_fd(), hidden, &dir.real)?;
            }
            if below.is_some() {
                fsops::mknod_whiteout(dir.fd.as_fd(), hidden).map_err(io_err("create whiteout"))?;
                // A cached parent may have been resolved through what it hides.
                self.parent = None;
            }
        } else if st.is_some() {
            self.remove(dir.fd.as_fd(), hidden, &dir.real)?;
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `dir_path`. Like any entry's parent, the directory
    /// is created if missing (as Docker does).
    fn opaque(&mut self, dir_path: &[u8], path: &[u8]) -> Result<(), ApplyError> {
        let dir = self
            .resolve(dir_path, true, path)?
            .expect("resolve creates missing directories");
        self.opaque_at(dir.fd.as_fd(), &dir.real, path)
    }

    /// Hides everything the lower layers have in the directory `dir`.
    fn opaque_at(&mut self, dir: BorrowedFd, real: &[u8], path: &[u8]) -> Result<(), ApplyError> {
        self.clear_lower(dir, real, path)?;
        if self.is_overlay() {
            fsops::set_xattr_fd(dir, OPAQUE_XATTR.as_bytes(), b"y").map_err(|source| {
                ApplyError::Io {
                    path: show(path),
                    op: "set opaque",
                    source,
                }
            })?;
            // A cached parent may have been resolved through what it hides.
            self.parent = None;
        }
        Ok(())
    }

    /// Removes what is under `dir` but not this layer's, recursively. Plain:
    /// the lower layers' files. Overlay: copies of lower directories and
    /// whiteouts, which an opaque directory makes pointless (and overlayfs
    /// would list as entries).
    fn clear_lower(&mut self, dir: BorrowedFd, real: &[u8], path: &[u8]) -> Result<(), ApplyError> {
        let io_err = |op| io_error(path, op);
        for child in fsops::read_dir_names(dir).map_err(io_err("read directory"))? {
            let creal = fsops::join(real, &child);
            if !self.this_layer(&creal) {
                self.remove(dir, &child, real)?;
                continue;
            }
            if let Ok(Some(st)) = fsops::lstat_at(dir, &child)
                && fsops::is_dir(&st)
            {
                let sub = fsops::open_child_dir(dir, &child).map_err(io_err("open"))?;
                self.clear_lower(sub.as_fd(), &creal, path)?;
            }
        }
        Ok(())
    }

    /// Sets directory times, now that nothing more is created inside.
    fn finish(&mut self) -> Result<(), ApplyError> {
        for d in std::mem::take(&mut self.dir_times) {
            let (up, name) = split_parent(&d.real);
            let Ok(dir) =
                fsops::open_beneath(self.root.as_fd(), up, OFlags::PATH | OFlags::DIRECTORY)
            else {
                continue; // removed later in the layer
            };
            let name: &[u8] = if name.is_empty() { b"." } else { name };
            // Replaced later in the layer by something else: not ours to touch.
            if !matches!(fsops::lstat_at(dir.as_fd(), name), Ok(Some(st)) if fsops::is_dir(&st)) {
                continue;
            }
            match fsops::set_times_at(dir.as_fd(), name, d.mtime, d.atime) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(source) => {
                    return Err(ApplyError::Io {
                        path: show(&d.real),
                        op: "set times",
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Lexically cleans a root-relative path, clamping `..` at the root.
fn clamp(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join(&b'/')
}

/// A relative symlink target must not climb above the root from where the
/// link lives (Docker's "breakout" rule); absolute ones are root-relative.
fn check_symlink(parent: &[u8], target: &[u8]) -> Result<(), ()> {
    if target.starts_with(b"/") {
        return Ok(());
    }
    let mut depth: i64 = parent
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .count() as i64;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(());
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Device nodes belong in /dev. A char device 0/0 is refused everywhere: it
/// is overlayfs' whiteout, and in an OCI layer it would hide files on one
/// storage driver but not on another.
fn check_device(path: &[u8], e: &Entry) -> Result<(), ApplyError> {
    let kind = match e.kind {
        EntryKind::Char => "char",
        EntryKind::Block => "block",
        _ => return Ok(()),
    };
    let err = |reason| ApplyError::Device {
        path: show(path),
        kind,
        major: e.dev_major,
        minor: e.dev_minor,
        reason,
    };
    if e.kind == EntryKind::Char && e.dev_major == 0 && e.dev_minor == 0 {
        return Err(err(
            "is an overlay whiteout; OCI layers must use .wh. files",
        ));
    }
    if !path.starts_with(b"dev/") {
        return Err(err(
            "is outside /dev; an image may carry device nodes only under /dev",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        fn check(input: &str, expected: Option<&str>) {
            assert_eq!(
                clean_path(input.as_bytes()).map(|p| String::from_utf8(p).unwrap()),
                expected.map(str::to_owned),
                "{input}"
            );
        }
        check("./etc/passwd", Some("etc/passwd"));
        check("a//b/./c/", Some("a/b/c"));
        check("a/../b", Some("b"));
        check("./", Some(""));
        check("../etc/passwd", None);
        check("a/../../etc", None);
    }

    #[test]
    fn symlink_breakout_rule() {
        fn check(parent: &str, target: &str, ok: bool) {
            assert_eq!(
                check_symlink(parent.as_bytes(), target.as_bytes()).is_ok(),
                ok,
                "{parent} -> {target}"
            );
        }
        check("", "/etc", true);
        check("usr/bin", "../lib/x", true);
        check("usr/bin", "../../etc", true);
        check("usr/bin", "../../../etc", false);
        check("", "..", false);
        check("a", "b/../../x", true);
    }
}
