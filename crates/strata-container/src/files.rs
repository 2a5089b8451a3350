//! A container's files: `diff`, `commit`, `export` and `cp`.
//!
//! `diff` and `commit` read the writable layer itself (an overlay upper
//! directory, or the vfs copy compared with its parent), so they work the
//! same whether the container runs or not. `export` and `cp` need the
//! merged tree: the running container's, or a mount made for the call.
//! Every path inside a container is resolved with `openat2(RESOLVE_IN_ROOT)`
//! and then used through file descriptors, so a symlink in the container
//! never leads outside it.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use strata_archive::diff::{Source, write_diff};
use strata_archive::tarstream::TarReader;
use strata_archive::{copy, fsops};
use strata_image::Reference;
use strata_image::commit::CommitOptions;
use strata_image::layer_diff::SnapshotChanges;
use strata_snapshot::mount;

use crate::query::{Change, ChangeKind};
use crate::{Container, ContainerError, Containers, Result, io_at, snapshot_key};

/// One end of `cp`: a path in a container, or on the host.
pub enum CopyEnd {
    Container(String, String),
    Host(PathBuf),
}

impl CopyEnd {
    /// `CTR:PATH` or a host path (as docker: a colon before any slash).
    pub fn parse(s: &str) -> CopyEnd {
        match s.split_once(':') {
            Some((c, p)) if !c.is_empty() && !c.contains('/') => {
                CopyEnd::Container(c.to_owned(), p.to_owned())
            }
            _ => CopyEnd::Host(PathBuf::from(s)),
        }
    }
}

impl Containers<'_> {
    fn layer(&self, c: &Container) -> Result<SnapshotChanges> {
        Ok(self.store.snapshot_changes(&snapshot_key(c.id()))?)
    }

    /// `diff`: what the container added (A), changed (C) and deleted (D).
    pub fn diff(&self, s: &str) -> Result<Vec<Change>> {
        let c = self.get(s)?;
        let layer = self.layer(&c)?;
        let lowers: Vec<OwnedFd> = layer
            .lowers
            .iter()
            .map(|p| fsops::open_dir(p).map_err(io_at(p)))
            .collect::<Result<_>>()?;
        let mut changes = layer.stream(|reader| -> Result<_> {
            let mut tar = TarReader::new(reader);
            let mut changes = Vec::new();
            let bad =
                |e: strata_archive::tarstream::TarError| ContainerError::Invalid(e.to_string());
            while let Some(entry) = tar.next_entry().map_err(bad)? {
                let path = String::from_utf8_lossy(&entry.path)
                    .trim_end_matches('/')
                    .to_owned();
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
                if name == ".wh..wh..opq" {
                    continue;
                }
                let change = match name.strip_prefix(".wh.") {
                    Some(gone) => Change {
                        kind: ChangeKind::Deleted,
                        path: join_abs(dir, gone),
                    },
                    None => {
                        let existed = lowers.iter().any(|l| in_lower(l.as_fd(), &path));
                        Change {
                            kind: if existed {
                                ChangeKind::Changed
                            } else {
                                ChangeKind::Added
                            },
                            path: join_abs(dir, name),
                        }
                    }
                };
                changes.push(change);
            }
            Ok(changes)
        })?;
        // Mount points the runtime made (/proc, /dev, a volume's target)
        // are the container's plumbing, not its changes; Docker keeps them
        // in a hidden init layer, so its diff never shows them either.
        let plumbing: Vec<&str> = ["/dev", "/proc", "/sys"]
            .into_iter()
            .chain(c.config.mounts.iter().map(|m| m.target.as_str()))
            .collect();
        changes
            .retain(|ch| !(ch.kind == ChangeKind::Added && plumbing.contains(&ch.path.as_str())));
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(changes)
    }

    /// `commit`: the writable layer as a new image on the container's.
    pub fn commit(
        &self,
        s: &str,
        opts: &CommitOptions,
        name: Option<&Reference>,
        progress: &dyn strata_image::progress::Progress,
    ) -> Result<strata_store::Digest> {
        let c = self.get(s)?;
        let parent: strata_store::Digest = c.row.image.parse().map_err(|_| {
            ContainerError::Invalid(format!("container {} names no image", c.name()))
        })?;
        let mut opts = opts.clone();
        if opts.created_by.is_empty() {
            opts.created_by = c.config.args.join(" ");
        }
        let loaded = self.layer(&c)?.stream(|layer| -> Result<_> {
            Ok(self.store.commit(&parent, layer, &opts, name, progress)?)
        })?;
        Ok(loaded.id)
    }

    /// `export`: the container's merged filesystem as a tar.
    pub fn export(&self, s: &str, out: &mut (dyn Write + Send)) -> Result<()> {
        let c = self.get(s)?;
        self.with_rootfs(&c, |rootfs| {
            write_diff(
                &Source::Compare {
                    lower: None,
                    upper: rootfs,
                },
                out,
            )
            .map(drop)
            .map_err(|e| ContainerError::Invalid(e.to_string()))
        })
    }

    /// Runs `f` on the container's merged tree, mounting it for the call if
    /// the container is not running.
    fn with_rootfs<T>(&self, c: &Container, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let rootfs = self.rootfs(c.id());
        if mount::is_mounted(&rootfs).map_err(io_at(&rootfs))? {
            return f(&rootfs);
        }
        let mounts = self.store.snapshots()?.mounts(&snapshot_key(c.id()))?;
        std::fs::create_dir_all(&rootfs).map_err(io_at(&rootfs))?;
        let mounted = mount::mount(&mounts, &rootfs)?;
        let result = f(mounted.target());
        mounted.unmount().map_err(io_at(&rootfs))?;
        result
    }

    /// `cp`: copies a file or tree between a container and the host.
    pub fn copy(&self, from: &CopyEnd, to: &CopyEnd) -> Result<()> {
        match (from, to) {
            (CopyEnd::Container(c, src), CopyEnd::Host(dst)) => {
                let c = self.get(c)?;
                self.with_rootfs(&c, |rootfs| {
                    let root = fsops::open_dir(rootfs).map_err(io_at(rootfs))?;
                    copy_between(Some(root.as_fd()), src, None, &dst.to_string_lossy())
                })
            }
            (CopyEnd::Host(src), CopyEnd::Container(c, dst)) => {
                let c = self.get(c)?;
                self.with_rootfs(&c, |rootfs| {
                    let root = fsops::open_dir(rootfs).map_err(io_at(rootfs))?;
                    copy_between(None, &src.to_string_lossy(), Some(root.as_fd()), dst)
                })
            }
            _ => Err(ContainerError::Invalid(
                "copying needs one end in a container (CONTAINER:PATH) and one on the host".into(),
            )),
        }
    }
}

