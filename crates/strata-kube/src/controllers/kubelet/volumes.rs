//! Pod volumes on this node: made ready before a pod's containers start,
//! torn down when it finishes or goes.
//!
//! A pod's folder is `<root>/pods/<uid>/`:
//! - `volumes/empty-dir/<name>`: its emptyDirs (a tmpfs for
//!   `medium: Memory`), removed with the pod;
//! - `volumes/csi/<pv>/mount`: where a CSI volume is published, with
//!   `vol_data.json` beside it naming the driver and volume, written before
//!   publishing so a crash at any point can still be undone;
//! - `volume-subpaths/<volume>/<container>/<index>`: a bind mount of each
//!   subPath, made through a descriptor opened inside the volume.
//!
//! hostPath volumes and hostPath or local PVs are bound from where they are
//! and never touched by teardown: before the folder goes, nothing below it
//! may still be mounted.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, Container, EmptyDirVolumeSource, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PersistentVolumeSpec, Pod, Volume,
};
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use strata_csi::client::{Access, BlockingCsiClient, PublishOptions, UnpublishOptions};

use super::KubeletConfig;
use super::hostpath;
use super::mounts;
use super::runtime::BindMount;
use crate::controllers::provisioner::{CsiClients, access_mode};
use crate::kinds::Kind;
use crate::quantity::parse_quantity;
use crate::registry::Registry;

const EMPTY_DIRS: &str = "volumes/empty-dir";
const CSI_VOLUMES: &str = "volumes/csi";
const SUBPATHS: &str = "volume-subpaths";
const VOLUME_DATA: &str = "vol_data.json";

/// A volume ready for a pod's containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodVolume {
    /// What containers bind: a folder, or a device for a block volume.
    pub path: PathBuf,
    pub readonly: bool,
    pub block: bool,
}

/// A pod's volumes by name.
pub type PodVolumes = BTreeMap<String, PodVolume>;

/// Why a pod's volumes are not ready: the message of its FailedMount event,
/// as upstream words it.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {why}")]
    SetUp { volume: String, why: String },
    #[error(
        "Unable to attach or mount volumes: unmounted volumes=[{volume}]: error processing PVC {claim}: {why}"
    )]
    Claim {
        volume: String,
        /// `namespace/name`.
        claim: String,
        why: String,
    },
}

/// What teardown needs to unpublish a CSI volume, whatever became of its PV.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeData {
    driver: String,
    volume_handle: String,
}

/// Sets pods' volumes up and tears them down.
pub struct VolumeManager {
    registry: Registry,
    root: PathBuf,
    staging_root: PathBuf,
    /// CSI connections by endpoint.
    clients: CsiClients,
}

/// A pod's identity, as its folder and messages need it.
struct PodRef<'a> {
    uid: &'a str,
    namespace: &'a str,
}

impl<'a> PodRef<'a> {
    fn of(pod: &'a Pod) -> PodRef<'a> {
        PodRef {
            uid: pod.metadata.uid.as_deref().unwrap_or_default(),
            namespace: pod.metadata.namespace.as_deref().unwrap_or_default(),
        }
    }
}

impl VolumeManager {
    pub fn new(registry: Registry, config: &KubeletConfig) -> VolumeManager {
        VolumeManager {
            registry,
            root: config.root.clone(),
            staging_root: config.staging_root.clone(),
            clients: CsiClients::new(config.csi.clone()),
        }
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    /// The UIDs of pods that have a folder here.
    pub fn pods_with_folders(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("pods")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| is_pod_uid(name))
            .collect()
    }

    /// Makes every volume of `pod` ready. Repeating it is harmless: what is
    /// ready already is kept.
    pub fn set_up(&mut self, pod: &Pod) -> Result<PodVolumes, MountError> {
        let mut ready = PodVolumes::new();
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
        for volume in volumes.unwrap_or_default() {
            let mounted = self.set_up_one(&PodRef::of(pod), volume)?;
            ready.insert(volume.name.clone(), mounted);
        }
        Ok(ready)
    }

