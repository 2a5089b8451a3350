//! The plugin under test and how the suite talks to it: as an orchestrator
//! would, over the CSI socket with the generated gRPC clients.
//!
//! [`Csi::start`] either starts a private `strata csi serve` (its own store
//! in a temp dir, killed and its mounts and loop devices cleaned up on
//! drop) or, with `STRATA_CSI_TEST_ENDPOINT` set, uses that endpoint for any
//! CSI driver. Every call that makes something (a volume, a snapshot, a
//! stage, a publish) records its undo; [`Csi`]'s drop replays them newest
//! first, so a failing assertion leaves nothing behind.
//!
//! Error tests are tables: [`changes`] sends a good request with one change
//! per row and [`check`] reports every row whose code the spec does not
//! allow.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::fs::File;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use strata_csi::client::CsiClient;
use strata_csi::pb;
use tonic::transport::Channel;
use tonic::{Code, Status};

pub use pb::controller_service_capability::rpc::Type as Ctrl;
pub use pb::node_service_capability::rpc::Type as NodeCap;
pub use pb::plugin_capability::service::Type as Service;
pub use pb::plugin_capability::volume_expansion::Type as Expansion;
pub use pb::volume_capability::access_mode::Mode;

use pb::controller_client::ControllerClient;
use pb::identity_client::IdentityClient;
use pb::node_client::NodeClient;
use pb::volume_content_source::{SnapshotSource, Type as Source, VolumeSource};

use crate::common::csi::CsiServer;
use crate::common::{Strata, unmount_below};

/// What Strata calls itself, and the node and topology its server gets.
pub const DRIVER: &str = "csi.strata.dev";
pub const NODE_ID: &str = "conformance-node";
pub const TOPOLOGY_KEY: &str = "topology.csi.strata.dev/node";

pub const MIB: i64 = 1 << 20;

/// IDs nothing has.
pub const NO_SUCH_VOLUME: &str = "conformance-no-such-volume";
pub const NO_SUCH_SNAPSHOT: &str = "conformance-no-such-snapshot";
pub const NO_SUCH_NODE: &str = "conformance-no-such-node";

/// The codes of "Missing required field" and "does not exist".
pub const INVALID: &[Code] = &[Code::InvalidArgument];
pub const NOT_FOUND: &[Code] = &[Code::NotFound];

/// How long one call may take before the suite gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The same while cleaning up after a test.
const UNDO_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server a test wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// `--attach-required`: ControllerPublishVolume comes first.
    AttachRequired,
}

/// How a volume is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Mount,
    Block,
}

/// A kind of volume: the CreateVolume parameters and access type that
/// make it, and its usual size.
#[derive(Debug, Clone)]
pub struct Kind {
    pub label: String,
    pub params: HashMap<String, String>,
    pub access: Access,
    pub size: i64,
    /// Whether the volume has a filesystem of its own, sized by its
    /// capacity (a folder volume shares its host's).
    pub own_fs: bool,
}

impl Kind {
    fn new(
        label: &str,
        params: HashMap<String, String>,
        access: Access,
        size: i64,
        own_fs: bool,
    ) -> Kind {
        Kind {
            label: label.to_owned(),
            params,
            access,
            size,
            own_fs,
        }
    }

    /// Its capability in `mode`.
    pub fn cap_with(&self, mode: Mode) -> pb::VolumeCapability {
        cap(self.access, mode)
    }

    /// Its capability as single-node writer.
    pub fn cap(&self) -> pb::VolumeCapability {
        self.cap_with(Mode::SingleNodeWriter)
    }

    /// Writes `data` as `name` into a volume of this kind published at
    /// `target`: a file, or bytes at the name's [`block_offset`].
    pub fn put(&self, target: &Path, name: &str, data: &[u8]) {
        match self.access {
            Access::Mount => write_file(&target.join(name), data),
            Access::Block => write_at(target, block_offset(name), data),
        }
    }

    /// What is there as `name` (`len` bytes of a block device); None for a
    /// missing file.
    pub fn get(&self, target: &Path, name: &str, len: usize) -> Option<Vec<u8>> {
        match self.access {
            Access::Mount => std::fs::read(target.join(name)).ok(),
            Access::Block => Some(read_at(target, block_offset(name), len)),
        }
    }

    /// The size a workload sees at `target`: its filesystem's, or the
    /// device's.
    pub fn seen_size(&self, target: &Path) -> u64 {
        match self.access {
            Access::Mount => statvfs(target).0,
            Access::Block => device_size(target),
        }
    }
}

/// Where data put as `name` goes on a block volume.
pub fn block_offset(name: &str) -> u64 {
    match name {
        "before" => MIB as u64,
        "after" => 3 * MIB as u64,
        _ => 5 * MIB as u64,
    }
}

/// A capability: access type and mode.
pub fn cap(access: Access, mode: Mode) -> pb::VolumeCapability {
    use pb::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
    pb::VolumeCapability {
        access_type: Some(match access {
            Access::Mount => AccessType::Mount(MountVolume::default()),
            Access::Block => AccessType::Block(BlockVolume {}),
        }),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

pub fn mount_cap(mode: Mode) -> pb::VolumeCapability {
    cap(Access::Mount, mode)
}

pub fn block_cap(mode: Mode) -> pb::VolumeCapability {
    cap(Access::Block, mode)
}

pub fn range(required: i64, limit: i64) -> Option<pb::CapacityRange> {
    Some(pb::CapacityRange {
        required_bytes: required,
        limit_bytes: limit,
    })
}

pub fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A content source: the snapshot `id`.
pub fn from_snapshot(id: &str) -> Option<pb::VolumeContentSource> {
    let snapshot_id = id.to_owned();
    Some(pb::VolumeContentSource {
        r#type: Some(Source::Snapshot(SnapshotSource { snapshot_id })),
    })
}

/// A content source: the volume `id`.
pub fn from_volume(id: &str) -> Option<pb::VolumeContentSource> {
    let volume_id = id.to_owned();
    Some(pb::VolumeContentSource {
        r#type: Some(Source::Volume(VolumeSource { volume_id })),
    })
}

pub fn delete_request(id: &str) -> pb::DeleteVolumeRequest {
    pb::DeleteVolumeRequest {
        volume_id: id.to_owned(),
        ..Default::default()
    }
}

pub fn stats_request(
    id: &str,
    path: &Path,
    staging: Option<&Path>,
) -> pb::NodeGetVolumeStatsRequest {
    pb::NodeGetVolumeStatsRequest {
        volume_id: id.to_owned(),
        volume_path: path_str(path),
        staging_target_path: staging.map(path_str).unwrap_or_default(),
    }
}

/// Something to undo when the test ends.
#[derive(Debug)]
enum Undo {
    DeleteVolume(String),
    DeleteSnapshot(String),
    ControllerUnpublish { volume: String, node: String },
    NodeUnstage { volume: String, path: String },
    NodeUnpublish { volume: String, path: String },
}

/// A private `strata csi serve`, on a store of its own.
struct Server {
    csi: CsiServer,
    strata: Strata,
}

impl Server {
    fn start(variant: Variant) -> Server {
        let mut strata = Strata::new();
        strata.env.push(("RUST_LOG".into(), "debug".into()));
        let extra: &[&str] = match variant {
            Variant::Plain => &[],
            Variant::AttachRequired => &["--attach-required"],
        };
        let csi = CsiServer::start(&strata, "csi", NODE_ID, extra);
        Server { csi, strata }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped first, so nothing holds what is cleaned up below.
        self.csi.stop();
        unmount_below(&self.strata.work);
        unmount_below(&self.strata.root);
        detach_loops_below(&self.strata.root);
    }
}

const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process (and so the server it starts) has capability
/// number `cap` in effect.
fn has_capability(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|bits| bits & (1 << cap) != 0)
}

/// Detaches the loop devices whose backing files are below `dir`.
fn detach_loops_below(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let backing =
            std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
        if backing.starts_with(&prefix) {
            let _ = Command::new("losetup")
                .arg("-d")
                .arg(format!("/dev/{name}"))
                .status();
        }
    }
}

