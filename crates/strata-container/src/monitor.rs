//! The monitor: the one process that stays with a running container, since
//! Strata has no daemon.
//!
//! A start takes two processes. The `strata` that starts a container (the
//! starter) launches the monitor first, so its start-up overlaps the
//! starter's own work: `run` forks itself ([`crate::Monitor::fork`]), `start`
//! executes `strata container-monitor` ([`crate::Monitor::spawn`]). `run`'s
//! monitor also starts the runtime at once, at a gate in the bundle
//! ([`Launch`], [`strata_runtime::gate`]), and the config the starter sends
//! lets it in. Then the starter mounts the root filesystem and writes the
//! bundle (see [`Containers::start`]) and sends the monitor a
//! [`MonitorRequest`] on a channel, a socket at [`CHANNEL_FD`]. The monitor
//! runs the bundle through the runtime without opening the store, and
//! reports on the same channel: `started` once the container runs, then
//! `exited CODE` or `error: WHY`. A starter that gives up before sending a
//! request closes the channel, and the monitor leaves.
//!
//! After the exit someone tidies up ([`Containers::cleanup`]). An attached
//! starter (`run` without `-d`) does it as soon as it hears the exit and
//! answers `cleaned`, so `run --rm` returns without waiting for a second
//! process to open the store; the monitor then empties the trash the
//! removal filled ([`strata_store::trash`]). When nobody answers (a
//! detached start, or a starter that died), the monitor does it all.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use strata_runtime::Runc;
use strata_runtime::gate::Gate;
use strata_runtime::monitor::{Early, Plan, Stdio3};
use strata_store::lock::{LockMode, StoreLock};

use crate::{ContainerError, Containers, Result, bundle_dir, containers_dir, log_file, state_file};

/// Where the monitor finds its channel to the starter.
pub const CHANNEL_FD: i32 = 3;

/// What a monitor is told once the bundle is written: enough to run it,
/// without the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MonitorRequest {
    pub id: String,
    /// The OCI runtime (`runc`, or a path).
    pub runtime: PathBuf,
    pub stdio: Stdio3,
    /// The bundle's config, when it is the monitor's to pass on: its
    /// runtime started early, at a gate ([`Launch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// What `run` knows before it opens the store: enough for its monitor to
/// start the runtime at once, at a gate in the bundle
/// ([`strata_runtime::gate`]), while the starter makes the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The ID the container will have.
    pub id: String,
    pub runtime: PathBuf,
    pub stdio: Stdio3,
}

impl Launch {
    pub fn new(runtime: PathBuf, stdio: Stdio3) -> Launch {
        Launch {
            id: strata_store::fsutil::random_hex(32),
            runtime,
            stdio,
        }
    }

    /// What a launch for `req` would have been.
    pub(crate) fn of(req: &MonitorRequest) -> Launch {
        Launch {
            id: req.id.clone(),
            runtime: req.runtime.clone(),
            stdio: req.stdio,
        }
    }
}

/// What the monitor tells the starter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    Started,
    Exited(i32),
    Failed(String),
}

/// The starter's answer once it has tidied up after the exit.
const CLEANED: &str = "cleaned";

impl Report {
    fn line(&self) -> String {
        match self {
            Report::Started => "started\n".into(),
            Report::Exited(code) => format!("exited {code}\n"),
            Report::Failed(why) => format!("error: {}\n", why.replace('\n', " ")),
        }
    }

    fn parse(line: &str) -> Option<Report> {
        if line == "started" {
            return Some(Report::Started);
        }
        if let Some(code) = line.strip_prefix("exited ") {
            return code.parse().ok().map(Report::Exited);
        }
        line.strip_prefix("error: ")
            .map(|why| Report::Failed(why.to_owned()))
    }
}

/// One end of the channel between starter and monitor: lines both ways.
pub(crate) struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    fn new(stream: UnixStream) -> std::io::Result<Channel> {
        Ok(Channel {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    pub(crate) fn pair() -> std::io::Result<(Channel, UnixStream)> {
        let (ours, theirs) = UnixStream::pair()?;
        Ok((Channel::new(ours)?, theirs))
    }

    /// The next report; None when the other side closed without one.
    pub(crate) fn next(&mut self) -> Option<Report> {
        Report::parse(&self.read_line()?)
    }

    fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 && line.ends_with('\n') => {
                line.pop();
                Some(line)
            }
            _ => None,
        }
    }

    fn say(&mut self, line: &str) -> bool {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .is_ok()
    }

    pub(crate) fn report(&mut self, report: &Report) -> bool {
        self.writer.write_all(report.line().as_bytes()).is_ok()
    }

    pub(crate) fn cleaned(&mut self) -> bool {
        self.say(CLEANED)
    }

    pub(crate) fn request(&mut self, request: &MonitorRequest) -> bool {
        self.say(&serde_json::to_string(request).expect("requests serialize"))
    }

    /// The starter's request; None if it gave up before sending one.
    fn read_request(&mut self) -> Option<MonitorRequest> {
        serde_json::from_str(&self.read_line()?).ok()
    }
}

