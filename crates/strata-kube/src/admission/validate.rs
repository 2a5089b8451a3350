//! Validation entry points, the checks every kind shares (decoding, names,
//! access modes, quantities, host paths) and the minimal checks of the
//! kinds Strata only stores (Node, Namespace, Event).
//!
//! Each kind's body is decoded into its k8s-openapi type first; a body that
//! does not decode is refused with the path of the offending field. Checks
//! then read the typed object, and the raw JSON where a rule is about which
//! keys are present (volume sources).

use k8s_openapi::api::core::v1::{
    Event, HostPathVolumeSource, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::names;
use super::pod;
use super::storage;
use crate::error::Cause;
use crate::kinds::Kind;
use crate::quantity::parse_quantity;

/// The problems with a new object; empty when it may be stored.
pub fn validate_create(kind: Kind, body: &Value) -> Vec<Cause> {
    match kind {
        Kind::PersistentVolume => checked::<PersistentVolume>(body, storage::persistent_volume),
        Kind::PersistentVolumeClaim => checked::<PersistentVolumeClaim>(body, storage::claim),
        Kind::StorageClass => checked::<StorageClass>(body, storage::storage_class),
        Kind::CsiDriver => checked::<CSIDriver>(body, storage::csi_driver),
        Kind::Pod => checked::<Pod>(body, pod::pod),
        Kind::Node => checked::<Node>(body, |node, _| {
            name(&node.metadata, names::dns1123_subdomain)
        }),
        Kind::Namespace => {
            checked::<Namespace>(body, |ns, _| name(&ns.metadata, names::dns1123_label))
        }
        Kind::Event => checked::<Event>(body, |event, _| self::event(event)),
    }
}

/// The problems with replacing `old` by `new`: those of `new` as an object,
/// then the changes upstream refuses.
pub fn validate_update(kind: Kind, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = validate_create(kind, new);
    if !causes.is_empty() {
        return causes;
    }
    causes.extend(match kind {
        Kind::PersistentVolume => changed(old, new, storage::persistent_volume_update),
        Kind::PersistentVolumeClaim => changed(old, new, storage::claim_update),
        Kind::StorageClass => changed(old, new, storage::storage_class_update),
        Kind::CsiDriver => changed(old, new, storage::csi_driver_update),
        Kind::Pod => changed(old, new, pod::pod_update),
        Kind::Node | Kind::Namespace | Kind::Event => Vec::new(),
    });
    causes
}

/// Decodes `body` as a `T` and runs `check` on it (with the raw JSON).
fn checked<T: DeserializeOwned>(
    body: &Value,
    check: impl Fn(&T, &Value) -> Vec<Cause>,
) -> Vec<Cause> {
    match T::deserialize(body) {
        Ok(object) => check(&object, body),
        Err(_) => vec![undecodable::<T>(body)],
    }
}

/// Decodes both sides of an update and runs `check`. The new side decoded
/// in `validate_create` already; an old side that no longer decodes (stored
/// by an older release) has no rules to compare against.
fn changed<T: DeserializeOwned>(
    old: &Value,
    new: &Value,
    check: impl Fn(&T, &T, &Value, &Value) -> Vec<Cause>,
) -> Vec<Cause> {
    match (T::deserialize(old), T::deserialize(new)) {
        (Ok(old_object), Ok(new_object)) => check(&old_object, &new_object, old, new),
        _ => Vec::new(),
    }
}

/// One step of a path into a JSON body.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Why `body` does not decode as a `T`, at the deepest field that alone
/// makes decoding fail. serde reports no paths, so the field is found by
/// decoding skeletons that keep a single branch of the body.
fn undecodable<T: DeserializeOwned>(body: &Value) -> Cause {
    let mut path: Vec<Step> = Vec::new();
    let mut node = body;
    let mut why = decode_error::<T>(body);
    loop {
        let children: Vec<(Step, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (Step::Key(k), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Step::Index(i), v))
                .collect(),
            _ => break,
        };
        let failing = children.into_iter().find_map(|(step, child)| {
            path.push(step);
            let error = decode_error::<T>(&skeleton(&path, child));
            let step = path.pop().expect("just pushed");
            error.map(|error| (step, child, error))
        });
        let Some((step, child, error)) = failing else {
            break;
        };
        path.push(step);
        node = child;
        why = Some(error);
    }
    let why = why.unwrap_or_else(|| "does not decode".to_string());
    Cause::invalid(&path_text(&path), value_text(node, 80), &why)
}

fn decode_error<T: DeserializeOwned>(value: &Value) -> Option<String> {
    T::deserialize(value).err().map(|e| e.to_string())
}

/// A body holding only `leaf` at `path` (a list position becomes a
/// one-element list: each element decodes on its own).
fn skeleton(path: &[Step], leaf: &Value) -> Value {
    path.iter()
        .rev()
        .fold(leaf.clone(), |inner, step| match step {
            Step::Key(key) => Value::Object(Map::from_iter([(key.to_string(), inner)])),
            Step::Index(_) => Value::Array(vec![inner]),
        })
}

/// `spec.containers[0].image`, as Kubernetes writes field paths.
fn path_text(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    if text.is_empty() {
        "<body>".into()
    } else {
        text
    }
}

