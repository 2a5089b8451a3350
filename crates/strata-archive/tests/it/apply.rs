use std::os::unix::fs::MetadataExt;
use std::path::Path;

use strata_archive::{Format, apply};

use crate::support::{E, capture, raw_tar, sha256, tar_of};

fn apply_plain(
    tar: &[u8],
    dir: &Path,
) -> Result<strata_archive::Applied, strata_archive::ApplyError> {
    apply::<_, Vec<u8>>(tar, dir, Format::Plain, None)
}

#[test]
fn metadata_survives() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::Dir("bin/"),
        E::Owned("bin/su", b"#!", 0o4755, 1000, 50),
        E::Symlink("bin/sh", "/bin/su"),
        E::Owned("bin/tool", b"t", 0o4755, 1000, 50),
        E::Hardlink("bin/tool2", "bin/tool"),
        E::Char("dev/null", 1, 3),
        E::Fifo("run/fifo"),
        E::Xattr(
            "bin/ping",
            b"ping",
            "security.capability",
            &[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        E::Xattr("etc/tagged", b"", "user.strata", b"yes"),
    ]);
    let applied = apply_plain(&tar, dir.path()).unwrap();
    assert_eq!(applied.entries, 9);
    assert_eq!(applied.size, 2 + 1 + 4);
    assert_eq!(applied.tar_size, tar.len() as u64);
    let tree = capture(dir.path(), true);
    let su = &tree["bin/su"];
    assert_eq!((su.kind, su.mode, su.uid, su.gid), ('f', 0o4755, 1000, 50));
    assert_eq!(su.mtime, 1_600_000_000);
    assert_eq!(tree["bin/sh"].content, "/bin/su");
    let ino = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().ino();
    assert_eq!(ino("bin/tool"), ino("bin/tool2"));
    // A hardlink entry's own owner and mode apply to the inode it shares,
    // as Docker and podman unpack it (this entry says root, 0644).
    let tool = &tree["bin/tool"];
    assert_eq!((tool.mode, tool.uid, tool.gid), (0o644, 0, 0));
    assert_eq!(
        (tree["dev/null"].kind, tree["dev/null"].content.as_str()),
        ('c', "1:3")
    );
    assert_eq!(tree["run/fifo"].kind, 'p');
    assert_eq!(tree["bin/ping"].xattrs[0].0, "security.capability");
    assert_eq!(
        tree["etc/tagged"].xattrs,
        vec![("user.strata".into(), hex::encode("yes"))]
    );
    // Implicit parents are made root-owned 0755, as Docker does.
    assert_eq!((tree["run"].mode, tree["run"].uid), (0o755, 0));
    assert_eq!(
        tree["bin"].mtime, 1_600_000_000,
        "directory times are set last"
    );
}

#[test]
fn large_files_keep_content_and_metadata() {
    // Files from 4 MiB up are written around the page cache in aligned
    // chunks, their tail through it; sizes on and off the alignment.
    let big = |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 7 % 253) as u8).collect() };
    let (exact, odd, after) = (big(4 << 20), big((5 << 20) + 4097), big(100));
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::Owned("exact", &exact, 0o755, 1000, 50),
        E::Owned("odd", &odd, 0o4711, 7, 8),
        E::File("after", &after),
    ]);
    let applied = apply_plain(&tar, dir.path()).unwrap();
    assert_eq!(applied.size, (exact.len() + odd.len() + after.len()) as u64);
    let tree = capture(dir.path(), true);
    for (name, data, mode, uid, gid) in [
        ("exact", &exact, 0o755, 1000, 50),
        ("odd", &odd, 0o4711, 7, 8),
        ("after", &after, 0o644, 0, 0),
    ] {
        let node = &tree[name];
        assert_eq!(node.content, sha256(data), "{name}");
        assert_eq!((node.mode, node.uid, node.gid), (mode, uid, gid), "{name}");
        assert_eq!(node.mtime, 1_600_000_000, "{name}");
    }
}

/// A hostile or broken layer gets a clear error and writes nothing outside.
fn check_refused(tar: &[u8], expected: &str) {
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let passwd = sha256(&std::fs::read("/etc/passwd").unwrap());
    let err = apply_plain(tar, &target).expect_err(expected).to_string();
    assert!(err.contains(expected), "expected '{expected}' in: {err}");
    assert_eq!(sha256(&std::fs::read("/etc/passwd").unwrap()), passwd);
    let outside: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(outside.len(), 1, "nothing written beside the target");
}

