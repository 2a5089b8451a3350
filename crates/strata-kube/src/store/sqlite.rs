//! The embedded ObjectStore on SQLite.
//!
//! Every object is kept in memory, loaded once at open, so reads never
//! touch SQLite; SQLite is the durable copy that writes go to first. A write
//! commits to SQLite, then updates memory, then tells watchers, all under
//! one lock, so a write that fails on disk changes nothing and watchers see
//! writes in revision order.
//!
//! Only one process (`strata serve`) may write the database file: the
//! in-memory copy does not see another writer's changes.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed write survives a
//! crash of the process; a power loss may lose the last few, never the
//! database's consistency.
//!
//! The revision is not stored on every write: each object row carries the
//! revision that wrote it, and the newest delete's revision has its own row,
//! so the revision is the larger of the two and never goes backwards across
//! a restart, even after deleting the newest object. That keeps a create or
//! update to one row, which is what makes a write cost tens of
//! microseconds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, params};
use serde_json::Value;

use super::{
    Change, Listing, Object, ObjectKey, ObjectStore, StoreError, Watch, WatchEvent, WatchHub,
    stamp_resource_version,
};
use crate::kinds::Kind;

/// How many changes `open` keeps for watches that start at an older
/// revision (and how far a live watcher may fall behind).
const DEFAULT_WATCH_HISTORY: usize = 20_000;

