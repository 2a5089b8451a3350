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
use strata_runtime::Runtime;
use strata_snapshot::mount;

use crate::query::{Change, ChangeKind, Status};
use crate::{Container, ContainerError, Containers, MountKind, Result, io_at, snapshot_key};

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
        let changes = self.store.snapshot_changes(&snapshot_key(c.id()))?;
        Ok(changes.leaving_out(strata_runtime::netfiles::MOUNT_POINTS))
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
        // A volume's target, made by the runtime as a mount point, is the
        // container's plumbing, not its change (those of /proc, /dev and
        // /etc/hosts the layer leaves out: `netfiles::MOUNT_POINTS`).
        let plumbing: Vec<&str> = c.config.mounts.iter().map(|m| m.target.as_str()).collect();
        changes
            .retain(|ch| !(ch.kind == ChangeKind::Added && plumbing.contains(&ch.path.as_str())));
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(changes)
    }

    /// `commit`: the writable layer as a new image on the container's.
    /// `pause`: a running container is frozen meanwhile (Docker's default),
    /// so the layer is read as of one moment.
    pub fn commit(
        &self,
        s: &str,
        opts: &CommitOptions,
        name: Option<&Reference>,
        pause: bool,
        progress: &dyn strata_image::progress::Progress,
    ) -> Result<strata_store::Digest> {
        let c = self.get(s)?;
        let _paused = match pause && self.status(&c)?.is_running() {
            true => Some(Paused::new(&c)?),
            false => None,
        };
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

    /// `cp`: copies a file or tree between a container and the host,
    /// volumes and bind mounts included, as the container sees them.
    pub fn copy(&self, from: &CopyEnd, to: &CopyEnd) -> Result<()> {
        match (from, to) {
            (CopyEnd::Container(c, src), CopyEnd::Host(dst)) => {
                let c = self.get(c)?;
                let dst = Side::host(dst);
                self.with_tree(&c, src, |src| copy_between(&src, &dst))
            }
            (CopyEnd::Host(src), CopyEnd::Container(c, dst)) => {
                let c = self.get(c)?;
                let src = Side::host(src);
                self.with_tree(&c, dst, |dst| copy_between(&src, &dst))
            }
            _ => Err(ContainerError::Invalid(
                "copying needs one end in a container (CONTAINER:PATH) and one on the host".into(),
            )),
        }
    }

    /// Runs `f` on `path` in the container's tree as its processes see it.
    /// A running container's own root (`/proc/<pid>/root`) has its volumes,
    /// binds and tmpfs mounted already. For a stopped one, a path under a
    /// volume or bind mount is found in that volume or host folder, and any
    /// other in its writable layer, mounted for the call.
    fn with_tree<T>(
        &self,
        c: &Container,
        path: &str,
        f: impl FnOnce(Side) -> Result<T>,
    ) -> Result<T> {
        if let Status::Running { pid, .. } = self.status(c)? {
            let proc_root = PathBuf::from(format!("/proc/{pid}/root"));
            let root = fsops::open_dir(&proc_root).map_err(io_at(&proc_root))?;
            return f(Side::inside(root.as_fd(), path, None));
        }
        match covering_mount(&c.config.mounts, path) {
            Some((MountKind::Volume { name, subpath, .. }, rest, mount_name)) => {
                let mut result = None;
                self.volumes.with_mounted(name, |data| {
                    let root = fsops::open_dir(data).map_err(strata_volume::io_at(data))?;
                    let sub = subpath.as_deref().unwrap_or("");
                    let root = fsops::open_in_root(root.as_fd(), sub.as_bytes(), dir_flags())
                        .map_err(strata_volume::io_at(data.join(sub)))?;
                    result = Some(f(Side::inside(root.as_fd(), &rest, Some(mount_name))));
                    Ok(())
                })?;
                result.expect("with_mounted ran it")
            }
            Some((MountKind::Bind { source, .. }, rest, mount_name)) => {
                let root = fsops::open_dir(source).map_err(io_at(source))?;
                f(Side::inside(root.as_fd(), &rest, Some(mount_name)))
            }
            // A stopped container's tmpfs holds nothing: what is there is
            // the layer's own folder.
            Some((MountKind::Tmpfs { .. }, ..)) | None => self.with_rootfs(c, |rootfs| {
                let root = fsops::open_dir(rootfs).map_err(io_at(rootfs))?;
                f(Side::inside(root.as_fd(), path, None))
            }),
        }
    }
}

