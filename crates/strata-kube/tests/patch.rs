//! The patch formats, through the public API the API server uses: one table
//! per format, every row `check(kind, patch kind, target, patch, expected)`.

use proptest::prelude::*;
use serde_json::{Value, json};
use strata_kube::Kind;
use strata_kube::patch::{PatchError, PatchKind, apply_patch, parse_apply_body};

use PatchKind::{Apply, Json, Merge, StrategicMerge};

fn check(kind: Kind, patch_kind: PatchKind, target: Value, patch: Value, expected: Value) {
    let body = serde_json::to_vec(&patch).unwrap();
    match apply_patch(kind, patch_kind, &target, &body) {
        Ok(patched) => assert_eq!(
            patched, expected,
            "{patch_kind:?} {patch} on {target} gave {patched}, expected {expected}"
        ),
        Err(error) => panic!("{patch_kind:?} {patch} on {target} failed: {error}"),
    }
}

/// A patch body that fails with exactly `message` and HTTP `status`.
fn check_error(
    kind: Kind,
    patch_kind: PatchKind,
    target: Value,
    body: &str,
    status: u16,
    message: &str,
) {
    match apply_patch(kind, patch_kind, &target, body.as_bytes()) {
        Ok(patched) => {
            panic!("{patch_kind:?} {body} on {target} gave {patched}, expected an error")
        }
        Err(error) => {
            assert_eq!(error.to_string(), message, "{patch_kind:?} {body}");
            assert_eq!(
                error.status_code(),
                status,
                "{patch_kind:?} {body}: {error}"
            );
        }
    }
}

#[test]
fn content_types_name_patch_kinds() {
    fn check(content_type: &str, expected: Option<PatchKind>) {
        assert_eq!(
            PatchKind::from_content_type(content_type),
            expected,
            "{content_type}"
        );
    }
    check("application/json-patch+json", Some(Json));
    check("application/merge-patch+json", Some(Merge));
    check(
        "application/strategic-merge-patch+json",
        Some(StrategicMerge),
    );
    check("application/apply-patch+yaml", Some(Apply));
    check("application/merge-patch+json; charset=utf-8", Some(Merge));
    check("Application/Apply-Patch+YAML ;charset=UTF-8", Some(Apply));
    check(" application/json-patch+json ", Some(Json));
    check("application/json", None);
    check("application/apply-patch+json", None);
    check("", None);
}

#[test]
fn merge_patch_follows_rfc_7386() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!({"a": "foo"}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
        (json!({"a": 1}), json!({}), json!({"a": 1})),
        // No schema: even a merge-keyed list is replaced whole.
        (
            json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "a", "image": "2"}]}}),
            json!({"spec": {"containers": [{"name": "a", "image": "2"}]}}),
        ),
    ];
    for (target, patch, expected) in cases {
        check(Kind::Pod, Merge, target, patch, expected);
    }
}

#[test]
fn json_patch_follows_rfc_6902() {
    let cases = [
        (
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
            json!({"foo": "bar", "baz": "qux"}),
        ),
        (
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
            json!({"foo": ["bar", "qux", "baz"]}),
        ),
        (
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
            json!({"foo": ["bar", ["abc", "def"]]}),
        ),
        (
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "end"}]),
            json!({"foo": ["bar", "end"]}),
        ),
        (
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
            json!({"foo": "bar"}),
        ),
        (
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
            json!({"foo": ["bar", "baz"]}),
        ),
        (
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
            json!({"baz": "boo", "foo": "bar"}),
        ),
        (
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ),
        (
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
            json!({"foo": ["all", "cows", "eat", "grass"]}),
        ),
        (
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a"}]),
            json!({"a": {"b": 1}}),
        ),
        (
            json!({"a": {"b": [1]}}),
            json!([{"op": "copy", "from": "/a/b", "path": "/c"}]),
            json!({"a": {"b": [1]}, "c": [1]}),
        ),
        (
            json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2.0},
                {"op": "test", "path": "", "value": {"foo": ["a", 2, "c"], "baz": "qux"}},
            ]),
            json!({"baz": "qux", "foo": ["a", 2, "c"]}),
        ),
        (
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
            json!({"foo": "bar", "child": {"grandchild": {}}}),
        ),
        (
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
            json!({"foo": "bar", "baz": "qux"}),
        ),
        (
            json!({"/": 9, "~1": 10}),
            json!([
                {"op": "test", "path": "/~01", "value": 10},
                {"op": "replace", "path": "/~1", "value": 11},
            ]),
            json!({"/": 11, "~1": 10}),
        ),
        (
            json!({"metadata": {"name": "pv1"}}),
            json!([{"op": "replace", "path": "", "value": {"metadata": {"name": "pv2"}}}]),
            json!({"metadata": {"name": "pv2"}}),
        ),
        (
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
                {"op": "remove", "path": "/metadata/finalizers/0"},
            ]),
            json!({"metadata": {"finalizers": ["b"]}}),
        ),
        (
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}),
            json!([{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}]),
            json!({"metadata": {"labels": {}}}),
        ),
    ];
    for (target, patch, expected) in cases {
        check(Kind::PersistentVolume, Json, target, patch, expected);
    }
}

