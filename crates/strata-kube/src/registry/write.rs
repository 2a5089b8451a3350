//! Create, update, patch and delete, with Kubernetes' rules.

use serde_json::Value;

use super::Registry;
use super::meta::{self, metadata_mut};
use crate::admission;
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::patch::{self, PatchKind};
use crate::store::{Object, ObjectKey, StoreError};

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// Metadata and spec; the stored status is kept (kinds with `/status`).
    Main,
    /// Only the status; everything else is kept.
    Status,
    /// Everything at once: the in-process controllers' write.
    All,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// Preconditions: delete only if the object still has this UID / version.
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
    /// `0` deletes a pod at once instead of asking its node to stop it.
    pub grace_period_seconds: Option<i64>,
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; its last state.
    Removed(Object),
    /// Finalizers (or a running pod) hold it: it now has a
    /// `deletionTimestamp` and goes away when they are done.
    Marked(Object),
}

/// How often a patch is retried when another writer got in between.
const PATCH_ATTEMPTS: usize = 5;

impl Registry {
    /// Creates an object in `namespace` ("" for cluster-scoped kinds).
    pub fn create(
        &self,
        kind: Kind,
        namespace: &str,
        mut body: Value,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        check_type(kind, &body)?;
        let namespace = self.place(kind, namespace, &body)?;
        self.require_namespace(kind, &namespace)?;
        prepare_for_create(kind, &namespace, &mut body);
        admission::apply_defaults(kind, &mut body);
        self.admit_create(kind, &mut body)?;
        let name = meta::str_field(&body, "name")
            .unwrap_or_default()
            .to_string();
        let causes = admission::validate_create(kind, &body);
        if !causes.is_empty() {
            return Err(ApiError::invalid(kind, &name, causes));
        }
        let key = ObjectKey::new(kind, &namespace, &name);
        if dry_run {
            return match self.store.get(&key) {
                Some(_) => Err(StoreError::AlreadyExists(key).into()),
                None => Ok(unsaved(key, body)),
            };
        }
        Ok(self.store.create(&key, body)?)
    }

    /// Replaces an object (PUT), or its status (PUT …/status).
    pub fn update(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        body: Value,
        part: Subresource,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        check_type(kind, &body)?;
        let expected = meta::resource_version(&body).map_err(ApiError::BadRequest)?;
        let old = self.get(kind, namespace, name)?;
        if let Some(given) = meta::str_field(&body, "name")
            && given != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        self.replace(&old, body, part, expected, dry_run)
    }

    /// The controllers' write: the whole object (spec and status at once),
    /// with its resourceVersion as the precondition.
    pub fn save(&self, kind: Kind, body: Value) -> Result<Object, ApiError> {
        let namespace = meta::str_field(&body, "namespace")
            .unwrap_or_default()
            .to_string();
        let name = meta::str_field(&body, "name")
            .unwrap_or_default()
            .to_string();
        self.update(kind, &namespace, &name, body, Subresource::All, false)
    }

