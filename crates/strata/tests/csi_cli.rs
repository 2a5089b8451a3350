//! `strata csi`: the command line as a client of `strata csi serve`, run
//! as a real process on a real socket, through a volume's whole life
//! (create, publish, write, snapshot, restore, delete), block volumes,
//! split services, and the errors a user meets first.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use common::Strata;
use common::csi::CsiServer;

/// The node ID every driver here serves as.
const NODE_ID: &str = "test-node";

/// A store with a driver serving it; every `csi` command of the store
/// talks to it and stages under the test's folder.
fn served(extra: &[&str]) -> (Strata, CsiServer) {
    let mut s = Strata::new();
    let driver = CsiServer::start(&s, "csi", NODE_ID, extra);
    s.env
        .push(("STRATA_CSI_ENDPOINT".into(), driver.endpoint()));
    s.env.push((
        "STRATA_CSI_STAGING_ROOT".into(),
        s.path("staging").display().to_string(),
    ));
    (s, driver)
}

/// The test's whole folder (store, scratch, sockets, staging).
fn test_dir(s: &Strata) -> PathBuf {
    s.work.parent().unwrap().to_owned()
}

fn one_line(out: String) -> String {
    let line = out.trim();
    assert!(
        !line.is_empty() && !line.contains('\n'),
        "expected one line: {out:?}"
    );
    line.to_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn volume_lifecycle() {
    let (s, _driver) = served(&[]);
    let info = s.ok(&["csi", "info"]);
    assert!(info.contains("csi.strata.dev"), "{info}");
    assert!(info.contains("Node ID:             test-node"), "{info}");
    assert!(
        info.contains("topology.csi.strata.dev/node=test-node"),
        "{info}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["csi", "info", "--format", "json"])).unwrap();
    assert_eq!(json["Name"], "csi.strata.dev");
    assert_eq!(json["Node"]["NodeId"], "test-node");
    assert!(
        json["ControllerCapabilities"]
            .as_array()
            .unwrap()
            .contains(&"CREATE_DELETE_VOLUME".into())
    );

    // Create: a Strata volume, listed by both.
    let create_v1 = || {
        let args = [
            "csi",
            "create",
            "v1",
            "--size",
            "64M",
            "--param",
            "type=image",
        ];
        one_line(s.ok(&args))
    };
    let v1 = create_v1();
    assert!(s.ok(&["volume", "ls", "-q"]).lines().any(|l| l == v1));
    let ls = s.ok(&["csi", "ls"]);
    let row = ls.lines().find(|l| l.starts_with(&v1)).expect(&ls);
    assert!(row.contains("67.1MB") && row.contains("healthy"), "{ls}");
    // The same name again is the same volume.
    assert_eq!(create_v1(), v1);

    // Publish, write, read; publishing again changes nothing.
    let target = s.path("pods/a/volume");
    assert_eq!(
        one_line(s.ok(&["csi", "publish", &v1, p(&target)])),
        p(&target)
    );
    s.ok(&["csi", "publish", &v1, p(&target)]);
    assert!(common::mounts_under(&test_dir(&s)).contains(&p(&target).to_owned()));
    std::fs::write(target.join("hello.txt"), b"hello from csi\n").unwrap();
    assert_eq!(
        std::fs::read(target.join("hello.txt")).unwrap(),
        b"hello from csi\n"
    );

    // Unpublish: the target goes, nothing stays mounted; again is fine.
    s.ok(&["csi", "unpublish", &v1, p(&target)]);
    assert!(!target.exists(), "{} is still there", target.display());
    assert_eq!(common::mounts_under(&test_dir(&s)), Vec::<String>::new());
    s.ok(&["csi", "unpublish", &v1, p(&target)]);

    // Snapshot, and a new volume from it has the file.
    let snap = one_line(s.ok(&["csi", "snapshot", "create", &v1, "s1"]));
    let snaps = s.ok(&["csi", "snapshot", "ls"]);
    assert!(
        snaps
            .lines()
            .any(|l| l.starts_with(&snap) && l.contains(&v1) && l.contains("yes")),
        "{snaps}"
    );
    assert_eq!(one_line(s.ok(&["csi", "snapshot", "ls", "-q"])), snap);
    let v2 = one_line(s.ok(&[
        "csi",
        "create",
        "v2",
        "--from-snapshot",
        &snap,
        "--param",
        "type=image",
    ]));
    let target2 = s.path("pods/b/volume");
    s.ok(&["csi", "publish", &v2, p(&target2)]);
    assert_eq!(
        std::fs::read(target2.join("hello.txt")).unwrap(),
        b"hello from csi\n"
    );
    s.ok(&["csi", "unpublish", &v2, p(&target2)]);
    assert_eq!(common::mounts_under(&test_dir(&s)), Vec::<String>::new());

    // Delete: gone from both listings; deleting again is fine.
    assert_eq!(s.ok(&["csi", "delete", &v1, &v2]), format!("{v1}\n{v2}\n"));
    let left = s.ok(&["volume", "ls", "-q"]);
    assert!(!left.lines().any(|l| l == v1 || l == v2), "{left}");
    assert_eq!(s.ok(&["csi", "ls", "-q"]), "");
    s.ok(&["csi", "delete", &v1]);
    s.ok(&["csi", "snapshot", "rm", &snap]);
    assert_eq!(s.ok(&["csi", "snapshot", "ls", "-q"]), "");
}

#[test]
fn a_volume_stays_staged_while_another_target_uses_it() {
    let (s, _driver) = served(&[]);
    let v = one_line(s.ok(&["csi", "create", "shared", "--param", "type=dir"]));
    let (a, b) = (s.path("a"), s.path("b"));
    // Many targets on one node need a mode that allows them.
    let multi = ["--access-mode", "single-node-multi-writer"];
    s.ok(&[&["csi", "publish", &v, p(&a)][..], &multi].concat());
    s.ok(&[&["csi", "publish", &v, p(&b)][..], &multi].concat());
    let refused = s.run(&["csi", "publish", &v, p(&s.path("c"))]);
    assert!(
        !refused.status.success(),
        "single-node-writer takes one target"
    );
    std::fs::write(a.join("f"), b"x").unwrap();
    let out = s.run(&["csi", "unpublish", &v, p(&a)]);
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("still published at"), "{note}");
    // b still works after a went.
    assert_eq!(std::fs::read(b.join("f")).unwrap(), b"x");
    // A read-only publish beside a writable one.
    let ro = s.path("ro");
    s.ok(&[&["csi", "publish", &v, p(&ro), "--readonly"][..], &multi].concat());
    assert_eq!(std::fs::read(ro.join("f")).unwrap(), b"x");
    let refused = std::fs::write(ro.join("g"), b"y").unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(erofs()), "{refused}");
    s.ok(&["csi", "unpublish", &v, p(&ro)]);
    s.ok(&["csi", "unpublish", &v, p(&b)]);
    assert_eq!(common::mounts_under(&test_dir(&s)), Vec::<String>::new());
    s.ok(&["csi", "delete", &v]);
}

