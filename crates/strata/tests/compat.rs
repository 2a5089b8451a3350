//! Compatibility with the real peers: archives `podman save` writes load
//! into Strata, and Strata's archives load into podman, skopeo and umoci,
//! with the same image IDs, layer digests and files.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::archive::{Compression, Image, Tar, busybox_rootfs, read_members, sha256};
use common::tree::Tree;
use common::{Podman, Strata, tool};
use serde_json::Value;

/// The name the layered test image is loaded (and saved) under.
const LAYERED: &str = "localhost/compat/layered:v1";
const LAYERED_TAG: &str = "v1";

/// Three layers exercising what layer formats disagree on: a deleted file
/// and a deleted directory (whiteouts), an opaque directory, setuid/setgid
/// and private modes, non-root owners, relative and absolute symlinks, and
/// a hardlink.
fn layered_image() -> Image {
    let base = Tar::new()
        .dir("etc", 0o755)
        .file("etc/config", b"config v1\n")
        .file_mode("etc/secret", b"hush\n", 0o600, 0, 42)
        .file("etc/gone", b"deleted in layer 2\n")
        .dir("opt", 0o755)
        .file("opt/old", b"hidden by the opaque opt\n")
        .dir("opt/olddir", 0o755)
        .file("opt/olddir/f", b"hidden too\n")
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file_mode("usr/bin/su", b"#!/bin/sh\necho su\n", 0o4755, 0, 0)
        .hardlink_mode("usr/bin/su-again", "usr/bin/su", 0o4755, 0, 0)
        .symlink("usr/bin/sudo", "su")
        .dir("home", 0o755)
        .dir_owned("home/user", 0o700, 1000, 1000)
        .file_mode("home/user/notes", b"mine\n", 0o640, 1000, 1000)
        .dir("var", 0o755)
        .dir("var/cache", 0o755)
        .file("var/cache/big", &[7u8; 10_000])
        .build();
    let middle = Tar::new()
        .whiteout("etc/gone")
        .file("etc/config", b"config v2\n")
        .symlink("etc/absolute", "/etc/config")
        .dir("opt", 0o755)
        .opaque("opt")
        .file("opt/new", b"after the opaque marker\n")
        .file_mode("usr/bin/tool", b"#!/bin/sh\n", 0o2755, 0, 50)
        .build();
    let top = Tar::new()
        .whiteout("var/cache")
        .file_mode("etc/private", b"only for 1000\n", 0o600, 1000, 1000)
        .dir_owned("opt/data", 0o750, 33, 33)
        .file_mode("opt/data/db", b"rows\n", 0o660, 33, 33)
        .build();
    Image {
        compression: Compression::None,
        ..Image::new(LAYERED, vec![base, middle, top])
    }
}

/// Loads the layered image into `s`; checks the layers took effect as
/// meant, so the comparisons below compare something.
fn load_layered(s: &Strata) -> Tree {
    let archive = s.path("layered.tar");
    layered_image().write_oci(&archive);
    let out = s.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, format!("Loaded image: {LAYERED}\n"));
    let tree = s.image_tree(LAYERED);
    for gone in ["etc/gone", "opt/old", "opt/olddir", "var/cache"] {
        assert!(tree.get(gone).is_none(), "{gone} should be deleted");
    }
    assert!(tree.has_file("opt/new") && tree.get("var").is_some());
    let node = |p: &str| tree.get(p).unwrap_or_else(|| panic!("{p} missing"));
    assert_eq!(node("etc/config").content, &sha256(b"config v2\n")[7..]);
    assert_eq!(node("usr/bin/su").mode, 0o4755);
    assert_eq!(
        (node("etc/secret").mode, node("etc/secret").gid),
        (0o600, 42)
    );
    assert_eq!(node("home/user").uid, 1000);
    assert_eq!(node("etc/absolute").content, "/etc/config");
    tree
}

fn save(s: &Strata, image: &str, format: &str, compression: &str) -> PathBuf {
    let out = s.path(&format!("saved-{format}-{compression}"));
    s.ok(&[
        "save",
        "--format",
        format,
        "--compression",
        compression,
        "-o",
        out.to_str().unwrap(),
        image,
    ]);
    out
}

/// An image's names in Strata, as `repository:tag`.
fn strata_names(s: &Strata) -> Vec<String> {
    s.ok(&["images", "--format", "json"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("images JSON");
            format!(
                "{}:{}",
                v["Repository"].as_str().unwrap(),
                v["Tag"].as_str().unwrap()
            )
        })
        .collect()
}

/// Podman's image ID (with `sha256:`, as Strata writes it) and diff IDs.
fn podman_id_and_diffs(p: &Podman, image: &str) -> (String, Vec<String>) {
    let id = p.ok(&["inspect", "--format", "{{.Id}}", image]);
    let layers = p.ok(&["inspect", "--format", "{{json .RootFS.Layers}}", image]);
    (
        format!("sha256:{}", id.trim()),
        serde_json::from_str(&layers).expect("layers JSON"),
    )
}

