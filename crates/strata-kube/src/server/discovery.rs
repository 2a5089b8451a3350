//! Legacy (non-aggregated) discovery: the documents kubectl reads to learn
//! which resources exist, their kinds, scopes, verbs and short names.

use serde_json::{Value, json};

use crate::kinds::Kind;

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The Kubernetes release whose API we follow (kubectl checks skew).
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32",
        "gitVersion": concat!("v1.32.0+strata-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
        "goVersion": "", "compiler": "rustc", "platform": "linux/amd64",
    })
}

pub fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&str> = Kind::ALL
        .iter()
        .map(|k| k.info().group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    groups
}

fn group(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": name,
        "versions": [version.clone()], "preferredVersion": version,
    })
}

pub fn group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(group).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn one_group(name: &str) -> Option<Value> {
    groups().contains(&name).then(|| group(name))
}

/// `APIResourceList` for a group version, None if we serve nothing there.
pub fn resources(group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| k.info().group == group && k.info().version == version)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for kind in kinds {
        let info = kind.info();
        resources.push(json!({
            "name": info.plural, "singularName": info.singular,
            "namespaced": info.namespaced, "kind": info.kind,
            "verbs": VERBS, "shortNames": info.short_names,
        }));
        if info.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", info.plural), "singularName": "",
                "namespaced": info.namespaced, "kind": info.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if kind == Kind::Pod {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version, "resources": resources,
    }))
}
