//! `image mount` / `image unmount`, as podman has them: an image's
//! filesystem, read-only, at `<root>/mounts/<image id>`. The mount outlives
//! the command. A view snapshot (`mount-<image id>`) pins the image's layers,
//! so `rmi` refuses a mounted image and garbage collection keeps its layers.

use std::path::PathBuf;

use strata_snapshot::{Options, SnapshotError, mount};
use strata_store::Digest;
use strata_store::meta::images as meta;

use crate::error::{ImageError, Result, io_at};
use crate::store::Store;
use crate::unpack::LAYER_LABEL;

/// The label value marking an image mount's view snapshot.
pub const MOUNT_OWNER: &str = "image-mount";
const KEY_PREFIX: &str = "mount-";

impl Store {
    /// Mounts the image `s` names (again, if it is mounted: the same path).
    pub fn mount_image(&self, s: &str) -> Result<PathBuf> {
        self.begin_write()?;
        let (id, _) = self.resolve(s)?;
        let target = self.image_mountpoint(&id);
        if mount::is_mounted(&target).map_err(io_at(&target))? {
            return Ok(target);
        }
        let snapshots = self.snapshots()?;
        let key = mount_key(&id);
        let mounts = match snapshots.mounts(&key) {
            Ok(m) => m,
            Err(SnapshotError::NotFound(_)) => {
                let top = self
                    .db
                    .read(|tx| meta::image_layers(tx, &id))?
                    .last()
                    .map(|l| l.chain_id.to_string());
                let opts = Options {
                    labels: [(LAYER_LABEL.to_owned(), MOUNT_OWNER.to_owned())].into(),
                    transient: false,
                };
                snapshots.view(&key, top.as_deref(), &opts)?
            }
            Err(e) => return Err(e.into()),
        };
        std::fs::create_dir_all(&target).map_err(io_at(&target))?;
        mount::mount(&mounts, &target)?.keep();
        Ok(target)
    }

    /// Unmounts the image `s` names and releases its view.
    pub fn unmount_image(&self, s: &str) -> Result<PathBuf> {
        self.begin_write()?;
        let (id, _) = self.resolve(s)?;
        let target = self.image_mountpoint(&id);
        let key = mount_key(&id);
        let snapshots = self.snapshots()?;
        if snapshots.stat(&key).is_err() {
            return Err(ImageError::Conflict(format!(
                "image {} is not mounted",
                id.short()
            )));
        }
        self.release_mount(&key)?;
        Ok(target)
    }

    /// Unmounts (if mounted) and removes the view `key`.
    pub(crate) fn release_mount(&self, key: &str) -> Result<()> {
        let target = self.mountpoint_of(key);
        mount::unmount(&target).map_err(io_at(&target))?;
        match std::fs::remove_dir(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&target)(e)),
        }
        match self.snapshots()?.remove(key) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Where a mounted image appears, if it is mounted.
    pub fn mounted_at(&self, id: &Digest) -> Result<Option<PathBuf>> {
        let target = self.image_mountpoint(id);
        Ok(mount::is_mounted(&target)
            .map_err(io_at(&target))?
            .then_some(target))
    }

    /// Image mounts whose view exists but whose mount is gone (a reboot, a
    /// kill between view and mount): keys of views no mount uses.
    pub(crate) fn stale_mounts(&self) -> Result<Vec<String>> {
        let mut views = Vec::new();
        self.snapshots()?.walk(&mut |info| {
            if info
                .labels
                .get(LAYER_LABEL)
                .is_some_and(|v| v == MOUNT_OWNER)
            {
                views.push(info.key.clone());
            }
        })?;
        let mut stale = Vec::new();
        for key in views {
            let target = self.mountpoint_of(&key);
            if !mount::is_mounted(&target).map_err(io_at(&target))? {
                stale.push(key);
            }
        }
        Ok(stale)
    }

    fn image_mountpoint(&self, id: &Digest) -> PathBuf {
        self.mountpoint_of(&mount_key(id))
    }

    fn mountpoint_of(&self, key: &str) -> PathBuf {
        let name = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
        self.layout.root().join("mounts").join(name)
    }
}

pub(crate) fn mount_key(id: &Digest) -> String {
    format!("{KEY_PREFIX}{}", id.hex())
}
