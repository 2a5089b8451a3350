//! Validation of Pods: the containers and volumes Strata can run, and the
//! few spec changes upstream allows once a pod exists.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Volume};
use serde_json::{Map, Value};

use super::names;
use super::validate::{duplicate, host_path, name, not_found, one_of, required_because};
use crate::error::Cause;

/// The volume sources Strata mounts. Upstream knows many more; they are
/// refused as unsupported rather than accepted and never mounted.
const VOLUME_SOURCES: [&str; 3] = ["emptyDir", "hostPath", "persistentVolumeClaim"];
const RESTART_POLICIES: [&str; 3] = ["Always", "OnFailure", "Never"];
const DNS_POLICIES: [&str; 4] = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];

pub(super) fn pod(pod: &Pod, body: &Value) -> Vec<Cause> {
    let mut causes = name(&pod.metadata, names::dns1123_subdomain);
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    let volume_bodies = body
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    causes.extend(check_volumes(volumes, volume_bodies));
    let volume_names: HashSet<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    causes.extend(check_containers(spec, &volume_names));
    match spec.restart_policy.as_deref() {
        None | Some("") => causes.push(Cause::required("spec.restartPolicy")),
        policy => causes.extend(one_of("spec.restartPolicy", policy, &RESTART_POLICIES)),
    }
    causes.extend(one_of(
        "spec.dnsPolicy",
        spec.dns_policy.as_deref(),
        &DNS_POLICIES,
    ));
    causes
}

/// Names unique DNS-1123 labels; each volume exactly one supported source.
fn check_volumes(volumes: &[Volume], bodies: &[Value]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen = HashSet::new();
    for (i, (volume, body)) in volumes.iter().zip(bodies).enumerate() {
        let field = format!("spec.volumes[{i}]");
        causes.extend(unique_label(
            &format!("{field}.name"),
            &volume.name,
            &mut seen,
        ));
        let no_sources = Map::new();
        causes.extend(volume_source(
            &field,
            body.as_object().unwrap_or(&no_sources),
        ));
        if let Some(source) = &volume.host_path {
            causes.extend(host_path(&format!("{field}.hostPath"), source));
        }
        if let Some(claim) = &volume.persistent_volume_claim
            && claim.claim_name.is_empty()
        {
            causes.push(Cause::required(&format!(
                "{field}.persistentVolumeClaim.claimName"
            )));
        }
    }
    causes
}

/// Exactly one source, and one Strata supports. Every key but `name` is a
/// source, so sources Strata does not know are refused too. Sources are
/// taken in name order, whatever order the client wrote them in.
fn volume_source(field: &str, volume: &Map<String, Value>) -> Vec<Cause> {
    let mut sources: Vec<&str> = volume
        .iter()
        .filter(|(key, value)| *key != "name" && !value.is_null())
        .map(|(key, _)| key.as_str())
        .collect();
    sources.sort_unstable();
    let mut sources = sources.into_iter();
    let Some(first) = sources.next() else {
        return vec![required_because(field, "must specify a volume type")];
    };
    let mut causes: Vec<Cause> = sources
        .map(|extra| {
            Cause::forbidden(
                &format!("{field}.{extra}"),
                "may not specify more than 1 volume type",
            )
        })
        .collect();
    if !VOLUME_SOURCES.contains(&first) {
        causes.push(Cause::not_supported(field, first, &VOLUME_SOURCES));
    }
    causes
}

/// At least one container; init and app containers together have unique
/// label names, an image, and mounts of declared volumes at distinct
/// paths.
fn check_containers(spec: &PodSpec, volume_names: &HashSet<&str>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if spec.containers.is_empty() {
        causes.push(Cause::required("spec.containers"));
    }
    let mut seen = HashSet::new();
    let init = spec.init_containers.iter().flatten().enumerate();
    let init = init.map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
    let main = spec.containers.iter().enumerate();
    let main = main.map(|(i, c)| (format!("spec.containers[{i}]"), c));
    for (field, container) in init.chain(main) {
        causes.extend(unique_label(
            &format!("{field}.name"),
            &container.name,
            &mut seen,
        ));
        if container.image.as_deref().unwrap_or_default().is_empty() {
            causes.push(Cause::required(&format!("{field}.image")));
        }
        causes.extend(check_mounts(&field, container, volume_names));
    }
    causes
}

