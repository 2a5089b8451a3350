//! Properties: no input makes a parser panic; whatever parses has an
//! absolute, clean target; and a valid named-volume spec gives back exactly
//! the parts it was built from.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use strata_mountspec::{
    MountSpec, Relabel, Source, parse_mount, parse_size, parse_tmpfs, parse_volume,
    validate_volume_name,
};

/// Absolute, no empty, `.` or `..` component, no trailing `/`.
fn is_clean_absolute(target: &str) -> bool {
    let Some(rest) = target.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

fn parse_all(text: &str) -> Vec<MountSpec> {
    let _ = parse_size(text);
    let _ = validate_volume_name(text);
    [
        parse_volume(text, Path::new("/")),
        parse_mount(text, Path::new("/")),
        parse_tmpfs(text),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Text made mostly of the grammar's own characters, to reach deep paths.
fn grammar_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"([a-z]{0,3}|[/:,="]|\.\.?|type=|src=|dst=|tmpfs-size=|volume-opt=|bind-|ro|size=|mode=|z|Z|nocopy|rshared| )*"#)
        .expect("valid regex")
}

fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9][a-zA-Z0-9_.-]{1,20}").expect("valid regex")
}

fn target() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,8}", 1..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

/// The options of a named volume: access, relabel, nocopy, consistency.
#[derive(Debug, Clone)]
struct Options {
    access: Option<bool>,
    relabel: Option<Relabel>,
    nocopy: bool,
    consistency: Option<&'static str>,
}

fn options() -> impl Strategy<Value = Options> {
    let relabel = prop_oneof![
        Just(None),
        Just(Some(Relabel::Shared)),
        Just(Some(Relabel::Private))
    ];
    let consistency = prop_oneof![
        Just(None),
        Just(Some("consistent")),
        Just(Some("cached")),
        Just(Some("delegated"))
    ];
    (any::<Option<bool>>(), relabel, any::<bool>(), consistency).prop_map(
        |(access, relabel, nocopy, consistency)| Options {
            access,
            relabel,
            nocopy,
            consistency,
        },
    )
}

impl Options {
    /// The comma list, in a fixed order; empty when nothing is set.
    fn text(&self) -> String {
        let access = self.access.map(|ro| if ro { "ro" } else { "rw" });
        let relabel = self
            .relabel
            .map(|r| if r == Relabel::Shared { "z" } else { "Z" });
        let nocopy = self.nocopy.then_some("nocopy");
        [access, relabel, nocopy, self.consistency]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(",")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_parses_or_fails_cleanly(text in any::<String>()) {
        for spec in parse_all(&text) {
            prop_assert!(is_clean_absolute(&spec.target), "target {:?} from {:?}", spec.target, text);
        }
    }

    #[test]
    fn grammar_text_parses_or_fails_cleanly(text in grammar_text()) {
        for spec in parse_all(&text) {
            prop_assert!(is_clean_absolute(&spec.target), "target {:?} from {:?}", spec.target, text);
        }
    }

    #[test]
    fn named_volume_round_trips(name in name(), target in target(), options in options()) {
        let opts = options.text();
        let spec = if opts.is_empty() { format!("{name}:{target}") } else { format!("{name}:{target}:{opts}") };
        let want = MountSpec {
            source: Source::Volume {
                name: Some(name.clone()),
                driver: None,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                nocopy: options.nocopy,
                subpath: None,
            },
            target: target.clone(),
            readonly: options.access == Some(true),
            relabel: options.relabel,
        };
        prop_assert_eq!(parse_volume(&spec, Path::new("/")), Ok(want.clone()), "-v {}", spec);

        let mut fields = format!("type=volume,source={name},target={target}");
        if options.access == Some(true) {
            fields.push_str(",readonly");
        }
        if options.nocopy {
            fields.push_str(",volume-nocopy");
        }
        let want = MountSpec { relabel: None, ..want };
        prop_assert_eq!(parse_mount(&fields, Path::new("/")), Ok(want), "--mount {}", fields);
    }
}
