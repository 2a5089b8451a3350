//! The PV binder against upstream's cases (binder_test.go, index_test.go,
//! delete/recycle/provision tests), run to quiescence with the binder's
//! local runner: each table row gives the objects before and the
//! essentials expected after (phases, claimRef, volumeName, annotations,
//! capacity, events).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Map, Value, json};
use strata_kube::controllers::binder::{Action, Binder, Work, apply_locally, run_locally};

const NAMESPACE: &str = "default";
const BOUND_BY: (&str, &str) = ("pv.kubernetes.io/bound-by-controller", "yes");
const COMPLETED: (&str, &str) = ("pv.kubernetes.io/bind-completed", "yes");

fn now() -> jiff::Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

// ---- building objects from compact JSON --------------------------------

/// Deep-merges `patch` into `base`: objects merge key by key, anything
/// else (arrays included) replaces.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

fn build(mut base: Value, patches: &[Value]) -> Value {
    for patch in patches {
        merge(&mut base, patch);
    }
    base
}

/// An Available, Retain, RWO hostPath volume.
fn pv(name: &str, size: &str, patches: &[Value]) -> Value {
    let base = json!({
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": format!("/srv/{name}")},
        },
        "status": {"phase": "Available"},
    });
    build(base, patches)
}

/// A Pending RWO claim in `default` with UID `uid-<name>` and no class.
fn pvc(name: &str, size: &str, patches: &[Value]) -> Value {
    let base = json!({
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": format!("uid-{name}"), "resourceVersion": "1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        "status": {"phase": "Pending"},
    });
    build(base, patches)
}

fn storage_class(name: &str, provisioner: &str, patches: &[Value]) -> Value {
    let base = json!({
        "metadata": {"name": name, "resourceVersion": "1", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    });
    build(base, patches)
}

/// A pod using `claims`, scheduled to `node` (or not, if empty).
fn pod(name: &str, claims: &[&str], node: &str, phase: &str) -> Value {
    let volumes: Vec<Value> = claims
        .iter()
        .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    let mut spec = json!({"containers": [{"name": "app", "image": "busybox"}], "volumes": volumes});
    if !node.is_empty() {
        spec["nodeName"] = json!(node);
    }
    json!({
        "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "1"},
        "spec": spec,
        "status": {"phase": phase},
    })
}

fn claim_ref(claim: &str, uid: &str) -> Value {
    let mut reference =
        json!({"kind": "PersistentVolumeClaim", "namespace": NAMESPACE, "name": claim});
    if !uid.is_empty() {
        reference["uid"] = json!(uid);
    }
    json!({"spec": {"claimRef": reference}})
}

fn phase(phase: &str) -> Value {
    json!({"status": {"phase": phase}})
}

fn annotations(pairs: &[(&str, &str)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"metadata": {"annotations": map}})
}

fn class(name: &str) -> Value {
    json!({"spec": {"storageClassName": name}})
}

fn modes(modes: &[&str]) -> Value {
    json!({"spec": {"accessModes": modes}})
}

fn volume_name(name: &str) -> Value {
    json!({"spec": {"volumeName": name}})
}

fn volume_mode(mode: &str) -> Value {
    json!({"spec": {"volumeMode": mode}})
}

fn policy(policy: &str) -> Value {
    json!({"spec": {"persistentVolumeReclaimPolicy": policy}})
}

fn labels(pairs: &[(&str, &str)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"metadata": {"labels": map}})
}

fn match_labels(pairs: &[(&str, &str)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"spec": {"selector": {"matchLabels": map}}})
}

fn created(at: &str) -> Value {
    json!({"metadata": {"creationTimestamp": at}})
}

fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"))
}

// ---- what is compared ----------------------------------------------------

/// Annotations with the `pv.kubernetes.io/` prefix dropped, for brevity.
fn short_annotations(annotations: Option<&BTreeMap<String, String>>) -> Option<Value> {
    let map: Map<String, Value> = annotations?
        .iter()
        .map(|(k, v)| {
            (
                k.strip_prefix("pv.kubernetes.io/").unwrap_or(k).to_string(),
                json!(v),
            )
        })
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

/// Sets `key` only when there is a value, so expectations list only what
/// is there.
fn put(essentials: &mut Value, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        essentials[key] = value;
    }
}

fn volume_essentials(pv: &PersistentVolume) -> Value {
    let spec = pv.spec.as_ref().unwrap();
    let status = pv.status.as_ref();
    let mut e = json!({"name": pv.metadata.name});
    put(
        &mut e,
        "phase",
        status.and_then(|s| s.phase.clone()).map(Value::from),
    );
    let claim_ref = spec.claim_ref.as_ref();
    put(
        &mut e,
        "claim",
        claim_ref.and_then(|r| r.name.clone()).map(Value::from),
    );
    put(
        &mut e,
        "uid",
        claim_ref.and_then(|r| r.uid.clone()).map(Value::from),
    );
    put(
        &mut e,
        "annotations",
        short_annotations(pv.metadata.annotations.as_ref()),
    );
    put(
        &mut e,
        "message",
        status.and_then(|s| s.message.clone()).map(Value::from),
    );
    e
}

fn claim_essentials(claim: &PersistentVolumeClaim) -> Value {
    let spec = claim.spec.as_ref().unwrap();
    let status = claim.status.as_ref();
    let mut e = json!({"name": claim.metadata.name});
    put(
        &mut e,
        "phase",
        status.and_then(|s| s.phase.clone()).map(Value::from),
    );
    put(&mut e, "volume", spec.volume_name.clone().map(Value::from));
    put(
        &mut e,
        "class",
        spec.storage_class_name.clone().map(Value::from),
    );
    put(
        &mut e,
        "annotations",
        short_annotations(claim.metadata.annotations.as_ref()),
    );
    let capacity = status
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"));
    put(&mut e, "capacity", capacity.map(|q| json!(q.0)));
    e
}

/// A volume the controller bound to `claim` (whose UID is `uid-<claim>`).
fn bound_volume_essentials(name: &str, claim: &str) -> Value {
    json!({"name": name, "phase": "Bound", "claim": claim, "uid": format!("uid-{claim}"),
        "annotations": {"bound-by-controller": "yes"}})
}

/// A class-less claim the controller bound to `volume` of `capacity`.
fn bound_claim_essentials(name: &str, volume: &str, capacity: &str) -> Value {
    json!({"name": name, "phase": "Bound", "volume": volume, "capacity": capacity,
        "annotations": {"bind-completed": "yes", "bound-by-controller": "yes"}})
}

/// `Type Reason object: message`.
fn describe_event(action: &Action) -> String {
    let Action::Event {
        regarding,
        type_,
        reason,
        message,
    } = action
    else {
        panic!("not an event: {action:?}");
    };
    let object = regarding.name.as_deref().unwrap_or("");
    format!("{} {reason} {object}: {message}", type_.as_str())
}

/// Events as the runner records them: repeats folded into the first.
fn distinct_events(events: &[Action]) -> Vec<String> {
    let mut seen = HashSet::new();
    let described = events.iter().map(describe_event);
    described.filter(|e| seen.insert(e.clone())).collect()
}

/// An expected event is `Type Reason object` (any message) or the full
/// `Type Reason object: message`.
fn event_matches(actual: &str, expected: &str) -> bool {
    actual == expected || actual.starts_with(&format!("{expected}: "))
}

// ---- the table-driven check ----------------------------------------------

#[derive(Default)]
struct Case {
    name: &'static str,
    classes: Vec<Value>,
    pods: Vec<Value>,
    volumes: Vec<Value>,
    claims: Vec<Value>,
    expect_volumes: Vec<Value>,
    expect_claims: Vec<Value>,
    expect_events: Vec<&'static str>,
}

fn binder_with(case: &Case) -> Binder {
    let mut binder = Binder::new();
    for class in &case.classes {
        binder.upsert_class(typed::<StorageClass>(class));
    }
    for pod in &case.pods {
        binder.upsert_pod(&typed::<Pod>(pod));
    }
    for volume in &case.volumes {
        binder.upsert_volume(typed(volume));
    }
    for claim in &case.claims {
        binder.upsert_claim(typed(claim));
    }
    binder
}

/// Runs the binder over the case's objects until it has nothing left to
/// do, then compares every volume and claim and the distinct events.
fn check(case: Case) {
    let mut binder = binder_with(&case);
    let events =
        run_locally(&mut binder, now(), 10_000).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let volumes: Vec<Value> = binder.volumes().map(volume_essentials).collect();
    assert_eq!(volumes, case.expect_volumes, "{}: volumes", case.name);
    let claims: Vec<Value> = binder.claims().map(claim_essentials).collect();
    assert_eq!(claims, case.expect_claims, "{}: claims", case.name);
    let events = distinct_events(&events);
    let matched = events.len() == case.expect_events.len()
        && events
            .iter()
            .zip(&case.expect_events)
            .all(|(a, e)| event_matches(a, e));
    assert!(
        matched,
        "{}: events\n  got      {events:#?}\n  expected {:#?}",
        case.name, case.expect_events
    );
}

