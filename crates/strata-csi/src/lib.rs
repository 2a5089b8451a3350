//! Strata as a CSI driver, and a CSI client.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod pb;
pub mod server;
pub mod storage;
