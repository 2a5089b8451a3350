//! The PV binder: the decisions of upstream's PersistentVolume controller
//! (`pkg/controller/volume/persistentvolume`), pure and in memory.
//!
//! The binder keeps its own caches of PVs, claims, StorageClasses and the
//! pods that use claims, fed by whoever runs it (`upsert_*`/`remove_*`). It
//! owns a work queue of claims and volumes; `sync` decides what one item
//! needs and returns it as `Action`s (whole-object writes and events)
//! without performing any I/O. The runner executes the actions in order,
//! stops at the first failed write and `requeue`s the item, and feeds every
//! stored object back through `upsert_*`. `apply_locally`/`run_locally` do
//! the same straight into the caches, for tests and benchmarks.
//!
//! Results follow upstream (see the reference note, sections 1.1–1.14),
//! with two differences in how work is found, not in what is decided:
//! matching uses an index instead of scanning every PV, and a volume that
//! becomes free wakes the oldest Pending claim it can satisfy (and a PV
//! naming a claim wakes that claim) instead of waiting for the 15-second
//! resync.

mod affinity;
mod claims;
mod index;
mod local;
mod min_tree;
mod modes;
mod objects;
mod pods;
mod queue;
mod volumes;
mod waiting;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use index::{FreeSlot, VolumeIndex, Wants, selector_accepts};
use objects::{
    ClaimKey, claim_class, claim_has_class, claim_ref_uid, claim_reference, claim_volume_name,
    is_bound, is_stale, uid, volume_reference,
};
use pods::Pods;
use queue::WorkQueue;
use waiting::WaitingClaims;

pub use affinity::volume_fits_node;
pub use local::{Unsettled, apply_locally, run_locally};
pub use objects::{
    ANN_BETA_STORAGE_CLASS, ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER, ANN_PRE_RESIZE_CAPACITY, ANN_PROVISIONED_BY, ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
};

/// One item of the binder's work queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Work {
    Claim { namespace: String, name: String },
    Volume { name: String },
}

impl Work {
    fn claim(key: &ClaimKey) -> Work {
        Work::Claim {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        }
    }

    fn volume(name: &str) -> Work {
        Work::Volume {
            name: name.to_string(),
        }
    }
}

pub use crate::registry::events::EventType;

/// What a sync asks the runner to do, in order.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "each action is built once and consumed once; plain objects keep the runner's matches simple"
)]
pub enum Action {
    /// Write the whole PV (metadata, spec and status) at its
    /// resourceVersion.
    SaveVolume(PersistentVolume),
    /// Write the whole claim (metadata, spec and status) at its
    /// resourceVersion.
    SaveClaim(PersistentVolumeClaim),
    /// Record an event about an object (the runner aggregates repeats).
    Event {
        regarding: ObjectReference,
        type_: EventType,
        reason: &'static str,
        message: String,
    },
}

fn claim_event(
    claim: &PersistentVolumeClaim,
    type_: EventType,
    reason: &'static str,
    message: String,
) -> Action {
    Action::Event {
        regarding: claim_reference(claim),
        type_,
        reason,
        message,
    }
}

fn volume_event(
    pv: &PersistentVolume,
    type_: EventType,
    reason: &'static str,
    message: String,
) -> Action {
    Action::Event {
        regarding: volume_reference(pv),
        type_,
        reason,
        message,
    }
}

struct CachedClaim {
    claim: PersistentVolumeClaim,
    /// When the binder first saw this claim (a counter): breaks ties between
    /// claims created in the same second.
    seen: u64,
}

/// The PV controller's state and decisions. See the module docs.
#[derive(Default)]
pub struct Binder {
    volumes: BTreeMap<String, PersistentVolume>,
    claims: BTreeMap<ClaimKey, CachedClaim>,
    classes: BTreeMap<String, StorageClass>,
    pods: Pods,
    index: VolumeIndex,
    /// Claims that found no volume, to be woken by one that becomes free.
    waiting: WaitingClaims,
    /// Claims woken by a free volume and not yet synced, with that volume:
    /// if the claim does not take it, the volume is offered again.
    woken_by: HashMap<ClaimKey, String>,
    /// Unbound claims that name their volume, by that volume's name.
    claims_naming: HashMap<String, BTreeSet<ClaimKey>>,
    /// Unbound claims by class (None: no class at all, the ones a new
    /// default class applies to).
    unbound_by_class: HashMap<Option<String>, BTreeSet<ClaimKey>>,
    queue: WorkQueue,
    seen_counter: u64,
}

impl Binder {
    pub fn new() -> Binder {
        Binder::default()
    }

    pub fn volume(&self, name: &str) -> Option<&PersistentVolume> {
        self.volumes.get(name)
    }

    pub fn claim(&self, namespace: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        let cached = self.claims.get(&ClaimKey::new(namespace, name));
        cached.map(|c| &c.claim)
    }

    /// Cached PVs, by name.
    pub fn volumes(&self) -> impl Iterator<Item = &PersistentVolume> {
        self.volumes.values()
    }