#[test]
fn json_patch_errors_name_the_operation() {
    let target = json!({"foo": ["bar"], "baz": {"qux": 1}});
    let cases = [
        (
            r#"[{"op": "remove", "path": "/nope"}]"#,
            422,
            r#"JSON patch operation 0 (op "remove", path "/nope"): the path does not exist"#,
        ),
        (
            r#"[{"op": "test", "path": "/foo/0", "value": "bar"},
                {"op": "test", "path": "/baz/qux", "value": "1"}]"#,
            422,
            r#"JSON patch operation 1 (op "test", path "/baz/qux"): test failed: the value is 1, not "1""#,
        ),
        (
            r#"[{"op": "add", "path": "/a/b", "value": 1}]"#,
            422,
            r#"JSON patch operation 0 (op "add", path "/a/b"): the parent of the path does not exist"#,
        ),
        (
            r#"[{"op": "add", "path": "/foo/2", "value": 1}]"#,
            422,
            r#"JSON patch operation 0 (op "add", path "/foo/2"): "2" is no index into a list of 1: use 0 to 1, or "-" to append"#,
        ),
        (
            r#"[{"op": "replace", "path": "/foo/01", "value": 1}]"#,
            422,
            r#"JSON patch operation 0 (op "replace", path "/foo/01"): the path does not exist"#,
        ),
        (
            r#"[{"op": "replace", "path": "/foo/-", "value": 1}]"#,
            422,
            r#"JSON patch operation 0 (op "replace", path "/foo/-"): the path does not exist"#,
        ),
        (
            r#"[{"op": "replace", "path": "/a~2b", "value": 1}]"#,
            422,
            r#"JSON patch operation 0 (op "replace", path "/a~2b"): "~" in "a~2b" must be followed by 0 (for "~") or 1 (for "/")"#,
        ),
        (
            r#"[{"op": "replace", "path": "baz", "value": 1}]"#,
            422,
            r#"JSON patch operation 0 (op "replace", path "baz"): the path "baz" must be empty or start with "/""#,
        ),
        (
            r#"[{"op": "replace", "path": "/baz"}]"#,
            422,
            r#"JSON patch operation 0 (op "replace", path "/baz"): the operation needs a member "value""#,
        ),
        (
            r#"[{"path": "/baz"}]"#,
            422,
            r#"JSON patch operation 0 (op "", path "/baz"): the operation needs a string member "op""#,
        ),
        (
            r#"[{"op": "merge", "path": "/baz"}]"#,
            422,
            r#"JSON patch operation 0 (op "merge", path "/baz"): unknown op "merge"; expected add, remove, replace, move, copy or test"#,
        ),
        (
            r#"[{"op": "move", "from": "/baz", "path": "/baz/qux/x"}]"#,
            422,
            r#"JSON patch operation 0 (op "move", path "/baz/qux/x"): cannot move a value into one of its own members"#,
        ),
        (
            r#"[{"op": "copy", "from": "/nope", "path": "/x"}]"#,
            422,
            r#"JSON patch operation 0 (op "copy", path "/x"): the "from" path does not exist"#,
        ),
        (
            r#"[{"op": "remove", "path": ""}]"#,
            422,
            r#"JSON patch operation 0 (op "remove", path ""): cannot remove the whole object"#,
        ),
        (
            r#"["add"]"#,
            422,
            r#"JSON patch operation 0 (op "", path ""): an operation must be a JSON object"#,
        ),
        (
            r#"[{"op": "replace", "path": "", "value": 5}]"#,
            422,
            "the patch replaced the whole object with something that is not a JSON object; patch its fields instead",
        ),
        (
            r#"{"op": "add", "path": "/x", "value": 1}"#,
            400,
            r#"a JSON patch must be a list of operations, e.g. [{"op": "replace", "path": "/spec/x", "value": 1}]"#,
        ),
    ];
    for (body, status, message) in cases {
        check_error(Kind::Pod, Json, target.clone(), body, status, message);
    }
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

