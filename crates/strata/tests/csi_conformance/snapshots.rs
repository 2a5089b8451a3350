//! Snapshots and clones: CreateSnapshot, DeleteSnapshot, ListSnapshots,
//! and volumes made from a snapshot or another volume, with the data they
//! must (and must not) have.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

/// The plugin with CREATE_DELETE_VOLUME, CREATE_DELETE_SNAPSHOT and `more`.
fn snapshotting(more: &[Ctrl]) -> Option<Csi> {
    let h = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::CreateDeleteSnapshot])?;
    h.need_ctrl(more).then_some(h)
}

fn snapshot_req(source: &str, name: &str) -> pb::CreateSnapshotRequest {
    pb::CreateSnapshotRequest {
        source_volume_id: source.to_owned(),
        name: name.to_owned(),
        ..Default::default()
    }
}

/// CreateSnapshot, repeated until the snapshot is ready ("CO SHOULD then
/// reissue the same CreateSnapshotRequest periodically until ready_to_use
/// flips to true"); Strata must be ready at once.
fn ready_snapshot(h: &Csi, source: &str) -> pb::Snapshot {
    let name = h.name("snap");
    let t = Instant::now();
    loop {
        let s = ok(
            &format!("CreateSnapshot {name}"),
            h.create_snapshot(snapshot_req(source, &name)),
        )
        .snapshot
        .expect("CreateSnapshot: no snapshot (REQUIRED)");
        if s.ready_to_use {
            return s;
        }
        assert!(
            !h.strata,
            "Strata's snapshot {} is not ready_to_use at once",
            s.snapshot_id
        );
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "snapshot {} never became ready",
            s.snapshot_id
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A snapshot of `v`, as a content source.
fn snapshot_of(h: &Csi, v: &pb::Volume) -> Option<pb::VolumeContentSource> {
    from_snapshot(&ready_snapshot(h, &v.volume_id).snapshot_id)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// CreateSnapshot answers with every REQUIRED field: an ID, the source, a
/// creation time, ready_to_use; a size the source's capacity can hold
/// ("The size of the volume MUST NOT be less than the size of the source
/// snapshot").
#[test]
fn create_snapshot() {
    let Some(h) = snapshotting(&[]) else { return };
    let start = now_secs();
    for kind in h.all_kinds() {
        let Some(v) = h.make(&kind) else { continue };
        let what = format!("CreateSnapshot of {}", kind.label);
        let s = ready_snapshot(&h, &v.volume_id);
        assert!(!s.snapshot_id.is_empty(), "{what}: snapshot_id is REQUIRED");
        assert!(
            s.snapshot_id.len() <= 128,
            "{what}: snapshot_id over 128 bytes"
        );
        assert_eq!(s.source_volume_id, v.volume_id, "{what}: source_volume_id");
        assert!(s.size_bytes >= 0, "{what}: negative size_bytes");
        assert!(
            s.size_bytes <= v.capacity_bytes || v.capacity_bytes == 0,
            "{what}: size_bytes {} is more than the source's capacity {}",
            s.size_bytes,
            v.capacity_bytes
        );
        assert!(
            s.group_snapshot_id.is_empty(),
            "{what}: a group snapshot ID"
        );
        let t = s
            .creation_time
            .unwrap_or_else(|| panic!("{what}: creation_time is REQUIRED"));
        assert!(
            t.seconds >= start - 300 && t.seconds <= now_secs() + 300,
            "{what}: creation_time {t:?} is not about now"
        );
        assert!(
            (0..1_000_000_000).contains(&t.nanos),
            "{what}: creation_time nanos {}",
            t.nanos
        );
    }
}

/// "This operation MUST be idempotent": the same name and source give the
/// same snapshot.
#[test]
fn create_snapshot_is_idempotent() {
    let Some(h) = snapshotting(&[]) else { return };
    let v = h.create(&h.mount_kind());
    let req = snapshot_req(&v.volume_id, &h.name("snap"));
    let take = |what: &str| {
        let r = ok(what, h.create_snapshot(req.clone()));
        r.snapshot.expect("no snapshot")
    };
    let first = take("CreateSnapshot");
    std::thread::sleep(Duration::from_millis(1100));
    let again = take("CreateSnapshot again");
    assert_eq!(again.snapshot_id, first.snapshot_id, "another snapshot");
    assert_eq!(again.source_volume_id, first.source_volume_id);
    assert_eq!(again.size_bytes, first.size_bytes);
    assert_eq!(
        again.creation_time, first.creation_time,
        "the snapshot was cut again"
    );
}

/// CreateSnapshot's errors: required fields, an unknown source
/// (NOT_FOUND), and "Snapshot already exists but is incompatible →
/// ALREADY_EXISTS ... with the specified volume_id".
#[test]
fn create_snapshot_errors() {
    let Some(h) = snapshotting(&[]) else { return };
    let kind = h.mount_kind();
    let a = h.create(&kind);
    let b = h.create(&kind);
    let taken = h.name("taken");
    ok(
        "CreateSnapshot",
        h.create_snapshot(snapshot_req(&a.volume_id, &taken)),
    );
    fresh_changes(
        || snapshot_req(&a.volume_id, &h.name("snap")),
        |r| h.create_snapshot(r),
    )
    .row("without a name", |r| r.name.clear(), INVALID)
    .row(
        "without a source_volume_id",
        |r| r.source_volume_id.clear(),
        INVALID,
    )
    .row(
        "with a control character in the name",
        |r| r.name.push('\u{2}'),
        INVALID,
    )
    .row(
        "of an unknown volume",
        |r| r.source_volume_id = NO_SUCH_VOLUME.into(),
        NOT_FOUND,
    )
    .row(
        "with a taken name and another source",
        |r| *r = snapshot_req(&b.volume_id, &taken),
        &[Code::AlreadyExists],
    )
    .row(
        "with a taken name and the same source",
        |r| r.name = taken.clone(),
        &[Code::Ok],
    )
    .check("CreateSnapshot");
}

/// ListSnapshots: pages, and the snapshot_id and source_volume_id filters.
#[test]
fn list_snapshots() {
    let Some(h) = snapshotting(&[Ctrl::ListSnapshots]) else {
        return;
    };
    let kind = h.mount_kind();
    let a = h.create(&kind);
    let b = h.create(&kind);
    let made = [
        ready_snapshot(&h, &a.volume_id),
        ready_snapshot(&h, &a.volume_id),
        ready_snapshot(&h, &b.volume_id),
    ];
    let ids = |list: &[pb::Snapshot]| -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| s.snapshot_id.clone()).collect();
        v.sort();
        v
    };
    let is_made = |s: &&pb::Snapshot| made.iter().any(|m| m.snapshot_id == s.snapshot_id);
    let all_made = ids(&made);
    let first = ok(
        "ListSnapshots",
        h.list_snapshots(pb::ListSnapshotsRequest {
            max_entries: 1,
            ..Default::default()
        }),
    );
    assert_eq!(first.entries.len(), 1, "ListSnapshots with max_entries 1");
    assert!(
        !first.next_token.is_empty(),
        "ListSnapshots: more are left but no next_token"
    );
    let filtered = |snapshot: &str, source: &str, max: i32| {
        h.all_snapshots(pb::ListSnapshotsRequest {
            max_entries: max,
            snapshot_id: snapshot.to_owned(),
            source_volume_id: source.to_owned(),
            ..Default::default()
        })
    };
    for max in [0, 1, 2, 3, 4] {
        let all = filtered("", "", max);
        let mine: Vec<pb::Snapshot> = all.iter().filter(is_made).cloned().collect();
        assert_eq!(
            ids(&mine),
            all_made,
            "ListSnapshots (max_entries {max}): each snapshot once"
        );
        if h.strata {
            assert_eq!(ids(&all), all_made, "ListSnapshots (max_entries {max})");
        }
        for s in &all {
            if let Some(m) = made.iter().find(|m| m.snapshot_id == s.snapshot_id) {
                assert_eq!(s, m, "ListSnapshots and CreateSnapshot disagree");
            }
        }
    }
    let s0 = &made[0].snapshot_id;
    let none = Vec::<String>::new();
    for (what, snapshot, source, want) in [
        ("by snapshot_id", s0.as_str(), "", vec![s0.clone()]),
        (
            "by snapshot_id and its source",
            s0,
            &a.volume_id,
            vec![s0.clone()],
        ),
        (
            "by snapshot_id and another source",
            s0,
            &b.volume_id,
            none.clone(),
        ),
        (
            "by an unknown snapshot_id",
            NO_SUCH_SNAPSHOT,
            "",
            none.clone(),
        ),
        ("by the other source", "", &b.volume_id, ids(&made[2..])),
        ("by an unknown source_volume_id", "", NO_SUCH_VOLUME, none),
    ] {
        assert_eq!(ids(&filtered(snapshot, source, 0)), want, "{what}");
    }
    for max in [0, 1] {
        let of_a = filtered("", &a.volume_id, max);
        assert_eq!(
            ids(&of_a),
            ids(&made[..2]),
            "by source_volume_id (max_entries {max})"
        );
        assert!(of_a.iter().all(|s| s.source_volume_id == a.volume_id));
    }
}

/// ListSnapshots: "Invalid starting_token → ABORTED"; negative
/// max_entries is an invalid field.
#[test]
fn list_snapshots_errors() {
    let Some(h) = snapshotting(&[Ctrl::ListSnapshots]) else {
        return;
    };
    let v = h.create(&h.mount_kind());
    ready_snapshot(&h, &v.volume_id);
    changes(pb::ListSnapshotsRequest::default(), |r| h.list_snapshots(r))
        .row(
            "with an invalid starting_token",
            |r| r.starting_token = "conformance-not-a-token".into(),
            &[Code::Aborted],
        )
        .row("with negative max_entries", |r| r.max_entries = -1, INVALID)
        .check("ListSnapshots");
}

/// DeleteSnapshot: "If a snapshot corresponding to the specified
/// snapshot_id does not exist ..., the Plugin MUST reply 0 OK"; a deleted
/// snapshot is no longer listed, nor a source.
#[test]
fn delete_snapshot() {
    let Some(h) = snapshotting(&[]) else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let s = ready_snapshot(&h, &v.volume_id);
    let id = s.snapshot_id.as_str();
    let done = &[Code::Ok];
    check(
        "DeleteSnapshot",
        vec![
            case("without a snapshot_id", h.try_delete_snapshot(""), INVALID),
            case(
                "of an unknown snapshot",
                h.try_delete_snapshot(NO_SUCH_SNAPSHOT),
                done,
            ),
            case("of a snapshot", h.try_delete_snapshot(id), done),
            case("of it again", h.try_delete_snapshot(id), done),
        ],
    );
    if h.has_ctrl(Ctrl::ListSnapshots) {
        let left = h.all_snapshots(pb::ListSnapshotsRequest::default());
        assert!(
            left.iter().all(|x| x.snapshot_id != id),
            "ListSnapshots still lists deleted snapshot {id}"
        );
    }
    let restored = h.create_volume(h.copy_request(&kind, from_snapshot(id)));
    check(
        "CreateVolume",
        vec![case("from a deleted snapshot", restored, NOT_FOUND)],
    );
    // The source volume is untouched.
    h.with_mounted(&kind, &v, |_| ());
}

/// Writes "before", makes a copy of the volume from `source_of` it, then
/// changes "before" and writes "after"; the copy must have the old
/// "before" and no "after", and be independent of the source.
fn copy_keeps_the_past(
    h: &Csi,
    kind: &Kind,
    what: &str,
    source_of: &dyn Fn(&pb::Volume) -> Option<pb::VolumeContentSource>,
) {
    let Some(source) = h.make(kind) else { return };
    let old = pattern(256 * 1024, 21);
    let new = pattern(256 * 1024, 22);
    let after = pattern(64 * 1024, 23);
    let m = h.mount(&source, &kind.cap());
    let target = &m.target;
    kind.put(target, "before", &old);
    let content_source = source_of(&source);
    let made = h.create_with(pb::CreateVolumeRequest {
        capacity_range: range(source.capacity_bytes, 0),
        ..h.copy_request(kind, content_source.clone())
    });
    kind.put(target, "before", &new);
    kind.put(target, "after", &after);
    check_volume(what, &made);
    assert_eq!(
        made.content_source, content_source,
        "{what}: content_source of the new volume"
    );
    assert!(
        made.capacity_bytes >= source.capacity_bytes,
        "{what}: smaller than its source"
    );
    // What is there of `data` under `name` (for a block volume, whether
    // the bytes are).
    let has = |t: &std::path::Path, name: &str, data: &[u8]| match kind.access {
        Access::Mount => kind.get(t, name, 0).is_some(),
        Access::Block => kind.get(t, name, data.len()).as_deref() == Some(data),
    };
    h.with_mounted(kind, &made, |t| {
        assert_eq!(
            kind.get(t, "before", old.len()).as_ref(),
            Some(&old),
            "{what}: the data written before is not there"
        );
        assert!(
            !has(t, "after", &after),
            "{what}: what was written after is there"
        );
        // The copy is a volume of its own.
        kind.put(t, "copy-only", b"only in the copy");
    });
    assert!(
        !has(target, "copy-only", b"only in the copy"),
        "{what}: writing to the copy changed the source"
    );
    assert_eq!(
        kind.get(target, "before", new.len()),
        Some(new),
        "{what}: the source lost its data"
    );
    m.unmount();
}

/// A volume made from a snapshot has what was written before the snapshot
/// and nothing written after it.
#[test]
fn restore_from_snapshot() {
    let Some(h) = snapshotting(&[]) else { return };
    for kind in h.all_kinds() {
        let what = format!("{} volume from a snapshot", kind.label);
        copy_keeps_the_past(&h, &kind, &what, &|v| snapshot_of(&h, v));
    }
}

/// A clone (CLONE_VOLUME) has what its source had when cloned, and nothing
/// written after.
#[test]
fn clone_volume() {
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::CloneVolume]) else {
        return;
    };
    for kind in h.all_kinds() {
        let what = format!("{} clone", kind.label);
        copy_keeps_the_past(&h, &kind, &what, &|v| from_volume(&v.volume_id));
    }
}

