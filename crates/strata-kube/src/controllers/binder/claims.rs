//! Claim sync (upstream's `syncClaim`): bind a claim to the best volume,
//! or wait, provision, or report why not; keep bound claims honest.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::index::{MatchKey, Wants};
use super::modes::AccessModeSet;
use super::objects::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER,
    ANN_PRE_RESIZE_CAPACITY, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER, ClaimKey, annotation,
    claim_access_modes, claim_class, claim_has_class, claim_phase, claim_reference, claim_request,
    claim_volume_mode, claim_volume_name, has_annotation, is_bound, is_volume_bound_to_claim, name,
    namespace, set_annotation, set_volume_phase, uid, volume_access_modes, volume_capacity,
    volume_class, volume_volume_mode,
};
use super::waiting::{Arrival, Need};
use super::{Action, Binder, CachedClaim, EventType, claim_event};
use crate::quantity::parse_quantity;

/// What a claim sync decided.
#[derive(Default)]
struct ClaimOutcome {
    actions: Vec<Action>,
    /// The claim found no volume; a volume that becomes free may wake it.
    waits_for_volume: bool,
}

impl ClaimOutcome {
    fn act(actions: Vec<Action>) -> ClaimOutcome {
        ClaimOutcome {
            actions,
            waits_for_volume: false,
        }
    }
}

impl Binder {
    pub(super) fn sync_claim(&mut self, key: &ClaimKey, now: jiff::Timestamp) -> Vec<Action> {
        self.waiting.remove(key);
        let Some(cached) = self.claims.get(key) else {
            return Vec::new();
        };
        let claim = &cached.claim;
        let outcome = if is_bound(claim) {
            ClaimOutcome::act(self.sync_bound_claim(claim, now))
        } else {
            self.sync_unbound_claim(claim, now)
        };
        if outcome.waits_for_volume
            && let Some(need) = need_of(claim)
        {
            self.waiting.insert(arrival_of(key, cached), need);
        }
        self.after_wake(key, &outcome.actions);
        outcome.actions
    }

    /// A claim woken by a free volume has synced: if it did not take that
    /// volume (it bound another, or no longer needs one), offer the volume
    /// to the next waiting claim. A claim that went back to waiting found
    /// nothing at all, the offered volume included, so offering it again
    /// would only wake the same claim.
    fn after_wake(&mut self, claim: &ClaimKey, actions: &[Action]) {
        let Some(volume) = self.woken_by.remove(claim) else {
            return;
        };
        let took_it = actions
            .iter()
            .any(|a| matches!(a, Action::SaveVolume(pv) if name(&pv.metadata) == volume));
        if !took_it && !self.waiting.contains(claim) {
            self.offer(&volume);
        }
    }

