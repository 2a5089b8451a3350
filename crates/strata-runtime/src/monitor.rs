//! The monitor: the one process that stays with a running container.
//!
//! Strata has no daemon, so whoever starts a container hands it to a
//! monitor (a `strata` process of its own) that outlives the command. It runs
//! the runtime's `run` in the foreground, copies the container's output
//! into the log (and to the user's terminal when attached), records the
//! start and the exit code in the state file, and exits with that code.
//! It ignores SIGINT, SIGTERM and SIGHUP, so a closed terminal or ^C never
//! loses the exit code; the runtime passes them on to the container.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::fd::BorrowedFd;
use rustix::termios;

use crate::attach::{self, Hub};
use crate::gate::Gate;
use crate::logs::{LogWriter, Stream};
use crate::state::{self, RunState};
use crate::{Result, Runtime, io_at};

/// How the container's stdio is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stdio3 {
    /// A pseudo-terminal (`-t`).
    pub tty: bool,
    /// Keep stdin open and pass the user's to the container (`-i`).
    pub interactive: bool,
    /// The monitor's own stdio is the user's terminal (`run` without `-d`).
    pub attached: bool,
}

pub struct Plan<'a> {
    pub runtime: &'a dyn Runtime,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub log: &'a Path,
    pub state: &'a Path,
    pub stdio: Stdio3,
    /// A runtime already started at the bundle's gate, and the config to
    /// let it in with; None to start it now on the bundle's config.json.
    pub early: Option<(Early, Vec<u8>)>,
    /// Called once the container runs (the runtime wrote its pid file).
    pub on_start: Box<dyn FnMut() + 'a>,
}

/// Runs the container to its end; returns its exit code.
pub fn run(mut plan: Plan) -> Result<i32> {
    let me = std::process::id() as i32;
    let mut record = RunState {
        running: true,
        monitor_pid: me,
        monitor_start: state::start_time(me).unwrap_or(0),
        pid: 0,
        started_at: jiff::Timestamp::now().to_string(),
        finished_at: None,
        exit_code: None,
        error: None,
    };
    state::write(plan.state, &record)?;
    let log = LogWriter::open(plan.log).map_err(io_at(plan.log))?;
    let pid_file = pid_file(plan.bundle);
    let _ = std::fs::remove_file(&pid_file);
    // Watching before the runtime starts, so its write cannot be missed.
    let watch = PidFileWatch::new(plan.bundle);
    let started = match plan.early.take() {
        Some((early, config)) => early.admit(&config, plan.runtime),
        None => start_runtime(plan.runtime, plan.id, plan.bundle, plan.stdio),
    };
    let (child, wiring) = match started {
        Ok(started) => started,
        Err(e) => {
            // No such runtime: recorded, or the container would look
            // running with nobody watching it.
            let code = never_ran(&mut record, e.to_string());
            ended(&mut record, code);
            let _ = state::write(plan.state, &record);
            return Err(e);
        }
    };
    let (copier, hub) = connect(&plan, &child, wiring, log)?;
    let status = wait_started(child, &pid_file, watch, &mut record, &mut plan)?;
    let _ = copier.join();
    let mut code = exit_code(status);
    if record.pid == 0 {
        // The runtime ended before the container existed: it could not
        // start the command, and said why in the log.
        code = never_ran(&mut record, runtime_said(plan.log));
    }
    ended(&mut record, code);
    state::write(plan.state, &record)?;
    hub.exit(code);
    let _ = std::fs::remove_file(plan.bundle.join(attach::SOCKET));
    Ok(code)
}

/// Notes that the container never ran, and `why`; gives the exit status
/// for it. Docker keeps such a container Created, with those words and
/// that status.
fn never_ran(record: &mut RunState, why: String) -> i32 {
    let code = crate::runtime::start_failure_status(&why);
    record.error = Some(why);
    code
}

/// Notes the end of the run, with `code`.
fn ended(record: &mut RunState, code: i32) {
    record.running = false;
    record.exit_code = Some(code);
    record.finished_at = Some(jiff::Timestamp::now().to_string());
}

