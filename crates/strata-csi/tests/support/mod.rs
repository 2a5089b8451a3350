//! Driving the real server in-process over its socket, as an orchestrator
//! does: shared by the integration tests and the lifecycle benchmark
//! (which includes this file by path).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use strata_csi::client::CsiClient;
use strata_csi::pb::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
use strata_csi::pb::{self, CapacityRange, VolumeCapability};
use strata_csi::server::{Config, RunningServer, Server};
use strata_csi::storage::Storage;
use strata_store::Layout;
use strata_store::meta::Db;

/// A server on `<root>/csi.sock` over a store in `root`, for node `node`.
pub fn start(root: &Path, node: &str) -> RunningServer {
    std::fs::create_dir_all(root).unwrap();
    let config = Config {
        socket: root.join("csi.sock"),
        node_id: node.into(),
        controller: true,
        node: true,
        attach_required: false,
        max_volumes_per_node: 0,
    };
    let layout = Layout::new(root);
    Server::bind(config, move || {
        Db::open(&layout.db()).map(|db| Storage::new(&layout, Rc::new(db)))
    })
    .unwrap()
    .spawn()
}

pub fn mount_capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

/// Creates mount volume `name` of `bytes` with `type=kind`; its ID.
pub async fn create(client: &mut CsiClient, name: &str, kind: &str, bytes: i64) -> String {
    let mut parameters = HashMap::new();
    parameters.insert("type".to_owned(), kind.to_owned());
    let request = pb::CreateVolumeRequest {
        name: name.to_owned(),
        capacity_range: Some(CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_capability()],
        parameters,
        ..Default::default()
    };
    let response = client.controller().create_volume(request).await.unwrap();
    response.into_inner().volume.unwrap().volume_id
}

/// Where a volume is staged and published.
pub struct Paths {
    pub staging: PathBuf,
    pub target: PathBuf,
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// NodeStageVolume, then NodePublishVolume.
pub async fn stage_and_publish(client: &mut CsiClient, id: &str, at: &Paths) {
    std::fs::create_dir_all(&at.staging).unwrap();
    let node = client.node();
    node.node_stage_volume(pb::NodeStageVolumeRequest {
        volume_id: id.to_owned(),
        staging_target_path: text(&at.staging),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    })
    .await
    .unwrap();
    node.node_publish_volume(pb::NodePublishVolumeRequest {
        volume_id: id.to_owned(),
        staging_target_path: text(&at.staging),
        target_path: text(&at.target),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    })
    .await
    .unwrap();
}

/// NodeUnpublishVolume, NodeUnstageVolume, then DeleteVolume.
pub async fn unpublish_and_delete(client: &mut CsiClient, id: &str, at: &Paths) {
    let node = client.node();
    node.node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
        volume_id: id.to_owned(),
        target_path: text(&at.target),
    })
    .await
    .unwrap();
    node.node_unstage_volume(pb::NodeUnstageVolumeRequest {
        volume_id: id.to_owned(),
        staging_target_path: text(&at.staging),
    })
    .await
    .unwrap();
    client
        .controller()
        .delete_volume(pb::DeleteVolumeRequest {
            volume_id: id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    std::fs::remove_dir(&at.staging).unwrap();
}
