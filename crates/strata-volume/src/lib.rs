//! Volumes: data that outlives containers.
//!
//! The volume service. It keeps the records: which volumes exist, which
//! driver owns each (`volumes`), and who holds a mount of each
//! (`volume_mounts`, the reference counts). Drivers keep the data: the
//! built-in [`local::LocalDriver`] under `<root>/volumes/<name>`, plugins
//! wherever they like (see [`driver::VolumeDriver`]).
//!
//! Order of work, so a crash never leaves a record without its volume:
//! - create asks the driver first, then records (a crash in between leaves
//!   a local folder no record owns, which [`Volumes::check`] removes, or a
//!   plugin volume the plugin lists and `volume ls` shows);
//! - remove deletes the record, then asks the driver, and puts the record
//!   back if the driver refuses;
//! - mount asks the driver, then records the caller; unmount forgets the
//!   caller, then asks the driver. Both hold the volume's lock.
//!
//! A volume some container uses (running or not) or someone has mounted
//! cannot be removed: the check names the users, and the foreign keys
//! refuse it even if a caller forgot to check.

pub mod backup;
pub mod copy_up;
pub mod driver;
pub mod filter;
pub mod local;
pub mod served;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use serde::Serialize;
use strata_store::Layout;
use strata_store::lock::{LockMode, StoreLock};
use strata_store::meta::{Db, MetaError, volumes as meta};

pub use driver::{DriverError, Scope, VolumeDriver};
pub use filter::Filter;
pub use local::LocalDriver;

/// The built-in driver.
pub const LOCAL: &str = "local";
/// Docker's marker of anonymous volumes (`volume prune` relies on it).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(transparent)]
    Name(#[from] strata_mountspec::SpecError),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name} is in use by {users}; remove the container first (strata rm {first})")]
    InUse {
        name: String,
        users: String,
        first: String,
    },
    #[error(
        "volume {name} already exists with driver {existing}; remove it first or use driver {existing}"
    )]
    DriverMismatch { name: String, existing: String },
    #[error(
        "volume driver '{name}' is not available: no plugin of that name in {places}; start the plugin or use the built-in driver 'local'"
    )]
    UnknownDriver { name: String, places: String },
    #[error("volume driver '{name}' cannot be used: {source}")]
    Plugin { name: String, source: PluginError },
    #[error("volume {name} belongs to driver {driver}; only local volumes can do this")]
    NotLocal { name: String, driver: String },
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Backup(#[from] backup::BackupError),
    #[error(
        "invalid filter '{0}'; use dangling=true|false, name=TEXT, label=KEY[=VALUE] or driver=NAME"
    )]
    Filter(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
}

pub type Result<T, E = VolumeError> = std::result::Result<T, E>;

pub fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.into();
    move |source| VolumeError::Io { path, source }
}

/// Why an installed plugin cannot be used, in the plugin client's words.
pub type PluginError = Box<dyn std::error::Error + Send + Sync>;

/// Where third-party drivers come from: the plugin client, behind a seam
/// so this crate carries no transport.
pub trait Plugins {
    /// The plugin named `name`, or None if none is installed by that name;
    /// an error if one is, but cannot be used (a bad spec file, say).
    fn find(&self, name: &str) -> Result<Option<Rc<dyn VolumeDriver>>, PluginError>;
    /// The names of every installed plugin.
    fn scan(&self) -> Vec<String>;
    /// Where plugins are looked for, for messages.
    fn places(&self) -> String;
}

/// No plugins: the local driver only.
pub struct NoPlugins;

impl Plugins for NoPlugins {
    fn find(&self, _: &str) -> Result<Option<Rc<dyn VolumeDriver>>, PluginError> {
        Ok(None)
    }
    fn scan(&self) -> Vec<String> {
        Vec::new()
    }
    fn places(&self) -> String {
        "no plugin folder".into()
    }
}

/// A volume as `volume inspect` shows it (Docker's field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub mountpoint: PathBuf,
    pub scope: &'static str,
    pub created_at: String,
    /// What the driver says about it (`inspect` only): size and usage of
    /// a sized local volume, anything a plugin reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(skip)]
    pub anonymous: bool,
}