#[test]
fn hostile_layers_are_refused() {
    check_refused(
        &raw_tar("../evil", b"x"),
        "tar entry '../evil' climbs out of the layer",
    );
    check_refused(&raw_tar("a/../../evil", b"x"), "climbs out of the layer");
    check_refused(
        &raw_tar("/etc/evil", b"x"),
        "tar entry '/etc/evil' has an absolute path",
    );
    check_refused(
        &tar_of(&[
            E::Symlink("a/link", "../../../etc"),
            E::File("a/link/passwd", b"pwned"),
        ]),
        "symlink 'a/link' -> '../../../etc' points outside the layer",
    );
    check_refused(
        &tar_of(&[E::Hardlink("x", "/etc/passwd")]),
        "hardlink 'x' -> '/etc/passwd': the target does not exist in the layer",
    );
    check_refused(
        &tar_of(&[E::Char("etc/null", 1, 3)]),
        "device node 'etc/null' (char 1:3) is outside /dev",
    );
    check_refused(
        &tar_of(&[E::Char("dev/wh", 0, 0)]),
        "is an overlay whiteout",
    );
    let big = tar_of(&[E::File("big", &[7u8; 4000])]);
    check_refused(&big[..2048], "the file is truncated");
    check_refused(&[b'x'; 2048], "bad tar header at byte 0: not a tar stream");
}

#[test]
fn hardlinks_outside_are_refused() {
    // `tar` refuses to write a '..' link name, so patch one in.
    let mut tar = tar_of(&[E::File("a", b"x"), E::Hardlink("b", "aaaaaaaaaaaaaaaa")]);
    let pos = tar
        .windows(16)
        .position(|w| w == b"aaaaaaaaaaaaaaaa")
        .unwrap();
    tar[pos..pos + 16].copy_from_slice(b"../../etc/passwd");
    // Fix the checksum of that header block.
    let start = pos - 157;
    let block = &mut tar[start..start + 512];
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    check_refused(
        &tar,
        "hardlink 'b' -> '../../etc/passwd': the target climbs out of the layer",
    );
}

#[test]
fn absolute_symlinks_and_hardlinks_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let tar = tar_of(&[
        E::Symlink("etcl", "/etc"),
        E::File("etcl/passwd", b"inside"),
        E::Hardlink("linked", "/etc/passwd"),
        E::Symlink("up", "../../../../.."),
    ]);
    // "up" climbs out: refused. Without it, the rest lands inside.
    assert!(apply_plain(&tar, dir.path()).is_err());
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::Symlink("etcl", "/etc"),
        E::File("etcl/passwd", b"inside"),
        E::Hardlink("linked", "/etc/passwd"),
    ]);
    apply_plain(&tar, dir.path()).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("etc/passwd")).unwrap(),
        b"inside"
    );
    assert_eq!(std::fs::read(dir.path().join("linked")).unwrap(), b"inside");
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd);
}

#[test]
fn dot_dot_inside_the_layer_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    apply_plain(&raw_tar("a/../b", b"x"), dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"x");
    assert!(!dir.path().join("a").exists());
}

#[test]
fn entries_replace_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::File("x", b"file"),
        E::Dir("x/"),
        E::File("x/inner", b"1"),
        E::Dir("y/"),
        E::File("y/inner", b"1"),
        E::File("y", b"now a file"),
        E::File("z", b"first"),
        E::File("z", b"second"),
    ]);
    apply_plain(&tar, dir.path()).unwrap();
    let tree = capture(dir.path(), false);
    assert_eq!(tree["x"].kind, 'd');
    assert_eq!(tree["y"].kind, 'f');
    assert!(!tree.contains_key("y/inner"));
    assert_eq!(std::fs::read(dir.path().join("z")).unwrap(), b"second");
}

#[test]
fn gnu_tar_output_applies() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("deep/er")).unwrap();
    std::fs::write(src.join("deep/er/f"), b"gnu").unwrap();
    let long = "n".repeat(180);
    std::fs::write(src.join(&long), b"long").unwrap();
    let out = std::process::Command::new("tar")
        .args(["--format=gnu", "-C"])
        .arg(&src)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    let target = dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    apply_plain(&out.stdout, &target).unwrap();
    assert_eq!(std::fs::read(target.join("deep/er/f")).unwrap(), b"gnu");
    assert_eq!(std::fs::read(target.join(&long)).unwrap(), b"long");
}
