//! Reading and writing the fields of PVs and PVCs the binder cares about,
//! with upstream's defaults applied (a missing volumeMode is Filesystem, a
//! missing class is `""`, the beta class annotation wins over the field).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::quantity::{Quantity, parse_quantity};

/// On a claim: the binding is finished; its sync takes the bound path.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a PV or claim: a controller made the binding, not the user.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a PV: the provisioner that created it.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// On a claim: the provisioner asked to create its volume.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// On a claim: the node the scheduler chose for a WaitForFirstConsumer claim.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// On a PV or claim: the deprecated class annotation, which wins over
/// `spec.storageClassName`.
pub const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// On a PV: its size before a resize, reported as the claim's capacity.
pub const ANN_PRE_RESIZE_CAPACITY: &str = "volume.alpha.kubernetes.io/pre-resize-capacity";

pub(super) const FILESYSTEM: &str = "Filesystem";

/// A claim's namespace and name: how PVs and pods refer to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ClaimKey {
    pub namespace: String,
    pub name: String,
}

impl ClaimKey {
    pub fn new(namespace: &str, name: &str) -> ClaimKey {
        ClaimKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    pub fn of(claim: &PersistentVolumeClaim) -> ClaimKey {
        ClaimKey::new(namespace(&claim.metadata), name(&claim.metadata))
    }

    /// The claim a PV's `claimRef` names, if any.
    pub fn referenced_by(pv: &PersistentVolume) -> Option<ClaimKey> {
        let claim_ref = pv.spec.as_ref()?.claim_ref.as_ref()?;
        Some(ClaimKey::new(
            claim_ref.namespace.as_deref().unwrap_or(""),
            claim_ref.name.as_deref().unwrap_or(""),
        ))
    }
}

pub(super) fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

pub(super) fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

pub(super) fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

/// `metadata.resourceVersion` as a number; None when absent or not
/// decimal (then the object cannot be judged stale).
pub(super) fn resource_version(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// Whether `new` is an older version of the object than `cached`. Equal
/// versions pass: a resync delivers the same version again on purpose.
pub(super) fn is_stale(new: &ObjectMeta, cached: &ObjectMeta) -> bool {
    matches!(
        (resource_version(new), resource_version(cached)),
        (Some(new), Some(cached)) if new < cached
    )
}

pub(super) fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub(super) fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    annotation(meta, key).is_some()
}

pub(super) fn set_annotation(meta: &mut ObjectMeta, key: &str, value: &str) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

/// Removes an annotation, leaving no empty map behind (as upstream does).
pub(super) fn remove_annotation(meta: &mut ObjectMeta, key: &str) {
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(key);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The storage quantity in a `capacity`/`requests` map; a missing or
/// unparsable one counts as zero (admission rejects both).
fn storage(map: Option<&BTreeMap<String, ApiQuantity>>) -> Quantity {
    map.and_then(|m| m.get("storage"))
        .and_then(|q| parse_quantity(&q.0).ok())
        .unwrap_or_default()
}

pub(super) fn claim_request(claim: &PersistentVolumeClaim) -> Quantity {
    let resources = claim.spec.as_ref().and_then(|s| s.resources.as_ref());
    storage(resources.and_then(|r| r.requests.as_ref()))
}

pub(super) fn volume_capacity(pv: &PersistentVolume) -> Quantity {
    storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref()))
}

/// The claim's class: the beta annotation if present, else
/// `spec.storageClassName`, else `""`.
pub(super) fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    annotation(&claim.metadata, ANN_BETA_STORAGE_CLASS).unwrap_or_else(|| {
        let spec = claim.spec.as_ref();
        spec.and_then(|s| s.storage_class_name.as_deref())
            .unwrap_or("")
    })
}

/// Whether the claim asked for a class at all; `storageClassName: ""`
/// counts (it asks for "no class"), an absent one does not.
pub(super) fn claim_has_class(claim: &PersistentVolumeClaim) -> bool {
    has_annotation(&claim.metadata, ANN_BETA_STORAGE_CLASS)
        || claim
            .spec
            .as_ref()
            .is_some_and(|s| s.storage_class_name.is_some())
}

