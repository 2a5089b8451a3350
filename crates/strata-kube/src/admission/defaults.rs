//! The values the API server fills in when a client leaves them out
//! (upstream `pkg/apis/core/v1/defaults.go`, `pkg/apis/storage/v1/defaults.go`
//! and the Pod and Namespace create strategies), applied to JSON bodies as
//! they arrive. Metadata is never touched: uid, resourceVersion and
//! timestamps belong to the registry.

use serde_json::{Map, Value, json};

use crate::kinds::Kind;

/// Fills in every upstream default `body` lacks. Fields already set, even to
/// odd values, are left for validation to judge.
pub fn apply_defaults(kind: Kind, body: &mut Value) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    match kind {
        Kind::PersistentVolume => {
            default_in(object, "spec", "persistentVolumeReclaimPolicy", "Retain");
            default_in(object, "spec", "volumeMode", "Filesystem");
            default_in(object, "status", "phase", "Pending");
        }
        Kind::PersistentVolumeClaim => {
            default_in(object, "spec", "volumeMode", "Filesystem");
            default_in(object, "status", "phase", "Pending");
        }
        Kind::StorageClass => {
            default(object, "reclaimPolicy", "Delete");
            default(object, "volumeBindingMode", "Immediate");
        }
        Kind::Pod => {
            if let Some(spec) = child(object, "spec") {
                pod_spec_defaults(spec);
            }
            default_in(object, "status", "phase", "Pending");
        }
        // Upstream's create strategy also puts the `kubernetes` finalizer in
        // spec.finalizers; nothing in Strata would ever remove it, so a
        // namespace could never finish deleting. Only the phase is set.
        Kind::Namespace => default_in(object, "status", "phase", "Active"),
        Kind::Node => {
            if let Some(status) = child(object, "status") {
                node_status_defaults(status);
            }
        }
        Kind::CsiDriver => {
            if let Some(spec) = child(object, "spec") {
                csi_driver_defaults(spec);
            }
        }
        // Events have no defaults upstream: the reporter sets every field.
        Kind::Event => {}
    }
}

fn pod_spec_defaults(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", "Always");
    default(spec, "dnsPolicy", "ClusterFirst");
    default(spec, "terminationGracePeriodSeconds", 30);
    default(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers"] {
        for container in objects_in(spec, list) {
            container_defaults(container);
        }
    }
    for volume in objects_in(spec, "volumes") {
        volume_defaults(volume);
    }
}

fn container_defaults(container: &mut Map<String, Value>) {
    default(container, "terminationMessagePath", "/dev/termination-log");
    default(container, "terminationMessagePolicy", "File");
    if !container.contains_key("imagePullPolicy") {
        let image = container.get("image").and_then(Value::as_str);
        let policy = pull_policy(image.unwrap_or_default());
        container.insert("imagePullPolicy".into(), policy.into());
    }
}

fn volume_defaults(volume: &mut Map<String, Value>) {
    // A volume naming no source at all is an empty directory upstream.
    if volume.keys().all(|key| key == "name") {
        volume.insert("emptyDir".into(), json!({}));
    }
    // `type` is a pointer upstream, so its "" default shows in the stored
    // object. emptyDir's `medium` is a plain string whose "" is omitted
    // when serialised, so it is not written here either.
    if let Some(host_path) = volume.get_mut("hostPath").and_then(Value::as_object_mut) {
        default(host_path, "type", "");
    }
}

/// `Always` for images that name the `latest` tag or no tag and no digest
/// (they may change under the same name), `IfNotPresent` otherwise,
/// including references that cannot be parsed, as upstream.
pub(super) fn pull_policy(image: &str) -> &'static str {
    if image.is_empty() {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A colon before the last slash is a registry port, not a tag.
    let last_component = name.rsplit('/').next().unwrap_or(name);
    let tag = last_component.split_once(':').map(|(_, tag)| tag);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn node_status_defaults(status: &mut Map<String, Value>) {
    if !status.contains_key("allocatable")
        && let Some(capacity) = status.get("capacity").cloned()
    {
        status.insert("allocatable".into(), capacity);
    }
}

fn csi_driver_defaults(spec: &mut Map<String, Value>) {
    default(spec, "attachRequired", true);
    default(spec, "podInfoOnMount", false);
    default(spec, "requiresRepublish", false);
    default(spec, "storageCapacity", false);
    default(spec, "fsGroupPolicy", "ReadWriteOnceWithFSType");
    default(spec, "volumeLifecycleModes", json!(["Persistent"]));
}

/// The object under `key`, created empty when absent or null. `None` when
/// the key holds something else: validation reports that field.
fn child<'a>(object: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let slot = object.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Defaults `key` inside the object under `parent`.
fn default_in(object: &mut Map<String, Value>, parent: &str, key: &str, value: impl Into<Value>) {
    if let Some(parent) = child(object, parent) {
        default(parent, key, value);
    }
}

fn default(object: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let slot = object.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value.into();
    }
}

/// The objects in the list under `key`; nothing if it is absent or not a
/// list.
fn objects_in<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    object
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}