#[test]
fn strategic_merge_merges_maps_like_merge_patch() {
    let cases = [
        (
            Kind::PersistentVolumeClaim,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}}),
        ),
        (
            Kind::StorageClass,
            json!({"provisioner": "p", "parameters": {"type": "ssd", "zone": "a"}}),
            json!({"parameters": {"zone": "b"}, "reclaimPolicy": "Retain"}),
            json!({"provisioner": "p", "parameters": {"type": "ssd", "zone": "b"}, "reclaimPolicy": "Retain"}),
        ),
        (
            Kind::PersistentVolume,
            json!({"spec": {"capacity": {"storage": "1Gi"}}}),
            json!({"spec": {"capacity": 5}}),
            json!({"spec": {"capacity": 5}}),
        ),
        // Nulls inside a new map are dropped, as merging them onto nothing.
        (
            Kind::Node,
            json!({"metadata": {"name": "n"}}),
            json!({"spec": {"unschedulable": true, "podCIDR": null}}),
            json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
        ),
    ];
    for (kind, target, patch, expected) in cases {
        check(kind, StrategicMerge, target, patch, expected);
    }
}

#[test]
fn strategic_merge_replaces_atomic_lists() {
    let cases = [
        (
            Kind::PersistentVolume,
            json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "mountOptions": ["ro"]}}),
            json!({"spec": {"accessModes": ["ReadWriteMany"], "mountOptions": ["hard", "nfsvers=4.1"]}}),
            json!({"spec": {"accessModes": ["ReadWriteMany"], "mountOptions": ["hard", "nfsvers=4.1"]}}),
        ),
        (
            Kind::PersistentVolumeClaim,
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
            json!({"spec": {"accessModes": ["ReadOnlyMany"]}}),
            json!({"spec": {"accessModes": ["ReadOnlyMany"]}}),
        ),
        (
            Kind::StorageClass,
            json!({"allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}]}),
            json!({"allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["b"]}]}]}),
            json!({"allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["b"]}]}]}),
        ),
        (
            Kind::Pod,
            pod(json!({"tolerations": [{"key": "a", "operator": "Exists"}]})),
            json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
            pod(json!({"tolerations": [{"key": "b", "operator": "Exists"}]})),
        ),
        (
            Kind::Pod,
            json!({"status": {"containerStatuses": [{"name": "a", "ready": true}, {"name": "b", "ready": true}]}}),
            json!({"status": {"containerStatuses": [{"name": "a", "ready": false}]}}),
            json!({"status": {"containerStatuses": [{"name": "a", "ready": false}]}}),
        ),
        // A list merged by key for one kind is atomic for another.
        (
            Kind::PersistentVolume,
            json!({"status": {"conditions": [{"type": "A"}]}}),
            json!({"status": {"conditions": [{"type": "B"}]}}),
            json!({"status": {"conditions": [{"type": "B"}]}}),
        ),
        (
            Kind::Node,
            json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}),
            json!({"spec": {"taints": []}}),
            json!({"spec": {"taints": []}}),
        ),
    ];
    for (kind, target, patch, expected) in cases {
        check(kind, StrategicMerge, target, patch, expected);
    }
}

#[test]
fn strategic_merge_merges_lists_by_key() {
    let cases = [
        // Existing element merged, new one appended.
        (
            Kind::Pod,
            pod(json!({"containers": [{"name": "app", "image": "nginx:1", "args": ["-v"]}]})),
            json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}, {"name": "log", "image": "busybox"}]}}),
            pod(json!({"containers": [
                {"name": "app", "image": "nginx:2", "args": ["-v"]},
                {"name": "log", "image": "busybox"},
            ]})),
        ),
        // Lists inside merged elements use their own keys.
        (
            Kind::Pod,
            pod(json!({"containers": [{
                "name": "app",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "volumeMounts": [{"mountPath": "/data", "name": "data"}],
                "volumeDevices": [{"devicePath": "/dev/xvda", "name": "raw"}],
                "command": ["sh"],
            }]})),
            json!({"spec": {"containers": [{
                "name": "app",
                "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                "ports": [{"containerPort": 443}],
                "volumeMounts": [{"mountPath": "/data", "readOnly": true}],
                "volumeDevices": [{"devicePath": "/dev/xvdb", "name": "raw2"}],
                "command": ["bash"],
            }]}}),
            pod(json!({"containers": [{
                "name": "app",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                "volumeMounts": [{"mountPath": "/data", "name": "data", "readOnly": true}],
                "volumeDevices": [
                    {"devicePath": "/dev/xvda", "name": "raw"},
                    {"devicePath": "/dev/xvdb", "name": "raw2"},
                ],
                "command": ["bash"],
            }]})),
        ),
        (
            Kind::Pod,
            pod(json!({
                "initContainers": [{"name": "init", "image": "a", "env": [{"name": "X", "value": "1"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "imagePullSecrets": [{"name": "registry"}],
            })),
            json!({"spec": {
                "initContainers": [{"name": "init", "env": [{"name": "Y", "value": "2"}]}],
                "volumes": [{"name": "cache", "emptyDir": {}}],
                "imagePullSecrets": [{"name": "mirror"}],
            }}),
            pod(json!({
                "initContainers": [{"name": "init", "image": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
                "imagePullSecrets": [{"name": "registry"}, {"name": "mirror"}],
            })),
        ),
        (
            Kind::Pod,
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "True"},
            ]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"},
            ]}}),
        ),
        (
            Kind::PersistentVolumeClaim,
            json!({"status": {"phase": "Bound", "conditions": [{"type": "Resizing", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "FileSystemResizePending", "status": "True"}]}}),
            json!({"status": {"phase": "Bound", "conditions": [
                {"type": "Resizing", "status": "True"},
                {"type": "FileSystemResizePending", "status": "True"},
            ]}}),
        ),
        (
            Kind::Node,
            json!({"status": {
                "conditions": [{"type": "Ready", "status": "Unknown"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            }}),
            json!({"status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"}],
            }}),
            json!({"status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
            }}),
        ),
        (
            Kind::Namespace,
            json!({"status": {"conditions": [{"type": "A", "status": "False"}]}}),
            json!({"status": {"conditions": [{"type": "A", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "A", "status": "True"}]}}),
        ),
        (
            Kind::StorageClass,
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "controller": true}, {"uid": "3", "name": "c"}]}}),
            json!({"metadata": {"ownerReferences": [
                {"uid": "1", "name": "a"},
                {"uid": "2", "name": "b", "controller": true},
                {"uid": "3", "name": "c"},
            ]}}),
        ),
        // A merged list the target lacks is built from the patch.
        (
            Kind::Pod,
            json!({"metadata": {"name": "p"}}),
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
        ),
    ];
    for (kind, target, patch, expected) in cases {
        check(kind, StrategicMerge, target, patch, expected);
    }
}

