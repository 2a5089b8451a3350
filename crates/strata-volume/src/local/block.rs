//! Raw block volumes (`size=…,fs=raw`): an image with no filesystem.
//! Mounting one attaches the image to a loop device and returns the
//! device, which a CSI node publishes as a device node; the last unmount
//! detaches it. Nothing holds the device open between calls, so it is
//! attached without autoclear.

use std::path::{Path, PathBuf};

use super::error::{Result, io_err};
use super::folder::{Backing, Folder, Record};
use super::options::Fs;
use super::{LocalDriver, loopdev};

impl LocalDriver {
    /// The loop device holding `folder`'s image, attaching one if none does.
    pub(super) fn attach(&self, folder: &Folder) -> Result<PathBuf> {
        match self.attached(folder)? {
            Some(device) => Ok(device),
            None => {
                let image = folder.image();
                loopdev::attach(&image, loopdev::Flags::default())
                    .map(|attached| attached.path)
                    .map_err(io_err("attaching a loop device to", &image))
            }
        }
    }

    /// Detaches `folder`'s image from its loop device, if attached.
    pub(super) fn detach(&self, folder: &Folder) -> Result<()> {
        match self.attached(folder)? {
            Some(device) => loopdev::detach(&device).map_err(io_err("detaching", device)),
            None => Ok(()),
        }
    }

    /// The loop device holding `folder`'s image, if any.
    pub(super) fn attached(&self, folder: &Folder) -> Result<Option<PathBuf>> {
        let image = folder.image();
        loopdev::backed_by(&image).map_err(io_err("looking for the loop device of", &image))
    }

    /// A read-only loop device of raw volume `name`'s image, of its own:
    /// a read-only mount does not stop writes through a device node, so a
    /// read-only block publish needs a device that refuses them. Nothing
    /// else uses it; [`LocalDriver::detach_read_only`] frees it.
    pub fn attach_read_only(&self, name: &str) -> crate::driver::DriverResult<PathBuf> {
        let folder = self.folder(name).map_err(|e| e.at("AttachReadOnly"))?;
        let image = folder.image();
        let flags = loopdev::Flags {
            autoclear: false,
            read_only: true,
        };
        loopdev::attach(&image, flags)
            .map(|attached| attached.path)
            .map_err(|e| io_err("attaching a loop device to", &image)(e).at("AttachReadOnly"))
    }

    /// Frees `device` if it is a read-only loop device of `name`'s image.
    pub fn detach_read_only(&self, name: &str, device: &Path) -> crate::driver::DriverResult<()> {
        let image = self.image(name);
        let fail = |e| io_err("looking at the loop device of", &image)(e).at("DetachReadOnly");
        let backing = loopdev::backing_file(device).map_err(fail)?;
        if backing.is_none()
            || backing != image.canonicalize().ok()
            || !loopdev::is_read_only(device)
        {
            return Ok(());
        }
        loopdev::detach(device).map_err(|e| io_err("detaching", device)(e).at("DetachReadOnly"))
    }
}

/// Whether `record` is a raw block volume's.
pub(super) fn is_raw(record: &Record) -> bool {
    matches!(record.backing, Backing::Image { fs: Fs::Raw, .. })
}
