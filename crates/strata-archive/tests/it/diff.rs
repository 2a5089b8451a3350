//! Diffs round-trip: the layer made from a snapshot's changes, applied on
//! the layer below, gives back the snapshot.

use std::path::Path;

use strata_archive::copy::copy_tree;
use strata_archive::diff::{Source, write_diff};
use strata_archive::{Format, apply};

use crate::support::{E, capture, tar_of};
use crate::whiteouts::check_same;

/// Applies a diff on a copy of `base`, comparing with `expected`.
fn check_applies_to(diff: &[u8], base: &Path, expected: &Path, scratch: &Path) {
    let out = scratch.join("roundtrip");
    std::fs::create_dir(&out).unwrap();
    copy_tree(base, &out).unwrap();
    apply::<_, Vec<u8>>(diff, &out, Format::Plain, None).unwrap();
    assert_eq!(capture(&out, false), capture(expected, false));
    std::fs::remove_dir_all(&out).unwrap();
}

fn changes() -> Vec<Vec<u8>> {
    vec![
        tar_of(&[
            E::Dir("etc/"),
            E::File("etc/passwd", b"root"),
            E::File("etc/group", b"root"),
            E::Dir("var/lib/"),
            E::File("var/lib/a", b"a"),
            E::File("var/lib/b", b"b"),
            E::Symlink("var/link", "lib/a"),
            E::File("gone/deep/file", b"x"),
        ]),
        tar_of(&[
            E::File("etc/.wh.group", b""),
            E::File("etc/passwd", b"root and more"),
            E::Dir("var/lib/"),
            E::File("var/lib/.wh..wh..opq", b""),
            E::File("var/lib/c", b"c"),
            E::File(".wh.gone", b""),
            E::Hardlink("etc/passwd-", "etc/passwd"),
            E::Char("dev/null", 1, 3),
        ]),
    ]
}

#[test]
fn overlay_upper_diff_round_trips() {
    let s = check_same(&changes());
    let (tar, stats) = write_diff(&Source::OverlayUpper(&s.uppers[1]), Vec::new()).unwrap();
    assert_eq!(stats.tar_size, tar.len() as u64);
    let names = tar_names(&tar);
    assert!(names.contains(&"etc/.wh.group".to_owned()), "{names:?}");
    assert!(
        names.contains(&"var/lib/.wh..wh..opq".to_owned()),
        "{names:?}"
    );
    check_applies_to(&tar, &s.trees[0], &s.trees[1], s.dir.path());
}

#[test]
fn naive_diff_round_trips() {
    let s = check_same(&changes());
    let (tar, _) = write_diff(
        &Source::Compare {
            lower: Some(&s.trees[0]),
            upper: &s.trees[1],
        },
        Vec::new(),
    )
    .unwrap();
    let names = tar_names(&tar);
    assert!(names.contains(&"etc/.wh.group".to_owned()), "{names:?}");
    assert!(names.contains(&"var/lib/.wh.a".to_owned()), "{names:?}");
    check_applies_to(&tar, &s.trees[0], &s.trees[1], s.dir.path());
}

#[test]
fn a_full_tree_diffs_to_itself() {
    let s = check_same(&changes()[..1]);
    let (tar, _) = write_diff(
        &Source::Compare {
            lower: None,
            upper: &s.trees[0],
        },
        Vec::new(),
    )
    .unwrap();
    let empty = s.dir.path().join("empty-base");
    std::fs::create_dir(&empty).unwrap();
    check_applies_to(&tar, &empty, &s.trees[0], s.dir.path());
}

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut r = strata_archive::tarstream::TarReader::new(tar);
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        out.push(
            String::from_utf8(e.path)
                .unwrap()
                .trim_end_matches('/')
                .to_owned(),
        );
    }
    out
}