#[test]
fn strategic_merge_unions_primitive_merge_lists() {
    let cases = [
        (
            Kind::PersistentVolumeClaim,
            json!({"metadata": {"finalizers": ["kubernetes.io/pvc-protection"]}}),
            json!({"metadata": {"finalizers": ["example.com/keep", "kubernetes.io/pvc-protection"]}}),
            json!({"metadata": {"finalizers": ["kubernetes.io/pvc-protection", "example.com/keep"]}}),
        ),
        (
            Kind::Node,
            json!({"spec": {"podCIDRs": ["10.0.0.0/24"]}}),
            json!({"spec": {"podCIDRs": ["fd00::/64"]}}),
            json!({"spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}),
        ),
        (
            Kind::PersistentVolume,
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c", "z"]}}),
            json!({"metadata": {"finalizers": ["a"]}}),
        ),
        (
            Kind::PersistentVolume,
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
        ),
        (
            Kind::PersistentVolume,
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"finalizers": null}}),
            json!({"metadata": {}}),
        ),
    ];
    for (kind, target, patch, expected) in cases {
        check(kind, StrategicMerge, target, patch, expected);
    }
}

#[test]
fn strategic_merge_honours_patch_directives() {
    let two_containers = pod(json!({"containers": [
        {"name": "app", "image": "a"},
        {"name": "log", "image": "l"},
    ]}));
    let cases = [
        // `$patch: delete` in a list element removes the element with that key.
        (
            two_containers.clone(),
            json!({"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}),
            pod(json!({"containers": [{"name": "app", "image": "a"}]})),
        ),
        // `$patch: replace` as a list element replaces the whole list.
        (
            two_containers.clone(),
            json!({"spec": {"containers": [{"name": "new", "image": "n"}, {"$patch": "replace"}]}}),
            pod(json!({"containers": [{"name": "new", "image": "n"}]})),
        ),
        // `$patch: merge` merges, as without it.
        (
            two_containers.clone(),
            json!({"spec": {"containers": [{"name": "app", "image": "b", "$patch": "merge"}]}}),
            pod(
                json!({"containers": [{"name": "app", "image": "b"}, {"name": "log", "image": "l"}]}),
            ),
        ),
        // `$patch: replace` in a map takes the map literally.
        (
            pod(json!({"nodeSelector": {"zone": "a", "disk": "ssd"}})),
            json!({"spec": {"nodeSelector": {"zone": "b", "$patch": "replace"}}}),
            pod(json!({"nodeSelector": {"zone": "b"}})),
        ),
        // In a list element it marks the whole list for replacement, and
        // that element is dropped, as upstream does.
        (
            two_containers.clone(),
            json!({"spec": {"containers": [
                {"name": "new", "image": "n"},
                {"name": "app", "image": "b", "$patch": "replace"},
            ]}}),
            pod(json!({"containers": [{"name": "new", "image": "n"}]})),
        ),
        // `$patch: delete` in a map deletes the map.
        (
            pod(json!({"nodeSelector": {"zone": "a"}, "hostname": "h"})),
            json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
            pod(json!({"hostname": "h"})),
        ),
        (
            pod(json!({"nodeSelector": {"zone": "a"}})),
            json!({"spec": {"$patch": "merge", "nodeSelector": {"$patch": "merge", "disk": "ssd"}}}),
            pod(json!({"nodeSelector": {"zone": "a", "disk": "ssd"}})),
        ),
        // `$retainKeys` clears the fields of a union not listed (kubectl
        // sends it for volumes when the source type changes).
        (
            pod(
                json!({"volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "tmp", "emptyDir": {}}]}),
            ),
            json!({"spec": {"volumes": [{
                "$retainKeys": ["name", "persistentVolumeClaim"],
                "name": "data",
                "persistentVolumeClaim": {"claimName": "c"},
            }]}}),
            pod(json!({"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
                {"name": "tmp", "emptyDir": {}},
            ]})),
        ),
        // `$setElementOrder` orders the merged list; unmentioned elements
        // keep their relative order after the mentioned ones.
        (
            pod(json!({"containers": [
                {"name": "a", "image": "1"},
                {"name": "injected", "image": "i"},
                {"name": "b", "image": "2"},
                {"name": "other", "image": "o"},
            ]})),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "3"}],
            }}),
            pod(json!({"containers": [
                {"name": "c", "image": "3"},
                {"name": "b", "image": "2"},
                {"name": "a", "image": "1"},
                {"name": "injected", "image": "i"},
                {"name": "other", "image": "o"},
            ]})),
        ),
        // Directives in a list the target lacks are applied to nothing.
        (
            pod(json!({})),
            json!({"spec": {"containers": [
                {"name": "gone", "$patch": "delete"},
                {"name": "a", "env": [{"name": "X", "value": "1", "$patch": "merge"}]},
            ]}}),
            pod(json!({"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]})),
        ),
        // ...and in atomic lists too.
        (
            pod(json!({"tolerations": [{"key": "a"}]})),
            json!({"spec": {"tolerations": [{"key": "b", "$patch": "merge"}, {"$patch": "replace"}]}}),
            pod(json!({"tolerations": [{"key": "b"}]})),
        ),
    ];
    for (target, patch, expected) in cases {
        check(Kind::Pod, StrategicMerge, target, patch, expected);
    }

    let finalizer_cases = [
        (
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "a"]}}),
            json!({"metadata": {"finalizers": ["c", "a", "b"]}}),
        ),
        (
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}),
            json!({"metadata": {"finalizers": ["c", "b", "a"]}}),
        ),
        (
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["c", {"$patch": "replace"}]}}),
            json!({"metadata": {"finalizers": ["c"]}}),
        ),
    ];
    for (target, patch, expected) in finalizer_cases {
        check(
            Kind::PersistentVolumeClaim,
            StrategicMerge,
            target,
            patch,
            expected,
        );
    }
}

