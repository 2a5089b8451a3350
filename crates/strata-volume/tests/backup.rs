//! Volume export, import and clone on real folders. They run as root
//! (owners, device nodes, trusted xattrs).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};
use strata_archive::tarstream::{EntryKind, TarReader, Time};
use strata_archive::tarwrite::{Header, TarWriter};
use strata_volume::backup::{self, BackupError};

// --- fixtures ---------------------------------------------------------------

fn set_mtime(path: &Path, sec: i64) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: 123_456_789,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn set_xattr(path: &Path, key: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, key, value, XattrFlags::empty()).unwrap();
}

fn mknod(path: &Path, kind: FileType, mode: u32, major: u32, minor: u32) {
    let dev = rustix::fs::makedev(major, minor);
    rustix::fs::mknodat(CWD, path, kind, Mode::from_raw_mode(mode), dev).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A volume with one of everything a volume can hold, with odd modes,
/// owners, times and xattrs. With `socket`, a unix socket too (which a tar
/// cannot hold).
fn fixture(root: &Path, socket: bool) {
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("d/file"), b"content of a setuid file").unwrap();
    lchown(root.join("d/file"), Some(1234), Some(5678)).unwrap();
    chmod(&root.join("d/file"), 0o4751);
    set_xattr(&root.join("d/file"), "user.comment", b"hello");
    set_xattr(&root.join("d/file"), "trusted.binary", &[0, 1, 2, 255]);
    fs::hard_link(root.join("d/file"), root.join("hard")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(root.join("d/sub/big"), &big).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join(".wh.not-a-whiteout"), b"plain data").unwrap();
    let long = root.join(format!("{}/{}", "l".repeat(90), "n".repeat(60)));
    fs::create_dir_all(long.parent().unwrap()).unwrap();
    fs::write(&long, b"long name").unwrap();
    lchown(&long, Some(5_000_000), Some(5_000_001)).unwrap();
    symlink("d/file", root.join("link")).unwrap();
    symlink("/etc", root.join("evil")).unwrap();
    symlink("../../outside", root.join("up")).unwrap();
    symlink("nowhere", root.join("dangling")).unwrap();
    lchown(root.join("link"), Some(7), Some(8)).unwrap();
    set_xattr(&root.join("link"), "trusted.on-link", b"x");
    mknod(&root.join("fifo"), FileType::Fifo, 0o640, 0, 0);
    mknod(&root.join("null"), FileType::CharacterDevice, 0o666, 1, 3);
    mknod(&root.join("loop9"), FileType::BlockDevice, 0o660, 7, 9);
    fs::create_dir(root.join("ro")).unwrap();
    fs::write(root.join("ro/inside"), b"in a read-only folder").unwrap();
    chmod(&root.join("ro"), 0o555);
    chmod(&root.join("d"), 0o2775);
    lchown(root.join("d"), Some(5), Some(6)).unwrap();
    set_xattr(&root.join("d"), "trusted.dir", b"y");
    if socket {
        std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    }
    chmod(root, 0o750);
    lchown(root, Some(999), Some(998)).unwrap();
    set_xattr(root, "user.top", b"root of the volume");
    // Times last, children first: creating entries changes a folder's.
    let mut paths = Vec::new();
    walk(root, Path::new(""), &mut paths);
    for (i, rel) in paths.iter().rev().enumerate() {
        set_mtime(&root.join(rel), 1_600_000_000 + i as i64);
    }
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    out.push(rel.to_owned());
    let abs = root.join(rel);
    if !fs::symlink_metadata(&abs).unwrap().is_dir() {
        return;
    }
    let mut names: Vec<_> = fs::read_dir(&abs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        walk(root, &rel.join(name), out);
    }
}

// --- comparing trees --------------------------------------------------------

/// Everything a backup must keep about one entry.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: String,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    /// Length and hash of a regular file's content.
    content: Option<(usize, u64)>,
    link: Option<PathBuf>,
    rdev: u64,
    xattrs: Vec<(String, String)>,
    /// For the second and later names of a file: the first one.
    same_file_as: Option<PathBuf>,
}

