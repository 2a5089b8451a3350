//! Validation of the storage kinds: PersistentVolume and
//! PersistentVolumeClaim (upstream `pkg/apis/core/validation`),
//! StorageClass and CSIDriver (`pkg/apis/storage/validation`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, NFSVolumeSource, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::names;
use super::validate::{
    access_modes, class_name, host_path, name, one_of, positive_quantity, required_because,
    too_long, too_many, value_text,
};
use crate::error::Cause;
use crate::quantity::parse_quantity;
use crate::selector::LabelSelector;

/// Every volume source a PV may name, in upstream's order (the first one
/// found is the volume's; each further one is refused).
const PV_SOURCES: [&str; 22] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

const RECLAIM_POLICIES: [&str; 3] = ["Delete", "Recycle", "Retain"];
const CLASS_RECLAIM_POLICIES: [&str; 2] = ["Delete", "Retain"];
const VOLUME_MODES: [&str; 2] = ["Block", "Filesystem"];
const BINDING_MODES: [&str; 2] = ["Immediate", "WaitForFirstConsumer"];
const FS_GROUP_POLICIES: [&str; 3] = ["File", "None", "ReadWriteOnceWithFSType"];
const LIFECYCLE_MODES: [&str; 2] = ["Ephemeral", "Persistent"];
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
const MAX_CLASS_PARAMETERS: usize = 512;
const MAX_CLASS_PARAMETER_BYTES: usize = 256 * 1024;
const MAX_CSI_DRIVER_NAME: usize = 63;

pub(super) fn persistent_volume(pv: &PersistentVolume, body: &Value) -> Vec<Cause> {
    let mut causes = name(&pv.metadata, names::dns1123_subdomain);
    let default_spec = PersistentVolumeSpec::default();
    let spec = pv.spec.as_ref().unwrap_or(&default_spec);
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    causes.extend(access_modes("spec.accessModes", modes, ""));
    causes.extend(capacity(spec.capacity.as_ref()));
    causes.extend(reclaim_policy(spec));
    causes.extend(volume_source(body));
    causes.extend(source_details(spec));
    let class = spec.storage_class_name.as_deref();
    causes.extend(class_name("spec.storageClassName", class));
    let mode = spec.volume_mode.as_deref();
    causes.extend(one_of("spec.volumeMode", mode, &VOLUME_MODES));
    causes
}

