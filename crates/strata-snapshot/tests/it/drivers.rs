use std::collections::BTreeMap;

use strata_archive::copy::copy_tree;
use strata_archive::diff::{Source, write_diff};
use strata_archive::{Format, apply};
use strata_snapshot::mount::mount;
use strata_snapshot::{Kind, Options, SnapshotError};

use crate::{Env, is_not_found, kind, layer, upper_of};

const DRIVERS: &[&str] = &["overlay", "vfs"];

#[test]
fn lifecycle() {
    for &d in DRIVERS {
        let env = Env::default();
        let s = env.driver(d);
        assert_eq!(s.driver(), d);
        layer(
            &*s,
            &env,
            "base",
            None,
            &[("etc/os", "strata"), ("bin/sh", "sh")],
        );
        layer(
            &*s,
            &env,
            "app",
            Some("base"),
            &[("app/main", "main"), ("etc/os", "changed")],
        );
        assert_eq!(kind(&*s, "app"), Kind::Committed);
        assert_eq!(s.stat("app").unwrap().parent.as_deref(), Some("base"));

        // A container: writable on top, sees everything, changes nothing below.
        let mounts = s.prepare("ctr", Some("app"), &Options::default()).unwrap();
        assert_eq!(s.mounts("ctr").unwrap(), mounts);
        let mnt = env.mountpoint("ctr");
        let m = mount(&mounts, &mnt).unwrap();
        assert_eq!(
            std::fs::read_to_string(mnt.join("etc/os")).unwrap(),
            "changed"
        );
        assert_eq!(std::fs::read_to_string(mnt.join("bin/sh")).unwrap(), "sh");
        std::fs::write(mnt.join("bin/sh"), "modified").unwrap();
        std::fs::remove_file(mnt.join("app/main")).unwrap();
        m.unmount().unwrap();

        // A view of the image is untouched by the container.
        let mounts = s.view("look", Some("app"), &Options::default()).unwrap();
        let look = env.mountpoint("look");
        let m = mount(&mounts, &look).unwrap();
        assert_eq!(
            std::fs::read_to_string(look.join("bin/sh")).unwrap(),
            "sh",
            "{d}"
        );
        assert!(look.join("app/main").exists(), "{d}");
        assert!(
            std::fs::write(look.join("x"), "x").is_err(),
            "{d}: views are read-only"
        );
        m.unmount().unwrap();

        // Parents cannot go while children stand; children can.
        let err = s.remove("app").unwrap_err();
        assert!(
            err.to_string().contains("is the parent of other snapshots"),
            "{err}"
        );
        s.remove("look").unwrap();
        s.remove("ctr").unwrap();
        s.remove("app").unwrap();
        assert!(is_not_found(&s.stat("app").unwrap_err()));
        assert!(
            s.check(false).unwrap().is_empty(),
            "{d}: clean after removals"
        );
    }
}

#[test]
fn states_are_enforced() {
    for &d in DRIVERS {
        let env = Env::default();
        let s = env.driver(d);
        layer(&*s, &env, "base", None, &[("a", "a")]);
        let e = s
            .prepare("x", Some("missing"), &Options::default())
            .unwrap_err();
        assert!(is_not_found(&e), "{e}");
        s.prepare("x", Some("base"), &Options::default()).unwrap();
        let e = s.prepare("y", Some("x"), &Options::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not committed, so it cannot be a parent"),
            "{e}"
        );
        let e = s.prepare("x", None, &Options::default()).unwrap_err();
        assert!(matches!(e, SnapshotError::AlreadyExists(_)), "{e}");
        let e = s.commit("base", "x").unwrap_err();
        assert!(matches!(e, SnapshotError::AlreadyExists(_)), "{e}");
        s.view("v", Some("base"), &Options::default()).unwrap();
        let e = s.commit("v2", "v").unwrap_err();
        assert!(e.to_string().contains("is not active"), "{e}");
        let e = s.mounts("base").unwrap_err();
        assert!(e.to_string().contains("is committed"), "{e}");
    }
}

/// `remove_unused` leaves a snapshot something stands on, records and
/// files alike, and removes one nothing does, so a later prepare on it
/// finds no parent.
#[test]
fn remove_unused_spares_a_parent() {
    for &d in DRIVERS {
        let env = Env::default();
        let s = env.driver(d);
        layer(&*s, &env, "base", None, &[("a", "a")]);
        s.prepare("child", Some("base"), &Options::default())
            .unwrap();
        assert!(!s.remove_unused("base").unwrap(), "{d}");
        assert_eq!(kind(&*s, "base"), Kind::Committed);
        assert!(s.files("base").unwrap().join("a").exists(), "{d}");
        s.remove("child").unwrap();
        assert!(s.remove_unused("base").unwrap(), "{d}");
        assert!(!s.remove_unused("base").unwrap(), "{d}: removed twice");
        let e = s.prepare("late", Some("base"), &Options::default());
        assert!(is_not_found(&e.unwrap_err()), "{d}");
        assert!(s.check(false).unwrap().is_empty(), "{d}");
    }
}

