//! A long-running `strata` server process for tests (`csi serve`,
//! `serve`): started with its output in a log in the store's scratch
//! folder, waited for until it is ready, stopped with SIGTERM (as a
//! deployment stops it) when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::Strata;

pub struct ServerProcess {
    child: Child,
    what: String,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Runs `strata <args>`, logging to `<name>.log`, and returns once
    /// `ready()` says so (panicking with the log if it exits or takes
    /// over 20 s).
    pub fn start(
        store: &Strata,
        name: &str,
        args: &[&str],
        ready: impl Fn() -> bool,
    ) -> ServerProcess {
        let log = store.path(&format!("{name}.log"));
        let out = File::create(&log).expect("server log");
        let child = store
            .command(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("server log"))
            .stderr(out)
            .spawn()
            .expect("start the strata server");
        // Made before the wait, so a server that never gets ready is stopped.
        let mut server = ServerProcess {
            child,
            what: format!("strata {}", args[..2.min(args.len())].join(" ")),
            log,
        };
        let started = Instant::now();
        while !ready() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    server.what,
                    server.log_text()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} was not ready within 20 s:\n{}",
                server.what,
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it with SIGTERM and waits; one that is still running after
    /// 10 s is killed and its log printed. Stopping it again does nothing.
    pub fn stop(&mut self) {
        if !self.running() {
            return;
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if super::wait_until(Duration::from_secs(10), || !self.running()) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!(
            "{} did not stop on SIGTERM; its log:\n{}",
            self.what,
            self.log_text()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
