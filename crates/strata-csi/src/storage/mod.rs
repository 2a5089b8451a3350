//! What CSI asks of Strata's volumes, in Strata's terms.
//!
//! A CSI volume is an ordinary local volume (so `strata volume ls` shows
//! it) plus a `csi_volumes` row: the orchestrator's name, the capacity
//! given and the request it came from. The volume ID is the Strata
//! volume's name. What kind of volume it is follows from its options:
//! none for a folder (`type=dir`), `size`+`fs` for an image with its own
//! filesystem (`type=image`), `size`+`fs=raw` for a block volume.
//!
//! Order of work: the volume (driver, then its record), its content, then
//! the CSI row; removal goes the other way round. A crash in between
//! leaves a volume labelled with its CSI name but no row, which the next
//! CreateVolume of that name removes and makes again.

mod copy;
mod node;
mod snapshots;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use strata_store::Layout;
use strata_store::meta::{Db, csi as meta};
use strata_volume::{CreateRequest, LOCAL, NoPlugins, VolumeError, Volumes};

use crate::error::{CsiError, Result, io_err};

pub use node::{NodeUse, Stats, Usage, mount_flags};
pub use snapshots::{Snapshot, SnapshotFilter};

/// The label carrying a CSI volume's name, on its Strata volume.
pub const NAME_LABEL: &str = "dev.strata.csi.name";

/// What a CSI volume is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A folder: the capacity is recorded, not enforced.
    Dir,
    /// An image file with its own filesystem: the capacity is enforced.
    Image,
    /// An image file with no filesystem, published as a block device.
    Block,
}

/// Where a new volume's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Snapshot(String),
    Volume(String),
}

/// A volume to make.
#[derive(Debug, Clone)]
pub struct NewVolume<'a> {
    pub name: &'a str,
    pub capacity: u64,
    pub kind: Kind,
    /// The filesystem of an image volume (`ext4` or `xfs`).
    pub fs: &'a str,
    pub source: Option<&'a Source>,
    /// What the orchestrator asked for, kept to compare repeated calls.
    pub request: String,
}

/// A volume made through CSI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsiVolume {
    pub id: String,
    pub name: String,
    pub capacity: u64,
    pub kind: Kind,
    pub request: String,
}

/// Whether a volume is as it should be (CSI's VolumeCondition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub abnormal: bool,
    pub message: String,
}

pub struct Storage {
    root: PathBuf,
    db: Rc<Db>,
    volumes: Volumes,
}

impl Storage {
    pub fn new(layout: &Layout, db: Rc<Db>) -> Storage {
        Storage {
            root: layout.root().to_owned(),
            volumes: Volumes::new(layout, db.clone(), Box::new(NoPlugins)),
            db,
        }
    }

    /// The volume with ID `id`, if it exists.
    pub fn volume(&self, id: &str) -> Result<Option<CsiVolume>> {
        Ok(self.db.read(|tx| meta::volume(tx, id))?.map(describe))
    }

    /// The volume the orchestrator named `name`, if it exists.
    pub fn volume_named(&self, name: &str) -> Result<Option<CsiVolume>> {
        Ok(self
            .db
            .read(|tx| meta::volume_named(tx, name))?
            .map(describe))
    }

