//! The built-in `local` driver: Docker's, with sizes that work anywhere.
//!
//! A volume is a folder `<dir>/<name>` whose `_data` is what containers
//! get (see [`folder`] for what else it holds). Options choose what
//! `_data` is:
//! - none: a plain folder; mount and unmount do nothing else;
//! - `type`/`device`/`o`: a kernel mount on `_data`, made at the first
//!   mount and undone at the last (tmpfs, bind, block devices, nfs);
//! - `size` (and `fs`): on xfs with project quotas, a project quota on the
//!   folder; elsewhere an image file with its own filesystem, mounted
//!   through a loop device at the first mount.
//!
//! The volume service records who holds a mount (`volume_mounts`): it
//! calls [`VolumeDriver::mount`] before adding its row and removes the row
//! before [`VolumeDriver::unmount`], under a per-volume lock. So mount
//! makes the kernel mount unless `_data` already is one, and unmount undoes
//! it once no row is left.

mod block;
mod command;
mod create;
mod error;
mod folder;
mod image;
mod loopdev;
mod mount;
mod options;
mod quota;
mod reconcile;
mod resize;
mod status;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use strata_store::meta::{Db, volumes};

use crate::driver::{DriverResult, DriverVolume, Scope, VolumeDriver};
use folder::{Backing, Folder, Record, State};

pub use error::LocalError;

use error::{Result, io_err};

/// The driver's name (`-d local`).
pub const NAME: &str = "local";

/// Most mounts stacked on one `_data` that removal takes off.
const MAX_STACKED: usize = 8;

pub struct LocalDriver {
    dir: PathBuf,
    db: Rc<Db>,
}

impl LocalDriver {
    /// The driver of the volumes in `dir` (`<root>/volumes`).
    pub fn new(dir: PathBuf, db: Rc<Db>) -> LocalDriver {
        LocalDriver { dir, db }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where volume `name`'s data is (its mount point when it has one).
    pub fn data(&self, name: &str) -> PathBuf {
        Folder {
            root: self.dir.join(name),
        }
        .data()
    }

    fn folder(&self, name: &str) -> Result<Folder> {
        Folder::new(&self.dir, name)
    }

    /// Who holds a mount of `name`, as the volume service recorded it.
    fn callers(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.db.read(|tx| volumes::mounts_of(tx, name))?)
    }

    fn mount_volume(&self, name: &str) -> Result<PathBuf> {
        let folder = self.folder(name)?;
        let data = folder.data();
        match folder.state()? {
            State::Plain => {}
            State::Missing => folder.make_data()?,
            State::Incomplete => return Err(LocalError::Incomplete(name.to_owned())),
            State::Made(record) if block::is_raw(&record) => return self.attach(&folder),
            State::Made(record) => {
                folder.make_data()?;
                if record.backing.mounts() && !is_mountpoint(&data)? {
                    mount_backing(&folder, &record.backing)?;
                }
            }
        }
        Ok(data)
    }

    /// Where `name`'s data is: `_data`, or a raw volume's loop device.
    fn path_of(&self, name: &str) -> Result<Option<PathBuf>> {
        let folder = self.folder(name)?;
        match folder.state()? {
            State::Made(record) if block::is_raw(&record) => self.attached(&folder),
            _ => Ok(Some(folder.data())),
        }
    }

    /// Where volume `name`'s image is (sized volumes without a quota).
    pub fn image(&self, name: &str) -> PathBuf {
        Folder {
            root: self.dir.join(name),
        }
        .image()
    }

    fn unmount_volume(&self, name: &str) -> Result<()> {
        let folder = self.folder(name)?;
        let State::Made(record) = folder.state()? else {
            return Ok(());
        };
        if block::is_raw(&record) {
            return match self.callers(name)?.is_empty() {
                true => self.detach(&folder),
                false => Ok(()),
            };
        }
        let data = folder.data();
        if record.backing.mounts() && self.callers(name)?.is_empty() && is_mountpoint(&data)? {
            mount::unmount(&data)?;
        }
        Ok(())
    }

