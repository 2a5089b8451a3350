//! The scheduler, for the storage side of scheduling: a pod goes to a node
//! only when its claims can be used there. Bound claims need their PV's
//! node affinity to match; unbound WaitForFirstConsumer claims get a free
//! PV that fits the node (its claimRef set, as upstream's volume binding
//! plugin does) or, failing that, the annotation
//! `volume.kubernetes.io/selected-node` that lets the provisioner create
//! one there. The pod is bound (`spec.nodeName`) once every claim is Bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use serde_json::{Value, json};

use super::binder::{ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, Binder};
use super::informer::{Informer, Next, typed};
use super::protection::claims_of;
use super::provisioner::SELECTED_NODE;
use crate::kinds::Kind;
use crate::quantity::parse_quantity;
use crate::registry::events::{EventType, Recorder, Regarding};
use crate::registry::{Registry, meta};
use crate::store::{Change, Object, ObjectKey};

const KINDS: &[Kind] = &[
    Kind::Pod,
    Kind::PersistentVolume,
    Kind::PersistentVolumeClaim,
    Kind::StorageClass,
    Kind::Node,
];

const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

struct Scheduler {
    registry: Registry,
    recorder: Recorder,
    /// Only for its PV index and matching; never synced.
    volumes: Binder,
    /// Pods waiting for a node, and the last reason each was given.
    pending: HashMap<ObjectKey, String>,
}

/// Why a pod cannot go to a node (yet).
enum Verdict {
    /// Every claim is usable there: bind the pod.
    Fits,
    /// Claims are being bound or provisioned for this node: wait.
    Waiting,
    Unschedulable(String),
}

pub fn run(registry: Registry, stop: Arc<AtomicBool>) {
    let (mut informer, objects) = Informer::start(&registry, KINDS);
    let mut s = Scheduler {
        recorder: Recorder::new(registry.clone(), "default-scheduler"),
        registry,
        volumes: Binder::new(),
        pending: HashMap::new(),
    };
    objects.iter().for_each(|o| s.feed(Change::Added, o));
    while !stop.load(Ordering::Relaxed) {
        let mut changed = false;
        loop {
            match informer.try_next() {
                Next::Changed(event) => {
                    s.feed(event.change, &event.object);
                    changed = true;
                }
                Next::Relisted(objects) => {
                    s.volumes = Binder::new();
                    s.pending.clear();
                    objects.iter().for_each(|o| s.feed(Change::Added, o));
                    changed = true;
                }
                Next::Idle => break,
            }
        }
        if changed {
            s.schedule_all();
        }
        match informer.next(Duration::from_millis(500)) {
            Next::Changed(event) => s.feed(event.change, &event.object),
            Next::Relisted(objects) => objects.iter().for_each(|o| s.feed(Change::Added, o)),
            Next::Idle => {}
        }
        s.schedule_all();
    }
}

impl Scheduler {
    fn feed(&mut self, change: Change, object: &Object) {
        let key = &object.key;
        let deleted = change == Change::Deleted;
        match key.kind {
            Kind::PersistentVolume if deleted => self.volumes.remove_volume(&key.name),
            Kind::PersistentVolume => {
                if let Some(pv) = typed(object) {
                    self.volumes.upsert_volume(pv);
                }
            }
            Kind::StorageClass if deleted => self.volumes.remove_class(&key.name),
            Kind::StorageClass => {
                if let Some(sc) = typed(object) {
                    self.volumes.upsert_class(sc);
                }
            }
            Kind::Pod => {
                let unscheduled = !deleted
                    && object
                        .body
                        .pointer("/spec/nodeName")
                        .is_none_or(|n| n == "")
                    && meta::str_field(&object.body, "deletionTimestamp").is_none();
                if unscheduled {
                    self.pending.entry(key.clone()).or_default();
                } else {
                    self.pending.remove(key);
                }
            }
            _ => {}
        }
    }

    fn schedule_all(&mut self) {
        let pods: Vec<ObjectKey> = self.pending.keys().cloned().collect();
        for key in pods {
            let Ok(pod) = self.registry.get(Kind::Pod, &key.namespace, &key.name) else {
                self.pending.remove(&key);
                continue;
            };
            self.schedule(&pod);
        }
    }

    fn nodes(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .registry
            .list(Kind::Node, None, &Default::default())
            .items
            .iter()
            .filter_map(typed)
            .filter(|n: &Node| {
                !n.spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
            })
            .collect();
        nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        nodes
    }

