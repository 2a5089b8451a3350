//! Turns Dockerfile text into logical lines: directives handled, comments
//! dropped, continuations joined, and heredoc bodies read when asked.

use crate::directives::Directives;
use crate::error::ParseError;
use crate::heredoc::HeredocSpec;

/// One instruction's text, continuation lines joined.
pub(crate) struct Logical {
    /// The 1-based line where the instruction starts.
    pub(crate) line: usize,
    pub(crate) text: String,
}

pub(crate) struct Reader<'a> {
    lines: Vec<&'a str>,
    /// Index of the next unread line.
    next: usize,
    pub(crate) directives: Directives,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str, directives: Directives) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Reader {
            lines: text.split_inclusive('\n').collect(),
            next: 0,
            directives,
        }
    }

    /// The number of lines read so far (the current line number).
    pub(crate) fn line(&self) -> usize {
        self.next
    }

    fn take(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.next).copied()?;
        self.next += 1;
        Some(line)
    }

    /// The next instruction, or `None` at the end of the text.
    pub(crate) fn next_logical(&mut self) -> Result<Option<Logical>, ParseError> {
        while let Some(raw) = self.take() {
            let line = strip_newline(raw).trim_start();
            let number = self.next;
            self.directives
                .see(line)
                .map_err(|m| ParseError::new(number, m))?;
            if is_comment(line) {
                continue;
            }
            let (first, mut ends) = self.strip_continuation(line);
            if ends && first.is_empty() {
                continue;
            }
            let mut text = first.to_owned();
            while !ends {
                let Some(raw) = self.take() else { break };
                let line = strip_newline(raw);
                // Comments and blank lines do not end a continued instruction.
                if is_comment(line.trim_start()) || line.trim_start().is_empty() {
                    continue;
                }
                let (part, end) = self.strip_continuation(line);
                text.push_str(part);
                ends = end;
            }
            return Ok(Some(Logical { line: number, text }));
        }
        Ok(None)
    }

    /// Removes a trailing escape character (plus blanks after it); the bool
    /// says whether the instruction ends on this line.
    fn strip_continuation<'l>(&self, line: &'l str) -> (&'l str, bool) {
        let trimmed = line.trim_end_matches([' ', '\t']);
        match trimmed.strip_suffix(self.directives.escape) {
            Some(part) => (part, false),
            None => (line, true),
        }
    }

    /// Reads the bodies of `specs` in order from the lines after the
    /// instruction; `start` is the instruction's line, for the error.
    pub(crate) fn heredoc_bodies(
        &mut self,
        specs: &[HeredocSpec],
        start: usize,
    ) -> Result<Vec<String>, ParseError> {
        specs
            .iter()
            .map(|spec| self.heredoc_body(spec, start))
            .collect()
    }

    fn heredoc_body(&mut self, spec: &HeredocSpec, start: usize) -> Result<String, ParseError> {
        let mut body = String::new();
        while let Some(raw) = self.take() {
            let line = strip_newline(raw);
            let candidate = if spec.chomp {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == spec.name {
                return Ok(body);
            }
            body.push_str(line);
            if raw.ends_with('\n') {
                body.push('\n');
            }
        }
        Err(ParseError::new(
            start,
            format!("unterminated heredoc: no line \"{}\" ends it", spec.name),
        ))
    }
}

fn strip_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.starts_with('#')
}
