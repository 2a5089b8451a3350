//! The Controller service: volumes and snapshots made, listed, grown and
//! removed; publishing to nodes when attach is required.
//!
//! Each call checks its request here (INVALID_ARGUMENT before anything
//! else), claims the volume or snapshot it works on (ABORTED if another
//! call has it), then runs on a worker against the storage.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Shared;
use super::request::{self, Recorded};
use crate::error::{CsiError, Result};
use crate::pb::controller_service_capability::{self, Rpc, rpc};
use crate::pb::volume_content_source::{self, SnapshotSource, VolumeSource};
use crate::pb::{self, ControllerServiceCapability, VolumeContentSource};
use crate::storage::{CsiVolume, Kind, Snapshot, SnapshotFilter, Source, Storage};

pub struct Controller(pub Arc<Shared>);

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::controller_server::Controller for Controller {
    async fn create_volume(
        &self,
        r: Request<pb::CreateVolumeRequest>,
    ) -> Reply<pb::CreateVolumeResponse> {
        let r = r.into_inner();
        let name = request::name(&r.name, "name")?.to_owned();
        let access = request::common_access(&r.volume_capabilities)?;
        let (kind, fs) = request::shape(&r.parameters, &access)?;
        request::check_requirements(
            r.accessibility_requirements.as_ref(),
            &self.0.config.node_id,
        )?;
        let recorded = Recorded {
            kind,
            fs,
            block: kind == Kind::Block,
            modes: modes(&r.volume_capabilities),
            parameters: r.parameters.into_iter().collect(),
            source: source(r.volume_content_source.as_ref())?,
        };
        let _claim = self.0.inflight.claim("volume", &name)?;
        let node = self.0.config.node_id.clone();
        let volume = self
            .0
            .workers
            .run(move |s| create(s, &name, r.capacity_range.as_ref(), &recorded))
            .await?;
        Ok(Response::new(pb::CreateVolumeResponse {
            volume: Some(describe(&volume, &node)),
        }))
    }

    async fn delete_volume(
        &self,
        r: Request<pb::DeleteVolumeRequest>,
    ) -> Reply<pb::DeleteVolumeResponse> {
        let id = request::required(&r.get_ref().volume_id, "volume_id")?.to_owned();
        let _claim = self.0.inflight.claim("volume", &id)?;
        self.0.workers.run(move |s| s.delete(&id)).await?;
        Ok(Response::new(pb::DeleteVolumeResponse {}))
    }

    async fn controller_publish_volume(
        &self,
        r: Request<pb::ControllerPublishVolumeRequest>,
    ) -> Reply<pb::ControllerPublishVolumeResponse> {
        self.0.attach_required()?;
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let node = request::required(&r.node_id, "node_id")?.to_owned();
        let cap = r
            .volume_capability
            .ok_or_else(|| crate::error::missing("volume_capability"))?;
        let access = request::access(&cap)?;
        let _claim = self.0.inflight.claim("volume", &id)?;
        let ours = self.0.config.node_id.clone();
        let block = access == request::Access::Block;
        let publication = strata_store::meta::csi::Publication {
            volume: id.clone(),
            node,
            readonly: r.readonly,
            request: format!(
                "{} mode {}",
                serde_json::to_string(&access).expect("an access serializes"),
                cap.access_mode.as_ref().map_or(0, |m| m.mode)
            ),
        };
        self.0
            .workers
            .run(move |s| controller_publish(s, &publication, block, &ours))
            .await?;
        let mut publish_context = std::collections::HashMap::new();
        publish_context.insert("volume".to_owned(), id);
        Ok(Response::new(pb::ControllerPublishVolumeResponse {
            publish_context,
        }))
    }

    async fn controller_unpublish_volume(
        &self,
        r: Request<pb::ControllerUnpublishVolumeRequest>,
    ) -> Reply<pb::ControllerUnpublishVolumeResponse> {
        self.0.attach_required()?;
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let _claim = self.0.inflight.claim("volume", &id)?;
        self.0
            .workers
            .run(move |s| {
                // No node: unpublished from every node.
                for p in s.publications(&id)? {
                    if r.node_id.is_empty() || p.node == r.node_id {
                        s.controller_unpublish(&id, &p.node)?;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(pb::ControllerUnpublishVolumeResponse {}))
    }

    async fn validate_volume_capabilities(
        &self,
        r: Request<pb::ValidateVolumeCapabilitiesRequest>,
    ) -> Reply<pb::ValidateVolumeCapabilitiesResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        if r.volume_capabilities.is_empty() {
            return Err(crate::error::missing("volume_capabilities").into());
        }
        for cap in &r.volume_capabilities {
            request::complete(cap)?;
        }
        let volume = self.0.workers.run(move |s| s.existing(&id)).await?;
        Ok(Response::new(validate(&volume, r)))
    }

    async fn list_volumes(
        &self,
        r: Request<pb::ListVolumesRequest>,
    ) -> Reply<pb::ListVolumesResponse> {
        let r = r.into_inner();
        let limit = request::page_size(r.max_entries)?;
        let after = request::after_token(&r.starting_token)?;
        let node = self.0.config.node_id.clone();
        let (entries, next_token) = self
            .0
            .workers
            .run(move |s| {
                let mut volumes = s.list(&after, limit.saturating_add(1))?;
                let next = next_token(&mut volumes, limit, |v| &v.id);
                let entries = volumes
                    .iter()
                    .map(|v| {
                        let (published, condition) = status(s, v)?;
                        Ok(pb::list_volumes_response::Entry {
                            volume: Some(describe(v, &node)),
                            status: Some(pb::list_volumes_response::VolumeStatus {
                                published_node_ids: published,
                                volume_condition: Some(condition),
                            }),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((entries, next))
            })
            .await?;
        Ok(Response::new(pb::ListVolumesResponse {
            entries,
            next_token,
        }))
    }

    async fn get_capacity(
        &self,
        r: Request<pb::GetCapacityRequest>,
    ) -> Reply<pb::GetCapacityResponse> {
        let r = r.into_inner();
        let (kind, fs) = match r.volume_capabilities.is_empty() {
            true => request::shape(
                &r.parameters,
                &request::Access::Mount {
                    fs_type: String::new(),
                },
            )?,
            false => request::shape(
                &r.parameters,
                &request::common_access(&r.volume_capabilities)?,
            )?,
        };
        let elsewhere = r
            .accessible_topology
            .as_ref()
            .is_some_and(|t| !request::is_this_node(t, &self.0.config.node_id));
        let (free, total) = self.0.workers.run(|s| s.space()).await?;
        let available = if elsewhere { 0 } else { free };
        Ok(Response::new(pb::GetCapacityResponse {
            available_capacity: i64::try_from(available).unwrap_or(i64::MAX),
            maximum_volume_size: Some(i64::try_from(total).unwrap_or(i64::MAX)),
            minimum_volume_size: Some(request::minimum(kind, &fs) as i64),
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<pb::ControllerGetCapabilitiesRequest>,
    ) -> Reply<pb::ControllerGetCapabilitiesResponse> {
        let mut types = vec![
            rpc::Type::CreateDeleteVolume,
            rpc::Type::ListVolumes,
            rpc::Type::GetCapacity,
            rpc::Type::CreateDeleteSnapshot,
            rpc::Type::ListSnapshots,
            rpc::Type::CloneVolume,
            rpc::Type::ExpandVolume,
            rpc::Type::VolumeCondition,
            rpc::Type::GetVolume,
            rpc::Type::SingleNodeMultiWriter,
        ];
        if self.0.config.attach_required {
            // Published nodes are only listed where publishing is offered.
            // Not PUBLISH_READONLY: the node, not the attach, makes a
            // volume read-only here.
            types.extend([
                rpc::Type::PublishUnpublishVolume,
                rpc::Type::ListVolumesPublishedNodes,
            ]);
        }
        let capabilities = types
            .into_iter()
            .map(|t| ControllerServiceCapability {
                r#type: Some(controller_service_capability::Type::Rpc(Rpc {
                    r#type: t as i32,
                })),
            })
            .collect();
        Ok(Response::new(pb::ControllerGetCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn create_snapshot(
        &self,
        r: Request<pb::CreateSnapshotRequest>,
    ) -> Reply<pb::CreateSnapshotResponse> {
        let r = r.into_inner();
        let source = request::required(&r.source_volume_id, "source_volume_id")?.to_owned();
        let name = request::name(&r.name, "name")?.to_owned();
        let _claim = self.0.inflight.claim("snapshot", &name)?;
        let snapshot = self
            .0
            .workers
            .run(move |s| match s.snapshot_named(&name)? {
                Some(found) if found.source == source => Ok(found),
                Some(found) => Err(CsiError::AlreadyExists(format!(
                    "snapshot {name} exists already, of volume {}; pick another name",
                    found.source
                ))),
                None => s.create_snapshot(&name, &source),
            })
            .await?;
        Ok(Response::new(pb::CreateSnapshotResponse {
            snapshot: Some(snapshot_message(&snapshot)),
        }))
    }

    async fn delete_snapshot(
        &self,
        r: Request<pb::DeleteSnapshotRequest>,
    ) -> Reply<pb::DeleteSnapshotResponse> {
        let id = request::required(&r.get_ref().snapshot_id, "snapshot_id")?.to_owned();
        let _claim = self.0.inflight.claim("snapshot", &id)?;
        self.0.workers.run(move |s| s.delete_snapshot(&id)).await?;
        Ok(Response::new(pb::DeleteSnapshotResponse {}))
    }

    async fn list_snapshots(
        &self,
        r: Request<pb::ListSnapshotsRequest>,
    ) -> Reply<pb::ListSnapshotsResponse> {
        let r = r.into_inner();
        let limit = request::page_size(r.max_entries)?;
        let after = request::after_token(&r.starting_token)?;
        let (snapshots, next_token) = self
            .0
            .workers
            .run(move |s| {
                let filter = SnapshotFilter {
                    id: Some(r.snapshot_id.as_str()).filter(|id| !id.is_empty()),
                    source: Some(r.source_volume_id.as_str()).filter(|id| !id.is_empty()),
                };
                let mut snapshots = s.list_snapshots(filter, &after, limit.saturating_add(1))?;
                let next = next_token(&mut snapshots, limit, |s| &s.id);
                Ok((snapshots, next))
            })
            .await?;
        let entries = snapshots
            .iter()
            .map(|s| pb::list_snapshots_response::Entry {
                snapshot: Some(snapshot_message(s)),
            })
            .collect();
        Ok(Response::new(pb::ListSnapshotsResponse {
            entries,
            next_token,
        }))
    }

    async fn get_snapshot(
        &self,
        _: Request<pb::GetSnapshotRequest>,
    ) -> Reply<pb::GetSnapshotResponse> {
        Err(unoffered("GetSnapshot"))
    }

    async fn controller_expand_volume(
        &self,
        r: Request<pb::ControllerExpandVolumeRequest>,
    ) -> Reply<pb::ControllerExpandVolumeResponse> {
        let r = r.into_inner();
        let id = request::required(&r.volume_id, "volume_id")?.to_owned();
        let range = request::growth(r.capacity_range.as_ref())?.to_owned();
        let _claim = self.0.inflight.claim("volume", &id)?;
        let (capacity, kind) = self
            .0
            .workers
            .run(move |s| {
                let volume = s.existing(&id)?;
                request::fits(r.volume_capability.as_ref(), volume.kind)?;
                let wanted = expansion(s, &volume, &range)?;
                Ok((s.expand(&id, wanted, false)?, volume.kind))
            })
            .await?;
        Ok(Response::new(pb::ControllerExpandVolumeResponse {
            capacity_bytes: capacity as i64,
            // The filesystem inside an image grows on the node.
            node_expansion_required: kind == Kind::Image,
        }))
    }

    async fn controller_get_volume(
        &self,
        r: Request<pb::ControllerGetVolumeRequest>,
    ) -> Reply<pb::ControllerGetVolumeResponse> {
        let id = request::required(&r.get_ref().volume_id, "volume_id")?.to_owned();
        let node = self.0.config.node_id.clone();
        let (volume, published, condition) = self
            .0
            .workers
            .run(move |s| {
                let v = s.existing(&id)?;
                let (published, condition) = status(s, &v)?;
                Ok((v, published, condition))
            })
            .await?;
        Ok(Response::new(pb::ControllerGetVolumeResponse {
            volume: Some(describe(&volume, &node)),
            status: Some(pb::controller_get_volume_response::VolumeStatus {
                published_node_ids: published,
                volume_condition: Some(condition),
            }),
        }))
    }

    async fn controller_modify_volume(
        &self,
        _: Request<pb::ControllerModifyVolumeRequest>,
    ) -> Reply<pb::ControllerModifyVolumeResponse> {
        Err(unoffered("ControllerModifyVolume"))
    }
}

/// CreateVolume against the storage: the same volume again for a repeated
/// call, ALREADY_EXISTS for a conflicting one, else a new one.
fn create(
    s: &Storage,
    name: &str,
    range: Option<&pb::CapacityRange>,
    recorded: &Recorded,
) -> Result<CsiVolume> {
    if let Some(existing) = s.volume_named(name)? {
        let same = Recorded::from_json(&existing.request).as_ref() == Some(recorded);
        if same && request::within(range, existing.capacity) {
            return Ok(existing);
        }
        return Err(CsiError::AlreadyExists(format!(
            "volume {name} exists already with other parameters, capabilities or capacity ({} bytes); pick another name or delete it first",
            existing.capacity
        )));
    }
    let floor = match &recorded.source {
        None => 0,
        Some(Source::Snapshot(id)) => {
            s.snapshot(id)?
                .ok_or_else(|| CsiError::NotFound(format!("snapshot {id} does not exist")))?
                .size
        }
        Some(Source::Volume(id)) => s.existing(id)?.capacity,
    };
    let min = request::minimum(recorded.kind, &recorded.fs);
    let capacity = request::capacity(range, floor, min)?;
    if range.is_some_and(|r| r.required_bytes > 0) && floor > capacity {
        return Err(CsiError::OutOfRange(format!(
            "the source holds {floor} bytes, more than the {capacity} bytes asked for"
        )));
    }
    let (free, total) = s.space()?;
    if capacity > total {
        return Err(CsiError::OutOfRange(format!(
            "{capacity} bytes is more than the {total} bytes of the filesystem holding the volumes"
        )));
    }
    if capacity > free {
        return Err(CsiError::ResourceExhausted(format!(
            "{capacity} bytes asked for, but only {free} bytes are free where volumes are kept"
        )));
    }
    s.create(&crate::storage::NewVolume {
        name,
        capacity,
        kind: recorded.kind,
        fs: &recorded.fs,
        source: recorded.source.as_ref(),
        request: recorded.to_json(),
    })
}

/// The size an expansion of `v` to `range` gives; OUT_OF_RANGE past what
/// the volumes' filesystem can hold.
pub(super) fn expansion(s: &Storage, v: &CsiVolume, range: &pb::CapacityRange) -> Result<u64> {
    let wanted = request::capacity(Some(range), v.capacity, 0)?;
    let (_, total) = s.space()?;
    if wanted > total {
        return Err(CsiError::OutOfRange(format!(
            "{wanted} bytes is more than the {total} bytes of the filesystem holding the volumes"
        )));
    }
    Ok(wanted)
}

fn controller_publish(
    s: &Storage,
    p: &strata_store::meta::csi::Publication,
    block: bool,
    ours: &str,
) -> Result<()> {
    let volume = s.existing(&p.volume)?;
    if p.node != ours {
        return Err(CsiError::NotFound(format!(
            "node {} is not known here; this controller serves node {ours}",
            p.node
        )));
    }
    if block != (volume.kind == Kind::Block) {
        return Err(CsiError::InvalidArgument(format!(
            "volume {} is a {:?} volume and cannot be published with this access type",
            volume.id, volume.kind
        )));
    }
    if s.controller_publish(p)? {
        return Ok(());
    }
    let existing = s.publications(&p.volume)?;
    match existing.iter().find(|e| e.node == p.node) {
        Some(e) if e.readonly == p.readonly && e.request == p.request => Ok(()),
        _ => Err(CsiError::AlreadyExists(format!(
            "volume {} is already published to node {} with another capability or read-only setting; unpublish it first",
            p.volume, p.node
        ))),
    }
}

/// ValidateVolumeCapabilities: confirmed only if every capability and
/// the given context and parameters fit the volume.
fn validate(
    volume: &CsiVolume,
    r: pb::ValidateVolumeCapabilitiesRequest,
) -> pb::ValidateVolumeCapabilitiesResponse {
    let recorded = Recorded::from_json(&volume.request);
    let refusal = |message: String| pb::ValidateVolumeCapabilitiesResponse {
        confirmed: None,
        message,
    };
    for cap in &r.volume_capabilities {
        match request::access(cap) {
            Err(e) => return refusal(e.to_string()),
            Ok(access) if (access == request::Access::Block) != (volume.kind == Kind::Block) => {
                return refusal(format!(
                    "volume {} is a {:?} volume; that access type does not fit it",
                    volume.id, volume.kind
                ));
            }
            Ok(_) => {}
        }
    }
    if let Some(recorded) = &recorded {
        let params: std::collections::BTreeMap<_, _> = r.parameters.clone().into_iter().collect();
        if !r.parameters.is_empty() && params != recorded.parameters {
            return refusal("the parameters differ from the ones the volume was made with".into());
        }
        let context = recorded.context();
        if r.volume_context
            .iter()
            .any(|(k, v)| context.get(k) != Some(v))
        {
            return refusal("the volume context differs from the volume's".into());
        }
    }
    pb::ValidateVolumeCapabilitiesResponse {
        confirmed: Some(pb::validate_volume_capabilities_response::Confirmed {
            volume_context: r.volume_context,
            volume_capabilities: r.volume_capabilities,
            parameters: r.parameters,
            mutable_parameters: Default::default(),
        }),
        message: String::new(),
    }
}

/// A volume as CSI describes it.
fn describe(v: &CsiVolume, node: &str) -> pb::Volume {
    let recorded = Recorded::from_json(&v.request);
    pb::Volume {
        capacity_bytes: v.capacity as i64,
        volume_id: v.id.clone(),
        volume_context: recorded.as_ref().map(Recorded::context).unwrap_or_default(),
        content_source: recorded
            .and_then(|r| r.source)
            .map(|s| VolumeContentSource {
                r#type: Some(match s {
                    Source::Snapshot(snapshot_id) => {
                        volume_content_source::Type::Snapshot(SnapshotSource { snapshot_id })
                    }
                    Source::Volume(volume_id) => {
                        volume_content_source::Type::Volume(VolumeSource { volume_id })
                    }
                }),
            }),
        accessible_topology: vec![request::topology(node)],
    }
}

/// The nodes a volume is published to, and its condition.
fn status(s: &Storage, v: &CsiVolume) -> Result<(Vec<String>, pb::VolumeCondition)> {
    let published = s.publications(&v.id)?.into_iter().map(|p| p.node).collect();
    let c = s.condition(v);
    Ok((
        published,
        pb::VolumeCondition {
            abnormal: c.abnormal,
            message: c.message,
        },
    ))
}

fn snapshot_message(s: &Snapshot) -> pb::Snapshot {
    let created = s.created.parse::<jiff::Timestamp>().ok();
    pb::Snapshot {
        size_bytes: s.size as i64,
        snapshot_id: s.id.clone(),
        source_volume_id: s.source.clone(),
        creation_time: created.map(|t| prost_types::Timestamp {
            seconds: t.as_second(),
            nanos: t.subsec_nanosecond(),
        }),
        ready_to_use: s.ready,
        group_snapshot_id: String::new(),
    }
}

fn source(s: Option<&VolumeContentSource>) -> Result<Option<Source>> {
    let Some(s) = s else { return Ok(None) };
    match &s.r#type {
        Some(volume_content_source::Type::Snapshot(snap)) => Ok(Some(Source::Snapshot(
            request::required(
                &snap.snapshot_id,
                "volume_content_source.snapshot.snapshot_id",
            )?
            .to_owned(),
        ))),
        Some(volume_content_source::Type::Volume(v)) => Ok(Some(Source::Volume(
            request::required(&v.volume_id, "volume_content_source.volume.volume_id")?.to_owned(),
        ))),
        None => Err(crate::error::missing(
            "volume_content_source type (snapshot or volume)",
        )),
    }
}

fn modes(caps: &[pb::VolumeCapability]) -> Vec<i32> {
    let mut modes: Vec<i32> = caps
        .iter()
        .filter_map(|c| c.access_mode.as_ref())
        .map(|m| m.mode)
        .collect();
    modes.sort_unstable();
    modes.dedup();
    modes
}

/// Cuts `items` (fetched one past `limit`) to a page and returns the token
/// of the next page, empty on the last.
fn next_token<T>(items: &mut Vec<T>, limit: usize, id: impl Fn(&T) -> &String) -> String {
    if items.len() <= limit {
        return String::new();
    }
    items.truncate(limit);
    items
        .last()
        .map(|last| request::token_after(id(last)))
        .unwrap_or_default()
}

fn unoffered(call: &str) -> Status {
    CsiError::Unimplemented(format!(
        "{call} is not offered by this plugin (see ControllerGetCapabilities)"
    ))
    .into()
}
