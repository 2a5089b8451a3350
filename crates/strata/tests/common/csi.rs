//! `strata csi serve` for the CSI test binaries (csi_cli, csi_conformance):
//! a real process on a real socket in a store's scratch folder, stopped
//! with SIGTERM (as a deployment stops it) when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::Strata;

/// A running `strata csi serve`; its stdout and stderr go to its log.
pub struct CsiServer {
    child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl CsiServer {
    /// Serves `store`'s volumes as node `node_id` on `NAME.sock` in its
    /// scratch folder, logging to `NAME.log` there, with `extra` arguments
    /// (`--controller`, `--attach-required`); returns once it listens.
    pub fn start(store: &Strata, name: &str, node_id: &str, extra: &[&str]) -> CsiServer {
        let socket = store.path(&format!("{name}.sock"));
        let log = store.path(&format!("{name}.log"));
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
        let out = File::create(&log).expect("server log");
        let child = store
            .command(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("server log"))
            .stderr(out)
            .spawn()
            .expect("start strata csi serve");
        // Made before the wait, so a server that never listens is stopped.
        let mut server = CsiServer { child, socket, log };
        let started = Instant::now();
        while !server.socket.exists() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "strata csi serve exited ({status}) before listening:\n{}",
                    server.log_text()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "strata csi serve did not listen on {} within 20 s:\n{}",
                server.socket.display(),
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Its socket as a CSI endpoint (`unix:///…`).
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with SIGTERM and waits; one that is still running after
    /// 10 s is killed and its log printed. Stopping it again does nothing.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!(
            "strata csi serve did not stop on SIGTERM; its log:\n{}",
            self.log_text()
        );
    }
}

impl Drop for CsiServer {
    fn drop(&mut self) {
        self.stop();
    }
}
