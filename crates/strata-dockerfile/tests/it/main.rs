//! Table-driven tests of the Dockerfile grammar: one `check` helper per
//! feature area, each row an input and the full expected result or the line
//! and a distinctive part of the error.

mod errors;
mod expand;
mod flags;
mod heredoc;
mod instructions;
mod lines;
mod onbuild;
mod props;
mod stages;
mod support;
