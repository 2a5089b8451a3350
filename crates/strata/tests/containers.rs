//! Containers and volumes end to end, through real runc: the seed scenario
//! (data in a volume survives `rm`, data in the writable layer does not),
//! copy-on-write, volumes' lifecycle, the daemonless state, and the
//! container file commands.

mod common;

use common::Strata;
use common::archive::Tar;

/// A busybox image with the applets these tests use, a volume declared
/// at /vol, and content at /var/lib/data (owned 33:33, mode 0750) for
/// copy-up.
fn image(s: &Strata, name: &str) {
    let busybox = std::fs::read("/bin/busybox").expect("install busybox-static (scripts/setup)");
    let mut t = Tar::new();
    t.dir("bin", 0o755)
        .file_mode("bin/busybox", &busybox, 0o755, 0, 0);
    for applet in [
        "sh", "ls", "cat", "echo", "mkdir", "rm", "sleep", "stat", "hostname", "id", "ln", "touch",
        "true", "mknod", "head",
    ] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("etc", 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/:/bin/sh\n",
        )
        .file("etc/group", b"root:x:0:\nwww:x:33:\n")
        .file("etc/motd", b"from the image\n")
        .dir("tmp", 0o1777)
        .dir("var", 0o755)
        .dir("var/lib", 0o755)
        .dir_owned("var/lib/data", 0o750, 33, 33)
        .file_mode("var/lib/data/seed", b"seeded\n", 0o640, 33, 33);
    let tar = s.path(&format!("{name}.tar"));
    std::fs::write(&tar, t.build()).unwrap();
    s.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "VOLUME /vol",
        tar.to_str().unwrap(),
        name,
    ]);
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn seed_scenario_named_volume_survives_rm() {
    let s = Strata::new();
    image(&s, "app");
    s.ok(&["volume", "create", "data_volume"]);
    s.ok(&[
        "run",
        "--name",
        "first",
        "-v",
        "data_volume:/var/lib/data",
        "app",
        "sh",
        "-c",
        "echo precious > /var/lib/data/db",
    ]);
    s.ok(&["rm", "first"]);
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "data_volume:/var/lib/data",
        "app",
        "cat",
        "/var/lib/data/db",
    ]);
    assert_eq!(out, "precious\n");
    // Without a volume, what the container wrote goes with it.
    s.ok(&[
        "run",
        "--name",
        "scratch",
        "app",
        "sh",
        "-c",
        "echo gone > /var/lib/data/db",
    ]);
    s.ok(&["rm", "scratch"]);
    let out = s.run(&["run", "--rm", "app", "cat", "/var/lib/data/db"]);
    assert_eq!(out.status.code(), Some(1), "the file must be gone");
}

#[test]
fn seed_scenario_bind_mount() {
    let s = Strata::new();
    image(&s, "app");
    // -v creates a missing host folder, as Docker does.
    let host = s.path("host-data");
    let spec = format!("{}:/var/lib/data", host.display());
    s.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "app",
        "sh",
        "-c",
        "echo on-host > /var/lib/data/db",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("db")).unwrap(),
        "on-host\n"
    );
    // A bind mount is never filled from the image.
    assert!(!host.join("seed").exists());
    let out = s.ok(&["run", "--rm", "-v", &spec, "app", "cat", "/var/lib/data/db"]);
    assert_eq!(out, "on-host\n");
    // --mount refuses a missing source, and makes nothing.
    let missing = s.path("missing");
    let err = s.fails(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/x", missing.display()),
        "app",
        "true",
    ]);
    assert!(err.contains("bind source path does not exist"), "{err}");
    assert!(!missing.exists());
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

#[test]
fn a_relative_root_is_the_same_store() {
    let s = Strata::new();
    image(&s, "app");
    // `--root root` from the folder above it: runc must still find the
    // rootfs and the volume, which it reads against the bundle, not here.
    let relative = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(s.root.parent().unwrap())
            .args(["--root", "root"])
            .args(args)
            .output()
            .expect("run strata");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "strata {args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let out = relative(&[
        "run",
        "--rm",
        "-v",
        "kept:/var/lib/data",
        "app",
        "sh",
        "-c",
        "echo relative > /var/lib/data/db; cat /etc/motd",
    ]);
    assert_eq!(out, "from the image\n");
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "kept:/var/lib/data",
        "app",
        "cat",
        "/var/lib/data/db",
    ]);
    assert_eq!(out, "relative\n");
    let id = relative(&["run", "-d", "app", "sleep", "30"]);
    assert_eq!(s.ok(&["ps", "-q", "--no-trunc"]).trim(), id.trim());
    s.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn run_output_ends_with_the_container_not_with_the_deletes() {
    let s = Strata::new();
    image(&s, "app");
    // Enough files that deleting them takes a while after `run` returns.
    let out = s.ok(&[
        "run",
        "--rm",
        "app",
        "sh",
        "-c",
        "mkdir /many && cd /many && i=0; while [ $i -lt 5000 ]; do : > f$i; i=$((i+1)); done; echo made",
    ]);
    assert_eq!(out, "made\n");
    // The monitor deletes them once `run` has returned. Had it kept its
    // copy of our stdout meanwhile, reading that to its end (as `$(...)`
    // or a pipe does) would have waited for the deletes too.
    assert!(s.trash_entries() > 0, "the output ended after the deletes");
    // A state is taken once they are done, so states taken around a
    // refusal never differ by a delete in flight.
    assert_eq!(s.state().trash, Vec::<String>::new());
}

