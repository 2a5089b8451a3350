//! The Kubernetes-style control plane through stock kubectl against a real
//! `strata serve`: the seeds' PV/PVC/StorageClass behaviour, reclaim,
//! errors, auth, and what `get -o wide` and `describe` print.

mod common;

use common::Strata;
use common::kube::{KubeServer, eventually, seed};

fn settled() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // AGE columns and generated names.
    settings.add_filter(r"\b\d+(s|m\d*s?|h\d*m?|d\d*h?) +", "[age] ");
    settings.add_filter(r"(?m)\b\d+(s|m\d*s?|h\d*m?|d\d*h?)$", "[age]");
    settings.add_filter(r"pvc-[0-9a-f-]{36}", "pvc-[uid]");
    settings
}

#[test]
fn static_volume_binds_and_reports_its_capacity() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    assert!(
        k.apply(&seed(&s, "pv-vol1.yaml"))
            .contains("persistentvolume/pv-vol1 created")
    );
    k.apply(&seed(&s, "myclaim.yaml"));
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    assert_eq!(
        k.jsonpath(&["pvc", "myclaim"], "{.status.capacity.storage}"),
        "1Gi"
    );
    assert_eq!(
        k.jsonpath(&["pvc", "myclaim"], "{.spec.volumeName}"),
        "pv-vol1"
    );
    assert_eq!(k.jsonpath(&["pv", "pv-vol1"], "{.status.phase}"), "Bound");
    assert_eq!(
        k.jsonpath(&["pv", "pv-vol1"], "{.spec.claimRef.name}"),
        "myclaim"
    );
    settled().bind(|| {
        insta::assert_snapshot!(
            "get_pv_pvc_wide",
            k.kubectl(&["get", "pv,pvc", "-o", "wide"])
        );
        insta::assert_snapshot!("describe_pvc", k.kubectl(&["describe", "pvc", "myclaim"]));
        insta::assert_snapshot!("get_pvc", k.kubectl(&["get", "pvc"]));
    });
    // Applying the same manifests again changes nothing.
    assert!(k.apply(&seed(&s, "myclaim.yaml")).contains("unchanged"));
}

#[test]
fn claim_without_a_match_stays_pending_and_says_why() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    k.apply(&seed(&s, "pv-vol1.yaml"));
    let big = seed(&s, "myclaim.yaml").replace("500Mi", "5Gi");
    k.apply(&big);
    k.wait_for("pv/pv-vol1", "{.status.phase}", "Available");
    let describe = eventually("the event", || {
        let d = k.kubectl(&["describe", "pvc", "myclaim"]);
        d.contains("FailedBinding").then_some(d)
    });
    assert!(describe.contains("Status:        Pending"), "{describe}");
    assert!(
        describe
            .contains("no persistent volumes available for this claim and no storage class is set"),
        "{describe}"
    );
}

#[test]
fn retain_leaves_the_volume_released_with_its_claim_ref() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    k.apply(&seed(&s, "pv-vol1.yaml"));
    k.apply(&seed(&s, "myclaim.yaml"));
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    let uid = k.jsonpath(&["pvc", "myclaim"], "{.metadata.uid}");
    k.kubectl(&["delete", "pvc", "myclaim", "--timeout=30s"]);
    k.wait_for("pv/pv-vol1", "{.status.phase}", "Released");
    assert_eq!(k.jsonpath(&["pv", "pv-vol1"], "{.spec.claimRef.uid}"), uid);
    // A new claim of the same name does not get it back.
    k.apply(&seed(&s, "myclaim.yaml"));
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        k.jsonpath(&["pvc", "myclaim"], "{.status.phase}"),
        "Pending"
    );
    // Once the admin clears the claimRef it is Available, and binds again.
    k.kubectl(&[
        "patch",
        "pv",
        "pv-vol1",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/claimRef"}]"#,
    ]);
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
}

