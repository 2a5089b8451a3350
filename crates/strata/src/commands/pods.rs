//! Pods on Strata's own containers: the node agent's runtime
//! ([`PodRuntime`]) over strata-container, and the API server's hook for
//! `kubectl logs`.
//!
//! Every call opens the store afresh: a `Store` handle belongs to one
//! thread, and one that has written holds the store's lock shared for as
//! long as it lives, which would keep `strata rmi` and `prune` waiting for
//! as long as `strata serve` runs.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_container::{ContainerError, Containers, CreateOptions, Status};
use strata_image::ImageError;
use strata_kube::controllers::kubelet::{
    self, BindMount, ContainerSpec, ContainerState, PodRuntime, RuntimeContainer, RuntimeError,
    Signal,
};
use strata_kube::registry::Registry;
use strata_kube::server::PodLogs;
use strata_mountspec::{MountSpec, Propagation, Source};

use crate::settings::Settings;

/// How long reading an exited container's state waits for its monitor to
/// finish (it unmounts the container's root filesystem after the exit).
const MONITOR_SETTLE: Duration = Duration::from_secs(2);
/// How long a removal waits for it.
const MONITOR_SETTLE_BEFORE_REMOVAL: Duration = Duration::from_secs(10);

/// Pods' containers in the store `settings` name.
pub struct StrataPods {
    settings: Settings,
    /// `--config`, passed on to the containers' monitors.
    config: Option<PathBuf>,
}

impl StrataPods {
    pub fn new(settings: Settings, config: Option<PathBuf>) -> StrataPods {
        StrataPods { settings, config }
    }

    fn open(&self) -> Result<strata_image::Store, RuntimeError> {
        crate::open_store(&self.settings).map_err(|e| RuntimeError(crate::message(&e)))
    }

    fn with_containers<T>(
        &self,
        work: impl FnOnce(&Containers) -> strata_container::Result<T>,
    ) -> Result<T, RuntimeError> {
        let store = self.open()?;
        let containers = Containers::new(&store, super::volume::service(&store));
        work(&containers).map_err(|e| RuntimeError(e.to_string()))
    }

    fn create_options(&self, spec: &ContainerSpec) -> CreateOptions {
        // A pod's command replaces the image's entrypoint and drops its
        // CMD, which an empty entrypoint does; its args replace the CMD.
        let (entrypoint, command) = if spec.command.is_empty() {
            (None, spec.args.clone())
        } else {
            (
                Some(String::new()),
                [spec.command.as_slice(), &spec.args].concat(),
            )
        };
        CreateOptions {
            id: None,
            image: spec.image.clone(),
            name: Some(spec.name.clone()),
            command,
            entrypoint,
            env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            workdir: spec.working_dir.clone(),
            network: Some(if spec.host_network { "host" } else { "none" }.into()),
            hostname: spec.hostname.clone(),
            mounts: spec.mounts.iter().map(bind).collect(),
            labels: spec.labels.clone(),
            runtime: self.settings.runtime.clone(),
            ..CreateOptions::default()
        }
    }
}

fn bind(mount: &BindMount) -> MountSpec {
    MountSpec {
        source: Source::Bind {
            path: mount.source.clone(),
            propagation: Propagation::Rprivate,
            create_source: false,
        },
        target: mount.target.clone(),
        readonly: mount.readonly,
        relabel: None,
    }
}

