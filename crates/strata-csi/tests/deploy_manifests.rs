//! The Kubernetes manifests under `deploy/kubernetes`: every document parses;
//! every kind that k8s-openapi knows goes through its typed struct and back
//! without losing a field (so a misspelt field fails here instead of being
//! silently dropped by the API server); the two snapshot CRD kinds are held to
//! a hand-written field list; and the files agree with each other (driver
//! name, socket paths, ServiceAccounts, roles).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const DRIVER: &str = "csi.strata.dev";

/// One YAML document of one manifest file.
struct Doc {
    /// File path relative to `deploy/kubernetes`, and the document's index in it.
    at: String,
    value: Value,
}

impl Doc {
    fn str_at(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn kind(&self) -> &str {
        self.str_at("/kind")
    }
    fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }
    fn namespace(&self) -> &str {
        self.str_at("/metadata/namespace")
    }
    fn label(&self) -> String {
        format!("{} {}/{}", self.at, self.kind(), self.name())
    }
}

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(path);
        }
    }
}

/// The documents of a multi-document YAML text, split on `---` lines; those
/// holding only comments and blank lines are left out.
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let current = docs.last_mut().expect("at least one document");
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.retain(|doc| {
        doc.lines()
            .map(str::trim)
            .any(|line| !line.is_empty() && !line.starts_with('#'))
    });
    docs
}

/// Every document of every manifest, or the reasons some could not be read.
fn load() -> (Vec<Doc>, Vec<String>) {
    let root = manifest_dir();
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no manifests under {}", root.display());

    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        for (i, source) in split_documents(&text).iter().enumerate() {
            let at = format!("{rel}#{i}");
            match serde_saphyr::from_str::<Value>(source) {
                Ok(value) => docs.push(Doc { at, value }),
                Err(e) => errors.push(format!("{at}: not YAML: {e}")),
            }
        }
    }
    (docs, errors)
}

/// Where `back` (the typed round trip) lacks or changed a field of `original`.
fn lost_fields(path: &str, original: &Value, back: &Value, lost: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(original), Value::Object(back)) => {
            for (key, value) in original {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match back.get(key) {
                    Some(back) => lost_fields(&path, value, back, lost),
                    None => lost.push(format!("{path}: dropped (unknown or misspelt field)")),
                }
            }
        }
        (Value::Array(original), Value::Array(back)) if original.len() == back.len() => {
            for (i, (value, back)) in original.iter().zip(back).enumerate() {
                lost_fields(&format!("{path}[{i}]"), value, back, lost);
            }
        }
        (original, back) if same_scalar(original, back) => {}
        (original, back) => lost.push(format!("{path}: {original} came back as {back}")),
    }
}

/// Equal, allowing for the normalising the typed structs do: a quantity
/// written as a number comes back as its string, and integers may change
/// representation.
fn same_scalar(original: &Value, back: &Value) -> bool {
    match (original, back) {
        (Value::Number(n), Value::String(s)) => n.to_string() == *s,
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        _ => original == back,
    }
}

/// Deserializes `value` into `T` and back, and fails if any field of `value`
/// is missing or different afterwards.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let typed: T =
        serde_json::from_value(value.clone()).map_err(|e| format!("does not fit: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("does not serialize: {e}"))?;
    let mut lost = Vec::new();
    lost_fields("", value, &back, &mut lost);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(lost.join("; "))
    }
}

/// The per-document check for a kind k8s-openapi has a type for.
fn check<T: Resource + DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    if api_version != Some(T::API_VERSION) {
        return Err(format!(
            "apiVersion {api_version:?}, {} is {}",
            T::KIND,
            T::API_VERSION
        ));
    }
    round_trip::<T>(value)
}

/// A CRD kind k8s-openapi does not have: its apiVersion, the fields allowed
/// and required at each listed path (`""` is the top level), and metadata
/// checked as an ObjectMeta.
struct CrdFields {
    api_version: &'static str,
    paths: &'static [(
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    )],
}

const VOLUME_SNAPSHOT_CLASS: CrdFields = CrdFields {
    api_version: "snapshot.storage.k8s.io/v1",
    paths: &[(
        "",
        &[
            "apiVersion",
            "kind",
            "metadata",
            "driver",
            "deletionPolicy",
            "parameters",
        ],
        &["driver", "deletionPolicy"],
    )],
};