/// A known policy, and no recycling (`rm -rf` of the contents) of a host's
/// root directory.
fn reclaim_policy(spec: &PersistentVolumeSpec) -> Vec<Cause> {
    let field = "spec.persistentVolumeReclaimPolicy";
    let policy = spec.persistent_volume_reclaim_policy.as_deref();
    let mut causes: Vec<Cause> = one_of(field, policy.filter(|p| !p.is_empty()), &RECLAIM_POLICIES)
        .into_iter()
        .collect();
    let root = spec.host_path.as_ref().is_some_and(|h| is_root(&h.path));
    if root && policy == Some("Recycle") {
        causes.push(Cause::forbidden(
            field,
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    causes
}

/// What each kind of source needs.
fn source_details(spec: &PersistentVolumeSpec) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(source) = &spec.host_path {
        causes.extend(host_path("spec.hostPath", source));
    }
    if let Some(local) = &spec.local {
        if local.path.is_empty() {
            causes.push(Cause::required("spec.local.path"));
        }
        causes.extend(local_node_affinity(spec));
    }
    if let Some(nfs) = &spec.nfs {
        causes.extend(nfs_source(nfs));
    }
    if let Some(csi) = &spec.csi {
        causes.extend(csi_source(csi));
    }
    causes
}

/// A local volume lives on particular nodes, which its affinity names.
fn local_node_affinity(spec: &PersistentVolumeSpec) -> Option<Cause> {
    let terms = spec
        .node_affinity
        .as_ref()
        .and_then(|a| a.required.as_ref())
        .map_or(0, |r| r.node_selector_terms.len());
    (terms == 0)
        .then(|| required_because("spec.nodeAffinity", "Local volume requires node affinity"))
}

fn nfs_source(nfs: &NFSVolumeSource) -> Vec<Cause> {
    let mut causes = Vec::new();
    if nfs.server.is_empty() {
        causes.push(Cause::required("spec.nfs.server"));
    }
    if nfs.path.is_empty() {
        causes.push(Cause::required("spec.nfs.path"));
    } else if !nfs.path.starts_with('/') {
        causes.push(Cause::invalid(
            "spec.nfs.path",
            &nfs.path,
            "must be an absolute path",
        ));
    }
    causes
}

/// `capacity` holds exactly `storage`, and it is positive.
fn capacity(capacity: Option<&BTreeMap<String, Quantity>>) -> Vec<Cause> {
    let Some(capacity) = capacity.filter(|c| !c.is_empty()) else {
        return vec![
            Cause::required("spec.capacity"),
            Cause::not_supported("spec.capacity", "", &["storage"]),
        ];
    };
    let mut causes = Vec::new();
    if !capacity.contains_key("storage") || capacity.len() > 1 {
        let keys: Vec<&str> = capacity.keys().map(String::as_str).collect();
        causes.push(Cause::not_supported(
            "spec.capacity",
            &keys.join(", "),
            &["storage"],
        ));
    }
    for (resource, quantity) in capacity {
        causes.extend(positive_quantity(
            &format!("spec.capacity[{resource}]"),
            quantity,
        ));
    }
    causes
}

/// Exactly one of the PV sources is set. Read from the JSON, where
/// "set" is simply "present and not null".
fn volume_source(body: &Value) -> Vec<Cause> {
    let spec = body.get("spec");
    let mut present = PV_SOURCES.iter().filter(|source| {
        spec.and_then(|s| s.get(**source))
            .is_some_and(|v| !v.is_null())
    });
    if present.next().is_none() {
        return vec![required_because("spec", "must specify a volume type")];
    }
    present
        .map(|extra| {
            Cause::forbidden(
                &format!("spec.{extra}"),
                "may not specify more than 1 volume type",
            )
        })
        .collect()
}

fn csi_source(csi: &CSIPersistentVolumeSource) -> Vec<Cause> {
    let mut causes = csi_driver_name("spec.csi.driver", &csi.driver);
    if csi.volume_handle.is_empty() {
        causes.push(Cause::required("spec.csi.volumeHandle"));
    }
    causes
}

/// A CSI driver name: at most 63 characters, and a DNS-1123 subdomain
/// once lower-cased.
fn csi_driver_name(field: &str, driver: &str) -> Vec<Cause> {
    if driver.is_empty() {
        return vec![Cause::required(field)];
    }
    let mut causes = Vec::new();
    if driver.len() > MAX_CSI_DRIVER_NAME {
        causes.push(too_long(field, MAX_CSI_DRIVER_NAME));
    }
    for why in names::dns1123_subdomain(&driver.to_lowercase()) {
        causes.push(Cause::invalid(field, driver, &why));
    }
    causes
}

/// Whether `path` names the root directory once `.`, `..` and repeated
/// slashes are resolved.
fn is_root(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    let mut depth = 0usize;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => depth = depth.saturating_sub(1),
            _ => depth += 1,
        }
    }
    depth == 0
}

pub(super) fn claim(claim: &PersistentVolumeClaim, _body: &Value) -> Vec<Cause> {
    let mut causes = name(&claim.metadata, names::dns1123_subdomain);
    let default_spec = PersistentVolumeClaimSpec::default();
    let spec = claim.spec.as_ref().unwrap_or(&default_spec);
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    causes.extend(access_modes(
        "spec.accessModes",
        modes,
        "at least 1 access mode is required",
    ));
    if let Some(selector) = &spec.selector
        && let Err(error) = LabelSelector::from_api(selector)
    {
        let shown = serde_json::to_value(selector).unwrap_or_default();
        causes.push(Cause::invalid(
            "spec.selector",
            value_text(&shown, 80),
            &error.to_string(),
        ));
    }
    match requested_storage(spec) {
        None => causes.push(Cause::required("spec.resources[storage]")),
        Some(quantity) => causes.extend(positive_quantity("spec.resources[storage]", quantity)),
    }
    causes.extend(class_name(
        "spec.storageClassName",
        spec.storage_class_name.as_deref(),
    ));
    causes.extend(one_of(
        "spec.volumeMode",
        spec.volume_mode.as_deref(),
        &VOLUME_MODES,
    ));
    causes
}

fn requested_storage(spec: &PersistentVolumeClaimSpec) -> Option<&Quantity> {
    spec.resources.as_ref()?.requests.as_ref()?.get("storage")
}

