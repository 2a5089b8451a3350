//! `check_unique_targets`: one mount per container path, whichever flag
//! made it.

use std::path::Path;

use strata_mountspec::{MountSpec, check_unique_targets, parse_mount, parse_tmpfs, parse_volume};

use crate::support::{anonymous, bind, named, tmpfs};

fn check(specs: &[MountSpec], want: Result<(), &str>) {
    let got = check_unique_targets(specs).map_err(|e| e.to_string());
    assert_eq!(got, want.map_err(str::to_owned), "specs {specs:?}");
}

#[test]
fn duplicate_targets() {
    let parsed = |spec: &str| parse_volume(spec, Path::new("/")).expect("valid -v");
    let mount = |spec: &str| parse_mount(spec, Path::new("/")).expect("valid --mount");
    let tmp = |spec: &str| parse_tmpfs(spec).expect("valid --tmpfs");
    for (specs, want) in [
        (vec![], Ok(())),
        (
            vec![named("data", "/a"), anonymous("/b"), tmpfs("/c")],
            Ok(()),
        ),
        (vec![named("data", "/a"), bind("/src", "/a/b")], Ok(())),
        (
            vec![named("data", "/data"), bind("/src", "/data")],
            Err("duplicate mount point: /data"),
        ),
        (
            vec![tmpfs("/run"), tmpfs("/run")],
            Err("duplicate mount point: /run"),
        ),
        // Targets built by hand are compared cleaned.
        (
            vec![anonymous("/x"), anonymous("/x/./")],
            Err("duplicate mount point: /x"),
        ),
        (
            vec![parsed("/src:/x"), mount("type=tmpfs,dst=/x/")],
            Err("duplicate mount point: /x"),
        ),
        (
            vec![parsed("data:/y"), tmp("/z"), mount("dst=//y")],
            Err("duplicate mount point: /y"),
        ),
    ] {
        check(&specs, want);
    }
}
