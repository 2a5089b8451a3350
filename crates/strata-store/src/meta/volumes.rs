//! The `volumes` table and which containers use each volume.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub anonymous: bool,
    pub created: String,
}

const COLUMNS: &str = "name, driver, labels, options, anonymous, created";

fn from_row(r: &Row) -> rusqlite::Result<VolumeRow> {
    Ok(VolumeRow {
        name: r.get(0)?,
        driver: r.get(1)?,
        labels: super::json_column(r, 2)?,
        options: super::json_column(r, 3)?,
        anonymous: r.get(4)?,
        created: r.get(5)?,
    })
}

pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<VolumeRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
        [name],
        from_row,
    )
    .optional()
}

/// Every volume, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))?;
    stmt.query_map([], from_row)?.collect()
}

/// Records a volume; false if one of that name exists.
pub fn insert(conn: &Connection, v: &VolumeRow) -> rusqlite::Result<bool> {
    let n = conn.execute(
        &format!("INSERT OR IGNORE INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            v.name,
            v.driver,
            super::json_text(&v.labels),
            super::json_text(&v.options),
            v.anonymous,
            v.created
        ],
    )?;
    Ok(n == 1)
}

pub fn set_options(
    conn: &Connection,
    name: &str,
    options: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE volumes SET options = ?2 WHERE name = ?1",
        params![name, super::json_text(options)],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
    Ok(())
}

/// (id, name) of the containers that use `name`, oldest first.
pub fn users(conn: &Connection, name: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.name FROM container_volumes v JOIN containers c ON c.id = v.container
         WHERE v.volume = ?1 ORDER BY c.created",
    )?;
    stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Names of volumes no container uses.
pub fn unused(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM volumes
         WHERE name NOT IN (SELECT volume FROM container_volumes) ORDER BY name",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Records that `caller` holds a mount of `volume`; false if it already did.
pub fn add_mount(
    conn: &Connection,
    volume: &str,
    caller: &str,
    plugin: bool,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO volume_mounts (volume, caller, plugin, created)
         VALUES (?1, ?2, ?3, ?4)",
        params![volume, caller, plugin, super::now()],
    )?;
    Ok(n == 1)
}

/// Forgets `caller`'s mount of `volume`; false if it held none.
pub fn drop_mount(conn: &Connection, volume: &str, caller: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "DELETE FROM volume_mounts WHERE volume = ?1 AND caller = ?2",
        [volume, caller],
    )?;
    Ok(n == 1)
}

/// The callers holding a mount of `volume`.
pub fn mounts_of(conn: &Connection, volume: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT caller FROM volume_mounts WHERE volume = ?1 ORDER BY caller")?;
    stmt.query_map([volume], |r| r.get(0))?.collect()
}

/// Every (volume, caller, plugin) mount held.
pub fn all_mounts(conn: &Connection) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT volume, caller, plugin FROM volume_mounts ORDER BY volume, caller",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
}
