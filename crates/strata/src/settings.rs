//! Where Strata's settings come from: a flag, else an environment
//! variable (clap handles those two), else the config file, else the
//! default.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_ROOT: &str = "/var/lib/strata";
pub const DEFAULT_CONFIG: &str = "/etc/strata/strata.toml";

/// `strata.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub root: Option<PathBuf>,
    pub storage_driver: Option<String>,
    /// The OCI runtime containers run with.
    pub runtime: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads the config file; a missing default file is no config at all,
    /// a missing file named explicitly is an error.
    pub fn read(path: Option<&Path>) -> anyhow::Result<ConfigFile> {
        let (path, explicit) = match path {
            Some(p) => (p, true),
            None => (Path::new(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(ConfigFile::default());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading config file {}", path.display()));
            }
        };
        toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub storage_driver: Option<String>,
    pub runtime: PathBuf,
}

impl Settings {
    pub fn resolve(
        root: Option<PathBuf>,
        driver: Option<String>,
        config: Option<&Path>,
    ) -> anyhow::Result<Settings> {
        let file = ConfigFile::read(config)?;
        let root = root
            .or(file.root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Ok(Settings {
            // Absolute, as the paths we hand to runc and mount(8) must be:
            // runc reads a relative rootfs against the bundle, not our cwd.
            root: std::path::absolute(&root)
                .with_context(|| format!("cannot resolve the store root {}", root.display()))?,
            storage_driver: driver.or(file.storage_driver),
            runtime: file.runtime.unwrap_or_else(|| PathBuf::from("runc")),
        })
    }
}
