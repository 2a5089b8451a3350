//! Fixtures: trees described as lines, and trees listed as lines.
//!
//! An entry is `path f MODE CONTENT`, `path d MODE` or `path l TARGET`.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use strata_context::{Ignore, Tree};

/// The owner build-context fixtures get, so tests see COPY reset it.
pub const CONTEXT_OWNER: u32 = 1234;

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub ctx: PathBuf,
    pub root: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let (ctx, root) = (base.join("ctx"), base.join("rootfs"));
        std::fs::create_dir(&ctx).unwrap();
        std::fs::create_dir(&root).unwrap();
        Fixture {
            _tmp: tmp,
            base,
            ctx,
            root,
        }
    }

    pub fn context(&self, ignore: &str) -> Tree {
        Tree::context(&self.ctx, Ignore::parse(ignore).unwrap()).unwrap()
    }

    pub fn rootfs(&self) -> File {
        File::open(&self.root).unwrap()
    }
}

/// Creates `entries` under `dir`, owned by `owner`.
pub fn build(dir: &Path, entries: &[&str], owner: u32) {
    for line in entries {
        let mut parts = line.splitn(4, ' ');
        let (path, kind) = (parts.next().unwrap(), parts.next().unwrap());
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let mode = match kind {
            "f" => {
                let mode = parts.next().unwrap();
                std::fs::write(&p, parts.next().unwrap_or("")).unwrap();
                Some(mode)
            }
            "d" => {
                std::fs::create_dir_all(&p).unwrap();
                parts.next()
            }
            "l" => {
                symlink(parts.next().unwrap(), &p).unwrap();
                None
            }
            other => panic!("unknown entry kind {other}"),
        };
        // Owner first: chown clears setuid bits.
        lchown(&p, Some(owner), Some(owner)).unwrap();
        if let Some(mode) = mode {
            let mode = u32::from_str_radix(mode, 8).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Every entry under `dir` as `path f MODE UID:GID CONTENT`,
/// `path d MODE UID:GID` or `path l TARGET`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    list_into(dir, dir, &mut out);
    out.sort();
    out
}

fn list_into(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let m = std::fs::symlink_metadata(&p).unwrap();
        let owner = format!("{}:{}", m.uid(), m.gid());
        let mode = m.mode() & 0o7777;
        if m.file_type().is_symlink() {
            out.push(format!(
                "{rel} l {}",
                std::fs::read_link(&p).unwrap().display()
            ));
        } else if m.is_dir() {
            out.push(format!("{rel} d {mode:o} {owner}"));
            list_into(root, &p, out);
        } else {
            let content = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            out.push(format!("{rel} f {mode:o} {owner} {content}"));
        }
    }
}