/// The tree under `root`, nothing followed. Without `nanos`, times are
/// compared in whole seconds (what a tar keeps).
fn snapshot(root: &Path, nanos: bool) -> BTreeMap<PathBuf, Node> {
    let mut paths = Vec::new();
    walk(root, Path::new(""), &mut paths);
    let mut first_name: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut tree = BTreeMap::new();
    for rel in paths {
        let abs = root.join(&rel);
        let m = fs::symlink_metadata(&abs).unwrap();
        let ft = m.file_type();
        let same_file_as = match first_name.get(&m.ino()) {
            Some(first) if !ft.is_dir() => Some(first.clone()),
            _ => {
                first_name.insert(m.ino(), rel.clone());
                None
            }
        };
        let node = Node {
            kind: kind(&m),
            mode: format!("{:o}", m.mode() & 0o7777),
            uid: m.uid(),
            gid: m.gid(),
            mtime: (m.mtime(), if nanos { m.mtime_nsec() } else { 0 }),
            content: ft.is_file().then(|| digest(&fs::read(&abs).unwrap())),
            link: ft.is_symlink().then(|| fs::read_link(&abs).unwrap()),
            rdev: m.rdev(),
            xattrs: xattrs(&abs),
            same_file_as,
        };
        tree.insert(rel, node);
    }
    tree
}

fn digest(content: &[u8]) -> (usize, u64) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    content.hash(&mut h);
    (content.len(), h.finish())
}

fn kind(m: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = m.file_type();
    [
        (ft.is_dir(), "dir"),
        (ft.is_file(), "file"),
        (ft.is_symlink(), "symlink"),
        (ft.is_fifo(), "fifo"),
        (ft.is_char_device(), "char"),
        (ft.is_block_device(), "block"),
        (ft.is_socket(), "socket"),
    ]
    .into_iter()
    .find_map(|(is, name)| is.then_some(name))
    .unwrap()
}