    fn set_up_one(&mut self, pod: &PodRef, volume: &Volume) -> Result<PodVolume, MountError> {
        let failed = |why: String| MountError::SetUp {
            volume: volume.name.clone(),
            why,
        };
        if let Some(source) = &volume.host_path {
            let path = PathBuf::from(&source.path);
            hostpath::check(&path, source.type_.as_deref().unwrap_or_default())
                .map_err(|e| failed(e.to_string()))?;
            return Ok(PodVolume {
                path,
                readonly: false,
                block: false,
            });
        }
        if let Some(source) = &volume.empty_dir {
            return self.empty_dir(pod, &volume.name, source).map_err(failed);
        }
        if let Some(source) = &volume.persistent_volume_claim {
            return self.claim(pod, &volume.name, source);
        }
        Err(failed(
            "Strata's node agent mounts hostPath, emptyDir and persistentVolumeClaim volumes only"
                .into(),
        ))
    }

    fn empty_dir(
        &self,
        pod: &PodRef,
        name: &str,
        source: &EmptyDirVolumeSource,
    ) -> Result<PodVolume, String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.pod_dir(pod.uid).join(EMPTY_DIRS).join(name);
        let at = |e: std::io::Error| format!("{}: {e}", dir.display());
        std::fs::create_dir_all(&dir).map_err(at)?;
        if source.medium.as_deref() == Some("Memory")
            && !mounts::is_mount_point(&dir).map_err(at)?
        {
            let size = match &source.size_limit {
                Some(limit) => Some(
                    parse_quantity(&limit.0)
                        .map_err(|e| format!("sizeLimit {}: {e}", limit.0))?
                        .bytes(),
                ),
                None => None,
            };
            mounts::mount_tmpfs(&dir, size)
                .map_err(|e| format!("mounting a tmpfs on {}: {e}", dir.display()))?;
        }
        // Any container user may write there, as upstream's 0777.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).map_err(at)?;
        Ok(PodVolume {
            path: dir,
            readonly: false,
            block: false,
        })
    }

    /// The volume a claim is bound to.
    fn claim(
        &mut self,
        pod: &PodRef,
        volume: &str,
        source: &PersistentVolumeClaimVolumeSource,
    ) -> Result<PodVolume, MountError> {
        let claim_failed = |why: String| MountError::Claim {
            volume: volume.to_string(),
            claim: format!("{}/{}", pod.namespace, source.claim_name),
            why,
        };
        let claim: PersistentVolumeClaim = self
            .fetch(
                Kind::PersistentVolumeClaim,
                pod.namespace,
                &source.claim_name,
            )
            .map_err(|e| claim_failed(format!("failed to fetch PVC from API server: {e}")))?;
        let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let pv_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        let Some(pv_name) = pv_name.filter(|n| bound && !n.is_empty()) else {
            return Err(claim_failed("PVC is not bound".into()));
        };
        let pv: PersistentVolume =
            self.fetch(Kind::PersistentVolume, "", &pv_name)
                .map_err(|e| {
                    claim_failed(format!("failed to fetch PV {pv_name} from API server: {e}"))
                })?;
        let spec = pv.spec.unwrap_or_default();
        let readonly = source.read_only.unwrap_or(false);
        let block = spec.volume_mode.as_deref() == Some("Block");
        let failed = |why: String| MountError::SetUp {
            volume: volume.to_string(),
            why,
        };
        let path = if let Some(host) = &spec.host_path {
            let path = PathBuf::from(&host.path);
            hostpath::check(&path, host.type_.as_deref().unwrap_or_default())
                .map_err(|e| failed(e.to_string()))?;
            path
        } else if let Some(local) = &spec.local {
            PathBuf::from(&local.path)
        } else if let Some(csi) = &spec.csi {
            let publish = Publish {
                pv: &pv_name,
                spec: &spec,
                csi,
                readonly,
                block,
            };
            self.publish(pod, &publish).map_err(failed)?
        } else {
            return Err(failed(format!(
                "PersistentVolume {pv_name} has no source Strata's node agent mounts; it mounts hostPath, local and csi volumes"
            )));
        };
        Ok(PodVolume {
            path,
            readonly,
            block,
        })
    }

