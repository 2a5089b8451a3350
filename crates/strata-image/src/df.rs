//! `system df`: computed from sizes recorded when layers were stored, never
//! by walking the disk, so it stays fast however much is stored.

use std::collections::HashMap;

use strata_store::Digest;
use strata_store::meta::images as meta;

use crate::error::Result;
use crate::query::ImageSummary;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: ImageSummary,
    /// Bytes in layers other images use too.
    pub shared: u64,
    /// Bytes in layers only this image uses.
    pub unique: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Every stored layer's bytes, each counted once.
    pub layers_size: u64,
    pub layers: u64,
    /// Layers used by more than one image, and their bytes (counted once).
    pub shared_layers: u64,
    pub shared_size: u64,
}

impl Store {
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let (use_count, image_layers) = self
            .db
            .read(|tx| Ok((meta::layer_use(tx)?, meta::image_layer_sizes(tx)?)))?;
        let count: HashMap<Digest, (u64, u64)> = use_count
            .iter()
            .map(|(c, size, n)| (c.clone(), (*size, *n)))
            .collect();
        let mut per_image: HashMap<Digest, (u64, u64)> = HashMap::new();
        for (image, chain) in &image_layers {
            let (size, n) = count.get(chain).copied().unwrap_or_default();
            let e = per_image.entry(image.clone()).or_default();
            if n > 1 {
                e.0 += size;
            } else {
                e.1 += size;
            }
        }
        let images = self
            .images()?
            .into_iter()
            .map(|image| {
                let (shared, unique) = per_image.get(&image.row.id).copied().unwrap_or_default();
                ImageUsage {
                    image,
                    shared,
                    unique,
                }
            })
            .collect();
        Ok(DiskUsage {
            images,
            layers_size: use_count.iter().map(|(_, s, _)| s).sum(),
            layers: use_count.len() as u64,
            shared_layers: use_count.iter().filter(|(_, _, n)| *n > 1).count() as u64,
            shared_size: use_count
                .iter()
                .filter(|(_, _, n)| *n > 1)
                .map(|(_, s, _)| s)
                .sum(),
        })
    }
}
