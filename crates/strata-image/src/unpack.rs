//! Unpacking one layer into the storage driver.
//!
//! Four threads, bounded memory: a blob hasher thread reads the blob,
//! handing each piece to a reader thread before hashing it (the blob
//! digest, when there is one to check); the reader thread decompresses the
//! pieces, passing 1 MiB buffers through a channel of four to the main
//! thread, which applies the tar straight into the new snapshot's
//! directory (large files around the page cache, see
//! `strata_archive::direct`), writing the layer index, and hands each
//! buffer on to a diff hasher thread (the diff ID). Inflating and creating
//! files are the two expensive steps, and inflating one gzip stream cannot
//! be split: hashing on threads of its own keeps it off both. Buffers are
//! reused once every thread is done with them. Nothing holds a whole layer
//! in memory.
//!
//! A layer whose blob digest or diff ID is checked skips gzip's CRC32: a
//! corrupt stream cannot pass the sha256, and the CRC costs a fifth of
//! inflating.
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

use std::io::{self, BufRead, Read};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use strata_archive::{Format, IndexWriter, Integrity, apply, decompress_buffered};
use strata_snapshot::{Mount, Options, SnapshotError};
use strata_store::content::Expected;
use strata_store::digest::Hasher;
use strata_store::meta::images::{self as meta, LayerRow};
use strata_store::{Digest, failpoint};

use crate::error::{ImageError, Result, io_at};
use crate::progress::Progress;
use crate::store::Store;

/// Decompressed bytes per buffer.
const CHUNK: usize = 1 << 20;
/// Blob bytes per read.
const PIECE: usize = 256 << 10;
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

        // Skipping the CRC is safe only if a digest is checked below.
        let integrity = if expected_blob.is_some() || expected_diff.is_some() {
            Integrity::Digest
        } else {
            Integrity::Crc
        };
        let read = Arc::new(AtomicU64::new(0));
        let (tx, rx) = sync_channel::<io::Result<Chunk>>(IN_FLIGHT);
        let (blob_tx, blob_rx) = sync_channel::<io::Result<Chunk>>(IN_FLIGHT);
        let (hash_tx, hash_rx) = sync_channel::<Chunk>(IN_FLIGHT);
        // The blob's digest is worth its CPU only when there is one to check
        // it against: a commit or a build step streams a fresh tar, whose
        // only name is its diff ID, hashed below either way.
        let hash_blob = expected_blob.is_some();
        let blob_hasher = {
            let read = read.clone();
            spawn("layer-blob-hasher", move || {
                fetch_blob(input.reader, hash_blob, &read, &blob_tx)
            })?
        };
        let hasher = spawn("layer-hasher", move || hash_all(hash_rx))?;
        let reader = spawn("layer-reader", move || {
            read_blob(BlobReader::new(blob_rx), integrity, &tx)
        })?;

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
            current: None,
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
        let read_result = reader.join().expect("layer reader thread panicked");
        let blob = blob_hasher
            .join()
            .expect("layer blob hasher thread panicked");
        let stats = match (applied, read_result) {
            (Ok(a), Ok(())) => a,
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
            (Err(e), Ok(())) => return Err(ImageError::Layer { what, source: e }),
        };
        failpoint::hit("unpack-after-apply");

        if let Some((expected, size)) = &expected_blob {
            let blob_size = blob.len();
            let blob_digest = blob.finish();
            if &blob_digest != expected {
                return Err(ImageError::Digest {
                    what: format!("{what}: blob"),
                    expected: expected.clone(),
                    actual: blob_digest,
                });
            }
            if blob_size != *size {
                return Err(crate::error::archive(
                    &what,
                    format!("blob is {blob_size} bytes, its descriptor says {size}"),
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

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(io_at(format!("{name} thread")))
}

/// A hasher thread: hashes every chunk it is sent, in order.
fn hash_all(rx: Receiver<Chunk>) -> Hasher {
    let mut hasher = Hasher::default();
    for chunk in rx {
        hasher.update(&chunk);
    }
    hasher
}

/// The reader thread: blob bytes in, decompressed buffers out.
fn read_blob(
    mut blob: BlobReader,
    integrity: Integrity,
    tx: &SyncSender<io::Result<Chunk>>,
) -> io::Result<()> {
    let pool = Pool::new(CHUNK);
    let result = (|| {
        let (kind, mut stream) =
            decompress_buffered(&mut blob, integrity).map_err(io::Error::other)?;
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
            let mut buf = pool.take();
            let mut filled = 0;
            while filled < CHUNK {
                match stream.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(corrupt(e)),
                }
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            if tx.send(Ok(pool.share(buf))).is_err() {
                // The applier stopped (it failed); its error is the one to report.
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the layer was not fully read",
                ));
            }
        }
        drop(stream);
        // Whatever follows the compressed stream is part of the blob too.
        loop {
            let n = blob.fill_buf()?.len();
            if n == 0 {
                break;
            }
            blob.consume(n);
        }
        Ok(())
    })();
    if let Err(e) = result {
        let shown = io::Error::new(e.kind(), e.to_string());
        let _ = tx.send(Err(e));
        return Err(shown);
    }
    Ok(())
}

