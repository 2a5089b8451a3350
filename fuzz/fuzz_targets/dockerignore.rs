//! `.dockerignore` parsing and matching never panic: the input is split at
//! its first NUL into the file's text and a path to match.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_context::Ignore;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (patterns, path) = text.split_once('\0').unwrap_or((&text, "a/b"));
    let Ok(ignore) = Ignore::parse(patterns) else {
        return;
    };
    let excluded = ignore.is_excluded(path);
    // An included directory can always be walked into.
    if !excluded {
        assert!(ignore.may_include_under(path));
    }
    // Without exceptions, whatever is under an excluded directory is
    // excluded too (for clean paths: `..` would change what is a parent).
    let clean = path.split('/').all(|e| !matches!(e, "" | "." | ".."));
    if clean && !patterns.contains('!') {
        for (i, _) in path.match_indices('/') {
            if ignore.is_excluded(&path[..i]) {
                assert!(excluded, "{path:?} is under an excluded directory");
            }
        }
    }
});
