//! The node agent's bookkeeping and decisions: a record per pod on this
//! node (by UID), synced on every change to it and every second. A sync
//! either runs the pod (volumes, then its init containers one by one, then
//! its containers as their restart policy and back-off say, then the
//! status) or, for a pod being deleted or gone, stops it, removes its
//! containers, tears its volumes down and lets the API server forget it.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::KubeletConfig;
use super::backoff::Backoff;
use super::runtime::*;
use super::status::{
    ContainerView, Observed, PodFacts, RestartPolicy, Terminated, completed, pod_status,
};
use super::volumes::{PodVolumes, VolumeManager};
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::registry::events::{EventType, Recorder, Regarding};
use crate::registry::{DeleteOptions, Registry, Subresource, meta};
use crate::store::{Change, Object, WatchEvent};

/// Upstream's floor for a grace period: even a pod deleted "now" gets
/// two seconds to stop.
const MIN_GRACE_SECONDS: i64 = 2;

/// The node agent's state.
pub struct Kubelet {
    agent: Agent,
    /// Pods of this node by UID.
    pods: BTreeMap<String, PodRecord>,
    /// Pods this node is done with, so late events about them are not
    /// taken for new pods.
    finished: HashSet<String>,
}

/// What acts on pods: the API, the runtime, the volumes.
struct Agent {
    registry: Registry,
    node: String,
    runtime: Box<dyn PodRuntime>,
    recorder: Recorder,
    volumes: VolumeManager,
}

/// One pod of this node.
struct PodRecord {
    uid: String,
    namespace: String,
    name: String,
    /// Its latest state; None once it is gone from the API (force-deleted).
    object: Option<Object>,
    containers: BTreeMap<String, ContainerRecord>,
    /// Its volumes once they are ready.
    volumes: Option<PodVolumes>,
    mount_retry: Retry,
    /// Whether a finished pod's volumes are torn down.
    released: bool,
    /// When containers still running get SIGKILL, once it is being stopped.
    kill_at: Option<Instant>,
}

/// One container of a pod, over its attempts.
struct ContainerRecord {
    /// The runtime's ID of the current attempt.
    id: Option<String>,
    /// The attempt before, kept for its logs and last state.
    previous: Option<String>,
    restarts: u32,
    image_id: String,
    state: Observed,
    last: Option<Terminated>,
    /// When the current attempt was seen ended, or failed to start.
    exited_at: Option<Instant>,
    backoff: Backoff,
    stop_sent: bool,
}

impl Default for ContainerRecord {
    fn default() -> ContainerRecord {
        ContainerRecord {
            id: None,
            previous: None,
            restarts: 0,
            image_id: String::new(),
            state: Observed::creating(),
            last: None,
            exited_at: None,
            backoff: Backoff::default(),
            stop_sent: false,
        }
    }
}

/// When to try a failed volume set-up again: after half a second, doubling
/// to about two minutes (upstream's volume retries).
#[derive(Default)]
struct Retry {
    delay: Option<Duration>,
    at: Option<Instant>,
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(122);

    fn due(&self, now: Instant) -> bool {
        self.at.is_none_or(|at| now >= at)
    }

    fn failed(&mut self, now: Instant) {
        let delay = self.delay.map_or(Retry::FIRST, |d| (d * 2).min(Retry::MAX));
        self.delay = Some(delay);
        self.at = Some(now + delay);
    }
}

/// What a sync of a running pod works from.
struct PodContext<'a> {
    object: &'a Object,
    pod: &'a Pod,
    regarding: Regarding,
    policy: RestartPolicy,
}

impl Kubelet {
    pub fn new(registry: Registry, config: KubeletConfig, runtime: Box<dyn PodRuntime>) -> Kubelet {
        let agent = Agent {
            recorder: Recorder::new(registry.clone(), "kubelet"),
            volumes: VolumeManager::new(registry.clone(), &config),
            registry,
            node: config.node,
            runtime,
        };
        Kubelet {
            agent,
            pods: BTreeMap::new(),
            finished: HashSet::new(),
        }
    }