#[test]
fn a_running_containers_monitor_holds_no_inotify_instance() {
    let s = Strata::new();
    image(&s, "app");
    let id = s.ok(&["run", "-d", "app", "sleep", "30"]);
    let state = std::fs::read(s.root.join("containers").join(id.trim()).join("state.json"));
    let state: serde_json::Value = serde_json::from_slice(&state.unwrap()).unwrap();
    let monitor = state["monitor_pid"].as_i64().expect("the monitor's pid");
    // It watched for runc's pid file; a user has few inotify instances,
    // and a monitor lives as long as its container. Closing takes a few
    // ms, on a thread of its own.
    let instances = || {
        std::fs::read_dir(format!("/proc/{monitor}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .filter(|target| target.to_string_lossy().contains("inotify"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while instances() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        instances(),
        0,
        "the monitor still holds its inotify instance"
    );
    s.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn ps_filters_as_docker_does() {
    let s = Strata::new();
    image(&s, "app");
    s.ok(&["volume", "create", "data"]);
    s.ok(&[
        "create",
        "--name",
        "web",
        "--label",
        "tier=front",
        "--label",
        "env=prod",
        "app",
    ]);
    s.ok(&[
        "create",
        "--name",
        "db",
        "--label",
        "tier=back",
        "-v",
        "data:/var/lib/data",
        "app",
    ]);
    // A long command with letters of several bytes, cut for the table.
    s.ok(&[
        "create",
        "--name",
        "webcache",
        "--network",
        "host",
        "app",
        "echo",
        "grüße aus Köln mit ö",
    ]);
    let failed = s.run(&["run", "--name", "job", "app", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3));
    let web_id = s.ok(&["inspect", "-f", "{{.Id}}", "web"]);
    let check = |filters: &[&str], expected: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        args.extend(filters.iter().flat_map(|f| ["-f", f]));
        let out = s.ok(&args);
        let mut names: Vec<&str> = out.lines().collect();
        names.sort();
        assert_eq!(names, expected, "{filters:?}");
    };
    check(&[], &["db", "job", "web", "webcache"]);
    let table = s.ok(&["ps", "-a", "-f", "name=webcache"]);
    assert!(table.contains("\"echo grüße aus Köln…\""), "{table}");
    check(&["name=web"], &["web", "webcache"]);
    // One key twice: either; two keys: both; labels: all.
    check(&["name=db", "name=job"], &["db", "job"]);
    check(&["name=web", "network=host"], &["webcache"]);
    check(&["label=tier"], &["db", "web"]);
    check(&["label=tier=front", "label=env=prod"], &["web"]);
    check(&["label=tier=front", "label=env=dev"], &[]);
    check(&["status=exited"], &["job"]);
    check(
        &["status=created", "status=exited"],
        &["db", "job", "web", "webcache"],
    );
    check(&["exited=3"], &["job"]);
    check(&["exited=0"], &[]);
    check(&["volume=data"], &["db"]);
    check(&["volume=/var/lib/data"], &["db"]);
    check(&["ancestor=app"], &["db", "job", "web", "webcache"]);
    check(&["ancestor=app:latest"], &["db", "job", "web", "webcache"]);
    check(&["ancestor=other"], &[]);
    check(&[&format!("id={}", &web_id.trim()[..8])], &["web"]);
    // -n and -l: the newest, in every state, after the filters.
    assert_eq!(s.ok(&["ps", "-l", "--format", "{{.Names}}"]), "job\n");
    assert_eq!(
        s.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        "job\nwebcache\n"
    );
    let newest_web = s.ok(&["ps", "-n", "1", "-f", "name=web", "--format", "{{.Names}}"]);
    assert_eq!(newest_web, "webcache\n");
    // Without -a, only running ones, but a status filter looks at all.
    assert_eq!(s.ok(&["ps", "-q", "-f", "name=web"]), "");
    assert_eq!(
        s.ok(&["ps", "--format", "{{.Names}}", "-f", "status=exited"]),
        "job\n"
    );
    for bad in ["status=sleeping", "exited=x", "colour=red", "name"] {
        let err = s.fails(&["ps", "-f", bad]);
        assert!(err.contains(&format!("bad filter '{bad}'")), "{err}");
    }
}

#[test]
fn containers_get_dockers_network_files_and_their_layer_does_not() {
    let s = Strata::new();
    image(&s, "app");
    // The image has an /etc but none of the three files.
    let out = s.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "app",
        "sh",
        "-c",
        "cat /etc/hostname; head -1 /etc/hosts; echo '10.1.1.1 db' >> /etc/hosts; grep -c db /etc/hosts",
    ]);
    assert_eq!(out, "box\n127.0.0.1\tlocalhost\n1\n");
    // On the host's network, the host's files.
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        let out = s.ok(&["run", "--rm", "--network", "host", "app", "cat", file]);
        assert_eq!(out, std::fs::read_to_string(file).unwrap_or_default());
    }
    // With a read-only root they are read-only too, as Docker's.
    let out = s.run(&[
        "run",
        "--rm",
        "--read-only",
        "app",
        "sh",
        "-c",
        "echo x >> /etc/hosts",
    ]);
    assert!(!out.status.success());
    // The runtime's mount points are no change of the container's.
    s.ok(&["run", "--name", "quiet", "app", "true"]);
    assert_eq!(s.ok(&["diff", "quiet"]), "");
    s.ok(&[
        "run",
        "--name",
        "touched",
        "app",
        "sh",
        "-c",
        "echo x > /etc/motd",
    ]);
    assert_eq!(s.ok(&["diff", "touched"]), "C /etc\nC /etc/motd\n");
    // An image with no VOLUME (whose target would be a change) and no
    // /dev, /proc, /sys or /etc/hosts: committing a run that changed
    // nothing gives the empty layer, as Docker's does.
    let plain = s.path("plain.tar");
    std::fs::write(&plain, common::archive::busybox_rootfs()).unwrap();
    s.ok(&["import", plain.to_str().unwrap(), "plain"]);
    s.ok(&["run", "--name", "idle", "plain", "sh", "-c", ":"]);
    s.ok(&["commit", "idle", "quiet:1"]);
    // The empty layer (a tar of no entries): not even an empty /etc/hosts.
    let layers = s.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        "quiet:1",
    ]);
    let empty = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    assert!(
        layers.trim_end().ends_with(&format!("\"{empty}\"]")),
        "{layers}"
    );
}

