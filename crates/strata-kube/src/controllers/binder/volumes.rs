//! Volume sync (upstream's `syncVolume`, reference 1.7 and 1.10): keep a
//! PV's phase in step with its claim, release it when the claim is gone and
//! apply its reclaim policy.

use k8s_openapi::api::core::v1::PersistentVolume;

use super::objects::{
    ANN_BOUND_BY_CONTROLLER, ANN_PROVISIONED_BY, ClaimKey, annotation, claim_ref_uid,
    claim_volume_mode, claim_volume_name, has_annotation, name, remove_annotation,
    set_volume_phase, uid, volume_phase, volume_volume_mode,
};
use super::{Action, Binder, EventType, Work, claim_event, volume_event};

/// What the reclaim policy asks for a released volume.
enum Reclaim {
    /// Leave it Released: Retain, or an external deleter will act.
    Keep,
    /// Mark it Failed with a Warning event.
    Fail {
        reason: &'static str,
        message: String,
    },
    /// Not yet: a Normal event says why.
    Wait {
        reason: &'static str,
        message: String,
    },
}

impl Binder {
    pub(super) fn sync_volume(&mut self, volume_name: &str, now: jiff::Timestamp) -> Vec<Action> {
        let Some(pv) = self.volumes.get(volume_name) else {
            return Vec::new();
        };
        let (actions, wake) = self.decide_volume(pv, now);
        if let Some(claim) = wake {
            self.queue.push(Work::claim(&claim));
        }
        actions
    }

    /// The actions for the volume, and a claim to queue (an unbound claim
    /// this volume was made or reserved for, which its own sync binds).
    fn decide_volume(
        &self,
        pv: &PersistentVolume,
        now: jiff::Timestamp,
    ) -> (Vec<Action>, Option<ClaimKey>) {
        let (Some(key), Some(ref_uid)) = (ClaimKey::referenced_by(pv), claim_ref_uid(pv)) else {
            return (phase_change(pv, "Available", now), None);
        };
        if ref_uid.is_empty() {
            // Reserved for a claim name; that claim's sync finishes the job.
            return (phase_change(pv, "Available", now), None);
        }
        let claim = self.claims.get(&key).map(|c| &c.claim);
        // A claim of the same name but another UID is a different claim.
        let Some(claim) = claim.filter(|c| uid(&c.metadata) == ref_uid) else {
            return (self.release(pv, now), None);
        };
        let bound_to = claim_volume_name(claim);
        if bound_to.is_empty() {
            if claim_volume_mode(claim) != volume_volume_mode(pv) {
                return (volume_mode_mismatch(pv, claim), None);
            }
            return (Vec::new(), Some(key));
        }
        if bound_to == name(&pv.metadata) {
            return (phase_change(pv, "Bound", now), None);
        }
        // The claim is bound to another volume.
        let provisioned = has_annotation(&pv.metadata, ANN_PROVISIONED_BY);
        if provisioned && reclaim_policy(pv) == "Delete" {
            // The loser of a provisioning race is deleted.
            return (self.release(pv, now), None);
        }
        (unbind(pv, now), None)
    }

    /// The claim is gone: the volume becomes Released (Failed stays Failed)
    /// and its reclaim policy is applied, in one write.
    fn release(&self, pv: &PersistentVolume, now: jiff::Timestamp) -> Vec<Action> {
        let mut updated = pv.clone();
        if !matches!(volume_phase(pv), "Released" | "Failed") {
            set_volume_phase(&mut updated, "Released", "", now);
        }
        let mut events = Vec::new();
        match self.reclaim(pv) {
            Reclaim::Keep => {}
            Reclaim::Wait { reason, message } => {
                events.push(volume_event(pv, EventType::Normal, reason, message));
            }
            // Failing again is silent: upstream reports only the change.
            Reclaim::Fail { reason, message } => {
                if volume_phase(pv) != "Failed" {
                    set_volume_phase(&mut updated, "Failed", &message, now);
                    events.push(volume_event(pv, EventType::Warning, reason, message));
                }
            }
        }
        let mut actions: Vec<Action> = (updated != *pv)
            .then_some(Action::SaveVolume(updated))
            .into_iter()
            .collect();
        actions.extend(events);
        actions
    }

