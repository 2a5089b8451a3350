//! The node agent ("kubelet") of Strata's one-node cluster: runs the pods
//! scheduled to this node through a container runtime, with their volumes
//! (hostPath, emptyDir, claims bound to hostPath, local or CSI volumes),
//! init containers, restart policy and back-off, reports their status and
//! events as upstream's kubelet does, and stops them when they are deleted.
//!
//! Crash safety: everything the agent makes is found again from what it
//! made, not from memory. Containers carry the pod's UID in a label and a
//! pod's volumes live in a folder named by its UID, so on start the agent
//! adopts the containers of pods that still exist and stops, removes and
//! tears down whatever belongs to pods that do not.
//!
//! - `runtime`: the seam to the container runtime.
//! - `agent`: records and decisions; `status` and `backoff` the pure parts.
//! - `volumes`, `hostpath`, `mounts`: pods' volumes on this node.

mod agent;
mod backoff;
mod hostpath;
pub(crate) mod mounts;
mod runtime;
mod status;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Drivers;
use super::informer::{Informer, Next};
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::registry::Registry;

pub use runtime::{
    BindMount, CONTAINER_NAME_LABEL, ContainerSpec, ContainerState, POD_NAME_LABEL,
    POD_NAMESPACE_LABEL, POD_UID_LABEL, PodRuntime, RESTART_COUNT_LABEL, RuntimeContainer,
    RuntimeError, Signal,
};

/// How often every pod is looked at again, changed or not (to see
/// containers end and back-offs run out).
const SYNC_PERIOD: Duration = Duration::from_secs(1);

/// Where the node agent works.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// This node's name: pods whose `spec.nodeName` is this are ours.
    pub node: String,
    /// Pods' folders go in `<root>/pods/<uid>/`.
    pub root: PathBuf,
    /// The CSI drivers claims' volumes are published through.
    pub csi: Drivers,
    /// Where CSI volumes are staged.
    pub staging_root: PathBuf,
}

/// Runs the node agent until `stop` is set.
pub fn run(
    registry: Registry,
    config: KubeletConfig,
    runtime: Box<dyn PodRuntime>,
    stop: Arc<AtomicBool>,
) {
    let (mut informer, pods) = Informer::start(&registry, &[Kind::Pod]);
    let mut kubelet = agent::Kubelet::new(registry, config, runtime);
    kubelet.adopt(&pods);
    let mut synced = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match informer.next(Duration::from_millis(200)) {
            Next::Changed(event) => kubelet.observe(&event),
            Next::Relisted(pods) => kubelet.relist(&pods),
            Next::Idle => {}
        }
        if synced.elapsed() >= SYNC_PERIOD {
            kubelet.sync_all();
            synced = Instant::now();
        }
    }
}

/// The logs of a pod's container (the pod's only one when `container` is
/// None), for the API server's `log` subresource. A container that is
/// waiting to be restarted shows its last attempt's, as upstream.
pub fn pod_logs(
    registry: &Registry,
    runtime: &dyn PodRuntime,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> Result<String, ApiError> {
    let object = registry.get(Kind::Pod, namespace, pod)?;
    let body = &object.body;
    let names = |list: &str| -> Vec<&str> {
        body.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect()
    };
    let (main, init) = (names("containers"), names("initContainers"));
    let container = match container {
        Some(name) if main.contains(&name) || init.contains(&name) => name,
        Some(name) => {
            return Err(ApiError::BadRequest(format!(
                "container {name} is not valid for pod {pod}"
            )));
        }
        None => match main.as_slice() {
            [only] => only,
            _ => return Err(ApiError::BadRequest(choose_container(pod, &main, &init))),
        },
    };
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|list| body.pointer(&format!("/status/{list}"))?.as_array())
        .flatten()
        .find(|s| s["name"] == container);
    let id = status.and_then(|s| {
        s["containerID"]
            .as_str()
            .or_else(|| s.pointer("/lastState/terminated/containerID")?.as_str())
    });
    let Some(id) = id.and_then(|id| id.strip_prefix("strata://")) else {
        let reason = status
            .and_then(|s| s.pointer("/state/waiting/reason")?.as_str())
            .unwrap_or("ContainerCreating");
        return Err(ApiError::BadRequest(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}"
        )));
    };
    runtime.logs(id).map_err(|e| {
        ApiError::Internal(format!(
            "reading the logs of container {container} of pod {pod}: {e}"
        ))
    })
}

/// Upstream's answer to a log request that names no container of a pod
/// with several.
fn choose_container(pod: &str, main: &[&str], init: &[&str]) -> String {
    if main.is_empty() {
        return format!("a container name must be specified for pod {pod}");
    }
    let mut message = format!(
        "a container name must be specified for pod {pod}, choose one of: [{}]",
        main.join(" ")
    );
    if !init.is_empty() {
        message.push_str(&format!(
            " or one of the init containers: [{}]",
            init.join(" ")
        ));
    }
    message
}
