//! JSON merge patch, RFC 7386: objects merge recursively, `null` removes a
//! member, anything else replaces the target.

use serde_json::{Map, Value};

pub(super) fn merge_patch(target: Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut merged = match target {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            let current = merged.remove(key).unwrap_or(Value::Null);
            merged.insert(key.clone(), merge_patch(current, value));
        }
    }
    Value::Object(merged)
}
