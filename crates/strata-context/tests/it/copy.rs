use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, symlink};

use strata_context::{CopyOptions, Tree, copy, write_inline};

use crate::common::{CONTEXT_OWNER, Fixture, build, listing};

struct Case {
    name: &'static str,
    context: &'static [&'static str],
    ignore: &'static str,
    /// What the root filesystem holds before the copy.
    rootfs: &'static [&'static str],
    sources: &'static [&'static str],
    dest: &'static str,
    opts: CopyOptions,
    /// The whole root filesystem afterwards, or a piece of the error.
    want: Result<&'static [&'static str], &'static str>,
}

const PLAIN: CopyOptions = CopyOptions {
    chown: None,
    chmod: None,
    extract_archives: false,
};

const CONTEXT: &[&str] = &[
    "a f 644 A",
    "x.txt f 644 X",
    "y.txt f 600 Y",
    "z.md f 644 Z",
    "src d 750",
    "src/one f 755 1",
    "src/sub d 700",
    "src/sub/two f 640 2",
    "src/link l one",
    "link l a",
    "dirlink l src",
    "docs/a.txt f 644 DA",
    "docs/b.txt f 644 DB",
    "docs/c.md f 644 DC",
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a directory copies its contents, not itself",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["src"],
            dest: "/app/",
            opts: PLAIN,
            want: Ok(&[
                "app d 750 0:0",
                "app/link l one",
                "app/one f 755 0:0 1",
                "app/sub d 700 0:0",
                "app/sub/two f 640 0:0 2",
            ]),
        },
        Case {
            name: "an existing destination directory keeps its metadata and is merged",
            context: CONTEXT,
            ignore: "",
            rootfs: &["app d 711", "app/old f 644 old", "app/one f 600 replaced"],
            sources: &["src"],
            dest: "/app",
            opts: PLAIN,
            want: Ok(&[
                "app d 711 0:0",
                "app/link l one",
                "app/old f 644 0:0 old",
                "app/one f 755 0:0 1",
                "app/sub d 700 0:0",
                "app/sub/two f 640 0:0 2",
            ]),
        },
        Case {
            name: "a file goes into an existing directory",
            context: CONTEXT,
            ignore: "",
            rootfs: &["app d 755"],
            sources: &["a"],
            dest: "/app",
            opts: PLAIN,
            want: Ok(&["app d 755 0:0", "app/a f 644 0:0 A"]),
        },
        Case {
            name: "a file to a destination without a slash takes its name",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["a"],
            dest: "/opt/app/renamed",
            opts: PLAIN,
            want: Ok(&[
                "opt d 755 0:0",
                "opt/app d 755 0:0",
                "opt/app/renamed f 644 0:0 A",
            ]),
        },
        Case {
            name: "a file to a destination ending in a slash keeps its name",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["a"],
            dest: "/app/",
            opts: PLAIN,
            want: Ok(&["app d 755 0:0", "app/a f 644 0:0 A"]),
        },
        Case {
            name: "an existing file is replaced",
            context: CONTEXT,
            ignore: "",
            rootfs: &["etc d 755", "etc/a f 600 old"],
            sources: &["a"],
            dest: "/etc/a",
            opts: PLAIN,
            want: Ok(&["etc d 755 0:0", "etc/a f 644 0:0 A"]),
        },
        Case {
            name: "several sources need a destination ending in a slash",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["a", "x.txt"],
            dest: "/app",
            opts: PLAIN,
            want: Err("more than one source file, the destination must be a directory"),
        },
        Case {
            name: "a wildcard matching several files needs a slash too",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["*.txt"],
            dest: "/app",
            opts: PLAIN,
            want: Err("must be a directory and end with a /"),
        },
        Case {
            name: "several sources into a directory",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["a", "src/sub"],
            dest: "/app/",
            opts: PLAIN,
            want: Ok(&["app d 755 0:0", "app/a f 644 0:0 A", "app/two f 640 0:0 2"]),
        },
        Case {
            name: "wildcards",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["*.txt", "docs/[ab].*"],
            dest: "/w/",
            opts: PLAIN,
            want: Ok(&[
                "w d 755 0:0",
                "w/a.txt f 644 0:0 DA",
                "w/b.txt f 644 0:0 DB",
                "w/x.txt f 644 0:0 X",
                "w/y.txt f 600 0:0 Y",
            ]),
        },
        Case {
            name: "a wildcard over directories",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["*/*.md"],
            dest: "/w/",
            opts: PLAIN,
            want: Ok(&["w d 755 0:0", "w/c.md f 644 0:0 DC"]),
        },
        Case {
            name: "a wildcard matching nothing",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["*.rs"],
            dest: "/w/",
            opts: PLAIN,
            want: Err("no source files were specified: '*.rs'"),
        },
        Case {
            name: "a missing source",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["nope"],
            dest: "/w/",
            opts: PLAIN,
            want: Err("file not found in build context or excluded by .dockerignore: nope"),
        },
        Case {
            name: "an excluded source is not found",
            context: CONTEXT,
            ignore: "*.txt",
            rootfs: &[],
            sources: &["x.txt"],
            dest: "/w/",
            opts: PLAIN,
            want: Err("file not found in build context or excluded by .dockerignore: x.txt"),
        },
        Case {
            name: "a symlink to an excluded file is not found",
            context: CONTEXT,
            ignore: "a",
            rootfs: &[],
            sources: &["link"],
            dest: "/w/",
            opts: PLAIN,
            want: Err("excluded by .dockerignore: link"),
        },
        Case {
            name: "a wildcard skips excluded files",
            context: CONTEXT,
            ignore: "x.txt",
            rootfs: &[],
            sources: &["*.txt"],
            dest: "/w/",
            opts: PLAIN,
            want: Ok(&["w d 755 0:0", "w/y.txt f 600 0:0 Y"]),
        },
        Case {
            name: "excluded files inside a copied directory are left out",
            context: CONTEXT,
            ignore: "src/sub\n**/one",
            rootfs: &[],
            sources: &["src"],
            dest: "/app",
            opts: PLAIN,
            want: Ok(&["app d 750 0:0", "app/link l one"]),
        },
        Case {
            name: "an excluded directory re-included in part",
            context: CONTEXT,
            ignore: "src\n!src/sub/two",
            rootfs: &[],
            sources: &["."],
            dest: "/app/",
            opts: PLAIN,
            want: Ok(&[
                "app d 755 0:0",
                "app/a f 644 0:0 A",
                "app/dirlink l src",
                "app/docs d 755 0:0",
                "app/docs/a.txt f 644 0:0 DA",
                "app/docs/b.txt f 644 0:0 DB",
                "app/docs/c.md f 644 0:0 DC",
                "app/link l a",
                "app/src d 750 0:0",
                "app/src/sub d 700 0:0",
                "app/src/sub/two f 640 0:0 2",
                "app/x.txt f 644 0:0 X",
                "app/y.txt f 600 0:0 Y",
                "app/z.md f 644 0:0 Z",
            ]),
        },
        Case {
            name: "sources cannot climb out of the context",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["../../a", "/x.txt", "src/../../../y.txt"],
            dest: "/w/",
            opts: PLAIN,
            want: Ok(&[
                "w d 755 0:0",
                "w/a f 644 0:0 A",
                "w/x.txt f 644 0:0 X",
                "w/y.txt f 600 0:0 Y",
            ]),
        },
        Case {
            name: "a symlink named as a source is followed",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["link", "dirlink/sub"],
            dest: "/w/",
            opts: PLAIN,
            want: Ok(&["w d 755 0:0", "w/link f 644 0:0 A", "w/two f 640 0:0 2"]),
        },
        Case {
            name: "chown applies to copied entries and created parents",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["src/sub"],
            dest: "/p/q",
            opts: CopyOptions {
                chown: Some((1000, 1001)),
                ..PLAIN
            },
            want: Ok(&[
                "p d 755 1000:1001",
                "p/q d 700 1000:1001",
                "p/q/two f 640 1000:1001 2",
            ]),
        },
        Case {
            name: "chmod applies to every copied file and directory",
            context: CONTEXT,
            ignore: "",
            rootfs: &[],
            sources: &["src"],
            dest: "/p/q/",
            opts: CopyOptions {
                chmod: Some(0o710),
                ..PLAIN
            },
            want: Ok(&[
                "p d 755 0:0",
                "p/q d 710 0:0",
                "p/q/link l one",
                "p/q/one f 710 0:0 1",
                "p/q/sub d 710 0:0",
                "p/q/sub/two f 710 0:0 2",
            ]),
        },
        Case {
            name: "a directory cannot replace a file",
            context: CONTEXT,
            ignore: "",
            rootfs: &["app f 644 file"],
            sources: &["src"],
            dest: "/app",
            opts: PLAIN,
            want: Err("cannot copy into '/app': it exists and is not a directory"),
        },
        Case {
            name: "a file cannot replace a directory inside a copy",
            context: CONTEXT,
            ignore: "",
            rootfs: &["app/one d 755"],
            sources: &["src"],
            dest: "/app",
            opts: PLAIN,
            want: Err("cannot replace directory '/app/one'"),
        },
        Case {
            name: "an existing symlink where a directory goes is followed inside the root",
            context: &["lib d 700", "lib/libx.so f 644 L"],
            ignore: "",
            rootfs: &["usr/lib d 755", "lib l usr/lib"],
            sources: &["."],
            dest: "/",
            opts: PLAIN,
            want: Ok(&[
                "lib l usr/lib",
                "usr d 755 0:0",
                "usr/lib d 755 0:0",
                "usr/lib/libx.so f 644 0:0 L",
            ]),
        },
        Case {
            name: "ADD copies a file named .tar that is not an archive",
            context: &["x.tar f 644 not a tar at all"],
            ignore: "",
            rootfs: &[],
            sources: &["x.tar"],
            dest: "/d/",
            opts: CopyOptions {
                extract_archives: true,
                ..PLAIN
            },
            want: Ok(&["d d 755 0:0", "d/x.tar f 644 0:0 not a tar at all"]),
        },
    ]
}