/// One test's plugin: clients, what it advertises, and what to undo.
pub struct Csi {
    rt: tokio::runtime::Runtime,
    pub identity: IdentityClient<Channel>,
    pub controller: ControllerClient<Channel>,
    pub node: NodeClient<Channel>,
    /// Where staging and target paths go.
    pub dir: PathBuf,
    /// Whether this is a private Strata server (its exact behaviour is
    /// known) rather than some driver at `STRATA_CSI_TEST_ENDPOINT`.
    pub strata: bool,
    /// CreateVolume parameters for `STRATA_CSI_TEST_ENDPOINT`.
    pub params: HashMap<String, String>,
    pub plugin_caps: HashSet<Service>,
    pub expansion: HashSet<Expansion>,
    pub ctrl_caps: HashSet<Ctrl>,
    pub node_caps: HashSet<NodeCap>,
    pub info: pb::NodeGetInfoResponse,
    /// The test's name, for skip notes and object names.
    pub test: String,
    undo: RefCell<Vec<Undo>>,
    /// ControllerPublishVolume's answer per volume, for node calls.
    publish_context: RefCell<HashMap<String, HashMap<String, String>>>,
    serial: Cell<u32>,
    /// How long the next call may take.
    timeout: Cell<Duration>,
    server: Option<Server>,
    _scratch: Option<tempfile::TempDir>,
}

impl Csi {
    /// The plugin, as a Strata server without `--attach-required` unless
    /// `STRATA_CSI_TEST_ENDPOINT` names another.
    pub fn start() -> Csi {
        Csi::with(Variant::Plain)
    }

    /// The plugin, as a Strata server with `--attach-required`.
    pub fn attach_required() -> Csi {
        Csi::with(Variant::AttachRequired)
    }

    /// The plugin if it has all of the controller capabilities `caps`
    /// (else None, with a note): `let Some(h) = Csi::start().requiring(…)`.
    pub fn requiring(self, caps: &[Ctrl]) -> Option<Csi> {
        self.need_ctrl(caps).then_some(self)
    }

    fn with(variant: Variant) -> Csi {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let external = std::env::var("STRATA_CSI_TEST_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty());
        let (endpoint, server, dir, scratch, params) = match external {
            Some(endpoint) => {
                let base = std::env::var_os("STRATA_CSI_TEST_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                std::fs::create_dir_all(&base).expect("STRATA_CSI_TEST_DIR");
                let scratch = tempfile::Builder::new()
                    .prefix("csi-conformance-")
                    .tempdir_in(&base)
                    .expect("scratch folder");
                let params = std::env::var("STRATA_CSI_TEST_PARAMS")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv
                            .split_once('=')
                            .unwrap_or_else(|| panic!("STRATA_CSI_TEST_PARAMS: {kv} is not k=v"));
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                (
                    endpoint,
                    None,
                    scratch.path().to_owned(),
                    Some(scratch),
                    params,
                )
            }
            None => {
                let server = Server::start(variant);
                let dir = server.strata.path("node");
                std::fs::create_dir_all(&dir).expect("node folder");
                let endpoint = server.csi.endpoint();
                (endpoint, Some(server), dir, None, HashMap::new())
            }
        };
        let mut client = rt
            .block_on(CsiClient::connect(&endpoint))
            .unwrap_or_else(|e| panic!("connecting to {endpoint}: {e}"));
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .unwrap_or("conformance")
            .to_owned();
        let mut csi = Csi {
            rt,
            identity: client.identity().clone(),
            controller: client.controller().clone(),
            node: client.node().clone(),
            dir,
            strata: server.is_some(),
            params,
            plugin_caps: HashSet::new(),
            expansion: HashSet::new(),
            ctrl_caps: HashSet::new(),
            node_caps: HashSet::new(),
            info: pb::NodeGetInfoResponse::default(),
            test,
            undo: RefCell::new(Vec::new()),
            publish_context: RefCell::new(HashMap::new()),
            serial: Cell::new(0),
            timeout: Cell::new(CALL_TIMEOUT),
            server,
            _scratch: scratch,
        };
        csi.wait_ready();
        csi.learn_capabilities();
        csi
    }

    /// Probes until the plugin says it is ready (or does not say).
    fn wait_ready(&self) {
        let t = Instant::now();
        loop {
            let probe = self.probe(pb::ProbeRequest {});
            match probe {
                Ok(r) if r.ready != Some(false) => return,
                Ok(_) if t.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Ok(_) => panic!("the plugin is still not ready after 30 s"),
                Err(s) => panic!("Probe failed: {}", status_text(&s)),
            }
        }
    }

    fn learn_capabilities(&mut self) {
        use pb::plugin_capability::Type as P;
        let plugin = ok(
            "GetPluginCapabilities",
            self.get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {}),
        );
        for c in plugin.capabilities {
            match c.r#type {
                Some(P::Service(s)) => {
                    self.plugin_caps.extend(Service::try_from(s.r#type).ok());
                }
                Some(P::VolumeExpansion(e)) => {
                    self.expansion.extend(Expansion::try_from(e.r#type).ok());
                }
                None => {}
            }
        }
        if self.plugin_caps.contains(&Service::ControllerService) {
            let ctrl = ok(
                "ControllerGetCapabilities",
                self.controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {}),
            );
            self.ctrl_caps = ctrl_types(&ctrl).into_iter().flatten().collect();
        }
        let node = ok(
            "NodeGetCapabilities",
            self.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}),
        );
        self.node_caps = node_types(&node).into_iter().flatten().collect();
        self.info = ok("NodeGetInfo", self.node_get_info(pb::NodeGetInfoRequest {}));
    }

    /// Runs a future (a batch of concurrent calls) to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Prints why (part of) a test does not apply to this plugin.
    pub fn skip(&self, why: &str) {
        println!("SKIPPED in {}: {why}", self.test);
    }

    pub fn has_ctrl(&self, c: Ctrl) -> bool {
        self.ctrl_caps.contains(&c)
    }

    pub fn has_node(&self, c: NodeCap) -> bool {
        self.node_caps.contains(&c)
    }

    pub fn has_plugin(&self, c: Service) -> bool {
        self.plugin_caps.contains(&c)
    }

    /// Whether the plugin has all of `caps`; if not, says so.
    pub fn need_ctrl(&self, caps: &[Ctrl]) -> bool {
        if !self.has_plugin(Service::ControllerService) {
            self.skip("the plugin has no CONTROLLER_SERVICE");
            return false;
        }
        let missing = caps.iter().filter(|c| !self.has_ctrl(**c));
        self.need("controller", missing.map(|c| c.as_str_name()))
    }

    pub fn need_node(&self, caps: &[NodeCap]) -> bool {
        let missing = caps.iter().filter(|c| !self.has_node(**c));
        self.need("node", missing.map(|c| c.as_str_name()))
    }

    /// Says which of a service's capabilities are `missing`; whether none.
    fn need<'a>(&self, service: &str, missing: impl Iterator<Item = &'a str>) -> bool {
        let missing: Vec<&str> = missing.collect();
        if !missing.is_empty() {
            self.skip(&format!("no {service} capability {}", missing.join(", ")));
        }
        missing.is_empty()
    }

