//! Volumes: data that outlives containers.
//!
//! This scope is Docker's `local` driver without options: a volume
//! is a folder `<root>/volumes/<name>/_data`. The record in the `volumes`
//! table is the truth; the folder follows it:
//! - create records first, then makes the folder (a crash in between
//!   leaves a record whose folder is made again on first use);
//! - remove deletes the record, then the folder (a crash in between leaves
//!   a folder no record owns, which [`Volumes::check`] removes).
//!
//! A volume some container uses (running or not) cannot be removed: the
//! check names the containers, and the `container_volumes` foreign key
//! refuses it even if a caller forgot to check.

pub mod copy_up;
pub mod filter;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use serde::Serialize;
use strata_store::Layout;
use strata_store::meta::{Db, MetaError, volumes as meta};

pub use filter::Filter;

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
    #[error(
        "volume {name} is in use by container {users}; remove the container first (strata rm {first})"
    )]
    InUse {
        name: String,
        users: String,
        first: String,
    },
    #[error(
        "volume {name} already exists with driver {existing}; remove it first or use driver {existing}"
    )]
    DriverMismatch { name: String, existing: String },
    #[error("volume driver '{0}' is not available; the built-in driver is 'local'")]
    UnknownDriver(String),
    #[error(
        "the local driver does not take option '{0}' yet; create the volume without --opt (mounting devices and tmpfs comes with volume drivers)"
    )]
    UnsupportedOption(String),
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

/// A volume as `volume inspect` shows it (Docker's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub mountpoint: PathBuf,
    pub scope: &'static str,
    pub created_at: String,
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

pub struct Volumes {
    dir: PathBuf,
    db: Rc<Db>,
}

impl Volumes {
    pub fn new(layout: &Layout, db: Rc<Db>) -> Volumes {
        Volumes {
            dir: layout.root().join("volumes"),
            db,
        }
    }

    /// Where the volume's data is.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name if its
    /// driver matches (Docker: creating an existing volume is a no-op).
    pub fn create(&self, req: &CreateRequest) -> Result<Volume> {
        let driver = req.driver.as_deref().unwrap_or(LOCAL);
        if driver != LOCAL {
            return Err(VolumeError::UnknownDriver(driver.to_owned()));
        }
        if let Some(key) = req.options.keys().next() {
            return Err(VolumeError::UnsupportedOption(key.clone()));
        }
        let (name, anonymous) = match &req.name {
            Some(n) => {
                strata_mountspec::validate_volume_name(n)?;
                (n.clone(), false)
            }
            None => (strata_store::fsutil::random_hex(32), true),
        };
        let mut labels = req.labels.clone();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
        }
        let row = meta::VolumeRow {
            name: name.clone(),
            driver: driver.to_owned(),
            labels,
            options: req.options.clone(),
            anonymous,
            created: strata_store::meta::now(),
        };
        let existing = self.db.write(|tx| {
            if meta::insert(tx, &row)? {
                Ok(None)
            } else {
                meta::get(tx, &name)
            }
        })?;
        if let Some(existing) = existing {
            if existing.driver != driver {
                return Err(VolumeError::DriverMismatch {
                    name,
                    existing: existing.driver,
                });
            }
            return self.materialize(existing);
        }
        self.materialize(row).inspect_err(|_| {
            let _ = self.db.write(|tx| meta::delete(tx, &name));
        })
    }

    /// The volume's folder made if missing, and its description.
    fn materialize(&self, row: meta::VolumeRow) -> Result<Volume> {
        let data = self.mountpoint(&row.name);
        if !data.is_dir() {
            std::fs::create_dir_all(&data).map_err(io_at(&data))?;
        }
        Ok(self.describe(row))
    }

    fn describe(&self, row: meta::VolumeRow) -> Volume {
        Volume {
            mountpoint: self.mountpoint(&row.name),
            name: row.name,
            driver: row.driver,
            labels: row.labels,
            options: row.options,
            scope: "local",
            created_at: row.created,
            anonymous: row.anonymous,
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        strata_mountspec::validate_volume_name(name)
            .map_err(|_| VolumeError::NotFound(name.to_owned()))?;
        let row = self
            .db
            .read(|tx| meta::get(tx, name))?
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))?;
        Ok(self.describe(row))
    }

    /// Volumes matching every filter, by name.
    pub fn list(&self, filters: &[Filter]) -> Result<Vec<Volume>> {
        let (rows, unused) = self
            .db
            .read(|tx| Ok((meta::list(tx)?, meta::unused(tx)?)))?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                let dangling = unused.binary_search(&r.name).is_ok();
                filters.iter().all(|f| f.matches(r, dangling))
            })
            .map(|r| self.describe(r))
            .collect())
    }

    /// Removes a volume no container uses.
    pub fn remove(&self, name: &str) -> Result<()> {
        let volume = self.get(name)?;
        let users = self.db.write(|tx| {
            let users = meta::users(tx, name)?;
            if users.is_empty() {
                meta::delete(tx, name)?;
            }
            Ok(users)
        })?;
        if let Some((_, first)) = users.first() {
            let listed: Vec<String> = users
                .iter()
                .map(|(id, n)| format!("{n} ({})", &id[..12]))
                .collect();
            return Err(VolumeError::InUse {
                name: name.to_owned(),
                users: listed.join(", "),
                first: first.clone(),
            });
        }
        self.remove_files(&volume.name)
    }

    fn remove_files(&self, name: &str) -> Result<()> {
        let dir = self.dir.join(name);
        match strata_store::fsutil::remove_any(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_at(&dir)(e)),
            _ => Ok(()),
        }
    }

    /// `volume prune`: unused anonymous volumes (`all`: unused named ones
    /// too). Returns the names removed and the bytes freed.
    pub fn prune(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in self.list(&[Filter::Dangling(true)])? {
            if !(all || v.anonymous) {
                continue;
            }
            let bytes = self.size(&v.name).unwrap_or(0);
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

    /// Bytes the volume's files take (walks them, as Docker does).
    pub fn size(&self, name: &str) -> Result<u64> {
        let data = self.mountpoint(name);
        strata_archive::fsops::disk_usage(&data)
            .map(|(bytes, _)| bytes)
            .map_err(io_at(&data))
    }

    /// Volume folders no record owns (a crash during `rm`); with `repair`,
    /// removes them. Returns what it found.
    pub fn check(&self, repair: bool) -> Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(&self.dir)(e)),
        };
        let known: Vec<String> = self
            .db
            .read(|tx| meta::list(tx))?
            .into_iter()
            .map(|r| r.name)
            .collect();
        let mut orphans = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_at(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                if repair {
                    self.remove_files(&name)?;
                }
                orphans.push(entry.path());
            }
        }
        Ok(orphans)
    }
}
