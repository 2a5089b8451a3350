//! The node side: a volume staged once per node, then published into
//! each target, and how full it is.
//!
//! Staging mounts the volume through the volume service (so its image is
//! loop-mounted, or a block volume attached, once however many use it)
//! with the caller `csi-stage:<staging path>`, then bind-mounts a mount
//! volume's data on the staging path. Publishing bind-mounts the staging
//! path on the target; a block volume's device is bind-mounted on a file
//! at the target, held by the caller `csi-publish:<target>`. Each caller
//! keeps the volume from being removed until it lets go. Each stage and
//! publish also leaves a record in `<root>/csi/node/<volume>/` saying how
//! it was asked for, so a repeat is told from a conflicting call; a record
//! whose mount is gone (a reboot) is stale and done again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use rustix::mount::MountFlags;
use strata_volume::{Caller, VolumeDriver};

use super::{Condition, CsiVolume, Kind, Storage, is_mountpoint};
use crate::error::{CsiError, Result, io_err};

/// Bytes or inodes: how many in all, used and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub total: u64,
    pub used: u64,
    pub available: u64,
}

/// NodeGetVolumeStats: bytes, inodes (none for a block volume), condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub bytes: Usage,
    pub inodes: Option<Usage>,
    pub condition: Condition,
}

/// How a stage or publish uses a volume, as the node records it: a
/// repeat must ask for the same, and a volume only one target may use
/// (`single_target`) refuses a second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUse {
    /// The access type and mode asked for, as the server words them.
    pub access: String,
    pub single_target: bool,
    pub readonly: bool,
}

/// A stage or publish as recorded in `<root>/csi/node/<volume>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    path: PathBuf,
    usage: NodeUse,
    /// A read-only block publish's own loop device.
    device: Option<PathBuf>,
}

impl Storage {
    /// Makes volume `v` ready for publishing on this node at `staging`.
    pub fn stage(&self, v: &CsiVolume, staging: &Path, usage: &NodeUse) -> Result<()> {
        if let Some(found) = self.record(&v.id, "stage", staging)? {
            if self.staged_live(v, staging)? {
                return same_use(v, staging, &found.usage, usage);
            }
            // A reboot took the mounts and left the record: stage anew.
            self.unstage(&v.id, staging)?;
        }
        std::fs::create_dir_all(staging).map_err(io_err("creating", staging))?;
        let caller = caller("stage", staging);
        let source = self.volumes.mount(&v.id, Caller::External(&caller))?;
        if v.kind != Kind::Block && !is_mountpoint(staging)? {
            bind(&source, staging, MountFlags::empty())?;
        }
        self.write_record(&v.id, "stage", staging, usage, None)
    }

    /// Undoes [`Storage::stage`]; a volume not staged there is fine.
    pub fn unstage(&self, id: &str, staging: &Path) -> Result<()> {
        if is_mountpoint(staging)? {
            unmount(staging)?;
        }
        self.volumes.unmount(id, &caller("stage", staging))?;
        self.remove_record(id, "stage", staging)
    }

    /// Publishes volume `v`, staged at `staging`, at `target`, with
    /// `flags` (read-only among them when asked).
    pub fn publish(
        &self,
        v: &CsiVolume,
        staging: &Path,
        target: &Path,
        flags: MountFlags,
        usage: &NodeUse,
    ) -> Result<()> {
        if let Some(found) = self.record(&v.id, "publish", target)? {
            if is_mountpoint(target)? {
                return same_use(v, target, &found.usage, usage);
            }
            self.unpublish(&v.id, target)?;
        }
        if self.record(&v.id, "stage", staging)?.is_none() || !self.staged_live(v, staging)? {
            return Err(CsiError::FailedPrecondition(format!(
                "volume {} is not staged at {}; call NodeStageVolume first",
                v.id,
                staging.display()
            )));
        }
        let others = self.records(&v.id, "publish")?;
        if let Some(other) = others
            .iter()
            .find(|o| o.usage.single_target || usage.single_target)
        {
            return Err(CsiError::FailedPrecondition(format!(
                "volume {} is published at {} already and its access mode allows one target; unpublish it there first",
                v.id,
                other.path.display()
            )));
        }
        let device = match v.kind {
            Kind::Block => Some(self.publish_block(v, target, flags)?),
            Kind::Dir | Kind::Image => {
                std::fs::create_dir_all(target).map_err(io_err("creating", target))?;
                bind(staging, target, flags)?;
                None
            }
        };
        let own = device.filter(|_| flags.contains(MountFlags::RDONLY));
        self.write_record(&v.id, "publish", target, usage, own)
    }

