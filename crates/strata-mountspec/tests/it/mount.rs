//! `--mount`: every key, CSV quoting, and every refusal of docker/cli
//! `MountOpt.Set` and moby `validateMountConfigImpl`. Bind sources that must
//! exist are this crate's directory; the working directory is the same.

use std::path::Path;

use strata_mountspec::Propagation::{Private, Rprivate, Rshared, Rslave, Shared, Slave};
use strata_mountspec::parse_mount;

use crate::support::{GIB, MIB, Tweak, Want, anonymous, bind, compare, err, named, tmpfs};

const HERE: &str = env!("CARGO_MANIFEST_DIR");
const MISSING: &str = "/nonexistent/strata-mountspec-test";

fn check(input: &str, want: Want) {
    compare(input, parse_mount(input, Path::new(HERE)), want);
}

/// A bind as `--mount` makes it: no source creation unless asked.
fn mounted(path: &str, target: &str) -> strata_mountspec::MountSpec {
    bind(path, target).create_source(false)
}

const UNKNOWN_KEYS: &str = "(valid keys: type, source, target, readonly, consistency, bind-propagation, bind-recursive, bind-create-src, volume-subpath, volume-nocopy, volume-label, volume-driver, volume-opt, tmpfs-size, tmpfs-mode)";
const BOOLS: &str = "must be one of \"true\", \"1\", \"false\", or \"0\" (default \"true\")";
const NAME_RULE: &str = "includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path";

