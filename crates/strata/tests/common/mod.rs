//! Shared by the CLI test binaries: run the real `strata` binary (as root,
//! real mounts) against a private store, build test archives byte by byte,
//! and compare filesystem trees. Each test binary uses part of it.
#![allow(dead_code)]

pub mod archive;
pub mod csi;
pub mod dockerd;
pub mod kube;
pub mod plugin;
pub mod server;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A private store and a scratch folder, removed (and unmounted) on drop.
pub struct Strata {
    pub root: PathBuf,
    pub work: PathBuf,
    driver: Option<String>,
    /// Set in every command's environment.
    pub env: Vec<(String, String)>,
    dir: TempDir,
}

impl Strata {
    pub fn new() -> Strata {
        Strata::with_driver(None)
    }

    /// A store made with (and opened with) `--storage-driver driver`.
    pub fn with_driver(driver: Option<&str>) -> Strata {
        // On disk, not tmpfs: the same filesystem a real store lives on.
        let dir = tempfile::Builder::new()
            .prefix("strata-test-")
            .tempdir_in("/var/tmp")
            .expect("temp dir");
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Strata {
            root,
            work,
            driver: driver.map(str::to_owned),
            env: Vec::new(),
            dir,
        }
    }

    /// A path in the scratch folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.arg("--root").arg(&self.root);
        if let Some(d) = &self.driver {
            cmd.arg("--storage-driver").arg(d);
        }
        cmd.args(args)
            .env_remove("STRATA_FAILPOINT")
            .env("STRATA_PLUGIN_DIRS", self.plugin_dirs())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Where this store's `strata` looks for volume plugins: its own
    /// folders, so one test's plugins are not every test's.
    pub fn plugin_dirs(&self) -> String {
        format!(
            "{}:{}",
            self.plugin_sockets().display(),
            self.dir.path().join("plugins/etc").display()
        )
    }

    /// The socket folder of [`Strata::plugin_dirs`] (made on demand).
    pub fn plugin_sockets(&self) -> PathBuf {
        let dir = self.dir.path().join("plugins/run");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The first spec folder of [`Strata::plugin_dirs`] (made on demand).
    pub fn plugin_specs(&self) -> PathBuf {
        let dir = self.dir.path().join("plugins/etc");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run strata")
    }

    /// Runs a command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        stdout_of(&mut self.command(args))
    }

