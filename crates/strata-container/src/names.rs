//! Container names: Docker's rule, and a readable random name when none is
//! given (`brave_hopper` rather than an ID).

use crate::{ContainerError, Result};

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn validate(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = name.len() >= 2
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::BadName(name.to_owned()))
    }
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nifty",
    "proud", "quiet", "sharp", "tender", "vivid", "witty",
];
const NAMES: &[&str] = &[
    "curie", "darwin", "euler", "gauss", "hopper", "kepler", "lovelace", "noether", "pascal",
    "ritchie", "shannon", "thompson", "turing", "wozniak",
];

/// A random `adjective_name`, with a number if `taken` says it is used.
pub(crate) fn random(taken: impl Fn(&str) -> bool) -> String {
    let pick = |list: &[&'static str]| {
        let i = usize::from_str_radix(&strata_store::fsutil::random_hex(4), 16).unwrap_or(0);
        list[i % list.len()]
    };
    let base = format!("{}_{}", pick(ADJECTIVES), pick(NAMES));
    (0..)
        .map(|n| {
            if n == 0 {
                base.clone()
            } else {
                format!("{base}{n}")
            }
        })
        .find(|n| !taken(n))
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) {
        assert_eq!(validate(name).is_ok(), ok, "{name}");
    }

    #[test]
    fn names_follow_dockers_rule() {
        for (name, ok) in [
            ("web", true),
            ("web-1.a_b", true),
            ("9lives", true),
            ("a", false),
            ("", false),
            ("-web", false),
            ("_web", false),
            ("we b", false),
            ("web/1", false),
            ("../x", false),
        ] {
            check(name, ok);
        }
    }

    #[test]
    fn random_names_avoid_taken_ones() {
        let first = random(|_| false);
        let second = random(|n| n == first || !n.ends_with(char::is_numeric));
        assert!(validate(&first).is_ok());
        assert!(second.ends_with(char::is_numeric), "{second}");
    }
}
