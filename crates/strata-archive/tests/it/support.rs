//! Test helpers: build tars with an independent writer (the `tar` crate),
//! capture a directory tree as comparable data, mount overlays.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One tar entry, as a test writes it.
pub enum E<'a> {
    Dir(&'a str),
    /// A directory with mode, uid, gid.
    DirMode(&'a str, u32, u64, u64),
    File(&'a str, &'a [u8]),
    /// A file with mode, uid, gid.
    Owned(&'a str, &'a [u8], u32, u64, u64),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
    /// A file with PAX xattrs.
    Xattr(&'a str, &'a [u8], &'a str, &'a [u8]),
}

pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        match *e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::DirMode(p, mode, uid, gid) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(mode);
                h.set_uid(uid);
                h.set_gid(gid);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, data) => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data).unwrap();
            }
            E::Owned(p, data, mode, uid, gid) => {
                h.set_size(data.len() as u64);
                h.set_mode(mode);
                h.set_uid(uid);
                h.set_gid(gid);
                b.append_data(&mut h, p, data).unwrap();
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Char(p, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(major).unwrap();
                h.set_device_minor(minor).unwrap();
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Xattr(p, data, key, value) => {
                let k = format!("SCHILY.xattr.{key}");
                b.append_pax_extensions([(k.as_str(), value)]).unwrap();
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Raw tar with names the `tar` crate refuses to write (`..`, absolute).
pub fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    let bytes = h.as_mut_bytes();
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend([0u8; 1024]);
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: String,
    pub xattrs: Vec<(String, String)>,
    pub mtime: i64,
}

/// Everything observable about a tree: type, mode, owner, content, link
/// target, device, xattrs (but overlay's own), mtime (dirs: optional).
pub fn capture(root: &Path, dir_mtimes: bool) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, dir_mtimes, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, dir_mtimes: bool, out: &mut BTreeMap<String, Node>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let m = std::fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        let (kind, content) = if ft.is_dir() {
            ('d', String::new())
        } else if ft.is_symlink() {
            (
                'l',
                std::fs::read_link(&path).unwrap().display().to_string(),
            )
        } else if ft.is_file() {
            (
                'f',
                hex::encode(Sha256::digest(std::fs::read(&path).unwrap())),
            )
        } else if ft.is_char_device() {
            ('c', format!("{}:{}", m.rdev() >> 8, m.rdev() & 0xff))
        } else if ft.is_block_device() {
            ('b', format!("{}", m.rdev()))
        } else {
            ('p', String::new())
        };
        let mut xattrs: Vec<(String, String)> = xattr_list(&path)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .collect();
        xattrs.sort();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        out.insert(
            rel,
            Node {
                kind,
                mode: if kind == 'l' { 0 } else { m.mode() & 0o7777 },
                uid: m.uid(),
                gid: m.gid(),
                content,
                xattrs,
                mtime: if kind == 'd' && !dir_mtimes {
                    0
                } else {
                    m.mtime()
                },
            },
        );
        if ft.is_dir() {
            walk(root, &path, dir_mtimes, out);
        }
    }
}

fn xattr_list(path: &Path) -> Vec<(String, String)> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr() as *mut _, buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf.truncate(n as usize);
    buf.split(|&b| b == 0)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let key = std::ffi::CString::new(k).unwrap();
            let mut v = vec![0u8; 4096];
            let n = unsafe {
                libc::lgetxattr(c.as_ptr(), key.as_ptr(), v.as_mut_ptr() as *mut _, v.len())
            };
            v.truncate(n.max(0) as usize);
            (String::from_utf8_lossy(k).into_owned(), hex::encode(v))
        })
        .collect()
}

/// A read-only overlay mount of `lowers` (topmost first), unmounted on drop.
pub struct Overlay {
    pub merged: PathBuf,
}

impl Overlay {
    pub fn mount(lowers: &[&Path], merged: &Path) -> Overlay {
        std::fs::create_dir_all(merged).unwrap();
        let opts = format!(
            "lowerdir={},redirect_dir=off,index=off,metacopy=off",
            lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(merged)
            .status()
            .unwrap();
        assert!(status.success(), "mount overlay {opts}");
        Overlay {
            merged: merged.to_owned(),
        }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.merged)
            .status();
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
