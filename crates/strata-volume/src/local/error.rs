//! What can go wrong in the local driver, worded to say what to do.

use std::io;
use std::path::PathBuf;

use strata_store::meta::MetaError;

use crate::driver::DriverError;

use super::options::VALID;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("unknown option '{0}'; the local driver takes {VALID}")]
    UnknownOption(String),
    #[error(
        "invalid size '{value}': {why}; give a positive number of bytes with an optional unit (512M, 1.5G, 20GiB)"
    )]
    Size { value: String, why: &'static str },
    /// Options that do not go together, or a value that is not allowed.
    #[error("{0}")]
    Options(String),
    #[error("device {0} does not exist; give an existing path as device=")]
    NoDevice(PathBuf),
    #[error("volume {0} was not completely created (interrupted); remove it and create it again")]
    Incomplete(String),
    #[error("the volume has no size to change; only sized volumes (size=) can grow")]
    NotSized,
    #[error("volume {name} is still mounted for {callers}; unmount it (stop the containers) first")]
    InUse { name: String, callers: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("mounting {device} ({fstype}) at {target}: {source}{hint}")]
    Mount {
        device: String,
        fstype: String,
        target: PathBuf,
        source: io::Error,
        hint: &'static str,
    },
    #[error("volume record {path} is unreadable: {source}; remove the volume and create it again")]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Name(#[from] strata_mountspec::SpecError),
    #[error(transparent)]
    Meta(#[from] MetaError),
}

pub type Result<T, E = LocalError> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done and to which path.
pub fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> LocalError {
    let path = path.into();
    move |source| LocalError::Io { what, path, source }
}

impl LocalError {
    /// The error as the `VolumeDriver` seam reports it, for protocol call `call`.
    pub fn at(self, call: &'static str) -> DriverError {
        DriverError {
            driver: super::NAME.to_owned(),
            call,
            message: self.to_string(),
        }
    }
}
