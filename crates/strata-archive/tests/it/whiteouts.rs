//! The same layers applied the vfs way (a full tree, whiteouts delete) and
//! the overlay way (an upper directory over lowers, whiteouts as char 0/0
//! and opaque xattrs), then mounted: both must show the same filesystem.

use std::path::{Path, PathBuf};

use strata_archive::copy::copy_tree;
use strata_archive::{Format, apply};

use crate::support::{E, Overlay, capture, tar_of};

pub struct Stacks {
    pub dir: tempfile::TempDir,
    /// vfs: one complete tree per layer.
    pub trees: Vec<PathBuf>,
    /// overlay: one upper directory per layer.
    pub uppers: Vec<PathBuf>,
}

/// Applies `layers` both ways.
pub fn stack(layers: &[Vec<u8>]) -> Stacks {
    let dir = tempfile::tempdir().unwrap();
    let mut trees: Vec<PathBuf> = Vec::new();
    let mut uppers: Vec<PathBuf> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let tree = dir.path().join(format!("tree{i}"));
        std::fs::create_dir(&tree).unwrap();
        if let Some(prev) = trees.last() {
            copy_tree(prev, &tree).unwrap();
        }
        apply::<_, Vec<u8>>(&layer[..], &tree, Format::Plain, None).unwrap();
        trees.push(tree);

        let upper = dir.path().join(format!("upper{i}"));
        std::fs::create_dir(&upper).unwrap();
        let lowers: Vec<PathBuf> = uppers.iter().rev().cloned().collect();
        apply::<_, Vec<u8>>(
            &layer[..],
            &upper,
            Format::Overlay { lowers: &lowers },
            None,
        )
        .unwrap();
        uppers.push(upper);
    }
    Stacks { dir, trees, uppers }
}

pub fn merged(s: &Stacks, mountpoint: &Path) -> Overlay {
    let lowers: Vec<&Path> = s.uppers.iter().rev().map(PathBuf::as_path).collect();
    if lowers.len() == 1 {
        // overlayfs needs two lowers without an upper; add an empty one.
        let empty = s.dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        return Overlay::mount(&[lowers[0], &empty], mountpoint);
    }
    Overlay::mount(&lowers, mountpoint)
}

/// Both ways give the same tree.
pub fn check_same(layers: &[Vec<u8>]) -> Stacks {
    let s = stack(layers);
    let mnt = s.dir.path().join("merged");
    let overlay = merged(&s, &mnt);
    let vfs = capture(s.trees.last().unwrap(), false);
    let ovl = capture(&overlay.merged, false);
    if vfs != ovl {
        for (k, v) in &vfs {
            if ovl.get(k) != Some(v) {
                eprintln!("vfs {k}: {v:?}\novl {k}: {:?}", ovl.get(k));
            }
        }
        for k in ovl.keys().filter(|k| !vfs.contains_key(*k)) {
            eprintln!("only in overlay: {k}");
        }
        panic!("overlay and vfs disagree");
    }
    drop(overlay);
    s
}

fn base() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc/"),
        E::File("etc/passwd", b"root:x:0:0"),
        E::File("etc/shadow", b"secret"),
        E::Dir("var/"),
        E::Dir("var/lib/"),
        E::File("var/lib/a", b"a"),
        E::File("var/lib/b", b"b"),
        E::Dir("var/lib/sub/"),
        E::File("var/lib/sub/c", b"c"),
        E::DirMode("home/user/", 0o700, 1000, 1000),
        E::Owned("home/user/.profile", b"x", 0o600, 1000, 1000),
        E::Dir("usr/"),
        E::Dir("usr/lib/"),
        E::File("usr/lib/libc.so", b"libc"),
        E::Symlink("lib", "usr/lib"),
        E::File("bin/tool", b"tool"),
    ])
}

#[test]
fn whiteouts_hide_files_and_directories() {
    let s = check_same(&[
        base(),
        tar_of(&[E::File("etc/.wh.shadow", b""), E::File(".wh.home", b"")]),
    ]);
    let top = s.trees.last().unwrap();
    assert!(!top.join("etc/shadow").exists() && !top.join("home").exists());
    assert!(top.join("etc/passwd").exists());
}

