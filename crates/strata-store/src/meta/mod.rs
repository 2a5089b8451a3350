//! Metadata: one SQLite database per store (`strata.db`), one schema, migrated
//! forward by `PRAGMA user_version`.
//!
//! WAL mode with a busy timeout makes it safe for several `strata` processes
//! at once; `synchronous=FULL` makes every acknowledged change durable, and
//! [`Db::batch`] lets one operation's several commits share one fsync, which
//! [`Db::leave_sync`] can leave to another process (a container's monitor,
//! after `run --rm`). The WAL is not checkpointed when a connection closes
//! (see [`Db::open`]). Every
//! change that spans rows happens in one transaction, taken IMMEDIATE so two
//! writers queue instead of failing on lock upgrade.

pub mod build_cache;
pub mod containers;
pub mod csi;
pub mod images;
pub mod snapshots;
pub mod volumes;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::cell::{Cell, RefCell};
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
    #[error("metadata database {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
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

/// The WAL size (in 4 KiB pages) at which a commit checkpoints it.
const WAL_PAGES: u32 = 200;

/// How long a command waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `op` until it succeeds, fails otherwise than busy, or the busy
/// timeout passes. The connection's busy handler covers most waits, but
/// SQLite returns SQLITE_BUSY at once in some WAL states (another process
/// closing the last connection and checkpointing, or recovering the WAL
/// index), so two processes starting together must retry.
fn retry_busy<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match op() {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Forward-only migrations; index + 1 is the schema version they produce.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
];