fn check_mounts(field: &str, container: &Container, volume_names: &HashSet<&str>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut paths = HashSet::new();
    for (j, mount) in container.volume_mounts.iter().flatten().enumerate() {
        let field = format!("{field}.volumeMounts[{j}]");
        if mount.name.is_empty() {
            causes.push(Cause::required(&format!("{field}.name")));
        } else if !volume_names.contains(mount.name.as_str()) {
            causes.push(not_found(&format!("{field}.name"), &mount.name));
        }
        if mount.mount_path.is_empty() {
            causes.push(Cause::required(&format!("{field}.mountPath")));
        } else if !paths.insert(mount.mount_path.as_str()) {
            causes.push(Cause::invalid(
                &format!("{field}.mountPath"),
                &mount.mount_path,
                "must be unique",
            ));
        }
    }
    causes
}

/// A required DNS-1123 label not seen before among its siblings.
fn unique_label<'a>(field: &str, value: &'a str, seen: &mut HashSet<&'a str>) -> Vec<Cause> {
    if value.is_empty() {
        return vec![Cause::required(field)];
    }
    let mut causes: Vec<Cause> = names::dns1123_label(value)
        .iter()
        .map(|why| Cause::invalid(field, value, why))
        .collect();
    if !seen.insert(value) {
        causes.push(duplicate(field, value));
    }
    causes
}

const IMMUTABLE_SPEC: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations) and `spec.nodeName` (only once, when the pod is scheduled)";

/// After creation a pod may only change its images, shorten its deadline,
/// add tolerations, and be given a node once.
pub(super) fn pod_update(old: &Pod, new: &Pod, old_body: &Value, new_body: &Value) -> Vec<Cause> {
    let deadline = |pod: &Pod| pod.spec.as_ref().and_then(|s| s.active_deadline_seconds);
    let mut causes: Vec<Cause> = deadline_change(deadline(old), deadline(new))
        .into_iter()
        .collect();
    let null = Value::Null;
    let old_spec = old_body.get("spec").unwrap_or(&null);
    let new_spec = new_body.get("spec").unwrap_or(&null);
    if &without_mutable_changes(old_spec, new_spec) != old_spec {
        causes.push(Cause::forbidden("spec", IMMUTABLE_SPEC));
    }
    causes
}

/// A deadline may be set or lowered, never raised or removed.
fn deadline_change(old: Option<i64>, new: Option<i64>) -> Option<Cause> {
    let field = "spec.activeDeadlineSeconds";
    match (old, new) {
        (Some(old), Some(new)) if new > old => Some(Cause::invalid(
            field,
            new,
            "must be less than or equal to previous value",
        )),
        (Some(_), None) => Some(Cause::invalid(
            field,
            "nil",
            "must not update from a positive integer to nil value",
        )),
        _ => None,
    }
}

/// `new` with every change upstream allows undone, so that it equals `old`
/// exactly when nothing else changed.
fn without_mutable_changes(old: &Value, new: &Value) -> Value {
    let mut result = new.clone();
    let Some(spec) = result.as_object_mut() else {
        return result;
    };
    for list in ["containers", "initContainers"] {
        restore_images(spec, old.get(list), list);
    }
    restore(spec, old, "activeDeadlineSeconds");
    if tolerations_only_added(old.get("tolerations"), spec.get("tolerations")) {
        restore(spec, old, "tolerations");
    }
    let scheduled_before = old
        .get("nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !scheduled_before {
        restore(spec, old, "nodeName");
    }
    result
}

/// Sets `spec[key]` to what `old` has there (removing it if `old` has
/// none).
fn restore(spec: &mut Map<String, Value>, old: &Value, key: &str) {
    match old.get(key) {
        Some(value) => spec.insert(key.into(), value.clone()),
        None => spec.remove(key),
    };
}

/// Puts each container's old image back, position by position.
fn restore_images(spec: &mut Map<String, Value>, old: Option<&Value>, list: &str) {
    let old = old
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(new) = spec.get_mut(list).and_then(Value::as_array_mut) else {
        return;
    };
    for (new, old) in new.iter_mut().zip(old) {
        if let Some(new) = new.as_object_mut() {
            restore(new, old, "image");
        }
    }
}

/// Whether every old toleration is still there (new ones may be added).
fn tolerations_only_added(old: Option<&Value>, new: Option<&Value>) -> bool {
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let new = list(new);
    list(old).iter().all(|toleration| new.contains(toleration))
}
