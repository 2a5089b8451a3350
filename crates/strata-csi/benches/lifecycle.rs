//! A CSI volume's whole life as an orchestrator drives it over the socket:
//! CreateVolume, NodeStageVolume, NodePublishVolume, NodeUnpublishVolume,
//! NodeUnstageVolume, DeleteVolume, for a 1 GiB folder volume and a 1 GiB
//! image volume (mkfs included); and ListVolumes over 1,000 volumes in
//! pages of 100.
//!
//! Run as root: `cargo bench -p strata-csi --bench lifecycle`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use std::path::Path;
use strata_csi::client::CsiClient;
use strata_csi::pb;
use support::{Paths, create, stage_and_publish, start, unpublish_and_delete};

const GIB: i64 = 1 << 30;

/// One volume from create to delete.
async fn lifecycle(client: &mut CsiClient, dir: &Path, name: &str, kind: &str) {
    let id = create(client, name, kind, GIB).await;
    let at = Paths {
        staging: dir.join("staging").join(name),
        target: dir.join("target").join(name),
    };
    stage_and_publish(client, &id, &at).await;
    unpublish_and_delete(client, &id, &at).await;
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
    let server = start(&dir.path().join("root"), "bench");
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
            create(&mut client, &format!("listed-{n:04}"), "dir", GIB).await;
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
    // The client's connection lives on its runtime: close both first.
    drop(client);
    drop(runtime);
    server.stop().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
