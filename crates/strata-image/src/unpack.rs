//! Unpacking one layer into the storage driver.
//!
//! Three threads, bounded memory: a reader thread reads the blob, hashes it
//! (the blob digest) and decompresses it, passing 1 MiB buffers through a
//! channel of four to the main thread, which applies the tar straight into
//! the new snapshot's directory, writing the layer index, and hands each
//! buffer on to a hasher thread (the diff ID). Inflating and creating files
//! are the two expensive steps; hashing on a third thread keeps it off both.
//! Nothing holds a whole layer in memory.
//!
//! Durability protocol for a layer:
//! 1. prepare a transient snapshot (`extract-…`), apply the tar into it;
//! 2. check both digests; any mismatch removes the snapshot;
//! 3. `syncfs`, so every file and the index are on disk;
//! 4. commit the snapshot under its chain ID, then record the layer row.
//!
//! A crash before 4 leaves a transient snapshot that the next run removes; a
//! crash between commit and row leaves a committed snapshot no layer owns,
//! which reconcile also removes.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use strata_archive::{Format, IndexWriter, apply, decompress};
use strata_snapshot::{Mount, Options, SnapshotError};
use strata_store::content::Expected;
use strata_store::digest::{Hasher, HashingReader};
use strata_store::meta::images::{self as meta, LayerRow};
use strata_store::{Digest, failpoint};

use crate::error::{ImageError, Result, io_at};
use crate::progress::Progress;
use crate::store::Store;

const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;
/// Label marking a snapshot as an image layer (reconcile looks for it).
pub const LAYER_LABEL: &str = "strata.owner";

/// A layer to unpack.
pub struct LayerInput {
    pub reader: Box<dyn Read + Send>,
    /// Size of the blob, for progress.
    pub size: Option<u64>,
    /// The blob digest (and size) the source names it by.
    pub blob: Option<(Digest, u64)>,
    /// The diff ID the config expects; None when importing a plain tar.
    pub diff_id: Option<Digest>,
    /// Names the layer in errors ("busybox.tar: layer 2 (sha256:…)").
    pub what: String,
}

/// What the reader thread learned about the blob.
struct BlobDigest {
    digest: Digest,
    size: u64,
}

/// Where to write a prepared snapshot's layer, from its mounts.
pub fn apply_target(mounts: &[Mount]) -> Result<(PathBuf, Vec<PathBuf>)> {
    match mounts {
        [
            Mount::Bind {
                source,
                readonly: false,
            },
        ] => Ok((source.clone(), Vec::new())),
        [
            Mount::Overlay {
                lowers,
                upper: Some(upper),
                ..
            },
        ] => Ok((upper.clone(), lowers.clone())),
        other => Err(ImageError::Snapshot(SnapshotError::InvalidState {
            key: format!("{other:?}"),
            reason: "is not a writable snapshot".into(),
        })),
    }
}

impl Store {
    /// Unpacks a layer on top of the layer `parent` (a chain ID) and records
    /// it. Returns the layer, reusing one already stored with that chain ID.
    pub fn unpack_layer(
        &self,
        input: LayerInput,
        parent: Option<&Digest>,
        progress: &dyn Progress,
    ) -> Result<LayerRow> {
        let snapshots = self.snapshots()?;
        let key = format!("extract-{}", strata_store::fsutil::random_hex(8));
        let opts = Options {
            labels: [(LAYER_LABEL.to_owned(), "layer".to_owned())].into(),
            transient: true,
        };
        let parent_key = parent.map(|p| p.to_string());
        let mounts = snapshots.prepare(&key, parent_key.as_deref(), &opts)?;
        match self.fill_layer(&key, &mounts, input, parent, progress) {
            Ok(row) => Ok(row),
            Err(e) => {
                if let Err(cleanup) = snapshots.remove(&key) {
                    tracing::warn!("removing half-made layer snapshot {key}: {cleanup}");
                }
                Err(e)
            }
        }
    }

