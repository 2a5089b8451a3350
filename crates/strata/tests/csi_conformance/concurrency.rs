//! Concurrent calls. "The CO MAY lose state ... and MAY issue multiple
//! calls simultaneously for the same volume. The plugin SHOULD handle this
//! as gracefully as possible. The error code ABORTED MAY be returned." So a
//! racing call on the same volume either succeeds, consistently with the
//! other, or is ABORTED; and it never leaves two volumes, or a half-made
//! one, behind.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_csi::pb;
use tonic::{Code, Status};

use crate::harness::*;

/// Runs `n` copies of `call` at once; their results, in order.
fn race<T, F, Fut>(h: &Csi, n: usize, call: F) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
{
    h.block_on(async {
        let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(call(i))).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(
                t.await
                    .expect("a racing call panicked")
                    .map(tonic::Response::into_inner),
            );
        }
        out
    })
}

/// Repeats `call` while it is ABORTED ("retry with exponential back off").
fn until_not_aborted<T>(what: &str, call: impl Fn() -> Result<T, Status>) -> Result<T, Status> {
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
            r => return r,
        }
    }
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

/// Several CreateVolume calls with the same name at once: each OK or
/// ABORTED, the OK ones all the same volume, and one volume in the end.
#[test]
fn concurrent_create_same_name() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = slow_kind(&h);
    for n in [2, 4] {
        let req = h.create_request(&kind, &h.name("race"));
        let results = race(&h, n, |_| {
            let mut c = h.controller.clone();
            let req = req.clone();
            async move { c.create_volume(req).await }
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
        let v = ok(
            "CreateVolume after the race",
            until_not_aborted("CreateVolume", || h.create_volume(req.clone())),
        )
        .volume
        .expect("no volume");
        if let Some(id) = ids.iter().next() {
            assert_eq!(&v.volume_id, id, "the retry gives another volume");
        }
        if h.has_ctrl(Ctrl::ListVolumes) {
            let all = h.all_volumes(0);
            let same = all
                .iter()
                .filter(|e| {
                    e.volume
                        .as_ref()
                        .is_some_and(|x| x.volume_id == v.volume_id)
                })
                .count();
            assert_eq!(same, 1, "ListVolumes lists {} {}", same, v.volume_id);
            if h.strata {
                assert_eq!(all.len(), 1, "{n} racing CreateVolume left {all:?}");
            }
        }
        // It is a whole volume.
        let (staging, target) = h.mount(&v, &kind.cap());
        write_file(&target.join("whole"), b"yes");
        h.unmount(&v, staging.as_deref(), &target);
        h.delete(&v.volume_id);
    }
}

/// CreateVolume racing DeleteVolume of the volume it makes: each OK or
/// ABORTED, and what is left is coherent: either no volume, or a whole one
/// that ListVolumes, ControllerGetVolume and the node agree on.
#[test]
fn concurrent_create_and_delete() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = slow_kind(&h);
    let req = h.create_request(&kind, &h.name("race"));
    // Learn the ID the name gets, then start over.
    let first = h.create_with(req.clone());
    h.delete(&first.volume_id);
    let id = first.volume_id.clone();
    let mut create = h.controller.clone();
    let mut delete = h.controller.clone();
    let (created, deleted) = h.block_on(async {
        let c = tokio::spawn({
            let req = req.clone();
            async move {
                create
                    .create_volume(req)
                    .await
                    .map(tonic::Response::into_inner)
            }
        });
        // Give the create a head start, so the delete lands while it works.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let d = tokio::spawn({
            let id = id.clone();
            async move {
                delete
                    .delete_volume(pb::DeleteVolumeRequest {
                        volume_id: id,
                        ..Default::default()
                    })
                    .await
                    .map(tonic::Response::into_inner)
            }
        });
        (
            c.await.expect("create panicked"),
            d.await.expect("delete panicked"),
        )
    });
    for (what, code) in [
        ("CreateVolume", code_of(&created)),
        ("DeleteVolume", code_of(&deleted)),
    ] {
        assert!(
            matches!(code, Code::Ok | Code::Aborted),
            "{what} racing: {}",
            if what == "CreateVolume" {
                outcome(&created)
            } else {
                outcome(&deleted)
            }
        );
    }
    // Whatever happened, the name still leads to one whole volume.
    let v = ok(
        "CreateVolume after the race",
        until_not_aborted("CreateVolume", || h.create_volume(req.clone())),
    )
    .volume
    .expect("no volume");
    if h.has_ctrl(Ctrl::ListVolumes) {
        let all = h.all_volumes(0);
        let same = all
            .iter()
            .filter(|e| {
                e.volume
                    .as_ref()
                    .is_some_and(|x| x.volume_id == v.volume_id)
            })
            .count();
        assert_eq!(same, 1, "ListVolumes lists {same} {}", v.volume_id);
        if h.strata {
            assert_eq!(all.len(), 1, "the race left {all:?}");
        }
    }
    let (staging, target) = h.mount(&v, &kind.cap());
    write_file(&target.join("whole"), b"yes");
    h.unmount(&v, staging.as_deref(), &target);
    h.delete(&v.volume_id);
}

