//! A client of any CSI driver on a unix socket: the three raw gRPC stubs,
//! and the operations a container orchestrator performs with them.
//!
//! [`CsiClient::publish`] does what a CO does to make a volume usable at a
//! path on this node: ControllerPublishVolume when the controller
//! advertises PUBLISH_UNPUBLISH_VOLUME, NodeStageVolume into a per-volume
//! folder under a staging root when the node advertises
//! STAGE_UNSTAGE_VOLUME, then NodePublishVolume. [`CsiClient::unpublish`]
//! undoes it; the volume stays staged (and controller-published) while
//! another target on this node still uses it, which the client tells by a
//! record per volume under `<staging root>/.publications/`, kept under a
//! per-volume lock so two clients at once do not unstage under each
//! other. Both may be repeated: every step is idempotent, as the spec
//! requires of the driver.
//!
//! [`BlockingCsiClient`] wraps it for synchronous callers (the CLI).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

use crate::endpoint::{EndpointError, socket_path};
use crate::pb;
use crate::pb::controller_client::ControllerClient;
use crate::pb::identity_client::IdentityClient;
use crate::pb::node_client::NodeClient;
use crate::pb::volume_capability::access_mode::Mode;

pub use crate::pb::controller_service_capability::rpc::Type as ControllerCap;
pub use crate::pb::node_service_capability::rpc::Type as NodeCap;

/// Where [`CsiClient::publish`] stages volumes unless told otherwise.
pub const DEFAULT_STAGING_ROOT: &str = "/run/strata/csi-staging";

/// Entries per ListVolumes/ListSnapshots call unless told otherwise.
pub const DEFAULT_PAGE_SIZE: i32 = 100;

/// How many times a listing starts again when the driver says its paging
/// token went stale (ABORTED) because the list changed meanwhile.
const LIST_RESTARTS: usize = 3;

const RECORDS: &str = ".publications";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(
        "cannot reach the CSI driver at {}: {reason}; is `strata csi serve` running?",
        socket.display()
    )]
    Unreachable { socket: PathBuf, reason: String },
    /// The driver answered a call with an error.
    #[error("{rpc} failed: {message} ({}){}", code_name(*code), hint(*code, socket))]
    Rpc {
        rpc: &'static str,
        code: Code,
        message: String,
        socket: PathBuf,
    },
    /// The driver answered, but not as the spec says it must.
    #[error("the CSI driver at {} answered {rpc} without {what}; it does not follow the CSI spec", socket.display())]
    BadAnswer {
        rpc: &'static str,
        what: String,
        socket: PathBuf,
    },
    /// The driver does not serve a service an operation needs.
    #[error("the CSI driver at {} does not serve the {service} service, which {operation} needs; point --endpoint at a driver that does", socket.display())]
    NoService {
        service: &'static str,
        operation: &'static str,
        socket: PathBuf,
    },
    /// A request the client will not send.
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the CSI client: {0}")]
    Runtime(std::io::Error),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// The gRPC code the driver answered with, if it answered with one.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The spec's name of a gRPC code (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What to do about an error with `code`, when the code says it.
fn hint(code: Code, socket: &Path) -> String {
    let socket = socket.display();
    match code {
        Code::Unavailable => format!("; is the CSI driver at {socket} still running?"),
        Code::Unimplemented => format!("; the CSI driver at {socket} does not implement it"),
        Code::DeadlineExceeded | Code::Cancelled => {
            "; the driver did not answer in time, try again".to_owned()
        }
        _ => String::new(),
    }
}

/// A volume's access type in a VolumeCapability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A filesystem, mounted: `fs_type` empty for the driver's default.
    Mount {
        fs_type: String,
        mount_flags: Vec<String>,
    },
    /// A raw block device.
    Block,
}

impl Default for Access {
    fn default() -> Access {
        Access::Mount {
            fs_type: String::new(),
            mount_flags: Vec::new(),
        }
    }
}

/// Where a new volume's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentSource {
    Snapshot(String),
    Volume(String),
}

/// What [`CsiClient::create_volume`] asks for.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    pub name: String,
    /// Required bytes (CapacityRange.required_bytes); None: the driver's default.
    pub capacity: Option<u64>,
    /// Limit bytes (CapacityRange.limit_bytes); None: no limit.
    pub limit: Option<u64>,
    /// StorageClass-style parameters.
    pub parameters: BTreeMap<String, String>,
    pub access: Access,
    pub access_mode: Mode,
    pub source: Option<ContentSource>,
    pub secrets: BTreeMap<String, String>,
    pub accessibility: Option<pb::TopologyRequirement>,
}

impl VolumeSpec {
    /// A mount volume named `name`, single-node writer, everything else
    /// the driver's default.
    pub fn new(name: impl Into<String>) -> VolumeSpec {
        VolumeSpec {
            name: name.into(),
            capacity: None,
            limit: None,
            parameters: BTreeMap::new(),
            access: Access::default(),
            access_mode: Mode::SingleNodeWriter,
            source: None,
            secrets: BTreeMap::new(),
            accessibility: None,
        }
    }
}

/// How [`CsiClient::publish`] makes a volume usable.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub readonly: bool,
    pub access: Access,
    pub access_mode: Mode,
    /// Where per-volume staging folders go; None: [`DEFAULT_STAGING_ROOT`].
    pub staging_root: Option<PathBuf>,
    /// The node to publish to; None: the node NodeGetInfo names.
    pub node_id: Option<String>,
    /// What CreateVolume returned as the volume's context.
    pub volume_context: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
}

impl Default for PublishOptions {
    fn default() -> PublishOptions {
        PublishOptions {
            readonly: false,
            access: Access::default(),
            access_mode: Mode::SingleNodeWriter,
            staging_root: None,
            node_id: None,
            volume_context: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }
}

/// What [`CsiClient::unpublish`] needs besides the volume and target.
#[derive(Debug, Clone, Default)]
pub struct UnpublishOptions {
    /// The staging root the volume was published with.
    pub staging_root: Option<PathBuf>,
    pub node_id: Option<String>,
    pub secrets: BTreeMap<String, String>,
}

/// What [`CsiClient::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub node_id: String,
    /// The staging path, when the node stages volumes.
    pub staging: Option<PathBuf>,
    /// ControllerPublishVolume's publish_context (empty without it).
    pub publish_context: BTreeMap<String, String>,
}

/// What [`CsiClient::unpublish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpublished {
    /// Whether the volume was unstaged and unpublished from the node too.
    pub released: bool,
    /// Other targets on this node that still use the volume.
    pub remaining: Vec<PathBuf>,
}

