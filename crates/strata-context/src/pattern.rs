//! Glob patterns in Go's `filepath.Match` syntax, plus Docker's `**`.
//!
//! A pattern compiles to a list of tokens matched by a small NFA over the
//! whole path, which is how Docker's pattern matcher behaves (it translates
//! each pattern to a regular expression): `*` and `?` never cross a `/`,
//! `[...]` is a character class (negated with `^`), `\` escapes the next
//! character, and in `.dockerignore` patterns `**/` matches any number of
//! directories (including none) while a trailing `**` matches anything.
//! Simulating the NFA keeps matching linear in the path length whatever the
//! pattern, so hostile patterns cannot make a walk slow.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`: one character other than `/`.
    Any,
    /// `[...]`: inclusive ranges, negated with `^`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `*`: any run of characters other than `/`.
    Star,
    /// A trailing `**`: anything at all.
    Rest,
    /// `**` elsewhere: nothing, or anything ending in `/`.
    Dirs,
}

/// Why a pattern does not compile; the caller names the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    UnterminatedClass,
    EmptyClassPart,
    BackwardsRange(char, char),
    TrailingBackslash,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::UnterminatedClass => write!(f, "unterminated '[' character class"),
            PatternError::EmptyClassPart => write!(
                f,
                "character class has an empty part (escape a literal ']' or '-' with '\\')"
            ),
            PatternError::BackwardsRange(lo, hi) => {
                write!(f, "character class range '{lo}-{hi}' runs backwards")
            }
            PatternError::TrailingBackslash => write!(f, "pattern ends with an unescaped '\\'"),
        }
    }
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// Set when the pattern has no metacharacters: matching is then a plain
    /// string comparison (the common `.git`, `node_modules` case).
    literal: Option<String>,
    /// The literal text the pattern ends with (`.log` for `*.log`): most
    /// paths fail this cheap test and never reach the NFA.
    suffix: String,
}

/// Whether `s` has an unescaped `*`, `?` or `[` (Docker decides by this
/// whether a COPY source is a wildcard).
pub fn has_wildcards(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

impl Pattern {
    /// Compiles a `.dockerignore` pattern (with `**`).
    pub fn dockerignore(pattern: &str) -> Result<Pattern, PatternError> {
        Pattern::compile(pattern, true)
    }

    /// Compiles a plain `filepath.Match` pattern (`**` is just two stars).
    pub fn glob(pattern: &str) -> Result<Pattern, PatternError> {
        Pattern::compile(pattern, false)
    }

    fn compile(pattern: &str, globstar: bool) -> Result<Pattern, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if globstar && chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    tokens.push(if i == chars.len() {
                        Token::Rest
                    } else {
                        Token::Dirs
                    });
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::Any),
                '[' => {
                    let (class, next) = parse_class(&chars, i)?;
                    tokens.push(class);
                    i = next;
                }
                '\\' => {
                    let escaped = *chars.get(i).ok_or(PatternError::TrailingBackslash)?;
                    i += 1;
                    tokens.push(Token::Lit(escaped));
                }
                c => tokens.push(Token::Lit(c)),
            }
        }
        let literal = tokens
            .iter()
            .map(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect::<Option<String>>();
        let mut suffix: Vec<char> = tokens
            .iter()
            .rev()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        suffix.reverse();
        Ok(Pattern {
            tokens,
            literal,
            suffix: suffix.into_iter().collect(),
        })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        if let Some(lit) = &self.literal {
            return lit == text;
        }
        if !text.ends_with(self.suffix.as_str()) {
            return false;
        }
        let mut nfa = Nfa::new(&self.tokens);
        for c in text.chars() {
            if !nfa.step(c) {
                return false;
            }
        }
        nfa.accepts()
    }

    /// Whether some text starting with `prefix` (and longer than it) could
    /// still match.
    pub fn may_match_after(&self, prefix: &str) -> bool {
        if let Some(lit) = &self.literal {
            return lit.len() > prefix.len() && lit.starts_with(prefix);
        }
        let mut nfa = Nfa::new(&self.tokens);
        for c in prefix.chars() {
            if !nfa.step(c) {
                return false;
            }
        }
        nfa.has_pending()
    }
}

/// Parses a class after its `[`, following Go's `filepath.Match` grammar:
/// at least one `lo` or `lo-hi` part, where `-` and `]` must be escaped.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Token, usize), PatternError> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err(PatternError::UnterminatedClass),
            Some(']') if !ranges.is_empty() => {
                return Ok((Token::Class { negated, ranges }, i + 1));
            }
            _ => {}
        }
        let lo = class_char(chars, &mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(chars, &mut i)?;
            if hi < lo {
                return Err(PatternError::BackwardsRange(lo, hi));
            }
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, PatternError> {
    let c = match chars.get(*i) {
        None => return Err(PatternError::UnterminatedClass),
        Some('-' | ']') => return Err(PatternError::EmptyClassPart),
        Some('\\') => {
            *i += 1;
            *chars.get(*i).ok_or(PatternError::UnterminatedClass)?
        }
        Some(&c) => c,
    };
    *i += 1;
    Ok(c)
}

/// The NFA's state set. State `k <= n` means "about to match token `k`"
/// (`n` accepts); state `n + 1 + k` means "inside the `.*/` of the `**` at
/// token `k`".
struct Nfa<'a> {
    tokens: &'a [Token],
    cur: Vec<bool>,
    next: Vec<bool>,
}

