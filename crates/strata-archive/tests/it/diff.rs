//! Diffs round-trip: the layer made from a snapshot's changes, applied on
//! the layer below, gives back the snapshot.

use std::path::Path;

use strata_archive::copy::copy_tree;
use strata_archive::diff::{Source, write_diff, write_diff_leaving_out};
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

/// What an overlay upper holding an empty `proc` and `files` (path,
/// content) diffs to when the runtime's mount points are left out.
fn check_leaving_out(files: &[(&str, &[u8])], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("proc")).unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let points = ["etc/hostname", "etc/hosts", "etc/resolv.conf", "proc"];
    let source = Source::OverlayUpper(dir.path());
    let (tar, stats) = write_diff_leaving_out(&source, &points, Vec::new()).unwrap();
    assert_eq!(tar_names(&tar), expected, "{files:?}");
    assert_eq!(stats.entries, expected.len() as u64);
}

#[test]
fn mount_points_the_runtime_made_are_not_changes() {
    let made: [(&str, &[u8]); 3] = [
        ("etc/hostname", b""),
        ("etc/hosts", b""),
        ("etc/resolv.conf", b""),
    ];
    // Only the runtime's empty files: nothing, not even their folder.
    check_leaving_out(&made, &[]);
    // Anything else in the folder brings the folder back.
    let mut more = made.to_vec();
    more.push(("etc/motd", b"hi"));
    check_leaving_out(&more, &["etc", "etc/motd"]);
    // A mount point with content is a change like any other.
    check_leaving_out(&[("etc/hosts", b"10.0.0.1 db\n")], &["etc", "etc/hosts"]);
    // An empty folder made as a mount point goes; a full one stays.
    check_leaving_out(&[("proc/.keep", b"")], &["proc", "proc/.keep"]);
    // Other empty files, and folders holding no mount point, stay.
    check_leaving_out(
        &[("etc/hosts.allow", b""), ("var/hosts", b"")],
        &["etc", "etc/hosts.allow", "var", "var/hosts"],
    );
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
