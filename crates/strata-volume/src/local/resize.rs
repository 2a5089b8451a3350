//! Growing a sized volume: its image (or project quota) first, then the
//! filesystem inside, as CSI splits it between ControllerExpandVolume and
//! NodeExpandVolume. Volumes never shrink. xfs grows only while mounted;
//! ext4 grows while unmounted, and while mounted only with
//! CAP_SYS_RESOURCE (the kernel's rule for online resize).

use std::fs::OpenOptions;
use std::process::Command;

use crate::driver::DriverResult;

use super::command::{run, run_accepting};
use super::error::{LocalError, Result, io_err};
use super::folder::{Backing, Folder, Record, State};
use super::options::Fs;
use super::{LocalDriver, image, is_mountpoint, loopdev, quota};

impl LocalDriver {
    /// Grows sized volume `name` to at least `size` bytes and returns its
    /// size. An image grows sparse, and a loop device attached to it is
    /// told; the filesystem inside grows with [`LocalDriver::grow_fs`].
    pub fn grow(&self, name: &str, size: u64) -> DriverResult<u64> {
        self.grow_volume(name, size).map_err(|e| e.at("Grow"))
    }

    /// Grows the filesystem of image volume `name` to fill its image:
    /// online when mounted, else (ext4 only) checked and grown offline.
    pub fn grow_fs(&self, name: &str) -> DriverResult<()> {
        self.grow_filesystem(name).map_err(|e| e.at("GrowFs"))
    }

    fn grow_volume(&self, name: &str, size: u64) -> Result<u64> {
        let folder = self.folder(name)?;
        let State::Made(mut record) = folder.state()? else {
            return Err(LocalError::NotSized);
        };
        let now = match &mut record.backing {
            Backing::Image { size: current, .. } | Backing::Quota { size: current, .. }
                if *current >= size =>
            {
                return Ok(*current);
            }
            Backing::Image { size: current, .. } => {
                self.extend_image(&folder, size)?;
                *current = size;
                size
            }
            Backing::Quota {
                size: current,
                project,
            } => {
                quota::set_limit(&self.dir, *project, size)
                    .map_err(io_err("setting the project quota of", &folder.root))?;
                *current = size;
                size
            }
            Backing::Mount(_) => return Err(LocalError::NotSized),
        };
        // The backing grew first: a crash before the record leaves a
        // volume that is bigger than recorded, and the next grow is a no-op.
        record.options.insert("size".to_owned(), now.to_string());
        folder.write_record(&record)?;
        Ok(now)
    }

    fn grow_filesystem(&self, name: &str) -> Result<()> {
        let folder = self.folder(name)?;
        let State::Made(Record {
            backing: Backing::Image { fs, .. },
            ..
        }) = folder.state()?
        else {
            return Err(LocalError::NotSized);
        };
        let image = folder.image();
        let device = self.attached(&folder)?;
        let data = folder.data();
        let mounted = device.is_some() && is_mountpoint(&data)?;
        match (fs, device) {
            (Fs::Raw, _) => Ok(()),
            (Fs::Ext4, Some(device)) if mounted => {
                may_resize_ext4_online()?;
                run(Command::new("resize2fs").arg(&device))
            }
            (Fs::Xfs, Some(_)) if mounted => run(Command::new("xfs_growfs").arg(&data)),
            (Fs::Ext4, _) => {
                // resize2fs wants a freshly checked filesystem; the check
                // makes lost+found again, which a new volume has not.
                run_accepting(
                    Command::new("e2fsck").args(["-f", "-y"]).arg(&image),
                    &[0, 1],
                )?;
                run(Command::new("resize2fs").arg(&image))?;
                image::remove_lost_found(&image);
                Ok(())
            }
            (Fs::Xfs, _) => Err(LocalError::Options(format!(
                "an xfs filesystem grows only while mounted; mount volume {name} and grow it again"
            ))),
        }
    }
}

/// The kernel grows a mounted ext4 only for CAP_SYS_RESOURCE; without it
/// resize2fs says just "permission denied", so say what to do instead.
fn may_resize_ext4_online() -> Result<()> {
    use rustix::thread::{CapabilitySet, capabilities};
    let caps = capabilities(None)
        .map_err(|e| io_err("reading the capabilities of", "this process")(e.into()))?;
    if caps.effective.contains(CapabilitySet::SYS_RESOURCE) {
        return Ok(());
    }
    Err(LocalError::Options(
        "growing a mounted ext4 filesystem needs CAP_SYS_RESOURCE, which this process lacks; grow it while unmounted (unpublish it first) or use fs=xfs, which grows online".into(),
    ))
}

impl LocalDriver {
    /// Makes the image `size` bytes (sparse), then has an attached loop
    /// device take up the new size.
    fn extend_image(&self, folder: &Folder, size: u64) -> Result<()> {
        let image = folder.image();
        let file = OpenOptions::new()
            .write(true)
            .open(&image)
            .map_err(io_err("opening", &image))?;
        file.set_len(size).map_err(io_err("growing", &image))?;
        file.sync_all().map_err(io_err("syncing", &image))?;
        if let Some(device) = self.attached(folder)? {
            loopdev::set_capacity(&device).map_err(io_err("resizing", &device))?;
        }
        Ok(())
    }
}
