//! A private Docker daemon (no bridge, no iptables, its own data root and
//! socket), as the benchmarks run it: a real client for Strata to agree
//! with, and a real user of Strata's volume plugin.

use std::process::{Child, Command};

/// A private dockerd, stopped (and its mounts undone) when dropped.
pub struct Dockerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        super::require("dockerd");
        let dir = tempfile::Builder::new()
            .prefix("strata-dockerd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let d = dir.path();
        let config = serde_json::json!({
            "data-root": d.join("data"),
            "exec-root": d.join("exec"),
            "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", d.join("docker.sock").display())],
            "storage-driver": "overlay2",
            "iptables": false, "ip-forward": false, "ip-masq": false,
            "bridge": "none", "log-level": "warn",
        });
        std::fs::write(d.join("daemon.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let docker = Dockerd { dir, daemon };
        for _ in 0..300 {
            if docker.cli(&["version"]).status.success() {
                return docker;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "dockerd did not come up:\n{}",
            std::fs::read_to_string(docker.dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args)
            .output()
            .expect("run docker")
    }

    /// Runs a docker command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM, so dockerd stops its containerd and unmounts.
        let _ = Command::new("kill")
            .arg(self.daemon.id().to_string())
            .status();
        let _ = self.daemon.wait();
        super::unmount_below(self.dir.path());
    }
}