    fn fill_layer(
        &self,
        key: &str,
        mounts: &[Mount],
        input: LayerInput,
        parent: Option<&Digest>,
        progress: &dyn Progress,
    ) -> Result<LayerRow> {
        let (target, lowers) = apply_target(mounts)?;
        let format = if lowers.is_empty() {
            Format::Plain
        } else {
            Format::Overlay { lowers: &lowers }
        };
        let what = input.what.clone();
        let expected_blob = input.blob.clone();
        let expected_diff = input.diff_id.clone();
        progress.start(&what, input.size);

        let read = Arc::new(AtomicU64::new(0));
        let (tx, rx) = sync_channel::<io::Result<Chunk>>(IN_FLIGHT);
        let reader = {
            let read = read.clone();
            thread::Builder::new()
                .name("layer-reader".into())
                .spawn(move || read_blob(input.reader, &read, &tx))
                .map_err(io_at("layer reader thread"))?
        };
        let (hash_tx, hash_rx) = sync_channel::<Chunk>(IN_FLIGHT);
        let hasher = thread::Builder::new()
            .name("layer-hasher".into())
            .spawn(move || {
                let mut diff = Hasher::default();
                for chunk in hash_rx {
                    diff.update(&chunk);
                }
                diff
            })
            .map_err(io_at("layer hasher thread"))?;

        let mut index = IndexWriter::new(
            self.content.writer(Expected {
                what: format!("{what}: layer index"),
                ..Expected::default()
            })?,
            &self.layout.tmp(),
        )
        .map_err(io_at(self.layout.tmp()))?;
        let mut stream = ChannelReader {
            rx,
            current: Chunk::default(),
            pos: 0,
            diff: hash_tx,
            read: &read,
            progress,
        };
        let applied = apply(&mut stream, &target, format, Some(&mut index)).and_then(|a| {
            // Whatever follows the tar's end marker is part of the diff too.
            io::copy(&mut stream, &mut io::sink()).map_err(|source| {
                strata_archive::ApplyError::Tar(strata_archive::tarstream::TarError::Io {
                    offset: a.tar_size,
                    source,
                })
            })?;
            Ok(a)
        });
        drop(stream);
        let diff = hasher.join().expect("layer hasher thread panicked");
        let diff_size = diff.len();
        let diff = diff.finish();
        // The reader's own error (a corrupt gzip) explains an apply failure best.
        let blob = reader.join().expect("layer reader thread panicked");
        let (stats, blob) = match (applied, blob) {
            (Ok(a), Ok(d)) => (a, d),
            // The reader stopped because the applier did: the applier's error.
            (Err(e), Err(r)) if r.kind() == io::ErrorKind::BrokenPipe => {
                return Err(ImageError::Layer { what, source: e });
            }
            (_, Err(e)) => {
                return Err(ImageError::Archive {
                    file: what,
                    reason: format!("reading the layer: {e}"),
                });
            }
            (Err(e), Ok(_)) => return Err(ImageError::Layer { what, source: e }),
        };
        failpoint::hit("unpack-after-apply");

        if let Some((expected, size)) = &expected_blob {
            if &blob.digest != expected {
                return Err(ImageError::Digest {
                    what: format!("{what}: blob"),
                    expected: expected.clone(),
                    actual: blob.digest,
                });
            }
            if blob.size != *size {
                return Err(crate::error::archive(
                    &what,
                    format!("blob is {} bytes, its descriptor says {size}", blob.size),
                ));
            }
        }
        if let Some(expected) = &expected_diff
            && &diff != expected
        {
            return Err(ImageError::Digest {
                what: format!("{what}: diff ID (uncompressed layer)"),
                expected: expected.clone(),
                actual: diff,
            });
        }
        debug_assert!(stats.tar_size <= diff_size);

        let chain_id = strata_store::digest::chain_id(parent, &diff);
        // Everything written so far reaches the disk before it is recorded.
        strata_archive::fsops::syncfs_of(&target).map_err(io_at(&target))?;
        let tar_index = index
            .finish()
            .map_err(io_at(self.layout.content()))?
            .commit()?;
        failpoint::hit("unpack-before-commit");

        let snapshots = self.snapshots()?;
        match snapshots.commit(&chain_id.to_string(), key) {
            Ok(()) => {}
            // Another process stored the same layer meanwhile: use theirs.
            Err(SnapshotError::AlreadyExists(_)) => snapshots.remove(key)?,
            Err(e) => return Err(e.into()),
        }
        failpoint::hit("unpack-after-commit");
        let row = LayerRow {
            chain_id: chain_id.clone(),
            diff_id: diff,
            parent: parent.cloned(),
            size: stats.size,
            tar_size: stats.tar_size,
            tar_index,
            created: strata_store::meta::now(),
        };
        self.db.write(|tx| meta::insert_layer(tx, &row))?;
        self.note_stored_layer(&chain_id);
        progress.finish(&format!("{what}: {}", short(&row.diff_id)));
        // The row that stands (ours, or one recorded first by another process).
        Ok(self
            .db
            .read(|tx| meta::layer(tx, &chain_id))?
            .unwrap_or(row))
    }
}

