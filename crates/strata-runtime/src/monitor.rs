//! The monitor: the one process that stays with a running container.
//!
//! Strata has no daemon, so whoever starts a container hands it to a
//! monitor (`strata` itself, re-executed) that outlives the command. It runs
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
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::fd::BorrowedFd;
use rustix::termios;

use crate::logs::{LogWriter, Stream};
use crate::state::{self, RunState};
use crate::{Result, Runtime, io_at};

/// How the container's stdio is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Written "started\n" once the container runs, then closed: how the
    /// `strata` that launched the monitor learns the start succeeded.
    pub ready: Option<File>,
}

/// Runs the container to its end; returns its exit code.
pub fn run(mut plan: Plan) -> Result<i32> {
    ignore_job_signals();
    let me = std::process::id() as i32;
    let mut record = RunState {
        running: true,
        monitor_pid: me,
        monitor_start: state::start_time(me).unwrap_or(0),
        pid: 0,
        started_at: jiff::Timestamp::now().to_string(),
        finished_at: None,
        exit_code: None,
    };
    state::write(plan.state, &record)?;
    let log = Arc::new(Mutex::new(
        LogWriter::open(plan.log).map_err(io_at(plan.log))?,
    ));
    let pid_file = plan.bundle.join("pid");
    let _ = std::fs::remove_file(&pid_file);
    let ready = plan.ready.take();
    let (child, copiers) = spawn(&plan, &pid_file, &log)?;
    let status = wait_started(child, &pid_file, &mut record, &plan, ready)?;
    for c in copiers {
        let _ = c.join();
    }
    let _ = log.lock().map(|mut l| l.flush());
    let code = exit_code(status);
    record.running = false;
    record.exit_code = Some(code);
    record.finished_at = Some(jiff::Timestamp::now().to_string());
    state::write(plan.state, &record)?;
    Ok(code)
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

type Copiers = Vec<std::thread::JoinHandle<()>>;

/// Starts the runtime with the container's stdio, and the threads that
/// copy it.
fn spawn(plan: &Plan, pid_file: &Path, log: &Arc<Mutex<LogWriter>>) -> Result<(Child, Copiers)> {
    let mut cmd = plan.runtime.run_command(plan.bundle, plan.id, pid_file);
    let mut copiers = Vec::new();
    let spawn_err = |e| io_at(PathBuf::from(plan.runtime.name()))(e);
    if plan.stdio.tty {
        let (master, slave) = open_pty(plan.stdio.attached).map_err(spawn_err)?;
        cmd.stdin(Stdio::from(slave.try_clone().map_err(spawn_err)?));
        cmd.stdout(Stdio::from(slave.try_clone().map_err(spawn_err)?));
        cmd.stderr(Stdio::from(slave));
        let child = cmd.spawn().map_err(spawn_err)?;
        // The command holds copies of the slave: drop them, so reading
        // the master ends when the container's side closes.
        drop(cmd);
        let master = File::from(master);
        if plan.stdio.interactive && plan.stdio.attached {
            let to = master.try_clone().map_err(spawn_err)?;
            std::thread::spawn(move || pump_stdin(to));
        }
        copiers.push(copier(
            master,
            Stream::Stdout,
            log.clone(),
            plan.stdio.attached,
        ));
        return Ok((child, copiers));
    }
    let stdin = if plan.stdio.interactive && plan.stdio.attached {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(cmd);
    if let Some(to) = child.stdin.take() {
        std::thread::spawn(move || pump_stdin(File::from(OwnedFd::from(to))));
    }
    let out = File::from(OwnedFd::from(child.stdout.take().expect("piped")));
    let err = File::from(OwnedFd::from(child.stderr.take().expect("piped")));
    copiers.push(copier(
        out,
        Stream::Stdout,
        log.clone(),
        plan.stdio.attached,
    ));
    copiers.push(copier(
        err,
        Stream::Stderr,
        log.clone(),
        plan.stdio.attached,
    ));
    Ok((child, copiers))
}

/// Waits for the runtime; on the way, notes the container's pid (when the
/// runtime writes its pid file) in the state and tells `ready`.
fn wait_started(
    mut child: Child,
    pid_file: &Path,
    record: &mut RunState,
    plan: &Plan,
    mut ready: Option<File>,
) -> Result<ExitStatus> {
    // A thread blocks in wait(), so the exit is seen the moment it happens
    // (`run` of a quick container waits on exactly that); this thread only
    // polls for the pid file, which has no event to wait on.
    let (tx, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let mut pause = Duration::from_micros(500);
    let lost = || io_at(plan.runtime.name())(std::io::Error::other("lost the runtime's exit"));
    let mut pid_seen = false;
    loop {
        let status = if pid_seen {
            Some(exited.recv().map_err(|_| lost())?)
        } else {
            match exited.recv_timeout(pause) {
                Ok(s) => Some(s),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Err(lost()),
            }
        };
        // The pid file is the runtime's word that the container started;
        // a quick container may already have exited when we look.
        if !pid_seen && let Some(pid) = read_pid(pid_file) {
            pid_seen = true;
            record.pid = pid;
            state::write(plan.state, record)?;
            if let Some(mut r) = ready.take() {
                let _ = r.write_all(b"started\n");
            }
        }
        if let Some(status) = status {
            return status.map_err(io_at(plan.runtime.name()));
        }
        pause = (pause * 2).min(Duration::from_millis(4));
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Copies one output stream into the log and, when attached, to ours.
fn copier(
    mut from: File,
    stream: Stream,
    log: Arc<Mutex<LogWriter>>,
    attached: bool,
) -> std::thread::JoinHandle<()> {
    // Our own copy of fd 1 or 2: std's stdout handle is locked by whoever
    // prints in this process, the raw descriptor never is.
    let mut to = attached
        .then(|| {
            let fd = match stream {
                Stream::Stdout => 1,
                Stream::Stderr => 2,
            };
            // SAFETY: fds 1 and 2 are open for the life of the process.
            rustix::io::dup(unsafe { BorrowedFd::borrow_raw(fd) }).ok()
        })
        .flatten()
        .map(File::from);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(to) = to.as_mut() {
                // The user may have gone: the log still gets everything.
                let _ = to.write_all(&buf[..n]);
            }
            if let Ok(mut l) = log.lock() {
                let _ = l.write(stream, &buf[..n]);
            }
        }
    })
}

/// Passes our stdin to the container until it ends; then closes the
/// container's stdin (the command sees end of file).
fn pump_stdin(mut to: File) {
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to);
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
