//! The name formats Kubernetes checks (DNS-1123 labels and subdomains,
//! qualified names), each returning upstream's messages so a refusal reads
//! the same as a real API server's.

const LABEL_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;

const LABEL_WHY: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const LABEL_REGEX: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN_WHY: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const SUBDOMAIN_REGEX: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_WHY: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_REGEX: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

/// Problems with `value` as a DNS-1123 label (a namespace or container
/// name); empty when it is one.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > LABEL_MAX {
        problems.push(too_long(LABEL_MAX));
    }
    if !is_label(value) {
        // A valid subdomain that is no label can only be wrong by its dots.
        if is_subdomain(value) {
            problems.push("must not contain dots".to_string());
        } else {
            problems.push(regex_error(LABEL_WHY, LABEL_REGEX, &["my-name", "123-abc"]));
        }
    }
    problems
}

/// Problems with `value` as a DNS-1123 subdomain (most object names);
/// empty when it is one.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > SUBDOMAIN_MAX {
        problems.push(too_long(SUBDOMAIN_MAX));
    }
    if !is_subdomain(value) {
        problems.push(regex_error(
            SUBDOMAIN_WHY,
            SUBDOMAIN_REGEX,
            &["example.com"],
        ));
    }
    problems
}

/// Problems with `value` as a qualified name: an optional DNS subdomain
/// prefix and `/`, then a name of at most 63 alphanumerics, `-`, `_`, `.`
/// (a StorageClass provisioner, a label key).
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_string());
            } else {
                let prefixed = dns1123_subdomain(prefix).into_iter();
                problems.extend(prefixed.map(|p| format!("prefix part {p}")));
            }
            name
        }
        _ => {
            let why = regex_error(
                QUALIFIED_WHY,
                QUALIFIED_REGEX,
                &["MyName", "my.name", "123-abc"],
            );
            return vec![format!(
                "a qualified name {why} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        problems.push(format!("name part {}", too_long(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        let why = regex_error(
            QUALIFIED_WHY,
            QUALIFIED_REGEX,
            &["MyName", "my.name", "123-abc"],
        );
        problems.push(format!("name part {why}"));
    }
    problems
}

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// Upstream's wording for a value that does not match a pattern, examples
/// and all (the doubled space after the first example is theirs).
fn regex_error(why: &str, regex: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{why} (e.g. {}regex used for validation is '{regex}')",
        examples.join(" or ")
    )
}

fn is_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    inner_ok && alnum(bytes.first()) && alnum(bytes.last())
}

fn is_subdomain(value: &str) -> bool {
    value.split('.').all(is_label)
}

fn is_qualified_name_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let alnum = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    inner_ok && alnum(bytes.first()) && alnum(bytes.last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `expected` lists the start of each problem, in order.
    fn check(problems: Vec<String>, expected: &[&str]) {
        assert_eq!(problems.len(), expected.len(), "{problems:?}");
        for (problem, start) in problems.iter().zip(expected) {
            assert!(problem.starts_with(start), "{problem:?} vs {start:?}");
        }
    }

    #[test]
    fn labels() {
        let long = "a".repeat(64);
        let cases: &[(&str, &[&str])] = &[
            ("my-name", &[]),
            ("123-abc", &[]),
            ("a", &[]),
            ("", &["a lowercase RFC 1123 label"]),
            ("My-Name", &["a lowercase RFC 1123 label"]),
            ("-name", &["a lowercase RFC 1123 label"]),
            ("name-", &["a lowercase RFC 1123 label"]),
            ("a_b", &["a lowercase RFC 1123 label"]),
            ("a.b", &["must not contain dots"]),
            (&long, &["must be no more than 63 characters"]),
        ];
        for (value, expected) in cases {
            check(dns1123_label(value), expected);
        }
    }

    #[test]
    fn subdomains() {
        let long = format!("{}.{}", "a".repeat(200), "b".repeat(60));
        let cases: &[(&str, &[&str])] = &[
            ("example.com", &[]),
            ("pvc-1", &[]),
            ("a.b.c", &[]),
            ("", &["a lowercase RFC 1123 subdomain"]),
            ("a..b", &["a lowercase RFC 1123 subdomain"]),
            (".a", &["a lowercase RFC 1123 subdomain"]),
            ("Fast", &["a lowercase RFC 1123 subdomain"]),
            (&long, &["must be no more than 253 characters"]),
        ];
        for (value, expected) in cases {
            check(dns1123_subdomain(value), expected);
        }
    }

    #[test]
    fn qualified_names() {
        let long = "a".repeat(64);
        let cases: &[(&str, &[&str])] = &[
            ("kubernetes.io/no-provisioner", &[]),
            ("csi.strata.dev", &[]),
            ("My_Name.1", &[]),
            ("a/b/c", &["a qualified name must consist"]),
            ("/name", &["prefix part must be non-empty"]),
            (
                "Bad_Prefix/name",
                &["prefix part a lowercase RFC 1123 subdomain"],
            ),
            (
                "example.com/",
                &["name part must be non-empty", "name part must consist"],
            ),
            (&long, &["name part must be no more than 63 characters"]),
            ("-x", &["name part must consist"]),
        ];
        for (value, expected) in cases {
            check(qualified_name(value), expected);
        }
    }

    #[test]
    fn messages_match_upstream() {
        assert_eq!(
            dns1123_label("A")[0],
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
    }

    proptest! {
        /// Anything built from label-shaped parts joined by dots is a
        /// subdomain, and a label exactly when it has no dot.
        #[test]
        fn generated_names_are_accepted(parts in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4)) {
            let name = parts.join(".");
            prop_assert!(dns1123_subdomain(&name).is_empty());
            prop_assert_eq!(dns1123_label(&name).is_empty(), parts.len() == 1);
            let qualified = format!("{name}/x");
            prop_assert!(qualified_name(&qualified).is_empty());
        }

        /// A character outside the alphabet is always refused.
        #[test]
        fn foreign_characters_are_refused(prefix in "[a-z]{1,5}", bad in "[A-Z_ /:@]", suffix in "[a-z]{1,5}") {
            let name = format!("{prefix}{bad}{suffix}");
            prop_assert!(!dns1123_subdomain(&name).is_empty());
            prop_assert!(!dns1123_label(&name).is_empty());
        }
    }
}
