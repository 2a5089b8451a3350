//! The `layers`, `images`, `image_layers` and `tags` tables.

use crate::digest::Digest;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

impl ToSql for Digest {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for Digest {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in the layer (what `history` shows).
    pub size: u64,
    /// Bytes of the uncompressed layer tar.
    pub tar_size: u64,
    /// Blob that regenerates the layer tar from the snapshot's files.
    pub tar_index: Digest,
    pub created: String,
}

const LAYER_COLUMNS: &str = "chain_id, diff_id, parent, size, tar_size, tar_index, created";

fn layer_from_row(r: &Row) -> rusqlite::Result<LayerRow> {
    Ok(LayerRow {
        chain_id: r.get(0)?,
        diff_id: r.get(1)?,
        parent: r.get(2)?,
        size: r.get(3)?,
        tar_size: r.get(4)?,
        tar_index: r.get(5)?,
        created: r.get(6)?,
    })
}

pub fn layer(conn: &Connection, chain_id: &Digest) -> rusqlite::Result<Option<LayerRow>> {
    conn.query_row(
        &format!("SELECT {LAYER_COLUMNS} FROM layers WHERE chain_id = ?1"),
        [chain_id],
        layer_from_row,
    )
    .optional()
}

pub fn layers(conn: &Connection) -> rusqlite::Result<Vec<LayerRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {LAYER_COLUMNS} FROM layers"))?;
    stmt.query_map([], layer_from_row)?.collect()
}

/// Records a layer. Recording one that exists (the same chain ID, stored
/// again after its files were lost, or by a concurrent load) keeps the row
/// and points it at the newest index.
pub fn insert_layer(conn: &Connection, layer: &LayerRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO layers (chain_id, diff_id, parent, size, tar_size, tar_index, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (chain_id) DO UPDATE SET tar_index = excluded.tar_index",
        params![
            layer.chain_id,
            layer.diff_id,
            layer.parent,
            layer.size,
            layer.tar_size,
            layer.tar_index,
            layer.created
        ],
    )?;
    Ok(())
}

pub fn delete_layer(conn: &Connection, chain_id: &Digest) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM layers WHERE chain_id = ?1", [chain_id])?;
    Ok(())
}

/// Layers no image uses, no build cache step keeps and no other layer
/// builds on, leaves first.
pub fn unreferenced_layers(conn: &Connection) -> rusqlite::Result<Vec<LayerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LAYER_COLUMNS} FROM layers l
         WHERE NOT EXISTS (SELECT 1 FROM image_layers il WHERE il.layer = l.chain_id)
           AND NOT EXISTS (SELECT 1 FROM build_cache b WHERE b.layer = l.chain_id)
           AND NOT EXISTS (SELECT 1 FROM layers c WHERE c.parent = l.chain_id)"
    ))?;
    stmt.query_map([], layer_from_row)?.collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// The digest of the image config: the image ID.
    pub id: Digest,
    pub manifest: Digest,
    /// Sum of the layers' sizes.
    pub size: u64,
    /// Creation time from the config, RFC 3339.
    pub created: Option<String>,
    pub added: String,
}

const IMAGE_COLUMNS: &str = "id, manifest, size, created, added";

fn image_from_row(r: &Row) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        manifest: r.get(1)?,
        size: r.get(2)?,
        created: r.get(3)?,
        added: r.get(4)?,
    })
}

/// Records an image and its layer stack (bottom first). Returns false if the
/// image was already there (same config digest), which changes nothing.
pub fn insert_image(
    conn: &Connection,
    image: &ImageRow,
    layers: &[Digest],
) -> rusqlite::Result<bool> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO images (id, manifest, size, created, added)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            image.id,
            image.manifest,
            image.size,
            image.created,
            image.added
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    let mut stmt = conn
        .prepare_cached("INSERT INTO image_layers (image, position, layer) VALUES (?1, ?2, ?3)")?;
    for (i, layer) in layers.iter().enumerate() {
        stmt.execute(params![image.id, i as i64, layer])?;
    }
    Ok(true)
}

pub fn image(conn: &Connection, id: &Digest) -> rusqlite::Result<Option<ImageRow>> {
    conn.query_row(
        &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1"),
        [id],
        image_from_row,
    )
    .optional()
}

/// Images whose ID starts with `hex_prefix` (for short IDs).
pub fn images_by_prefix(conn: &Connection, hex_prefix: &str) -> rusqlite::Result<Vec<ImageRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE substr(id, 8, ?2) = ?1"
    ))?;
    stmt.query_map(params![hex_prefix, hex_prefix.len() as i64], image_from_row)?
        .collect()
}

pub fn images(conn: &Connection) -> rusqlite::Result<Vec<ImageRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images ORDER BY added DESC, id"
    ))?;
    stmt.query_map([], image_from_row)?.collect()
}

/// The image's layers, bottom first.
pub fn image_layers(conn: &Connection, id: &Digest) -> rusqlite::Result<Vec<LayerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM image_layers il JOIN layers l ON l.chain_id = il.layer
         WHERE il.image = ?1 ORDER BY il.position",
        LAYER_COLUMNS
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    stmt.query_map([id], layer_from_row)?.collect()
}

pub fn delete_image(conn: &Connection, id: &Digest) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tags WHERE image = ?1", [id])?;
    conn.execute("DELETE FROM images WHERE id = ?1", [id])?;
    Ok(())
}

/// Points `name` at `image`, returning the image it pointed at before.
pub fn set_tag(conn: &Connection, name: &str, image: &Digest) -> rusqlite::Result<Option<Digest>> {
    let previous = tag(conn, name)?;
    conn.execute(
        "INSERT INTO tags (name, image) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET image = excluded.image",
        params![name, image],
    )?;
    Ok(previous.filter(|p| p != image))
}

pub fn tag(conn: &Connection, name: &str) -> rusqlite::Result<Option<Digest>> {
    conn.query_row("SELECT image FROM tags WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

pub fn delete_tag(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tags WHERE name = ?1", [name])?;
    Ok(())
}

/// Every tag, as (name, image), sorted by name.
pub fn tags(conn: &Connection) -> rusqlite::Result<Vec<(String, Digest)>> {
    let mut stmt = conn.prepare_cached("SELECT name, image FROM tags ORDER BY name")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

pub fn tags_of(conn: &Connection, image: &Digest) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM tags WHERE image = ?1 ORDER BY name")?;
    stmt.query_map([image], |r| r.get(0))?.collect()
}

/// For each layer used by any image: (chain id, size, number of images using it).
pub fn layer_use(conn: &Connection) -> rusqlite::Result<Vec<(Digest, u64, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.chain_id, l.size, COUNT(DISTINCT il.image)
         FROM layers l JOIN image_layers il ON il.layer = l.chain_id
         GROUP BY l.chain_id",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}

/// (image, layer) for every layer of every image.
pub fn image_layer_sizes(conn: &Connection) -> rusqlite::Result<Vec<(Digest, Digest)>> {
    let mut stmt = conn.prepare_cached("SELECT image, layer FROM image_layers")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Every blob digest the metadata refers to (manifests, configs, tar
/// indexes, build cache configs).
pub fn referenced_blobs(conn: &Connection) -> rusqlite::Result<Vec<Digest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM images UNION SELECT manifest FROM images UNION SELECT tar_index FROM layers
         UNION SELECT config FROM build_cache",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}
