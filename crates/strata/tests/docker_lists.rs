//! A real client: Docker's CLI and Strata list the same containers,
//! volumes and images alike, with their default tables and with the same
//! `--format` templates. Runs a private dockerd (no bridge, no iptables).

mod common;

use common::Strata;
use common::archive::busybox_rootfs;
use common::dockerd::Dockerd;

#[test]
fn lists_print_as_dockers_do() {
    let docker = Dockerd::start();
    let s = Strata::new();
    let rootfs = s.path("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).unwrap();
    let setup: [&[&str]; 3] = [
        &["import", rootfs.to_str().unwrap(), "bb"],
        &["volume", "create", "--label", "tier=db", "data"],
        &[
            "create",
            "--name",
            "web",
            "--network",
            "none",
            "-v",
            "data:/data",
            "--label",
            "app=web",
            "bb",
            "true",
        ],
    ];
    for args in setup {
        docker.ok(args);
        s.ok(args);
    }
    // Each as a user types it: `\t` is a backslash and a t.
    let lists: [&[&str]; 7] = [
        &["volume", "ls"],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\\t{{.Driver}}\\t{{.Labels}}\\t{{.Scope}}",
        ],
        &["volume", "ls", "--format", "{{.Name}} {{.Driver}}"],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{.State}}\\t{{.Status}}\\t{{.Labels}}",
        ],
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}}\\t{{.Image}}\\t{{.Command}}\\t{{.Networks}}",
        ],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Mounts}}\\t{{.Ports}}\\t{{.Names}}",
        ],
        &[
            "images",
            "--format",
            "table {{.Repository}}\\t{{.Tag}}\\t{{.Containers}}",
        ],
    ];
    for args in lists {
        assert_eq!(s.ok(args), docker.ok(args), "{args:?}");
    }
}