fn xattrs(path: &Path) -> Vec<(String, String)> {
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap();
    let mut out: Vec<_> = names[..n]
        .split(|&b| b == 0)
        .filter(|k| !k.is_empty())
        .map(|key| {
            let mut value = vec![0u8; 4096];
            let len = rustix::fs::lgetxattr(path, key, &mut value[..]).unwrap();
            (
                key.escape_ascii().to_string(),
                value[..len].escape_ascii().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn assert_same_trees(expected: &BTreeMap<PathBuf, Node>, got: &BTreeMap<PathBuf, Node>) {
    for (path, node) in expected {
        assert_eq!(Some(node), got.get(path), "{}", path.display());
    }
    let extra: Vec<_> = got.keys().filter(|p| !expected.contains_key(*p)).collect();
    assert!(extra.is_empty(), "unexpected entries: {extra:?}");
}

/// A temporary folder with an empty `name` folder in it.
fn folder(t: &tempfile::TempDir, name: &str) -> PathBuf {
    let p = t.path().join(name);
    fs::create_dir(&p).unwrap();
    p
}

fn export_to_vec(data: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    let size = backup::export(data, &mut tar).unwrap();
    assert_eq!(size, tar.len() as u64);
    tar
}

/// The fixture without its socket: what an archive can bring back.
fn without_socket(mut tree: BTreeMap<PathBuf, Node>) -> BTreeMap<PathBuf, Node> {
    tree.remove(Path::new("sock"));
    tree
}

// --- export and import ------------------------------------------------------

#[test]
fn round_trip_keeps_content_and_metadata() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (folder(&t, "src"), folder(&t, "dst"));
    fixture(&src, true);
    let tar = export_to_vec(&src);
    let totals = backup::import(&mut &tar[..], &dst).unwrap();
    assert_eq!(totals.tar_size, tar.len() as u64);
    assert_same_trees(
        &without_socket(snapshot(&src, false)),
        &snapshot(&dst, false),
    );
}

#[test]
fn export_is_read_by_gnu_tar_and_gnu_tar_output_is_imported() {
    let t = tempfile::tempdir().unwrap();
    let (src, ours, theirs) = (folder(&t, "src"), folder(&t, "ours"), folder(&t, "theirs"));
    fixture(&src, false);
    let expected = snapshot(&src, false);
    let file = t.path().join("volume.tar");
    backup::export(&src, &mut fs::File::create(&file).unwrap()).unwrap();
    let xattrs = ["--xattrs", "--xattrs-include=*"];
    let mut tar = Command::new("tar");
    tar.args(xattrs)
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(&theirs);
    assert!(tar.status().unwrap().success());
    assert_same_trees(&expected, &snapshot(&theirs, false));

    let mut tar = Command::new("tar");
    tar.args(xattrs)
        .arg("-cf")
        .arg(&file)
        .arg("-C")
        .arg(&src)
        .arg(".");
    assert!(tar.status().unwrap().success());
    backup::import(&mut fs::File::open(&file).unwrap(), &ours).unwrap();
    assert_same_trees(&expected, &snapshot(&ours, false));
}

#[test]
fn a_symlink_out_of_the_volume_is_archived_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let src = folder(&t, "src");
    symlink("/etc", src.join("evil")).unwrap();
    symlink("/etc/passwd", src.join("evil-file")).unwrap();
    let tar = export_to_vec(&src);
    let mut reader = TarReader::new(&tar[..]);
    let mut entries = Vec::new();
    while let Some(e) = reader.next_entry().unwrap() {
        entries.push((String::from_utf8(e.path).unwrap(), e.kind, e.link, e.size));
    }
    assert_eq!(
        entries,
        [
            ("./".into(), EntryKind::Directory, vec![], 0),
            ("evil".into(), EntryKind::Symlink, b"/etc".to_vec(), 0),
            (
                "evil-file".into(),
                EntryKind::Symlink,
                b"/etc/passwd".to_vec(),
                0
            ),
        ]
    );
}

/// A tar of `entries` (path, kind, link target or content).
fn tar_of<S: AsRef<str>>(entries: &[(S, EntryKind, S)]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (path, kind, arg) in entries {
        let (link, content) = match kind {
            EntryKind::Regular => ("", arg.as_ref().as_bytes()),
            _ => (arg.as_ref(), &b""[..]),
        };
        let h = Header {
            kind: *kind,
            mode: 0o755,
            size: content.len() as u64,
            link: link.as_bytes().to_vec(),
            ..Header::marker(path.as_ref().as_bytes().to_vec(), Time::default())
        };
        w.append(&h, &mut &content[..]).unwrap();
    }
    w.finish().unwrap().0
}

#[test]
fn hostile_archives_write_nothing_outside_the_volume() {
    use EntryKind::{Directory as D, Hardlink as H, Regular as F, Symlink as L};
    // OUT stands for a folder next to the volume, which holds `secret`.
    fn check(name: &str, entries: &[(&str, EntryKind, &str)], error: Option<&str>) {
        let t = tempfile::tempdir().unwrap();
        let (data, outside) = (folder(&t, "data"), folder(&t, "outside"));
        fs::write(outside.join("secret"), b"secret").unwrap();
        let out = outside.to_str().unwrap();
        let entries: Vec<_> = entries
            .iter()
            .map(|(p, k, a)| (p.replace("OUT", out), *k, a.replace("OUT", out)))
            .collect();
        let result = backup::import(&mut &tar_of(&entries)[..], &data);
        match (error, result) {
            (None, Ok(_)) => {}
            (Some(want), Err(e)) => assert!(e.to_string().contains(want), "{name}: {e}"),
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
        let names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "{name}");
        assert_eq!(
            fs::read(outside.join("secret")).unwrap(),
            b"secret",
            "{name}"
        );
        assert!(!t.path().join("x").exists(), "{name}");
    }
    check(
        "dot-dot",
        &[("../x", F, "pwned")],
        Some("tar entry '../x' climbs out with '..'"),
    );
    check(
        "inner dot-dot",
        &[("a/../../x", F, "pwned")],
        Some("climbs out with '..'"),
    );
    check(
        "absolute",
        &[("/x", F, "pwned")],
        Some("tar entry '/x' has an absolute path"),
    );
    check(
        "absolute into the outside",
        &[("OUT/pwned", F, "pwned")],
        Some("has an absolute path"),
    );
    check(
        "file through an absolute symlink",
        &[("l", L, "OUT"), ("l/pwned", F, "pwned")],
        Some("tar entry 'l/pwned' lies below 'l', which is a symlink or a file"),
    );
    check(
        "file through a relative symlink",
        &[("l", L, "../outside"), ("l/pwned", F, "pwned")],
        Some("lies below 'l'"),
    );
    check(
        "folder through a symlink",
        &[("l", L, "OUT"), ("l/sub/", D, ""), ("l/sub/pwned", F, "x")],
        Some("lies below 'l'"),
    );
    check(
        "symlink over a folder, then a file in it",
        &[("d/", D, ""), ("d", L, "OUT"), ("d/pwned", F, "x")],
        Some("lies below 'd'"),
    );
    check(
        "hardlink to a file outside",
        &[("h", H, "../outside/secret")],
        Some("hardlink 'h' -> '../outside/secret'"),
    );
    check(
        "hardlink through a symlink",
        &[("l", L, "OUT"), ("h", H, "l/secret")],
        Some("lies below 'l'"),
    );
    check(
        "hardlink to an absolute outside path stays inside",
        &[("h", H, "OUT/secret")],
        Some("the target is not in the archive"),
    );
    // A later entry replaces the symlink itself, never what it points at.
    check(
        "file over a symlink",
        &[("l", L, "OUT/secret"), ("l", F, "new")],
        None,
    );
    check(
        "hardlink to a symlink",
        &[("l", L, "OUT/secret"), ("h", H, "l")],
        None,
    );
}

#[test]
fn malformed_archives_are_clear_errors() {
    fn check(name: &str, archive: &[u8], want: &str) {
        let t = tempfile::tempdir().unwrap();
        let data = folder(&t, "data");
        let err = backup::import(&mut &archive[..], &data)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot import"), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    let content = "x".repeat(10_000);
    let good = tar_of(&[("file", EntryKind::Regular, &content)]);
    let gzip = compress("gzip", &good);
    check("empty", b"", "cannot import: the archive is empty");
    check(
        "short",
        b"garbage\n",
        "the input is not a tar archive (only 8 bytes, less than one tar header)",
    );
    check(
        "not a tar",
        &b"just some text\n".repeat(100),
        "bad tar header at byte 0: not a tar stream, or corrupted (bad checksum)",
    );
    check(
        "truncated",
        &good[..3000],
        "the tar stream ends in the middle of an entry",
    );
    check(
        "truncated gzip",
        &gzip[..gzip.len() / 2],
        "read failed at byte",
    );
    check(
        "xz",
        &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2],
        "the archive is xz-compressed",
    );
    let mut corrupt = good.clone();
    corrupt[0] ^= 0x55; // the name changes, the checksum does not
    check("corrupt header", &corrupt, "bad checksum");
    check(
        "root as a file",
        &tar_of(&[(".", EntryKind::Regular, "")]),
        "names the top directory but is not a directory",
    );
}

#[test]
fn refuses_a_target_that_is_not_empty() {
    let t = tempfile::tempdir().unwrap();
    let (src, data) = (folder(&t, "src"), folder(&t, "data"));
    fs::write(src.join("new"), b"new").unwrap();
    fs::write(data.join("kept"), b"old").unwrap();
    let tar = export_to_vec(&src);
    let err = backup::import(&mut &tar[..], &data).unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot import into volume data at {}: it is not empty; import into a new volume",
            data.display()
        )
    );
    let err = backup::clone_tree(&src, &data).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot clone into volume data at {}: it is not empty; clone into a new volume",
            data.display()
        )
    );
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"old");
    assert!(!data.join("new").exists());
}

