//! Shell patterns for `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`:
//! `*`, `?`, `[...]` (with `!` or `^` to negate) and escaped literals.

#[derive(Debug)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn accepts(&self, ch: char) -> bool {
        match self {
            Token::Literal(lit) => *lit == ch,
            Token::AnyOne | Token::AnyRun => true,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&ch)) != *negated
            }
        }
    }
}

pub(crate) struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    pub(crate) fn new(pattern: &str, escape: char) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            let token = match ch {
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                '[' => match class(&chars[i..], escape) {
                    Some((token, used)) => {
                        i += used;
                        token
                    }
                    // An unclosed `[` is an ordinary character.
                    None => Token::Literal('['),
                },
                _ if ch == escape && i < chars.len() => {
                    i += 1;
                    Token::Literal(chars[i - 1])
                }
                _ => Token::Literal(ch),
            };
            tokens.push(token);
        }
        Glob { tokens }
    }

    /// Whether the whole of `text` matches. Dynamic programming over
    /// (token, char) keeps this linear in each, whatever the `*`s.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        // reach[j]: the tokens seen so far can match chars[..j].
        let mut reach = vec![false; chars.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; chars.len() + 1];
            for j in 0..=chars.len() {
                if matches!(token, Token::AnyRun) {
                    next[j] = reach[j] || (j > 0 && next[j - 1]);
                } else if j > 0 {
                    next[j] = reach[j - 1] && token.accepts(chars[j - 1]);
                }
            }
            reach = next;
        }
        reach[chars.len()]
    }

    /// Replaces the leftmost longest match (or every such match) in `value`.
    /// As in Go's regexp, an empty match right after a match does not count.
    pub(crate) fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let bounds: Vec<usize> = (0..=value.len())
            .filter(|i| value.is_char_boundary(*i))
            .collect();
        let mut out = String::new();
        let mut start = 0;
        let mut after_match = false;
        while start < bounds.len() {
            let from = bounds[start];
            let longest = (start..bounds.len())
                .rev()
                .find(|&end| self.matches(&value[from..bounds[end]]));
            match longest {
                Some(end) if end > start => {
                    out.push_str(replacement);
                    if !all {
                        out.push_str(&value[bounds[end]..]);
                        return out;
                    }
                    start = end;
                    after_match = true;
                    continue;
                }
                Some(_) if !after_match => {
                    out.push_str(replacement);
                    if !all {
                        out.push_str(&value[from..]);
                        return out;
                    }
                }
                _ => {}
            }
            after_match = false;
            // Keep one character and look again after it.
            if let Some(&to) = bounds.get(start + 1) {
                out.push_str(&value[from..to]);
            }
            start += 1;
        }
        out
    }
}

/// A bracket expression after its `[`: the token and how many chars it used,
/// or `None` when there is no closing `]`.
fn class(chars: &[char], escape: char) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut ch = *chars.get(i)?;
        i += 1;
        if ch == ']' && !first {
            return Some((Token::Class { negated, ranges }, i));
        }
        first = false;
        if ch == escape {
            ch = *chars.get(i)?;
            i += 1;
        }
        let is_range = chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']');
        if is_range {
            let hi = chars[i + 1];
            i += 2;
            ranges.push((ch, hi));
        } else {
            ranges.push((ch, ch));
        }
    }
}
