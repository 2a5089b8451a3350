//! The seam between the node agent and a container runtime: everything the
//! kubelet asks of one. Strata's own runtime implements it in the `strata`
//! binary (this crate does not depend on strata-container); tests use
//! fakes.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Labels every pod container carries, as upstream's runtimes do: they are
/// how the node agent finds its containers again after a restart.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
/// Which attempt of its pod container this is: 0, then one more per restart.
pub const RESTART_COUNT_LABEL: &str = "io.kubernetes.container.restartCount";

/// A host path bound into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// The absolute path inside the container.
    pub target: String,
    pub readonly: bool,
}

/// One container of a pod, as the runtime is to start it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Unique among the runtime's containers:
    /// `k8s_<container>_<pod>_<namespace>_<uid8>_<attempt>`.
    pub name: String,
    pub image: String,
    /// The pod's `command`: replaces the image's entrypoint (and then its
    /// CMD too, as upstream).
    pub command: Vec<String>,
    /// The pod's `args`: replace the image's CMD.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<BindMount>,
    pub labels: BTreeMap<String, String>,
    /// `spec.hostNetwork`: the host's network; otherwise none at all.
    pub host_network: bool,
    /// The pod's hostname (None: the runtime's choice).
    pub hostname: Option<String>,
}

/// What a container is doing. Times are RFC 3339, as the runtime wrote
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Running {
        started_at: String,
    },
    Exited {
        code: i32,
        started_at: String,
        finished_at: String,
    },
    /// No such container, or one that never started.
    Missing,
}

/// How to stop a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The container's stop signal (SIGTERM unless its image says otherwise).
    Stop,
    /// SIGKILL, once the grace period is over.
    Kill,
}

/// A container as `list` finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeContainer {
    pub id: String,
    pub labels: BTreeMap<String, String>,
}

/// Why the runtime could not do what it was asked; the text says what
/// failed, for events and logs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

/// A container runtime, as the node agent uses one.
pub trait PodRuntime: Send {
    /// The ID of `image` in the local image store; None when it is not
    /// there (the node agent never pulls).
    fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError>;

    /// Creates and starts a container; its ID. When this fails, nothing is
    /// left behind.
    fn start(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    fn state(&self, id: &str) -> Result<ContainerState, RuntimeError>;

    /// Signals a running container; one that is not running is left as it is.
    fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError>;

    /// Removes a container (killing it first if it still runs); one that
    /// is gone already is fine.
    fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// What the container wrote to stdout and stderr, interleaved as written.
    fn logs(&self, id: &str) -> Result<String, RuntimeError>;

    /// Every container carrying the label `key`, whatever its value.
    fn list(&self, key: &str) -> Result<Vec<RuntimeContainer>, RuntimeError>;
}
