//! The `containers` and `container_volumes` tables.

use rusqlite::{Connection, OptionalExtension, Row, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    /// The image ID (`sha256:...`) the container was made from.
    pub image: String,
    /// The key of the container's writable snapshot.
    pub snapshot: String,
    /// The container's configuration, as JSON.
    pub config: String,
    pub created: String,
}

const COLUMNS: &str = "id, name, image, snapshot, config, created";

fn from_row(r: &Row) -> rusqlite::Result<ContainerRow> {
    Ok(ContainerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        image: r.get(2)?,
        snapshot: r.get(3)?,
        config: r.get(4)?,
        created: r.get(5)?,
    })
}

/// Every container, newest first (as `ps` lists them).
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ContainerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM containers ORDER BY created DESC, id"
    ))?;
    stmt.query_map([], from_row)?.collect()
}

pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<ContainerRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<ContainerRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"),
        [name],
        from_row,
    )
    .optional()
}

/// IDs starting with `prefix`.
pub fn ids_with_prefix(conn: &Connection, prefix: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM containers WHERE id >= ?1 AND id < ?2")?;
    let end = format!("{prefix}\u{10FFFF}");
    stmt.query_map([prefix, end.as_str()], |r| r.get(0))?
        .collect()
}

/// Records a container and the volumes it uses.
pub fn insert(conn: &Connection, c: &ContainerRow, volumes: &[String]) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![c.id, c.name, c.image, c.snapshot, c.config, c.created],
    )?;
    for v in volumes {
        conn.execute(
            "INSERT OR IGNORE INTO container_volumes (container, volume) VALUES (?1, ?2)",
            params![c.id, v],
        )?;
    }
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM containers WHERE id = ?1", [id])?;
    Ok(())
}

pub fn rename(conn: &Connection, id: &str, name: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE containers SET name = ?2 WHERE id = ?1",
        params![id, name],
    )?;
    Ok(())
}

/// Names of the containers made from `image`.
pub fn image_in_use(conn: &Connection, image: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM containers WHERE image = ?1")?;
    stmt.query_map([image], |r| r.get(0))?.collect()
}

/// Snapshot keys containers own (reconcile must keep them).
pub fn snapshots(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT snapshot FROM containers")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}