/// EROFS: a write to a read-only mount.
fn erofs() -> i32 {
    rustix::io::Errno::ROFS.raw_os_error()
}

#[test]
fn block_volume() {
    let (s, _driver) = served(&[]);
    let b1 = one_line(s.ok(&["csi", "create", "b1", "--size", "16M", "--block"]));
    let device = s.path("pods/c/dev");
    s.ok(&["csi", "publish", &b1, p(&device), "--block"]);
    let meta = std::fs::metadata(&device).unwrap();
    assert!(
        meta.file_type().is_block_device(),
        "{} is not a block device",
        device.display()
    );

    // Write a pattern at 0 and at 8 MiB, as dd would; read it back.
    let pattern: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let write_at = |offset: u64| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&device)
            .unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&pattern).unwrap();
        f.sync_all().unwrap();
    };
    let read_at = |offset: u64| {
        let mut f = std::fs::File::open(&device).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut back = vec![0; pattern.len()];
        f.read_exact(&mut back).unwrap();
        back
    };
    write_at(0);
    write_at(8 << 20);
    assert!(read_at(0) == pattern && read_at(8 << 20) == pattern);

    // The data outlives a publish.
    s.ok(&["csi", "unpublish", &b1, p(&device)]);
    assert!(!device.exists());
    assert_eq!(common::mounts_under(&test_dir(&s)), Vec::<String>::new());
    s.ok(&["csi", "publish", &b1, p(&device), "--block"]);
    assert!(read_at(8 << 20) == pattern);
    s.ok(&["csi", "unpublish", &b1, p(&device)]);
    s.ok(&["csi", "delete", &b1]);
    assert!(!s.ok(&["volume", "ls", "-q"]).lines().any(|l| l == b1));
}

