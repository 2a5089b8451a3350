//! The Dockerfile grammar: text in, build stages of instructions out.
//!
//! [`parse`] reads a whole Dockerfile the way BuildKit's dockerfile frontend
//! does: parser directives (`# escape=`), comments, line continuations,
//! heredocs, exec (JSON) and shell forms, flags, and the stage structure that
//! `FROM` lines and the `ARG`s before them make. Everything that can be checked
//! without knowing variable values is checked here, so a bad Dockerfile fails
//! before the build starts, with the line to fix.
//!
//! Instructions stay raw until the builder knows the variables of the moment:
//! [`Instruction::expand`] then substitutes them exactly where Docker does (see
//! [`expand_word`]) and returns a typed [`Step`].
//!
//! ```
//! use strata_dockerfile::{Command, Step, parse};
//!
//! let file = parse("ARG TAG=3\nFROM alpine:$TAG AS base\nWORKDIR /src/$NAME\nRUN make\n")?;
//! assert_eq!(file.meta_args[0].default.as_deref(), Some("3"));
//! let stage = &file.stages[file.stage_index("base").unwrap()];
//! assert_eq!(stage.from.image, "alpine:$TAG");
//!
//! let lookup = |name: &str| (name == "NAME").then(|| "app".to_string());
//! assert_eq!(stage.instructions[0].expand(&lookup)?, Step::Workdir("/src/app".into()));
//! assert_eq!(stage.instructions[1].text(), "RUN make");
//! # Ok::<(), strata_dockerfile::ParseError>(())
//! ```
//!
//! Errors keep Docker's wording where users know it; where that wording starts
//! with an instruction name, the name stays upper-case as it is written in
//! Dockerfiles.
//!
//! Deliberate differences from BuildKit, each one refusing or normalising
//! something odd rather than giving valid input another meaning:
//! - Heredoc bodies read from a CRLF file have their `\r` removed.
//! - A JSON-form `COPY`/`ADD` never treats an argument as a heredoc.
//! - A bare `CMD` or `ENTRYPOINT` gives an empty exec form, not a shell form
//!   with an empty command.
//! - `RUN` with no command is refused.
//!
//! Left to the builder: `EXPOSE` port syntax, `--chmod`/`--chown` syntax,
//! running a `#!` heredoc as a file, and cache mount ids (Docker defaults
//! them to the target). Not supported: `ADD --unpack` and the labs-only
//! `RUN --device`.

mod body;
mod directives;
mod dockerfile;
mod duration;
mod error;
mod expand;
mod flags;
mod heredoc;
mod instruction;
mod keyword;
mod mount;
mod pattern;
mod reader;
mod step;
mod words;

pub use dockerfile::{ArgDecl, Dockerfile, From, Stage, parse, parse_instruction};
pub use error::{ExpandError, ParseError};
pub use expand::{expand_word, expand_words};
pub use instruction::Instruction;
pub use step::{Command, CopySpec, Healthcheck, InlineFile, MountKind, RunMount, Step};