const VOLUME_SNAPSHOT: CrdFields = CrdFields {
    api_version: "snapshot.storage.k8s.io/v1",
    paths: &[
        ("", &["apiVersion", "kind", "metadata", "spec"], &["spec"]),
        ("spec", &["source", "volumeSnapshotClassName"], &["source"]),
        (
            "spec.source",
            &["persistentVolumeClaimName", "volumeSnapshotContentName"],
            &[],
        ),
    ],
};

fn check_crd(value: &Value, fields: &CrdFields) -> Result<(), String> {
    let mut problems = Vec::new();
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    if api_version != Some(fields.api_version) {
        problems.push(format!(
            "apiVersion {api_version:?}, want {}",
            fields.api_version
        ));
    }
    if let Err(e) = round_trip::<ObjectMeta>(&value["metadata"]) {
        problems.push(format!("metadata: {e}"));
    }
    for (path, allowed, required) in fields.paths {
        let pointer: String = path
            .split('.')
            .filter(|p| !p.is_empty())
            .map(|p| format!("/{p}"))
            .collect();
        let Some(object) = value.pointer(&pointer).and_then(Value::as_object) else {
            continue;
        };
        let at = |key: &str| {
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        };
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                problems.push(format!("{}: unknown field", at(key)));
            }
        }
        for key in *required {
            if !object.contains_key(*key) {
                problems.push(format!("{}: missing", at(key)));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The check table: one entry per kind the manifests may hold.
fn validate(doc: &Doc) -> Result<(), String> {
    let v = &doc.value;
    match doc.kind() {
        "Namespace" => check::<Namespace>(v),
        "ServiceAccount" => check::<ServiceAccount>(v),
        "ClusterRole" => check::<ClusterRole>(v),
        "ClusterRoleBinding" => check::<ClusterRoleBinding>(v),
        "Role" => check::<Role>(v),
        "RoleBinding" => check::<RoleBinding>(v),
        "DaemonSet" => check::<DaemonSet>(v),
        "Deployment" => check::<Deployment>(v),
        "StatefulSet" => check::<StatefulSet>(v),
        "CSIDriver" => check::<CSIDriver>(v),
        "StorageClass" => check::<StorageClass>(v),
        "PersistentVolumeClaim" => check::<PersistentVolumeClaim>(v),
        "Pod" => check::<Pod>(v),
        "VolumeSnapshotClass" => check_crd(v, &VOLUME_SNAPSHOT_CLASS),
        "VolumeSnapshot" => check_crd(v, &VOLUME_SNAPSHOT),
        other => Err(format!("kind {other:?} has no check in this test")),
    }
}

#[test]
fn every_manifest_document_checks_out() {
    let (docs, mut errors) = load();
    for doc in &docs {
        for field in ["/apiVersion", "/kind", "/metadata/name"] {
            if doc.str_at(field).is_empty() {
                errors.push(format!("{}: no {field}", doc.at));
            }
        }
        if let Err(e) = validate(doc) {
            errors.push(format!("{}: {e}", doc.label()));
        }
    }
    let mut seen = BTreeSet::new();
    for doc in &docs {
        if !seen.insert((doc.kind(), doc.namespace(), doc.name())) {
            errors.push(format!("{}: defined twice", doc.label()));
        }
    }
    assert!(
        errors.is_empty(),
        "manifest problems:\n{}",
        errors.join("\n")
    );

    let kinds: BTreeSet<&str> = docs.iter().map(Doc::kind).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "CSIDriver",
        "StorageClass",
        "VolumeSnapshotClass",
        "PersistentVolumeClaim",
        "Pod",
        "VolumeSnapshot",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the manifests");
    }
}

fn of_kind<'a>(docs: &'a [Doc], kind: &'a str) -> impl Iterator<Item = &'a Doc> {
    docs.iter().filter(move |d| d.kind() == kind)
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The value of `--flag=value` or `--flag value` in a container's args.
fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == name {
            args.get(i + 1).copied()
        } else {
            arg.strip_prefix(name)?.strip_prefix('=')
        }
    })
}

/// Where `path` inside `container` is on the host, through the pod's hostPath
/// volumes (the longest matching mount wins).
fn host_path(pod: &Value, container: &Value, path: &str) -> Option<PathBuf> {
    let mount = container["volumeMounts"]
        .as_array()?
        .iter()
        .filter(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|dir| Path::new(path).starts_with(dir))
        })
        .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))?;
    let volume = pod["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    let host = volume["hostPath"]["path"].as_str()?;
    let rest = Path::new(path)
        .strip_prefix(mount["mountPath"].as_str()?)
        .ok()?;
    Some(Path::new(host).join(rest))
}

