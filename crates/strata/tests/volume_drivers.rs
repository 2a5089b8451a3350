//! Volume drivers end to end, through the real binary, real mounts and
//! real runc: sized local volumes, mount types, third-party plugins (a
//! second Strata serving its volumes, and a plugin that misbehaves), and
//! volume export, import and clone.

mod common;

use std::time::{Duration, Instant};

use common::Strata;
use common::archive::Tar;
use common::plugin::{BadPlugin, Knob, REFUSAL, Serving};
use common::tree::Tree;

/// A busybox image with the applets these tests use.
fn image(s: &Strata) {
    let busybox = std::fs::read("/bin/busybox").expect("install busybox-static (scripts/setup)");
    let mut t = Tar::new();
    t.dir("bin", 0o755)
        .file_mode("bin/busybox", &busybox, 0o755, 0, 0);
    for applet in ["sh", "cat", "dd", "echo", "ls", "sleep", "true", "df"] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("tmp", 0o1777).dir("data", 0o755);
    let tar = s.path("img.tar");
    std::fs::write(&tar, t.build()).unwrap();
    s.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), "img"]);
}

fn mounted(path: &std::path::Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_ref()))
}

fn inspect(s: &Strata, name: &str) -> serde_json::Value {
    let out = s.ok(&["volume", "inspect", name]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
}

#[test]
fn sized_volume_holds_its_limit_in_a_container() {
    let s = Strata::new();
    image(&s);
    s.ok(&["volume", "create", "--opt", "size=20M", "sized"]);
    let data = s.root.join("volumes/sized/_data");
    assert!(!mounted(&data), "mounted before any container uses it");

    let out = s.run(&[
        "run",
        "--rm",
        "-v",
        "sized:/data",
        "img",
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/big bs=1M count=30",
    ]);
    assert!(
        !out.status.success(),
        "writing 30 MiB into 20 MiB succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!mounted(&data), "still mounted after the last container");

    let v = inspect(&s, "sized");
    assert_eq!(v["Options"]["size"], "20M");
    let size = v["Status"]["size"].as_u64().expect("size in Status");
    let usage = v["Status"]["usage"].as_u64().expect("usage in Status");
    assert_eq!(size, 20 << 20);
    assert!(usage > 10 << 20 && usage <= size, "usage {usage}");

    let df = s.ok(&["system", "df", "--format", "json"]);
    let row: serde_json::Value = df
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["Type"] == "Local Volumes")
        .expect("a Local Volumes row");
    assert_eq!(row["TotalCount"], 1, "{row}");
    assert!(row["Size"].as_str().unwrap().ends_with("MB"), "{row}");

    // The data stays for the next container; removal takes it all.
    let seen = s.ok(&["run", "--rm", "-v", "sized:/data", "img", "ls", "/data"]);
    assert_eq!(seen.trim(), "big");
    s.ok(&["volume", "rm", "sized"]);
    assert!(!s.root.join("volumes/sized").exists());
}

#[test]
fn mount_types_are_made_on_first_use_and_undone_on_last() {
    let s = Strata::new();
    image(&s);
    let host = s.path("host");
    std::fs::create_dir(&host).unwrap();
    let device = format!("device={}", host.display());
    s.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "bv",
    ]);
    s.ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/data",
        "img",
        "sh",
        "-c",
        "echo via-bind > /data/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("f")).unwrap(),
        "via-bind\n"
    );

    s.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ]);
    let out = s.run(&[
        "run",
        "--rm",
        "-v",
        "tv:/data",
        "img",
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/f bs=1M count=2",
    ]);
    assert!(!out.status.success(), "a 1 MiB tmpfs took 2 MiB");
    // Two containers share one mount; it goes with the last of them.
    let a = s.ok(&["run", "-d", "-v", "tv:/data", "img", "sleep", "60"]);
    let b = s.ok(&["run", "-d", "-v", "tv:/data", "img", "sleep", "60"]);
    let data = s.root.join("volumes/tv/_data");
    assert!(mounted(&data));
    s.ok(&["rm", "-f", a.trim()]);
    assert!(mounted(&data), "unmounted while another container uses it");
    s.ok(&["rm", "-f", b.trim()]);
    assert!(!mounted(&data), "still mounted after the last container");
    // Prune leaves volumes made with options, as Docker's does.
    s.ok(&["volume", "create", "plain"]);
    s.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "bv\ntv\n");

    // Bad options: a clear error, and no volume.
    let before = s.state();
    for opts in [
        &["-o", "size=lots"][..],
        &["-o", "size=0"],
        &["-o", "colour=blue"],
        &[
            "-o",
            "type=none",
            "-o",
            "o=bind",
            "-o",
            "device=/nonexistent/x",
        ],
        &["-o", "type=ext4", "-o", "size=10M"],
    ] {
        let mut args = vec!["volume", "create"];
        args.extend_from_slice(opts);
        args.push("bad");
        let err = s.fails(&args);
        assert!(err.contains("local"), "{opts:?}: {err}");
        assert_eq!(s.state(), before, "{opts:?} changed the store");
    }
}

