//! `meta.k8s.io/v1` Table output, what `kubectl get` asks for: upstream's
//! column sets (`pkg/printers/internalversion/printers.go`) filled from the
//! stored JSON. Cells are read straight out of the bodies, without decoding
//! them into typed objects, so listing thousands of claims stays cheap.
//!
//! As upstream's API server does, every row carries the wide
//! (priority 1) cells too; kubectl shows them only with `-o wide`.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::admission::{access_modes_abbreviated, is_default_annotated};
use crate::kinds::Kind;
use crate::store::Object;

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    /// A `PartialObjectMetadata`: kubectl needs no more for `get`.
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// The `includeObject` query parameter; absent or empty means Metadata.
    pub fn parse(s: Option<&str>) -> Result<IncludeObject, String> {
        match s.unwrap_or_default() {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"None\", \"Metadata\", \"Object\""
            )),
        }
    }
}

/// The Table of `items`, all of `kind`, listed at `revision`; ages are
/// measured from `now`.
pub fn table(
    kind: Kind,
    items: &[Object],
    revision: u64,
    now: Timestamp,
    include: IncludeObject,
) -> Value {
    let columns: Vec<Value> = columns(kind).iter().map(Column::to_json).collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| row(kind, &item.body, now, include))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": revision.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row(kind: Kind, body: &Value, now: Timestamp, include: IncludeObject) -> Value {
    let cells = match kind {
        Kind::PersistentVolume => persistent_volume_cells(body, now),
        Kind::PersistentVolumeClaim => claim_cells(body, now),
        Kind::StorageClass => storage_class_cells(body, now),
        Kind::Pod => pod_cells(body, now),
        Kind::Node => node_cells(body, now),
        Kind::Namespace => vec![
            name(body).into(),
            text(body, "/status/phase").into(),
            age(body, now).into(),
        ],
        Kind::Event => event_cells(body, now),
        Kind::CsiDriver => csi_driver_cells(body, now),
    };
    let mut row = Map::with_capacity(2);
    row.insert("cells".into(), Value::Array(cells));
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let partial = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
            });
            row.insert("object".into(), partial);
        }
        IncludeObject::Object => {
            row.insert("object".into(), body.clone());
        }
    }
    Value::Object(row)
}

/// One column of a Table, as `metav1.TableColumnDefinition`.
struct Column {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    description: &'static str,
    /// 1: shown only with `-o wide`.
    priority: u8,
}