    /// The server's log, for a failing test's report.
    pub fn server_log(&self) -> Option<String> {
        self.server.as_ref().map(|s| s.csi.log_text())
    }

    // ---- names, paths, kinds ------------------------------------------

    fn next(&self) -> u32 {
        let n = self.serial.get() + 1;
        self.serial.set(n);
        n
    }

    /// A name no other test (or run) uses.
    pub fn name(&self, what: &str) -> String {
        let test: String = self
            .test
            .rsplit("::")
            .next()
            .unwrap_or("t")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let n = self.next();
        if self.strata {
            format!("conf-{test}-{what}-{n}")
        } else {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() % 1_000_000_000);
            format!("conf-{test}-{what}-{}-{stamp}-{n}", std::process::id())
        }
    }

    /// A fresh staging folder (made, as the CO makes it).
    pub fn staging_path(&self) -> PathBuf {
        let p = self.dir.join(format!("stage-{}", self.next()));
        std::fs::create_dir_all(&p).expect("staging folder");
        p
    }

    /// A fresh target path, not made (the plugin makes it); its parent
    /// exists.
    pub fn target_path(&self) -> PathBuf {
        self.dir.join(format!("target-{}", self.next()))
    }

    /// A fresh staging folder when the plugin stages volumes.
    pub fn staging_if_staged(&self) -> Option<PathBuf> {
        self.has_node(NodeCap::StageUnstageVolume)
            .then(|| self.staging_path())
    }

    /// The kinds of mount volume to try: Strata's folder and image
    /// volumes, or one made with `STRATA_CSI_TEST_PARAMS`.
    pub fn mount_kinds(&self) -> Vec<Kind> {
        if !self.strata {
            return vec![self.external_kind(Access::Mount)];
        }
        let image = |fs| map(&[("type", "image"), ("fs", fs)]);
        vec![
            Kind::new(
                "dir",
                map(&[("type", "dir")]),
                Access::Mount,
                64 * MIB,
                false,
            ),
            Kind::new("image-ext4", image("ext4"), Access::Mount, 64 * MIB, true),
            // mkfs.xfs refuses filesystems under 300 MB.
            Kind::new("image-xfs", image("xfs"), Access::Mount, 320 * MIB, true),
        ]
    }

    /// Every mount kind, and block.
    pub fn all_kinds(&self) -> Vec<Kind> {
        let mut kinds = self.mount_kinds();
        kinds.push(self.block_kind());
        kinds
    }

    /// Every mount kind, and block on Strata (which is sure to make block
    /// volumes; another driver may make none).
    pub fn sure_kinds(&self) -> Vec<Kind> {
        let mut kinds = self.mount_kinds();
        if self.strata {
            kinds.push(self.block_kind());
        }
        kinds
    }

    /// Mount kinds with a filesystem of their own.
    pub fn image_kinds(&self) -> Vec<Kind> {
        self.mount_kinds()
            .into_iter()
            .filter(|k| k.own_fs)
            .collect()
    }

    /// The first mount kind (a folder volume on Strata: the cheapest).
    pub fn mount_kind(&self) -> Kind {
        self.mount_kinds().remove(0)
    }

    /// Whether volumes of `kind` can be grown while mounted on this
    /// machine: growing a mounted ext4 needs CAP_SYS_RESOURCE, which some
    /// containers do not give even to root.
    fn grows_here(&self, kind: &Kind) -> bool {
        let ext4 = kind.params.get("fs").map(String::as_str) == Some("ext4");
        !(self.strata && ext4 && !has_capability(CAP_SYS_RESOURCE))
    }

    /// [`Csi::grows_here`], saying so when not.
    pub fn grows_mounted(&self, kind: &Kind) -> bool {
        let grows = self.grows_here(kind);
        if !grows {
            self.skip(&format!(
                "{}: this machine lacks CAP_SYS_RESOURCE, so a mounted ext4 cannot be grown",
                kind.label
            ));
        }
        grows
    }

    /// An image kind that can grow while mounted here.
    pub fn growable_image_kind(&self) -> Kind {
        let kinds = self.image_kinds();
        let first = kinds[0].clone();
        kinds
            .into_iter()
            .find(|k| self.grows_here(k))
            .unwrap_or(first)
    }

    /// An image volume with ext4 (on Strata).
    pub fn image_kind(&self) -> Kind {
        self.image_kinds().remove(0)
    }

    pub fn block_kind(&self) -> Kind {
        if !self.strata {
            return self.external_kind(Access::Block);
        }
        Kind::new(
            "block",
            map(&[("type", "image")]),
            Access::Block,
            64 * MIB,
            false,
        )
    }

    fn external_kind(&self, access: Access) -> Kind {
        let label = format!("{access:?}").to_lowercase();
        Kind::new(&label, self.params.clone(), access, 64 * MIB, true)
    }

    // ---- volumes --------------------------------------------------------

    /// A request for a volume of `kind`, named for `what`.
    pub fn create_request(&self, kind: &Kind, what: &str) -> pb::CreateVolumeRequest {
        pb::CreateVolumeRequest {
            name: self.name(what),
            capacity_range: range(kind.size, 0),
            volume_capabilities: vec![kind.cap()],
            parameters: kind.params.clone(),
            ..Default::default()
        }
    }

    /// A request for a copy of `source`, of `kind`.
    pub fn copy_request(
        &self,
        kind: &Kind,
        source: Option<pb::VolumeContentSource>,
    ) -> pb::CreateVolumeRequest {
        pb::CreateVolumeRequest {
            volume_content_source: source,
            ..self.create_request(kind, "copy")
        }
    }

    /// Makes a volume of `kind`, or fails the test.
    pub fn create(&self, kind: &Kind) -> pb::Volume {
        self.create_with(self.create_request(kind, &kind.label))
    }

    /// Makes a volume as `req` says, or fails the test.
    pub fn create_with(&self, req: pb::CreateVolumeRequest) -> pb::Volume {
        let what = format!("CreateVolume {}", req.name);
        let r = ok(&what, self.create_volume(req));
        r.volume
            .unwrap_or_else(|| panic!("{what}: the response has no volume (REQUIRED)"))
    }

    /// Makes a volume of `kind` as `req` says, or fails the test; None
    /// (with a note) when `kind` is block and the plugin, not Strata,
    /// makes no block volumes.
    pub fn try_create(&self, kind: &Kind, req: pb::CreateVolumeRequest) -> Option<pb::Volume> {
        let name = req.name.clone();
        match self.create_volume(req) {
            Ok(r) => Some(r.volume.unwrap_or_else(|| {
                panic!("CreateVolume {name}: the response has no volume (REQUIRED)")
            })),
            Err(s)
                if kind.access == Access::Block
                    && !self.strata
                    && s.code() == Code::InvalidArgument =>
            {
                self.skip(&format!(
                    "the plugin makes no block volumes: {}",
                    s.message()
                ));
                None
            }
            Err(s) => panic!("CreateVolume ({}) {name}: {}", kind.label, status_text(&s)),
        }
    }

    /// [`Csi::try_create`] with the usual request for `kind`.
    pub fn make(&self, kind: &Kind) -> Option<pb::Volume> {
        self.try_create(kind, self.create_request(kind, &kind.label))
    }

    /// Makes a block volume, or says why the plugin cannot.
    pub fn create_block(&self) -> Option<(Kind, pb::Volume)> {
        let kind = self.block_kind();
        self.make(&kind).map(|v| (kind, v))
    }

    pub fn try_delete(&self, id: &str) -> Result<pb::DeleteVolumeResponse, Status> {
        self.delete_volume(delete_request(id))
    }

    pub fn delete(&self, id: &str) {
        ok(&format!("DeleteVolume {id}"), self.try_delete(id));
    }

    pub fn try_get_volume(&self, id: &str) -> Result<pb::ControllerGetVolumeResponse, Status> {
        let volume_id = id.to_owned();
        self.controller_get_volume(pb::ControllerGetVolumeRequest { volume_id })
    }

    /// The IDs of every volume ListVolumes gives.
    pub fn volume_ids(&self) -> Vec<String> {
        let all = self.all_volumes(0).into_iter();
        all.filter_map(|e| e.volume).map(|v| v.volume_id).collect()
    }

    // ---- controller publish ---------------------------------------------

    /// ControllerPublishVolume of `vol` to this node.
    pub fn attach_request(
        &self,
        vol: &pb::Volume,
        cap: &pb::VolumeCapability,
        readonly: bool,
    ) -> pb::ControllerPublishVolumeRequest {
        pb::ControllerPublishVolumeRequest {
            volume_id: vol.volume_id.clone(),
            node_id: self.info.node_id.clone(),
            volume_capability: Some(cap.clone()),
            readonly,
            volume_context: vol.volume_context.clone(),
            ..Default::default()
        }
    }

    /// Publishes `vol` to this node; the node calls that follow carry the
    /// publish_context it answers.
    pub fn attach(
        &self,
        vol: &pb::Volume,
        cap: &pb::VolumeCapability,
        readonly: bool,
    ) -> Result<pb::ControllerPublishVolumeResponse, Status> {
        let r = self.controller_publish_volume(self.attach_request(vol, cap, readonly));
        if let Ok(r) = &r {
            self.publish_context
                .borrow_mut()
                .insert(vol.volume_id.clone(), r.publish_context.clone());
        }
        r
    }

    /// ControllerUnpublishVolume of volume `id` from `node`.
    pub fn try_detach(
        &self,
        id: &str,
        node: &str,
    ) -> Result<pb::ControllerUnpublishVolumeResponse, Status> {
        let r = self.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest {
            volume_id: id.to_owned(),
            node_id: node.to_owned(),
            ..Default::default()
        });
        if r.is_ok() {
            self.publish_context.borrow_mut().remove(id);
        }
        r
    }

    // ---- node -----------------------------------------------------------

    /// What NodeStage/NodePublish should carry from ControllerPublish:
    /// attaches the volume first when the plugin wants that.
    pub fn publish_context(
        &self,
        vol: &pb::Volume,
        cap: &pb::VolumeCapability,
    ) -> HashMap<String, String> {
        if !self.has_ctrl(Ctrl::PublishUnpublishVolume) {
            return HashMap::new();
        }
        if let Some(c) = self.publish_context.borrow().get(&vol.volume_id) {
            return c.clone();
        }
        ok("ControllerPublishVolume", self.attach(vol, cap, false)).publish_context
    }

    pub fn stage_request(
        &self,
        vol: &pb::Volume,
        cap: &pb::VolumeCapability,
        staging: &Path,
    ) -> pb::NodeStageVolumeRequest {
        pb::NodeStageVolumeRequest {
            volume_id: vol.volume_id.clone(),
            publish_context: self.publish_context(vol, cap),
            staging_target_path: path_str(staging),
            volume_capability: Some(cap.clone()),
            volume_context: vol.volume_context.clone(),
            ..Default::default()
        }
    }

    pub fn publish_request(
        &self,
        vol: &pb::Volume,
        cap: &pb::VolumeCapability,
        staging: Option<&Path>,
        target: &Path,
        readonly: bool,
    ) -> pb::NodePublishVolumeRequest {
        pb::NodePublishVolumeRequest {
            volume_id: vol.volume_id.clone(),
            publish_context: self.publish_context(vol, cap),
            staging_target_path: staging.map(path_str).unwrap_or_default(),
            target_path: path_str(target),
            volume_capability: Some(cap.clone()),
            readonly,
            volume_context: vol.volume_context.clone(),
            ..Default::default()
        }
    }

    /// Stages `vol` at a fresh path (when the plugin stages at all); the
    /// path, or None.
    pub fn stage(&self, vol: &pb::Volume, cap: &pb::VolumeCapability) -> Option<PathBuf> {
        let staging = self.staging_if_staged()?;
        ok(
            "NodeStageVolume",
            self.node_stage_volume(self.stage_request(vol, cap, &staging)),
        );
        Some(staging)
    }

    /// Publishes `vol` (staged at `staging`) at a fresh target.
    pub fn publish(
        &self,
        vol: &pb::Volume,
        cap: &pb::VolumeCapability,
        staging: Option<&Path>,
        readonly: bool,
    ) -> PathBuf {
        let target = self.target_path();
        ok(
            "NodePublishVolume",
            self.node_publish_volume(self.publish_request(vol, cap, staging, &target, readonly)),
        );
        target
    }

    /// Stages and publishes `vol` read-write.
    pub fn mount(&self, vol: &pb::Volume, cap: &pb::VolumeCapability) -> Mounted<'_> {
        let staging = self.stage(vol, cap);
        let target = self.publish(vol, cap, staging.as_deref(), false);
        Mounted {
            h: self,
            volume_id: vol.volume_id.clone(),
            staging,
            target,
        }
    }

    /// Makes a volume of `kind` and mounts it.
    pub fn create_mounted(&self, kind: &Kind) -> (pb::Volume, Mounted<'_>) {
        let v = self.create(kind);
        let m = self.mount(&v, &kind.cap());
        (v, m)
    }

    /// Mounts `vol`, runs `f` on its target, and unmounts it.
    pub fn with_mounted<T>(&self, kind: &Kind, vol: &pb::Volume, f: impl FnOnce(&Path) -> T) -> T {
        let m = self.mount(vol, &kind.cap());
        let r = f(&m.target);
        m.unmount();
        r
    }

    pub fn try_unpublish(
        &self,
        id: &str,
        target: &Path,
    ) -> Result<pb::NodeUnpublishVolumeResponse, Status> {
        self.node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
            volume_id: id.to_owned(),
            target_path: path_str(target),
        })
    }

    pub fn try_unstage(
        &self,
        id: &str,
        staging: &Path,
    ) -> Result<pb::NodeUnstageVolumeResponse, Status> {
        self.node_unstage_volume(pb::NodeUnstageVolumeRequest {
            volume_id: id.to_owned(),
            staging_target_path: path_str(staging),
        })
    }

    /// Unpublishes volume `id` from `target` and unstages it from
    /// `staging`, or fails the test.
    pub fn unmount(&self, id: &str, staging: Option<&Path>, target: &Path) {
        ok("NodeUnpublishVolume", self.try_unpublish(id, target));
        if let Some(staging) = staging {
            ok("NodeUnstageVolume", self.try_unstage(id, staging));
        }
    }

    pub fn stats(
        &self,
        id: &str,
        path: &Path,
        staging: Option<&Path>,
    ) -> pb::NodeGetVolumeStatsResponse {
        ok(
            "NodeGetVolumeStats",
            self.node_get_volume_stats(stats_request(id, path, staging)),
        )
    }

    // ---- snapshots ------------------------------------------------------

    pub fn try_delete_snapshot(&self, id: &str) -> Result<pb::DeleteSnapshotResponse, Status> {
        self.delete_snapshot(pb::DeleteSnapshotRequest {
            snapshot_id: id.to_owned(),
            ..Default::default()
        })
    }

    /// Every snapshot ListSnapshots gives for `req`, page by page.
    pub fn all_snapshots(&self, mut req: pb::ListSnapshotsRequest) -> Vec<pb::Snapshot> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let r = ok("ListSnapshots", self.list_snapshots(req.clone()));
            all.extend(r.entries.into_iter().filter_map(|e| e.snapshot));
            if r.next_token.is_empty() {
                return all;
            }
            req.starting_token = r.next_token;
        }
        panic!("ListSnapshots never ends");
    }

    /// Every volume ListVolumes gives, page by page, `max` at a time.
    pub fn all_volumes(&self, max: i32) -> Vec<pb::list_volumes_response::Entry> {
        let mut all = Vec::new();
        let mut token = String::new();
        for _ in 0..10_000 {
            let r = ok(
                "ListVolumes",
                self.list_volumes(pb::ListVolumesRequest {
                    max_entries: max,
                    starting_token: token,
                }),
            );
            if max > 0 {
                assert!(
                    r.entries.len() <= max as usize,
                    "ListVolumes returned {} entries with max_entries {max}",
                    r.entries.len()
                );
            }
            all.extend(r.entries);
            if r.next_token.is_empty() {
                return all;
            }
            token = r.next_token;
        }
        panic!("ListVolumes never ends");
    }

    fn push(&self, u: Undo) {
        self.undo.borrow_mut().push(u);
    }

    fn call<T, F>(&self, f: F) -> Result<T, Status>
    where
        F: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let timeout = self.timeout.get();
        self.rt.block_on(async {
            match tokio::time::timeout(timeout, f).await {
                Ok(r) => r.map(tonic::Response::into_inner),
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                ))),
            }
        })
    }

    fn undo_all(&self) {
        self.timeout.set(UNDO_TIMEOUT);
        let undo = std::mem::take(&mut *self.undo.borrow_mut());
        for u in undo.into_iter().rev() {
            let r = match &u {
                Undo::NodeUnpublish { volume, path } => {
                    self.try_unpublish(volume, Path::new(path)).map(drop)
                }
                Undo::NodeUnstage { volume, path } => {
                    self.try_unstage(volume, Path::new(path)).map(drop)
                }
                Undo::ControllerUnpublish { volume, node } => {
                    self.try_detach(volume, node).map(drop)
                }
                Undo::DeleteSnapshot(id) => self.try_delete_snapshot(id).map(drop),
                Undo::DeleteVolume(id) => self.try_delete(id).map(drop),
            };
            if let Err(s) = r {
                eprintln!("cleanup: {u:?} failed: {}", status_text(&s));
            }
        }
    }
}

