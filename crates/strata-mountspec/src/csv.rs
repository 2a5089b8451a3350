//! The one CSV record of a `--mount` value. The Docker CLI reads it with Go's
//! `encoding/csv`, so a field can be double-quoted to carry commas
//! (`"volume-opt=o=addr=1.2.3.4,vers=4"`), `""` inside quotes is one quote,
//! and a stray quote is an error at a 1-based byte column. Users copy such
//! values from Docker docs and compose files; they must split the same way.

use crate::SpecError;

/// The comma-separated fields of `line`, quotes removed.
pub(crate) fn read_record(line: &str) -> Result<Vec<String>, SpecError> {
    if line.contains(['\n', '\r']) {
        return Err(SpecError::MultiLineMount);
    }
    let mut fields = Vec::new();
    let mut rest = (line, 1);
    loop {
        let (field, next) = if rest.0.starts_with('"') {
            quoted(rest.0, rest.1)?
        } else {
            unquoted(rest.0, rest.1)?
        };
        fields.push(field);
        match next {
            Some(next) => rest = next,
            None => return Ok(fields),
        }
    }
}

/// The text left after a field and its column; `None` at the end of the line.
type Rest<'a> = Option<(&'a str, usize)>;

fn unquoted(text: &str, column: usize) -> Result<(String, Rest<'_>), SpecError> {
    let (field, rest) = match text.find(',') {
        Some(comma) => (
            &text[..comma],
            Some((&text[comma + 1..], column + comma + 1)),
        ),
        None => (text, None),
    };
    if let Some(quote) = field.find('"') {
        return Err(SpecError::BareQuote {
            column: column + quote,
        });
    }
    Ok((field.to_owned(), rest))
}

fn quoted(text: &str, column: usize) -> Result<(String, Rest<'_>), SpecError> {
    let mut field = String::new();
    let (mut text, mut column) = (&text[1..], column + 1);
    loop {
        let Some(quote) = text.find('"') else {
            return Err(SpecError::ExtraneousQuote {
                column: column + text.len(),
            });
        };
        field.push_str(&text[..quote]);
        text = &text[quote + 1..];
        column += quote + 1;
        match text.chars().next() {
            Some('"') => {
                field.push('"');
                text = &text[1..];
                column += 1;
            }
            Some(',') => return Ok((field, Some((&text[1..], column + 1)))),
            None => return Ok((field, None)),
            Some(_) => return Err(SpecError::ExtraneousQuote { column: column - 1 }),
        }
    }
}
