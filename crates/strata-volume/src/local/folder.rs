//! One volume's folder, `<dir>/<name>`: `_data` (what the driver mounts
//! and returns), `opts.json` (the record of a volume made with options)
//! and whatever its backing keeps beside them (`disk.img`).
//!
//! A folder is a volume when it holds `opts.json`, or, without one,
//! `_data` (a plain volume: the layout from before options existed, and
//! still the cheapest). Creating a volume with options writes `opts.json`
//! and then `_data` last, so a folder holding neither is an interrupted
//! create and never passes for a volume.

use std::collections::BTreeMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{LocalError, Result, io_err};
use super::image::IMAGE;
use super::options::{Fs, MountSpec};

const DATA: &str = "_data";
const RECORD: &str = "opts.json";
const RECORD_TEMP: &str = ".opts.json.tmp";

/// What `opts.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The options as given.
    pub options: BTreeMap<String, String>,
    pub backing: Backing,
}

/// How a volume with options keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Backing {
    /// `type`/`device`/`o`: mounted on `_data` at first mount.
    Mount(MountSpec),
    /// `size` by an image file with its own filesystem, mounted on
    /// `_data` through a loop device at first mount.
    Image { size: u64, fs: Fs },
    /// `size` by an xfs project quota on the folder; nothing to mount.
    Quota { size: u64, project: u32 },
}

impl Backing {
    /// Whether the volume has a kernel mount on `_data` while used.
    pub fn mounts(&self) -> bool {
        !matches!(self, Backing::Quota { .. })
    }
}

pub enum State {
    /// No folder, or an empty one.
    Missing,
    Plain,
    /// A create that did not finish.
    Incomplete,
    Made(Record),
}

pub struct Folder {
    pub root: PathBuf,
}

impl Folder {
    /// The folder of volume `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Result<Folder> {
        strata_mountspec::validate_volume_name(name)?;
        Ok(Folder {
            root: dir.join(name),
        })
    }

    pub fn data(&self) -> PathBuf {
        self.root.join(DATA)
    }

    pub fn image(&self) -> PathBuf {
        self.root.join(IMAGE)
    }

    pub fn state(&self) -> Result<State> {
        let path = self.root.join(RECORD);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(State::Made)
                .map_err(|source| LocalError::Record { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.unrecorded(),
            Err(e) => Err(io_err("reading", path)(e)),
        }
    }

    fn unrecorded(&self) -> Result<State> {
        if self.data().symlink_metadata().is_ok() {
            return Ok(State::Plain);
        }
        match std::fs::read_dir(&self.root) {
            Ok(mut entries) => Ok(match entries.next() {
                Some(_) => State::Incomplete,
                None => State::Missing,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::Missing),
            Err(e) => Err(io_err("reading", &self.root)(e)),
        }
    }

    /// Makes the folder (and the volumes folder) if missing.
    pub fn make_root(&self) -> Result<()> {
        make_dir(&self.root)
    }

    /// Makes `_data` (and the folders above it) if missing.
    pub fn make_data(&self) -> Result<()> {
        make_dir(&self.data())
    }

    /// Writes `opts.json` durably: temp file, fsync, rename, fsync folder.
    /// Owner-only, as options may hold credentials (cifs `password=`).
    pub fn write_record(&self, record: &Record) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).expect("a record serializes");
        let temp = self.root.join(RECORD_TEMP);
        let path = self.root.join(RECORD);
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            strata_store::fsutil::sync_dir(&self.root)
        };
        write().map_err(io_err("writing", &path))
    }

    /// Deletes the folder and everything in it; missing is fine.
    pub fn delete(&self) -> Result<()> {
        strata_store::fsutil::remove_any(&self.root).map_err(io_err("removing", &self.root))
    }
}

/// Makes `path` (mode 0755, as Docker's `_data`) and its parents.
fn make_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(io_err("creating", path))
}
