//! A container's configuration: what `create` decided, stored as JSON in
//! the container's record and never changed after (but for its name).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The image as the user named it.
    pub image_name: String,
    /// The command: entrypoint then cmd, as resolved at create.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `user[:group]` as given (or from the image); resolved in the
    /// container's /etc/passwd at each start.
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub hostname: String,
    /// `none` or `host`.
    pub network: String,
    pub read_only: bool,
    pub mounts: Vec<MountPoint>,
    /// `--device`: host device nodes the container gets.
    #[serde(default)]
    pub devices: Vec<DeviceMapping>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub stop_timeout: u64,
    pub auto_remove: bool,
    pub runtime: PathBuf,
}

/// A host device node and where the container sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host: PathBuf,
    pub container: String,
    /// A subset of `rwm`.
    pub permissions: String,
}

/// A mount as decided at create: volumes by name (so a volume created on
/// first use is the same on every start), host paths, tmpfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub target: String,
    pub readonly: bool,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Type", rename_all = "lowercase")]
pub enum MountKind {
    Volume {
        name: String,
        anonymous: bool,
        subpath: Option<String>,
        nocopy: bool,
    },
    Bind {
        source: PathBuf,
        propagation: String,
    },
    Tmpfs {
        options: Vec<String>,
    },
}

impl MountPoint {
    /// Docker's `Type` field in `inspect` Mounts.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            MountKind::Volume { .. } => "volume",
            MountKind::Bind { .. } => "bind",
            MountKind::Tmpfs { .. } => "tmpfs",
        }
    }
}