/// What `volume create` (or first use by a container) asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// None: an anonymous volume with a random name.
    pub name: Option<String>,
    /// None: `local`.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// Who holds a mount: one of our containers, or an orchestrator outside
/// Strata that tracks its own mounts, so reconcile leaves them alone (a
/// Docker daemon through `strata plugin serve`, a CSI node stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    Container(&'a str),
    External(&'a str),
}

impl Caller<'_> {
    fn id(&self) -> &str {
        match self {
            Caller::Container(id) | Caller::External(id) => id,
        }
    }
}

pub struct Volumes {
    db: Rc<Db>,
    local: Rc<LocalDriver>,
    plugins: Box<dyn Plugins>,
    /// Plugins used by this process, activated once each.
    activated: RefCell<BTreeMap<String, Rc<dyn VolumeDriver>>>,
}

impl Volumes {
    pub fn new(layout: &Layout, db: Rc<Db>, plugins: Box<dyn Plugins>) -> Volumes {
        let dir = layout.root().join("volumes");
        Volumes {
            local: Rc::new(LocalDriver::new(dir, db.clone())),
            db,
            plugins,
            activated: RefCell::new(BTreeMap::new()),
        }
    }

    /// The built-in driver, for what only it offers (raw block devices,
    /// growing).
    pub fn local(&self) -> &LocalDriver {
        &self.local
    }

    /// Grows local sized volume `name` to at least `size` bytes (its
    /// filesystem too, with `fs`) and returns its size.
    pub fn grow(&self, name: &str, size: u64, fs: bool) -> Result<u64> {
        let mut row = self.recorded(name)?;
        if row.driver != LOCAL {
            return Err(VolumeError::NotLocal {
                name: row.name,
                driver: row.driver,
            });
        }
        let _lock = self.lock(name)?;
        let now = self.local.grow(name, size)?;
        if fs {
            self.local.grow_fs(name)?;
        }
        row.options.insert("size".to_owned(), now.to_string());
        self.db
            .write(|tx| meta::set_options(tx, name, &row.options))?;
        Ok(now)
    }

    /// The driver called `name`.
    fn driver(&self, name: &str) -> Result<Rc<dyn VolumeDriver>> {
        if name == LOCAL {
            return Ok(self.local.clone());
        }
        if let Some(d) = self.activated.borrow().get(name) {
            return Ok(d.clone());
        }
        let d = self
            .plugins
            .find(name)
            .map_err(|source| VolumeError::Plugin {
                name: name.to_owned(),
                source,
            })?
            .ok_or_else(|| VolumeError::UnknownDriver {
                name: name.to_owned(),
                places: self.plugins.places(),
            })?;
        self.activated
            .borrow_mut()
            .insert(name.to_owned(), d.clone());
        Ok(d)
    }

