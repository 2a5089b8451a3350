//! The container side of the monitor: what `strata` does when re-executed
//! to watch a container. It writes the bundle for this start (user and
//! volume subpaths resolved now, inside the container's and volumes'
//! roots), runs the container through the runtime, then unmounts its root
//! filesystem, and removes the container if it was made with `--rm`.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use strata_archive::fsops;
use strata_runtime::monitor::{Plan, Stdio3};
use strata_runtime::{Runc, bundle};

use strata_volume::Caller;

use crate::config::MountKind;
use crate::lifecycle::READY_FD;
use crate::{Container, Containers, Result, io_at};

impl Containers<'_> {
    /// Runs the container `id` to its end and returns its exit code.
    /// `attached`: our stdio is the user's.
    pub fn monitor(&self, id: &str, attached: bool) -> Result<i32> {
        let mut ready = (!attached).then(ready_file);
        let c = self.get(id)?;
        // Held open until the runtime has mounted them.
        let mut held = Vec::new();
        let spec = self.bundle_config(&c, &mut held);
        let spec = match spec.and_then(|cfg| Ok(bundle::spec(&cfg)?)) {
            Ok(s) => s,
            Err(e) => {
                if let Some(r) = ready.as_mut() {
                    let _ = writeln!(r, "error: {e}");
                }
                self.after_exit(&c);
                return Err(e);
            }
        };
        let dir = self.bundle(c.id());
        bundle::write(&dir, &spec)?;
        let runtime = Runc::new(&c.config.runtime);
        let code = strata_runtime::monitor::run(Plan {
            runtime: &runtime,
            id: c.id(),
            bundle: &dir,
            log: &self.log_file(c.id()),
            state: &self.state_file(c.id()),
            stdio: Stdio3 {
                tty: c.config.tty,
                interactive: c.config.open_stdin,
                attached,
            },
            ready,
        });
        drop(held);
        self.after_exit(&c);
        if c.config.auto_remove {
            self.store.begin_write()?;
            self.forget(&c, true)?;
        }
        Ok(code?)
    }

    fn after_exit(&self, c: &Container) {
        let rootfs = self.rootfs(c.id());
        if let Err(e) = strata_snapshot::mount::unmount(&rootfs) {
            tracing::warn!("unmounting {}: {e}", rootfs.display());
        }
        if let Err(e) = self.volumes.release(c.id()) {
            tracing::warn!("unmounting the volumes of {}: {e}", c.name());
        }
    }

    /// The bundle's description for this start.
    fn bundle_config(
        &self,
        c: &Container,
        held: &mut Vec<OwnedFd>,
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
                        Some(sp) => {
                            let fd = open_subpath(&data, sp).map_err(io_at(data.join(sp)))?;
                            let path = PathBuf::from(format!(
                                "/proc/{}/fd/{}",
                                std::process::id(),
                                fd.as_raw_fd()
                            ));
                            held.push(fd);
                            path
                        }
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

/// The report pipe `start` gave us, if it did.
fn ready_file() -> File {
    // SAFETY: `start` put the pipe at READY_FD for us; we own it from here.
    let file = unsafe { File::from_raw_fd(READY_FD) };
    // Not for the runtime or the container: while they hold it open, the
    // `strata` waiting on the other end would never see it close.
    let _ = rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::CLOEXEC);
    file
}

/// Opens `sub` inside the volume folder `data`, making the directories
/// that are missing (going beyond Docker, which wants them to exist). Every
/// step stays inside the volume: a symlink a container planted there
/// resolves within it.
fn open_subpath(data: &Path, sub: &str) -> std::io::Result<OwnedFd> {
    let root = fsops::open_dir(data)?;
    let mut walked = String::new();
    for part in sub.split('/').filter(|p| !p.is_empty() && *p != ".") {
        walked.push('/');
        walked.push_str(part);
        match fsops::open_in_root(
            root.as_fd(),
            walked.as_bytes(),
            OFlags::PATH | OFlags::DIRECTORY,
        ) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent_path = walked.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                let parent = fsops::open_in_root(
                    root.as_fd(),
                    parent_path.as_bytes(),
                    OFlags::PATH | OFlags::DIRECTORY,
                )?;
                rustix::fs::mkdirat(&parent, part, Mode::from_raw_mode(0o755))?;
            }
            Err(e) => return Err(e),
        }
    }
    fsops::open_in_root(
        root.as_fd(),
        sub.as_bytes(),
        OFlags::PATH | OFlags::DIRECTORY,
    )
}
