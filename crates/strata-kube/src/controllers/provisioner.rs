//! Dynamic provisioning and deletion through CSI, as Kubernetes'
//! external-provisioner sidecar does it: a claim the binder handed to a CSI
//! driver (annotation `volume.kubernetes.io/storage-provisioner`) gets
//! CreateVolume and a PV `pvc-<uid>` pre-bound to it; a Released PV with
//! reclaim policy Delete gets DeleteVolume and goes away.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use strata_csi::client::{Access, BlockingCsiClient, VolumeSpec};
use strata_csi::pb;
use strata_csi::pb::volume_capability::access_mode::Mode;

use super::informer::{Informer, Next};
use super::retry::RetryQueue;
use crate::kinds::Kind;
use crate::quantity::parse_quantity;
use crate::registry::events::{EventType, Recorder, Regarding};
use crate::registry::{DeleteOptions, Registry, meta};
use crate::store::{Change, Object, ObjectKey};

pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
/// On a CSIDriver object: the endpoint of a driver Strata should call.
pub const ENDPOINT_ANNOTATION: &str = "csi.strata.dev/endpoint";
const CSI_PREFIX: &str = "csi.storage.k8s.io/";
/// How long a failed provision or delete waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);

const KINDS: &[Kind] = &[Kind::PersistentVolumeClaim, Kind::PersistentVolume];

/// The CSI drivers Strata can call: its own, plus any registered through a
/// CSIDriver object with the endpoint annotation.
#[derive(Clone, Debug)]
pub struct Drivers {
    pub builtin_name: String,
    pub builtin_endpoint: String,
}

impl Drivers {
    pub(crate) fn endpoint(&self, registry: &Registry, driver: &str) -> Option<String> {
        if driver == self.builtin_name {
            return Some(self.builtin_endpoint.clone());
        }
        let object = registry.get(Kind::CsiDriver, "", driver).ok()?;
        meta::annotation(&object.body, ENDPOINT_ANNOTATION).map(String::from)
    }
}

/// Connections to CSI drivers, one per endpoint, made on first use and
/// kept (a controller or the node agent calls the same few drivers over
/// and over).
pub(crate) struct CsiClients {
    drivers: Drivers,
    clients: HashMap<String, BlockingCsiClient>,
}

impl CsiClients {
    pub(crate) fn new(drivers: Drivers) -> CsiClients {
        CsiClients {
            drivers,
            clients: HashMap::new(),
        }
    }

    /// Whether Strata knows where `driver` listens.
    pub(crate) fn knows(&self, registry: &Registry, driver: &str) -> bool {
        self.drivers.endpoint(registry, driver).is_some()
    }

