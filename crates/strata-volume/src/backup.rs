//! Export, import and clone of a volume's data.
//!
//! A volume travels as a plain POSIX tar of its data folder (the folder
//! itself as `./`, then everything below): modes, owners, whole-second
//! mtimes, symlinks as links, hardlinks, device nodes, fifos and xattrs
//! (`SCHILY.xattr.*`), so `tar -xf` restores it as well. The tar walk and
//! the extraction are [`strata_archive::tartree`]'s; this module adds what
//! is about volumes: refusing to overwrite data, recognising compressed
//! archives, and errors that name the volume folder.
//!
//! Both directions work on file descriptors and follow no symlink inside
//! the volume, whatever it points at. The caller mounts the volume, hands
//! over its data folder and, if an import or clone fails, removes the new
//! volume: nothing is ever written outside the folder handed over.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use strata_archive::compression::{self, CompressionError};
use strata_archive::tarstream::TarError;
use strata_archive::tartree::{self, TreeError};
use strata_archive::{copy, fsops};

pub use strata_archive::copy::CopyStats;
pub use strata_archive::tartree::Totals;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot open volume data at {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot {op} into volume data at {path}: it is not empty; {op} into a new volume")]
    NotEmpty { op: &'static str, path: PathBuf },
    #[error("cannot export volume data at {path}: {source}")]
    Export { path: PathBuf, source: TreeError },
    #[error("cannot import into volume data at {path}: {source}")]
    Import { path: PathBuf, source: TreeError },
    #[error("cannot import: the archive is empty (a volume export holds at least its top folder)")]
    Empty,
    #[error(
        "cannot import: the input is not a tar archive (only {0} bytes, less than one tar header)"
    )]
    NotATar(u64),
    #[error(
        "cannot import: the archive is {0}-compressed; decompress it first (import reads tar, tar.gz and tar.zst)"
    )]
    Compression(&'static str),
    #[error("cannot import: reading the archive: {0}")]
    Read(io::Error),
    #[error("cannot clone volume data at {src} into {dst}: {source}")]
    Clone {
        src: PathBuf,
        dst: PathBuf,
        source: io::Error,
    },
}

/// Writes the tree under `data` to `out` as a tar; returns the tar's size
/// in bytes. Sockets are skipped (a tar cannot hold them).
pub fn export(data: &Path, out: &mut dyn Write) -> Result<u64, BackupError> {
    let dir = open(data)?;
    let totals = tartree::write(dir.as_fd(), out).map_err(|source| BackupError::Export {
        path: data.to_owned(),
        source,
    })?;
    Ok(totals.tar_size)
}

/// Extracts a tar (plain, gzip or zstd, told apart by their first bytes)
/// into the empty folder `data`. The folder's own owner, mode and times
/// come from the archive's `./` entry when it has one.
pub fn import(input: &mut dyn Read, data: &Path) -> Result<Totals, BackupError> {
    let dir = open_empty(data, "import")?;
    let (_, tar) = compression::decompress(input).map_err(|e| match e {
        CompressionError::Unsupported(kind) => BackupError::Compression(kind),
        CompressionError::Io(e) => BackupError::Read(e),
    })?;
    let totals = tartree::extract(tar, dir.as_fd()).map_err(|source| match source {
        // Shorter than one header: not a tar that lost its end.
        TreeError::Tar(TarError::Truncated { offset }) if offset < 512 => {
            BackupError::NotATar(offset)
        }
        source => BackupError::Import {
            path: data.to_owned(),
            source,
        },
    })?;
    if totals.tar_size == 0 {
        return Err(BackupError::Empty);
    }
    Ok(totals)
}

/// Copies the tree under `src` into the empty folder `dst` with its
/// metadata, sharing file content by reflink where the filesystem can
/// (else copying it in the kernel). The copy is independent of `src`.
pub fn clone_tree(src: &Path, dst: &Path) -> Result<CopyStats, BackupError> {
    let from = open(src)?;
    let to = open_empty(dst, "clone")?;
    copy::copy_tree_between(from.as_fd(), to.as_fd()).map_err(|source| BackupError::Clone {
        src: src.to_owned(),
        dst: dst.to_owned(),
        source,
    })
}

fn open(path: &Path) -> Result<OwnedFd, BackupError> {
    fsops::open_dir(path).map_err(|source| BackupError::Open {
        path: path.to_owned(),
        source,
    })
}

/// Opens a folder that is to receive data; refuses one that has any, so
/// nothing a volume holds is ever overwritten or mixed in.
fn open_empty(path: &Path, op: &'static str) -> Result<OwnedFd, BackupError> {
    let dir = open(path)?;
    let names = fsops::read_dir_names(dir.as_fd()).map_err(|source| BackupError::Open {
        path: path.to_owned(),
        source,
    })?;
    if !names.is_empty() {
        return Err(BackupError::NotEmpty {
            op,
            path: path.to_owned(),
        });
    }
    Ok(dir)
}