    fn remove_volume(&self, name: &str) -> Result<()> {
        let folder = self.folder(name)?;
        let record = match folder.state()? {
            State::Missing => return folder.delete(),
            State::Incomplete => return self.discard(&folder),
            State::Plain => None,
            State::Made(record) => Some(record),
        };
        self.release(name, &folder)?;
        if record.as_ref().is_some_and(block::is_raw) {
            self.detach(&folder)?;
        }
        if let Some(Record {
            backing: Backing::Quota { project, .. },
            ..
        }) = record
        {
            quota::set_limit(&self.dir, project, 0)
                .map_err(io_err("dropping the project quota of", &folder.root))?;
        }
        folder.delete()
    }

    /// Takes whatever is mounted on the volume's `_data` off, unless a
    /// caller still holds it: deleting through a mount would delete the
    /// mounted data (a bind mount's host folder).
    fn release(&self, name: &str, folder: &Folder) -> Result<()> {
        let data = folder.data();
        for _ in 0..MAX_STACKED {
            if !is_mountpoint(&data)? {
                return Ok(());
            }
            let callers = self.callers(name)?;
            if !callers.is_empty() {
                return Err(LocalError::InUse {
                    name: name.to_owned(),
                    callers: callers.join(", "),
                });
            }
            mount::unmount(&data)?;
        }
        Err(io_err("unmounting", &data)(io::Error::other(
            "still mounted after repeated unmounts",
        )))
    }

    /// Deletes a folder that is not (or no longer) a volume, with the
    /// project quota limit an interrupted create may have set.
    fn discard(&self, folder: &Folder) -> Result<()> {
        if quota::enforced(&self.dir) {
            let project = quota::project_of(&folder.root).unwrap_or(0);
            let base = quota::project_of(&self.dir).unwrap_or(0);
            if project != 0 && project != base {
                let _ = quota::set_limit(&self.dir, project, 0);
            }
        }
        folder.delete()
    }
}

fn is_mountpoint(path: &Path) -> Result<bool> {
    strata_store::fsutil::is_mount_point(path).map_err(io_err("checking for a mount on", path))
}

fn mount_backing(folder: &Folder, backing: &Backing) -> Result<()> {
    match backing {
        Backing::Mount(spec) => mount::mount_spec(spec, &folder.data()),
        Backing::Image { fs, .. } => image::mount(&folder.image(), *fs, &folder.data()),
        Backing::Quota { .. } => Ok(()),
    }
}

impl VolumeDriver for LocalDriver {
    fn name(&self) -> &str {
        NAME
    }

    fn create(&self, name: &str, opts: &BTreeMap<String, String>) -> DriverResult<()> {
        self.create_volume(name, opts)
            .map_err(|e| e.at("VolumeDriver.Create"))
    }

    fn remove(&self, name: &str) -> DriverResult<()> {
        self.remove_volume(name)
            .map_err(|e| e.at("VolumeDriver.Remove"))
    }

    fn mount(&self, name: &str, _id: &str) -> DriverResult<PathBuf> {
        self.mount_volume(name)
            .map_err(|e| e.at("VolumeDriver.Mount"))
    }

    fn unmount(&self, name: &str, _id: &str) -> DriverResult<()> {
        self.unmount_volume(name)
            .map_err(|e| e.at("VolumeDriver.Unmount"))
    }

    fn path(&self, name: &str) -> DriverResult<Option<PathBuf>> {
        self.path_of(name).map_err(|e| e.at("VolumeDriver.Path"))
    }

    fn get(&self, name: &str) -> DriverResult<Option<DriverVolume>> {
        self.describe(name).map_err(|e| e.at("VolumeDriver.Get"))
    }

    fn list(&self) -> DriverResult<Vec<DriverVolume>> {
        self.describe_all().map_err(|e| e.at("VolumeDriver.List"))
    }

    fn capabilities(&self) -> DriverResult<Scope> {
        Ok(Scope::Local)
    }
}
