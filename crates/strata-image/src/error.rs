//! The image layer's errors. Messages name the file or image and the
//! reason, lower-case, and say what to do where there is something to do.

use std::path::PathBuf;

use strata_archive::ApplyError;
use strata_store::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image reference '{0}' is ambiguous; give more of the ID")]
    Ambiguous(String),
    /// An archive that is not what it claims to be.
    #[error("{file}: {reason}")]
    Archive { file: String, reason: String },
    #[error("{what}: {source}")]
    Layer { what: String, source: ApplyError },
    #[error(
        "{what}: digest mismatch: expected {expected}, got {actual}; the archive is corrupt or was tampered with"
    )]
    Digest {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Content(#[from] strata_store::content::ContentError),
    #[error(transparent)]
    Meta(#[from] strata_store::meta::MetaError),
    #[error(transparent)]
    Snapshot(#[from] strata_snapshot::SnapshotError),
    #[error(transparent)]
    Mount(#[from] strata_snapshot::mount::MountError),
    #[error(transparent)]
    Index(#[from] strata_archive::index::IndexError),
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

pub fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { path, source }
}

pub fn archive(file: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Archive {
        file: file.to_owned(),
        reason: reason.into(),
    }
}
