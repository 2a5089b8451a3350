//! What the local driver's tests share: a store with a database, the
//! driver on a volumes folder, and the volume service's side of the mount
//! protocol (rows in `volume_mounts`), done by hand.

// Each test binary uses part of this.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use strata_store::meta::Db;
use strata_store::meta::volumes::{self, VolumeRow};
use strata_volume::driver::{DriverResult, VolumeDriver};
use strata_volume::local::LocalDriver;

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub db: Rc<Db>,
    pub driver: LocalDriver,
}

impl Env {
    /// A driver on `<tmp>/volumes` (the host's filesystem).
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("volumes");
        Env::with_dir(tmp, dir)
    }

    /// A driver on `dir`, with its database in `tmp`.
    pub fn with_dir(tmp: tempfile::TempDir, dir: PathBuf) -> Env {
        let db = Rc::new(Db::open(&tmp.path().join("strata.db")).unwrap());
        let driver = LocalDriver::new(dir, db.clone());
        Env { tmp, db, driver }
    }

    pub fn folder(&self, name: &str) -> PathBuf {
        self.driver.dir().join(name)
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.folder(name).join("_data")
    }

    /// Creates volume `name` with `opts`, and records it as the service does.
    pub fn create(&self, name: &str, opts: &[(&str, &str)]) -> DriverResult<()> {
        let options: BTreeMap<String, String> = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.driver.create(name, &options)?;
        let row = VolumeRow {
            name: name.to_owned(),
            driver: "local".to_owned(),
            labels: BTreeMap::new(),
            options,
            anonymous: false,
            created: strata_store::meta::now(),
        };
        self.db.write(|tx| volumes::insert(tx, &row)).unwrap();
        Ok(())
    }

    /// Mounts for `caller`, then adds its row (the service's order).
    pub fn hold(&self, name: &str, caller: &str) -> PathBuf {
        let path = self.driver.mount(name, caller).unwrap();
        self.db
            .write(|tx| volumes::add_mount(tx, name, caller, false))
            .unwrap();
        path
    }

    /// Drops `caller`'s row, then unmounts (the service's order).
    pub fn release(&self, name: &str, caller: &str) {
        self.forget(name, caller);
        self.driver.unmount(name, caller).unwrap();
    }

    /// Drops `caller`'s row only, as a crash between the two would.
    pub fn forget(&self, name: &str, caller: &str) {
        self.db
            .write(|tx| volumes::drop_mount(tx, name, caller))
            .unwrap();
    }
}

impl Drop for Env {
    /// Unmounts whatever a test left mounted under its folder (deepest
    /// first) and detaches its loop devices, so a failed test leaves
    /// nothing behind.
    fn drop(&mut self) {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(self.tmp.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
        }
        // Raw volumes' loop devices have no mount to go with them.
        let under = self.tmp.path().to_string_lossy().into_owned();
        for line in sh("losetup", &["-n", "-O", "NAME,BACK-FILE"]).lines() {
            if let Some((device, backing)) = line.split_once(' ')
                && backing.trim().starts_with(&under)
            {
                let _ = Command::new("losetup").args(["-d", device]).status();
            }
        }
    }
}

/// Whether something is mounted at `path`, as util-linux sees it.
pub fn mounted(path: &Path) -> bool {
    Command::new("mountpoint")
        .arg("-q")
        .arg(path)
        .status()
        .unwrap()
        .success()
}

/// Writes `mib` MiB to `path` and syncs it; the first error.
pub fn fill(path: &Path, mib: usize) -> io::Result<()> {
    let mut file = File::create(path)?;
    let chunk = vec![0xa5u8; 1 << 20];
    for _ in 0..mib {
        file.write_all(&chunk)?;
    }
    file.sync_all()
}

/// Asserts that `result` failed with ENOSPC.
pub fn assert_no_space(result: io::Result<()>) {
    let err = result.expect_err("writing past the size must fail");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
}

/// Runs a command that must succeed; its stdout.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
