//! The little the binder needs to know about pods: which claims each one
//! uses, and whether it is still waiting for a node or still running.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Pod;

use super::objects::{ClaimKey, name, namespace, resource_version};

/// One pod's use of claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PodUse {
    /// Names of the claims it mounts (in its own namespace), including the
    /// `<pod>-<volume>` claims of generic ephemeral volumes.
    pub claims: BTreeSet<String>,
    /// Not Succeeded or Failed.
    pub running: bool,
    /// No `spec.nodeName` yet.
    pub unscheduled: bool,
}

impl PodUse {
    fn of(pod: &Pod) -> PodUse {
        let spec = pod.spec.as_ref();
        let pod_name = name(&pod.metadata);
        let claims = spec
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
                (Some(source), _) => Some(source.claim_name.clone()),
                (None, Some(_)) => Some(format!("{pod_name}-{}", v.name)),
                (None, None) => None,
            })
            .collect();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        PodUse {
            claims,
            running: !matches!(phase, Some("Succeeded" | "Failed")),
            unscheduled: spec.is_none_or(|s| s.node_name.as_deref().unwrap_or("").is_empty()),
        }
    }
}

/// A pod's namespace and name.
type PodKey = (String, String);

/// Pods by namespace/name, and the pods of each claim.
#[derive(Default)]
pub(super) struct Pods {
    pods: HashMap<PodKey, (Option<u64>, PodUse)>,
    by_claim: HashMap<ClaimKey, BTreeSet<String>>,
}

impl Pods {
    /// Records the pod; returns the claims whose users changed (empty for a
    /// stale or unchanged pod).
    pub fn upsert(&mut self, pod: &Pod) -> Vec<ClaimKey> {
        let key = (
            namespace(&pod.metadata).to_string(),
            name(&pod.metadata).to_string(),
        );
        let version = resource_version(&pod.metadata);
        let usage = PodUse::of(pod);
        if let Some((cached, old)) = self.pods.get(&key) {
            let stale = matches!((version, cached), (Some(new), Some(old)) if new < *old);
            if stale || *old == usage {
                return Vec::new();
            }
        }
        let old = self.pods.insert(key.clone(), (version, usage.clone()));
        self.relink(&key, old.map(|(_, u)| u), Some(usage))
    }

    /// Forgets the pod; returns the claims it used.
    pub fn remove(&mut self, namespace: &str, name: &str) -> Vec<ClaimKey> {
        let key = (namespace.to_string(), name.to_string());
        let old = self.pods.remove(&key).map(|(_, u)| u);
        self.relink(&key, old, None)
    }

    fn relink(&mut self, pod: &PodKey, old: Option<PodUse>, new: Option<PodUse>) -> Vec<ClaimKey> {
        let (pod_namespace, pod_name) = pod;
        let claim_key = |claim: &String| ClaimKey::new(pod_namespace, claim);
        let old_claims = old.map(|u| u.claims).unwrap_or_default();
        let new_claims = new.map(|u| u.claims).unwrap_or_default();
        for claim in old_claims.difference(&new_claims) {
            let key = claim_key(claim);
            if let Some(pods) = self.by_claim.get_mut(&key) {
                pods.remove(pod_name);
                if pods.is_empty() {
                    self.by_claim.remove(&key);
                }
            }
        }
        for claim in &new_claims {
            let pods = self.by_claim.entry(claim_key(claim)).or_default();
            pods.insert(pod_name.clone());
        }
        old_claims.union(&new_claims).map(claim_key).collect()
    }

    /// The running pods that use the claim, with their use, by name.
    fn users(&self, claim: &ClaimKey) -> BTreeMap<&str, &PodUse> {
        let names = self.by_claim.get(claim).into_iter().flatten();
        names
            .filter_map(|pod| {
                let key = (claim.namespace.clone(), pod.clone());
                let (_, usage) = self.pods.get(&key)?;
                usage.running.then_some((pod.as_str(), usage))
            })
            .collect()
    }

    /// Names of the running pods using the claim that have no node yet.
    pub fn unscheduled_users(&self, claim: &ClaimKey) -> Vec<String> {
        let users = self.users(claim);
        let waiting = users.into_iter().filter(|(_, usage)| usage.unscheduled);
        waiting.map(|(pod, _)| pod.to_string()).collect()
    }

    /// `namespace/name` of every running pod using the claim.
    pub fn running_users(&self, claim: &ClaimKey) -> Vec<String> {
        let users = self.users(claim).into_keys();
        users
            .map(|pod| format!("{}/{pod}", claim.namespace))
            .collect()
    }
}
