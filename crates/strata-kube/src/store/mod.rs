//! Where API objects live: the `ObjectStore` seam and its SQLite
//! implementation.
//!
//! The store is deliberately dumb: it keeps JSON bodies under
//! (kind, namespace, name), hands out a global, monotonic resourceVersion on
//! every write, refuses a write whose expected version is stale (409), and
//! lets callers watch every change from a version on. Defaults, validation,
//! finalizers and subresources live above it, in `registry`.

mod sqlite;
mod watch;

use std::sync::Arc;

use serde_json::Value;

use crate::kinds::Kind;

pub use sqlite::SqliteStore;
pub use watch::{Watch, WatchHub};

/// Where one object lives. `namespace` is empty for cluster-scoped kinds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `ns/name`, or `name` for cluster-scoped objects: how messages name it.
    pub fn display_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// One stored object: its body carries `metadata.resourceVersion` equal to
/// `resource_version`.
#[derive(Clone, Debug)]
pub struct Object {
    pub key: ObjectKey,
    pub resource_version: u64,
    pub body: Arc<Value>,
}

/// A consistent list: every object of a kind as of `revision`.
#[derive(Debug)]
pub struct Listing {
    pub items: Vec<Object>,
    pub revision: u64,
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    /// The `type` of a Kubernetes watch event.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it. For `Deleted`, `object` is the last
/// state with the deletion's resourceVersion.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub change: Change,
    pub object: Object,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{} \"{}\" not found", .0.kind, .0.display_name())]
    NotFound(ObjectKey),
    #[error("{} \"{}\" already exists", .0.kind, .0.display_name())]
    AlreadyExists(ObjectKey),
    #[error(
        "the object has been modified; please apply your changes to the latest version and try again (expected resourceVersion {expected}, stored {stored})"
    )]
    Conflict {
        key: ObjectKey,
        expected: u64,
        stored: u64,
    },
    #[error(
        "too old resource version: {requested} (oldest still known is {oldest}); list again and watch from the list's resourceVersion"
    )]
    Gone { requested: u64, oldest: u64 },
    #[error("object store database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("object store: stored {key:?} is not valid JSON: {source}")]
    Corrupt {
        key: ObjectKey,
        source: serde_json::Error,
    },
}

/// The seam between the API machinery and wherever objects are kept
/// (SQLite embedded; etcd would be another implementation).
///
/// Every write bumps the store's revision by one and stamps the body's
/// `metadata.resourceVersion` with it; watchers see writes in revision order.
pub trait ObjectStore: Send + Sync {
    /// The revision of the latest write.
    fn revision(&self) -> u64;

    fn get(&self, key: &ObjectKey) -> Option<Object>;

    /// Every object of `kind`, in one namespace or (None) all of them,
    /// ordered by namespace then name.
    fn list(&self, kind: Kind, namespace: Option<&str>) -> Listing;

    /// Stores a new object; `AlreadyExists` if the key is taken.
    fn create(&self, key: &ObjectKey, body: Value) -> Result<Object, StoreError>;

    /// Replaces an object. With `expected`, refuses (`Conflict`) unless the
    /// stored resourceVersion is exactly that.
    fn update(
        &self,
        key: &ObjectKey,
        body: Value,
        expected: Option<u64>,
    ) -> Result<Object, StoreError>;

    /// Removes an object, returning its last state stamped with the
    /// deletion's revision. `expected` as for `update`.
    fn delete(&self, key: &ObjectKey, expected: Option<u64>) -> Result<Object, StoreError>;

    /// Changes after revision `since` to objects of `kind` (None: every
    /// kind) in `namespace` (None: all). `Gone` if changes after `since` are
    /// no longer known.
    fn watch(
        &self,
        kind: Option<Kind>,
        namespace: Option<&str>,
        since: u64,
    ) -> Result<Watch, StoreError>;
}

/// Writes `rv` into `body.metadata.resourceVersion` (as Kubernetes does: a
/// string).
pub fn stamp_resource_version(body: &mut Value, rv: u64) {
    if let Some(meta) = body
        .as_object_mut()
        .map(|o| {
            o.entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()))
        })
        .and_then(Value::as_object_mut)
    {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}