    fn reclaim(&self, pv: &PersistentVolume) -> Reclaim {
        match reclaim_policy(pv) {
            "Retain" => Reclaim::Keep,
            "Delete" => deleter(pv),
            "Recycle" => self.recycle(pv),
            _ => Reclaim::Fail {
                reason: "VolumeUnknownReclaimPolicy",
                message: "Volume has unrecognized PersistentVolumeReclaimPolicy".into(),
            },
        }
    }

    /// Strata has no recycler; upstream first refuses while pods still use
    /// the claim.
    fn recycle(&self, pv: &PersistentVolume) -> Reclaim {
        let users = ClaimKey::referenced_by(pv).map(|claim| self.pods.running_users(&claim));
        match users {
            Some(pods) if !pods.is_empty() => Reclaim::Wait {
                reason: "VolumeFailedRecycle",
                message: format!("Volume is used by pods: {}", pods.join(",")),
            },
            _ => Reclaim::Fail {
                reason: "VolumeFailedRecycle",
                message: "No recycler plugin found for the volume!".into(),
            },
        }
    }
}

/// The reclaim policy; absent reads as Retain, the API server's default
/// for PVs made by hand.
fn reclaim_policy(pv: &PersistentVolume) -> &str {
    let spec = pv.spec.as_ref();
    let policy = spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    policy.unwrap_or("Retain")
}

/// Who deletes a Delete volume. A volume from an external provisioner, or
/// any CSI volume, is deleted by the provisioner controller once Released;
/// Strata has no in-tree deleters, so anything else fails as upstream's
/// does when no plugin matches.
fn deleter(pv: &PersistentVolume) -> Reclaim {
    let provisioned_by = annotation(&pv.metadata, ANN_PROVISIONED_BY).unwrap_or("");
    let message = if provisioned_by.starts_with("kubernetes.io/") {
        format!("no volume plugin matched name: {provisioned_by}")
    } else if !provisioned_by.is_empty() || pv.spec.as_ref().is_some_and(|s| s.csi.is_some()) {
        return Reclaim::Keep;
    } else {
        format!(
            "error getting deleter volume plugin for volume \"{}\": no deletable volume plugin matched",
            name(&pv.metadata)
        )
    };
    Reclaim::Fail {
        reason: "VolumeFailedDelete",
        message,
    }
}

/// The volume in `phase`, written only if that is a change.
fn phase_change(pv: &PersistentVolume, phase: &str, now: jiff::Timestamp) -> Vec<Action> {
    if volume_phase(pv) == phase {
        return Vec::new();
    }
    let mut updated = pv.clone();
    set_volume_phase(&mut updated, phase, "", now);
    vec![Action::SaveVolume(updated)]
}

/// Upstream's `unbindVolume`: a controller's binding is undone entirely; a
/// user's pre-binding only loses the UID, so the volume stays reserved for
/// that claim name.
fn unbind(pv: &PersistentVolume, now: jiff::Timestamp) -> Vec<Action> {
    let mut updated = pv.clone();
    let by_controller = has_annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER);
    if let Some(spec) = &mut updated.spec {
        if by_controller {
            spec.claim_ref = None;
        } else if let Some(claim_ref) = &mut spec.claim_ref {
            claim_ref.uid = None;
        }
    }
    remove_annotation(&mut updated.metadata, ANN_BOUND_BY_CONTROLLER);
    set_volume_phase(&mut updated, "Available", "", now);
    vec![Action::SaveVolume(updated)]
}

fn volume_mode_mismatch(
    pv: &PersistentVolume,
    claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim,
) -> Vec<Action> {
    let claim_name = name(&claim.metadata);
    let pv_name = name(&pv.metadata);
    vec![
        volume_event(
            pv,
            EventType::Warning,
            "VolumeMismatch",
            format!(
                "Cannot bind PersistentVolume to requested PersistentVolumeClaim \"{claim_name}\" due to incompatible volumeMode."
            ),
        ),
        claim_event(
            claim,
            EventType::Warning,
            "VolumeMismatch",
            format!(
                "Cannot bind PersistentVolume \"{pv_name}\" to requested PersistentVolumeClaim due to incompatible volumeMode."
            ),
        ),
    ]
}
