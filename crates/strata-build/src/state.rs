//! A build state's image config, edited the way each instruction does.
//! Field names are Docker's (`Env`, `Cmd`, `WorkingDir`, ...).

use serde_json::{Map, Value, json};
use strata_image::build_cache::BuildState;
use strata_store::Digest;
use strata_store::meta::images::LayerRow;

/// PATH when the image sets none, as Docker's.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The state FROM scratch: no layers, an empty config.
pub(crate) fn scratch() -> BuildState {
    BuildState {
        config: json!({
            "architecture": strata_image::config::host_architecture(),
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }),
        layers: Vec::new(),
    }
}

/// The identity of a state: the digest of its config (its layers are in
/// the config's diff IDs). A cache key names the state before the step.
pub(crate) fn id(state: &BuildState) -> Digest {
    Digest::of(&serde_json::to_vec(&state.config).expect("json values serialize"))
}

fn top(state: &mut BuildState) -> &mut Map<String, Value> {
    if !state.config.is_object() {
        state.config = json!({});
    }
    state.config.as_object_mut().expect("made an object")
}

/// The container config part (`config` in the image config).
pub(crate) fn container(state: &mut BuildState) -> &mut Map<String, Value> {
    let top = top(state);
    if !top.get("config").is_some_and(Value::is_object) {
        top.insert("config".into(), json!({}));
    }
    top.get_mut("config")
        .and_then(Value::as_object_mut)
        .expect("made an object")
}

pub(crate) fn get_str(state: &BuildState, field: &str) -> String {
    state.config["config"][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn get_list(state: &BuildState, field: &str) -> Vec<String> {
    state.config["config"][field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn env(state: &BuildState) -> Vec<String> {
    get_list(state, "Env")
}

pub(crate) fn env_var(state: &BuildState, name: &str) -> Option<String> {
    env(state).into_iter().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

pub(crate) fn set_env(state: &mut BuildState, name: &str, value: &str) {
    let mut env = env(state);
    let entry = format!("{name}={value}");
    match env
        .iter_mut()
        .find(|kv| kv.split_once('=').is_some_and(|(k, _)| k == name))
    {
        Some(kv) => *kv = entry,
        None => env.push(entry),
    }
    container(state).insert("Env".into(), json!(env));
}

/// Adds `key: {}` to an object field (`ExposedPorts`, `Volumes`).
pub(crate) fn add_to_set(state: &mut BuildState, field: &str, key: &str) {
    let c = container(state);
    let set = c.entry(field).or_insert_with(|| json!({}));
    if !set.is_object() {
        *set = json!({});
    }
    set.as_object_mut()
        .expect("made an object")
        .insert(key.to_owned(), json!({}));
}

pub(crate) fn set_label(state: &mut BuildState, key: &str, value: &str) {
    let c = container(state);
    let labels = c.entry("Labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels
        .as_object_mut()
        .expect("made an object")
        .insert(key.to_owned(), json!(value));
}

/// One more history entry; `empty_layer` for steps that add no layer.
pub(crate) fn push_history(state: &mut BuildState, created_by: &str, empty_layer: bool) {
    let created = jiff::Timestamp::now().to_string();
    let mut entry = Map::new();
    entry.insert("created".into(), json!(created));
    entry.insert("created_by".into(), json!(created_by));
    if empty_layer {
        entry.insert("empty_layer".into(), json!(true));
    }
    let top = top(state);
    top.insert("created".into(), json!(created));
    match top.get_mut("history").and_then(Value::as_array_mut) {
        Some(h) => h.push(Value::Object(entry)),
        None => {
            top.insert("history".into(), json!([Value::Object(entry)]));
        }
    }
}

/// One more layer on top.
pub(crate) fn push_layer(state: &mut BuildState, layer: LayerRow) {
    let top = top(state);
    let rootfs = top
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if !rootfs["diff_ids"].is_array() {
        *rootfs = json!({"type": "layers", "diff_ids": []});
    }
    rootfs["diff_ids"]
        .as_array_mut()
        .expect("made an array")
        .push(json!(layer.diff_id.to_string()));
    state.layers.push(layer);
}

/// Top layer's chain ID (the parent of the next layer).
pub(crate) fn top_layer(state: &BuildState) -> Option<Digest> {
    state.layers.last().map(|l| l.chain_id.clone())
}
