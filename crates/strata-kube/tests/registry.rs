//! The registry's rules, on a real SQLite store: what create, update,
//! patch and delete do to objects beyond storing them.

use std::sync::Arc;

use serde_json::{Value, json};
use strata_kube::patch::PatchKind;
use strata_kube::registry::{DeleteOptions, Deleted, Registry, Subresource};
use strata_kube::{ApiError, Kind, SqliteStore};

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("objects.db")).unwrap();
    (dir, Registry::new(Arc::new(store)).unwrap())
}

fn claim(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound"},
    })
}

fn at(body: &Value, pointer: &str) -> Value {
    body.pointer(pointer).cloned().unwrap_or(Value::Null)
}

/// One rule: the object after `act` has `expected` at each pointer.
fn check(act: impl FnOnce(&Registry) -> Value, expected: &[(&str, Value)]) {
    let (_dir, registry) = registry();
    let body = act(&registry);
    for (pointer, value) in expected {
        assert_eq!(&at(&body, pointer), value, "{pointer} in {body:#}");
    }
}

#[test]
fn create_applies_defaults_admission_and_system_fields() {
    check(
        |r| {
            (*r.create(Kind::PersistentVolumeClaim, "default", claim("c"), false)
                .unwrap()
                .body)
                .clone()
        },
        &[
            // Status is the system's: the client's "Bound" is dropped.
            ("/status/phase", json!("Pending")),
            ("/spec/volumeMode", json!("Filesystem")),
            (
                "/metadata/finalizers",
                json!(["kubernetes.io/pvc-protection"]),
            ),
            ("/metadata/namespace", json!("default")),
            ("/metadata/generation", json!(1)),
            ("/metadata/resourceVersion", json!("4")),
        ],
    );
    // The default class goes to claims that name none, not to `""`.
    check(
        |r| {
            let class = json!({"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "csi.strata.dev"});
            r.create(Kind::StorageClass, "", class, false).unwrap();
            let mut none = claim("none");
            none["spec"]["storageClassName"] = json!("");
            r.create(Kind::PersistentVolumeClaim, "default", none, false)
                .unwrap();
            json!({
                "defaulted": *r.create(Kind::PersistentVolumeClaim, "default", claim("c"), false).unwrap().body,
                "none": *r.get(Kind::PersistentVolumeClaim, "default", "none").unwrap().body,
            })
        },
        &[
            ("/defaulted/spec/storageClassName", json!("fast")),
            ("/none/spec/storageClassName", json!("")),
        ],
    );
}

#[test]
fn create_refuses_what_kubernetes_refuses() {
    let (_dir, r) = registry();
    let refused = |body: Value, ns: &str| {
        r.create(Kind::PersistentVolumeClaim, ns, body, false)
            .unwrap_err()
    };
    assert!(matches!(
        refused(claim("c"), "nowhere"),
        ApiError::NotFound {
            kind: Kind::Namespace,
            ..
        }
    ));
    let mut no_modes = claim("c");
    no_modes["spec"]["accessModes"] = json!([]);
    assert!(matches!(
        refused(no_modes, "default"),
        ApiError::Invalid { .. }
    ));
    let mut wrong_kind = claim("c");
    wrong_kind["kind"] = json!("Pod");
    assert!(matches!(
        refused(wrong_kind, "default"),
        ApiError::BadRequest(_)
    ));
    r.create(Kind::PersistentVolumeClaim, "default", claim("c"), false)
        .unwrap();
    assert!(matches!(
        refused(claim("c"), "default"),
        ApiError::AlreadyExists { .. }
    ));
    // Nothing of the refused ones was stored.
    assert_eq!(
        r.store()
            .list(Kind::PersistentVolumeClaim, None)
            .items
            .len(),
        1
    );
}

#[test]
fn updates_keep_what_they_may_not_change() {
    let (_dir, r) = registry();
    let created = r
        .create(Kind::PersistentVolumeClaim, "default", claim("c"), false)
        .unwrap();
    // A main-resource write keeps the stored status and bumps generation
    // only when the spec changed.
    let mut body = (*created.body).clone();
    body["status"]["phase"] = json!("Lost");
    body["metadata"]["labels"] = json!({"a": "b"});
    let updated = r
        .update(
            Kind::PersistentVolumeClaim,
            "default",
            "c",
            body,
            Subresource::Main,
            false,
        )
        .unwrap();
    assert_eq!(at(&updated.body, "/status/phase"), json!("Pending"));
    assert_eq!(at(&updated.body, "/metadata/labels/a"), json!("b"));
    assert_eq!(at(&updated.body, "/metadata/generation"), json!(1));
    assert_eq!(
        at(&updated.body, "/metadata/uid"),
        at(&created.body, "/metadata/uid")
    );
    // A status write keeps everything else.
    let mut body = (*updated.body).clone();
    body["status"]["phase"] = json!("Bound");
    body["metadata"]["labels"] = json!({});
    let status = r
        .update(
            Kind::PersistentVolumeClaim,
            "default",
            "c",
            body,
            Subresource::Status,
            false,
        )
        .unwrap();
    assert_eq!(at(&status.body, "/status/phase"), json!("Bound"));
    assert_eq!(at(&status.body, "/metadata/labels/a"), json!("b"));
    // A stale resourceVersion is a conflict and changes nothing.
    let stale = (*created.body).clone();
    let err = r
        .update(
            Kind::PersistentVolumeClaim,
            "default",
            "c",
            stale,
            Subresource::Main,
            false,
        )
        .unwrap_err();
    assert!(matches!(err, ApiError::Conflict { .. }), "{err}");
    assert_eq!(
        r.get(Kind::PersistentVolumeClaim, "default", "c")
            .unwrap()
            .resource_version,
        status.resource_version
    );
}

#[test]
fn patches_apply_to_the_stored_object() {
    let (_dir, r) = registry();
    r.create(Kind::PersistentVolumeClaim, "default", claim("c"), false)
        .unwrap();
    let patch = br#"{"metadata":{"labels":{"tier":"db"}}}"#;
    let (patched, created) = r
        .patch(
            Kind::PersistentVolumeClaim,
            "default",
            "c",
            PatchKind::StrategicMerge,
            patch,
            Subresource::Main,
            false,
        )
        .unwrap();
    assert!(!created);
    assert_eq!(at(&patched.body, "/metadata/labels/tier"), json!("db"));
    // Server-side apply creates what does not exist.
    let manifest = serde_json::to_vec(&claim("applied")).unwrap();
    let (_, created) = r
        .patch(
            Kind::PersistentVolumeClaim,
            "default",
            "applied",
            PatchKind::Apply,
            &manifest,
            Subresource::Main,
            false,
        )
        .unwrap();
    assert!(created);
    // A JSON patch whose test fails is refused whole.
    let failing = br#"[{"op":"add","path":"/metadata/labels/x","value":"y"},{"op":"test","path":"/spec/volumeMode","value":"Block"}]"#;
    let err = r
        .patch(
            Kind::PersistentVolumeClaim,
            "default",
            "c",
            PatchKind::Json,
            failing,
            Subresource::Main,
            false,
        )
        .unwrap_err();
    assert!(matches!(err, ApiError::PatchFailed(_)), "{err}");
    assert_eq!(
        at(
            &r.get(Kind::PersistentVolumeClaim, "default", "c")
                .unwrap()
                .body,
            "/metadata/labels/x"
        ),
        Value::Null
    );
}

#[test]
fn finalizers_hold_a_delete_until_the_last_one_goes() {
    let (_dir, r) = registry();
    r.create(Kind::PersistentVolumeClaim, "default", claim("c"), false)
        .unwrap();
    let Deleted::Marked(marked) = r
        .delete(
            Kind::PersistentVolumeClaim,
            "default",
            "c",
            &DeleteOptions::default(),
        )
        .unwrap()
    else {
        panic!("a claim with the protection finalizer is only marked");
    };
    assert!(marked.body.pointer("/metadata/deletionTimestamp").is_some());
    let mut body = (*marked.body).clone();
    body["metadata"]["finalizers"] = json!([]);
    r.save(Kind::PersistentVolumeClaim, body).unwrap();
    assert!(matches!(
        r.get(Kind::PersistentVolumeClaim, "default", "c"),
        Err(ApiError::NotFound { .. })
    ));
    // Preconditions are checked.
    r.create(
        Kind::StorageClass,
        "",
        json!({"metadata": {"name": "s"}, "provisioner": "p"}),
        false,
    )
    .unwrap();
    let wrong = DeleteOptions {
        uid: Some("not-its-uid".into()),
        ..DeleteOptions::default()
    };
    assert!(matches!(
        r.delete(Kind::StorageClass, "", "s", &wrong),
        Err(ApiError::Conflict { .. })
    ));
    assert!(matches!(
        r.delete(Kind::StorageClass, "", "s", &DeleteOptions::default()),
        Ok(Deleted::Removed(_))
    ));
}

#[test]
fn dry_run_stores_nothing() {
    let (_dir, r) = registry();
    let revision = r.store().revision();
    let made = r
        .create(Kind::PersistentVolumeClaim, "default", claim("c"), true)
        .unwrap();
    assert_eq!(at(&made.body, "/status/phase"), json!("Pending"));
    assert_eq!(r.store().revision(), revision);
    assert!(r.get(Kind::PersistentVolumeClaim, "default", "c").is_err());
}

#[test]
fn built_in_namespaces_cannot_be_deleted() {
    let (_dir, r) = registry();
    let err = r
        .delete(Kind::Namespace, "", "default", &DeleteOptions::default())
        .unwrap_err();
    assert!(matches!(err, ApiError::Forbidden(_)), "{err}");
    r.create(
        Kind::Namespace,
        "",
        json!({"metadata": {"name": "dev"}}),
        false,
    )
    .unwrap();
    r.create(Kind::PersistentVolumeClaim, "dev", claim("c"), false)
        .unwrap();
    // Its claim is held by its finalizer, so the namespace waits too.
    assert!(matches!(
        r.delete(Kind::Namespace, "", "dev", &DeleteOptions::default()),
        Ok(Deleted::Marked(_))
    ));
}