    /// Takes in this node's pods and what a previous run left: their
    /// containers, and the folders of pods that are gone.
    pub fn adopt(&mut self, pods: &[Object]) {
        for pod in pods {
            self.take(pod);
        }
        self.adopt_containers();
        for uid in self.agent.volumes.pods_with_folders() {
            self.pods
                .entry(uid.clone())
                .or_insert_with(|| PodRecord::gone(&uid, "", ""));
        }
        self.sync_all();
    }

    /// The containers the runtime has for pods: the newest attempt of each
    /// is current, the one before it previous, older ones go.
    fn adopt_containers(&mut self) {
        let found = match self.agent.runtime.list(POD_UID_LABEL) {
            Ok(found) => found,
            Err(e) => return tracing::warn!("listing the containers of pods: {e}"),
        };
        let mut attempts: BTreeMap<(String, String), Vec<(u32, RuntimeContainer)>> =
            BTreeMap::new();
        for container in found {
            let label = |key: &str| container.labels.get(key).cloned().unwrap_or_default();
            let key = (label(POD_UID_LABEL), label(CONTAINER_NAME_LABEL));
            if key.0.is_empty() {
                continue;
            }
            let attempt = label(RESTART_COUNT_LABEL).parse().unwrap_or(0);
            attempts.entry(key).or_default().push((attempt, container));
        }
        for ((uid, name), mut list) in attempts {
            list.sort_by_key(|(attempt, _)| std::cmp::Reverse(*attempt));
            let labels = &list[0].1.labels;
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            let (namespace, pod) = (label(POD_NAMESPACE_LABEL), label(POD_NAME_LABEL));
            let record = self
                .pods
                .entry(uid.clone())
                .or_insert_with(|| PodRecord::gone(&uid, &namespace, &pod));
            let rec = record.containers.entry(name).or_default();
            let mut ids = list.into_iter().map(|(attempt, c)| (attempt, c.id));
            if let Some((attempt, current)) = ids.next() {
                rec.restarts = attempt;
                rec.id = Some(current);
            }
            if let Some((_, previous)) = ids.next() {
                rec.last = match self.agent.runtime.state(&previous) {
                    Ok(state) => match observed(state, &previous) {
                        Observed::Terminated(ended) => Some(ended),
                        _ => None,
                    },
                    Err(_) => None,
                };
                rec.previous = Some(previous);
            }
            for (_, older) in ids {
                self.agent.remove_container(&older);
            }
        }
    }

    /// A change to a pod.
    pub fn observe(&mut self, event: &WatchEvent) {
        let object = &event.object;
        let Some(uid) = self.agent.ours(&object.body) else {
            return;
        };
        if event.change == Change::Deleted {
            if let Some(record) = self.pods.get_mut(&uid) {
                record.object = None;
            }
        } else {
            self.take(object);
        }
        self.sync(&uid);
    }

    /// The watch fell behind: `pods` is every pod now.
    pub fn relist(&mut self, pods: &[Object]) {
        let listed: HashSet<String> = pods
            .iter()
            .filter_map(|p| self.agent.ours(&p.body))
            .collect();
        for (uid, record) in &mut self.pods {
            if !listed.contains(uid) {
                record.object = None;
            }
        }
        for pod in pods {
            self.take(pod);
        }
        self.sync_all();
    }

    /// Records `object`, if it is one of this node's pods and newer than
    /// what is known of it.
    fn take(&mut self, object: &Object) {
        let Some(uid) = self.agent.ours(&object.body) else {
            return;
        };
        if self.finished.contains(&uid) {
            return;
        }
        let record = self
            .pods
            .entry(uid)
            .or_insert_with(|| PodRecord::of(object));
        if record
            .object
            .as_ref()
            .is_some_and(|known| known.resource_version < object.resource_version)
        {
            record.object = Some(object.clone());
        }
    }

