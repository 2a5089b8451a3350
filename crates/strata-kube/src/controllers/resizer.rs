//! Volume expansion, as Kubernetes' external-resizer and kubelet do it: a
//! Bound claim whose storage request rose above its capacity gets
//! ControllerExpandVolume and a bigger PV; when the driver says the
//! filesystem must grow on the node too, NodeExpandVolume runs where the
//! volume is staged (now, or when a pod next mounts it), and only then
//! does the claim report the new capacity.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use strata_csi::client::Access;

use super::informer::{Informer, Next};
use super::kubelet::mounts::is_mount_point;
use super::provisioner::{CsiClients, Drivers, csi_field};
use super::retry::RetryQueue;
use crate::kinds::Kind;
use crate::quantity::{Quantity, parse_quantity};
use crate::registry::events::{EventType, Recorder, Regarding};
use crate::registry::{Registry, meta};
use crate::store::{Change, Object, ObjectKey};

const RETRY: Duration = Duration::from_secs(5);
const RESIZE_PENDING: &str = "FileSystemResizePending";

/// What the resizer needs besides the registry.
#[derive(Clone, Debug)]
pub struct ResizerConfig {
    pub drivers: Drivers,
    /// Where this node stages CSI volumes (as the node agent does).
    pub staging_root: PathBuf,
}

struct Resizer {
    registry: Registry,
    recorder: Recorder,
    clients: CsiClients,
    staging_root: PathBuf,
}

pub fn run(registry: Registry, config: ResizerConfig, stop: Arc<AtomicBool>) {
    let (mut informer, objects) = Informer::start(&registry, &[Kind::PersistentVolumeClaim]);
    let mut resizer = Resizer {
        recorder: Recorder::new(registry.clone(), "external-resizer"),
        registry,
        clients: CsiClients::new(config.drivers),
        staging_root: config.staging_root,
    };
    let mut work = RetryQueue::new(RETRY);
    let consider = |work: &mut RetryQueue<ObjectKey>, object: &Object| {
        if wants_resize(&object.body) {
            work.add(object.key.clone());
        }
    };
    objects.iter().for_each(|o| consider(&mut work, o));
    while !stop.load(Ordering::Relaxed) {
        while let Some(key) = work.next() {
            if resizer.resize(&key).is_err() {
                work.retry(key);
            }
        }
        match informer.next(Duration::from_millis(500)) {
            Next::Changed(event) if event.change != Change::Deleted => {
                consider(&mut work, &event.object)
            }
            Next::Relisted(objects) => objects.iter().for_each(|o| consider(&mut work, o)),
            _ => {}
        }
    }
}

fn quantity(body: &Value, pointer: &str) -> Option<Quantity> {
    parse_quantity(body.pointer(pointer)?.as_str()?).ok()
}

/// A Bound claim asking for more than it has.
fn wants_resize(claim: &Value) -> bool {
    let bound = claim.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    let asked = quantity(claim, "/spec/resources/requests/storage");
    let has = quantity(claim, "/status/capacity/storage");
    bound && matches!((asked, has), (Some(a), Some(h)) if a > h)
}

impl Resizer {
    /// One claim's expansion; `Err` means "try again later".
    fn resize(&mut self, key: &ObjectKey) -> Result<(), ()> {
        // A handle (an Arc), so `self` stays free for the calls below.
        let registry = &self.registry.clone();
        let Ok(claim) = registry.get(key.kind, &key.namespace, &key.name) else {
            return Ok(());
        };
        if !wants_resize(&claim.body) {
            return Ok(());
        }
        let volume = claim
            .body
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Ok(pv) = registry.get(Kind::PersistentVolume, "", volume) else {
            return self.fail(&claim, format!("persistentvolume \"{volume}\" not found"));
        };
        if pv.body.pointer("/spec/csi").is_none() {
            return self.fail(
                &claim,
                format!("volume \"{volume}\" is not a CSI volume, so it cannot be expanded"),
            );
        }
        let driver = csi_field(&pv.body, "driver");
        if !self.clients.knows(registry, driver) {
            return Ok(()); // another resizer's driver
        }
        let handle = csi_field(&pv.body, "volumeHandle");
        let staged = strata_csi::client::staging_path(&self.staging_root, handle);
        let mounted = is_mount_point(&staged).unwrap_or(false);
        let asked = quantity(&claim.body, "/spec/resources/requests/storage").unwrap_or_default();
        let grown = quantity(&pv.body, "/spec/capacity/storage").is_some_and(|c| c >= asked);
        if !(resize_pending(&claim.body) && grown) {
            let capacity = match self.expand_controller(&claim, &pv, asked) {
                Ok(Some(capacity)) => capacity,
                // The filesystem needs no growing: done.
                Ok(None) => return Ok(()),
                Err(()) => return Err(()),
            };
            if !mounted {
                let regarding = Regarding::of(Kind::PersistentVolumeClaim, &claim.body);
                self.recorder.record(
                    &regarding,
                    EventType::Normal,
                    "FileSystemResizeRequired",
                    "Require file system resize of volume on node",
                );
                // Kept on the retry list until a pod has it mounted.
                return pending(registry, &claim, &capacity).and(Err(()));
            }
        } else if !mounted {
            // Only the node's part is left, and it needs the volume
            // mounted: look again shortly (a pod mounting it changes no
            // claim).
            return Err(());
        }
        let pv = registry
            .get(Kind::PersistentVolume, "", volume)
            .map_err(|_| ())?;
        match self.expand_on_node(&claim, &pv, &staged) {
            true => Ok(()),
            false => Err(()),
        }
    }