impl Column {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const fn column(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        priority: 1,
        ..column(name, type_, description)
    }
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Cannot be updated.";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. Populated by the system. Read-only.";

const NAME: Column = Column {
    format: "name",
    ..column("Name", "string", NAME_DOC)
};
const AGE: Column = column("Age", "string", AGE_DOC);

const PV_COLUMNS: [Column; 11] = [
    NAME,
    column(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
    ),
    column(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
    ),
    column(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    column(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    column(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    column("StorageClass", "string", "StorageClass of the pv"),
    column(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    column(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
    ),
];

const PVC_COLUMNS: [Column; 9] = [
    NAME,
    column(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    column(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    column(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    column(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    column("StorageClass", "string", "StorageClass of the pvc"),
    column(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];

const STORAGE_CLASS_COLUMNS: [Column; 6] = [
    NAME,
    column(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    column(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
    ),
    column(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    column(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

const POD_COLUMNS: [Column; 9] = [
    NAME,
    column(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    column(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    column(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", "podIP address allocated to the pod."),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];

const NODE_COLUMNS: [Column; 10] = [
    NAME,
    column("Status", "string", "The status of the node"),
    column("Roles", "string", "The roles of the node"),
    AGE,
    column("Version", "string", "Kubelet Version reported by the node."),
    wide(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    wide(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    wide("OS-Image", "string", "OS Image reported by the node."),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node.",
    ),
];

const NAMESPACE_COLUMNS: [Column; 3] = [
    NAME,
    column("Status", "string", "The status of the namespace"),
    AGE,
];

const EVENT_COLUMNS: [Column; 10] = [
    column(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    column(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    column(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    column("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    wide("Source", "string", "The component reporting this event."),
    column(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded.",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        format: "name",
        ..wide("Name", "string", NAME_DOC)
    },
];

const CSI_DRIVER_COLUMNS: [Column; 8] = [
    NAME,
    column(
        "AttachRequired",
        "boolean",
        "attachRequired indicates this CSI volume driver requires an attach operation.",
    ),
    column(
        "PodInfoOnMount",
        "boolean",
        "podInfoOnMount indicates this CSI volume driver requires additional pod information during mount operations.",
    ),
    column(
        "StorageCapacity",
        "boolean",
        "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity the driver reports.",
    ),
    column(
        "TokenRequests",
        "string",
        "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
    ),
    column(
        "RequiresRepublish",
        "boolean",
        "requiresRepublish indicates the CSI driver wants NodePublishVolume being periodically called to reflect any possible change in the mounted volume.",
    ),
    column(
        "Modes",
        "string",
        "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.",
    ),
    AGE,
];

fn columns(kind: Kind) -> &'static [Column] {
    match kind {
        Kind::PersistentVolume => &PV_COLUMNS,
        Kind::PersistentVolumeClaim => &PVC_COLUMNS,
        Kind::StorageClass => &STORAGE_CLASS_COLUMNS,
        Kind::Pod => &POD_COLUMNS,
        Kind::Node => &NODE_COLUMNS,
        Kind::Namespace => &NAMESPACE_COLUMNS,
        Kind::Event => &EVENT_COLUMNS,
        Kind::CsiDriver => &CSI_DRIVER_COLUMNS,
    }
}

const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn persistent_volume_cells(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match at(pv, "/spec/claimRef") {
        Some(claim) => format!("{}/{}", text(claim, "/namespace"), text(claim, "/name")),
        None => String::new(),
    };
    vec![
        name(pv).into(),
        quantity(pv, "/spec/capacity/storage").into(),
        access_modes(pv, "/spec/accessModes").into(),
        text(pv, "/spec/persistentVolumeReclaimPolicy").into(),
        phase(pv).into(),
        claim.into(),
        class(pv).into(),
        text_or(pv, "/spec/volumeAttributesClassName", "<unset>").into(),
        text(pv, "/status/reason").into(),
        age(pv, now).into(),
        text_or(pv, "/spec/volumeMode", "<unset>").into(),
    ]
}

/// Capacity and access modes are those of the bound volume, so they show
/// only once the claim names one.
fn claim_cells(claim: &Value, now: Timestamp) -> Vec<Value> {
    let volume = text(claim, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(claim, "/status/capacity/storage"),
            access_modes(claim, "/status/accessModes"),
        )
    };
    vec![
        name(claim).into(),
        phase(claim).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class(claim).into(),
        text_or(claim, "/spec/volumeAttributesClassName", "<unset>").into(),
        age(claim, now).into(),
        text_or(claim, "/spec/volumeMode", "<unset>").into(),
    ]
}

fn storage_class_cells(class: &Value, now: Timestamp) -> Vec<Value> {
    let mut name = name(class).to_string();
    if is_default_annotated(|key| annotation(class, key)) {
        name.push_str(" (default)");
    }
    vec![
        name.into(),
        text(class, "/provisioner").into(),
        text_or(class, "/reclaimPolicy", "Delete").into(),
        text_or(class, "/volumeBindingMode", "Immediate").into(),
        flag(class, "/allowVolumeExpansion", false).into(),
        age(class, now).into(),
    ]
}

/// What upstream's pod printer shows, without its init-container
/// bookkeeping.
fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let containers = Containers::of(pod);
    let restarts = match containers.last_restart {
        Some(at) if containers.restarts != 0 => format!(
            "{} ({} ago)",
            containers.restarts,
            human_duration(now.duration_since(at))
        ),
        _ => containers.restarts.to_string(),
    };
    let total = list(pod, "/spec/containers").count();
    vec![
        name(pod).into(),
        format!("{}/{total}", containers.ready).into(),
        pod_status(pod, &containers).into(),
        restarts.into(),
        age(pod, now).into(),
        non_empty_or(text(pod, "/status/podIPs/0/ip"), "<none>").into(),
        non_empty_or(text(pod, "/spec/nodeName"), "<none>").into(),
        non_empty_or(text(pod, "/status/nominatedNodeName"), "<none>").into(),
        readiness_gates(pod).into(),
    ]
}

/// What a pod's container statuses add up to.
struct Containers {
    ready: usize,
    restarts: i64,
    last_restart: Option<Timestamp>,
    /// Whether a ready container is running.
    running: bool,
    /// The reason of the first container (in spec order) that is waiting
    /// or has terminated.
    reason: Option<String>,
}

impl Containers {
    fn of(pod: &Value) -> Containers {
        let mut summary = Containers {
            ready: 0,
            restarts: 0,
            last_restart: None,
            running: false,
            reason: None,
        };
        // Upstream walks the statuses backwards, so the first one wins.
        for status in list(pod, "/status/containerStatuses").rev() {
            summary.restarts += status
                .get("restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let finished = timestamp(status, "/lastState/terminated/finishedAt");
            summary.last_restart = summary.last_restart.max(finished);
            if let Some(reason) = container_reason(status) {
                summary.reason = Some(reason);
            } else if flag(status, "/ready", false) && at(status, "/state/running").is_some() {
                summary.running = true;
                summary.ready += 1;
            }
        }
        summary
    }
}

/// The STATUS cell: the pod's reason or phase, overridden by a container's
/// reason, then by deletion.
fn pod_status(pod: &Value, containers: &Containers) -> String {
    let phase = text(pod, "/status/phase");
    let gated = conditions(pod)
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated");
    let mut reason = match &containers.reason {
        Some(reason) => reason.as_str(),
        None if gated => "SchedulingGated",
        None => text_or(pod, "/status/reason", phase),
    };
    // A pod whose finished container sits beside running ones is running.
    if reason == "Completed" && containers.running {
        let ready =
            conditions(pod).any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
        reason = if ready { "Running" } else { "NotReady" };
    }
    if deleting(pod) {
        if text(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown";
        } else if !matches!(phase, "Succeeded" | "Failed") {
            reason = "Terminating";
        }
    }
    reason.to_string()
}

/// The reason a waiting or terminated container gives, if any.
fn container_reason(status: &Value) -> Option<String> {
    let waiting = text(status, "/state/waiting/reason");
    if !waiting.is_empty() {
        return Some(waiting.into());
    }
    let terminated = at(status, "/state/terminated")?;
    let reason = text(terminated, "/reason");
    if !reason.is_empty() {
        return Some(reason.into());
    }
    let number = |key: &str| terminated.get(key).and_then(Value::as_i64).unwrap_or(0);
    Some(match number("signal") {
        0 => format!("ExitCode:{}", number("exitCode")),
        signal => format!("Signal:{signal}"),
    })
}

/// `true/total` readiness gates, or `<none>`.
fn readiness_gates(pod: &Value) -> String {
    let gates: Vec<&str> = list(pod, "/spec/readinessGates")
        .map(|g| text(g, "/conditionType"))
        .collect();
    if gates.is_empty() {
        return "<none>".into();
    }
    let met = gates
        .iter()
        .filter(|gate| {
            conditions(pod)
                .find(|c| text(c, "/type") == **gate)
                .is_some_and(|c| text(c, "/status") == "True")
        })
        .count();
    format!("{met}/{}", gates.len())
}

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    let mut status = match conditions(node).find(|c| text(c, "/type") == "Ready") {
        Some(ready) if text(ready, "/status") == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if flag(node, "/spec/unschedulable", false) {
        status.push_str(",SchedulingDisabled");
    }
    let address = |kind: &str| {
        list(node, "/status/addresses")
            .find(|a| text(a, "/type") == kind)
            .map_or("<none>", |a| text(a, "/address"))
    };
    let info =
        |key: &str| non_empty_or(text(node, &format!("/status/nodeInfo/{key}")), "<unknown>");
    vec![
        name(node).into(),
        status.into(),
        node_roles(node).into(),
        age(node, now).into(),
        text(node, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

/// Roles from `node-role.kubernetes.io/<role>` labels and the older
/// `kubernetes.io/role=<role>`, sorted; `<none>` without any.
fn node_roles(node: &Value) -> String {
    let labels = at(node, "/metadata/labels").and_then(Value::as_object);
    let mut roles: Vec<&str> = labels
        .into_iter()
        .flatten()
        .filter_map(
            |(key, value)| match key.strip_prefix("node-role.kubernetes.io/") {
                Some(role) => Some(role),
                None if key == "kubernetes.io/role" => value.as_str(),
                None => None,
            },
        )
        .filter(|role| !role.is_empty())
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn event_cells(event: &Value, now: Timestamp) -> Vec<Value> {
    let first = timestamp(event, "/firstTimestamp").or_else(|| timestamp(event, "/eventTime"));
    let first = since(first, now);
    let mut last = match timestamp(event, "/lastTimestamp") {
        Some(at) => human_duration(now.duration_since(at)),
        None => first.clone(),
    };
    let mut count = event.get("count").and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = event.get("series") {
        last = since(timestamp(series, "/lastObservedTime"), now);
        count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        // Events of the newer API leave the count of a single occurrence unset.
        count = 1;
    }
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    let object = match text(event, "/involvedObject/name") {
        "" => kind,
        involved => format!("{kind}/{involved}"),
    };
    let component = non_empty_or(
        text(event, "/source/component"),
        text(event, "/reportingComponent"),
    );
    let host = non_empty_or(
        text(event, "/source/host"),
        text(event, "/reportingInstance"),
    );
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        last.into(),
        text(event, "/type").into(),
        text(event, "/reason").into(),
        object.into(),
        text(event, "/involvedObject/fieldPath").into(),
        source.into(),
        text(event, "/message").trim().into(),
        first.into(),
        count.into(),
        name(event).into(),
    ]
}

fn csi_driver_cells(driver: &Value, now: Timestamp) -> Vec<Value> {
    let token_requests = match at(driver, "/spec/tokenRequests") {
        Some(Value::Array(requests)) => requests
            .iter()
            .map(|r| text(r, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<unset>".into(),
    };
    let modes: Vec<&str> = list(driver, "/spec/volumeLifecycleModes")
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".into()
    } else {
        modes.join(",")
    };
    vec![
        name(driver).into(),
        flag(driver, "/spec/attachRequired", true).into(),
        flag(driver, "/spec/podInfoOnMount", false).into(),
        flag(driver, "/spec/storageCapacity", false).into(),
        token_requests.into(),
        flag(driver, "/spec/requiresRepublish", false).into(),
        modes.into(),
        age(driver, now).into(),
    ]
}

fn name(body: &Value) -> &str {
    text(body, "/metadata/name")
}

fn annotation<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    at(body, "/metadata/annotations")?.get(key)?.as_str()
}

fn deleting(body: &Value) -> bool {
    at(body, "/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// The phase, or `Terminating` once deletion has begun.
fn phase(body: &Value) -> &str {
    if deleting(body) {
        "Terminating"
    } else {
        text(body, "/status/phase")
    }
}

/// The class of a PV or claim: the deprecated beta annotation wins over
/// `spec.storageClassName`.
fn class(body: &Value) -> &str {
    annotation(body, BETA_CLASS_ANNOTATION).unwrap_or_else(|| text(body, "/spec/storageClassName"))
}

fn access_modes(body: &Value, pointer: &str) -> String {
    access_modes_abbreviated(list(body, pointer).filter_map(Value::as_str))
}

/// A quantity as stored; `0` when absent, as upstream prints a zero
/// quantity.
fn quantity(body: &Value, pointer: &str) -> String {
    non_empty_or(text(body, pointer), "0").to_string()
}

fn conditions(body: &Value) -> impl Iterator<Item = &Value> {
    list(body, "/status/conditions")
}

/// The items of the list at `pointer`; none if it is absent.
fn list<'a>(body: &'a Value, pointer: &str) -> std::slice::Iter<'a, Value> {
    at(body, pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
}

/// The value at `pointer`, a JSON pointer without escapes. serde_json's
/// own `pointer` allocates for every segment, which shows at thousands of
/// rows.
fn at<'a>(body: &'a Value, pointer: &str) -> Option<&'a Value> {
    pointer
        .split('/')
        .skip(1)
        .try_fold(body, |node, segment| match node {
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
            _ => node.get(segment),
        })
}

/// The string at `pointer`, or `""`.
fn text<'a>(body: &'a Value, pointer: &str) -> &'a str {
    at(body, pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The string at `pointer`, or `fallback` when it is absent (an empty
/// string is shown as it is).
fn text_or<'a>(body: &'a Value, pointer: &str, fallback: &'a str) -> &'a str {
    at(body, pointer)
        .and_then(Value::as_str)
        .unwrap_or(fallback)
}

fn non_empty_or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() { fallback } else { value }
}

fn flag(body: &Value, pointer: &str, default: bool) -> bool {
    at(body, pointer)
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn timestamp(body: &Value, pointer: &str) -> Option<Timestamp> {
    text(body, pointer).parse().ok()
}

fn age(body: &Value, now: Timestamp) -> String {
    since(timestamp(body, "/metadata/creationTimestamp"), now)
}

/// kubectl's `translateTimestampSince`: the time since `at`, or
/// `<unknown>` when there is none.
fn since(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(at) => human_duration(now.duration_since(at)),
        None => "<unknown>".into(),
    }
}

/// kubectl's `duration.HumanDuration`: two or three significant figures,
/// coarser as the duration grows. Up to a second in the future counts as
/// now (clocks drift); further is `<invalid>`.
fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// `3m20s`, or just `3m` when the remainder is zero.
fn with_remainder(whole: i64, unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{whole}{unit}")
    } else {
        format!("{whole}{unit}{rest}{rest_unit}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::ObjectKey;

    const NOW: &str = "2024-05-01T12:00:00Z";
    /// Ten minutes before `NOW`.
    const CREATED: &str = "2024-05-01T11:50:00Z";

    fn now() -> Timestamp {
        NOW.parse().expect("a timestamp")
    }

    fn object(kind: Kind, body: Value) -> Object {
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Object {
            key: ObjectKey::new(kind, "", name),
            resource_version: 1,
            body: Arc::new(body),
        }
    }

    /// The cells of `body`'s row, checked against the columns' count.
    fn check_row(kind: Kind, body: Value, expected: Value) {
        let table = table(
            kind,
            &[object(kind, body.clone())],
            9,
            now(),
            IncludeObject::None,
        );
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells, &expected, "{kind} row of {body}");
        assert_eq!(
            table["columnDefinitions"].as_array().map(Vec::len),
            expected.as_array().map(Vec::len)
        );
    }

    #[test]
    fn rows() {
        use Kind::*;
        let bound_claim = json!({
            "metadata": {"name": "data", "namespace": "default", "creationTimestamp": CREATED},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "fast",
                "volumeName": "pvc-0b1c",
                "volumeMode": "Filesystem",
            },
            "status": {"phase": "Bound", "accessModes": ["ReadOnlyMany", "ReadWriteOnce"], "capacity": {"storage": "10Gi"}},
        });
        let released_volume = json!({
            "metadata": {"name": "pv-1", "creationTimestamp": "2024-04-28T09:00:00Z"},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "old-data", "uid": "9f2"},
                "storageClassName": "manual",
                "hostPath": {"path": "/srv/pv-1"},
                "volumeMode": "Filesystem",
            },
            "status": {"phase": "Released"},
        });
        let running_pod = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox"}]},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.0.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": "app", "ready": true, "restartCount": 2,
                        "state": {"running": {"startedAt": "2024-05-01T11:55:01Z"}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}},
                    },
                    {"name": "log", "ready": true, "restartCount": 0, "state": {"running": {}}},
                ],
            },
        });
        let waiting = |state: Value| {
            json!({
                "metadata": {"name": "job", "creationTimestamp": CREATED},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": state}]},
            })
        };
        let cases: Vec<(Kind, Value, Value)> = vec![
            (
                PersistentVolumeClaim,
                bound_claim.clone(),
                json!([
                    "data",
                    "Bound",
                    "pvc-0b1c",
                    "10Gi",
                    "RWO,ROX",
                    "fast",
                    "<unset>",
                    "10m",
                    "Filesystem"
                ]),
            ),
            // Without a volume there is nothing to show for capacity and modes.
            (
                PersistentVolumeClaim,
                json!({
                    "metadata": {"name": "logs", "creationTimestamp": CREATED,
                                 "annotations": {"volume.beta.kubernetes.io/storage-class": "gold"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast"},
                    "status": {"phase": "Pending", "accessModes": ["ReadWriteOnce"]},
                }),
                json!([
                    "logs", "Pending", "", "", "", "gold", "<unset>", "10m", "<unset>"
                ]),
            ),
            (
                PersistentVolumeClaim,
                {
                    let mut claim = bound_claim.clone();
                    claim["metadata"]["deletionTimestamp"] = json!(NOW);
                    claim
                },
                json!([
                    "data",
                    "Terminating",
                    "pvc-0b1c",
                    "10Gi",
                    "RWO,ROX",
                    "fast",
                    "<unset>",
                    "10m",
                    "Filesystem"
                ]),
            ),
            (
                PersistentVolume,
                released_volume.clone(),
                json!([
                    "pv-1",
                    "5Gi",
                    "RWO",
                    "Retain",
                    "Released",
                    "default/old-data",
                    "manual",
                    "<unset>",
                    "",
                    "3d3h",
                    "Filesystem"
                ]),
            ),
            (
                PersistentVolume,
                json!({
                    "metadata": {"name": "pv-2", "creationTimestamp": CREATED, "deletionTimestamp": NOW},
                    "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                             "persistentVolumeReclaimPolicy": "Delete", "csi": {"driver": "d", "volumeHandle": "h"},
                             "volumeAttributesClassName": "silver"},
                    "status": {"phase": "Bound", "reason": ""},
                }),
                json!([
                    "pv-2",
                    "1Gi",
                    "RWO,RWX",
                    "Delete",
                    "Terminating",
                    "",
                    "",
                    "silver",
                    "",
                    "10m",
                    "<unset>"
                ]),
            ),
            (
                StorageClass,
                json!({
                    "metadata": {"name": "fast", "creationTimestamp": CREATED,
                                 "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                    "provisioner": "csi.strata.dev",
                    "reclaimPolicy": "Retain",
                    "volumeBindingMode": "WaitForFirstConsumer",
                    "allowVolumeExpansion": true,
                }),
                json!([
                    "fast (default)",
                    "csi.strata.dev",
                    "Retain",
                    "WaitForFirstConsumer",
                    true,
                    "10m"
                ]),
            ),
            (
                StorageClass,
                json!({"metadata": {"name": "slow"}, "provisioner": "kubernetes.io/no-provisioner"}),
                json!([
                    "slow",
                    "kubernetes.io/no-provisioner",
                    "Delete",
                    "Immediate",
                    false,
                    "<unknown>"
                ]),
            ),
            (
                Pod,
                running_pod.clone(),
                json!([
                    "web",
                    "2/2",
                    "Running",
                    "2 (5m ago)",
                    "60m",
                    "10.0.0.5",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                Pod,
                {
                    let mut pod = running_pod.clone();
                    pod["metadata"]["deletionTimestamp"] = json!(NOW);
                    pod
                },
                json!([
                    "web",
                    "2/2",
                    "Terminating",
                    "2 (5m ago)",
                    "60m",
                    "10.0.0.5",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                Pod,
                waiting(json!({"waiting": {"reason": "CrashLoopBackOff"}})),
                json!([
                    "job",
                    "0/1",
                    "CrashLoopBackOff",
                    "0",
                    "10m",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                Pod,
                waiting(json!({"terminated": {"exitCode": 137}})),
                json!([
                    "job",
                    "0/1",
                    "ExitCode:137",
                    "0",
                    "10m",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                Pod,
                waiting(json!({"terminated": {"exitCode": 0, "signal": 9}})),
                json!([
                    "job", "0/1", "Signal:9", "0", "10m", "<none>", "<none>", "<none>", "<none>"
                ]),
            ),
            (
                Pod,
                json!({
                    "metadata": {"name": "new", "creationTimestamp": CREATED},
                    "spec": {"containers": [{"name": "app", "image": "app:1"}],
                             "readinessGates": [{"conditionType": "example.com/ready"}]},
                    "status": {"phase": "Pending", "conditions": [{"type": "example.com/ready", "status": "False"}]},
                }),
                json!([
                    "new", "0/1", "Pending", "0", "10m", "<none>", "<none>", "<none>", "0/1"
                ]),
            ),
            // A finished container beside a running one: not Completed.
            (
                Pod,
                json!({
                    "metadata": {"name": "mixed", "creationTimestamp": CREATED},
                    "spec": {"containers": [{"name": "init", "image": "a"}, {"name": "app", "image": "b"}]},
                    "status": {"phase": "Running", "containerStatuses": [
                        {"name": "init", "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    ]},
                }),
                json!([
                    "mixed", "1/2", "NotReady", "0", "10m", "<none>", "<none>", "<none>", "<none>"
                ]),
            ),
            (
                Pod,
                json!({
                    "metadata": {"name": "gated", "creationTimestamp": CREATED},
                    "spec": {"containers": [{"name": "app", "image": "b"}]},
                    "status": {"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                    ]},
                }),
                json!([
                    "gated",
                    "0/1",
                    "SchedulingGated",
                    "0",
                    "10m",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                Pod,
                json!({
                    "metadata": {"name": "lost", "creationTimestamp": CREATED, "deletionTimestamp": NOW},
                    "spec": {"containers": [{"name": "app", "image": "b"}]},
                    "status": {"phase": "Running", "reason": "NodeLost"},
                }),
                json!([
                    "lost", "0/1", "Unknown", "0", "10m", "<none>", "<none>", "<none>", "<none>"
                ]),
            ),
            (
                Pod,
                json!({
                    "metadata": {"name": "done", "creationTimestamp": CREATED, "deletionTimestamp": NOW},
                    "spec": {"containers": [{"name": "app", "image": "b"}]},
                    "status": {"phase": "Succeeded", "containerStatuses": [
                        {"name": "app", "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    ]},
                }),
                json!([
                    "done",
                    "0/1",
                    "Completed",
                    "0",
                    "10m",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                Node,
                json!({
                    "metadata": {"name": "node-1", "creationTimestamp": CREATED,
                                 "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "storage"}},
                    "status": {
                        "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                        "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "10.0.0.2"}],
                        "nodeInfo": {"kubeletVersion": "v1.35.0-strata", "osImage": "Debian GNU/Linux 12",
                                     "kernelVersion": "6.1.0", "containerRuntimeVersion": "strata://0.1.0"},
                    },
                }),
                json!([
                    "node-1",
                    "Ready",
                    "control-plane,storage",
                    "10m",
                    "v1.35.0-strata",
                    "10.0.0.2",
                    "<none>",
                    "Debian GNU/Linux 12",
                    "6.1.0",
                    "strata://0.1.0"
                ]),
            ),
            (
                Node,
                json!({
                    "metadata": {"name": "node-2", "creationTimestamp": CREATED},
                    "spec": {"unschedulable": true},
                    "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
                }),
                json!([
                    "node-2",
                    "NotReady,SchedulingDisabled",
                    "<none>",
                    "10m",
                    "",
                    "<none>",
                    "<none>",
                    "<unknown>",
                    "<unknown>",
                    "<unknown>"
                ]),
            ),
            (
                Namespace,
                json!({"metadata": {"name": "default", "creationTimestamp": CREATED}, "status": {"phase": "Active"}}),
                json!(["default", "Active", "10m"]),
            ),
            (
                Event,
                json!({
                    "metadata": {"name": "data.17a2b3", "namespace": "default"},
                    "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data"},
                    "reason": "WaitForFirstConsumer",
                    "message": "waiting for first consumer to be created before binding\n",
                    "type": "Normal",
                    "source": {"component": "persistentvolume-controller"},
                    "firstTimestamp": CREATED,
                    "lastTimestamp": "2024-05-01T11:58:00Z",
                    "count": 3,
                }),
                json!([
                    "2m",
                    "Normal",
                    "WaitForFirstConsumer",
                    "persistentvolumeclaim/data",
                    "",
                    "persistentvolume-controller",
                    "waiting for first consumer to be created before binding",
                    "10m",
                    3,
                    "data.17a2b3"
                ]),
            ),
            // Events of the newer API: eventTime, reporting fields, no count.
            (
                Event,
                json!({
                    "metadata": {"name": "web.17a2b4", "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
                    "reason": "Scheduled",
                    "message": "Successfully assigned default/web to node-1",
                    "type": "Normal",
                    "eventTime": "2024-05-01T11:59:30.000000Z",
                    "reportingComponent": "strata-scheduler",
                    "reportingInstance": "node-1",
                }),
                json!([
                    "30s",
                    "Normal",
                    "Scheduled",
                    "pod/web",
                    "spec.containers{app}",
                    "strata-scheduler, node-1",
                    "Successfully assigned default/web to node-1",
                    "30s",
                    1,
                    "web.17a2b4"
                ]),
            ),
            (
                CsiDriver,
                json!({
                    "metadata": {"name": "csi.strata.dev", "creationTimestamp": CREATED},
                    "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                             "tokenRequests": [{"audience": "strata"}, {"audience": "vault"}]},
                }),
                json!([
                    "csi.strata.dev",
                    false,
                    true,
                    false,
                    "strata,vault",
                    false,
                    "Persistent,Ephemeral",
                    "10m"
                ]),
            ),
            (
                CsiDriver,
                json!({"metadata": {"name": "bare.strata.dev", "creationTimestamp": CREATED}, "spec": {}}),
                json!([
                    "bare.strata.dev",
                    true,
                    false,
                    false,
                    "<unset>",
                    false,
                    "<none>",
                    "10m"
                ]),
            ),
        ];
        for (kind, body, expected) in cases {
            check_row(kind, body, expected);
        }
    }

    fn check_columns(kind: Kind, expected: &[(&str, u8)]) {
        let columns: Vec<(&str, u8)> = columns(kind).iter().map(|c| (c.name, c.priority)).collect();
        assert_eq!(columns, expected, "{kind}");
    }

    /// Upstream's column names and which are wide-only (kubectl shows the
    /// names upper-cased).
    #[test]
    fn column_sets() {
        let cases: [(Kind, &[(&str, u8)]); 8] = [
            (
                Kind::PersistentVolume,
                &[
                    ("Name", 0),
                    ("Capacity", 0),
                    ("Access Modes", 0),
                    ("Reclaim Policy", 0),
                    ("Status", 0),
                    ("Claim", 0),
                    ("StorageClass", 0),
                    ("VolumeAttributesClass", 0),
                    ("Reason", 0),
                    ("Age", 0),
                    ("VolumeMode", 1),
                ],
            ),
            (
                Kind::PersistentVolumeClaim,
                &[
                    ("Name", 0),
                    ("Status", 0),
                    ("Volume", 0),
                    ("Capacity", 0),
                    ("Access Modes", 0),
                    ("StorageClass", 0),
                    ("VolumeAttributesClass", 0),
                    ("Age", 0),
                    ("VolumeMode", 1),
                ],
            ),
            (
                Kind::StorageClass,
                &[
                    ("Name", 0),
                    ("Provisioner", 0),
                    ("ReclaimPolicy", 0),
                    ("VolumeBindingMode", 0),
                    ("AllowVolumeExpansion", 0),
                    ("Age", 0),
                ],
            ),
            (
                Kind::Pod,
                &[
                    ("Name", 0),
                    ("Ready", 0),
                    ("Status", 0),
                    ("Restarts", 0),
                    ("Age", 0),
                    ("IP", 1),
                    ("Node", 1),
                    ("Nominated Node", 1),
                    ("Readiness Gates", 1),
                ],
            ),
            (
                Kind::Node,
                &[
                    ("Name", 0),
                    ("Status", 0),
                    ("Roles", 0),
                    ("Age", 0),
                    ("Version", 0),
                    ("Internal-IP", 1),
                    ("External-IP", 1),
                    ("OS-Image", 1),
                    ("Kernel-Version", 1),
                    ("Container-Runtime", 1),
                ],
            ),
            (Kind::Namespace, &[("Name", 0), ("Status", 0), ("Age", 0)]),
            (
                Kind::Event,
                &[
                    ("Last Seen", 0),
                    ("Type", 0),
                    ("Reason", 0),
                    ("Object", 0),
                    ("Subobject", 1),
                    ("Source", 1),
                    ("Message", 0),
                    ("First Seen", 1),
                    ("Count", 1),
                    ("Name", 1),
                ],
            ),
            (
                Kind::CsiDriver,
                &[
                    ("Name", 0),
                    ("AttachRequired", 0),
                    ("PodInfoOnMount", 0),
                    ("StorageCapacity", 0),
                    ("TokenRequests", 0),
                    ("RequiresRepublish", 0),
                    ("Modes", 0),
                    ("Age", 0),
                ],
            ),
        ];
        for (kind, expected) in cases {
            check_columns(kind, expected);
        }
    }

    fn check_include(include: IncludeObject, expected: Option<Value>) {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "uid": "u-1"}});
        let table = table(
            Kind::Namespace,
            &[object(Kind::Namespace, body)],
            42,
            now(),
            include,
        );
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(table["metadata"]["resourceVersion"], "42");
        assert_eq!(table["columnDefinitions"][0]["format"], "name");
        assert_eq!(
            table["rows"][0].get("object"),
            expected.as_ref(),
            "{include:?}"
        );
    }

    #[test]
    fn row_objects() {
        let cases = [
            (IncludeObject::None, None),
            (
                IncludeObject::Metadata,
                Some(
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                            "metadata": {"name": "default", "uid": "u-1"}}),
                ),
            ),
            (
                IncludeObject::Object,
                Some(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "uid": "u-1"}}),
                ),
            ),
        ];
        for (include, expected) in cases {
            check_include(include, expected);
        }
    }

    fn check_parse(query: Option<&str>, expected: Result<IncludeObject, ()>) {
        assert_eq!(
            IncludeObject::parse(query).map_err(|_| ()),
            expected,
            "{query:?}"
        );
    }

    #[test]
    fn include_object_parameter() {
        let cases = [
            (None, Ok(IncludeObject::Metadata)),
            (Some(""), Ok(IncludeObject::Metadata)),
            (Some("Metadata"), Ok(IncludeObject::Metadata)),
            (Some("None"), Ok(IncludeObject::None)),
            (Some("Object"), Ok(IncludeObject::Object)),
            (Some("object"), Err(())),
            (Some("All"), Err(())),
        ];
        for (query, expected) in cases {
            check_parse(query, expected);
        }
    }

    fn check_age(seconds: i64, expected: &str) {
        assert_eq!(
            human_duration(SignedDuration::from_secs(seconds)),
            expected,
            "{seconds}s"
        );
    }

    #[test]
    fn ages() {
        const M: i64 = 60;
        const H: i64 = 60 * M;
        const D: i64 = 24 * H;
        let cases = [
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (2 * M, "2m"),
            (3 * M + 20, "3m20s"),
            (9 * M + 59, "9m59s"),
            (10 * M + 30, "10m"),
            (179 * M, "179m"),
            (3 * H, "3h"),
            (3 * H + 20 * M, "3h20m"),
            (8 * H + 59 * M, "8h"),
            (47 * H, "47h"),
            (2 * D, "2d"),
            (2 * D + 3 * H, "2d3h"),
            (8 * D + 3 * H, "8d"),
            (729 * D, "729d"),
            (730 * D, "2y"),
            (800 * D, "2y70d"),
            (8 * 365 * D + 40 * D, "8y"),
        ];
        for (seconds, expected) in cases {
            check_age(seconds, expected);
        }
    }

    /// A sub-second skew into the future is "now"; unparseable creation
    /// times are unknown.
    #[test]
    fn ages_of_objects() {
        let future = json!({"metadata": {"name": "a", "creationTimestamp": "2024-05-01T12:00:01.5Z"}, "status": {"phase": "Active"}});
        check_row(Kind::Namespace, future, json!(["a", "Active", "0s"]));
        let garbled = json!({"metadata": {"name": "b", "creationTimestamp": "yesterday"}});
        check_row(Kind::Namespace, garbled, json!(["b", "", "<unknown>"]));
    }

    /// Thousands of claims make thousands of rows, in order.
    #[test]
    fn many_rows() {
        let claims: Vec<Object> = (0..10_000)
            .map(|i| {
                object(
                    Kind::PersistentVolumeClaim,
                    json!({"metadata": {"name": format!("claim-{i:05}"), "creationTimestamp": CREATED},
                           "spec": {"volumeName": format!("pv-{i}")},
                           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}),
                )
            })
            .collect();
        let table = table(
            Kind::PersistentVolumeClaim,
            &claims,
            7,
            now(),
            IncludeObject::Metadata,
        );
        let rows = table["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 10_000);
        assert_eq!(rows[9_999]["cells"][0], "claim-09999");
        assert_eq!(rows[9_999]["cells"][2], "pv-9999");
        assert_eq!(rows[9_999]["object"]["metadata"]["name"], "claim-09999");
    }
}