    pub fn sync_all(&mut self) {
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            self.sync(&uid);
        }
    }

    fn sync(&mut self, uid: &str) {
        let Some(record) = self.pods.get_mut(uid) else {
            return;
        };
        let running = record
            .object
            .clone()
            .filter(|o| meta::str_field(&o.body, "deletionTimestamp").is_none());
        let done = match running {
            Some(object) => {
                self.agent.run_pod(record, &object);
                false
            }
            None => self.agent.terminate(record),
        };
        if done {
            self.pods.remove(uid);
            self.finished.insert(uid.to_string());
        }
    }
}

impl PodRecord {
    fn of(object: &Object) -> PodRecord {
        let mut record = PodRecord::gone(
            meta::str_field(&object.body, "uid").unwrap_or_default(),
            &object.key.namespace,
            &object.key.name,
        );
        record.object = Some(object.clone());
        record
    }

    /// A pod known only from what a previous run left.
    fn gone(uid: &str, namespace: &str, name: &str) -> PodRecord {
        PodRecord {
            uid: uid.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            object: None,
            containers: BTreeMap::new(),
            volumes: None,
            mount_retry: Retry::default(),
            released: false,
            kill_at: None,
        }
    }

    /// How long its containers get between the stop signal and SIGKILL.
    fn grace(&self) -> Duration {
        let seconds = self.object.as_ref().and_then(|o| {
            o.body
                .pointer("/metadata/deletionGracePeriodSeconds")
                .or_else(|| o.body.pointer("/spec/terminationGracePeriodSeconds"))
                .and_then(Value::as_i64)
        });
        let seconds = seconds.unwrap_or(0).max(MIN_GRACE_SECONDS);
        Duration::from_secs(seconds.unsigned_abs())
    }
}

impl ContainerRecord {
    fn view(&self, container: &Container) -> ContainerView {
        let waiting = matches!(self.state, Observed::Waiting { .. });
        ContainerView {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            image_id: self.image_id.clone(),
            container_id: self.id.clone().filter(|_| !waiting),
            restarts: self.restarts,
            state: self.state.clone(),
            last: self.last.clone(),
        }
    }

    fn waiting_for(&self, reason: &str) -> bool {
        matches!(&self.state, Observed::Waiting { reason: r, .. } if *r == reason)
    }
}

impl Agent {
    /// The UID of `pod` if it runs on this node.
    fn ours(&self, pod: &Value) -> Option<String> {
        let node = pod.pointer("/spec/nodeName").and_then(Value::as_str);
        (node == Some(self.node.as_str()))
            .then(|| meta::str_field(pod, "uid").unwrap_or_default().to_string())
    }

    fn event(&self, regarding: &Regarding, kind: EventType, reason: &str, message: &str) {
        self.recorder.record(regarding, kind, reason, message);
    }