/// A driver as GetPluginInfo, the capability calls and NodeGetInfo
/// describe it. `None` marks a service the endpoint does not serve.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverInfo {
    pub name: String,
    pub vendor_version: String,
    pub manifest: BTreeMap<String, String>,
    pub plugin_capabilities: Vec<pb::PluginCapability>,
    pub controller: Option<Vec<ControllerCap>>,
    pub node: Option<Vec<NodeCap>>,
    pub node_info: Option<NodeInfo>,
}

/// NodeGetInfo's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: String,
    /// 0: no limit.
    pub max_volumes_per_node: i64,
    /// The node's topology segments (empty without any).
    pub topology: BTreeMap<String, String>,
}

impl DriverInfo {
    /// The plugin capabilities by their spec names (`CONTROLLER_SERVICE`,
    /// `VOLUME_EXPANSION_ONLINE`).
    pub fn plugin_capability_names(&self) -> Vec<String> {
        self.plugin_capabilities
            .iter()
            .filter_map(plugin_capability_name)
            .collect()
    }
}

/// A plugin capability's spec name; None for an empty one.
pub fn plugin_capability_name(cap: &pb::PluginCapability) -> Option<String> {
    use pb::plugin_capability::{Type, service, volume_expansion};
    Some(match cap.r#type.as_ref()? {
        Type::Service(s) => match service::Type::try_from(s.r#type) {
            Ok(t) => t.as_str_name().to_owned(),
            Err(_) => format!("SERVICE_{}", s.r#type),
        },
        Type::VolumeExpansion(e) => match volume_expansion::Type::try_from(e.r#type) {
            Ok(t) => format!("VOLUME_EXPANSION_{}", t.as_str_name()),
            Err(_) => format!("VOLUME_EXPANSION_{}", e.r#type),
        },
    })
}

/// What a publish needs to know about the driver, asked once per client.
#[derive(Debug, Clone)]
struct Caps {
    controller: Vec<ControllerCap>,
    node: Option<Vec<NodeCap>>,
    node_id: Option<String>,
}

/// An async client of one CSI endpoint. Cloning is cheap and shares the
/// connection.
#[derive(Clone)]
pub struct CsiClient {
    socket: PathBuf,
    identity: IdentityClient<Channel>,
    controller: ControllerClient<Channel>,
    node: NodeClient<Channel>,
    caps: Arc<tokio::sync::OnceCell<Caps>>,
}

impl std::fmt::Debug for CsiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsiClient")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl CsiClient {
    /// Connects to `endpoint` (`unix:///path`, `unix:/path` or `/path`).
    pub async fn connect(endpoint: &str) -> Result<CsiClient> {
        let socket = socket_path(endpoint)?;
        // The URI is required by tonic but unused: the connector below
        // always opens the socket.
        let ep =
            Endpoint::from_static("http://[::]:50051").connect_timeout(Duration::from_secs(10));
        let path = socket.clone();
        let channel = ep
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| ClientError::Unreachable {
                socket: socket.clone(),
                reason: root_cause(&e),
            })?;
        Ok(CsiClient {
            identity: IdentityClient::new(channel.clone()),
            controller: ControllerClient::new(channel.clone()),
            node: NodeClient::new(channel),
            socket,
            caps: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The raw Identity stub, for calls this client does not wrap.
    pub fn identity(&mut self) -> &mut IdentityClient<Channel> {
        &mut self.identity
    }

    /// The raw Controller stub.
    pub fn controller(&mut self) -> &mut ControllerClient<Channel> {
        &mut self.controller
    }

    /// The raw Node stub.
    pub fn node(&mut self) -> &mut NodeClient<Channel> {
        &mut self.node
    }

    /// Waits for `answer`, the driver's answer to `rpc` (sent on a clone
    /// of a stub: tonic's stubs take `&mut self`, clones share the
    /// connection). A failure names the call and the socket, so the user
    /// sees which call to which driver went wrong.
    async fn call<T>(
        &self,
        rpc: &'static str,
        answer: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T> {
        match answer.await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) => Err(rpc_error(rpc, status, &self.socket)),
        }
    }

    /// [`CsiClient::call`], where an answer with code `expected` is not a
    /// failure but None: UNIMPLEMENTED from a service the endpoint does
    /// not serve, NOT_FOUND from an undo of what is already gone.
    async fn call_unless<T>(
        &self,
        rpc: &'static str,
        expected: Code,
        answer: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<Option<T>> {
        match answer.await {
            Ok(answer) => Ok(Some(answer.into_inner())),
            Err(status) if status.code() == expected => Ok(None),
            Err(status) => Err(rpc_error(rpc, status, &self.socket)),
        }
    }

    /// Every entry of the paged listing `rpc`, through all pages (see
    /// [`all_pages`]); `send(token)` asks for the page at `token`.
    async fn list_all<P: Page>(
        &self,
        rpc: &'static str,
        mut send: impl AsyncFnMut(String) -> Result<tonic::Response<P>, Status>,
    ) -> Result<Vec<P::Entry>> {
        all_pages(rpc, &self.socket, async |token| {
            Ok(self.call(rpc, send(token)).await?.into_page())
        })
        .await
    }

    /// The driver's name, version and capabilities, and the node it runs
    /// on. A controller-only or node-only endpoint answers UNIMPLEMENTED
    /// for the other service; that service is then `None`.
    pub async fn info(&self) -> Result<DriverInfo> {
        let plugin = self
            .call(
                "GetPluginInfo",
                self.identity
                    .clone()
                    .get_plugin_info(pb::GetPluginInfoRequest {}),
            )
            .await?;
        let plugin_capabilities = self
            .call(
                "GetPluginCapabilities",
                self.identity
                    .clone()
                    .get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {}),
            )
            .await?
            .capabilities;
        let controller = self.controller_caps().await?;
        let node = self.node_caps().await?;
        let node_info = self.node_info().await?;
        Ok(DriverInfo {
            name: plugin.name,
            vendor_version: plugin.vendor_version,
            manifest: plugin.manifest.into_iter().collect(),
            plugin_capabilities,
            controller,
            node,
            node_info,
        })
    }

    /// The Controller service's RPC capabilities; None when the endpoint
    /// does not serve it.
    async fn controller_caps(&self) -> Result<Option<Vec<ControllerCap>>> {
        use pb::controller_service_capability::Type;
        let request = pb::ControllerGetCapabilitiesRequest {};
        let answer = self
            .call_unless(
                "ControllerGetCapabilities",
                Code::Unimplemented,
                self.controller.clone().controller_get_capabilities(request),
            )
            .await?;
        Ok(answer.map(|a| known_caps(a.capabilities, |c| c.r#type.map(|Type::Rpc(r)| r.r#type))))
    }

    /// The Node service's RPC capabilities; None when the endpoint does
    /// not serve it.
    async fn node_caps(&self) -> Result<Option<Vec<NodeCap>>> {
        use pb::node_service_capability::Type;
        let request = pb::NodeGetCapabilitiesRequest {};
        let answer = self
            .call_unless(
                "NodeGetCapabilities",
                Code::Unimplemented,
                self.node.clone().node_get_capabilities(request),
            )
            .await?;
        Ok(answer.map(|a| known_caps(a.capabilities, |c| c.r#type.map(|Type::Rpc(r)| r.r#type))))
    }

    async fn node_info(&self) -> Result<Option<NodeInfo>> {
        let answer = self
            .call_unless(
                "NodeGetInfo",
                Code::Unimplemented,
                self.node.clone().node_get_info(pb::NodeGetInfoRequest {}),
            )
            .await?;
        Ok(answer.map(|answer| NodeInfo {
            node_id: answer.node_id,
            max_volumes_per_node: answer.max_volumes_per_node,
            topology: answer
                .accessible_topology
                .map(|t| t.segments.into_iter().collect())
                .unwrap_or_default(),
        }))
    }

    async fn caps(&self) -> Result<&Caps> {
        self.caps
            .get_or_try_init(|| async {
                Ok(Caps {
                    controller: self.controller_caps().await?.unwrap_or_default(),
                    node: self.node_caps().await?,
                    node_id: self.node_info().await?.map(|n| n.node_id),
                })
            })
            .await
    }

    /// CreateVolume; the volume as the driver describes it.
    pub async fn create_volume(&self, spec: &VolumeSpec) -> Result<pb::Volume> {
        let request = create_request(spec)?;
        self.call(
            "CreateVolume",
            self.controller.clone().create_volume(request),
        )
        .await?
        .volume
        .ok_or_else(|| self.bad_answer("CreateVolume", "a volume"))
    }

    /// DeleteVolume; a volume that does not exist is already deleted.
    pub async fn delete_volume(&self, volume_id: &str) -> Result<()> {
        required("volume ID", volume_id)?;
        let request = pb::DeleteVolumeRequest {
            volume_id: volume_id.to_owned(),
            secrets: HashMap::new(),
        };
        self.call(
            "DeleteVolume",
            self.controller.clone().delete_volume(request),
        )
        .await?;
        Ok(())
    }

    /// ControllerExpandVolume to at least `bytes`: the new capacity, and
    /// whether the node must still grow the filesystem (NodeExpandVolume).
    pub async fn expand_volume(
        &self,
        volume_id: &str,
        bytes: u64,
        access: &Access,
    ) -> Result<(u64, bool)> {
        required("volume ID", volume_id)?;
        let request = pb::ControllerExpandVolumeRequest {
            volume_id: volume_id.to_owned(),
            capacity_range: Some(pb::CapacityRange {
                required_bytes: bytes as i64,
                limit_bytes: 0,
            }),
            secrets: HashMap::new(),
            volume_capability: Some(capability(access, Mode::SingleNodeWriter)),
        };
        let answer = self
            .call(
                "ControllerExpandVolume",
                self.controller.clone().controller_expand_volume(request),
            )
            .await?;
        Ok((
            answer.capacity_bytes.max(0) as u64,
            answer.node_expansion_required,
        ))
    }

    /// NodeExpandVolume: grows the filesystem of a volume published at
    /// `volume_path` (staged at `staging`, if the node stages) to `bytes`.
    pub async fn node_expand(
        &self,
        volume_id: &str,
        volume_path: &Path,
        staging: Option<&Path>,
        bytes: u64,
        access: &Access,
    ) -> Result<u64> {
        required("volume ID", volume_id)?;
        let request = pb::NodeExpandVolumeRequest {
            volume_id: volume_id.to_owned(),
            volume_path: volume_path.to_string_lossy().into_owned(),
            capacity_range: Some(pb::CapacityRange {
                required_bytes: bytes as i64,
                limit_bytes: 0,
            }),
            staging_target_path: staging
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            volume_capability: Some(capability(access, Mode::SingleNodeWriter)),
            secrets: HashMap::new(),
        };
        let answer = self
            .call(
                "NodeExpandVolume",
                self.node.clone().node_expand_volume(request),
            )
            .await?;
        Ok(answer.capacity_bytes.max(0) as u64)
    }

    /// Every volume, following next_token through all pages of
    /// `page_size` entries (0: the driver decides).
    pub async fn list_volumes(
        &self,
        page_size: i32,
    ) -> Result<Vec<pb::list_volumes_response::Entry>> {
        self.list_all("ListVolumes", async |token| {
            let request = pb::ListVolumesRequest {
                max_entries: page_size.max(0),
                starting_token: token,
            };
            self.controller.clone().list_volumes(request).await
        })
        .await
    }

    /// CreateSnapshot of volume `source` named `name`. Repeating the call
    /// is how a caller waits for a snapshot that is not ready to use yet.
    pub async fn create_snapshot(&self, source: &str, name: &str) -> Result<pb::Snapshot> {
        required("source volume ID", source)?;
        required("snapshot name", name)?;
        let request = pb::CreateSnapshotRequest {
            source_volume_id: source.to_owned(),
            name: name.to_owned(),
            ..Default::default()
        };
        self.call(
            "CreateSnapshot",
            self.controller.clone().create_snapshot(request),
        )
        .await?
        .snapshot
        .ok_or_else(|| self.bad_answer("CreateSnapshot", "a snapshot"))
    }

    /// DeleteSnapshot; one that does not exist is already deleted.
    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<()> {
        required("snapshot ID", snapshot_id)?;
        let request = pb::DeleteSnapshotRequest {
            snapshot_id: snapshot_id.to_owned(),
            secrets: HashMap::new(),
        };
        self.call(
            "DeleteSnapshot",
            self.controller.clone().delete_snapshot(request),
        )
        .await?;
        Ok(())
    }

    /// Every snapshot (of volume `source`, if given), through all pages.
    pub async fn list_snapshots(
        &self,
        source: Option<&str>,
        page_size: i32,
    ) -> Result<Vec<pb::Snapshot>> {
        let entries = self
            .list_all("ListSnapshots", async |token| {
                let request = pb::ListSnapshotsRequest {
                    max_entries: page_size.max(0),
                    starting_token: token,
                    source_volume_id: source.unwrap_or_default().to_owned(),
                    ..Default::default()
                };
                self.controller.clone().list_snapshots(request).await
            })
            .await?;
        Ok(entries.into_iter().filter_map(|e| e.snapshot).collect())
    }

    /// What [`CsiClient::publish`] and [`CsiClient::unpublish`] both do
    /// first: check `volume_id` and `target`, learn what the driver does
    /// (once per client; `operation` names the caller if it has no Node
    /// service) and take the volume's lock.
    async fn place(
        &self,
        volume_id: &str,
        target: &Path,
        given_root: Option<&Path>,
        operation: &'static str,
    ) -> Result<Placement> {
        required("volume ID", volume_id)?;
        absolute("target", target)?;
        let caps = self.caps().await?;
        let Some(node_caps) = &caps.node else {
            return Err(self.no_service("Node", operation));
        };
        let root = staging_root(given_root);
        let lock = lock_volume(&root, volume_id).await?;
        Ok(Placement {
            staging: node_caps
                .contains(&NodeCap::StageUnstageVolume)
                .then(|| staging_path(&root, volume_id)),
            controller_publishes: caps
                .controller
                .contains(&ControllerCap::PublishUnpublishVolume),
            driver_node_id: caps.node_id.clone(),
            root,
            _lock: lock,
        })
    }

    /// Makes volume `volume_id` usable at `target` on this node, as a CO
    /// does: ControllerPublishVolume (if the controller has it),
    /// NodeStageVolume (if the node stages), NodePublishVolume. Repeating
    /// it is harmless. If a step fails and no other target uses the
    /// volume, the steps before it are undone.
    pub async fn publish(
        &self,
        volume_id: &str,
        target: &Path,
        opts: &PublishOptions,
    ) -> Result<Published> {
        let place = self
            .place(
                volume_id,
                target,
                opts.staging_root.as_deref(),
                "publishing a volume",
            )
            .await?;
        let Placement {
            root,
            staging,
            controller_publishes,
            ..
        } = &place;
        let capability = capability(&opts.access, opts.access_mode);
        let volume_context: HashMap<_, _> = opts.volume_context.clone().into_iter().collect();
        let secrets: HashMap<_, _> = opts.secrets.clone().into_iter().collect();
        let node_id = opts
            .node_id
            .clone()
            .or_else(|| place.driver_node_id.clone())
            .unwrap_or_default();
        let steps = async {
            let mut publish_context = HashMap::new();
            if *controller_publishes {
                required("node ID", &node_id)?;
                let request = pb::ControllerPublishVolumeRequest {
                    volume_id: volume_id.to_owned(),
                    node_id: node_id.clone(),
                    volume_capability: Some(capability.clone()),
                    readonly: opts.readonly,
                    secrets: secrets.clone(),
                    volume_context: volume_context.clone(),
                };
                publish_context = self
                    .call(
                        "ControllerPublishVolume",
                        self.controller.clone().controller_publish_volume(request),
                    )
                    .await?
                    .publish_context;
            }
            if let Some(staging) = staging {
                std::fs::create_dir_all(staging)
                    .map_err(io_err("creating the staging folder", staging))?;
                let request = pb::NodeStageVolumeRequest {
                    volume_id: volume_id.to_owned(),
                    publish_context: publish_context.clone(),
                    staging_target_path: path_string(staging)?,
                    volume_capability: Some(capability.clone()),
                    secrets: secrets.clone(),
                    volume_context: volume_context.clone(),
                };
                self.call(
                    "NodeStageVolume",
                    self.node.clone().node_stage_volume(request),
                )
                .await?;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
            }
            let request = pb::NodePublishVolumeRequest {
                volume_id: volume_id.to_owned(),
                publish_context: publish_context.clone(),
                staging_target_path: match staging {
                    Some(s) => path_string(s)?,
                    None => String::new(),
                },
                target_path: path_string(target)?,
                volume_capability: Some(capability.clone()),
                readonly: opts.readonly,
                secrets: secrets.clone(),
                volume_context: volume_context.clone(),
            };
            self.call(
                "NodePublishVolume",
                self.node.clone().node_publish_volume(request),
            )
            .await?;
            Ok(publish_context)
        };
        let published = steps.await;
        let mut record = Record::read(root, volume_id)?;
        let publish_context = match published {
            Ok(context) => context,
            Err(e) => {
                // Nothing else on this node uses the volume: leave it as
                // it was before (best effort; the error says what failed).
                if record.live_targets().is_empty() {
                    let _ = self
                        .release(
                            volume_id,
                            staging.as_deref(),
                            *controller_publishes,
                            &node_id,
                            &secrets,
                        )
                        .await;
                    let _ = record.remove(root, volume_id);
                }
                return Err(e);
            }
        };
        record.node_id = node_id.clone();
        if !record.targets.iter().any(|t| t == target) {
            record.targets.push(target.to_owned());
        }
        record.write(root, volume_id)?;
        Ok(Published {
            node_id,
            staging: staging.clone(),
            publish_context: publish_context.into_iter().collect(),
        })
    }

    /// Undoes [`CsiClient::publish`] at `target`: NodeUnpublishVolume, and
    /// when no other target on this node uses the volume,
    /// NodeUnstageVolume and ControllerUnpublishVolume. Repeating it is
    /// harmless; a volume that no longer exists is unpublished.
    pub async fn unpublish(
        &self,
        volume_id: &str,
        target: &Path,
        opts: &UnpublishOptions,
    ) -> Result<Unpublished> {
        let place = self
            .place(
                volume_id,
                target,
                opts.staging_root.as_deref(),
                "unpublishing a volume",
            )
            .await?;
        let root = &place.root;
        let request = pb::NodeUnpublishVolumeRequest {
            volume_id: volume_id.to_owned(),
            target_path: path_string(target)?,
        };
        // NOT_FOUND: the volume is gone, so it is published nowhere.
        self.call_unless(
            "NodeUnpublishVolume",
            Code::NotFound,
            self.node.clone().node_unpublish_volume(request),
        )
        .await?;

        let mut record = Record::read(root, volume_id)?;
        record.targets.retain(|t| t != target);
        let remaining = record.live_targets();
        if !remaining.is_empty() {
            record.targets = remaining.clone();
            record.write(root, volume_id)?;
            return Ok(Unpublished {
                released: false,
                remaining,
            });
        }
        let node_id = opts
            .node_id
            .clone()
            .or_else(|| place.driver_node_id.clone())
            .unwrap_or_else(|| record.node_id.clone());
        let secrets: HashMap<_, _> = opts.secrets.clone().into_iter().collect();
        self.release(
            volume_id,
            place.staging.as_deref(),
            place.controller_publishes,
            &node_id,
            &secrets,
        )
        .await?;
        record.remove(root, volume_id)?;
        Ok(Unpublished {
            released: true,
            remaining: Vec::new(),
        })
    }

    /// NodeUnstageVolume (and removes the staging folder), then
    /// ControllerUnpublishVolume, each if the driver has it. NOT_FOUND
    /// from either is done: the volume is gone, so nothing is staged or
    /// published.
    async fn release(
        &self,
        volume_id: &str,
        staging: Option<&Path>,
        controller_publishes: bool,
        node_id: &str,
        secrets: &HashMap<String, String>,
    ) -> Result<()> {
        if let Some(staging) = staging {
            let request = pb::NodeUnstageVolumeRequest {
                volume_id: volume_id.to_owned(),
                staging_target_path: path_string(staging)?,
            };
            self.call_unless(
                "NodeUnstageVolume",
                Code::NotFound,
                self.node.clone().node_unstage_volume(request),
            )
            .await?;
            match std::fs::remove_dir(staging) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("removing the staging folder", staging)(e));
                }
                _ => {}
            }
        }
        if controller_publishes {
            required("node ID", node_id)?;
            let request = pb::ControllerUnpublishVolumeRequest {
                volume_id: volume_id.to_owned(),
                node_id: node_id.to_owned(),
                secrets: secrets.clone(),
            };
            self.call_unless(
                "ControllerUnpublishVolume",
                Code::NotFound,
                self.controller.clone().controller_unpublish_volume(request),
            )
            .await?;
        }
        Ok(())
    }

    fn bad_answer(&self, rpc: &'static str, what: &str) -> ClientError {
        ClientError::BadAnswer {
            rpc,
            what: what.to_owned(),
            socket: self.socket.clone(),
        }
    }

    fn no_service(&self, service: &'static str, operation: &'static str) -> ClientError {
        ClientError::NoService {
            service,
            operation,
            socket: self.socket.clone(),
        }
    }
}

/// What [`CsiClient::place`] works out for one volume; its lock is held
/// until this is dropped.
struct Placement {
    root: PathBuf,
    /// The volume's staging folder, when the node stages volumes.
    staging: Option<PathBuf>,
    /// Whether the controller publishes volumes to nodes (attaches them).
    controller_publishes: bool,
    /// The node NodeGetInfo names, if the endpoint serves it.
    driver_node_id: Option<String>,
    _lock: VolumeLock,
}

/// One page of a paged listing: its entries, and the token of the next
/// page ("" after the last).
trait Page {
    type Entry;
    fn into_page(self) -> (Vec<Self::Entry>, String);
}

impl Page for pb::ListVolumesResponse {
    type Entry = pb::list_volumes_response::Entry;
    fn into_page(self) -> (Vec<Self::Entry>, String) {
        (self.entries, self.next_token)
    }
}

impl Page for pb::ListSnapshotsResponse {
    type Entry = pb::list_snapshots_response::Entry;
    fn into_page(self) -> (Vec<Self::Entry>, String) {
        (self.entries, self.next_token)
    }
}

/// The RPC capabilities among `caps` that this client knows
/// (`rpc_type` reads one's type number); newer ones are left out.
fn known_caps<C, T: TryFrom<i32>>(caps: Vec<C>, rpc_type: impl Fn(C) -> Option<i32>) -> Vec<T> {
    caps.into_iter()
        .filter_map(|c| T::try_from(rpc_type(c)?).ok())
        .collect()
}

/// A [`CsiClient`] for synchronous callers, with a runtime of its own.
pub struct BlockingCsiClient {
    runtime: tokio::runtime::Runtime,
    client: CsiClient,
}

impl std::fmt::Debug for BlockingCsiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.client.fmt(f)
    }
}

impl BlockingCsiClient {
    pub fn connect(endpoint: &str) -> Result<BlockingCsiClient> {
        // A bad endpoint is refused before a runtime is made.
        socket_path(endpoint)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let client = runtime.block_on(CsiClient::connect(endpoint))?;
        Ok(BlockingCsiClient { runtime, client })
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn info(&self) -> Result<DriverInfo> {
        self.block_on(self.client.info())
    }

    pub fn create_volume(&self, spec: &VolumeSpec) -> Result<pb::Volume> {
        self.block_on(self.client.create_volume(spec))
    }

    pub fn delete_volume(&self, volume_id: &str) -> Result<()> {
        self.block_on(self.client.delete_volume(volume_id))
    }

    pub fn expand_volume(
        &self,
        volume_id: &str,
        bytes: u64,
        access: &Access,
    ) -> Result<(u64, bool)> {
        self.block_on(self.client.expand_volume(volume_id, bytes, access))
    }

    pub fn node_expand(
        &self,
        volume_id: &str,
        volume_path: &Path,
        staging: Option<&Path>,
        bytes: u64,
        access: &Access,
    ) -> Result<u64> {
        self.block_on(
            self.client
                .node_expand(volume_id, volume_path, staging, bytes, access),
        )
    }

    pub fn list_volumes(&self, page_size: i32) -> Result<Vec<pb::list_volumes_response::Entry>> {
        self.block_on(self.client.list_volumes(page_size))
    }

    pub fn publish(
        &self,
        volume_id: &str,
        target: &Path,
        opts: &PublishOptions,
    ) -> Result<Published> {
        self.block_on(self.client.publish(volume_id, target, opts))
    }

    pub fn unpublish(
        &self,
        volume_id: &str,
        target: &Path,
        opts: &UnpublishOptions,
    ) -> Result<Unpublished> {
        self.block_on(self.client.unpublish(volume_id, target, opts))
    }

    pub fn create_snapshot(&self, source: &str, name: &str) -> Result<pb::Snapshot> {
        self.block_on(self.client.create_snapshot(source, name))
    }

    pub fn delete_snapshot(&self, snapshot_id: &str) -> Result<()> {
        self.block_on(self.client.delete_snapshot(snapshot_id))
    }

    pub fn list_snapshots(
        &self,
        source: Option<&str>,
        page_size: i32,
    ) -> Result<Vec<pb::Snapshot>> {
        self.block_on(self.client.list_snapshots(source, page_size))
    }
}

/// The VolumeCapability for `access` with `mode`.
pub fn capability(access: &Access, mode: Mode) -> pb::VolumeCapability {
    use pb::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
    let access_type = match access {
        Access::Block => AccessType::Block(BlockVolume {}),
        Access::Mount {
            fs_type,
            mount_flags,
        } => AccessType::Mount(MountVolume {
            fs_type: fs_type.clone(),
            mount_flags: mount_flags.clone(),
            volume_mount_group: String::new(),
        }),
    };
    pb::VolumeCapability {
        access_type: Some(access_type),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

/// The CreateVolumeRequest for `spec`; refuses what no driver would take.
pub fn create_request(spec: &VolumeSpec) -> Result<pb::CreateVolumeRequest> {
    required("volume name", &spec.name)?;
    let bytes = |what: &str, n: Option<u64>| -> Result<i64> {
        match n {
            None => Ok(0),
            Some(0) => Err(ClientError::Invalid(format!(
                "the {what} of volume {} must be more than 0 bytes",
                spec.name
            ))),
            Some(n) => i64::try_from(n).map_err(|_| {
                ClientError::Invalid(format!("the {what} of volume {} is too large", spec.name))
            }),
        }
    };
    let required_bytes = bytes("size", spec.capacity)?;
    let limit_bytes = bytes("size limit", spec.limit)?;
    if limit_bytes > 0 && required_bytes > limit_bytes {
        return Err(ClientError::Invalid(format!(
            "volume {} asks for {required_bytes} bytes but limits itself to {limit_bytes}; give a limit at least as large as the size",
            spec.name
        )));
    }
    let capacity_range = (required_bytes > 0 || limit_bytes > 0).then_some(pb::CapacityRange {
        required_bytes,
        limit_bytes,
    });
    let volume_content_source = match &spec.source {
        None => None,
        Some(source) => {
            use pb::volume_content_source::{SnapshotSource, Type, VolumeSource};
            let r#type = match source {
                ContentSource::Snapshot(id) => {
                    required("source snapshot ID", id)?;
                    Type::Snapshot(SnapshotSource {
                        snapshot_id: id.clone(),
                    })
                }
                ContentSource::Volume(id) => {
                    required("source volume ID", id)?;
                    Type::Volume(VolumeSource {
                        volume_id: id.clone(),
                    })
                }
            };
            Some(pb::VolumeContentSource {
                r#type: Some(r#type),
            })
        }
    };
    Ok(pb::CreateVolumeRequest {
        name: spec.name.clone(),
        capacity_range,
        volume_capabilities: vec![capability(&spec.access, spec.access_mode)],
        parameters: spec.parameters.clone().into_iter().collect(),
        secrets: spec.secrets.clone().into_iter().collect(),
        volume_content_source,
        accessibility_requirements: spec.accessibility.clone(),
        mutable_parameters: HashMap::new(),
    })
}

/// The name a volume's staging folder has under the staging root: the ID
/// itself when it is a plain name (letters, digits, `_`, `.`, `-`, a
/// letter or digit first, at most 128 bytes), else `sha256-` and the hex
/// of its SHA-256, so any ID gives one safe folder.
pub fn staging_key(volume_id: &str) -> String {
    let plain = !volume_id.is_empty()
        && volume_id.len() <= 128
        && volume_id.as_bytes()[0].is_ascii_alphanumeric()
        && volume_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if plain {
        return volume_id.to_owned();
    }
    use sha2::Digest;
    format!(
        "sha256-{}",
        hex::encode(sha2::Sha256::digest(volume_id.as_bytes()))
    )
}

/// Where volume `volume_id` is staged under `root`.
pub fn staging_path(root: &Path, volume_id: &str) -> PathBuf {
    root.join(staging_key(volume_id))
}

fn staging_root(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| PathBuf::from(DEFAULT_STAGING_ROOT), Path::to_owned)
}

fn rpc_error(rpc: &'static str, status: Status, socket: &Path) -> ClientError {
    let message = match status.message().trim() {
        "" => "the driver gave no reason".to_owned(),
        m => m.to_owned(),
    };
    ClientError::Rpc {
        rpc,
        code: status.code(),
        message,
        socket: socket.to_owned(),
    }
}

fn required(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(ClientError::Invalid(format!("a {what} is required")));
    }
    Ok(())
}

fn absolute(what: &str, path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(ClientError::Invalid(format!(
            "the {what} path {} must be absolute",
            path.display()
        )));
    }
    Ok(())
}

fn path_string(path: &Path) -> Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        ClientError::Invalid(format!(
            "the path {} is not UTF-8, which CSI requires",
            path.display()
        ))
    })
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClientError {
    let path = path.to_owned();
    move |source| ClientError::Io { what, path, source }
}