    /// Creates a volume, or returns the existing one of that name if its
    /// driver matches (Docker: creating an existing volume is a no-op).
    pub fn create(&self, req: &CreateRequest) -> Result<Volume> {
        let driver_name = req.driver.as_deref().unwrap_or(LOCAL);
        let (name, anonymous) = match &req.name {
            Some(n) => {
                strata_mountspec::validate_volume_name(n)?;
                (n.clone(), false)
            }
            None => (strata_store::fsutil::random_hex(32), true),
        };
        if let Some(existing) = self.db.read(|tx| meta::get(tx, &name))? {
            // No driver asked for: whichever driver has it (`-v NAME:/x`).
            let wanted = req.driver.as_deref().unwrap_or(&existing.driver).to_owned();
            return self.reuse(existing, &wanted);
        }
        let driver = self.driver(driver_name)?;
        driver.create(&name, &req.options)?;
        strata_store::failpoint::hit("volume-create-after-driver");
        let mut labels = req.labels.clone();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
        }
        let row = meta::VolumeRow {
            name: name.clone(),
            driver: driver_name.to_owned(),
            labels,
            options: req.options.clone(),
            anonymous,
            created: strata_store::meta::now(),
        };
        let inserted = self.db.write(|tx| meta::insert(tx, &row));
        match inserted {
            Ok(true) => Ok(self.describe(row)),
            // Someone else created it meanwhile: theirs stands.
            Ok(false) => {
                let existing = self.recorded(&name)?;
                let wanted = req.driver.as_deref().unwrap_or(&existing.driver).to_owned();
                self.reuse(existing, &wanted)
            }
            Err(e) => {
                // Not recorded: the driver's volume must not linger.
                let _ = driver.remove(&name);
                Err(e.into())
            }
        }
    }

    fn reuse(&self, existing: meta::VolumeRow, driver: &str) -> Result<Volume> {
        if existing.driver != driver {
            return Err(VolumeError::DriverMismatch {
                name: existing.name,
                existing: existing.driver,
            });
        }
        Ok(self.describe(existing))
    }

    fn describe(&self, row: meta::VolumeRow) -> Volume {
        let mountpoint = if row.driver == LOCAL {
            self.local.data(&row.name)
        } else {
            PathBuf::new()
        };
        Volume {
            mountpoint,
            name: row.name,
            driver: row.driver,
            labels: row.labels,
            options: row.options,
            scope: Scope::Local.as_str(),
            created_at: row.created,
            status: None,
            anonymous: row.anonymous,
        }
    }

    /// The record of `name`, adopting a volume a plugin has that was not
    /// recorded here (made by the plugin's other clients), as Docker does.
    fn recorded(&self, name: &str) -> Result<meta::VolumeRow> {
        strata_mountspec::validate_volume_name(name)
            .map_err(|_| VolumeError::NotFound(name.to_owned()))?;
        if let Some(row) = self.db.read(|tx| meta::get(tx, name))? {
            return Ok(row);
        }
        for plugin in self.plugins.scan() {
            let Ok(driver) = self.driver(&plugin) else {
                continue;
            };
            if let Ok(Some(v)) = driver.get(name) {
                let row = plugin_row(&plugin, v);
                self.db.write(|tx| meta::insert(tx, &row))?;
                return Ok(row);
            }
        }
        Err(VolumeError::NotFound(name.to_owned()))
    }

    /// The volume as recorded, without asking its driver.
    pub fn get(&self, name: &str) -> Result<Volume> {
        Ok(self.describe(self.recorded(name)?))
    }

    /// The volume with what its driver says about it (`volume inspect`).
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        let mut v = self.get(name)?;
        let driver = self.driver(&v.driver)?;
        if let Some(d) = driver.get(name)? {
            if let Some(mp) = d.mountpoint {
                v.mountpoint = mp;
            }
            if !d.status.is_empty() {
                v.status = Some(d.status);
            }
        }
        v.scope = driver.capabilities()?.as_str();
        Ok(v)
    }

    /// Recorded volumes matching every filter, by name.
    pub fn list(&self, filters: &[Filter]) -> Result<Vec<Volume>> {
        let (rows, unused) = self
            .db
            .read(|tx| Ok((meta::list(tx)?, meta::unused(tx)?)))?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                let dangling = unused.binary_search(&r.name).is_ok();
                filter::all_keys_match(filters, Filter::key, |f| f.matches(r, dangling))
            })
            .map(|r| self.describe(r))
            .collect())
    }

    /// `volume ls`: recorded volumes and every plugin's, matching every
    /// filter; with a warning for each plugin that could not list.
    pub fn list_all(&self, filters: &[Filter]) -> Result<(Vec<Volume>, Vec<String>)> {
        let mut volumes = self.list(filters)?;
        let mut warnings = Vec::new();
        for plugin in self.plugins.scan() {
            let found = match self.driver(&plugin).and_then(|d| Ok(d.list()?)) {
                Ok(found) => found,
                Err(e) => {
                    warnings.push(e.to_string());
                    continue;
                }
            };
            for v in found {
                let row = plugin_row(&plugin, v);
                // Not recorded, so no container uses it: dangling.
                if !volumes.iter().any(|r| r.name == row.name)
                    && filter::all_keys_match(filters, Filter::key, |f| f.matches(&row, true))
                {
                    volumes.push(self.describe(row));
                }
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((volumes, warnings))
    }

    /// Removes a volume nobody uses or has mounted.
    pub fn remove(&self, name: &str) -> Result<()> {
        let row = self.recorded(name)?;
        let _lock = self.lock(name)?;
        let users = self.db.write(|tx| {
            let mut users = meta::users(tx, name)?;
            for caller in meta::mounts_of(tx, name)? {
                users.push((caller, String::new()));
            }
            if users.is_empty() {
                meta::delete(tx, name)?;
            }
            Ok(users)
        })?;
        if !users.is_empty() {
            return Err(in_use(name, &users));
        }
        let removed = self.driver(&row.driver).and_then(|d| Ok(d.remove(name)?));
        if let Err(e) = removed {
            // The data is still there: so is the record.
            let _ = self.db.write(|tx| meta::insert(tx, &row));
            return Err(e);
        }
        let _ = std::fs::remove_file(self.lock_path(name));
        Ok(())
    }

    /// `volume prune`: unused anonymous volumes (`all`: unused named ones
    /// too). Returns the names removed and the bytes freed. As Docker's,
    /// only the local driver's volumes made without options: a plugin's
    /// volumes are its own, and one that mounts from elsewhere (`type`,
    /// `device`) would free nothing here.
    pub fn prune(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in self.list(&[Filter::Dangling(true), Filter::Driver(LOCAL.to_owned())])? {
            if !(all || v.anonymous) || !v.options.is_empty() {
                continue;
            }
            let bytes = self.size(&v).unwrap_or(0);
            match self.remove(&v.name) {
                Ok(()) => {
                    freed += bytes;
                    removed.push(v.name);
                }
                // Taken by a container since the listing: it stays.
                Err(VolumeError::InUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, freed))
    }

    /// `system df`: each recorded volume with the number of containers
    /// using it and its size.
    pub fn usage(&self) -> Result<Vec<(Volume, usize, u64)>> {
        let mut rows = Vec::new();
        for v in self.list(&[])? {
            let links = self.db.read(|tx| meta::users(tx, &v.name))?.len();
            let bytes = self.size(&v)?;
            rows.push((v, links, bytes));
        }
        Ok(rows)
    }

    /// Bytes a local volume's files take (walks them, as Docker does; a
    /// sized volume reports what its filesystem has in use).
    pub fn size(&self, v: &Volume) -> Result<u64> {
        if v.driver != LOCAL {
            return Ok(0);
        }
        if let Some((used, _)) = self.local.usage(&v.name)? {
            return Ok(used);
        }
        let data = self.local.data(&v.name);
        strata_archive::fsops::disk_usage(&data)
            .map(|(bytes, _)| bytes)
            .map_err(io_at(&data))
    }

    /// Mounts `name` for `caller` and returns where its data is. Each
    /// caller holds one mount until [`Volumes::unmount`].
    pub fn mount(&self, name: &str, caller: Caller) -> Result<PathBuf> {
        let row = self.recorded(name)?;
        let _lock = self.lock(name)?;
        let driver = self.driver(&row.driver)?;
        let held = self.db.read(|tx| meta::mounts_of(tx, name))?;
        if held.iter().any(|c| c == caller.id())
            && let Some(path) = driver.path(name)?
        {
            return Ok(path);
        }
        let path = driver.mount(name, caller.id())?;
        let plugin = matches!(caller, Caller::External(_));
        let recorded = self
            .db
            .write(|tx| meta::add_mount(tx, name, caller.id(), plugin));
        if let Err(e) = recorded {
            let _ = driver.unmount(name, caller.id());
            return Err(e.into());
        }
        strata_store::failpoint::hit("volume-after-mount");
        Ok(path)
    }

    /// Gives up `caller`'s mount of `name` (nothing if it held none).
    pub fn unmount(&self, name: &str, caller: &str) -> Result<()> {
        let _lock = self.lock(name)?;
        if !self.db.write(|tx| meta::drop_mount(tx, name, caller))? {
            return Ok(());
        }
        let driver_name = self.db.read(|tx| meta::get(tx, name))?.map(|r| r.driver);
        let driver = self.driver(driver_name.as_deref().unwrap_or(LOCAL))?;
        Ok(driver.unmount(name, caller)?)
    }

    /// Gives up every mount `caller` holds; reports the first failure
    /// after trying them all.
    pub fn release(&self, caller: &str) -> Result<()> {
        let held = self.db.read(|tx| meta::all_mounts(tx))?;
        let mut first = Ok(());
        for (volume, _, _) in held.iter().filter(|(_, c, _)| c == caller) {
            if let Err(e) = self.unmount(volume, caller)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// Runs `f` with the volume's data mounted, for work on a volume no
    /// container may be running with (export, import, clone, copy-up).
    pub fn with_mounted<T>(
        &self,
        name: &str,
        f: impl FnOnce(&std::path::Path) -> Result<T>,
    ) -> Result<T> {
        let caller = format!(
            "{WORK_CALLER}{}-{}",
            std::process::id(),
            strata_store::fsutil::random_hex(4)
        );
        let path = self.mount(name, Caller::Container(&caller))?;
        let result = f(&path);
        let unmounted = self.unmount(name, &caller);
        let value = result?;
        unmounted?;
        Ok(value)
    }

    /// Stale mounts: container callers that are not `alive` (killed
    /// before they could unmount), and local volumes mounted with nobody
    /// holding them. With `repair`, releases them. Returns what it found.
    pub fn check_mounts(&self, alive: &dyn Fn(&str) -> bool, repair: bool) -> Result<Vec<String>> {
        let held = self.db.read(|tx| meta::all_mounts(tx))?;
        let mut found = Vec::new();
        for (volume, caller, plugin) in held {
            if plugin || alive(&caller) || work_alive(&caller) {
                continue;
            }
            if repair {
                self.unmount(&volume, &caller)?;
            }
            found.push(format!(
                "volume {volume} is still mounted for {caller}, which is gone"
            ));
        }
        if repair {
            for name in self.local.reconcile()? {
                found.push(format!("volume {name} was mounted with nobody using it"));
            }
        }
        Ok(found)
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.local.dir().join(".locks").join(name)
    }

    /// The volume's lock, serializing mount, unmount and remove across
    /// processes (released when dropped, or when the process dies).
    fn lock(&self, name: &str) -> Result<StoreLock> {
        let path = self.lock_path(name);
        let mut lock = match StoreLock::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = self.local.dir().join(".locks");
                std::fs::create_dir_all(&parent).map_err(io_at(&parent))?;
                StoreLock::open(&path)
            }
            other => other,
        }
        .map_err(io_at(&path))?;
        lock.acquire(LockMode::Exclusive, || {})
            .map_err(io_at(&path))?;
        Ok(lock)
    }

    /// Volume folders no record owns (a crash during `create` or `rm`);
    /// with `repair`, removes them. Returns what it found.
    pub fn check(&self, repair: bool) -> Result<Vec<PathBuf>> {
        let dir = self.local.dir();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(dir)(e)),
        };
        let known: Vec<String> = self
            .db
            .read(|tx| meta::list(tx))?
            .into_iter()
            .map(|r| r.name)
            .collect();
        let mut orphans = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_at(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Lock files live beside the volumes; no volume name starts with a dot.
            if name.starts_with('.') || known.contains(&name) {
                continue;
            }
            if repair {
                self.local.remove(&name)?;
            }
            orphans.push(entry.path());
        }
        Ok(orphans)
    }
}