fn short(d: &Digest) -> String {
    format!("{}…", &d.to_string()[..19])
}

/// The reader thread: blob bytes in, hashed and decompressed buffers out.
fn read_blob(
    reader: Box<dyn Read + Send>,
    read: &AtomicU64,
    tx: &SyncSender<io::Result<Chunk>>,
) -> io::Result<BlobDigest> {
    struct Counting<'a, R> {
        inner: R,
        read: &'a AtomicU64,
    }
    impl<R: Read> Read for Counting<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }
    let mut blob = HashingReader::new(Counting {
        inner: reader,
        read,
    });
    let result = (|| {
        let (kind, mut stream) = decompress(&mut blob).map_err(io::Error::other)?;
        let corrupt = |e: io::Error| {
            let name = match kind {
                strata_archive::Compression::Gzip => "gzip",
                strata_archive::Compression::Zstd => "zstd",
                strata_archive::Compression::None => return e,
            };
            io::Error::new(
                e.kind(),
                format!("the {name} stream is corrupt or truncated ({e})"),
            )
        };
        loop {
            let mut buf = vec![0; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match stream.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(corrupt(e)),
                }
            }
            buf.truncate(filled);
            if filled == 0 {
                break;
            }
            if tx.send(Ok(Arc::new(buf))).is_err() {
                // The applier stopped (it failed); its error is the one to report.
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the layer was not fully read",
                ));
            }
        }
        drop(stream);
        // Whatever follows the compressed stream is part of the blob too.
        io::copy(&mut blob, &mut io::sink())?;
        Ok(())
    })();
    if let Err(e) = result {
        let shown = io::Error::new(e.kind(), e.to_string());
        let _ = tx.send(Err(e));
        return Err(shown);
    }
    let (_, digest, size) = blob.finish();
    Ok(BlobDigest { digest, size })
}

/// Decompressed bytes, shared by the applier and the diff hasher.
type Chunk = Arc<Vec<u8>>;

/// The applier's side of the channel.
struct ChannelReader<'a> {
    rx: Receiver<io::Result<Chunk>>,
    current: Chunk,
    pos: usize,
    /// To the hasher thread (the diff ID): every chunk as it is handed over,
    /// so hashing runs beside extraction instead of on its thread.
    diff: SyncSender<Chunk>,
    read: &'a AtomicU64,
    progress: &'a dyn Progress,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    self.diff
                        .send(next.clone())
                        .map_err(|_| io::Error::other("the layer hasher stopped"))?;
                    self.current = next;
                    self.pos = 0;
                    self.progress.position(self.read.load(Ordering::Relaxed));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the reader finished
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