/// The container mount whose target holds `path` (the deepest one), the
/// rest of the path below its target, and the target's own name.
fn covering_mount<'m>(
    mounts: &'m [crate::MountPoint],
    path: &str,
) -> Option<(&'m MountKind, String, &'m str)> {
    let path = strata_mountspec::clean_container_path(path);
    mounts
        .iter()
        .filter_map(|m| {
            let rest = path.strip_prefix(m.target.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((m, rest))
        })
        .max_by_key(|(m, _)| m.target.len())
        .map(|(m, rest)| {
            let name = m.target.rsplit('/').next().unwrap_or_default();
            (&m.kind, format!("/{}", rest.trim_start_matches('/')), name)
        })
}

fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY
}

/// One end of a copy: a path inside a container's tree (resolved in
/// `root`) or on the host (`root` None).
struct Side<'a> {
    root: Option<BorrowedFd<'a>>,
    path: String,
    /// What the root itself is called, when `path` names it (a volume's
    /// mount point): the name a copy of it gets.
    root_name: Option<&'a str>,
}

impl<'a> Side<'a> {
    fn host(path: &Path) -> Side<'a> {
        Side {
            root: None,
            path: path.to_string_lossy().into_owned(),
            root_name: None,
        }
    }

    fn inside(root: BorrowedFd<'a>, path: &str, root_name: Option<&'a str>) -> Side<'a> {
        Side {
            root: Some(root),
            path: path.to_owned(),
            root_name,
        }
    }
}

/// A container frozen for as long as this lives.
struct Paused(strata_runtime::Runc, String);

impl Paused {
    fn new(c: &Container) -> Result<Paused> {
        let runtime = strata_runtime::Runc::new(&c.config.runtime);
        runtime.pause(c.id())?;
        Ok(Paused(runtime, c.id().to_owned()))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Err(e) = self.0.resume(&self.1) {
            tracing::warn!("resuming container {}: {e}", self.1);
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
        Some(r) => fsops::open_in_root(r, path.as_bytes(), dir_flags()),
        None => fsops::open_dir(Path::new(if path.is_empty() { "." } else { path })),
    }
}

/// A file to copy: the directory that holds it (opened), its name there,
/// and the name a copy of it gets.
struct Located {
    dir: OwnedFd,
    name: Vec<u8>,
    copy_name: Vec<u8>,
}

/// Finds `side.path`: its parent directory and last component, or, for the
/// root of a mount, the root itself.
fn locate(side: &Side) -> std::io::Result<Located> {
    let path = side.path.as_str();
    let trimmed = path.trim_end_matches('/');
    if let (Some(root), Some(root_name), "") = (side.root, side.root_name, trimmed) {
        return Ok(Located {
            dir: fsops::open_in_root(root, b".", dir_flags())?,
            name: b".".to_vec(),
            copy_name: root_name.as_bytes().to_vec(),
        });
    }
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
    Ok(Located {
        dir: open_dir_at(side.root, parent)?,
        name: name.as_bytes().to_vec(),
        copy_name: name.as_bytes().to_vec(),
    })
}

/// Copies `src` to `dst`, as `docker cp`: into `dst` when it is an
/// existing directory, else as `dst`.
fn copy_between(src: &Side, dst: &Side) -> Result<()> {
    let Located {
        dir: src_dir,
        name: src_name,
        copy_name,
    } = locate(src).map_err(io_at(&src.path))?;
    let st = fsops::lstat_at(src_dir.as_fd(), &src_name)
        .map_err(io_at(&src.path))?
        .ok_or_else(|| io_at(&src.path)(std::io::ErrorKind::NotFound.into()))?;
    let (dst_dir, dst_name) = match open_dir_at(dst.root, &dst.path) {
        Ok(dir) => (dir, copy_name),
        Err(_) => {
            let at = locate(dst).map_err(io_at(&dst.path))?;
            (at.dir, at.name)
        }
    };
    let (src, dst) = (src.path.as_str(), dst.path.as_str());
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