#[test]
fn unbound_claims() {
    let cases = vec![
        Case {
            name: "1-1 claim binds to a matching unbound volume",
            volumes: vec![pv("volume1-1", "10Gi", &[])],
            claims: vec![pvc("claim1-1", "1Gi", &[])],
            expect_volumes: vec![bound_volume_essentials("volume1-1", "claim1-1")],
            expect_claims: vec![bound_claim_essentials("claim1-1", "volume1-1", "10Gi")],
            ..Case::default()
        },
        Case {
            name: "1-2 no matching volume and no class: FailedBinding, Pending",
            volumes: vec![pv("volume1-2", "1Gi", &[])],
            claims: vec![pvc("claim1-2", "10Gi", &[])],
            expect_volumes: vec![json!({"name": "volume1-2", "phase": "Available"})],
            expect_claims: vec![json!({"name": "claim1-2", "phase": "Pending"})],
            expect_events: vec![
                "Normal FailedBinding claim1-2: no persistent volumes available for this claim and no storage class is set",
            ],
            ..Case::default()
        },
        Case {
            name: "1-3 a claim wrongly marked Bound without a volume is reset to Pending",
            claims: vec![pvc(
                "claim1-3",
                "10Gi",
                &[
                    phase("Bound"),
                    json!({"status": {"capacity": {"storage": "10Gi"}}}),
                ],
            )],
            expect_claims: vec![json!({"name": "claim1-3", "phase": "Pending"})],
            expect_events: vec!["Normal FailedBinding claim1-3"],
            ..Case::default()
        },
        Case {
            name: "1-4 claim binds to a volume pre-bound to it by name; the user's pre-binding gets no bound-by-controller",
            volumes: vec![pv("volume1-4", "1Gi", &[claim_ref("claim1-4", "")])],
            claims: vec![pvc("claim1-4", "1Gi", &[])],
            expect_volumes: vec![
                json!({"name": "volume1-4", "phase": "Bound", "claim": "claim1-4", "uid": "uid-claim1-4"}),
            ],
            expect_claims: vec![bound_claim_essentials("claim1-4", "volume1-4", "1Gi")],
            ..Case::default()
        },
        Case {
            name: "1-5 claim binds to a volume pre-bound to it with its UID and already Bound",
            volumes: vec![pv(
                "volume1-5",
                "1Gi",
                &[claim_ref("claim1-5", "uid-claim1-5"), phase("Bound")],
            )],
            claims: vec![pvc("claim1-5", "1Gi", &[])],
            expect_volumes: vec![
                json!({"name": "volume1-5", "phase": "Bound", "claim": "claim1-5", "uid": "uid-claim1-5"}),
            ],
            expect_claims: vec![bound_claim_essentials("claim1-5", "volume1-5", "1Gi")],
            ..Case::default()
        },
        Case {
            name: "1-6 claim does not take a volume pre-bound to another claim",
            volumes: vec![pv("volume1-6", "10Gi", &[claim_ref("claim1-6-other", "")])],
            claims: vec![pvc("claim1-6", "1Gi", &[])],
            expect_volumes: vec![
                json!({"name": "volume1-6", "phase": "Available", "claim": "claim1-6-other"}),
            ],
            expect_claims: vec![json!({"name": "claim1-6", "phase": "Pending"})],
            expect_events: vec!["Normal FailedBinding claim1-6"],
            ..Case::default()
        },
        Case {
            name: "1-7 claim binds to the smallest volume that fits and reports its capacity",
            volumes: vec![
                pv("volume1-7-big", "100Gi", &[]),
                pv("volume1-7-small", "5Gi", &[]),
                pv("volume1-7-tiny", "500Mi", &[]),
            ],
            claims: vec![pvc("claim1-7", "1Gi", &[])],
            expect_volumes: vec![
                json!({"name": "volume1-7-big", "phase": "Available"}),
                bound_volume_essentials("volume1-7-small", "claim1-7"),
                json!({"name": "volume1-7-tiny", "phase": "Available"}),
            ],
            expect_claims: vec![bound_claim_essentials("claim1-7", "volume1-7-small", "5Gi")],
            ..Case::default()
        },
        Case {
            name: "1-8 quantities compare exactly: 1024Mi fits 1Gi, 1G does not",
            volumes: vec![
                pv("volume1-8-decimal", "1G", &[]),
                pv("volume1-8-binary", "1024Mi", &[]),
            ],
            claims: vec![pvc("claim1-8", "1Gi", &[])],
            expect_volumes: vec![
                bound_volume_essentials("volume1-8-binary", "claim1-8"),
                json!({"name": "volume1-8-decimal", "phase": "Available"}),
            ],
            expect_claims: vec![bound_claim_essentials(
                "claim1-8",
                "volume1-8-binary",
                "1024Mi",
            )],
            ..Case::default()
        },
        Case {
            name: "1-9 a Pending volume without claimRef becomes Available and is then bound",
            volumes: vec![pv("volume1-9", "1Gi", &[phase("Pending")])],
            claims: vec![pvc("claim1-9", "1Gi", &[])],
            expect_volumes: vec![bound_volume_essentials("volume1-9", "claim1-9")],
            expect_claims: vec![bound_claim_essentials("claim1-9", "volume1-9", "1Gi")],
            ..Case::default()
        },
        Case {
            name: "1-10 a volume being deleted is never matched",
            volumes: vec![pv(
                "volume1-10",
                "1Gi",
                &[
                    json!({"metadata": {"deletionTimestamp": "2025-06-01T00:00:00Z", "finalizers": ["kubernetes.io/pv-protection"]}}),
                ],
            )],
            claims: vec![pvc("claim1-10", "1Gi", &[])],
            expect_volumes: vec![json!({"name": "volume1-10", "phase": "Available"})],
            expect_claims: vec![json!({"name": "claim1-10", "phase": "Pending"})],
            expect_events: vec!["Normal FailedBinding claim1-10"],
            ..Case::default()
        },
        Case {
            name: "1-11 two claims, one volume: the first claim processed wins",
            volumes: vec![pv("volume1-11", "1Gi", &[])],
            claims: vec![
                pvc("claim1-11-a", "1Gi", &[]),
                pvc("claim1-11-b", "1Gi", &[]),
            ],
            expect_volumes: vec![bound_volume_essentials("volume1-11", "claim1-11-a")],
            expect_claims: vec![
                bound_claim_essentials("claim1-11-a", "volume1-11", "1Gi"),
                json!({"name": "claim1-11-b", "phase": "Pending"}),
            ],
            expect_events: vec!["Normal FailedBinding claim1-11-b"],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn claims_naming_their_volume() {
    let cases = vec![
        Case {
            name: "2-1 the named volume does not exist: Pending, no event",
            claims: vec![pvc("claim2-1", "10Gi", &[volume_name("volume2-1")])],
            expect_claims: vec![
                json!({"name": "claim2-1", "phase": "Pending", "volume": "volume2-1"}),
            ],
            ..Case::default()
        },
        Case {
            name: "2-2 the named volume does not exist and the claim says Bound: reset to Pending",
            claims: vec![pvc(
                "claim2-2",
                "10Gi",
                &[volume_name("volume2-2"), phase("Bound")],
            )],
            expect_claims: vec![
                json!({"name": "claim2-2", "phase": "Pending", "volume": "volume2-2"}),
            ],
            ..Case::default()
        },
        Case {
            name: "2-3 the named volume is unclaimed: the volume gets bound-by-controller, the claim only bind-completed",
            volumes: vec![pv("volume2-3", "10Gi", &[])],
            claims: vec![pvc("claim2-3", "1Gi", &[volume_name("volume2-3")])],
            expect_volumes: vec![bound_volume_essentials("volume2-3", "claim2-3")],
            expect_claims: vec![
                json!({"name": "claim2-3", "phase": "Bound", "volume": "volume2-3", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "2-4 the named volume is pre-bound to the claim by name: bound without checks",
            volumes: vec![pv("volume2-4", "1Gi", &[claim_ref("claim2-4", "")])],
            claims: vec![pvc("claim2-4", "10Gi", &[volume_name("volume2-4")])],
            expect_volumes: vec![
                json!({"name": "volume2-4", "phase": "Bound", "claim": "claim2-4", "uid": "uid-claim2-4"}),
            ],
            expect_claims: vec![
                json!({"name": "claim2-4", "phase": "Bound", "volume": "volume2-4", "annotations": {"bind-completed": "yes"}, "capacity": "1Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "2-5 the named volume is bound to the claim with its UID",
            volumes: vec![pv(
                "volume2-5",
                "10Gi",
                &[claim_ref("claim2-5", "uid-claim2-5"), phase("Bound")],
            )],
            claims: vec![pvc("claim2-5", "1Gi", &[volume_name("volume2-5")])],
            expect_volumes: vec![
                json!({"name": "volume2-5", "phase": "Bound", "claim": "claim2-5", "uid": "uid-claim2-5"}),
            ],
            expect_claims: vec![
                json!({"name": "claim2-5", "phase": "Bound", "volume": "volume2-5", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "2-6 the named volume is bound to another claim: FailedBinding, Pending",
            volumes: vec![pv(
                "volume2-6",
                "10Gi",
                &[claim_ref("claim2-6-other", "uid-other"), phase("Bound")],
            )],
            claims: vec![pvc("claim2-6", "1Gi", &[volume_name("volume2-6")])],
            expect_volumes: vec![
                json!({"name": "volume2-6", "phase": "Released", "claim": "claim2-6-other", "uid": "uid-other"}),
            ],
            expect_claims: vec![
                json!({"name": "claim2-6", "phase": "Pending", "volume": "volume2-6"}),
            ],
            expect_events: vec![
                "Warning FailedBinding claim2-6: volume \"volume2-6\" already bound to a different claim.",
            ],
            ..Case::default()
        },
        Case {
            name: "2-7 same, claim already marked bound-by-controller: event only, status untouched",
            volumes: vec![pv(
                "volume2-7",
                "10Gi",
                &[claim_ref("claim2-7-other", ""), phase("Available")],
            )],
            claims: vec![pvc(
                "claim2-7",
                "1Gi",
                &[
                    volume_name("volume2-7"),
                    annotations(&[BOUND_BY]),
                    phase("Bound"),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume2-7", "phase": "Available", "claim": "claim2-7-other"}),
            ],
            expect_claims: vec![
                json!({"name": "claim2-7", "phase": "Bound", "volume": "volume2-7", "annotations": {"bound-by-controller": "yes"}}),
            ],
            expect_events: vec!["Warning FailedBinding claim2-7"],
            ..Case::default()
        },
        Case {
            name: "2-8 a named volume is bound even if the claim's selector does not match it",
            volumes: vec![pv("volume2-8", "10Gi", &[labels(&[("tier", "gold")])])],
            claims: vec![pvc(
                "claim2-8",
                "1Gi",
                &[
                    volume_name("volume2-8"),
                    match_labels(&[("tier", "silver")]),
                ],
            )],
            expect_volumes: vec![bound_volume_essentials("volume2-8", "claim2-8")],
            expect_claims: vec![
                json!({"name": "claim2-8", "phase": "Bound", "volume": "volume2-8", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "2-9 the named volume is too small",
            volumes: vec![pv("volume2-9", "1Gi", &[])],
            claims: vec![pvc("claim2-9", "10Gi", &[volume_name("volume2-9")])],
            expect_volumes: vec![json!({"name": "volume2-9", "phase": "Available"})],
            expect_claims: vec![
                json!({"name": "claim2-9", "phase": "Pending", "volume": "volume2-9"}),
            ],
            expect_events: vec![
                "Warning VolumeMismatch claim2-9: Cannot bind to requested volume \"volume2-9\": requested PV is too small",
            ],
            ..Case::default()
        },
        Case {
            name: "2-10 the named volume has another class",
            volumes: vec![pv("volume2-10", "10Gi", &[class("gold")])],
            claims: vec![pvc(
                "claim2-10",
                "1Gi",
                &[volume_name("volume2-10"), class("silver")],
            )],
            expect_volumes: vec![json!({"name": "volume2-10", "phase": "Available"})],
            expect_claims: vec![
                json!({"name": "claim2-10", "phase": "Pending", "volume": "volume2-10", "class": "silver"}),
            ],
            expect_events: vec![
                "Warning VolumeMismatch claim2-10: Cannot bind to requested volume \"volume2-10\": storageClassName does not match",
            ],
            ..Case::default()
        },
        Case {
            name: "14-5-2 the named volume has another volumeMode",
            volumes: vec![pv("volume14-5-2", "10Gi", &[volume_mode("Block")])],
            claims: vec![pvc("claim14-5-2", "1Gi", &[volume_name("volume14-5-2")])],
            expect_volumes: vec![json!({"name": "volume14-5-2", "phase": "Available"})],
            expect_claims: vec![
                json!({"name": "claim14-5-2", "phase": "Pending", "volume": "volume14-5-2"}),
            ],
            expect_events: vec![
                "Warning VolumeMismatch claim14-5-2: Cannot bind to requested volume \"volume14-5-2\": incompatible volumeMode",
            ],
            ..Case::default()
        },
        Case {
            name: "14-8 the named volume lacks a requested access mode",
            volumes: vec![pv("volume14-8", "10Gi", &[])],
            claims: vec![pvc(
                "claim14-8",
                "1Gi",
                &[volume_name("volume14-8"), modes(&["ReadWriteMany"])],
            )],
            expect_volumes: vec![json!({"name": "volume14-8", "phase": "Available"})],
            expect_claims: vec![
                json!({"name": "claim14-8", "phase": "Pending", "volume": "volume14-8"}),
            ],
            expect_events: vec![
                "Warning VolumeMismatch claim14-8: Cannot bind to requested volume \"volume14-8\": incompatible accessMode",
            ],
            ..Case::default()
        },
        Case {
            name: "2-11 the named volume is being deleted",
            volumes: vec![pv(
                "volume2-11",
                "10Gi",
                &[json!({"metadata": {"deletionTimestamp": "2025-06-01T00:00:00Z"}})],
            )],
            claims: vec![pvc("claim2-11", "1Gi", &[volume_name("volume2-11")])],
            expect_volumes: vec![json!({"name": "volume2-11", "phase": "Available"})],
            expect_claims: vec![
                json!({"name": "claim2-11", "phase": "Pending", "volume": "volume2-11"}),
            ],
            expect_events: vec![
                "Warning VolumeMismatch claim2-11: Cannot bind to requested volume \"volume2-11\": the volume is marked for deletion \"volume2-11\"",
            ],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn bound_claims() {
    let cases = vec![
        Case {
            name: "3-1 a bound claim without volumeName is Lost",
            claims: vec![pvc(
                "claim3-1",
                "10Gi",
                &[annotations(&[COMPLETED]), phase("Bound")],
            )],
            expect_claims: vec![
                json!({"name": "claim3-1", "phase": "Lost", "annotations": {"bind-completed": "yes"}}),
            ],
            expect_events: vec![
                "Warning ClaimLost claim3-1: Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            ],
            ..Case::default()
        },
        Case {
            name: "3-2 a bound claim whose volume is gone is Lost",
            claims: vec![pvc(
                "claim3-2",
                "10Gi",
                &[
                    volume_name("volume3-2"),
                    annotations(&[COMPLETED]),
                    phase("Bound"),
                ],
            )],
            expect_claims: vec![
                json!({"name": "claim3-2", "phase": "Lost", "volume": "volume3-2", "annotations": {"bind-completed": "yes"}}),
            ],
            expect_events: vec![
                "Warning ClaimLost claim3-2: Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            ],
            ..Case::default()
        },
        Case {
            name: "3-3 a bound claim whose volume lost its claimRef binds it again",
            volumes: vec![pv("volume3-3", "10Gi", &[phase("Available")])],
            claims: vec![pvc(
                "claim3-3",
                "10Gi",
                &[
                    volume_name("volume3-3"),
                    annotations(&[COMPLETED]),
                    phase("Pending"),
                ],
            )],
            expect_volumes: vec![bound_volume_essentials("volume3-3", "claim3-3")],
            expect_claims: vec![
                json!({"name": "claim3-3", "phase": "Bound", "volume": "volume3-3", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "3-5 a bound pair with wrong phases is repaired",
            volumes: vec![pv(
                "volume3-5",
                "10Gi",
                &[claim_ref("claim3-5", "uid-claim3-5"), phase("Available")],
            )],
            claims: vec![pvc(
                "claim3-5",
                "10Gi",
                &[
                    volume_name("volume3-5"),
                    annotations(&[COMPLETED]),
                    phase("Pending"),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume3-5", "phase": "Bound", "claim": "claim3-5", "uid": "uid-claim3-5"}),
            ],
            expect_claims: vec![
                json!({"name": "claim3-5", "phase": "Bound", "volume": "volume3-5", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "3-6 a bound claim whose volume points at another claim is misbound",
            volumes: vec![pv(
                "volume3-6",
                "10Gi",
                &[claim_ref("claim3-6-other", "uid-other"), phase("Bound")],
            )],
            claims: vec![
                pvc(
                    "claim3-6",
                    "10Gi",
                    &[
                        volume_name("volume3-6"),
                        annotations(&[COMPLETED]),
                        phase("Bound"),
                    ],
                ),
                pvc(
                    "claim3-6-other",
                    "10Gi",
                    &[
                        json!({"metadata": {"uid": "uid-other"}}),
                        volume_name("volume3-6"),
                        annotations(&[COMPLETED]),
                        phase("Bound"),
                    ],
                ),
            ],
            expect_volumes: vec![
                json!({"name": "volume3-6", "phase": "Bound", "claim": "claim3-6-other", "uid": "uid-other"}),
            ],
            expect_claims: vec![
                json!({"name": "claim3-6", "phase": "Lost", "volume": "volume3-6", "annotations": {"bind-completed": "yes"}}),
                json!({"name": "claim3-6-other", "phase": "Bound", "volume": "volume3-6", "annotations": {"bind-completed": "yes"}}),
            ],
            expect_events: vec![
                "Warning ClaimMisbound claim3-6: Two claims are bound to the same volume, this one is bound incorrectly",
            ],
            ..Case::default()
        },
        Case {
            name: "3-7 a Lost claim is not reported again",
            claims: vec![pvc(
                "claim3-7",
                "10Gi",
                &[
                    volume_name("volume3-7"),
                    annotations(&[COMPLETED]),
                    phase("Lost"),
                ],
            )],
            expect_claims: vec![
                json!({"name": "claim3-7", "phase": "Lost", "volume": "volume3-7", "annotations": {"bind-completed": "yes"}}),
            ],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn volume_sync() {
    let cases = vec![
        Case {
            name: "4-1 an unclaimed Pending volume becomes Available",
            volumes: vec![pv("volume4-1", "10Gi", &[phase("Pending")])],
            expect_volumes: vec![json!({"name": "volume4-1", "phase": "Available"})],
            ..Case::default()
        },
        Case {
            name: "4-2 a volume reserved for a claim name becomes Available",
            volumes: vec![pv(
                "volume4-2",
                "10Gi",
                &[claim_ref("claim4-2", ""), phase("Pending")],
            )],
            expect_volumes: vec![
                json!({"name": "volume4-2", "phase": "Available", "claim": "claim4-2"}),
            ],
            ..Case::default()
        },
        Case {
            name: "4-3 a volume whose claim is gone is Released (Retain keeps it so)",
            volumes: vec![pv(
                "volume4-3",
                "10Gi",
                &[claim_ref("claim4-3", "uid-claim4-3"), phase("Bound")],
            )],
            expect_volumes: vec![
                json!({"name": "volume4-3", "phase": "Released", "claim": "claim4-3", "uid": "uid-claim4-3"}),
            ],
            ..Case::default()
        },
        Case {
            name: "4-4 a claim of the same name but another UID does not hold the volume",
            volumes: vec![pv(
                "volume4-4",
                "10Gi",
                &[claim_ref("claim4-4", "uid-old"), phase("Bound")],
            )],
            claims: vec![pvc("claim4-4", "1Gi", &[])],
            expect_volumes: vec![
                json!({"name": "volume4-4", "phase": "Released", "claim": "claim4-4", "uid": "uid-old"}),
            ],
            expect_claims: vec![json!({"name": "claim4-4", "phase": "Pending"})],
            expect_events: vec!["Normal FailedBinding claim4-4"],
            ..Case::default()
        },
        Case {
            name: "4-5 a volume bound to an existing unbound claim gets it bound",
            volumes: vec![pv(
                "volume4-5",
                "10Gi",
                &[
                    claim_ref("claim4-5", "uid-claim4-5"),
                    phase("Bound"),
                    annotations(&[BOUND_BY]),
                ],
            )],
            claims: vec![pvc("claim4-5", "10Gi", &[])],
            expect_volumes: vec![bound_volume_essentials("volume4-5", "claim4-5")],
            expect_claims: vec![bound_claim_essentials("claim4-5", "volume4-5", "10Gi")],
            ..Case::default()
        },
        Case {
            name: "4-6 a volume bound to a claim that points back becomes Bound",
            volumes: vec![pv(
                "volume4-6",
                "10Gi",
                &[claim_ref("claim4-6", "uid-claim4-6"), phase("Available")],
            )],
            claims: vec![pvc(
                "claim4-6",
                "10Gi",
                &[
                    volume_name("volume4-6"),
                    annotations(&[COMPLETED]),
                    phase("Bound"),
                    json!({"status": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume4-6", "phase": "Bound", "claim": "claim4-6", "uid": "uid-claim4-6"}),
            ],
            expect_claims: vec![
                json!({"name": "claim4-6", "phase": "Bound", "volume": "volume4-6", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "4-7 a controller-bound volume whose claim is bound elsewhere is unbound",
            volumes: vec![
                pv(
                    "volume4-7",
                    "10Gi",
                    &[
                        claim_ref("claim4-7", "uid-claim4-7"),
                        phase("Bound"),
                        annotations(&[BOUND_BY]),
                    ],
                ),
                pv(
                    "volume4-7-other",
                    "10Gi",
                    &[claim_ref("claim4-7", "uid-claim4-7"), phase("Bound")],
                ),
            ],
            claims: vec![pvc(
                "claim4-7",
                "10Gi",
                &[
                    volume_name("volume4-7-other"),
                    annotations(&[COMPLETED]),
                    phase("Bound"),
                    json!({"status": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume4-7", "phase": "Available"}),
                json!({"name": "volume4-7-other", "phase": "Bound", "claim": "claim4-7", "uid": "uid-claim4-7"}),
            ],
            expect_claims: vec![
                json!({"name": "claim4-7", "phase": "Bound", "volume": "volume4-7-other", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "4-8 a user-pre-bound volume whose claim is bound elsewhere keeps its reservation",
            volumes: vec![
                pv(
                    "volume4-8",
                    "10Gi",
                    &[claim_ref("claim4-8", "uid-claim4-8"), phase("Bound")],
                ),
                pv(
                    "volume4-8-other",
                    "10Gi",
                    &[claim_ref("claim4-8", "uid-claim4-8"), phase("Bound")],
                ),
            ],
            claims: vec![pvc(
                "claim4-8",
                "10Gi",
                &[
                    volume_name("volume4-8-other"),
                    annotations(&[COMPLETED]),
                    phase("Bound"),
                    json!({"status": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume4-8", "phase": "Available", "claim": "claim4-8"}),
                json!({"name": "volume4-8-other", "phase": "Bound", "claim": "claim4-8", "uid": "uid-claim4-8"}),
            ],
            expect_claims: vec![
                json!({"name": "claim4-8", "phase": "Bound", "volume": "volume4-8-other", "annotations": {"bind-completed": "yes"}, "capacity": "10Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "4-9 claim and volume disagree on volumeMode: VolumeMismatch on both, nothing bound",
            volumes: vec![pv(
                "volume4-9",
                "10Gi",
                &[
                    claim_ref("claim4-9", "uid-claim4-9"),
                    volume_mode("Block"),
                    phase("Bound"),
                ],
            )],
            claims: vec![pvc("claim4-9", "10Gi", &[class("")])],
            expect_volumes: vec![
                json!({"name": "volume4-9", "phase": "Bound", "claim": "claim4-9", "uid": "uid-claim4-9"}),
            ],
            expect_claims: vec![json!({"name": "claim4-9", "phase": "Pending", "class": ""})],
            expect_events: vec![
                "Warning VolumeMismatch volume4-9: Cannot bind PersistentVolume to requested PersistentVolumeClaim \"claim4-9\" due to incompatible volumeMode.",
                "Warning VolumeMismatch claim4-9: Cannot bind PersistentVolume \"volume4-9\" to requested PersistentVolumeClaim due to incompatible volumeMode.",
                "Normal FailedBinding claim4-9",
            ],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

/// A volume whose claim is gone, with a reclaim policy and extra patches.
fn released(name: &str, reclaim: &str, patches: &[Value]) -> Value {
    let mut all = vec![
        claim_ref("gone", "uid-gone"),
        phase("Bound"),
        policy(reclaim),
    ];
    all.extend_from_slice(patches);
    pv(name, "1Gi", &all)
}

#[test]
fn reclaim_policies() {
    let cases = vec![
        Case {
            name: "Retain: Released, and never matched again, not even by a new claim of the same name",
            volumes: vec![released("volume-retain", "Retain", &[])],
            claims: vec![pvc(
                "gone",
                "1Gi",
                &[json!({"metadata": {"uid": "uid-new"}})],
            )],
            expect_volumes: vec![
                json!({"name": "volume-retain", "phase": "Released", "claim": "gone", "uid": "uid-gone"}),
            ],
            expect_claims: vec![json!({"name": "gone", "phase": "Pending"})],
            expect_events: vec!["Normal FailedBinding gone"],
            ..Case::default()
        },
        Case {
            name: "8-10 Delete by an external provisioner: left Released for it",
            volumes: vec![released(
                "volume-external",
                "Delete",
                &[annotations(&[(
                    "pv.kubernetes.io/provisioned-by",
                    "csi.strata.dev",
                )])],
            )],
            expect_volumes: vec![
                json!({"name": "volume-external", "phase": "Released", "claim": "gone", "uid": "uid-gone", "annotations": {"provisioned-by": "csi.strata.dev"}}),
            ],
            ..Case::default()
        },
        Case {
            name: "Delete of a CSI volume made by hand: left Released for the provisioner controller",
            volumes: vec![released(
                "volume-csi",
                "Delete",
                &[
                    json!({"spec": {"hostPath": null, "csi": {"driver": "csi.strata.dev", "volumeHandle": "h1"}}}),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume-csi", "phase": "Released", "claim": "gone", "uid": "uid-gone"}),
            ],
            ..Case::default()
        },
        Case {
            name: "Delete with no deleter (hostPath): Failed",
            volumes: vec![released("volume-hostpath", "Delete", &[])],
            expect_volumes: vec![
                json!({"name": "volume-hostpath", "phase": "Failed", "claim": "gone", "uid": "uid-gone", "message": "error getting deleter volume plugin for volume \"volume-hostpath\": no deletable volume plugin matched"}),
            ],
            expect_events: vec![
                "Warning VolumeFailedDelete volume-hostpath: error getting deleter volume plugin for volume \"volume-hostpath\": no deletable volume plugin matched",
            ],
            ..Case::default()
        },
        Case {
            name: "Delete of a volume from an unknown in-tree plugin: Failed",
            volumes: vec![released(
                "volume-intree",
                "Delete",
                &[annotations(&[(
                    "pv.kubernetes.io/provisioned-by",
                    "kubernetes.io/gce-pd",
                )])],
            )],
            expect_volumes: vec![
                json!({"name": "volume-intree", "phase": "Failed", "claim": "gone", "uid": "uid-gone", "annotations": {"provisioned-by": "kubernetes.io/gce-pd"}, "message": "no volume plugin matched name: kubernetes.io/gce-pd"}),
            ],
            expect_events: vec![
                "Warning VolumeFailedDelete volume-intree: no volume plugin matched name: kubernetes.io/gce-pd",
            ],
            ..Case::default()
        },
        Case {
            name: "a volume already Failed is not reported again",
            volumes: vec![released("volume-failed", "Delete", &[phase("Failed")])],
            expect_volumes: vec![
                json!({"name": "volume-failed", "phase": "Failed", "claim": "gone", "uid": "uid-gone"}),
            ],
            ..Case::default()
        },
        Case {
            name: "Recycle without a recycler: Failed",
            volumes: vec![released("volume-recycle", "Recycle", &[])],
            expect_volumes: vec![
                json!({"name": "volume-recycle", "phase": "Failed", "claim": "gone", "uid": "uid-gone", "message": "No recycler plugin found for the volume!"}),
            ],
            expect_events: vec![
                "Warning VolumeFailedRecycle volume-recycle: No recycler plugin found for the volume!",
            ],
            ..Case::default()
        },
        Case {
            name: "Recycle while pods still use the claim: Released, Normal event",
            pods: vec![
                pod("pod-a", &["gone"], "node1", "Running"),
                pod("pod-done", &["gone"], "node1", "Succeeded"),
            ],
            volumes: vec![released("volume-busy", "Recycle", &[])],
            expect_volumes: vec![
                json!({"name": "volume-busy", "phase": "Released", "claim": "gone", "uid": "uid-gone"}),
            ],
            expect_events: vec![
                "Normal VolumeFailedRecycle volume-busy: Volume is used by pods: default/pod-a",
            ],
            ..Case::default()
        },
        Case {
            name: "an unknown reclaim policy: Failed",
            volumes: vec![released("volume-odd", "Shred", &[])],
            expect_volumes: vec![
                json!({"name": "volume-odd", "phase": "Failed", "claim": "gone", "uid": "uid-gone", "message": "Volume has unrecognized PersistentVolumeReclaimPolicy"}),
            ],
            expect_events: vec![
                "Warning VolumeUnknownReclaimPolicy volume-odd: Volume has unrecognized PersistentVolumeReclaimPolicy",
            ],
            ..Case::default()
        },
        Case {
            name: "8-12 a provisioned Delete volume whose claim bound elsewhere is Released for deletion",
            volumes: vec![
                pv(
                    "volume-loser",
                    "1Gi",
                    &[
                        claim_ref("claim-race", "uid-claim-race"),
                        phase("Bound"),
                        policy("Delete"),
                        annotations(&[("pv.kubernetes.io/provisioned-by", "csi.strata.dev")]),
                    ],
                ),
                pv(
                    "volume-winner",
                    "1Gi",
                    &[claim_ref("claim-race", "uid-claim-race"), phase("Bound")],
                ),
            ],
            claims: vec![pvc(
                "claim-race",
                "1Gi",
                &[
                    volume_name("volume-winner"),
                    annotations(&[COMPLETED]),
                    phase("Bound"),
                    json!({"status": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume-loser", "phase": "Released", "claim": "claim-race", "uid": "uid-claim-race", "annotations": {"provisioned-by": "csi.strata.dev"}}),
                json!({"name": "volume-winner", "phase": "Bound", "claim": "claim-race", "uid": "uid-claim-race"}),
            ],
            expect_claims: vec![
                json!({"name": "claim-race", "phase": "Bound", "volume": "volume-winner", "annotations": {"bind-completed": "yes"}, "capacity": "1Gi"}),
            ],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

const PROVISIONER_ANNOTATIONS: [(&str, &str); 2] = [
    (
        "volume.beta.kubernetes.io/storage-provisioner",
        "csi.strata.dev",
    ),
    ("volume.kubernetes.io/storage-provisioner", "csi.strata.dev"),
];

#[test]
fn provisioning_and_classes() {
    let external = || storage_class("fast", "csi.strata.dev", &[]);
    let default = |name: &str| {
        storage_class(
            name,
            "csi.strata.dev",
            &[annotations(&[(
                "storageclass.kubernetes.io/is-default-class",
                "true",
            )])],
        )
    };
    let cases = vec![
        Case {
            name: "11-1 a claim of an external provisioner's class is handed to it",
            classes: vec![external()],
            claims: vec![pvc("claim11-1", "1Gi", &[class("fast")])],
            expect_claims: vec![
                json!({"name": "claim11-1", "phase": "Pending", "class": "fast", "annotations": {
                    "volume.beta.kubernetes.io/storage-provisioner": "csi.strata.dev",
                    "volume.kubernetes.io/storage-provisioner": "csi.strata.dev",
                }}),
            ],
            expect_events: vec![
                "Normal ExternalProvisioning claim11-1: Waiting for a volume to be created either by the external provisioner 'csi.strata.dev' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
            ],
            ..Case::default()
        },
        Case {
            name: "a claim of a class that does not exist: ProvisioningFailed",
            claims: vec![pvc("claim-noclass", "1Gi", &[class("missing")])],
            expect_claims: vec![
                json!({"name": "claim-noclass", "phase": "Pending", "class": "missing"}),
            ],
            expect_events: vec![
                "Warning ProvisioningFailed claim-noclass: storageclass.storage.k8s.io \"missing\" not found",
            ],
            ..Case::default()
        },
        Case {
            name: "a class name without a StorageClass object still binds statically",
            volumes: vec![pv("volume-named", "1Gi", &[class("missing")])],
            claims: vec![pvc("claim-named", "1Gi", &[class("missing")])],
            expect_volumes: vec![bound_volume_essentials("volume-named", "claim-named")],
            expect_claims: vec![
                json!({"name": "claim-named", "phase": "Bound", "volume": "volume-named", "class": "missing", "annotations": {"bind-completed": "yes", "bound-by-controller": "yes"}, "capacity": "1Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "no-provisioner: ProvisioningFailed",
            classes: vec![storage_class("local", "kubernetes.io/no-provisioner", &[])],
            claims: vec![pvc("claim-local", "1Gi", &[class("local")])],
            expect_claims: vec![
                json!({"name": "claim-local", "phase": "Pending", "class": "local"}),
            ],
            expect_events: vec![
                "Warning ProvisioningFailed claim-local: no volume plugin matched name: kubernetes.io/no-provisioner",
            ],
            ..Case::default()
        },
        Case {
            name: "a provisioned volume pre-bound with the claim's UID is bound",
            classes: vec![external()],
            volumes: vec![pv(
                "pvc-uid-claim-prov",
                "1Gi",
                &[
                    class("fast"),
                    claim_ref("claim-prov", "uid-claim-prov"),
                    phase("Pending"),
                    policy("Delete"),
                    annotations(&[("pv.kubernetes.io/provisioned-by", "csi.strata.dev")]),
                ],
            )],
            claims: vec![pvc(
                "claim-prov",
                "1Gi",
                &[class("fast"), annotations(&PROVISIONER_ANNOTATIONS)],
            )],
            expect_volumes: vec![
                json!({"name": "pvc-uid-claim-prov", "phase": "Bound", "claim": "claim-prov", "uid": "uid-claim-prov", "annotations": {"provisioned-by": "csi.strata.dev"}}),
            ],
            expect_claims: vec![
                json!({"name": "claim-prov", "phase": "Bound", "volume": "pvc-uid-claim-prov", "class": "fast", "annotations": {
                "bind-completed": "yes", "bound-by-controller": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": "csi.strata.dev",
                "volume.kubernetes.io/storage-provisioner": "csi.strata.dev",
            }, "capacity": "1Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "class \"\" only binds class-less volumes",
            volumes: vec![
                pv("volume-gold", "1Gi", &[class("gold")]),
                pv("volume-plain", "5Gi", &[]),
            ],
            claims: vec![pvc("claim-empty", "1Gi", &[class("")])],
            expect_volumes: vec![
                json!({"name": "volume-gold", "phase": "Available"}),
                bound_volume_essentials("volume-plain", "claim-empty"),
            ],
            expect_claims: vec![
                json!({"name": "claim-empty", "phase": "Bound", "volume": "volume-plain", "class": "", "annotations": {"bind-completed": "yes", "bound-by-controller": "yes"}, "capacity": "5Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "a named class never gets a class-less volume",
            classes: vec![storage_class("gold", "kubernetes.io/no-provisioner", &[])],
            volumes: vec![pv("volume-plain", "5Gi", &[])],
            claims: vec![pvc("claim-gold", "1Gi", &[class("gold")])],
            expect_volumes: vec![json!({"name": "volume-plain", "phase": "Available"})],
            expect_claims: vec![json!({"name": "claim-gold", "phase": "Pending", "class": "gold"})],
            expect_events: vec!["Warning ProvisioningFailed claim-gold"],
            ..Case::default()
        },
        Case {
            name: "the beta class annotation wins over storageClassName",
            volumes: vec![
                pv("volume-gold", "1Gi", &[class("gold")]),
                pv("volume-silver", "1Gi", &[class("silver")]),
            ],
            claims: vec![pvc(
                "claim-beta",
                "1Gi",
                &[
                    class("silver"),
                    annotations(&[("volume.beta.kubernetes.io/storage-class", "gold")]),
                ],
            )],
            expect_volumes: vec![
                bound_volume_essentials("volume-gold", "claim-beta"),
                json!({"name": "volume-silver", "phase": "Available"}),
            ],
            expect_claims: vec![
                json!({"name": "claim-beta", "phase": "Bound", "volume": "volume-gold", "class": "silver", "annotations": {
                "bind-completed": "yes", "bound-by-controller": "yes", "volume.beta.kubernetes.io/storage-class": "gold",
            }, "capacity": "1Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "unset class with no default binds a class-less volume",
            volumes: vec![pv("volume-plain", "1Gi", &[])],
            claims: vec![pvc("claim-unset", "1Gi", &[])],
            expect_volumes: vec![bound_volume_essentials("volume-plain", "claim-unset")],
            expect_claims: vec![bound_claim_essentials("claim-unset", "volume-plain", "1Gi")],
            ..Case::default()
        },
        Case {
            name: "unset class and a default: a matching class-less volume is still taken first",
            classes: vec![default("standard")],
            volumes: vec![pv("volume-plain", "1Gi", &[])],
            claims: vec![pvc("claim-unset", "1Gi", &[])],
            expect_volumes: vec![bound_volume_essentials("volume-plain", "claim-unset")],
            expect_claims: vec![bound_claim_essentials("claim-unset", "volume-plain", "1Gi")],
            ..Case::default()
        },
        Case {
            name: "retroactive default: an unset class with no match gets the default, then provisioning",
            classes: vec![default("standard")],
            claims: vec![pvc("claim-unset", "1Gi", &[])],
            expect_claims: vec![
                json!({"name": "claim-unset", "phase": "Pending", "class": "standard", "annotations": {
                    "volume.beta.kubernetes.io/storage-provisioner": "csi.strata.dev",
                    "volume.kubernetes.io/storage-provisioner": "csi.strata.dev",
                }}),
            ],
            expect_events: vec!["Normal ExternalProvisioning claim-unset"],
            ..Case::default()
        },
        Case {
            name: "class \"\" is never defaulted",
            classes: vec![default("standard")],
            claims: vec![pvc("claim-empty", "1Gi", &[class("")])],
            expect_claims: vec![json!({"name": "claim-empty", "phase": "Pending", "class": ""})],
            expect_events: vec!["Normal FailedBinding claim-empty"],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn wait_for_first_consumer() {
    let wffc = || {
        storage_class(
            "local",
            "csi.strata.dev",
            &[json!({"volumeBindingMode": "WaitForFirstConsumer"})],
        )
    };
    let cases = vec![
        Case {
            name: "1-14 a delayed claim does not take a free volume: WaitForFirstConsumer",
            classes: vec![wffc()],
            volumes: vec![pv("volume-free", "1Gi", &[class("local")])],
            claims: vec![pvc("claim-wffc", "1Gi", &[class("local")])],
            expect_volumes: vec![json!({"name": "volume-free", "phase": "Available"})],
            expect_claims: vec![
                json!({"name": "claim-wffc", "phase": "Pending", "class": "local"}),
            ],
            expect_events: vec![
                "Normal WaitForFirstConsumer claim-wffc: waiting for first consumer to be created before binding",
            ],
            ..Case::default()
        },
        Case {
            name: "1-14 a delayed claim binds a volume pre-bound to it",
            classes: vec![wffc()],
            volumes: vec![pv(
                "volume-pre",
                "1Gi",
                &[class("local"), claim_ref("claim-wffc", "")],
            )],
            claims: vec![pvc("claim-wffc", "1Gi", &[class("local")])],
            expect_volumes: vec![
                json!({"name": "volume-pre", "phase": "Bound", "claim": "claim-wffc", "uid": "uid-claim-wffc"}),
            ],
            expect_claims: vec![
                json!({"name": "claim-wffc", "phase": "Bound", "volume": "volume-pre", "class": "local", "annotations": {"bind-completed": "yes", "bound-by-controller": "yes"}, "capacity": "1Gi"}),
            ],
            ..Case::default()
        },
        Case {
            name: "one unscheduled pod: WaitForPodScheduled names it (scheduled and finished pods do not count)",
            classes: vec![wffc()],
            pods: vec![
                pod("pod-a", &["claim-wffc"], "", "Pending"),
                pod("pod-b", &["claim-wffc"], "node1", "Running"),
                pod("pod-c", &["claim-wffc"], "", "Failed"),
            ],
            claims: vec![pvc("claim-wffc", "1Gi", &[class("local")])],
            expect_claims: vec![
                json!({"name": "claim-wffc", "phase": "Pending", "class": "local"}),
            ],
            expect_events: vec![
                "Normal WaitForPodScheduled claim-wffc: waiting for pod pod-a to be scheduled",
            ],
            ..Case::default()
        },
        Case {
            name: "several unscheduled pods are listed",
            classes: vec![wffc()],
            pods: vec![
                pod("pod-b", &["claim-wffc"], "", "Pending"),
                pod("pod-a", &["claim-wffc"], "", "Pending"),
            ],
            claims: vec![pvc("claim-wffc", "1Gi", &[class("local")])],
            expect_claims: vec![
                json!({"name": "claim-wffc", "phase": "Pending", "class": "local"}),
            ],
            expect_events: vec![
                "Normal WaitForPodScheduled claim-wffc: waiting for pods pod-a,pod-b to be scheduled",
            ],
            ..Case::default()
        },
        Case {
            name: "with a selected node and no volume the claim goes to its provisioner",
            classes: vec![wffc()],
            claims: vec![pvc(
                "claim-wffc",
                "1Gi",
                &[
                    class("local"),
                    annotations(&[("volume.kubernetes.io/selected-node", "node1")]),
                ],
            )],
            expect_claims: vec![
                json!({"name": "claim-wffc", "phase": "Pending", "class": "local", "annotations": {
                    "volume.beta.kubernetes.io/storage-provisioner": "csi.strata.dev",
                    "volume.kubernetes.io/selected-node": "node1",
                    "volume.kubernetes.io/storage-provisioner": "csi.strata.dev",
                }}),
            ],
            expect_events: vec!["Normal ExternalProvisioning claim-wffc"],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

#[test]
fn selectors_and_volume_modes() {
    let cases = vec![
        Case {
            name: "a selector picks the smallest volume with matching labels",
            volumes: vec![
                pv("volume-a", "1Gi", &[labels(&[("tier", "silver")])]),
                pv("volume-b", "5Gi", &[labels(&[("tier", "gold")])]),
                pv("volume-c", "2Gi", &[labels(&[("tier", "gold")])]),
            ],
            claims: vec![pvc(
                "claim-sel",
                "1Gi",
                &[match_labels(&[("tier", "gold")])],
            )],
            expect_volumes: vec![
                json!({"name": "volume-a", "phase": "Available"}),
                json!({"name": "volume-b", "phase": "Available"}),
                bound_volume_essentials("volume-c", "claim-sel"),
            ],
            expect_claims: vec![bound_claim_essentials("claim-sel", "volume-c", "2Gi")],
            ..Case::default()
        },
        Case {
            name: "matchExpressions are honoured",
            volumes: vec![
                pv("volume-a", "1Gi", &[labels(&[("zone", "a")])]),
                pv("volume-b", "1Gi", &[labels(&[("zone", "b")])]),
            ],
            claims: vec![pvc(
                "claim-sel",
                "1Gi",
                &[
                    json!({"spec": {"selector": {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}}}),
                ],
            )],
            expect_volumes: vec![
                json!({"name": "volume-a", "phase": "Available"}),
                bound_volume_essentials("volume-b", "claim-sel"),
            ],
            expect_claims: vec![bound_claim_essentials("claim-sel", "volume-b", "1Gi")],
            ..Case::default()
        },
        Case {
            name: "Block only matches Block; unset matches Filesystem",
            volumes: vec![
                pv("volume-block", "1Gi", &[volume_mode("Block")]),
                pv("volume-fs", "1Gi", &[volume_mode("Filesystem")]),
            ],
            claims: vec![
                pvc("claim-block", "1Gi", &[volume_mode("Block")]),
                pvc("claim-unset", "1Gi", &[]),
            ],
            expect_volumes: vec![
                bound_volume_essentials("volume-block", "claim-block"),
                bound_volume_essentials("volume-fs", "claim-unset"),
            ],
            expect_claims: vec![
                bound_claim_essentials("claim-block", "volume-block", "1Gi"),
                bound_claim_essentials("claim-unset", "volume-fs", "1Gi"),
            ],
            ..Case::default()
        },
        Case {
            name: "a Filesystem claim does not take a Block volume",
            volumes: vec![pv("volume-block", "1Gi", &[volume_mode("Block")])],
            claims: vec![pvc("claim-fs", "1Gi", &[volume_mode("Filesystem")])],
            expect_volumes: vec![json!({"name": "volume-block", "phase": "Available"})],
            expect_claims: vec![json!({"name": "claim-fs", "phase": "Pending"})],
            expect_events: vec!["Normal FailedBinding claim-fs"],
            ..Case::default()
        },
    ];
    for case in cases {
        check(case);
    }
}

// ---- matching alone: which volume a claim's first sync picks --------------

/// Stores the volumes exactly as given (no volume syncs), syncs the claim
/// once and returns the volume its bind writes, if any.
fn check_match(volumes: &[Value], claim: Value, delay_class: bool, expected: Option<&str>) {
    let mut binder = Binder::new();
    if delay_class {
        let class = storage_class(
            "local",
            "csi.strata.dev",
            &[json!({"volumeBindingMode": "WaitForFirstConsumer"})],
        );
        binder.upsert_class(typed(&class));
    }
    for volume in volumes {
        binder.upsert_volume(typed(volume));
    }
    let claim: PersistentVolumeClaim = typed(&claim);
    let work = Work::Claim {
        namespace: NAMESPACE.into(),
        name: claim.metadata.name.clone().unwrap(),
    };
    binder.upsert_claim(claim);
    let chosen = binder
        .sync(&work, now())
        .into_iter()
        .find_map(|action| match action {
            Action::SaveVolume(pv) => pv.metadata.name,
            _ => None,
        });
    assert_eq!(chosen.as_deref(), expected, "volumes {volumes:?}");
}

fn rwo_claim(size: &str, access: &[&str]) -> Value {
    pvc("claim", size, &[modes(access)])
}

#[test]
fn finding_volumes_with_different_access_modes() {
    let gce = || pv("gce", "20Gi", &[modes(&["ReadWriteOnce", "ReadOnlyMany"])]);
    let ebs = || pv("ebs", "10Gi", &[modes(&["ReadWriteOnce"])]);
    let nfs = || {
        pv(
            "nfs",
            "100Gi",
            &[modes(&["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"])],
        )
    };
    let all = [gce(), ebs(), nfs()];
    let only_ebs = [ebs()];
    let bigger_single_mode = [
        pv("a", "20Gi", &[modes(&["ReadWriteOnce"])]),
        pv("b", "5Gi", &[modes(&["ReadWriteOnce", "ReadOnlyMany"])]),
    ];
    let cases: Vec<(&[Value], Value, Option<&str>)> = vec![
        // The bucket with the fewest modes wins, even over a smaller
        // volume in a larger bucket.
        (&all, rwo_claim("1Gi", &["ReadWriteOnce"]), Some("ebs")),
        (&all, rwo_claim("15Gi", &["ReadWriteOnce"]), Some("gce")),
        (&all, rwo_claim("1Gi", &["ReadOnlyMany"]), Some("gce")),
        (&all, rwo_claim("1Gi", &["ReadWriteMany"]), Some("nfs")),
        (
            &all,
            rwo_claim("1Gi", &["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"]),
            Some("nfs"),
        ),
        // Order and duplicates do not matter.
        (
            &all,
            rwo_claim("1Gi", &["ReadOnlyMany", "ReadWriteOnce", "ReadOnlyMany"]),
            Some("gce"),
        ),
        (&all, rwo_claim("1Gi", &["ReadWriteOncePod"]), None),
        (&all, rwo_claim("200Gi", &["ReadWriteOnce"]), None),
        (&only_ebs, rwo_claim("1Gi", &["ReadWriteMany"]), None),
        // Fewest modes first even when that volume is bigger.
        (
            &bigger_single_mode,
            rwo_claim("1Gi", &["ReadWriteOnce"]),
            Some("a"),
        ),
    ];
    for (volumes, claim, expected) in cases {
        check_match(volumes, claim, false, expected);
    }
}

#[test]
fn finding_prebound_volumes() {
    let prebound = |size: &str, access: &[&str]| {
        pv(
            "prebound",
            size,
            &[modes(access), claim_ref("claim", ""), phase("Pending")],
        )
    };
    let free = pv("free", "1Gi", &[]);
    let cases: Vec<(Vec<Value>, Option<&str>)> = vec![
        // Pre-bound wins over a smaller free volume, whatever its phase.
        (
            vec![free.clone(), prebound("5Gi", &["ReadWriteOnce"])],
            Some("prebound"),
        ),
        // ... but not when it is too small or lacks a requested mode.
        (
            vec![free.clone(), prebound("500Mi", &["ReadWriteOnce"])],
            Some("free"),
        ),
        (
            vec![free.clone(), prebound("5Gi", &["ReadOnlyMany"])],
            Some("free"),
        ),
        // A pre-binding with another claim's UID is not ours.
        (
            vec![pv("other-uid", "1Gi", &[claim_ref("claim", "uid-other")])],
            None,
        ),
        // A pre-bound volume of another class still counts (class is not checked for it).
        (
            vec![
                free.clone(),
                pv("prebound", "5Gi", &[class("gold"), claim_ref("claim", "")]),
            ],
            Some("prebound"),
        ),
    ];
    for (volumes, expected) in cases {
        check_match(&volumes, pvc("claim", "1Gi", &[]), false, expected);
    }
    // A delayed claim takes only a pre-bound volume.
    let delayed = || pvc("claim", "1Gi", &[class("local")]);
    check_match(
        &[pv("free", "1Gi", &[class("local")])],
        delayed(),
        true,
        None,
    );
    let reserved = pv("prebound", "1Gi", &[class("local"), claim_ref("claim", "")]);
    check_match(
        &[pv("free", "1Gi", &[class("local")]), reserved],
        delayed(),
        true,
        Some("prebound"),
    );
}

#[test]
fn only_available_volumes_are_candidates() {
    // 1-17: a volume without claimRef must already be Available.
    for phase_name in ["Pending", "Released", "Failed", ""] {
        let volume = pv("volume", "1Gi", &[phase(phase_name)]);
        check_match(&[volume], pvc("claim", "1Gi", &[]), false, None);
    }
    check_match(
        &[pv("volume", "1Gi", &[])],
        pvc("claim", "1Gi", &[]),
        false,
        Some("volume"),
    );
}

// ---- the scheduler's path ---------------------------------------------------

fn zone_affinity(zone: &str) -> Value {
    json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": [zone]}]}
    ]}}}})
}

fn check_node_match(
    volumes: &[Value],
    claim: Value,
    zone: &str,
    excluded: &[&str],
    expected: Option<&str>,
) {
    let mut binder = Binder::new();
    for volume in volumes {
        binder.upsert_volume(typed(volume));
    }
    let node_labels = BTreeMap::from([("zone".to_string(), zone.to_string())]);
    let excluded: HashSet<String> = excluded.iter().map(|s| s.to_string()).collect();
    let found = binder.find_matching_volume_for_node(&typed(&claim), &node_labels, &excluded);
    assert_eq!(
        found.as_deref(),
        expected,
        "zone {zone}, excluded {excluded:?}"
    );
}

#[test]
fn finding_volumes_for_a_node() {
    let local =
        |name: &str, size: &str, zone: &str| pv(name, size, &[class("local"), zone_affinity(zone)]);
    let volumes = [
        local("a-small", "1Gi", "a"),
        local("a-big", "10Gi", "a"),
        local("b-small", "1Gi", "b"),
    ];
    let claim = || pvc("claim", "1Gi", &[class("local")]);
    let cases: Vec<(&str, &[&str], Option<&str>)> = vec![
        ("a", &[], Some("a-small")),
        ("b", &[], Some("b-small")),
        ("a", &["a-small"], Some("a-big")),
        ("c", &[], None),
    ];
    for (zone, excluded, expected) in cases {
        check_node_match(&volumes, claim(), zone, excluded, expected);
    }
    // Access modes are checked on this path; any bucket that covers them
    // competes on size.
    let mixed = [
        pv("rwo", "10Gi", &[class("local")]),
        pv(
            "rwo-rox",
            "2Gi",
            &[class("local"), modes(&["ReadWriteOnce", "ReadOnlyMany"])],
        ),
    ];
    check_node_match(&mixed, claim(), "a", &[], Some("rwo-rox"));
    let rwx = pvc("claim", "1Gi", &[class("local"), modes(&["ReadWriteMany"])]);
    check_node_match(&mixed, rwx, "a", &[], None);
    // A pre-bound volume decides alone: itself if it fits the node, else nothing.
    let prebound = pv(
        "prebound",
        "5Gi",
        &[class("local"), zone_affinity("b"), claim_ref("claim", "")],
    );
    let with_prebound = [local("a-small", "1Gi", "a"), prebound];
    check_node_match(&with_prebound, claim(), "b", &[], Some("prebound"));
    check_node_match(&with_prebound, claim(), "a", &[], None);
    check_node_match(&with_prebound, claim(), "a", &["prebound"], Some("a-small"));
}

// ---- default class choice ---------------------------------------------------

fn check_default(classes: &[Value], expected: Option<&str>) {
    let mut binder = Binder::new();
    for class in classes {
        binder.upsert_class(typed(class));
    }
    let chosen = binder.default_class().and_then(|c| c.metadata.name.clone());
    assert_eq!(chosen.as_deref(), expected, "{classes:?}");
}

#[test]
fn the_newest_default_class_wins_then_the_first_by_name() {
    let marked = |name: &str, at: &str, value: &str| {
        storage_class(
            name,
            "csi.strata.dev",
            &[
                created(at),
                annotations(&[("storageclass.kubernetes.io/is-default-class", value)]),
            ],
        )
    };
    let beta = storage_class(
        "beta",
        "csi.strata.dev",
        &[annotations(&[(
            "storageclass.beta.kubernetes.io/is-default-class",
            "true",
        )])],
    );
    let cases: Vec<(Vec<Value>, Option<&str>)> = vec![
        (vec![], None),
        (vec![storage_class("plain", "x", &[])], None),
        (
            vec![
                marked("old", "2024-01-01T00:00:00Z", "true"),
                marked("new", "2025-01-01T00:00:00Z", "true"),
            ],
            Some("new"),
        ),
        (
            vec![
                marked("b", "2025-01-01T00:00:00Z", "true"),
                marked("a", "2025-01-01T00:00:00Z", "true"),
            ],
            Some("a"),
        ),
        (
            vec![
                marked("yes", "2025-01-01T00:00:00Z", "True"),
                marked("no", "2024-01-01T00:00:00Z", "false"),
            ],
            None,
        ),
        (vec![beta], Some("beta")),
    ];
    for (classes, expected) in cases {
        check_default(&classes, expected);
    }
}

// ---- event-driven work, without the periodic resync ------------------------

/// Runs until idle, counting the syncs of each kind.
fn settle(binder: &mut Binder) -> (usize, usize) {
    let (mut claim_syncs, mut volume_syncs) = (0, 0);
    while let Some(work) = binder.next_work() {
        match work {
            Work::Claim { .. } => claim_syncs += 1,
            Work::Volume { .. } => volume_syncs += 1,
        }
        let actions = binder.sync(&work, now());
        apply_locally(binder, actions);
        assert!(
            claim_syncs + volume_syncs < 1_000_000,
            "the binder does not settle"
        );
    }
    (claim_syncs, volume_syncs)
}

fn claim_phase(binder: &Binder, name: &str) -> String {
    let claim = binder.claim(NAMESPACE, name).unwrap();
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn bound_volume(binder: &Binder, name: &str) -> Option<String> {
    let claim = binder.claim(NAMESPACE, name).unwrap();
    claim.spec.as_ref().and_then(|s| s.volume_name.clone())
}

#[test]
fn a_new_volume_wakes_the_oldest_claim_it_fits_and_only_that_one() {
    let mut binder = Binder::new();
    let claims = [
        ("too-big", "50Gi", "2025-01-01T00:00:01Z"),
        ("oldest-fitting", "1Gi", "2025-01-01T00:00:02Z"),
        ("younger", "1Gi", "2025-01-01T00:00:03Z"),
        ("block", "1Gi", "2025-01-01T00:00:00Z"),
    ];
    for (name, size, at) in claims {
        let mode = if name == "block" {
            "Block"
        } else {
            "Filesystem"
        };
        binder.upsert_claim(typed(&pvc(name, size, &[created(at), volume_mode(mode)])));
    }
    settle(&mut binder);
    binder.upsert_volume(typed(&pv("new", "5Gi", &[phase("Pending")])));
    let (claim_syncs, _) = settle(&mut binder);
    assert_eq!(
        bound_volume(&binder, "oldest-fitting").as_deref(),
        Some("new")
    );
    for name in ["too-big", "younger", "block"] {
        assert_eq!(claim_phase(&binder, name), "Pending", "{name}");
    }
    // The woken claim's sync and the echo of its own write.
    assert!(claim_syncs <= 2, "{claim_syncs} claim syncs");
}

#[test]
fn a_claim_naming_a_volume_binds_when_it_appears() {
    let mut binder = Binder::new();
    binder.upsert_claim(typed(&pvc("claim", "1Gi", &[volume_name("later")])));
    settle(&mut binder);
    binder.upsert_volume(typed(&pv("later", "1Gi", &[phase("Pending")])));
    settle(&mut binder);
    assert_eq!(claim_phase(&binder, "claim"), "Bound");
}

#[test]
fn a_volume_reserved_for_a_waiting_claim_wakes_it() {
    let mut binder = Binder::new();
    binder.upsert_claim(typed(&pvc("claim", "1Gi", &[class("")])));
    settle(&mut binder);
    binder.upsert_volume(typed(&pv(
        "reserved",
        "1Gi",
        &[claim_ref("claim", ""), phase("Pending")],
    )));
    settle(&mut binder);
    assert_eq!(bound_volume(&binder, "claim").as_deref(), Some("reserved"));
}

#[test]
fn a_woken_claim_that_binds_elsewhere_passes_its_volume_on() {
    // Both volumes arrive before the first woken claim syncs: it takes the
    // smaller one, so the bigger one must go to the next waiting claim.
    let mut binder = Binder::new();
    binder.upsert_claim(typed(&pvc(
        "first",
        "1Gi",
        &[created("2025-01-01T00:00:01Z")],
    )));
    binder.upsert_claim(typed(&pvc(
        "second",
        "1Gi",
        &[created("2025-01-01T00:00:02Z")],
    )));
    settle(&mut binder);
    binder.upsert_volume(typed(&pv("big", "10Gi", &[])));
    binder.upsert_volume(typed(&pv("small", "1Gi", &[])));
    settle(&mut binder);
    assert_eq!(bound_volume(&binder, "first").as_deref(), Some("small"));
    assert_eq!(bound_volume(&binder, "second").as_deref(), Some("big"));
}

#[test]
fn deleting_a_claim_releases_its_volume_and_unbinding_frees_it_for_a_waiting_claim() {
    let mut binder = Binder::new();
    binder.upsert_volume(typed(&pv("volume", "1Gi", &[policy("Retain")])));
    binder.upsert_claim(typed(&pvc("owner", "1Gi", &[])));
    settle(&mut binder);
    binder.upsert_claim(typed(&pvc("waiter", "1Gi", &[])));
    settle(&mut binder);
    assert_eq!(claim_phase(&binder, "waiter"), "Pending");
    binder.remove_claim(NAMESPACE, "owner");
    settle(&mut binder);
    let released = volume_essentials(binder.volume("volume").unwrap());
    assert_eq!(released["phase"], "Released");
    // The admin clears the claimRef: the volume is Available again and the
    // waiting claim gets it.
    let mut reclaimed = binder.volume("volume").unwrap().clone();
    reclaimed.spec.as_mut().unwrap().claim_ref = None;
    binder.upsert_volume(reclaimed);
    settle(&mut binder);
    assert_eq!(bound_volume(&binder, "waiter").as_deref(), Some("volume"));
}

#[test]
fn deleting_a_bound_volume_makes_its_claim_lost() {
    let mut binder = Binder::new();
    binder.upsert_volume(typed(&pv("volume", "1Gi", &[])));
    binder.upsert_claim(typed(&pvc("claim", "1Gi", &[])));
    settle(&mut binder);
    binder.remove_volume("volume");
    settle(&mut binder);
    assert_eq!(claim_phase(&binder, "claim"), "Lost");
}

#[test]
fn a_default_class_created_later_is_applied_to_waiting_claims() {
    let mut binder = Binder::new();
    binder.upsert_claim(typed(&pvc("claim", "1Gi", &[])));
    settle(&mut binder);
    let default = storage_class(
        "standard",
        "csi.strata.dev",
        &[annotations(&[(
            "storageclass.kubernetes.io/is-default-class",
            "true",
        )])],
    );
    binder.upsert_class(typed(&default));
    settle(&mut binder);
    let claim = claim_essentials(binder.claim(NAMESPACE, "claim").unwrap());
    assert_eq!(claim["class"], "standard");
}

#[test]
fn stale_objects_are_ignored() {
    let mut binder = Binder::new();
    binder.upsert_volume(typed(&pv(
        "volume",
        "1Gi",
        &[json!({"metadata": {"resourceVersion": "5"}})],
    )));
    binder.upsert_volume(typed(&pv(
        "volume",
        "9Gi",
        &[json!({"metadata": {"resourceVersion": "4"}})],
    )));
    let capacity = &binder
        .volume("volume")
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .capacity
        .as_ref()
        .unwrap()["storage"];
    assert_eq!(capacity.0, "1Gi");
    binder.upsert_volume(typed(&pv(
        "volume",
        "9Gi",
        &[json!({"metadata": {"resourceVersion": "5"}})],
    )));
    let capacity = &binder
        .volume("volume")
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .capacity
        .as_ref()
        .unwrap()["storage"];
    assert_eq!(capacity.0, "9Gi");
}

/// Claims first, biggest oldest, then volumes smallest first: a scan of the
/// waiting claims per volume would be quadratic here. Each volume must
/// wake one claim, so the syncs stay linear in N.
#[test]
fn adversarial_arrival_order_stays_linear() {
    const N: usize = 2_000;
    let mut binder = Binder::new();
    for i in 0..N {
        let size = format!("{}Mi", N - i);
        let at = format!("2025-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60);
        binder.upsert_claim(typed(&pvc(
            &format!("claim-{i:05}"),
            &size,
            &[created(&at), class("")],
        )));
    }
    settle(&mut binder);
    for i in 0..N {
        let size = format!("{}Mi", i + 1);
        binder.upsert_volume(typed(&pv(
            &format!("volume-{i:05}"),
            &size,
            &[phase("Pending")],
        )));
    }
    let (claim_syncs, volume_syncs) = settle(&mut binder);
    for i in 0..N {
        assert_eq!(
            claim_phase(&binder, &format!("claim-{i:05}")),
            "Bound",
            "claim-{i:05}"
        );
    }
    assert!(
        claim_syncs <= 3 * N,
        "{claim_syncs} claim syncs for {N} pairs"
    );
    assert!(
        volume_syncs <= 4 * N,
        "{volume_syncs} volume syncs for {N} pairs"
    );
}