    /// Cached claims, by namespace then name.
    pub fn claims(&self) -> impl Iterator<Item = &PersistentVolumeClaim> {
        self.claims.values().map(|c| &c.claim)
    }

    /// Stores a PV (ignored if older than the cached one) and queues it.
    /// Also queues the claims it may now serve: the claim its claimRef
    /// names, claims naming it in `volumeName`, and, if it just became free,
    /// the oldest waiting claim it can satisfy.
    pub fn upsert_volume(&mut self, pv: PersistentVolume) {
        let name = objects::name(&pv.metadata).to_string();
        let old = self.volumes.get(&name);
        if old.is_some_and(|old| is_stale(&pv.metadata, &old.metadata)) {
            return;
        }
        // A free volume is offered when it becomes free or changes in a way
        // a waiting claim may care about (size, modes, class, labels).
        let relabelled = old.is_some_and(|old| old.metadata.labels != pv.metadata.labels);
        let was_free = old.and_then(FreeSlot::of);
        if let Some(old) = self.volumes.remove(&name) {
            self.index.remove(&name, &old);
        }
        self.index.insert(&name, &pv);
        let now_free = FreeSlot::of(&pv);
        let reserved_for = self.unbound_claim_named_by(&pv);
        self.volumes.insert(name.clone(), pv);
        self.queue.push(Work::volume(&name));
        if let Some(claim) = reserved_for {
            self.queue.push(Work::claim(&claim));
        }
        for claim in self.claims_naming.get(&name).into_iter().flatten() {
            self.queue.push(Work::claim(claim));
        }
        if now_free.is_some() && (now_free != was_free || relabelled) {
            self.offer(&name);
        }
    }

    /// Forgets a PV and queues the claim in its claimRef (which becomes
    /// Lost if it was bound to it).
    pub fn remove_volume(&mut self, name: &str) {
        let Some(old) = self.volumes.remove(name) else {
            return;
        };
        self.index.remove(name, &old);
        if let Some(claim) = ClaimKey::referenced_by(&old) {
            self.queue.push(Work::claim(&claim));
        }
    }

    /// Stores a claim (ignored if older than the cached one) and queues it.
    pub fn upsert_claim(&mut self, claim: PersistentVolumeClaim) {
        let key = ClaimKey::of(&claim);
        let seen = match self.claims.get(&key) {
            Some(cached) if is_stale(&claim.metadata, &cached.claim.metadata) => return,
            Some(cached) if uid(&cached.claim.metadata) == uid(&claim.metadata) => cached.seen,
            _ => {
                self.seen_counter += 1;
                self.seen_counter
            }
        };
        if let Some(old) = self.claims.remove(&key) {
            self.unlink_claim(&key, &old.claim);
        }
        self.link_claim(&key, &claim);
        self.claims.insert(key.clone(), CachedClaim { claim, seen });
        self.queue.push(Work::claim(&key));
    }

    /// Forgets a claim and queues the volumes it leaves behind: its
    /// `volumeName` and any PV whose claimRef still names it (e.g. one
    /// provisioned for it), so they are released promptly.
    pub fn remove_claim(&mut self, namespace: &str, name: &str) {
        let key = ClaimKey::new(namespace, name);
        let Some(old) = self.claims.remove(&key) else {
            return;
        };
        self.unlink_claim(&key, &old.claim);
        let volume = claim_volume_name(&old.claim);
        if !volume.is_empty() {
            self.queue.push(Work::volume(volume));
        }
        let referencing: Vec<String> = self.index.referencing(&key).cloned().collect();
        for volume in referencing {
            self.queue.push(Work::volume(&volume));
        }
        if let Some(volume) = self.woken_by.remove(&key) {
            self.offer(&volume);
        }
    }

    /// Stores a class and queues the unbound claims it affects: those of
    /// that class, and, when there is a default class, those with none.
    pub fn upsert_class(&mut self, class: StorageClass) {
        let name = objects::name(&class.metadata).to_string();
        if let Some(old) = self.classes.get(&name)
            && is_stale(&class.metadata, &old.metadata)
        {
            return;
        }
        self.classes.insert(name.clone(), class);
        self.queue_unbound_claims(Some(name));
        if self.default_class().is_some() {
            self.queue_unbound_claims(None);
        }
    }

    pub fn remove_class(&mut self, name: &str) {
        if self.classes.remove(name).is_some() {
            self.queue_unbound_claims(Some(name.to_string()));
        }
    }

