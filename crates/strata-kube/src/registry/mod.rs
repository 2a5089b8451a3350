//! The API machinery without HTTP: what happens to an object on its way into
//! and out of the store. Defaults, validation and admission on create;
//! optimistic concurrency, immutability, subresources and generation on
//! update; finalizers and `deletionTimestamp` on delete; selectors on list
//! and watch. The HTTP server and the in-process controllers both go
//! through it, so an object is treated the same whoever writes it.

mod admit;
pub mod events;
pub mod meta;
pub mod strict;
mod write;

use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::kinds::Kind;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Listing, Object, ObjectKey, ObjectStore, Watch};

pub use admit::{PV_PROTECTION, PVC_PROTECTION, choose_default_class};
pub use write::{DeleteOptions, Deleted, Subresource};

/// The namespaces every cluster starts with.
pub const BUILTIN_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Front door to the object store.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn ObjectStore>,
}

/// Which objects a list or watch wants.
#[derive(Default)]
pub struct Filter {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Filter {
    pub fn matches(&self, body: &Value) -> bool {
        let labels = body.pointer("/metadata/labels").and_then(Value::as_object);
        self.labels.as_ref().is_none_or(|s| s.matches(labels))
            && self.fields.as_ref().is_none_or(|s| s.matches(body))
    }
}

impl Registry {
    /// Wraps `store`, creating the built-in namespaces if they are missing.
    pub fn new(store: Arc<dyn ObjectStore>) -> Result<Registry, ApiError> {
        let registry = Registry { store };
        for name in BUILTIN_NAMESPACES {
            let key = ObjectKey::new(Kind::Namespace, "", name);
            if registry.store.get(&key).is_none() {
                let body = serde_json::json!({"metadata": {"name": name}});
                registry.create(Kind::Namespace, "", body, false)?;
            }
        }
        Ok(registry)
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Object, ApiError> {
        self.store
            .get(&ObjectKey::new(kind, namespace, name))
            .ok_or_else(|| ApiError::NotFound {
                kind,
                name: name.to_string(),
            })
    }

    /// Objects of `kind` in `namespace` (None: all) that `filter` accepts.
    pub fn list(&self, kind: Kind, namespace: Option<&str>, filter: &Filter) -> Listing {
        // A name selector is one lookup, not a scan (kubectl wait uses one).
        if let Some(name) = filter.fields.as_ref().and_then(FieldSelector::name)
            && let Some(ns) = namespace.or((!kind.info().namespaced).then_some(""))
        {
            let revision = self.store.revision();
            let items = self
                .store
                .get(&ObjectKey::new(kind, ns, name))
                .filter(|o| filter.matches(&o.body))
                .into_iter()
                .collect();
            return Listing { items, revision };
        }
        let mut listing = self.store.list(kind, namespace);
        if filter.labels.is_some() || filter.fields.is_some() {
            listing.items.retain(|o| filter.matches(&o.body));
        }
        listing
    }

    /// Changes after `since` to objects of `kind` in `namespace`.
    pub fn watch(
        &self,
        kind: Option<Kind>,
        namespace: Option<&str>,
        since: u64,
    ) -> Result<Watch, ApiError> {
        Ok(self.store.watch(kind, namespace, since)?)
    }

    fn require_namespace(&self, kind: Kind, namespace: &str) -> Result<(), ApiError> {
        if !kind.info().namespaced {
            return Ok(());
        }
        if namespace.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "{} objects live in a namespace; give one (for example `-n default`)",
                kind
            )));
        }
        match self
            .store
            .get(&ObjectKey::new(Kind::Namespace, "", namespace))
        {
            Some(_) => Ok(()),
            None => Err(ApiError::NotFound {
                kind: Kind::Namespace,
                name: namespace.to_string(),
            }),
        }
    }
}