    /// Runs a command that must fail cleanly (exit 1, or Docker's 125 for
    /// `run`; an `Error:` line, no panic); its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let status = match args {
            ["run", ..] | ["container", "run", ..] => 125,
            _ => 1,
        };
        assert_eq!(
            out.status.code(),
            Some(status),
            "strata {args:?} should fail with exit {status}:\n{stderr}"
        );
        assert!(stderr.starts_with("Error: "), "no clear error: {stderr}");
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        stderr
    }

    /// Marks left in `writers/`: by writers at work, or by ones that died.
    pub fn writer_marks(&self) -> usize {
        std::fs::read_dir(self.root.join("writers")).map_or(0, |d| d.count())
    }

    /// What waits in the trash to be deleted.
    pub fn trash_entries(&self) -> usize {
        std::fs::read_dir(self.root.join("trash")).map_or(0, |d| d.count())
    }

    /// Waits (up to 10 s) for the trash to empty. `run --rm` returns
    /// before its monitor deletes what the removal put there, so a state
    /// taken at once would catch that delete in flight, and two states
    /// taken around a refusal would differ by it. Trash that stays is
    /// left for the comparison to show.
    pub fn wait_for_the_trash(&self) {
        wait_until(std::time::Duration::from_secs(10), || {
            self.trash_entries() == 0
        });
    }

    /// `image inspect` as JSON.
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", image]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// The image ID and diff IDs of an image.
    pub fn id_and_diffs(&self, image: &str) -> (String, Vec<String>) {
        let v = self.inspect(image);
        let diffs = v["RootFS"]["Layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect();
        (v["Id"].as_str().unwrap().to_owned(), diffs)
    }

    /// Mounts an image read-only; its filesystem as a tree.
    pub fn image_tree(&self, image: &str) -> tree::Tree {
        let path = self.ok(&["image", "mount", image]);
        let t = tree::Tree::of(Path::new(path.trim()));
        self.ok(&["image", "unmount", image]);
        t
    }

    /// Everything a failed command must leave as it was. Taken once the
    /// trash has emptied ([`Strata::wait_for_the_trash`]).
    pub fn state(&self) -> StoreState {
        self.wait_for_the_trash();
        let snapshots = ["overlay", "vfs"]
            .iter()
            .flat_map(|d| listing(self.root.join(d).join("snapshots")))
            .collect();
        // Every field of every image but the one that changes with the
        // clock ("1 second ago"), so equal states compare equal.
        let images = self
            .ok(&["images", "--no-trunc", "--format", "json"])
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("images JSON");
                v.as_object_mut().expect("an object").remove("CreatedSince");
                v.to_string() + "\n"
            })
            .collect();
        StoreState {
            images,
            snapshots,
            blobs: listing(self.root.join("content/blobs/sha256")),
            ingest: listing(self.root.join("content/ingest")),
            tmp: listing(self.root.join("tmp")),
            trash: listing(self.root.join("trash")),
            // Lock files (dot names) come and go with any volume command.
            volumes: listing(self.root.join("volumes"))
                .into_iter()
                .filter(|n| !n.starts_with('.'))
                .collect(),
            volume_records: self.ok(&["volume", "ls", "-q"]),
            containers: listing(self.root.join("containers")),
            check: self.ok(&["system", "check"]),
        }
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        // Containers a failed test left running, with their monitors.
        if let Ok(out) = self.command(&["ps", "-q", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.command(&["rm", "-f", id]).output();
            }
        }
        unmount_below(self.dir.path());
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct StoreState {
    pub images: String,
    pub snapshots: Vec<String>,
    pub blobs: Vec<String>,
    pub ingest: Vec<String>,
    pub tmp: Vec<String>,
    pub trash: Vec<String>,
    pub volumes: Vec<String>,
    pub volume_records: String,
    pub containers: Vec<String>,
    pub check: String,
}

/// The names in a folder, sorted; none if it is missing.
pub fn listing(dir: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Checks `cond` every 20 ms until it holds (true) or `limit` has passed
/// (false).
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while !cond() {
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Waits (up to 10 s) for a server to make its socket at `path`.
pub fn wait_for_socket(path: &Path) {
    assert!(
        wait_until(std::time::Duration::from_secs(10), || path.exists()),
        "nothing listened on {}",
        path.display()
    );
}

/// Mount points at or below `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Detaches every mount at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let mut points = mounts_under(dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

/// Fails (never skips) when a peer tool the tests need is missing.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed; run scripts/setup (or .ci/run) first"
    );
}

/// The repository's root (for scripts/containers.conf).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A podman with a private store, configured for this machine.
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        require("podman");
        Podman {
            dir: tempfile::Builder::new()
                .prefix("strata-podman-")
                .tempdir_in("/var/tmp")
                .unwrap(),
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let d = self.dir.path();
        let out = Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env(
                "CONTAINERS_CONF",
                repo_root().join("scripts/containers.conf"),
            )
            .output()
            .expect("run podman");
        assert!(
            out.status.success(),
            "podman {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        unmount_below(self.dir.path());
    }
}

/// Runs `cmd` with `input` on its stdin; its output. A broken pipe (the
/// command stopped reading, or died) is not an error: what it read is what
/// counts.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let _ = child.stdin.take().expect("piped").write_all(input);
    child.wait_with_output().expect("wait")
}

/// Runs `cmd`, which must succeed; its stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs a tool that must succeed; its stdout.
pub fn tool(program: &str, args: &[&str]) -> String {
    require(program);
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
