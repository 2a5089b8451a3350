//! Metadata: one SQLite database per store (`strata.db`), one schema, migrated
//! forward by `PRAGMA user_version`.
//!
//! WAL mode with a busy timeout makes it safe for several `strata` processes
//! at once; `synchronous=FULL` makes every acknowledged change durable. Every
//! change that spans rows happens in one transaction, taken IMMEDIATE so two
//! writers queue instead of failing on lock upgrade.

pub mod images;
pub mod snapshots;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use rusqlite;
pub use rusqlite::Transaction;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "metadata database {path} has schema version {found}, newer than this strata knows ({known}); use a newer strata"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
}

/// Forward-only migrations; index + 1 is the schema version they produce.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[include_str!("schema_v1.sql")];

/// A connection to the store's database. Methods take `&self` so one
/// connection can be shared (`Rc<Db>`) by the layers of one process; a
/// transaction must not start another (that would panic).
pub struct Db {
    conn: RefCell<Connection>,
    path: PathBuf,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, MetaError> {
        let err = |source| MetaError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let db = Db {
            conn: RefCell::new(conn),
            path: path.to_owned(),
        };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&self) -> Result<(), MetaError> {
        let known = MIGRATIONS.len() as u32;
        let found = self.write(|tx| {
            let found: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", i as u32 + 1)?;
            }
            Ok(found)
        })?;
        if found > known {
            return Err(MetaError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a write transaction (committed when `f` returns `Ok`).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, MetaError> {
        let path = &self.path;
        let err = |source| MetaError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = self.conn.borrow_mut();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let value = f(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(value)
    }

    /// Runs `f` in a read transaction: one consistent view across queries.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, MetaError> {
        let path = &self.path;
        let err = |source| MetaError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = self.conn.borrow_mut();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(err)?;
        let value = f(&tx).map_err(err)?;
        tx.finish().map_err(err)?;
        Ok(value)
    }
}

/// Store-wide settings (`store` table): the storage driver, the schema's birth.
pub mod settings {
    use rusqlite::{Connection, OptionalExtension, params};

    pub fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
        conn.query_row("SELECT value FROM store WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()
    }

    pub fn set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO store (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

/// The current time as RFC 3339, the one timestamp format in the database.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        let db = Db::open(&path).unwrap();
        db.write(|tx| settings::set(tx, "driver", "vfs")).unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        let driver = db.read(|tx| settings::get(tx, "driver")).unwrap();
        assert_eq!(driver.as_deref(), Some("vfs"));
        let version: u32 = db
            .read(|tx| tx.pragma_query_value(None, "user_version", |r| r.get(0)))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as u32);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        let db = Db::open(&path).unwrap();
        db.conn
            .borrow()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(db);
        let err = Db::open(&path).err().unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
