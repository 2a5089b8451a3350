//! `load` (image archives) and `import` (a rootfs tar as a one-layer image).

use std::io::Read;
use std::path::Path;

use serde_json::Map;
use strata_archive::Compression;
use strata_store::Digest;
use strata_store::content::Expected;
use strata_store::digest::chain_ids;
use strata_store::failpoint;
use strata_store::meta::images::{self as meta, ImageRow, LayerRow};

use crate::changes::apply_changes;
use crate::config::{ConfigView, NewConfig};
use crate::error::{Result, archive};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::source::{Source, SourceImage};
use crate::store::Store;
use crate::unpack::LayerInput;

/// An image now in the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: Digest,
    pub names: Vec<Reference>,
    /// Tags that pointed at another image before, and that image.
    pub moved: Vec<(Reference, Digest)>,
}

/// `import` settings, as `docker import` takes them.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`).
    pub changes: Vec<String>,
    /// The history comment (default: "Imported from <source>").
    pub message: Option<String>,
}

impl Store {
    /// Loads every image in an archive file or OCI layout directory.
    pub fn load(&self, path: &Path, label: &str, progress: &dyn Progress) -> Result<Vec<Loaded>> {
        self.begin_write()?;
        let source = Source::open(path, label)?;
        let images = source.images()?;
        images
            .into_iter()
            .map(|image| self.load_image(&source, image, progress))
            .collect()
    }

    fn load_image(
        &self,
        source: &Source,
        image: SourceImage,
        progress: &dyn Progress,
    ) -> Result<Loaded> {
        let chain = chain_ids(&image.view.rootfs.diff_ids);
        let mut rows: Vec<LayerRow> = Vec::new();
        let total = image.layers.len();
        for (i, (layer, chain_id)) in image.layers.iter().zip(&chain).enumerate() {
            if let Some(row) = self.stored_layer(chain_id)? {
                // Shared with an image already here: stored once.
                rows.push(row);
                continue;
            }
            let (reader, size) = source.open_member(&layer.member)?;
            let input = LayerInput {
                reader,
                size: Some(size),
                blob: layer.blob.clone(),
                diff_id: Some(layer.diff_id.clone()),
                what: format!(
                    "{}: layer {} of {total} ({})",
                    source.label,
                    i + 1,
                    layer.member
                ),
            };
            let parent = i.checked_sub(1).map(|p| &chain[p]);
            rows.push(self.unpack_layer(input, parent, progress)?);
        }
        failpoint::hit("load-before-image");
        self.commit_image(&image.config, &image.view, &rows, &image.names)
    }

    /// A layer already stored (recorded, with its files), if any.
    pub(crate) fn stored_layer(&self, chain_id: &Digest) -> Result<Option<LayerRow>> {
        let Some(row) = self.db.read(|tx| meta::layer(tx, chain_id))? else {
            return Ok(None);
        };
        Ok(self
            .snapshots()?
            .stat(&chain_id.to_string())
            .is_ok()
            .then_some(row))
    }

    /// Turns a tar of a root filesystem into a one-layer image.
    pub fn import(
        &self,
        reader: Box<dyn Read + Send>,
        size: Option<u64>,
        label: &str,
        name: Option<&Reference>,
        opts: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<Loaded> {
        self.begin_write()?;
        let mut config = Map::new();
        apply_changes(&mut config, &opts.changes).map_err(|e| archive(label, e))?;
        let input = LayerInput {
            reader,
            size,
            blob: None,
            diff_id: None,
            what: label.to_owned(),
        };
        let row = self.unpack_layer(input, None, progress)?;
        let created = jiff::Timestamp::now().to_string();
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {label}"));
        let bytes = NewConfig {
            diff_ids: std::slice::from_ref(&row.diff_id),
            created: &created,
            created_by: None,
            comment: Some(&comment),
            config,
        }
        .to_bytes();
        let view = ConfigView::parse(&bytes).map_err(|e| archive(label, e))?;
        self.commit_image(
            &bytes,
            &view,
            &[row],
            name.into_iter().cloned().collect::<Vec<_>>().as_slice(),
        )
    }

    /// Records an image whose layers are stored: config and manifest blobs
    /// first, then the image, its layers and its tags in one transaction.
    pub(crate) fn commit_image(
        &self,
        config: &[u8],
        view: &ConfigView,
        layers: &[LayerRow],
        names: &[Reference],
    ) -> Result<Loaded> {
        let id = self.content.write_all(
            config,
            Expected {
                digest: None,
                size: Some(config.len() as u64),
                what: "image config".into(),
            },
        )?;
        // Kept uncompressed: the form Strata can always rebuild exactly.
        let layer_blobs: Vec<(Digest, u64)> = layers
            .iter()
            .map(|l| (l.diff_id.clone(), l.tar_size))
            .collect();
        let manifest = crate::manifest::oci_manifest(
            &id,
            config.len() as u64,
            &layer_blobs,
            Compression::None,
        )?;
        let manifest = self.content.write_all(&manifest, Expected::default())?;
        let row = ImageRow {
            id: id.clone(),
            manifest,
            size: layers.iter().map(|l| l.size).sum(),
            created: view.created.clone(),
            added: strata_store::meta::now(),
        };
        let chain: Vec<Digest> = layers.iter().map(|l| l.chain_id.clone()).collect();
        let moved = self.db.write(|tx| {
            meta::insert_image(tx, &row, &chain)?;
            let mut moved = Vec::new();
            for name in names {
                if let Some(previous) = meta::set_tag(tx, &name.to_string(), &id)? {
                    moved.push((name.clone(), previous));
                }
            }
            Ok(moved)
        })?;
        failpoint::hit("load-after-image");
        Ok(Loaded {
            id,
            names: names.to_vec(),
            moved,
        })
    }
}