#[test]
fn copy_rules() {
    for case in cases() {
        let fx = Fixture::new();
        build(&fx.ctx, case.context, CONTEXT_OWNER);
        build(&fx.root, case.rootfs, 0);
        let tree = fx.context(case.ignore);
        let sources: Vec<String> = case.sources.iter().map(|s| s.to_string()).collect();
        let rootfs = fx.rootfs();
        let result = tree
            .resolve(&sources)
            .and_then(|srcs| copy(&tree, &srcs, rootfs.as_fd(), case.dest, &case.opts));
        match (result, case.want) {
            (Ok(_), Ok(want)) => {
                assert_eq!(listing(&fx.root), want, "{}", case.name);
            }
            (Err(e), Err(want)) => {
                assert!(e.to_string().contains(want), "{}: got error {e}", case.name)
            }
            (Ok(_), Err(want)) => panic!("{}: copied, wanted error {want}", case.name),
            (Err(e), Ok(_)) => panic!("{}: {e}", case.name),
        }
    }
}

#[test]
fn files_keep_their_mtime() {
    let fx = Fixture::new();
    build(&fx.ctx, &["d d 755", "d/f f 644 x"], 0);
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    let f = std::fs::File::options()
        .write(true)
        .open(fx.ctx.join("d/f"))
        .unwrap();
    f.set_modified(old).unwrap();
    std::fs::File::open(fx.ctx.join("d"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let tree = fx.context("");
    let srcs = tree.resolve(&[".".into()]).unwrap();
    copy(
        &tree,
        &srcs,
        fx.rootfs().as_fd(),
        "/out/",
        &CopyOptions::default(),
    )
    .unwrap();
    for p in ["out/d", "out/d/f"] {
        let m = std::fs::metadata(fx.root.join(p)).unwrap();
        assert_eq!(m.mtime(), 1_000_000_000, "{p}");
    }
}

#[test]
fn rootfs_trees_keep_owners() {
    let fx = Fixture::new();
    let stage = fx.base.join("stage");
    build(
        &stage,
        &["bin d 755", "bin/tool f 4755 T", "etc/conf f 600 C"],
        0,
    );
    std::os::unix::fs::chown(stage.join("etc/conf"), Some(7), Some(8)).unwrap();
    let tree = Tree::rootfs(&stage).unwrap();
    let srcs = tree
        .resolve(&["/bin/tool".into(), "etc/conf".into()])
        .unwrap();
    copy(
        &tree,
        &srcs,
        fx.rootfs().as_fd(),
        "/usr/local/",
        &CopyOptions::default(),
    )
    .unwrap();
    assert_eq!(
        listing(&fx.root),
        [
            "usr d 755 0:0",
            "usr/local d 755 0:0",
            "usr/local/conf f 600 7:8 C",
            "usr/local/tool f 4755 0:0 T",
        ]
    );
    // --chown on a setuid file keeps the setuid bit (chown clears it).
    let srcs = tree.resolve(&["/bin/tool".into()]).unwrap();
    let opts = CopyOptions {
        chown: Some((5, 5)),
        ..Default::default()
    };
    copy(&tree, &srcs, fx.rootfs().as_fd(), "/t", &opts).unwrap();
    let m = std::fs::metadata(fx.root.join("t")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o4755, 5));
}

/// Files the host has outside the root filesystem, which no copy may touch.
fn outside(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.base.join("outside");
    build(&dir, &["keep f 644 host"], 0);
    dir
}

#[test]
fn rootfs_symlinks_never_lead_outside() {
    let fx = Fixture::new();
    build(
        &fx.ctx,
        &["a f 644 A", "tree/etc/passwd f 644 P", "tree/lib/x f 644 X"],
        0,
    );
    let host = outside(&fx);
    let host_abs = host.display().to_string();
    // /app -> /, /up -> ../../.. (climbs past the root), /abs -> the host
    // directory's absolute path, /app2/lib -> that too, /file -> a host file.
    symlink("/", fx.root.join("app")).unwrap();
    symlink("../../..", fx.root.join("up")).unwrap();
    symlink(&host_abs, fx.root.join("abs")).unwrap();
    std::fs::create_dir(fx.root.join("app2")).unwrap();
    symlink(&host_abs, fx.root.join("app2/lib")).unwrap();
    symlink(format!("{host_abs}/keep"), fx.root.join("file")).unwrap();
    let tree = fx.context("");
    let rootfs = fx.rootfs();
    let run = |src: &str, dest: &str| {
        let srcs = tree.resolve(&[src.to_string()]).unwrap();
        copy(&tree, &srcs, rootfs.as_fd(), dest, &CopyOptions::default()).unwrap();
    };
    run("a", "/app/../../etc/a");
    run("a", "/up/escaped");
    run("a", "/abs/keep");
    run("a", "/abs/new");
    run("tree", "/app2/");
    run("a", "/file");
    write_inline(
        rootfs.as_fd(),
        "/abs/",
        "inline",
        b"hi",
        &CopyOptions::default(),
    )
    .unwrap();
    assert_eq!(listing(&host), ["keep f 644 0:0 host"]);
    let inside = |p: &str| std::fs::read_to_string(fx.root.join(p)).unwrap();
    assert_eq!(inside("etc/a"), "A");
    assert_eq!(inside("escaped"), "A");
    assert_eq!(inside(&format!("{}/keep", &host_abs[1..])), "A");
    assert_eq!(inside(&format!("{}/new", &host_abs[1..])), "A");
    assert_eq!(inside(&format!("{}/inline", &host_abs[1..])), "hi");
    assert_eq!(inside(&format!("{}/x", &host_abs[1..])), "X");
    assert_eq!(inside("file"), "A");
}

#[test]
fn inline_files() {
    let fx = Fixture::new();
    let rootfs = fx.rootfs();
    let opts = CopyOptions::default();
    write_inline(rootfs.as_fd(), "/etc/app.conf", "EOF", b"x=1\n", &opts).unwrap();
    write_inline(rootfs.as_fd(), "/scripts/", "run.sh", b"echo\n", &opts).unwrap();
    let exec = CopyOptions {
        chmod: Some(0o755),
        chown: Some((3, 4)),
        ..opts
    };
    write_inline(rootfs.as_fd(), "/etc/app.conf", "EOF", b"x=2\n", &exec).unwrap();
    assert_eq!(
        listing(&fx.root),
        [
            "etc d 755 0:0",
            "etc/app.conf f 755 3:4 x=2\n",
            "scripts d 755 0:0",
            "scripts/run.sh f 644 0:0 echo\n",
        ]
    );
}

fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "pkg/", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o640);
    h.set_size(5);
    b.append_data(&mut h, "pkg/hello", &b"hello"[..]).unwrap();
    b.into_inner().unwrap()
}

