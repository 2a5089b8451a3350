//! The SQLite object store against the `ObjectStore` contract: revisions,
//! preconditions, ordering, persistence across reopen, and watches.

use std::path::Path;

use serde_json::{Value, json};
use strata_kube::store::{Change, StoreError, Watch};
use strata_kube::{Kind, ObjectKey, ObjectStore, SqliteStore};
use tempfile::TempDir;

fn key(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(kind, namespace, name)
}

fn pv(name: &str) -> ObjectKey {
    key(Kind::PersistentVolume, "", name)
}

fn pvc(namespace: &str, name: &str) -> ObjectKey {
    key(Kind::PersistentVolumeClaim, namespace, name)
}

fn body(key: &ObjectKey, note: &str) -> Value {
    json!({
        "kind": key.kind.as_str(),
        "metadata": {"name": key.name, "namespace": key.namespace},
        "note": note,
    })
}

fn store_dir() -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("objects.sqlite");
    (dir, path)
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).unwrap()
}

/// One write and what the store must answer.
enum Op {
    Create(ObjectKey, &'static str),
    Update(ObjectKey, &'static str, Option<u64>),
    Delete(ObjectKey, Option<u64>),
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Written at this revision, with this `note` in the returned body.
    Written(u64, String),
    NotFound,
    AlreadyExists,
    Conflict {
        expected: u64,
        stored: u64,
    },
}

/// Applies `ops` in order to a fresh store, checking each outcome, that a
/// returned body carries its resourceVersion, and that `get` then agrees.
fn check(ops: Vec<(Op, Outcome)>) {
    let (_dir, path) = store_dir();
    let store = open(&path);
    for (step, (op, expected)) in ops.into_iter().enumerate() {
        let (target, result) = match op {
            Op::Create(key, note) => (key.clone(), store.create(&key, body(&key, note))),
            Op::Update(key, note, rv) => (key.clone(), store.update(&key, body(&key, note), rv)),
            Op::Delete(key, rv) => (key.clone(), store.delete(&key, rv)),
        };
        let deleted = matches!(expected, Outcome::Written(..)) && store.get(&target).is_none();
        let outcome = match result {
            Ok(object) => {
                assert_eq!(object.key, target, "step {step}");
                assert_eq!(
                    object.body["metadata"]["resourceVersion"],
                    object.resource_version.to_string(),
                    "step {step}"
                );
                assert_eq!(store.revision(), object.resource_version, "step {step}");
                if !deleted {
                    let stored = store.get(&target).unwrap();
                    assert_eq!(stored.resource_version, object.resource_version);
                    assert_eq!(stored.body, object.body, "step {step}");
                }
                let note = object.body["note"].as_str().unwrap();
                Outcome::Written(object.resource_version, note.to_string())
            }
            Err(StoreError::NotFound(k)) if k == target => Outcome::NotFound,
            Err(StoreError::AlreadyExists(k)) if k == target => Outcome::AlreadyExists,
            Err(StoreError::Conflict {
                key,
                expected,
                stored,
            }) if key == target => Outcome::Conflict { expected, stored },
            Err(other) => panic!("step {step}: unexpected error {other}"),
        };
        assert_eq!(outcome, expected, "step {step}");
    }
}

fn written(revision: u64, note: &str) -> Outcome {
    Outcome::Written(revision, note.to_string())
}

#[test]
fn writes_follow_the_contract() {
    use Op::*;
    use Outcome::*;
    check(vec![
        (Create(pv("a"), "v1"), written(1, "v1")),
        (Create(pvc("ns", "a"), "claim"), written(2, "claim")),
        (Create(pv("a"), "again"), AlreadyExists),
        (Update(pv("a"), "v2", Some(1)), written(3, "v2")),
        (
            Update(pv("a"), "stale", Some(1)),
            Conflict {
                expected: 1,
                stored: 3,
            },
        ),
        (Update(pv("a"), "v3", None), written(4, "v3")),
        (Update(pv("missing"), "x", None), NotFound),
        (
            Delete(pv("a"), Some(3)),
            Conflict {
                expected: 3,
                stored: 4,
            },
        ),
        // The last state, stamped with the deletion's revision.
        (Delete(pv("a"), Some(4)), written(5, "v3")),
        (Delete(pv("a"), None), NotFound),
        (Update(pv("a"), "gone", None), NotFound),
        (Create(pv("a"), "reborn"), written(6, "reborn")),
        (Delete(pvc("other", "a"), None), NotFound),
        (Delete(pvc("ns", "a"), None), written(7, "claim")),
    ]);
}

#[test]
fn a_deleted_object_is_gone_from_get_and_list() {
    let (_dir, path) = store_dir();
    let store = open(&path);
    store.create(&pv("a"), body(&pv("a"), "")).unwrap();
    store.delete(&pv("a"), None).unwrap();
    assert!(store.get(&pv("a")).is_none());
    assert!(store.list(Kind::PersistentVolume, None).items.is_empty());
}

fn names(store: &SqliteStore, kind: Kind, namespace: Option<&str>) -> Vec<String> {
    let listing = store.list(kind, namespace);
    assert_eq!(listing.revision, store.revision());
    listing.items.iter().map(|o| o.key.display_name()).collect()
}

fn check_list(store: &SqliteStore, kind: Kind, namespace: Option<&str>, expected: &[&str]) {
    assert_eq!(
        names(store, kind, namespace),
        expected,
        "{kind} in {namespace:?}"
    );
}

#[test]
fn lists_are_per_kind_and_ordered_by_namespace_then_name() {
    let (_dir, path) = store_dir();
    let store = open(&path);
    let keys = [
        pvc("prod", "b"),
        pv("z"),
        pvc("dev", "c"),
        key(Kind::Pod, "prod", "a"),
        pvc("prod", "a"),
        pv("a"),
        pvc("dev", "a"),
        key(Kind::Pod, "dev", "a"),
        pvc("prod-2", "a"),
    ];
    for key in &keys {
        store.create(key, body(key, "")).unwrap();
    }
    check_list(
        &store,
        Kind::PersistentVolumeClaim,
        None,
        &["dev/a", "dev/c", "prod/a", "prod/b", "prod-2/a"],
    );
    check_list(
        &store,
        Kind::PersistentVolumeClaim,
        Some("prod"),
        &["prod/a", "prod/b"],
    );
    check_list(&store, Kind::PersistentVolumeClaim, Some("none"), &[]);
    check_list(&store, Kind::PersistentVolume, None, &["a", "z"]);
    check_list(&store, Kind::Pod, Some("dev"), &["dev/a"]);
    check_list(&store, Kind::StorageClass, None, &[]);
}

#[test]
fn reopening_gives_back_the_same_objects_and_revision() {
    let (_dir, path) = store_dir();
    let before: Vec<_> = {
        let store = open(&path);
        for (i, key) in [
            pv("a"),
            pv("b"),
            pvc("ns", "c"),
            key(Kind::Event, "ns", "e"),
        ]
        .iter()
        .enumerate()
        {
            store.create(key, body(key, &i.to_string())).unwrap();
        }
        store.update(&pv("a"), body(&pv("a"), "new"), None).unwrap();
        store.delete(&pv("b"), None).unwrap();
        Kind::ALL
            .into_iter()
            .flat_map(|kind| store.list(kind, None).items)
            .map(|o| (o.key, o.resource_version, o.body))
            .collect()
    };
    let store = open(&path);
    let after: Vec<_> = Kind::ALL
        .into_iter()
        .flat_map(|kind| store.list(kind, None).items)
        .map(|o| (o.key, o.resource_version, o.body))
        .collect();
    assert_eq!(after, before);
    assert_eq!(after.len(), 3);
    assert_eq!(store.revision(), 6);
}

/// The revision after each reopen of a store that ran `writes` first.
fn check_revision_after_reopen(writes: impl Fn(&SqliteStore), expected: u64) {
    let (_dir, path) = store_dir();
    writes(&open(&path));
    let store = open(&path);
    assert_eq!(store.revision(), expected);
    let next = store.create(&pv("next"), body(&pv("next"), "")).unwrap();
    assert_eq!(next.resource_version, expected + 1);
    drop(store);
    assert_eq!(open(&path).revision(), expected + 1);
}

#[test]
fn the_revision_never_goes_backwards_across_reopen() {
    check_revision_after_reopen(|_| {}, 0);
    check_revision_after_reopen(
        |s| {
            s.create(&pv("a"), body(&pv("a"), "")).unwrap();
            s.create(&pv("b"), body(&pv("b"), "")).unwrap();
        },
        2,
    );
    // Deleting the newest object leaves no row with the newest revision.
    check_revision_after_reopen(
        |s| {
            s.create(&pv("a"), body(&pv("a"), "")).unwrap();
            s.create(&pv("b"), body(&pv("b"), "")).unwrap();
            s.delete(&pv("b"), None).unwrap();
        },
        3,
    );
    // Deleting everything.
    check_revision_after_reopen(
        |s| {
            s.create(&pv("a"), body(&pv("a"), "")).unwrap();
            s.delete(&pv("a"), None).unwrap();
        },
        2,
    );
    // A delete followed by newer writes: the rows hold the newest revision.
    check_revision_after_reopen(
        |s| {
            s.create(&pv("a"), body(&pv("a"), "")).unwrap();
            s.delete(&pv("a"), None).unwrap();
            s.create(&pv("b"), body(&pv("b"), "")).unwrap();
            s.update(&pv("b"), body(&pv("b"), "x"), None).unwrap();
        },
        4,
    );
}

/// Events as `(change, "Kind ns/name", revision)`.
type Seen = (Change, String, u64);

fn drain(watch: &mut Watch) -> Vec<Seen> {
    let mut seen = Vec::new();
    while let Some(event) = watch.try_next().unwrap() {
        let object = &event.object;
        assert_eq!(
            object.body["metadata"]["resourceVersion"],
            object.resource_version.to_string()
        );
        seen.push((
            event.change,
            format!("{} {}", object.key.kind, object.key.display_name()),
            object.resource_version,
        ));
    }
    seen
}

fn seen(change: Change, what: &str, rv: u64) -> Seen {
    (change, what.to_string(), rv)
}

/// Seven writes, revisions 1 to 7.
fn write_history(store: &SqliteStore) {
    store.create(&pv("a"), body(&pv("a"), "")).unwrap();
    store
        .create(&pvc("ns1", "c"), body(&pvc("ns1", "c"), ""))
        .unwrap();
    store
        .create(&pvc("ns2", "d"), body(&pvc("ns2", "d"), ""))
        .unwrap();
    store
        .update(&pv("a"), body(&pv("a"), "bound"), None)
        .unwrap();
    store
        .update(&pvc("ns1", "c"), body(&pvc("ns1", "c"), "bound"), None)
        .unwrap();
    store.delete(&pvc("ns2", "d"), None).unwrap();
    store.delete(&pv("a"), None).unwrap();
}

/// A watch from `since` over `write_history`, then two live writes
/// (revisions 8 and 9), sees `expected`.
fn check_watch(kind: Option<Kind>, namespace: Option<&str>, since: u64, expected: &[Seen]) {
    let (_dir, path) = store_dir();
    let store = open(&path);
    write_history(&store);
    let mut watch = store.watch(kind, namespace, since).unwrap();
    store
        .create(&pvc("ns1", "live"), body(&pvc("ns1", "live"), ""))
        .unwrap();
    store.create(&pv("live"), body(&pv("live"), "")).unwrap();
    assert_eq!(
        drain(&mut watch),
        expected,
        "{kind:?} in {namespace:?} since {since}"
    );
}

#[test]
fn watches_replay_history_then_follow_live_writes() {
    use Change::*;
    check_watch(
        None,
        None,
        0,
        &[
            seen(Added, "PersistentVolume a", 1),
            seen(Added, "PersistentVolumeClaim ns1/c", 2),
            seen(Added, "PersistentVolumeClaim ns2/d", 3),
            seen(Modified, "PersistentVolume a", 4),
            seen(Modified, "PersistentVolumeClaim ns1/c", 5),
            seen(Deleted, "PersistentVolumeClaim ns2/d", 6),
            seen(Deleted, "PersistentVolume a", 7),
            seen(Added, "PersistentVolumeClaim ns1/live", 8),
            seen(Added, "PersistentVolume live", 9),
        ],
    );
    check_watch(
        None,
        None,
        5,
        &[
            seen(Deleted, "PersistentVolumeClaim ns2/d", 6),
            seen(Deleted, "PersistentVolume a", 7),
            seen(Added, "PersistentVolumeClaim ns1/live", 8),
            seen(Added, "PersistentVolume live", 9),
        ],
    );
    check_watch(
        Some(Kind::PersistentVolume),
        None,
        2,
        &[
            seen(Modified, "PersistentVolume a", 4),
            seen(Deleted, "PersistentVolume a", 7),
            seen(Added, "PersistentVolume live", 9),
        ],
    );
    check_watch(
        Some(Kind::PersistentVolumeClaim),
        Some("ns1"),
        0,
        &[
            seen(Added, "PersistentVolumeClaim ns1/c", 2),
            seen(Modified, "PersistentVolumeClaim ns1/c", 5),
            seen(Added, "PersistentVolumeClaim ns1/live", 8),
        ],
    );
    check_watch(
        None,
        Some("ns2"),
        0,
        &[
            seen(Added, "PersistentVolumeClaim ns2/d", 3),
            seen(Deleted, "PersistentVolumeClaim ns2/d", 6),
        ],
    );
    check_watch(
        None,
        None,
        7,
        &[
            seen(Added, "PersistentVolumeClaim ns1/live", 8),
            seen(Added, "PersistentVolume live", 9),
        ],
    );
    check_watch(Some(Kind::StorageClass), None, 0, &[]);
}

#[test]
fn a_deleted_event_carries_the_last_state() {
    let (_dir, path) = store_dir();
    let store = open(&path);
    store.create(&pv("a"), body(&pv("a"), "first")).unwrap();
    store
        .update(&pv("a"), body(&pv("a"), "last"), None)
        .unwrap();
    let mut watch = store.watch(None, None, store.revision()).unwrap();
    store.delete(&pv("a"), None).unwrap();
    let event = watch.try_next().unwrap().unwrap();
    assert_eq!(event.change, Change::Deleted);
    assert_eq!(event.object.resource_version, 3);
    assert_eq!(event.object.body["note"], "last");
    assert_eq!(event.object.body["metadata"]["resourceVersion"], "3");
}

#[tokio::test]
async fn a_live_watch_wakes_for_each_write() {
    let (_dir, path) = store_dir();
    let store = open(&path);
    let mut watch = store
        .watch(Some(Kind::PersistentVolume), None, store.revision())
        .unwrap();
    store
        .create(&pvc("ns", "c"), body(&pvc("ns", "c"), ""))
        .unwrap();
    store.create(&pv("a"), body(&pv("a"), "")).unwrap();
    let event = watch.next().await.unwrap().unwrap();
    assert_eq!(
        (event.change, event.object.resource_version),
        (Change::Added, 2)
    );
    assert!(watch.try_next().unwrap().is_none());
}

fn assert_gone(result: Result<impl Sized, StoreError>, requested: u64, oldest: u64) {
    match result {
        Err(StoreError::Gone {
            requested: r,
            oldest: o,
        }) => assert_eq!((r, o), (requested, oldest)),
        Err(other) => panic!("expected Gone, got {other}"),
        Ok(_) => panic!("expected Gone, got a watch"),
    }
}

#[test]
fn a_watch_from_before_the_history_is_gone() {
    let (_dir, path) = store_dir();
    let store = SqliteStore::open_with_watch_history(&path, 3).unwrap();
    write_history(&store);
    // History holds revisions 5, 6 and 7.
    assert_gone(store.watch(None, None, 3), 3, 4);
    assert_eq!(drain(&mut store.watch(None, None, 4).unwrap()).len(), 3);
    drop(store);
    // A restart forgets all history: only the current revision is watchable.
    let store = open(&path);
    assert_gone(store.watch(None, None, 6), 6, 7);
    assert!(drain(&mut store.watch(None, None, 7).unwrap()).is_empty());
}

#[test]
fn a_watcher_that_falls_too_far_behind_is_gone() {
    let (_dir, path) = store_dir();
    let store = SqliteStore::open_with_watch_history(&path, 3).unwrap();
    let mut watch = store.watch(None, None, 0).unwrap();
    for i in 0..10 {
        let key = pv(&format!("pv-{i}"));
        store.create(&key, body(&key, "")).unwrap();
    }
    assert!(matches!(watch.try_next(), Err(StoreError::Gone { .. })));
}