impl Drop for Csi {
    fn drop(&mut self) {
        self.undo_all();
        unmount_below(&self.dir);
        if std::thread::panicking()
            && let Some(log) = self.server_log()
        {
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "---- strata csi serve log (last lines) ----\n{}",
                tail.join("\n")
            );
        }
        // The server (if ours) goes next, with its mounts and loop devices.
        self.server.take();
    }
}

/// A volume staged (when the plugin stages) and published read-write at a
/// fresh target by [`Csi::mount`]. [`Mounted::unmount`] unpublishes and
/// unstages it, or fails the test; so does dropping it, unless the test is
/// failing already (then [`Csi`]'s undo cleans up).
pub struct Mounted<'a> {
    h: &'a Csi,
    volume_id: String,
    pub staging: Option<PathBuf>,
    pub target: PathBuf,
}

impl Mounted<'_> {
    pub fn staging(&self) -> Option<&Path> {
        self.staging.as_deref()
    }

    /// NodeGetVolumeStats at the target.
    pub fn stats(&self) -> pb::NodeGetVolumeStatsResponse {
        self.h.stats(&self.volume_id, &self.target, self.staging())
    }

    pub fn unmount(self) {
        drop(self);
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.h
                .unmount(&self.volume_id, self.staging.as_deref(), &self.target);
        }
    }
}

