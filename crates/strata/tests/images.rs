//! Image commands end to end: import, load, save, list, history, tag, rmi,
//! prune, df, on real storage drivers.

mod common;

use common::Strata;
use common::archive::{Image, Tar, busybox_rootfs};

fn import_busybox(s: &Strata, name: &str) -> String {
    let tar = s.path("rootfs.tar");
    std::fs::write(&tar, busybox_rootfs()).unwrap();
    s.ok(&[
        "image",
        "import",
        tar.to_str().unwrap(),
        name,
        "-c",
        "CMD [\"sh\"]",
    ])
    .trim()
    .to_owned()
}

#[test]
fn import_save_load_round_trip() {
    let s = Strata::new();
    let id = import_busybox(&s, "busybox");
    assert!(id.starts_with("sha256:"), "{id}");
    let before = s.image_tree("busybox");
    assert!(before.has_file("bin/busybox"));
    for format in ["docker-archive", "oci-archive", "oci-dir"] {
        let out = s.path(&format!("saved-{format}"));
        s.ok(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "busybox",
        ]);
        s.ok(&["rmi", "busybox"]);
        assert_eq!(s.ok(&["images", "-q"]), "");
        let loaded = s.ok(&["load", "-i", out.to_str().unwrap()]);
        assert_eq!(loaded, "Loaded image: busybox:latest\n", "{format}");
        assert_eq!(s.inspect("busybox")["Id"], id, "{format}");
        assert_eq!(s.image_tree("busybox"), before, "{format}");
    }
}

/// Loads `image` (OCI archive) into `s`; its filesystem.
fn load_tree(s: &Strata, image: &Image) -> common::tree::Tree {
    let file = s.path(&format!("{}.tar", image.name.replace(['/', ':'], "_")));
    image.write_oci(&file);
    s.ok(&["load", "-i", file.to_str().unwrap()]);
    s.image_tree(&image.name)
}

/// Three layers exercising every whiteout form.
fn whiteout_image() -> Image {
    let l0 = Tar::new()
        .dir("a", 0o755)
        .file("a/x", b"old x")
        .file("a/y", b"y")
        .dir("b", 0o755)
        .file("b/1", b"1")
        .file("c", b"c")
        .dir("d", 0o755)
        .dir("d/sub", 0o700)
        .file("d/sub/z", b"z")
        .build();
    let l1 = Tar::new()
        .whiteout("a/x")
        .dir("b", 0o755)
        .opaque("b")
        .file("b/2", b"2")
        .whiteout("c")
        .whiteout("d")
        .file("d", b"d is a file now")
        .build();
    let l2 = Tar::new().symlink("c", "a/y").file("a/x", b"new x").build();
    Image::new("test/whiteouts:1", vec![l0, l1, l2])
}

#[test]
fn whiteouts_and_opaque_dirs_on_both_drivers_and_through_save() {
    let image = whiteout_image();
    let mut trees = Vec::new();
    for driver in ["overlay", "vfs"] {
        let s = Strata::with_driver(Some(driver));
        let tree = load_tree(&s, &image);
        assert_eq!(
            tree.paths(),
            ["a", "a/x", "a/y", "b", "b/2", "c", "d"],
            "{driver}"
        );
        assert_eq!(tree.get("c").unwrap().content, "a/y", "{driver}");
        assert_eq!(tree.get("d").unwrap().kind, "file", "{driver}");
        // Save and load into a store of the other driver: the same tree.
        let saved = s.path("saved.tar");
        s.ok(&["save", "-o", saved.to_str().unwrap(), &image.name]);
        let other = Strata::with_driver(Some(if driver == "vfs" { "overlay" } else { "vfs" }));
        other.ok(&["load", "-i", saved.to_str().unwrap()]);
        assert_eq!(other.image_tree(&image.name), tree, "{driver} -> other");
        assert_eq!(other.id_and_diffs(&image.name).1, image.diff_ids());
        trees.push(tree);
    }
    assert_eq!(trees[0], trees[1], "overlay and vfs agree");
}

#[test]
fn two_hundred_layers_mount_and_read() {
    let layers: Vec<Vec<u8>> = (0..200)
        .map(|i| {
            let mut t = Tar::new();
            if i == 0 {
                t.dir("keep", 0o755).dir("moving", 0o755);
            } else {
                t.whiteout(&format!("moving/{}", i - 1));
            }
            t.file(&format!("keep/{i}"), format!("layer {i}").as_bytes())
                .file(&format!("moving/{i}"), b"latest")
                .build()
        })
        .collect();
    let image = Image::new("test/deep:200", layers);
    for driver in ["overlay", "vfs"] {
        let s = Strata::with_driver(Some(driver));
        let tree = load_tree(&s, &image);
        let keep = (0..200)
            .filter(|i| tree.has_file(&format!("keep/{i}")))
            .count();
        assert_eq!(keep, 200, "{driver}");
        let moving: Vec<&str> = tree
            .paths()
            .into_iter()
            .filter(|p| p.starts_with("moving/"))
            .collect();
        assert_eq!(moving, ["moving/199"], "{driver}");
        // Every layer is its own snapshot, and all 200 stack in one mount.
        let mnt = s.ok(&["image", "mount", &image.name]);
        let read = std::fs::read_to_string(format!("{}/keep/0", mnt.trim())).unwrap();
        assert_eq!(read, "layer 0");
        s.ok(&["image", "unmount", &image.name]);
        assert_eq!(
            s.inspect(&image.name)["RootFS"]["Layers"]
                .as_array()
                .unwrap()
                .len(),
            200
        );
    }
}

