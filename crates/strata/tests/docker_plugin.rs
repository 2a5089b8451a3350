//! A real client of `strata plugin serve`: Docker's own daemon creates,
//! mounts, sizes and removes Strata volumes through the volume plugin
//! protocol, found where Docker looks (`/run/docker/plugins`).

mod common;

use common::Strata;
use common::archive::busybox_rootfs;
use common::dockerd::Dockerd;
use common::plugin::Serving;

#[test]
fn docker_uses_strata_volumes_through_the_plugin() {
    let docker = Dockerd::start();
    let s = Strata::new();
    let rootfs = s.path("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).unwrap();
    docker.ok(&["import", rootfs.to_str().unwrap(), "bb"]);
    let name = format!("strata-test-{}", std::process::id());
    // On Docker's default socket path, where dockerd looks.
    let _plugin = Serving::start(&s, &name, None);

    docker.ok(&["volume", "create", "-d", &name, "--opt", "size=100M", "v1"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "v1\n");
    // A container on the volume, running `script`.
    let run =
        |script: &str| docker.cli(&["run", "--rm", "-v", "v1:/data", "bb", "sh", "-c", script]);
    assert!(run("echo hello > /data/f").status.success());
    let seen = run("cat /data/f");
    assert_eq!(String::from_utf8_lossy(&seen.stdout), "hello\n");

    let past = run("dd if=/dev/zero of=/data/big bs=1M count=120");
    assert!(
        !past.status.success(),
        "wrote 120 MiB into a 100 MiB volume"
    );
    assert!(
        String::from_utf8_lossy(&past.stderr).contains("No space left on device"),
        "{}",
        String::from_utf8_lossy(&past.stderr)
    );
    let listed = docker.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    assert!(
        listed.lines().any(|l| l == format!("{name} v1")),
        "{listed}"
    );
    let status = docker.ok(&["volume", "inspect", "--format", "{{json .Status}}", "v1"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["size"], 100u64 << 20, "{status}");
    assert!(status["usage"].as_u64().unwrap() > 0, "{status}");

    docker.ok(&["volume", "rm", "v1"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
    assert!(!s.root.join("volumes/v1").exists());
}
