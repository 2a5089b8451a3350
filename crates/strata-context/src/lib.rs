//! The build context of `strata build`: what a Dockerfile's COPY and ADD
//! take, the cache checksum of it, and copying it into a container root
//! filesystem without ever writing outside it.
//!
//! - [`Ignore`] parses `.dockerignore` and answers whether a path is in the
//!   context.
//! - [`Tree`] is where files come from: the build context (filtered by its
//!   `.dockerignore`, owners not kept) or another stage's or image's root
//!   filesystem (owners kept). [`Tree::resolve`] turns COPY sources
//!   (wildcards included) into [`Source`]s; [`Tree::checksum`] digests what
//!   they would copy, using a [`StatCache`] so unchanged files are not read
//!   again.
//! - [`copy`] and [`write_inline`] put files into a root filesystem with
//!   Docker's COPY/ADD rules. Every destination path is resolved inside the
//!   root with an fd-based walk that clamps symlinks and `..` to it.
//!
//! Behaviour follows Docker's wherever the module docs are silent.

mod archive;
mod checksum;
mod copy;
mod ignore;
mod inroot;
mod pattern;
mod statcache;
mod tree;
mod walk;

use std::io;

pub use copy::{CopyOptions, CopyStats, copy, write_inline};
pub use ignore::{Ignore, IgnoreError};
pub use pattern::PatternError;
pub use statcache::StatCache;
pub use tree::{Source, Tree};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("file not found in {place} or excluded by .dockerignore: {source_path}")]
    NotFound {
        place: &'static str,
        source_path: String,
    },
    #[error("no source files were specified: '{pattern}' matched no file in the {place}")]
    NoMatch {
        place: &'static str,
        pattern: String,
    },
    #[error("no source files were specified")]
    NoSources,
    #[error(
        "When using COPY with more than one source file, the destination must be a directory and end with a / (destination '{dest}')"
    )]
    MultipleSourcesNeedDir { dest: String },
    #[error("bad wildcard in source '{source_path}': {reason}")]
    BadWildcard {
        source_path: String,
        reason: PatternError,
    },
    #[error("cannot copy into '{path}': it exists and is not a directory")]
    NotADirectory { path: String },
    #[error("cannot replace directory '{path}' with a non-directory from '{from}'")]
    ReplaceDir { path: String, from: String },
    #[error("extracting archive '{archive}' into '{dest}': {source}")]
    Extract {
        archive: String,
        dest: String,
        source: strata_archive::ApplyError,
    },
    #[error("{op} '{path}': {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
}

/// Wraps an `io::Error` from operation `op` on `path` (built only on error).
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: impl AsRef<[u8]> + 'a,
) -> impl FnOnce(io::Error) -> ContextError + 'a {
    move |source| ContextError::Io {
        op,
        path: show(path.as_ref()),
        source,
    }
}

pub(crate) fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