/// One blocking wrapper per RPC; those that make something record its undo.
macro_rules! rpcs {
    ($($client:ident . $rpc:ident ($req:ty) -> $resp:ty $(, undo $undo:expr)?;)*) => {
        impl Csi {
            $(
                pub fn $rpc(&self, req: $req) -> Result<$resp, Status> {
                    #[allow(unused_variables)]
                    let keep = req.clone();
                    let mut client = self.$client.clone();
                    let r = self.call(client.$rpc(req));
                    $(
                        if let Ok(resp) = &r {
                            let f: fn(&Csi, &$req, &$resp) -> Option<Undo> = $undo;
                            if let Some(u) = f(self, &keep, resp) {
                                self.push(u);
                            }
                        }
                    )?
                    r
                }
            )*
        }
    };
}

rpcs! {
    identity.get_plugin_info(pb::GetPluginInfoRequest) -> pb::GetPluginInfoResponse;
    identity.get_plugin_capabilities(pb::GetPluginCapabilitiesRequest) -> pb::GetPluginCapabilitiesResponse;
    identity.probe(pb::ProbeRequest) -> pb::ProbeResponse;
    controller.create_volume(pb::CreateVolumeRequest) -> pb::CreateVolumeResponse,
        undo |_, _, r| r.volume.as_ref().map(|v| Undo::DeleteVolume(v.volume_id.clone()));
    controller.delete_volume(pb::DeleteVolumeRequest) -> pb::DeleteVolumeResponse;
    controller.controller_publish_volume(pb::ControllerPublishVolumeRequest) -> pb::ControllerPublishVolumeResponse,
        undo |_, q, _| Some(Undo::ControllerUnpublish { volume: q.volume_id.clone(), node: q.node_id.clone() });
    controller.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest) -> pb::ControllerUnpublishVolumeResponse;
    controller.validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest) -> pb::ValidateVolumeCapabilitiesResponse;
    controller.list_volumes(pb::ListVolumesRequest) -> pb::ListVolumesResponse;
    controller.get_capacity(pb::GetCapacityRequest) -> pb::GetCapacityResponse;
    controller.controller_get_capabilities(pb::ControllerGetCapabilitiesRequest) -> pb::ControllerGetCapabilitiesResponse;
    controller.create_snapshot(pb::CreateSnapshotRequest) -> pb::CreateSnapshotResponse,
        undo |_, _, r| r.snapshot.as_ref().map(|s| Undo::DeleteSnapshot(s.snapshot_id.clone()));
    controller.delete_snapshot(pb::DeleteSnapshotRequest) -> pb::DeleteSnapshotResponse;
    controller.list_snapshots(pb::ListSnapshotsRequest) -> pb::ListSnapshotsResponse;
    controller.get_snapshot(pb::GetSnapshotRequest) -> pb::GetSnapshotResponse;
    controller.controller_expand_volume(pb::ControllerExpandVolumeRequest) -> pb::ControllerExpandVolumeResponse;
    controller.controller_get_volume(pb::ControllerGetVolumeRequest) -> pb::ControllerGetVolumeResponse;
    controller.controller_modify_volume(pb::ControllerModifyVolumeRequest) -> pb::ControllerModifyVolumeResponse;
    node.node_stage_volume(pb::NodeStageVolumeRequest) -> pb::NodeStageVolumeResponse,
        undo |_, q, _| Some(Undo::NodeUnstage { volume: q.volume_id.clone(), path: q.staging_target_path.clone() });
    node.node_unstage_volume(pb::NodeUnstageVolumeRequest) -> pb::NodeUnstageVolumeResponse;
    node.node_publish_volume(pb::NodePublishVolumeRequest) -> pb::NodePublishVolumeResponse,
        undo |_, q, _| Some(Undo::NodeUnpublish { volume: q.volume_id.clone(), path: q.target_path.clone() });
    node.node_unpublish_volume(pb::NodeUnpublishVolumeRequest) -> pb::NodeUnpublishVolumeResponse;
    node.node_get_volume_stats(pb::NodeGetVolumeStatsRequest) -> pb::NodeGetVolumeStatsResponse;
    node.node_expand_volume(pb::NodeExpandVolumeRequest) -> pb::NodeExpandVolumeResponse;
    node.node_get_capabilities(pb::NodeGetCapabilitiesRequest) -> pb::NodeGetCapabilitiesResponse;
    node.node_get_info(pb::NodeGetInfoRequest) -> pb::NodeGetInfoResponse;
}

