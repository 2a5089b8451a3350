//! Starting a container: the starter's side of the monitor protocol (see
//! [`crate::monitor`]). The starter mounts the root filesystem and writes
//! the bundle, so a failure there is reported here and now, and the
//! monitor needs nothing but the bundle to run.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;

use strata_runtime::bundle;
use strata_runtime::monitor::Stdio3;
use strata_runtime::state::{self, RunState};
use strata_snapshot::mount;
use strata_volume::Caller;

use crate::config::MountKind;
use crate::monitor::{CHANNEL_FD, Channel, Launch, MonitorRequest, Report};
use crate::subpath::Subpaths;
use crate::{Container, ContainerError, Containers, Result, io_at, snapshot_key};

/// How `start` left the container.
pub enum Started {
    /// Running, watched by a monitor in the background.
    Detached,
    /// Running with our stdio: [`Containers::wait_attached`] gives its
    /// exit code.
    Attached(Attached),
    /// It was running already.
    AlreadyRunning,
}

/// A monitor launched for a start, waiting to be told what to run. Made
/// first, so its start-up runs while the starter prepares the container;
/// one dropped unused is told nothing and leaves.
pub struct Monitor {
    /// The process and our end of its channel, until a start uses them.
    unused: Option<(MonitorProcess, Channel)>,
    attached: bool,
    /// What it started early, for `run` (see [`Launch`]).
    launch: Option<Launch>,
}

impl Monitor {
    /// Launches `cmd` (`strata container-monitor`) with its end of the
    /// channel at [`CHANNEL_FD`]. `attached`: it shares our stdio; else it
    /// runs in its own session, away from it.
    pub fn spawn(mut cmd: std::process::Command, attached: bool) -> Result<Monitor> {
        let (channel, theirs) = Channel::pair().map_err(io_at("socketpair"))?;
        let raw = theirs.as_raw_fd();
        if !attached {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        // SAFETY: between fork and exec only async-signal-safe calls:
        // setsid, and fcntl or dup2 in channel_at_fd.
        unsafe {
            cmd.pre_exec(move || {
                if !attached {
                    rustix::process::setsid()?;
                }
                channel_at_fd(raw)
            });
        }
        let child = cmd.spawn().map_err(io_at("strata monitor"))?;
        Ok(Monitor {
            unused: Some((MonitorProcess(child.id() as i32), channel)),
            attached,
            launch: None,
        })
    }

    /// Forks this process to be `run`'s monitor: the child puts its end
    /// of the channel at [`CHANNEL_FD`], runs `body` (which starts the
    /// runtime for `launch` and reads the channel, as
    /// [`crate::monitor::watch`] does) and exits with what it returns.
    /// Saves the exec and start-up of a second `strata`, about 2 ms of CPU
    /// in every `run`.
    ///
    /// # Safety
    /// The calling process must have one thread (the child gets only the
    /// caller's) and nothing open that a copy must not use or close, such
    /// as a database connection.
    pub unsafe fn fork(body: impl FnOnce() -> i32, launch: &Launch) -> Result<Monitor> {
        let attached = launch.stdio.attached;
        debug_assert_eq!(threads(), Some(1), "Monitor::fork needs one thread");
        let (channel, theirs) = Channel::pair().map_err(io_at("socketpair"))?;
        // SAFETY: one thread (the caller's promise), so the child may do
        // anything the parent could.
        match unsafe { libc::fork() } {
            -1 => Err(io_at("fork")(std::io::Error::last_os_error())),
            0 => {
                // Our copy of the starter's end would keep the channel
                // open after the starter died.
                drop(channel);
                // A panic must end the child here: unwinding further would
                // return into the starter's code, in the wrong process.
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    monitor_child(theirs, attached).map_or(1, |()| body())
                }))
                .unwrap_or(101);
                std::process::exit(code)
            }
            pid => {
                make_way();
                Ok(Monitor {
                    unused: Some((MonitorProcess(pid), channel)),
                    attached,
                    launch: Some(launch.clone()),
                })
            }
        }
    }

    /// The ID its container is to have, if it started the runtime early.
    pub fn launched_id(&self) -> Option<&str> {
        self.launch.as_ref().map(|l| l.id.as_str())
    }

    fn take(&mut self) -> (MonitorProcess, Channel) {
        self.unused.take().expect("a monitor serves one start")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some((child, channel)) = self.unused.take() {
            // Never told what to run: it leaves when its channel closes.
            drop(channel);
            let _ = child.wait();
        }
    }
}

