//! The init layer, as Docker's: a committed snapshot on an image's top
//! layer holding the mount points a runtime would otherwise make in every
//! container's writable layer (the caller says what they are). Made once
//! per top layer, on the first container, and the parent of every
//! container made on that layer after; so a container's own layer starts
//! empty, and making and removing one creates and deletes no mount points.
//!
//! It belongs to no image: a commit chains a container's changes onto the
//! image's layers, never onto this one. Garbage collection removes it
//! with the layer it stands on ([`remove_layer_snapshot`]).
//!
//! Made as a layer is: a transient snapshot (removed by reconcile if the
//! maker dies), mounted in `tmp/` (unmounted by reconcile), filled,
//! flushed, then committed under its key. Two makers at once both build
//! one; the second finds the name taken and drops its copy.

use std::path::Path;

use strata_snapshot::{Mount, Options, SnapshotError, Snapshotter, mount};
use strata_store::{Digest, failpoint};

use crate::error::{ImageError, Result, io_at};
use crate::store::Store;
use crate::unpack::{LAYER_LABEL, apply_target};

/// The label value marking an init layer's snapshot.
pub const INIT_OWNER: &str = "init";

/// Fills a mounted init layer (its root folder).
pub type Fill<'a> = &'a dyn Fn(&Path) -> std::io::Result<()>;

/// A writable snapshot prepared on an init layer.
pub struct Prepared {
    pub mounts: Vec<Mount>,
    /// The init layer, if this call made it: a caller that then fails
    /// removes it ([`Snapshotter::remove_unused`]: another command may
    /// have built on it meanwhile), so the store is left as it was.
    pub made_init: Option<String>,
}

/// The init layer's snapshot key for the top layer `top` (a chain ID).
pub fn init_key(top: &str) -> String {
    format!("init-{top}")
}

impl Store {
    /// Prepares the writable snapshot `key` on the init layer of `top`,
    /// making that layer with `fill` first if it does not exist yet. An
    /// image without layers has no init layer: `key` stands on nothing.
    pub fn prepare_on_init_layer(
        &self,
        key: &str,
        top: Option<&Digest>,
        opts: &Options,
        fill: Fill,
    ) -> Result<Prepared> {
        let snapshots = self.snapshots()?;
        let prepared = |mounts, made_init| Prepared { mounts, made_init };
        let Some(top) = top.map(Digest::to_string) else {
            return Ok(prepared(snapshots.prepare(key, None, opts)?, None));
        };
        let init = init_key(&top);
        // The common case costs one lookup: the parent's, in prepare.
        match snapshots.prepare(key, Some(&init), opts) {
            Err(SnapshotError::NotFound(missing)) if missing == init => {
                let made = self.make_init_layer(snapshots, &top, &init, fill)?;
                match snapshots.prepare(key, Some(&init), opts) {
                    Ok(mounts) => Ok(prepared(mounts, made.then_some(init))),
                    Err(e) => {
                        if made {
                            let _ = snapshots.remove_unused(&init);
                        }
                        Err(e.into())
                    }
                }
            }
            other => Ok(prepared(other?, None)),
        }
    }

    /// Makes the init layer `init` on `top`; false if another command
    /// made it first.
    fn make_init_layer(
        &self,
        snapshots: &dyn Snapshotter,
        top: &str,
        init: &str,
        fill: Fill,
    ) -> Result<bool> {
        let random = strata_store::fsutil::random_hex(8);
        let building = format!("{init}-{random}");
        let opts = Options {
            labels: [(LAYER_LABEL.to_owned(), INIT_OWNER.to_owned())].into(),
            transient: true,
        };
        let mounts = snapshots.prepare(&building, Some(top), &opts)?;
        let made = self.fill_init_layer(&mounts, &random, fill).and_then(|()| {
            failpoint::hit("init-layer-before-commit");
            Ok(snapshots.commit(init, &building)?)
        });
        match made {
            Ok(()) => Ok(true),
            // Another command made it meanwhile: use theirs.
            Err(ImageError::Snapshot(SnapshotError::AlreadyExists(_))) => {
                snapshots.remove(&building)?;
                Ok(false)
            }
            Err(e) => {
                if let Err(cleanup) = snapshots.remove(&building) {
                    tracing::warn!("removing half-made init layer {building}: {cleanup}");
                }
                Err(e)
            }
        }
    }

    /// Mounts the new layer in `tmp/`, fills it and flushes it to disk.
    fn fill_init_layer(&self, mounts: &[Mount], random: &str, fill: Fill) -> Result<()> {
        let target = self.layout.tmp().join(format!("init-{random}"));
        std::fs::create_dir(&target).map_err(io_at(&target))?;
        let filled = (|| {
            let mounted = mount::mount(mounts, &target)?;
            failpoint::hit("init-layer-mounted");
            fill(&target).map_err(io_at(&target))?;
            mounted.unmount().map_err(io_at(&target))?;
            let (files, _) = apply_target(mounts)?;
            strata_archive::fsops::syncfs_of(&files).map_err(io_at(&files))
        })();
        // Unmounted (on any error, when `mounted` was dropped): only the
        // folder is left.
        let _ = std::fs::remove_dir(&target);
        filled
    }
}

/// Removes the snapshot of the layer `chain_id`, and first its init layer
/// if it has one. `Ok(false)` if something else stands on either (a
/// container, another layer): it stays.
pub(crate) fn remove_layer_snapshot(snapshots: &dyn Snapshotter, chain_id: &str) -> Result<bool> {
    for key in [init_key(chain_id), chain_id.to_owned()] {
        match snapshots.remove(&key) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => {}
            Err(SnapshotError::InvalidState { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}