// ---- results and checks ---------------------------------------------------

/// The controller capabilities in a response; None for an unknown number.
pub fn ctrl_types(r: &pb::ControllerGetCapabilitiesResponse) -> Vec<Option<Ctrl>> {
    use pb::controller_service_capability::Type;
    let numbers = r.capabilities.iter().map(|c| c.r#type.as_ref());
    known(
        numbers.map(|t| t.map(|Type::Rpc(rpc)| rpc.r#type)),
        Ctrl::Unknown,
    )
}

/// The node capabilities in a response; None for an unknown number.
pub fn node_types(r: &pb::NodeGetCapabilitiesResponse) -> Vec<Option<NodeCap>> {
    use pb::node_service_capability::Type;
    let numbers = r.capabilities.iter().map(|c| c.r#type.as_ref());
    known(
        numbers.map(|t| t.map(|Type::Rpc(rpc)| rpc.r#type)),
        NodeCap::Unknown,
    )
}

/// Enum values for `numbers`; None for a missing, unknown or UNKNOWN one.
fn known<T: TryFrom<i32> + PartialEq>(
    numbers: impl Iterator<Item = Option<i32>>,
    unknown: T,
) -> Vec<Option<T>> {
    numbers
        .map(|n| {
            n.and_then(|n| T::try_from(n).ok())
                .filter(|t| *t != unknown)
        })
        .collect()
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

pub fn status_text(s: &Status) -> String {
    format!("{:?} ({})", s.code(), s.message())
}

pub fn outcome<T>(r: &Result<T, Status>) -> String {
    match r {
        Ok(_) => "OK".to_owned(),
        Err(s) => status_text(s),
    }
}

pub fn code_of<T>(r: &Result<T, Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// The response of a call that must succeed.
pub fn ok<T>(what: &str, r: Result<T, Status>) -> T {
    r.unwrap_or_else(|s| panic!("{what} failed: {}", status_text(&s)))
}

/// Makes a call that must succeed twice, as an idempotent call may be
/// made ("This operation MUST be idempotent"); both responses.
pub fn twice<T>(what: &str, call: impl Fn() -> Result<T, Status>) -> (T, T) {
    let first = ok(what, call());
    let again = ok(&format!("{what} again"), call());
    (first, again)
}

/// What every error status must look like (spec, "Error Scheme"): a
/// human-readable message and no details.
pub fn status_problems<T>(r: &Result<T, Status>) -> Option<String> {
    let Err(s) = r else { return None };
    if s.message().trim().is_empty() {
        return Some(format!(
            "{:?} has an empty message (MUST be human-readable)",
            s.code()
        ));
    }
    if !s.details().is_empty() {
        return Some(format!("{:?} has details (MUST be empty)", s.code()));
    }
    None
}

/// One row of an error table: what was sent, what came back (an OK
/// response as text), and the codes the spec allows (`Code::Ok` for
/// success).
pub struct Case {
    pub name: String,
    pub got: Result<String, Status>,
    pub want: Vec<Code>,
}

pub fn case<T: Debug>(name: impl Into<String>, got: Result<T, Status>, want: &[Code]) -> Case {
    Case {
        name: name.into(),
        got: got.map(|r| {
            let mut text = format!("{r:?}");
            if text.len() > 400 {
                let mut end = 400;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push_str("...");
            }
            text
        }),
        want: want.to_vec(),
    }
}

/// Something the test checked itself, as a row of a table: OK when it
/// holds, else a failure saying `detail`.
pub fn fact(name: impl Into<String>, holds: bool, detail: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        got: if holds {
            Ok(String::new())
        } else {
            Err(Status::unknown(detail.into()))
        },
        want: vec![Code::Ok],
    }
}

/// `cases` with `prefix` before their names, to put several kinds of
/// volume in one table (so one failing kind does not hide the others).
pub fn prefixed(prefix: &str, cases: Vec<Case>) -> Vec<Case> {
    cases
        .into_iter()
        .map(|c| Case {
            name: format!("{prefix}: {}", c.name),
            ..c
        })
        .collect()
}

/// Checks a table of cases for `rpc`, reporting every mismatch at once.
pub fn check(rpc: &str, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let code = code_of(&c.got);
        if !c.want.contains(&code) {
            let got = match &c.got {
                Ok(text) => format!("OK {text}"),
                Err(s) => status_text(s),
            };
            failures.push(format!(
                "{rpc} {}: expected {:?}, got {got}",
                c.name, c.want
            ));
        } else if let Some(p) = status_problems(&c.got) {
            failures.push(format!("{rpc} {}: {p}", c.name));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// The checks on a volume condition where the plugin has VOLUME_CONDITION:
/// there, normal (the volumes checked are new and well), and with a
/// message ("This field is REQUIRED").
pub fn check_condition(what: &str, c: Option<&pb::VolumeCondition>) {
    let c = c.unwrap_or_else(|| panic!("{what}: no volume_condition although VOLUME_CONDITION"));
    assert!(
        !c.abnormal,
        "{what}: a new volume is abnormal: {}",
        c.message
    );
    assert!(
        !c.message.is_empty(),
        "{what}: the condition's message is REQUIRED"
    );
}

// ---- tables of changed requests -------------------------------------------

/// An error table: a good request, sent once per row with that row's
/// change; see [`changes`].
pub struct Changes<'a, R, T> {
    good: Box<dyn Fn() -> R + 'a>,
    send: Box<dyn Fn(R) -> Result<T, Status> + 'a>,
    cases: Vec<Case>,
}

/// A table of changes to `good`, each sent with `send`.
pub fn changes<'a, R: Clone + 'a, T>(
    good: R,
    send: impl Fn(R) -> Result<T, Status> + 'a,
) -> Changes<'a, R, T> {
    fresh_changes(move || good.clone(), send)
}

/// [`changes`] to a fresh good request for each row (a new name, say).
pub fn fresh_changes<'a, R, T>(
    good: impl Fn() -> R + 'a,
    send: impl Fn(R) -> Result<T, Status> + 'a,
) -> Changes<'a, R, T> {
    Changes {
        good: Box::new(good),
        send: Box::new(send),
        cases: Vec::new(),
    }
}

impl<R, T: Debug> Changes<'_, R, T> {
    /// Sends the good request with `change` made; the spec allows `want`.
    pub fn row(
        mut self,
        name: impl Into<String>,
        change: impl FnOnce(&mut R),
        want: &[Code],
    ) -> Self {
        let mut req = (self.good)();
        change(&mut req);
        let got = (self.send)(req);
        self.cases.push(case(name, got, want));
        self
    }

    /// `rows` when `applies`.
    pub fn when(self, applies: bool, rows: impl FnOnce(Self) -> Self) -> Self {
        if applies { rows(self) } else { self }
    }

    pub fn cases(self) -> Vec<Case> {
        self.cases
    }

    /// [`check`]s the rows as calls of `rpc`.
    pub fn check(self, rpc: &str) {
        check(rpc, self.cases);
    }
}

/// A request about one volume.
pub trait ForVolume {
    fn volume_id_mut(&mut self) -> &mut String;
}

/// A request with a volume capability (or a list of them).
pub trait WithCapability {
    /// Takes the capability (or the list) away.
    fn clear_capability(&mut self);
    /// The (first) capability.
    fn capability_mut(&mut self) -> &mut pb::VolumeCapability;
}

/// A request with a capacity range.
pub trait WithRange {
    fn range_mut(&mut self) -> &mut Option<pb::CapacityRange>;
}

/// A request at a path where the volume is published or staged.
pub trait AtPath {
    fn volume_path_mut(&mut self) -> &mut String;
}

/// Implements a trait of one field's accessor for the requests with it.
macro_rules! field {
    ($trait:ident :: $method:ident -> $ty:ty = $field:ident for $($req:ident),*) => {$(
        impl $trait for pb::$req {
            fn $method(&mut self) -> &mut $ty {
                &mut self.$field
            }
        }
    )*};
}

field!(ForVolume::volume_id_mut -> String = volume_id for
    NodeStageVolumeRequest, NodePublishVolumeRequest, ControllerPublishVolumeRequest,
    ControllerExpandVolumeRequest, NodeExpandVolumeRequest, ValidateVolumeCapabilitiesRequest,
    NodeGetVolumeStatsRequest);
field!(WithRange::range_mut -> Option<pb::CapacityRange> = capacity_range for
    CreateVolumeRequest, ControllerExpandVolumeRequest, NodeExpandVolumeRequest);
field!(AtPath::volume_path_mut -> String = volume_path for
    NodeGetVolumeStatsRequest, NodeExpandVolumeRequest);

/// [`WithCapability`] for requests with one capability.
macro_rules! one_capability {
    ($($req:ident),*) => {$(
        impl WithCapability for pb::$req {
            fn clear_capability(&mut self) {
                self.volume_capability = None;
            }
            fn capability_mut(&mut self) -> &mut pb::VolumeCapability {
                self.volume_capability.get_or_insert_with(Default::default)
            }
        }
    )*};
}

one_capability!(
    NodeStageVolumeRequest,
    NodePublishVolumeRequest,
    ControllerPublishVolumeRequest,
    ControllerExpandVolumeRequest,
    NodeExpandVolumeRequest
);

/// [`WithCapability`] for requests with a list of capabilities.
macro_rules! capability_list {
    ($($req:ident),*) => {$(
        impl WithCapability for pb::$req {
            fn clear_capability(&mut self) {
                self.volume_capabilities.clear();
            }
            fn capability_mut(&mut self) -> &mut pb::VolumeCapability {
                &mut self.volume_capabilities[0]
            }
        }
    )*};
}

capability_list!(CreateVolumeRequest, ValidateVolumeCapabilitiesRequest);

impl<R: ForVolume, T: Debug> Changes<'_, R, T> {
    /// "without a volume_id": INVALID_ARGUMENT.
    pub fn without_volume_id(self) -> Self {
        self.row(
            "without a volume_id",
            |r| r.volume_id_mut().clear(),
            INVALID,
        )
    }

    /// "of an unknown volume": NOT_FOUND.
    pub fn of_unknown_volume(self) -> Self {
        let unknown = |r: &mut R| *r.volume_id_mut() = NO_SUCH_VOLUME.into();
        self.row("of an unknown volume", unknown, NOT_FOUND)
    }
}

impl<R: WithCapability, T: Debug> Changes<'_, R, T> {
    /// Without a capability, and with one that lacks its access type or
    /// its access mode: INVALID_ARGUMENT.
    pub fn bad_capabilities(self) -> Self {
        self.row(
            "without a volume capability",
            |r| r.clear_capability(),
            INVALID,
        )
        .row(
            "with a capability without access type",
            |r| r.capability_mut().access_type = None,
            INVALID,
        )
        .row(
            "with a capability without access mode",
            |r| r.capability_mut().access_mode = None,
            INVALID,
        )
    }

    /// With `cap` for its capability.
    pub fn with_capability(self, name: &str, cap: pb::VolumeCapability, want: &[Code]) -> Self {
        self.row(name, |r| *r.capability_mut() = cap, want)
    }
}

impl<R: WithRange, T: Debug> Changes<'_, R, T> {
    /// With the capacity range `required`..`limit`.
    pub fn sized(self, name: impl Into<String>, required: i64, limit: i64, want: &[Code]) -> Self {
        self.row(name, |r| *r.range_mut() = range(required, limit), want)
    }

    /// With required_bytes above limit_bytes: OUT_OF_RANGE ("Unsupported
    /// capacity_range").
    pub fn required_above_limit(self, required: i64, limit: i64) -> Self {
        assert!(required > limit, "{required} is not above {limit}");
        let name = "with required_bytes above limit_bytes";
        self.sized(name, required, limit, &[Code::OutOfRange])
    }
}

impl<R: AtPath, T: Debug> Changes<'_, R, T> {
    /// Without a volume_path (INVALID_ARGUMENT), and at a path below `dir`
    /// that does not exist (NOT_FOUND).
    pub fn bad_paths(self, dir: &Path) -> Self {
        let nowhere = path_str(&dir.join("no-such-path"));
        self.row(
            "without a volume_path",
            |r| r.volume_path_mut().clear(),
            INVALID,
        )
        .row(
            "at a path that does not exist",
            |r| *r.volume_path_mut() = nowhere,
            NOT_FOUND,
        )
    }
}

