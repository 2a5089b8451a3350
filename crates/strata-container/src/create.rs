//! `create`: a record, a writable snapshot, and the volumes it needs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use strata_mountspec::{MountSpec, Source};
use strata_snapshot::{Options, mount};
use strata_store::meta::containers::{self as meta, ContainerRow};
use strata_volume::{CreateRequest, copy_up};

use crate::config::{ContainerConfig, DeviceMapping, MountKind, MountPoint};
use crate::{
    Container, ContainerError, Containers, Result, SNAPSHOT_OWNER, io_at, names, snapshot_key,
};

/// What `create` and `run` were asked for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The ID to give it (`run`'s, chosen before its runtime started
    /// early); else a new one.
    pub id: Option<String>,
    pub image: String,
    pub name: Option<String>,
    /// Arguments after the image: they replace the image's CMD.
    pub command: Vec<String>,
    /// `--entrypoint`: replaces the image's (and then its CMD too); "" clears.
    pub entrypoint: Option<String>,
    /// `-e` and `--env-file` lines, in order.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub read_only: bool,
    pub network: Option<String>,
    pub hostname: Option<String>,
    /// `-v`, `--mount` and `--tmpfs`, parsed.
    pub mounts: Vec<MountSpec>,
    /// `--device`, parsed.
    pub devices: Vec<strata_mountspec::DeviceSpec>,
    /// `--volumes-from CTR[:ro|:rw]`.
    pub volumes_from: Vec<String>,
    pub volume_driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_timeout: Option<u64>,
    pub auto_remove: bool,
    pub runtime: PathBuf,
}

/// What the image's config says about running it.
#[derive(Debug, Default)]
struct ImageDefaults {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    workdir: String,
    user: String,
    volumes: Vec<String>,
    stop_signal: Option<String>,
    labels: BTreeMap<String, String>,
}

