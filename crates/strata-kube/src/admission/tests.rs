//! Tables for defaults, create validation and update validation, over
//! realistic manifests (as kubectl sends them) and one edit per rule.

use k8s_openapi::api::storage::v1::StorageClass;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::defaults::pull_policy;
use super::*;
use crate::kinds::Kind;

/// `body` with the value at JSON pointer `pointer` replaced (parents made
/// as needed).
fn set(mut body: Value, pointer: &str, value: Value) -> Value {
    let mut node = &mut body;
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Array(items) => {
                let index: usize = part.parse().expect("index");
                if index == items.len() {
                    items.push(Value::Null);
                }
                &mut items[index]
            }
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other
                    .as_object_mut()
                    .expect("object")
                    .entry(part)
                    .or_insert(Value::Null)
            }
        };
    }
    *node = value;
    body
}

/// `body` without the field at `pointer`.
fn unset(mut body: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(parent) = body.pointer_mut(parent).and_then(Value::as_object_mut) {
        parent.remove(key);
    }
    body
}

/// A manifest as stored: with the server's defaults.
fn defaulted(kind: Kind, mut body: Value) -> Value {
    apply_defaults(kind, &mut body);
    body
}

fn pv() -> Value {
    defaulted(
        Kind::PersistentVolume,
        json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-1"},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/srv/volumes/pv-1"},
                "storageClassName": "manual",
            },
        }),
    )
}

fn csi_pv() -> Value {
    let pv = unset(pv(), "/spec/hostPath");
    set(
        pv,
        "/spec/csi",
        json!({"driver": "csi.strata.dev", "volumeHandle": "vol-1"}),
    )
}

fn local_pv() -> Value {
    let pv = unset(pv(), "/spec/hostPath");
    let pv = set(pv, "/spec/local", json!({"path": "/mnt/disks/ssd1"}));
    let terms = json!([{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}
    ]}]);
    set(pv, "/spec/nodeAffinity/required/nodeSelectorTerms", terms)
}

fn pvc() -> Value {
    defaulted(
        Kind::PersistentVolumeClaim,
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }),
    )
}

fn bound_pvc() -> Value {
    let claim = set(pvc(), "/spec/volumeName", json!("pv-1"));
    let claim = set(claim, "/spec/storageClassName", json!("fast"));
    set(claim, "/status/phase", json!("Bound"))
}

fn sc() -> Value {
    defaulted(
        Kind::StorageClass,
        json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast"},
            "provisioner": "csi.strata.dev",
            "parameters": {"fsType": "ext4"},
        }),
    )
}

fn pod() -> Value {
    defaulted(
        Kind::Pod,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "nginx:1.27",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        }),
    )
}

fn node() -> Value {
    defaulted(
        Kind::Node,
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}),
    )
}

fn namespace() -> Value {
    defaulted(Kind::Namespace, json!({"metadata": {"name": "team-a"}}))
}

fn event() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "data.17a2b3c4d5e6f7a8", "namespace": "default"},
        "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data"},
        "reason": "ProvisioningSucceeded",
        "message": "Successfully provisioned volume pvc-1",
        "type": "Normal",
        "source": {"component": "persistentvolume-controller"},
    })
}

fn csi_driver() -> Value {
    defaulted(
        Kind::CsiDriver,
        json!({"metadata": {"name": "csi.strata.dev"}, "spec": {}}),
    )
}

/// Each expectation is a cause's field, or the start of its
/// `field: message` line; causes may come in any order.
fn check_causes(causes: Vec<crate::error::Cause>, expected: &[&str], case: &str) {
    let lines: Vec<String> = causes.iter().map(|c| c.to_line()).collect();
    assert_eq!(causes.len(), expected.len(), "{case}: {lines:#?}");
    let mut unmatched: Vec<&crate::error::Cause> = causes.iter().collect();
    for want in expected {
        let position = unmatched.iter().position(|c| match want.contains(": ") {
            true => c.to_line().starts_with(want),
            false => c.field == *want,
        });
        match position {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!("{case}: no cause matches {want:?} in {lines:#?}"),
        }
    }
}

