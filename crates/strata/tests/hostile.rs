//! Hostile input: archives and layers built to climb out of the store, lie
//! about their digests, or simply be broken. Each must get one clear error
//! (exit 1, `Error: ...` naming the file and the reason), leave the store as
//! it was, and never write outside it. A few tricks are harmless once paths
//! are resolved inside the layer (an absolute symlink is root-relative, as in
//! Docker's chrooted unpack): those load, and what they wrote must be inside
//! the image.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use common::archive::{
    Compression, Image, Tar, busybox_rootfs, compress, read_members, sha256, write_members,
};
use common::{StoreState, Strata};

/// Files the hostile layers try to plant are called this.
const MARKER: &str = "pwned";

type Members = Vec<(String, Vec<u8>)>;

/// What a case feeds Strata.
enum Input {
    /// A layer tar: loaded as the top layer of an OCI image (over a layer of
    /// its own, so the overlay path is taken), as the only layer of a
    /// docker-archive (the plain path), and imported.
    Layer(Vec<u8>),
    /// A layer blob as is (compressed or not a tar at all): the same three ways.
    Blob(Vec<u8>),
    /// An image's layers, bottom first: loaded as OCI and as docker-archive.
    Layers(Vec<Vec<u8>>),
    /// A whole OCI archive, for `load`.
    Oci(Members),
    /// A whole docker-archive, for `load`.
    Docker(Members),
    /// An archive file's bytes, for `load`.
    Archive(Vec<u8>),
    /// A command line; `{rootfs}` stands for a valid rootfs tar.
    Args(Vec<&'static str>),
}

/// What must happen.
#[derive(Clone, Copy)]
enum Expect<'a> {
    /// Refused with an error containing this.
    Refused(&'a str),
    /// Accepted; the image has a file at this path, and so does nothing
    /// outside the store. `{outside}` stands for the outside folder's name.
    Inside(&'a str),
}

/// Where hostile layers aim, and what must stay as it was.
struct Ctx {
    /// An empty folder outside the store (`/tmp/outside-…`).
    outside: tempfile::TempDir,
    passwd: (Vec<u8>, u64),
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            outside: tempfile::Builder::new()
                .prefix("outside-")
                .tempdir_in("/tmp")
                .unwrap(),
            passwd: passwd(),
        }
    }

    /// `/tmp/outside-…`
    fn outside(&self) -> String {
        self.outside.path().to_str().unwrap().to_owned()
    }

