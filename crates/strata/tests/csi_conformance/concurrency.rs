//! Concurrent calls. "The CO MAY lose state ... and MAY issue multiple
//! calls simultaneously for the same volume. The plugin SHOULD handle this
//! as gracefully as possible. The error code ABORTED MAY be returned." So a
//! racing call on the same volume either succeeds, consistently with the
//! other, or is ABORTED; and it never leaves two volumes, or a half-made
//! one, behind.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_csi::pb;
use tonic::{Code, Response, Status};

use crate::harness::*;

/// Runs `n` copies of `call` at once; their results, in order.
fn race<T, F, Fut>(h: &Csi, n: usize, call: F) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Response<T>, Status>> + Send + 'static,
{
    h.block_on(async {
        let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(call(i))).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(
                t.await
                    .expect("a racing call panicked")
                    .map(Response::into_inner),
            );
        }
        out
    })
}

/// Runs `n` copies of the same call: `rpc` with a clone of `client` and of
/// `req`.
fn race_same<C: Clone, R: Clone, T, Fut>(
    h: &Csi,
    n: usize,
    client: &C,
    req: &R,
    rpc: impl Fn(C, R) -> Fut,
) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    Fut: Future<Output = Result<Response<T>, Status>> + Send + 'static,
{
    race(h, n, |_| rpc(client.clone(), req.clone()))
}

/// Runs `first`, and `second` once `first` has had `head_start`.
fn race_two<A, B>(
    h: &Csi,
    head_start: Duration,
    first: impl Future<Output = Result<Response<A>, Status>> + Send + 'static,
    second: impl Future<Output = Result<Response<B>, Status>> + Send + 'static,
) -> (Result<A, Status>, Result<B, Status>)
where
    A: Send + 'static,
    B: Send + 'static,
{
    h.block_on(async {
        let first = tokio::spawn(first);
        tokio::time::sleep(head_start).await;
        let second = tokio::spawn(second);
        (
            first
                .await
                .expect("a racing call panicked")
                .map(Response::into_inner),
            second
                .await
                .expect("a racing call panicked")
                .map(Response::into_inner),
        )
    })
}

/// Checks the results of racing calls: each one of `want`.
fn check_racing<T: std::fmt::Debug>(what: &str, results: Vec<Result<T, Status>>, want: &[Code]) {
    let cases = results.into_iter().enumerate();
    check(
        what,
        cases
            .map(|(i, r)| case(format!("call {i}"), r, want))
            .collect(),
    );
}

/// Repeats `call` while it is ABORTED ("retry with exponential back off"),
/// as a CO does after a race; it must then succeed.
fn after_race<T>(what: &str, call: impl Fn() -> Result<T, Status>) -> T {
    let t = Instant::now();
    let mut wait = Duration::from_millis(50);
    loop {
        match call() {
            Err(s) if s.code() == Code::Aborted => {
                assert!(
                    t.elapsed() < Duration::from_secs(120),
                    "{what}: still ABORTED after 2 minutes"
                );
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            r => return ok(&format!("{what} after the race"), r),
        }
    }
}

/// CreateVolume `req` after a race: the volume.
fn created_after_race(h: &Csi, req: &pb::CreateVolumeRequest) -> pb::Volume {
    let r = after_race("CreateVolume", || h.create_volume(req.clone()));
    r.volume.expect("no volume")
}

/// What a race left must be one whole volume: listed once (and, on a
/// private server, alone), and usable on the node. It is deleted then.
fn assert_one_whole_volume(h: &Csi, kind: &Kind, v: &pb::Volume, race: &str) {
    if h.has_ctrl(Ctrl::ListVolumes) {
        let ids = h.volume_ids();
        let same = ids.iter().filter(|id| **id == v.volume_id).count();
        assert_eq!(same, 1, "ListVolumes lists {same} {}", v.volume_id);
        if h.strata {
            assert_eq!(ids.len(), 1, "{race} left {ids:?}");
        }
    }
    h.with_mounted(kind, v, |t| write_file(&t.join("whole"), b"yes"));
    h.delete(&v.volume_id);
}

/// The number of mounts at exactly `path`.
fn mounts_at(path: &Path) -> usize {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path_str(path);
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == p)
        .count()
}

