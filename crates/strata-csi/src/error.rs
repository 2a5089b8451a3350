//! What goes wrong, in the CSI spec's terms, and the one place where it
//! becomes a gRPC status.
//!
//! Each variant is one of the spec's error codes; the message says what
//! was wrong and what to do. Errors from the layers below are classified
//! here too, so no handler picks a code on its own.

use std::path::PathBuf;

use strata_store::meta::MetaError;
use strata_volume::VolumeError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum CsiError {
    /// A required field is missing or a value is malformed or unsupported.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// The name is taken by something made with other parameters.
    #[error("{0}")]
    AlreadyExists(String),
    /// A capacity the plugin cannot give.
    #[error("{0}")]
    OutOfRange(String),
    /// Not enough space, or no topology that can hold the volume.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The call is valid but the volume or snapshot is not in a state for
    /// it (still published, not staged, snapshot not ready).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Another call for the same volume or snapshot is in progress.
    #[error("{0}")]
    Aborted(String),
    /// A service this process does not serve (controller-only or node-only).
    #[error("{0}")]
    Unimplemented(String),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = CsiError> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done and to which path.
pub fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> CsiError {
    let path = path.into();
    move |source| CsiError::Io { what, path, source }
}

impl From<strata_volume::DriverError> for CsiError {
    fn from(e: strata_volume::DriverError) -> CsiError {
        CsiError::Volume(e.into())
    }
}

impl CsiError {
    pub fn code(&self) -> Code {
        match self {
            CsiError::InvalidArgument(_) => Code::InvalidArgument,
            CsiError::NotFound(_) => Code::NotFound,
            CsiError::AlreadyExists(_) => Code::AlreadyExists,
            CsiError::OutOfRange(_) => Code::OutOfRange,
            CsiError::ResourceExhausted(_) => Code::ResourceExhausted,
            CsiError::FailedPrecondition(_) => Code::FailedPrecondition,
            CsiError::Aborted(_) => Code::Aborted,
            CsiError::Unimplemented(_) => Code::Unimplemented,
            CsiError::Volume(e) => volume_code(e),
            CsiError::Meta(_) | CsiError::Io { .. } => Code::Internal,
        }
    }
}

fn volume_code(e: &VolumeError) -> Code {
    match e {
        VolumeError::NotFound(_) => Code::NotFound,
        VolumeError::InUse { .. } => Code::FailedPrecondition,
        VolumeError::Name(_) => Code::InvalidArgument,
        _ => Code::Internal,
    }
}

impl From<CsiError> for Status {
    fn from(e: CsiError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

/// A required field that is missing.
pub fn missing(field: &str) -> CsiError {
    CsiError::InvalidArgument(format!("{field} is required"))
}