/// What client-side `kubectl apply` sends for a changed manifest: the new
/// last-applied annotation, changed fields, removed fields as null, and the
/// order of merged lists.
#[test]
fn strategic_merge_applies_kubectl_apply_patches() {
    let last_applied = "kubectl.kubernetes.io/last-applied-configuration";
    let cases = [
        (
            Kind::Pod,
            json!({
                "metadata": {"name": "web", "annotations": {last_applied: "{\"old\":1}\n"}, "uid": "u1"},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": "envoy:1"},
                    ],
                    "nodeName": "n1",
                },
            }),
            json!({
                "metadata": {"annotations": {last_applied: "{\"new\":1}\n"}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"image": "nginx:1.27", "name": "app"}],
                },
            }),
            json!({
                "metadata": {"name": "web", "annotations": {last_applied: "{\"new\":1}\n"}, "uid": "u1"},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": "envoy:1"},
                    ],
                    "nodeName": "n1",
                },
            }),
        ),
        (
            Kind::PersistentVolumeClaim,
            json!({
                "metadata": {"name": "data", "labels": {"tier": "db", "old": "x"}, "annotations": {last_applied: "{}"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv1"},
                "status": {"phase": "Bound"},
            }),
            json!({
                "metadata": {"annotations": {last_applied: "{\"v\":2}"}, "labels": {"old": null}},
                "spec": {"resources": {"requests": {"storage": "2Gi"}}},
            }),
            json!({
                "metadata": {"name": "data", "labels": {"tier": "db"}, "annotations": {last_applied: "{\"v\":2}"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}, "volumeName": "pv1"},
                "status": {"phase": "Bound"},
            }),
        ),
        (
            Kind::PersistentVolume,
            json!({
                "metadata": {"name": "pv1", "annotations": {last_applied: "{}", "pv.kubernetes.io/bound-by-controller": "yes"}},
                "spec": {
                    "capacity": {"storage": "5Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "mountOptions": ["ro"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "claimRef": {"name": "data", "namespace": "default"},
                },
            }),
            json!({
                "metadata": {"annotations": {last_applied: "{\"v\":2}"}},
                "spec": {"capacity": {"storage": "10Gi"}, "mountOptions": ["hard"], "persistentVolumeReclaimPolicy": null},
            }),
            json!({
                "metadata": {"name": "pv1", "annotations": {last_applied: "{\"v\":2}", "pv.kubernetes.io/bound-by-controller": "yes"}},
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "mountOptions": ["hard"],
                    "claimRef": {"name": "data", "namespace": "default"},
                },
            }),
        ),
    ];
    for (kind, target, patch, expected) in cases {
        check(kind, StrategicMerge, target, patch, expected);
    }
}