/// A copy bigger than its source: "the Plugin can either refuse such a call
/// with OUT_OF_RANGE or MUST provide a volume that, when presented to a
/// workload by NodePublish call, has both the requested (larger) size and
/// contains data from the snapshot (or original volume)."
#[test]
fn bigger_copy_has_the_size_and_the_data() {
    let Some(h) = snapshotting(&[]) else { return };
    let mut kinds = h.image_kinds();
    kinds.push(h.block_kind());
    for kind in kinds {
        let Some(source) = h.make(&kind) else {
            continue;
        };
        let data = pattern(128 * 1024, 31);
        h.with_mounted(&kind, &source, |t| kind.put(t, "before", &data));
        let mut sources = vec![("snapshot", snapshot_of(&h, &source))];
        if h.has_ctrl(Ctrl::CloneVolume) {
            sources.push(("volume", from_volume(&source.volume_id)));
        }
        for (from, src) in sources {
            let what = format!("{} volume twice the size of its {from}", kind.label);
            let want = 2 * source.capacity_bytes;
            let r = h.create_volume(pb::CreateVolumeRequest {
                capacity_range: range(want, 0),
                ..h.copy_request(&kind, src)
            });
            let v = match r {
                Err(s) if s.code() == Code::OutOfRange => continue,
                r => ok(&what, r).volume.expect("no volume"),
            };
            assert!(
                v.capacity_bytes >= want,
                "{what}: capacity {}",
                v.capacity_bytes
            );
            h.with_mounted(&kind, &v, |t| {
                assert_eq!(
                    kind.get(t, "before", data.len()).as_ref(),
                    Some(&data),
                    "{what}: the data"
                );
                let size = kind.seen_size(t);
                assert!(
                    size as i64 > source.capacity_bytes,
                    "{what}: the workload sees {size} bytes, no more than the source's {}",
                    source.capacity_bytes
                );
            });
        }
    }
}