/// A connection to the store's database. Methods take `&self` so one
/// connection can be shared (`Rc<Db>`) by the layers of one process; a
/// transaction must not start another (that would panic).
pub struct Db {
    conn: RefCell<Connection>,
    path: PathBuf,
    /// Inside a [`Db::batch`] (an inner one joins the outer).
    in_batch: Cell<bool>,
    /// Batches leave their fsync pending ([`Db::leave_sync`]).
    sync_left: Cell<bool>,
    /// A batch committed since the log was last synced.
    unsynced: Cell<bool>,
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
        let wal = wal_path(path);
        let new_wal = !wal.exists();
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Setting the mode needs a lock even when it is already WAL (it is
        // recorded in the file): only the store's first open sets it.
        retry_busy(|| {
            let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                conn.pragma_update(None, "journal_mode", "WAL")?;
            }
            Ok(())
        })
        .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // Checkpointing on close costs the last connection two fsyncs, and
        // every `strata` command is a short-lived last connection: commits
        // checkpoint instead, once the WAL passes WAL_PAGES. The WAL is
        // durable either way (synchronous=FULL syncs it at every commit).
        // Kept small, because each process's first connection reads all of
        // it to rebuild the WAL index (1 ms per 2 MiB).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(err)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let db = Db {
            conn: RefCell::new(conn),
            path: path.to_owned(),
            in_batch: Cell::new(false),
            sync_left: Cell::new(false),
            unsynced: Cell::new(false),
        };
        db.migrate()?;
        if new_wal {
            // SQLite syncs the folder after its first sync of a log it
            // made; a batch makes none, so the log's name is made durable
            // here, once, by whoever made it (it lives as long as the store).
            crate::fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")))
                .map_err(|e| db.io_error(&wal, e))?;
        }
        Ok(db)
    }

    fn io_error(&self, at: &Path, e: std::io::Error) -> MetaError {
        MetaError::Io {
            path: at.to_owned(),
            source: e,
        }
    }

    fn migrate(&self) -> Result<(), MetaError> {
        let known = MIGRATIONS.len() as u32;
        // Up to date, as nearly always: no write lock needed to learn that.
        let current: u32 = self
            .conn
            .borrow()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.sqlite_error(e))?;
        if current == known {
            return Ok(());
        }
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
        f: impl FnMut(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, MetaError> {
        self.transaction(TransactionBehavior::Immediate, f)
    }

    /// Runs `f`, whose write transactions commit without waiting for the
    /// disk, then makes them all durable with one fsync of the log (unless
    /// it is left to another process: [`Db::leave_sync`]): an operation
    /// that commits several times (make a snapshot, then record the
    /// container) pays for one. A crash before that fsync may lose
    /// the batch's last commits, never an earlier one without a later (the
    /// log replays as a prefix), and leaves a state that a killed process
    /// leaves too, which the store's recovery already repairs. Batches nest.
    pub fn batch<T, E: From<MetaError>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        if self.in_batch.get() {
            return f();
        }
        // NORMAL: commits append to the log without an fsync; checkpoints
        // still sync, so the database stays consistent.
        self.set_synchronous("NORMAL")?;
        let open = OpenBatch::begin(self);
        let result = f();
        let synced = open.close().and_then(|()| self.end_batch());
        let value = result?;
        synced?;
        Ok(value)
    }

    /// A batch's fsync: now, or pending if it is left ([`Db::leave_sync`]).
    fn end_batch(&self) -> Result<(), MetaError> {
        if self.sync_left.get() {
            self.unsynced.set(true);
            return Ok(());
        }
        self.sync_log()
    }

    /// From now on, batches end without their fsync: a process that
    /// outlives this one takes it over ([`Db::sync_handed_over`]), so a
    /// command returns without waiting for the disk. Unless it does, the
    /// connection syncs the log when it closes. What a batch committed is
    /// seen by every process at once either way; only a crash of the
    /// machine before the sync can lose it, which leaves what a crash
    /// inside a batch leaves (see [`Db::batch`]).
    pub fn leave_sync(&self) {
        self.sync_left.set(true);
    }

    /// Another process syncs the log after this one's last commit (with
    /// [`sync_log`]), before it acts on them (deletes what they let go).
    pub fn sync_handed_over(&self) {
        self.unsynced.set(false);
    }

    fn set_synchronous(&self, level: &str) -> Result<(), MetaError> {
        self.conn
            .borrow()
            .pragma_update(None, "synchronous", level)
            .map_err(|e| self.sqlite_error(e))
    }

    /// Syncs the log if a batch left its sync and nobody took it over.
    pub fn sync_pending(&self) -> Result<(), MetaError> {
        match self.unsynced.get() {
            true => self.sync_log(),
            false => Ok(()),
        }
    }

    fn sync_log(&self) -> Result<(), MetaError> {
        self.unsynced.set(false);
        sync_log(&self.path).map_err(|e| self.io_error(&wal_path(&self.path), e))
    }

    /// Runs `f` in a read transaction: one consistent view across queries.
    pub fn read<T>(
        &self,
        f: impl FnMut(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, MetaError> {
        self.transaction(TransactionBehavior::Deferred, f)
    }

    /// Runs `f` in a transaction, again from the start if the database is
    /// busy (see [`retry_busy`]); a rolled-back transaction is safe to repeat.
    fn transaction<T>(
        &self,
        behavior: TransactionBehavior,
        mut f: impl FnMut(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, MetaError> {
        retry_busy(|| {
            let mut conn = self.conn.borrow_mut();
            let tx = conn.transaction_with_behavior(behavior)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .map_err(|e| self.sqlite_error(e))
    }

    fn sqlite_error(&self, source: rusqlite::Error) -> MetaError {
        MetaError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.sync_pending() {
            tracing::warn!("{e}");
        }
    }
}

/// Makes every commit in the log of the database at `db` durable (none is
/// lost if the log is gone: a checkpoint moved them into the database,
/// which it synced).
pub fn sync_log(db: &Path) -> std::io::Result<()> {
    match std::fs::File::open(wal_path(db)) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A running [`Db::batch`]. Dropped without [`OpenBatch::close`] (the
/// batch panicked, in a process that lives on), it still puts every
/// commit back to waiting for the disk.
struct OpenBatch<'a>(&'a Db);

impl<'a> OpenBatch<'a> {
    fn begin(db: &'a Db) -> OpenBatch<'a> {
        db.in_batch.set(true);
        OpenBatch(db)
    }

    fn close(self) -> Result<(), MetaError> {
        let ended = self.end();
        std::mem::forget(self);
        ended
    }

    fn end(&self) -> Result<(), MetaError> {
        self.0.in_batch.set(false);
        self.0.set_synchronous("FULL")
    }
}

impl Drop for OpenBatch<'_> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// SQLite's log beside the database.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
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

/// A JSON text column (labels, options) as a value; a damaged column reads
/// as an error rather than as empty, so nothing is silently dropped.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row,
    i: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A value as the text of a JSON column.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("maps of strings serialize")
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

    #[test]
    fn an_up_to_date_store_opens_while_another_process_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        let writer = Db::open(&path).unwrap();
        let conn = writer.conn.borrow();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let reader = Db::open(&path).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "opening waited");
        assert_eq!(reader.read(|tx| settings::get(tx, "driver")).unwrap(), None);
        conn.execute_batch("ROLLBACK").unwrap();
    }

    fn driver(db: &Db) -> Option<String> {
        db.read(|tx| settings::get(tx, "driver")).unwrap()
    }

    fn set_driver(db: &Db, value: &str) -> Result<(), MetaError> {
        db.write(|tx| settings::set(tx, "driver", value))
    }

    #[test]
    fn a_batch_commits_each_write_and_syncs_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        let db = Db::open(&path).unwrap();
        let synchronous = |db: &Db| -> i64 {
            db.conn
                .borrow()
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        let full = synchronous(&db);
        db.batch(|| {
            set_driver(&db, "vfs")?;
            // Inside: commits do not wait for the disk, and nest.
            assert!(synchronous(&db) < full);
            db.batch(|| set_driver(&db, "overlay"))?;
            assert_eq!(driver(&db).as_deref(), Some("overlay"));
            Ok::<_, MetaError>(())
        })
        .unwrap();
        assert_eq!(synchronous(&db), full);
        // A batch that fails keeps what it committed before failing.
        let failed: Result<(), MetaError> = db.batch(|| {
            set_driver(&db, "vfs")?;
            db.write(|tx| tx.execute_batch("INSERT INTO no_such_table VALUES (1)"))
        });
        assert!(failed.is_err());
        assert_eq!(synchronous(&db), full);
        // A batch that panics, in a process that lives on, restores it too.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.batch(|| -> Result<(), MetaError> { panic!("in a batch") });
        }));
        assert!(panicked.is_err());
        assert_eq!(synchronous(&db), full);
        drop(db);
        assert_eq!(driver(&Db::open(&path).unwrap()).as_deref(), Some("vfs"));
    }

    #[test]
    fn a_batch_can_leave_its_sync_to_whoever_takes_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        let db = Db::open(&path).unwrap();
        db.batch(|| set_driver(&db, "vfs")).unwrap();
        assert!(!db.unsynced.get(), "a batch syncs at its end");
        db.leave_sync();
        db.batch(|| set_driver(&db, "overlay")).unwrap();
        assert!(db.unsynced.get(), "its sync is left pending");
        // Its commits are there for every process at once.
        assert_eq!(
            driver(&Db::open(&path).unwrap()).as_deref(),
            Some("overlay")
        );
        db.sync_pending().unwrap();
        assert!(!db.unsynced.get());
        // Handed over to another process: this one no longer owes it.
        db.batch(|| set_driver(&db, "vfs")).unwrap();
        db.sync_handed_over();
        assert!(!db.unsynced.get());
        sync_log(&path).unwrap();
        assert_eq!(driver(&Db::open(&path).unwrap()).as_deref(), Some("vfs"));
    }
}
