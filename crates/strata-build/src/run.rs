//! RUN: the command in a container on a snapshot of the state before it,
//! through the OCI runtime; output streamed as it comes. The container
//! shares the host's network unless `--network=none` (it is the only
//! network Strata gives, and builds expect one).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use oci_spec::runtime::Mount as OciMount;
use strata_dockerfile::{Command, MountKind, RunMount};
use strata_runtime::{Runc, Runtime, bundle};
use strata_store::Digest;

use crate::error::{BuildError, Result, invalid, io_at};
use crate::exec::StageRun;
use crate::{Builder, PROXY_ARGS, state};

/// One RUN, ready to start.
struct RunSpec {
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    user: String,
    host_network: bool,
    mounts: Vec<OciMount>,
    created_by: String,
}

impl Builder<'_, '_> {
    pub(crate) fn run(
        &self,
        run: &mut StageRun,
        command: &Command,
        mounts: &[RunMount],
        network: Option<&str>,
    ) -> Result<bool> {
        let args = match command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = run.shell();
                v.push(s.clone());
                v
            }
        };
        if args.is_empty() {
            return Err(invalid("RUN has no command"));
        }
        let build_args = run.run_args();
        // Docker's classic history form: `|2 A=1 B=2 /bin/sh -c ...`.
        let prefix = match build_args.len() {
            0 => String::new(),
            n => format!(
                "|{n} {} ",
                build_args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        let created_by = format!("{prefix}{}", args.join(" "));
        let host_network = match network.unwrap_or("default") {
            "default" | "host" => true,
            "none" => false,
            other => {
                return Err(invalid(format!(
                    "RUN --network={other}: strata builds know default, host and none"
                )));
            }
        };
        let (oci_mounts, mounts_key) = self.run_mounts(mounts)?;
        let key_text = format!("RUN {created_by}\nnetwork={host_network}\nmounts={mounts_key}");
        let mut env = state::env(&run.state);
        if state::env_var(&run.state, "PATH").is_none() {
            env.push(format!("PATH={}", state::DEFAULT_PATH));
        }
        env.extend(build_args.iter().map(|(k, v)| format!("{k}={v}")));
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(*p) {
                env.push(format!("{p}={v}"));
            }
        }
        let spec = RunSpec {
            args,
            env,
            cwd: run.workdir(),
            user: state::get_str(&run.state, "User"),
            host_network,
            mounts: oci_mounts,
            created_by: created_by.clone(),
        };
        self.layer(run, &key_text, &created_by, |rootfs| {
            self.run_in(rootfs, &spec)
        })
    }

    /// The OCI mounts for `RUN --mount`s, and what of them keys the cache.
    fn run_mounts(&self, mounts: &[RunMount]) -> Result<(Vec<OciMount>, String)> {
        let mut out = Vec::new();
        let mut key = String::new();
        for m in mounts {
            let ro = |mut o: Vec<String>| {
                if m.readonly {
                    o.push("ro".into());
                }
                o
            };
            match m.kind {
                MountKind::Cache => {
                    let id = m.id.clone().unwrap_or_else(|| m.target.clone());
                    let dir = self.cache_mount_dir(&id, m)?;
                    out.push(bundle::mount(
                        &m.target,
                        "bind",
                        &dir,
                        &ro(vec!["rbind".into()]),
                    ));
                    // The cache's content never keys a step (as Docker).
                    key.push_str(&format!("cache:{id}:{};", m.target));
                }
                MountKind::Tmpfs => {
                    out.push(bundle::mount(
                        &m.target,
                        "tmpfs",
                        Path::new("tmpfs"),
                        &["nosuid".into(), "nodev".into()],
                    ));
                    key.push_str(&format!("tmpfs:{};", m.target));
                }
                MountKind::Bind if m.from.is_none() => {
                    let source = m.source.clone().unwrap_or_else(|| ".".into());
                    let tree = &self.context.tree;
                    let sources = tree.resolve(std::slice::from_ref(&source))?;
                    let sum = tree.checksum(&sources, &mut self.context.stat_cache.borrow_mut())?;
                    let host = self.context_path(&source)?;
                    // Read-only: the context is never a build's to change.
                    let o = ["rbind".to_owned(), "ro".to_owned()];
                    out.push(bundle::mount(&m.target, "bind", &host, &o));
                    key.push_str(&format!("bind:{source}:{sum}:{};", m.target));
                }
                _ => {
                    return Err(invalid(format!(
                        "RUN --mount type {:?}{}: strata builds support type=cache, type=tmpfs and type=bind from the context",
                        m.kind,
                        m.from
                            .as_deref()
                            .map(|f| format!(" from={f}"))
                            .unwrap_or_default()
                    )));
                }
            }
        }
        Ok((out, key))
    }

    /// The host folder behind a cache mount (made on first use).
    fn cache_mount_dir(&self, id: &str, m: &RunMount) -> Result<PathBuf> {
        let dir = self
            .store
            .root()
            .join("builder/cache-mounts")
            .join(Digest::of(id.as_bytes()).hex());
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
            use std::os::unix::fs::PermissionsExt;
            let mode = m.mode.unwrap_or(0o755);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .map_err(io_at(&dir))?;
            std::os::unix::fs::chown(&dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
                .map_err(io_at(&dir))?;
        }
        Ok(dir)
    }

    /// A host path for a context path, resolved inside the context.
    fn context_path(&self, rel: &str) -> Result<PathBuf> {
        use rustix::fs::OFlags;
        use std::os::fd::{AsFd, AsRawFd};
        let root =
            strata_archive::fsops::open_dir(&self.context.dir).map_err(io_at(&self.context.dir))?;
        let fd = strata_archive::fsops::open_in_root(root.as_fd(), rel.as_bytes(), OFlags::PATH)
            .map_err(io_at(self.context.dir.join(rel)))?;
        // The runtime mounts it through our fd, so a symlink swapped in
        // later cannot redirect it; the fd lives as long as the workspace.
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ));
        self.work.hold(fd);
        Ok(path)
    }

    /// Runs the command in the root filesystem mounted at `rootfs`.
    fn run_in(&self, rootfs: &Path, spec: &RunSpec) -> Result<()> {
        let ids = strata_container::user::resolve(rootfs, &spec.user)?;
        let id = format!("strata-build-{}", strata_store::fsutil::random_hex(8));
        let dir = self.work.fresh("bundle")?;
        let mut config = bundle::BundleConfig {
            rootfs: rootfs.to_owned(),
            readonly: false,
            hostname: id[13..].to_owned(),
            host_network: spec.host_network,
            process: bundle::ProcessConfig {
                args: spec.args.clone(),
                env: spec.env.clone(),
                cwd: spec.cwd.clone(),
                uid: ids.uid,
                gid: ids.gid,
                additional_gids: ids.additional_gids,
                terminal: false,
            },
            mounts: spec.mounts.clone(),
            devices: Vec::new(),
        };
        // As Docker's builder: the host's resolver, since RUN shares its
        // network (apt-get update needs it).
        strata_runtime::netfiles::add(&dir, &mut config).map_err(io_at(&dir))?;
        bundle::write(&dir, &bundle::spec(&config)?)?;
        let runtime = Runc::new(&self.opts.runtime);
        self.work.note_container(&self.opts.runtime, &id)?;
        let mut cmd = runtime.run_command(&dir, &id, &dir.join("pid"));
        let (mut reader, writer) = std::io::pipe().map_err(io_at("pipe"))?;
        let writer2 = writer.try_clone().map_err(io_at("pipe"))?;
        cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
        let mut child = cmd.spawn().map_err(io_at(&self.opts.runtime))?;
        // Our copies of the pipe's write end go, so the read ends with the
        // container.
        drop(cmd);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.out.borrow_mut().run_output(&buf[..n]),
            }
        }
        let status = child.wait().map_err(io_at(&self.opts.runtime))?;
        match strata_runtime::monitor::exit_code(status) {
            0 => Ok(()),
            code => Err(BuildError::RunFailed {
                command: spec.created_by.clone(),
                code,
            }),
        }
    }
}