    fn schedule(&mut self, pod: &Object) {
        let nodes = self.nodes();
        let mut reasons: Vec<String> = Vec::new();
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let labels = node.metadata.labels.clone().unwrap_or_default();
            match self.check(pod, &name, &labels) {
                Verdict::Fits => return self.bind(pod, &name),
                Verdict::Waiting => return,
                Verdict::Unschedulable(reason) => reasons.push(reason),
            }
        }
        let message = if nodes.is_empty() {
            "0/0 nodes are available: no nodes are registered.".to_string()
        } else {
            format!(
                "0/{} nodes are available: {}.",
                nodes.len(),
                summarise(&reasons)
            )
        };
        self.unschedulable(pod, &message);
    }

    /// Whether `pod`'s claims can be used on node `node`, reserving volumes
    /// and asking for provisioning as it goes.
    fn check(&mut self, pod: &Object, node: &str, labels: &BTreeMap<String, String>) -> Verdict {
        let namespace = &pod.key.namespace;
        let mut delayed: Vec<PersistentVolumeClaim> = Vec::new();
        let mut waiting = false;
        for name in claims_of(&pod.body) {
            let Ok(object) = self
                .registry
                .get(Kind::PersistentVolumeClaim, namespace, &name)
            else {
                return Verdict::Unschedulable(format!(
                    "persistentvolumeclaim \"{name}\" not found"
                ));
            };
            if meta::str_field(&object.body, "deletionTimestamp").is_some() {
                return Verdict::Unschedulable(format!(
                    "persistentvolumeclaim \"{name}\" is being deleted"
                ));
            }
            let Some(claim) = typed::<PersistentVolumeClaim>(&object) else {
                return Verdict::Unschedulable(format!(
                    "persistentvolumeclaim \"{name}\" cannot be read"
                ));
            };
            let volume = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default();
            let phase = claim
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if phase == "Lost" {
                return Verdict::Unschedulable(format!(
                    "persistentvolumeclaim \"{name}\" bound to non-existent persistentvolume \"{volume}\""
                ));
            }
            if !volume.is_empty() {
                if !bound(&claim) {
                    waiting = true;
                    continue;
                }
                match self.volumes.volume(&volume) {
                    None => return Verdict::Unschedulable(
                        "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
                            .into(),
                    ),
                    Some(pv) if !fits_node(pv, labels) => {
                        return Verdict::Unschedulable(
                            "node(s) had volume node affinity conflict".into(),
                        );
                    }
                    Some(_) => continue,
                }
            }
            if !self.is_delayed(&claim) {
                return Verdict::Unschedulable(
                    "pod has unbound immediate PersistentVolumeClaims".into(),
                );
            }
            delayed.push(claim);
        }
        // Smallest first, so two claims of one pod never get the same PV
        // and each gets the smallest that fits (as upstream).
        delayed.sort_by_key(requested);
        let mut chosen: HashSet<String> = HashSet::new();
        let mut reserve = Vec::new();
        let mut provision = Vec::new();
        for claim in delayed {
            if annotation(&claim, SELECTED_NODE).is_some_and(|n| n == node) {
                waiting = true;
                continue;
            }
            if let Some(pv) = self
                .volumes
                .find_matching_volume_for_node(&claim, labels, &chosen)
            {
                chosen.insert(pv.clone());
                reserve.push((pv, claim));
            } else if self.can_provision(&claim) {
                provision.push(claim);
            } else {
                return Verdict::Unschedulable(
                    "node(s) didn't find available persistent volumes to bind".into(),
                );
            }
        }
        if reserve.is_empty() && provision.is_empty() {
            return if waiting {
                Verdict::Waiting
            } else {
                Verdict::Fits
            };
        }
        for (pv, claim) in reserve {
            self.reserve(&pv, &claim);
        }
        for claim in provision {
            self.select_node(&claim, node);
        }
        Verdict::Waiting
    }

    fn class_of(&self, claim: &PersistentVolumeClaim) -> Option<Object> {
        let class = claim.spec.as_ref()?.storage_class_name.as_deref()?;
        self.registry.get(Kind::StorageClass, "", class).ok()
    }

    fn is_delayed(&self, claim: &PersistentVolumeClaim) -> bool {
        self.class_of(claim).is_some_and(|sc| {
            sc.body.get("volumeBindingMode").and_then(Value::as_str) == Some("WaitForFirstConsumer")
        })
    }

    fn can_provision(&self, claim: &PersistentVolumeClaim) -> bool {
        self.class_of(claim).is_some_and(|sc| {
            let provisioner = sc
                .body
                .get("provisioner")
                .and_then(Value::as_str)
                .unwrap_or("");
            !provisioner.is_empty() && provisioner != NO_PROVISIONER
        })
    }

    /// Points a free PV at the claim; the binder completes the binding.
    fn reserve(&self, pv: &str, claim: &PersistentVolumeClaim) {
        let Ok(object) = self.registry.get(Kind::PersistentVolume, "", pv) else {
            return;
        };
        let mut body = (*object.body).clone();
        let meta = &claim.metadata;
        body["spec"]["claimRef"] = json!({
            "kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "namespace": meta.namespace, "name": meta.name, "uid": meta.uid,
            "resourceVersion": meta.resource_version,
        });
        body["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] = "yes".into();
        if let Err(e) = self.registry.save(Kind::PersistentVolume, body) {
            tracing::debug!("scheduler: reserving {pv}: {e}; retried");
        }
    }

    fn select_node(&self, claim: &PersistentVolumeClaim, node: &str) {
        let meta = &claim.metadata;
        let (namespace, name) = (
            meta.namespace.as_deref().unwrap_or(""),
            meta.name.as_deref().unwrap_or(""),
        );
        let Ok(object) = self
            .registry
            .get(Kind::PersistentVolumeClaim, namespace, name)
        else {
            return;
        };
        let mut body = (*object.body).clone();
        body["metadata"]["annotations"][SELECTED_NODE] = node.into();
        if let Err(e) = self.registry.save(Kind::PersistentVolumeClaim, body) {
            tracing::debug!("scheduler: selecting {node} for {name}: {e}; retried");
        }
    }

    fn bind(&mut self, pod: &Object, node: &str) {
        let mut body = (*pod.body).clone();
        body["spec"]["nodeName"] = node.into();
        set_scheduled(&mut body, "True", None, None);
        match self.registry.save(Kind::Pod, body) {
            Ok(_) => {
                self.pending.remove(&pod.key);
                self.recorder.record(
                    &Regarding::of(Kind::Pod, &pod.body),
                    EventType::Normal,
                    "Scheduled",
                    &format!("Successfully assigned {} to {node}", pod.key.display_name()),
                );
            }
            Err(e) => tracing::debug!(
                "scheduler: binding {}: {e}; retried",
                pod.key.display_name()
            ),
        }
    }

    fn unschedulable(&mut self, pod: &Object, message: &str) {
        let last = self.pending.entry(pod.key.clone()).or_default();
        if last == message {
            return;
        }
        *last = message.to_string();
        self.recorder.record(
            &Regarding::of(Kind::Pod, &pod.body),
            EventType::Warning,
            "FailedScheduling",
            message,
        );
        let mut body = (*pod.body).clone();
        set_scheduled(&mut body, "False", Some("Unschedulable"), Some(message));
        let _ = self.registry.save(Kind::Pod, body);
    }
}