    /// `outside-…`
    fn outside_name(&self) -> String {
        self.outside
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
}

/// The host's /etc/passwd: content and link count.
fn passwd() -> (Vec<u8>, u64) {
    let p = Path::new("/etc/passwd");
    (
        std::fs::read(p).unwrap(),
        std::fs::metadata(p).unwrap().nlink(),
    )
}

/// A store holding one valid image, `base`.
fn base_store(driver: Option<&str>) -> Strata {
    let s = Strata::with_driver(driver);
    let tar = s.path("rootfs.tar");
    std::fs::write(&tar, busybox_rootfs()).unwrap();
    s.ok(&["image", "import", tar.to_str().unwrap(), "base"]);
    s
}

/// A layer of the hostile image's own below the hostile one.
fn lower_layer() -> Vec<u8> {
    Tar::new()
        .dir("lower", 0o755)
        .file("lower/file", b"from the layer below\n")
        .build()
}

/// Every path below `dir` whose name starts with the marker.
fn markers_below(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with(MARKER) {
            found.push(path.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            markers_below(&path, found);
        }
    }
}

/// Nothing was written outside the store: the outside folder is empty, the
/// host's passwd untouched, no marker next to or above the store, and (when
/// `inside_ok`) markers in the store only inside snapshot trees.
fn assert_nothing_outside(s: &Strata, ctx: &Ctx, case: &str, inside_ok: bool) {
    let outside: Vec<_> = std::fs::read_dir(ctx.outside.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(outside.is_empty(), "{case}: written outside: {outside:?}");
    assert_eq!(passwd(), ctx.passwd, "{case}: /etc/passwd changed");
    for dir in ["/", "/tmp", "/var/tmp", "/etc"] {
        let hits: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(MARKER))
            .map(|e| e.path())
            .collect();
        assert!(hits.is_empty(), "{case}: written outside: {hits:?}");
    }
    // The test's own folder: the store and the scratch folder beside it.
    let mut found = Vec::new();
    markers_below(s.root.parent().unwrap(), &mut found);
    let allowed = |p: &Path| {
        inside_ok
            && ["overlay", "vfs"].iter().any(|d| {
                p.strip_prefix(s.root.join(d).join("snapshots"))
                    .is_ok_and(|rel| {
                        rel.components()
                            .nth(1)
                            .is_some_and(|c| c.as_os_str() == "fs")
                    })
            })
    };
    let stray: Vec<_> = found.iter().filter(|p| !allowed(p)).collect();
    assert!(
        stray.is_empty(),
        "{case}: written outside a layer: {stray:?}"
    );
}

/// One way of feeding a case to Strata.
struct Route {
    /// The archive or tar file, named in the error.
    file: Option<PathBuf>,
    args: Vec<String>,
    /// The image an accepted route makes.
    image: &'static str,
}

fn load_route(s: &Strata, name: &str, members: &Members) -> Route {
    let file = s.path(name);
    write_members(&file, members);
    Route {
        args: vec!["load".into(), "-i".into(), file.to_str().unwrap().into()],
        file: Some(file),
        image: "hostile",
    }
}

fn import_route(s: &Strata, blob: &[u8]) -> Route {
    let file = s.path("hostile-layer.tar");
    std::fs::write(&file, blob).unwrap();
    Route {
        args: vec![
            "image".into(),
            "import".into(),
            file.to_str().unwrap().into(),
            "hostile".into(),
        ],
        file: Some(file),
        image: "hostile",
    }
}

fn image(layers: Vec<Vec<u8>>, compression: Compression) -> Image {
    Image {
        compression,
        ..Image::new("hostile", layers)
    }
}

/// One layer through every route: over a lower layer in an OCI archive, alone
/// in a docker-archive, and as an `import`ed rootfs.
fn layer_routes(s: &Strata, layer: Vec<u8>, oci: Compression) -> Vec<(&'static str, Route)> {
    vec![
        (
            "oci",
            load_route(
                s,
                "hostile-oci.tar",
                &image(vec![lower_layer(), layer.clone()], oci).oci_members(),
            ),
        ),
        (
            "docker-archive",
            load_route(
                s,
                "hostile-docker.tar",
                &image(vec![layer.clone()], Compression::None).docker_members(),
            ),
        ),
        ("import", import_route(s, &layer)),
    ]
}

fn routes(s: &Strata, input: Input) -> Vec<(&'static str, Route)> {
    match input {
        // A blob is given as is (it may not even be a tar); a layer is
        // gzipped in the OCI route, so the decompressor sees it too.
        Input::Layer(tar) => layer_routes(s, tar, Compression::Gzip),
        Input::Blob(blob) => layer_routes(s, blob, Compression::None),
        Input::Layers(layers) => vec![
            (
                "oci",
                load_route(
                    s,
                    "hostile-oci.tar",
                    &image(layers.clone(), Compression::Zstd).oci_members(),
                ),
            ),
            (
                "docker-archive",
                load_route(
                    s,
                    "hostile-docker.tar",
                    &image(layers, Compression::None).docker_members(),
                ),
            ),
        ],
        Input::Oci(m) => vec![("oci", load_route(s, "hostile-oci.tar", &m))],
        Input::Docker(m) => vec![("docker-archive", load_route(s, "hostile-docker.tar", &m))],
        Input::Archive(bytes) => {
            let file = s.path("hostile-archive.tar");
            std::fs::write(&file, bytes).unwrap();
            vec![(
                "load",
                Route {
                    args: vec!["load".into(), "-i".into(), file.to_str().unwrap().into()],
                    file: Some(file),
                    image: "hostile",
                },
            )]
        }
        Input::Args(args) => {
            let rootfs = s.path("rootfs.tar");
            vec![(
                "command",
                Route {
                    args: args
                        .iter()
                        .map(|a| a.replace("{rootfs}", rootfs.to_str().unwrap()))
                        .collect(),
                    file: None,
                    image: "hostile",
                },
            )]
        }
    }
}

/// Feeds one hostile input to Strata every way it applies, on a store that
/// already holds an image, and checks the outcome.
fn check(case: &str, build: impl Fn(&Ctx) -> Input, expect: Expect<'_>) {
    check_on(None, case, build, expect);
}

/// [`check`] on a store with the given storage driver.
fn check_on(driver: Option<&str>, case: &str, build: impl Fn(&Ctx) -> Input, expect: Expect<'_>) {
    let ctx = Ctx::new();
    let s = base_store(driver);
    let before: StoreState = s.state();
    for (how, route) in routes(&s, build(&ctx)) {
        let what = format!("{case} ({how})");
        let args: Vec<&str> = route.args.iter().map(String::as_str).collect();
        match expect {
            Expect::Refused(reason) => {
                let stderr = s.fails(&args);
                eprint!("{what}: {stderr}");
                assert!(
                    stderr.contains(reason),
                    "{what}: want '{reason}' in:\n{stderr}"
                );
                if let Some(file) = &route.file {
                    let file = file.to_str().unwrap();
                    assert!(
                        stderr.contains(file),
                        "{what}: the error does not name {file}:\n{stderr}"
                    );
                }
                assert_eq!(
                    stderr.lines().count(),
                    1,
                    "{what}: one clear line:\n{stderr}"
                );
                assert_eq!(s.state(), before, "{what}: the store changed");
                assert_nothing_outside(&s, &ctx, &what, false);
            }
            Expect::Inside(path) => {
                s.ok(&args);
                let path = path.replace("{outside}", &ctx.outside_name());
                let tree = s.image_tree(route.image);
                assert!(
                    tree.has_file(&path),
                    "{what}: no {path} in {:?}",
                    tree.paths()
                );
                assert_nothing_outside(&s, &ctx, &what, true);
                s.ok(&["rmi", route.image]);
                assert_eq!(s.state(), before, "{what}: rmi left something behind");
                assert_nothing_outside(&s, &ctx, &what, false);
            }
        }
    }
}

// ---- building blocks for tampered archives ----

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", &digest[7..])
}