/// CreateVolume from a source: "Source does not exist → NOT_FOUND";
/// smaller than the snapshot → OUT_OF_RANGE ("for example when trying to
/// create a volume smaller than the source snapshot"); "Source
/// incompatible or not supported → INVALID_ARGUMENT".
#[test]
fn create_volume_from_source_errors() {
    let Some(h) = snapshotting(&[]) else { return };
    let kind = h.image_kind();
    let v = h.create(&kind);
    let s = ready_snapshot(&h, &v.volume_id);
    let with = |src: Option<pb::VolumeContentSource>, r: Option<pb::CapacityRange>, k: &Kind| {
        h.create_volume(pb::CreateVolumeRequest {
            capacity_range: r,
            ..h.copy_request(k, src)
        })
    };
    let sized = |src| with(src, range(kind.size, 0), &kind);
    let mut cases = vec![case(
        "from an unknown snapshot",
        sized(from_snapshot(NO_SUCH_SNAPSHOT)),
        NOT_FOUND,
    )];
    if s.size_bytes > 1 {
        let half = s.size_bytes / 2;
        cases.push(case(
            format!("from a snapshot of {} bytes, at most {half}", s.size_bytes),
            with(from_snapshot(&s.snapshot_id), range(0, half), &kind),
            &[Code::OutOfRange],
        ));
    } else {
        h.skip("the snapshot has no size to go below");
    }
    if h.has_ctrl(Ctrl::CloneVolume) {
        let half = v.capacity_bytes / 2;
        cases.push(case(
            "from an unknown volume",
            sized(from_volume(NO_SUCH_VOLUME)),
            NOT_FOUND,
        ));
        cases.push(case(
            format!(
                "from a volume of {} bytes, at most {half}",
                v.capacity_bytes
            ),
            with(from_volume(&v.volume_id), range(0, half), &kind),
            &[Code::OutOfRange],
        ));
    }
    if h.strata {
        // Strata's block volumes come only from block volumes, and mount
        // volumes only from mount volumes.
        let block = h.block_kind();
        let as_block = |src| with(src, range(block.size, 0), &block);
        let (_, b) = h.create_block().expect("Strata makes block volumes");
        cases.push(case(
            "block volume from a mount volume's snapshot",
            as_block(from_snapshot(&s.snapshot_id)),
            INVALID,
        ));
        cases.push(case(
            "block volume cloned from a mount volume",
            as_block(from_volume(&v.volume_id)),
            INVALID,
        ));
        cases.push(case(
            "mount volume cloned from a block volume",
            sized(from_volume(&b.volume_id)),
            INVALID,
        ));
    }
    check("CreateVolume", cases);
}

