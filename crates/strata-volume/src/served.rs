//! Strata's volumes as a volume driver, for `strata plugin serve`: what a
//! Docker daemon asks of the plugin goes through the volume service, so a
//! volume Docker creates is a Strata volume (`strata volume ls` shows it,
//! and its mounts count against removal) on the local driver.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::driver::{DriverError, DriverResult, DriverVolume, Scope, VolumeDriver};
use crate::{CreateRequest, Filter, LOCAL, VolumeError, Volumes};

pub struct Served {
    name: String,
    volumes: Volumes,
}

impl Served {
    /// Serves `volumes`' local volumes under the plugin name `name`.
    pub fn new(name: &str, volumes: Volumes) -> Served {
        Served {
            name: name.to_owned(),
            volumes,
        }
    }

    /// The service's answer in the protocol's terms.
    fn answer<T>(&self, call: &'static str, r: crate::Result<T>) -> DriverResult<T> {
        r.map_err(|e| DriverError {
            driver: self.name.clone(),
            call,
            message: e.to_string(),
        })
    }

    fn describe(&self, v: crate::Volume) -> DriverVolume {
        DriverVolume {
            mountpoint: Some(v.mountpoint),
            created_at: Some(v.created_at),
            status: v.status.unwrap_or_default(),
            name: v.name,
        }
    }

    /// Only local volumes are ours to serve: one a Strata user made with
    /// a plugin driver is not this plugin's.
    fn local(&self, name: &str) -> crate::Result<crate::Volume> {
        let v = self.volumes.get(name)?;
        if v.driver != LOCAL {
            return Err(VolumeError::NotFound(name.to_owned()));
        }
        Ok(v)
    }
}

impl VolumeDriver for Served {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, name: &str, opts: &BTreeMap<String, String>) -> DriverResult<()> {
        let created = self.volumes.create(&CreateRequest {
            name: Some(name.to_owned()),
            driver: Some(LOCAL.to_owned()),
            labels: BTreeMap::new(),
            options: opts.clone(),
        });
        self.answer("VolumeDriver.Create", created.map(drop))
    }

    fn remove(&self, name: &str) -> DriverResult<()> {
        let removed = self.local(name).and_then(|_| self.volumes.remove(name));
        self.answer("VolumeDriver.Remove", removed)
    }

    fn mount(&self, name: &str, id: &str) -> DriverResult<PathBuf> {
        let mounted = self
            .local(name)
            .and_then(|_| self.volumes.mount(name, crate::Caller::External(id)));
        self.answer("VolumeDriver.Mount", mounted)
    }

    fn unmount(&self, name: &str, id: &str) -> DriverResult<()> {
        let unmounted = self
            .local(name)
            .and_then(|_| self.volumes.unmount(name, id));
        self.answer("VolumeDriver.Unmount", unmounted)
    }

    fn path(&self, name: &str) -> DriverResult<Option<PathBuf>> {
        let v = self.answer("VolumeDriver.Path", self.local(name))?;
        Ok(Some(v.mountpoint))
    }

    fn get(&self, name: &str) -> DriverResult<Option<DriverVolume>> {
        match self.local(name).and_then(|_| self.volumes.inspect(name)) {
            Ok(v) => Ok(Some(self.describe(v))),
            Err(VolumeError::NotFound(_)) => Ok(None),
            Err(e) => self.answer("VolumeDriver.Get", Err(e)),
        }
    }

    fn list(&self) -> DriverResult<Vec<DriverVolume>> {
        let listed = self.volumes.list(&[Filter::Driver(LOCAL.to_owned())]);
        let listed = self.answer("VolumeDriver.List", listed)?;
        Ok(listed.into_iter().map(|v| self.describe(v)).collect())
    }

    fn capabilities(&self) -> DriverResult<Scope> {
        Ok(Scope::Local)
    }
}
