//! Finding the volume for a claim without scanning every PV.
//!
//! Upstream scans each access-mode bucket linearly (`FindMatchingVolume`).
//! Here every bucket is split further by what must be equal between claim
//! and volume (class, volumeMode, volume attributes class), and each part
//! keeps its free volumes ordered by capacity, so "the smallest free volume
//! of at least the requested size" is a range lookup. Volumes whose
//! claimRef names a claim are found through that claim. The results are
//! upstream's: buckets with fewer modes first, a volume pre-bound to the
//! claim before free ones of the same bucket, then the smallest that fits.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use super::affinity::volume_fits_node;
use super::modes::AccessModeSet;
use super::objects::{
    ClaimKey, claim_access_modes, claim_attributes_class, claim_class, claim_request,
    claim_volume_mode, is_volume_bound_to_claim, volume_access_modes, volume_attributes_class,
    volume_capacity, volume_class, volume_phase, volume_volume_mode,
};
use crate::quantity::Quantity;
use crate::selector::{LabelSelector, SelectorError};

/// What must be equal between a claim and a free volume for them to match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct MatchKey {
    class: String,
    volume_mode: String,
    attributes_class: String,
}

impl MatchKey {
    pub fn of_claim(claim: &PersistentVolumeClaim) -> MatchKey {
        MatchKey {
            class: claim_class(claim).to_string(),
            volume_mode: claim_volume_mode(claim).to_string(),
            attributes_class: claim_attributes_class(claim).to_string(),
        }
    }

    pub fn of_volume(pv: &PersistentVolume) -> MatchKey {
        MatchKey {
            class: volume_class(pv).to_string(),
            volume_mode: volume_volume_mode(pv).to_string(),
            attributes_class: volume_attributes_class(pv).to_string(),
        }
    }
}

/// Where a free volume sits in the index: a volume any claim may take
/// (no claimRef, phase Available, not being deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FreeSlot {
    pub modes: AccessModeSet,
    pub key: MatchKey,
    pub capacity: Quantity,
}

impl FreeSlot {
    pub fn of(pv: &PersistentVolume) -> Option<FreeSlot> {
        let spec = pv.spec.as_ref();
        let free = spec.is_none_or(|s| s.claim_ref.is_none())
            && volume_phase(pv) == "Available"
            && pv.metadata.deletion_timestamp.is_none();
        free.then(|| FreeSlot {
            modes: AccessModeSet::offered(volume_access_modes(pv)),
            key: MatchKey::of_volume(pv),
            capacity: volume_capacity(pv),
        })
    }
}

/// What a claim asks of a volume, worked out once per match.
pub(super) struct Wants {
    /// None: the claim asks for a mode no volume offers.
    modes: Option<AccessModeSet>,
    key: MatchKey,
    request: Quantity,
    selector: Option<LabelSelector>,
}

impl Wants {
    pub fn of(claim: &PersistentVolumeClaim) -> Result<Wants, SelectorError> {
        let selector = claim.spec.as_ref().and_then(|s| s.selector.as_ref());
        Ok(Wants {
            modes: AccessModeSet::requested(claim_access_modes(claim)),
            key: MatchKey::of_claim(claim),
            request: claim_request(claim),
            selector: selector.map(LabelSelector::from_api).transpose()?,
        })
    }

    pub fn accepts_labels(&self, pv: &PersistentVolume) -> bool {
        let labels = pv.metadata.labels.as_ref();
        self.selector
            .as_ref()
            .is_none_or(|s| s.matches_btree(labels))
    }

    /// Upstream's checks that come before the pre-bound test: big enough,
    /// same volumeMode and volume attributes class, not being deleted.
    fn basics_fit(&self, pv: &PersistentVolume) -> bool {
        volume_capacity(pv) >= self.request
            && volume_volume_mode(pv) == self.key.volume_mode
            && volume_attributes_class(pv) == self.key.attributes_class
            && pv.metadata.deletion_timestamp.is_none()
    }
}

/// Whether the claim's label selector (if any) accepts the volume; a
/// selector that does not parse accepts nothing.
pub(super) fn selector_accepts(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => true,
        Some(selector) => LabelSelector::from_api(selector)
            .is_ok_and(|s| s.matches_btree(pv.metadata.labels.as_ref())),
    }
}

/// Volumes by capacity then name: the smallest fit is the first in range.
type Shelf = BTreeSet<(Quantity, String)>;

#[derive(Default)]
pub(super) struct VolumeIndex {
    /// Free volumes by access-mode set, then by match key.
    free: BTreeMap<AccessModeSet, HashMap<MatchKey, Shelf>>,
    /// Every volume whose claimRef names a claim, by that claim.
    by_claim: HashMap<ClaimKey, BTreeSet<String>>,
}

impl VolumeIndex {
    pub fn insert(&mut self, name: &str, pv: &PersistentVolume) {
        if let Some(slot) = FreeSlot::of(pv) {
            let shelf = self.free.entry(slot.modes).or_default().entry(slot.key);
            shelf.or_default().insert((slot.capacity, name.to_string()));
        }
        if let Some(claim) = ClaimKey::referenced_by(pv) {
            self.by_claim
                .entry(claim)
                .or_default()
                .insert(name.to_string());
        }
    }