#[test]
fn strategic_merge_rejects_malformed_patches() {
    let target = pod(json!({"containers": [{"name": "app"}]}));
    let cases = [
        (
            r#"{"spec": {"containers": [{"image": "x"}]}}"#,
            r#"invalid strategic merge patch at spec.containers: element 0 has no merge key "name""#,
        ),
        (
            r#"{"spec": {"containers": ["app"]}}"#,
            r#"invalid strategic merge patch at spec.containers: element 0 is "app", but this list merges objects by "name""#,
        ),
        (
            r#"{"spec": {"containers": [{"name": "app", "$patch": "remove"}]}}"#,
            r#"invalid strategic merge patch at spec.containers[]: unknown $patch directive "remove"; expected "replace", "merge" or "delete""#,
        ),
        (
            r#"{"spec": {"volumes": [{"name": "v", "$retainKeys": "name"}]}}"#,
            "invalid strategic merge patch at spec.volumes[]: $retainKeys must be a list of field names",
        ),
        (
            r#"{"spec": {"$setElementOrder/containers": {"name": "app"}}}"#,
            "invalid strategic merge patch at spec: $setElementOrder/containers must be a list",
        ),
        (
            r#"{"spec": {"$setElementOrder/containers": [{"name": "app"}, {"image": "x"}]}}"#,
            "invalid strategic merge patch at spec: $setElementOrder/containers: entry 1 has no merge key",
        ),
        (
            r#"{"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}"#,
            "invalid strategic merge patch at metadata: $deleteFromPrimitiveList/finalizers must be a list",
        ),
        (
            r#"{"$patch": "delete"}"#,
            r#"invalid strategic merge patch at the top level: "$patch: delete" cannot delete the whole object"#,
        ),
        (
            r#"[{"op": "add"}]"#,
            "a strategic merge patch must be a JSON object",
        ),
        (
            r#"{"spec": "#,
            "the patch body is not valid JSON: EOF while parsing a value at line 1 column 9",
        ),
    ];
    for (body, message) in cases {
        check_error(
            Kind::Pod,
            StrategicMerge,
            target.clone(),
            body,
            400,
            message,
        );
    }
}