/// Podman's filesystem of an image.
fn podman_tree(p: &Podman, image: &str) -> Tree {
    let path = p.ok(&["image", "mount", image]);
    let tree = Tree::of(Path::new(path.trim()));
    p.ok(&["image", "unmount", image]);
    tree
}

/// Builds an image in podman with no registry and no RUN: a busybox rootfs
/// imported, a Dockerfile of COPY and ENV on top, then a file deleted in a
/// mounted (never started) container and committed, so the last layer
/// holds a whiteout podman wrote itself. Returns its name.
fn podman_built_image(p: &Podman, work: &Path) -> &'static str {
    let rootfs = work.join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).unwrap();
    p.ok(&[
        "import",
        "-q",
        rootfs.to_str().unwrap(),
        "localhost/compat/base:v1",
    ]);
    let context = work.join("context");
    std::fs::create_dir_all(context.join("sub")).unwrap();
    std::fs::write(context.join("doomed.txt"), "deleted by the commit\n").unwrap();
    std::fs::write(context.join("sub/kept.txt"), "kept\n").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM localhost/compat/base:v1\n\
         COPY doomed.txt /etc/doomed.txt\n\
         ENV COMPAT=yes\n\
         COPY sub /opt/sub\n",
    )
    .unwrap();
    p.ok(&[
        "build",
        "-q",
        "-t",
        "localhost/compat/built:stage",
        context.to_str().unwrap(),
    ]);
    let container = p.ok(&["create", "localhost/compat/built:stage", "sh"]);
    let container = container.trim();
    let mounted = p.ok(&["mount", container]);
    std::fs::remove_file(Path::new(mounted.trim()).join("etc/doomed.txt")).unwrap();
    p.ok(&["unmount", container]);
    let name = "localhost/compat/built:v2";
    p.ok(&["commit", "-q", container, name]);
    p.ok(&["rm", container]);
    name
}

#[test]
fn podman_archives_load_into_strata() {
    let p = Podman::new();
    let scratch = Strata::new();
    let name = podman_built_image(&p, &scratch.work);
    let (podman_id, podman_diffs) = podman_id_and_diffs(&p, name);
    assert_eq!(podman_diffs.len(), 4, "import, two COPYs, the deletion");
    let podman_files = podman_tree(&p, name);
    assert!(podman_files.get("etc/doomed.txt").is_none());
    assert!(podman_files.has_file("opt/sub/kept.txt") && podman_files.has_file("bin/busybox"));
    for format in ["docker-archive", "oci-archive"] {
        let archive = scratch.path(&format!("podman-{format}.tar"));
        p.ok(&[
            "save",
            "-q",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            name,
        ]);
        let s = Strata::new();
        let out = s.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out, format!("Loaded image: {name}\n"), "{format}");
        // Same config bytes (the ID is their digest), same layer tars.
        assert_eq!(
            s.id_and_diffs(name),
            (podman_id.clone(), podman_diffs.clone()),
            "{format}"
        );
        assert_eq!(strata_names(&s), [name], "{format}");
        assert_eq!(s.image_tree(name), podman_files, "{format}");
    }
}

#[test]
fn strata_archives_load_into_podman() {
    let s = Strata::new();
    let files = load_layered(&s);
    let (id, diffs) = s.id_and_diffs(LAYERED);
    // Podman 4.3 reads all three layer compressions in both formats.
    let cases = [
        ("docker-archive", "none"),
        ("docker-archive", "gzip"),
        ("docker-archive", "zstd"),
        ("oci-archive", "none"),
        ("oci-archive", "gzip"),
        ("oci-archive", "zstd"),
    ];
    for (format, compression) in cases {
        let archive = save(&s, LAYERED, format, compression);
        // A new podman store each time: no layer is already there.
        let p = Podman::new();
        let out = p.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
        let case = format!("{format}, {compression}");
        assert_eq!(out, format!("Loaded image: {LAYERED}\n"), "{case}");
        assert_eq!(
            p.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
            format!("{LAYERED}\n"),
            "{case}"
        );
        assert_eq!(
            podman_id_and_diffs(&p, LAYERED),
            (id.clone(), diffs.clone()),
            "{case}"
        );
        assert_eq!(podman_tree(&p, LAYERED), files, "{case}");
    }
}

/// What a Strata archive's OCI layout says (its docker-archive carries one
/// too): the image's manifest digest, its layers and the tag.
struct Layout {
    manifest: String,
    layers: Vec<LayerBlob>,
    ref_name: String,
}

struct LayerBlob {
    digest: String,
    media_type: String,
    /// The compression the blob's bytes show: "none", "gzip" or "zstd".
    content: &'static str,
}

