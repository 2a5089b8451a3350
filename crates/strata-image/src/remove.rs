//! `tag`, `rmi`, `image prune` and garbage collection.
//!
//! Removing an image removes its record and tags; its layers and blobs go
//! when nothing uses them any more (another image, or a snapshot built on
//! them). Collection holds the store lock exclusive, so a concurrent load
//! never sees a layer vanish under it.

use std::collections::HashSet;

use strata_store::Digest;
use strata_store::meta::images as meta;

use crate::error::{ImageError, Result};
use crate::init_layer::remove_layer_snapshot;
use crate::reference::Reference;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(Reference),
    Deleted(Digest),
}

impl Store {
    /// Points `target` (a name, tag optional) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference> {
        self.begin_write()?;
        let (id, _) = self.resolve(source)?;
        let target: Reference = target.parse()?;
        if target.digest().is_some() {
            return Err(ImageError::Reference(
                crate::reference::ReferenceError::Format(format!(
                    "{target} (a tag cannot hold a digest)"
                )),
            ));
        }
        self.db
            .write(|tx| meta::set_tag(tx, &target.to_string(), &id))?;
        Ok(target)
    }

    /// `rmi`: untags, and deletes images left without tags.
    pub fn remove_image(&self, s: &str, force: bool) -> Result<Vec<Removed>> {
        self.begin_exclusive()?;
        let (id, by_tag) = self.resolve(s)?;
        let tags: Vec<Reference> = self
            .db
            .read(|tx| meta::tags_of(tx, &id))?
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        let mut removed = Vec::new();
        let untag: Vec<Reference> = match by_tag {
            // By name: that tag only; the image goes with its last tag.
            Some(tag) if tags.len() > 1 => vec![tag],
            _ if tags.len() > 1 && !force => {
                return Err(ImageError::Conflict(format!(
                    "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    id.short()
                )));
            }
            _ => tags.clone(),
        };
        let users = self
            .db
            .read(|tx| strata_store::meta::containers::image_in_use(tx, &id.to_string()))?;
        if let Some(user) = users
            .first()
            .filter(|_| untag.len() == tags.len() && !force)
        {
            return Err(ImageError::Conflict(format!(
                "unable to delete {} (must be forced) - image is being used by container {user}; remove it first (strata rm {user}) or use --force",
                id.short()
            )));
        }
        // Forced while containers use it: only untagged, as their writable
        // layers stand on it (Docker leaves it dangling too).
        let delete = untag.len() == tags.len() && users.is_empty();
        if delete {
            self.release_pins(&id, force)?;
        }
        self.db.write(|tx| {
            for t in &untag {
                meta::delete_tag(tx, &t.to_string())?;
            }
            if delete {
                meta::delete_image(tx, &id)?;
            }
            Ok(())
        })?;
        removed.extend(untag.into_iter().map(Removed::Untagged));
        if delete {
            removed.push(Removed::Deleted(id));
            self.collect_garbage()?;
        }
        Ok(removed)
    }

    /// `image prune`: images without tags (`all`: every image).
    pub fn prune_images(&self, all: bool) -> Result<(Vec<Removed>, u64)> {
        self.begin_exclusive()?;
        let images = self.images()?;
        let mut removed = Vec::new();
        for image in images.iter().filter(|i| all || i.names.is_empty()) {
            // A mounted image is in use, as one a container was made from.
            let used = !self
                .db
                .read(|tx| {
                    strata_store::meta::containers::image_in_use(tx, &image.row.id.to_string())
                })?
                .is_empty();
            if used || self.release_pins(&image.row.id, false).is_err() {
                continue;
            }
            self.db.write(|tx| meta::delete_image(tx, &image.row.id))?;
            removed.extend(image.names.iter().cloned().map(Removed::Untagged));
            removed.push(Removed::Deleted(image.row.id.clone()));
        }
        let reclaimed = self.collect_garbage()?;
        Ok((removed, reclaimed))
    }

    /// Refuses to delete a mounted image, or (`force`) unmounts it first.
    fn release_pins(&self, id: &Digest, force: bool) -> Result<()> {
        let key = crate::image_mount::mount_key(id);
        if self.recorded_driver()?.is_none() || self.snapshots()?.stat(&key).is_err() {
            return Ok(());
        }
        if !force {
            return Err(ImageError::Conflict(format!(
                "image {} is mounted; unmount it with 'strata image unmount {}' or use --force",
                id.short(),
                id.short()
            )));
        }
        self.release_mount(&key)
    }

    /// Removes layers and blobs nothing refers to. Returns bytes of layer
    /// content freed. Call with the store lock held exclusive.
    pub(crate) fn collect_garbage(&self) -> Result<u64> {
        let mut reclaimed = 0;
        if self.recorded_driver()?.is_some() {
            let snapshots = self.snapshots()?;
            let mut kept: HashSet<Digest> = HashSet::new();
            loop {
                let unused: Vec<_> = self
                    .db
                    .read(|tx| meta::unreferenced_layers(tx))?
                    .into_iter()
                    .filter(|l| !kept.contains(&l.chain_id))
                    .collect();
                if unused.is_empty() {
                    break;
                }
                for layer in unused {
                    // Something (a container) is built on it: it stays.
                    if !remove_layer_snapshot(snapshots, &layer.chain_id.to_string())? {
                        kept.insert(layer.chain_id);
                        continue;
                    }
                    self.db
                        .write(|tx| meta::delete_layer(tx, &layer.chain_id))?;
                    reclaimed += layer.size;
                }
            }
        }
        let referenced: HashSet<Digest> = self
            .db
            .read(|tx| meta::referenced_blobs(tx))?
            .into_iter()
            .collect();
        for blob in self.content.list()? {
            if !referenced.contains(&blob) {
                self.content.delete(&blob)?;
            }
        }
        Ok(reclaimed)
    }
}