/// The record of a volume a plugin has that was not made through us.
fn plugin_row(plugin: &str, v: driver::DriverVolume) -> meta::VolumeRow {
    meta::VolumeRow {
        name: v.name,
        driver: plugin.to_owned(),
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        anonymous: false,
        created: v.created_at.unwrap_or_else(strata_store::meta::now),
    }
}

/// How [`Volumes::with_mounted`] names its caller: the prefix, then the
/// process ID, so a check can tell whether the work is still going on.
const WORK_CALLER: &str = "strata-work-";

fn work_alive(caller: &str) -> bool {
    caller
        .strip_prefix(WORK_CALLER)
        .and_then(|rest| rest.split('-').next())
        .is_some_and(|pid| std::path::Path::new("/proc").join(pid).exists())
}

fn in_use(name: &str, users: &[(String, String)]) -> VolumeError {
    let listed: Vec<String> = users
        .iter()
        .map(|(id, n)| {
            if n.is_empty() {
                format!("mount {id}")
            } else {
                format!("container {n} ({})", &id[..12.min(id.len())])
            }
        })
        .collect();
    let first = users
        .iter()
        .find(|(_, n)| !n.is_empty())
        .map_or_else(|| users[0].0.clone(), |(_, n)| n.clone());
    VolumeError::InUse {
        name: name.to_owned(),
        users: listed.join(", "),
        first,
    }
}
