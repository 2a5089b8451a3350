//! `commit`: a new image from a parent image and one more layer (a
//! container's changes), like `docker commit`. The parent's config is kept
//! but for the new layer's diff ID, one more history entry, and the
//! `--change` instructions; so `history` reads on from the parent's.

use std::io::Read;

use serde_json::{Map, Value, json};
use strata_store::Digest;
use strata_store::meta::images as meta;

use crate::changes::apply_changes;
use crate::config::ConfigView;
use crate::error::{Result, archive};
use crate::load::Loaded;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::Store;
use crate::unpack::LayerInput;

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub author: Option<String>,
    pub message: Option<String>,
    /// Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// The history entry's `created_by` (the container's command).
    pub created_by: String,
}

impl Store {
    /// Stores `layer` (an uncompressed layer tar) on top of the image
    /// `parent` and records the new image, tagged `name` if given.
    pub fn commit(
        &self,
        parent: &Digest,
        layer: Box<dyn Read + Send>,
        opts: &CommitOptions,
        name: Option<&Reference>,
        progress: &dyn Progress,
    ) -> Result<Loaded> {
        self.begin_write()?;
        let (mut config, _) = self.config(parent)?;
        let mut layers = self.db.read(|tx| meta::image_layers(tx, parent))?;
        let what = format!("commit of a container of {}", parent.short());
        let row = self.unpack_layer(
            LayerInput {
                reader: layer,
                size: None,
                blob: None,
                diff_id: None,
                what: what.clone(),
            },
            layers.last().map(|l| &l.chain_id),
            progress,
        )?;
        let created = jiff::Timestamp::now().to_string();
        let obj = config
            .as_object_mut()
            .ok_or_else(|| archive(&what, "the parent image config is not an object"))?;
        let mut inner = obj
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        apply_changes(&mut inner, &opts.changes).map_err(|e| archive(&what, e))?;
        obj.insert("config".into(), Value::Object(inner));
        obj.insert("created".into(), json!(created));
        if let Some(a) = &opts.author {
            obj.insert("author".into(), json!(a));
        }
        let mut entry = Map::new();
        entry.insert("created".into(), json!(created));
        entry.insert("created_by".into(), json!(opts.created_by));
        if let Some(a) = &opts.author {
            entry.insert("author".into(), json!(a));
        }
        if let Some(m) = &opts.message {
            entry.insert("comment".into(), json!(m));
        }
        push(obj, "history", Value::Object(entry));
        let rootfs = obj
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        let rootfs = rootfs
            .as_object_mut()
            .ok_or_else(|| archive(&what, "the parent image rootfs is not an object"))?;
        push(rootfs, "diff_ids", json!(row.diff_id.to_string()));
        let bytes = crate::json_bytes(&config);
        let view = ConfigView::parse(&bytes).map_err(|e| archive(&what, e))?;
        layers.push(row);
        let names: Vec<Reference> = name.into_iter().cloned().collect();
        self.commit_image(&bytes, &view, &layers, &names)
    }
}

fn push(obj: &mut Map<String, Value>, key: &str, value: Value) {
    match obj.get_mut(key).and_then(Value::as_array_mut) {
        Some(a) => a.push(value),
        None => {
            obj.insert(key.into(), json!([value]));
        }
    }
}