/// The runtime's mount points live in an init layer per image, made with
/// the first container: a container that changes nothing has an empty
/// layer of its own, all the image's containers share the init layer, and
/// it goes with the image.
#[test]
fn an_init_layer_holds_the_runtimes_mount_points() {
    for driver in [None, Some("vfs")] {
        let s = Strata::with_driver(driver);
        // No /etc, /dev, /proc or /sys at all.
        let plain = s.path("plain.tar");
        std::fs::write(&plain, common::archive::busybox_rootfs()).unwrap();
        s.ok(&["import", plain.to_str().unwrap(), "plain"]);
        let layers = s.state().snapshots.len();
        for name in ["one", "two"] {
            s.ok(&[
                "run",
                "--name",
                name,
                "plain",
                "sh",
                "-c",
                "cat /etc/hostname",
            ]);
            assert_eq!(s.ok(&["diff", name]), "", "{driver:?}");
        }
        // The image's layer, its init layer and the two containers'.
        assert_eq!(s.state().snapshots.len(), layers + 3, "{driver:?}");
        if driver.is_none() {
            let data = |name: &str, dir: &str| {
                let format = format!("{{{{.GraphDriver.Data.{dir}}}}}");
                s.ok(&["inspect", "-f", &format, name])
                    .trim_end()
                    .to_owned()
            };
            let upper = data("one", "UpperDir");
            assert!(std::path::Path::new(&upper).is_dir(), "{upper}");
            assert_eq!(common::listing(&upper), Vec::<String>::new());
            let lowers = data("one", "LowerDir");
            assert_eq!(lowers, data("two", "LowerDir"));
            let init = std::path::PathBuf::from(lowers.split(':').next().unwrap());
            assert_eq!(common::listing(&init), ["dev", "etc", "proc", "sys"]);
            assert_eq!(
                common::listing(init.join("etc")),
                ["hostname", "hosts", "resolv.conf"]
            );
        }
        s.ok(&["rm", "one", "two"]);
        s.ok(&["rmi", "plain"]);
        assert_eq!(s.state().snapshots, Vec::<String>::new(), "{driver:?}");
        assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
    }
}

