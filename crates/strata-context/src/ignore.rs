//! `.dockerignore`: which files of the build context COPY and ADD cannot see.
//!
//! Docker's rules: one pattern per line; a line starting with `#` is a
//! comment; surrounding whitespace is trimmed and blank lines are skipped;
//! `!` makes an exception; each pattern is cleaned like Go's
//! `filepath.Clean` and loses a leading `/`. A pattern matches a path when it
//! matches the path itself or one of its parent directories, and the last
//! matching pattern decides.

use std::borrow::Cow;

use crate::pattern::{Pattern, PatternError};

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error(".dockerignore line {line}: bad pattern '{pattern}': {reason}")]
    BadPattern {
        line: usize,
        pattern: String,
        reason: PatternError,
    },
    #[error(
        ".dockerignore line {line}: illegal exclusion pattern \"!\"; write the path to re-include after the '!'"
    )]
    BareExclamation { line: usize },
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    /// A `!` line: re-includes what it matches.
    exception: bool,
}

/// The parsed `.dockerignore` of a build context.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

/// Per rule: whether it matched a path or one of its parents. Walks carry
/// this from a directory to its entries so each entry costs one match per
/// rule instead of one per rule and parent.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchState(Vec<bool>);

impl Ignore {
    /// Ignores nothing.
    pub fn none() -> Ignore {
        Ignore::default()
    }

    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            // Comments are recognised before trimming, as Docker does.
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(IgnoreError::BareExclamation { line });
                }
            }
            let cleaned = clean(pattern);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => cleaned,
            };
            let pattern =
                Pattern::dockerignore(&cleaned).map_err(|reason| IgnoreError::BadPattern {
                    line,
                    pattern: raw.trim().to_string(),
                    reason,
                })?;
            rules.push(Rule { pattern, exception });
        }
        Ok(Ignore { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// excluded from the context.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        self.excluded_by(&self.state_of(&clean_rel(rel_path)))
    }

    /// Whether anything under the directory `rel_dir` can be in the context:
    /// false only for an excluded directory that no later exception could
    /// reach into, so a walk may skip it whole.
    pub fn may_include_under(&self, rel_dir: &str) -> bool {
        let dir = clean_rel(rel_dir);
        if dir.is_empty() {
            return true;
        }
        let state = self.state_of(&dir);
        if !self.excluded_by(&state) {
            return true;
        }
        self.exception_reaches_under(&state, &dir)
    }

    pub(crate) fn root_state(&self) -> MatchState {
        MatchState(vec![false; self.rules.len()])
    }

    /// The state of `path` given the state of its parent directory.
    pub(crate) fn child_state(&self, parent: &MatchState, path: &str) -> MatchState {
        MatchState(
            self.rules
                .iter()
                .zip(&parent.0)
                .map(|(rule, &matched)| matched || rule.pattern.matches(path))
                .collect(),
        )
    }

    /// The state of `path`, computed through all its parents.
    pub(crate) fn state_of(&self, path: &str) -> MatchState {
        let mut state = self.root_state();
        if path.is_empty() || self.rules.is_empty() {
            return state;
        }
        for (i, _) in path.match_indices('/') {
            state = self.child_state(&state, &path[..i]);
        }
        self.child_state(&state, path)
    }

    /// The last matching rule decides; no match means included.
    pub(crate) fn excluded_by(&self, state: &MatchState) -> bool {
        self.rules
            .iter()
            .zip(&state.0)
            .rev()
            .find(|(_, matched)| **matched)
            .is_some_and(|(rule, _)| !rule.exception)
    }

    /// For an excluded directory: whether an exception after the rule that
    /// excluded it could match something below it.
    pub(crate) fn exception_reaches_under(&self, state: &MatchState, dir: &str) -> bool {
        let last = state.0.iter().rposition(|&m| m).unwrap_or(0);
        let prefix = format!("{dir}/");
        self.rules[last..]
            .iter()
            .any(|rule| rule.exception && rule.pattern.may_match_after(&prefix))
    }
}

/// A walk's path as text for matching (file names need not be UTF-8).
pub(crate) fn path_str(path: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(path)
}

/// Normalises a caller's relative path: no `./`, no empty elements.
fn clean_rel(path: &str) -> String {
    let c = clean(path);
    let c = c.trim_start_matches('/');
    if c == "." {
        String::new()
    } else {
        c.to_string()
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_clean() {
        for (input, want) in [
            ("", "."),
            ("./foo", "foo"),
            ("/foo/", "/foo"),
            ("a//b/./c/..", "a/b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("/", "/"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }
}
