//! What Strata's servers (the volume plugin, CSI) share: claiming a unix
//! socket path, stopping on SIGTERM or SIGINT, and running on a thread of
//! their own (tests and benchmarks) until told to stop.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use std::future::Future;
use std::pin::Pin;
use std::thread::{self, JoinHandle};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

/// Who may talk to a socket: root and the socket's group.
pub const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{0} exists and is not a socket; remove it or serve on another path")]
    NotASocket(PathBuf),
    #[error("another server already serves on {0}; stop it first")]
    InUse(PathBuf),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Binds `path` (making its folder; replacing a stale socket that nothing
/// answers on, never a live one or another kind of file), owner and group
/// only, non-blocking for tokio. The path appears once the socket listens.
pub fn bind_socket(path: &Path) -> Result<UnixListener, SocketError> {
    let io_error = |action| {
        move |source| SocketError::Io {
            action,
            path: path.into(),
            source,
        }
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error("create the folder of"))?;
        sweep_asides(parent);
    }
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("inspect")(e)),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(SocketError::NotASocket(path.into()));
        }
        Ok(_) if UnixStream::connect(path).is_ok() => return Err(SocketError::InUse(path.into())),
        Ok(_) => fs::remove_file(path).map_err(io_error("remove the stale socket"))?,
    }
    let listener = listen_at(path).map_err(|(action, e)| io_error(action)(e))?;
    listener
        .set_nonblocking(true)
        .map_err(io_error("configure"))?;
    Ok(listener)
}

/// Binds a socket under a name of its own beside `path`, sets its mode
/// and renames it to `path`, unless something took `path` meanwhile. A
/// client that waits for the path to appear (as kubelet does for CSI
/// drivers) so finds it listening, with its mode set. On error, what
/// failed.
fn listen_at(path: &Path) -> Result<UnixListener, (&'static str, io::Error)> {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    // Short (a socket path has 107 bytes), and unique to this call.
    let aside = path.with_file_name(format!(".{}-{call}.tmp", std::process::id()));
    let _ = fs::remove_file(&aside);
    let listener = UnixListener::bind(&aside).map_err(|e| ("bind", e))?;
    let claimed = fs::set_permissions(&aside, fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| ("set the mode of", e))
        .and_then(|()| {
            use rustix::fs::{CWD, RenameFlags, renameat_with};
            renameat_with(CWD, &aside, CWD, path, RenameFlags::NOREPLACE)
                .map_err(|e| ("bind", e.into()))
        });
    if claimed.is_err() {
        let _ = fs::remove_file(&aside);
    }
    claimed.map(|()| listener)
}

/// Removes the sockets [`listen_at`] left aside in `dir` when its
/// process died before renaming them (the name holds the pid).
fn sweep_asides(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix('.')?.strip_suffix(".tmp"))
            .and_then(|n| n.split_once('-'))
            .filter(|(_, call)| call.parse::<u32>().is_ok())
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let dead = pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if dead && entry.file_type().is_ok_and(|t| t.is_socket()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn terminated() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers, the signals' default action still stops the
        // process; the next start removes the stale socket.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Resolves when a [`Background`] server is told to stop (or dropped).
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server running on a thread of its own. It leaves signals alone, so
/// the process keeps its own handling.
pub struct Background<E> {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<Result<(), E>>,
}

impl<E: Send + 'static> Background<E> {
    /// Runs `serve` on a new thread with a future that resolves at
    /// [`Background::stop`].
    pub fn spawn(serve: impl FnOnce(Stopped) -> Result<(), E> + Send + 'static) -> Background<E> {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            serve(Box::pin(async {
                // Stop as well when the handle is dropped.
                let _ = stopped.await;
            }))
        });
        Background { stop, thread }
    }

    /// Stops the server (it lets calls in flight finish) and returns how
    /// it ended.
    pub fn stop(self) -> Result<(), E> {
        // The server may have stopped on its own already.
        let _ = self.stop.send(());
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_only_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/s.sock");
        let live = bind_socket(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, SOCKET_MODE);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["s.sock"], "nothing left aside");
        assert!(matches!(bind_socket(&path), Err(SocketError::InUse(_))));
        // One a dead server left aside goes; a live process's stays.
        let dead = path.with_file_name(".999999999-0.tmp");
        let alive = path.with_file_name(format!(".{}-99.tmp", std::process::id()));
        let _kept = [UnixListener::bind(&dead), UnixListener::bind(&alive)];
        bind_socket(&dir.path().join("sub/other.sock")).unwrap();
        assert!(!dead.exists() && alive.exists());
        drop(live);
        bind_socket(&path).expect("a stale socket is replaced");
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            bind_socket(&file),
            Err(SocketError::NotASocket(_))
        ));
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }
}