/// The innermost cause of `e`, as our messages read it: lower-case first
/// letter, no "(os error N)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = match text.find(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().all(|c| !c.is_ascii_uppercase()) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text,
    }
}

/// Every entry of a paged listing: `fetch(token)` gives one page and the
/// next token ("" at the end). A stale token (ABORTED) starts it again; a
/// token seen twice is a driver that would page forever.
async fn all_pages<T>(
    rpc: &'static str,
    socket: &Path,
    mut fetch: impl AsyncFnMut(String) -> Result<(Vec<T>, String)>,
) -> Result<Vec<T>> {
    let mut restarts = 0;
    'again: loop {
        let mut all = Vec::new();
        let mut seen = HashSet::new();
        let mut token = String::new();
        loop {
            let (page, next) = match fetch(token.clone()).await {
                Ok(page) => page,
                Err(e)
                    if e.code() == Some(Code::Aborted)
                        && !token.is_empty()
                        && restarts < LIST_RESTARTS =>
                {
                    restarts += 1;
                    continue 'again;
                }
                Err(e) => return Err(e),
            };
            all.extend(page);
            if next.is_empty() {
                return Ok(all);
            }
            if !seen.insert(next.clone()) {
                return Err(ClientError::BadAnswer {
                    rpc,
                    what: format!("an end (next_token {next} came back twice)"),
                    socket: socket.to_owned(),
                });
            }
            token = next;
        }
    }
}

