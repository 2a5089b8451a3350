//! Raw block volumes (`size=…,fs=raw`): an image with no filesystem.
//! Mounting one attaches the image to a loop device and returns the
//! device, which a CSI node publishes as a device node; the last unmount
//! detaches it. Nothing holds the device open between calls, so it is
//! attached without autoclear.

use std::path::PathBuf;

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
                loopdev::attach(&image, false)
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
}

/// Whether `record` is a raw block volume's.
pub(super) fn is_raw(record: &Record) -> bool {
    matches!(record.backing, Backing::Image { fs: Fs::Raw, .. })
}
