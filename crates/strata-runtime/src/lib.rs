//! Running containers through an external OCI runtime (`runc` by default).
//!
//! The pieces, each usable alone:
//! - [`bundle`]: what a container is, as an OCI runtime spec (`config.json`)
//!   built with `oci-spec`;
//! - [`gate`]: a `config.json` the runtime may open before it is written,
//!   so its start-up overlaps the container's making;
//! - [`runtime`]: the [`Runtime`] seam over the runtime's command line
//!   (`run`, `kill`, `state`, `delete`, `exec`), implemented by [`Runc`];
//! - [`monitor`]: the process that stays with a running container, copies
//!   its output into the log and records its exit, so the `strata` that
//!   started it may leave (Strata has no daemon);
//! - [`logs`]: the log file format (Docker's json-file lines) and reading
//!   it back, following if asked;
//! - [`attach`]: the monitor serving a container's stdio on a socket, and
//!   the client `strata attach` uses.

pub mod attach;
pub mod bundle;
pub mod gate;
pub mod logs;
pub mod monitor;
pub mod netfiles;
pub mod runtime;
pub mod state;

pub use runtime::{Runc, Runtime};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("runtime {runtime}: {what}")]
    Runtime { runtime: String, what: String },
    #[error("building the container's OCI config: {0}")]
    Spec(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

pub fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.into();
    move |source| RuntimeError::Io { path, source }
}