    /// Applies a patch of `patch_kind` to an object. Server-side apply
    /// creates the object when it does not exist; `bool` says it did.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        patch_kind: PatchKind,
        patch_body: &[u8],
        part: Subresource,
        dry_run: bool,
    ) -> Result<(Object, bool), ApiError> {
        for attempt in 1..=PATCH_ATTEMPTS {
            let old = match self.get(kind, namespace, name) {
                Ok(old) => old,
                Err(ApiError::NotFound { .. }) if patch_kind == PatchKind::Apply => {
                    let body = patch::parse_apply_body(patch_body)?;
                    if meta::str_field(&body, "name") != Some(name) {
                        return Err(ApiError::BadRequest(format!(
                            "the name of the applied object does not match the name on the URL ({name})"
                        )));
                    }
                    return Ok((self.create(kind, namespace, body, dry_run)?, true));
                }
                Err(e) => return Err(e),
            };
            let patched = patch::apply_patch(kind, patch_kind, &old.body, patch_body)?;
            check_type(kind, &patched)?;
            // A resourceVersion inside the patch is the client's precondition;
            // otherwise the patch applies to whatever is stored now.
            let pinned = meta::resource_version(&patched)
                .map_err(ApiError::BadRequest)?
                .filter(|rv| *rv != old.resource_version);
            let expected = pinned.unwrap_or(old.resource_version);
            match self.replace(&old, patched, part, Some(expected), dry_run) {
                Err(ApiError::Conflict { .. }) if pinned.is_none() && attempt < PATCH_ATTEMPTS => {
                    continue;
                }
                result => return result.map(|o| (o, false)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Deletes an object: at once, or by marking it while finalizers (or a
    /// pod's node) still have work to do.
    pub fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let old = self.get(kind, namespace, name)?;
        check_preconditions(&old, options)?;
        if kind == Kind::Namespace {
            self.delete_namespace_contents(name, options)?;
        }
        let graceful = kind == Kind::Pod
            && old.body.pointer("/spec/nodeName").is_some_and(|n| n != "")
            && options.grace_period_seconds != Some(0);
        let held = graceful
            || !meta::finalizers(&old.body).is_empty()
            || (kind == Kind::Namespace && self.namespace_has_objects(name));
        if !held || (kind == Kind::Pod && options.grace_period_seconds == Some(0)) {
            if options.dry_run {
                return Ok(Deleted::Removed(old));
            }
            return Ok(Deleted::Removed(
                self.store.delete(&old.key, Some(old.resource_version))?,
            ));
        }
        if meta::str_field(&old.body, "deletionTimestamp").is_some() || options.dry_run {
            return Ok(Deleted::Marked(old));
        }
        let mut body = (*old.body).clone();
        let meta = metadata_mut(&mut body);
        meta.insert("deletionTimestamp".into(), meta::now().into());
        let grace = if graceful {
            options.grace_period_seconds.unwrap_or_else(|| {
                old.body
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            })
        } else {
            0
        };
        meta.insert("deletionGracePeriodSeconds".into(), grace.into());
        if kind == Kind::Namespace {
            body["status"]["phase"] = "Terminating".into();
        }
        Ok(Deleted::Marked(self.store.update(
            &old.key,
            body,
            Some(old.resource_version),
        )?))
    }

    /// Writes `new` over `old` with the rules of an update.
    fn replace(
        &self,
        old: &Object,
        mut new: Value,
        part: Subresource,
        expected: Option<u64>,
        dry_run: bool,
    ) -> Result<Object, ApiError> {
        let kind = old.key.kind;
        new = merge_part(kind, &old.body, new, part);
        keep_system_metadata(&old.body, &mut new);
        admission::apply_defaults(kind, &mut new);
        if part != Subresource::Status {
            self.admit_update(kind, &old.body, &mut new)?;
        }
        let causes = admission::validate_update(kind, &old.body, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(kind, &old.key.name, causes));
        }
        if old.body.get("spec") != new.get("spec") {
            let generation = old
                .body
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            metadata_mut(&mut new).insert("generation".into(), (generation + 1).into());
        }
        if let Some(expected) = expected
            && expected != old.resource_version
        {
            return Err(StoreError::Conflict {
                key: old.key.clone(),
                expected,
                stored: old.resource_version,
            }
            .into());
        }
        if dry_run {
            return Ok(unsaved(old.key.clone(), new));
        }
        // The last finalizer of an object being deleted lets it go.
        let finished = meta::str_field(&new, "deletionTimestamp").is_some()
            && meta::finalizers(&new).is_empty()
            && !(kind == Kind::Pod && graceful_pod_pending(&new))
            && !(kind == Kind::Namespace && self.namespace_has_objects(&old.key.name));
        let expected = Some(old.resource_version);
        if finished {
            self.store.update(&old.key, new, expected)?;
            return Ok(self.store.delete(&old.key, None)?);
        }
        Ok(self.store.update(&old.key, new, expected)?)
    }

    /// The namespace an object goes in: the URL's, which the body may repeat
    /// but not contradict.
    fn place(&self, kind: Kind, namespace: &str, body: &Value) -> Result<String, ApiError> {
        if !kind.info().namespaced {
            return Ok(String::new());
        }
        match meta::str_field(body, "namespace") {
            Some(given) if !given.is_empty() && given != namespace => {
                Err(ApiError::BadRequest(format!(
                    "the namespace of the provided object ({given}) does not match the namespace sent on the request ({namespace})"
                )))
            }
            _ => Ok(namespace.to_string()),
        }
    }

    fn namespace_has_objects(&self, namespace: &str) -> bool {
        Kind::ALL
            .into_iter()
            .filter(|k| k.info().namespaced)
            .any(|k| !self.store.list(k, Some(namespace)).items.is_empty())
    }

    fn delete_namespace_contents(
        &self,
        namespace: &str,
        options: &DeleteOptions,
    ) -> Result<(), ApiError> {
        if super::BUILTIN_NAMESPACES.contains(&namespace) {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{namespace}\" is forbidden: this namespace may not be deleted"
            )));
        }
        let inner = DeleteOptions {
            dry_run: options.dry_run,
            ..DeleteOptions::default()
        };
        for kind in Kind::ALL.into_iter().filter(|k| k.info().namespaced) {
            for object in self.store.list(kind, Some(namespace)).items {
                match self.delete(kind, namespace, &object.key.name, &inner) {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// A pod being deleted stays until its node has stopped it, which the node
/// agent says by deleting it with a zero grace period.
fn graceful_pod_pending(body: &Value) -> bool {
    body.pointer("/spec/nodeName").is_some_and(|n| n != "")
}

fn unsaved(key: ObjectKey, body: Value) -> Object {
    Object {
        key,
        resource_version: 0,
        body: body.into(),
    }
}

/// The body must be an object of the URL's kind.
fn check_type(kind: Kind, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the body must be a JSON object describing a {kind}"
        )));
    }
    if let Some(given) = body.get("kind").and_then(Value::as_str)
        && given != kind.as_str()
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({given}) does not match the kind of the URL ({kind})"
        )));
    }
    if let Some(given) = body.get("apiVersion").and_then(Value::as_str)
        && given != kind.api_version()
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({given}) does not match the expected API version ({})",
            kind.api_version()
        )));
    }
    Ok(())
}