    /// Stores which claims a pod uses; when that changes, unbound claims it
    /// uses are queued (their WaitForFirstConsumer events name waiting pods)
    /// and so are the volumes of deleted claims (recycling waits for pods).
    pub fn upsert_pod(&mut self, pod: &Pod) {
        for claim in self.pods.upsert(pod) {
            self.claim_users_changed(&claim);
        }
    }

    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        for claim in self.pods.remove(namespace, name) {
            self.claim_users_changed(&claim);
        }
    }

    pub fn next_work(&mut self) -> Option<Work> {
        self.queue.pop()
    }

    /// Queues an item again, e.g. after one of its writes failed.
    pub fn requeue(&mut self, work: Work) {
        self.queue.push(work);
    }

    /// Queues every volume, then every claim: upstream's periodic resync.
    pub fn resync_all(&mut self) {
        for name in self.volumes.keys() {
            self.queue.push(Work::volume(name));
        }
        for key in self.claims.keys() {
            self.queue.push(Work::claim(key));
        }
    }

    /// Decides what one work item needs. The caches are not changed by the
    /// returned writes until they are stored and fed back through
    /// `upsert_*`.
    pub fn sync(&mut self, work: &Work, now: jiff::Timestamp) -> Vec<Action> {
        match work {
            Work::Claim { namespace, name } => {
                self.sync_claim(&ClaimKey::new(namespace, name), now)
            }
            Work::Volume { name } => self.sync_volume(name, now),
        }
    }

    /// The default StorageClass: among classes annotated
    /// `is-default-class: "true"` (or the beta key), the newest, then the
    /// first by name.
    pub fn default_class(&self) -> Option<&StorageClass> {
        crate::registry::choose_default_class(self.classes.values())
    }

    /// The scheduler's volume choice for an unbound claim on a node
    /// (upstream's `FindMatchingVolume` with a node): the smallest free
    /// volume of the claim's class that fits the node's labels, offers
    /// every requested mode and is not in `excluded`; or the volume
    /// pre-bound to the claim if it fits the node (and none if it does not).
    pub fn find_matching_volume_for_node(
        &self,
        claim: &PersistentVolumeClaim,
        node_labels: &BTreeMap<String, String>,
        excluded: &HashSet<String>,
    ) -> Option<String> {
        let wants = Wants::of(claim).ok()?;
        let found = self
            .index
            .match_for_node(&self.volumes, claim, &wants, node_labels, excluded);
        found.map(str::to_string)
    }

    /// The claim this PV's claimRef names, if it exists, is not bound yet
    /// and the claimRef's UID (if any) is its own.
    fn unbound_claim_named_by(&self, pv: &PersistentVolume) -> Option<ClaimKey> {
        let key = ClaimKey::referenced_by(pv)?;
        let claim = &self.claims.get(&key)?.claim;
        let ref_uid = claim_ref_uid(pv).unwrap_or("");
        let ours = ref_uid.is_empty() || ref_uid == uid(&claim.metadata);
        (ours && !is_bound(claim)).then_some(key)
    }

    /// Wakes the oldest waiting claim the volume can satisfy, if the volume
    /// is free.
    fn offer(&mut self, volume: &str) {
        let Some(pv) = self.volumes.get(volume) else {
            return;
        };
        let Some(slot) = FreeSlot::of(pv) else {
            return;
        };
        let claims = &self.claims;
        let accepts = |key: &ClaimKey| {
            claims
                .get(key)
                .is_some_and(|c| selector_accepts(&c.claim, pv))
        };
        let Some(claim) = self.waiting.first_fit(&slot, accepts) else {
            return;
        };
        self.waiting.remove(&claim);
        self.queue.push(Work::claim(&claim));
        self.woken_by.insert(claim, volume.to_string());
    }

    fn queue_unbound_claims(&mut self, class: Option<String>) {
        for claim in self.unbound_by_class.get(&class).into_iter().flatten() {
            self.queue.push(Work::claim(claim));
        }
    }

    fn claim_users_changed(&mut self, claim: &ClaimKey) {
        match self.claims.get(claim) {
            Some(cached) if !is_bound(&cached.claim) => self.queue.push(Work::claim(claim)),
            Some(_) => {}
            None => {
                for volume in self.index.referencing(claim) {
                    self.queue.push(Work::volume(volume));
                }
            }
        }
    }

    /// Adds the claim to the lookups kept for unbound claims.
    fn link_claim(&mut self, key: &ClaimKey, claim: &PersistentVolumeClaim) {
        if is_bound(claim) {
            return;
        }
        let volume = claim_volume_name(claim);
        if !volume.is_empty() {
            let naming = self.claims_naming.entry(volume.to_string()).or_default();
            naming.insert(key.clone());
        }
        let class = claim_has_class(claim).then(|| claim_class(claim).to_string());
        self.unbound_by_class
            .entry(class)
            .or_default()
            .insert(key.clone());
    }

    /// Undoes `link_claim`, and takes the claim off the waiting list (its
    /// next sync puts it back if it still finds no volume).
    fn unlink_claim(&mut self, key: &ClaimKey, claim: &PersistentVolumeClaim) {
        self.waiting.remove(key);
        if is_bound(claim) {
            return;
        }
        let volume = claim_volume_name(claim);
        if let Some(naming) = self.claims_naming.get_mut(volume) {
            naming.remove(key);
            if naming.is_empty() {
                self.claims_naming.remove(volume);
            }
        }
        let class = claim_has_class(claim).then(|| claim_class(claim).to_string());
        if let Some(claims) = self.unbound_by_class.get_mut(&class) {
            claims.remove(key);
            if claims.is_empty() {
                self.unbound_by_class.remove(&class);
            }
        }
    }
}