/// Why the runtime could not start a container: the last lines of its
/// log, where the runtime's error went, reduced to their words.
fn runtime_said(log: &Path) -> String {
    let opts = crate::logs::ReadOptions {
        tail: Some(3),
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let _ = crate::logs::read(log, &opts, &mut out, &mut err, &|| true);
    out.extend(err);
    crate::runtime::words(&String::from_utf8_lossy(&out))
}

/// Docker's convention: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

fn ignore_job_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: setting a signal's disposition to SIG_IGN touches no memory.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

/// Where the runtime writes the container's pid.
fn pid_file(bundle: &Path) -> PathBuf {
    bundle.join("pid")
}

/// A runtime started before its container was made: its `run` waits at
/// the bundle's [`Gate`] until [`run`] lets it in.
pub struct Early {
    child: Child,
    wiring: Wiring,
    gate: Gate,
}

impl Early {
    /// Starts `runtime`'s `run` of container `id` on `bundle`, whose
    /// config.json is `gate`.
    pub fn start(
        runtime: &dyn Runtime,
        id: &str,
        bundle: &Path,
        stdio: Stdio3,
        gate: Gate,
    ) -> Result<Early> {
        let (child, wiring) = match start_runtime(runtime, id, bundle, stdio) {
            Ok(started) => started,
            Err(e) => {
                gate.abandon();
                return Err(e);
            }
        };
        Ok(Early {
            child,
            wiring,
            gate,
        })
    }

    /// Gives up the start: the runtime, which has read no config and so
    /// made nothing, is stopped, and the gate removed.
    pub fn abandon(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.gate.abandon();
    }

    fn admit(self, config: &[u8], runtime: &dyn Runtime) -> Result<(Child, Wiring)> {
        let Early {
            child,
            wiring,
            gate,
        } = self;
        let pid = child.id();
        gate.open(config, &mut || still_running(pid))
            .map_err(io_at(PathBuf::from(runtime.name())))?;
        Ok((child, wiring))
    }
}

/// Whether our child `pid` has not ended yet; one that has is left for
/// [`wait_started`] to reap.
fn still_running(pid: u32) -> bool {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    // No change yet: None. One that ended stays there for the wait.
    matches!(waitid(WaitId::Pid(pid), options), Ok(None))
}

/// The container's stdio on our side, before anyone reads it.
enum Wiring {
    /// A pseudo-terminal's master (`-t`).
    Pty(File),
    /// Pipes: stdin's (with `-i`), stdout's and stderr's.
    Pipes {
        input: Option<File>,
        out: File,
        err: File,
    },
}

/// Starts the runtime's `run` with the container's stdio.
fn start_runtime(
    runtime: &dyn Runtime,
    id: &str,
    bundle: &Path,
    stdio: Stdio3,
) -> Result<(Child, Wiring)> {
    // Before the runtime starts, early or not: from here the monitor
    // outlives a ^C or a closed terminal, and the runtime inherits the
    // same dispositions either way.
    ignore_job_signals();
    let mut cmd = runtime.run_command(bundle, id, &pid_file(bundle));
    let spawn_err = |e| io_at(PathBuf::from(runtime.name()))(e);
    if stdio.tty {
        let (master, slave) = open_pty(stdio.attached).map_err(spawn_err)?;
        cmd.stdin(Stdio::from(slave.try_clone().map_err(spawn_err)?));
        cmd.stdout(Stdio::from(slave.try_clone().map_err(spawn_err)?));
        cmd.stderr(Stdio::from(slave));
        let child = cmd.spawn().map_err(spawn_err)?;
        // The command holds copies of the slave: drop them, so reading
        // the master ends when the container's side closes.
        drop(cmd);
        return Ok((child, Wiring::Pty(File::from(master))));
    }
    // A container made with -i keeps its stdin open, for us or for
    // whoever attaches later.
    cmd.stdin(if stdio.interactive {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(cmd);
    let wiring = Wiring::Pipes {
        input: child.stdin.take().map(|i| File::from(OwnedFd::from(i))),
        out: File::from(OwnedFd::from(child.stdout.take().expect("piped"))),
        err: File::from(OwnedFd::from(child.stderr.take().expect("piped"))),
    };
    Ok((child, wiring))
}

/// Connects the container's stdio: the hub that serves it to `strata
/// attach`, ours when attached, and the thread that copies its output.
fn connect(
    plan: &Plan,
    child: &Child,
    wiring: Wiring,
    log: LogWriter,
) -> Result<(std::thread::JoinHandle<()>, Arc<Hub>)> {
    let spawn_err = |e| io_at(PathBuf::from(plan.runtime.name()))(e);
    let Stdio3 {
        tty,
        interactive,
        attached,
    } = plan.stdio;
    let (outputs, hub) = match wiring {
        Wiring::Pty(master) => {
            let clone = || master.try_clone().map_err(spawn_err);
            let input = interactive.then(clone).transpose()?;
            let pty = attach::Pty {
                master: clone()?,
                runtime_pid: child.id(),
            };
            let hub = Hub::new(input, Some(pty));
            (vec![(master, Stream::Stdout)], hub)
        }
        Wiring::Pipes { input, out, err } => (
            vec![(out, Stream::Stdout), (err, Stream::Stderr)],
            Hub::new(input, None),
        ),
    };
    let socket = plan.bundle.join(attach::SOCKET);
    hub.serve(&socket).map_err(io_at(&socket))?;
    if attached {
        if interactive {
            let hub = hub.clone();
            std::thread::spawn(move || pump_stdin(&hub));
        }
        if tty {
            let hub = hub.clone();
            attach::on_window_change(move || {
                if let Ok(size) = termios::tcgetwinsize(std::io::stdin()) {
                    hub.resize(size);
                }
            })
            .map_err(spawn_err)?;
        }
    }
    let copier = copier(outputs, log, hub.clone(), attached);
    Ok((copier, hub))
}

/// Waits for the runtime; on the way, notes the container's pid (when the
/// runtime writes its pid file) in the state and calls `on_start`.
fn wait_started(
    mut child: Child,
    pid_file: &Path,
    watch: PidFileWatch,
    record: &mut RunState,
    plan: &mut Plan,
) -> Result<ExitStatus> {
    let runtime = plan.runtime.name();
    // The exit is an event: the pidfd turns readable the moment it
    // happens (`run` of a quick container waits on exactly that).
    let exit = rustix::process::pidfd_open(
        rustix::process::Pid::from_child(&child),
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(|e| io_at(&runtime)(e.into()))?;
    // Until the pid file is there.
    let mut watch = Some(watch);
    loop {
        let timeout = watch.as_mut().and_then(PidFileWatch::timeout);
        let mut fds = vec![exit.as_fd()];
        fds.extend(watch.as_ref().and_then(PidFileWatch::fd));
        let exited = readable(&fds, timeout)
            .map_err(|e| io_at(&runtime)(e.into()))?
            .contains(&0);
        // The pid file is the runtime's word that the container started;
        // a quick container may already have exited when we look (then
        // the state is written once, with its exit).
        if let Some(w) = watch.take() {
            w.drain();
            match read_pid(pid_file) {
                None => watch = Some(w),
                Some(pid) => {
                    w.stop();
                    record.pid = pid;
                    if !exited {
                        state::write(plan.state, record)?;
                    }
                    (plan.on_start)();
                }
            }
        }
        if exited {
            // The runtime failed before the pid file: no waiting on the
            // close here either.
            if let Some(w) = watch {
                w.stop();
            }
            return child.wait().map_err(io_at(runtime));
        }
    }
}

/// How the monitor learns that the runtime wrote its pid file: an inotify
/// watch on the bundle (runc writes the file aside and renames it in,
/// others write it in place), so it wakes once, when it happens. Without
/// one (the per-user limit of inotify instances is reached) it looks
/// every few milliseconds.
enum PidFileWatch {
    Inotify(OwnedFd),
    /// The next pause between looks.
    Polling(Duration),
}

impl PidFileWatch {
    fn new(bundle: &Path) -> PidFileWatch {
        use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
        let watch = || -> rustix::io::Result<PidFileWatch> {
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            let flags = WatchFlags::MOVED_TO | WatchFlags::CLOSE_WRITE;
            inotify::add_watch(&fd, bundle, flags)?;
            Ok(PidFileWatch::Inotify(fd))
        };
        watch().unwrap_or(PidFileWatch::Polling(Duration::from_micros(500)))
    }

    /// Ends the watch without making the monitor wait. Closing an inotify
    /// instance waits for the kernel to free its marks (an SRCU grace
    /// period: 5-14 ms measured here, which held up the exit report), so
    /// a thread of its own closes it. Closed it must be: a monitor lives
    /// as long as its container, and a user has few instances (128 by
    /// default).
    fn stop(self) {
        if let PidFileWatch::Inotify(fd) = self {
            // Should the thread not start, the fd closes here, slowly.
            let _ = std::thread::Builder::new().spawn(move || drop(fd));
        }
    }

    /// What to wait on besides the runtime's exit.
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            PidFileWatch::Inotify(fd) => Some(fd.as_fd()),
            PidFileWatch::Polling(_) => None,
        }
    }

    /// How long to wait before looking again: an inotify watch wakes us.
    fn timeout(&mut self) -> Option<Duration> {
        match self {
            PidFileWatch::Inotify(_) => None,
            PidFileWatch::Polling(pause) => {
                let now = *pause;
                *pause = (now * 2).min(Duration::from_millis(4));
                Some(now)
            }
        }
    }

    /// Consumes the events that woke us: any of them means look again.
    fn drain(&self) {
        if let PidFileWatch::Inotify(fd) = self {
            let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
            let mut events = rustix::fs::inotify::Reader::new(fd, &mut buf);
            while events.next().is_ok() {}
        }
    }
}

/// Which of `fds` are readable (or ended), waiting at most `timeout`
/// (forever if None) for one to be.
fn readable(fds: &[BorrowedFd], timeout: Option<Duration>) -> rustix::io::Result<Vec<usize>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = timeout.map(|t| Timespec::try_from(t).expect("a short pause fits"));
    let mut polled: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    loop {
        match poll(&mut polled, timeout.as_ref()) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(polled
        .iter()
        .enumerate()
        .filter(|(_, fd)| !fd.revents().is_empty())
        .map(|(i, _)| i)
        .collect())
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Copies the container's output streams into the log, to whoever is
/// attached and, when attached, to ours: one thread reading whichever has
/// data, until all have ended; then the log's last partial lines.
fn copier(
    outputs: Vec<(File, Stream)>,
    mut log: LogWriter,
    hub: Arc<Hub>,
    attached: bool,
) -> std::thread::JoinHandle<()> {
    let mut open: Vec<(File, Stream, Option<File>)> = outputs
        .into_iter()
        .map(|(from, stream)| {
            let fd = match stream {
                Stream::Stdout => 1,
                Stream::Stderr => 2,
            };
            let ours = attached.then(|| attach::dup_stdio(fd).ok()).flatten();
            (from, stream, ours)
        })
        .collect();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while !open.is_empty() {
            let fds: Vec<BorrowedFd> = open.iter().map(|(from, ..)| from.as_fd()).collect();
            let Ok(ready) = readable(&fds, None) else {
                break;
            };
            let mut ended = Vec::new();
            for i in ready {
                let (from, stream, ours) = &mut open[i];
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        ended.push(i);
                        continue;
                    }
                    Ok(n) => n,
                };
                if let Some(to) = ours.as_mut() {
                    // The user may have gone: the log still gets everything.
                    let _ = to.write_all(&buf[..n]);
                }
                let _ = log.write(*stream, &buf[..n]);
                hub.output(*stream, &buf[..n]);
            }
            for i in ended.into_iter().rev() {
                open.remove(i);
            }
        }
        let _ = log.flush();
    })
}

