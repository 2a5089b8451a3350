//! `fieldValidation=Strict`: fields the object's type does not have are an
//! error rather than silently dropped (kubectl asks for this by default
//! once the server says it supports it, see server/openapi.rs).
//!
//! Found by decoding into the k8s-openapi type, encoding again, and
//! comparing: whatever did not survive the round trip is unknown.

use k8s_openapi::api::core::v1::{
    Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::kinds::Kind;

/// Paths (`spec.foo`) of the fields in `body` that `kind` does not have.
/// A body that does not decode at all is left to validation.
pub fn unknown_fields(kind: Kind, body: &Value) -> Vec<String> {
    let Some(known) = round_trip(kind, body) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    compare(body, &known, "", &mut unknown);
    unknown
}

fn round_trip(kind: Kind, body: &Value) -> Option<Value> {
    match kind {
        Kind::Namespace => through::<Namespace>(body),
        Kind::Node => through::<Node>(body),
        Kind::Pod => through::<Pod>(body),
        Kind::PersistentVolume => through::<PersistentVolume>(body),
        Kind::PersistentVolumeClaim => through::<PersistentVolumeClaim>(body),
        Kind::Event => through::<Event>(body),
        Kind::StorageClass => through::<StorageClass>(body),
        Kind::CsiDriver => through::<CSIDriver>(body),
    }
}

fn through<T: DeserializeOwned + Serialize>(body: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(body.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

fn compare(given: &Value, known: &Value, path: &str, unknown: &mut Vec<String>) {
    match (given, known) {
        (Value::Object(given), Value::Object(known)) => {
            for (key, value) in given {
                // Patch directives are not fields.
                if key.starts_with('$') {
                    continue;
                }
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(survived) => compare(value, survived, &here, unknown),
                    // Empty values vanish in the round trip without being
                    // unknown.
                    None if !is_empty(value) => unknown.push(here),
                    None => {}
                }
            }
        }
        (Value::Array(given), Value::Array(known)) => {
            for (i, (g, k)) in given.iter().zip(known).enumerate() {
                compare(g, k, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(o) => o.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(kind: Kind, body: Value, expected: &[&str]) {
        assert_eq!(unknown_fields(kind, &body), expected, "{body}");
    }

    #[test]
    fn fields_the_type_lacks_are_reported_by_path() {
        let claim = |spec: Value| json!({"metadata": {"name": "c"}, "spec": spec});
        check(
            Kind::PersistentVolumeClaim,
            claim(
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
            ),
            &[],
        );
        check(
            Kind::PersistentVolumeClaim,
            claim(json!({"accessModes": ["ReadWriteOnce"], "sise": "1Gi"})),
            &["spec.sise"],
        );
        check(
            Kind::Pod,
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x", "mounts": [1]}]}}),
            &["spec.containers[0].mounts"],
        );
        check(
            Kind::StorageClass,
            json!({"metadata": {"name": "s", "labels": {}}, "provisioner": "p", "params": {"a": "b"}, "extra": null}),
            &["params"],
        );
        // Directives of a strategic merge patch are not fields.
        check(
            Kind::Pod,
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}]}}),
            &[],
        );
    }
}
