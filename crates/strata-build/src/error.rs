//! The build's errors: what went wrong, at which step, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("dockerfile {0}")]
    Parse(#[from] strata_dockerfile::ParseError),
    /// Bad options or a Dockerfile the builder cannot carry out.
    #[error("{0}")]
    Invalid(String),
    /// An instruction failed; `step` is its text.
    #[error("step '{step}': {source}")]
    Step {
        step: String,
        source: Box<BuildError>,
    },
    #[error(
        "the command '{command}' returned a non-zero code: {code}; nothing was tagged, and the steps before it stay cached"
    )]
    RunFailed { command: String, code: i32 },
    #[error(transparent)]
    Image(#[from] strata_image::ImageError),
    #[error(transparent)]
    Context(#[from] strata_context::ContextError),
    #[error(transparent)]
    Runtime(#[from] strata_runtime::RuntimeError),
    #[error(transparent)]
    Container(#[from] strata_container::ContainerError),
    #[error(transparent)]
    Snapshot(#[from] strata_snapshot::SnapshotError),
    #[error(transparent)]
    Mount(#[from] strata_snapshot::mount::MountError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { path, source }
}

pub(crate) fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::Invalid(message.into())
}