    pub fn remove(&mut self, name: &str, pv: &PersistentVolume) {
        if let Some(slot) = FreeSlot::of(pv)
            && let Some(shelves) = self.free.get_mut(&slot.modes)
            && let Some(shelf) = shelves.get_mut(&slot.key)
        {
            shelf.remove(&(slot.capacity, name.to_string()));
            if shelf.is_empty() {
                shelves.remove(&slot.key);
            }
        }
        if let Some(claim) = ClaimKey::referenced_by(pv)
            && let Some(names) = self.by_claim.get_mut(&claim)
        {
            names.remove(name);
            if names.is_empty() {
                self.by_claim.remove(&claim);
            }
        }
    }

    /// Names of the volumes whose claimRef names `claim` (any UID).
    pub fn referencing(&self, claim: &ClaimKey) -> impl Iterator<Item = &String> {
        self.by_claim.get(claim).into_iter().flatten()
    }

    /// Upstream's `findBestMatchForClaim` (the PV controller's path: no
    /// node, access modes enforced only by bucket choice). With
    /// `delay_binding` only a volume pre-bound to the claim is returned.
    pub fn best_match<'a>(
        &'a self,
        volumes: &'a BTreeMap<String, PersistentVolume>,
        claim: &PersistentVolumeClaim,
        wants: &Wants,
        delay_binding: bool,
    ) -> Option<&'a str> {
        let modes = wants.modes?;
        let prebound = self.prebound(volumes, claim, wants);
        for set in AccessModeSet::all_by_size().filter(|s| s.contains_all(modes)) {
            let in_bucket = |(_, _, pv): &&(Quantity, &String, &PersistentVolume)| {
                AccessModeSet::offered(volume_access_modes(pv)) == set
            };
            if let Some(&(_, name, _)) = prebound.iter().find(in_bucket) {
                return Some(name.as_str());
            }
            if delay_binding {
                continue;
            }
            let mut fitting = self.free_fits(set, wants);
            if let Some(name) = fitting.find(|name| wants.accepts_labels(&volumes[*name])) {
                return Some(name.as_str());
            }
        }
        None
    }

    /// Upstream's `FindMatchingVolume` with a node (the scheduler's path):
    /// volumes of the claim's class that fit the node's labels, offer every
    /// requested mode and are not in `excluded`. A volume pre-bound to the
    /// claim decides alone: it is the answer if it fits the node, else
    /// there is none.
    pub fn match_for_node<'a>(
        &'a self,
        volumes: &'a BTreeMap<String, PersistentVolume>,
        claim: &PersistentVolumeClaim,
        wants: &Wants,
        node_labels: &BTreeMap<String, String>,
        excluded: &HashSet<String>,
    ) -> Option<&'a str> {
        let modes = wants.modes?;
        let prebound = self
            .prebound(volumes, claim, wants)
            .into_iter()
            .find(|(_, name, pv)| !excluded.contains(*name) && volume_class(pv) == wants.key.class);
        if let Some((_, name, pv)) = prebound {
            return volume_fits_node(pv, node_labels).then_some(name.as_str());
        }
        let usable = |name: &&String| {
            let pv = &volumes[*name];
            !excluded.contains(*name)
                && wants.accepts_labels(pv)
                && volume_fits_node(pv, node_labels)
        };
        AccessModeSet::all_by_size()
            .filter(|s| s.contains_all(modes))
            .filter_map(|set| {
                let name = self.free_fits(set, wants).find(&usable)?;
                Some((volume_capacity(&volumes[name]), name))
            })
            .min()
            .map(|(_, name)| name.as_str())
    }

    /// Volumes pre-bound to the claim that pass the basic checks, smallest
    /// first (upstream returns whichever it meets first).
    fn prebound<'a>(
        &'a self,
        volumes: &'a BTreeMap<String, PersistentVolume>,
        claim: &PersistentVolumeClaim,
        wants: &Wants,
    ) -> Vec<(Quantity, &'a String, &'a PersistentVolume)> {
        let mut found: Vec<_> = self
            .referencing(&ClaimKey::of(claim))
            .filter_map(|name| Some((name, volumes.get(name)?)))
            .filter(|(_, pv)| is_volume_bound_to_claim(pv, claim) && wants.basics_fit(pv))
            .map(|(name, pv)| (volume_capacity(pv), name, pv))
            .collect();
        found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        found
    }

    /// Free volumes in bucket `set` with the claim's match key and at
    /// least its requested size, smallest first.
    fn free_fits<'a>(
        &'a self,
        set: AccessModeSet,
        wants: &Wants,
    ) -> impl Iterator<Item = &'a String> {
        let shelf = self
            .free
            .get(&set)
            .and_then(|shelves| shelves.get(&wants.key));
        let from = (wants.request, String::new());
        shelf
            .into_iter()
            .flat_map(move |s| s.range(from.clone()..))
            .map(|(_, name)| name)
    }
}
