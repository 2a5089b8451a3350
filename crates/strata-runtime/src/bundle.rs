//! The OCI runtime bundle: `config.json` beside the root filesystem.
//!
//! What Docker gives a container by default, and nothing this host cannot
//! do: namespaces mount, pid, ipc, uts and (unless the host's network is
//! asked for) net; Docker's default capabilities; the usual masked and
//! read-only paths; a device cgroup that denies what was not asked for;
//! and no rlimits, since raising one needs
//! CAP_SYS_RESOURCE and the processes keep the limits they inherit.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, Process, Root, Spec, User,
};

use crate::{Result, RuntimeError, io_at};

/// Docker's default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The process to run (the container's, or one `exec` adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub terminal: bool,
}

/// Everything the bundle's `config.json` says.
#[derive(Debug, Clone)]
pub struct BundleConfig {
    pub rootfs: PathBuf,
    pub readonly: bool,
    pub hostname: String,
    pub host_network: bool,
    pub process: ProcessConfig,
    /// Mounts after the defaults (/proc, /dev, ...), in order.
    pub mounts: Vec<Mount>,
    /// Host device nodes made in the container and allowed by its device
    /// cgroup (`--device`).
    pub devices: Vec<Device>,
}

/// A device node as the container gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its path in the container.
    pub path: String,
    pub block: bool,
    pub major: i64,
    pub minor: i64,
    /// The node's mode bits, owner and group, as on the host.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The cgroup access: a subset of `rwm`.
    pub permissions: String,
}

impl Device {
    /// `host`'s device node (following symlinks, as Docker does), to appear
    /// at `path` with `permissions`.
    pub fn from_host(host: &Path, path: &str, permissions: &str) -> Result<Device> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(host).map_err(io_at(host))?;
        let kind = meta.file_type();
        if !kind.is_block_device() && !kind.is_char_device() {
            return Err(RuntimeError::Spec(format!(
                "error gathering device information while adding custom device \"{}\": not a device node",
                host.display()
            )));
        }
        let rdev = meta.rdev();
        Ok(Device {
            path: path.to_owned(),
            block: kind.is_block_device(),
            major: rustix::fs::major(rdev).into(),
            minor: rustix::fs::minor(rdev).into(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            permissions: permissions.to_owned(),
        })
    }

    fn typ(&self) -> LinuxDeviceType {
        if self.block {
            LinuxDeviceType::B
        } else {
            LinuxDeviceType::C
        }
    }

    fn node(&self) -> LinuxDevice {
        let mut node = LinuxDevice::default();
        node.set_path(PathBuf::from(&self.path));
        node.set_typ(self.typ());
        node.set_major(self.major);
        node.set_minor(self.minor);
        node.set_file_mode(Some(self.mode));
        node.set_uid(Some(self.uid));
        node.set_gid(Some(self.gid));
        node
    }

    fn rule(&self) -> LinuxDeviceCgroup {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(self.typ()));
        rule.set_major(Some(self.major));
        rule.set_minor(Some(self.minor));
        rule.set_access(Some(self.permissions.clone()));
        rule
    }
}

/// The process part of a spec; `exec` writes it alone as `process.json`.
pub fn process(cfg: &ProcessConfig) -> Result<Process> {
    let spec_err = |e: serde_json::Error| RuntimeError::Spec(e.to_string());
    let caps: Capabilities =
        serde_json::from_value(serde_json::json!(DEFAULT_CAPS)).map_err(spec_err)?;
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(caps.clone()));
    capabilities.set_effective(Some(caps.clone()));
    capabilities.set_permitted(Some(caps));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let mut user = User::default();
    user.set_uid(cfg.uid);
    user.set_gid(cfg.gid);
    if !cfg.additional_gids.is_empty() {
        user.set_additional_gids(Some(cfg.additional_gids.clone()));
    }
    let mut p = Process::default();
    p.set_args(Some(cfg.args.clone()));
    p.set_env(Some(cfg.env.clone()));
    p.set_cwd(PathBuf::from(&cfg.cwd));
    p.set_user(user);
    p.set_terminal(Some(cfg.terminal));
    p.set_rlimits(None);
    p.set_capabilities(Some(capabilities));
    p.set_no_new_privileges(Some(false));
    Ok(p)
}

/// The whole runtime spec of a container.
pub fn spec(cfg: &BundleConfig) -> Result<Spec> {
    let mut spec = Spec::default();
    let mut root = Root::default();
    root.set_path(cfg.rootfs.clone());
    root.set_readonly(Some(cfg.readonly));
    spec.set_root(Some(root));
    spec.set_hostname(Some(cfg.hostname.clone()));
    spec.set_process(Some(process(&cfg.process)?));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if cfg.host_network {
        // sysfs belongs to a network namespace; without our own, bind the
        // host's read-only, as runc's own rootless spec does.
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/sys"))
        {
            m.set_typ(Some("bind".into()));
            m.set_source(Some("/sys".into()));
            m.set_options(Some(
                ["rbind", "nosuid", "noexec", "nodev", "ro"]
                    .map(String::from)
                    .to_vec(),
            ));
        }
    }
    mounts.extend(by_depth(&cfg.mounts));
    spec.set_mounts(Some(mounts));
    let mut linux = spec.linux().clone().unwrap_or_default();
    let namespaces: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| match ns.typ() {
            LinuxNamespaceType::Network => !cfg.host_network,
            // The host is cgroup v1 hybrid: stay in the host's cgroup
            // namespace, as Docker does there.
            LinuxNamespaceType::Cgroup => false,
            _ => true,
        })
        .collect();
    linux.set_namespaces(Some(namespaces));
    if !cfg.devices.is_empty() {
        let mut nodes = linux.devices().clone().unwrap_or_default();
        nodes.extend(cfg.devices.iter().map(Device::node));
        linux.set_devices(Some(nodes));
    }
    linux.set_resources(Some(device_rules(&cfg.devices)));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The container's own mounts, parents before what they hold, as Docker
