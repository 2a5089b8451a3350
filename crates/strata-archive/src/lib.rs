//! Layers as tar streams and as directories: applying an OCI layer tar to a
//! directory ([`apply`]), producing a layer tar from a directory's changes
//! ([`diff`]), the index that rebuilds a stored layer's exact tar
//! ([`index`]), and faithful tree copies ([`copy`]).
//!
//! Everything here works on directories it is handed; it knows nothing of
//! snapshots, mounts, images or the store.

pub mod apply;
pub mod compression;
pub mod copy;
pub mod diff;
pub mod direct;
pub mod fsops;
pub mod index;
pub mod tarstream;
pub mod tartree;
pub mod tarwrite;
pub mod union;
pub mod writeback;

pub use apply::{Applied, ApplyError, Format, apply};
pub use compression::{Compression, Integrity, decompress, decompress_buffered};
pub use index::{IndexWriter, rebuild};
