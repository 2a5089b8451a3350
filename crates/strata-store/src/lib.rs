//! The bottom of Strata: blobs by digest ([`content`]), metadata in SQLite
//! ([`meta`]), the store lock ([`lock`]), the marks of who is writing
//! ([`writers`]), the [`trash`], and where things live under the store root
//! ([`Layout`]).
//!
//! Nothing here knows about layers' contents, storage drivers or images.

pub mod content;
pub mod digest;
pub mod failpoint;
pub mod fsutil;
pub mod lock;
pub mod meta;
pub mod trash;
pub mod writers;

pub use digest::Digest;

use std::path::{Path, PathBuf};

/// Where things live under a store root. The one place paths are spelled.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("strata.db")
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    pub fn content(&self) -> PathBuf {
        self.root.join("content")
    }

    /// The marks of commands writing to the store ([`writers`]).
    pub fn writers(&self) -> PathBuf {
        self.root.join("writers")
    }

    /// Folders removed from the records, waiting to be deleted ([`trash`]).
    pub fn trash(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Scratch space on the store's filesystem (spooled input, staging).
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The storage driver's own folder.
    pub fn driver(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}