fn annotation<'a>(claim: &'a PersistentVolumeClaim, key: &str) -> Option<&'a str> {
    claim
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn bound(claim: &PersistentVolumeClaim) -> bool {
    annotation(claim, ANN_BIND_COMPLETED).is_some()
        && claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

fn requested(claim: &PersistentVolumeClaim) -> u64 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| parse_quantity(&q.0).ok())
        .map(|q| q.bytes())
        .unwrap_or(0)
}

/// A PV without node affinity fits every node.
fn fits_node(pv: &PersistentVolume, labels: &BTreeMap<String, String>) -> bool {
    super::binder::volume_fits_node(pv, labels)
}

/// `1 node(s) had …, 2 node(s) …` as upstream summarises per-node reasons.
fn summarise(reasons: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| match reason.strip_prefix("node(s) ") {
            Some(rest) => format!("{n} node(s) {rest}"),
            None => format!("{n} {reason}"),
        })
        .collect();
    parts.join(", ")
}

/// Sets the pod's PodScheduled condition.
fn set_scheduled(body: &mut Value, status: &str, reason: Option<&str>, message: Option<&str>) {
    let mut condition =
        json!({"type": "PodScheduled", "status": status, "lastTransitionTime": meta::now()});
    if let Some(reason) = reason {
        condition["reason"] = reason.into();
    }
    if let Some(message) = message {
        condition["message"] = message.into();
    }
    if !body["status"].is_object() {
        body["status"] = json!({});
    }
    let conditions = body["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"))
        .collect();
    conditions.push(condition);
    body["status"]["conditions"] = Value::Array(conditions);
}