fn member<'a>(members: &'a Members, name: &str) -> &'a [u8] {
    &members.iter().find(|(n, _)| n == name).unwrap().1
}

fn set_member(members: &mut Members, name: &str, bytes: Vec<u8>) {
    match members.iter_mut().find(|(n, _)| n == name) {
        Some(m) => m.1 = bytes,
        None => members.push((name.to_owned(), bytes)),
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Points every descriptor naming `old` at `new`; whether any did.
fn repoint(v: &mut Value, old: &str, new: &str, size: usize) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = false;
            if m.get("digest").and_then(Value::as_str) == Some(old) {
                m.insert("digest".into(), json!(new));
                m.insert("size".into(), json!(size));
                changed = true;
            }
            for child in m.values_mut() {
                changed |= repoint(child, old, new, size);
            }
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |c, child| repoint(child, old, new, size) | c),
        _ => false,
    }
}

/// Replaces an OCI blob with other bytes and re-points everything above it
/// (manifest, index) so that every digest on the way still matches: only
/// what the new bytes say can be wrong.
fn replace_blob(members: &mut Members, old: &str, bytes: Vec<u8>) {
    let new = sha256(&bytes);
    let size = bytes.len();
    members.retain(|(n, _)| *n != blob_name(old));
    set_member(members, &blob_name(&new), bytes);
    let names: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
    for name in names {
        let Ok(mut v) = serde_json::from_slice::<Value>(member(members, &name)) else {
            continue;
        };
        if name == blob_name(&new) || !repoint(&mut v, old, &new, size) {
            continue;
        }
        let rewritten = serde_json::to_vec(&v).unwrap();
        match name.strip_prefix("blobs/sha256/") {
            Some(hex) => replace_blob(members, &format!("sha256:{hex}"), rewritten),
            None => set_member(members, &name, rewritten),
        }
    }
}