    /// Bind-mounts a block volume's device on a file at `target`: the
    /// staged device, or for read-only a read-only device of its own.
    fn publish_block(&self, v: &CsiVolume, target: &Path, flags: MountFlags) -> Result<PathBuf> {
        let device = match flags.contains(MountFlags::RDONLY) {
            true => self.volumes.local().attach_read_only(&v.id)?,
            false => self
                .volumes
                .mount(&v.id, Caller::External(&caller("publish", target)))?,
        };
        make_file(target)?;
        bind(&device, target, flags)?;
        Ok(device)
    }

    /// Undoes [`Storage::publish`] and removes the target it made; a
    /// volume not published there is fine.
    pub fn unpublish(&self, id: &str, target: &Path) -> Result<()> {
        if is_mountpoint(target)? {
            unmount(target)?;
        }
        let removed = match target.symlink_metadata() {
            Ok(m) if m.is_dir() => std::fs::remove_dir(target),
            Ok(_) => std::fs::remove_file(target),
            Err(_) => Ok(()),
        };
        removed.map_err(io_err("removing", target))?;
        if let Some(Record {
            device: Some(device),
            ..
        }) = self.record(id, "publish", target)?
        {
            self.volumes.local().detach_read_only(id, &device)?;
        }
        self.volumes.unmount(id, &caller("publish", target))?;
        self.remove_record(id, "publish", target)
    }

    /// Whether what staging made is still there: the bind mount of a
    /// mount volume, the loop device of a block volume.
    fn staged_live(&self, v: &CsiVolume, staging: &Path) -> Result<bool> {
        match v.kind {
            Kind::Block => Ok(self.volumes.local().path(&v.id)?.is_some()),
            Kind::Dir | Kind::Image => is_mountpoint(staging),
        }
    }

    fn record_path(&self, id: &str, what: &str, path: &Path) -> PathBuf {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
        let key = &hex::encode(digest)[..32];
        self.csi_dir()
            .join("node")
            .join(id)
            .join(format!("{what}-{key}.json"))
    }

    fn record(&self, id: &str, what: &str, path: &Path) -> Result<Option<Record>> {
        let file = self.record_path(id, what, path);
        match std::fs::read(&file) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", file)(e)),
        }
    }

    /// Every `what` record of volume `id`.
    fn records(&self, id: &str, what: &str) -> Result<Vec<Record>> {
        let dir = self.csi_dir().join("node").join(id);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", dir)(e)),
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(&format!("{what}-")) {
                let bytes = std::fs::read(entry.path()).map_err(io_err("reading", entry.path()))?;
                found.extend(serde_json::from_slice::<Record>(&bytes).ok());
            }
        }
        Ok(found)
    }

    fn write_record(
        &self,
        id: &str,
        what: &str,
        path: &Path,
        usage: &NodeUse,
        device: Option<PathBuf>,
    ) -> Result<()> {
        let file = self.record_path(id, what, path);
        let parent = file.parent().expect("a record has a folder");
        std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        let record = Record {
            path: path.to_owned(),
            usage: usage.clone(),
            device,
        };
        let json = serde_json::to_vec(&record).expect("a record serializes");
        // Atomic, not durable: a record only counts while its mount is
        // there, and a crash that loses one loses the mount with it.
        strata_store::fsutil::write_replace(&file, &json).map_err(io_err("writing", file))
    }

    fn remove_record(&self, id: &str, what: &str, path: &Path) -> Result<()> {
        let file = self.record_path(id, what, path);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("removing", file)(e)),
            _ => {
                // The volume's folder goes with its last record.
                let _ = std::fs::remove_dir(file.parent().expect("a record has a folder"));
                Ok(())
            }
        }
    }

    /// How full volume `v` is, seen at `path` (where it is staged or
    /// published).
    pub fn stats(&self, v: &CsiVolume, path: &Path) -> Result<Stats> {
        if path.symlink_metadata().is_err() {
            return Err(CsiError::NotFound(format!(
                "volume path {} does not exist",
                path.display()
            )));
        }
        let mut condition = self.condition(v);
        let mounted = is_mountpoint(path)?;
        if !mounted && !condition.abnormal {
            condition = Condition {
                abnormal: true,
                message: format!(
                    "{} is not mounted; stage or publish it again",
                    path.display()
                ),
            };
        }
        let (bytes, inodes) = match v.kind {
            Kind::Block => (
                Usage {
                    total: v.capacity,
                    ..Usage::default()
                },
                None,
            ),
            Kind::Image => {
                let (bytes, inodes) = filesystem(path)?;
                (bytes, Some(inodes))
            }
            Kind::Dir => {
                let (fs, inodes) = filesystem(path)?;
                let (used, _) =
                    strata_archive::fsops::disk_usage(path).map_err(io_err("measuring", path))?;
                let left = v.capacity.saturating_sub(used).min(fs.available);
                let bytes = Usage {
                    total: v.capacity,
                    used,
                    available: left,
                };
                (bytes, Some(inodes))
            }
        };
        Ok(Stats {
            bytes,
            inodes,
            condition,
        })
    }
}

