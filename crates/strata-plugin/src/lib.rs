//! Docker's volume plugin protocol: the client Strata uses to drive
//! third-party volume plugins, and the server that offers Strata's own
//! volumes to Docker.
//!
//! - [`discovery`] finds a plugin by name, as Docker does;
//! - [`client`] makes a found plugin a [`VolumeDriver`](strata_volume::driver::VolumeDriver);
//! - [`server`] serves a `VolumeDriver` on a unix socket;
//! - [`protocol`] has the JSON bodies both sides share.

pub mod client;
pub mod discovery;
pub mod protocol;
pub mod server;
mod tls;
mod transport;

pub use client::{PluginDriver, Registry, RegistryError, Timeouts};
pub use discovery::{Address, DiscoveryError, Endpoint, PluginDirs, TlsFiles};
pub use server::{RunningServer, ServeError, Server, serve_blocking};
pub use tls::TlsError;