/// What a new object gets from the server, whatever the client sent.
fn prepare_for_create(kind: Kind, namespace: &str, body: &mut Value) {
    body["kind"] = kind.as_str().into();
    body["apiVersion"] = kind.api_version().into();
    // Status is the system's to write; nodes report their own (as kubelets
    // do when they register).
    if kind.info().status_subresource
        && kind != Kind::Node
        && let Some(object) = body.as_object_mut()
    {
        object.remove("status");
    }
    let meta = metadata_mut(body);
    if meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
        meta.insert("name".into(), format!("{prefix}{suffix}").into());
    }
    if kind.info().namespaced {
        meta.insert("namespace".into(), namespace.into());
    } else {
        meta.remove("namespace");
    }
    meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
    meta.insert("creationTimestamp".into(), meta::now().into());
    meta.insert("generation".into(), 1.into());
    for system in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(system);
    }
}

/// The new body for a write to `part`: status writes keep everything but the
/// status, main writes keep the status (for kinds that split them).
fn merge_part(kind: Kind, old: &Value, new: Value, part: Subresource) -> Value {
    if !kind.info().status_subresource {
        return new;
    }
    match part {
        Subresource::All => new,
        Subresource::Main => with_status_of(new, old),
        Subresource::Status => with_status_of(old.clone(), &new),
    }
}

/// `body` with `source`'s status (or none, if `source` has none).
fn with_status_of(mut body: Value, source: &Value) -> Value {
    match source.get("status") {
        Some(status) => body["status"] = status.clone(),
        None => {
            if let Some(object) = body.as_object_mut() {
                object.remove("status");
            }
        }
    }
    body
}

/// Fields only the server sets survive any write.
fn keep_system_metadata(old: &Value, new: &mut Value) {
    let old_meta = meta::metadata(old).cloned().unwrap_or_default();
    let meta = metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    ] {
        match old_meta.get(field) {
            Some(value) => meta.insert(field.into(), value.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("managedFields");
    meta.remove("resourceVersion");
}

fn check_preconditions(old: &Object, options: &DeleteOptions) -> Result<(), ApiError> {
    let uid = meta::str_field(&old.body, "uid").unwrap_or_default();
    let why = if let Some(want) = options.uid.as_deref().filter(|w| *w != uid) {
        format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}")
    } else if let Some(want) = options
        .resource_version
        .filter(|rv| *rv != old.resource_version)
    {
        format!(
            "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
            old.resource_version
        )
    } else {
        return Ok(());
    };
    Err(ApiError::Conflict {
        kind: old.key.kind,
        name: old.key.name.clone(),
        why,
    })
}
