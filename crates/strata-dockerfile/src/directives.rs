//! Parser directives: `# key=value` comment lines at the very top of a
//! Dockerfile. Only `escape` changes parsing; `syntax` and `check` are
//! accepted and ignored.

const KNOWN: [&str; 3] = ["escape", "syntax", "check"];

/// Tracks the directive section: it ends at the first line that is not a
/// known directive (an instruction, a blank line, any other comment).
pub(crate) struct Directives {
    pub(crate) escape: char,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    pub(crate) fn new() -> Self {
        Directives {
            escape: '\\',
            done: false,
            seen: Vec::new(),
        }
    }

    /// For text with no directive section (ONBUILD triggers).
    pub(crate) fn none(escape: char) -> Self {
        Directives {
            escape,
            done: true,
            seen: Vec::new(),
        }
    }

    /// Looks at one line (leading whitespace and newline already removed).
    pub(crate) fn see(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !KNOWN.contains(&key.as_str()) {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        if key == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(format!(
                        "invalid escape token '{value}' does not match ` or \\"
                    ));
                }
            };
        }
        self.seen.push(key);
        Ok(())
    }
}

/// Matches `#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}
