//! What a container is doing (from its state file, with no daemon to ask),
//! `ps`, `inspect`.

use std::path::PathBuf;

use serde_json::{Value, json};
use strata_runtime::Runtime;
use strata_runtime::state::{self, RunState};
use strata_volume::filter::all_keys_match;

use crate::config::MountKind;
use crate::filter::Filter;
use crate::{Container, Containers, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Created,
    Running {
        started_at: String,
        pid: i32,
    },
    Exited {
        code: i32,
        finished_at: String,
        started_at: String,
    },
}

impl Status {
    pub fn is_running(&self) -> bool {
        matches!(self, Status::Running { .. })
    }

    /// Docker's `State.Status` word.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running { .. } => "running",
            Status::Exited { .. } => "exited",
        }
    }
}

/// A `ps` row.
#[derive(Debug, Clone)]
pub struct Summary {
    pub container: Container,
    pub status: Status,
}

/// One line of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// The exit code recorded for a container whose monitor died without
/// writing one (it was killed, or the machine stopped): Docker's choice
/// for a container whose end nobody saw.
pub const UNKNOWN_EXIT: i32 = 255;

impl Containers<'_> {
    /// The container's status. A state file saying "running" is believed
    /// only while its monitor lives; otherwise the runtime is asked, and a
    /// container it no longer runs has exited while nobody watched.
    pub fn status(&self, c: &Container) -> Result<Status> {
        self.status_from(c, state::read(&self.state_file(c.id()))?)
    }

    /// The status, with what the state file notes of the last start: its
    /// exit code (0 if none) and why it could not start ("" if it could).
    /// A failed start leaves the container Created, with both.
    pub(crate) fn status_noted(&self, c: &Container) -> Result<(Status, i32, String)> {
        let run = state::read(&self.state_file(c.id()))?;
        let (code, error) = run
            .as_ref()
            .map(|r| {
                (
                    r.exit_code.unwrap_or(0),
                    r.error.clone().unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        Ok((self.status_from(c, run)?, code, error))
    }

    /// The status a read of the state file gives.
    pub(crate) fn status_from(&self, c: &Container, s: Option<RunState>) -> Result<Status> {
        let Some(s) = s else {
            return Ok(Status::Created);
        };
        if !s.running {
            if s.pid == 0 {
                // It never ran: the runtime could not start the command.
                return Ok(Status::Created);
            }
            return Ok(exited(&s, s.exit_code.unwrap_or(UNKNOWN_EXIT)));
        }
        if state::alive(s.monitor_pid, s.monitor_start) {
            return Ok(Status::Running {
                started_at: s.started_at,
                pid: s.pid,
            });
        }
        let runtime = strata_runtime::Runc::new(&c.config.runtime);
        match runtime.state(c.id())? {
            Some(rs) if rs.status == "running" => Ok(Status::Running {
                started_at: s.started_at,
                pid: rs.pid,
            }),
            _ => Ok(exited(&s, UNKNOWN_EXIT)),
        }
    }

    /// `ps`: running containers (`all`: every container) that pass
    /// `filters`, newest first. A status filter looks at every container,
    /// as Docker's does.
    pub fn list(&self, all: bool, filters: &[Filter]) -> Result<Vec<Summary>> {
        let all = all || filters.iter().any(|f| matches!(f, Filter::Status(_)));
        let mut rows = Vec::new();
        for container in self.all()? {
            let status = self.status(&container)?;
            let wanted = all_keys_match(filters, Filter::key, |f| f.matches(&container, &status));
            if (all || status.is_running()) && wanted {
                rows.push(Summary { container, status });
            }
        }
        Ok(rows)
    }

    /// Where the container's files are, as Docker's overlay2 says it:
    /// the writable layer's folders (its init layer first among the
    /// lowers) and the mount point.
    fn graph_driver_data(&self, c: &Container) -> Result<Value> {
        let merged = self.rootfs(c.id());
        let mounts = self.store.snapshots()?.mounts(&c.row.snapshot);
        // A layer lost in a crash is `system check`'s to report.
        Ok(match mounts.as_deref().unwrap_or_default() {
            [
                strata_snapshot::Mount::Overlay {
                    lowers,
                    upper: Some(upper),
                    work: Some(work),
                },
            ] => {
                let lowers: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
                json!({
                    "LowerDir": lowers.join(":"),
                    "UpperDir": upper,
                    "WorkDir": work,
                    "MergedDir": merged,
                })
            }
            _ => json!({"MergedDir": merged}),
        })
    }

    /// `inspect`, in Docker's shape (the fields people script against).
    pub fn inspect(&self, s: &str) -> Result<Value> {
        let c = self.get(s)?;
        let (status, failed_code, error) = self.status_noted(&c)?;
        let (started, finished, code, pid) = match &status {
            Status::Created => (None, None, failed_code, 0),
            Status::Running { started_at, pid } => (Some(started_at.clone()), None, 0, *pid),
            Status::Exited {
                code,
                finished_at,
                started_at,
            } => (
                Some(started_at.clone()),
                Some(finished_at.clone()),
                *code,
                0,
            ),
        };
        let cfg = &c.config;
        let mounts: Vec<Value> = cfg.mounts.iter().map(|m| self.mount_json(m)).collect();
        let driver = self.store.recorded_driver()?.unwrap_or_default();
        Ok(json!({
            "Id": c.row.id,
            "Name": format!("/{}", c.row.name),
            "Created": c.row.created,
            "Path": cfg.args.first(),
            "Args": cfg.args.get(1..).unwrap_or_default(),
            "Image": c.row.image,
            "State": {
                "Status": status.word(),
                "Running": status.is_running(),
                "Pid": pid,
                "ExitCode": code,
                "Error": error,
                "StartedAt": started.unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "FinishedAt": finished.unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
            "LogPath": self.log_file(c.id()),
            // Nothing restarts a container here.
            "RestartCount": 0,
            "Driver": driver,
            "HostConfig": {
                "AutoRemove": cfg.auto_remove,
                "ReadonlyRootfs": cfg.read_only,
                "NetworkMode": cfg.network,
                "Runtime": cfg.runtime,
            },
            "GraphDriver": {
                "Name": driver,
                "Data": self.graph_driver_data(&c)?,
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": cfg.hostname,
                "User": cfg.user,
                "Tty": cfg.tty,
                "OpenStdin": cfg.open_stdin,
                "Env": cfg.env,
                "Cmd": cfg.args,
                "Image": cfg.image_name,
                "WorkingDir": cfg.working_dir,
                "Labels": cfg.labels,
                "StopSignal": cfg.stop_signal,
                "StopTimeout": cfg.stop_timeout,
            },
        }))
    }

    fn mount_json(&self, m: &crate::MountPoint) -> Value {
        let (name, source, driver, propagation) = match &m.kind {
            MountKind::Volume { name, subpath, .. } => {
                let (mut src, driver) = match self.volumes.get(name) {
                    Ok(v) => (v.mountpoint, v.driver),
                    Err(_) => (PathBuf::new(), String::new()),
                };
                if let Some(sp) = subpath.as_ref().filter(|_| !src.as_os_str().is_empty()) {
                    src = src.join(sp);
                }
                (Some(name.clone()), src.display().to_string(), driver, "")
            }
            MountKind::Bind {
                source,
                propagation,
            } => (
                None,
                source.display().to_string(),
                String::new(),
                propagation.as_str(),
            ),
            MountKind::Tmpfs { .. } => (None, String::new(), String::new(), ""),
        };
        let mut v = json!({
            "Type": m.type_name(),
            "Source": source,
            "Destination": m.target,
            "Mode": "",
            "RW": !m.readonly,
            "Propagation": propagation,
        });
        if let Some(name) = name {
            v["Name"] = json!(name);
            v["Driver"] = json!(driver);
            v["Mode"] = json!("z");
        }
        v
    }
}

fn exited(s: &RunState, code: i32) -> Status {
    Status::Exited {
        code,
        finished_at: s.finished_at.clone().unwrap_or_default(),
        started_at: s.started_at.clone(),
    }
}