#[test]
fn copy_on_write_leaves_the_image_alone() {
    let s = Strata::new();
    image(&s, "app");
    let before = s.image_tree("app");
    s.ok(&[
        "create",
        "--name",
        "ctr-a",
        "app",
        "sh",
        "-c",
        "echo changed-by-a > /etc/motd; rm /etc/group; touch /new",
    ]);
    s.ok(&["create", "--name", "ctr-b", "app", "cat", "/etc/motd"]);
    s.ok(&["start", "ctr-a"]);
    assert_eq!(s.ok(&["wait", "ctr-a"]), "0\n");
    s.ok(&["start", "ctr-b"]);
    s.ok(&["wait", "ctr-b"]);
    assert_eq!(s.ok(&["logs", "ctr-b"]), "from the image\n");
    assert_eq!(
        lines(&s.ok(&["diff", "ctr-a"])),
        ["C /etc", "D /etc/group", "C /etc/motd", "A /new"]
    );
    assert_eq!(s.ok(&["diff", "ctr-b"]), "");
    // The image's layer files are byte for byte what they were.
    assert_eq!(s.image_tree("app"), before);
    // A container from the image still sees the original.
    assert_eq!(
        s.ok(&["run", "--rm", "app", "cat", "/etc/motd"]),
        "from the image\n"
    );
    // rm removes the writable layer: its snapshot is gone.
    let snapshots = s.state().snapshots.len();
    s.ok(&["rm", "ctr-a"]);
    assert_eq!(s.state().snapshots.len(), snapshots - 1);
}

