//! Lexical path rules shared by the parsers. Docker compares and stores
//! container paths after Go's `path.Clean`, so `/data/`, `//data` and
//! `/x/../data` are one mount point; the same cleaning, and the daemon's
//! target checks, live here so every parser agrees on them.

use std::path::{Component, Path, PathBuf};

use crate::SpecError;

/// Go's `path.Clean`, lexically: repeated separators and `.` go, `..` removes
/// the name before it and never climbs above `/`; nothing left is `.`.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut kept: Vec<Component> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match kept.last() {
                Some(Component::Normal(_)) => {
                    kept.pop();
                }
                Some(Component::RootDir) => {}
                _ => kept.push(component),
            },
            _ => kept.push(component),
        }
    }
    if kept.is_empty() {
        return PathBuf::from(".");
    }
    kept.iter().collect()
}

/// The CLI's `filepath.Abs` of a host path written relative, with a
/// leading `.` (`./data`, `../x`, `.`); any other source stays as written.
pub(crate) fn resolve(source: &str, cwd: &Path) -> PathBuf {
    if is_relative_path(source) {
        clean(&cwd.join(source))
    } else {
        PathBuf::from(source)
    }
}

/// A source the CLI reads as a relative host path. A volume name can never
/// start with `.`, so this takes nothing away from names.
pub(crate) fn is_relative_path(source: &str) -> bool {
    source.starts_with('.')
}

/// [`clean`] for text; cleaning valid UTF-8 only drops whole components, so
/// the result is still valid UTF-8.
pub(crate) fn clean_str(path: &str) -> String {
    clean(Path::new(path)).to_string_lossy().into_owned()
}

/// The daemon's check of a container path (the root first, then absolute),
/// giving back the cleaned path to store.
pub(crate) fn check_target(target: &str) -> Result<String, SpecError> {
    let cleaned = clean_str(target);
    if cleaned == "/" {
        return Err(SpecError::TargetIsRoot);
    }
    if !target.starts_with('/') {
        return Err(SpecError::RelativePath {
            path: target.to_owned(),
        });
    }
    Ok(cleaned)
}

/// Go's `filepath.IsLocal` on Unix: relative, not empty, and not leaving its
/// starting directory once cleaned.
pub(crate) fn is_local(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') {
        return false;
    }
    let cleaned = clean_str(path);
    cleaned != ".." && !cleaned.starts_with("../")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go_path_clean() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/..", "/"),
            ("a/..", "."),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("./a/", "a"),
            ("a/b/../../../c", "../c"),
        ] {
            assert_eq!(clean_str(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn is_local_matches_go_filepath_is_local() {
        for (input, want) in [
            ("a", true),
            ("a/b", true),
            (".", true),
            ("a/..", true),
            ("a/../b", true),
            ("", false),
            ("/a", false),
            ("..", false),
            ("../a", false),
            ("a/../..", false),
            ("a/../../b", false),
        ] {
            assert_eq!(is_local(input), want, "is_local({input:?})");
        }
    }
}
