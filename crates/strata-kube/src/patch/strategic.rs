//! Strategic merge patch as the API server applies it to built-in kinds: a
//! JSON merge patch (maps merge, `null` deletes) whose lists are replaced
//! unless the schema gives them a merge strategy, plus the directives
//! `kubectl` sends. Directives never remain in the result.

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{ListStrategy, list_strategy};
use crate::kinds::Kind;

type Fields = Map<String, Value>;

/// `$patch: replace | merge | delete`, in a map or a list element.
const PATCH: &str = "$patch";
/// `$retainKeys: [fields]`: clears the original's other fields first.
const RETAIN_KEYS: &str = "$retainKeys";
/// `$setElementOrder/<list>: [elements or merge keys]`: the merged order.
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
/// `$deleteFromPrimitiveList/<list>: [values]`: removed from a set list.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

pub(super) fn merge(kind: Kind, target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject("a strategic merge patch"));
    };
    // As in a JSON merge patch, a target that is no object counts as `{}`.
    let target = target.as_object().cloned().unwrap_or_default();
    match (Merger { kind }).merge_map(target, patch, "")? {
        Some(merged) => Ok(Value::Object(merged)),
        None => Err(error(
            "",
            "\"$patch: delete\" cannot delete the whole object",
        )),
    }
}

fn error(path: &str, reason: impl Into<String>) -> PatchError {
    PatchError::Strategic {
        field: if path.is_empty() {
            "the top level".into()
        } else {
            path.into()
        },
        reason: reason.into(),
    }
}

fn child_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn is_directive(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

#[derive(Debug, PartialEq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

fn directive(patch: &Fields, path: &str) -> Result<Directive, PatchError> {
    let Some(value) = patch.get(PATCH) else {
        return Ok(Directive::Merge);
    };
    match value.as_str() {
        Some("merge") => Ok(Directive::Merge),
        Some("replace") => Ok(Directive::Replace),
        Some("delete") => Ok(Directive::Delete),
        _ => Err(error(
            path,
            format!(
                "unknown $patch directive {value}; expected \"replace\", \"merge\" or \"delete\""
            ),
        )),
    }
}

/// The list element `{"$patch": "replace"}`: the rest of the patch's list
/// replaces the original list, whatever the field's strategy.
fn is_replace_marker(element: &Value) -> bool {
    element.get(PATCH).and_then(Value::as_str) == Some("replace")
}

/// Merges for one kind, whose schema says which lists merge by key.
struct Merger {
    kind: Kind,
}

impl Merger {
    /// `original` with `patch` merged in; `None` when the patch deletes the
    /// map. `path` is where the map is, for the schema and for errors.
    fn merge_map(
        &self,
        original: Fields,
        patch: &Fields,
        path: &str,
    ) -> Result<Option<Fields>, PatchError> {
        let mut merged = match directive(patch, path)? {
            Directive::Delete => return Ok(None),
            // Merging onto nothing takes the patch literally, minus directives.
            Directive::Replace => Fields::new(),
            Directive::Merge => original,
        };
        retain_keys(&mut merged, patch, path)?;
        delete_from_primitive_lists(&mut merged, patch, path)?;
        for (key, value) in patch.iter().filter(|(key, _)| !is_directive(key)) {
            let current = merged.remove(key);
            if let Some(value) = self.merge_value(current, value, &child_path(path, key))? {
                merged.insert(key.clone(), value);
            }
        }
        self.set_element_orders(&mut merged, patch, path)?;
        Ok(Some(merged))
    }

    /// A field's new value; `None` when the patch removes the field.
    fn merge_value(
        &self,
        original: Option<Value>,
        patch: &Value,
        path: &str,
    ) -> Result<Option<Value>, PatchError> {
        Ok(match patch {
            Value::Null => None,
            Value::Object(fields) => {
                let original = match original {
                    Some(Value::Object(original)) => original,
                    _ => Fields::new(),
                };
                self.merge_map(original, fields, path)?.map(Value::Object)
            }
            Value::Array(elements) => {
                let original = match original {
                    Some(Value::Array(original)) => original,
                    _ => Vec::new(),
                };
                Some(Value::Array(self.merge_list(original, elements, path)?))
            }
            scalar => Some(scalar.clone()),
        })
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        if patch.iter().any(is_replace_marker) {
            return self.fresh_elements(patch, path);
        }
        match list_strategy(self.kind, path) {
            ListStrategy::Atomic => self.fresh_elements(patch, path),
            ListStrategy::Set => Ok(union(original, patch)),
            ListStrategy::ByKey(key) => self.merge_by_key(original, patch, key, path),
        }
    }

    /// The patch's elements as a new list, their directives applied to
    /// nothing (so none remain).
    fn fresh_elements(&self, patch: &[Value], path: &str) -> Result<Vec<Value>, PatchError> {
        let element_path = format!("{path}[]");
        let mut elements = Vec::with_capacity(patch.len());
        for element in patch.iter().filter(|element| !is_replace_marker(element)) {
            elements.extend(self.merge_value(None, element, &element_path)?);
        }
        Ok(elements)
    }

    /// Each patch element merges into the original element with the same
    /// `key`, or is appended; `$patch: delete` removes every element with
    /// that key.
    fn merge_by_key(
        &self,
        mut merged: Vec<Value>,
        patch: &[Value],
        key: &str,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let element_path = format!("{path}[]");
        for (index, element) in patch.iter().enumerate() {
            let Some(fields) = element.as_object() else {
                return Err(error(
                    path,
                    format!(
                        "element {index} is {element}, but this list merges objects by \"{key}\""
                    ),
                ));
            };
            let Some(id) = fields.get(key) else {
                return Err(error(
                    path,
                    format!("element {index} has no merge key \"{key}\""),
                ));
            };
            let position = merged.iter().position(|e| e.get(key) == Some(id));
            let original = position.map_or_else(Fields::new, |i| take_fields(&mut merged[i]));
            match (self.merge_map(original, fields, &element_path)?, position) {
                (Some(fields), Some(i)) => merged[i] = Value::Object(fields),
                (Some(fields), None) => merged.push(Value::Object(fields)),
                (None, _) => {
                    if let Some(i) = position {
                        merged.remove(i);
                    }
                    merged.retain(|e| e.get(key) != Some(id));
                }
            }
        }
        Ok(merged)
    }

    fn set_element_orders(
        &self,
        merged: &mut Fields,
        patch: &Fields,
        path: &str,
    ) -> Result<(), PatchError> {
        for (directive, order) in patch {
            let Some(field) = directive.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(error(path, format!("{directive} must be a list")));
            };
            let strategy = list_strategy(self.kind, &child_path(path, field));
            let mut wanted = Vec::with_capacity(order.len());
            for (index, entry) in order.iter().enumerate() {
                let id = identity(strategy, entry).ok_or_else(|| {
                    error(path, format!("{directive}: entry {index} has no merge key"))
                })?;
                wanted.push(id);
            }
            if let Some(Value::Array(list)) = merged.get_mut(field) {
                reorder(list, &wanted, strategy);
            }
        }
        Ok(())
    }
}

