//! Docker's word expansion (BuildKit's `shell.Lex`): quote removal, escapes,
//! and `$VAR`/`${VAR...}` substitution. It is not a shell: no globbing, no
//! command substitution, no arithmetic.

use crate::error::ExpandError;
use crate::pattern::Glob;

/// Expands one word as Docker does for `COPY`, `ENV`, `WORKDIR`...: quotes are
/// removed, the escape character escapes the next character, and variables
/// are substituted; an unset variable is empty.
pub fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    Ok(Lexer::new(word, escape, lookup, false).run()?.0)
}

/// Like [`expand_word`], but splits the result into words on unquoted
/// whitespace, including whitespace that a variable's value brings in (Docker
/// does this for `EXPOSE`).
pub fn expand_words(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    Ok(Lexer::new(word, escape, lookup, false).run()?.1.finish())
}

/// Expands a `COPY <<EOF` body: variables and escapes as usual, but quotes
/// stay literal, since the body is file content, not a word.
pub(crate) fn expand_heredoc(
    body: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    Ok(Lexer::new(body, escape, lookup, true).run()?.0)
}

/// Splits words as they are built: characters that came from a variable or
/// from an unquoted source split on whitespace, quoted text never does.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    word: String,
}

impl Words {
    fn push_splitting(&mut self, ch: char) {
        if !ch.is_whitespace() {
            self.word.push(ch);
        } else if !self.word.is_empty() {
            self.done.push(std::mem::take(&mut self.word));
        }
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.done.push(self.word);
        }
        self.done
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    keep_quotes: bool,
}

impl<'a> Lexer<'a> {
    fn new(
        text: &str,
        escape: char,
        lookup: &'a dyn Fn(&str) -> Option<String>,
        keep_quotes: bool,
    ) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            lookup,
            keep_quotes,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn run(&mut self) -> Result<(String, Words), ExpandError> {
        self.until(None, false)
    }

    /// Reads up to `stop` (consumed) or the end. `raw_escapes` keeps escape
    /// characters in the result, for patterns that interpret them later.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Words), ExpandError> {
        let mut out = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((out, words));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    value.chars().for_each(|c| words.push_splitting(c));
                    out.push_str(&value);
                }
                '\'' | '"' if !self.keep_quotes => {
                    let text = if ch == '\'' {
                        self.single_quoted()?
                    } else {
                        self.double_quoted()?
                    };
                    words.word.push_str(&text);
                    out.push_str(&text);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if raw_escapes {
                            out.push(ch);
                            words.word.push(ch);
                        }
                        // A trailing escape character is dropped.
                        let Some(escaped) = self.next() else { break };
                        out.push(escaped);
                        words.word.push(escaped);
                    } else {
                        out.push(ch);
                        words.push_splitting(ch);
                    }
                }
            }
        }
        match stop {
            Some('}') => Err(ExpandError::MissingBrace),
            Some(_) => Err(ExpandError::MissingSlash),
            None => Ok((out, words)),
        }
    }

    /// Everything up to the next `'` is literal; `'` cannot be escaped.
    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(ExpandError::Unterminated("single-quote")),
                Some('\'') => return Ok(out),
                Some(ch) => out.push(ch),
            }
        }
    }

    /// Variables expand; the escape character escapes only `"`, `$` and
    /// itself, and stays literal before anything else.
    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError::Unterminated("double-quote")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                out.push(next);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// At a `$`: a plain `$NAME`, a braced `${...}`, or a literal `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(ExpandError::MissingBrace),
            Some('}') => Ok(self.get(&name).unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                self.modifier(&name, modifier, true)
            }
            Some('/') => self.replace(&name),
            Some(modifier) => self.modifier(&name, Some(modifier), false),
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits; or one
    /// of the shell's special parameters, which Docker looks up like names.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(ch) if ch.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(ch @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                return ch.to_string();
            }
            _ => {}
        }
        while let Some(ch) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(ch);
            self.pos += 1;
        }
        name
    }

    /// `${NAME-word}`, `${NAME+word}`, `${NAME?word}`, `${NAME#pat}`,
    /// `${NAME%pat}` and their `:` forms (where empty counts as unset).
    fn modifier(
        &mut self,
        name: &str,
        modifier: Option<char>,
        null_is_unset: bool,
    ) -> Result<String, ExpandError> {
        let shown = || {
            let colon = if null_is_unset { ":" } else { "" };
            format!("{colon}{}", modifier.map(String::from).unwrap_or_default())
        };
        let is_pattern = matches!(modifier, Some('#' | '%'));
        if null_is_unset && is_pattern {
            return Err(ExpandError::UnsupportedModifier(shown()));
        }
        if !matches!(modifier, Some('-' | '+' | '?' | '#' | '%')) {
            // After `:` BuildKit reads the word before refusing the modifier,
            // so a missing `}` wins there.
            if null_is_unset {
                self.until(Some('}'), false)?;
            }
            return Err(ExpandError::UnsupportedModifier(shown()));
        }
        let (word, _) = self.until(Some('}'), is_pattern)?;
        let value = self.get(name);
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match modifier {
            Some('-') if unset => Ok(word),
            Some('-') => Ok(value.unwrap_or_default()),
            Some('+') if unset => Ok(String::new()),
            Some('+') => Ok(word),
            Some('?') if unset => {
                let default = if value.is_none() {
                    "is not allowed to be unset"
                } else {
                    "is not allowed to be empty"
                };
                let message = if word.is_empty() {
                    default.into()
                } else {
                    word
                };
                Err(ExpandError::Required {
                    name: name.to_owned(),
                    message,
                })
            }
            Some('?') => Ok(value.unwrap_or_default()),
            Some(ch) => Ok(trim(&value.unwrap_or_default(), &word, ch, self.escape)),
            None => Err(ExpandError::MissingBrace),
        }
    }

    /// `${NAME/pattern/replacement}`, or `${NAME//...}` to replace them all.
    fn replace(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let (pattern, _) = self.until(Some('/'), true)?;
        let (replacement, _) = self.until(Some('}'), true)?;
        let value = self.get(name).unwrap_or_default();
        Ok(Glob::new(&pattern, self.escape).replace(&value, &replacement, all))
    }
}

/// `#`/`%` remove the shortest matching prefix/suffix, `##`/`%%` the longest.
fn trim(value: &str, word: &str, op: char, escape: char) -> String {
    let (greedy, pattern) = match word.strip_prefix(op) {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let glob = Glob::new(pattern, escape);
    let cuts: Vec<usize> = (0..=value.len())
        .filter(|i| value.is_char_boundary(*i))
        .collect();
    let mut order: Box<dyn Iterator<Item = &usize>> = match (op == '#', greedy) {
        (true, false) | (false, true) => Box::new(cuts.iter()),
        _ => Box::new(cuts.iter().rev()),
    };
    let found = if op == '#' {
        order.find(|&&i| glob.matches(&value[..i]))
    } else {
        order.find(|&&i| glob.matches(&value[i..]))
    };
    match (found, op) {
        (Some(&i), '#') => value[i..].to_owned(),
        (Some(&i), _) => value[..i].to_owned(),
        (None, _) => value.to_owned(),
    }
}
