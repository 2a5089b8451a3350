//! `--change` instructions (`docker import -c`, `docker commit -c`): the
//! Dockerfile instructions that only touch the image config.

use serde_json::{Map, Value, json};

/// Applies each instruction to a config's `config` object (Docker's field
/// names). Errors name the instruction.
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<(), String> {
    for change in changes {
        apply_change(config, change.trim()).map_err(|e| format!("--change '{change}': {e}"))?;
    }
    Ok(())
}

fn apply_change(config: &mut Map<String, Value>, line: &str) -> Result<(), String> {
    let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Err("needs an argument".into());
    }
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.insert("Cmd".into(), json!(command(rest)?));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), json!(command(rest)?));
        }
        "ENV" => {
            for (k, v) in pairs(rest)? {
                set_env(config, &k, &v);
            }
        }
        "LABEL" => {
            let labels = object(config, "Labels");
            for (k, v) in pairs(rest)? {
                labels.insert(k, json!(v));
            }
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(rest));
        }
        "USER" => {
            config.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(rest));
        }
        "EXPOSE" => {
            let ports = object(config, "ExposedPorts");
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_owned()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let paths: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| format!("not a JSON array of paths: {e}"))?
            } else {
                rest.split_whitespace().map(str::to_owned).collect()
            };
            let volumes = object(config, "Volumes");
            for p in paths {
                volumes.insert(p, json!({}));
            }
        }
        other => {
            return Err(format!(
                "'{other}' cannot be used here (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR can)"
            ));
        }
    }
    Ok(())
}

/// Exec form (`["a","b"]`) or shell form (`/bin/sh -c "..."`).
fn command(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// `K=V K2="v 2"` or the legacy `K V with spaces`.
fn pairs(rest: &str) -> Result<Vec<(String, String)>, String> {
    if !rest.split_whitespace().next().unwrap_or("").contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or("needs a value")?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            chars.next();
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                }
                (_, c) => value.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push((key, value));
    }
    Ok(out)
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = config.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

fn set_env(config: &mut Map<String, Value>, key: &str, value: &str) {
    let env = config.entry("Env").or_insert_with(|| json!([]));
    let list = env.as_array_mut().expect("Env is an array");
    let entry = format!("{key}={value}");
    match list.iter_mut().find(|e| {
        e.as_str()
            .is_some_and(|s| s.split_once('=').map(|p| p.0) == Some(key))
    }) {
        Some(existing) => *existing = json!(entry),
        None => list.push(json!(entry)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(changes: &[&str], expected: Result<Value, &str>) {
        let mut config = Map::new();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        let got = apply_changes(&mut config, &changes).map(|()| Value::Object(config));
        assert_eq!(got, expected.map_err(str::to_owned));
    }

    #[test]
    fn changes() {
        check(&[r#"CMD ["sh"]"#], Ok(json!({"Cmd": ["sh"]})));
        check(
            &["cmd echo hi"],
            Ok(json!({"Cmd": ["/bin/sh", "-c", "echo hi"]})),
        );
        check(
            &["ENV A=1 B=\"two words\"", "ENV A=3"],
            Ok(json!({"Env": ["A=3", "B=two words"]})),
        );
        check(
            &["ENV PATH /usr/bin:/bin"],
            Ok(json!({"Env": ["PATH=/usr/bin:/bin"]})),
        );
        check(
            &[
                "EXPOSE 80 53/udp",
                "VOLUME /data",
                "WORKDIR /srv",
                "USER 1000",
            ],
            Ok(json!({
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
                "WorkingDir": "/srv", "User": "1000"
            })),
        );
        check(&["LABEL a=b"], Ok(json!({"Labels": {"a": "b"}})));
        check(
            &["RUN make"],
            Err(
                "--change 'RUN make': 'RUN' cannot be used here (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR can)",
            ),
        );
        check(&["CMD"], Err("--change 'CMD': needs an argument"));
        check(
            &["ENV A=\"x"],
            Err("--change 'ENV A=\"x': unterminated quote"),
        );
    }
}
