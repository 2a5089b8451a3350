//! Mount specs from untrusted input (`-v`, `--mount`, `--tmpfs`) never
//! panic, and whatever parses has an absolute, clean container path.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_mountspec::{MountSpec, check_unique_targets, parse_mount, parse_tmpfs, parse_volume};

fn check(spec: MountSpec) {
    let target = &spec.target;
    let rest = target.strip_prefix('/').expect("target is absolute");
    assert!(
        rest.split('/').all(|part| !matches!(part, "" | "." | "..")),
        "target {target:?} is clean"
    );
    assert!(check_unique_targets(&[spec.clone(), spec]).is_err());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [
        parse_volume(text, Path::new("/")),
        parse_mount(text, Path::new("/")),
        parse_tmpfs(text),
    ] {
        if let Ok(spec) = parsed {
            check(spec);
        }
    }
});
