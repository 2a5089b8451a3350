//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) in RUN, COPY and ADD.

use crate::words::quoted_words;

/// A heredoc opener found in an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocSpec {
    /// The terminator, quotes removed.
    pub(crate) name: String,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub(crate) chomp: bool,
    /// False when any part of the word was quoted: the body stays literal.
    pub(crate) expand: bool,
}

/// A heredoc with its body, as the parser hands it to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heredoc {
    pub(crate) spec: HeredocSpec,
    pub(crate) body: String,
}

impl Heredoc {
    /// The body with `<<-` applied.
    pub(crate) fn content(&self) -> String {
        if self.spec.chomp {
            chomp(&self.body)
        } else {
            self.body.clone()
        }
    }
}

/// The heredoc openers in a line, in order. Words are split as the shell
/// would (quotes kept), so a quoted `"<<EOF"` is not an opener.
pub(crate) fn find(line: &str) -> Vec<HeredocSpec> {
    if !line.contains("<<") {
        return Vec::new();
    }
    quoted_words(line, '\\')
        .iter()
        .filter_map(|word| parse(word))
        .collect()
}

/// Matches a whole word against `^(\d*)<<(-?)([^<]*)$` with a non-empty,
/// single-word name part.
pub(crate) fn parse(word: &str) -> Option<HeredocSpec> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote(rest)?;
    Some(HeredocSpec {
        name,
        chomp,
        expand: !quoted,
    })
}

/// Removes quotes and `\` escapes from a heredoc word; `None` if it is not a
/// single well-formed word.
fn unquote(word: &str) -> Option<(String, bool)> {
    let mut name = String::new();
    let mut quoted = false;
    let mut quote: Option<char> = None;
    let mut chars = word.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, '\'' | '"') => {
                quote = Some(ch);
                quoted = true;
            }
            (Some(q), _) if ch == q => quote = None,
            (Some('\''), _) => name.push(ch),
            (None, _) if ch.is_whitespace() => return None,
            (Some(_), '\\') => match chars.next()? {
                next @ ('"' | '\\' | '$') => name.push(next),
                next => {
                    name.push('\\');
                    name.push(next);
                }
            },
            (None, '\\') => name.push(chars.next()?),
            _ => name.push(ch),
        }
    }
    quote.is_none().then_some((name, quoted))
}

/// `<<-`: strips leading tabs from every line.
pub(crate) fn chomp(body: &str) -> String {
    body.split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}