/// The targets on this node that use a volume, kept beside its staging
/// folder (never inside it: that is the volume's mount point).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    volume_id: String,
    node_id: String,
    targets: Vec<PathBuf>,
}

impl Record {
    fn path(root: &Path, volume_id: &str) -> PathBuf {
        root.join(RECORDS)
            .join(format!("{}.json", staging_key(volume_id)))
    }

    fn read(root: &Path, volume_id: &str) -> Result<Record> {
        let path = Record::path(root, volume_id);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Record {
                    volume_id: volume_id.to_owned(),
                    ..Record::default()
                });
            }
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        // A record that cannot be read (a crash mid-write cannot make one:
        // it is renamed into place) counts as no targets.
        Ok(serde_json::from_slice(&text).unwrap_or_else(|_| Record {
            volume_id: volume_id.to_owned(),
            ..Record::default()
        }))
    }

    /// The recorded targets that still exist.
    fn live_targets(&self) -> Vec<PathBuf> {
        self.targets
            .iter()
            .filter(|t| t.symlink_metadata().is_ok())
            .cloned()
            .collect()
    }

    fn write(&self, root: &Path, volume_id: &str) -> Result<()> {
        let path = Record::path(root, volume_id);
        let temp = path.with_extension("json.new");
        let text = serde_json::to_vec(self).expect("records serialize");
        std::fs::write(&temp, text).map_err(io_err("writing", &temp))?;
        std::fs::rename(&temp, &path).map_err(io_err("writing", &path))
    }

    fn remove(&self, root: &Path, volume_id: &str) -> Result<()> {
        let path = Record::path(root, volume_id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("removing", &path)(e)),
            _ => Ok(()),
        }
    }
}