/// What watching a container came to.
pub struct Watched {
    /// The container's exit code, or why it could not run.
    pub code: Result<i32>,
    /// Nobody tidied up after it: the caller must ([`Containers::cleanup`]).
    pub cleanup_is_ours: bool,
}

/// The monitor's work: waits for the starter's request, then runs the
/// bundle it wrote under `root` to its end, telling the starter how it
/// goes. With a `launch`, the runtime starts first, at a gate. None when
/// the starter gave up before asking.
pub fn watch(root: &Path, launch: Option<&Launch>) -> Option<(MonitorRequest, Watched)> {
    let mut channel = inherited_channel()?;
    let early = launch.and_then(|l| start_early(root, l));
    let Some(req) = channel.read_request() else {
        if let (Some(early), Some(launch)) = (early, launch) {
            early.abandon();
            // Only if the starter made nothing in it: no container.
            let _ = std::fs::remove_dir(bundle_dir(&containers_dir(root), &launch.id));
        }
        return None;
    };
    // The starter sends the config only for what was launched.
    let early = match (early, &req.config) {
        (Some(early), Some(_)) => Some(early),
        (Some(early), None) => {
            early.abandon();
            None
        }
        (None, _) => None,
    };
    let watched = watch_one(root, &req, channel, early);
    if !watched.cleanup_is_ours {
        // The starter tidied up and returned; the fsync and the deletes
        // are ours. Our copy of its stdout goes first: a `$(strata run …)`
        // or a pipe reads until every copy is closed, and must not wait.
        let _ = crate::start::stdio_to_null();
        finish_tail(&strata_store::Layout::new(root));
    }
    Some((req, watched))
}

/// Starts the runtime for `launch` at a gate in its bundle, so its own
/// start-up runs while the starter makes the container. None if that
/// fails: the starter's config is then written plainly, and the runtime
/// started on it.
fn start_early(root: &Path, launch: &Launch) -> Option<Early> {
    let bundle = bundle_dir(&containers_dir(root), &launch.id);
    let gate = || -> std::io::Result<Gate> {
        // Until the gate is there, the folder looks like a crashed
        // create's: the lock, held shared, keeps a repair away meanwhile.
        let mut lock = StoreLock::open(&strata_store::Layout::new(root).lock())?;
        lock.acquire(LockMode::Shared, || {})?;
        std::fs::create_dir_all(&bundle)?;
        Gate::new(&bundle)
    };
    let started = gate().map_err(crate::io_at(&bundle)).and_then(|gate| {
        let runtime = Runc::new(&launch.runtime);
        Ok(Early::start(
            &runtime,
            &launch.id,
            &bundle,
            launch.stdio,
            gate,
        )?)
    });
    match started {
        Ok(early) => Some(early),
        Err(e) => {
            tracing::debug!("starting the runtime early: {e}");
            // Ours, unless the starter has begun to fill it.
            let _ = std::fs::remove_dir(&bundle);
            None
        }
    }
}

/// What the starter left to us ([`strata_image::Store::defer_tail`]):
/// its removal's commits made durable, and only then the folders it put
/// in the trash deleted. A failure leaves the trash to the next writer.
fn finish_tail(layout: &strata_store::Layout) {
    if let Err(e) = strata_store::meta::sync_log(&layout.db()) {
        tracing::warn!("{}: {e}", layout.db().display());
        return;
    }
    let trash = layout.trash();
    if let Err(e) = strata_store::trash::Trash::new(&trash).empty() {
        tracing::warn!("{}: {e}", trash.display());
    }
}