#[test]
fn apply_merges_the_manifest_onto_the_live_object() {
    let live = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default", "uid": "u1", "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv1"},
        "status": {"phase": "Bound"},
    });
    let expected = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default", "uid": "u1", "labels": {"app": "db"}, "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}, "volumeName": "pv1"},
        "status": {"phase": "Bound"},
    });
    let yaml = "\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  labels:
    app: db
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 2Gi
";
    let patched = apply_patch(Kind::PersistentVolumeClaim, Apply, &live, yaml.as_bytes()).unwrap();
    assert_eq!(patched, expected);

    // The same manifest as JSON, through the table helper.
    let manifest = parse_apply_body(yaml.as_bytes()).unwrap();
    check(Kind::PersistentVolumeClaim, Apply, live, manifest, expected);

    // Lists merge by the kind's schema.
    check(
        Kind::Pod,
        Apply,
        pod(
            json!({"containers": [{"name": "app", "image": "a"}, {"name": "injected", "image": "i"}]}),
        ),
        pod(json!({"containers": [{"name": "app", "image": "b"}]})),
        pod(
            json!({"containers": [{"name": "app", "image": "b"}, {"name": "injected", "image": "i"}]}),
        ),
    );
}

#[test]
fn apply_bodies_parse_as_yaml_or_json() {
    fn check(body: &str, expected: Result<Value, &str>) {
        let parsed = parse_apply_body(body.as_bytes()).map_err(|e| e.to_string());
        match (parsed, expected) {
            (Ok(parsed), Ok(expected)) => assert_eq!(parsed, expected, "{body}"),
            (Err(message), Err(expected)) => {
                assert!(message.starts_with(expected), "{body}: {message}")
            }
            (parsed, expected) => panic!("{body}: got {parsed:?}, expected {expected:?}"),
        }
    }
    check(
        "kind: StorageClass\nprovisioner: strata.csi\nallowVolumeExpansion: true\nparameters:\n  replicas: \"3\"\n",
        Ok(
            json!({"kind": "StorageClass", "provisioner": "strata.csi", "allowVolumeExpansion": true, "parameters": {"replicas": "3"}}),
        ),
    );
    check(
        "{\"kind\": \"Pod\", \"spec\": {\"priority\": 18446744073709551615}}",
        Ok(json!({"kind": "Pod", "spec": {"priority": 18446744073709551615u64}})),
    );
    check(
        "metadata:\n  finalizers:\n  - a\n  - b\n  annotations: {x: ~}\n",
        Ok(json!({"metadata": {"finalizers": ["a", "b"], "annotations": {"x": null}}})),
    );
    check("- a\n- b\n", Err("the apply body must be a JSON object"));
    check("", Err("the apply body must be a JSON object"));
    check(
        "kind: [unclosed\n",
        Err("the apply body is neither valid JSON nor valid YAML: "),
    );
}

