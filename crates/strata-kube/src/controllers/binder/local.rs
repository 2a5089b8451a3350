//! The "binder alone" path: the binder's writes applied straight into its
//! own caches, with no API server and no store. For tests and benchmarks
//! of the binder's decisions; the real runner writes through the API and
//! feeds stored objects back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::objects::resource_version;
use super::{Action, Binder};

/// The binder kept finding work: it did not settle within the budget.
#[derive(Debug, thiserror::Error)]
#[error(
    "the binder did not settle within {0} syncs; a sync keeps producing work, look for a write that changes nothing but the resourceVersion"
)]
pub struct Unsettled(pub usize);

/// Stores each SaveVolume/SaveClaim into the binder's caches as an API
/// server would (resourceVersion bumped by one) and returns the other
/// actions (the events), in order. Local writes never conflict.
pub fn apply_locally(binder: &mut Binder, actions: Vec<Action>) -> Vec<Action> {
    let mut events = Vec::new();
    for action in actions {
        match action {
            Action::SaveVolume(mut pv) => {
                bump(&mut pv.metadata);
                binder.upsert_volume(pv);
            }
            Action::SaveClaim(mut claim) => {
                bump(&mut claim.metadata);
                binder.upsert_claim(claim);
            }
            event @ Action::Event { .. } => events.push(event),
        }
    }
    events
}

/// Syncs and applies locally until the queue is empty; returns every event
/// in order, or `Unsettled` after `max_syncs` syncs.
pub fn run_locally(
    binder: &mut Binder,
    now: jiff::Timestamp,
    max_syncs: usize,
) -> Result<Vec<Action>, Unsettled> {
    let mut events = Vec::new();
    for _ in 0..max_syncs {
        let Some(work) = binder.next_work() else {
            return Ok(events);
        };
        let actions = binder.sync(&work, now);
        events.extend(apply_locally(binder, actions));
    }
    match binder.next_work() {
        None => Ok(events),
        Some(work) => {
            binder.requeue(work);
            Err(Unsettled(max_syncs))
        }
    }
}

fn bump(meta: &mut ObjectMeta) {
    let next = resource_version(meta).unwrap_or(0) + 1;
    meta.resource_version = Some(next.to_string());
}