/// Moves this process to another CPU it may use, leaving this one to the
/// child it just forked. The kernel queues a forked child on its parent's
/// CPU, and an idle CPU may not take it over before a scheduler tick (4
/// ms here), while `run`'s monitor should start the runtime at once. We
/// may use every CPU again right after: only the move was wanted.
fn make_way() {
    use rustix::thread::{sched_getaffinity, sched_getcpu, sched_setaffinity};
    let Ok(allowed) = sched_getaffinity(None) else {
        return;
    };
    let mut elsewhere = allowed;
    elsewhere.unset(sched_getcpu());
    if elsewhere.count() > 0 && sched_setaffinity(None, &elsewhere).is_ok() {
        let _ = sched_setaffinity(None, &allowed);
    }
}

/// A forked monitor's set-up, as [`Monitor::spawn`] does before exec:
/// its own session when detached, and the channel at [`CHANNEL_FD`].
fn monitor_child(channel: UnixStream, attached: bool) -> std::io::Result<()> {
    if !attached {
        rustix::process::setsid()?;
        stdio_to_null()?;
    }
    channel_at_fd(channel.as_raw_fd())?;
    if channel.as_raw_fd() == CHANNEL_FD {
        // The channel's reader takes CHANNEL_FD over: ours must not close it.
        std::mem::forget(channel);
    }
    Ok(())
}

