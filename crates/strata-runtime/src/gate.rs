//! A bundle whose `config.json` the runtime may open before it is written,
//! so the runtime's own start-up (2 ms for runc, most of it Go's) runs
//! while the container is still being made.
//!
//! The gate is a FIFO at `config.json` that its maker holds open for
//! reading and writing. The runtime's open returns at once (there is a
//! writer) and its read waits. [`Gate::open`] writes the config into the
//! FIFO, renames a plain `config.json` over it, and only then lets go of
//! its end. So a runtime that opened the FIFO reads the config and then
//! its end, and one that comes later opens the plain file; none can open
//! a FIFO that nobody will write. Should the maker die first, its end
//! closes with it and the runtime reads an empty config and fails:
//! nothing waits forever.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name the OCI runtime spec gives the bundle's config.
pub const CONFIG: &str = "config.json";

/// A gated `config.json`, held open by this process.
pub struct Gate {
    fifo: File,
    path: PathBuf,
}

impl Gate {
    /// Makes `dir`'s `config.json` a gate (`dir` exists, without one).
    pub fn new(dir: &Path) -> std::io::Result<Gate> {
        use rustix::fs::{CWD, FileType, Mode, mknodat};
        let path = dir.join(CONFIG);
        mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)?;
        // Read and write: opening never waits for a partner, and the
        // pipe lives (with what we write) as long as we hold it.
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)?;
        Ok(Gate { fifo, path })
    }

    /// Lets the runtime in with `config`: written into the FIFO for a
    /// runtime that opened it, then as the plain file in its place.
    /// `alive` says whether the runtime still runs: what does not fit the
    /// pipe waits for its reads, unless it has ended.
    pub fn open(self, config: &[u8], alive: &mut dyn FnMut() -> bool) -> std::io::Result<()> {
        let mut rest = config;
        while !rest.is_empty() {
            match (&self.fifo).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if !alive() {
                        break;
                    }
                    wait_writable(&self.fifo, Duration::from_millis(10));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Before our end closes (dropping self): a runtime that has not
        // opened the FIFO yet must find the file instead.
        strata_store::fsutil::write_replace(&self.path, config)
    }

    /// Removes an unopened gate, once its runtime is stopped.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Whether `dir`'s `config.json` is a gate its maker still holds: a
    /// start in progress, which tidying up must leave alone.
    pub fn held(dir: &Path) -> bool {
        let path = dir.join(CONFIG);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_fifo() => {}
            _ => return false,
        }
        // A non-blocking open for writing fails (ENXIO) unless a reader
        // holds it; ours adds nothing and closes at once.
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .is_ok()
    }
}

/// Waits up to `timeout` for room in the pipe.
fn wait_writable(fifo: &File, timeout: Duration) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = Timespec::try_from(timeout).expect("a short pause fits");
    let mut fds = [PollFd::new(fifo, PollFlags::OUT)];
    let _ = poll(&mut fds, Some(&timeout));
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::mpsc;

    use super::*;

    /// Reads `dir`'s config.json in a thread, as a runtime does: open,
    /// then read to the end.
    fn reader(dir: &Path) -> std::thread::JoinHandle<std::io::Result<Vec<u8>>> {
        let path = dir.join(CONFIG);
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            File::open(path)?.read_to_end(&mut bytes)?;
            Ok(bytes)
        })
    }

    /// How many of this process's descriptors are open on `path`.
    fn open_fds(path: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == path))
            .count()
    }

    /// When the runtime opens config.json, against the gate's opening.
    #[derive(Clone, Copy, Debug)]
    enum Opens {
        Before,
        While,
        After,
    }

    fn check(size: usize, opens: Opens) {
        let dir = tempfile::tempdir().unwrap();
        let config: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let gate = Gate::new(dir.path()).unwrap();
        assert!(Gate::held(dir.path()));
        let path = dir.path().join(CONFIG);
        let read = match opens {
            Opens::Before => {
                let r = reader(dir.path());
                // Until it has opened the FIFO (and waits in its read).
                while open_fds(&path) < 2 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Some(r)
            }
            Opens::While => {
                let dir = dir.path().to_owned();
                Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(30));
                    reader(&dir).join().unwrap()
                }))
            }
            Opens::After => None,
        };
        gate.open(&config, &mut || true).unwrap();
        let read = read.unwrap_or_else(|| reader(dir.path()));
        assert_eq!(read.join().unwrap().unwrap(), config, "{opens:?} {size}");
        let plain = std::fs::symlink_metadata(&path).unwrap();
        assert!(plain.file_type().is_file());
        assert!(!Gate::held(dir.path()));
    }

    #[test]
    fn a_runtime_gets_the_config_whenever_it_opens_it() {
        for opens in [Opens::Before, Opens::After] {
            check(3000, opens);
        }
        // More than a pipe holds: written as the reader reads, whether it
        // opened the FIFO first or opens it meanwhile.
        for opens in [Opens::Before, Opens::While] {
            check(300_000, opens);
        }
    }

    #[test]
    fn a_gate_given_up_ends_the_runtimes_wait() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(dir.path()).unwrap();
        let (tx, rx) = mpsc::channel();
        let path = dir.path().join(CONFIG);
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let r = File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
            tx.send((r.is_ok(), bytes)).unwrap();
        });
        while open_fds(&dir.path().join(CONFIG)) < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Its maker gone (as if killed): the reader sees an empty config.
        drop(gate);
        let (ok, bytes) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(ok && bytes.is_empty());
        assert!(!Gate::held(dir.path()));
    }

    #[test]
    fn a_runtime_that_ended_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(dir.path()).unwrap();
        // Nobody reads, and more than the pipe holds.
        let config = vec![b'x'; 1 << 20];
        let mut asked = 0;
        gate.open(&config, &mut || {
            asked += 1;
            false
        })
        .unwrap();
        assert_eq!(asked, 1);
        assert_eq!(std::fs::read(dir.path().join(CONFIG)).unwrap(), config);
    }

    #[test]
    fn an_abandoned_gate_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        Gate::new(dir.path()).unwrap().abandon();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A plain config.json is no gate.
        std::fs::write(dir.path().join(CONFIG), "{}").unwrap();
        assert!(!Gate::held(dir.path()));
    }
}