/// Calls on different volumes do not get in each other's way: ABORTED is
/// for "an operation pending for the specified volume".
#[test]
fn concurrent_calls_on_different_volumes() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = slow_kind(&h);
    let reqs: Vec<pb::CreateVolumeRequest> = (0..3)
        .map(|_| h.create_request(&kind, &h.name("apart")))
        .collect();
    let results = race(&h, reqs.len(), |i| {
        let mut c = h.controller.clone();
        let req = reqs[i].clone();
        async move { c.create_volume(req).await }
    });
    // Adopt what was made, so it is cleaned up.
    let made: Vec<pb::Volume> = reqs
        .iter()
        .map(|r| {
            ok(
                "CreateVolume (again, to adopt)",
                until_not_aborted("CreateVolume", || h.create_volume(r.clone())),
            )
        })
        .map(|r| r.volume.expect("no volume"))
        .collect();
    check(
        "CreateVolume of different volumes at once",
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| case(format!("volume {i}"), r, &[Code::Ok]))
            .collect(),
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
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = h.image_kind();
    let v = h.create(&kind);
    let c = kind.cap();
    let staging = h
        .has_node(NodeCap::StageUnstageVolume)
        .then(|| h.staging_path());
    if let Some(s) = &staging {
        let req = h.stage_request(&v, &c, s);
        let results = race(&h, 3, |_| {
            let mut n = h.node.clone();
            let req = req.clone();
            async move { n.node_stage_volume(req).await }
        });
        check(
            "racing NodeStageVolume",
            results
                .into_iter()
                .enumerate()
                .map(|(i, r)| case(format!("call {i}"), r, &[Code::Ok, Code::Aborted]))
                .collect(),
        );
        ok(
            "NodeStageVolume after the race",
            until_not_aborted("NodeStageVolume", || h.node_stage_volume(req.clone())),
        );
        assert!(
            mounts_at(s) <= 1,
            "{} mounts at the staging path",
            mounts_at(s)
        );
    }
    let target = h.target_path();
    let req = h.publish_request(&v, &c, staging.as_deref(), &target, false);
    let results = race(&h, 3, |_| {
        let mut n = h.node.clone();
        let req = req.clone();
        async move { n.node_publish_volume(req).await }
    });
    check(
        "racing NodePublishVolume",
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| case(format!("call {i}"), r, &[Code::Ok, Code::Aborted]))
            .collect(),
    );
    ok(
        "NodePublishVolume after the race",
        until_not_aborted("NodePublishVolume", || h.node_publish_volume(req.clone())),
    );
    assert_eq!(mounts_at(&target), 1, "mounts at the target");
    write_file(&target.join("once"), b"yes");
    h.unmount(&v, staging.as_deref(), &target);
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
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume]) {
        return;
    }
    let kind = slow_kind(&h);
    let v = h.create(&kind);
    let mut expand = h.controller.clone();
    let mut delete = h.controller.clone();
    let expand_req = pb::ControllerExpandVolumeRequest {
        volume_id: v.volume_id.clone(),
        capacity_range: range(2 * v.capacity_bytes, 0),
        volume_capability: Some(kind.cap()),
        ..Default::default()
    };
    let delete_req = pb::DeleteVolumeRequest {
        volume_id: v.volume_id.clone(),
        ..Default::default()
    };
    let (expanded, deleted) = h.block_on(async {
        let e = tokio::spawn(async move {
            expand
                .controller_expand_volume(expand_req)
                .await
                .map(tonic::Response::into_inner)
        });
        let d = tokio::spawn(async move {
            delete
                .delete_volume(delete_req)
                .await
                .map(tonic::Response::into_inner)
        });
        (
            e.await.expect("expand panicked"),
            d.await.expect("delete panicked"),
        )
    });
    check(
        "racing",
        vec![
            case(
                "ControllerExpandVolume",
                expanded,
                &[Code::Ok, Code::Aborted, Code::NotFound],
            ),
            case(
                "DeleteVolume",
                deleted.as_ref().map(drop).map_err(Clone::clone),
                &[Code::Ok, Code::Aborted],
            ),
        ],
    );
    let exists = if h.has_ctrl(Ctrl::GetVolume) {
        let r = h.controller_get_volume(pb::ControllerGetVolumeRequest {
            volume_id: v.volume_id.clone(),
        });
        match r {
            Ok(_) => true,
            Err(s) if s.code() == Code::NotFound => false,
            Err(s) => panic!("ControllerGetVolume after the race: {}", status_text(&s)),
        }
    } else if h.has_ctrl(Ctrl::ListVolumes) {
        h.all_volumes(0).iter().any(|e| {
            e.volume
                .as_ref()
                .is_some_and(|x| x.volume_id == v.volume_id)
        })
    } else {
        return;
    };
    assert_eq!(
        exists,
        deleted.is_err(),
        "DeleteVolume said {}, yet the volume exists: {exists}",
        outcome(&deleted)
    );
}