    /// The volume with ID `id`, or NOT_FOUND.
    pub fn existing(&self, id: &str) -> Result<CsiVolume> {
        self.volume(id)?
            .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))
    }

    /// Makes a volume with its content. The caller has checked that no
    /// CSI volume of that name exists.
    pub fn create(&self, new: &NewVolume) -> Result<CsiVolume> {
        let id = id_for(new.name);
        self.clear_leftover(&id, new.name)?;
        let mut labels = BTreeMap::new();
        labels.insert(NAME_LABEL.to_owned(), new.name.to_owned());
        self.volumes.create(&CreateRequest {
            name: Some(id.clone()),
            driver: Some(LOCAL.to_owned()),
            labels,
            options: options_for(new),
        })?;
        let row = meta::CsiVolumeRow {
            volume: id.clone(),
            name: new.name.to_owned(),
            capacity: new.capacity,
            request: new.request.clone(),
            created: strata_store::meta::now(),
        };
        let made = self
            .fill(&id, new)
            .and_then(|()| Ok(self.db.write(|tx| meta::insert_volume(tx, &row))?));
        if let Err(e) = made {
            let _ = self.volumes.remove(&id);
            return Err(e);
        }
        Ok(CsiVolume {
            id: row.volume,
            name: row.name,
            capacity: row.capacity,
            kind: new.kind,
            request: row.request,
        })
    }

    /// Removes what an interrupted create of `name` left under `id`, and
    /// refuses an ID taken by a volume made outside CSI.
    fn clear_leftover(&self, id: &str, name: &str) -> Result<()> {
        match self.volumes.get(id) {
            Ok(v) if v.labels.get(NAME_LABEL).map(String::as_str) == Some(name) => {
                Ok(self.volumes.remove(id)?)
            }
            Ok(_) => Err(CsiError::AlreadyExists(format!(
                "a Strata volume named {id} exists that was not made through CSI; pick another name or remove it (strata volume rm {id})"
            ))),
            Err(VolumeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies the source's content into the new volume.
    fn fill(&self, id: &str, new: &NewVolume) -> Result<()> {
        match new.source {
            None => Ok(()),
            Some(Source::Snapshot(snapshot)) => self.restore(snapshot, id, new.kind),
            Some(Source::Volume(source)) => self.clone_volume(source, id, new.kind),
        }
    }

    fn clone_volume(&self, source: &str, id: &str, kind: Kind) -> Result<()> {
        let from = self.existing(source)?;
        match (from.kind == Kind::Block, kind == Kind::Block) {
            (true, true) => copy::image_into(
                &self.volumes.local().image(source),
                &self.volumes.local().image(id),
            ),
            (false, false) => Ok(self.volumes.with_mounted(source, |src| {
                self.volumes.with_mounted(id, |dst| {
                    Ok(strata_volume::backup::clone_tree(src, dst).map(drop)?)
                })
            })?),
            _ => Err(CsiError::InvalidArgument(format!(
                "volume {source} is a {:?} volume and cannot be the source of a {kind:?} volume; block volumes clone only block volumes",
                from.kind
            ))),
        }
    }

    /// Deletes volume `id`; one that does not exist is already deleted.
    pub fn delete(&self, id: &str) -> Result<()> {
        let published = self.db.read(|tx| meta::publications(tx, id))?;
        if let Some(p) = published.first() {
            return Err(CsiError::FailedPrecondition(format!(
                "volume {id} is still published to node {}; unpublish it first (ControllerUnpublishVolume)",
                p.node
            )));
        }
        if self.volume(id)?.is_none() {
            return Ok(());
        }
        match self.volumes.remove(id) {
            Ok(()) | Err(VolumeError::NotFound(_)) => {}
            Err(e @ VolumeError::InUse { .. }) => {
                return Err(CsiError::FailedPrecondition(format!(
                    "{e}; unpublish and unstage it on the node first"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.db.write(|tx| meta::delete_volume(tx, id))?)
    }

    /// Up to `limit` volumes with IDs after `after`, by ID.
    pub fn list(&self, after: &str, limit: usize) -> Result<Vec<CsiVolume>> {
        let rows = self.db.read(|tx| meta::volumes_after(tx, after, limit))?;
        Ok(rows.into_iter().map(describe).collect())
    }

    /// Nodes volume `id` is published to (ControllerPublishVolume), with
    /// whether read-only and the request.
    pub fn publications(&self, id: &str) -> Result<Vec<meta::Publication>> {
        Ok(self.db.read(|tx| meta::publications(tx, id))?)
    }

    /// Records that `p.volume` is published to `p.node`; false if it was.
    pub fn controller_publish(&self, p: &meta::Publication) -> Result<bool> {
        Ok(self.db.write(|tx| meta::publish(tx, p))?)
    }

    pub fn controller_unpublish(&self, id: &str, node: &str) -> Result<()> {
        self.db.write(|tx| meta::unpublish(tx, id, node))?;
        Ok(())
    }

    /// Grows volume `id` to at least `size` bytes and returns its
    /// capacity; `fs` grows an image's filesystem too.
    pub fn expand(&self, id: &str, size: u64, fs: bool) -> Result<u64> {
        let volume = self.existing(id)?;
        let capacity = match volume.kind {
            Kind::Dir => size.max(volume.capacity),
            Kind::Image | Kind::Block => self.volumes.grow(id, size, fs)?,
        };
        if capacity != volume.capacity {
            self.db.write(|tx| meta::set_capacity(tx, id, capacity))?;
        }
        Ok(capacity)
    }

    /// Bytes free where volumes are kept, and the size of that filesystem.
    pub fn space(&self) -> Result<(u64, u64)> {
        let dir = self.volumes.local().dir();
        let path = if dir.exists() { dir } else { &self.root };
        let st = rustix::fs::statvfs(path).map_err(|e| io_err("measuring", path)(e.into()))?;
        Ok((st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize))
    }

    /// Whether volume `v`'s data is where it should be.
    pub fn condition(&self, v: &CsiVolume) -> Condition {
        let local = self.volumes.local();
        let (path, what) = match v.kind {
            Kind::Dir => (local.data(&v.id), "data folder"),
            Kind::Image | Kind::Block => (local.image(&v.id), "image"),
        };
        match path.symlink_metadata() {
            Ok(_) => Condition {
                abnormal: false,
                message: "volume is healthy".to_owned(),
            },
            Err(e) => Condition {
                abnormal: true,
                message: format!("the volume's {what} {} is unusable: {e}", path.display()),
            },
        }
    }

    fn csi_dir(&self) -> PathBuf {
        self.root.join("csi")
    }
}

/// The volume ID for CSI name `name`: the name itself when it is a valid
/// Strata volume name (Kubernetes' `pvc-<uid>` is), else one derived from it.
pub fn id_for(name: &str) -> String {
    derived_id("csi-", name)
}

fn derived_id(prefix: &str, name: &str) -> String {
    if strata_mountspec::validate_volume_name(name).is_ok() {
        return name.to_owned();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    format!("{prefix}{}", &hex::encode(digest)[..32])
}

/// The local driver's options for a new volume.
fn options_for(new: &NewVolume) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    let fs = match new.kind {
        Kind::Dir => return options,
        Kind::Image => new.fs,
        Kind::Block => "raw",
    };
    options.insert("size".to_owned(), new.capacity.to_string());
    options.insert("fs".to_owned(), fs.to_owned());
    options
}

/// A CSI volume as recorded, its kind read from its local options.
fn describe(live: meta::LiveCsiVolume) -> CsiVolume {
    let row = live.row;
    CsiVolume {
        kind: kind_of(&live.options),
        id: row.volume,
        name: row.name,
        capacity: row.capacity,
        request: row.request,
    }
}

/// A volume's kind from its local driver options.
fn kind_of(options: &BTreeMap<String, String>) -> Kind {
    match (options.get("size"), options.get("fs").map(String::as_str)) {
        (Some(_), Some("raw")) => Kind::Block,
        (Some(_), _) => Kind::Image,
        _ => Kind::Dir,
    }
}

/// Whether `path` is a mount point (ours to unmount).
fn is_mountpoint(path: &Path) -> Result<bool> {
    strata_snapshot::mount::is_mounted(path).map_err(io_err("checking for a mount on", path))
}
