//! CSI conformance: the rules of the CSI spec (v1.12, spec.md of
//! github.com/container-storage-interface/spec), checked against a real
//! plugin over its socket, the way an orchestrator calls it.
//!
//! By default each test starts its own `strata csi serve` on a private
//! store (as root: volumes are really mounted). To check another driver:
//!
//! ```text
//! STRATA_CSI_TEST_ENDPOINT=unix:///run/csi/csi.sock \
//! STRATA_CSI_TEST_PARAMS=k=v,k=v \
//! STRATA_CSI_TEST_DIR=/var/lib/csi-conformance \
//!     cargo test -p strata --test csi_conformance
//! ```
//!
//! Tests adapt to what the plugin advertises: what it does not offer is
//! skipped with a printed `SKIPPED` note (run with `--nocapture` to see
//! them). Against Strata nothing is skipped.

mod common;

#[path = "csi_conformance/harness.rs"]
mod harness;

#[path = "csi_conformance/identity.rs"]
mod identity;

#[path = "csi_conformance/controller.rs"]
mod controller;

#[path = "csi_conformance/publish.rs"]
mod publish;

#[path = "csi_conformance/node.rs"]
mod node;

#[path = "csi_conformance/snapshots.rs"]
mod snapshots;

#[path = "csi_conformance/expansion.rs"]
mod expansion;

#[path = "csi_conformance/concurrency.rs"]
mod concurrency;
