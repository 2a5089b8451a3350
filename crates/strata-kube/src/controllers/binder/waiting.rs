//! Claims left Pending for lack of a volume, so a volume that becomes free
//! wakes exactly one claim it can satisfy (the oldest) instead of all of
//! them or none until the next resync.

use std::collections::{BTreeMap, HashMap};

use super::index::{FreeSlot, MatchKey};
use super::min_tree::MinTree;
use super::modes::AccessModeSet;
use super::objects::ClaimKey;
use crate::quantity::Quantity;

/// A claim's place in creation order: its creationTimestamp, then the
/// order the binder first saw it in (timestamps have one-second steps).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Arrival {
    pub created: Option<jiff::Timestamp>,
    pub seen: u64,
    pub claim: ClaimKey,
}

/// What a waiting claim needs, as its index entry.
pub(super) struct Need {
    pub key: MatchKey,
    pub modes: AccessModeSet,
    pub request: Quantity,
}

#[derive(Default)]
pub(super) struct WaitingClaims {
    /// By match key, then by requested access modes: claims in creation
    /// order, each valued by its requested size.
    groups: HashMap<MatchKey, BTreeMap<AccessModeSet, MinTree<Arrival, Quantity>>>,
    members: HashMap<ClaimKey, (MatchKey, AccessModeSet, Arrival)>,
}

impl WaitingClaims {
    pub fn insert(&mut self, arrival: Arrival, need: Need) {
        self.remove(&arrival.claim);
        let groups = self.groups.entry(need.key.clone()).or_default();
        let tree = groups.entry(need.modes).or_insert_with(MinTree::new);
        tree.insert(arrival.clone(), need.request);
        self.members
            .insert(arrival.claim.clone(), (need.key, need.modes, arrival));
    }

    pub fn remove(&mut self, claim: &ClaimKey) {
        let Some((key, modes, arrival)) = self.members.remove(claim) else {
            return;
        };
        let Some(groups) = self.groups.get_mut(&key) else {
            return;
        };
        if let Some(tree) = groups.get_mut(&modes) {
            tree.remove(&arrival);
            if tree.is_empty() {
                groups.remove(&modes);
            }
        }
        if groups.is_empty() {
            self.groups.remove(&key);
        }
    }

    pub fn contains(&self, claim: &ClaimKey) -> bool {
        self.members.contains_key(claim)
    }

    /// The oldest waiting claim the free volume can satisfy: same match
    /// key, every requested mode offered, request within capacity, and
    /// `accepts` (the claim's label selector) true.
    pub fn first_fit(
        &self,
        slot: &FreeSlot,
        accepts: impl Fn(&ClaimKey) -> bool,
    ) -> Option<ClaimKey> {
        let groups = self.groups.get(&slot.key)?;
        groups
            .iter()
            .filter(|(modes, _)| slot.modes.contains_all(**modes))
            .filter_map(|(_, tree)| first_accepted(tree, slot.capacity, &accepts))
            .min()
            .map(|arrival| arrival.claim.clone())
    }
}

fn first_accepted<'a>(
    tree: &'a MinTree<Arrival, Quantity>,
    capacity: Quantity,
    accepts: &impl Fn(&ClaimKey) -> bool,
) -> Option<&'a Arrival> {
    let mut after = None;
    loop {
        let (arrival, _) = tree.first_at_most(capacity, after)?;
        if accepts(&arrival.claim) {
            return Some(arrival);
        }
        after = Some(arrival);
    }
}