/// An exclusive flock on a volume's lock file, removed when released.
struct VolumeLock {
    file: std::fs::File,
    path: PathBuf,
}

impl Drop for VolumeLock {
    fn drop(&mut self) {
        // Removed while held: a waiter that then gets the lock sees the
        // file is gone and locks a new one.
        let _ = std::fs::remove_file(&self.path);
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

/// Waits (off the async threads) for volume `volume_id`'s lock under `root`.
async fn lock_volume(root: &Path, volume_id: &str) -> Result<VolumeLock> {
    let dir = root.join(RECORDS);
    std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let path = dir.join(format!("{}.lock", staging_key(volume_id)));
    let waited = path.clone();
    tokio::task::spawn_blocking(move || lock_file(&path))
        .await
        .map_err(|e| io_err("locking", &waited)(std::io::Error::other(e)))?
}

fn lock_file(path: &Path) -> Result<VolumeLock> {
    use rustix::fs::{FlockOperation, flock, fstat, stat};
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err("opening the lock", path))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| io_err("locking", path)(e.into()))?;
        let held = fstat(&file).map_err(|e| io_err("locking", path)(e.into()))?;
        match stat(path) {
            Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                return Ok(VolumeLock {
                    file,
                    path: path.to_owned(),
                });
            }
            // Its holder removed it as it let go: lock the new one.
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(input: impl std::fmt::Debug, got: T, expected: T) {
        assert_eq!(got, expected, "{input:?}");
    }

