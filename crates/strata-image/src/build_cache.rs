//! The store side of the build cache: build states (an image config and
//! its layers) kept by step key, the final image of a build, and pruning.
//!
//! A state's config blob is written (durable) before its row, and its
//! layers are recorded before both, so a row always names what exists.

use serde_json::Value;
use strata_store::Digest;
use strata_store::content::Expected;
use strata_store::digest::chain_ids;
use strata_store::meta::build_cache::{self as meta, CacheRow};
use strata_store::meta::images::{self as images, LayerRow};

use crate::config::ConfigView;
use crate::error::{ImageError, Result, archive};
use crate::load::Loaded;
use crate::reference::Reference;
use crate::store::Store;

/// A point a build reached: the image config and its layers.
#[derive(Debug, Clone)]
pub struct BuildState {
    pub config: Value,
    pub layers: Vec<LayerRow>,
}

/// What `builder prune` freed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pruned {
    pub steps: u64,
    pub bytes: u64,
}

/// The build cache's share of `system df`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheUsage {
    pub steps: u64,
    /// The layers the cache keeps, and their bytes.
    pub layers: u64,
    pub bytes: u64,
    /// Bytes of those no image uses (what `builder prune -a` frees).
    pub reclaimable: u64,
}

impl Store {
    /// The state an image is: its config and layers.
    pub fn image_state(&self, id: &Digest) -> Result<BuildState> {
        let (config, _) = self.config(id)?;
        let layers = self.db.read(|tx| images::image_layers(tx, id))?;
        Ok(BuildState { config, layers })
    }

    /// The cached state after the step `key`, if any.
    pub fn cached_step(&self, key: &Digest) -> Result<Option<BuildState>> {
        let Some(row) = self.db.read(|tx| meta::get(tx, key))? else {
            return Ok(None);
        };
        let bytes = match self.content.read(&row.config) {
            Ok(b) => b,
            // A half-tidied store: a miss, not an error.
            Err(_) => return Ok(None),
        };
        let view = ConfigView::parse(&bytes).map_err(|e| archive("build cache", e))?;
        let config: Value =
            serde_json::from_slice(&bytes).map_err(|e| archive("build cache", e.to_string()))?;
        let chains = chain_ids(&view.rootfs.diff_ids);
        let layers = self.db.read(|tx| {
            chains
                .iter()
                .map(|c| images::layer(tx, c))
                .collect::<strata_store::meta::rusqlite::Result<Option<Vec<_>>>>()
        })?;
        // A layer gone (a half-tidied store) is a miss, not an error.
        Ok(layers.map(|layers| BuildState { config, layers }))
    }

    /// Notes that a build used the steps `keys` (one transaction).
    pub fn touch_steps(&self, keys: &[Digest]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let now = strata_store::meta::now();
        self.db.write(|tx| {
            for key in keys {
                meta::touch(tx, key, &now)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Records the state after the step `key`, made from the state `parent`;
    /// returns the new state's ID (its config's digest).
    pub fn record_step(&self, key: &Digest, parent: &Digest, state: &BuildState) -> Result<Digest> {
        let bytes = crate::json_bytes(&state.config);
        let config = self.content.write_all(
            &bytes,
            Expected {
                digest: None,
                size: Some(bytes.len() as u64),
                what: "build step config".into(),
            },
        )?;
        let now = strata_store::meta::now();
        let row = CacheRow {
            key: key.clone(),
            parent: parent.clone(),
            config: config.clone(),
            layer: state.layers.last().map(|l| l.chain_id.clone()),
            created: now.clone(),
            last_used: now,
        };
        self.db.write(|tx| meta::insert(tx, &row))?;
        Ok(config)
    }

    /// Records the final state of a build as an image, tagged `names`.
    pub fn commit_state(&self, state: &BuildState, names: &[Reference]) -> Result<Loaded> {
        let bytes = crate::json_bytes(&state.config);
        let view = ConfigView::parse(&bytes).map_err(|e| archive("built image", e))?;
        if view.rootfs.diff_ids.len() != state.layers.len() {
            return Err(ImageError::Conflict(
                "the built config and its layers disagree".into(),
            ));
        }
        self.commit_image(&bytes, &view, &state.layers, names)
    }

    /// `builder prune`: forgets cached steps (`all`: every one; otherwise
    /// those whose state is no image's, the intermediate ones) and removes
    /// what nothing else keeps.
    pub fn prune_build_cache(&self, all: bool) -> Result<Pruned> {
        self.begin_exclusive()?;
        let steps = self.db.write(|tx| {
            let mut steps = 0;
            for row in meta::list(tx)? {
                if all || images::image(tx, &row.config)?.is_none() {
                    meta::delete(tx, &row.key)?;
                    steps += 1;
                }
            }
            Ok(steps)
        })?;
        let bytes = self.collect_garbage()?;
        Ok(Pruned { steps, bytes })
    }

    pub fn build_cache_usage(&self) -> Result<CacheUsage> {
        let (steps, (layers, bytes, reclaimable)) = self.db.read(|tx| {
            let steps: u64 = tx.query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))?;
            Ok((steps, meta::cache_layers(tx)?))
        })?;
        Ok(CacheUsage {
            steps,
            layers,
            bytes,
            reclaimable,
        })
    }
}
