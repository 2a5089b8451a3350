//! The `VolumeDriver` seam: what a volume driver does, in the terms of
//! Docker's volume plugin protocol, so the built-in local driver and a
//! third-party plugin behind a socket look the same to the volume service.
//!
//! A driver owns where a volume's data is and how it gets there; the
//! service owns the record of which volumes exist, which driver each has,
//! and who holds a mount of it (see `volume_mounts`). A driver never
//! touches those records.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Whether a driver's volumes exist once per host or once per cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

/// A volume as a driver describes it (`VolumeDriver.Get` and `.List`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriverVolume {
    pub name: String,
    /// Empty when the driver only knows it once mounted.
    pub mountpoint: Option<PathBuf>,
    /// RFC 3339, when the driver says.
    pub created_at: Option<String>,
    /// Free-form details shown by `volume inspect` (`Status`).
    pub status: BTreeMap<String, serde_json::Value>,
}

/// Why a driver call failed. `call` is the protocol's name for it
/// (`VolumeDriver.Create`), so a message names the driver and the call.
#[derive(Debug, thiserror::Error)]
#[error("volume driver {driver}: {call}: {message}")]
pub struct DriverError {
    pub driver: String,
    pub call: &'static str,
    pub message: String,
}

pub type DriverResult<T> = std::result::Result<T, DriverError>;

/// One volume driver. `id` in `mount`/`unmount` names the caller (a
/// container); a driver gets one `mount` per caller and must keep the
/// volume mounted until the last of them unmounts.
pub trait VolumeDriver {
    /// The name users select it by (`-d NAME`, `--volume-driver NAME`).
    fn name(&self) -> &str;
    /// Makes a volume (a no-op for one that exists).
    fn create(&self, name: &str, opts: &BTreeMap<String, String>) -> DriverResult<()>;
    fn remove(&self, name: &str) -> DriverResult<()>;
    /// Makes the volume's data available on the host; returns where.
    fn mount(&self, name: &str, id: &str) -> DriverResult<PathBuf>;
    fn unmount(&self, name: &str, id: &str) -> DriverResult<()>;
    /// Where the data is, without mounting (None: not known yet).
    fn path(&self, name: &str) -> DriverResult<Option<PathBuf>>;
    /// The volume, or None if this driver does not have it.
    fn get(&self, name: &str) -> DriverResult<Option<DriverVolume>>;
    fn list(&self) -> DriverResult<Vec<DriverVolume>>;
    fn capabilities(&self) -> DriverResult<Scope>;
}
