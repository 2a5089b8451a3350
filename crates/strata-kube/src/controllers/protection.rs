//! The protection finalizers: a claim being deleted stays while a scheduled,
//! running pod uses it; a volume being deleted stays while it is Bound. And
//! a namespace being deleted goes once the last object in it has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::informer::{Informer, Next};
use crate::kinds::Kind;
use crate::registry::{Filter, PV_PROTECTION, PVC_PROTECTION, Registry, meta};
use crate::store::{Change, Object};

const KINDS: &[Kind] = &[
    Kind::PersistentVolume,
    Kind::PersistentVolumeClaim,
    Kind::Pod,
    Kind::Namespace,
];

pub fn run(registry: Registry, stop: Arc<AtomicBool>) {
    let (mut informer, objects) = Informer::start(&registry, KINDS);
    for object in &objects {
        check(&registry, object);
    }
    while !stop.load(Ordering::Relaxed) {
        match informer.next(Duration::from_millis(500)) {
            Next::Changed(event) if event.change == Change::Deleted => {
                if event.object.key.kind == Kind::Pod {
                    check_claims_of(&registry, &event.object);
                }
                finish_namespace(&registry, &event.object.key.namespace);
            }
            Next::Changed(event) => {
                check(&registry, &event.object);
                if event.object.key.kind == Kind::Pod && pod_finished(&event.object.body) {
                    check_claims_of(&registry, &event.object);
                }
            }
            Next::Relisted(objects) => objects.iter().for_each(|o| check(&registry, o)),
            Next::Idle => {}
        }
    }
}

fn check(registry: &Registry, object: &Object) {
    let body = &object.body;
    if meta::str_field(body, "deletionTimestamp").is_none() {
        return;
    }
    let release = match object.key.kind {
        Kind::PersistentVolume => {
            body.pointer("/status/phase").and_then(Value::as_str) != Some("Bound")
                && has(body, PV_PROTECTION)
        }
        Kind::PersistentVolumeClaim => {
            has(body, PVC_PROTECTION)
                && !claim_in_use(registry, &object.key.namespace, &object.key.name)
        }
        Kind::Namespace => {
            finish_namespace(registry, &object.key.name);
            false
        }
        _ => false,
    };
    if release {
        let finalizer = match object.key.kind {
            Kind::PersistentVolume => PV_PROTECTION,
            _ => PVC_PROTECTION,
        };
        if let Err(e) = remove_finalizer(registry, object, finalizer) {
            tracing::info!(
                "releasing {}: {e}; retried on its next change",
                object.key.display_name()
            );
        }
    }
}

fn has(body: &Value, finalizer: &str) -> bool {
    meta::finalizers(body).iter().any(|f| f == finalizer)
}

/// Removes `finalizer` from `object` (a write the registry may turn into
/// the final delete).
pub fn remove_finalizer(
    registry: &Registry,
    object: &Object,
    finalizer: &str,
) -> Result<(), crate::ApiError> {
    let mut body = (*object.body).clone();
    if let Some(list) = body
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f != finalizer);
    }
    registry.save(object.key.kind, body).map(|_| ())
}

/// The claims a pod names, checked again now that it is gone or finished.
fn check_claims_of(registry: &Registry, pod: &Object) {
    for claim in claims_of(&pod.body) {
        if let Ok(claim) = registry.get(Kind::PersistentVolumeClaim, &pod.key.namespace, &claim) {
            check(registry, &claim);
        }
    }
}

pub fn claims_of(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName")?.as_str())
        .map(String::from)
        .collect()
}

fn pod_finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// Whether a scheduled pod that has not finished uses the claim.
fn claim_in_use(registry: &Registry, namespace: &str, claim: &str) -> bool {
    registry
        .list(Kind::Pod, Some(namespace), &Filter::default())
        .items
        .iter()
        .any(|pod| {
            pod.body.pointer("/spec/nodeName").is_some_and(|n| n != "")
                && !pod_finished(&pod.body)
                && claims_of(&pod.body).iter().any(|c| c == claim)
        })
}

/// Deletes a namespace being deleted if nothing is left in it (the
/// registry refuses while something is).
fn finish_namespace(registry: &Registry, namespace: &str) {
    if namespace.is_empty() {
        return;
    }
    let terminating = registry
        .get(Kind::Namespace, "", namespace)
        .is_ok_and(|ns| meta::str_field(&ns.body, "deletionTimestamp").is_some());
    if terminating {
        let _ = registry.delete(Kind::Namespace, "", namespace, &Default::default());
    }
}