/// A value as it appears in a message: strings bare, the rest as compact
/// JSON, cut at `limit` characters.
pub(super) fn value_text(value: &Value, limit: usize) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= limit {
        return text;
    }
    let cut: String = text.chars().take(limit).collect();
    format!("{cut}...")
}

/// `metadata.name` is required (the API server has already turned any
/// generateName into one) and must satisfy `rule`.
pub(super) fn name(meta: &ObjectMeta, rule: fn(&str) -> Vec<String>) -> Vec<Cause> {
    match meta.name.as_deref().unwrap_or_default() {
        "" => vec![required_because(
            "metadata.name",
            "name or generateName is required",
        )],
        name => rule(name)
            .iter()
            .map(|why| Cause::invalid("metadata.name", name, why))
            .collect(),
    }
}

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// At least one mode, only known ones, and ReadWriteOncePod alone.
/// `missing` is upstream's detail when there are none (it differs between
/// PVs and claims).
pub(super) fn access_modes(field: &str, modes: &[String], missing: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if modes.is_empty() {
        causes.push(required_because(field, missing));
    }
    for mode in modes.iter().filter(|m| !ACCESS_MODES.contains(&m.as_str())) {
        causes.push(Cause::not_supported(field, mode, &ACCESS_MODES));
    }
    let rwop = modes.iter().any(|m| m == "ReadWriteOncePod");
    let others = modes
        .iter()
        .any(|m| m != "ReadWriteOncePod" && ACCESS_MODES.contains(&m.as_str()));
    if rwop && others {
        causes.push(Cause::forbidden(
            field,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    causes
}

/// A quantity that parses and is above zero.
pub(super) fn positive_quantity(field: &str, quantity: &Quantity) -> Option<Cause> {
    match parse_quantity(&quantity.0) {
        Ok(q) if q.is_positive() => None,
        Ok(_) => Some(Cause::invalid(
            field,
            &quantity.0,
            "must be greater than zero",
        )),
        Err(error) => Some(Cause::invalid(field, &quantity.0, &error.to_string())),
    }
}

/// `value`, when set, is one of `supported`.
pub(super) fn one_of(field: &str, value: Option<&str>, supported: &[&str]) -> Option<Cause> {
    let value = value?;
    (!supported.contains(&value)).then(|| Cause::not_supported(field, value, supported))
}

/// A class name (of a PV or claim) is a DNS-1123 subdomain when set.
pub(super) fn class_name(field: &str, class: Option<&str>) -> Vec<Cause> {
    match class {
        None | Some("") => Vec::new(),
        Some(class) => names::dns1123_subdomain(class)
            .iter()
            .map(|why| Cause::invalid(field, class, why))
            .collect(),
    }
}

const HOST_PATH_TYPES: [&str; 8] = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// A host path is absolute (Strata mounts it directly, with no working
/// directory to resolve against), has no `..`, and a known type.
pub(super) fn host_path(field: &str, source: &HostPathVolumeSource) -> Vec<Cause> {
    let path_field = format!("{field}.path");
    if source.path.is_empty() {
        return vec![Cause::required(&path_field)];
    }
    let mut causes = Vec::new();
    if !source.path.starts_with('/') {
        causes.push(Cause::invalid(
            &path_field,
            &source.path,
            "must be an absolute path",
        ));
    }
    if source.path.split('/').any(|part| part == "..") {
        causes.push(Cause::invalid(
            &path_field,
            &source.path,
            "must not contain '..'",
        ));
    }
    causes.extend(one_of(
        &format!("{field}.type"),
        source.type_.as_deref(),
        &HOST_PATH_TYPES,
    ));
    causes
}

/// Legacy (core/v1) events: a proper name, an involved object in the
/// event's own namespace, and a known type.
fn event(event: &Event) -> Vec<Cause> {
    let mut causes = name(&event.metadata, names::dns1123_subdomain);
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let involved = event
        .involved_object
        .namespace
        .as_deref()
        .unwrap_or_default();
    // Events about cluster-scoped objects live in "default" (or nowhere).
    let matches = if involved.is_empty() {
        matches!(namespace, "" | "default")
    } else {
        involved == namespace
    };
    if event.event_time.is_none() && !matches {
        causes.push(Cause::invalid(
            "involvedObject.namespace",
            involved,
            "does not match event.namespace",
        ));
    }
    let type_ = event.type_.as_deref().filter(|t| !t.is_empty());
    causes.extend(one_of("type", type_, &["Normal", "Warning"]));
    causes
}

/// `Required value: <detail>`.
pub(super) fn required_because(field: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        field: field.into(),
        message: format!("Required value: {detail}"),
    }
}

/// `Duplicate value: "<value>"`.
pub(super) fn duplicate(field: &str, value: &str) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        field: field.into(),
        message: format!("Duplicate value: \"{value}\""),
    }
}

/// `Not found: "<value>"`.
pub(super) fn not_found(field: &str, value: &str) -> Cause {
    Cause {
        reason: "FieldValueNotFound",
        field: field.into(),
        message: format!("Not found: \"{value}\""),
    }
}

/// `Too many: <count>: must have at most <max> items`.
pub(super) fn too_many(field: &str, count: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany",
        field: field.into(),
        message: format!("Too many: {count}: must have at most {max} items"),
    }
}

/// `Too long: may not be more than <max> bytes`.
pub(super) fn too_long(field: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong",
        field: field.into(),
        message: format!("Too long: may not be more than {max} bytes"),
    }
}