/// Points our stdin, stdout and stderr at `/dev/null`, letting go of
/// whatever they were (the user's terminal or pipe).
pub(crate) fn stdio_to_null() -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..=2 {
        dup_onto(null.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// Puts the channel `raw` at [`CHANNEL_FD`], open across exec. Only
/// async-signal-safe calls: it also runs between fork and exec.
fn channel_at_fd(raw: i32) -> std::io::Result<()> {
    if raw != CHANNEL_FD {
        return dup_onto(raw, CHANNEL_FD);
    }
    // Already in place: only drop close-on-exec.
    // SAFETY: fcntl only changes the descriptor's flags.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes descriptor `to` a copy of `fd` (closing what `to` was); `to` is
/// ours by convention (stdio, [`CHANNEL_FD`]). Async-signal-safe.
fn dup_onto(fd: i32, to: i32) -> std::io::Result<()> {
    // SAFETY: dup2 only changes the descriptor table.
    if unsafe { libc::dup2(fd, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// How many threads this process has (from `/proc`).
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// A monitor process of ours: spawned or forked.
struct MonitorProcess(i32);

impl MonitorProcess {
    fn wait(&self) -> std::io::Result<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid out-pointer.
        loop {
            if unsafe { libc::waitpid(self.0, &mut status, 0) } >= 0 {
                return Ok(std::process::ExitStatus::from_raw(status));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// A container running with our stdio, and the starter's end of its
/// monitor's channel.
pub struct Attached {
    id: String,
    tty: bool,
    monitor: MonitorProcess,
    channel: Channel,
    /// Volume subpaths mounted for the runtime, until it has its own.
    subpaths: Subpaths,
}

impl Attached {
    /// Whether the container has a terminal (ours goes raw meanwhile).
    pub fn tty(&self) -> bool {
        self.tty
    }
}

impl Containers<'_> {
    /// Starts a created or stopped container: mounts its root filesystem,
    /// writes its bundle and hands it to `monitor`. An attached monitor
    /// uses our stdio (`run` without `-d`); else it runs in its own session
    /// and we wait only until the container has started.
    pub fn start(&self, s: &str, mut monitor: Monitor) -> Result<Started> {
        let c = self.get(s)?;
        let attached = monitor.attached;
        if self.status(&c)?.is_running() {
            if attached {
                return Err(ContainerError::Conflict(format!(
                    "container {} is already running",
                    c.name()
                )));
            }
            return Ok(Started::AlreadyRunning);
        }
        self.store.begin_write()?;
        self.mount_rootfs(&c)?;
        let mut subpaths = Subpaths::new(&self.bundle(c.id()));
        let mut request = MonitorRequest {
            id: c.id().to_owned(),
            runtime: c.config.runtime.clone(),
            stdio: Stdio3 {
                tty: c.config.tty,
                interactive: c.config.open_stdin,
                attached,
            },
            config: None,
        };
        // A runtime started early for this container waits for its
        // config at the bundle's gate: the monitor passes it on.
        let gated = monitor.launch.as_ref() == Some(&Launch::of(&request));
        match self.write_bundle(&c, &mut subpaths, gated) {
            Ok(config) => request.config = config,
            Err(e) => {
                self.after_exit(&c);
                return Err(e);
            }
        }
        let (child, mut channel) = monitor.take();
        if !channel.request(&request) {
            return Err(self.failed_start(&c, None, child, channel));
        }
        if attached {
            return Ok(Started::Attached(Attached {
                id: c.id().to_owned(),
                tty: c.config.tty,
                monitor: child,
                channel,
                subpaths,
            }));
        }
        match channel.next() {
            Some(Report::Started) => {
                // The monitor lives on, and tidies up after the exit (its
                // channel is closed when we drop it); nobody waits for it
                // but init.
                Ok(Started::Detached)
            }
            other => Err(self.failed_start(&c, other, child, channel)),
        }
    }

    /// Waits for an attached container to end, tidies up after it (so a
    /// `--rm` container is gone when this returns) and gives its exit code.
    pub fn wait_attached(&self, mut a: Attached) -> Result<i32> {
        let mut started = false;
        loop {
            match a.channel.next() {
                Some(Report::Started) => {
                    started = true;
                    a.subpaths.release();
                }
                Some(Report::Exited(code)) => {
                    // The runtime ended before it made the container: it
                    // could not start the command, and the monitor noted
                    // why (read before a `--rm` removal takes it).
                    let failed = match started {
                        true => None,
                        false => Some(self.start_failed(&self.get(&a.id)?, None)),
                    };
                    // The monitor, told below, syncs the removal's
                    // commits and then deletes what it put in the trash,
                    // while we return.
                    self.store.db().leave_sync();
                    self.cleanup(&a.id)?;
                    if a.channel.cleaned() {
                        self.store.defer_tail();
                    }
                    // It exits as soon as it reads that; no need to wait.
                    return failed.map_or(Ok(code), Err);
                }
                None => {
                    // The monitor died without a word (killed): its exit
                    // status is all there is to tell.
                    let status = a.monitor.wait().map_err(io_at("strata monitor"))?;
                    self.cleanup(&a.id)?;
                    return Ok(strata_runtime::monitor::exit_code(status));
                }
                failed @ Some(Report::Failed(_)) => {
                    let c = self.get(&a.id)?;
                    return Err(self.failed_start(&c, failed, a.monitor, a.channel));
                }
            }
        }
    }

    /// Why a start failed, once the monitor has tidied up and exited.
    fn failed_start(
        &self,
        c: &Container,
        report: Option<Report>,
        monitor: MonitorProcess,
        channel: Channel,
    ) -> ContainerError {
        // The state first: the monitor removes a `--rm` container once we
        // hang up.
        let failed = self.start_failed(c, report);
        drop(channel);
        let _ = monitor.wait();
        failed
    }

    /// Why a container did not start: the monitor's own failure, or what
    /// it noted in the state when the runtime could not start the command.
    fn start_failed(&self, c: &Container, report: Option<Report>) -> ContainerError {
        let (why, status) = match report {
            Some(Report::Failed(why)) => (why, 125),
            _ => match state::read(&self.state_file(c.id())) {
                Ok(Some(RunState {
                    error: Some(words),
                    exit_code,
                    ..
                })) if !words.is_empty() => (
                    format!("the runtime could not start it: {words}"),
                    exit_code.unwrap_or(125),
                ),
                _ => ("the runtime could not start it".to_owned(), 125),
            },
        };
        ContainerError::StartFailed {
            name: c.name().to_owned(),
            why,
            status,
        }
    }

    pub(crate) fn mount_rootfs(&self, c: &Container) -> Result<()> {
        let rootfs = self.rootfs(c.id());
        if mount::is_mounted(&rootfs).map_err(io_at(&rootfs))? {
            return Ok(());
        }
        let mounts = self.store.snapshots()?.mounts(&snapshot_key(c.id()))?;
        std::fs::create_dir_all(&rootfs).map_err(io_at(&rootfs))?;
        let mounted = if c.config.auto_remove {
            mount::mount_scratch(&mounts, &rootfs)?
        } else {
            mount::mount(&mounts, &rootfs)?
        };
        mounted.keep();
        Ok(())
    }

    /// Writes the bundle for this start, with the user and volume subpaths
    /// resolved now, inside the container's and volumes' roots; when
    /// `gated`, gives back its config instead of writing it.
    fn write_bundle(
        &self,
        c: &Container,
        subpaths: &mut Subpaths,
        gated: bool,
    ) -> Result<Option<String>> {
        let dir = self.bundle(c.id());
        let mut config = self.bundle_config(c, subpaths)?;
        strata_runtime::netfiles::add(&dir, &mut config).map_err(io_at(&dir))?;
        let spec = bundle::spec(&config)?;
        if gated {
            let bytes = bundle::bytes(&spec)?;
            return Ok(Some(String::from_utf8(bytes).expect("JSON is UTF-8")));
        }
        bundle::write(&dir, &spec)?;
        Ok(None)
    }

    /// The bundle's description for this start.
    fn bundle_config(
        &self,
        c: &Container,
        subpaths: &mut Subpaths,
    ) -> Result<bundle::BundleConfig> {
        let rootfs = self.rootfs(c.id());
        let ids = crate::user::resolve(&rootfs, &c.config.user)?;
        let mut mounts = Vec::new();
        for m in &c.config.mounts {
            let mut options = Vec::new();
            let (typ, source) = match &m.kind {
                MountKind::Volume { name, subpath, .. } => {
                    let data = self.volumes.mount(name, Caller::Container(c.id()))?;
                    let source = match subpath {
                        Some(sp) => subpaths.mount(&data, sp)?,
                        None => data,
                    };
                    options.extend(["rbind".to_owned(), "rprivate".to_owned()]);
                    ("bind", source)
                }
                MountKind::Bind {
                    source,
                    propagation,
                } => {
                    options.extend(["rbind".to_owned(), propagation.clone()]);
                    ("bind", source.clone())
                }
                MountKind::Tmpfs { options: o } => {
                    options.extend(o.iter().cloned());
                    ("tmpfs", PathBuf::from("tmpfs"))
                }
            };
            if m.readonly {
                options.push("ro".into());
            }
            mounts.push(bundle::mount(&m.target, typ, &source, &options));
        }
        Ok(bundle::BundleConfig {
            rootfs,
            readonly: c.config.read_only,
            hostname: c.config.hostname.clone(),
            host_network: c.config.network == "host",
            process: bundle::ProcessConfig {
                args: c.config.args.clone(),
                env: c.config.env.clone(),
                cwd: c.config.working_dir.clone(),
                uid: ids.uid,
                gid: ids.gid,
                additional_gids: ids.additional_gids,
                terminal: c.config.tty,
            },
            mounts,
            devices: c
                .config
                .devices
                .iter()
                .map(|d| bundle::Device::from_host(&d.host, &d.container, &d.permissions))
                .collect::<Result<_, _>>()?,
        })
    }
}