fn check_create(kind: Kind, body: Value, expected: &[&str]) {
    let case = format!("create {kind} {body}");
    check_causes(validate_create(kind, &body), expected, &case);
}

#[test]
fn create() {
    use Kind::*;
    let long_name = "a".repeat(254);
    let parameters: serde_json::Map<String, Value> =
        (0..513).map(|i| (format!("p{i}"), json!("v"))).collect();
    let cases: Vec<(Kind, Value, &[&str])> = vec![
        // Valid objects.
        (PersistentVolume, pv(), &[]),
        (PersistentVolume, csi_pv(), &[]),
        (PersistentVolume, local_pv(), &[]),
        (PersistentVolumeClaim, pvc(), &[]),
        (PersistentVolumeClaim, bound_pvc(), &[]),
        (StorageClass, sc(), &[]),
        (Pod, pod(), &[]),
        (Node, node(), &[]),
        (Namespace, namespace(), &[]),
        (Event, event(), &[]),
        (CsiDriver, csi_driver(), &[]),
        // Names.
        (
            PersistentVolume,
            unset(pv(), "/metadata/name"),
            &["metadata.name: Required value: name or generateName is required"],
        ),
        (
            PersistentVolume,
            set(pv(), "/metadata/name", json!("PV_1")),
            &["metadata.name"],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/metadata/name", json!(long_name)),
            &["metadata.name"],
        ),
        (
            StorageClass,
            set(sc(), "/metadata/name", json!("Fast")),
            &["metadata.name"],
        ),
        (
            Pod,
            set(pod(), "/metadata/name", json!("web_1")),
            &["metadata.name"],
        ),
        (
            Node,
            set(node(), "/metadata/name", json!("Node 1")),
            &["metadata.name"],
        ),
        (
            Namespace,
            set(namespace(), "/metadata/name", json!("team.a")),
            &["metadata.name: Invalid value: \"team.a\": must not contain dots"],
        ),
        (
            Namespace,
            set(namespace(), "/metadata/name", json!("a".repeat(64))),
            &["metadata.name"],
        ),
        // PersistentVolume.
        (
            PersistentVolume,
            unset(pv(), "/spec/accessModes"),
            &["spec.accessModes: Required value"],
        ),
        (
            PersistentVolume,
            set(
                pv(),
                "/spec/accessModes",
                json!(["ReadWriteOncePod", "ReadWriteOnce"]),
            ),
            &["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/accessModes", json!(["ReadWriteOncePod"])),
            &[],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/accessModes", json!(["ReadWriteSometimes"])),
            &[
                "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            ],
        ),
        (
            PersistentVolume,
            unset(pv(), "/spec/capacity"),
            &[
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value",
            ],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/capacity/iops", json!("100")),
            &["spec.capacity: Unsupported value: \"iops, storage\""],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/capacity/storage", json!("0")),
            &["spec.capacity[storage]: Invalid value: \"0\": must be greater than zero"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/capacity/storage", json!("-1Gi")),
            &["spec.capacity[storage]"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/capacity/storage", json!("ten")),
            &["spec.capacity[storage]"],
        ),
        (
            PersistentVolume,
            unset(pv(), "/spec/hostPath"),
            &["spec: Required value: must specify a volume type"],
        ),
        (
            PersistentVolume,
            set(
                pv(),
                "/spec/nfs",
                json!({"server": "nfs.example.com", "path": "/exports/a"}),
            ),
            &["spec.nfs: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/persistentVolumeReclaimPolicy", json!("Keep")),
            &["spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\""],
        ),
        (
            PersistentVolume,
            set(
                pv(),
                "/spec/persistentVolumeReclaimPolicy",
                json!("Recycle"),
            ),
            &[],
        ),
        (
            PersistentVolume,
            set(
                set(
                    pv(),
                    "/spec/persistentVolumeReclaimPolicy",
                    json!("Recycle"),
                ),
                "/spec/hostPath/path",
                json!("//./"),
            ),
            &[
                "spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'",
            ],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/volumeMode", json!("Raw")),
            &["spec.volumeMode"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/volumeMode", json!("Block")),
            &[],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/storageClassName", json!("Manual")),
            &["spec.storageClassName"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/hostPath/path", json!("srv/pv-1")),
            &["spec.hostPath.path: Invalid value: \"srv/pv-1\": must be an absolute path"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/hostPath/path", json!("/srv/../etc")),
            &["spec.hostPath.path"],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/hostPath/type", json!("Dir")),
            &["spec.hostPath.type"],
        ),
        (
            PersistentVolume,
            unset(local_pv(), "/spec/nodeAffinity"),
            &["spec.nodeAffinity: Required value: Local volume requires node affinity"],
        ),
        (
            PersistentVolume,
            set(csi_pv(), "/spec/csi", json!({})),
            &[
                "spec.csi.driver: Required value",
                "spec.csi.volumeHandle: Required value",
            ],
        ),
        (
            PersistentVolume,
            set(csi_pv(), "/spec/csi/driver", json!("csi_strata")),
            &["spec.csi.driver"],
        ),
        // Bodies that do not decode name the field.
        (
            PersistentVolume,
            set(pv(), "/spec", json!("fast")),
            &["spec: Invalid value: \"fast\""],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/capacity/storage", json!(10)),
            &[],
        ),
        (
            PersistentVolume,
            set(pv(), "/spec/accessModes", json!("ReadWriteOnce")),
            &["spec.accessModes"],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/containers/0/ports",
                json!([{"containerPort": "http"}]),
            ),
            &["spec.containers[0].ports[0].containerPort"],
        ),
        // PersistentVolumeClaim.
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/accessModes", json!([])),
            &["spec.accessModes: Required value: at least 1 access mode is required"],
        ),
        (
            PersistentVolumeClaim,
            set(
                pvc(),
                "/spec/accessModes",
                json!(["ReadWriteMany", "ReadWriteOncePod"]),
            ),
            &["spec.accessModes: Forbidden"],
        ),
        (
            PersistentVolumeClaim,
            unset(pvc(), "/spec/resources"),
            &["spec.resources[storage]: Required value"],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/resources/requests/storage", json!("0Gi")),
            &["spec.resources[storage]: Invalid value: \"0Gi\": must be greater than zero"],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/volumeMode", json!("raw")),
            &["spec.volumeMode"],
        ),
        (
            PersistentVolumeClaim,
            set(
                pvc(),
                "/spec/selector",
                json!({"matchLabels": {"tier": "gold"}}),
            ),
            &[],
        ),
        (
            PersistentVolumeClaim,
            set(
                pvc(),
                "/spec/selector",
                json!({"matchExpressions": [{"key": "tier", "operator": "Near", "values": ["gold"]}]}),
            ),
            &["spec.selector"],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/storageClassName", json!("")),
            &[],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/storageClassName", json!("a b")),
            &["spec.storageClassName"],
        ),
        // StorageClass.
        (
            StorageClass,
            set(sc(), "/provisioner", json!("")),
            &["provisioner: Required value"],
        ),
        (
            StorageClass,
            set(sc(), "/provisioner", json!("kubernetes.io/no-provisioner")),
            &[],
        ),
        (
            StorageClass,
            set(sc(), "/provisioner", json!("a/b/c")),
            &["provisioner"],
        ),
        (
            StorageClass,
            set(sc(), "/reclaimPolicy", json!("Recycle")),
            &[
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
            ],
        ),
        (
            StorageClass,
            set(sc(), "/volumeBindingMode", json!("Later")),
            &["volumeBindingMode"],
        ),
        (
            StorageClass,
            unset(sc(), "/volumeBindingMode"),
            &["volumeBindingMode: Required value"],
        ),
        (
            StorageClass,
            set(sc(), "/parameters", Value::Object(parameters)),
            &["parameters: Too many: 513"],
        ),
        (
            StorageClass,
            set(sc(), "/parameters", json!({"": "x"})),
            &["parameters"],
        ),
        // Pod.
        (
            Pod,
            set(pod(), "/spec/containers", json!([])),
            &["spec.containers: Required value"],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/containers/1",
                json!({"name": "app", "image": "busybox"}),
            ),
            &["spec.containers[1].name: Duplicate value: \"app\""],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/initContainers",
                json!([{"name": "app", "image": "busybox"}]),
            ),
            &["spec.containers[0].name: Duplicate value: \"app\""],
        ),
        (
            Pod,
            set(pod(), "/spec/containers/0/name", json!("App")),
            &["spec.containers[0].name"],
        ),
        (
            Pod,
            set(pod(), "/spec/containers/0/name", json!("")),
            &["spec.containers[0].name: Required value"],
        ),
        (
            Pod,
            unset(pod(), "/spec/containers/0/image"),
            &["spec.containers[0].image: Required value"],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/containers/0/volumeMounts/0/name",
                json!("cache"),
            ),
            &["spec.containers[0].volumeMounts[0].name: Not found: \"cache\""],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/containers/0/volumeMounts/0/mountPath",
                json!(""),
            ),
            &["spec.containers[0].volumeMounts[0].mountPath: Required value"],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/containers/0/volumeMounts/1",
                json!({"name": "data", "mountPath": "/data"}),
            ),
            &[
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique",
            ],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/volumes/1",
                json!({"name": "data", "emptyDir": {}}),
            ),
            &["spec.volumes[1].name: Duplicate value: \"data\""],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/volumes/0",
                json!({"name": "data", "configMap": {"name": "settings"}}),
            ),
            &[
                "spec.volumes[0]: Unsupported value: \"configMap\": supported values: \"emptyDir\", \"hostPath\", \"persistentVolumeClaim\"",
            ],
        ),
        (
            Pod,
            set(pod(), "/spec/volumes/0/emptyDir", json!({})),
            &[
                "spec.volumes[0].persistentVolumeClaim: Forbidden: may not specify more than 1 volume type",
            ],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/volumes/0",
                json!({"name": "data", "hostPath": {"path": "/var/data", "type": "Folder"}}),
            ),
            &["spec.volumes[0].hostPath.type: Unsupported value: \"Folder\""],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/volumes/0",
                json!({"name": "data", "hostPath": {"path": "data"}}),
            ),
            &["spec.volumes[0].hostPath.path"],
        ),
        (
            Pod,
            set(
                pod(),
                "/spec/volumes/0/persistentVolumeClaim/claimName",
                json!(""),
            ),
            &["spec.volumes[0].persistentVolumeClaim.claimName: Required value"],
        ),
        (
            Pod,
            set(pod(), "/spec/restartPolicy", json!("Sometimes")),
            &[
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            Pod,
            set(pod(), "/spec/restartPolicy", json!("")),
            &["spec.restartPolicy: Required value"],
        ),
        (
            Pod,
            set(pod(), "/spec/dnsPolicy", json!("Google")),
            &["spec.dnsPolicy"],
        ),
        // Event.
        (
            Event,
            set(event(), "/type", json!("Info")),
            &["type: Unsupported value: \"Info\""],
        ),
        (
            Event,
            set(event(), "/involvedObject/namespace", json!("kube-system")),
            &[
                "involvedObject.namespace: Invalid value: \"kube-system\": does not match event.namespace",
            ],
        ),
        (
            Event,
            set(
                event(),
                "/involvedObject",
                json!({"kind": "PersistentVolume", "name": "pv-1"}),
            ),
            &[],
        ),
        (Event, unset(event(), "/metadata/name"), &["metadata.name"]),
        // CSIDriver.
        (
            CsiDriver,
            set(csi_driver(), "/spec/fsGroupPolicy", json!("Any")),
            &["spec.fsGroupPolicy"],
        ),
        (
            CsiDriver,
            set(
                csi_driver(),
                "/spec/volumeLifecycleModes",
                json!(["Persistent", "Forever"]),
            ),
            &["spec.volumeLifecycleModes: Unsupported value: \"Forever\""],
        ),
        (
            CsiDriver,
            unset(csi_driver(), "/spec/attachRequired"),
            &["spec.attachRequired: Required value"],
        ),
        (
            CsiDriver,
            set(
                csi_driver(),
                "/metadata/name",
                json!(format!("{}.dev", "a".repeat(60))),
            ),
            &["metadata.name: Too long: may not be more than 63 bytes"],
        ),
    ];
    for (kind, body, expected) in cases {
        check_create(kind, body, expected);
    }
}