#[test]
fn opaque_directories_keep_this_layers_entries() {
    // The opaque marker may come before or after this layer's own entries.
    check_same(&[
        base(),
        tar_of(&[
            E::File("var/lib/new", b"new"),
            E::Dir("var/lib/"),
            E::File("var/lib/.wh..wh..opq", b""),
            E::File("var/lib/newer", b"newer"),
        ]),
    ]);
}

/// An entry under a lower symlink (`lib -> usr/lib`) lands where it points;
/// once the layer whites the symlink out, the next entry under `lib` makes
/// a real directory, not another write through what is hidden.
#[test]
fn entries_after_a_whiteout_never_go_through_what_it_hides() {
    let s = check_same(&[
        base(),
        tar_of(&[
            E::File("lib/through", b"1"),
            E::File(".wh.lib", b""),
            E::File("lib/after", b"2"),
        ]),
    ]);
    let top = s.trees.last().unwrap();
    assert!(top.join("usr/lib/through").exists());
    assert!(top.join("lib").is_dir() && top.join("lib/after").exists());
    assert!(!top.join("usr/lib/after").exists());
    // The same through an opaque directory that hides the symlink.
    check_same(&[
        base(),
        tar_of(&[
            E::Dir("var/lib/sub/"),
            E::Symlink("var/lib/sub/link", "/usr/lib"),
        ]),
        tar_of(&[
            E::File("var/lib/sub/link/through", b"1"),
            E::File("var/lib/sub/.wh..wh..opq", b""),
            E::File("var/lib/sub/link/after", b"2"),
        ]),
    ]);
}

#[test]
fn a_whiteout_never_hides_its_own_layer() {
    let s = check_same(&[
        base(),
        tar_of(&[E::File("etc/motd", b"hi"), E::File("etc/.wh.motd", b"")]),
    ]);
    assert!(s.trees.last().unwrap().join("etc/motd").exists());
}

#[test]
fn deleted_then_recreated_directory_hides_the_old_content() {
    let s = check_same(&[
        base(),
        tar_of(&[
            E::File("var/.wh.lib", b""),
            E::Dir("var/lib/"),
            E::File("var/lib/fresh", b"f"),
        ]),
    ]);
    let top = s.trees.last().unwrap();
    assert!(!top.join("var/lib/a").exists());
    assert!(top.join("var/lib/fresh").exists());
}

#[test]
fn types_change_both_ways() {
    check_same(&[
        base(),
        tar_of(&[
            E::File("var/lib/sub", b"now a file"),
            E::Dir("bin/tool/"),
            E::File("bin/tool/x", b"x"),
        ]),
    ]);
}

#[test]
fn writes_through_a_lower_symlink_and_into_lower_only_directories() {
    // "lib" is a symlink in the layer below; "home/user" (1000, 0700) exists
    // only below: overlay copies it up with its owner and mode.
    let s = check_same(&[
        base(),
        tar_of(&[
            E::File("lib/libnew.so", b"new"),
            E::File("home/user/notes", b"n"),
        ]),
    ]);
    let top = s.trees.last().unwrap();
    assert_eq!(
        std::fs::read(top.join("usr/lib/libnew.so")).unwrap(),
        b"new"
    );
    assert!(
        std::fs::symlink_metadata(top.join("lib"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn hardlinks_to_lower_files_are_copied_up() {
    check_same(&[base(), tar_of(&[E::Hardlink("etc/passwd2", "etc/passwd")])]);
}

#[test]
fn three_layers_with_an_opaque_middle() {
    check_same(&[
        base(),
        tar_of(&[
            E::Dir("var/lib/"),
            E::File("var/lib/.wh..wh..opq", b""),
            E::File("var/lib/mid", b"m"),
        ]),
        tar_of(&[
            E::File("var/lib/top", b"t"),
            E::File("var/lib/.wh.mid", b""),
            E::File("etc/.wh.passwd", b""),
        ]),
    ]);
}