#[test]
fn storage_class_provisions_through_csi_and_delete_removes_it() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    k.apply(&seed(&s, "google-storage.yaml"));
    k.wait_for("pvc/data-claim", "{.status.phase}", "Bound");
    let pv = k.jsonpath(&["pvc", "data-claim"], "{.spec.volumeName}");
    assert!(pv.starts_with("pvc-"), "{pv}");
    assert_eq!(
        k.jsonpath(&["pv", &pv], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete"
    );
    assert_eq!(
        k.jsonpath(&["pv", &pv], "{.spec.csi.driver}"),
        "csi.strata.dev"
    );
    assert_eq!(
        k.jsonpath(
            &["pv", &pv],
            "{.metadata.annotations.pv\\.kubernetes\\.io/provisioned-by}"
        ),
        "csi.strata.dev"
    );
    // The volume is an ordinary Strata volume.
    assert!(
        s.ok(&["volume", "ls", "-q"]).lines().any(|l| l == pv),
        "volume {pv} not listed"
    );
    let events = k.kubectl(&["describe", "pvc", "data-claim"]);
    assert!(events.contains("ProvisioningSucceeded"), "{events}");
    k.kubectl(&["delete", "pvc", "data-claim", "--timeout=30s"]);
    k.kubectl(&["wait", "--for=delete", &format!("pv/{pv}"), "--timeout=60s"]);
    assert!(
        !s.ok(&["volume", "ls", "-q"]).lines().any(|l| l == pv),
        "volume {pv} still there"
    );
}

#[test]
fn wait_for_first_consumer_keeps_the_claim_pending() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    k.apply(&seed(&s, "delayed-storage.yaml"));
    let describe = eventually("the event", || {
        let d = k.kubectl(&["describe", "pvc", "delayed-claim"]);
        d.contains("WaitForFirstConsumer").then_some(d)
    });
    assert!(
        describe.contains("waiting for first consumer to be created before binding"),
        "{describe}"
    );
    assert_eq!(
        k.jsonpath(&["pvc", "delayed-claim"], "{.status.phase}"),
        "Pending"
    );
    // Its first consumer gets it provisioned on the node it is scheduled to.
    k.apply(&seed(&s, "delayed-consumer.yaml"));
    k.wait_for("pvc/delayed-claim", "{.status.phase}", "Bound");
    k.wait_for(
        "pod/delayed-consumer",
        "{.spec.nodeName}",
        common::kube::NODE,
    );
    let pv = k.jsonpath(&["pvc", "delayed-claim"], "{.spec.volumeName}");
    assert_eq!(
        k.jsonpath(
            &["pv", &pv],
            "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"
        ),
        common::kube::NODE
    );
    let claim = k.kubectl(&["get", "pvc", "delayed-claim", "-o", "yaml"]);
    assert!(
        claim.contains("volume.kubernetes.io/selected-node: node1"),
        "{claim}"
    );
}

#[test]
fn bad_objects_are_refused_with_kubernetes_messages() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    let no_modes = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  resources:\n    requests:\n      storage: 1Gi\n";
    let err = k.kubectl_fails(&["apply", "-f", "-"], Some(no_modes));
    assert!(
        err.contains("is invalid") && err.contains("spec.accessModes"),
        "{err}"
    );
    let recycle = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: r\nprovisioner: csi.strata.dev\nreclaimPolicy: Recycle\n";
    let err = k.kubectl_fails(&["apply", "-f", "-"], Some(recycle));
    assert!(err.contains("reclaimPolicy"), "{err}");
    let typo = no_modes.replace(
        "spec:\n",
        "spec:\n  accessModes: [ReadWriteOnce]\n  sise: 1\n",
    );
    let err = k.kubectl_fails(&["apply", "-f", "-"], Some(&typo));
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.sise""#),
        "{err}"
    );
    let err = k.kubectl_fails(&["get", "pvc", "nope"], None);
    assert!(
        err.contains("NotFound") && err.contains("\"nope\" not found"),
        "{err}"
    );
    // Shrinking a bound claim is refused.
    k.apply(&seed(&s, "pv-vol1.yaml"));
    k.apply(&seed(&s, "myclaim.yaml"));
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    let smaller = seed(&s, "myclaim.yaml").replace("500Mi", "100Mi");
    let err = k.kubectl_fails(&["apply", "-f", "-"], Some(&smaller));
    assert!(err.contains("can not be less than previous value"), "{err}");
    // Nothing was lost.
    assert_eq!(
        k.jsonpath(&["pvc", "myclaim"], "{.spec.resources.requests.storage}"),
        "500Mi"
    );
}

#[test]
fn requests_without_the_token_are_unauthorized() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    let err = k.kubectl_fails(&["--token", "wrong", "get", "pv"], None);
    assert!(
        err.contains("You must be logged in") || err.contains("provide credentials"),
        "{err}"
    );
}

