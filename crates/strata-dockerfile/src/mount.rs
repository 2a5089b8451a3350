//! `RUN --mount=type=cache,target=/x,...`: a CSV list of `key=value` fields
//! (BuildKit's `parseMount`), each value expanded as a word.

use crate::step::{MountKind, RunMount};

/// Parses one `--mount` value; `expand` expands each field value. `ssh_index`
/// numbers the ssh mounts of one RUN, for their default targets.
pub(crate) fn parse(
    spec: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
    ssh_index: usize,
) -> Result<RunMount, String> {
    let mut mount = RunMount::default();
    // Docker picks readonly by type unless a field says otherwise.
    let mut readonly: Option<bool> = None;
    for field in fields(spec)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_ascii_lowercase(), expand(value)?),
            None => (field.to_ascii_lowercase(), bare(&field)?),
        };
        apply(&mut mount, &mut readonly, &key, value)?;
    }
    finish(mount, readonly, ssh_index)
}

/// The raw `from=` value of a mount, for stage dependencies.
pub(crate) fn raw_from(spec: &str) -> Option<String> {
    fields(spec).ok()?.into_iter().find_map(|field| {
        let (key, value) = field.split_once('=')?;
        key.eq_ignore_ascii_case("from").then(|| value.to_owned())
    })
}

/// Splits a CSV record as Go's `encoding/csv` does: a field starting with
/// `"` is quoted and `""` inside it is one `"`.
pub(crate) fn fields(spec: &str) -> Result<Vec<String>, String> {
    if spec.is_empty() {
        return Err("empty --mount value".into());
    }
    let mut fields = Vec::new();
    let mut chars = spec.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(ch) => field.push(ch),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("extraneous or missing \" in quoted-field".into());
            }
        } else {
            while let Some(&ch) = chars.peek().filter(|c| **c != ',') {
                if ch == '"' {
                    return Err("bare \" in non-quoted-field".into());
                }
                field.push(ch);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// A field without `=`: only the boolean options may be written bare.
fn bare(field: &str) -> Result<String, String> {
    match field.to_ascii_lowercase().as_str() {
        "readonly" | "ro" | "readwrite" | "rw" | "required" => Ok("true".into()),
        _ => Err(format!("invalid field '{field}' must be a key=value pair")),
    }
}

fn apply(
    mount: &mut RunMount,
    readonly: &mut Option<bool>,
    key: &str,
    value: String,
) -> Result<(), String> {
    match key {
        "type" => mount.kind = kind(&value)?,
        "target" | "dst" | "destination" => mount.target = value,
        "readonly" | "ro" => *readonly = Some(go_bool(key, &value)?),
        "readwrite" | "rw" => *readonly = Some(!go_bool(key, &value)?),
        "required" => mount.required = go_bool(key, &value)?,
        "id" => mount.id = Some(value),
        "source" | "src" => mount.source = Some(value),
        "from" => mount.from = Some(value),
        "env" => mount.env = Some(value),
        "sharing" => mount.sharing = Some(sharing(value)?),
        "mode" => mount.mode = Some(number(key, &value, 8)?),
        "uid" => mount.uid = Some(number(key, &value, 10)?),
        "gid" => mount.gid = Some(number(key, &value, 10)?),
        "size" => mount.size = Some(size(&value)?),
        _ => return Err(format!("unexpected key '{key}' in '{key}={value}'")),
    }
    Ok(())
}

fn kind(value: &str) -> Result<MountKind, String> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "bind" => MountKind::Bind,
        "cache" => MountKind::Cache,
        "tmpfs" => MountKind::Tmpfs,
        "secret" => MountKind::Secret,
        "ssh" => MountKind::Ssh,
        _ => {
            return Err(format!(
                "unsupported mount type \"{value}\" (expected bind, cache, tmpfs, secret or ssh)"
            ));
        }
    })
}

fn type_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

fn sharing(value: String) -> Result<String, String> {
    match value.as_str() {
        "shared" | "private" | "locked" => Ok(value),
        _ => Err(format!(
            "unrecognized sharing mode \"{value}\" (expected shared, private or locked)"
        )),
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "invalid value for {key}: {value} (expected true or false)"
        )),
    }
}

fn number(key: &str, value: &str, radix: u32) -> Result<u32, String> {
    let valid = !value.is_empty() && !value.starts_with('+');
    let parsed = valid
        .then(|| u32::from_str_radix(value, radix).ok())
        .flatten();
    parsed.ok_or_else(|| {
        let kind = if radix == 8 { "an octal" } else { "a decimal" };
        format!("invalid value {value} for {key} (expected {kind} number)")
    })
}

/// Docker's `RAMInBytes`: `64m`, `1.5g`, `512KiB`... in powers of 1024.
fn size(value: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: '{value}' (expected e.g. 64m)");
    let num_len = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (num, unit) = value.split_at(num_len);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = num * 1024f64.powi(power);
    // `as` saturates, which is what an absurd size deserves.
    Ok(bytes as u64)
}

/// Type-dependent checks and defaults, once every field is known.
fn finish(
    mut mount: RunMount,
    readonly: Option<bool>,
    ssh_index: usize,
) -> Result<RunMount, String> {
    let kind = mount.kind;
    let name = type_name(kind);
    let file_info = matches!(kind, MountKind::Secret | MountKind::Ssh | MountKind::Cache);
    for (set, key) in [
        (mount.mode.is_some(), "mode"),
        (mount.uid.is_some(), "uid"),
        (mount.gid.is_some(), "gid"),
    ] {
        if set && !file_info {
            return Err(format!("{key} not allowed for \"{name}\" type mounts"));
        }
    }
    if mount.sharing.is_some() && kind != MountKind::Cache {
        return Err(format!("invalid cache sharing set for {name} mount"));
    }
    if mount.required && !matches!(kind, MountKind::Secret | MountKind::Ssh) {
        return Err(format!("unexpected key 'required' for mount type '{name}'"));
    }
    if mount.size.is_some() && kind != MountKind::Tmpfs {
        return Err(format!("unexpected key 'size' for mount type '{name}'"));
    }
    if mount.env.is_some() && kind != MountKind::Secret {
        return Err(format!("unexpected key 'env' for mount type '{name}'"));
    }
    mount.readonly = readonly.unwrap_or(!matches!(kind, MountKind::Cache | MountKind::Tmpfs));
    match kind {
        MountKind::Secret => secret_defaults(&mut mount)?,
        MountKind::Ssh => {
            mount.id.get_or_insert_with(|| "default".into());
            if mount.target.is_empty() {
                mount.target = format!("/run/buildkit/ssh_agent.{ssh_index}");
            }
        }
        _ if mount.target.is_empty() => {
            return Err("mount target is required (add target=/path)".into());
        }
        _ => {}
    }
    Ok(mount)
}

/// A secret is found by id, which defaults to the source or the target's
/// file name; its target defaults to `/run/secrets/<id>`.
fn secret_defaults(mount: &mut RunMount) -> Result<(), String> {
    if mount.from.is_some() {
        return Err("secret mount should not have a from".into());
    }
    if mount.source.is_some() && mount.id.is_some() {
        return Err("both source and id can't be set".into());
    }
    let base = mount.target.rsplit('/').next().unwrap_or_default();
    let id = mount
        .id
        .clone()
        .or_else(|| mount.source.clone())
        .or_else(|| (!base.is_empty()).then(|| base.to_owned()))
        .ok_or("invalid secret mount: one of source, target or id is required")?;
    if mount.target.is_empty() {
        mount.target = format!("/run/secrets/{id}");
    }
    mount.id = Some(id);
    Ok(())
}