/// Deleting a volume that has snapshots: either the snapshots stay "fully
/// operational and acceptable as sources for new volumes as well as appear
/// on ListSnapshot calls", or FAILED_PRECONDITION and "the volume MUST NOT
/// be altered in any way by the request".
#[test]
fn delete_volume_with_snapshots() {
    let Some(h) = snapshotting(&[]) else { return };
    let kind = h.image_kind();
    let v = h.create(&kind);
    let data = pattern(64 * 1024, 41);
    h.with_mounted(&kind, &v, |t| kind.put(t, "before", &data));
    let s = ready_snapshot(&h, &v.volume_id);
    let holds_data = |vol: &pb::Volume, what: &str| {
        let got = h.with_mounted(&kind, vol, |t| kind.get(t, "before", data.len()));
        assert_eq!(got.as_ref(), Some(&data), "{what}");
    };
    match h.try_delete(&v.volume_id) {
        Ok(_) => {
            if h.has_ctrl(Ctrl::ListSnapshots) {
                let listed = h.all_snapshots(pb::ListSnapshotsRequest {
                    snapshot_id: s.snapshot_id.clone(),
                    ..Default::default()
                });
                assert_eq!(
                    listed.len(),
                    1,
                    "the snapshot of a deleted volume is not listed"
                );
            }
            let restored = h.create_with(h.copy_request(&kind, from_snapshot(&s.snapshot_id)));
            holds_data(&restored, "the orphan snapshot's data");
        }
        Err(e) if e.code() == Code::FailedPrecondition => {
            assert!(!e.message().is_empty());
            holds_data(&v, "the volume was altered");
        }
        Err(e) => panic!(
            "DeleteVolume of a volume with snapshots: {}",
            status_text(&e)
        ),
    }
}

