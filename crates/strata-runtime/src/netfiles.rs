//! The files Docker gives every container: `/etc/hostname`, `/etc/hosts`
//! and `/etc/resolv.conf`, written into the bundle at each start and
//! bind-mounted over the image's. The container's writes land in the
//! bundle, never in its layer. Where the image has no such file, a
//! container's init layer has an empty one; failing that (a RUN step) the
//! runtime makes it, and diffs leave it out ([`MOUNT_POINTS`]).

use std::io;
use std::path::Path;

use crate::bundle::{self, BundleConfig};

/// The mount points a runtime makes in a container's layer when the
/// image lacks them, as layer paths: the folders it mounts /dev, /proc
/// and /sys on (top level), and these files (nested). Docker keeps them
/// in an init layer, and so does Strata.
pub const MOUNT_POINTS: &[&str] = &[
    "dev",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "proc",
    "sys",
];

/// Docker's `/etc/hosts` for a container with a network of its own.
const HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// Docker's name servers when the host's are all on its loopback.
const FALLBACK_NAMESERVERS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

/// Writes the files into `dir` (the bundle) for `cfg` and mounts them,
/// after its own mounts; one the container mounts itself is left alone.
/// Read-only with a read-only root, as Docker's.
pub fn add(dir: &Path, cfg: &mut BundleConfig) -> io::Result<()> {
    let host = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let hosts = match cfg.host_network {
        true => host("/etc/hosts"),
        false => HOSTS.to_owned(),
    };
    let files = [
        ("hostname", format!("{}\n", cfg.hostname)),
        ("hosts", hosts),
        (
            "resolv.conf",
            resolv_conf(&host("/etc/resolv.conf"), cfg.host_network),
        ),
    ];
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if cfg.readonly {
        options.push("ro".into());
    }
    for (name, content) in files {
        let target = format!("/etc/{name}");
        if cfg
            .mounts
            .iter()
            .any(|m| m.destination() == Path::new(&target))
        {
            continue;
        }
        let source = dir.join(name);
        std::fs::write(&source, content)?;
        cfg.mounts
            .push(bundle::mount(&target, "bind", &source, &options));
    }
    Ok(())
}

/// The host's resolver configuration as a container sees it: as it is on
/// the host's network; on its own, without the host's loopback name
/// servers (unreachable from there), and Docker's fallback if none is
/// left.
fn resolv_conf(host: &str, host_network: bool) -> String {
    if host_network {
        return host.to_owned();
    }
    let loopback = |line: &str| {
        line.strip_prefix("nameserver")
            .map(str::trim)
            .is_some_and(|ip| ip.starts_with("127.") || ip == "::1")
    };
    let mut out: String = host
        .lines()
        .filter(|l| !loopback(l))
        .flat_map(|l| [l, "\n"])
        .collect();
    if !out.lines().any(|l| l.starts_with("nameserver")) {
        out.push_str(FALLBACK_NAMESERVERS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(host: &str, host_network: bool, expected: &str) {
        assert_eq!(resolv_conf(host, host_network), expected, "{host:?}");
    }

    #[test]
    fn resolv_conf_as_docker_writes_it() {
        let mixed = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\noptions edns0\n";
        check(mixed, true, mixed);
        check(
            mixed,
            false,
            "search lan\nnameserver 10.0.0.1\noptions edns0\n",
        );
        check(
            "nameserver 127.0.0.53\nnameserver ::1\n",
            false,
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
        );
        check("", false, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        check("", true, "");
    }
}
