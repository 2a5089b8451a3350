//! Splitting an instruction's text into the pieces its parser wants, before
//! any expansion: keyword, flags, whitespace- or quote-aware words, JSON.

/// The whitespace Docker splits arguments on (Go's `[\t\v\f\r ]`).
fn is_blank(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\r' | '\u{b}' | '\u{c}')
}

/// Splits on runs of blanks, ignoring quotes: Docker's whitespace-delimited
/// form (`COPY a b /dst`, `EXPOSE`, `FROM`), where quotes are left for the
/// expansion of each word.
pub(crate) fn split_blank(text: &str) -> Vec<String> {
    text.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Splits off the first word and the trimmed rest after the blanks behind it.
pub(crate) fn split_first(text: &str) -> (&str, &str) {
    let text = text.trim_matches(is_blank);
    match text.find(is_blank) {
        Some(at) => (&text[..at], text[at..].trim_start_matches(is_blank)),
        None => (text, ""),
    }
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words
/// (Docker's `parseWords`, used for `ENV`, `LABEL` and `ARG` pairs and for
/// finding heredocs). Inside single quotes the escape character is literal.
pub(crate) fn quoted_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A quoted empty string (`""`) is still a word.
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match quote {
            None if ch.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
                continue;
            }
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            Some(q) if ch == q => quote = None,
            _ => {}
        }
        let escapes = ch == escape && quote != Some('\'');
        if escapes {
            // A trailing escape character is dropped.
            let Some(next) = chars.next() else { break };
            word.push(ch);
            word.push(next);
        } else {
            word.push(ch);
        }
        started = true;
    }
    if started {
        words.push(word);
    }
    words
}

/// Why a text is not an exec-form argument list.
pub(crate) enum NotJson {
    /// Not a JSON array at all: the text is shell form.
    Shell,
    /// A JSON array with something other than strings in it: an error.
    NotStrings,
}

/// The exec form: a JSON array of strings.
pub(crate) fn json_array(text: &str) -> Result<Vec<String>, NotJson> {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Err(NotJson::Shell);
    }
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| NotJson::Shell)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NotJson::NotStrings),
        })
        .collect()
}

pub(crate) const NOT_STRINGS: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Takes the leading `--flag[=value]` words off an instruction's arguments.
/// Quotes are removed and `\` escapes the next character, as in Docker
/// (whatever the escape directive says). A lone `--` ends the flags.
pub(crate) fn take_flags(text: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("--") {
            return (flags, trimmed);
        }
        let (word, after) = flag_word(trimmed);
        if word == "--" {
            return (flags, after.trim_start());
        }
        flags.push(word);
        rest = after;
    }
}

/// One flag word from the start of `text`, and what follows it.
fn flag_word(text: &str) -> (String, &str) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut iter = text.char_indices();
    while let Some((at, ch)) = iter.next() {
        match quote {
            None if ch.is_whitespace() => return (word, &text[at..]),
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            Some(q) if ch == q => quote = None,
            _ if ch == '\\' => {
                if let Some((_, next)) = iter.next() {
                    word.push(next);
                }
            }
            _ => word.push(ch),
        }
    }
    (word, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_plain_word() {
        let (flags, rest) = take_flags("--a=1 --b='x y' cmd --c");
        assert_eq!(flags, ["--a=1", "--b=x y"]);
        assert_eq!(rest, "cmd --c");
        assert_eq!(take_flags("-- --x"), (vec![], "--x"));
    }

    #[test]
    fn quoted_words_keep_quotes() {
        assert_eq!(
            quoted_words(r#"a="b c" d=\"e 'f\'"#, '\\'),
            [r#"a="b c""#, r#"d=\"e"#, r"'f\'"]
        );
        assert_eq!(quoted_words(r#"a "" b"#, '\\'), ["a", r#""""#, "b"]);
    }
}
