//! The Node service: staging, publishing, statistics and growth of
//! volumes on this node.

use std::path::PathBuf;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Shared;
use super::request::{self, Access};
use crate::error::{CsiError, Result, missing};
use crate::pb::node_service_capability::{self, Rpc, rpc};
use crate::pb::volume_capability::AccessType;
use crate::pb::{self, NodeServiceCapability, VolumeCapability};
use crate::storage::{CsiVolume, Kind, NodeUse, Storage, mount_flags};

pub struct Node(pub Arc<Shared>);

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::node_server::Node for Node {
    async fn node_stage_volume(
        &self,
        r: Request<pb::NodeStageVolumeRequest>,
    ) -> Reply<pb::NodeStageVolumeResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let staging = path(&r.staging_target_path, "staging_target_path")?;
        let cap = r
            .volume_capability
            .ok_or_else(|| missing("volume_capability"))?;
        let access = request::access(&cap)?;
        let usage = node_use(&cap, &access, false);
        let _claim = self.0.inflight.claim("volume", &id)?;
        self.0
            .workers
            .run(move |s| {
                let v = fitting(s, &id, &access)?;
                s.stage(&v, &staging, &usage)
            })
            .await?;
        Ok(Response::new(pb::NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        r: Request<pb::NodeUnstageVolumeRequest>,
    ) -> Reply<pb::NodeUnstageVolumeResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let staging = path(&r.staging_target_path, "staging_target_path")?;
        let _claim = self.0.inflight.claim("volume", &id)?;
        self.0
            .workers
            .run(move |s| {
                s.existing(&id)?;
                s.unstage(&id, &staging)
            })
            .await?;
        Ok(Response::new(pb::NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        r: Request<pb::NodePublishVolumeRequest>,
    ) -> Reply<pb::NodePublishVolumeResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let target = path(&r.target_path, "target_path")?;
        let cap = r
            .volume_capability
            .ok_or_else(|| missing("volume_capability"))?;
        let access = request::access(&cap)?;
        if r.staging_target_path.is_empty() {
            // The spec's code: this plugin stages, so publishing needs it.
            return Err(CsiError::FailedPrecondition(
                "staging_target_path is not set; this plugin stages volumes, so call NodeStageVolume and pass its path".into(),
            )
            .into());
        }
        let staging = path(&r.staging_target_path, "staging_target_path")?;
        let readonly = r.readonly || read_only_mode(&cap);
        let flags = mount_flags(&flag_names(&cap), readonly)?;
        let usage = node_use(&cap, &access, readonly);
        let _claim = self.0.inflight.claim("volume", &id)?;
        self.0
            .workers
            .run(move |s| {
                let v = fitting(s, &id, &access)?;
                s.publish(&v, &staging, &target, flags, &usage)
            })
            .await?;
        Ok(Response::new(pb::NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<pb::NodeUnpublishVolumeRequest>,
    ) -> Reply<pb::NodeUnpublishVolumeResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let target = path(&r.target_path, "target_path")?;
        let _claim = self.0.inflight.claim("volume", &id)?;
        self.0
            .workers
            .run(move |s| {
                s.existing(&id)?;
                s.unpublish(&id, &target)
            })
            .await?;
        Ok(Response::new(pb::NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        r: Request<pb::NodeGetVolumeStatsRequest>,
    ) -> Reply<pb::NodeGetVolumeStatsResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let at = path(&r.volume_path, "volume_path")?;
        let stats = self
            .0
            .workers
            .run(move |s| {
                let v = s.existing(&id)?;
                s.stats(&v, &at)
            })
            .await?;
        let usage = |u: crate::storage::Usage, unit: pb::volume_usage::Unit| pb::VolumeUsage {
            available: u.available as i64,
            total: u.total as i64,
            used: u.used as i64,
            unit: unit as i32,
        };
        let mut reported = vec![usage(stats.bytes, pb::volume_usage::Unit::Bytes)];
        reported.extend(
            stats
                .inodes
                .map(|i| usage(i, pb::volume_usage::Unit::Inodes)),
        );
        Ok(Response::new(pb::NodeGetVolumeStatsResponse {
            usage: reported,
            volume_condition: Some(pb::VolumeCondition {
                abnormal: stats.condition.abnormal,
                message: stats.condition.message,
            }),
        }))
    }

    async fn node_expand_volume(
        &self,
        r: Request<pb::NodeExpandVolumeRequest>,
    ) -> Reply<pb::NodeExpandVolumeResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let at = path(&r.volume_path, "volume_path")?;
        let _claim = self.0.inflight.claim("volume", &id)?;
        let capacity = self
            .0
            .workers
            .run(move |s| {
                let v = s.existing(&id)?;
                if at.symlink_metadata().is_err() {
                    return Err(CsiError::NotFound(format!(
                        "volume path {} does not exist",
                        at.display()
                    )));
                }
                request::fits(r.volume_capability.as_ref(), v.kind)?;
                let wanted = match r.capacity_range.as_ref() {
                    Some(range) => super::controller::expansion(s, &v, range)?,
                    None => v.capacity,
                };
                s.expand(&id, wanted, v.kind == Kind::Image)
            })
            .await?;
        Ok(Response::new(pb::NodeExpandVolumeResponse {
            capacity_bytes: capacity as i64,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<pb::NodeGetCapabilitiesRequest>,
    ) -> Reply<pb::NodeGetCapabilitiesResponse> {
        let capabilities = [
            rpc::Type::StageUnstageVolume,
            rpc::Type::GetVolumeStats,
            rpc::Type::ExpandVolume,
            rpc::Type::VolumeCondition,
            rpc::Type::SingleNodeMultiWriter,
        ]
        .into_iter()
        .map(|t| NodeServiceCapability {
            r#type: Some(node_service_capability::Type::Rpc(Rpc { r#type: t as i32 })),
        })
        .collect();
        Ok(Response::new(pb::NodeGetCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<pb::NodeGetInfoRequest>,
    ) -> Reply<pb::NodeGetInfoResponse> {
        let config = &self.0.config;
        Ok(Response::new(pb::NodeGetInfoResponse {
            node_id: config.node_id.clone(),
            max_volumes_per_node: config.max_volumes_per_node,
            accessible_topology: Some(request::topology(&config.node_id)),
        }))
    }
}

/// How a stage or publish with `cap` uses a volume, for the node's records.
fn node_use(cap: &VolumeCapability, access: &Access, readonly: bool) -> NodeUse {
    use crate::pb::volume_capability::access_mode::Mode;
    let mode = cap.access_mode.as_ref().map_or(0, |m| m.mode);
    let single = [Mode::SingleNodeWriter, Mode::SingleNodeSingleWriter]
        .iter()
        .any(|m| *m as i32 == mode);
    NodeUse {
        access: format!(
            "{} mode {mode} flags {:?}",
            serde_json::to_string(access).expect("an access serializes"),
            flag_names(cap)
        ),
        single_target: single,
        readonly,
    }
}

/// Volume `id`, which must exist and fit `access` (block or filesystem):
/// FAILED_PRECONDITION otherwise, the spec's "exceeds capabilities".
fn fitting(s: &Storage, id: &str, access: &Access) -> Result<CsiVolume> {
    let v = s.existing(id)?;
    if (*access == Access::Block) != (v.kind == Kind::Block) {
        return Err(CsiError::FailedPrecondition(format!(
            "volume {id} is a {:?} volume; it cannot be used with {} access",
            v.kind,
            if *access == Access::Block {
                "block"
            } else {
                "mount"
            }
        )));
    }
    Ok(v)
}

/// A required absolute path.
fn path(value: &str, field: &str) -> Result<PathBuf> {
    let value = request::required(value, field)?;
    if !value.starts_with('/') {
        return Err(CsiError::InvalidArgument(format!(
            "{field} '{value}' is not an absolute path"
        )));
    }
    Ok(PathBuf::from(value))
}

fn flag_names(cap: &VolumeCapability) -> Vec<String> {
    match &cap.access_type {
        Some(AccessType::Mount(m)) => m.mount_flags.clone(),
        _ => Vec::new(),
    }
}

/// SINGLE_NODE_READER_ONLY publishes read-only whatever `readonly` says.
fn read_only_mode(cap: &VolumeCapability) -> bool {
    use crate::pb::volume_capability::access_mode::Mode;
    cap.access_mode
        .as_ref()
        .is_some_and(|m| m.mode == Mode::SingleNodeReaderOnly as i32)
}