impl PodRuntime for StrataPods {
    fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        match self.open()?.resolve(image) {
            Ok((id, _)) => Ok(Some(id.to_string())),
            Err(ImageError::NotFound(_)) => Ok(None),
            Err(e) => Err(RuntimeError(e.to_string())),
        }
    }

    fn start(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let monitor = crate::monitor_command(self.settings.root.clone(), self.config.clone());
        self.with_containers(|containers| {
            let id = containers
                .create(&self.create_options(spec))?
                .id()
                .to_string();
            let started = strata_container::Monitor::spawn(monitor(), false)
                .and_then(|m| containers.start(&id, m));
            if let Err(e) = started {
                let _ = containers.remove(&id, true, false);
                return Err(e);
            }
            Ok(id)
        })
    }

    fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.with_containers(|containers| {
            let c = match containers.get(id) {
                Ok(c) => c,
                Err(ContainerError::NotFound(_)) => return Ok(ContainerState::Missing),
                Err(e) => return Err(e),
            };
            Ok(match containers.status(&c)? {
                Status::Created => ContainerState::Missing,
                Status::Running { started_at, .. } => ContainerState::Running { started_at },
                Status::Exited {
                    code,
                    started_at,
                    finished_at,
                } => {
                    settle(containers, id, MONITOR_SETTLE);
                    ContainerState::Exited {
                        code,
                        started_at,
                        finished_at,
                    }
                }
            })
        })
    }

    fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        self.with_containers(|containers| {
            let c = match containers.get(id) {
                Ok(c) => c,
                Err(ContainerError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            let name = match signal {
                Signal::Stop => c.config.stop_signal.clone(),
                Signal::Kill => "KILL".to_string(),
            };
            match containers.kill(id, &name) {
                // Not running (any more): nothing to stop.
                Ok(_) | Err(ContainerError::Conflict(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.with_containers(|containers| {
            let c = match containers.get(id) {
                Ok(c) => c,
                Err(ContainerError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            if !containers.status(&c)?.is_running() {
                settle(containers, id, MONITOR_SETTLE_BEFORE_REMOVAL);
            }
            match containers.remove(id, true, false) {
                Ok(_) | Err(ContainerError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn logs(&self, id: &str) -> Result<String, RuntimeError> {
        self.with_containers(|containers| {
            containers.get(id)?;
            let text = RefCell::new(Vec::new());
            let path = containers.log_file(id);
            strata_runtime::logs::read(
                &path,
                &strata_runtime::logs::ReadOptions::default(),
                &mut Shared(&text),
                &mut Shared(&text),
                &|| true,
            )
            .map_err(|source| ContainerError::Io { path, source })?;
            Ok(String::from_utf8_lossy(&text.into_inner()).into_owned())
        })
    }

    fn list(&self, key: &str) -> Result<Vec<RuntimeContainer>, RuntimeError> {
        self.with_containers(|containers| {
            Ok(containers
                .all()?
                .into_iter()
                .filter(|c| c.config.labels.contains_key(key))
                .map(|c| RuntimeContainer {
                    id: c.row.id,
                    labels: c.config.labels,
                })
                .collect())
        })
    }
}

/// Both of a log's streams into one buffer, in the order they were written
/// (as `kubectl logs` shows them).
struct Shared<'a>(&'a RefCell<Vec<u8>>);

impl Write for Shared<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits (at most `limit`) until the monitor of an exited container has
/// finished, reaping it if this process started it: strata-container never
/// waits for the monitors it starts, and for as long as `strata serve` runs
/// they would linger as zombies, which still count as alive.
fn settle(containers: &Containers, id: &str, limit: Duration) {
    // `<root>/containers/<id>/state.json`, beside the log, names the monitor.
    let path = containers.log_file(id).with_file_name("state.json");
    let Ok(Some(state)) = strata_runtime::state::read(&path) else {
        return;
    };
    let started = Instant::now();
    while strata_runtime::state::alive(state.monitor_pid, state.monitor_start) {
        if let Some(pid) = rustix::process::Pid::from_raw(state.monitor_pid) {
            // Not our child (a monitor from before a restart): init reaps it.
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
        if started.elapsed() >= limit {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The API server's `log` subresource, answered from `pods`' containers.
pub fn logs_hook(registry: Registry, pods: StrataPods) -> PodLogs {
    Arc::new(move |namespace, pod, container| {
        kubelet::pod_logs(&registry, &pods, namespace, pod, container)
    })
}