/// A kind slow enough to make (a big image on Strata) for calls to overlap.
fn slow_kind(h: &Csi) -> Kind {
    let mut k = h.image_kind();
    if h.strata {
        k.size = 1024 * MIB;
    }
    k
}

/// The plugin with CREATE_DELETE_VOLUME.
fn creating() -> Option<Csi> {
    Csi::start().requiring(&[Ctrl::CreateDeleteVolume])
}

/// Several CreateVolume calls with the same name at once: each OK or
/// ABORTED, the OK ones all the same volume, and one volume in the end.
#[test]
fn concurrent_create_same_name() {
    let Some(h) = creating() else { return };
    let kind = slow_kind(&h);
    for n in [2, 4] {
        let req = h.create_request(&kind, "race");
        let results = race_same(&h, n, &h.controller, &req, |mut c, r| async move {
            c.create_volume(r).await
        });
        let mut ids = HashSet::new();
        for r in &results {
            match r {
                Ok(r) => {
                    ids.insert(r.volume.as_ref().expect("no volume").volume_id.clone());
                }
                Err(s) if s.code() == Code::Aborted => assert!(!s.message().is_empty()),
                Err(s) => panic!("{n} racing CreateVolume: one got {}", status_text(s)),
            }
        }
        assert!(
            ids.len() <= 1,
            "{n} racing CreateVolume made several volumes: {ids:?}"
        );
        // Retried in turn, as a CO would, it gives the one volume.
        let v = created_after_race(&h, &req);
        if let Some(id) = ids.iter().next() {
            assert_eq!(&v.volume_id, id, "the retry gives another volume");
        }
        assert_one_whole_volume(&h, &kind, &v, &format!("{n} racing CreateVolume"));
    }
}

/// CreateVolume racing DeleteVolume of the volume it makes: each OK or
/// ABORTED, and what is left is coherent: either no volume, or a whole one
/// that ListVolumes, ControllerGetVolume and the node agree on.
#[test]
fn concurrent_create_and_delete() {
    let Some(h) = creating() else { return };
    let kind = slow_kind(&h);
    let req = h.create_request(&kind, "race");
    // Learn the ID the name gets, then start over.
    let first = h.create_with(req.clone());
    h.delete(&first.volume_id);
    let (mut create, mut delete) = (h.controller.clone(), h.controller.clone());
    let delete_req = delete_request(&first.volume_id);
    let create_req = req.clone();
    // Give the create a head start, so the delete lands while it works.
    let (created, deleted) = race_two(
        &h,
        Duration::from_millis(30),
        async move { create.create_volume(create_req).await },
        async move { delete.delete_volume(delete_req).await },
    );
    check(
        "racing",
        vec![
            case("CreateVolume", created, &[Code::Ok, Code::Aborted]),
            case("DeleteVolume", deleted, &[Code::Ok, Code::Aborted]),
        ],
    );
    // Whatever happened, the name still leads to one whole volume.
    let v = created_after_race(&h, &req);
    assert_one_whole_volume(&h, &kind, &v, "the race");
}

/// Calls on different volumes do not get in each other's way: ABORTED is
/// for "an operation pending for the specified volume".
#[test]
fn concurrent_calls_on_different_volumes() {
    let Some(h) = creating() else { return };
    let kind = slow_kind(&h);
    let reqs: Vec<pb::CreateVolumeRequest> =
        (0..3).map(|_| h.create_request(&kind, "apart")).collect();
    let results = race(&h, reqs.len(), |i| {
        let mut c = h.controller.clone();
        let req = reqs[i].clone();
        async move { c.create_volume(req).await }
    });
    // Adopt what was made, so it is cleaned up.
    let made: Vec<pb::Volume> = reqs.iter().map(|r| created_after_race(&h, r)).collect();
    check_racing(
        "CreateVolume of different volumes at once",
        results,
        &[Code::Ok],
    );
    let ids: HashSet<&str> = made.iter().map(|v| v.volume_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        made.len(),
        "different names gave the same volume"
    );
}