#[test]
fn objects_survive_a_restart() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    k.apply(&seed(&s, "pv-vol1.yaml"));
    k.apply(&seed(&s, "myclaim.yaml"));
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    drop(k);
    let k = KubeServer::start(&s);
    assert_eq!(k.jsonpath(&["pvc", "myclaim"], "{.status.phase}"), "Bound");
    assert_eq!(
        k.jsonpath(&["pv", "pv-vol1"], "{.spec.claimRef.name}"),
        "myclaim"
    );
}

#[test]
fn a_claim_of_an_expandable_class_grows() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    let expandable = seed(&s, "google-storage.yaml").replace(
        "reclaimPolicy: Delete",
        "reclaimPolicy: Delete\nallowVolumeExpansion: true",
    );
    k.apply(&expandable);
    k.wait_for("pvc/data-claim", "{.status.phase}", "Bound");
    let pv = k.jsonpath(&["pvc", "data-claim"], "{.spec.volumeName}");
    k.kubectl(&[
        "patch",
        "pvc",
        "data-claim",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}"#,
    ]);
    k.wait_for("pvc/data-claim", "{.status.capacity.storage}", "1Gi");
    assert_eq!(k.jsonpath(&["pv", &pv], "{.spec.capacity.storage}"), "1Gi");
    let events = k.kubectl(&["describe", "pvc", "data-claim"]);
    assert!(events.contains("VolumeResizeSuccessful"), "{events}");

    // A class that does not allow it refuses, and the claim keeps its size.
    k.apply(&seed(&s, "pv-vol1.yaml"));
    k.apply(&seed(&s, "myclaim.yaml"));
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    let err = k.kubectl_fails(
        &[
            "patch",
            "pvc",
            "myclaim",
            "-p",
            r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
        ],
        None,
    );
    assert!(
        err.contains("only dynamically provisioned pvc can be resized"),
        "{err}"
    );
    assert_eq!(
        k.jsonpath(&["pvc", "myclaim"], "{.spec.resources.requests.storage}"),
        "500Mi"
    );
}

#[test]
fn deleting_a_namespace_deletes_what_is_in_it() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    k.kubectl(&["create", "namespace", "dev"]);
    let claim =
        seed(&s, "myclaim.yaml").replace("name: myclaim", "name: myclaim\n  namespace: dev");
    k.apply(&claim);
    assert!(k.kubectl(&["get", "pvc", "-n", "dev"]).contains("myclaim"));
    k.kubectl(&["delete", "namespace", "dev", "--timeout=30s"]);
    let err = k.kubectl_fails(&["get", "namespace", "dev"], None);
    assert!(err.contains("not found"), "{err}");
    assert!(k.kubectl(&["get", "pvc", "-A"]).is_empty());
}

#[test]
fn another_csi_driver_provisions_when_a_csidriver_object_names_its_endpoint() {
    let s = Strata::new();
    let k = KubeServer::start(&s);
    // A second driver: another store's `strata csi serve`.
    let other = Strata::new();
    let driver = common::csi::CsiServer::start(&other, "other", "node1", &[]);
    let objects = format!(
        "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: other.example.com\n  annotations:\n    csi.strata.dev/endpoint: {}\nspec:\n  attachRequired: false\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: elsewhere\nprovisioner: other.example.com\n",
        driver.endpoint()
    );
    k.apply(&objects);
    let claim =
        seed(&s, "myclaim.yaml").replace("spec:\n", "spec:\n  storageClassName: elsewhere\n");
    k.apply(&claim);
    k.wait_for("pvc/myclaim", "{.status.phase}", "Bound");
    let pv = k.jsonpath(&["pvc", "myclaim"], "{.spec.volumeName}");
    assert_eq!(
        k.jsonpath(&["pv", &pv], "{.spec.csi.driver}"),
        "other.example.com"
    );
    let listed = |store: &Strata| store.ok(&["volume", "ls", "-q"]).lines().any(|l| l == pv);
    assert!(listed(&other), "the other driver's store has no {pv}");
    assert!(!listed(&s), "Strata's own driver made {pv}");
    k.kubectl(&["delete", "pvc", "myclaim", "--timeout=30s"]);
    k.kubectl(&["wait", "--for=delete", &format!("pv/{pv}"), "--timeout=60s"]);
    assert!(!listed(&other), "{pv} outlived its claim");
}
