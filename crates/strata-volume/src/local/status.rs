//! `VolumeDriver.Get` and `.List`, and how full a sized volume is.
//!
//! A sized volume's status carries `size` (its limit in bytes) and `usage`
//! (bytes used): the project's count for a quota; the filesystem's own
//! count (statvfs) for a mounted image; and for an image not mounted, the
//! bytes the image file takes on the host. That last is cheap and never
//! mounts anything, and is close to the data's size because images are
//! sparse and mounted with `discard` (it includes a little filesystem
//! metadata). Plain volumes report nothing: the service walks them.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, StatxFlags};

use crate::driver::{DriverResult, DriverVolume};

use super::error::{Result, io_err};
use super::folder::{Backing, Folder, State};
use super::{LocalDriver, is_mountpoint, quota};

impl LocalDriver {
    /// How full volume `name` is, as (bytes used, size limit); None for
    /// volumes without a size (and for ones that do not exist).
    pub fn usage(&self, name: &str) -> DriverResult<Option<(u64, u64)>> {
        self.usage_named(name).map_err(|e| e.at("VolumeDriver.Get"))
    }

    fn usage_named(&self, name: &str) -> Result<Option<(u64, u64)>> {
        let folder = self.folder(name)?;
        match folder.state()? {
            State::Made(record) => self.usage_of(&folder, &record.backing),
            _ => Ok(None),
        }
    }

    fn usage_of(&self, folder: &Folder, backing: &Backing) -> Result<Option<(u64, u64)>> {
        let (used, limit) = match *backing {
            Backing::Mount(_) => return Ok(None),
            Backing::Quota { size, project } => (
                quota::usage(&self.dir, project)
                    .map_err(io_err("reading the project quota of", &folder.root))?,
                size,
            ),
            Backing::Image { size, .. } => (image_usage(folder)?, size),
        };
        Ok(Some((used, limit)))
    }

    pub(super) fn describe(&self, name: &str) -> Result<Option<DriverVolume>> {
        let folder = self.folder(name)?;
        let record = match folder.state()? {
            State::Missing | State::Incomplete => return Ok(None),
            State::Plain => None,
            State::Made(record) => Some(record),
        };
        let mut status = BTreeMap::new();
        match record.map(|r| self.usage_of(&folder, &r.backing)) {
            Some(Ok(Some((used, limit)))) => {
                status.insert("size".to_owned(), limit.into());
                status.insert("usage".to_owned(), used.into());
            }
            // One volume that cannot be measured does not hide the others.
            Some(Err(e)) => {
                status.insert("error".to_owned(), e.to_string().into());
            }
            Some(Ok(None)) | None => {}
        }
        Ok(Some(DriverVolume {
            name: name.to_owned(),
            mountpoint: Some(folder.data()),
            created_at: created_at(&folder.root),
            status,
        }))
    }

    pub(super) fn describe_all(&self) -> Result<Vec<DriverVolume>> {
        let mut all = Vec::new();
        for name in self.names()? {
            all.extend(self.describe(&name)?);
        }
        Ok(all)
    }

    /// Names of the folders in the volumes folder that can be volumes, sorted.
    pub(super) fn names(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &self.dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("reading", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if strata_mountspec::validate_volume_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

fn image_usage(folder: &Folder) -> Result<u64> {
    let data = folder.data();
    if is_mountpoint(&data)? {
        let st = rustix::fs::statvfs(&data).map_err(|e| io_err("measuring", &data)(e.into()))?;
        return Ok((st.f_blocks - st.f_bfree) * st.f_frsize);
    }
    let image = folder.image();
    let meta = std::fs::metadata(&image).map_err(io_err("measuring", &image))?;
    Ok(meta.blocks() * 512)
}

/// When the folder was made (its birth time where the filesystem keeps
/// one, else its last modification), RFC 3339 to the second as Docker shows it.
fn created_at(path: &Path) -> Option<String> {
    let st = rustix::fs::statx(
        CWD,
        path,
        AtFlags::empty(),
        StatxFlags::BTIME | StatxFlags::MTIME,
    )
    .ok()?;
    let time = if st.stx_mask & StatxFlags::BTIME.bits() != 0 {
        st.stx_btime
    } else {
        st.stx_mtime
    };
    let time = jiff::Timestamp::from_second(time.tv_sec).ok()?;
    Some(time.to_string())
}