#[test]
fn usage_is_recorded_at_commit() {
    for &d in DRIVERS {
        let env = Env::default();
        let s = env.driver(d);
        let big = "x".repeat(100_000);
        layer(&*s, &env, "base", None, &[("big", &big)]);
        let u = s.usage("base").unwrap();
        assert!(u.size >= 100_000 && u.inodes >= 1, "{d}: {u:?}");
        // Recorded, not re-walked: changing the files does not change it.
        std::fs::write(s.files("base").unwrap().join("more"), "x".repeat(50_000)).unwrap();
        assert_eq!(s.usage("base").unwrap(), u);
    }
}

#[test]
fn two_hundred_layers_mount_and_read() {
    for &d in DRIVERS {
        let env = Env::default();
        let s = env.driver(d);
        let mut parent: Option<String> = None;
        for i in 0..200 {
            let name = format!("layer{i}");
            let mounts = s
                .prepare(&format!("x{i}"), parent.as_deref(), &Options::default())
                .unwrap();
            // Write straight into the new layer, as image extraction does.
            std::fs::write(upper_of(&mounts).join(format!("f{i}")), i.to_string()).unwrap();
            s.commit(&name, &format!("x{i}")).unwrap();
            parent = Some(name);
        }
        let mounts = s
            .view("top", parent.as_deref(), &Options::default())
            .unwrap();
        let mnt = env.mountpoint("top");
        let m = mount(&mounts, &mnt).unwrap();
        for i in 0..200 {
            assert_eq!(
                std::fs::read_to_string(mnt.join(format!("f{i}"))).unwrap(),
                i.to_string(),
                "{d}"
            );
        }
        m.unmount().unwrap();
    }
}

/// What the kernel writes into an upper directory (whiteouts, opaque
/// directories, copy-ups) diffs into a layer that recreates the tree.
#[test]
fn container_writes_diff_into_a_layer() {
    let env = Env::default();
    let s = env.driver("overlay");
    layer(
        &*s,
        &env,
        "base",
        None,
        &[
            ("etc/a", "a"),
            ("etc/b", "b"),
            ("var/lib/x", "x"),
            ("var/lib/y", "y"),
            ("tmp/t", "t"),
        ],
    );
    let mounts = s.prepare("ctr", Some("base"), &Options::default()).unwrap();
    let mnt = env.mountpoint("ctr");
    let m = mount(&mounts, &mnt).unwrap();
    std::fs::remove_file(mnt.join("etc/a")).unwrap();
    std::fs::write(mnt.join("etc/b"), "b2").unwrap();
    std::fs::remove_dir_all(mnt.join("var/lib")).unwrap();
    std::fs::create_dir(mnt.join("var/lib")).unwrap(); // becomes opaque
    std::fs::write(mnt.join("var/lib/z"), "z").unwrap();
    std::fs::create_dir_all(mnt.join("new/deep")).unwrap();
    std::fs::write(mnt.join("new/deep/n"), "n").unwrap();
    let expected = capture(&mnt);
    m.unmount().unwrap();

    let (tar, _) = write_diff(&Source::OverlayUpper(&upper_of(&mounts)), Vec::new()).unwrap();
    let out = env.root().join("rebuilt");
    std::fs::create_dir(&out).unwrap();
    copy_tree(&s.files("base").unwrap(), &out).unwrap();
    apply::<_, Vec<u8>>(&tar[..], &out, Format::Plain, None).unwrap();
    assert_eq!(capture(&out), expected);
}

fn capture(root: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel, "/".into());
                todo.push(p);
            } else {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn check_finds_and_repairs_crash_leftovers() {
    for &d in DRIVERS {
        let env = Env::default();
        let s = env.driver(d);
        layer(&*s, &env, "base", None, &[("a", "a")]);
        // An extraction that never finished, a half-made folder, a stray folder.
        let transient = Options {
            transient: true,
            ..Options::default()
        };
        s.prepare("extract-1", Some("base"), &transient).unwrap();
        let snaps = env.root().join(d).join("snapshots");
        std::fs::create_dir_all(snaps.join("99.new/fs")).unwrap();
        std::fs::create_dir_all(snaps.join("1234/fs")).unwrap();
        let problems = s.check(false).unwrap();
        assert_eq!(problems.len(), 3, "{d}: {problems:?}");
        assert!(problems.iter().all(|p| !p.repaired));
        assert!(
            problems[0]
                .what
                .contains("left unfinished by an interrupted command"),
            "{problems:?}"
        );
        let repaired = s.check(true).unwrap();
        assert!(repaired.iter().all(|p| p.repaired), "{repaired:?}");
        assert!(s.check(false).unwrap().is_empty());
        assert!(is_not_found(&s.stat("extract-1").unwrap_err()));
        assert_eq!(kind(&*s, "base"), Kind::Committed);
    }
}