    #[test]
    fn staging_keys() {
        let hashed = |id: &str| {
            use sha2::Digest;
            format!(
                "sha256-{}",
                hex::encode(sha2::Sha256::digest(id.as_bytes()))
            )
        };
        for (input, expected) in [
            ("pvc-0a1b2c", "pvc-0a1b2c".to_owned()),
            ("v1", "v1".to_owned()),
            (
                "csi-9f86d081884c7d659a2feaa0c55ad015",
                "csi-9f86d081884c7d659a2feaa0c55ad015".to_owned(),
            ),
            ("a.b_c-d", "a.b_c-d".to_owned()),
            ("", hashed("")),
            (".hidden", hashed(".hidden")),
            ("..", hashed("..")),
            ("-flag", hashed("-flag")),
            ("a/b", hashed("a/b")),
            ("../../etc", hashed("../../etc")),
            ("vol id", hashed("vol id")),
            ("ünï", hashed("ünï")),
            (&"x".repeat(128), "x".repeat(128)),
            (&"x".repeat(129), hashed(&"x".repeat(129))),
        ] {
            check(input, staging_key(input), expected);
        }
        check(
            "path",
            staging_path(Path::new("/run/strata/csi-staging"), "a/b"),
            PathBuf::from(format!("/run/strata/csi-staging/{}", hashed("a/b"))),
        );
        assert_eq!(hashed("x").len(), "sha256-".len() + 64);
    }

