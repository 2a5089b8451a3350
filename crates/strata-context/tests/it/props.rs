use proptest::prelude::*;
use strata_context::Ignore;

/// A path element without glob metacharacters, `!`, `#` or whitespace.
fn plain_element() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,8}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn plain_path() -> impl Strategy<Value = String> {
    prop::collection::vec(plain_element(), 1..4).prop_map(|v| v.join("/"))
}

proptest! {
    #[test]
    fn never_panics(text in "\\PC{0,200}", path in "\\PC{0,60}") {
        if let Ok(ignore) = Ignore::parse(&text) {
            let _ = ignore.is_excluded(&path);
            let _ = ignore.may_include_under(&path);
        }
    }

    #[test]
    fn never_panics_on_glob_like_input(
        text in "[*?\\[\\]\\\\!/a-c^\\-\n ]{0,40}",
        path in "[a-c/*?\\[\\]]{0,20}",
    ) {
        if let Ok(ignore) = Ignore::parse(&text) {
            let _ = ignore.is_excluded(&path);
            let _ = ignore.may_include_under(&path);
        }
    }

    #[test]
    fn plain_pattern_matches_itself_and_below(
        pattern in plain_path(),
        below in plain_path(),
        other in plain_path(),
    ) {
        let ignore = Ignore::parse(&pattern).unwrap();
        prop_assert!(ignore.is_excluded(&pattern));
        let under = format!("{pattern}/{below}");
        prop_assert!(ignore.is_excluded(&under));
        let other_is_under = other == pattern || other.starts_with(&format!("{pattern}/"));
        prop_assert_eq!(ignore.is_excluded(&other), other_is_under);
        // An exception for it re-includes exactly the same paths.
        let both = Ignore::parse(&format!("{pattern}\n!{pattern}")).unwrap();
        prop_assert!(!both.is_excluded(&under));
    }
}