    fn run_pod(&mut self, record: &mut PodRecord, object: &Object) {
        let pod: Pod = match serde_json::from_value((*object.body).clone()) {
            Ok(pod) => pod,
            Err(e) => return tracing::warn!("pod {}: unreadable: {e}", object.key.display_name()),
        };
        let phase = object.body.pointer("/status/phase").and_then(Value::as_str);
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // Finished for good: its containers stay (for their logs), its
            // volumes go, as upstream.
            return self.release_volumes(record);
        }
        let cx = PodContext {
            object,
            pod: &pod,
            regarding: Regarding::of(Kind::Pod, &object.body),
            policy: RestartPolicy::of(&object.body),
        };
        if record.volumes.is_none() {
            self.mount_volumes(record, &cx);
        }
        if let Some(volumes) = &record.volumes
            && self.sync_init(&cx, volumes, &mut record.containers)
        {
            for container in containers(&pod) {
                let rec = record.containers.entry(container.name.clone()).or_default();
                self.sync_container(&cx, cx.policy, volumes, container, rec);
            }
        }
        self.write_status(record, &cx);
    }

    fn mount_volumes(&mut self, record: &mut PodRecord, cx: &PodContext) {
        let now = Instant::now();
        if !record.mount_retry.due(now) {
            return;
        }
        match self.volumes.set_up(cx.pod) {
            Ok(ready) => {
                record.volumes = Some(ready);
                record.mount_retry = Retry::default();
            }
            Err(e) => {
                self.event(
                    &cx.regarding,
                    EventType::Warning,
                    "FailedMount",
                    &e.to_string(),
                );
                record.mount_retry.failed(now);
            }
        }
    }

    fn release_volumes(&mut self, record: &mut PodRecord) {
        if record.released {
            return;
        }
        match self.volumes.tear_down(&record.uid) {
            Ok(()) => {
                record.released = true;
                record.volumes = None;
            }
            Err(e) => tracing::warn!(
                "pod {}/{}: releasing its volumes: {e}; tried again on its next sync",
                record.namespace,
                record.name
            ),
        }
    }

    /// Runs the init containers one after the other, as upstream; whether
    /// all have completed. One that fails is run again unless the pod never
    /// restarts anything.
    fn sync_init(
        &mut self,
        cx: &PodContext,
        volumes: &PodVolumes,
        records: &mut BTreeMap<String, ContainerRecord>,
    ) -> bool {
        let policy = match cx.policy {
            RestartPolicy::Never => RestartPolicy::Never,
            _ => RestartPolicy::OnFailure,
        };
        for container in init_containers(cx.pod) {
            let rec = records.entry(container.name.clone()).or_default();
            if !completed(&rec.state) {
                self.sync_container(cx, policy, volumes, container, rec);
            }
            if !completed(&rec.state) {
                return false;
            }
        }
        true
    }

    /// Brings one container where `policy` wants it.
    fn sync_container(
        &mut self,
        cx: &PodContext,
        policy: RestartPolicy,
        volumes: &PodVolumes,
        container: &Container,
        rec: &mut ContainerRecord,
    ) {
        if rec.image_id.is_empty()
            && rec.id.is_some()
            && let Ok(Some(image_id)) = self
                .runtime
                .image_id(container.image.as_deref().unwrap_or_default())
        {
            // Adopted after a restart: the status shows the image again.
            rec.image_id = image_id;
        }
        if let Some(id) = rec.id.clone() {
            let Some(ended) = self.observe(rec, &id) else {
                return;
            };
            if !self.may_restart(cx, policy, &container.name, rec, ended) {
                return;
            }
        } else if let Some(failed) = rec.exited_at
            && rec.backoff.wait(failed, Instant::now()).is_some()
        {
            // A start that failed is tried again after its back-off.
            return;
        }
        self.start_container(cx, volumes, container, rec);
    }

    /// Reads what the current attempt is doing into `rec`; how it ended,
    /// if it has.
    fn observe(&self, rec: &mut ContainerRecord, id: &str) -> Option<Terminated> {
        let state = match self.runtime.state(id) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("container {id}: reading its state: {e}");
                return None;
            }
        };
        let known_lost =
            matches!(&rec.state, Observed::Terminated(t) if t.reason == "ContainerStatusUnknown");
        if state == ContainerState::Missing && known_lost {
            // Seen lost before: keep when.
            return rec.last_ended();
        }
        rec.state = observed(state, id);
        let ended = rec.last_ended()?;
        rec.exited_at.get_or_insert_with(Instant::now);
        Some(ended)
    }

    /// Whether an ended attempt is replaced now: if its restart policy
    /// says so and its back-off is over. Otherwise it waits, in
    /// CrashLoopBackOff, or stays ended.
    fn may_restart(
        &self,
        cx: &PodContext,
        policy: RestartPolicy,
        name: &str,
        rec: &mut ContainerRecord,
        ended: Terminated,
    ) -> bool {
        if !policy.restarts(ended.exit_code) {
            return false;
        }
        let exited = rec.exited_at.unwrap_or_else(Instant::now);
        if rec.backoff.wait(exited, Instant::now()).is_some() {
            let pod = pod_ref(cx.object);
            let message = format!(
                "back-off {} restarting failed container={name} pod={pod}",
                go_duration(rec.backoff.delay())
            );
            // Reported once per exit, not on every sync it waits.
            if rec.last.as_ref() != Some(&ended) {
                let text = format!("Back-off restarting failed container {name} in pod {pod}");
                self.event(&cx.regarding, EventType::Warning, "BackOff", &text);
            }
            rec.state = Observed::Waiting {
                reason: "CrashLoopBackOff",
                message: Some(message),
            };
            rec.last = Some(ended);
            return false;
        }
        rec.last = Some(ended);
        rec.restarts += 1;
        rec.exited_at = None;
        if let Some(older) = std::mem::replace(&mut rec.previous, rec.id.take()) {
            self.remove_container(&older);
        }
        true
    }

    fn start_container(
        &mut self,
        cx: &PodContext,
        volumes: &PodVolumes,
        container: &Container,
        rec: &mut ContainerRecord,
    ) {
        let image = container.image.as_deref().unwrap_or_default();
        match self.runtime.image_id(image) {
            Ok(Some(id)) => rec.image_id = id,
            Ok(None) => return self.missing_image(cx, image, rec),
            Err(e) => {
                let error = format!("Failed to inspect image \"{image}\": {e}");
                return self.failed_start(cx, rec, "ImageInspectError", error);
            }
        }
        let prepared = environment(container).and_then(|env| {
            let mounts = self.volumes.container_mounts(cx.pod, volumes, container)?;
            Ok((env, mounts))
        });
        let (env, mounts) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return self.failed_start(cx, rec, "CreateContainerConfigError", e),
        };
        let present = format!("Container image \"{image}\" already present on machine");
        self.event(&cx.regarding, EventType::Normal, "Pulled", &present);
        let mut spec = container_spec(cx.pod, container, rec.restarts);
        spec.env = env;
        spec.mounts = mounts;
        match self.runtime.start(&spec) {
            Ok(id) => {
                let name = &container.name;
                self.event(
                    &cx.regarding,
                    EventType::Normal,
                    "Created",
                    &format!("Created container: {name}"),
                );
                self.event(
                    &cx.regarding,
                    EventType::Normal,
                    "Started",
                    &format!("Started container {name}"),
                );
                rec.exited_at = None;
                rec.id = Some(id.clone());
                self.observe(rec, &id);
            }
            Err(e) => self.failed_start(cx, rec, "RunContainerError", e.to_string()),
        }
    }

    /// The node agent never pulls: the pod waits until the image is in
    /// Strata's store.
    fn missing_image(&self, cx: &PodContext, image: &str, rec: &mut ContainerRecord) {
        let message =
            format!("Container image \"{image}\" is not present with pull policy of Never");
        if !rec.waiting_for("ErrImageNeverPull") {
            self.event(
                &cx.regarding,
                EventType::Warning,
                "ErrImageNeverPull",
                &message,
            );
            let failed = format!(
                "Error: ErrImageNeverPull: image \"{image}\" is not in Strata's store and the node agent never pulls; add it with strata load, strata import or strata build"
            );
            self.event(&cx.regarding, EventType::Warning, "Failed", &failed);
        }
        rec.state = Observed::Waiting {
            reason: "ErrImageNeverPull",
            message: Some(message),
        };
    }

    fn failed_start(
        &self,
        cx: &PodContext,
        rec: &mut ContainerRecord,
        reason: &'static str,
        error: String,
    ) {
        self.event(
            &cx.regarding,
            EventType::Warning,
            "Failed",
            &format!("Error: {error}"),
        );
        rec.state = Observed::Waiting {
            reason,
            message: Some(error),
        };
        rec.exited_at = Some(Instant::now());
    }

    /// Writes the pod's status if it differs from the stored one.
    fn write_status(&self, record: &PodRecord, cx: &PodContext) {
        let view = |c: &Container, unknown: &ContainerRecord| {
            record.containers.get(&c.name).unwrap_or(unknown).view(c)
        };
        let creating = ContainerRecord::default();
        let init: Vec<ContainerView> = init_containers(cx.pod)
            .map(|c| view(c, &creating))
            .collect();
        // Containers wait for the init containers, as PodInitializing.
        let initializing = ContainerRecord {
            state: Observed::Waiting {
                reason: "PodInitializing",
                message: None,
            },
            ..ContainerRecord::default()
        };
        let unknown = match init.iter().all(|c| completed(&c.state)) {
            true => &creating,
            false => &initializing,
        };
        let views: Vec<ContainerView> = containers(cx.pod).map(|c| view(c, unknown)).collect();
        let old = cx.object.body.get("status").unwrap_or(&Value::Null);
        let host_network = cx
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let status = pod_status(&PodFacts {
            init: &init,
            containers: &views,
            policy: cx.policy,
            host_network,
            old,
            now: &meta::now(),
        });
        if &status == old {
            return;
        }
        let body = json!({
            "metadata": {"name": record.name, "namespace": record.namespace},
            "status": status,
        });
        let written = self.registry.update(
            Kind::Pod,
            &record.namespace,
            &record.name,
            body,
            Subresource::Status,
            false,
        );
        if let Err(e) = written {
            tracing::info!(
                "pod {}: writing its status: {e}; written on its next sync",
                cx.object.key.display_name()
            );
        }
    }

    /// Stops a pod being deleted (or gone): the stop signal, SIGKILL after
    /// its grace period, then its containers and volumes go, then the pod.
    /// True when it is all done.
    fn terminate(&mut self, record: &mut PodRecord) -> bool {
        let now = Instant::now();
        let kill_at = *record.kill_at.get_or_insert(now + record.grace());
        let regarding = record
            .object
            .as_ref()
            .map(|o| Regarding::of(Kind::Pod, &o.body));
        let mut running = false;
        for (name, rec) in &mut record.containers {
            running |= self.stop_container(regarding.as_ref(), name, rec, now >= kill_at);
        }
        if running {
            return false;
        }
        for rec in record.containers.values_mut() {
            rec.id = rec.id.take().filter(|id| !self.remove_container(id));
            rec.previous = rec.previous.take().filter(|id| !self.remove_container(id));
        }
        if record
            .containers
            .values()
            .any(|r| r.id.is_some() || r.previous.is_some())
        {
            return false;
        }
        if let Err(e) = self.volumes.tear_down(&record.uid) {
            tracing::warn!(
                "pod {}/{}: tearing its volumes down: {e}; tried again on its next sync",
                record.namespace,
                record.name
            );
            return false;
        }
        if record.object.is_none() {
            return true;
        }
        let options = DeleteOptions {
            uid: Some(record.uid.clone()),
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        match self
            .registry
            .delete(Kind::Pod, &record.namespace, &record.name, &options)
        {
            // Gone already, or the name is another pod's now.
            Ok(_) | Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => true,
            Err(e) => {
                tracing::warn!(
                    "pod {}/{}: deleting it: {e}; tried again on its next sync",
                    record.namespace,
                    record.name
                );
                false
            }
        }
    }

    /// Signals a running container (the stop signal, then SIGKILL once
    /// `kill` says so); whether it still runs.
    fn stop_container(
        &self,
        regarding: Option<&Regarding>,
        name: &str,
        rec: &mut ContainerRecord,
        kill: bool,
    ) -> bool {
        let Some(id) = &rec.id else {
            return false;
        };
        match self.runtime.state(id) {
            Ok(ContainerState::Running { .. }) => {}
            Ok(_) => return false,
            Err(e) => {
                tracing::warn!("container {id}: reading its state: {e}");
                return true;
            }
        }
        let signal = if !rec.stop_sent {
            if let Some(regarding) = regarding {
                self.event(
                    regarding,
                    EventType::Normal,
                    "Killing",
                    &format!("Stopping container {name}"),
                );
            }
            rec.stop_sent = true;
            Signal::Stop
        } else if kill {
            Signal::Kill
        } else {
            return true;
        };
        if let Err(e) = self.runtime.signal(id, signal) {
            tracing::warn!("container {id}: stopping it: {e}");
        }
        true
    }

    /// Removes a container; whether it is gone.
    fn remove_container(&self, id: &str) -> bool {
        match self.runtime.remove(id) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("container {id}: removing it: {e}; tried again later");
                false
            }
        }
    }
}

