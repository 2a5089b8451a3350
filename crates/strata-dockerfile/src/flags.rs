//! `--name[=value]` flags on instructions, checked against what each
//! instruction accepts (BuildKit's `BFlags`).

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=value`, at most once.
    Text,
    /// `--exclude=value`, repeatable.
    List,
}

/// The flags one instruction accepts.
pub(crate) type Spec = &'static [(&'static str, Kind)];

/// Parsed flag values, by name.
#[derive(Default)]
pub(crate) struct Flags {
    values: Vec<(&'static str, String)>,
}

impl Flags {
    /// Parses `words` (each starting with `--`) for `instruction`.
    pub(crate) fn parse(words: &[String], spec: Spec, instruction: &str) -> Result<Self, String> {
        let mut flags = Flags::default();
        for word in words {
            let body = word.strip_prefix("--").unwrap_or(word);
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let Some(&(name, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(unknown(name, spec, instruction));
            };
            if kind != Kind::List && flags.get(name).is_some() {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            let value = match (kind, value) {
                (Kind::Bool, Some("")) | (Kind::Text | Kind::List, None) => {
                    return Err(format!("missing a value on flag: --{name}"));
                }
                (Kind::Bool, value) => bool_value(name, value.unwrap_or("true"))?,
                (_, Some(value)) => value.to_owned(),
            };
            flags.values.push((name, value));
        }
        Ok(flags)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn bool_value(name: &str, value: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok("true".into()),
        "false" => Ok("false".into()),
        _ => Err(format!(
            "expecting boolean value for flag --{name}, not: {value}"
        )),
    }
}

fn unknown(name: &str, spec: Spec, instruction: &str) -> String {
    if spec.is_empty() {
        return format!("unknown flag: --{name} ({instruction} takes no flags)");
    }
    let known: Vec<String> = spec.iter().map(|(n, _)| format!("--{n}")).collect();
    format!(
        "unknown flag: --{name} ({instruction} accepts {})",
        known.join(", ")
    )
}