#[test]
fn manifests_agree_with_each_other() {
    let (docs, errors) = load();
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // One driver name, used by every class.
    let drivers: Vec<&str> = of_kind(&docs, "CSIDriver").map(Doc::name).collect();
    assert_eq!(drivers, [DRIVER], "exactly one CSIDriver, named {DRIVER}");
    for class in of_kind(&docs, "StorageClass") {
        assert_eq!(class.str_at("/provisioner"), DRIVER, "{}", class.label());
    }
    for class in of_kind(&docs, "VolumeSnapshotClass") {
        assert_eq!(class.str_at("/driver"), DRIVER, "{}", class.label());
    }

    // The node plugin: the driver serves CSI on the socket the registrar
    // announces to kubelet, and every sidecar dials that same socket.
    let plugin = of_kind(&docs, "DaemonSet")
        .find(|d| d.name() == "strata-csi-node")
        .expect("DaemonSet strata-csi-node");
    let pod = &plugin.value["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    let container = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in {}", plugin.label()))
    };

    let strata = container("strata");
    let args = strings(&strata["args"]);
    assert!(args.join(" ").contains("csi serve"), "strata args {args:?}");
    for service in ["--controller", "--node"] {
        assert!(
            args.contains(&service),
            "strata args {args:?} lack {service}"
        );
    }
    assert_eq!(flag(&args, "--node-id"), Some("$(KUBE_NODE_NAME)"));
    let node_name = strata["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == "KUBE_NODE_NAME"))
        .expect("KUBE_NODE_NAME in strata's env");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(strata["securityContext"]["privileged"], true);
    for dir in ["/var/lib/kubelet", "/var/lib/strata"] {
        let mount = strata["volumeMounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mountPath"] == dir))
            .unwrap_or_else(|| panic!("strata does not mount {dir}"));
        assert_eq!(mount["mountPropagation"], "Bidirectional", "{dir}");
        assert_eq!(host_path(pod, strata, dir).as_deref(), Some(Path::new(dir)));
    }

    let endpoint = flag(&args, "--endpoint").expect("strata --endpoint");
    let socket = endpoint
        .strip_prefix("unix://")
        .expect("a unix:// endpoint");
    let served = host_path(pod, strata, socket).expect("the driver socket is on a hostPath");

    let registrar = container("node-driver-registrar");
    let registrar_args = strings(&registrar["args"]);
    let registration =
        flag(&registrar_args, "--kubelet-registration-path").expect("--kubelet-registration-path");
    assert_eq!(
        served.parent(),
        Path::new(registration).parent(),
        "the driver's socket dir on the host is the registration path's dir"
    );
    assert_eq!(served, Path::new(registration));
    assert_eq!(
        served,
        Path::new("/var/lib/kubelet/plugins")
            .join(DRIVER)
            .join("csi.sock")
    );
    let registry = host_path(pod, registrar, "/registration").expect("registration dir");
    assert_eq!(registry, Path::new("/var/lib/kubelet/plugins_registry"));

    let mut sidecars = BTreeSet::new();
    for c in containers {
        let args = strings(&c["args"]);
        if let Some(address) = flag(&args, "--csi-address") {
            let name = c["name"].as_str().unwrap_or("");
            let dialed = host_path(pod, c, address);
            assert_eq!(dialed.as_ref(), Some(&served), "{name} dials {address}");
            sidecars.insert(name);
        }
    }
    for name in [
        "node-driver-registrar",
        "csi-provisioner",
        "csi-snapshotter",
        "csi-resizer",
        "liveness-probe",
    ] {
        assert!(sidecars.contains(name), "no sidecar {name} on the socket");
    }
    let provisioner = strings(&container("csi-provisioner")["args"]);
    for arg in [
        "--feature-gates=Topology=true",
        "--node-deployment=true",
        "--strict-topology=true",
        "--immediate-topology=false",
        "--extra-create-metadata=true",
    ] {
        assert!(provisioner.contains(&arg), "csi-provisioner lacks {arg}");
    }

    // Every ServiceAccount a workload runs as exists, in its namespace.
    let accounts: BTreeSet<(&str, &str)> = of_kind(&docs, "ServiceAccount")
        .map(|d| (d.namespace(), d.name()))
        .collect();
    let namespaces: BTreeSet<&str> = of_kind(&docs, "Namespace").map(Doc::name).collect();
    for doc in &docs {
        let spec = match doc.kind() {
            "DaemonSet" | "Deployment" | "StatefulSet" => &doc.value["spec"]["template"]["spec"],
            "Pod" => &doc.value["spec"],
            _ => continue,
        };
        if let Some(account) = spec["serviceAccountName"].as_str() {
            assert!(
                accounts.contains(&(doc.namespace(), account)),
                "{} runs as missing ServiceAccount {}/{account}",
                doc.label(),
                doc.namespace()
            );
        } else {
            assert_eq!(doc.kind(), "Pod", "{} names no ServiceAccount", doc.label());
        }
    }
    for doc in &docs {
        let ns = doc.namespace();
        assert!(
            ns.is_empty() || namespaces.contains(ns),
            "{} is in namespace {ns}, which no manifest creates",
            doc.label()
        );
    }

    // Every binding points at a role and at ServiceAccounts that exist.
    let cluster_roles: BTreeSet<&str> = of_kind(&docs, "ClusterRole").map(Doc::name).collect();
    let roles: BTreeSet<(&str, &str)> = of_kind(&docs, "Role")
        .map(|d| (d.namespace(), d.name()))
        .collect();
    let mut bound: BTreeMap<&str, usize> = BTreeMap::new();
    for binding in of_kind(&docs, "ClusterRoleBinding").chain(of_kind(&docs, "RoleBinding")) {
        let role = binding.str_at("/roleRef/name");
        match binding.str_at("/roleRef/kind") {
            "ClusterRole" => {
                assert!(
                    cluster_roles.contains(role),
                    "{}: no ClusterRole {role}",
                    binding.label()
                );
                *bound.entry(role).or_default() += 1;
            }
            "Role" => assert!(
                roles.contains(&(binding.namespace(), role)),
                "{}: no Role {role} in {}",
                binding.label(),
                binding.namespace()
            ),
            other => panic!("{}: roleRef kind {other:?}", binding.label()),
        }
        assert_eq!(
            binding.str_at("/roleRef/apiGroup"),
            "rbac.authorization.k8s.io"
        );
        let subjects = binding.value["subjects"].as_array().expect("subjects");
        assert!(!subjects.is_empty(), "{}: no subjects", binding.label());
        for subject in subjects {
            assert_eq!(subject["kind"], "ServiceAccount", "{}", binding.label());
            let ns = subject["namespace"].as_str().unwrap_or("");
            let name = subject["name"].as_str().unwrap_or("");
            assert!(
                accounts.contains(&(ns, name)),
                "{}: no ServiceAccount {ns}/{name}",
                binding.label()
            );
        }
    }
    for role in &cluster_roles {
        assert!(
            bound.contains_key(role),
            "ClusterRole {role} is bound to nothing"
        );
    }
}