/// `strata plugin serve` over a second store, on a socket in `s`'s
/// plugin folder: a plugin that behaves.
struct Served {
    // Stopped before its store goes.
    _plugin: Serving,
    store: Strata,
}

impl Served {
    fn start(s: &Strata, name: &str) -> Served {
        let store = Strata::new();
        let socket = s.plugin_sockets().join(format!("{name}.sock"));
        Served {
            _plugin: Serving::start(&store, name, Some(&socket)),
            store,
        }
    }
}

#[test]
fn plugin_volumes_through_every_way_of_naming_a_driver() {
    let s = Strata::new();
    image(&s);
    let p = Served::start(&s, "strataplug");

    s.ok(&[
        "volume",
        "create",
        "-d",
        "strataplug",
        "--opt",
        "size=20M",
        "pv",
    ]);
    s.ok(&[
        "run",
        "--rm",
        "-v",
        "pv:/data",
        "img",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let seen = s.ok(&["run", "--rm", "-v", "pv:/data", "img", "cat", "/data/f"]);
    assert_eq!(seen, "kept\n");
    s.ok(&[
        "run",
        "--rm",
        "--volume-driver",
        "strataplug",
        "-v",
        "pv2:/data",
        "img",
        "true",
    ]);
    s.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=pv3,target=/data,volume-driver=strataplug,volume-opt=size=10M",
        "img",
        "true",
    ]);

    // Both sides know them: the plugin's store holds the data.
    let theirs = p.store.ok(&["volume", "ls", "-q"]);
    assert_eq!(theirs, "pv\npv2\npv3\n");
    assert_eq!(inspect(&p.store, "pv3")["Options"]["size"], "10M");
    let ours = s.ok(&["volume", "ls"]);
    for name in ["pv", "pv2", "pv3"] {
        assert!(
            ours.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["strataplug", name]),
            "{ours}"
        );
    }
    // A volume made through the plugin by someone else shows too.
    p.store.ok(&["volume", "create", "theirs"]);
    assert!(s.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "theirs"));

    // While our container runs, the plugin holds the mount for it.
    let c = s.ok(&["run", "-d", "-v", "pv:/data", "img", "sleep", "60"]);
    let err = p.store.fails(&["volume", "rm", "pv"]);
    assert!(err.contains("in use"), "{err}");
    s.ok(&["rm", "-f", c.trim()]);

    // Prune leaves a plugin's volumes alone, as Docker's does.
    s.ok(&["volume", "prune", "-a", "-f"]);
    s.ok(&["volume", "rm", "pv"]);
    assert_eq!(p.store.ok(&["volume", "ls", "-q"]), "pv2\npv3\ntheirs\n");
}