#[test]
fn a_missing_folder_is_named() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    let err = backup::export(&missing, &mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot open volume data at {}: ",
            missing.display()
        )),
        "{err}"
    );
}

/// Runs `tool` (gzip, zstd) over `data`.
fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn gzip_and_zstd_archives_are_recognised() {
    let t = tempfile::tempdir().unwrap();
    let src = folder(&t, "src");
    fixture(&src, false);
    let expected = snapshot(&src, false);
    let tar = export_to_vec(&src);
    for tool in ["gzip", "zstd"] {
        let data = folder(&t, tool);
        backup::import(&mut &compress(tool, &tar)[..], &data).unwrap();
        assert_same_trees(&expected, &snapshot(&data, false));
    }
}

// --- clone ------------------------------------------------------------------

#[test]
fn clone_keeps_everything_and_is_independent() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (folder(&t, "src"), folder(&t, "dst"));
    fixture(&src, true);
    let before = snapshot(&src, true);
    let stats = backup::clone_tree(&src, &dst).unwrap();
    assert_eq!(stats.bytes, 3_000_000 + 24 + 10 + 9 + 21);
    assert_same_trees(&before, &snapshot(&dst, true));

    fs::write(dst.join("d/sub/big"), b"changed").unwrap();
    fs::write(dst.join("hard"), b"changed through the hardlink").unwrap();
    chmod(&dst.join("d"), 0o700);
    fs::write(dst.join("added"), b"only in the clone").unwrap();
    assert_same_trees(&before, &snapshot(&src, true));
    assert_eq!(
        fs::read(dst.join("d/file")).unwrap(),
        b"changed through the hardlink"
    );
}
