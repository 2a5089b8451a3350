//! Crash safety: `strata load` killed by SIGKILL at each named failpoint, at
//! arbitrary moments, and racing another load; `create` killed while it
//! makes an image's init layer. After any of them the store
//! repairs (by `system check --repair`, or by itself on the next command
//! that writes), checks clean, still holds the image it had, and loads the
//! image again exactly as a clean load does.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Strata;
use common::archive::{Compression, Image, Tar, busybox_rootfs};
use common::tree::Tree;

/// Deterministic incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An image in both forms a test needs: the archive, and what a clean load
/// of it gives.
struct Reference {
    archive: Vec<u8>,
    id: String,
    tree: Tree,
}

/// Loads `archive` into a fresh store (holding `first` first, if given).
fn clean_load(first: Option<&[u8]>, archive: &[u8], name: &str) -> (Reference, Duration) {
    let s = Strata::new();
    if let Some(first) = first {
        load(&s, "first.tar", first);
    }
    let path = s.path("image.tar");
    std::fs::write(&path, archive).unwrap();
    let start = Instant::now();
    s.ok(&["load", "-q", "-i", path.to_str().unwrap()]);
    let took = start.elapsed();
    let reference = Reference {
        archive: archive.to_vec(),
        id: s.inspect(name)["Id"].as_str().unwrap().to_owned(),
        tree: s.image_tree(name),
    };
    (reference, took)
}

fn load(s: &Strata, file: &str, archive: &[u8]) -> String {
    let path = s.path(file);
    std::fs::write(&path, archive).unwrap();
    s.ok(&["load", "-q", "-i", path.to_str().unwrap()])
}

fn oci(image: &Image) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    image.write_oci(&path);
    std::fs::read(path).unwrap()
}

fn docker(image: &Image) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    image.write_docker(&path);
    std::fs::read(path).unwrap()
}

// ---- the small images the failpoint tests use ----

/// Five layers: busybox, an app, then changes to it (overwrite, whiteout,
/// hardlink to a lower file, opaque directory) and some bulk.
fn small_layers() -> Vec<Vec<u8>> {
    vec![
        busybox_rootfs(),
        Tar::new()
            .dir("app", 0o755)
            .file("app/a", &noise(100_000, 1))
            .file("app/b", b"b v1\n")
            .file("app/c", b"c\n")
            .symlink("app/link", "a")
            .dir("etc/app", 0o750)
            .file("etc/app/conf", b"x=1\n")
            .build(),
        Tar::new()
            .dir("app", 0o755)
            .file("app/b", b"b v2\n")
            .whiteout("app/c")
            .hardlink("app/a2", "app/a")
            .file("bin/tool", &noise(300_000, 2))
            .build(),
        Tar::new()
            .opaque("etc/app")
            .file("etc/app/other", b"y=2\n")
            .dir("data", 0o755)
            .file("data/one", &noise(512 * 1024, 3))
            .build(),
        Tar::new()
            .dir("data", 0o755)
            .file("data/two", &noise(1 << 20, 4))
            .file("data/three", &noise(700_000, 5))
            .whiteout("data/one")
            .build(),
    ]
}

struct Small {
    /// `first`: the two bottom layers, as a docker-archive.
    first: Vec<u8>,
    first_id: String,
    first_tree: Tree,
    /// `second`: all five layers (two shared with `first`), as OCI.
    second: Reference,
}

fn small() -> &'static Small {
    static SMALL: OnceLock<Small> = OnceLock::new();
    SMALL.get_or_init(|| {
        let layers = small_layers();
        let first = docker(&Image {
            compression: Compression::None,
            ..Image::new("first", layers[..2].to_vec())
        });
        let second = oci(&Image::new("second", layers));
        let (first_ref, _) = clean_load(None, &first, "first");
        let (second, _) = clean_load(None, &second, "second");
        Small {
            first,
            first_id: first_ref.id,
            first_tree: first_ref.tree,
            second,
        }
    })
}

// ---- checks shared by every crash ----

fn assert_killed(status: ExitStatus, what: &str, stderr: &[u8]) {
    assert_eq!(
        status.signal(),
        Some(9),
        "{what}: strata should have died by SIGKILL ({status}):\n{}",
        String::from_utf8_lossy(stderr)
    );
}

