//! Reading and writing `metadata` fields of a JSON body.

use serde_json::{Map, Value};

/// Seconds-precision RFC 3339, as Kubernetes writes timestamps.
pub fn timestamp(now: jiff::Timestamp) -> String {
    now.round(jiff::Unit::Second)
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn now() -> String {
    timestamp(jiff::Timestamp::now())
}

pub fn metadata(body: &Value) -> Option<&Map<String, Value>> {
    body.get("metadata").and_then(Value::as_object)
}

/// `body.metadata`, made if missing.
pub fn metadata_mut(body: &mut Value) -> &mut Map<String, Value> {
    let object = body.as_object_mut().expect("bodies are JSON objects");
    let meta = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

pub fn str_field<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    metadata(body)?.get(field)?.as_str()
}

pub fn finalizers(body: &Value) -> Vec<String> {
    metadata(body)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn add_finalizer(body: &mut Value, finalizer: &str) {
    let meta = metadata_mut(body);
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(vec![]));
    if let Some(list) = list.as_array_mut()
        && !list.iter().any(|f| f == finalizer)
    {
        list.push(Value::String(finalizer.to_string()));
    }
}

pub fn annotation<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    metadata(body)?
        .get("annotations")?
        .as_object()?
        .get(key)?
        .as_str()
}

/// The resourceVersion a client sent, if any (`""` counts as none).
pub fn resource_version(body: &Value) -> Result<Option<u64>, String> {
    match str_field(body, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid resourceVersion \"{rv}\": it must be a decimal number")),
    }
}