/// Passes our stdin to the container until it ends; then closes the
/// container's stdin (the command sees end of file), as `docker run -i`.
fn pump_stdin(hub: &Hub) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stdin.read(&mut buf) {
        hub.input(&buf[..n]);
    }
    hub.close_input();
}

/// A new pseudo-terminal (master, slave). The slave is raw: the terminal
/// the container sees is the runtime's own, ours only carries bytes. When
/// attached to a terminal, the size is the user's.
fn open_pty(attached: bool) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(std::ffi::OsStr::from_bytes(name.as_bytes()))?
        .into();
    let mut t = termios::tcgetattr(&slave)?;
    t.make_raw();
    termios::tcsetattr(&slave, termios::OptionalActions::Now, &t)?;
    if attached {
        // SAFETY: fd 0 is open for the life of the process.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        if let Ok(size) = termios::tcgetwinsize(stdin) {
            termios::tcsetwinsize(master.as_fd(), size)?;
        }
    }
    Ok((master, slave))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_ended_is_seen_and_left_to_reap() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        while still_running(child.id()) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Not reaped: its status is still there for the wait.
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        );
        assert!(pidfd.is_ok());
        assert_eq!(child.wait().unwrap().code(), Some(7));
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(still_running(sleeper.id()));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    /// Whether a watch on a folder wakes a wait after `write` ran in it,
    /// and sleeps again once drained.
    fn check(write: impl FnOnce(&Path), woken: bool) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("aside")).unwrap();
        let watch = PidFileWatch::new(dir.path());
        assert!(matches!(watch, PidFileWatch::Inotify(_)));
        write(dir.path());
        let fds: Vec<BorrowedFd> = watch.fd().into_iter().collect();
        let ready = readable(&fds, Some(Duration::ZERO)).unwrap();
        assert_eq!(!ready.is_empty(), woken);
        watch.drain();
        assert!(readable(&fds, Some(Duration::ZERO)).unwrap().is_empty());
    }

    #[test]
    fn the_pid_file_wakes_the_monitor() {
        // As runc does: written elsewhere, renamed in.
        check(
            |d| {
                std::fs::write(d.join("aside/pid"), "42").unwrap();
                std::fs::rename(d.join("aside/pid"), d.join("pid")).unwrap();
            },
            true,
        );
        // Written in place.
        check(|d| std::fs::write(d.join("pid"), "42").unwrap(), true);
        // Made in a subfolder: not the bundle's pid file.
        check(
            |d| std::fs::write(d.join("aside/pid"), "42").unwrap(),
            false,
        );
        check(|_| {}, false);
    }

    #[test]
    fn without_a_watch_it_looks_ever_less_often() {
        let mut watch = PidFileWatch::Polling(Duration::from_micros(500));
        let pauses: Vec<u128> = (0..5)
            .map(|_| watch.timeout().unwrap().as_micros())
            .collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 4000]);
        assert!(watch.fd().is_none());
    }
}