/// The volume service caller of a stage or publish at `path`.
fn caller(what: &str, path: &Path) -> String {
    format!("csi-{what}:{}", path.display())
}

/// The mount flags CSI's `mount_flags` may carry; anything else is refused
/// rather than silently ignored.
pub fn mount_flags(names: &[String], readonly: bool) -> Result<MountFlags> {
    let mut flags = MountFlags::empty();
    if readonly {
        flags |= MountFlags::RDONLY;
    }
    for name in names {
        flags |= match name.as_str() {
            "ro" => MountFlags::RDONLY,
            "rw" | "defaults" | "bind" => MountFlags::empty(),
            "nosuid" => MountFlags::NOSUID,
            "nodev" => MountFlags::NODEV,
            "noexec" => MountFlags::NOEXEC,
            "noatime" => MountFlags::NOATIME,
            "nodiratime" => MountFlags::NODIRATIME,
            "relatime" => MountFlags::RELATIME,
            other => {
                return Err(CsiError::InvalidArgument(format!(
                    "mount flag {other} is not supported; use ro, nosuid, nodev, noexec, noatime, nodiratime or relatime"
                )));
            }
        };
    }
    Ok(flags)
}

/// Bind-mounts `source` on `target`, then applies `flags`.
fn bind(source: &Path, target: &Path, flags: MountFlags) -> Result<()> {
    let fail = |e: rustix::io::Errno| io_err("bind-mounting onto", target)(e.into());
    rustix::mount::mount_bind(source, target).map_err(fail)?;
    if !flags.is_empty() {
        let remounted = rustix::mount::mount_remount(target, MountFlags::BIND | flags, "");
        if let Err(e) = remounted {
            let _ = unmount(target);
            return Err(fail(e));
        }
    }
    Ok(())
}

fn unmount(target: &Path) -> Result<()> {
    strata_snapshot::mount::unmount(target).map_err(io_err("unmounting", target))
}

/// A path staged or published already must be asked for the same way.
fn same_use(v: &CsiVolume, path: &Path, found: &NodeUse, asked: &NodeUse) -> Result<()> {
    if found == asked {
        return Ok(());
    }
    Err(CsiError::AlreadyExists(format!(
        "volume {} is already at {} with another capability or read-only setting; undo that first",
        v.id,
        path.display()
    )))
}

/// An empty file at `path` for a device to be bind-mounted on.
fn make_file(path: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(io_err("creating", path))
}

/// Bytes and inodes of the filesystem at `path`.
fn filesystem(path: &Path) -> Result<(Usage, Usage)> {
    let st = rustix::fs::statvfs(path).map_err(|e| io_err("measuring", path)(e.into()))?;
    let bytes = Usage {
        total: st.f_blocks * st.f_frsize,
        used: (st.f_blocks - st.f_bfree) * st.f_frsize,
        available: st.f_bavail * st.f_frsize,
    };
    let inodes = Usage {
        total: st.f_files,
        used: st.f_files - st.f_ffree,
        available: st.f_favail,
    };
    Ok((bytes, inodes))
}