// ---- data -----------------------------------------------------------------

/// `len` bytes that differ with `seed` and with the position.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Writes a file and makes it durable.
pub fn write_file(path: &Path, data: &[u8]) {
    use std::io::Write;
    let mut f = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    f.sync_all()
        .unwrap_or_else(|e| panic!("syncing {}: {e}", path.display()));
    sync_fs(path.parent().expect("a parent"));
}

/// Flushes the filesystem holding `path`.
pub fn sync_fs(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = rustix::fs::syncfs(&f);
    }
}

/// Writes `data` at `offset` of a block device (or file) and syncs it.
pub fn write_at(path: &Path, offset: u64, data: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {} for writing: {e}", path.display()));
    f.write_all_at(data, offset)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    f.sync_all()
        .unwrap_or_else(|e| panic!("syncing {}: {e}", path.display()));
}

/// Reads `len` bytes at `offset`, through a fresh open.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    buf
}

/// The size of a block device (or file), by seeking to its end.
pub fn device_size(path: &Path) -> u64 {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    f.seek(SeekFrom::End(0)).expect("seek to the end")
}

/// Whether `path` is a mount point in this mount namespace.
pub fn is_mount_point(path: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path_str(path);
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == p)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes in all and free (for unprivileged users) of the filesystem at
/// `path`.
pub fn statvfs(path: &Path) -> (u64, u64) {
    let st =
        rustix::fs::statvfs(path).unwrap_or_else(|e| panic!("statvfs {}: {e}", path.display()));
    (st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)
}

