//! Volume expansion, as Kubernetes' external-resizer and kubelet do it: a
//! Bound claim whose storage request rose above its capacity gets
//! ControllerExpandVolume and a bigger PV; when the driver says the
//! filesystem must grow on the node too, NodeExpandVolume runs where the
//! volume is staged (now, or when a pod next mounts it), and only then
//! does the claim report the new capacity.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strata_csi::client::{Access, BlockingCsiClient};

use super::informer::{Informer, Next};
use super::provisioner::Drivers;
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

pub fn run(registry: Registry, config: ResizerConfig, stop: Arc<AtomicBool>) {
    let recorder = Recorder::new(registry.clone(), "external-resizer");
    let (mut informer, objects) = Informer::start(&registry, &[Kind::PersistentVolumeClaim]);
    let mut queue: VecDeque<ObjectKey> = VecDeque::new();
    let mut retry: Vec<(Instant, ObjectKey)> = Vec::new();
    let consider = |queue: &mut VecDeque<ObjectKey>, object: &Object| {
        if wants_resize(&object.body) && !queue.contains(&object.key) {
            queue.push_back(object.key.clone());
        }
    };
    objects.iter().for_each(|o| consider(&mut queue, o));
    while !stop.load(Ordering::Relaxed) {
        while let Some(key) = queue.pop_front() {
            if resize(&registry, &config, &recorder, &key).is_err()
                && !retry.iter().any(|(_, k)| *k == key)
            {
                retry.push((Instant::now() + RETRY, key));
            }
        }
        let now = Instant::now();
        retry.retain(|(at, key)| {
            let due = *at <= now;
            if due {
                queue.push_back(key.clone());
            }
            !due
        });
        match informer.next(Duration::from_millis(500)) {
            Next::Changed(event) if event.change != Change::Deleted => {
                consider(&mut queue, &event.object)
            }
            Next::Relisted(objects) => objects.iter().for_each(|o| consider(&mut queue, o)),
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

/// One claim's expansion; `Err` means "try again later".
fn resize(
    registry: &Registry,
    config: &ResizerConfig,
    recorder: &Recorder,
    key: &ObjectKey,
) -> Result<(), ()> {
    let Ok(claim) = registry.get(key.kind, &key.namespace, &key.name) else {
        return Ok(());
    };
    if !wants_resize(&claim.body) {
        return Ok(());
    }
    let regarding = Regarding::of(Kind::PersistentVolumeClaim, &claim.body);
    let fail = |message: String| {
        recorder.record(
            &regarding,
            EventType::Warning,
            "VolumeResizeFailed",
            &message,
        );
        Err(())
    };
    let volume = claim
        .body
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Ok(pv) = registry.get(Kind::PersistentVolume, "", volume) else {
        return fail(format!("persistentvolume \"{volume}\" not found"));
    };
    let Some(csi) = pv.body.pointer("/spec/csi") else {
        return fail(format!(
            "volume \"{volume}\" is not a CSI volume, so it cannot be expanded"
        ));
    };
    let driver = csi.get("driver").and_then(Value::as_str).unwrap_or("");
    let handle = csi
        .get("volumeHandle")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(endpoint) = config.drivers.endpoint(registry, driver) else {
        return Ok(()); // another resizer's driver
    };
    let asked = quantity(&claim.body, "/spec/resources/requests/storage").unwrap_or_default();
    let access = access_of(&pv.body);
    let staged = strata_csi::client::staging_path(&config.staging_root, handle);
    let grown = quantity(&pv.body, "/spec/capacity/storage").is_some_and(|c| c >= asked);
    if resize_pending(&claim.body) && grown {
        // Only the node's part is left, and it needs the volume mounted:
        // look again shortly (a pod mounting it changes no claim).
        if !is_mount_point(&staged) {
            return Err(());
        }
        let client = BlockingCsiClient::connect(&endpoint).map_err(|_| ())?;
        return done(expand_on_node(
            registry,
            recorder,
            &client,
            &claim,
            &pv,
            &staged,
            Some(&staged),
        ));
    }
    recorder.record(
        &regarding,
        EventType::Normal,
        "Resizing",
        &format!("External resizer is resizing volume {volume}"),
    );
    let client = match BlockingCsiClient::connect(&endpoint) {
        Ok(client) => client,
        Err(e) => return fail(e.to_string()),
    };
    let (capacity, on_node) = match client.expand_volume(handle, asked.bytes(), &access) {
        Ok(answer) => answer,
        Err(e) => {
            return fail(format!(
                "resize volume \"{volume}\" by resizer \"{driver}\" failed: {e}"
            ));
        }
    };
    let capacity = Quantity::from_bytes(capacity.max(asked.bytes())).to_string();
    let mut pv_body = (*pv.body).clone();
    pv_body["spec"]["capacity"]["storage"] = capacity.clone().into();
    if registry.save(Kind::PersistentVolume, pv_body).is_err() {
        return Err(());
    }
    recorder.record(
        &regarding,
        EventType::Normal,
        "VolumeResizeSuccessful",
        &format!("resize volume \"{volume}\" by resizer \"{driver}\" finished successfully"),
    );
    if !on_node {
        return finish(registry, &claim, &capacity);
    }
    if !is_mount_point(&staged) {
        // Grown when a pod next mounts it (see `expand_on_node`).
        recorder.record(
            &regarding,
            EventType::Normal,
            "FileSystemResizeRequired",
            "Require file system resize of volume on node",
        );
        // Kept on the retry list until a pod has it mounted.
        return pending(registry, &claim, &capacity).and(Err(()));
    }
    done(expand_on_node(
        registry,
        recorder,
        &client,
        &claim,
        &pv,
        &staged,
        Some(&staged),
    ))
}

fn done(finished: bool) -> Result<(), ()> {
    if finished { Ok(()) } else { Err(()) }
}

/// NodeExpandVolume for a claim waiting for it, at a path where its volume
/// is mounted; then the claim reports its new capacity. False: it failed
/// (an event says why) and is worth trying again.
pub fn expand_on_node(
    registry: &Registry,
    recorder: &Recorder,
    client: &BlockingCsiClient,
    claim: &Object,
    pv: &Object,
    path: &Path,
    staging: Option<&Path>,
) -> bool {
    let regarding = Regarding::of(Kind::PersistentVolumeClaim, &claim.body);
    let handle = pv
        .body
        .pointer("/spec/csi/volumeHandle")
        .and_then(Value::as_str)
        .unwrap_or("");
    let capacity = quantity(&pv.body, "/spec/capacity/storage").unwrap_or_default();
    match client.node_expand(
        handle,
        path,
        staging,
        capacity.bytes(),
        &access_of(&pv.body),
    ) {
        Ok(_) => {
            recorder.record(
                &regarding,
                EventType::Normal,
                "FileSystemResizeSuccessful",
                &format!(
                    "MountVolume.NodeExpandVolume succeeded for volume \"{}\"",
                    pv.key.name
                ),
            );
            finish(registry, claim, &capacity.to_string()).is_ok()
        }
        Err(e) => {
            recorder.record(
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

/// Whether a claim waits for its filesystem to grow on the node.
pub fn resize_pending(claim: &Value) -> bool {
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
        fs_type: pv
            .pointer("/spec/csi/fsType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        mount_flags: Vec::new(),
    }
}

fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (path.metadata(), path.parent().map(Path::metadata)) {
        (Ok(here), Some(Ok(parent))) => here.dev() != parent.dev(),
        _ => false,
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