/// Snapshots of a volume in use (published): they have what was synced
/// before them.
#[test]
fn snapshot_of_a_published_volume() {
    let Some(h) = snapshotting(&[]) else { return };
    let mut names: HashMap<String, Vec<u8>> = HashMap::new();
    for kind in h.image_kinds() {
        let (v, m) = h.create_mounted(&kind);
        let mut taken: Vec<(String, pb::Snapshot)> = Vec::new();
        for i in 0..3u8 {
            let name = format!("file-{i}");
            let data = pattern(32 * 1024, 50 + i);
            kind.put(&m.target, &name, &data);
            names.insert(name.clone(), data);
            taken.push((name, ready_snapshot(&h, &v.volume_id)));
        }
        m.unmount();
        for (i, (_, s)) in taken.iter().enumerate() {
            let restored = h.create_with(h.copy_request(&kind, from_snapshot(&s.snapshot_id)));
            h.with_mounted(&kind, &restored, |t| {
                for (j, (name, _)) in taken.iter().enumerate() {
                    let got = kind.get(t, name, 0);
                    if j <= i {
                        assert_eq!(
                            got.as_ref(),
                            names.get(name),
                            "{}: snapshot {i} lacks {name}",
                            kind.label
                        );
                    } else {
                        assert!(
                            got.is_none(),
                            "{}: snapshot {i} has the later {name}",
                            kind.label
                        );
                    }
                }
            });
        }
    }
}
