//! start, stop, kill, wait, exec, rm, rename, prune.

use std::process::Stdio;
use std::time::{Duration, Instant};

use strata_runtime::{Runc, Runtime, bundle};
use strata_snapshot::SnapshotError;
use strata_store::meta::containers as meta;

use crate::query::Status;
use crate::{Container, ContainerError, Containers, Result, io_at, short, snapshot_key};

impl Containers<'_> {
    /// Sends the stop signal, then SIGKILL after the timeout.
    pub fn stop(&self, s: &str, timeout: Option<u64>) -> Result<Container> {
        let c = self.get(s)?;
        if !self.status(&c)?.is_running() {
            return Ok(c);
        }
        let runtime = Runc::new(&c.config.runtime);
        let timeout = Duration::from_secs(timeout.unwrap_or(c.config.stop_timeout));
        let signal = c.config.stop_signal.trim_start_matches("SIG").to_owned();
        if runtime.kill(c.id(), &signal).is_ok() && self.wait_exit(&c, Some(timeout))?.is_some() {
            return Ok(c);
        }
        let _ = runtime.kill(c.id(), "KILL");
        self.wait_exit(&c, Some(Duration::from_secs(30)))?;
        Ok(c)
    }

    /// Sends `signal` to a running container.
    pub fn kill(&self, s: &str, signal: &str) -> Result<Container> {
        let c = self.get(s)?;
        if !self.status(&c)?.is_running() {
            return Err(ContainerError::Conflict(format!(
                "container {} is not running",
                c.name()
            )));
        }
        Runc::new(&c.config.runtime).kill(c.id(), signal.trim_start_matches("SIG"))?;
        Ok(c)
    }

    /// Waits until the container has exited and its monitor has finished
    /// (so its mounts are gone); returns the exit code, or None on timeout.
    pub fn wait_exit(&self, c: &Container, timeout: Option<Duration>) -> Result<Option<i32>> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let state = strata_runtime::state::read(&self.state_file(c.id()))?;
            let monitor_done = state
                .as_ref()
                .is_none_or(|s| !strata_runtime::state::alive(s.monitor_pid, s.monitor_start));
            if let Status::Exited { code, .. } = self.status_from(c, state)?
                && monitor_done
            {
                return Ok(Some(code));
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Ok(None);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// `wait`: blocks until the container exits; its exit code. One that
    /// never ran is not running: its code at once, as Docker's (0, or the
    /// status of its failed start).
    pub fn wait(&self, s: &str) -> Result<i32> {
        let c = self.get(s)?;
        if let (Status::Created, code, _) = self.status_noted(&c)? {
            return Ok(code);
        }
        Ok(self.wait_exit(&c, None)?.expect("no timeout"))
    }

    /// `rm`: removes a stopped container (`force`: kills it first) and its
    /// writable layer; `volumes`: its anonymous volumes too.
    pub fn remove(&self, s: &str, force: bool, volumes: bool) -> Result<Container> {
        let c = self.get(s)?;
        if self.status(&c)?.is_running() {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "you cannot remove a running container {}; stop it first (strata stop {}) or use --force",
                    short(c.id()),
                    c.name()
                )));
            }
            let _ = Runc::new(&c.config.runtime).kill(c.id(), "KILL");
            self.wait_exit(&c, Some(Duration::from_secs(30)))?;
        }
        self.store.begin_write()?;
        self.forget(&c, volumes)?;
        Ok(c)
    }

    /// Record first, then files: a crash in between leaves only what
    /// [`Containers::check`] removes. Its commits (the record, the
    /// snapshot, anonymous volumes) become durable together.
    pub(crate) fn forget(&self, c: &Container, volumes: bool) -> Result<()> {
        self.store.db().batch(|| self.forget_now(c, volumes))
    }

    fn forget_now(&self, c: &Container, volumes: bool) -> Result<()> {
        let deleted = self.store.db().write(|tx| {
            let there = meta::by_id(tx, c.id())?.is_some();
            meta::delete(tx, c.id())?;
            Ok(there)
        })?;
        if !deleted {
            // Removed meanwhile by someone else (its monitor, for --rm).
            return Ok(());
        }
        // `run` removes the runtime's record of a container when it ends;
        // one is left only if the monitor died while it ran.
        let state = strata_runtime::state::read(&self.state_file(c.id()))
            .ok()
            .flatten();
        if state.is_some_and(|s| s.running) {
            let _ = Runc::new(&c.config.runtime).delete(c.id(), true);
        }
        self.remove_folder(c.id())?;
        // Held only if its monitor died before it could let them go.
        self.volumes.release(c.id())?;
        match self.store.snapshots()?.remove(&snapshot_key(c.id())) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if volumes {
            for m in &c.config.mounts {
                if let crate::MountKind::Volume {
                    name,
                    anonymous: true,
                    ..
                } = &m.kind
                {
                    // Still used by a container that took it with
                    // --volumes-from: it stays, as in Docker.
                    match self.volumes.remove(name) {
                        Ok(()) | Err(strata_volume::VolumeError::InUse { .. }) => {}
                        Err(strata_volume::VolumeError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    pub fn rename(&self, s: &str, new: &str) -> Result<()> {
        let c = self.get(s)?;
        crate::names::validate(new)?;
        if let Some(other) = self.store.db().read(|tx| meta::by_name(tx, new))? {
            return Err(ContainerError::Conflict(format!(
                "the container name \"{new}\" is already in use by container {}",
                short(&other.id)
            )));
        }
        self.store.db().write(|tx| meta::rename(tx, c.id(), new))?;
        Ok(())
    }

    /// `container prune`: removes every container not running.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for c in self.all()? {
            if !self.status(&c)?.is_running() {
                self.store.begin_write()?;
                self.forget(&c, false)?;
                removed.push(c.row.id);
            }
        }
        Ok(removed)
    }

    /// The container `s`, if it runs; else a conflict, `refusal(name)`.
    fn get_running(&self, s: &str, refusal: impl FnOnce(&str) -> String) -> Result<Container> {
        let c = self.get(s)?;
        if !self.status(&c)?.is_running() {
            return Err(ContainerError::Conflict(refusal(c.name())));
        }
        Ok(c)
    }

    /// `attach`: the socket a running container's monitor serves its
    /// stdio on (see [`strata_runtime::attach`]).
    pub fn attach_socket(&self, s: &str) -> Result<(Container, std::path::PathBuf)> {
        let c = self.get_running(s, |name| {
            format!("you cannot attach to a stopped container {name}; start it first (strata start -a {name})")
        })?;
        let socket = self.bundle(c.id()).join(strata_runtime::attach::SOCKET);
        if !socket.exists() {
            return Err(ContainerError::Conflict(format!(
                "container {} was started by a strata without attach; restart it to attach",
                c.name()
            )));
        }
        Ok((c, socket))
    }

    /// `exec`: runs another process in a running container, with our
    /// stdio; returns its exit code.
    pub fn exec(&self, s: &str, opts: &ExecOptions) -> Result<i32> {
        let c = self.get_running(s, |name| {
            format!("container {name} is not running; start it first (strata start {name})")
        })?;
        let ids = crate::user::resolve(
            &self.rootfs(c.id()),
            opts.user.as_deref().unwrap_or(&c.config.user),
        )?;
        let mut env = c.config.env.clone();
        env.extend(opts.env.iter().cloned());
        let process = bundle::process(&bundle::ProcessConfig {
            args: opts.command.clone(),
            env,
            cwd: opts.workdir.clone().unwrap_or(c.config.working_dir.clone()),
            uid: ids.uid,
            gid: ids.gid,
            additional_gids: ids.additional_gids,
            terminal: opts.tty,
        })?;
        let path = self
            .bundle(c.id())
            .join(format!("exec-{}.json", strata_store::fsutil::random_hex(8)));
        let bytes = serde_json::to_vec(&process).expect("processes serialize");
        std::fs::write(&path, bytes).map_err(io_at(&path))?;
        let runtime = Runc::new(&c.config.runtime);
        let mut cmd = runtime.exec_command(c.id(), &path, opts.detach);
        if !opts.interactive {
            cmd.stdin(Stdio::null());
        }
        let status = cmd.status().map_err(io_at(runtime.name()));
        let _ = std::fs::remove_file(&path);
        Ok(strata_runtime::monitor::exit_code(status?))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
}
