//! Trees files are copied from, and COPY source resolution.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, OFlags};
use rustix::io::Errno;
use std::io;
use std::path::Path;

use strata_archive::fsops;

use crate::checksum;
use crate::ignore::path_str;
use crate::pattern::{Pattern, has_wildcards};
use crate::statcache::StatCache;
use crate::{ContextError, Ignore, io_err};

/// A directory tree COPY takes files from.
pub struct Tree {
    /// `O_PATH` handle on the root; everything is resolved beneath it.
    root: OwnedFd,
    /// The root's real path on the host, to turn a resolved fd back into a
    /// path relative to the root.
    root_real: Vec<u8>,
    ignore: Ignore,
    /// Stage and image trees keep their owners; the build context does not.
    keep_owners: bool,
}

/// One resolved COPY source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// As written in the instruction (for messages).
    spec: String,
    /// Real path relative to the tree root (symlinks resolved), "" for it.
    path: Vec<u8>,
    /// The name it gets inside a destination directory.
    name: Vec<u8>,
    is_dir: bool,
}

impl Source {
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Path relative to the tree root, symlinks resolved ("" is the root).
    pub fn path(&self) -> &Path {
        bytes_path(&self.path)
    }

    /// The name the source takes when copied into a directory.
    pub fn name(&self) -> &Path {
        bytes_path(&self.name)
    }

    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    pub(crate) fn path_bytes(&self) -> &[u8] {
        &self.path
    }

    pub(crate) fn name_bytes(&self) -> &[u8] {
        &self.name
    }
}

fn bytes_path(b: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b))
}

impl Tree {
    /// The build context at `dir`, filtered by `ignore`.
    pub fn context(dir: &Path, ignore: Ignore) -> io::Result<Tree> {
        Tree::open(dir, ignore, false)
    }

    /// Another stage's or an image's root filesystem at `dir`.
    pub fn rootfs(dir: &Path) -> io::Result<Tree> {
        Tree::open(dir, Ignore::none(), true)
    }

    fn open(dir: &Path, ignore: Ignore, keep_owners: bool) -> io::Result<Tree> {
        let root = fsops::open_dir(dir)?;
        let root_real = fsops::real_path(root.as_fd())?;
        Ok(Tree {
            root,
            root_real,
            ignore,
            keep_owners,
        })
    }

    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    pub(crate) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    pub(crate) fn keeps_owners(&self) -> bool {
        self.keep_owners
    }

    fn place(&self) -> &'static str {
        if self.keep_owners {
            "source stage"
        } else {
            "build context"
        }
    }

    /// Resolves COPY sources the way Docker does: relative to the tree root
    /// (a leading `/` or `..` cannot leave it), wildcards per path element,
    /// excluded files invisible. Wildcard matches come in name order.
    pub fn resolve(&self, sources: &[String]) -> Result<Vec<Source>, ContextError> {
        let mut out = Vec::new();
        for spec in sources {
            let parts = clamp(spec);
            if !has_wildcards(spec) {
                let named = parts.join("/").into_bytes();
                let found = self.lookup(spec, &named)?;
                out.push(found.ok_or_else(|| ContextError::NotFound {
                    place: self.place(),
                    source_path: spec.clone(),
                })?);
                continue;
            }
            let before = out.len();
            for named in self.expand(spec, &parts)? {
                out.extend(self.lookup(spec, &named)?);
            }
            if out.len() == before {
                return Err(ContextError::NoMatch {
                    place: self.place(),
                    pattern: spec.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Cache checksum of what [`crate::copy`] would copy from `sources`.
    pub fn checksum(
        &self,
        sources: &[Source],
        cache: &mut StatCache,
    ) -> Result<String, ContextError> {
        checksum::checksum(self, sources, cache)
    }

    /// Paths matching a wildcard source, element by element.
    fn expand(&self, spec: &str, parts: &[&str]) -> Result<Vec<Vec<u8>>, ContextError> {
        let mut found: Vec<Vec<u8>> = vec![Vec::new()];
        for part in parts {
            if !has_wildcards(part) && !part.contains('\\') {
                for path in &mut found {
                    *path = fsops::join(path, part.as_bytes());
                }
                continue;
            }
            let pattern = Pattern::glob(part).map_err(|reason| ContextError::BadWildcard {
                source_path: spec.to_string(),
                reason,
            })?;
            let mut next = Vec::new();
            for dir in &found {
                for name in self.list_dir(dir)? {
                    if pattern.matches(&path_str(&name)) {
                        next.push(fsops::join(dir, &name));
                    }
                }
            }
            found = next;
        }
        Ok(found)
    }

    /// Names in the directory at `dir` (symlinks followed inside the tree);
    /// nothing if it is not a directory.
    fn list_dir(&self, dir: &[u8]) -> Result<Vec<Vec<u8>>, ContextError> {
        match fsops::open_in_root(self.root(), dir, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fsops::read_dir_names(fd.as_fd()).map_err(io_err("reading directory", dir)),
            Err(e) if is_missing(&e) => Ok(Vec::new()),
            Err(e) => Err(io_err("opening directory", dir)(e)),
        }
    }

    /// The source named `named` (clamped, relative to the root), following
    /// symlinks inside the tree; `None` if missing or excluded.
    fn lookup(&self, spec: &str, named: &[u8]) -> Result<Option<Source>, ContextError> {
        let fd = match fsops::open_in_root(self.root(), named, OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(io_err("resolving source", named)(e)),
        };
        let st = fs::fstat(&fd).map_err(|e| io_err("stat", named)(e.into()))?;
        let is_dir = fsops::is_dir(&st);
        let path = self
            .relative(fd.as_fd())
            .map_err(io_err("resolving source", named))?;
        if !self.visible(named, is_dir) || !self.visible(&path, is_dir) {
            return Ok(None);
        }
        let name = named.rsplit(|&b| b == b'/').next().unwrap_or_default();
        Ok(Some(Source {
            spec: spec.to_string(),
            path,
            name: name.to_vec(),
            is_dir,
        }))
    }

    /// Whether `.dockerignore` leaves `path` (or, for a directory, something
    /// below it) in the context.
    fn visible(&self, path: &[u8], is_dir: bool) -> bool {
        if self.ignore.is_empty() || path.is_empty() {
            return true;
        }
        let path = path_str(path);
        if is_dir {
            self.ignore.may_include_under(&path)
        } else {
            !self.ignore.is_excluded(&path)
        }
    }

    /// The path of an fd resolved inside the tree, relative to its root.
    fn relative(&self, fd: BorrowedFd) -> io::Result<Vec<u8>> {
        let real = fsops::real_path(fd)?;
        if real == self.root_real {
            return Ok(Vec::new());
        }
        let prefix_len = if self.root_real == b"/" {
            0
        } else {
            self.root_real.len()
        };
        match real.get(prefix_len..) {
            Some([b'/', rest @ ..]) if real.starts_with(&self.root_real) => Ok(rest.to_vec()),
            _ => Err(io::Error::other(format!(
                "resolved to '{}', outside the tree",
                crate::show(&real)
            ))),
        }
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
    )
}

/// Splits a source path into elements, clamping `..` at the root the way a
/// chroot would: `../x` and `/x` both name `x`.
fn clamp(spec: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in spec.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts
}
