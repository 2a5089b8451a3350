//! The two error types: parse errors carry the Dockerfile line, expansion
//! errors are about one word and get their line from the instruction.

/// A Dockerfile that Docker would refuse, with the line where the problem is
/// (for a multi-line instruction, its first line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

/// A word that Docker's variable substitution refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR?message}` or `${VAR:?message}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}