fn compressed(kind: &str, data: &[u8]) -> Vec<u8> {
    match kind {
        "plain" => data.to_vec(),
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 1).unwrap(),
        other => panic!("{other}"),
    }
}

#[test]
fn add_extracts_archives_by_content() {
    for kind in ["plain", "gz", "bz2", "xz", "zst"] {
        let fx = Fixture::new();
        // Deliberately misleading names: detection is by content.
        std::fs::write(fx.ctx.join("archive.bin"), compressed(kind, &tar_bytes())).unwrap();
        let tree = fx.context("");
        let srcs = tree.resolve(&["archive.bin".into()]).unwrap();
        let add = CopyOptions {
            extract_archives: true,
            ..Default::default()
        };
        let stats = copy(&tree, &srcs, fx.rootfs().as_fd(), "/opt/x", &add).unwrap();
        assert_eq!(stats.archives, 1, "{kind}");
        let got = listing(&fx.root);
        assert_eq!(
            got,
            [
                "opt d 755 0:0",
                "opt/x d 755 0:0",
                "opt/x/pkg d 755 0:0",
                "opt/x/pkg/hello f 640 0:0 hello",
            ],
            "{kind}"
        );
        // COPY does not extract.
        let fx2 = Fixture::new();
        std::fs::write(fx2.ctx.join("a.tar.gz"), compressed(kind, &tar_bytes())).unwrap();
        let tree = fx2.context("");
        let srcs = tree.resolve(&["a.tar.gz".into()]).unwrap();
        copy(
            &tree,
            &srcs,
            fx2.rootfs().as_fd(),
            "/o/",
            &CopyOptions::default(),
        )
        .unwrap();
        assert!(fx2.root.join("o/a.tar.gz").is_file(), "{kind}");
    }
}

#[test]
fn add_of_compressed_garbage_copies_it() {
    let fx = Fixture::new();
    std::fs::write(fx.ctx.join("x.gz"), compressed("gz", b"just some text")).unwrap();
    let tree = fx.context("");
    let srcs = tree.resolve(&["x.gz".into()]).unwrap();
    let add = CopyOptions {
        extract_archives: true,
        ..Default::default()
    };
    let stats = copy(&tree, &srcs, fx.rootfs().as_fd(), "/x.gz", &add).unwrap();
    assert_eq!(stats.archives, 0);
    assert!(fx.root.join("x.gz").is_file());
}