#[test]
fn empty_volumes_are_filled_from_the_image_once() {
    let s = Strata::new();
    image(&s, "app");
    let out = s.ok(&[
        "run", "--rm", "-v", "filled:/var/lib/data", "app",
        "sh", "-c", "stat -c '%u:%g %a' /var/lib/data /var/lib/data/seed; cat /var/lib/data/seed; echo new > /var/lib/data/seed",
    ]);
    assert_eq!(out, "33:33 750\n33:33 640\nseeded\n");
    // Not empty any more: never overwritten.
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "filled:/var/lib/data",
        "app",
        "cat",
        "/var/lib/data/seed",
    ]);
    assert_eq!(out, "new\n");
    // nocopy: the volume stays empty.
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "bare:/var/lib/data:nocopy",
        "app",
        "ls",
        "/var/lib/data",
    ]);
    assert_eq!(out, "");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_named_ones_stay() {
    let s = Strata::new();
    image(&s, "app");
    // VOLUME /vol gives an anonymous volume; -v /scratch another.
    s.ok(&[
        "create",
        "--name",
        "ctr",
        "-v",
        "/scratch",
        "-v",
        "keep:/keep",
        "app",
        "true",
    ]);
    let all = s.ok(&["volume", "ls", "-q"]);
    assert_eq!(all.lines().count(), 3, "{all}");
    let anon = s.ok(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        "label=com.docker.volume.anonymous",
    ]);
    assert_eq!(anon.lines().count(), 2, "{anon}");
    // In use by a container (not even running): refused, naming it.
    let err = s.fails(&["volume", "rm", "keep"]);
    assert!(err.contains("in use by container ctr"), "{err}");
    assert_eq!(
        s.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        ""
    );
    s.ok(&["rm", "-v", "ctr"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "keep\n");
    // --rm does the same.
    s.ok(&["run", "--rm", "app", "true"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "keep\n");
    // prune: anonymous only; -a named ones too.
    s.ok(&["create", "--name", "ctr2", "app", "true"]);
    s.ok(&["rm", "ctr2"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    s.ok(&["volume", "prune", "-f"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "keep\n");
    s.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn bad_names_and_specs_are_refused_and_change_nothing() {
    let s = Strata::new();
    image(&s, "app");
    let before = s.state();
    for (args, expected) in [
        (vec!["volume", "create", "../evil"], "invalid"),
        (vec!["volume", "create", "a/b"], "invalid"),
        (vec!["run", "-v", "e/../vil:/x", "app", "true"], "invalid"),
        (vec!["run", "-v", "~/evil:/x", "app", "true"], "invalid"),
        (
            vec!["run", "-v", "data:relative", "app", "true"],
            "absolute",
        ),
        (
            vec!["run", "-v", "data:/x:bogus", "app", "true"],
            "invalid mode",
        ),
        (
            vec![
                "run",
                "--mount",
                "type=volume,dst=/x,bind-propagation=shared",
                "app",
                "true",
            ],
            "bind-propagation",
        ),
        (vec!["run", "--mount", "src=data", "app", "true"], "Target"),
        (
            vec!["run", "-v", "va:/x", "-v", "vb:/x", "app", "true"],
            "duplicate mount point",
        ),
        (
            vec!["run", "--name", "bad/name", "app", "true"],
            "invalid container name",
        ),
        (
            vec!["run", "--network", "bridge", "app", "true"],
            "network 'bridge'",
        ),
        (
            vec!["run", "-u", "nobody", "app", "true"],
            "unable to find user nobody",
        ),
        (vec!["volume", "rm", "nope"], "no such volume"),
        (vec!["rm", "nope"], "no such container"),
    ] {
        let err = s.fails(&args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let after = s.state();
    assert_eq!(after.images, before.images);
    assert_eq!(after.snapshots, before.snapshots);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

/// A loop device over a small file, detached when dropped.
struct LoopDevice(String);

impl LoopDevice {
    fn new(s: &Strata) -> LoopDevice {
        let file = s.path("disk.img");
        std::fs::write(&file, b"on the disk\n".repeat(512)).unwrap();
        let out = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "losetup: {out:?}");
        LoopDevice(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    }

    /// Its `(major, minor)`.
    fn number(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(&self.0).unwrap().rdev();
        (rustix::fs::major(dev).into(), rustix::fs::minor(dev).into())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

#[test]
fn a_container_opens_only_the_devices_it_is_given() {
    let s = Strata::new();
    image(&s, "app");
    let disk = LoopDevice::new(&s);
    let (major, minor) = disk.number();
    // Root in the container may make the node (CAP_MKNOD, as in Docker),
    // but the device cgroup refuses to open it.
    let made = format!("mknod /disk b {major} {minor} && head -c 12 /disk");
    let out = s.run(&["run", "--rm", "app", "sh", "-c", &made]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a host device opened in a container");
    assert!(said.contains("Operation not permitted"), "{said}");
    // Given with --device, the same disk opens.
    let given = format!("{}:/dev/xvda:r", disk.0);
    let read = [
        "run",
        "--rm",
        "--device",
        &given,
        "app",
        "head",
        "-c",
        "12",
        "/dev/xvda",
    ];
    assert_eq!(s.ok(&read), "on the disk\n");
}

#[test]
fn exit_codes_logs_and_state_survive_the_command() {
    let s = Strata::new();
    image(&s, "app");
    let out = s.run(&[
        "run",
        "--rm",
        "app",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // Detached: another invocation sees it running, then exited with its
    // code though no strata command was waiting for it.
    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "app",
        "sh",
        "-c",
        "echo started; sleep 1; exit 5",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert!(s.ok(&["ps"]).contains("bg"));
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "bg"])).unwrap();
    assert_eq!(inspect[0]["State"]["Running"], true);
    // Fields scripts read from Docker's inspect.
    let driver = &inspect[0]["GraphDriver"]["Name"];
    assert!(driver == "overlay" || driver == "vfs", "{driver}");
    assert_eq!(&inspect[0]["Driver"], driver);
    assert_eq!(inspect[0]["RestartCount"], 0);
    std::thread::sleep(std::time::Duration::from_millis(1800));
    let ps = s.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (5)"), "{ps}");
    assert!(!s.ok(&["ps"]).contains("bg"));
    assert_eq!(s.ok(&["logs", "bg"]), "started\n");
    assert_eq!(s.ok(&["wait", "bg"]), "5\n");
    // Restarting keeps the writable layer and appends to the log.
    s.ok(&["start", "bg"]);
    assert_eq!(s.ok(&["wait", "bg"]), "5\n");
    assert_eq!(s.ok(&["logs", "bg"]), "started\nstarted\n");
    assert_eq!(s.ok(&["logs", "--tail", "1", "bg"]), "started\n");
    assert_eq!(s.ok(&["logs", "--tail", "all", "bg"]), "started\nstarted\n");
    // --since and --until as Docker takes them: a while back, or a time.
    assert_eq!(s.ok(&["logs", "--since", "1h", "bg"]), "started\nstarted\n");
    assert_eq!(s.ok(&["logs", "--until", "1h", "bg"]), "");
    assert_eq!(s.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "bg"]), "");
    let err = s.fails(&["logs", "--since", "yesterday", "bg"]);
    assert!(err.contains("--since: 'yesterday' is not a time"), "{err}");
}

/// `run`'s status and words when the container's command never ran, as
/// Docker's: 127 not found, 126 not runnable, 125 Strata's own failure.
#[test]
fn run_fails_with_dockers_statuses_and_leaves_nothing() {
    let s = Strata::new();
    image(&s, "app");
    s.ok(&["create", "--name", "taken", "app"]);
    let before = s.state();
    for (args, status, said) in [
        (
            vec!["run", "--rm", "app", "nosuchcmd"],
            127,
            r#"exec: "nosuchcmd": executable file not found in $PATH"#,
        ),
        (
            vec!["run", "-d", "--rm", "app", "nosuchcmd"],
            127,
            "executable file not found",
        ),
        (
            vec!["run", "--rm", "app", "/etc/motd"],
            126,
            r#"exec: "/etc/motd": permission denied"#,
        ),
        (vec!["run", "--rm", "nosuch", "true"], 125, "no such image"),
        (
            vec!["run", "--rm", "-u", "nobody", "app", "true"],
            125,
            "nobody",
        ),
        (vec!["run", "--bogus", "app", "true"], 125, "'--bogus'"),
        (vec!["ps", "--bogus"], 125, "'--bogus'"),
        // The runtime, started early, is stopped and its gate removed.
        (
            vec!["run", "--rm", "--name", "taken", "app", "true"],
            125,
            "already in use",
        ),
        (
            vec!["run", "-d", "--name", "taken", "app", "true"],
            125,
            "already in use",
        ),
        // No runtime to start, early or late.
        (
            vec![
                "run",
                "--rm",
                "--runtime",
                "/nonexistent",
                "--name",
                "taken",
                "app",
            ],
            125,
            "already in use",
        ),
        (
            vec!["run", "--rm", "--runtime", "/nonexistent", "app", "true"],
            125,
            "/nonexistent: no such file or directory",
        ),
        (
            vec!["run", "-d", "--rm", "--runtime", "/nonexistent", "app"],
            125,
            "/nonexistent: no such file or directory",
        ),
    ] {
        let out = s.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        // runc's own words in ours, without its log line's dressing.
        let ours = stderr.lines().filter(|l| l.starts_with("Error: "));
        assert!(ours.clone().all(|l| !l.contains("time=")), "{stderr}");
    }
    // A plain failure of another command stays 1.
    s.fails(&["start", "nosuch"]);
    assert_eq!(s.state(), before);
    assert_eq!(s.ok(&["ps", "-a", "--format", "{{.Names}}"]), "taken\n");
    // No runtime left waiting at a gate either.
    let pattern = format!("runc .*{}", s.root.display());
    let waiting = std::process::Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    assert!(waiting.stdout.is_empty(), "{waiting:?}");
}

/// A container left looking running (its monitor gone) by a runtime that
/// is no longer there is not running: `ps` lists it and `rm` removes it.
#[test]
fn a_container_whose_runtime_is_gone_is_not_running() {
    let s = Strata::new();
    image(&s, "app");
    let id = s.ok(&[
        "create",
        "--runtime",
        "/nonexistent",
        "--name",
        "gone",
        "app",
    ]);
    let state = s.root.join("containers").join(id.trim()).join("state.json");
    // A monitor that died while it ran (no process has that pid).
    let stuck = r#"{"running":true,"monitor_pid":2147483647,"monitor_start":1,"pid":0,
        "started_at":"2026-01-01T00:00:00Z","finished_at":null,"exit_code":null}"#;
    std::fs::write(&state, stuck).unwrap();
    let listed = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(listed.starts_with("gone Exited"), "{listed}");
    s.ok(&["rm", "gone"]);
    assert_eq!(s.ok(&["ps", "-a", "-q"]), "");
}

/// A run whose command cannot start leaves (without `--rm`) a Created
/// container, as Docker's: `ps` says Created, inspect has the status and
/// the runtime's words, `wait` gives the status, and a later `start` fails
/// the same way.
#[test]
fn a_failed_start_leaves_a_created_container() {
    let s = Strata::new();
    image(&s, "app");
    let before = s.state();
    for (name, detach) in [("att", &[][..]), ("det", &["-d"][..])] {
        let mut args = vec!["run", "--name", name];
        args.extend(detach);
        args.extend(["app", "nosuchcmd"]);
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(127), "{args:?}");
        let filter = format!("name={name}");
        assert_eq!(
            s.ok(&["ps", "-a", "--filter", &filter, "--format", "{{.Status}}"]),
            "Created\n"
        );
        let state = "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}";
        let inspected = s.ok(&["inspect", "-f", state, name]);
        assert!(
            inspected.starts_with("created 127 ")
                && inspected.contains("executable file not found"),
            "{inspected}"
        );
        assert_eq!(s.ok(&["wait", name]), "127\n");
        let again = s.fails(&["start", name]);
        assert!(again.contains("executable file not found"), "{again}");
        assert!(
            s.ok(&["inspect", "-f", state, name])
                .starts_with("created 127 ")
        );
        s.ok(&["rm", "-v", name]);
    }
    // As it was, but for the image's init layer, made with the first.
    let after = s.state();
    assert_eq!(after.snapshots.len(), before.snapshots.len() + 1);
    assert_eq!(
        common::StoreState {
            snapshots: before.snapshots.clone(),
            ..after
        },
        before
    );
}

/// Docker's answers where they are easy to get wrong: nested mounts,
/// tmpfs flags, the host network's hostname, `wait` on a container never
/// started, `volume rm -f` of a missing volume.
#[test]
fn mounts_hostname_wait_and_volume_rm_as_docker() {
    let s = Strata::new();
    image(&s, "app");
    // The outer mount first, whatever the order given.
    s.ok(&[
        "run",
        "--rm",
        "-v",
        "inner:/d/x",
        "-v",
        "outer:/d",
        "app",
        "sh",
        "-c",
        "echo in > /d/x/f",
    ]);
    assert_eq!(
        s.ok(&["run", "--rm", "-v", "inner:/i", "app", "cat", "/i/f"]),
        "in\n"
    );
    let tmpfs_flags = |spec: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(spec);
        args.extend(["app", "cat", "/proc/mounts"]);
        let mounts = s.ok(&args);
        let line = mounts
            .lines()
            .find(|l| l.contains(" /t tmpfs "))
            .expect("/t mounted")
            .to_owned();
        line.split(' ').nth(3).unwrap().to_owned()
    };
    for spec in [&["--tmpfs", "/t"][..], &["--mount", "type=tmpfs,dst=/t"]] {
        let flags = tmpfs_flags(spec);
        for flag in ["noexec", "nosuid", "nodev"] {
            assert!(flags.split(',').any(|f| f == flag), "{spec:?}: {flags}");
        }
    }
    let flags = tmpfs_flags(&["--tmpfs", "/t:exec"]);
    assert!(!flags.contains("noexec"), "{flags}");
    // On the host's network, the host's name, unless one is given.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let names = "hostname; cat /etc/hostname";
    let run = ["run", "--rm", "--network", "host"];
    assert_eq!(
        s.ok(&[&run[..], &["app", "sh", "-c", names]].concat()),
        host.repeat(2)
    );
    let given = s.ok(&[&run[..], &["--hostname", "h1", "app", "sh", "-c", names]].concat());
    assert_eq!(given, "h1\nh1\n");
    let id = s.ok(&["create", "--name", "idle", "app", "true"]);
    assert_eq!(s.ok(&["wait", id.trim()]), "0\n");
    assert!(
        s.ok(&["ps", "-a", "--filter", "status=created", "-q"])
            .contains(&id[..12])
    );
    assert_eq!(s.ok(&["volume", "rm", "-f", "nosuch"]), "nosuch\n");
    let err = s.fails(&["volume", "rm", "nosuch"]);
    assert!(err.contains("no such volume: nosuch"), "{err}");
}

/// The create flags that reach the container: environment from a file,
/// working directory, a read-only root, `--volumes-from` (whose anonymous
/// volumes a `--rm` borrower leaves alone), a volume subpath made on first
/// use, a bind source made with `bind-create-src`, and `--stop-timeout`.
#[test]
fn create_flags_reach_the_container() {
    let s = Strata::new();
    image(&s, "app");
    let env = s.path("env");
    std::fs::write(&env, "# a comment\nA=from file\nB\n").unwrap();
    let out = s
        .command(&[
            "run",
            "--rm",
            "--env-file",
            env.to_str().unwrap(),
            "-e",
            "C=3",
            "-w",
            "/var/lib",
            "app",
            "sh",
            "-c",
            "echo \"$A|$B|$C|$(pwd)\"",
        ])
        .env("B", "from strata's")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from file|from strata's|3|/var/lib\n"
    );
    let ro = ["run", "--rm", "--read-only", "app", "sh", "-c"];
    let out = s.ok(&[
        &ro[..],
        &["touch /x 2>/dev/null || echo refused; touch /vol/y"],
    ]
    .concat());
    assert_eq!(
        out, "refused\n",
        "a read-only root is read-only but its volumes are not"
    );

    s.ok(&[
        "create", "--name", "src", "-v", "/anon", "-v", "named:/n", "app", "true",
    ]);
    s.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "app",
        "sh",
        "-c",
        "echo a > /anon/f; echo n > /n/f",
    ]);
    let read = "cat /anon/f /n/f; touch /anon/z 2>/dev/null || echo refused";
    let out = s.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "app",
        "sh",
        "-c",
        read,
    ]);
    assert_eq!(out, "a\nn\nrefused\n");

    s.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=sub,dst=/s,volume-subpath=a/b",
        "app",
        "sh",
        "-c",
        "echo deep > /s/f",
    ]);
    assert_eq!(
        s.ok(&["run", "--rm", "-v", "sub:/v", "app", "cat", "/v/a/b/f"]),
        "deep\n"
    );
    // A symlink planted in the volume resolves inside it.
    s.ok(&[
        "run", "--rm", "-v", "sub:/v", "app", "ln", "-s", "/", "/v/out",
    ]);
    let marker = format!("strata-subpath-{}", std::process::id());
    let escape = "type=volume,src=sub,dst=/s,volume-subpath=out/tmp";
    s.ok(&[
        "run",
        "--rm",
        "--mount",
        escape,
        "app",
        "touch",
        &format!("/s/{marker}"),
    ]);
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "escaped the volume"
    );
    let inside = format!("/v/tmp/{marker}");
    s.ok(&["run", "--rm", "-v", "sub:/v", "app", "stat", &inside]);
    // The mounts made for the runtime went with the runs.
    assert_eq!(common::mounts_under(&s.root), Vec::<String>::new());
    let made = s.path("made/here");
    let mount = format!("type=bind,src={},dst=/b,bind-create-src", made.display());
    s.ok(&[
        "run",
        "--rm",
        "--mount",
        &mount,
        "app",
        "sh",
        "-c",
        "echo b > /b/f",
    ]);
    assert_eq!(std::fs::read_to_string(made.join("f")).unwrap(), "b\n");

    // PID 1 ignores TERM: stop waits the container's timeout, then kills.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        "app",
        "sh",
        "-c",
        "trap '' TERM; echo up; sleep 60",
    ]);
    while s.ok(&["logs", "stubborn"]).is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let asked = std::time::Instant::now();
    s.ok(&["stop", "stubborn"]);
    let waited = asked.elapsed();
    assert!(
        waited.as_secs_f64() >= 0.9,
        "stopped after {waited:?}, before its timeout"
    );
    assert!(
        waited.as_secs() < 8,
        "stopped after {waited:?}: Docker's 10 s, not its 1 s"
    );
    assert_eq!(s.ok(&["wait", "stubborn"]), "137\n");
}

