//! The binder alone: N pre-created Available PVs and N claims of varied
//! sizes and access modes, every write applied straight into the binder's
//! caches (`apply_locally`, no API server). Timed from the first claim
//! being stored to every claim Bound.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use serde_json::json;
use strata_kube::controllers::binder::{Binder, run_locally};

const SIZES: [usize; 3] = [1_000, 10_000, 50_000];

/// Enough syncs for any N here: about three per claim and per volume.
const SYNC_BUDGET: usize = 10_000_000;

fn now() -> jiff::Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// The size (in MiB) and modes of pair `i`: sizes spread over 1 MiB ..
/// 1 TiB so the smallest-fit lookup has real work, one pair in ten
/// ReadWriteMany so there is more than one bucket.
fn pair_shape(i: usize) -> (usize, bool) {
    let size_mib = 1 + (i * 7_919 + 17) % (1 << 20);
    (size_mib, i.is_multiple_of(10))
}

fn volume(i: usize) -> PersistentVolume {
    let (size_mib, shared) = pair_shape(i);
    let modes = if shared {
        json!(["ReadWriteOnce", "ReadWriteMany"])
    } else {
        json!(["ReadWriteOnce"])
    };
    serde_json::from_value(json!({
        "metadata": {"name": format!("pv-{i:06}"), "resourceVersion": "1"},
        "spec": {
            "capacity": {"storage": format!("{size_mib}Mi")},
            "accessModes": modes,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": format!("/srv/pv-{i}")},
        },
        "status": {"phase": "Available"},
    }))
    .unwrap()
}

/// Claim `j` asks for exactly what volume `perm(j)` offers, `perm` being a
/// permutation, so every claim can be bound and arrival order is unrelated
/// to size.
fn claim(j: usize, n: usize) -> PersistentVolumeClaim {
    let (size_mib, shared) = pair_shape((j * 7_919 + 13) % n);
    let modes = if shared {
        json!(["ReadWriteMany"])
    } else {
        json!(["ReadWriteOnce"])
    };
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("claim-{j:06}"), "namespace": "default",
            "uid": format!("uid-{j}"), "resourceVersion": "1",
            "creationTimestamp": "2025-06-01T11:00:00Z",
        },
        "spec": {
            "accessModes": modes,
            "storageClassName": "",
            "resources": {"requests": {"storage": format!("{size_mib}Mi")}},
        },
        "status": {"phase": "Pending"},
    }))
    .unwrap()
}

/// A binder holding N settled Available volumes, and N claims to store.
fn setup(n: usize) -> (Binder, Vec<PersistentVolumeClaim>) {
    let mut binder = Binder::new();
    for i in 0..n {
        binder.upsert_volume(volume(i));
    }
    run_locally(&mut binder, now(), SYNC_BUDGET).unwrap();
    (binder, (0..n).map(|j| claim(j, n)).collect())
}

fn bind_all(mut binder: Binder, claims: Vec<PersistentVolumeClaim>) -> Binder {
    for claim in claims {
        binder.upsert_claim(claim);
    }
    run_locally(&mut binder, now(), SYNC_BUDGET).unwrap();
    binder
}

fn assert_all_bound(binder: &Binder, n: usize) {
    let bound = binder.claims().filter(|c| {
        let phase = c.status.as_ref().and_then(|s| s.phase.as_deref());
        phase == Some("Bound")
    });
    assert_eq!(bound.count(), n, "every claim is Bound");
    let volumes_bound = binder.volumes().filter(|pv| {
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        phase == Some("Bound")
    });
    assert_eq!(volumes_bound.count(), n, "every volume is Bound");
}

fn binder_alone(c: &mut Criterion) {
    let mut group = c.benchmark_group("binder alone");
    group.sample_size(10);
    for n in SIZES {
        // Checked once, outside the timing.
        let (binder, claims) = setup(n);
        assert_all_bound(&bind_all(binder, claims), n);
        group.bench_with_input(BenchmarkId::new("bind pairs", n), &n, |b, &n| {
            b.iter_batched(
                || setup(n),
                |(binder, claims)| bind_all(binder, claims),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, binder_alone);
criterion_main!(benches);