    /// Upstream's `syncBoundClaim` (reference 1.6).
    fn sync_bound_claim(&self, claim: &PersistentVolumeClaim, now: jiff::Timestamp) -> Vec<Action> {
        let volume_name = claim_volume_name(claim);
        if volume_name.is_empty() {
            return lost(
                claim,
                "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            );
        }
        let Some(pv) = self.volumes.get(volume_name) else {
            return lost(
                claim,
                "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            );
        };
        let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        match claim_ref {
            // A volume that lost its claimRef is bound again.
            None => bind(pv, claim, now),
            Some(r) if r.uid.as_deref().unwrap_or("") == uid(&claim.metadata) => {
                bind(pv, claim, now)
            }
            Some(_) => lost(
                claim,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            ),
        }
    }

    /// Upstream's `syncUnboundClaim` (reference 1.2, 1.5).
    fn sync_unbound_claim(
        &self,
        claim: &PersistentVolumeClaim,
        now: jiff::Timestamp,
    ) -> ClaimOutcome {
        let volume_name = claim_volume_name(claim);
        if !volume_name.is_empty() {
            return ClaimOutcome::act(self.sync_claim_naming_volume(claim, volume_name, now));
        }
        let delay_binding = self.is_delay_binding(claim);
        // A selector that does not parse (validation prevents it) makes
        // upstream give up on the sync without writing anything.
        let Ok(wants) = Wants::of(claim) else {
            return ClaimOutcome::default();
        };
        let found = self
            .index
            .best_match(&self.volumes, claim, &wants, delay_binding);
        if let Some(volume) = found {
            return ClaimOutcome::act(bind(&self.volumes[volume], claim, now));
        }
        if let Some(class) = self.retroactive_class(claim) {
            let mut updated = claim.clone();
            updated.spec.get_or_insert_default().storage_class_name = Some(class);
            return ClaimOutcome::act(vec![Action::SaveClaim(updated)]);
        }
        let mut actions = Vec::new();
        if delay_binding && !has_annotation(&claim.metadata, ANN_SELECTED_NODE) {
            actions.push(self.delay_binding_event(claim));
        } else if !claim_class(claim).is_empty() {
            // Provisioning leaves the status alone, as upstream.
            return ClaimOutcome {
                actions: self.provision(claim),
                waits_for_volume: !delay_binding,
            };
        } else {
            actions.push(claim_event(
                claim,
                EventType::Normal,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set".into(),
            ));
        }
        actions.extend(save_claim(claim, with_status(claim, "Pending", None)));
        ClaimOutcome {
            actions,
            waits_for_volume: !delay_binding,
        }
    }

    /// The claim names its volume in `spec.volumeName` (reference 1.5).
    fn sync_claim_naming_volume(
        &self,
        claim: &PersistentVolumeClaim,
        volume_name: &str,
        now: jiff::Timestamp,
    ) -> Vec<Action> {
        let Some(pv) = self.volumes.get(volume_name) else {
            // Retried when a volume of that name is stored.
            return save_claim(claim, with_status(claim, "Pending", None))
                .into_iter()
                .collect();
        };
        let unclaimed = pv.spec.as_ref().is_none_or(|s| s.claim_ref.is_none());
        if unclaimed {
            return match unsatisfied_reason(pv, claim) {
                None => bind(pv, claim, now),
                Some(reason) => {
                    let message =
                        format!("Cannot bind to requested volume \"{volume_name}\": {reason}");
                    let mut actions = vec![claim_event(
                        claim,
                        EventType::Warning,
                        "VolumeMismatch",
                        message,
                    )];
                    actions.extend(save_claim(claim, with_status(claim, "Pending", None)));
                    actions
                }
            };
        }
        if is_volume_bound_to_claim(pv, claim) {
            return bind(pv, claim, now);
        }
        let message = format!("volume \"{volume_name}\" already bound to a different claim.");
        let mut actions = vec![claim_event(
            claim,
            EventType::Warning,
            "FailedBinding",
            message,
        )];
        // With bound-by-controller this "should never happen" upstream,
        // which then stops without touching the status.
        if !has_annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER) {
            actions.extend(save_claim(claim, with_status(claim, "Pending", None)));
        }
        actions
    }

    /// True iff the claim's class exists and binds WaitForFirstConsumer. A
    /// class name with no StorageClass object binds immediately; a class
    /// with no mode is Immediate too (the API server defaults it so).
    fn is_delay_binding(&self, claim: &PersistentVolumeClaim) -> bool {
        let class = self.classes.get(claim_class(claim));
        class.is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"))
    }

    /// The default class's name, for a claim that asked for no class at all.
    fn retroactive_class(&self, claim: &PersistentVolumeClaim) -> Option<String> {
        if claim_has_class(claim) {
            return None;
        }
        self.default_class()?.metadata.name.clone()
    }

    fn delay_binding_event(&self, claim: &PersistentVolumeClaim) -> Action {
        let pods = self.pods.unscheduled_users(&ClaimKey::of(claim));
        let (reason, message) = match pods.as_slice() {
            [] => (
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding".to_string(),
            ),
            [pod] => (
                "WaitForPodScheduled",
                format!("waiting for pod {pod} to be scheduled"),
            ),
            pods => (
                "WaitForPodScheduled",
                format!("waiting for pods {} to be scheduled", pods.join(",")),
            ),
        };
        claim_event(claim, EventType::Normal, reason, message)
    }

    /// Upstream's `provisionClaim` for a binder without in-tree plugins:
    /// an external provisioner is asked through the claim's
    /// storage-provisioner annotations; a `kubernetes.io/` one cannot be.
    fn provision(&self, claim: &PersistentVolumeClaim) -> Vec<Action> {
        let class_name = claim_class(claim);
        let Some(class) = self.classes.get(class_name) else {
            let message = format!("storageclass.storage.k8s.io \"{class_name}\" not found");
            return vec![claim_event(
                claim,
                EventType::Warning,
                "ProvisioningFailed",
                message,
            )];
        };
        let provisioner = class.provisioner.as_str();
        if provisioner.starts_with("kubernetes.io/") {
            let message = format!("no volume plugin matched name: {provisioner}");
            return vec![claim_event(
                claim,
                EventType::Warning,
                "ProvisioningFailed",
                message,
            )];
        }
        let mut actions = Vec::new();
        if annotation(&claim.metadata, ANN_STORAGE_PROVISIONER) != Some(provisioner) {
            let mut updated = claim.clone();
            set_annotation(
                &mut updated.metadata,
                ANN_BETA_STORAGE_PROVISIONER,
                provisioner,
            );
            set_annotation(&mut updated.metadata, ANN_STORAGE_PROVISIONER, provisioner);
            actions.push(Action::SaveClaim(updated));
        }
        let message = format!(
            "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        );
        actions.push(claim_event(
            claim,
            EventType::Normal,
            "ExternalProvisioning",
            message,
        ));
        actions
    }
}

fn arrival_of(key: &ClaimKey, cached: &CachedClaim) -> Arrival {
    Arrival {
        created: cached
            .claim
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0),
        seen: cached.seen,
        claim: key.clone(),
    }
}

/// What a waiting claim needs from a volume; None for a claim asking for
/// access modes no volume offers (nothing can wake it).
fn need_of(claim: &PersistentVolumeClaim) -> Option<Need> {
    Some(Need {
        key: MatchKey::of_claim(claim),
        modes: AccessModeSet::requested(claim_access_modes(claim))?,
        request: claim_request(claim),
    })
}

/// Upstream's `bind`: the PV's claimRef and phase, then the claim's
/// volumeName, annotations and status, each written only if it changes.
fn bind(pv: &PersistentVolume, claim: &PersistentVolumeClaim, now: jiff::Timestamp) -> Vec<Action> {
    let mut actions = Vec::new();
    let bound_volume = volume_bound_to(pv, claim, now);
    if bound_volume != *pv {
        actions.push(Action::SaveVolume(bound_volume));
    }
    actions.extend(save_claim(claim, claim_bound_to(claim, pv)));
    actions
}

fn volume_bound_to(
    pv: &PersistentVolume,
    claim: &PersistentVolumeClaim,
    now: jiff::Timestamp,
) -> PersistentVolume {
    let mut updated = pv.clone();
    // A user's pre-binding (claimRef set to this claim) is not marked.
    let bound_by_controller = !is_volume_bound_to_claim(pv, claim);
    let spec = updated.spec.get_or_insert_default();
    let points_here = spec.claim_ref.as_ref().is_some_and(|r| {
        r.name.as_deref().unwrap_or("") == name(&claim.metadata)
            && r.namespace.as_deref().unwrap_or("") == namespace(&claim.metadata)
            && r.uid.as_deref().unwrap_or("") == uid(&claim.metadata)
    });
    if !points_here {
        spec.claim_ref = Some(claim_reference(claim));
    }
    if bound_by_controller && !has_annotation(&updated.metadata, ANN_BOUND_BY_CONTROLLER) {
        set_annotation(&mut updated.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
    }
    set_volume_phase(&mut updated, "Bound", "", now);
    updated
}

fn claim_bound_to(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> PersistentVolumeClaim {
    let pv_name = name(&pv.metadata);
    let mut updated = claim.clone();
    if claim_volume_name(claim) != pv_name {
        updated.spec.get_or_insert_default().volume_name = Some(pv_name.to_string());
        if !has_annotation(&updated.metadata, ANN_BOUND_BY_CONTROLLER) {
            set_annotation(&mut updated.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        }
    }
    if !has_annotation(&updated.metadata, ANN_BIND_COMPLETED) {
        set_annotation(&mut updated.metadata, ANN_BIND_COMPLETED, "yes");
    }
    with_status(&updated, "Bound", Some(pv))
}

/// Upstream's `updateClaimStatus`: the phase, plus the bound volume's
/// access modes and (when the claim becomes Bound) capacity, or neither
/// when there is no volume.
fn with_status(
    claim: &PersistentVolumeClaim,
    phase: &str,
    volume: Option<&PersistentVolume>,
) -> PersistentVolumeClaim {
    let becoming = claim_phase(claim) != phase;
    let mut updated = claim.clone();
    let status = updated.status.get_or_insert_default();
    status.phase = Some(phase.to_string());
    let Some(pv) = volume else {
        status.access_modes = None;
        status.capacity = None;
        return updated;
    };
    let spec = pv.spec.as_ref();
    status.access_modes = spec.and_then(|s| s.access_modes.clone());
    if !becoming {
        // A difference on an already Bound claim can be intentional (a
        // filesystem smaller than its block device): leave it.
        return updated;
    }
    if let Some(size) = annotation(&pv.metadata, ANN_PRE_RESIZE_CAPACITY) {
        let storage = ApiQuantity(size.to_string());
        status.capacity = Some(BTreeMap::from([("storage".to_string(), storage)]));
        return updated;
    }
    let claim_capacity = status.capacity.as_ref().and_then(|c| c.get("storage"));
    let same = claim_capacity.and_then(|q| parse_quantity(&q.0).ok()) == Some(volume_capacity(pv));
    if !same {
        status.capacity = spec.and_then(|s| s.capacity.clone());
    }
    updated
}

/// SaveClaim if anything changed.
fn save_claim(original: &PersistentVolumeClaim, updated: PersistentVolumeClaim) -> Option<Action> {
    (updated != *original).then_some(Action::SaveClaim(updated))
}

/// Upstream's `updateClaimStatusWithEvent(Lost)`: only a claim entering
/// Lost is written and reported.
fn lost(claim: &PersistentVolumeClaim, reason: &'static str, message: &str) -> Vec<Action> {
    if claim_phase(claim) == "Lost" {
        return Vec::new();
    }
    vec![
        Action::SaveClaim(with_status(claim, "Lost", None)),
        claim_event(claim, EventType::Warning, reason, message.to_string()),
    ]
}

/// Upstream's `checkVolumeSatisfyClaim` for a volume the claim names: why
/// it cannot be bound, in upstream's order, or None. Selector, node
/// affinity and phase are deliberately not checked.
fn unsatisfied_reason(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<String> {
    let pv_name = name(&pv.metadata);
    if pv.metadata.deletion_timestamp.is_some() {
        return Some(format!("the volume is marked for deletion \"{pv_name}\""));
    }
    // Upstream compares whole units here (`Quantity.Value()`).
    if volume_capacity(pv).bytes() < claim_request(claim).bytes() {
        return Some("requested PV is too small".into());
    }
    if volume_class(pv) != claim_class(claim) {
        return Some("storageClassName does not match".into());
    }
    if volume_volume_mode(pv) != claim_volume_mode(claim) {
        return Some("incompatible volumeMode".into());
    }
    let offered = volume_access_modes(pv);
    if !claim_access_modes(claim)
        .iter()
        .all(|m| offered.contains(m))
    {
        return Some("incompatible accessMode".into());
    }
    None
}
