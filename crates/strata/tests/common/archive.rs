//! Test archives made byte by byte: layer tars (hostile ones too, which the
//! `tar` crate's checked setters would refuse), image archives in the OCI
//! and docker-archive layouts, and rewriting an archive to tamper with it.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::json;
use sha2::{Digest as _, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer tar, entry by entry. Names are written raw, so `../x` and `/x`
/// are possible.
pub struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn entry(&mut self, name: &str, kind: tar::EntryType, mode: u32, data: &[u8]) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        let raw = &mut h.as_old_mut().name;
        assert!(name.len() < raw.len(), "test names stay short: {name}");
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Tar {
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Tar {
        let h = self.entry(name, tar::EntryType::Directory, mode, b"");
        self.push(h, b"")
    }

    /// A directory with an owner.
    pub fn dir_owned(&mut self, name: &str, mode: u32, uid: u64, gid: u64) -> &mut Tar {
        let mut h = self.entry(name, tar::EntryType::Directory, mode, b"");
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, b"")
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.file_mode(name, data, 0o644, 0, 0)
    }

    pub fn file_mode(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Tar {
        let mut h = self.entry(name, tar::EntryType::Regular, mode, data);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        let mut h = self.entry(name, tar::EntryType::Symlink, 0o777, b"");
        h.set_link_name_literal(target).unwrap();
        self.push(h, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        let mut h = self.entry(name, tar::EntryType::Link, 0o644, b"");
        h.set_link_name_literal(target).unwrap();
        self.push(h, b"")
    }

    /// A hardlink whose header carries the target's mode and owner, as real
    /// tars do (both names are one inode).
    pub fn hardlink_mode(
        &mut self,
        name: &str,
        target: &str,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Tar {
        let mut h = self.entry(name, tar::EntryType::Link, mode, b"");
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_link_name_literal(target).unwrap();
        self.push(h, b"")
    }

    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) -> &mut Tar {
        let mut h = self.entry(name, tar::EntryType::Char, 0o666, b"");
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"")
    }

    /// Deletes `dir/name` from the layers below.
    pub fn whiteout(&mut self, path: &str) -> &mut Tar {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, b"")
    }

    /// Hides everything below `dir` in the layers below.
    pub fn opaque(&mut self, dir: &str) -> &mut Tar {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    pub fn build(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

/// A rootfs tar from the host's busybox-static: enough to be a base image.
pub fn busybox_rootfs() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is missing; install busybox-static (scripts/setup)");
    let mut t = Tar::new();
    t.dir("bin", 0o755)
        .file_mode("bin/busybox", &busybox, 0o755, 0, 0);
    for applet in ["sh", "ls", "cat", "echo", "mkdir", "rm"] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
        .dir("tmp", 0o1777)
        .dir("root", 0o700);
    t.build()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

/// An image to write as an archive: uncompressed layer tars, bottom first.
pub struct Image {
    pub name: String,
    pub layers: Vec<Vec<u8>>,
    pub compression: Compression,
}

impl Image {
    pub fn new(name: &str, layers: Vec<Vec<u8>>) -> Image {
        Image {
            name: name.to_owned(),
            layers,
            compression: Compression::Gzip,
        }
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256(l)).collect()
    }

    pub fn config(&self) -> Vec<u8> {
        let history: Vec<_> = (0..self.layers.len())
            .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids()},
            "history": history,
        }))
        .unwrap()
    }

    /// The OCI image layout as (path, bytes) members.
    pub fn oci_members(&self) -> Vec<(String, Vec<u8>)> {
        let media = match self.compression {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let mut members = vec![(
            "oci-layout".to_owned(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )];
        let blob = |bytes: Vec<u8>, members: &mut Vec<(String, Vec<u8>)>| {
            let d = sha256(&bytes);
            let desc = (d.clone(), bytes.len());
            members.push((format!("blobs/sha256/{}", &d[7..]), bytes));
            desc
        };
        let config = blob(self.config(), &mut members);
        let layers: Vec<_> = self
            .layers
            .iter()
            .map(|l| {
                let (digest, size) = blob(compress(l, self.compression), &mut members);
                json!({"mediaType": media, "digest": digest, "size": size})
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config.0, "size": config.1},
            "layers": layers,
        }))
        .unwrap();
        let (mdigest, msize) = blob(manifest, &mut members);
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest, "size": msize,
                "annotations": {"io.containerd.image.name": self.name,
                                "org.opencontainers.image.ref.name": "latest"},
            }],
        });
        members.push(("index.json".to_owned(), serde_json::to_vec(&index).unwrap()));
        members
    }

    /// The classic docker-archive (`docker save` before Docker 25).
    pub fn docker_members(&self) -> Vec<(String, Vec<u8>)> {
        let config = self.config();
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        let mut members = vec![(config_name.clone(), config)];
        let mut layer_names = Vec::new();
        for l in &self.layers {
            let name = format!("{}/layer.tar", &sha256(l)[7..]);
            members.push((name.clone(), compress(l, self.compression)));
            layer_names.push(name);
        }
        let manifest =
            json!([{"Config": config_name, "RepoTags": [self.name], "Layers": layer_names}]);
        members.push((
            "manifest.json".to_owned(),
            serde_json::to_vec(&manifest).unwrap(),
        ));
        members
    }

    pub fn write_oci(&self, path: &Path) {
        write_members(path, &self.oci_members());
    }

    pub fn write_docker(&self, path: &Path) {
        write_members(path, &self.docker_members());
    }
}

/// Writes members as a tar (directories implied by the paths).
pub fn write_members(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

/// The members of an archive tar (regular files only).
pub fn read_members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}
