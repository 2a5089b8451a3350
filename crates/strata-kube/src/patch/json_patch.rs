//! JSON patch, RFC 6902: operations applied in order to a copy of the
//! target; the first that fails fails the whole patch. Paths are JSON
//! pointers (RFC 6901).

use serde_json::{Map, Number, Value};

use super::PatchError;

pub(super) fn apply(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::NotAnOperationList);
    };
    let mut document = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(&mut document, operation).map_err(|reason| PatchError::Operation {
            index,
            op: text_of(operation, "op"),
            path: text_of(operation, "path"),
            reason,
        })?;
    }
    Ok(document)
}

/// The member `name` of an operation as text for an error message.
fn text_of(operation: &Value, name: &str) -> String {
    match operation.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Why an operation failed; the caller adds which operation it was.
type Failure = String;

fn apply_operation(document: &mut Value, operation: &Value) -> Result<(), Failure> {
    let fields = operation
        .as_object()
        .ok_or("an operation must be a JSON object")?;
    let op = string_member(fields, "op")?;
    let path = parse_pointer(string_member(fields, "path")?)?;
    match op {
        "add" => add(document, &path, value_member(fields)?.clone()),
        "remove" => remove(document, &path).map(drop),
        "replace" => {
            let value = value_member(fields)?.clone();
            *get_mut(document, &path).ok_or(NO_SUCH_PATH)? = value;
            Ok(())
        }
        "move" => {
            let from = parse_pointer(string_member(fields, "from")?)?;
            if path == from {
                return get(document, &from).map(drop).ok_or(NO_SUCH_FROM.into());
            }
            if path.starts_with(&from) {
                return Err("cannot move a value into one of its own members".into());
            }
            let value = remove(document, &from).map_err(|_| NO_SUCH_FROM.to_string())?;
            add(document, &path, value)
        }
        "copy" => {
            let from = parse_pointer(string_member(fields, "from")?)?;
            let value = get(document, &from).ok_or(NO_SUCH_FROM)?.clone();
            add(document, &path, value)
        }
        "test" => {
            let expected = value_member(fields)?;
            let actual = get(document, &path).ok_or(NO_SUCH_PATH)?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(format!(
                    "test failed: the value is {actual}, not {expected}"
                ))
            }
        }
        other => Err(format!(
            "unknown op \"{other}\"; expected add, remove, replace, move, copy or test"
        )),
    }
}

const NO_SUCH_PATH: &str = "the path does not exist";
const NO_SUCH_FROM: &str = "the \"from\" path does not exist";

fn string_member<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, Failure> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the operation needs a string member \"{name}\""))
}

fn value_member(fields: &Map<String, Value>) -> Result<&Value, Failure> {
    fields
        .get("value")
        .ok_or_else(|| "the operation needs a member \"value\"".into())
}

/// The reference tokens of a JSON pointer, unescaped.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, Failure> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(tokens) = pointer.strip_prefix('/') else {
        return Err(format!(
            "the path \"{pointer}\" must be empty or start with \"/\""
        ));
    };
    tokens.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, Failure> {
    let mut unescaped = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            unescaped.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => unescaped.push('~'),
            Some('1') => unescaped.push('/'),
            _ => {
                return Err(format!(
                    "\"~\" in \"{token}\" must be followed by 0 (for \"~\") or 1 (for \"/\")"
                ));
            }
        }
    }
    Ok(unescaped)
}

/// A list index token: decimal without leading zeros.
fn list_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = token.len() > 1 && token.starts_with('0');
    if digits && !leading_zero {
        token.parse().ok()
    } else {
        None
    }
}

fn get<'a>(document: &'a Value, pointer: &[String]) -> Option<&'a Value> {
    pointer
        .iter()
        .try_fold(document, |value, token| match value {
            Value::Object(fields) => fields.get(token),
            Value::Array(elements) => elements.get(list_index(token)?),
            _ => None,
        })
}

fn get_mut<'a>(document: &'a mut Value, pointer: &[String]) -> Option<&'a mut Value> {
    pointer
        .iter()
        .try_fold(document, |value, token| match value {
            Value::Object(fields) => fields.get_mut(token),
            Value::Array(elements) => elements.get_mut(list_index(token)?),
            _ => None,
        })
}

fn add(document: &mut Value, pointer: &[String], value: Value) -> Result<(), Failure> {
    let Some((last, parent)) = pointer.split_last() else {
        *document = value;
        return Ok(());
    };
    match get_mut(document, parent) {
        Some(Value::Object(fields)) => {
            fields.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(elements)) => {
            let len = elements.len();
            let index = if last == "-" {
                Some(len)
            } else {
                list_index(last).filter(|index| *index <= len)
            };
            let index = index.ok_or_else(|| {
                format!("\"{last}\" is no index into a list of {len}: use 0 to {len}, or \"-\" to append")
            })?;
            elements.insert(index, value);
            Ok(())
        }
        Some(_) => Err("the parent of the path is neither an object nor a list".into()),
        None => Err("the parent of the path does not exist".into()),
    }
}

fn remove(document: &mut Value, pointer: &[String]) -> Result<Value, Failure> {
    let Some((last, parent)) = pointer.split_last() else {
        return Err("cannot remove the whole object".into());
    };
    let removed = match get_mut(document, parent) {
        Some(Value::Object(fields)) => fields.remove(last),
        Some(Value::Array(elements)) => list_index(last)
            .filter(|index| *index < elements.len())
            .map(|index| elements.remove(index)),
        _ => None,
    };
    removed.ok_or_else(|| NO_SUCH_PATH.into())
}

/// JSON equality as RFC 6902 `test` defines it: numbers compare by value
/// (1 equals 1.0), objects ignore member order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    // Integers compare exactly; only a float on either side needs f64.
    if x.is_f64() || y.is_f64() {
        x.as_f64() == y.as_f64()
    } else {
        x == y
    }
}
