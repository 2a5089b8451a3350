//! A CSI volume's whole life as an orchestrator drives it over the socket:
//! CreateVolume, NodeStageVolume, NodePublishVolume, NodeUnpublishVolume,
//! NodeUnstageVolume, DeleteVolume, for a 1 GiB folder volume and a 1 GiB
//! image volume (mkfs included); and ListVolumes over 1,000 volumes in
//! pages of 100.
//!
//! Run as root: `cargo bench -p strata-csi --bench lifecycle`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use strata_csi::client::CsiClient;
use strata_csi::pb::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
use strata_csi::pb::{self, CapacityRange, VolumeCapability};
use strata_csi::server::{Config, RunningServer, Server};
use strata_csi::storage::Storage;
use strata_store::Layout;
use strata_store::meta::Db;

const GIB: i64 = 1 << 30;

fn start(root: &Path) -> RunningServer {
    std::fs::create_dir_all(root).unwrap();
    let config = Config {
        socket: root.join("csi.sock"),
        node_id: "bench".into(),
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

fn mount_capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

async fn create(client: &mut CsiClient, name: &str, kind: &str) -> String {
    let mut parameters = HashMap::new();
    parameters.insert("type".to_owned(), kind.to_owned());
    let request = pb::CreateVolumeRequest {
        name: name.to_owned(),
        capacity_range: Some(CapacityRange {
            required_bytes: GIB,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_capability()],
        parameters,
        ..Default::default()
    };
    let response = client.controller().create_volume(request).await.unwrap();
    response.into_inner().volume.unwrap().volume_id
}

/// One volume from create to delete.
async fn lifecycle(client: &mut CsiClient, dir: &Path, name: &str, kind: &str) {
    let id = create(client, name, kind).await;
    let staging = dir.join("staging").join(name);
    let target = dir.join("target").join(name);
    std::fs::create_dir_all(&staging).unwrap();
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    let node = client.node();
    node.node_stage_volume(pb::NodeStageVolumeRequest {
        volume_id: id.clone(),
        staging_target_path: path(&staging),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    })
    .await
    .unwrap();
    node.node_publish_volume(pb::NodePublishVolumeRequest {
        volume_id: id.clone(),
        staging_target_path: path(&staging),
        target_path: path(&target),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    })
    .await
    .unwrap();
    node.node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
        volume_id: id.clone(),
        target_path: path(&target),
    })
    .await
    .unwrap();
    node.node_unstage_volume(pb::NodeUnstageVolumeRequest {
        volume_id: id.clone(),
        staging_target_path: path(&staging),
    })
    .await
    .unwrap();
    client
        .controller()
        .delete_volume(pb::DeleteVolumeRequest {
            volume_id: id,
            ..Default::default()
        })
        .await
        .unwrap();
    std::fs::remove_dir(&staging).unwrap();
}

/// Every page of ListVolumes; returns how many volumes it saw.
async fn list_all(client: &mut CsiClient, page: i32) -> usize {
    let mut token = String::new();
    let mut seen = 0;
    loop {
        let response = client
            .controller()
            .list_volumes(pb::ListVolumesRequest {
                max_entries: page,
                starting_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        seen += response.entries.len();
        if response.next_token.is_empty() {
            return seen;
        }
        token = response.next_token;
    }
}

fn bench(c: &mut Criterion) {
    // On disk, in a fresh folder, as a real store is.
    let dir = tempfile::Builder::new()
        .prefix("strata-csi-bench")
        .tempdir_in("/var/tmp")
        .unwrap();
    let server = start(&dir.path().join("root"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = format!("unix://{}", dir.path().join("root/csi.sock").display());
    let mut client = runtime.block_on(CsiClient::connect(&endpoint)).unwrap();

    let mut group = c.benchmark_group("csi");
    // Flat: every sample runs the same number of cycles, so 100 samples
    // of the slow image lifecycle stay near 100 cycles.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(100);
    for kind in ["dir", "image"] {
        let mut n = 0u64;
        group.bench_function(format!("lifecycle_1GiB_{kind}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    let name = format!("{kind}-{n}");
                    runtime.block_on(lifecycle(&mut client, dir.path(), &name, kind));
                }
                start.elapsed()
            })
        });
    }

    runtime.block_on(async {
        for n in 0..1000 {
            create(&mut client, &format!("listed-{n:04}"), "dir").await;
        }
    });
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("list_1000_volumes_pages_of_100", |b| {
        b.iter(|| assert_eq!(runtime.block_on(list_all(&mut client, 100)), 1000))
    });
    group.bench_function("list_1000_volumes_one_page", |b| {
        b.iter(|| assert_eq!(runtime.block_on(list_all(&mut client, 0)), 1000))
    });
    group.finish();
    drop(client);
    server.stop().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
