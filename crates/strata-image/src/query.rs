//! Reading the store: listing, resolving references, inspect, history.

use serde_json::{Value, json};
use strata_store::Digest;
use strata_store::meta::build_cache;
use strata_store::meta::images::{self as meta, ImageRow};

use crate::config::ConfigView;
use crate::error::{ImageError, Result};
use crate::reference::Reference;
use crate::store::Store;

/// An image as `images` lists it.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub row: ImageRow,
    /// Its tags, sorted.
    pub names: Vec<Reference>,
}

/// One `history` row, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID on the newest row, None ("<missing>") below it.
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

impl Store {
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let (rows, tags) = self
            .db
            .read(|tx| Ok((meta::images(tx)?, meta::tags(tx)?)))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let names = tags
                    .iter()
                    .filter(|(_, image)| image == &row.id)
                    .filter_map(|(name, _)| name.parse().ok())
                    .collect();
                ImageSummary { row, names }
            })
            .collect())
    }

    /// Finds an image by tag, ID (full, `sha256:…`, or a prefix) or
    /// `name@digest`. Returns the image and the tag it was named by.
    pub fn resolve(&self, s: &str) -> Result<(Digest, Option<Reference>)> {
        let not_found = || ImageError::NotFound(s.to_owned());
        if let Ok(d) = s.parse::<Digest>() {
            return self
                .db
                .read(|tx| meta::image(tx, &d))?
                .map(|row| (row.id, None))
                .ok_or_else(not_found);
        }
        let reference = s.parse::<Reference>();
        if let Ok(r) = &reference {
            if let Some(digest) = r.digest() {
                // name@digest: the image whose manifest has that digest.
                let rows = self.db.read(|tx| meta::images(tx))?;
                return rows
                    .into_iter()
                    .find(|row| &row.manifest == digest || &row.id == digest)
                    .map(|row| (row.id, None))
                    .ok_or_else(not_found);
            }
            if let Some(id) = self.db.read(|tx| meta::tag(tx, &r.to_string()))? {
                return Ok((id, Some(r.clone())));
            }
        }
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let found = self.db.read(|tx| meta::images_by_prefix(tx, s))?;
            return match found.as_slice() {
                [one] => Ok((one.id.clone(), None)),
                [] => Err(not_found()),
                _ => Err(ImageError::Ambiguous(s.to_owned())),
            };
        }
        match reference {
            Ok(r) => Err(ImageError::NotFound(r.familiar())),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn image_row(&self, id: &Digest) -> Result<ImageRow> {
        self.db
            .read(|tx| meta::image(tx, id))?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))
    }

    /// An image's config: raw JSON and the parsed view.
    pub fn config(&self, id: &Digest) -> Result<(Value, ConfigView)> {
        let bytes = self.content.read(id)?;
        let view =
            ConfigView::parse(&bytes).map_err(|e| crate::error::archive(&id.to_string(), e))?;
        let raw = serde_json::from_slice(&bytes)
            .map_err(|e| crate::error::archive(&id.to_string(), e.to_string()))?;
        Ok((raw, view))
    }

    /// `image inspect`, in Docker's shape.
    pub fn inspect(&self, s: &str) -> Result<Value> {
        let (id, _) = self.resolve(s)?;
        let row = self.image_row(&id)?;
        let (raw, view) = self.config(&id)?;
        let tags: Vec<String> = self.db.read(|tx| meta::tags_of(tx, &id))?;
        let tags: Vec<String> = tags
            .iter()
            .filter_map(|t| t.parse::<Reference>().ok())
            .map(|r| r.familiar())
            .collect();
        let layers = self.db.read(|tx| meta::image_layers(tx, &id))?;
        let driver = self.recorded_driver()?.unwrap_or_default();
        let mut dirs = Vec::new();
        if !layers.is_empty() {
            let snapshots = self.snapshots()?;
            for l in layers.iter().rev() {
                dirs.push(
                    snapshots
                        .files(&l.chain_id.to_string())?
                        .display()
                        .to_string(),
                );
            }
        }
        let data = match dirs.split_first() {
            Some((top, rest)) => json!({"UpperDir": top, "LowerDir": rest.join(":")}),
            None => json!({}),
        };
        Ok(json!({
            "Id": id.to_string(),
            "RepoTags": tags,
            "RepoDigests": [],
            "Parent": "",
            "Comment": raw.get("comment").cloned().unwrap_or(json!("")),
            "Created": view.created,
            "Author": view.author.clone().unwrap_or_default(),
            "Config": view.config.clone().unwrap_or(Value::Null),
            "Architecture": view.architecture,
            "Os": view.os,
            "Size": row.size,
            "GraphDriver": {"Name": driver, "Data": data},
            "RootFS": {"Type": "layers", "Layers": view.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "Metadata": {"LastTagTime": row.added},
            "Descriptor": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": row.manifest.to_string()},
        }))
    }

    /// `history`: the config's history with each layer's size, newest first.
    pub fn history(&self, s: &str) -> Result<Vec<HistoryRow>> {
        let (id, _) = self.resolve(s)?;
        let (_, view) = self.config(&id)?;
        let layers = self.db.read(|tx| meta::image_layers(tx, &id))?;
        let mut sizes = layers.iter().map(|l| l.size);
        let mut rows: Vec<HistoryRow> = if view.history.is_empty() {
            layers
                .iter()
                .map(|l| HistoryRow {
                    id: None,
                    created: None,
                    created_by: String::new(),
                    size: l.size,
                    comment: String::new(),
                })
                .collect()
        } else {
            view.history
                .iter()
                .map(|h| HistoryRow {
                    id: None,
                    created: h.created.clone(),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    size: if h.empty_layer {
                        0
                    } else {
                        sizes.next().unwrap_or(0)
                    },
                    comment: h.comment.clone().unwrap_or_default(),
                })
                .collect()
        };
        rows.reverse();
        // Each state a build passed through names its step, as Docker's
        // classic builder's intermediate images do: walk back from the
        // image through the build cache; the state a build started from
        // (its base image) names the row below the first step.
        let mut state = Some(id);
        for row in rows.iter_mut() {
            let Some(current) = state.take() else { break };
            let (is_image, parent) = self.db.read(|tx| {
                Ok((
                    meta::image(tx, &current)?.is_some(),
                    build_cache::parent_of(tx, &current)?,
                ))
            })?;
            if !is_image && parent.is_none() {
                break;
            }
            state = parent;
            row.id = Some(current);
        }
        Ok(rows)
    }
}
