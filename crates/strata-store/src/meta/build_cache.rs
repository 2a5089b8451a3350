//! The `build_cache` table: one row per cached build step.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    pub key: Digest,
    /// The state before the step (its config's digest).
    pub parent: Digest,
    /// The image config of the state after the step.
    pub config: Digest,
    /// Its top layer's chain ID; None for a state without layers.
    pub layer: Option<Digest>,
    pub created: String,
    pub last_used: String,
}

const COLUMNS: &str = "key, parent, config, layer, created, last_used";

fn from_row(r: &Row) -> rusqlite::Result<CacheRow> {
    Ok(CacheRow {
        key: r.get(0)?,
        parent: r.get(1)?,
        config: r.get(2)?,
        layer: r.get(3)?,
        created: r.get(4)?,
        last_used: r.get(5)?,
    })
}

pub fn get(conn: &Connection, key: &Digest) -> rusqlite::Result<Option<CacheRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM build_cache WHERE key = ?1"),
        [key],
        from_row,
    )
    .optional()
}

/// Records a step (a step made again replaces the old row).
pub fn insert(conn: &Connection, row: &CacheRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO build_cache ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            row.key,
            row.parent,
            row.config,
            row.layer,
            row.created,
            row.last_used
        ],
    )?;
    Ok(())
}

pub fn touch(conn: &Connection, key: &Digest, now: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE build_cache SET last_used = ?1 WHERE key = ?2",
        params![now, key],
    )?;
    Ok(())
}

/// The state a step started from, for the step that made the state
/// `config` (any one, if several did).
pub fn parent_of(conn: &Connection, config: &Digest) -> rusqlite::Result<Option<Digest>> {
    conn.query_row(
        "SELECT parent FROM build_cache WHERE config = ?1 LIMIT 1",
        [config],
        |r| r.get(0),
    )
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<CacheRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM build_cache"))?;
    stmt.query_map([], from_row)?.collect()
}

pub fn delete(conn: &Connection, key: &Digest) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM build_cache WHERE key = ?1", [key])?;
    Ok(())
}

/// The layers the build cache keeps (with the layers under them): their
/// count and bytes, and the bytes of those no image uses.
pub fn cache_layers(conn: &Connection) -> rusqlite::Result<(u64, u64, u64)> {
    conn.query_row(
        "WITH RECURSIVE kept(chain_id) AS (
             SELECT layer FROM build_cache WHERE layer IS NOT NULL
             UNION SELECT l.parent FROM layers l JOIN kept k ON l.chain_id = k.chain_id
                   WHERE l.parent IS NOT NULL)
         SELECT COUNT(*), COALESCE(SUM(l.size), 0),
                COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM image_layers il
                                               WHERE il.layer = l.chain_id)
                             THEN 0 ELSE l.size END), 0)
         FROM layers l JOIN kept k ON l.chain_id = k.chain_id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}