/// `strata volume create -d NAME` against a plugin that misbehaves:
/// the message names the plugin and the call, and nothing is recorded.
fn check_failure(s: &Strata, plugin: &str, wanted: &str) {
    let before = s.state();
    let t = Instant::now();
    let out = s.run(&["volume", "create", "-d", plugin, "vol"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{plugin}: {err}");
    assert!(
        err.contains(plugin) && err.contains("VolumeDriver.Create"),
        "{plugin}: {err}"
    );
    assert!(
        err.contains(wanted),
        "{plugin}: wanted '{wanted}' in: {err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{plugin}: took {:?}",
        t.elapsed()
    );
    assert_eq!(s.state(), before, "{plugin} left something behind");
}

#[test]
fn misbehaving_plugins_fail_clearly_and_record_nothing() {
    let mut s = Strata::new();
    s.env = vec![
        ("STRATA_PLUGIN_TIMEOUT".into(), "1".into()),
        ("STRATA_PLUGIN_RETRY_BUDGET".into(), "2".into()),
    ];
    let dir = s.plugin_sockets();
    let slow = BadPlugin::start(&dir, "slow", Knob::Slow(Duration::from_secs(3)));
    BadPlugin::start(&dir, "garbage", Knob::Garbage);
    BadPlugin::start(&dir, "refuses", Knob::Refuses);
    BadPlugin::start(&dir, "err200", Knob::ErrOn200);
    BadPlugin::down(&dir, "down");
    check_failure(&s, "slow", "no answer within");
    // Timed out once, not retried: the plugin may have acted on it.
    assert_eq!(slow.creates.load(std::sync::atomic::Ordering::SeqCst), 1);
    check_failure(&s, "garbage", "invalid");
    check_failure(&s, "refuses", REFUSAL);
    check_failure(&s, "err200", REFUSAL);
    check_failure(&s, "down", "cannot reach");

    let err = s.fails(&["volume", "create", "-d", "nosuch", "vol"]);
    assert!(err.contains("'nosuch' is not available"), "{err}");

    // `volume ls` still lists, with a warning for each plugin it could not ask.
    s.ok(&["volume", "create", "mine"]);
    let out = s.run(&["volume", "ls", "-q"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mine\n");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        warnings.contains("warning: volume driver down"),
        "{warnings}"
    );
}

/// A volume's files: every kind the archive keeps, and a link that points
/// out of the volume, which must stay a link.
fn fill(s: &Strata, name: &str) {
    s.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{name}:/data"),
        "img",
        "sh",
        "-c",
        "echo one > /data/a && mkdir -p /data/d/e && echo two > /data/d/e/b \
         && ln -s /etc /data/escape && ln /data/a /data/hard && chmod 0640 /data/a",
    ]);
}

fn volume_tree(s: &Strata, name: &str) -> Tree {
    Tree::of(&s.root.join("volumes").join(name).join("_data"))
}

#[test]
fn export_import_and_clone_round_trip() {
    let s = Strata::new();
    image(&s);
    s.ok(&["volume", "create", "src"]);
    fill(&s, "src");
    let tar = s.path("src.tar");
    s.ok(&["volume", "export", "src", "-o", tar.to_str().unwrap()]);
    s.ok(&["volume", "import", "copy", tar.to_str().unwrap()]);
    assert_eq!(volume_tree(&s, "copy"), volume_tree(&s, "src"));
    s.ok(&["volume", "clone", "src", "cloned"]);
    assert_eq!(volume_tree(&s, "cloned"), volume_tree(&s, "src"));
    // A sized volume's clone is sized too.
    s.ok(&["volume", "create", "--opt", "size=20M", "small"]);
    fill(&s, "small");
    s.ok(&["volume", "clone", "small", "small2"]);
    assert_eq!(inspect(&s, "small2")["Options"]["size"], "20M");
    let seen = s.ok(&[
        "run",
        "--rm",
        "-v",
        "small2:/data",
        "img",
        "cat",
        "/data/d/e/b",
    ]);
    assert_eq!(seen, "two\n");

    // Refusals leave everything as it was.
    let before = s.state();
    let err = s.fails(&["volume", "import", "src", tar.to_str().unwrap()]);
    assert!(err.contains("not empty"), "{err}");
    let mut hostile = Tar::new();
    hostile
        .symlink("l", "/tmp")
        .file("l/pwned", b"x\n")
        .file("../up", b"x\n");
    let bad = s.path("bad.tar");
    std::fs::write(&bad, hostile.build()).unwrap();
    let imported = s.run(&["volume", "import", "fresh", bad.to_str().unwrap()]);
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    if imported.status.success() {
        // Kept inside: the link's target resolved within the volume.
        s.ok(&["volume", "rm", "fresh"]);
    }
    std::fs::write(s.path("junk.tar"), b"this is not a tar archive at all").unwrap();
    let err = s.fails(&[
        "volume",
        "import",
        "junk",
        s.path("junk.tar").to_str().unwrap(),
    ]);
    assert!(err.contains("not a tar archive"), "{err}");
    let err = s.fails(&["volume", "clone", "src", "copy"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(s.state(), before);
}

#[test]
fn a_killed_command_leaves_nothing_a_check_cannot_clean() {
    let s = Strata::new();
    s.ok(&["volume", "create", "--opt", "size=10M", "vol"]);
    let data = s.root.join("volumes/vol/_data");
    // Killed while holding the volume mounted.
    let out = s
        .command(&["volume", "export", "vol", "-o", "/dev/null"])
        .env("STRATA_FAILPOINT", "volume-after-mount")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(mounted(&data));
    let err = s.fails(&["volume", "rm", "vol"]);
    assert!(err.contains("in use"), "{err}");
    let report = s.run(&["system", "check"]);
    assert!(String::from_utf8_lossy(&report.stdout).contains("volume vol is still mounted"));
    s.ok(&["system", "check", "--repair"]);
    assert!(!mounted(&data));
    s.ok(&["volume", "rm", "vol"]);

    // Killed between the driver's work and the record.
    let out = s
        .command(&["volume", "create", "--opt", "size=10M", "wv"])
        .env("STRATA_FAILPOINT", "volume-create-after-driver")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
    s.ok(&["system", "check", "--repair"]);
    assert!(!s.root.join("volumes/wv").exists());
    assert_eq!(s.ok(&["system", "check"]).trim(), "no problems found");
}