/// The OCI archive's only manifest and its digest.
fn oci_manifest(members: &Members) -> (String, Value) {
    let index = json_of(member(members, "index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest = json_of(member(members, &blob_name(&digest)));
    (digest, manifest)
}

/// Edits the OCI archive's config, keeping every digest above it right.
fn oci_edit_config(members: &mut Members, edit: impl FnOnce(&mut Value)) {
    let (_, manifest) = oci_manifest(members);
    let digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let mut config = json_of(member(members, &blob_name(&digest)));
    edit(&mut config);
    replace_blob(members, &digest, serde_json::to_vec(&config).unwrap());
}

/// Edits a docker-archive's manifest.json.
fn docker_edit_manifest(members: &mut Members, edit: impl FnOnce(&mut Value)) {
    let mut manifest = json_of(member(members, "manifest.json"));
    edit(&mut manifest);
    set_member(
        members,
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    );
}

/// Edits a docker-archive's config, renaming it after its new digest.
fn docker_edit_config(members: &mut Members, edit: impl FnOnce(&mut Value)) {
    let manifest = json_of(member(members, "manifest.json"));
    let name = manifest[0]["Config"].as_str().unwrap().to_owned();
    let mut config = json_of(member(members, &name));
    edit(&mut config);
    let bytes = serde_json::to_vec(&config).unwrap();
    let new_name = format!("{}.json", &sha256(&bytes)[7..]);
    members.retain(|(n, _)| *n != name);
    members.push((new_name.clone(), bytes));
    docker_edit_manifest(members, |m| m[0]["Config"] = json!(new_name));
}

/// Deterministic junk.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn xz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    common::require("xz");
    let mut child = Command::new("xz")
        .args(["-c", "-z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A valid layer with a little content.
fn plain_layer() -> Vec<u8> {
    Tar::new()
        .dir("app", 0o755)
        .file("app/data", &noise(64 * 1024, 7))
        .file("app/hello", b"hello\n")
        .build()
}

/// A valid two-layer image, tampered with afterwards.
fn valid_image() -> Image {
    Image::new("hostile", vec![lower_layer(), plain_layer()])
}

// ---- the cases ----

#[test]
fn paths_that_climb_out() {
    check(
        "dotdot",
        |_| Input::Layer(Tar::new().file("../pwned", b"x").build()),
        Expect::Refused("tar entry '../pwned' climbs out of the layer with '..'"),
    );
    check(
        "dotdot-inside-a-dir",
        |_| {
            Input::Layer(
                Tar::new()
                    .dir("a", 0o755)
                    .file("a/../../pwned", b"x")
                    .build(),
            )
        },
        Expect::Refused("tar entry 'a/../../pwned' climbs out of the layer with '..'"),
    );
    check(
        "dotdot-to-the-host-root",
        |ctx| {
            let name = format!("{}tmp/{}/pwned", "../".repeat(12), ctx.outside_name());
            Input::Layer(Tar::new().file(&name, b"x").build())
        },
        Expect::Refused("climbs out of the layer with '..'"),
    );
    check(
        "dotdot-directory",
        |_| Input::Layer(Tar::new().dir("../pwned", 0o755).build()),
        Expect::Refused("tar entry '../pwned' climbs out of the layer"),
    );
}

#[test]
fn absolute_paths() {
    check(
        "absolute",
        |_| Input::Layer(Tar::new().file("/pwned", b"x").build()),
        Expect::Refused("tar entry '/pwned' has an absolute path"),
    );
    check(
        "absolute-into-the-outside",
        |ctx| {
            Input::Layer(
                Tar::new()
                    .file(&format!("{}/pwned", ctx.outside()), b"x")
                    .build(),
            )
        },
        Expect::Refused("has an absolute path; layer entries must be relative"),
    );
}

#[test]
fn symlinks_pointing_out() {
    // Absolute targets are root-relative: what is written through one lands
    // inside the layer, as with Docker's chrooted unpack.
    check(
        "absolute-symlink-then-write-through-it",
        |ctx| {
            Input::Layer(
                Tar::new()
                    .symlink("evil", &ctx.outside())
                    .file("evil/pwned", b"x")
                    .build(),
            )
        },
        Expect::Inside("tmp/{outside}/pwned"),
    );
    check(
        "absolute-symlink-to-root-then-dotdot",
        |_| {
            Input::Layer(
                Tar::new()
                    .symlink("evil", "/")
                    .file("evil/tmp/pwned", b"x")
                    .build(),
            )
        },
        Expect::Inside("tmp/pwned"),
    );
    // ... also when the symlink comes from a layer below.
    check(
        "absolute-symlink-in-the-layer-below",
        |ctx| {
            Input::Layers(vec![
                Tar::new().symlink("evil", &ctx.outside()).build(),
                Tar::new().file("evil/pwned", b"x").build(),
            ])
        },
        Expect::Inside("tmp/{outside}/pwned"),
    );
    check(
        "absolute-symlink-to-a-file-then-overwrite",
        |ctx| {
            Input::Layers(vec![
                Tar::new()
                    .symlink("pwned-link", &format!("{}/pwned", ctx.outside()))
                    .build(),
                Tar::new().file("pwned-link", b"x").build(),
            ])
        },
        Expect::Inside("pwned-link"),
    );
    // Relative targets that climb out are refused, as Docker does.
    check(
        "relative-symlink-out",
        |_| {
            Input::Layer(
                Tar::new()
                    .symlink("evil", "../../..")
                    .file("evil/pwned", b"x")
                    .build(),
            )
        },
        Expect::Refused("symlink 'evil' -> '../../..' points outside the layer"),
    );
    check(
        "relative-symlink-out-from-a-subdir",
        |ctx| {
            let target = format!("../../../../../../../../../tmp/{}", ctx.outside_name());
            Input::Layer(
                Tar::new()
                    .dir("a", 0o755)
                    .symlink("a/evil", &target)
                    .file("a/evil/pwned", b"x")
                    .build(),
            )
        },
        Expect::Refused("points outside the layer"),
    );
}

#[test]
fn hardlinks_pointing_out() {
    check(
        "hardlink-to-etc-passwd",
        |_| Input::Layer(Tar::new().hardlink("pwned", "/etc/passwd").build()),
        Expect::Refused(
            "hardlink 'pwned' -> '/etc/passwd': the target does not exist in the layer",
        ),
    );
    check(
        "hardlink-climbing-to-etc-passwd",
        |_| Input::Layer(Tar::new().hardlink("pwned", "../../etc/passwd").build()),
        Expect::Refused(
            "hardlink 'pwned' -> '../../etc/passwd': the target climbs out of the layer with '..'",
        ),
    );
    check(
        "hardlink-through-an-absolute-symlink",
        |_| {
            Input::Layer(
                Tar::new()
                    .symlink("evil", "/etc")
                    .hardlink("pwned", "evil/passwd")
                    .build(),
            )
        },
        Expect::Refused(
            "hardlink 'pwned' -> 'evil/passwd': the target does not exist in the layer",
        ),
    );
    // With an /etc/passwd in the image, the link is to the image's own file.
    check(
        "hardlink-to-the-images-passwd",
        |_| {
            Input::Layers(vec![
                Tar::new()
                    .dir("etc", 0o755)
                    .file("etc/passwd", b"image:x:0:0::/:/bin/sh\n")
                    .build(),
                Tar::new().hardlink("pwned", "/etc/passwd").build(),
            ])
        },
        Expect::Inside("pwned"),
    );
}

#[test]
fn device_nodes() {
    check(
        "char-device-outside-dev",
        |_| Input::Layer(Tar::new().char_device("etc/evil", 1, 3).build()),
        Expect::Refused("device node 'etc/evil' (char 1:3) is outside /dev"),
    );
    check(
        "char-device-climbing-out-of-dev",
        |_| Input::Layer(Tar::new().char_device("dev/../evil", 1, 3).build()),
        Expect::Refused("device node 'evil' (char 1:3) is outside /dev"),
    );
    check(
        "overlay-whiteout-device",
        |_| Input::Layer(Tar::new().char_device("dev/wh", 0, 0).build()),
        Expect::Refused("is an overlay whiteout; OCI layers must use .wh. files"),
    );
}

#[test]
fn broken_layer_blobs() {
    check(
        "not-a-tar",
        |_| Input::Blob(noise(20_000, 42)),
        Expect::Refused("bad tar header at byte 0"),
    );
    check(
        "truncated-tar",
        |_| {
            let tar = plain_layer();
            Input::Blob(tar[..tar.len() / 2].to_vec())
        },
        Expect::Refused("the file is truncated"),
    );
    check(
        "truncated-gzip",
        |_| {
            let gz = compress(&plain_layer(), Compression::Gzip);
            Input::Blob(gz[..gz.len() / 2].to_vec())
        },
        Expect::Refused("the gzip stream is corrupt or truncated"),
    );
    check(
        "xz",
        |_| Input::Blob(xz(&plain_layer())),
        Expect::Refused("xz compression is not supported for layers; use gzip, zstd or none"),
    );
}

#[test]
fn digests_that_lie() {
    check(
        "oci-layer-blob-does-not-match-its-digest",
        |_| {
            let mut m = valid_image().oci_members();
            let (_, manifest) = oci_manifest(&m);
            let top = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
            let other = compress(
                &Tar::new().file("app/other", b"y").build(),
                Compression::Gzip,
            );
            set_member(&mut m, &blob_name(&top), other);
            Input::Oci(m)
        },
        Expect::Refused("blob: digest mismatch: expected sha256:"),
    );
    check(
        "docker-layer-blob-does-not-match-its-digest",
        |_| {
            // Docker 25+ names layers by digest: the name is a claim to check.
            let image = valid_image();
            let mut m = image.docker_members();
            let layers = image.diff_ids();
            let mut renamed = Vec::new();
            for d in &layers {
                let old = format!("{}/layer.tar", &d[7..]);
                let bytes = member(&m, &old).to_vec();
                m.retain(|(n, _)| *n != old);
                renamed.push(blob_name(&sha256(&bytes)));
                m.push((blob_name(&sha256(&bytes)), bytes));
            }
            let other = compress(
                &Tar::new().file("app/other", b"y").build(),
                Compression::Gzip,
            );
            set_member(&mut m, &renamed[1], other);
            docker_edit_manifest(&mut m, |v| v[0]["Layers"] = json!(renamed));
            Input::Docker(m)
        },
        Expect::Refused("blob: digest mismatch: expected sha256:"),
    );
    check(
        "oci-config-diff-id-does-not-match-the-layer",
        |_| {
            let mut m = valid_image().oci_members();
            oci_edit_config(&mut m, |c| {
                c["rootfs"]["diff_ids"][1] = json!(sha256(b"some other layer"))
            });
            Input::Oci(m)
        },
        Expect::Refused("diff ID (uncompressed layer): digest mismatch"),
    );
    check(
        "docker-config-diff-id-does-not-match-the-layer",
        |_| {
            let mut m = valid_image().docker_members();
            docker_edit_config(&mut m, |c| {
                c["rootfs"]["diff_ids"][1] = json!(sha256(b"some other layer"))
            });
            Input::Docker(m)
        },
        Expect::Refused("diff ID (uncompressed layer): digest mismatch"),
    );
    check(
        "oci-manifest-does-not-match-its-digest",
        |_| {
            let mut m = valid_image().oci_members();
            let (digest, mut manifest) = oci_manifest(&m);
            manifest["annotations"] = json!({"tampered": "yes"});
            set_member(
                &mut m,
                &blob_name(&digest),
                serde_json::to_vec(&manifest).unwrap(),
            );
            Input::Oci(m)
        },
        Expect::Refused("manifest blobs/sha256/"),
    );
    check(
        "docker-config-does-not-match-its-name",
        |_| {
            let mut m = valid_image().docker_members();
            let manifest = json_of(member(&m, "manifest.json"));
            let name = manifest[0]["Config"].as_str().unwrap().to_owned();
            let mut config = json_of(member(&m, &name));
            config["author"] = json!("tampered");
            set_member(&mut m, &name, serde_json::to_vec(&config).unwrap());
            Input::Docker(m)
        },
        Expect::Refused("digest mismatch"),
    );
}

#[test]
fn missing_members() {
    check(
        "docker-missing-layer",
        |_| {
            let image = valid_image();
            let mut m = image.docker_members();
            let gone = format!("{}/layer.tar", &image.diff_ids()[1][7..]);
            m.retain(|(n, _)| *n != gone);
            Input::Docker(m)
        },
        Expect::Refused("/layer.tar' is missing from the archive"),
    );
    check(
        "oci-missing-layer-blob",
        |_| {
            let mut m = valid_image().oci_members();
            let (_, manifest) = oci_manifest(&m);
            let top = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
            m.retain(|(n, _)| *n != blob_name(&top));
            Input::Oci(m)
        },
        Expect::Refused("' is missing from the archive"),
    );
    check(
        "docker-layer-path-climbs-out",
        |_| {
            let mut m = valid_image().docker_members();
            docker_edit_manifest(&mut m, |v| v[0]["Layers"][1] = json!("../../etc/passwd"));
            Input::Docker(m)
        },
        Expect::Refused("manifest.json layer '../../etc/passwd' is not a path inside the archive"),
    );
    check(
        "docker-config-path-is-absolute",
        |_| {
            let mut m = valid_image().docker_members();
            docker_edit_manifest(&mut m, |v| v[0]["Config"] = json!("/etc/passwd"));
            Input::Docker(m)
        },
        Expect::Refused("manifest.json config '/etc/passwd' is not a path inside the archive"),
    );
}

#[test]
fn metadata_that_is_not_json() {
    check(
        "oci-index-not-json",
        |_| {
            let mut m = valid_image().oci_members();
            set_member(&mut m, "index.json", b"{\"manifests\": [".to_vec());
            Input::Oci(m)
        },
        Expect::Refused("index.json is not valid"),
    );
    check(
        "docker-manifest-not-json",
        |_| {
            let mut m = valid_image().docker_members();
            set_member(&mut m, "manifest.json", noise(300, 3));
            Input::Docker(m)
        },
        Expect::Refused("manifest.json is not valid"),
    );
    check(
        "oci-manifest-blob-not-json",
        |_| {
            let mut m = valid_image().oci_members();
            let (digest, _) = oci_manifest(&m);
            replace_blob(&mut m, &digest, b"not json at all".to_vec());
            Input::Oci(m)
        },
        Expect::Refused("is not valid"),
    );
    check(
        "oci-config-blob-not-json",
        |_| {
            let mut m = valid_image().oci_members();
            let (_, manifest) = oci_manifest(&m);
            let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
            replace_blob(&mut m, &config, b"[1, 2".to_vec());
            Input::Oci(m)
        },
        Expect::Refused("config"),
    );
}

#[test]
fn archives_that_are_not_archives() {
    check(
        "random-bytes",
        |_| Input::Archive(noise(10_000, 9)),
        Expect::Refused("not a readable tar archive"),
    );
    check(
        "a-tar-of-something-else",
        |_| Input::Archive(Tar::new().file("README", b"hello\n").build()),
        Expect::Refused("neither manifest.json (docker-archive) nor index.json (OCI layout) found"),
    );
    check(
        "a-truncated-archive",
        |_| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("valid.tar");
            valid_image().write_oci(&path);
            assert!(read_members(&path).iter().any(|(n, _)| n == "index.json"));
            let bytes = std::fs::read(&path).unwrap();
            Input::Archive(bytes[..bytes.len() * 2 / 3].to_vec())
        },
        Expect::Refused("truncated"),
    );
}

#[test]
fn names_that_are_not_names() {
    for bad in ["a/../b", "UPPER", "/abs", "../../evil", "a//b"] {
        let why = if bad == "UPPER" {
            "invalid reference format: repository name 'UPPER' must be lowercase".to_owned()
        } else {
            format!("invalid reference format: '{bad}'")
        };
        let in_archive = format!("image name '{bad}': {why}");
        check(
            &format!("docker-repotag {bad}"),
            |_| {
                let mut m = valid_image().docker_members();
                docker_edit_manifest(&mut m, |v| v[0]["RepoTags"] = json!([bad]));
                Input::Docker(m)
            },
            Expect::Refused(&in_archive),
        );
        check(
            &format!("oci-name-annotation {bad}"),
            |_| {
                let mut m = valid_image().oci_members();
                let mut index = json_of(member(&m, "index.json"));
                index["manifests"][0]["annotations"]["io.containerd.image.name"] = json!(bad);
                set_member(&mut m, "index.json", serde_json::to_vec(&index).unwrap());
                Input::Oci(m)
            },
            Expect::Refused(&in_archive),
        );
        check(
            &format!("oci-ref-name-annotation {bad}"),
            |_| {
                let mut m = valid_image().oci_members();
                let mut index = json_of(member(&m, "index.json"));
                index["manifests"][0]["annotations"] =
                    json!({"org.opencontainers.image.ref.name": bad});
                set_member(&mut m, "index.json", serde_json::to_vec(&index).unwrap());
                Input::Oci(m)
            },
            Expect::Refused(&in_archive),
        );
        check(
            &format!("import-name {bad}"),
            |_| Input::Args(vec!["image", "import", "{rootfs}", bad]),
            Expect::Refused(&why),
        );
        check(
            &format!("tag {bad}"),
            |_| Input::Args(vec!["tag", "base", bad]),
            Expect::Refused(&why),
        );
    }
}

/// The vfs driver applies every layer onto a full copy of the one below
/// (no overlay upper directory): the escapes again, that way.
#[test]
fn escapes_on_vfs() {
    let vfs = Some("vfs");
    check_on(
        vfs,
        "dotdot-inside-a-dir",
        |_| {
            Input::Layer(
                Tar::new()
                    .dir("a", 0o755)
                    .file("a/../../pwned", b"x")
                    .build(),
            )
        },
        Expect::Refused("tar entry 'a/../../pwned' climbs out of the layer with '..'"),
    );
    check_on(
        vfs,
        "absolute",
        |_| Input::Layer(Tar::new().file("/pwned", b"x").build()),
        Expect::Refused("tar entry '/pwned' has an absolute path"),
    );
    check_on(
        vfs,
        "relative-symlink-out",
        |_| {
            Input::Layer(
                Tar::new()
                    .symlink("evil", "../../..")
                    .file("evil/pwned", b"x")
                    .build(),
            )
        },
        Expect::Refused("symlink 'evil' -> '../../..' points outside the layer"),
    );
    check_on(
        vfs,
        "absolute-symlink-in-the-layer-below",
        |ctx| {
            Input::Layers(vec![
                Tar::new().symlink("evil", &ctx.outside()).build(),
                Tar::new().file("evil/pwned", b"x").build(),
            ])
        },
        Expect::Inside("tmp/{outside}/pwned"),
    );
    check_on(
        vfs,
        "hardlink-climbing-to-etc-passwd",
        |_| Input::Layer(Tar::new().hardlink("pwned", "../../etc/passwd").build()),
        Expect::Refused("the target climbs out of the layer with '..'"),
    );
    check_on(
        vfs,
        "hardlink-to-the-images-passwd",
        |_| {
            Input::Layers(vec![
                Tar::new()
                    .dir("etc", 0o755)
                    .file("etc/passwd", b"image:x:0:0::/:/bin/sh\n")
                    .build(),
                Tar::new().hardlink("pwned", "/etc/passwd").build(),
            ])
        },
        Expect::Inside("pwned"),
    );
    check_on(
        vfs,
        "oci-config-diff-id-does-not-match-the-layer",
        |_| {
            let mut m = valid_image().oci_members();
            oci_edit_config(&mut m, |c| {
                c["rootfs"]["diff_ids"][1] = json!(sha256(b"some other layer"))
            });
            Input::Oci(m)
        },
        Expect::Refused("diff ID (uncompressed layer): digest mismatch"),
    );
}