pub(super) fn storage_class(class: &StorageClass, _body: &Value) -> Vec<Cause> {
    let mut causes = name(&class.metadata, names::dns1123_subdomain);
    if class.provisioner.is_empty() {
        causes.push(Cause::required("provisioner"));
    } else {
        // Upstream checks the lower-cased name, and reports it so.
        let provisioner = class.provisioner.to_lowercase();
        for why in names::qualified_name(&provisioner) {
            causes.push(Cause::invalid("provisioner", &provisioner, &why));
        }
    }
    causes.extend(class_parameters(class.parameters.as_ref()));
    let policy = class.reclaim_policy.as_deref().filter(|p| !p.is_empty());
    causes.extend(one_of("reclaimPolicy", policy, &CLASS_RECLAIM_POLICIES));
    match class.volume_binding_mode.as_deref() {
        None => causes.push(Cause::required("volumeBindingMode")),
        mode => causes.extend(one_of("volumeBindingMode", mode, &BINDING_MODES)),
    }
    causes
}

/// At most 512 parameters of at most 256 KiB together, and no empty key.
fn class_parameters(parameters: Option<&BTreeMap<String, String>>) -> Vec<Cause> {
    let Some(parameters) = parameters else {
        return Vec::new();
    };
    if parameters.len() > MAX_CLASS_PARAMETERS {
        return vec![too_many(
            "parameters",
            parameters.len(),
            MAX_CLASS_PARAMETERS,
        )];
    }
    let mut causes = Vec::new();
    if parameters.contains_key("") {
        causes.push(Cause::invalid("parameters", "", "field can not be empty."));
    }
    let bytes: usize = parameters.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_CLASS_PARAMETER_BYTES {
        causes.push(too_long("parameters", MAX_CLASS_PARAMETER_BYTES));
    }
    causes
}

pub(super) fn csi_driver(driver: &CSIDriver, _body: &Value) -> Vec<Cause> {
    let name = driver.metadata.name.as_deref().unwrap_or_default();
    let mut causes = csi_driver_name("metadata.name", name);
    let spec = &driver.spec;
    let flags = [
        ("spec.attachRequired", spec.attach_required),
        ("spec.podInfoOnMount", spec.pod_info_on_mount),
        ("spec.storageCapacity", spec.storage_capacity),
    ];
    for (field, flag) in flags {
        if flag.is_none() {
            causes.push(Cause::required(field));
        }
    }
    causes.extend(one_of(
        "spec.fsGroupPolicy",
        spec.fs_group_policy.as_deref(),
        &FS_GROUP_POLICIES,
    ));
    for mode in spec.volume_lifecycle_modes.iter().flatten() {
        causes.extend(one_of(
            "spec.volumeLifecycleModes",
            Some(mode),
            &LIFECYCLE_MODES,
        ));
    }
    causes
}

