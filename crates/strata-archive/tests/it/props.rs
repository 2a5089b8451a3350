//! Properties over generated layers: random paths from a tiny alphabet make
//! duplicates, replacements, whiteouts, symlink tricks and hardlinks common.

use proptest::prelude::*;
use std::fs::File;
use std::os::fd::AsFd;

use strata_archive::{Format, IndexWriter, apply, fsops, rebuild};

use crate::support::capture;
use crate::support::{E, tar_of};
use crate::whiteouts::{merged, stack};

#[derive(Debug, Clone)]
enum Op {
    Dir(String),
    File(String, Vec<u8>),
    Symlink(String, String),
    Hardlink(String, String),
    Whiteout(String),
    Opaque(String),
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4).prop_map(|v| v.join("/"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        path().prop_map(Op::Dir),
        (path(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, d)| Op::File(p, d)),
        (
            path(),
            prop_oneof![path(), path().prop_map(|p| format!("/{p}"))]
        )
            .prop_map(|(p, t)| Op::Symlink(p, t)),
        (path(), path()).prop_map(|(p, t)| Op::Hardlink(p, t)),
        path().prop_map(Op::Whiteout),
        path().prop_map(Op::Opaque),
    ]
}

fn layer(ops: &[Op], whiteouts: bool) -> Vec<u8> {
    let whiteout_name = |p: &str| match p.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.wh.{name}"),
        None => format!(".wh.{p}"),
    };
    // Names first (owned), then entries borrowing them.
    let names: Vec<String> = ops
        .iter()
        .map(|o| match o {
            Op::Dir(p) => format!("{p}/"),
            Op::Whiteout(p) => whiteout_name(p),
            Op::Opaque(p) => format!("{p}/.wh..wh..opq"),
            Op::File(p, _) | Op::Symlink(p, _) | Op::Hardlink(p, _) => p.clone(),
        })
        .collect();
    let entries: Vec<E> = ops
        .iter()
        .zip(&names)
        .filter_map(|(o, name)| match o {
            Op::Dir(_) => Some(E::Dir(name)),
            Op::File(_, d) => Some(E::File(name, d)),
            Op::Symlink(p, t) => Some(E::Symlink(p, t)),
            Op::Hardlink(p, t) => Some(E::Hardlink(p, t)),
            Op::Whiteout(_) | Op::Opaque(_) if whiteouts => Some(E::File(name, b"")),
            Op::Whiteout(_) | Op::Opaque(_) => None,
        })
        .collect();
    tar_of(&entries)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever applies is rebuilt byte for byte from the files and the index.
    #[test]
    fn applied_layers_rebuild_exactly(ops in prop::collection::vec(op(), 1..24)) {
        let tar = layer(&ops, true);
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir(&files).unwrap();
        let index_path = dir.path().join("index");
        let mut index = IndexWriter::new(File::create(&index_path).unwrap(), dir.path()).unwrap();
        if apply(&tar[..], &files, Format::Plain, Some(&mut index)).is_ok() {
            index.finish().unwrap();
            let root = fsops::open_dir(&files).unwrap();
            let mut rebuilt = Vec::new();
            rebuild(&File::open(&index_path).unwrap(), root.as_fd(), &mut rebuilt).unwrap();
            prop_assert!(rebuilt == tar);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Two layers applied the vfs way and the overlay way show the same tree.
    #[test]
    fn overlay_and_vfs_agree(
        base in prop::collection::vec(op(), 1..16),
        top in prop::collection::vec(op(), 1..16),
    ) {
        let layers = [layer(&base, false), layer(&top, true)];
        // Layers that one way refuses, the other must refuse too.
        let plain = applies(&layers, true);
        let over = applies(&layers, false);
        prop_assert_eq!(plain, over);
        if plain {
            let s = stack(&layers);
            let mnt = s.dir.path().join("merged");
            let overlay = merged(&s, &mnt);
            prop_assert_eq!(capture(s.trees.last().unwrap(), false), capture(&overlay.merged, false));
        }
    }
}

fn applies(layers: &[Vec<u8>], plain: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut below: Vec<std::path::PathBuf> = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let d = dir.path().join(i.to_string());
        std::fs::create_dir(&d).unwrap();
        let result = if plain {
            if let Some(prev) = below.last() {
                strata_archive::copy::copy_tree(prev, &d).unwrap();
            }
            apply::<_, Vec<u8>>(&l[..], &d, Format::Plain, None)
        } else {
            let lowers: Vec<_> = below.iter().rev().cloned().collect();
            apply::<_, Vec<u8>>(&l[..], &d, Format::Overlay { lowers: &lowers }, None)
        };
        if result.is_err() {
            return false;
        }
        below.push(d);
    }
    true
}