#[test]
fn apply_errors_are_bad_requests() {
    let live = json!({"metadata": {"name": "x"}});
    match apply_patch(Kind::StorageClass, Apply, &live, b"kind: [") {
        Err(error @ PatchError::InvalidYaml(_)) => assert_eq!(error.status_code(), 400),
        other => panic!("expected a YAML error, got {other:?}"),
    }
    check_error(
        Kind::StorageClass,
        Apply,
        live,
        "42",
        400,
        "the apply body must be a JSON object",
    );
}

/// Any JSON, with the keys and words patches use, so that generated
/// values often hit directives, merge keys and operations.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("merge"),
        Just("replace"),
        Just("delete"),
        Just("add"),
        Just("remove"),
        Just("move"),
        Just("copy"),
        Just("test"),
        Just(""),
        Just("/a"),
        Just("/spec/containers/0"),
        Just("/metadata/finalizers/-"),
        Just("/~"),
        Just("app"),
    ]
    .prop_map(Value::from);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word,
    ];
    let key = prop_oneof![
        Just("$patch"),
        Just("$retainKeys"),
        Just("$setElementOrder/containers"),
        Just("$setElementOrder/finalizers"),
        Just("$deleteFromPrimitiveList/finalizers"),
        Just("metadata"),
        Just("finalizers"),
        Just("spec"),
        Just("containers"),
        Just("env"),
        Just("name"),
        Just("op"),
        Just("path"),
        Just("from"),
        Just("value"),
        Just("a"),
    ]
    .prop_map(String::from);
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A flat object of non-null scalars.
fn flat_object() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    let scalar = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::from),
    ];
    prop::collection::btree_map("[a-e]", scalar, 0..5)
        .prop_map(|fields| fields.into_iter().collect())
}

proptest! {
    #[test]
    fn merge_patch_of_the_difference_yields_the_new_object(a in flat_object(), b in flat_object()) {
        let mut patch = b.clone();
        for key in a.keys().filter(|key| !b.contains_key(*key)) {
            patch.insert(key.clone(), Value::Null);
        }
        let body = serde_json::to_vec(&patch).unwrap();
        for kind in [Merge, StrategicMerge] {
            let patched = apply_patch(Kind::Pod, kind, &Value::Object(a.clone()), &body).unwrap();
            prop_assert_eq!(patched, Value::Object(b.clone()));
        }
    }

    #[test]
    fn patches_never_panic(target in arbitrary_json(), patch in arbitrary_json()) {
        let body = serde_json::to_vec(&patch).unwrap();
        for kind in Kind::ALL {
            for patch_kind in PatchKind::ALL {
                if let Ok(patched) = apply_patch(kind, patch_kind, &target, &body) {
                    prop_assert!(patched.is_object());
                }
            }
        }
    }

    #[test]
    fn json_pointers_unescape_any_member_name(name in ".*", value in any::<i64>()) {
        let pointer = format!("/{}", name.replace('~', "~0").replace('/', "~1"));
        let patch = json!([
            {"op": "add", "path": pointer, "value": value},
            {"op": "test", "path": pointer, "value": value},
        ]);
        let body = serde_json::to_vec(&patch).unwrap();
        let patched = apply_patch(Kind::Event, Json, &json!({}), &body).unwrap();
        prop_assert_eq!(patched, json!({name: value}));
    }

    #[test]
    fn content_type_parameters_are_ignored(params in "[ -~]*") {
        for kind in PatchKind::ALL {
            let content_type = format!("{};{params}", kind.content_type());
            prop_assert_eq!(PatchKind::from_content_type(&content_type), Some(kind));
        }
    }
}