    /// A client of `driver`.
    pub(crate) fn get(
        &mut self,
        registry: &Registry,
        driver: &str,
    ) -> Result<&BlockingCsiClient, String> {
        let endpoint = self.drivers.endpoint(registry, driver).ok_or_else(|| {
            format!(
                "no endpoint is known for CSI driver {driver}; register it with a CSIDriver object annotated {ENDPOINT_ANNOTATION}"
            )
        })?;
        if !self.clients.contains_key(&endpoint) {
            let client = BlockingCsiClient::connect(&endpoint).map_err(|e| e.to_string())?;
            self.clients.insert(endpoint.clone(), client);
        }
        Ok(&self.clients[&endpoint])
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Task {
    Provision(ObjectKey),
    Delete(String),
}

struct Provisioner {
    registry: Registry,
    recorder: Recorder,
    clients: CsiClients,
    work: RetryQueue<Task>,
}

pub fn run(registry: Registry, drivers: Drivers, stop: Arc<AtomicBool>) {
    let (mut informer, objects) = Informer::start(&registry, KINDS);
    let mut p = Provisioner {
        recorder: Recorder::new(registry.clone(), "external-provisioner"),
        registry,
        clients: CsiClients::new(drivers),
        work: RetryQueue::new(RETRY),
    };
    objects.iter().for_each(|o| p.consider(o));
    while !stop.load(Ordering::Relaxed) {
        while let Some(task) = p.work.next() {
            p.perform(task);
        }
        match informer.next(Duration::from_millis(500)) {
            Next::Changed(event) if event.change != Change::Deleted => p.consider(&event.object),
            Next::Relisted(objects) => objects.iter().for_each(|o| p.consider(o)),
            _ => {}
        }
    }
}

impl Provisioner {
    /// Queues what `object` needs from us, if anything.
    fn consider(&mut self, object: &Object) {
        let task = match object.key.kind {
            Kind::PersistentVolumeClaim if self.wants_volume(&object.body) => {
                Task::Provision(object.key.clone())
            }
            Kind::PersistentVolume if self.wants_deletion(&object.body) => {
                Task::Delete(object.key.name.clone())
            }
            _ => return,
        };
        self.work.add(task);
    }

    fn wants_volume(&self, claim: &Value) -> bool {
        let Some(driver) = meta::annotation(claim, STORAGE_PROVISIONER) else {
            return false;
        };
        let unbound = claim
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        unbound
            && meta::str_field(claim, "deletionTimestamp").is_none()
            && self.clients.knows(&self.registry, driver)
    }

    fn wants_deletion(&self, pv: &Value) -> bool {
        let phase = pv.pointer("/status/phase").and_then(Value::as_str);
        let policy = pv
            .pointer("/spec/persistentVolumeReclaimPolicy")
            .and_then(Value::as_str);
        let driver = pv.pointer("/spec/csi/driver").and_then(Value::as_str);
        matches!(phase, Some("Released" | "Failed"))
            && policy == Some("Delete")
            && driver.is_some_and(|d| self.clients.knows(&self.registry, d))
    }

    fn perform(&mut self, task: Task) {
        let result = match &task {
            Task::Provision(key) => self.provision(key),
            Task::Delete(name) => self.delete(name),
        };
        if let Err(()) = result {
            self.work.retry(task);
        }
    }

    fn client(&mut self, driver: &str) -> Result<&BlockingCsiClient, String> {
        self.clients.get(&self.registry, driver)
    }

    /// CreateVolume for a claim, then its PV. `Err` means "try again later".
    fn provision(&mut self, key: &ObjectKey) -> Result<(), ()> {
        let Ok(claim) = self.registry.get(key.kind, &key.namespace, &key.name) else {
            return Ok(());
        };
        if !self.wants_volume(&claim.body) {
            return Ok(());
        }
        let body = &claim.body;
        let regarding = Regarding::of(Kind::PersistentVolumeClaim, body);
        let uid = meta::str_field(body, "uid").unwrap_or_default();
        let pv_name = format!("pvc-{uid}");
        if self
            .registry
            .get(Kind::PersistentVolume, "", &pv_name)
            .is_ok()
        {
            return Ok(());
        }
        let driver = meta::annotation(body, STORAGE_PROVISIONER)
            .unwrap_or_default()
            .to_string();
        let class_name = body
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let fail = |me: &Self, message: String| {
            me.recorder.record(
                &regarding,
                EventType::Warning,
                "ProvisioningFailed",
                &message,
            );
            Err(())
        };
        let class = match self.registry.get(Kind::StorageClass, "", class_name) {
            Ok(class) => class,
            Err(e) => return fail(self, e.to_string()),
        };
        if is_delayed(&class.body) && meta::annotation(body, SELECTED_NODE).is_none() {
            return Ok(());
        }
        self.recorder.record(
            &regarding,
            EventType::Normal,
            "Provisioning",
            &format!(
                "External provisioner is provisioning volume for claim \"{}\"",
                key.display_name()
            ),
        );
        if body.pointer("/spec/selector").is_some_and(|s| !s.is_null()) {
            return fail(self, "claim Selector is not supported".into());
        }
        let spec = match self.volume_spec(&pv_name, body, &class.body) {
            Ok(spec) => spec,
            Err(message) => return fail(self, message),
        };
        let created = match self
            .client(&driver)
            .and_then(|c| c.create_volume(&spec).map_err(|e| e.to_string()))
        {
            Ok(volume) => volume,
            Err(e) => {
                return fail(
                    self,
                    format!("failed to provision volume with StorageClass \"{class_name}\": {e}"),
                );
            }
        };
        let pv = persistent_volume(&pv_name, &driver, &claim, &class.body, &spec, &created);
        match self.registry.create(Kind::PersistentVolume, "", pv, false) {
            Ok(_) => {
                self.recorder.record(
                    &regarding,
                    EventType::Normal,
                    "ProvisioningSucceeded",
                    &format!("Successfully provisioned volume {pv_name}"),
                );
                Ok(())
            }
            Err(e) => {
                // Leave nothing behind that no PV points at.
                let _ = self
                    .client(&driver)
                    .map(|c| c.delete_volume(&created.volume_id));
                fail(
                    self,
                    format!(
                        "Error creating provisioned PV object for claim {}: {e}. Deleting the volume.",
                        key.display_name()
                    ),
                )
            }
        }
    }

    fn volume_spec(&self, name: &str, claim: &Value, class: &Value) -> Result<VolumeSpec, String> {
        let mut spec = VolumeSpec::new(name);
        let request = claim
            .pointer("/spec/resources/requests/storage")
            .and_then(Value::as_str)
            .ok_or("the claim requests no storage")?;
        spec.capacity = Some(parse_quantity(request).map_err(|e| e.to_string())?.bytes());
        let parameters: BTreeMap<String, String> = class
            .get("parameters")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let fs_type = parameters
            .get(&format!("{CSI_PREFIX}fstype"))
            .cloned()
            .unwrap_or_default();
        spec.parameters = parameters
            .into_iter()
            .filter(|(k, _)| !k.starts_with(CSI_PREFIX))
            .collect();
        let block = claim.pointer("/spec/volumeMode").and_then(Value::as_str) == Some("Block");
        spec.access = if block {
            Access::Block
        } else {
            Access::Mount {
                fs_type,
                mount_flags: strings(class.get("mountOptions")),
            }
        };
        spec.access_mode = access_mode(&strings(claim.pointer("/spec/accessModes")));
        if let Some(node) = meta::annotation(claim, SELECTED_NODE) {
            spec.accessibility = self.topology_of(node);
        }
        Ok(spec)
    }

    /// The topology segments of `node` (its `topology.*` labels), required
    /// and preferred, as the external-provisioner derives them.
    fn topology_of(&self, node: &str) -> Option<pb::TopologyRequirement> {
        let node = self.registry.get(Kind::Node, "", node).ok()?;
        let segments: HashMap<String, String> = node
            .body
            .pointer("/metadata/labels")
            .and_then(Value::as_object)?
            .iter()
            .filter(|(k, _)| k.starts_with("topology."))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let topology = pb::Topology { segments };
        Some(pb::TopologyRequirement {
            requisite: vec![topology.clone()],
            preferred: vec![topology],
        })
    }

    /// DeleteVolume for a Released PV, then the PV. `Err`: try again later.
    fn delete(&mut self, name: &str) -> Result<(), ()> {
        let Ok(pv) = self.registry.get(Kind::PersistentVolume, "", name) else {
            return Ok(());
        };
        if !self.wants_deletion(&pv.body) {
            return Ok(());
        }
        let driver = csi_field(&pv.body, "driver").to_string();
        let handle = csi_field(&pv.body, "volumeHandle").to_string();
        let deleted = self
            .client(&driver)
            .and_then(|c| c.delete_volume(&handle).map_err(|e| e.to_string()));
        if let Err(e) = deleted {
            self.mark_failed(&pv, &e);
            return Err(());
        }
        let gone = self
            .registry
            .delete(Kind::PersistentVolume, "", name, &DeleteOptions::default())
            .and_then(|_| self.registry.get(Kind::PersistentVolume, "", name));
        match gone {
            Ok(marked) => super::protection::remove_finalizer(&self.registry, &marked, FINALIZER)
                .map_err(|_| ()),
            Err(_) => Ok(()),
        }
    }

    fn mark_failed(&self, pv: &Object, error: &str) {
        let regarding = Regarding::of(Kind::PersistentVolume, &pv.body);
        self.recorder
            .record(&regarding, EventType::Warning, "VolumeFailedDelete", error);
        let mut body = (*pv.body).clone();
        body["status"]["phase"] = "Failed".into();
        body["status"]["message"] = error.into();
        let _ = self.registry.save(Kind::PersistentVolume, body);
    }
}

/// A field of a PV's `spec.csi` (driver, volumeHandle, fsType); "" if
/// absent.
pub(crate) fn csi_field<'a>(pv: &'a Value, field: &str) -> &'a str {
    pv.get("spec")
        .and_then(|spec| spec.get("csi"))
        .and_then(|csi| csi.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn is_delayed(class: &Value) -> bool {
    class.get("volumeBindingMode").and_then(Value::as_str) == Some("WaitForFirstConsumer")
}

fn strings(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// The CSI access mode for a claim's modes (the most capable one asked for).
pub(crate) fn access_mode(modes: &[String]) -> Mode {
    let has = |m: &str| modes.iter().any(|x| x == m);
    if has("ReadWriteMany") {
        Mode::MultiNodeMultiWriter
    } else if has("ReadOnlyMany") && !has("ReadWriteOnce") {
        Mode::MultiNodeReaderOnly
    } else if has("ReadWriteOncePod") {
        Mode::SingleNodeSingleWriter
    } else {
        Mode::SingleNodeWriter
    }
}

/// The PV for a provisioned volume, pre-bound to its claim.
fn persistent_volume(
    name: &str,
    driver: &str,
    claim: &Object,
    class: &Value,
    spec: &VolumeSpec,
    volume: &pb::Volume,
) -> Value {
    let body = &claim.body;
    let capacity = match volume.capacity_bytes {
        0 => spec.capacity.unwrap_or(0),
        bytes => bytes as u64,
    };
    let mut csi = json!({
        "driver": driver,
        "volumeHandle": volume.volume_id,
        "volumeAttributes": volume.volume_context,
    });
    if let Access::Mount { fs_type, .. } = &spec.access
        && !fs_type.is_empty()
    {
        csi["fsType"] = fs_type.clone().into();
    }
    let mut pv = json!({
        "metadata": {
            "name": name,
            "annotations": {PROVISIONED_BY: driver},
            "finalizers": [FINALIZER],
        },
        "spec": {
            "capacity": {"storage": crate::quantity::Quantity::from_bytes(capacity).to_string()},
            "accessModes": body.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
            "volumeMode": body.pointer("/spec/volumeMode").cloned().unwrap_or(json!("Filesystem")),
            "persistentVolumeReclaimPolicy": class.get("reclaimPolicy").cloned().unwrap_or(json!("Delete")),
            "storageClassName": body.pointer("/spec/storageClassName").cloned().unwrap_or(json!("")),
            "claimRef": {
                "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": claim.key.namespace, "name": claim.key.name,
                "uid": meta::str_field(body, "uid"),
                "resourceVersion": claim.resource_version.to_string(),
            },
            "csi": csi,
        },
    });
    if let Some(options) = class.get("mountOptions") {
        pv["spec"]["mountOptions"] = options.clone();
    }
    let terms: Vec<Value> = volume
        .accessible_topology
        .iter()
        .map(|t| {
            let expressions: Vec<Value> = t
                .segments
                .iter()
                .map(|(k, v)| json!({"key": k, "operator": "In", "values": [v]}))
                .collect();
            json!({"matchExpressions": expressions})
        })
        .collect();
    if !terms.is_empty() {
        pv["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": terms}});
    }
    pv
}