#[test]
fn a_misspelt_field_fails_the_checks() {
    let pod = r#"
apiVersion: v1
kind: Pod
metadata:
  name: typo
spec:
  containers:
    - name: app
      image: busybox:1.36
      imagePullPolcy: IfNotPresent
"#;
    let value: Value = serde_saphyr::from_str(pod).expect("valid YAML");
    let err = check::<Pod>(&value).expect_err("a misspelt field must fail");
    assert!(
        err.contains("spec.containers[0].imagePullPolcy"),
        "error names the field: {err}"
    );
    let fixed: Value =
        serde_saphyr::from_str(&pod.replace("imagePullPolcy", "imagePullPolicy")).expect("YAML");
    check::<Pod>(&fixed).expect("the spelled-right pod passes");

    // A field of the wrong type, and a kind under the wrong type's check.
    let bad_type = fixed_with(&fixed, "/spec/containers/0/image", Value::from(7));
    assert!(check::<Pod>(&bad_type).is_err());
    assert!(check::<Namespace>(&fixed).is_err());

    let class = r#"
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: typo
driver: csi.strata.dev
deletionPolcy: Delete
"#;
    let value: Value = serde_saphyr::from_str(class).expect("valid YAML");
    let err = check_crd(&value, &VOLUME_SNAPSHOT_CLASS).expect_err("a misspelt CRD field");
    assert!(
        err.contains("deletionPolcy: unknown field") && err.contains("deletionPolicy: missing"),
        "{err}"
    );
}

fn fixed_with(value: &Value, pointer: &str, new: Value) -> Value {
    let mut value = value.clone();
    *value.pointer_mut(pointer).expect("pointer exists") = new;
    value
}

#[test]
fn documents_split_on_separator_lines_only() {
    let text = "# header\n---\na: 1\n---\n# only a comment\n---\nb: \"---\"\n";
    assert_eq!(split_documents(text), ["a: 1\n", "b: \"---\"\n"]);
}