fn check_update(kind: Kind, old: Value, new: Value, expected: &[&str]) {
    let case = format!("update {kind}\n old {old}\n new {new}");
    check_causes(validate_update(kind, &old, &new), expected, &case);
}

#[test]
fn update() {
    use Kind::*;
    let immutable_claim: &[&str] = &[
        "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
    ];
    let tolerate = |key: &str| json!({"key": key, "operator": "Exists", "effect": "NoSchedule"});
    let cases: Vec<(Kind, Value, Value, &[&str])> = vec![
        // PersistentVolume: the source and mode are fixed, the rest is not.
        (
            PersistentVolume,
            pv(),
            set(pv(), "/spec/capacity/storage", json!("20Gi")),
            &[],
        ),
        (
            PersistentVolume,
            pv(),
            set(pv(), "/spec/persistentVolumeReclaimPolicy", json!("Delete")),
            &[],
        ),
        (
            PersistentVolume,
            pv(),
            set(
                pv(),
                "/spec/claimRef",
                json!({"namespace": "default", "name": "data"}),
            ),
            &[],
        ),
        (
            PersistentVolume,
            pv(),
            set(pv(), "/spec/hostPath/path", json!("/srv/elsewhere")),
            &[
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation",
            ],
        ),
        (
            PersistentVolume,
            pv(),
            set(pv(), "/spec/volumeMode", json!("Block")),
            &["spec.volumeMode: Invalid value: \"Block\": field is immutable"],
        ),
        (
            PersistentVolume,
            csi_pv(),
            set(
                csi_pv(),
                "/spec/csi/controllerExpandSecretRef",
                json!({"name": "s", "namespace": "default"}),
            ),
            &[],
        ),
        (
            PersistentVolume,
            csi_pv(),
            set(csi_pv(), "/spec/csi/volumeHandle", json!("vol-2")),
            &["spec.persistentvolumesource"],
        ),
        // The new object must be valid in itself.
        (
            PersistentVolume,
            pv(),
            set(pv(), "/spec/accessModes", json!([])),
            &["spec.accessModes"],
        ),
        // PersistentVolumeClaim.
        (
            PersistentVolumeClaim,
            pvc(),
            set(pvc(), "/spec/volumeName", json!("pv-1")),
            &[],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/volumeName", json!("pv-1")),
            set(pvc(), "/spec/volumeName", json!("pv-2")),
            immutable_claim,
        ),
        (
            PersistentVolumeClaim,
            pvc(),
            set(pvc(), "/spec/storageClassName", json!("fast")),
            &[],
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/storageClassName", json!("fast")),
            set(pvc(), "/spec/storageClassName", json!("slow")),
            immutable_claim,
        ),
        (
            PersistentVolumeClaim,
            set(pvc(), "/spec/storageClassName", json!("")),
            set(pvc(), "/spec/storageClassName", json!("fast")),
            immutable_claim,
        ),
        (
            PersistentVolumeClaim,
            set(
                pvc(),
                "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
                json!("gold"),
            ),
            set(pvc(), "/spec/storageClassName", json!("fast")),
            immutable_claim,
        ),
        (
            PersistentVolumeClaim,
            pvc(),
            set(pvc(), "/spec/resources/requests/storage", json!("2Gi")),
            immutable_claim,
        ),
        (
            PersistentVolumeClaim,
            bound_pvc(),
            set(
                bound_pvc(),
                "/spec/resources/requests/storage",
                json!("2Gi"),
            ),
            &[],
        ),
        (
            PersistentVolumeClaim,
            bound_pvc(),
            set(
                bound_pvc(),
                "/spec/resources/requests/storage",
                json!("1024Mi"),
            ),
            &[],
        ),
        (
            PersistentVolumeClaim,
            bound_pvc(),
            set(
                bound_pvc(),
                "/spec/resources/requests/storage",
                json!("500Mi"),
            ),
            &[
                "spec.resources.requests.storage: Forbidden: field can not be less than previous value",
            ],
        ),
        (
            PersistentVolumeClaim,
            bound_pvc(),
            set(bound_pvc(), "/spec/accessModes", json!(["ReadWriteMany"])),
            immutable_claim,
        ),
        (
            PersistentVolumeClaim,
            bound_pvc(),
            set(bound_pvc(), "/metadata/labels/tier", json!("gold")),
            &[],
        ),
        // StorageClass.
        (
            StorageClass,
            sc(),
            set(sc(), "/parameters/fsType", json!("xfs")),
            &["parameters: Forbidden: updates to parameters are forbidden."],
        ),
        (
            StorageClass,
            sc(),
            set(sc(), "/provisioner", json!("other.strata.dev")),
            &["provisioner: Forbidden: updates to provisioner are forbidden."],
        ),
        (
            StorageClass,
            sc(),
            set(sc(), "/reclaimPolicy", json!("Retain")),
            &["reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."],
        ),
        (
            StorageClass,
            sc(),
            set(sc(), "/volumeBindingMode", json!("WaitForFirstConsumer")),
            &["volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable"],
        ),
        (
            StorageClass,
            sc(),
            set(sc(), "/allowVolumeExpansion", json!(true)),
            &[],
        ),
        (
            StorageClass,
            sc(),
            set(
                sc(),
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
                json!("true"),
            ),
            &[],
        ),
        // Pod.
        (
            Pod,
            pod(),
            set(pod(), "/spec/containers/0/image", json!("nginx:1.28")),
            &[],
        ),
        (
            Pod,
            pod(),
            set(pod(), "/spec/nodeName", json!("node-1")),
            &[],
        ),
        (
            Pod,
            set(pod(), "/spec/nodeName", json!("node-1")),
            set(pod(), "/spec/nodeName", json!("node-2")),
            &["spec: Forbidden: pod updates may not change fields other than"],
        ),
        (
            Pod,
            pod(),
            set(pod(), "/spec/tolerations", json!([tolerate("a")])),
            &[],
        ),
        (
            Pod,
            set(pod(), "/spec/tolerations", json!([tolerate("a")])),
            set(
                pod(),
                "/spec/tolerations",
                json!([tolerate("b"), tolerate("a")]),
            ),
            &[],
        ),
        (
            Pod,
            set(pod(), "/spec/tolerations", json!([tolerate("a")])),
            set(pod(), "/spec/tolerations", json!([tolerate("b")])),
            &["spec"],
        ),
        (
            Pod,
            pod(),
            set(pod(), "/spec/restartPolicy", json!("Never")),
            &["spec"],
        ),
        (
            Pod,
            pod(),
            set(
                pod(),
                "/spec/containers/1",
                json!({"name": "sidecar", "image": "busybox"}),
            ),
            &["spec"],
        ),
        (
            Pod,
            pod(),
            set(pod(), "/spec/activeDeadlineSeconds", json!(60)),
            &[],
        ),
        (
            Pod,
            set(pod(), "/spec/activeDeadlineSeconds", json!(60)),
            set(pod(), "/spec/activeDeadlineSeconds", json!(30)),
            &[],
        ),
        (
            Pod,
            set(pod(), "/spec/activeDeadlineSeconds", json!(60)),
            set(pod(), "/spec/activeDeadlineSeconds", json!(120)),
            &[
                "spec.activeDeadlineSeconds: Invalid value: \"120\": must be less than or equal to previous value",
            ],
        ),
        (
            Pod,
            set(pod(), "/spec/activeDeadlineSeconds", json!(60)),
            pod(),
            &[
                "spec.activeDeadlineSeconds: Invalid value: \"nil\": must not update from a positive integer to nil value",
            ],
        ),
        (
            Pod,
            pod(),
            set(pod(), "/status/phase", json!("Running")),
            &[],
        ),
        // CSIDriver.
        (
            CsiDriver,
            csi_driver(),
            set(csi_driver(), "/spec/attachRequired", json!(false)),
            &["spec.attachRequired: Invalid value: \"false\": field is immutable"],
        ),
        (
            CsiDriver,
            csi_driver(),
            set(
                csi_driver(),
                "/spec/volumeLifecycleModes",
                json!(["Persistent", "Ephemeral"]),
            ),
            &["spec.volumeLifecycleModes"],
        ),
        (
            CsiDriver,
            csi_driver(),
            set(csi_driver(), "/spec/podInfoOnMount", json!(true)),
            &[],
        ),
        // Kinds with no update rules beyond validity.
        (
            Node,
            node(),
            set(node(), "/spec/unschedulable", json!(true)),
            &[],
        ),
        (
            Namespace,
            namespace(),
            set(namespace(), "/metadata/labels/team", json!("a")),
            &[],
        ),
        (Event, event(), set(event(), "/count", json!(2)), &[]),
        (
            Event,
            event(),
            set(event(), "/type", json!("Loud")),
            &["type"],
        ),
    ];
    for (kind, old, new, expected) in cases {
        check_update(kind, old, new, expected);
    }
}