#[test]
fn volume_keys() {
    for (input, want) in [
        (
            "type=volume,source=data,target=/data",
            Ok(named("data", "/data")),
        ),
        ("source=data,target=/data", Ok(named("data", "/data"))),
        ("src=data,dst=/data", Ok(named("data", "/data"))),
        ("src=data,destination=/data/", Ok(named("data", "/data"))),
        (
            "TYPE=Volume,SRC=data,Target=/data",
            Ok(named("data", "/data")),
        ),
        ("  src=data,dst=/data  ", Ok(named("data", "/data"))),
        ("target=/data", Ok(anonymous("/data"))),
        ("target=/data/../x/", Ok(anonymous("/x"))),
        (
            "type=volume,target=/data,readonly",
            Ok(anonymous("/data").ro()),
        ),
        (
            "src=data,dst=/data,consistency=cached",
            Ok(named("data", "/data")),
        ),
        (
            "src=data,dst=/data,volume-nocopy",
            Ok(named("data", "/data").nocopy()),
        ),
        (
            "src=data,dst=/data,volume-nocopy=true",
            Ok(named("data", "/data").nocopy()),
        ),
        (
            "src=data,dst=/data,volume-nocopy=1",
            Ok(named("data", "/data").nocopy()),
        ),
        (
            "src=data,dst=/data,volume-nocopy=false",
            Ok(named("data", "/data")),
        ),
        (
            "src=data,dst=/data,volume-nocopy=0",
            Ok(named("data", "/data")),
        ),
        (
            "src=data,dst=/data,volume-driver=nfs",
            Ok(named("data", "/data").driver("nfs")),
        ),
        (
            "dst=/data,volume-driver=nfs",
            Ok(anonymous("/data").driver("nfs")),
        ),
        (
            "src=data,dst=/data,volume-label=a=1,volume-label=b,volume-label=c=x=y",
            Ok(named("data", "/data")
                .label("a", "1")
                .label("b", "")
                .label("c", "x=y")),
        ),
        (
            "src=data,dst=/data,volume-label==x",
            Ok(named("data", "/data")),
        ),
        (
            "src=data,dst=/data,volume-label=a=1,volume-label=a=2",
            Ok(named("data", "/data").label("a", "2")),
        ),
        (
            "src=data,dst=/data,volume-opt=type=nfs,volume-opt=device=:/export,volume-opt=noquota",
            Ok(named("data", "/data")
                .opt("type", "nfs")
                .opt("device", ":/export")
                .opt("noquota", "")),
        ),
        (
            "src=data,dst=/data,volume-subpath=logs/app",
            Ok(named("data", "/data").subpath("logs/app")),
        ),
        (
            "src=data,dst=/data,volume-subpath=a/../b/",
            Ok(named("data", "/data").subpath("b")),
        ),
        (
            "src=data,dst=/data,volume-subpath=.",
            Ok(named("data", "/data").subpath(".")),
        ),
        // `enabled` is the default and does not count as a bind option.
        (
            "type=volume,dst=/data,bind-recursive=enabled",
            Ok(anonymous("/data")),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn readonly_values() {
    for (field, readonly) in [
        ("readonly", true),
        ("ro", true),
        ("readonly=true", true),
        ("readonly=1", true),
        ("ro=true", true),
        ("ro=1", true),
        ("readonly=false", false),
        ("readonly=0", false),
        ("ro=false", false),
        ("ro=0", false),
        ("RO", true),
    ] {
        let want = named("data", "/data");
        let want = if readonly { want.ro() } else { want };
        check(&format!("src=data,dst=/data,{field}"), Ok(want));
    }
}

#[test]
fn csv_quoting() {
    for (input, want) in [
        (
            r#"src=data,dst=/data,"volume-opt=o=addr=1.2.3.4,vers=4""#,
            Ok(named("data", "/data").opt("o", "addr=1.2.3.4,vers=4")),
        ),
        (r#""src=data","dst=/data""#, Ok(named("data", "/data"))),
        (
            r#"src=data,dst=/data,"volume-label=say=""hi""""#,
            Ok(named("data", "/data").label("say", "\"hi\"")),
        ),
        (
            r#"src=da"ta,dst=/data"#,
            err(
                r#"parse error on line 1, column 7: bare " in non-quoted-field (quote the whole field, e.g. "volume-opt=o=addr=1.2.3.4,vers=4")"#,
            ),
        ),
        (
            r#"src=data,dst=/da"ta"#,
            err(
                r#"parse error on line 1, column 17: bare " in non-quoted-field (quote the whole field, e.g. "volume-opt=o=addr=1.2.3.4,vers=4")"#,
            ),
        ),
        (
            r#""src=data,dst=/data"#,
            err(
                r#"parse error on line 1, column 20: extraneous or missing " in quoted-field (close the quote before the next ',' and write "" for a literal quote)"#,
            ),
        ),
        (
            r#""src=data"x,dst=/data"#,
            err(
                r#"parse error on line 1, column 10: extraneous or missing " in quoted-field (close the quote before the next ',' and write "" for a literal quote)"#,
            ),
        ),
        (
            "src=data\ndst=/data",
            err("a mount spec must be a single line (remove the line break)"),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn bind_keys() {
    let src = format!("{HERE}/src");
    for (input, want) in [
        (
            format!("type=bind,src={HERE},dst=/w"),
            Ok(mounted(HERE, "/w")),
        ),
        (
            format!("type=bind,source={HERE}/,target=/w,readonly"),
            Ok(mounted(HERE, "/w").ro()),
        ),
        ("type=bind,src=.,dst=/w".to_owned(), Ok(mounted(HERE, "/w"))),
        (
            "type=bind,src=./src,dst=/w".to_owned(),
            Ok(mounted(&src, "/w")),
        ),
        (
            "type=bind,src=./src/../src/,dst=/w".to_owned(),
            Ok(mounted(&src, "/w")),
        ),
        (
            format!("type=bind,src={HERE},dst=/w,consistency=delegated"),
            Ok(mounted(HERE, "/w")),
        ),
        (
            format!("type=bind,src={HERE},dst=/w,bind-recursive=enabled"),
            Ok(mounted(HERE, "/w")),
        ),
        (
            format!("type=bind,src={MISSING},dst=/w,bind-create-src"),
            Ok(bind(MISSING, "/w")),
        ),
        (
            format!("type=bind,src={MISSING},dst=/w,bind-create-src=true"),
            Ok(bind(MISSING, "/w")),
        ),
        (
            format!("type=bind,src={MISSING},dst=/w,bind-create-src=1"),
            Ok(bind(MISSING, "/w")),
        ),
        (
            format!("type=bind,src={HERE},dst=/w,bind-create-src=false"),
            Ok(mounted(HERE, "/w")),
        ),
        (
            format!("type=bind,src={HERE},dst=/w,bind-create-src=0"),
            Ok(mounted(HERE, "/w")),
        ),
    ] {
        check(&input, want);
    }
}

#[test]
fn bind_propagation() {
    for (value, propagation) in [
        ("rprivate", Rprivate),
        ("private", Private),
        ("rshared", Rshared),
        ("shared", Shared),
        ("rslave", Rslave),
        ("slave", Slave),
        ("RSLAVE", Rslave),
    ] {
        let input = format!("type=bind,src={HERE},dst=/w,bind-propagation={value}");
        check(&input, Ok(mounted(HERE, "/w").propagation(propagation)));
    }
}

#[test]
fn tmpfs_keys() {
    for (input, want) in [
        ("type=tmpfs,dst=/run", Ok(tmpfs("/run"))),
        ("type=tmpfs,dst=/run,ro", Ok(tmpfs("/run").ro())),
        (
            "type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770",
            Ok(tmpfs("/run").size(64 * MIB).mode(0o1770)),
        ),
        (
            "type=tmpfs,dst=/run,tmpfs-size=1MB,tmpfs-mode=0700",
            Ok(tmpfs("/run").size(MIB).mode(0o700)),
        ),
        (
            "type=tmpfs,dst=/run,tmpfs-size=1.5g",
            Ok(tmpfs("/run").size(3 * GIB / 2)),
        ),
        (
            "type=tmpfs,dst=/run,tmpfs-size=4096",
            Ok(tmpfs("/run").size(4096)),
        ),
        // Docker reads 0 as "not set".
        (
            "type=tmpfs,dst=/run,tmpfs-size=0,tmpfs-mode=0",
            Ok(tmpfs("/run")),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn field_errors() {
    for (input, want) in [
        (
            "",
            err(
                "value is empty (expected a mount spec such as type=volume,source=data,target=/data)",
            ),
        ),
        (
            "  ",
            err(
                "value is empty (expected a mount spec such as type=volume,source=data,target=/data)",
            ),
        ),
        (
            "type=volume,target=/foo,bogus=foo",
            err(format!(
                "unknown option 'bogus' in 'bogus=foo' {UNKNOWN_KEYS}"
            )),
        ),
        (
            "target=/foo,Bogus=1",
            err(format!(
                "unknown option 'bogus' in 'Bogus=1' {UNKNOWN_KEYS}"
            )),
        ),
        (
            "type=volume, src=/foo,target=/foo",
            err("invalid option 'src' in ' src=/foo': option should not have whitespace"),
        ),
        (
            "type=volume,src =/foo,target=/foo",
            err("invalid option 'src' in 'src =/foo': option should not have whitespace"),
        ),
        (
            "type=volume,src=,target=/foo",
            err("invalid value for 'src': value is empty"),
        ),
        (
            "type=volume,SRC= ,target=/foo",
            err("invalid value for 'SRC': value is empty"),
        ),
        (
            "type=volume,src= /foo,target=/foo",
            err("invalid value for 'src' in 'src= /foo': value should not have whitespace"),
        ),
        (
            "type=volume,src=/foo ,target=/foo",
            err("invalid value for 'src' in 'src=/foo ': value should not have whitespace"),
        ),
        (
            "type=volume,target=/foo,bogus",
            err("invalid field 'bogus' must be a key=value pair"),
        ),
        (
            "target=/foo,,ro",
            err("invalid field '' must be a key=value pair"),
        ),
        (
            "target=/foo,",
            err("invalid field '' must be a key=value pair"),
        ),
        (
            "target=/foo,bind-propagation",
            err("invalid field 'bind-propagation' must be a key=value pair"),
        ),
        (
            "target=/foo,type",
            err("invalid field 'type' must be a key=value pair"),
        ),
        (
            "src=data,dst=/d,readonly=",
            err("invalid value for 'readonly': value is empty"),
        ),
        (
            "src=data,dst=/d,readonly=no",
            err(format!(
                "invalid value for 'readonly': invalid boolean value (\"no\"): {BOOLS}"
            )),
        ),
        (
            "src=data,dst=/d,ro=TRUE",
            err(format!(
                "invalid value for 'ro': invalid boolean value (\"TRUE\"): {BOOLS}"
            )),
        ),
        (
            "src=data,dst=/d,volume-nocopy=maybe",
            err(format!(
                "invalid value for 'volume-nocopy': invalid boolean value (\"maybe\"): {BOOLS}"
            )),
        ),
        (
            "type=bind,src=/x,dst=/d,bind-create-src=2",
            err(format!(
                "invalid value for 'bind-create-src': invalid boolean value (\"2\"): {BOOLS}"
            )),
        ),
        // Fields are read in order; the first bad one is reported.
        (
            "bogus=1,src=",
            err(format!(
                "unknown option 'bogus' in 'bogus=1' {UNKNOWN_KEYS}"
            )),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn tmpfs_value_errors() {
    const SIZE: &str = "(expected bytes or a size such as 64m or 1g)";
    const MODE: &str = "(expected octal permissions such as 1777 or 0700)";
    for (input, want) in [
        (
            "type=tmpfs,target=/foo,tmpfs-size=foo",
            err(format!("invalid value for tmpfs-size: foo {SIZE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-size=-1",
            err(format!("invalid value for tmpfs-size: -1 {SIZE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-size=10x",
            err(format!("invalid value for tmpfs-size: 10x {SIZE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-size=1e30p",
            err(format!("invalid value for tmpfs-size: 1e30p {SIZE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-mode=foo",
            err(format!("invalid value for tmpfs-mode: foo {MODE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-mode=8",
            err(format!("invalid value for tmpfs-mode: 8 {MODE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-mode=0o755",
            err(format!("invalid value for tmpfs-mode: 0o755 {MODE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-mode=+755",
            err(format!("invalid value for tmpfs-mode: +755 {MODE}")),
        ),
        (
            "type=tmpfs,target=/foo,tmpfs-mode=77777777777",
            err(format!("invalid value for tmpfs-mode: 77777777777 {MODE}")),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn mixing_errors() {
    for (input, want) in [
        (
            "type=volume,target=/foo,source=/foo,bind-propagation=rprivate",
            err("cannot mix 'bind-*' options with mount type 'volume'"),
        ),
        (
            "type=volume,dst=/x,bind-recursive=disabled",
            err("cannot mix 'bind-*' options with mount type 'volume'"),
        ),
        (
            "type=volume,dst=/x,bind-create-src",
            err("cannot mix 'bind-*' options with mount type 'volume'"),
        ),
        (
            "type=tmpfs,dst=/x,bind-propagation=shared",
            err("cannot mix 'bind-*' options with mount type 'tmpfs'"),
        ),
        (
            "type=bind,target=/foo,source=/foo,volume-nocopy=true",
            err("cannot mix 'volume-*' options with mount type 'bind'"),
        ),
        (
            "type=bind,target=/foo,source=/foo,volume-nocopy=false",
            err("cannot mix 'volume-*' options with mount type 'bind'"),
        ),
        (
            "type=bind,src=/x,dst=/x,volume-label==",
            err("cannot mix 'volume-*' options with mount type 'bind'"),
        ),
        (
            "type=tmpfs,dst=/x,volume-driver=nfs",
            err("cannot mix 'volume-*' options with mount type 'tmpfs'"),
        ),
        (
            "type=tmpfs,dst=/x,volume-subpath=a",
            err("cannot mix 'volume-*' options with mount type 'tmpfs'"),
        ),
        (
            "type=volume,dst=/x,image-subpath=/a",
            err("cannot mix 'image-*' options with mount type 'volume'"),
        ),
        (
            "type=bind,src=/x,dst=/x,tmpfs-size=1m",
            err("cannot mix 'tmpfs-*' options with mount type 'bind'"),
        ),
        (
            "dst=/x,tmpfs-mode=700",
            err("cannot mix 'tmpfs-*' options with mount type 'volume'"),
        ),
        // Bind options are reported first, whatever the field order.
        (
            "dst=/x,tmpfs-mode=700,bind-propagation=shared",
            err("cannot mix 'bind-*' options with mount type 'volume'"),
        ),
        (
            "type=foo,dst=/x,volume-driver=nfs",
            err("cannot mix 'volume-*' options with mount type 'foo'"),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn unsupported() {
    for (input, want) in [
        (
            "type=bind,src=/x,dst=/x,bind-nonrecursive",
            err(
                "bind-nonrecursive is deprecated, use bind-recursive=disabled instead; strata does not support non-recursive bind mounts, so remove the option",
            ),
        ),
        (
            "type=bind,src=/x,dst=/x,bind-nonrecursive=false",
            err(
                "bind-nonrecursive is deprecated, use bind-recursive=disabled instead; strata does not support non-recursive bind mounts, so remove the option",
            ),
        ),
        (
            "type=bind,src=/x,dst=/x,bind-recursive=Enabled",
            err(
                "invalid value for bind-recursive: Enabled (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")",
            ),
        ),
        (
            "type=bind,src=/x,dst=/x,bind-recursive=disabled",
            err(
                "bind-recursive=disabled is not supported by strata: bind mounts are always recursive (omit the option or use bind-recursive=enabled)",
            ),
        ),
        (
            "type=bind,src=/x,dst=/x,bind-recursive=writable,readonly",
            err(
                "bind-recursive=writable is not supported by strata: bind mounts are always recursive (omit the option or use bind-recursive=enabled)",
            ),
        ),
        (
            "type=bind,src=/x,dst=/x,bind-recursive=readonly,readonly,bind-propagation=rprivate",
            err(
                "bind-recursive=readonly is not supported by strata: bind mounts are always recursive (omit the option or use bind-recursive=enabled)",
            ),
        ),
        (
            "type=image,src=alpine,dst=/x",
            err("mount type 'image' is not supported by strata (use bind, volume or tmpfs)"),
        ),
        (
            "type=IMAGE,src=alpine,dst=/x,image-subpath=/etc",
            err("mount type 'image' is not supported by strata (use bind, volume or tmpfs)"),
        ),
        (
            "type=api-socket,dst=/x",
            err("mount type 'api-socket' is not supported by strata (use bind, volume or tmpfs)"),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn daemon_errors() {
    for (input, want) in [
        (
            "type=bind".to_owned(),
            err(
                "invalid mount config for type \"bind\": field Target must not be empty (set target=/path/in/container)",
            ),
        ),
        (
            "type=tmpfs".to_owned(),
            err(
                "invalid mount config for type \"tmpfs\": field Target must not be empty (set target=/path/in/container)",
            ),
        ),
        (
            "src=data".to_owned(),
            err(
                "invalid mount config for type \"volume\": field Target must not be empty (set target=/path/in/container)",
            ),
        ),
        (
            "type=foo".to_owned(),
            err(
                "invalid mount config for type \"foo\": field Target must not be empty (set target=/path/in/container)",
            ),
        ),
        (
            "type=foo,dst=/x".to_owned(),
            err(
                "invalid mount config for type \"foo\": mount type unknown (expected bind, volume or tmpfs)",
            ),
        ),
        (
            "type=volume,src=data,dst=/".to_owned(),
            err(
                "invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
            ),
        ),
        (
            "type=tmpfs,dst=//.".to_owned(),
            err(
                "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'",
            ),
        ),
        (
            "src=data,dst=relative".to_owned(),
            err(
                "invalid mount config for type \"volume\": invalid mount path: 'relative' mount path must be absolute",
            ),
        ),
        (
            format!("type=bind,src={HERE},dst=x"),
            err(
                "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute",
            ),
        ),
        (
            "type=bind,dst=/x".to_owned(),
            err(
                "invalid mount config for type \"bind\": field Source must not be empty (set source=/path/on/host)",
            ),
        ),
        (
            format!("type=bind,src={HERE},dst=/x,bind-propagation=bogus"),
            err(
                "invalid mount config for type \"bind\": invalid propagation mode: bogus (expected rprivate, private, rshared, shared, rslave or slave)",
            ),
        ),
        (
            "type=bind,src=x,dst=/x".to_owned(),
            err(
                "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute",
            ),
        ),
        (
            "type=bind,src=~/x,dst=/x".to_owned(),
            err(
                "invalid mount config for type \"bind\": invalid mount path: '~/x' mount path must be absolute",
            ),
        ),
        (
            format!("type=bind,src={MISSING},dst=/x"),
            err(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {MISSING}"
            )),
        ),
        (
            "type=bind,src=./missing-dir/,dst=/x".to_owned(),
            err(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {HERE}/missing-dir"
            )),
        ),
        // The propagation is checked before the source's existence.
        (
            format!("type=bind,src={MISSING},dst=/x,bind-propagation=up"),
            err(
                "invalid mount config for type \"bind\": invalid propagation mode: up (expected rprivate, private, rshared, shared, rslave or slave)",
            ),
        ),
        (
            "type=tmpfs,src=/x,dst=/y".to_owned(),
            err(
                "invalid mount config for type \"tmpfs\": field Source must not be specified (a tmpfs mount has no source)",
            ),
        ),
    ] {
        check(&input, want);
    }
}

#[test]
fn volume_errors() {
    for (input, want) in [
        (
            "dst=/x,volume-subpath=a".to_owned(),
            err(
                "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes (name the volume with source=NAME)",
            ),
        ),
        (
            "src=data,dst=/x,volume-subpath=/abs".to_owned(),
            err(
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume, got '/abs' (e.g. volume-subpath=data/logs)",
            ),
        ),
        (
            "src=data,dst=/x,volume-subpath=../up".to_owned(),
            err(
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume, got '../up' (e.g. volume-subpath=data/logs)",
            ),
        ),
        (
            "src=data,dst=/x,volume-subpath=a/../../b".to_owned(),
            err(
                "invalid mount config for type \"volume\": subpath must be a relative path within the volume, got 'a/../../b' (e.g. volume-subpath=data/logs)",
            ),
        ),
        (
            "src=/abs,dst=/x".to_owned(),
            err(
                "invalid mount config for type \"volume\": volume source '/abs' is a path, not a volume name (use type=bind to mount a host directory)",
            ),
        ),
        (
            "src=a/b,dst=/x".to_owned(),
            err(
                "invalid mount config for type \"volume\": volume source 'a/b' is a path, not a volume name (use type=bind to mount a host directory)",
            ),
        ),
        (
            "src=./data,dst=/x".to_owned(),
            err(format!(
                "invalid mount config for type \"volume\": volume source '{HERE}/data' is a path, not a volume name (use type=bind to mount a host directory)"
            )),
        ),
        (
            "src=a,dst=/x".to_owned(),
            err("volume name is too short, names should be at least two alphanumeric characters"),
        ),
        (
            "src=-a,dst=/x".to_owned(),
            err(format!("\"-a\" {NAME_RULE}")),
        ),
        (
            "src=a b,dst=/x".to_owned(),
            err(format!("\"a b\" {NAME_RULE}")),
        ),
    ] {
        check(&input, want);
    }
}