pub(super) fn volume_class(pv: &PersistentVolume) -> &str {
    annotation(&pv.metadata, ANN_BETA_STORAGE_CLASS).unwrap_or_else(|| {
        let spec = pv.spec.as_ref();
        spec.and_then(|s| s.storage_class_name.as_deref())
            .unwrap_or("")
    })
}

pub(super) fn claim_volume_mode(claim: &PersistentVolumeClaim) -> &str {
    let spec = claim.spec.as_ref();
    spec.and_then(|s| s.volume_mode.as_deref())
        .unwrap_or(FILESYSTEM)
}

pub(super) fn volume_volume_mode(pv: &PersistentVolume) -> &str {
    let spec = pv.spec.as_ref();
    spec.and_then(|s| s.volume_mode.as_deref())
        .unwrap_or(FILESYSTEM)
}

/// VolumeAttributesClass names; absent and `""` are the same.
pub(super) fn claim_attributes_class(claim: &PersistentVolumeClaim) -> &str {
    let spec = claim.spec.as_ref();
    spec.and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("")
}

pub(super) fn volume_attributes_class(pv: &PersistentVolume) -> &str {
    let spec = pv.spec.as_ref();
    spec.and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("")
}

pub(super) fn claim_access_modes(claim: &PersistentVolumeClaim) -> &[String] {
    let spec = claim.spec.as_ref();
    spec.and_then(|s| s.access_modes.as_deref()).unwrap_or(&[])
}

pub(super) fn volume_access_modes(pv: &PersistentVolume) -> &[String] {
    let spec = pv.spec.as_ref();
    spec.and_then(|s| s.access_modes.as_deref()).unwrap_or(&[])
}

pub(super) fn claim_volume_name(claim: &PersistentVolumeClaim) -> &str {
    let spec = claim.spec.as_ref();
    spec.and_then(|s| s.volume_name.as_deref()).unwrap_or("")
}

pub(super) fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    let status = claim.status.as_ref();
    status.and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub(super) fn volume_phase(pv: &PersistentVolume) -> &str {
    let status = pv.status.as_ref();
    status.and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub(super) fn is_bound(claim: &PersistentVolumeClaim) -> bool {
    has_annotation(&claim.metadata, ANN_BIND_COMPLETED)
}

/// The UID in the PV's claimRef; `""` when the PV is only reserved for a
/// claim name.
pub(super) fn claim_ref_uid(pv: &PersistentVolume) -> Option<&str> {
    let claim_ref = pv.spec.as_ref()?.claim_ref.as_ref()?;
    Some(claim_ref.uid.as_deref().unwrap_or(""))
}

/// Upstream's `IsVolumeBoundToClaim`: the claimRef names this claim and, if
/// it carries a UID, the UID is this claim's.
pub(super) fn is_volume_bound_to_claim(
    pv: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> bool {
    let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    let ref_uid = claim_ref.uid.as_deref().unwrap_or("");
    claim_ref.name.as_deref() == Some(name(&claim.metadata))
        && claim_ref.namespace.as_deref().unwrap_or("") == namespace(&claim.metadata)
        && (ref_uid.is_empty() || ref_uid == uid(&claim.metadata))
}

/// A full reference to the claim, as `claimRef` and events carry it.
pub(super) fn claim_reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    reference("PersistentVolumeClaim", &claim.metadata)
}

pub(super) fn volume_reference(pv: &PersistentVolume) -> ObjectReference {
    reference("PersistentVolume", &pv.metadata)
}

fn reference(kind: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some(kind.to_string()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

/// Sets the PV's phase; a change also sets `status.message` and
/// `status.lastPhaseTransitionTime`. Setting the current phase again
/// changes nothing, not even the message (as upstream).
pub(super) fn set_volume_phase(
    pv: &mut PersistentVolume,
    phase: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    if volume_phase(pv) == phase {
        return;
    }
    let status = pv.status.get_or_insert_with(Default::default);
    status.phase = Some(phase.to_string());
    status.message = (!message.is_empty()).then(|| message.to_string());
    status.last_phase_transition_time = Some(Time(now));
}