fn check_defaults(kind: Kind, body: Value, expected: Value) {
    let mut defaulted = body.clone();
    apply_defaults(kind, &mut defaulted);
    assert_eq!(defaulted, expected, "defaults of {kind} {body}");
}

#[test]
fn defaults() {
    use Kind::*;
    let metadata = json!({"name": "x", "uid": "u-1", "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z"});
    let cases: Vec<(Kind, Value, Value)> = vec![
        (
            PersistentVolume,
            json!({"metadata": metadata, "spec": {"hostPath": {"path": "/srv"}}}),
            json!({
                "metadata": metadata,
                "spec": {
                    "hostPath": {"path": "/srv"},
                    "persistentVolumeReclaimPolicy": "Retain",
                    "volumeMode": "Filesystem",
                },
                "status": {"phase": "Pending"},
            }),
        ),
        (
            PersistentVolume,
            json!({"spec": {"persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Block"}, "status": {"phase": "Bound"}}),
            json!({"spec": {"persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Block"}, "status": {"phase": "Bound"}}),
        ),
        (
            PersistentVolumeClaim,
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
            json!({
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"},
            }),
        ),
        // A null is as good as absent.
        (
            PersistentVolumeClaim,
            json!({"spec": null, "status": {"phase": null}}),
            json!({"spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
        ),
        (
            StorageClass,
            json!({"provisioner": "csi.strata.dev"}),
            json!({"provisioner": "csi.strata.dev", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        ),
        (
            StorageClass,
            json!({"reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
            json!({"reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
        (
            Pod,
            json!({"spec": {
                "containers": [{"name": "app", "image": "nginx"}],
                "initContainers": [{"name": "init", "image": "busybox:1.36", "imagePullPolicy": "Never"}],
                "volumes": [
                    {"name": "a", "hostPath": {"path": "/var/a"}},
                    {"name": "b", "hostPath": {"path": "/var/b", "type": "Directory"}},
                    {"name": "c"},
                    {"name": "d", "emptyDir": {}},
                ],
            }}),
            json!({
                "spec": {
                    "containers": [{
                        "name": "app", "image": "nginx", "imagePullPolicy": "Always",
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    }],
                    "initContainers": [{
                        "name": "init", "image": "busybox:1.36", "imagePullPolicy": "Never",
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    }],
                    "volumes": [
                        {"name": "a", "hostPath": {"path": "/var/a", "type": ""}},
                        {"name": "b", "hostPath": {"path": "/var/b", "type": "Directory"}},
                        {"name": "c", "emptyDir": {}},
                        {"name": "d", "emptyDir": {}},
                    ],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "terminationGracePeriodSeconds": 30,
                    "schedulerName": "default-scheduler",
                },
                "status": {"phase": "Pending"},
            }),
        ),
        (
            Namespace,
            json!({"metadata": metadata}),
            json!({"metadata": metadata, "status": {"phase": "Active"}}),
        ),
        (
            Node,
            json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
            json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi"}, "allocatable": {"cpu": "4", "memory": "8Gi"}}}),
        ),
        (
            Node,
            json!({"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"}}}),
            json!({"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"}}}),
        ),
        (
            CsiDriver,
            json!({"spec": {"attachRequired": false}}),
            json!({"spec": {
                "attachRequired": false, "podInfoOnMount": false, "requiresRepublish": false,
                "storageCapacity": false, "fsGroupPolicy": "ReadWriteOnceWithFSType",
                "volumeLifecycleModes": ["Persistent"],
            }}),
        ),
        (Event, event(), event()),
        // Malformed parts are left for validation to report.
        (
            PersistentVolume,
            json!({"spec": "fast"}),
            json!({"spec": "fast", "status": {"phase": "Pending"}}),
        ),
        (Pod, json!("not an object"), json!("not an object")),
    ];
    for (kind, body, expected) in cases {
        check_defaults(kind, body, expected);
    }
}

fn check_pull_policy(image: &str, expected: &str) {
    assert_eq!(pull_policy(image), expected, "{image}");
}

#[test]
fn pull_policies() {
    let cases = [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.local:5000/team/nginx", "Always"),
        ("registry.local:5000/team/nginx:1.27", "IfNotPresent"),
        ("nginx@sha256:0123abcd", "IfNotPresent"),
        ("nginx:latest@sha256:0123abcd", "Always"),
        ("", "IfNotPresent"),
    ];
    for (image, expected) in cases {
        check_pull_policy(image, expected);
    }
}

proptest! {
    /// Always exactly for `latest` or for neither tag nor digest, whatever
    /// the registry (ports included) and path.
    #[test]
    fn pull_policy_follows_the_tag(
        registry in prop::option::of("[a-z]{1,8}\\.local(:[0-9]{2,5})?"),
        path in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
        tag in prop::option::of(prop_oneof![Just("latest".to_string()), "[a-z0-9.]{1,8}"]),
        digest in prop::option::of("sha256:[0-9a-f]{8}"),
    ) {
        let mut image = registry.map(|r| format!("{r}/")).unwrap_or_default() + &path;
        if let Some(tag) = &tag {
            image = format!("{image}:{tag}");
        }
        if let Some(digest) = &digest {
            image = format!("{image}@{digest}");
        }
        let always = tag.as_deref() == Some("latest") || (tag.is_none() && digest.is_none());
        prop_assert_eq!(pull_policy(&image), if always { "Always" } else { "IfNotPresent" });
    }
}

fn check_access_modes(modes: &[&str], expected: &str) {
    let modes: Vec<String> = modes.iter().map(|m| m.to_string()).collect();
    assert_eq!(accessmodes_string(&modes), expected, "{modes:?}");
}

#[test]
fn access_mode_strings() {
    let cases: [(&[&str], &str); 6] = [
        (&[], ""),
        (&["ReadWriteOnce"], "RWO"),
        (&["ReadWriteMany", "ReadWriteOnce"], "RWO,RWX"),
        (
            &[
                "ReadWriteOncePod",
                "ReadOnlyMany",
                "ReadWriteOnce",
                "ReadWriteMany",
            ],
            "RWO,ROX,RWX,RWOP",
        ),
        (&["ReadOnlyMany", "ReadOnlyMany"], "ROX"),
        (&["Sometimes", "ReadWriteOncePod"], "RWOP"),
    ];
    for (modes, expected) in cases {
        check_access_modes(modes, expected);
    }
}

fn check_default_class(annotations: Value, expected: bool) {
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "fast", "annotations": annotations},
        "provisioner": "csi.strata.dev",
    }))
    .expect("a StorageClass");
    assert_eq!(is_default_class(&class), expected, "{annotations}");
}

#[test]
fn default_classes() {
    let cases = [
        (json!({}), false),
        (
            json!({"storageclass.kubernetes.io/is-default-class": "true"}),
            true,
        ),
        (
            json!({"storageclass.beta.kubernetes.io/is-default-class": "true"}),
            true,
        ),
        (
            json!({"storageclass.kubernetes.io/is-default-class": "True"}),
            false,
        ),
        (
            json!({"storageclass.kubernetes.io/is-default-class": "false"}),
            false,
        ),
        (
            json!({"storageclass.kubernetes.io/is-default-class": "false", "storageclass.beta.kubernetes.io/is-default-class": "true"}),
            true,
        ),
    ];
    for (annotations, expected) in cases {
        check_default_class(annotations, expected);
    }
}
