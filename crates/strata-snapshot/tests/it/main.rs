//! Storage drivers against real directories and real mounts (root).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use strata_snapshot::mount::mount;
use strata_snapshot::{Kind, Mount, Options, SnapshotError, Snapshotter, select};
use strata_store::meta::Db;

mod drivers;
mod selection;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: Rc<Db>,
}

impl Default for Env {
    fn default() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = Rc::new(Db::open(&dir.path().join("strata.db")).unwrap());
        Env { dir, db }
    }
}

impl Env {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn driver(&self, name: &str) -> Box<dyn Snapshotter> {
        select::open(self.root(), self.root(), self.db.clone(), Some(name)).unwrap()
    }

    pub fn mountpoint(&self, name: &str) -> PathBuf {
        let p = self.root().join("mnt").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

/// The directory to write a layer's files into, from prepare's mounts.
pub fn upper_of(mounts: &[Mount]) -> PathBuf {
    match &mounts[0] {
        Mount::Bind { source, .. } => source.clone(),
        Mount::Overlay { upper: Some(u), .. } => u.clone(),
        m => panic!("not writable: {m:?}"),
    }
}

/// Commits a layer holding `files` on `parent`, written through a mount.
pub fn layer(
    s: &dyn Snapshotter,
    env: &Env,
    name: &str,
    parent: Option<&str>,
    files: &[(&str, &str)],
) {
    let key = format!("extract-{name}");
    let mounts = s.prepare(&key, parent, &Options::default()).unwrap();
    let mnt = env.mountpoint(&key);
    let m = mount(&mounts, &mnt).unwrap();
    for (path, content) in files {
        let p = mnt.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    m.unmount().unwrap();
    s.commit(name, &key).unwrap();
}

pub fn is_not_found(e: &SnapshotError) -> bool {
    matches!(e, SnapshotError::NotFound(_))
}

pub fn kind(s: &dyn Snapshotter, key: &str) -> Kind {
    s.stat(key).unwrap().kind
}