    fn fetch<T: DeserializeOwned>(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<T, String> {
        let object = self
            .registry
            .get(kind, namespace, name)
            .map_err(|e| e.to_string())?;
        serde_json::from_value((*object.body).clone())
            .map_err(|e| format!("reading {kind} {name}: {e}"))
    }

    /// Publishes a CSI volume at `volumes/csi/<pv>/mount`, unless it is
    /// published there already.
    fn publish(&mut self, pod: &PodRef, publish: &Publish) -> Result<PathBuf, String> {
        let dir = self.pod_dir(pod.uid).join(CSI_VOLUMES).join(publish.pv);
        let target = dir.join("mount");
        let at = |e: std::io::Error| format!("{}: {e}", dir.display());
        if mounts::is_mount_point(&target).map_err(at)? {
            return Ok(target);
        }
        std::fs::create_dir_all(&dir).map_err(at)?;
        let data = VolumeData {
            driver: publish.csi.driver.clone(),
            volume_handle: publish.csi.volume_handle.clone(),
        };
        let bytes = serde_json::to_vec(&data).expect("volume data serializes");
        std::fs::write(dir.join(VOLUME_DATA), bytes).map_err(at)?;
        let options = PublishOptions {
            readonly: publish.readonly || publish.csi.read_only.unwrap_or(false),
            access: publish.access(),
            access_mode: access_mode(publish.spec.access_modes.as_deref().unwrap_or_default()),
            staging_root: Some(self.staging_root.clone()),
            volume_context: publish.csi.volume_attributes.clone().unwrap_or_default(),
            ..PublishOptions::default()
        };
        self.client(&publish.csi.driver)?
            .publish(&publish.csi.volume_handle, &target, &options)
            .map_err(|e| e.to_string())?;
        Ok(target)
    }

    fn client(&mut self, driver: &str) -> Result<&BlockingCsiClient, String> {
        self.clients.get(&self.registry, driver)
    }

    /// Undoes `set_up` for the pod `uid` and removes its folder: subPath
    /// binds, CSI publications and tmpfs first, then, only if nothing below
    /// it is mounted any more, the folder. Repeating it is harmless.
    pub fn tear_down(&mut self, uid: &str) -> Result<(), String> {
        if !is_pod_uid(uid) {
            return Err(format!("{uid:?} is not a pod UID; nothing torn down"));
        }
        let dir = self.pod_dir(uid);
        if std::fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        // SubPath binds lead into volumes (host folders among them): first.
        unmount_below(&dir.join(SUBPATHS))?;
        self.unpublish_below(&dir.join(CSI_VOLUMES))?;
        unmount_below(&dir.join(EMPTY_DIRS))?;
        let left = mounts::mounts_below(&dir).map_err(|e| e.to_string())?;
        if let Some(mounted) = left.first() {
            return Err(format!(
                "{} is still mounted; the pod's folder stays until it is not",
                mounted.display()
            ));
        }
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))
    }

    /// Unpublishes every CSI volume recorded below `dir`.
    fn unpublish_below(&mut self, dir: &Path) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let Ok(bytes) = std::fs::read(entry.path().join(VOLUME_DATA)) else {
                continue;
            };
            let data: VolumeData = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: {e}", entry.path().join(VOLUME_DATA).display()))?;
            let options = UnpublishOptions {
                staging_root: Some(self.staging_root.clone()),
                ..UnpublishOptions::default()
            };
            self.client(&data.driver)?
                .unpublish(&data.volume_handle, &entry.path().join("mount"), &options)
                .map_err(|e| format!("unpublishing volume {}: {e}", data.volume_handle))?;
        }
        Ok(())
    }

    /// What `container` binds: its volumeMounts (subPaths bound first) and
    /// volumeDevices.
    pub fn container_mounts(
        &self,
        pod: &Pod,
        volumes: &PodVolumes,
        container: &Container,
    ) -> Result<Vec<BindMount>, String> {
        let volume = |name: &str| {
            volumes
                .get(name)
                .ok_or_else(|| format!("volume \"{name}\" is not ready"))
        };
        let mut binds = Vec::new();
        for (index, mount) in container.volume_mounts.iter().flatten().enumerate() {
            let ready = volume(&mount.name)?;
            if ready.block {
                return Err(format!(
                    "volume {} has volumeMode Block, but is specified in volumeMounts",
                    mount.name
                ));
            }
            let source = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
                None => ready.path.clone(),
                Some(sub) => {
                    let place = SubPath {
                        pod: PodRef::of(pod),
                        container: &container.name,
                        index,
                        volume: &mount.name,
                    };
                    self.bind_subpath(&place, ready, sub).map_err(|e| {
                        format!(
                            "failed to prepare subPath for volumeMount \"{}\" of container \"{}\": {e}",
                            mount.name, container.name
                        )
                    })?
                }
            };
            binds.push(BindMount {
                source,
                target: mount.mount_path.clone(),
                readonly: mount.read_only.unwrap_or(false) || ready.readonly,
            });
        }
        for device in container.volume_devices.iter().flatten() {
            let ready = volume(&device.name)?;
            if !ready.block {
                return Err(format!(
                    "volume {} has volumeMode Filesystem, but is specified in volumeDevices",
                    device.name
                ));
            }
            binds.push(BindMount {
                source: ready.path.clone(),
                target: device.device_path.clone(),
                readonly: ready.readonly,
            });
        }
        Ok(binds)
    }

    /// Binds `sub` of `volume` at the subPath's place, unless it is bound
    /// there already.
    fn bind_subpath(
        &self,
        place: &SubPath,
        volume: &PodVolume,
        sub: &str,
    ) -> Result<PathBuf, String> {
        if sub.starts_with('/') || sub.split('/').any(|part| part == "..") {
            return Err(format!(
                "{sub} must be a relative path that does not contain '..'"
            ));
        }
        let target = self
            .pod_dir(place.pod.uid)
            .join(SUBPATHS)
            .join(place.volume)
            .join(place.container)
            .join(place.index.to_string());
        let bound = mounts::is_mount_point(&target).map_err(|e| e.to_string())?;
        if !bound {
            let source =
                strata_archive::fsops::open_making_folders(&volume.path, sub, OFlags::empty())
                    .map_err(|e| e.to_string())?;
            mounts::make_target_for(&source, &target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
            strata_archive::fsops::bind_fd(source.as_fd(), &target)
                .map_err(|e| format!("binding it at {}: {e}", target.display()))?;
        }
        Ok(target)
    }
}

/// Where one volumeMount's subPath is bound.
struct SubPath<'a> {
    pod: PodRef<'a>,
    container: &'a str,
    /// The mount's place among the container's volumeMounts.
    index: usize,
    volume: &'a str,
}

/// A CSI PV to publish for a pod.
struct Publish<'a> {
    pv: &'a str,
    spec: &'a PersistentVolumeSpec,
    csi: &'a CSIPersistentVolumeSource,
    readonly: bool,
    block: bool,
}

impl Publish<'_> {
    fn access(&self) -> Access {
        if self.block {
            return Access::Block;
        }
        Access::Mount {
            fs_type: self.csi.fs_type.clone().unwrap_or_default(),
            mount_flags: self.spec.mount_options.clone().unwrap_or_default(),
        }
    }
}

/// Whether `name` can be a pod's UID: one folder name below `pods`, so
/// that teardown never reaches past one pod's folder.
fn is_pod_uid(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.')
}

fn unmount_below(dir: &Path) -> Result<(), String> {
    for point in mounts::mounts_below(dir).map_err(|e| e.to_string())? {
        mounts::unmount(&point).map_err(|e| format!("unmounting {}: {e}", point.display()))?;
    }
    Ok(())
}