    /// ControllerExpandVolume and the PV's new capacity. `Some(capacity)`
    /// when the node must still grow the filesystem, `None` when the claim
    /// is done; `Err` to try again.
    fn expand_controller(
        &mut self,
        claim: &Object,
        pv: &Object,
        asked: Quantity,
    ) -> Result<Option<String>, ()> {
        let volume = &pv.key.name;
        let driver = csi_field(&pv.body, "driver");
        let handle = csi_field(&pv.body, "volumeHandle");
        let regarding = Regarding::of(Kind::PersistentVolumeClaim, &claim.body);
        self.recorder.record(
            &regarding,
            EventType::Normal,
            "Resizing",
            &format!("External resizer is resizing volume {volume}"),
        );
        let access = access_of(&pv.body);
        let expanded = self.clients.get(&self.registry, driver).and_then(|c| {
            c.expand_volume(handle, asked.bytes(), &access)
                .map_err(|e| e.to_string())
        });
        let (capacity, on_node) = match expanded {
            Ok(answer) => answer,
            Err(e) => {
                return self.fail(
                    claim,
                    format!("resize volume \"{volume}\" by resizer \"{driver}\" failed: {e}"),
                );
            }
        };
        let capacity = Quantity::from_bytes(capacity.max(asked.bytes())).to_string();
        let mut pv_body = (*pv.body).clone();
        pv_body["spec"]["capacity"]["storage"] = capacity.clone().into();
        if self.registry.save(Kind::PersistentVolume, pv_body).is_err() {
            return Err(());
        }
        self.recorder.record(
            &regarding,
            EventType::Normal,
            "VolumeResizeSuccessful",
            &format!("resize volume \"{volume}\" by resizer \"{driver}\" finished successfully"),
        );
        if !on_node {
            return finish(&self.registry, claim, &capacity).map(|()| None);
        }
        Ok(Some(capacity))
    }

    /// NodeExpandVolume for a claim waiting for it, where its volume is
    /// staged; then the claim reports its new capacity. False: it failed
    /// (an event says why) and is worth trying again.
    fn expand_on_node(&mut self, claim: &Object, pv: &Object, staged: &Path) -> bool {
        let regarding = Regarding::of(Kind::PersistentVolumeClaim, &claim.body);
        let driver = csi_field(&pv.body, "driver");
        let handle = csi_field(&pv.body, "volumeHandle");
        let capacity = quantity(&pv.body, "/spec/capacity/storage").unwrap_or_default();
        let access = access_of(&pv.body);
        let expanded = self.clients.get(&self.registry, driver).and_then(|c| {
            c.node_expand(handle, staged, Some(staged), capacity.bytes(), &access)
                .map_err(|e| e.to_string())
        });
        match expanded {
            Ok(_) => {
                self.recorder.record(
                    &regarding,
                    EventType::Normal,
                    "FileSystemResizeSuccessful",
                    &format!(
                        "MountVolume.NodeExpandVolume succeeded for volume \"{}\"",
                        pv.key.name
                    ),
                );
                finish(&self.registry, claim, &capacity.to_string()).is_ok()
            }
            Err(e) => {
                self.recorder.record(
                    &regarding,
                    EventType::Warning,
                    "FileSystemResizeFailed",
                    &format!(
                        "MountVolume.NodeExpandVolume failed for volume \"{}\": {e}",
                        pv.key.name
                    ),
                );
                false
            }
        }
    }

    /// Records why a claim could not grow; it is tried again.
    fn fail<T>(&self, claim: &Object, message: String) -> Result<T, ()> {
        let regarding = Regarding::of(Kind::PersistentVolumeClaim, &claim.body);
        self.recorder.record(
            &regarding,
            EventType::Warning,
            "VolumeResizeFailed",
            &message,
        );
        Err(())
    }
}

/// Whether a claim waits for its filesystem to grow on the node.
fn resize_pending(claim: &Value) -> bool {
    claim
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.get("type").and_then(Value::as_str) == Some(RESIZE_PENDING))
        })
}

fn access_of(pv: &Value) -> Access {
    if pv.pointer("/spec/volumeMode").and_then(Value::as_str) == Some("Block") {
        return Access::Block;
    }
    Access::Mount {
        fs_type: csi_field(pv, "fsType").to_string(),
        mount_flags: Vec::new(),
    }
}

/// The claim has `capacity` and no resize conditions.
fn finish(registry: &Registry, claim: &Object, capacity: &str) -> Result<(), ()> {
    let mut body = (*claim.body).clone();
    body["status"]["capacity"]["storage"] = capacity.into();
    body["status"]["allocatedResources"] = json!({"storage": capacity});
    if let Some(status) = body["status"].as_object_mut() {
        status.remove("conditions");
    }
    registry
        .save(Kind::PersistentVolumeClaim, body)
        .map(|_| ())
        .map_err(|_| ())
}

/// The volume has grown; its filesystem waits for the node.
fn pending(registry: &Registry, claim: &Object, capacity: &str) -> Result<(), ()> {
    if resize_pending(&claim.body) {
        return Ok(());
    }
    let mut body = (*claim.body).clone();
    body["status"]["allocatedResources"] = json!({"storage": capacity});
    body["status"]["conditions"] = json!([{
        "type": RESIZE_PENDING, "status": "True", "lastTransitionTime": meta::now(),
        "message": "Waiting for user to (re-)start a pod to finish file system resize of volume on node.",
    }]);
    registry
        .save(Kind::PersistentVolumeClaim, body)
        .map(|_| ())
        .map_err(|_| ())
}
