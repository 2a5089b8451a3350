//! Strata's Kubernetes-style storage control plane: Pods, PersistentVolumes,
//! PersistentVolumeClaims and StorageClasses with upstream semantics, kept in
//! an `ObjectStore`, served over Kubernetes' REST conventions so stock
//! `kubectl` works, and acted on by controllers (binder, provisioner,
//! reclaimer, expander, protection, scheduler, node agent).

pub mod admission;
pub mod controllers;
pub mod error;
pub mod kinds;
pub mod patch;
pub mod quantity;
pub mod registry;
pub mod selector;
pub mod server;
pub mod store;
pub mod table;

pub use error::{ApiError, Cause};
pub use kinds::Kind;
pub use store::{Object, ObjectKey, ObjectStore, SqliteStore};