/// The compression a blob's first bytes show.
fn sniff(blob: &[u8]) -> &'static str {
    if blob.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else if blob.get(257..262) == Some(b"ustar") {
        "none"
    } else {
        "unknown"
    }
}

fn read_layout(path: &Path) -> Layout {
    let members = (!path.is_dir()).then(|| read_members(path));
    let member = |name: &str| -> Vec<u8> {
        match &members {
            None => std::fs::read(path.join(name)).unwrap(),
            Some(m) => m
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name} missing from {}", path.display()))
                .1
                .clone(),
        }
    };
    let blob = |digest: &str| member(&format!("blobs/sha256/{}", &digest[7..]));
    let index: Value = serde_json::from_slice(&member("index.json")).unwrap();
    let [desc] = index["manifests"].as_array().unwrap().as_slice() else {
        panic!("one image expected: {index}");
    };
    let manifest_digest = desc["digest"].as_str().unwrap().to_owned();
    let manifest: Value = serde_json::from_slice(&blob(&manifest_digest)).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap().to_owned();
            LayerBlob {
                content: sniff(&blob(&digest)),
                media_type: l["mediaType"].as_str().unwrap().to_owned(),
                digest,
            }
        })
        .collect();
    Layout {
        manifest: manifest_digest,
        layers,
        ref_name: desc["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

#[test]
fn skopeo_reads_strata_archives() {
    let s = Strata::new();
    load_layered(&s);
    let (id, diffs) = s.id_and_diffs(LAYERED);
    let image = s.inspect(LAYERED);
    assert_eq!(image["Architecture"], "amd64");
    assert_eq!(image["Os"], "linux");
    for format in ["docker-archive", "oci-archive", "oci-dir"] {
        for compression in ["none", "gzip", "zstd"] {
            let case = format!("{format}, {compression}");
            let saved = save(&s, LAYERED, format, compression);
            let layout = read_layout(&saved);
            let path = saved.to_str().unwrap();
            let reference = match format {
                "oci-dir" => format!("oci:{path}:{}", layout.ref_name),
                _ => format!("{format}:{path}"),
            };
            let inspect: Value =
                serde_json::from_str(&tool("skopeo", &["inspect", &reference])).unwrap();
            let reported: Vec<String> = serde_json::from_value(inspect["Layers"].clone()).unwrap();
            let blobs: Vec<String> = layout.layers.iter().map(|l| l.digest.clone()).collect();
            if compression == "none" {
                assert_eq!(blobs, diffs, "{case}: uncompressed blobs are the tars");
            } else {
                assert_ne!(blobs, diffs, "{case}: compressed blobs differ");
            }
            // Stricter readers trust the media type: it must say what the
            // bytes are (podman and skopeo sniff their way past a wrong one).
            let media_type = match compression {
                "none" => "application/vnd.oci.image.layer.v1.tar".to_owned(),
                c => format!("application/vnd.oci.image.layer.v1.tar+{c}"),
            };
            for layer in &layout.layers {
                assert_eq!(layer.media_type, media_type, "{case}");
                assert_eq!(layer.content, compression, "{case}: {}", layer.digest);
            }
            if format == "docker-archive" {
                // skopeo reads a docker-archive as Docker does: through
                // manifest.json, naming each layer by its diff ID (it
                // decompresses the layer blob when copying).
                assert_eq!(reported, diffs, "{case}");
            } else {
                assert_eq!(reported, blobs, "{case}");
                assert_eq!(inspect["Digest"], layout.manifest.as_str(), "{case}");
            }
            assert_eq!(inspect["Architecture"], image["Architecture"], "{case}");
            assert_eq!(inspect["Os"], image["Os"], "{case}");
            // The config skopeo finds is byte for byte the image's.
            let config = tool("skopeo", &["inspect", "--config", "--raw", &reference]);
            assert_eq!(sha256(config.as_bytes()), id, "{case}");
        }
    }
}

#[test]
fn umoci_unpacks_strata_oci_dirs() {
    let s = Strata::new();
    let files = load_layered(&s);
    // umoci 0.4.7 refuses zstd layers ("blob is not correct mediatype"),
    // so only what it reads is tested.
    for compression in ["none", "gzip"] {
        let dir = save(&s, LAYERED, "oci-dir", compression);
        let layout = read_layout(&dir);
        assert_eq!(layout.ref_name, LAYERED_TAG, "{compression}");
        let bundle = s.path(&format!("bundle-{compression}"));
        tool(
            "umoci",
            &[
                "unpack",
                "--image",
                &format!("{}:{LAYERED_TAG}", dir.display()),
                bundle.to_str().unwrap(),
            ],
        );
        let rootfs = bundle.join("rootfs");
        assert_eq!(Tree::of(&rootfs), files, "{compression}");
        let inode = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap().ino();
        assert_eq!(
            inode("usr/bin/su"),
            inode("usr/bin/su-again"),
            "{compression}: hardlink"
        );
    }
}