    #[test]
    fn capabilities() {
        use pb::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
        for (input, expected) in [
            (
                (Access::Block, Mode::SingleNodeWriter),
                pb::VolumeCapability {
                    access_type: Some(AccessType::Block(BlockVolume {})),
                    access_mode: Some(AccessMode { mode: 1 }),
                },
            ),
            (
                (
                    Access::Mount {
                        fs_type: "xfs".into(),
                        mount_flags: vec!["noatime".into()],
                    },
                    Mode::MultiNodeReaderOnly,
                ),
                pb::VolumeCapability {
                    access_type: Some(AccessType::Mount(MountVolume {
                        fs_type: "xfs".into(),
                        mount_flags: vec!["noatime".into()],
                        volume_mount_group: String::new(),
                    })),
                    access_mode: Some(AccessMode { mode: 3 }),
                },
            ),
            (
                (Access::default(), Mode::SingleNodeMultiWriter),
                pb::VolumeCapability {
                    access_type: Some(AccessType::Mount(MountVolume::default())),
                    access_mode: Some(AccessMode { mode: 7 }),
                },
            ),
        ] {
            check(&input, capability(&input.0, input.1), expected);
        }
    }

    #[test]
    fn create_requests() {
        let spec = |f: fn(&mut VolumeSpec)| {
            let mut s = VolumeSpec::new("v1");
            f(&mut s);
            s
        };
        let ok = |s: &VolumeSpec| create_request(s).map_err(|e| e.to_string());
        // Capacity.
        let r = ok(&spec(|s| s.capacity = Some(64 << 20))).unwrap();
        check(
            "capacity",
            r.capacity_range,
            Some(pb::CapacityRange {
                required_bytes: 64 << 20,
                limit_bytes: 0,
            }),
        );
        let r = ok(&spec(|_| {})).unwrap();
        check("no capacity", r.capacity_range, None);
        check("name", r.name.as_str(), "v1");
        check("one capability", r.volume_capabilities.len(), 1);
        let r = ok(&spec(|s| {
            s.capacity = Some(1);
            s.limit = Some(2);
        }))
        .unwrap();
        check(
            "limit",
            r.capacity_range,
            Some(pb::CapacityRange {
                required_bytes: 1,
                limit_bytes: 2,
            }),
        );
        // Parameters and sources.
        let r = ok(&spec(|s| {
            s.parameters.insert("type".into(), "image".into());
            s.parameters.insert("fs".into(), "xfs".into());
        }))
        .unwrap();
        check(
            "parameters",
            r.parameters,
            HashMap::from([
                ("type".to_owned(), "image".to_owned()),
                ("fs".to_owned(), "xfs".to_owned()),
            ]),
        );
        let r = ok(&spec(|s| {
            s.source = Some(ContentSource::Snapshot("snap-1".into()))
        }))
        .unwrap();
        check(
            "from snapshot",
            r.volume_content_source,
            Some(pb::VolumeContentSource {
                r#type: Some(pb::volume_content_source::Type::Snapshot(
                    pb::volume_content_source::SnapshotSource {
                        snapshot_id: "snap-1".into(),
                    },
                )),
            }),
        );
        let r = ok(&spec(|s| {
            s.source = Some(ContentSource::Volume("v0".into()))
        }))
        .unwrap();
        check(
            "from volume",
            r.volume_content_source,
            Some(pb::VolumeContentSource {
                r#type: Some(pb::volume_content_source::Type::Volume(
                    pb::volume_content_source::VolumeSource {
                        volume_id: "v0".into(),
                    },
                )),
            }),
        );
        // Refused before sending.
        let refused = |s: VolumeSpec, expected: &str| {
            let e = ok(&s).unwrap_err();
            assert!(e.contains(expected), "{s:?}: {e}");
        };
        refused(spec(|s| s.name.clear()), "a volume name is required");
        refused(
            spec(|s| s.capacity = Some(0)),
            "size of volume v1 must be more than 0 bytes",
        );
        refused(spec(|s| s.capacity = Some(u64::MAX)), "too large");
        refused(
            spec(|s| {
                s.capacity = Some(10);
                s.limit = Some(5);
            }),
            "give a limit at least as large as the size",
        );
        refused(
            spec(|s| s.source = Some(ContentSource::Snapshot(String::new()))),
            "a source snapshot ID is required",
        );
    }

    #[test]
    fn error_messages() {
        let socket = Path::new("/run/strata/csi.sock");
        for (input, expected) in [
            (
                Status::not_found("volume v9 does not exist"),
                "DeleteVolume failed: volume v9 does not exist (NOT_FOUND)",
            ),
            (
                Status::unavailable("connection reset"),
                "DeleteVolume failed: connection reset (UNAVAILABLE); is the CSI driver at /run/strata/csi.sock still running?",
            ),
            (
                Status::unimplemented(""),
                "DeleteVolume failed: the driver gave no reason (UNIMPLEMENTED); the CSI driver at /run/strata/csi.sock does not implement it",
            ),
        ] {
            check(
                &input,
                rpc_error("DeleteVolume", input.clone(), socket).to_string(),
                expected.to_owned(),
            );
        }
        let e = ClientError::Unreachable {
            socket: socket.to_owned(),
            reason: root_cause(&std::io::Error::from_raw_os_error(libc::ENOENT)),
        };
        check(
            "unreachable",
            e.to_string(),
            "cannot reach the CSI driver at /run/strata/csi.sock: no such file or directory; is `strata csi serve` running?"
                .to_owned(),
        );
        check(
            "code",
            rpc_error("X", Status::aborted("busy"), socket).code(),
            Some(Code::Aborted),
        );
    }

    #[test]
    fn plugin_capability_names() {
        use pb::plugin_capability::{Service, Type, VolumeExpansion};
        for (input, expected) in [
            (
                Some(Type::Service(Service { r#type: 1 })),
                Some("CONTROLLER_SERVICE"),
            ),
            (
                Some(Type::Service(Service { r#type: 2 })),
                Some("VOLUME_ACCESSIBILITY_CONSTRAINTS"),
            ),
            (
                Some(Type::Service(Service { r#type: 99 })),
                Some("SERVICE_99"),
            ),
            (
                Some(Type::VolumeExpansion(VolumeExpansion { r#type: 1 })),
                Some("VOLUME_EXPANSION_ONLINE"),
            ),
            (None, None),
        ] {
            let cap = pb::PluginCapability { r#type: input };
            check(cap, plugin_capability_name(&cap).as_deref(), expected);
        }
    }

    /// One page of a fake driver: its token, and the entries and next
    /// token or an error code it answers with.
    type Page<'a> = (&'a str, Result<(Vec<u32>, &'a str), Code>);

    fn pages(table: &[Page], calls: &mut Vec<String>, token: String) -> Result<(Vec<u32>, String)> {
        calls.push(token.clone());
        let (_, answer) = table
            .iter()
            .find(|(t, _)| *t == token)
            .expect("a known token");
        match answer {
            Ok((entries, next)) => Ok((entries.clone(), next.to_string())),
            Err(code) => Err(rpc_error(
                "ListVolumes",
                Status::new(*code, "stale token"),
                Path::new("/s"),
            )),
        }
    }

    #[test]
    fn paging() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let run = |table: Vec<Page>| {
            let mut calls = Vec::new();
            let got = rt.block_on(all_pages("ListVolumes", Path::new("/s"), async |token| {
                pages(&table, &mut calls, token)
            }));
            (got.map_err(|e| e.to_string()), calls)
        };
        // One page.
        let (got, calls) = run(vec![("", Ok((vec![1, 2], "")))]);
        check("one page", got, Ok(vec![1, 2]));
        check("one page calls", calls, vec![String::new()]);
        // Three pages, an empty one in between.
        let (got, _) = run(vec![
            ("", Ok((vec![1], "a"))),
            ("a", Ok((vec![], "b"))),
            ("b", Ok((vec![2, 3], ""))),
        ]);
        check("three pages", got, Ok(vec![1, 2, 3]));
        // A token that comes back: an error, not a loop.
        let (got, _) = run(vec![("", Ok((vec![1], "a"))), ("a", Ok((vec![2], "a")))]);
        assert!(
            got.as_ref()
                .unwrap_err()
                .contains("next_token a came back twice"),
            "{got:?}"
        );
        // Stale tokens start it again, a few times, then fail.
        let (got, calls) = run(vec![("", Ok((vec![1], "a"))), ("a", Err(Code::Aborted))]);
        assert!(got.as_ref().unwrap_err().contains("(ABORTED)"), "{got:?}");
        check("restarts", calls.len(), 2 * (LIST_RESTARTS + 1));
        // Other errors are not retried.
        let (got, calls) = run(vec![("", Err(Code::Internal))]);
        assert!(got.unwrap_err().contains("(INTERNAL)"));
        check("no retry", calls.len(), 1);
    }

    #[test]
    fn records_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lock = rt.block_on(lock_volume(root, "a/b")).unwrap();
        let mut r = Record::read(root, "a/b").unwrap();
        check("empty", r.targets.len(), 0);
        let target = root.join("t");
        std::fs::create_dir(&target).unwrap();
        r.targets = vec![target.clone(), root.join("gone")];
        r.write(root, "a/b").unwrap();
        let r = Record::read(root, "a/b").unwrap();
        check("live", r.live_targets(), vec![target]);
        check("volume", r.volume_id.as_str(), "a/b");
        r.remove(root, "a/b").unwrap();
        r.remove(root, "a/b").unwrap();
        drop(lock);
        let left: Vec<_> = std::fs::read_dir(root.join(RECORDS)).unwrap().collect();
        check("nothing left", left.len(), 0);
        // Taken again after release.
        drop(rt.block_on(lock_volume(root, "a/b")).unwrap());
    }

    #[test]
    fn connecting_to_nothing_names_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let endpoint = format!("unix://{}", socket.display());
        let e = BlockingCsiClient::connect(&endpoint)
            .unwrap_err()
            .to_string();
        check(
            "missing",
            e,
            format!(
                "cannot reach the CSI driver at {}: no such file or directory; is `strata csi serve` running?",
                socket.display()
            ),
        );
        let e = BlockingCsiClient::connect("tcp://127.0.0.1:1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid CSI endpoint 'tcp://127.0.0.1:1'"),
            "{e}"
        );
    }
}
