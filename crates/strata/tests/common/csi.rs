//! `strata csi serve` for the CSI test binaries (csi_cli, csi_conformance):
//! a real process on a real socket in a store's scratch folder.

use std::path::PathBuf;

use super::Strata;
use super::server::ServerProcess;

/// A running `strata csi serve`; its stdout and stderr go to its log.
pub struct CsiServer {
    process: ServerProcess,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl CsiServer {
    /// Serves `store`'s volumes as node `node_id` on `NAME.sock` in its
    /// scratch folder, logging to `NAME.log` there, with `extra` arguments
    /// (`--controller`, `--attach-required`); returns once it listens.
    pub fn start(store: &Strata, name: &str, node_id: &str, extra: &[&str]) -> CsiServer {
        let socket = store.path(&format!("{name}.sock"));
        let endpoint = format!("unix://{}", socket.display());
        let mut args = vec![
            "csi",
            "serve",
            "--endpoint",
            &endpoint,
            "--node-id",
            node_id,
        ];
        args.extend(extra);
        let process = ServerProcess::start(store, name, &args, || socket.exists());
        let log = process.log.clone();
        CsiServer {
            process,
            socket,
            log,
        }
    }

    /// Its socket as a CSI endpoint (`unix:///…`).
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Stops it with SIGTERM and waits (see `ServerProcess::stop`).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}