impl ImageDefaults {
    fn from_config(config: Option<&Value>) -> ImageDefaults {
        let Some(c) = config else {
            return ImageDefaults::default();
        };
        let strings = |key: &str| -> Vec<String> {
            c.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |key: &str| c.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        ImageDefaults {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            env: strings("Env"),
            workdir: text("WorkingDir"),
            user: text("User"),
            volumes: c
                .get("Volumes")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            stop_signal: c
                .get("StopSignal")
                .and_then(Value::as_str)
                .map(String::from),
            labels: c
                .get("Labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// `--device` mappings, each checked to be a device node now (as Docker
/// checks at create) and looked up again at every start.
fn devices(opts: &CreateOptions) -> Result<Vec<DeviceMapping>> {
    opts.devices
        .iter()
        .map(|d| {
            let host = PathBuf::from(&d.host);
            strata_runtime::bundle::Device::from_host(&host, &d.container, &d.permissions)?;
            Ok(DeviceMapping {
                host,
                container: d.container.clone(),
                permissions: d.permissions.clone(),
            })
        })
        .collect()
}

/// Docker's: the host's name on the host's network, else the short ID.
fn default_hostname(network: &str, id: &str) -> String {
    match network {
        "host" => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        _ => id[..12].to_owned(),
    }
}

impl Containers<'_> {
    pub fn create(&self, opts: &CreateOptions) -> Result<Container> {
        self.store.begin_write()?;
        let (image_id, _) = self.store.resolve(&opts.image)?;
        let (raw, _) = self.store.config(&image_id)?;
        let image = ImageDefaults::from_config(raw.get("config"));
        let id = opts
            .id
            .clone()
            .unwrap_or_else(|| strata_store::fsutil::random_hex(32));
        let name = self.choose_name(opts.name.as_deref())?;
        let args = command(opts, &image)?;
        let network = match opts.network.as_deref().unwrap_or("none") {
            n @ ("none" | "host") => n.to_owned(),
            other => {
                return Err(ContainerError::Invalid(format!(
                    "network '{other}' is not available; use --network none or --network host"
                )));
            }
        };
        strata_mountspec::check_unique_targets(&opts.mounts)
            .map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let mut labels = image.labels.clone();
        labels.extend(opts.labels.clone());
        let mut config = ContainerConfig {
            image_name: opts.image.clone(),
            args,
            env: environment(opts, &image, &id),
            working_dir: opts.workdir.clone().filter(|w| !w.is_empty()).unwrap_or(
                if image.workdir.is_empty() {
                    "/".into()
                } else {
                    image.workdir.clone()
                },
            ),
            user: opts.user.clone().unwrap_or(image.user.clone()),
            tty: opts.tty,
            open_stdin: opts.interactive,
            hostname: opts
                .hostname
                .clone()
                .unwrap_or_else(|| default_hostname(&network, &id)),
            network,
            read_only: opts.read_only,
            mounts: Vec::new(),
            devices: devices(opts)?,
            labels,
            stop_signal: image
                .stop_signal
                .clone()
                .unwrap_or_else(|| "SIGTERM".into()),
            stop_timeout: opts.stop_timeout.unwrap_or(10),
            auto_remove: opts.auto_remove,
            runtime: opts.runtime.clone(),
        };
        if !config.working_dir.starts_with('/') {
            return Err(ContainerError::Invalid(format!(
                "the working directory '{}' is invalid; it needs to be an absolute path",
                config.working_dir
            )));
        }
        let mut made = Vec::new();
        // Its volumes, its snapshot and its record: durable together.
        let result = self.store.db().batch(|| {
            let mounts = self.plan_mounts(opts, &image, &mut made)?;
            config.mounts = mounts;
            self.materialize(&id, &name, &image_id, &config)
        });
        match result {
            Ok(c) => Ok(c),
            Err(e) => {
                // Anonymous volumes made for this container go with it.
                for v in made {
                    let _ = self.volumes.remove(&v);
                }
                Err(e)
            }
        }
    }

    fn choose_name(&self, wanted: Option<&str>) -> Result<String> {
        let db = self.store.db();
        let taken = |n: &str| db.read(|tx| meta::by_name(tx, n)).ok().flatten().is_some();
        match wanted {
            Some(n) => {
                let n = n.trim_start_matches('/');
                names::validate(n)?;
                if let Some(other) = db.read(|tx| meta::by_name(tx, n))? {
                    return Err(ContainerError::Conflict(format!(
                        "the container name \"{n}\" is already in use by container {}; remove or rename that container to reuse the name",
                        crate::short(&other.id)
                    )));
                }
                Ok(n.to_owned())
            }
            None => Ok(names::random(taken)),
        }
    }

    /// Turns the mount specs, `--volumes-from` and the image's VOLUMEs
    /// into mount points, creating the volumes they name. Anonymous
    /// volumes made are added to `made`.
    fn plan_mounts(
        &self,
        opts: &CreateOptions,
        image: &ImageDefaults,
        made: &mut Vec<String>,
    ) -> Result<Vec<MountPoint>> {
        let mut points = Vec::new();
        for spec in &opts.mounts {
            points.push(self.mount_point(spec, opts.volume_driver.as_deref(), made)?);
        }
        for from in &opts.volumes_from {
            let (ctr, mode) = match from.rsplit_once(':') {
                Some((c, m @ ("ro" | "rw"))) => (c, Some(m == "ro")),
                _ => (from.as_str(), None),
            };
            let other = self.get(ctr)?;
            for m in other.config.mounts {
                if matches!(m.kind, MountKind::Tmpfs { .. })
                    || points.iter().any(|p: &MountPoint| p.target == m.target)
                {
                    continue;
                }
                points.push(MountPoint {
                    readonly: mode.unwrap_or(m.readonly),
                    ..m
                });
            }
        }
        for target in &image.volumes {
            let target = clean_target(target);
            if points.iter().any(|p| p.target == target) {
                continue;
            }
            let v = self.volumes.create(&CreateRequest {
                driver: opts.volume_driver.clone(),
                ..CreateRequest::default()
            })?;
            made.push(v.name.clone());
            points.push(MountPoint {
                target,
                readonly: false,
                kind: MountKind::Volume {
                    name: v.name,
                    anonymous: true,
                    subpath: None,
                    nocopy: false,
                },
            });
        }
        Ok(points)
    }

    fn mount_point(
        &self,
        spec: &MountSpec,
        default_driver: Option<&str>,
        made: &mut Vec<String>,
    ) -> Result<MountPoint> {
        let kind = match &spec.source {
            Source::Volume {
                name,
                driver,
                labels,
                options,
                nocopy,
                subpath,
            } => {
                let v = self.volumes.create(&CreateRequest {
                    name: name.clone(),
                    driver: driver.clone().or(default_driver.map(String::from)),
                    labels: labels.clone(),
                    options: options.clone(),
                })?;
                if name.is_none() {
                    made.push(v.name.clone());
                }
                MountKind::Volume {
                    name: v.name,
                    anonymous: name.is_none(),
                    subpath: subpath.clone(),
                    nocopy: *nocopy,
                }
            }
            Source::Bind {
                path,
                propagation,
                create_source,
            } => {
                if *create_source && std::fs::symlink_metadata(path).is_err() {
                    std::fs::create_dir_all(path).map_err(io_at(path))?;
                }
                MountKind::Bind {
                    source: path.clone(),
                    propagation: propagation.to_string(),
                }
            }
            Source::Tmpfs {
                size,
                mode,
                options,
            } => {
                // Docker's defaults; the user's options come after, so
                // `exec` (or `suid`, `dev`) given there undoes one.
                let mut o = vec!["noexec".to_owned(), "nosuid".to_owned(), "nodev".to_owned()];
                o.push(format!("mode={:o}", mode.unwrap_or(0o1777)));
                if let Some(s) = size {
                    o.push(format!("size={s}"));
                }
                o.extend(
                    options
                        .iter()
                        .filter(|x| !x.starts_with("size=") && !x.starts_with("mode="))
                        .cloned(),
                );
                MountKind::Tmpfs { options: o }
            }
        };
        Ok(MountPoint {
            target: spec.target.clone(),
            readonly: spec.readonly,
            kind,
        })
    }

    /// Makes the writable snapshot and folder, fills empty volumes from the
    /// image, then records the container.
    fn materialize(
        &self,
        id: &str,
        name: &str,
        image_id: &strata_store::Digest,
        config: &ContainerConfig,
    ) -> Result<Container> {
        let top = self
            .store
            .db()
            .read(|tx| strata_store::meta::images::image_layers(tx, image_id))?
            .pop()
            .map(|l| l.chain_id);
        let key = snapshot_key(id);
        let snapshots = self.store.snapshots()?;
        let labels = [(
            strata_image::unpack::LAYER_LABEL.to_owned(),
            SNAPSHOT_OWNER.to_owned(),
        )]
        .into();
        let prepared = self.store.prepare_on_init_layer(
            &key,
            top.as_ref(),
            &Options {
                labels,
                transient: false,
            },
            &crate::mount_points::make,
        )?;
        let undo = |e: ContainerError| {
            let _ = self.remove_folder(id);
            let _ = snapshots.remove(&key);
            if let Some(init) = &prepared.made_init {
                // Unless another container stands on it by now.
                let _ = snapshots.remove_unused(init);
            }
            e
        };
        let rootfs = self.rootfs(id);
        std::fs::create_dir_all(&rootfs).map_err(|e| undo(io_at(&rootfs)(e)))?;
        self.prepare_rootfs(config, &prepared.mounts, &rootfs)
            .map_err(undo)?;
        let row = ContainerRow {
            id: id.to_owned(),
            name: name.to_owned(),
            image: image_id.to_string(),
            snapshot: key.clone(),
            config: serde_json::to_string(config).expect("configs serialize"),
            created: strata_store::meta::now(),
        };
        let volumes: Vec<String> = config
            .mounts
            .iter()
            .filter_map(|m| match &m.kind {
                MountKind::Volume { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        self.store
            .db()
            .write(|tx| meta::insert(tx, &row, &volumes))
            .map_err(|e| undo(e.into()))?;
        Ok(Container {
            row,
            config: config.clone(),
        })
    }

    /// Looks up a named user in the image (so a bad `-u` fails here, not
    /// at start) and fills each empty volume from what the image has at
    /// its target. Mounts the root filesystem only when either is needed.
    fn prepare_rootfs(
        &self,
        config: &ContainerConfig,
        mounts: &[strata_snapshot::Mount],
        rootfs: &std::path::Path,
    ) -> Result<()> {
        let names_user = config
            .user
            .split(':')
            .any(|part| !part.is_empty() && part.parse::<u32>().is_err());
        let wanted: Vec<(&str, &str)> = config
            .mounts
            .iter()
            .filter_map(|m| match &m.kind {
                MountKind::Volume {
                    name,
                    nocopy: false,
                    subpath: None,
                    ..
                } => Some((name.as_str(), m.target.as_str())),
                _ => None,
            })
            .collect();
        if wanted.is_empty() && !names_user {
            return Ok(());
        }
        let mounted = mount::mount(mounts, rootfs)?;
        if names_user {
            crate::user::resolve(mounted.target(), &config.user)?;
        }
        for (name, target) in wanted {
            self.volumes.with_mounted(name, |data| {
                copy_up::fill_if_empty(data, mounted.target(), target)
                    .map_err(strata_volume::io_at(data))
            })?;
        }
        mounted.unmount().map_err(io_at(rootfs))?;
        Ok(())
    }
}

/// Entrypoint then command, as Docker combines them.
fn command(opts: &CreateOptions, image: &ImageDefaults) -> Result<Vec<String>> {
    let (entrypoint, default_cmd) = match &opts.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        // A new entrypoint drops the image's CMD, as in Docker.
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let cmd = if opts.command.is_empty() {
        default_cmd
    } else {
        opts.command.clone()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(ContainerError::Invalid(
            "no command specified: the image has no CMD or ENTRYPOINT; give one after the image name".into(),
        ));
    }
    Ok(args)
}

/// The image's environment, overridden key by key by `-e`/`--env-file`;
/// `-e KEY` alone takes KEY from our own environment (and is dropped if we
/// have none), as in Docker.
fn environment(opts: &CreateOptions, image: &ImageDefaults, id: &str) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| match env.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k.to_owned(), v)),
    };
    set(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    set(
        "HOSTNAME",
        opts.hostname.clone().unwrap_or_else(|| id[..12].to_owned()),
    );
    if opts.tty {
        set("TERM", "xterm".into());
    }
    for line in image.env.iter() {
        if let Some((k, v)) = line.split_once('=') {
            set(k, v.to_owned());
        }
    }
    for line in &opts.env {
        match line.split_once('=') {
            Some((k, v)) => set(k, v.to_owned()),
            None => {
                if let Ok(v) = std::env::var(line) {
                    set(line, v);
                }
            }
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// A VOLUME path from an image config, cleaned like a mount target.
fn clean_target(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageDefaults {
        ImageDefaults {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn check(
        entrypoint: Option<&str>,
        command: &[&str],
        image: &ImageDefaults,
        want: Option<&[&str]>,
    ) {
        let opts = CreateOptions {
            id: None,
            entrypoint: entrypoint.map(String::from),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let got = super::command(&opts, image).ok();
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{entrypoint:?} {command:?}");
    }

    #[test]
    fn commands_combine_like_docker() {
        let sh = image(&[], &["sh"]);
        let ep = image(&["/entry"], &["--serve"]);
        check(None, &[], &sh, Some(&["sh"]));
        check(None, &["echo", "hi"], &sh, Some(&["echo", "hi"]));
        check(None, &[], &ep, Some(&["/entry", "--serve"]));
        check(None, &["--debug"], &ep, Some(&["/entry", "--debug"]));
        check(Some("/other"), &[], &ep, Some(&["/other"]));
        check(Some("/other"), &["x"], &ep, Some(&["/other", "x"]));
        check(Some(""), &["ls"], &ep, Some(&["ls"]));
        check(None, &[], &image(&[], &[]), None);
    }

    #[test]
    fn environment_overrides_by_key() {
        let img = ImageDefaults {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..Default::default()
        };
        let opts = CreateOptions {
            id: None,
            env: vec![
                "A=2".into(),
                "B=x=y".into(),
                "STRATA_SURELY_UNSET_VAR".into(),
            ],
            tty: true,
            ..Default::default()
        };
        let env = environment(&opts, &img, &"f".repeat(64));
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "HOSTNAME=ffffffffffff",
                "TERM=xterm",
                "A=2",
                "B=x=y"
            ]
        );
    }
}