#[test]
fn shared_layers_are_stored_once_and_shown_in_df() {
    let s = Strata::new();
    let base = Tar::new().file("base", &vec![7u8; 100_000]).build();
    let mid = Tar::new().file("mid", &vec![8u8; 20_000]).build();
    let top = Tar::new().file("top", &vec![9u8; 3_000]).build();
    load_tree(&s, &Image::new("test/a:1", vec![base.clone(), mid.clone()]));
    let snapshots_a = s.state().snapshots.len();
    load_tree(&s, &Image::new("test/b:1", vec![base, mid, top]));
    // Only the one new layer became a new snapshot.
    assert_eq!(s.state().snapshots.len(), snapshots_a + 1);
    let df = s.ok(&["system", "df", "-v"]);
    let row = |name: &str| -> Vec<String> {
        let line = df.lines().find(|l| l.starts_with(name)).unwrap();
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // REPOSITORY TAG ID CREATED SIZE SHARED UNIQUE CONTAINERS
    assert_eq!(row("test/a")[4..7], ["120kB", "120kB", "0B"]);
    assert_eq!(row("test/b")[4..7], ["123kB", "120kB", "3kB"]);
    assert!(
        df.contains("Layers: 3 stored once, 123kB in all; 2 shared by several images (120kB)"),
        "{df}"
    );
    let summary = s.ok(&["system", "df"]);
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("Images") && l.contains("123kB")),
        "{summary}"
    );
}

#[test]
fn store_refuses_another_driver() {
    let s = Strata::with_driver(Some("vfs"));
    import_busybox(&s, "busybox");
    let mut cmd = s.command(&["images"]);
    cmd.args(["--storage-driver", "overlay"]);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("vfs") && err.contains("overlay"), "{err}");
    let bogus = Strata::with_driver(Some("zfs-on-the-moon"));
    assert!(bogus.fails(&["images"]).contains("zfs-on-the-moon"));
}

#[test]
fn tags_and_removal_follow_docker() {
    let s = Strata::new();
    let id = import_busybox(&s, "busybox");
    s.ok(&["tag", "busybox", "me/busybox:1"]);
    // By ID with two names: must be forced.
    let err = s.fails(&["rmi", &id[7..19]]);
    assert!(err.contains("must be forced"), "{err}");
    // By name: only that tag goes.
    assert_eq!(s.ok(&["rmi", "me/busybox:1"]), "Untagged: me/busybox:1\n");
    assert_eq!(s.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert!(s.fails(&["rmi", "nope"]).contains("no such image: nope"));
    // A mounted image is in use.
    s.ok(&["image", "mount", "busybox"]);
    assert!(s.fails(&["rmi", "busybox"]).contains("is mounted"));
    assert_eq!(
        s.ok(&["image", "prune", "-a", "-f"])
            .lines()
            .last()
            .unwrap(),
        "Total reclaimed space: 0B"
    );
    s.ok(&["rmi", "-f", "busybox"]);
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(s.state().snapshots, Vec::<String>::new());
    assert_eq!(s.state().check, "no problems found\n");
}

#[test]
fn config_file_chooses_the_driver_and_flags_win() {
    let s = Strata::new();
    let config = s.path("strata.toml");
    std::fs::write(&config, "storage_driver = \"vfs\"\n").unwrap();
    let tar = s.path("rootfs.tar");
    std::fs::write(&tar, busybox_rootfs()).unwrap();
    let mut cmd = s.command(&["image", "import", tar.to_str().unwrap(), "busybox"]);
    assert!(
        cmd.env("STRATA_CONFIG", &config)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(s.inspect("busybox")["GraphDriver"]["Name"], "vfs");
    // The flag wins over the file (on a new store).
    let flagged = Strata::with_driver(Some("overlay"));
    let mut cmd = flagged.command(&["image", "import", tar.to_str().unwrap(), "busybox"]);
    assert!(
        cmd.env("STRATA_CONFIG", &config)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(flagged.inspect("busybox")["GraphDriver"]["Name"], "overlay");
    // An unknown key is an error that names the file, not a silent default.
    std::fs::write(&config, "storage-driver = \"vfs\"\n").unwrap();
    let out = s
        .command(&["images"])
        .env("STRATA_CONFIG", &config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("strata.toml") && err.contains("storage-driver"),
        "{err}"
    );
}

#[test]
fn import_reads_stdin() {
    let s = Strata::new();
    let out = common::output_with_stdin(
        &mut s.command(&["image", "import", "-", "piped:1", "-m", "from a pipe"]),
        &busybox_rootfs(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.image_tree("piped:1").has_file("bin/busybox"));
    assert!(s.ok(&["history", "piped:1"]).contains("from a pipe"));
}
