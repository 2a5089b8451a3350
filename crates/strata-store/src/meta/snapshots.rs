//! The `snapshots` table: the storage drivers' bookkeeping.

use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Writable, prepared on a committed parent; can be committed.
    Active,
    /// Read-only, prepared on a committed parent; can only be removed.
    View,
    /// Immutable; may be the parent of other snapshots.
    Committed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Active => "active",
            Kind::View => "view",
            Kind::Committed => "committed",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "active" => Kind::Active,
            "view" => Kind::View,
            _ => Kind::Committed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: i64,
    pub key: String,
    pub parent: Option<i64>,
    pub kind: Kind,
    pub transient: bool,
    pub labels: BTreeMap<String, String>,
    pub created: String,
    pub updated: String,
    pub size: Option<u64>,
    pub inodes: Option<u64>,
}

const COLUMNS: &str = "id, key, parent, kind, transient, labels, created, updated, size, inodes";

fn from_row(r: &Row) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        id: r.get(0)?,
        key: r.get(1)?,
        parent: r.get(2)?,
        kind: Kind::parse(&r.get::<_, String>(3)?),
        transient: r.get(4)?,
        labels: super::json_column(r, 5)?,
        created: r.get(6)?,
        updated: r.get(7)?,
        size: r.get(8)?,
        inodes: r.get(9)?,
    })
}

pub struct NewSnapshot<'a> {
    pub key: &'a str,
    pub parent: Option<i64>,
    pub kind: Kind,
    pub transient: bool,
    pub labels: &'a BTreeMap<String, String>,
}

/// Inserts a snapshot row and returns its id. Fails with a constraint
/// violation if the key is taken.
pub fn insert(conn: &Connection, new: &NewSnapshot) -> rusqlite::Result<i64> {
    let now = super::now();
    conn.execute(
        "INSERT INTO snapshots (key, parent, kind, transient, labels, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            new.key,
            new.parent,
            new.kind.as_str(),
            new.transient,
            super::json_text(new.labels),
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<SnapshotRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM snapshots WHERE key = ?1"),
        [key],
        from_row,
    )
    .optional()
}

pub fn get_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<SnapshotRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM snapshots WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// The snapshot and all its ancestors, nearest first.
pub fn chain(conn: &Connection, id: i64) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "WITH RECURSIVE chain (id, depth) AS (
             SELECT ?1, 0
             UNION ALL
             SELECT s.parent, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.id
             WHERE s.parent IS NOT NULL
         )
         SELECT {COLUMNS} FROM snapshots JOIN chain USING (id) ORDER BY chain.depth"
    ))?;
    stmt.query_map([id], from_row)?.collect()
}

/// Turns an active snapshot into a committed one named `name`.
pub fn commit(
    conn: &Connection,
    id: i64,
    name: &str,
    size: u64,
    inodes: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE snapshots SET key = ?2, kind = 'committed', transient = 0,
             size = ?3, inodes = ?4, updated = ?5
         WHERE id = ?1",
        params![id, name, size, inodes, super::now()],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
    Ok(())
}

pub fn has_children(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM snapshots WHERE parent = ?1)",
        [id],
        |r| r.get(0),
    )
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<SnapshotRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM snapshots ORDER BY id"))?;
    stmt.query_map([], from_row)?.collect()
}