/// `logs -f` prints what the container writes as it writes it, and ends
/// when the container does.
#[test]
fn logs_follow_a_running_container() {
    use std::io::{BufRead, BufReader, Read};
    let s = Strata::new();
    image(&s, "app");
    let script = "echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo two";
    s.ok(&["run", "-d", "--name", "talker", "app", "sh", "-c", script]);
    let mut follow = s
        .command(&["logs", "-f", "talker"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "one\n");
    // Only now may the container write its second line.
    s.ok(&["exec", "talker", "touch", "/tmp/go"]);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "two\n");
    assert!(follow.wait().unwrap().success());
}

#[test]
fn stop_kill_exec_and_rm_of_running_containers() {
    let s = Strata::new();
    image(&s, "app");
    s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "webhost",
        "-e",
        "GREETING=hi",
        "app",
        "sleep",
        "60",
    ]);
    assert_eq!(s.ok(&["exec", "web", "hostname"]), "webhost\n");
    assert_eq!(
        s.ok(&["exec", "-e", "X=1", "web", "sh", "-c", "echo $GREETING$X"]),
        "hi1\n"
    );
    assert_eq!(s.ok(&["exec", "-u", "www", "web", "id", "-u"]), "33\n");
    assert_eq!(
        s.run(&["exec", "web", "sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    let err = s.fails(&["rm", "web"]);
    assert!(err.contains("running container"), "{err}");
    // sleep as pid 1 ignores SIGTERM: stop falls back to SIGKILL.
    s.ok(&["stop", "-t", "1", "web"]);
    assert!(s.ok(&["ps", "-a"]).contains("Exited (137)"));
    let err = s.fails(&["kill", "web"]);
    assert!(err.contains("not running"), "{err}");
    s.ok(&["start", "web"]);
    s.ok(&["kill", "web"]);
    assert_eq!(s.ok(&["wait", "web"]), "137\n");
    s.ok(&["start", "web"]);
    s.ok(&["rm", "-f", "web"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    // Nothing of it is left mounted or running.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(s.root.to_str().unwrap()),
        "a mount was left"
    );
}

#[test]
fn commit_export_cp_rename_prune() {
    let s = Strata::new();
    image(&s, "app");
    let host_dir = s.path("host-dir");
    std::fs::create_dir(&host_dir).unwrap();
    let script = format!(
        "mkdir -p /srv && echo built > /srv/out && ln -s / /srv/root-link && ln -s {} /srv/escape",
        host_dir.display()
    );
    s.ok(&["run", "--name", "builder", "app", "sh", "-c", &script]);
    let id = s.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/srv/out\"]",
        "-m",
        "made",
        "builder",
        "app:built",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(s.ok(&["run", "--rm", "app:built"]), "built\n");
    let history = s.ok(&["history", "app:built"]);
    assert!(
        history.lines().nth(1).unwrap().contains("sh -c mkdir"),
        "{history}"
    );
    // rmi refuses an image a container uses.
    let err = s.fails(&["rmi", "app"]);
    assert!(err.contains("being used by container builder"), "{err}");

    let tar = s.path("export.tar");
    s.ok(&["export", "-o", tar.to_str().unwrap(), "builder"]);
    let listing = common::tool("tar", &["-tf", tar.to_str().unwrap()]);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "srv/out"),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "etc/motd")
    );

    // cp both ways; a symlink in the container cannot lead outside it.
    let host_file = s.path("note");
    std::fs::write(&host_file, "from host").unwrap();
    s.ok(&[
        "cp",
        host_file.to_str().unwrap(),
        "builder:/srv/root-link/tmp/",
    ]);
    // The host path the link names does not exist inside the container:
    // refused, and nothing lands on the host.
    s.fails(&[
        "cp",
        host_file.to_str().unwrap(),
        "builder:/srv/escape/note",
    ]);
    assert_eq!(std::fs::read_dir(&host_dir).unwrap().count(), 0);
    let back = s.path("back");
    s.ok(&["cp", "builder:/tmp/note", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from host");
    let dir_back = s.path("srv-copy");
    s.ok(&["cp", "builder:/srv", dir_back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(dir_back.join("out")).unwrap(),
        "built\n"
    );
    assert!(dir_back.join("root-link").is_symlink());

    s.ok(&["rename", "builder", "renamed"]);
    assert!(s.ok(&["ps", "-a"]).contains("renamed"));
    let err = s.fails(&["rename", "renamed", "bad/name"]);
    assert!(err.contains("invalid container name"), "{err}");
    s.ok(&["container", "prune", "-f"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    s.ok(&["rmi", "app:built"]);
    s.ok(&["rmi", "app"]);
}