impl<'a> Nfa<'a> {
    fn new(tokens: &'a [Token]) -> Nfa<'a> {
        let size = 2 * (tokens.len() + 1);
        let mut nfa = Nfa {
            tokens,
            cur: vec![false; size],
            next: vec![false; size],
        };
        let mut start = std::mem::take(&mut nfa.cur);
        nfa.enter(&mut start, 0);
        nfa.cur = start;
        nfa
    }

    /// Adds state `k` and everything reachable from it without input.
    fn enter(&self, set: &mut [bool], mut k: usize) {
        loop {
            if set[k] {
                return;
            }
            set[k] = true;
            match self.tokens.get(k) {
                Some(Token::Star | Token::Rest | Token::Dirs) => k += 1,
                _ => return,
            }
        }
    }

    /// Consumes `c`; false once no state is left.
    fn step(&mut self, c: char) -> bool {
        let n = self.tokens.len();
        let mut next = std::mem::take(&mut self.next);
        next.iter_mut().for_each(|s| *s = false);
        let mut alive = false;
        for k in 0..=n {
            if self.cur[k] {
                alive |= self.advance(&mut next, k, c);
            }
            if self.cur[n + 1 + k] {
                // Inside `**`: keep eating; a `/` may end it.
                next[n + 1 + k] = true;
                if c == '/' {
                    self.enter(&mut next, k + 1);
                }
                alive = true;
            }
        }
        self.next = std::mem::replace(&mut self.cur, next);
        alive
    }

    fn advance(&self, next: &mut [bool], k: usize, c: char) -> bool {
        let n = self.tokens.len();
        let Some(token) = self.tokens.get(k) else {
            return false;
        };
        let to = match token {
            Token::Lit(l) if *l == c => k + 1,
            Token::Any if c != '/' => k + 1,
            Token::Class { negated, ranges }
                if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated =>
            {
                k + 1
            }
            Token::Star if c != '/' => k,
            Token::Rest => k,
            Token::Dirs => {
                next[n + 1 + k] = true;
                if c == '/' {
                    self.enter(next, k + 1);
                }
                return true;
            }
            _ => return false,
        };
        self.enter(next, to);
        true
    }

    fn accepts(&self) -> bool {
        self.cur[self.tokens.len()]
    }

    /// Whether a state other than "accepted" is live: more input could match.
    fn has_pending(&self) -> bool {
        let n = self.tokens.len();
        self.cur.iter().enumerate().any(|(k, &on)| on && k != n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::dockerignore(p).unwrap().matches(t)
    }

    #[test]
    fn stars_and_classes() {
        assert!(m("*.go", "a.go"));
        assert!(!m("*.go", "d/a.go"));
        assert!(m("**/*.go", "a.go"));
        assert!(m("**/*.go", "d/e/a.go"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/xb"));
        assert!(m("a/**", "a/x/y"));
        assert!(!m("a/**", "a"));
        assert!(m("**", "anything/at/all"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[\\]]", "]"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("te?t", "test"));
        assert!(!m("te?t", "te/t"));
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(
            Pattern::dockerignore("[abc").unwrap_err(),
            PatternError::UnterminatedClass
        );
        assert_eq!(
            Pattern::dockerignore("[]").unwrap_err(),
            PatternError::EmptyClassPart
        );
        assert_eq!(
            Pattern::dockerignore("[z-a]").unwrap_err(),
            PatternError::BackwardsRange('z', 'a')
        );
        assert_eq!(
            Pattern::dockerignore("a\\").unwrap_err(),
            PatternError::TrailingBackslash
        );
    }

    #[test]
    fn prefixes() {
        let p = Pattern::dockerignore("a/**/keep").unwrap();
        assert!(p.may_match_after("a/"));
        assert!(p.may_match_after("a/b/c/"));
        assert!(!p.may_match_after("b/"));
        let lit = Pattern::dockerignore("a/b").unwrap();
        assert!(lit.may_match_after("a/"));
        assert!(!lit.may_match_after("a/b/"));
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcards("*.txt"));
        assert!(has_wildcards("a/[bc]"));
        assert!(!has_wildcards("a\\*b"));
        assert!(!has_wildcards("plain/name"));
    }
}