impl ContainerRecord {
    fn last_ended(&self) -> Option<Terminated> {
        match &self.state {
            Observed::Terminated(ended) => Some(ended.clone()),
            _ => None,
        }
    }
}

fn containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.iter().flat_map(|s| s.containers.iter())
}

fn init_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
}

/// What the status shows for a container in `state`.
fn observed(state: ContainerState, id: &str) -> Observed {
    match state {
        ContainerState::Running { started_at } => Observed::Running {
            started_at: timestamp(&started_at),
        },
        ContainerState::Exited {
            code,
            started_at,
            finished_at,
        } => Observed::Terminated(Terminated::exited(
            code,
            timestamp(&started_at),
            timestamp(&finished_at),
            id,
        )),
        ContainerState::Missing => Observed::Terminated(Terminated::lost(&meta::now(), id)),
    }
}

/// A runtime's RFC 3339 time at the seconds precision Kubernetes shows.
fn timestamp(time: &str) -> String {
    match time.parse::<jiff::Timestamp>() {
        Ok(t) => meta::timestamp(t),
        Err(_) => time.to_string(),
    }
}

/// How upstream names a pod in messages: `name_namespace(uid)`.
fn pod_ref(object: &Object) -> String {
    let uid = meta::str_field(&object.body, "uid").unwrap_or_default();
    format!("{}_{}({uid})", object.key.name, object.key.namespace)
}

