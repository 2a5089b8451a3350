//! `-v/--volume`: named, anonymous and bind mounts, every option, and every
//! refusal of docker/cli `volumespec.Parse` and moby `ParseMountRaw`.

use std::path::Path;
use strata_mountspec::Propagation::{Private, Rprivate, Rshared, Rslave, Shared, Slave};
use strata_mountspec::Relabel;
use strata_mountspec::parse_volume;

use crate::support::{Tweak, Want, anonymous, bind, compare, err, named};

fn check(input: &str, want: Want) {
    compare(input, parse_volume(input, Path::new(CWD)), want);
}

/// The working directory `.`-relative host paths resolve against.
const CWD: &str = "/work/dir";
const MODES: &str = "(valid: ro or rw, z or Z, nocopy, one of rprivate, private, rshared, shared, rslave, slave, and one of consistent, cached, delegated; each at most once)";
const NAME_RULE: &str = "includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path";

#[test]
fn named_volumes() {
    for (input, want) in [
        ("data:/data", Ok(named("data", "/data"))),
        (
            "my-vol_1.x:/var/lib/x",
            Ok(named("my-vol_1.x", "/var/lib/x")),
        ),
        ("data:/data/", Ok(named("data", "/data"))),
        ("data://data//x/./y/../z", Ok(named("data", "/data/x/z"))),
        ("data:/data:ro", Ok(named("data", "/data").ro())),
        ("data:/data:rw", Ok(named("data", "/data"))),
        (
            "data:/data:z",
            Ok(named("data", "/data").relabel(Relabel::Shared)),
        ),
        (
            "data:/data:Z",
            Ok(named("data", "/data").relabel(Relabel::Private)),
        ),
        ("data:/data:nocopy", Ok(named("data", "/data").nocopy())),
        ("data:/data:consistent", Ok(named("data", "/data"))),
        ("data:/data:cached", Ok(named("data", "/data"))),
        ("data:/data:delegated", Ok(named("data", "/data"))),
        (
            "data:/data:ro,Z,nocopy,cached",
            Ok(named("data", "/data")
                .ro()
                .relabel(Relabel::Private)
                .nocopy()),
        ),
        (
            "data:/data:nocopy,rw,z",
            Ok(named("data", "/data").nocopy().relabel(Relabel::Shared)),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn anonymous_volumes() {
    for (input, want) in [
        ("/data", Ok(anonymous("/data"))),
        ("/data/", Ok(anonymous("/data"))),
        ("/var//lib/../data", Ok(anonymous("/var/data"))),
        // One or two bytes are taken whole as the target, colon included.
        ("/a", Ok(anonymous("/a"))),
        ("/:", Ok(anonymous("/:"))),
        (
            "data",
            err(
                "invalid volume specification: 'data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute",
            ),
        ),
        (
            "x:",
            err(
                "invalid volume specification: 'x:': invalid mount config for type \"volume\": invalid mount path: 'x:' mount path must be absolute",
            ),
        ),
        (
            "/",
            err(
                "invalid volume specification: '/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
        ),
        (
            "/data/..",
            err(
                "invalid volume specification: '/data/..': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn bind_mounts() {
    for (input, want) in [
        ("/src:/dst", Ok(bind("/src", "/dst"))),
        ("/src/:/dst/", Ok(bind("/src", "/dst"))),
        ("//src/../etc/./x:/dst", Ok(bind("/etc/x", "/dst"))),
        // A source starting with `.` is a host path relative to the working
        // directory, as the Docker CLI resolves it since 23.0.
        ("./x:/dst", Ok(bind("/work/dir/x", "/dst"))),
        ("../x/:/dst:ro", Ok(bind("/work/x", "/dst").ro())),
        (".:/dst", Ok(bind("/work/dir", "/dst"))),
        ("..:/dst", Ok(bind("/work", "/dst"))),
        ("../../..:/dst", Ok(bind("/", "/dst"))),
        (".data:/dst", Ok(bind("/work/dir/.data", "/dst"))),
        ("/src:/dst:ro", Ok(bind("/src", "/dst").ro())),
        ("/src:/dst:rw", Ok(bind("/src", "/dst"))),
        (
            "/src:/dst:z",
            Ok(bind("/src", "/dst").relabel(Relabel::Shared)),
        ),
        (
            "/src:/dst:Z",
            Ok(bind("/src", "/dst").relabel(Relabel::Private)),
        ),
        (
            "/src:/dst:shared",
            Ok(bind("/src", "/dst").propagation(Shared)),
        ),
        (
            "/src:/dst:slave",
            Ok(bind("/src", "/dst").propagation(Slave)),
        ),
        (
            "/src:/dst:private",
            Ok(bind("/src", "/dst").propagation(Private)),
        ),
        (
            "/src:/dst:rshared",
            Ok(bind("/src", "/dst").propagation(Rshared)),
        ),
        (
            "/src:/dst:rslave",
            Ok(bind("/src", "/dst").propagation(Rslave)),
        ),
        (
            "/src:/dst:rprivate",
            Ok(bind("/src", "/dst").propagation(Rprivate)),
        ),
        ("/src:/dst:delegated", Ok(bind("/src", "/dst"))),
        (
            "/src:/dst:ro,rshared,Z,consistent",
            Ok(bind("/src", "/dst")
                .ro()
                .propagation(Rshared)
                .relabel(Relabel::Private)),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn shape_errors() {
    for (input, want) in [
        (
            "",
            err(
                "invalid empty volume spec (expected [SOURCE:]TARGET[:OPTIONS], e.g. data:/var/lib/data)",
            ),
        ),
        (
            ":/data",
            err(
                "invalid spec: :/data: empty section between colons (expected [SOURCE:]TARGET[:OPTIONS])",
            ),
        ),
        (
            "data::ro",
            err(
                "invalid spec: data::ro: empty section between colons (expected [SOURCE:]TARGET[:OPTIONS])",
            ),
        ),
        (
            "/src:/dst:",
            err(
                "invalid spec: /src:/dst:: empty section between colons (expected [SOURCE:]TARGET[:OPTIONS])",
            ),
        ),
        (
            "a:b:c:d",
            err(
                "invalid spec: a:b:c:d: too many colons (expected [SOURCE:]TARGET[:OPTIONS]; use --mount for paths that contain ':')",
            ),
        ),
        (
            "/src:/dst:ro:",
            err(
                "invalid spec: /src:/dst:ro:: too many colons (expected [SOURCE:]TARGET[:OPTIONS]; use --mount for paths that contain ':')",
            ),
        ),
        // An empty section is found before too many colons when it comes first.
        (
            "a::c:d",
            err(
                "invalid spec: a::c:d: empty section between colons (expected [SOURCE:]TARGET[:OPTIONS])",
            ),
        ),
        (
            "/src:ro",
            err(
                "invalid volume specification: '/src:ro' (options need a source and a target, e.g. /src:/dst:ro)",
            ),
        ),
        (
            "data:z",
            err(
                "invalid volume specification: 'data:z' (options need a source and a target, e.g. /src:/dst:ro)",
            ),
        ),
        (
            "/src:rshared,ro",
            err(
                "invalid volume specification: '/src:rshared,ro' (options need a source and a target, e.g. /src:/dst:ro)",
            ),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn option_errors() {
    for (input, mode) in [
        ("/src:/dst:xyz", "xyz"),
        ("/src:/dst:RO", "RO"),
        ("/src:/dst:ro,", "ro,"),
        ("/src:/dst:ro,rw", "ro,rw"),
        ("/src:/dst:ro,ro", "ro,ro"),
        ("/src:/dst:z,Z", "z,Z"),
        ("/src:/dst:shared,rshared", "shared,rshared"),
        ("data:/dst:nocopy,nocopy", "nocopy,nocopy"),
        ("/src:/dst:cached,delegated", "cached,delegated"),
        ("data:/dst:ro,size=1m", "ro,size=1m"),
    ] {
        check(input, err(format!("invalid mode: {mode} {MODES}")));
    }
}

#[test]
fn option_kind_errors() {
    for (input, want) in [
        (
            "/src:/dst:nocopy",
            err(
                "invalid volume specification: '/src:/dst:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified (nocopy only applies to volumes)",
            ),
        ),
        (
            "data:/dst:rshared",
            err(
                "invalid volume specification: 'data:/dst:rshared': invalid mount config for type \"volume\": field BindOptions must not be specified (propagation modes only apply to bind mounts)",
            ),
        ),
        (
            "data:/dst:ro,private",
            err(
                "invalid volume specification: 'data:/dst:ro,private': invalid mount config for type \"volume\": field BindOptions must not be specified (propagation modes only apply to bind mounts)",
            ),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn target_errors() {
    for (input, want) in [
        (
            "/src:/",
            err(
                "invalid volume specification: '/src:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
            ),
        ),
        (
            "data:/dst/..",
            err(
                "invalid volume specification: 'data:/dst/..': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
        ),
        (
            "/src:dst",
            err(
                "invalid volume specification: '/src:dst': invalid mount config for type \"bind\": invalid mount path: 'dst' mount path must be absolute",
            ),
        ),
        (
            "data:dst:ro",
            err(
                "invalid volume specification: 'data:dst:ro': invalid mount config for type \"volume\": invalid mount path: 'dst' mount path must be absolute",
            ),
        ),
        // The target is checked before the options' kinds.
        (
            "/src:dst:nocopy",
            err(
                "invalid volume specification: '/src:dst:nocopy': invalid mount config for type \"bind\": invalid mount path: 'dst' mount path must be absolute",
            ),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn volume_name_errors() {
    for (input, want) in [
        (
            "a:/data",
            err("volume name is too short, names should be at least two alphanumeric characters"),
        ),
        ("-a:/data", err(format!("\"-a\" {NAME_RULE}"))),
        ("a b:/data", err(format!("\"a b\" {NAME_RULE}"))),
        ("a/b:/data", err(format!("\"a/b\" {NAME_RULE}"))),
        ("~/x:/data", err(format!("\"~/x\" {NAME_RULE}"))),
        // Mode and target errors come before the name's.
        ("a:/data:bogus", err(format!("invalid mode: bogus {MODES}"))),
    ] {
        check(input, want);
    }
}
