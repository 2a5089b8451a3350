//! After a crash: kernel mounts nobody holds, and loop devices left on
//! our images.
//!
//! A volume whose `_data` is mounted while `volume_mounts` has no row for
//! it lost its last caller without an unmount (the process died), so it is
//! unmounted. A loop device backed by one of our images whose volume is
//! not mounted is detached (autoclear makes that rare: only a device
//! something else still holds open). A volume with rows but no mount is
//! fine as it is: its next mount mounts it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use strata_store::meta::volumes;

use crate::driver::DriverResult;

use super::error::{Result, io_err};
use super::folder::State;
use super::image::IMAGE;
use super::{LocalDriver, is_mountpoint, loopdev, mount};

impl LocalDriver {
    /// Cleans up after a crash; returns the volumes it cleaned up after.
    pub fn reconcile(&self) -> DriverResult<Vec<String>> {
        let cleaned = self
            .unmount_orphans()
            .and_then(|mut names| {
                names.extend(self.detach_orphans()?);
                Ok(names)
            })
            .map_err(|e| e.at("reconcile"))?;
        let unique: BTreeSet<String> = cleaned.into_iter().collect();
        Ok(unique.into_iter().collect())
    }

    /// Unmounts volumes nobody holds; returns their names.
    fn unmount_orphans(&self) -> Result<Vec<String>> {
        let held: BTreeSet<String> = self
            .db
            .read(|tx| volumes::all_mounts(tx))?
            .into_iter()
            .map(|(volume, ..)| volume)
            .collect();
        let mut cleaned = Vec::new();
        for name in self.names()? {
            if held.contains(&name) {
                continue;
            }
            let folder = self.folder(&name)?;
            let Ok(State::Made(record)) = folder.state() else {
                continue;
            };
            let data = folder.data();
            if record.backing.mounts() && is_mountpoint(&data)? {
                mount::unmount(&data)?;
                cleaned.push(name);
            }
        }
        Ok(cleaned)
    }

    /// Detaches loop devices on images of volumes not mounted; returns
    /// the volumes' names.
    fn detach_orphans(&self) -> Result<Vec<String>> {
        let Ok(dir) = self.dir.canonicalize() else {
            return Ok(Vec::new());
        };
        let bound = loopdev::bound().map_err(io_err("listing loop devices for", &dir))?;
        let mut cleaned = Vec::new();
        for (device, backing) in bound {
            let Some(name) = volume_of_image(&dir, &backing) else {
                continue;
            };
            if is_mountpoint(&self.folder(&name)?.data())? {
                continue;
            }
            loopdev::detach(&device).map_err(io_err("detaching", &device))?;
            cleaned.push(name);
        }
        Ok(cleaned)
    }
}

/// The volume whose image `backing` is (also once deleted), if in `dir`.
fn volume_of_image(dir: &Path, backing: &Path) -> Option<String> {
    let backing = backing.to_str()?;
    let image = PathBuf::from(backing.strip_suffix(" (deleted)").unwrap_or(backing));
    let folder = image.parent()?;
    if image.file_name()? != IMAGE || folder.parent()? != dir {
        return None;
    }
    let name = folder.file_name()?.to_str()?;
    strata_mountspec::validate_volume_name(name).ok()?;
    Some(name.to_owned())
}
