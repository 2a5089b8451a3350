//! A writable snapshot's changes, streamed as a layer tar: what `commit`
//! and `diff` of a container and every filesystem step of a build read.
//! With overlay the changes are the upper directory itself; with vfs they
//! are found by comparing the full copy with its parent's files.

use std::io::Read;
use std::path::PathBuf;

use strata_archive::diff::{DiffError, Source, write_diff_leaving_out};
use strata_snapshot::{Mount, SnapshotError};

use crate::error::{ImageError, Result, archive};
use crate::store::Store;

/// The writable layer of a snapshot, and the trees below it.
pub struct SnapshotChanges {
    pub upper: PathBuf,
    pub lowers: Vec<PathBuf>,
    overlay: bool,
    /// Mount points the runtime made, which are not changes.
    mount_points: &'static [&'static str],
}

impl SnapshotChanges {
    /// Leaves out the empty files a runtime made as mount points (see
    /// [`write_diff_leaving_out`]).
    pub fn leaving_out(mut self, mount_points: &'static [&'static str]) -> SnapshotChanges {
        self.mount_points = mount_points;
        self
    }

    pub fn source(&self) -> Source<'_> {
        if self.overlay {
            Source::OverlayUpper(&self.upper)
        } else {
            Source::Compare {
                lower: self.lowers.first().map(PathBuf::as_path),
                upper: &self.upper,
            }
        }
    }

    /// Runs `with` on a reader of the changes as a layer tar, written by a
    /// second thread so nothing holds the whole layer.
    pub fn stream<T, E: From<ImageError>>(
        &self,
        with: impl FnOnce(Box<dyn Read + Send>) -> Result<T, E>,
    ) -> Result<T, E> {
        let (reader, writer) = std::io::pipe().map_err(crate::error::io_at("pipe"))?;
        std::thread::scope(|s| {
            let producer = s.spawn(|| {
                write_diff_leaving_out(&self.source(), self.mount_points, writer).map(drop)
            });
            let result = with(Box::new(reader));
            let produced = producer.join().expect("the diff writer does not panic");
            let writer_err = |e: DiffError| archive(&self.upper.to_string_lossy(), e.to_string());
            match (result, produced) {
                // The writer failed first (a file changed while it was read):
                // the reader only saw the tar end early.
                (Err(_), Err(e)) if !e.reader_gone() => Err(writer_err(e).into()),
                (result, produced) => {
                    let value = result?;
                    produced.map_err(writer_err)?;
                    Ok(value)
                }
            }
        })
    }
}

impl Store {
    /// The changes of the active snapshot `key`.
    pub fn snapshot_changes(&self, key: &str) -> Result<SnapshotChanges> {
        let snapshots = self.snapshots()?;
        match snapshots.mounts(key)?.as_slice() {
            [
                Mount::Overlay {
                    upper: Some(upper),
                    lowers,
                    ..
                },
            ] => Ok(SnapshotChanges {
                upper: upper.clone(),
                lowers: lowers.clone(),
                overlay: true,
                mount_points: &[],
            }),
            [Mount::Bind { source, .. }] => {
                let lowers = match snapshots.stat(key)?.parent {
                    Some(p) => vec![snapshots.files(&p)?],
                    None => Vec::new(),
                };
                Ok(SnapshotChanges {
                    upper: source.clone(),
                    lowers,
                    overlay: false,
                    mount_points: &[],
                })
            }
            other => Err(ImageError::Snapshot(SnapshotError::InvalidState {
                key: key.to_owned(),
                reason: format!("is not a writable snapshot ({other:?})"),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_changes_while_streamed_is_the_error_not_the_short_tar() {
        let t = tempfile::tempdir().unwrap();
        let big = t.path().join("big");
        // Larger than a pipe's buffer, so the writer is mid-file when the
        // reader starts.
        std::fs::write(&big, vec![7u8; 1 << 20]).unwrap();
        let changes = SnapshotChanges {
            upper: t.path().to_owned(),
            lowers: Vec::new(),
            overlay: true,
            mount_points: &[],
        };
        let err = changes
            .stream(|mut reader| -> Result<()> {
                // Into the file's content, then the file shrinks.
                let mut start = [0u8; 8192];
                reader.read_exact(&mut start).unwrap();
                std::fs::File::create(&big).unwrap();
                let mut tar = Vec::new();
                reader.read_to_end(&mut tar).unwrap();
                Err(archive(
                    "the layer",
                    "the tar stream ends in the middle of an entry",
                ))
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("'big' changed while being archived"),
            "{err}"
        );
    }
}