/// sorts them: the runtime mounts in order, so `/d` given after `/d/x`
/// would hide it. Stable, so equal depths keep the user's order.
fn by_depth(mounts: &[Mount]) -> Vec<Mount> {
    let mut sorted = mounts.to_vec();
    sorted.sort_by_key(|m| {
        m.destination()
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .count()
    });
    sorted
}

/// The device cgroup: deny every device, as Docker's spec does, so that a
/// node made inside the container (it has `CAP_MKNOD`) opens nothing the
/// runtime does not allow by default; then allow the devices asked for.
fn device_rules(devices: &[Device]) -> LinuxResources {
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".into()));
    let rules = std::iter::once(deny_all).chain(devices.iter().map(Device::rule));
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(rules.collect()));
    resources
}

/// A mount of `source` at `destination` with `options`.
pub fn mount(destination: &str, typ: &str, source: &Path, options: &[String]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(source.to_owned()));
    m.set_options(Some(options.to_vec()));
    m
}

/// `config.json`'s contents for `spec`.
pub fn bytes(spec: &Spec) -> Result<Vec<u8>> {
    serde_json::to_vec(spec).map_err(|e| RuntimeError::Spec(e.to_string()))
}

/// Writes `config.json` into `dir` (atomically: a reader never sees half).
pub fn write(dir: &Path, spec: &Spec) -> Result<()> {
    write_bytes(dir, &bytes(spec)?)
}

/// Writes `config` (made by [`bytes`]) as `dir`'s `config.json`, as
/// [`write`] does.
pub fn write_bytes(dir: &Path, config: &[u8]) -> Result<()> {
    let path = dir.join(crate::gate::CONFIG);
    strata_store::fsutil::write_replace(&path, config).map_err(io_at(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host_network: bool) -> BundleConfig {
        BundleConfig {
            rootfs: "/r".into(),
            readonly: true,
            hostname: "h".into(),
            host_network,
            process: ProcessConfig {
                args: vec!["true".into()],
                env: vec!["A=1".into()],
                cwd: "/".into(),
                uid: 1,
                gid: 2,
                additional_gids: vec![],
                terminal: false,
            },
            mounts: vec![mount("/data", "bind", Path::new("/v"), &["rbind".into()])],
            devices: Vec::new(),
        }
    }

    fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
        let mut n: Vec<_> = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        n.sort_by_key(|t| format!("{t:?}"));
        n
    }

    #[test]
    fn namespaces_follow_the_network_choice() {
        use LinuxNamespaceType::*;
        assert_eq!(
            namespaces(&spec(&config(false)).unwrap()),
            vec![Ipc, Mount, Network, Pid, Uts]
        );
        assert_eq!(
            namespaces(&spec(&config(true)).unwrap()),
            vec![Ipc, Mount, Pid, Uts]
        );
    }

    #[test]
    fn no_rlimits_and_dockers_capabilities() {
        let s = spec(&config(false)).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["process"].get("rlimits").is_none(), "{json}");
        let caps = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert_eq!(json["root"]["readonly"], true);
        assert_eq!(json["process"]["user"]["uid"], 1);
        let last = json["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["destination"], "/data");
    }

    fn check_order(given: &[&str], expected: &[&str]) {
        let mounts = given
            .iter()
            .map(|d| mount(d, "bind", Path::new("/v"), &[]))
            .collect();
        let s = spec(&BundleConfig {
            mounts,
            ..config(false)
        })
        .unwrap();
        let defaults = spec(&BundleConfig {
            mounts: vec![],
            ..config(false)
        })
        .unwrap()
        .mounts()
        .clone()
        .unwrap()
        .len();
        let order: Vec<_> = s.mounts().as_ref().unwrap()[defaults..]
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(order, expected, "{given:?}");
    }

    #[test]
    fn mounts_go_parents_first() {
        check_order(&["/d/x", "/d"], &["/d", "/d/x"]);
        check_order(&["/etc/hosts", "/etc"], &["/etc", "/etc/hosts"]);
        check_order(&["/a/b/c", "/x", "/a/b"], &["/x", "/a/b", "/a/b/c"]);
        // Equal depths keep their order.
        check_order(&["/b", "/a", "/c/d"], &["/b", "/a", "/c/d"]);
        check_order(&["/d/", "/d/x/"], &["/d/", "/d/x/"]);
    }

    #[test]
    fn devices_are_denied_but_those_asked_for() {
        let rules = |devices: Vec<Device>| {
            let s = spec(&BundleConfig {
                devices,
                ..config(false)
            })
            .unwrap();
            let json = serde_json::to_value(&s).unwrap();
            json["linux"]["resources"]["devices"].clone()
        };
        let deny_all = serde_json::json!({"allow": false, "access": "rwm"});
        assert_eq!(rules(vec![]), serde_json::json!([deny_all]));
        let disk = Device {
            path: "/dev/xvda".into(),
            block: true,
            major: 7,
            minor: 3,
            mode: 0o660,
            uid: 0,
            gid: 6,
            permissions: "r".into(),
        };
        let allow = serde_json::json!({
            "allow": true, "type": "b", "major": 7, "minor": 3, "access": "r"
        });
        assert_eq!(rules(vec![disk]), serde_json::json!([deny_all, allow]));
    }
}
