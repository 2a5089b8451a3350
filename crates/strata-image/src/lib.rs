//! Images: references, archives in and out (docker-archive, OCI layout),
//! unpacking layers into the storage driver, and the store operations the
//! `strata` commands are made of.
//!
//! This is the top of the library: it knows the content store, the
//! metadata, the layer archive code and the snapshotter, and ties them
//! together under the store's locking and durability rules.

pub mod build_cache;
pub mod changes;
pub mod check;
pub mod commit;
pub mod config;
pub mod df;
pub mod error;
pub mod image_mount;
pub mod init_layer;
pub mod layer_diff;
pub mod load;
pub mod manifest;
pub mod progress;
pub mod query;
pub mod reference;
pub mod remove;
pub mod save;
pub mod source;
pub mod store;
pub mod unpack;

pub use error::{ImageError, Result};
pub use reference::Reference;
pub use store::{OpenOptions, Store};

/// JSON with sorted keys: the same value is always the same bytes.
pub(crate) fn json_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let v = serde_json::to_value(value).expect("serializable");
    serde_json::to_vec(&v).expect("json values serialize")
}
