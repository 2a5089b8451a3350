//! `vfs`: every snapshot is a complete copy of its parent's tree (reflinked
//! where the filesystem can, so cheap on btrfs and xfs). Works on any
//! filesystem, needs no mounts to read a committed snapshot, and pays for
//! that in copy time and disk space on filesystems without reflinks.

use std::io;
use std::path::{Path, PathBuf};

use strata_archive::copy::copy_tree;

use crate::snapshots::Driver;
use crate::{Kind, Mount};

pub struct Vfs;

impl Driver for Vfs {
    const NAME: &'static str = "vfs";

    fn populate(&self, dir: &Path, parent: Option<&Path>, kind: Kind) -> io::Result<()> {
        let fs = dir.join("fs");
        std::fs::create_dir(&fs)?;
        // A view reads its parent in place; only writable snapshots copy.
        if let (Kind::Active, Some(parent)) = (kind, parent) {
            copy_tree(parent, &fs)?;
        }
        Ok(())
    }

    fn mounts(&self, dir: &Path, kind: Kind, ancestors: &[PathBuf]) -> Vec<Mount> {
        let source = match (kind, ancestors.first()) {
            (Kind::View, Some(parent)) => parent.clone(),
            _ => dir.join("fs"),
        };
        vec![Mount::Bind {
            source,
            readonly: kind == Kind::View,
        }]
    }
}