/// A duration as Go prints it in upstream's messages: `40s`, `2m40s`.
fn go_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 {
        format!("{seconds}s")
    } else {
        format!("{}m{}s", seconds / 60, seconds % 60)
    }
}

/// A pod's default hostname: its name, cut to the 63 characters a
/// hostname may have (and not ending in `-` or `.`), as upstream.
fn hostname(pod: &str) -> String {
    let cut = &pod[..pod.len().min(63)];
    cut.trim_end_matches(['-', '.']).to_string()
}

/// The container's environment. Values from elsewhere (`valueFrom`) are
/// refused rather than left empty.
fn environment(container: &Container) -> Result<Vec<(String, String)>, String> {
    container
        .env
        .iter()
        .flatten()
        .map(|var| match (&var.value, &var.value_from) {
            (_, Some(_)) => Err(format!(
                "environment variable {} takes its value from elsewhere (valueFrom), which Strata's node agent does not resolve; give a value",
                var.name
            )),
            (value, None) => Ok((var.name.clone(), value.clone().unwrap_or_default())),
        })
        .collect()
}

/// Attempt `attempt` of `container` for the runtime, without its
/// environment and mounts.
fn container_spec(pod: &Pod, container: &Container, attempt: u32) -> ContainerSpec {
    let field = |value: &Option<String>| value.clone().unwrap_or_default();
    let (uid, name, namespace) = (
        field(&pod.metadata.uid),
        field(&pod.metadata.name),
        field(&pod.metadata.namespace),
    );
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let hostname = spec
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| hostname(&name));
    let labels = BTreeMap::from([
        (POD_UID_LABEL.to_string(), uid.clone()),
        (POD_NAME_LABEL.to_string(), name.clone()),
        (POD_NAMESPACE_LABEL.to_string(), namespace.clone()),
        (CONTAINER_NAME_LABEL.to_string(), container.name.clone()),
        (RESTART_COUNT_LABEL.to_string(), attempt.to_string()),
    ]);
    ContainerSpec {
        name: format!(
            "k8s_{}_{name}_{namespace}_{}_{attempt}",
            container.name,
            &uid[..uid.len().min(8)]
        ),
        image: field(&container.image),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().filter(|w| !w.is_empty()),
        labels,
        host_network,
        hostname: (!host_network).then_some(hostname),
        ..ContainerSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seconds: u64, expected: &str) {
        assert_eq!(go_duration(Duration::from_secs(seconds)), expected);
    }

    #[test]
    fn long_pod_names_make_valid_hostnames() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        for (pod, expected) in [("web", "web"), (long.as_str(), &"a".repeat(62)[..])] {
            assert_eq!(hostname(pod), expected, "{pod}");
        }
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        check(10, "10s");
        check(59, "59s");
        check(80, "1m20s");
        check(300, "5m0s");
    }
}