fn join_abs(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        format!("/{name}")
    } else {
        format!("/{dir}/{name}")
    }
}

/// Whether `path` is in the lower tree `root` (its own paths, no links
/// followed).
fn in_lower(root: BorrowedFd, path: &str) -> bool {
    fsops::open_beneath(root, path.as_bytes(), OFlags::PATH).is_ok()
}

/// Opens the directory `path` in `root` (a container: resolved inside it)
/// or on the host (`root` None).
fn open_dir_at(root: Option<BorrowedFd>, path: &str) -> std::io::Result<OwnedFd> {
    match root {
        Some(r) => fsops::open_in_root(r, path.as_bytes(), OFlags::PATH | OFlags::DIRECTORY),
        None => fsops::open_dir(Path::new(if path.is_empty() { "." } else { path })),
    }
}

/// The parent directory of `path` (opened) and its last component.
fn split(root: Option<BorrowedFd>, path: &str) -> std::io::Result<(OwnedFd, Vec<u8>)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => ("", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("'{path}' names no file or directory to copy"),
        ));
    }
    Ok((open_dir_at(root, parent)?, name.as_bytes().to_vec()))
}

/// Copies `src` (in `src_root`) to `dst` (in `dst_root`), as `docker cp`:
/// into `dst` when it is an existing directory, else as `dst`.
fn copy_between(
    src_root: Option<BorrowedFd>,
    src: &str,
    dst_root: Option<BorrowedFd>,
    dst: &str,
) -> Result<()> {
    let (src_dir, src_name) = split(src_root, src).map_err(io_at(src))?;
    let st = fsops::lstat_at(src_dir.as_fd(), &src_name)
        .map_err(io_at(src))?
        .ok_or_else(|| io_at(src)(std::io::ErrorKind::NotFound.into()))?;
    let (dst_dir, dst_name) = match open_dir_at(dst_root, dst) {
        Ok(dir) => (dir, src_name.clone()),
        Err(_) => split(dst_root, dst).map_err(io_at(dst))?,
    };
    let dst_path = String::from_utf8_lossy(&dst_name).into_owned();
    let dst_err = io_at(&dst_path);
    if fsops::is_dir(&st) {
        rustix::fs::mkdirat(&dst_dir, &dst_name[..], Mode::from_raw_mode(0o700))
            .map_err(|e| dst_err(e.into()))?;
        let from = fsops::open_child_dir(src_dir.as_fd(), &src_name).map_err(io_at(src))?;
        let to = fsops::open_child_dir(dst_dir.as_fd(), &dst_name).map_err(io_at(dst))?;
        copy::copy_tree_between(from.as_fd(), to.as_fd()).map_err(io_at(dst))?;
        return Ok(());
    }
    if let Ok(Some(existing)) = fsops::lstat_at(dst_dir.as_fd(), &dst_name)
        && !fsops::is_dir(&existing)
    {
        rustix::fs::unlinkat(&dst_dir, &dst_name[..], AtFlags::empty())
            .map_err(|e| io_at(dst)(e.into()))?;
    }
    copy::copy_entry(src_dir.as_fd(), &src_name, &st, dst_dir.as_fd(), &dst_name)
        .map_err(io_at(dst))?;
    Ok(())
}
