//! The CSI tables: volumes made through CSI, their snapshots, and which
//! node each volume is published to. The request columns are JSON text
//! that only the CSI server reads.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A volume made through CSI. Rows whose volume is no longer in `volumes`
/// are never returned: the volume was removed outside CSI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsiVolumeRow {
    /// The volume ID, which is the Strata volume's name.
    pub volume: String,
    /// The orchestrator's name for it.
    pub name: String,
    pub capacity: u64,
    pub request: String,
    pub created: String,
}

/// A CSI volume whose volume still exists, with that volume's options
/// (they say what kind of volume it is), read in the same query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCsiVolume {
    pub row: CsiVolumeRow,
    pub options: BTreeMap<String, String>,
}

const VOLUME_COLUMNS: &str = "c.volume, c.name, c.capacity, c.request, c.created, v.options";
const LIVE: &str = "csi_volumes c JOIN volumes v ON v.name = c.volume";

fn volume_row(r: &Row) -> rusqlite::Result<LiveCsiVolume> {
    Ok(LiveCsiVolume {
        row: CsiVolumeRow {
            volume: r.get(0)?,
            name: r.get(1)?,
            capacity: r.get(2)?,
            request: r.get(3)?,
            created: r.get(4)?,
        },
        options: super::json_column(r, 5)?,
    })
}

pub fn volume(conn: &Connection, volume: &str) -> rusqlite::Result<Option<LiveCsiVolume>> {
    conn.query_row(
        &format!("SELECT {VOLUME_COLUMNS} FROM {LIVE} WHERE c.volume = ?1"),
        [volume],
        volume_row,
    )
    .optional()
}

pub fn volume_named(conn: &Connection, name: &str) -> rusqlite::Result<Option<LiveCsiVolume>> {
    conn.query_row(
        &format!("SELECT {VOLUME_COLUMNS} FROM {LIVE} WHERE c.name = ?1"),
        [name],
        volume_row,
    )
    .optional()
}

/// Up to `limit` volumes with IDs after `after`, by ID.
pub fn volumes_after(
    conn: &Connection,
    after: &str,
    limit: usize,
) -> rusqlite::Result<Vec<LiveCsiVolume>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VOLUME_COLUMNS} FROM {LIVE} WHERE c.volume > ?1 ORDER BY c.volume LIMIT ?2"
    ))?;
    stmt.query_map(params![after, limit as i64], volume_row)?
        .collect()
}

/// Records a CSI volume, replacing a row left by a volume removed outside
/// CSI under the same ID or name.
pub fn insert_volume(conn: &Connection, v: &CsiVolumeRow) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM csi_volumes WHERE volume = ?1 OR name = ?2",
        [&v.volume, &v.name],
    )?;
    conn.execute(
        "INSERT INTO csi_volumes (volume, name, capacity, request, created)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![v.volume, v.name, v.capacity, v.request, v.created],
    )?;
    Ok(())
}

pub fn set_capacity(conn: &Connection, volume: &str, capacity: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE csi_volumes SET capacity = ?2 WHERE volume = ?1",
        params![volume, capacity],
    )?;
    Ok(())
}

pub fn delete_volume(conn: &Connection, volume: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM csi_volumes WHERE volume = ?1", [volume])?;
    conn.execute("DELETE FROM csi_publications WHERE volume = ?1", [volume])?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: String,
    pub name: String,
    /// The ID of the volume it was taken of.
    pub source: String,
    pub size: u64,
    pub ready: bool,
    pub created: String,
}

const SNAPSHOT_COLUMNS: &str = "id, name, source, size, ready, created";

fn snapshot_row(r: &Row) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        id: r.get(0)?,
        name: r.get(1)?,
        source: r.get(2)?,
        size: r.get(3)?,
        ready: r.get(4)?,
        created: r.get(5)?,
    })
}

pub fn snapshot(conn: &Connection, id: &str) -> rusqlite::Result<Option<SnapshotRow>> {
    conn.query_row(
        &format!("SELECT {SNAPSHOT_COLUMNS} FROM csi_snapshots WHERE id = ?1"),
        [id],
        snapshot_row,
    )
    .optional()
}

pub fn snapshot_named(conn: &Connection, name: &str) -> rusqlite::Result<Option<SnapshotRow>> {
    conn.query_row(
        &format!("SELECT {SNAPSHOT_COLUMNS} FROM csi_snapshots WHERE name = ?1"),
        [name],
        snapshot_row,
    )
    .optional()
}

/// Up to `limit` snapshots with IDs after `after`, by ID; only those of
/// volume `source` when given.
pub fn snapshots_after(
    conn: &Connection,
    source: Option<&str>,
    after: &str,
    limit: usize,
) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM csi_snapshots
         WHERE id > ?1 AND (?2 IS NULL OR source = ?2) ORDER BY id LIMIT ?3"
    ))?;
    stmt.query_map(params![after, source, limit as i64], snapshot_row)?
        .collect()
}

/// Every snapshot that is not ready: left by a crash when no copy runs.
pub fn unready_snapshots(conn: &Connection) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM csi_snapshots WHERE ready = 0 ORDER BY id"
    ))?;
    stmt.query_map([], snapshot_row)?.collect()
}

/// Records a snapshot; false if one of that ID or name exists.
pub fn insert_snapshot(conn: &Connection, s: &SnapshotRow) -> rusqlite::Result<bool> {
    let n = conn.execute(
        &format!(
            "INSERT OR IGNORE INTO csi_snapshots ({SNAPSHOT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ),
        params![s.id, s.name, s.source, s.size, s.ready, s.created],
    )?;
    Ok(n == 1)
}

pub fn set_snapshot_ready(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE csi_snapshots SET ready = 1 WHERE id = ?1", [id])?;
    Ok(())
}

pub fn delete_snapshot(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM csi_snapshots WHERE id = ?1", [id])?;
    Ok(())
}

/// A ControllerPublishVolume that took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub volume: String,
    pub node: String,
    pub readonly: bool,
    pub request: String,
}

/// Records a publication; false if the volume was already published to
/// that node.
pub fn publish(conn: &Connection, p: &Publication) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO csi_publications (volume, node, readonly, request)
         VALUES (?1, ?2, ?3, ?4)",
        params![p.volume, p.node, p.readonly, p.request],
    )?;
    Ok(n == 1)
}

/// Forgets a publication; false if there was none.
pub fn unpublish(conn: &Connection, volume: &str, node: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "DELETE FROM csi_publications WHERE volume = ?1 AND node = ?2",
        [volume, node],
    )?;
    Ok(n == 1)
}

/// Where `volume` is published, by node.
pub fn publications(conn: &Connection, volume: &str) -> rusqlite::Result<Vec<Publication>> {
    let mut stmt = conn.prepare_cached(
        "SELECT volume, node, readonly, request FROM csi_publications
         WHERE volume = ?1 ORDER BY node",
    )?;
    stmt.query_map([volume], |r| {
        Ok(Publication {
            volume: r.get(0)?,
            node: r.get(1)?,
            readonly: r.get(2)?,
            request: r.get(3)?,
        })
    })?
    .collect()
}
