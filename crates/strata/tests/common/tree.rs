//! A filesystem tree as comparable data: every entry's type, mode, owner
//! and content (a digest) or link target. Used to show two unpackers (or two
//! drivers) produced the same filesystem, file for file.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// sha256 of a file, target of a symlink, "major,minor" of a device.
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree(pub BTreeMap<String, Node>);

impl Tree {
    pub fn of(root: &Path) -> Tree {
        let mut map = BTreeMap::new();
        walk(root, root, &mut map);
        Tree(map)
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.0.get(path)
    }

    pub fn paths(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Whether `path` is a regular file.
    pub fn has_file(&self, path: &str) -> bool {
        self.0.get(path).is_some_and(|n| n.kind == "file")
    }
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<String, Node>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let md = std::fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let (kind, content) = if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&path).unwrap();
            ("symlink", t.to_string_lossy().into_owned())
        } else if ft.is_file() {
            let data = std::fs::read(&path).unwrap();
            ("file", hex::encode(Sha256::digest(&data)))
        } else if ft.is_char_device() {
            let rdev = md.rdev();
            ("char", format!("{},{}", libc_major(rdev), libc_minor(rdev)))
        } else if ft.is_block_device() {
            let rdev = md.rdev();
            (
                "block",
                format!("{},{}", libc_major(rdev), libc_minor(rdev)),
            )
        } else if ft.is_fifo() {
            ("fifo", String::new())
        } else {
            ("other", String::new())
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        map.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                content,
            },
        );
        if ft.is_dir() {
            walk(root, &path, map);
        }
    }
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0xff)
}
