//! The controllers: each a thread with its own informer, acting through the
//! registry like any other client.
//!
//! - `binder` (pure) and `volume_binder` (its loop): PV/PVC binding, phases,
//!   reclaim decisions, events.
//! - `provisioner`: CreateVolume/DeleteVolume through CSI for claims handed
//!   to a CSI driver and Released PVs with policy Delete.
//! - `protection`: the pvc-/pv-protection finalizers.
//! - `resizer`: ControllerExpandVolume/NodeExpandVolume for claims that
//!   asked for more.
//! - `scheduler`: places pods on a node their claims can be used on.

pub mod binder;
mod informer;
pub mod kubelet;
pub mod protection;
pub mod provisioner;
pub mod resizer;
mod retry;
mod scheduler;
mod volume_binder;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::json;

use crate::error::ApiError;
use crate::kinds::Kind;
use crate::registry::Registry;

pub use provisioner::Drivers;

/// What the controllers need to know about this node and its drivers.
pub struct Config {
    pub drivers: Drivers,
    /// Where this node stages CSI volumes.
    pub staging_root: PathBuf,
    /// The node agent, if this process runs pods.
    pub node_agent: Option<(kubelet::KubeletConfig, Box<dyn kubelet::PodRuntime>)>,
}

/// The running controllers.
pub struct Controllers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Controllers {
    /// Starts every controller (and the node agent, if configured).
    pub fn start(registry: &Registry, config: Config) -> Controllers {
        let Config {
            drivers,
            staging_root,
            node_agent,
        } = config;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(body)
                .expect("spawning a controller thread")
        };
        let (r, s) = (registry.clone(), stop.clone());
        threads.push(spawn(
            "pv-binder",
            Box::new(move || volume_binder::run(r, s)),
        ));
        let (r, s) = (registry.clone(), stop.clone());
        let resizer = resizer::ResizerConfig {
            drivers: drivers.clone(),
            staging_root,
        };
        threads.push(spawn(
            "resizer",
            Box::new(move || resizer::run(r, resizer, s)),
        ));
        let (r, s) = (registry.clone(), stop.clone());
        threads.push(spawn(
            "provisioner",
            Box::new(move || provisioner::run(r, drivers, s)),
        ));
        let (r, s) = (registry.clone(), stop.clone());
        threads.push(spawn("protection", Box::new(move || protection::run(r, s))));
        let (r, s) = (registry.clone(), stop.clone());
        threads.push(spawn("scheduler", Box::new(move || scheduler::run(r, s))));
        if let Some((config, runtime)) = node_agent {
            let (r, s) = (registry.clone(), stop.clone());
            threads.push(spawn(
                "node-agent",
                Box::new(move || kubelet::run(r, config, runtime, s)),
            ));
        }
        Controllers { stop, threads }
    }

    /// Stops them and waits for each to finish its current step.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Records this machine as the cluster's node (as a kubelet registers
/// itself), with the topology label Strata's CSI driver reports.
pub fn register_node(registry: &Registry, name: &str, topology_key: &str) -> Result<(), ApiError> {
    let now = crate::registry::meta::now();
    let body = json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            topology_key: name,
        }},
        "status": {
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "StrataReady",
                "message": "strata serve is running", "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "kubeletVersion": concat!("v1.32.0+strata-", env!("CARGO_PKG_VERSION")),
                "containerRuntimeVersion": "runc", "operatingSystem": "linux",
                "architecture": std::env::consts::ARCH, "osImage": "", "kernelVersion": "",
                "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": "",
            },
        },
    });
    match registry.get(Kind::Node, "", name) {
        Ok(old) => {
            let mut body = body;
            body["metadata"]["resourceVersion"] = old.resource_version.to_string().into();
            registry.save(Kind::Node, body).map(|_| ())
        }
        Err(ApiError::NotFound { .. }) => registry.create(Kind::Node, "", body, false).map(|_| ()),
        Err(e) => Err(e),
    }
}