#[test]
fn a_container_writes_to_a_published_block_volume() {
    let (s, _driver) = served(&[]);
    let tar = s.path("busybox.tar");
    std::fs::write(&tar, common::archive::busybox_rootfs()).unwrap();
    s.ok(&["import", "-c", "CMD [\"sh\"]", p(&tar), "busybox"]);
    let b1 = one_line(s.ok(&["csi", "create", "b1", "--size", "16M", "--block"]));
    let device = s.path("pods/c/dev");
    s.ok(&["csi", "publish", &b1, p(&device), "--block"]);
    let mapping = format!("{}:/dev/xvda", device.display());
    s.ok(&[
        "run",
        "--rm",
        "--device",
        &mapping,
        "busybox",
        "sh",
        "-c",
        "echo hello-block | dd of=/dev/xvda bs=512 seek=2048 conv=notrunc,fsync 2>/dev/null",
    ]);
    // What the container wrote is on the volume at 1 MiB.
    let mut f = std::fs::File::open(&device).unwrap();
    f.seek(SeekFrom::Start(1 << 20)).unwrap();
    let mut back = vec![0; 12];
    f.read_exact(&mut back).unwrap();
    assert_eq!(back, b"hello-block\n");
    // Read-only access is enforced by the device cgroup.
    let read_only = format!("{}:/dev/xvda:r", device.display());
    let out = s.run(&[
        "run",
        "--rm",
        "--device",
        &read_only,
        "busybox",
        "sh",
        "-c",
        "echo no | dd of=/dev/xvda conv=notrunc 2>&1",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a write through a read-only device worked"
    );
    assert!(said.contains("Operation not permitted"), "{said}");
    s.ok(&["csi", "unpublish", &b1, p(&device)]);
    // Not a device, or a bad mode: refused before anything is made.
    let containers = s.ok(&["ps", "-a", "-q"]);
    let err = s.fails(&["create", "--device", "/etc/hostname", "busybox"]);
    assert!(err.contains("not a device node"), "{err}");
    let err = s.fails(&["create", "--device", "/dev/null:/dev/n:rx", "busybox"]);
    assert!(err.contains("invalid device mode: rx"), "{err}");
    assert_eq!(s.ok(&["ps", "-a", "-q"]), containers);
    s.ok(&["csi", "delete", &b1]);
}

#[test]
fn attach_required_publishes_to_the_node() {
    let (s, _driver) = served(&["--attach-required"]);
    let info = s.ok(&["csi", "info"]);
    assert!(info.contains("PUBLISH_UNPUBLISH_VOLUME"), "{info}");
    let v = one_line(s.ok(&["csi", "create", "att", "--param", "type=dir"]));
    let target = s.path("att");
    s.ok(&["csi", "publish", &v, p(&target)]);
    let ls = s.ok(&["csi", "ls"]);
    let row = ls.lines().find(|l| l.starts_with(&v)).expect(&ls);
    assert!(row.contains("test-node"), "{ls}");
    s.ok(&["csi", "unpublish", &v, p(&target)]);
    let ls = s.ok(&["csi", "ls"]);
    let row = ls.lines().find(|l| l.starts_with(&v)).expect(&ls);
    assert!(row.contains("<none>"), "{ls}");
    s.ok(&["csi", "delete", &v]);
}

#[test]
fn controller_and_node_served_apart() {
    let mut s = Strata::new();
    let controller = CsiServer::start(&s, "controller", NODE_ID, &["--controller"]);
    let node = CsiServer::start(&s, "node", NODE_ID, &["--node"]);
    s.env.push((
        "STRATA_CSI_STAGING_ROOT".into(),
        s.path("staging").display().to_string(),
    ));
    let (c, n) = (controller.endpoint(), node.endpoint());
    let info = s.ok(&["csi", "--endpoint", &c, "info"]);
    assert!(info.contains("Node:                not served"), "{info}");
    let info = s.ok(&["csi", "--endpoint", &n, "info"]);
    assert!(
        info.contains("Controller:          not served") && info.contains("test-node"),
        "{info}"
    );
    let v = one_line(s.ok(&["csi", "--endpoint", &c, "create", "split"]));
    let target = s.path("split");
    s.ok(&["csi", "--endpoint", &n, "publish", &v, p(&target)]);
    std::fs::write(target.join("f"), b"y").unwrap();
    s.ok(&["csi", "--endpoint", &n, "unpublish", &v, p(&target)]);
    let err = s.fails(&["csi", "--endpoint", &c, "publish", &v, p(&target)]);
    assert!(err.contains("does not serve the Node service"), "{err}");
    let err = s.fails(&["csi", "--endpoint", &n, "ls"]);
    assert!(
        err.contains("ListVolumes failed") && err.contains("(UNIMPLEMENTED)"),
        "{err}"
    );
    s.ok(&["csi", "--endpoint", &c, "delete", &v]);
}

#[test]
fn bad_input_fails_clearly() {
    let (s, driver) = served(&[]);
    let missing = s.path("none.sock");
    let target = s.path("t");
    let check = |args: &[&str], expected: &[&str]| {
        let out = s.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "strata {args:?} should fail:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "strata {args:?} panicked:\n{stderr}"
        );
        for e in expected {
            assert!(
                stderr.contains(e),
                "strata {args:?}: {e:?} not in:\n{stderr}"
            );
        }
    };
    let unix_missing = format!("unix://{}", missing.display());
    check(
        &["csi", "--endpoint", "tcp://127.0.0.1:10000", "ls"],
        &["invalid CSI endpoint 'tcp://127.0.0.1:10000'", "unix:///"],
    );
    check(
        &["csi", "--endpoint", "relative.sock", "info"],
        &["invalid CSI endpoint 'relative.sock'"],
    );
    check(
        &["csi", "--endpoint", &unix_missing, "info"],
        &[
            &format!("cannot reach the CSI driver at {}", missing.display()),
            "no such file or directory",
            "is `strata csi serve` running?",
        ],
    );
    check(
        &["csi", "--endpoint", &unix_missing, "create", "x"],
        &["cannot reach the CSI driver"],
    );
    // `csi create x ARGS`, refused by the command line or by the driver.
    let create = |args: &[&str], expected: &[&str]| {
        check(&[&["csi", "create", "x"][..], args].concat(), expected)
    };
    create(
        &["--access-mode", "bogus"],
        &[
            "invalid value 'bogus' for '--access-mode",
            "single-node-writer",
        ],
    );
    create(&["--size", "12x"], &["invalid size: '12x'"]);
    create(&["--size", "0"], &["more than 0 bytes"]);
    create(
        &["--param", "nokey"],
        &["invalid parameter 'nokey': use KEY=VALUE"],
    );
    create(
        &["--param", "type=weird"],
        &["CreateVolume failed", "type=weird", "(INVALID_ARGUMENT)"],
    );
    create(
        &["--access-mode", "multi-node-multi-writer"],
        &[
            "CreateVolume failed",
            "MULTI_NODE_MULTI_WRITER",
            "(INVALID_ARGUMENT)",
        ],
    );
    create(
        &["--from-snapshot", "nope"],
        &["CreateVolume failed", "nope", "(NOT_FOUND)"],
    );
    create(
        &["--from-snapshot", "a", "--from-volume", "b"],
        &["cannot be used with"],
    );
    check(
        &["csi", "publish", "nope", p(&target)],
        &["nope", "(NOT_FOUND)"],
    );
    check(
        &["csi", "snapshot", "create", "nope", "s"],
        &["CreateSnapshot failed", "(NOT_FOUND)"],
    );
    check(
        &["csi", "serve", "--endpoint", "tcp://0.0.0.0:1"],
        &["invalid CSI endpoint"],
    );
    check(
        &[
            "csi",
            "serve",
            "--endpoint",
            &driver.endpoint(),
            "--node-id",
            "n",
        ],
        &["already serves", p(&driver.socket)],
    );
    // Nothing was made, nothing is left mounted or staged.
    assert_eq!(s.ok(&["csi", "ls", "-q"]), "");
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(common::mounts_under(&test_dir(&s)), Vec::<String>::new());
    assert!(!target.exists());
    assert!(!s.path("staging/nope").exists());
}

#[test]
fn ls_output() {
    let (s, _driver) = served(&[]);
    s.ok(&[
        "csi", "create", "a-dir", "--size", "10M", "--param", "type=dir",
    ]);
    s.ok(&[
        "csi",
        "create",
        "b-image",
        "--size",
        "64M",
        "--param",
        "type=image",
    ]);
    s.ok(&["csi", "create", "c-block", "--size", "16M", "--block"]);
    let table = s.ok(&["csi", "ls"]);
    // Every page is followed, however small.
    assert_eq!(s.ok(&["csi", "ls", "--page-size", "1"]), table);
    insta::assert_snapshot!("ls", table);
    insta::assert_snapshot!("ls_json", s.ok(&["csi", "ls", "--format", "json"]));
    insta::assert_snapshot!("ls_quiet", s.ok(&["csi", "ls", "-q"]));
    for v in ["a-dir", "b-image", "c-block"] {
        s.ok(&["csi", "delete", v]);
    }
}