/// Schema migrations; `PRAGMA user_version` counts those applied. Append
/// only: a released migration never changes.
const MIGRATIONS: [&str; 1] = ["
    CREATE TABLE objects (
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        resource_version INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (kind, namespace, name)
    );
    -- The revision of the latest delete, which leaves no object row to
    -- carry it.
    CREATE TABLE last_delete (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        revision INTEGER NOT NULL
    );
    INSERT INTO last_delete (id, revision) VALUES (0, 0);
"];

const UPSERT_OBJECT: &str = "
    INSERT INTO objects (kind, namespace, name, resource_version, body)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (kind, namespace, name)
    DO UPDATE SET resource_version = excluded.resource_version, body = excluded.body";
const DELETE_OBJECT: &str = "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3";
const SET_LAST_DELETE: &str = "UPDATE last_delete SET revision = ?1 WHERE id = 0";
const CURRENT_REVISION: &str = "
    SELECT max(
        (SELECT coalesce(max(resource_version), 0) FROM objects),
        (SELECT revision FROM last_delete)
    )";

/// Objects kept in SQLite and served from memory. See the module docs.
pub struct SqliteStore {
    state: Mutex<State>,
}

/// Everything a write touches, behind one lock so disk, memory, revision
/// and watchers never disagree.
struct State {
    connection: Connection,
    objects: BTreeMap<ObjectKey, Object>,
    revision: u64,
    hub: WatchHub,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path` and
    /// loads every object, keeping `DEFAULT_WATCH_HISTORY` changes for
    /// watchers.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_watch_history(path, DEFAULT_WATCH_HISTORY)
    }

    /// Like `open`, keeping the last `capacity` (at least one) changes for
    /// watchers.
    pub fn open_with_watch_history(
        path: &Path,
        capacity: usize,
    ) -> Result<SqliteStore, StoreError> {
        let mut connection = Connection::open(path)?;
        configure(&connection)?;
        migrate(&mut connection)?;
        let revision = connection.query_row(CURRENT_REVISION, [], |row| row.get(0))?;
        let objects = load_objects(&connection)?;
        Ok(SqliteStore {
            state: Mutex::new(State {
                connection,
                objects,
                revision,
                hub: WatchHub::new(capacity.max(1)),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic under the lock cannot leave disk and memory disagreeing:
        // the one possible panic, serialising a body, comes before the disk
        // is touched, and allocation failure aborts. So the state is good.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection.busy_timeout(Duration::from_secs(5))?;
    // This pragma answers with the mode now in force, so it must be read.
    // A file system without shared memory keeps the old mode: slower, still
    // correct.
    connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    let applied: usize = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Database(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!(
                "schema version {applied} was written by a newer strata (this one knows up to {}); upgrade strata to open it",
                MIGRATIONS.len()
            )),
        )));
    }
    for migration in &MIGRATIONS[applied..] {
        transaction.execute_batch(migration)?;
    }
    transaction.pragma_update(None, "user_version", MIGRATIONS.len())?;
    transaction.commit()?;
    Ok(())
}

fn load_objects(connection: &Connection) -> Result<BTreeMap<ObjectKey, Object>, StoreError> {
    let mut statement =
        connection.prepare("SELECT kind, namespace, name, resource_version, body FROM objects")?;
    let mut rows = statement.query([])?;
    let mut objects = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let key = ObjectKey {
            kind: row.get(0)?,
            namespace: row.get(1)?,
            name: row.get(2)?,
        };
        let body = serde_json::from_slice(&row.get::<_, Vec<u8>>(4)?).map_err(|source| {
            StoreError::Corrupt {
                key: key.clone(),
                source,
            }
        })?;
        let object = Object {
            key: key.clone(),
            resource_version: row.get(3)?,
            body: Arc::new(body),
        };
        objects.insert(key, object);
    }
    Ok(objects)
}

/// Kinds are stored by their `kind` field, which is stable across releases.
impl ToSql for Kind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Kind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Kind> {
        let name = value.as_str()?;
        Kind::from_name(name)
            .ok_or_else(|| FromSqlError::Other(format!("unknown object kind {name:?}").into()))
    }
}

impl State {
    /// The stored object at `key`, if `expected` (when given) is its
    /// resourceVersion.
    fn current(&self, key: &ObjectKey, expected: Option<u64>) -> Result<&Object, StoreError> {
        let object = self
            .objects
            .get(key)
            .ok_or_else(|| StoreError::NotFound(key.clone()))?;
        match expected {
            Some(expected) if expected != object.resource_version => Err(StoreError::Conflict {
                key: key.clone(),
                expected,
                stored: object.resource_version,
            }),
            _ => Ok(object),
        }
    }

    /// Makes one change durable at the next revision, then applies it to
    /// memory and tells watchers. `body` is the new state, or for `Deleted`
    /// the last one.
    fn write(
        &mut self,
        change: Change,
        key: &ObjectKey,
        mut body: Value,
    ) -> Result<Object, StoreError> {
        let revision = self.revision + 1;
        stamp_resource_version(&mut body, revision);
        self.persist(change, key, &body, revision)?;
        self.revision = revision;
        let object = Object {
            key: key.clone(),
            resource_version: revision,
            body: Arc::new(body),
        };
        if change == Change::Deleted {
            self.objects.remove(key);
        } else {
            self.objects.insert(key.clone(), object.clone());
        }
        self.hub.publish(WatchEvent {
            change,
            object: object.clone(),
        });
        Ok(object)
    }

    /// Commits the change: one row for a create or update (a statement
    /// is its own transaction), a transaction of two for a delete.
    fn persist(
        &mut self,
        change: Change,
        key: &ObjectKey,
        body: &Value,
        revision: u64,
    ) -> Result<(), StoreError> {
        if change != Change::Deleted {
            // Serialising a `Value` into memory cannot fail: its keys are
            // strings and a Vec never refuses a write.
            let bytes = serde_json::to_vec(body).expect("a JSON value always serialises");
            self.connection
                .prepare_cached(UPSERT_OBJECT)?
                .execute(params![key.kind, key.namespace, key.name, revision, bytes])?;
            return Ok(());
        }
        let transaction = self.connection.transaction()?;
        transaction.prepare_cached(DELETE_OBJECT)?.execute(params![
            key.kind,
            key.namespace,
            key.name
        ])?;
        transaction
            .prepare_cached(SET_LAST_DELETE)?
            .execute([revision])?;
        transaction.commit()?;
        Ok(())
    }
}

impl ObjectStore for SqliteStore {
    fn revision(&self) -> u64 {
        self.state().revision
    }

    fn get(&self, key: &ObjectKey) -> Option<Object> {
        self.state().objects.get(key).cloned()
    }

    fn list(&self, kind: Kind, namespace: Option<&str>) -> Listing {
        let state = self.state();
        // Keys sort by kind, then namespace, then name, so one range holds
        // exactly the objects wanted, already in order.
        let start = ObjectKey::new(kind, namespace.unwrap_or(""), "");
        let items = state
            .objects
            .range(start..)
            .map(|(_, object)| object)
            .take_while(|object| {
                object.key.kind == kind && namespace.is_none_or(|ns| object.key.namespace == ns)
            })
            .cloned()
            .collect();
        Listing {
            items,
            revision: state.revision,
        }
    }

    fn create(&self, key: &ObjectKey, body: Value) -> Result<Object, StoreError> {
        let mut state = self.state();
        if state.objects.contains_key(key) {
            return Err(StoreError::AlreadyExists(key.clone()));
        }
        state.write(Change::Added, key, body)
    }

    fn update(
        &self,
        key: &ObjectKey,
        body: Value,
        expected: Option<u64>,
    ) -> Result<Object, StoreError> {
        let mut state = self.state();
        state.current(key, expected)?;
        state.write(Change::Modified, key, body)
    }

    fn delete(&self, key: &ObjectKey, expected: Option<u64>) -> Result<Object, StoreError> {
        let mut state = self.state();
        let last = Value::clone(&state.current(key, expected)?.body);
        state.write(Change::Deleted, key, last)
    }

    fn watch(
        &self,
        kind: Option<Kind>,
        namespace: Option<&str>,
        since: u64,
    ) -> Result<Watch, StoreError> {
        let state = self.state();
        state.hub.subscribe(kind, namespace, since, state.revision)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pv(name: &str) -> ObjectKey {
        ObjectKey::new(Kind::PersistentVolume, "", name)
    }

    /// Makes SQLite refuse every change to `objects`, until dropped.
    fn refuse_writes(store: &SqliteStore) {
        store
            .state()
            .connection
            .execute_batch(
                "CREATE TEMP TRIGGER refuse_insert BEFORE INSERT ON main.objects
                     BEGIN SELECT RAISE(ABORT, 'refused'); END;
                 CREATE TEMP TRIGGER refuse_update BEFORE UPDATE ON main.objects
                     BEGIN SELECT RAISE(ABORT, 'refused'); END;
                 CREATE TEMP TRIGGER refuse_delete BEFORE DELETE ON main.objects
                     BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
    }

    /// A write SQLite refuses leaves memory, revision and watchers as they
    /// were, and so does the database.
    fn check_refused(write: impl Fn(&SqliteStore) -> Result<Object, StoreError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("objects.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        store.create(&pv("a"), json!({"note": "kept"})).unwrap();
        let mut watch = store.watch(None, None, 1).unwrap();
        refuse_writes(&store);

        let error = write(&store).unwrap_err();
        assert!(error.to_string().contains("refused"), "{error}");
        assert_eq!(store.revision(), 1);
        assert_eq!(store.get(&pv("a")).unwrap().body["note"], "kept");
        assert!(store.get(&pv("b")).is_none());
        assert!(watch.try_next().unwrap().is_none());
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.revision(), 1);
        let kept: Vec<_> = store.list(Kind::PersistentVolume, None).items;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].body["note"], "kept");
    }

    #[test]
    fn a_write_refused_by_sqlite_changes_nothing() {
        check_refused(|s| s.create(&pv("b"), json!({})));
        check_refused(|s| s.update(&pv("a"), json!({"note": "lost"}), None));
        check_refused(|s| s.delete(&pv("a"), Some(1)));
    }

    /// Opening a database whose contents were written by `sql` fails with
    /// a message containing `expected`.
    fn check_open_fails(sql: &str, expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("objects.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let error = SqliteStore::open(&path).err().expect("open should fail");
        assert!(error.to_string().contains(expected), "{error}");
    }

    #[test]
    fn unusable_databases_are_refused_at_open() {
        check_open_fails(
            "PRAGMA user_version = 2",
            "schema version 2 was written by a newer strata (this one knows up to 1); upgrade strata to open it",
        );
        check_open_fails(
            "INSERT INTO objects VALUES ('PersistentVolume', '', 'a', 1, CAST('{' AS BLOB))",
            "object store: stored ObjectKey { kind: PersistentVolume, namespace: \"\", name: \"a\" } is not valid JSON",
        );
        check_open_fails(
            "INSERT INTO objects VALUES ('Widget', '', 'a', 1, CAST('{}' AS BLOB))",
            "unknown object kind \"Widget\"",
        );
    }

    #[test]
    fn kinds_are_stored_by_their_kind_field() {
        let connection = Connection::open_in_memory().unwrap();
        for kind in Kind::ALL {
            let (stored, back): (String, Kind) = connection
                .query_row("SELECT ?1, ?1", [kind], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .unwrap();
            assert_eq!((stored.as_str(), back), (kind.info().kind, kind));
        }
    }
}
