//! `volume ls --filter`, with Docker's keys.

use std::collections::BTreeMap;
use std::str::FromStr;

use strata_store::meta::volumes::VolumeRow;

use crate::VolumeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `dangling=true`: used by no container.
    Dangling(bool),
    /// `name=TEXT`: the name contains TEXT (Docker matches substrings).
    Name(String),
    Label(LabelFilter),
    Driver(String),
}

impl FromStr for Filter {
    type Err = VolumeError;

    fn from_str(s: &str) -> Result<Filter, VolumeError> {
        let bad = || VolumeError::Filter(s.to_owned());
        let (key, value) = s.split_once('=').ok_or_else(bad)?;
        Ok(match key {
            "dangling" => Filter::Dangling(match value {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(bad()),
            }),
            "name" => Filter::Name(value.to_owned()),
            "label" => Filter::Label(LabelFilter::parse(value)),
            "driver" => Filter::Driver(value.to_owned()),
            _ => return Err(bad()),
        })
    }
}

/// `label=KEY` or `label=KEY=VALUE`, in any of Docker's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    key: String,
    value: Option<String>,
}

impl LabelFilter {
    /// From what follows `label=`.
    pub fn parse(value: &str) -> LabelFilter {
        match value.split_once('=') {
            Some((k, v)) => LabelFilter {
                key: k.to_owned(),
                value: Some(v.to_owned()),
            },
            None => LabelFilter {
                key: value.to_owned(),
                value: None,
            },
        }
    }

    /// Whether `labels` has the key (with the value, if one was given).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        labels
            .get(&self.key)
            .is_some_and(|have| self.value.as_ref().is_none_or(|want| want == have))
    }
}

/// Docker's rule for a set of filters: a key given more than once
/// matches if any of its values does (`-f name=a -f name=b` lists both);
/// a filter whose `key` is None (labels) must match on its own; and all
/// must hold.
pub fn all_keys_match<F>(
    filters: &[F],
    key: impl Fn(&F) -> Option<&'static str>,
    matches: impl Fn(&F) -> bool,
) -> bool {
    filters.iter().all(|f| match key(f) {
        None => matches(f),
        Some(k) => filters.iter().filter(|g| key(g) == Some(k)).any(&matches),
    })
}

impl Filter {
    /// Its key for [`all_keys_match`].
    pub(crate) fn key(&self) -> Option<&'static str> {
        match self {
            Filter::Dangling(_) => Some("dangling"),
            Filter::Name(_) => Some("name"),
            Filter::Label(..) => None,
            Filter::Driver(_) => Some("driver"),
        }
    }

    pub(crate) fn matches(&self, v: &VolumeRow, dangling: bool) -> bool {
        match self {
            Filter::Dangling(want) => dangling == *want,
            Filter::Name(text) => v.name.contains(text.as_str()),
            Filter::Label(label) => label.matches(&v.labels),
            Filter::Driver(d) => &v.driver == d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, labels: &[(&str, &str)]) -> VolumeRow {
        VolumeRow {
            name: name.into(),
            driver: "local".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            options: Default::default(),
            anonymous: false,
            created: String::new(),
        }
    }

    fn check(filter: &str, volume: &VolumeRow, dangling: bool, expected: bool) {
        let f: Filter = filter.parse().unwrap();
        assert_eq!(
            f.matches(volume, dangling),
            expected,
            "{filter} on {volume:?}"
        );
    }

    #[test]
    fn filters_match_like_docker() {
        let data = row("data_volume", &[("env", "prod"), ("tier", "")]);
        for (filter, dangling, expected) in [
            ("dangling=true", true, true),
            ("dangling=true", false, false),
            ("dangling=0", true, false),
            ("name=data", false, true),
            ("name=volume", false, true),
            ("name=other", false, false),
            ("label=env", false, true),
            ("label=env=prod", false, true),
            ("label=env=dev", false, false),
            ("label=tier", false, true),
            ("label=missing", false, false),
            ("driver=local", false, true),
            ("driver=rexray", false, false),
        ] {
            check(filter, &data, dangling, expected);
        }
    }

    #[test]
    fn a_key_twice_is_either_value_and_labels_are_all() {
        let data = row("data_volume", &[("env", "prod"), ("tier", "")]);
        let check = |given: &[&str], expected: bool| {
            let filters: Vec<Filter> = given.iter().map(|f| f.parse().unwrap()).collect();
            let got = all_keys_match(&filters, Filter::key, |f| f.matches(&data, false));
            assert_eq!(got, expected, "{given:?}");
        };
        check(&[], true);
        check(&["name=data", "name=other"], true);
        check(&["name=other", "name=data"], true);
        check(&["name=other", "name=more"], false);
        check(&["name=data", "driver=rexray"], false);
        check(&["label=env", "label=tier"], true);
        check(&["label=env", "label=missing"], false);
        check(&["dangling=true", "dangling=false"], true);
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in ["dangling", "dangling=maybe", "size=1", "=x"] {
            let err = bad.parse::<Filter>().unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }
}