/// How the store is brought back after a crash.
#[derive(Clone, Copy, Debug)]
enum Recovery {
    /// `strata system check --repair`.
    Repair,
    /// Nothing explicit: the next command that writes (here `tag`) tidies up.
    NextWrite,
}

/// Repairs the store after a crash; `left` is what `system check` must
/// have found (None: the crash left nothing to repair).
fn recover(s: &Strata, how: Recovery, left: Option<&str>, what: &str) {
    let out = s.run(&["system", "check"]);
    let report = String::from_utf8_lossy(&out.stdout);
    match left {
        Some(problem) => {
            assert!(
                !out.status.success(),
                "{what}: check found nothing:\n{report}"
            );
            assert!(
                report.contains(problem),
                "{what}: check should report '{problem}':\n{report}"
            );
        }
        None => assert_eq!(report, "no problems found\n", "{what}"),
    }
    match how {
        Recovery::Repair => {
            let repaired = s.ok(&["system", "check", "--repair"]);
            let last = repaired.lines().last().unwrap_or_default();
            assert!(
                last.ends_with("all repaired") || last == "no problems found",
                "{what}: repair left problems:\n{repaired}"
            );
            if left.is_some() {
                assert!(repaired.contains("repaired: "), "{what}:\n{repaired}");
            }
        }
        Recovery::NextWrite => {
            // The killed writer's mark is what tells the next to tidy up.
            assert!(left.is_none() || s.writer_marks() > 0, "{what}: no mark");
            let out = s.run(&["tag", "first", "first:after-crash"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{what}: tag failed:\n{stderr}");
            if left.is_some() {
                assert!(
                    stderr.contains("tidied up after an interrupted run"),
                    "{what}: the next write should say it tidied up:\n{stderr}"
                );
            }
            assert_eq!(s.writer_marks(), 0, "{what}: marks outlived the repair");
        }
    }
    assert_eq!(
        s.ok(&["system", "check"]),
        "no problems found\n",
        "{what}: not repaired"
    );
}

/// The image the store held before the crash is as it was.
fn assert_first_intact(s: &Strata, small_first: (&str, &Tree), what: &str) {
    assert_eq!(s.inspect("first")["Id"], small_first.0, "{what}");
    assert!(
        s.image_tree("first") == *small_first.1,
        "{what}: the earlier image's files changed"
    );
}

/// Loading the crashed image again works and gives what a clean load does.
fn assert_reloads(s: &Strata, name: &str, reference: &Reference, what: &str) {
    let out = load(s, "again.tar", &reference.archive);
    assert_eq!(out, format!("Loaded image: {name}:latest\n"), "{what}");
    assert_eq!(s.inspect(name)["Id"], reference.id.as_str(), "{what}");
    assert!(
        s.image_tree(name) == reference.tree,
        "{what}: the reloaded image differs from a clean load"
    );
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n", "{what}");
}

// ---- SIGKILL at each failpoint ----

/// Loads `second` with the failpoint set, over a store holding `first`;
/// then recovers and checks.
fn crash_at(driver: Option<&str>, point: &str, nth: u32, left: Option<&str>) {
    let small = small();
    for how in [Recovery::Repair, Recovery::NextWrite] {
        let what = format!(
            "{point}:{nth} ({how:?}, {})",
            driver.unwrap_or("default driver")
        );
        let s = Strata::with_driver(driver);
        load(&s, "first.tar", &small.first);
        let path = s.path("second.tar");
        std::fs::write(&path, &small.second.archive).unwrap();
        let out = s
            .command(&["load", "-q", "-i", path.to_str().unwrap()])
            .env("STRATA_FAILPOINT", format!("{point}:{nth}"))
            .output()
            .unwrap();
        assert_killed(out.status, &what, &out.stderr);
        recover(&s, how, left, &what);
        assert_first_intact(&s, (&small.first_id, &small.first_tree), &what);
        assert_reloads(&s, "second", &small.second, &what);
        assert_first_intact(&s, (&small.first_id, &small.first_tree), &what);
    }
}

/// `second` has three layers `first` lacks: each of them writes an index
/// blob, then the config and the manifest are written.
macro_rules! failpoints {
    ($driver:expr => $($test:ident: $point:literal, $nth:literal, $left:expr;)*) => {$(
        #[test]
        fn $test() {
            crash_at($driver, $point, $nth, $left);
        }
    )*};
}

const INGEST: Option<&str> = Some("interrupted write");
const UNFINISHED: Option<&str> = Some("left unfinished by an interrupted command");
const ORPHAN_SNAPSHOT: Option<&str> = Some("belongs to no layer");
const UNUSED_LAYER: Option<&str> = Some("is used by no image");

failpoints! {
    None =>
    content_before_rename_first_index: "content-before-rename", 1, INGEST;
    content_before_rename_last_index: "content-before-rename", 3, INGEST;
    content_before_rename_config: "content-before-rename", 4, INGEST;
    content_before_rename_manifest: "content-before-rename", 5, INGEST;
    unpack_after_apply_first: "unpack-after-apply", 1, UNFINISHED;
    unpack_after_apply_last: "unpack-after-apply", 3, UNFINISHED;
    unpack_before_commit_first: "unpack-before-commit", 1, UNFINISHED;
    unpack_before_commit_second: "unpack-before-commit", 2, UNFINISHED;
    unpack_after_commit_first: "unpack-after-commit", 1, ORPHAN_SNAPSHOT;
    unpack_after_commit_last: "unpack-after-commit", 3, ORPHAN_SNAPSHOT;
    load_before_image: "load-before-image", 1, UNUSED_LAYER;
    load_after_image: "load-after-image", 1, None;
}

// vfs builds each snapshot as a full copy of its parent.
failpoints! {
    Some("vfs") =>
    vfs_content_before_rename: "content-before-rename", 2, INGEST;
    vfs_unpack_after_apply: "unpack-after-apply", 2, UNFINISHED;
    vfs_unpack_after_commit: "unpack-after-commit", 2, ORPHAN_SNAPSHOT;
    vfs_load_before_image: "load-before-image", 1, UNUSED_LAYER;
}

/// A failpoint past the last hit is never reached: the load just works
/// (so the tests above really depend on where they kill).
#[test]
fn failpoint_not_reached_is_harmless() {
    let small = small();
    let s = Strata::new();
    let path = s.path("second.tar");
    std::fs::write(&path, &small.second.archive).unwrap();
    common::stdout_of(
        s.command(&["load", "-q", "-i", path.to_str().unwrap()])
            .env("STRATA_FAILPOINT", "unpack-after-apply:99"),
    );
    assert!(s.image_tree("second") == small.second.tree);
}

// ---- An init layer being made ----

/// `create` killed while it makes the image's init layer (mounted in
/// `tmp/`, or made and not yet committed): the mount is undone, the
/// half-made layer removed, and the next `create` makes it again.
fn crash_making_the_init_layer(driver: Option<&str>, point: &str) {
    for how in [Recovery::Repair, Recovery::NextWrite] {
        let what = format!("{point} ({how:?}, {})", driver.unwrap_or("default driver"));
        let s = Strata::with_driver(driver);
        load(&s, "first.tar", &small().first);
        let before = s.state();
        let out = s
            .command(&["create", "--name", "ctr", "first", "true"])
            .env("STRATA_FAILPOINT", point)
            .output()
            .unwrap();
        assert_killed(out.status, &what, &out.stderr);
        let mounted = common::mounts_under(&s.root);
        assert_eq!(
            mounted.len(),
            usize::from(point == "init-layer-mounted"),
            "{what}: {mounted:?}"
        );
        recover(&s, how, UNFINISHED, &what);
        assert_eq!(
            common::mounts_under(&s.root),
            Vec::<String>::new(),
            "{what}"
        );
        let after = s.state();
        assert_eq!(after.snapshots, before.snapshots, "{what}");
        assert_eq!(after.tmp, Vec::<String>::new(), "{what}");
        s.ok(&["create", "--name", "ctr", "first", "true"]);
        // The layers, the init layer and the container's.
        assert_eq!(
            s.state().snapshots.len(),
            before.snapshots.len() + 2,
            "{what}"
        );
        assert_eq!(s.ok(&["system", "check"]), "no problems found\n", "{what}");
    }
}

#[test]
fn crash_while_the_init_layer_is_mounted() {
    crash_making_the_init_layer(None, "init-layer-mounted");
}

#[test]
fn crash_before_the_init_layer_is_committed() {
    crash_making_the_init_layer(None, "init-layer-before-commit");
    crash_making_the_init_layer(Some("vfs"), "init-layer-before-commit");
}

// ---- SIGKILL at arbitrary moments ----

/// Twenty layers of 2 MiB, each changing the one below a little.
fn big_layers() -> Vec<Vec<u8>> {
    (0..20u64)
        .map(|i| {
            let mut t = Tar::new();
            let dir = format!("l{i:02}");
            t.dir(&dir, 0o755);
            for f in 0..4u64 {
                t.file(&format!("{dir}/f{f}"), &noise(512 * 1024, i * 16 + f));
            }
            t.dir("shared", 0o755)
                .file("shared/last", format!("layer {i}\n").as_bytes());
            if i > 0 {
                t.whiteout(&format!("l{:02}/f0", i - 1));
            }
            t.build()
        })
        .collect()
}

#[test]
fn killed_at_arbitrary_moments() {
    let layers = big_layers();
    let first = oci(&Image {
        compression: Compression::None,
        ..Image::new("first", layers[..5].to_vec())
    });
    let big = oci(&Image {
        compression: Compression::None,
        ..Image::new("big", layers)
    });
    let (first_ref, _) = clean_load(None, &first, "first");
    let (big_ref, took) = clean_load(Some(&first), &big, "big");
    // Spread over a clean load's duration; where each kill lands does not
    // matter, only that the store survives it.
    const KILLS: u32 = 6;
    let mut killed = 0;
    for k in 1..=KILLS {
        let delay = took * k / (KILLS + 1);
        let how = if k % 2 == 0 {
            Recovery::NextWrite
        } else {
            Recovery::Repair
        };
        let what = format!("kill after {delay:?} of {took:?} ({how:?})");
        let s = Strata::new();
        load(&s, "first.tar", &first);
        let path = s.path("big.tar");
        std::fs::write(&path, &big).unwrap();
        let mut child = s
            .command(&["load", "-q", "-i", path.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        // Killed, or finished first: never a failure of its own.
        assert!(
            status.signal() == Some(9) || status.success(),
            "{what}: {status}"
        );
        if status.signal() == Some(9) {
            killed += 1;
        }
        // What was left is unknown: repair whatever check finds.
        let left = s.run(&["system", "check"]);
        let problem = (!left.status.success()).then_some("");
        eprintln!(
            "{what}: {status}; check found:\n{}",
            String::from_utf8_lossy(&left.stdout)
        );
        recover(&s, how, problem, &what);
        assert_first_intact(&s, (&first_ref.id, &first_ref.tree), &what);
        assert_reloads(&s, "big", &big_ref, &what);
        assert_first_intact(&s, (&first_ref.id, &first_ref.tree), &what);
    }
    eprintln!("{killed} of {KILLS} loads were killed midway");
}

// ---- two loads at once ----

/// Eight layers of 1 MiB; the first four are the same for every `variant`.
fn overlapping_layers(variant: u64) -> Vec<Vec<u8>> {
    (0..8u64)
        .map(|i| {
            let seed = if i < 4 { i } else { variant * 100 + i };
            let mut t = Tar::new();
            let dir = format!("d{i}");
            t.dir(&dir, 0o755);
            for f in 0..2u64 {
                t.file(&format!("{dir}/f{f}"), &noise(512 * 1024, seed * 8 + f));
            }
            t.file(&format!("{dir}/which"), format!("{seed}\n").as_bytes());
            t.build()
        })
        .collect()
}

fn run_together(s: &Strata, archives: &[(&str, &[u8])]) -> Vec<String> {
    let children: Vec<_> = archives
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            let path = s.path(&format!("parallel-{i}.tar"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect::<Vec<_>>()
        .iter()
        .map(|path| {
            s.command(&["load", "-q", "-i", path.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .zip(archives)
        .map(|(child, (name, _))| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "loading {name} alongside another load failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn two_loads_at_once() {
    let a = oci(&Image::new("alpha", overlapping_layers(1)));
    let b = docker(&Image {
        compression: Compression::None,
        ..Image::new("beta", overlapping_layers(2))
    });
    let (a_ref, _) = clean_load(None, &a, "alpha");
    let (b_ref, _) = clean_load(None, &b, "beta");
    let check = |s: &Strata, name: &str, r: &Reference| {
        assert_eq!(s.inspect(name)["Id"], r.id.as_str(), "{name}");
        assert!(
            s.image_tree(name) == r.tree,
            "{name}: differs from a clean load"
        );
    };

    // Overlapping images: both unpack the four shared layers.
    let s = Strata::new();
    let out = run_together(&s, &[("alpha", &a), ("beta", &b)]);
    assert_eq!(
        out,
        [
            "Loaded image: alpha:latest\n",
            "Loaded image: beta:latest\n"
        ]
    );
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
    check(&s, "alpha", &a_ref);
    check(&s, "beta", &b_ref);
    // Snapshot folders, whichever driver the store chose.
    let layers = |s: &Strata| {
        ["overlay", "vfs"]
            .iter()
            .filter_map(|d| std::fs::read_dir(s.root.join(d).join("snapshots")).ok())
            .map(|dir| dir.count())
            .sum::<usize>()
    };
    assert_eq!(layers(&s), 12, "shared layers are stored once");

    // The same image twice: every layer is unpacked by both.
    let s = Strata::new();
    let out = run_together(&s, &[("alpha", &a), ("alpha", &a)]);
    assert_eq!(
        out,
        [
            "Loaded image: alpha:latest\n",
            "Loaded image: alpha:latest\n"
        ]
    );
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
    check(&s, "alpha", &a_ref);
    assert_eq!(layers(&s), 8, "shared layers are stored once");

    // One of them killed midway: the other is not disturbed, and the store
    // recovers as after any crash.
    let s = Strata::new();
    let paths: Vec<_> = [("a.tar", &a), ("b.tar", &b)]
        .iter()
        .map(|(n, bytes)| {
            let p = s.path(n);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let doomed = s
        .command(&["load", "-q", "-i", paths[0].to_str().unwrap()])
        .env("STRATA_FAILPOINT", "unpack-after-commit:3")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let other = s
        .command(&["load", "-q", "-i", paths[1].to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let doomed = doomed.wait_with_output().unwrap();
    assert_killed(doomed.status, "the doomed load", &doomed.stderr);
    assert!(
        other.status.success(),
        "a load alongside a crashing one failed:\n{}",
        String::from_utf8_lossy(&other.stderr)
    );
    check(&s, "beta", &b_ref);
    let found = s.run(&["system", "check"]);
    let left = (!found.status.success()).then_some("");
    s.ok(&["tag", "beta", "first"]); // what `recover` tags
    recover(
        &s,
        Recovery::NextWrite,
        left,
        "after a crash alongside a load",
    );
    assert_reloads(&s, "alpha", &a_ref, "after a crash alongside a load");
    check(&s, "beta", &b_ref);
    assert_eq!(layers(&s), 12, "shared layers are stored once");

    // The store still works as usual afterwards.
    load(&s, "beta.tar", &b);
    check(&s, "beta", &b_ref);
    s.ok(&["rmi", "alpha"]);
    check(&s, "beta", &b_ref);
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
}

// ---- other ways in ----

/// `strata load` with the archive on a pipe, optionally with a failpoint.
fn pipe_load(s: &Strata, archive: &[u8], failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = s.command(&["load", "-q"]);
    if let Some(point) = failpoint {
        cmd.env("STRATA_FAILPOINT", point);
    }
    common::output_with_stdin(&mut cmd, archive)
}

/// `load` from a pipe spools the archive into the store's scratch folder
/// first: a crash leaves that behind too.
#[test]
fn crash_loading_from_a_pipe() {
    let small = small();
    for (point, how) in [
        ("unpack-after-apply:2", Recovery::NextWrite),
        ("load-before-image:1", Recovery::Repair),
    ] {
        let what = format!("{point} from a pipe ({how:?})");
        let s = Strata::new();
        load(&s, "first.tar", &small.first);
        // First, without a crash: a piped archive loads.
        let piped = pipe_load(&s, &small.second.archive, None);
        assert!(
            piped.status.success(),
            "a clean load from a pipe failed:\n{}",
            String::from_utf8_lossy(&piped.stderr)
        );
        s.ok(&["rmi", "second"]);
        let out = pipe_load(&s, &small.second.archive, Some(point));
        assert_killed(out.status, &what, &out.stderr);
        recover(&s, how, Some("leftover temporary file"), &what);
        assert_first_intact(&s, (&small.first_id, &small.first_tree), &what);
        assert_reloads(&s, "second", &small.second, &what);
    }
}

/// `image import` unpacks one layer and records an image the same way.
#[test]
fn crash_importing() {
    let small = small();
    // A rootfs no image has yet, and busybox, which `first` already has as
    // its bottom layer (the import finds the layer committed and drops its copy).
    let fresh = small_layers()[3].clone();
    let shared = busybox_rootfs();
    for (rootfs, point, left, how) in [
        (&fresh, "content-before-rename:1", INGEST, Recovery::Repair),
        (
            &fresh,
            "unpack-after-apply:1",
            UNFINISHED,
            Recovery::NextWrite,
        ),
        (
            &fresh,
            "unpack-before-commit:1",
            UNFINISHED,
            Recovery::Repair,
        ),
        (
            &fresh,
            "unpack-after-commit:1",
            ORPHAN_SNAPSHOT,
            Recovery::NextWrite,
        ),
        (
            &fresh,
            "content-before-rename:2",
            UNUSED_LAYER,
            Recovery::Repair,
        ),
        (&fresh, "load-after-image:1", None, Recovery::NextWrite),
        (&shared, "unpack-after-commit:1", None, Recovery::Repair),
    ] {
        let what = format!("import, {point} ({how:?})");
        let reference = {
            let s = Strata::new();
            let tar = s.path("rootfs.tar");
            std::fs::write(&tar, rootfs).unwrap();
            s.ok(&["image", "import", tar.to_str().unwrap(), "imported"]);
            s.image_tree("imported")
        };
        let s = Strata::new();
        load(&s, "first.tar", &small.first);
        let tar = s.path("rootfs.tar");
        std::fs::write(&tar, rootfs).unwrap();
        let args = ["image", "import", tar.to_str().unwrap(), "imported"];
        let out = s
            .command(&args)
            .env("STRATA_FAILPOINT", point)
            .output()
            .unwrap();
        assert_killed(out.status, &what, &out.stderr);
        recover(&s, how, left, &what);
        assert_first_intact(&s, (&small.first_id, &small.first_tree), &what);
        s.ok(&args);
        assert!(
            s.image_tree("imported") == reference,
            "{what}: differs from a clean import"
        );
        assert_eq!(s.ok(&["system", "check"]), "no problems found\n", "{what}");
        assert_first_intact(&s, (&small.first_id, &small.first_tree), &what);
    }
}

// ---- What the tidy-up says, at each log level ----

/// `--log-level` takes a level or `tracing` directives: the warning a
/// write gives when it tidies up after a killed writer shows or not.
#[test]
fn the_tidy_up_warning_follows_the_log_level() {
    fn check(level: &str, shown: bool) {
        let s = Strata::with_driver(Some("vfs"));
        let tar = s.path("bb.tar");
        std::fs::write(&tar, Tar::new().file("f", b"x").build()).unwrap();
        s.ok(&["import", tar.to_str().unwrap(), "bb"]);
        // What a writer killed while making a snapshot leaves.
        let half_made = s.root.join("vfs/snapshots/99.new");
        std::fs::create_dir_all(&half_made).unwrap();
        std::fs::write(s.root.join("writers/1-killed"), "").unwrap();
        let out = s.run(&["--log-level", level, "tag", "bb", "bb:again"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{level}: {stderr}");
        assert!(!half_made.exists(), "{level}: not tidied up");
        assert_eq!(
            stderr.contains("tidied up after an interrupted run"),
            shown,
            "{level}: {stderr}"
        );
    }
    check("warn", true);
    check("error", false);
    check("strata_image=warn", true);
    check("strata_image=error,warn", false);
    // Not a level nor directives: the default.
    check("no==such", true);
}

// ---- A run in progress ----

/// A `run` whose runtime was started early waits at a gate (a FIFO its
/// monitor holds) in a container folder with no record yet: `system
/// check` and its repair leave it alone, and take it for what it is once
/// nobody holds the gate.
#[test]
fn a_repair_leaves_a_run_in_progress_alone() {
    let s = Strata::with_driver(Some("vfs"));
    let folder = s.root.join("containers").join("ab".repeat(32));
    std::fs::create_dir_all(&folder).unwrap();
    let gate = folder.join("config.json");
    common::tool("mkfifo", &[gate.to_str().unwrap()]);
    // Held both ways, as the monitor holds it: opening does not wait.
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&gate)
        .unwrap();
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
    s.ok(&["system", "check", "--repair"]);
    assert!(gate.exists(), "a run in progress was tidied away");
    drop(held);
    let found = s.run(&["system", "check"]);
    let said = String::from_utf8_lossy(&found.stdout);
    assert!(said.contains("belongs to no container"), "{said}");
    // With no root filesystem in it either: the monitor made it alone.
    s.ok(&["system", "check", "--repair"]);
    assert!(!folder.exists());
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
}