/// A PV's source and volume mode are fixed at creation; the rest of its
/// spec may change. The one exception upstream makes: a CSI volume may
/// gain a controllerExpandSecretRef.
pub(super) fn persistent_volume_update(
    old: &PersistentVolume,
    new: &PersistentVolume,
    old_body: &Value,
    new_body: &Value,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let source_changed = PV_SOURCES.iter().any(|source| {
        pv_source(old_body, source, false)
            != pv_source(new_body, source, gains_expand_secret(old, new))
    });
    if source_changed {
        causes.push(Cause::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    let mode = |pv: &PersistentVolume| pv.spec.as_ref().and_then(|s| s.volume_mode.clone());
    if mode(old) != mode(new) {
        let shown = mode(new).unwrap_or_default();
        causes.push(Cause::invalid(
            "spec.volumeMode",
            shown,
            "field is immutable",
        ));
    }
    causes
}

fn gains_expand_secret(old: &PersistentVolume, new: &PersistentVolume) -> bool {
    let secret = |pv: &PersistentVolume| {
        pv.spec
            .as_ref()
            .and_then(|s| s.csi.as_ref())
            .map(|csi| csi.controller_expand_secret_ref.is_some())
    };
    secret(old) == Some(false) && secret(new) == Some(true)
}

/// The JSON of one PV source, without its controllerExpandSecretRef when
/// `drop_expand_secret`.
fn pv_source(body: &Value, source: &str, drop_expand_secret: bool) -> Option<Value> {
    let mut value = body.get("spec")?.get(source)?.clone();
    if drop_expand_secret
        && source == "csi"
        && let Some(csi) = value.as_object_mut()
    {
        csi.remove("controllerExpandSecretRef");
    }
    Some(value).filter(|v| !v.is_null())
}

/// A claim's spec is fixed at creation, except: `volumeName` may be set
/// once (binding), a missing `storageClassName` may be filled in
/// (retroactive default class), and a bound claim may change its storage
/// request (never downwards) and its volumeAttributesClassName.
pub(super) fn claim_update(
    old: &PersistentVolumeClaim,
    new: &PersistentVolumeClaim,
    _old_body: &Value,
    _new_body: &Value,
) -> Vec<Cause> {
    let old_spec = old.spec.clone().unwrap_or_default();
    let new_spec = new.spec.clone().unwrap_or_default();
    let mut comparable = new_spec.clone();
    if old_spec
        .volume_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        comparable.volume_name = old_spec.volume_name.clone();
    }
    if class_filled_in(old, &old_spec, &new_spec) {
        comparable.storage_class_name = None;
    }
    // Upstream reads the new object's phase, after the registry has carried
    // the stored status over; the old object's phase is that same value,
    // whatever status the caller put in its body.
    let bound = old.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound {
        keep_request(&mut comparable, requested_storage(&old_spec));
        if comparable.volume_attributes_class_name.is_some() {
            comparable.volume_attributes_class_name = old_spec.volume_attributes_class_name.clone();
        }
    }
    let mut causes = Vec::new();
    if comparable != old_spec {
        causes.push(Cause::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    if shrinks(requested_storage(&old_spec), requested_storage(&new_spec)) {
        causes.push(Cause::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than previous value",
        ));
    }
    causes
}

/// Whether the update sets a class on a claim that had none, to the class
/// its beta annotation already named if it has one.
fn class_filled_in(
    old: &PersistentVolumeClaim,
    old_spec: &PersistentVolumeClaimSpec,
    new_spec: &PersistentVolumeClaimSpec,
) -> bool {
    let annotation = old
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION));
    match (&old_spec.storage_class_name, &new_spec.storage_class_name) {
        (None, Some(new_class)) => annotation.is_none_or(|a| a == new_class),
        _ => false,
    }
}

/// Puts the old storage request back into `spec`, so that a change of it
/// alone compares equal.
fn keep_request(spec: &mut PersistentVolumeClaimSpec, old: Option<&Quantity>) {
    let Some(requests) = spec.resources.as_mut().and_then(|r| r.requests.as_mut()) else {
        return;
    };
    match old {
        Some(old) => requests.insert("storage".into(), old.clone()),
        None => requests.remove("storage"),
    };
}

fn shrinks(old: Option<&Quantity>, new: Option<&Quantity>) -> bool {
    let parse = |q: Option<&Quantity>| q.and_then(|q| parse_quantity(&q.0).ok());
    match (parse(old), parse(new)) {
        (Some(old), Some(new)) => new < old,
        _ => false,
    }
}

/// Parameters, provisioner, reclaim policy and binding mode are fixed;
/// expansion and metadata (the default-class annotation) may change.
pub(super) fn storage_class_update(
    old: &StorageClass,
    new: &StorageClass,
    _old_body: &Value,
    _new_body: &Value,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let parameters = |c: &StorageClass| c.parameters.clone().unwrap_or_default();
    if parameters(old) != parameters(new) {
        causes.push(Cause::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if old.provisioner != new.provisioner {
        causes.push(Cause::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if old.reclaim_policy != new.reclaim_policy {
        causes.push(Cause::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if old.volume_binding_mode != new.volume_binding_mode {
        let shown = new.volume_binding_mode.clone().unwrap_or_default();
        causes.push(Cause::invalid(
            "volumeBindingMode",
            shown,
            "field is immutable",
        ));
    }
    causes
}

/// Whether attach is needed, and the lifecycle modes, are fixed.
pub(super) fn csi_driver_update(
    old: &CSIDriver,
    new: &CSIDriver,
    _old_body: &Value,
    _new_body: &Value,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    if old.spec.attach_required != new.spec.attach_required {
        let shown = new
            .spec
            .attach_required
            .map(|b| b.to_string())
            .unwrap_or_default();
        causes.push(Cause::invalid(
            "spec.attachRequired",
            shown,
            "field is immutable",
        ));
    }
    if old.spec.volume_lifecycle_modes != new.spec.volume_lifecycle_modes {
        let shown = new
            .spec
            .volume_lifecycle_modes
            .clone()
            .unwrap_or_default()
            .join(",");
        causes.push(Cause::invalid(
            "spec.volumeLifecycleModes",
            shown,
            "field is immutable",
        ));
    }
    causes
}
