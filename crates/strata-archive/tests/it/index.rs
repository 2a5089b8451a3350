use std::fs::File;
use std::os::fd::AsFd;

use strata_archive::fsops;
use strata_archive::{Format, IndexWriter, apply, rebuild};

use crate::support::{E, tar_of};

/// Applies `tar` with an index, rebuilds it from the files, and checks the
/// rebuilt stream is the original, byte for byte.
fn check_rebuild(tar: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let index_path = dir.path().join("index");
    let mut index = IndexWriter::new(File::create(&index_path).unwrap(), dir.path()).unwrap();
    apply(tar, &files, Format::Plain, Some(&mut index)).unwrap();
    index.finish().unwrap();
    let root = fsops::open_dir(&files).unwrap();
    let mut rebuilt = Vec::new();
    let n = rebuild(
        &File::open(&index_path).unwrap(),
        root.as_fd(),
        &mut rebuilt,
    )
    .unwrap();
    assert_eq!(n as usize, tar.len());
    assert!(rebuilt == tar, "rebuilt tar differs from the original");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "no spill file left behind");
}

#[test]
fn rebuilds_are_byte_exact() {
    check_rebuild(&tar_of(&[
        E::Dir("etc/"),
        E::File("etc/hostname", b"strata\n"),
        E::Owned("bin/su", &[9u8; 70_000], 0o4755, 1, 2),
        E::Symlink("bin/sh", "su"),
        E::Hardlink("bin/su2", "bin/su"),
        E::Xattr("x", b"data", "user.k", b"v"),
        E::File(&"long/".repeat(40), b"long name"),
        E::Char("dev/null", 1, 3),
    ]));
}

#[test]
fn rebuilds_layers_that_overwrite_themselves() {
    // Duplicates, a file replaced by a directory, a directory (with files)
    // replaced by a file: the earlier contents are spilled into the index.
    check_rebuild(&tar_of(&[
        E::File("dup", b"first version"),
        E::File("dup", b"second version"),
        E::File("d/a", b"inside d"),
        E::File("d/b", b"also inside d"),
        E::File("d", b"d is a file now"),
        E::File("f", b"f was a file"),
        E::Dir("f/"),
        E::File("g", b"g"),
        E::Hardlink("g2", "g"),
        E::File("g", b"g replaced, g2 keeps the old inode"),
    ]));
}

#[test]
fn rebuilds_trailing_padding() {
    // GNU tar pads to 10 KiB records; the padding is part of the diff ID.
    let mut tar = tar_of(&[E::File("a", b"x")]);
    tar.resize(10240, 0);
    check_rebuild(&tar);
}

#[test]
fn rebuilds_gnu_tar_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/b/c"), vec![1u8; 100_000]).unwrap();
    std::fs::write(dir.path().join("p".repeat(200)), b"long").unwrap();
    for format in ["gnu", "posix", "ustar"] {
        let out = std::process::Command::new("tar")
            .arg(format!("--format={format}"))
            .arg("-C")
            .arg(dir.path())
            .args(["-cf", "-", "a"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}");
        check_rebuild(&out.stdout);
    }
}
