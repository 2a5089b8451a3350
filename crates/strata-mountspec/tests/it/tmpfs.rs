//! `--tmpfs PATH[:OPTIONS]`: the target rule, Docker's option whitelist, and
//! the kernel's `size=` and `mode=` grammar.

use strata_mountspec::parse_tmpfs;

use crate::support::{KIB, MIB, Tweak, Want, compare, err, tmpfs};

fn check(input: &str, want: Want) {
    compare(input, parse_tmpfs(input), want);
}

const OPTION: &str = "(expected a mount flag such as ro, noexec or nosuid, or one of size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=, mpol=)";
const SIZE: &str = "(expected a byte count with an optional k, m, g, t, p or e suffix, or a percentage such as 50%)";
const MODE: &str = "(expected octal permissions such as 1777)";

#[test]
fn tmpfs_flag() {
    for (input, want) in [
        ("/run", Ok(tmpfs("/run"))),
        ("/run/", Ok(tmpfs("/run"))),
        ("/run:", Ok(tmpfs("/run"))),
        (
            "/run:rw,noexec,nosuid,size=65536k,mode=1777",
            Ok(tmpfs("/run").size(64 * MIB).mode(0o1777).options(&[
                "rw",
                "noexec",
                "nosuid",
                "size=65536k",
                "mode=1777",
            ])),
        ),
        ("/run:ro", Ok(tmpfs("/run").ro().options(&["ro"]))),
        // The last of ro and rw wins, as in Docker's option merge.
        ("/run:ro,rw", Ok(tmpfs("/run").options(&["ro", "rw"]))),
        ("/run:rw,ro", Ok(tmpfs("/run").ro().options(&["rw", "ro"]))),
        (
            "/run:size=64m",
            Ok(tmpfs("/run").size(64 * MIB).options(&["size=64m"])),
        ),
        (
            "/run:size=64M",
            Ok(tmpfs("/run").size(64 * MIB).options(&["size=64M"])),
        ),
        (
            "/run:size=1k",
            Ok(tmpfs("/run").size(KIB).options(&["size=1k"])),
        ),
        (
            "/run:size=2G",
            Ok(tmpfs("/run").size(2 << 30).options(&["size=2G"])),
        ),
        (
            "/run:size=1t",
            Ok(tmpfs("/run").size(1 << 40).options(&["size=1t"])),
        ),
        (
            "/run:size=1p",
            Ok(tmpfs("/run").size(1 << 50).options(&["size=1p"])),
        ),
        (
            "/run:size=1E",
            Ok(tmpfs("/run").size(1 << 60).options(&["size=1E"])),
        ),
        (
            "/run:size=4096",
            Ok(tmpfs("/run").size(4096).options(&["size=4096"])),
        ),
        (
            "/run:size=0x100000",
            Ok(tmpfs("/run").size(MIB).options(&["size=0x100000"])),
        ),
        (
            "/run:size=010",
            Ok(tmpfs("/run").size(8).options(&["size=010"])),
        ),
        (
            "/run:size=0",
            Ok(tmpfs("/run").size(0).options(&["size=0"])),
        ),
        // A share of host memory has no byte count until the host is known.
        ("/run:size=50%", Ok(tmpfs("/run").options(&["size=50%"]))),
        (
            "/run:size=1g,size=2g",
            Ok(tmpfs("/run").size(2 << 30).options(&["size=1g", "size=2g"])),
        ),
        // Only the last size reaches the kernel, so only it is checked.
        (
            "/run:size=junk,size=1m",
            Ok(tmpfs("/run").size(MIB).options(&["size=junk", "size=1m"])),
        ),
        (
            "/run:mode=0700",
            Ok(tmpfs("/run").mode(0o700).options(&["mode=0700"])),
        ),
        (
            "/run:mode=1777,mode=755",
            Ok(tmpfs("/run")
                .mode(0o755)
                .options(&["mode=1777", "mode=755"])),
        ),
        (
            "/run:uid=1000,gid=1000,nr_inodes=400k,nr_blocks=10,mpol=bind:0-3",
            Ok(tmpfs("/run").options(&[
                "uid=1000",
                "gid=1000",
                "nr_inodes=400k",
                "nr_blocks=10",
                "mpol=bind:0-3",
            ])),
        ),
        (
            "/run:defaults,exec,dev,suid,relatime,strictatime,rshared",
            Ok(tmpfs("/run").options(&[
                "defaults",
                "exec",
                "dev",
                "suid",
                "relatime",
                "strictatime",
                "rshared",
            ])),
        ),
        ("/a//b/../c", Ok(tmpfs("/a/c"))),
    ] {
        check(input, want);
    }
}

#[test]
fn tmpfs_errors() {
    for (input, want) in [
        (
            "",
            err("invalid mount path: '' mount path must be absolute"),
        ),
        (
            "run",
            err("invalid mount path: 'run' mount path must be absolute"),
        ),
        (
            "run:size=1m",
            err("invalid mount path: 'run' mount path must be absolute"),
        ),
        ("/", err("invalid specification: destination can't be '/'")),
        (
            "/run/..:size=1m",
            err("invalid specification: destination can't be '/'"),
        ),
        (
            "/run:foo",
            err(format!("invalid tmpfs option \"foo\" {OPTION}")),
        ),
        (
            "/run:NOEXEC",
            err(format!("invalid tmpfs option \"NOEXEC\" {OPTION}")),
        ),
        (
            "/run:rw,,noexec",
            err(format!("invalid tmpfs option \"\" {OPTION}")),
        ),
        (
            "/run:ro,",
            err(format!("invalid tmpfs option \"\" {OPTION}")),
        ),
        // Docker's merge walks from the last option, so that one is reported.
        (
            "/run:foo,bar",
            err(format!("invalid tmpfs option \"bar\" {OPTION}")),
        ),
        (
            "/run:huge=always",
            err(format!("invalid tmpfs option \"huge=always\" {OPTION}")),
        ),
        (
            "/run:=x",
            err(format!("invalid tmpfs option \"=x\" {OPTION}")),
        ),
        (
            "/run:size=1mb",
            err(format!("invalid tmpfs option \"size=1mb\" {SIZE}")),
        ),
        (
            "/run:size=",
            err(format!("invalid tmpfs option \"size=\" {SIZE}")),
        ),
        (
            "/run:size=abc",
            err(format!("invalid tmpfs option \"size=abc\" {SIZE}")),
        ),
        (
            "/run:size=08",
            err(format!("invalid tmpfs option \"size=08\" {SIZE}")),
        ),
        (
            "/run:size=0x",
            err(format!("invalid tmpfs option \"size=0x\" {SIZE}")),
        ),
        (
            "/run:size=1.5g",
            err(format!("invalid tmpfs option \"size=1.5g\" {SIZE}")),
        ),
        (
            "/run:size=16e",
            err(format!("invalid tmpfs option \"size=16e\" {SIZE}")),
        ),
        (
            "/run:size=99999999999999999999",
            err(format!(
                "invalid tmpfs option \"size=99999999999999999999\" {SIZE}"
            )),
        ),
        (
            "/run:size=50%%",
            err(format!("invalid tmpfs option \"size=50%%\" {SIZE}")),
        ),
        (
            "/run:mode=",
            err(format!("invalid tmpfs option \"mode=\" {MODE}")),
        ),
        (
            "/run:mode=8",
            err(format!("invalid tmpfs option \"mode=8\" {MODE}")),
        ),
        (
            "/run:mode=rwx",
            err(format!("invalid tmpfs option \"mode=rwx\" {MODE}")),
        ),
    ] {
        check(input, want);
    }
}