fn watch_one(
    root: &Path,
    req: &MonitorRequest,
    mut channel: Channel,
    early: Option<Early>,
) -> Watched {
    let bundle = bundle_dir(&containers_dir(root), &req.id);
    let runtime = Runc::new(&req.runtime);
    let mut started = channel.writer.try_clone().ok();
    let code = plan_early(&bundle, req, early).and_then(|early| {
        Ok(strata_runtime::monitor::run(Plan {
            runtime: &runtime,
            id: &req.id,
            bundle: &bundle,
            log: &log_file(&bundle),
            state: &state_file(&bundle),
            stdio: req.stdio,
            early,
            on_start: Box::new(move || {
                if let Some(w) = started.as_mut() {
                    let _ = w.write_all(Report::Started.line().as_bytes());
                }
            }),
        })?)
    });
    let report = match &code {
        Ok(code) => Report::Exited(*code),
        Err(e) => Report::Failed(e.to_string()),
    };
    let cleaned = channel.report(&report) && channel.read_line().as_deref() == Some(CLEANED);
    Watched {
        code,
        cleanup_is_ours: !cleaned,
    }
}

/// The early runtime and the config the starter sent for it; without
/// one, that config is written into the bundle for the runtime to start on.
fn plan_early(
    bundle: &Path,
    req: &MonitorRequest,
    early: Option<Early>,
) -> Result<Option<(Early, Vec<u8>)>> {
    let Some(config) = &req.config else {
        return Ok(None);
    };
    let config = config.as_bytes().to_vec();
    if let Some(early) = early {
        return Ok(Some((early, config)));
    }
    strata_runtime::bundle::write_bytes(bundle, &config)?;
    Ok(None)
}

/// The channel the starter put at [`CHANNEL_FD`].
fn inherited_channel() -> Option<Channel> {
    // SAFETY: the starter put the channel at CHANNEL_FD for us; we own it
    // from here. (Run by hand, fd 3 is whatever it is: no request comes.)
    let stream = unsafe { UnixStream::from_raw_fd(CHANNEL_FD) };
    // Not for the runtime or the container: while they hold it open, the
    // starter would never see it close.
    let _ = rustix::io::fcntl_setfd(&stream, rustix::io::FdFlags::CLOEXEC);
    Channel::new(stream).ok()
}

impl Containers<'_> {
    /// Tidies up after a container's run: unmounts its root filesystem,
    /// lets its volumes go, and removes it if it was made with `--rm`. The
    /// starter and the monitor may both try: whoever comes second finds
    /// nothing to do. A container started again meanwhile is left alone.
    pub fn cleanup(&self, id: &str) -> Result<()> {
        let c = match self.get(id) {
            Ok(c) => c,
            Err(ContainerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.status(&c)?.is_running() {
            return Ok(());
        }
        if c.config.auto_remove {
            // Removing it unmounts it and lets its volumes go too.
            self.store.begin_write()?;
            self.forget(&c, true)?;
        } else {
            self.after_exit(&c);
        }
        Ok(())
    }

    pub(crate) fn after_exit(&self, c: &crate::Container) {
        let rootfs = self.rootfs(c.id());
        if let Err(e) = strata_snapshot::mount::unmount(&rootfs) {
            tracing::warn!("unmounting {}: {e}", rootfs.display());
        }
        if let Err(e) = self.volumes.release(c.id()) {
            tracing::warn!("unmounting the volumes of {}: {e}", c.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: Option<Report>) {
        assert_eq!(Report::parse(line), expected, "{line}");
        if let Some(r) = expected {
            assert_eq!(Report::parse(r.line().trim_end()), Some(r));
        }
    }

    #[test]
    fn reports_read_back() {
        check("started", Some(Report::Started));
        check("exited 0", Some(Report::Exited(0)));
        check("exited 137", Some(Report::Exited(137)));
        check("exited -1", Some(Report::Exited(-1)));
        check("exited x", None);
        check(
            "error: no such file",
            Some(Report::Failed("no such file".into())),
        );
        check("cleaned", None);
        check("", None);
    }

    #[test]
    fn a_request_crosses_the_channel_and_a_closed_one_asks_nothing() {
        let (mut starter, theirs) = Channel::pair().unwrap();
        let mut monitor = Channel::new(theirs).unwrap();
        let request = |config: Option<&str>| MonitorRequest {
            id: "abc".into(),
            runtime: PathBuf::from("/usr/sbin/runc"),
            stdio: Stdio3 {
                tty: true,
                interactive: false,
                attached: true,
            },
            config: config.map(String::from),
        };
        // A config for an early runtime, even one of several lines, is
        // still one line of the channel.
        for r in [request(None), request(Some("{\"ociVersion\":\n\"1.0.2\"}"))] {
            assert!(starter.request(&r));
            assert_eq!(monitor.read_request(), Some(r));
        }
        drop(starter);
        assert_eq!(monitor.read_request(), None);
    }

    #[test]
    fn a_report_is_one_line() {
        let r = Report::Failed("two\nlines".into());
        assert_eq!(r.line(), "error: two lines\n");
    }
}