/// Whether the filesystem at `path` is mounted read-only.
pub fn is_read_only(path: &Path) -> bool {
    let st =
        rustix::fs::statvfs(path).unwrap_or_else(|e| panic!("statvfs {}: {e}", path.display()));
    st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY)
}

/// The usage of `unit` in a NodeGetVolumeStats answer.
pub fn usage(
    r: &pb::NodeGetVolumeStatsResponse,
    unit: pb::volume_usage::Unit,
) -> Option<pb::VolumeUsage> {
    r.usage.iter().find(|u| u.unit == unit as i32).cloned()
}

/// Whether a topology key follows the spec's rules (an optional DNS-like
/// prefix, a slash, a name).
pub fn valid_topology_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let edge = |s: &str, f: fn(&u8) -> bool| {
        let b = s.as_bytes();
        !b.is_empty() && f(&b[0]) && f(&b[b.len() - 1])
    };
    let name_ok = name.len() <= 63
        && edge(name, u8::is_ascii_alphanumeric)
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let prefix_ok = prefix.is_none_or(|p| {
        let lower = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        p.len() <= 63
            && edge(p, lower)
            && p.bytes().all(|c| lower(&c) || matches!(c, b'-' | b'.'))
            && p.split('.').all(|label| edge(label, lower))
    });
    name_ok && prefix_ok
}

/// Whether a topology value follows the spec's rules.
pub fn valid_topology_value(v: &str) -> bool {
    let b = v.as_bytes();
    v.len() <= 63
        && !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// The checks every volume in a response must pass.
pub fn check_volume(what: &str, v: &pb::Volume) {
    assert!(!v.volume_id.is_empty(), "{what}: volume_id is REQUIRED");
    assert!(
        v.volume_id.len() <= 128,
        "{what}: volume_id {} is over the 128-byte limit",
        v.volume_id
    );
    assert!(v.capacity_bytes >= 0, "{what}: negative capacity_bytes");
    for t in &v.accessible_topology {
        for (k, val) in &t.segments {
            assert!(valid_topology_key(k), "{what}: invalid topology key {k}");
            assert!(
                valid_topology_value(val),
                "{what}: invalid topology value {val}"
            );
        }
    }
}