/// The blob hasher thread: reads the blob in pieces, hands each to the
/// reader thread, then hashes it if `hash`. Reading here keeps the copy
/// out of the page cache off the inflating thread, which bounds a large
/// layer's load. A read error goes to the reader thread, which reports it.
fn fetch_blob(
    mut blob: Box<dyn Read + Send>,
    hash: bool,
    read: &AtomicU64,
    pieces: &SyncSender<io::Result<Chunk>>,
) -> Hasher {
    let pool = Pool::new(PIECE);
    let mut hasher = Hasher::default();
    loop {
        let mut buf = pool.take();
        let n = loop {
            match blob.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let n = match n {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = pieces.send(Err(e));
                break;
            }
        };
        buf.truncate(n);
        read.fetch_add(n as u64, Ordering::Relaxed);
        let piece = pool.share(buf);
        if pieces.send(Ok(piece.clone())).is_err() {
            break; // the reader stopped: its error is the one to report
        }
        if hash {
            hasher.update(&piece);
        }
    }
    hasher
}

/// The blob, as the reader thread sees it: pieces from the blob hasher
/// thread, served to the decompressor from their buffers.
struct BlobReader {
    pieces: Receiver<io::Result<Chunk>>,
    piece: Option<Chunk>,
    pos: usize,
}

impl BlobReader {
    fn new(pieces: Receiver<io::Result<Chunk>>) -> Self {
        BlobReader {
            pieces,
            piece: None,
            pos: 0,
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for BlobReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.piece.as_ref().is_none_or(|p| self.pos == p.len()) {
            match self.pieces.recv() {
                Ok(piece) => self.piece = Some(piece?),
                Err(_) => return Ok(&[]), // the whole blob is read
            }
            self.pos = 0;
        }
        let piece = self.piece.as_ref().expect("just filled");
        Ok(&piece[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        let len = self.piece.as_ref().map_or(0, |p| p.len());
        self.pos = (self.pos + amt).min(len);
    }
}

/// Bytes shared by the threads of an unpack (blob pieces, decompressed
/// chunks); the buffer goes back to its pool when the last holder drops it.
type Chunk = Arc<Pooled>;

struct Pooled {
    data: Vec<u8>,
    home: SyncSender<Vec<u8>>,
}

impl Deref for Pooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A full pool (or one whose owner is gone) just frees the buffer.
        let _ = self.home.try_send(std::mem::take(&mut self.data));
    }
}

/// Reused buffers of one size: a fresh one costs zeroing and page faults
/// on every chunk, on the thread that bounds the load.
struct Pool {
    home: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    size: usize,
}

impl Pool {
    fn new(size: usize) -> Pool {
        // As many as can be in flight: two channels, their ends, one filling.
        let (home, spare) = sync_channel(2 * IN_FLIGHT + 4);
        Pool { home, spare, size }
    }

    /// A buffer of `size` bytes (contents unspecified).
    fn take(&self) -> Vec<u8> {
        let mut buf = self.spare.try_recv().unwrap_or_default();
        buf.resize(self.size, 0);
        buf
    }

    fn share(&self, data: Vec<u8>) -> Chunk {
        Arc::new(Pooled {
            data,
            home: self.home.clone(),
        })
    }
}

/// The applier's side of the channel.
struct ChannelReader<'a> {
    rx: Receiver<io::Result<Chunk>>,
    current: Option<Chunk>,
    pos: usize,
    /// To the hasher thread (the diff ID): every chunk as it is handed over,
    /// so hashing runs beside extraction instead of on its thread.
    diff: SyncSender<Chunk>,
    read: &'a AtomicU64,
    progress: &'a dyn Progress,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.current.as_ref().is_none_or(|c| self.pos == c.len()) {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    self.diff
                        .send(next.clone())
                        .map_err(|_| io::Error::other("the layer hasher stopped"))?;
                    self.current = Some(next);
                    self.pos = 0;
                    self.progress.position(self.read.load(Ordering::Relaxed));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the reader finished
            }
        }
        let current = self.current.as_deref().expect("just received");
        let n = buf.len().min(current.len() - self.pos);
        buf[..n].copy_from_slice(&current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the blob thread's loop over `blob`: what the reader thread
    /// receives, and how many bytes were hashed.
    fn check(blob: &[u8], hash: bool, hashed: u64) {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let read = AtomicU64::new(0);
        let source = Box::new(io::Cursor::new(blob.to_vec()));
        let hasher = thread::scope(|s| {
            let read = &read;
            // The sender moves in: the reader sees the end once it returns.
            let fetch = s.spawn(move || fetch_blob(source, hash, read, &tx));
            let mut received = Vec::new();
            BlobReader::new(rx).read_to_end(&mut received).unwrap();
            assert_eq!(received, blob, "the reader gets the blob whole");
            fetch.join().unwrap()
        });
        assert_eq!(read.load(Ordering::Relaxed), blob.len() as u64);
        assert_eq!(hasher.len(), hashed);
        if hash {
            assert_eq!(hasher.finish(), Digest::of(blob));
        }
    }

    #[test]
    fn the_blob_is_hashed_only_when_asked() {
        let big: Vec<u8> = (0..3 * PIECE + 7).map(|i| (i % 251) as u8).collect();
        check(&big, true, big.len() as u64);
        check(&big, false, 0);
        check(b"", true, 0);
        check(b"small", false, 0);
    }
}