/// NodeStageVolume and NodePublishVolume racing themselves: each OK or
/// ABORTED, and one mount in the end, not two stacked.
#[test]
fn concurrent_stage_and_publish_same_volume() {
    let Some(h) = creating() else { return };
    let kind = h.image_kind();
    let v = h.create(&kind);
    let c = kind.cap();
    let either = &[Code::Ok, Code::Aborted];
    let staging = h.staging_if_staged();
    if let Some(s) = &staging {
        let req = h.stage_request(&v, &c, s);
        let results = race_same(&h, 3, &h.node, &req, |mut n, r| async move {
            n.node_stage_volume(r).await
        });
        check_racing("racing NodeStageVolume", results, either);
        after_race("NodeStageVolume", || h.node_stage_volume(req.clone()));
        assert!(
            mounts_at(s) <= 1,
            "{} mounts at the staging path",
            mounts_at(s)
        );
    }
    let target = h.target_path();
    let req = h.publish_request(&v, &c, staging.as_deref(), &target, false);
    let results = race_same(&h, 3, &h.node, &req, |mut n, r| async move {
        n.node_publish_volume(r).await
    });
    check_racing("racing NodePublishVolume", results, either);
    after_race("NodePublishVolume", || h.node_publish_volume(req.clone()));
    assert_eq!(mounts_at(&target), 1, "mounts at the target");
    write_file(&target.join("once"), b"yes");
    h.unmount(&v.volume_id, staging.as_deref(), &target);
    assert_eq!(mounts_at(&target), 0, "mounts left at the target");
    if let Some(s) = &staging {
        assert_eq!(mounts_at(s), 0, "mounts left at the staging path");
    }
}

/// DeleteVolume racing ControllerExpandVolume of the same volume: each
/// succeeds, is ABORTED, or (the expansion, after the delete) finds no
/// volume; afterwards the volume is gone exactly when the delete said OK.
#[test]
fn concurrent_delete_and_expand() {
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume]) else {
        return;
    };
    let kind = slow_kind(&h);
    let v = h.create(&kind);
    let (mut expand, mut delete) = (h.controller.clone(), h.controller.clone());
    let expand_req = pb::ControllerExpandVolumeRequest {
        volume_id: v.volume_id.clone(),
        capacity_range: range(2 * v.capacity_bytes, 0),
        volume_capability: Some(kind.cap()),
        ..Default::default()
    };
    let delete_req = delete_request(&v.volume_id);
    let (expanded, deleted) = race_two(
        &h,
        Duration::ZERO,
        async move { expand.controller_expand_volume(expand_req).await },
        async move { delete.delete_volume(delete_req).await },
    );
    let delete_said = outcome(&deleted);
    let gone = deleted.is_ok();
    check(
        "racing",
        vec![
            case(
                "ControllerExpandVolume",
                expanded,
                &[Code::Ok, Code::Aborted, Code::NotFound],
            ),
            case("DeleteVolume", deleted, &[Code::Ok, Code::Aborted]),
        ],
    );
    let exists = if h.has_ctrl(Ctrl::GetVolume) {
        match h.try_get_volume(&v.volume_id) {
            Ok(_) => true,
            Err(s) if s.code() == Code::NotFound => false,
            Err(s) => panic!("ControllerGetVolume after the race: {}", status_text(&s)),
        }
    } else if h.has_ctrl(Ctrl::ListVolumes) {
        h.volume_ids().contains(&v.volume_id)
    } else {
        return;
    };
    assert_eq!(
        exists, !gone,
        "DeleteVolume said {delete_said}, yet the volume exists: {exists}"
    );
}