fn take_fields(element: &mut Value) -> Fields {
    match element.take() {
        Value::Object(fields) => fields,
        _ => Fields::new(),
    }
}

/// Both lists' values without duplicates, the original's first.
fn union(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.into_iter().chain(patch.iter().cloned()) {
        if !merged.contains(&value) {
            merged.push(value);
        }
    }
    merged
}

fn retain_keys(merged: &mut Fields, patch: &Fields, path: &str) -> Result<(), PatchError> {
    let Some(keys) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let keys: Option<Vec<&str>> = keys
        .as_array()
        .and_then(|keys| keys.iter().map(Value::as_str).collect());
    let keys = keys.ok_or_else(|| error(path, "$retainKeys must be a list of field names"))?;
    merged.retain(|field, _| keys.contains(&field.as_str()));
    Ok(())
}

fn delete_from_primitive_lists(
    merged: &mut Fields,
    patch: &Fields,
    path: &str,
) -> Result<(), PatchError> {
    for (directive, doomed) in patch {
        let Some(field) = directive.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
            continue;
        };
        let Value::Array(doomed) = doomed else {
            return Err(error(path, format!("{directive} must be a list")));
        };
        if let Some(Value::Array(list)) = merged.get_mut(field) {
            list.retain(|value| !doomed.contains(value));
        }
    }
    Ok(())
}

/// What names an element in `$setElementOrder`: its merge key, or for
/// other lists the element itself.
fn identity(strategy: ListStrategy, element: &Value) -> Option<&Value> {
    match strategy {
        ListStrategy::ByKey(key) => element.get(key),
        ListStrategy::Atomic | ListStrategy::Set => Some(element),
    }
}

/// Puts the elements named in `order` first, in that order; the others
/// keep their relative order after them.
fn reorder(list: &mut Vec<Value>, order: &[&Value], strategy: ListStrategy) {
    let mut rest = std::mem::take(list);
    for wanted in order {
        let (matching, others): (Vec<Value>, Vec<Value>) = rest
            .into_iter()
            .partition(|element| identity(strategy, element) == Some(*wanted));
        list.extend(matching);
        rest = others;
    }
    list.extend(rest);
}
