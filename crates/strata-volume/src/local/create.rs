//! `VolumeDriver.Create`: the volume's folder and its backing.
//!
//! A volume with options is made in an order that keeps a crash harmless:
//! the backing (image renamed into place once formatted, or the project
//! quota), then `opts.json`, then `_data`. Until `_data` exists the folder
//! is not a volume (see [`super::folder`]); a create that fails removes
//! what it made, and one that finds an interrupted create starts over.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{LocalError, Result, io_err};
use super::folder::{Backing, Folder, Record, State};
use super::options::{self, Fs, MountSpec, Request};
use super::{LocalDriver, image, mount, quota};

impl LocalDriver {
    /// Makes volume `name` (nothing if it exists, whatever its options,
    /// as Docker does).
    pub(super) fn create_volume(&self, name: &str, opts: &BTreeMap<String, String>) -> Result<()> {
        let request = options::parse(opts)?;
        let folder = self.folder(name)?;
        match folder.state()? {
            State::Plain | State::Made(_) => return Ok(()),
            State::Incomplete => self.discard(&folder)?,
            State::Missing => {}
        }
        match request {
            Request::Plain => folder.make_data(),
            Request::Mount(spec) => self.create_with(&folder, opts, || {
                check_device(&spec)?;
                Ok(Backing::Mount(spec))
            }),
            Request::Sized { size, fs } => {
                self.create_with(&folder, opts, || self.make_sized(&folder, size, fs))
            }
        }
    }

    /// Makes the folder, its backing with `make`, the record, then `_data`;
    /// on failure removes the folder again.
    fn create_with(
        &self,
        folder: &Folder,
        opts: &BTreeMap<String, String>,
        make: impl FnOnce() -> Result<Backing>,
    ) -> Result<()> {
        folder.make_root()?;
        let made = make().and_then(|backing| {
            folder.write_record(&Record {
                options: opts.clone(),
                backing,
            })?;
            folder.make_data()
        });
        if made.is_err() {
            let _ = self.discard(folder);
        }
        made
    }

    /// A project quota when `dir` has them and no filesystem was asked
    /// for; otherwise an image with its own filesystem.
    fn make_sized(&self, folder: &Folder, size: u64, fs: Option<Fs>) -> Result<Backing> {
        if fs.is_none() && quota::enforced(&self.dir) {
            let project = quota::assign(&self.dir, &folder.root)
                .map_err(io_err("giving a project ID to", &folder.root))?;
            quota::set_limit(&self.dir, project, size)
                .map_err(io_err("setting the project quota of", &folder.root))?;
            return Ok(Backing::Quota { size, project });
        }
        let fs = fs.unwrap_or(Fs::Ext4);
        image::make(&folder.root, size, fs)?;
        Ok(Backing::Image { size, fs })
    }
}

/// A bind mount's host path, or a device node, must exist.
fn check_device(spec: &MountSpec) -> Result<()> {
    let device = Path::new(&spec.device);
    let is_path = mount::is_bind(spec) || spec.device.starts_with("/dev/");
    if is_path && !device.exists() {
        return Err(LocalError::NoDevice(device.to_owned()));
    }
    Ok(())
}
