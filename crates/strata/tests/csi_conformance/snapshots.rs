//! Snapshots and clones: CreateSnapshot, DeleteSnapshot, ListSnapshots,
//! and volumes made from a snapshot or another volume, with the data they
//! must (and must not) have.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

use pb::volume_content_source::{SnapshotSource, Type as Source, VolumeSource};

fn snapshots(h: &Csi) -> bool {
    h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::CreateDeleteSnapshot])
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

fn from_snapshot(id: &str) -> Option<pb::VolumeContentSource> {
    Some(pb::VolumeContentSource {
        r#type: Some(Source::Snapshot(SnapshotSource {
            snapshot_id: id.to_owned(),
        })),
    })
}

fn from_volume(id: &str) -> Option<pb::VolumeContentSource> {
    Some(pb::VolumeContentSource {
        r#type: Some(Source::Volume(VolumeSource {
            volume_id: id.to_owned(),
        })),
    })
}

/// The kinds to try: every mount kind, and block.
fn kinds(h: &Csi) -> Vec<Kind> {
    let mut k = h.mount_kinds();
    k.push(h.block_kind());
    k
}

/// Makes a volume of `kind`; None (with a note) for a block volume the
/// plugin cannot make.
fn make(h: &Csi, kind: &Kind) -> Option<pb::Volume> {
    if kind.access == Access::Block {
        return h.create_block().map(|(_, v)| v);
    }
    Some(h.create(kind))
}

/// What is written into a volume: a file for mount volumes, bytes at an
/// offset for block ones.
struct Content<'a> {
    kind: &'a Kind,
}

impl Content<'_> {
    fn put(&self, target: &Path, name: &str, data: &[u8]) {
        match self.kind.access {
            Access::Mount => write_file(&target.join(name), data),
            Access::Block => write_at(target, offset_of(name), data),
        }
    }

    /// What is there under `name`, None for a missing file.
    fn get(&self, target: &Path, name: &str, len: usize) -> Option<Vec<u8>> {
        match self.kind.access {
            Access::Mount => std::fs::read(target.join(name)).ok(),
            Access::Block => Some(read_at(target, offset_of(name), len)),
        }
    }
}

/// Where a named piece of data goes on a block volume.
fn offset_of(name: &str) -> u64 {
    match name {
        "before" => MIB as u64,
        "after" => 3 * MIB as u64,
        _ => 5 * MIB as u64,
    }
}

/// CreateSnapshot answers with every REQUIRED field: an ID, the source, a
/// creation time, ready_to_use; a size the source's capacity can hold
/// ("The size of the volume MUST NOT be less than the size of the source
/// snapshot").
#[test]
fn create_snapshot() {
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for kind in kinds(&h) {
        let Some(v) = make(&h, &kind) else { continue };
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            t.seconds >= start - 300 && t.seconds <= now + 300,
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
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let v = h.create(&h.mount_kind());
    let name = h.name("snap");
    let first = ok(
        "CreateSnapshot",
        h.create_snapshot(snapshot_req(&v.volume_id, &name)),
    )
    .snapshot
    .expect("no snapshot");
    std::thread::sleep(Duration::from_millis(1100));
    let again = ok(
        "CreateSnapshot again",
        h.create_snapshot(snapshot_req(&v.volume_id, &name)),
    )
    .snapshot
    .expect("no snapshot");
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
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let kind = h.mount_kind();
    let a = h.create(&kind);
    let b = h.create(&kind);
    let name_of_taken = h.name("taken");
    ok(
        "CreateSnapshot",
        h.create_snapshot(snapshot_req(&a.volume_id, &name_of_taken)),
    );
    let invalid = &[Code::InvalidArgument];
    check(
        "CreateSnapshot",
        vec![
            case(
                "without a name",
                h.create_snapshot(snapshot_req(&a.volume_id, "")),
                invalid,
            ),
            case(
                "without a source_volume_id",
                h.create_snapshot(snapshot_req("", &h.name("nosource"))),
                invalid,
            ),
            case(
                "with a control character in the name",
                h.create_snapshot(snapshot_req(
                    &a.volume_id,
                    &format!("{}\u{2}", h.name("ctl")),
                )),
                invalid,
            ),
            case(
                "of an unknown volume",
                h.create_snapshot(snapshot_req(
                    "conformance-no-such-volume",
                    &h.name("unknown"),
                )),
                &[Code::NotFound],
            ),
            case(
                "with a taken name and another source",
                h.create_snapshot(snapshot_req(&b.volume_id, &name_of_taken)),
                &[Code::AlreadyExists],
            ),
            case(
                "with a taken name and the same source",
                h.create_snapshot(snapshot_req(&a.volume_id, &name_of_taken)),
                &[Code::Ok],
            ),
        ],
    );
}

/// ListSnapshots: pages, and the snapshot_id and source_volume_id filters.
#[test]
fn list_snapshots() {
    let h = Csi::start();
    if !snapshots(&h) || !h.need_ctrl(&[Ctrl::ListSnapshots]) {
        return;
    }
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
    let mine = |list: &[pb::Snapshot]| -> Vec<String> {
        let mut v: Vec<String> = list
            .iter()
            .filter(|s| made.iter().any(|m| m.snapshot_id == s.snapshot_id))
            .map(|s| s.snapshot_id.clone())
            .collect();
        v.sort();
        v
    };
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
    for max in [0, 1, 2, 3, 4] {
        let all = h.all_snapshots(pb::ListSnapshotsRequest {
            max_entries: max,
            ..Default::default()
        });
        assert_eq!(
            mine(&all),
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
    let filtered = |snapshot: &str, source: &str, max: i32| {
        h.all_snapshots(pb::ListSnapshotsRequest {
            max_entries: max,
            snapshot_id: snapshot.to_owned(),
            source_volume_id: source.to_owned(),
            ..Default::default()
        })
    };
    let s0 = &made[0].snapshot_id;
    assert_eq!(
        ids(&filtered(s0, "", 0)),
        vec![s0.clone()],
        "by snapshot_id"
    );
    assert_eq!(
        ids(&filtered(s0, &a.volume_id, 0)),
        vec![s0.clone()],
        "by snapshot_id and its source"
    );
    assert_eq!(
        ids(&filtered(s0, &b.volume_id, 0)),
        Vec::<String>::new(),
        "by snapshot_id and another source"
    );
    assert_eq!(
        ids(&filtered("conformance-no-such-snapshot", "", 0)),
        Vec::<String>::new(),
        "by an unknown snapshot_id"
    );
    for max in [0, 1] {
        let of_a = filtered("", &a.volume_id, max);
        assert_eq!(
            ids(&of_a),
            ids(&made[..2]),
            "by source_volume_id (max_entries {max})"
        );
        assert!(of_a.iter().all(|s| s.source_volume_id == a.volume_id));
    }
    assert_eq!(
        ids(&filtered("", &b.volume_id, 0)),
        ids(&made[2..]),
        "by the other source"
    );
    assert_eq!(
        ids(&filtered("", "conformance-no-such-volume", 0)),
        Vec::<String>::new(),
        "by an unknown source_volume_id"
    );
}

/// ListSnapshots: "Invalid starting_token → ABORTED"; negative
/// max_entries is an invalid field.
#[test]
fn list_snapshots_errors() {
    let h = Csi::start();
    if !snapshots(&h) || !h.need_ctrl(&[Ctrl::ListSnapshots]) {
        return;
    }
    let v = h.create(&h.mount_kind());
    ready_snapshot(&h, &v.volume_id);
    let list = |max: i32, token: &str| {
        h.list_snapshots(pb::ListSnapshotsRequest {
            max_entries: max,
            starting_token: token.to_owned(),
            ..Default::default()
        })
    };
    check(
        "ListSnapshots",
        vec![
            case(
                "with an invalid starting_token",
                list(0, "conformance-not-a-token"),
                &[Code::Aborted],
            ),
            case(
                "with negative max_entries",
                list(-1, ""),
                &[Code::InvalidArgument],
            ),
        ],
    );
}

/// DeleteSnapshot: "If a snapshot corresponding to the specified
/// snapshot_id does not exist ..., the Plugin MUST reply 0 OK"; a deleted
/// snapshot is no longer listed, nor a source.
#[test]
fn delete_snapshot() {
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let s = ready_snapshot(&h, &v.volume_id);
    let del = |id: &str| {
        h.delete_snapshot(pb::DeleteSnapshotRequest {
            snapshot_id: id.to_owned(),
            ..Default::default()
        })
    };
    let restore = |id: &str| {
        h.create_volume(pb::CreateVolumeRequest {
            volume_content_source: from_snapshot(id),
            ..h.create_request(&kind, &h.name("restore"))
        })
    };
    check(
        "DeleteSnapshot",
        vec![
            case("without a snapshot_id", del(""), &[Code::InvalidArgument]),
            case(
                "of an unknown snapshot",
                del("conformance-no-such-snapshot"),
                &[Code::Ok],
            ),
            case("of a snapshot", del(&s.snapshot_id), &[Code::Ok]),
            case("of it again", del(&s.snapshot_id), &[Code::Ok]),
        ],
    );
    if h.has_ctrl(Ctrl::ListSnapshots) {
        let left = h.all_snapshots(pb::ListSnapshotsRequest::default());
        assert!(
            left.iter().all(|x| x.snapshot_id != s.snapshot_id),
            "ListSnapshots still lists deleted snapshot {}",
            s.snapshot_id
        );
    }
    check(
        "CreateVolume",
        vec![case(
            "from a deleted snapshot",
            restore(&s.snapshot_id),
            &[Code::NotFound],
        )],
    );
    // The source volume is untouched.
    let (staging, target) = h.mount(&v, &kind.cap());
    h.unmount(&v, staging.as_deref(), &target);
}

/// Mounts `v`, runs `f` on its target, and unmounts it.
fn with_mounted<T>(h: &Csi, kind: &Kind, v: &pb::Volume, f: impl FnOnce(&Path) -> T) -> T {
    let (staging, target) = h.mount(v, &kind.cap());
    let r = f(&target);
    h.unmount(v, staging.as_deref(), &target);
    r
}

/// Writes "before", has `copy` make a copy of the volume, then changes
/// "before" and writes "after"; the volume `copy` made must have the old
/// "before" and no "after", and be independent of the source. Returns the
/// source and its copy.
fn copy_keeps_the_past(
    h: &Csi,
    kind: &Kind,
    what: &str,
    copy: &dyn Fn(&pb::Volume) -> (pb::Volume, Option<pb::VolumeContentSource>),
) {
    let Some(source) = make(h, kind) else { return };
    let c = Content { kind };
    let old = pattern(256 * 1024, 21);
    let new = pattern(256 * 1024, 22);
    let after = pattern(64 * 1024, 23);
    let (staging, target) = h.mount(&source, &kind.cap());
    c.put(&target, "before", &old);
    let (made, content_source) = copy(&source);
    c.put(&target, "before", &new);
    c.put(&target, "after", &after);
    check_volume(what, &made);
    assert_eq!(
        made.content_source, content_source,
        "{what}: content_source of the new volume"
    );
    assert!(
        made.capacity_bytes >= source.capacity_bytes,
        "{what}: smaller than its source"
    );
    with_mounted(h, kind, &made, |t| {
        assert_eq!(
            c.get(t, "before", old.len()),
            Some(old.clone()),
            "{what}: the data written before is not there"
        );
        match kind.access {
            Access::Mount => assert!(
                c.get(t, "after", 0).is_none(),
                "{what}: a file written after is there"
            ),
            Access::Block => assert_ne!(
                c.get(t, "after", after.len()),
                Some(after.clone()),
                "{what}: data written after is there"
            ),
        }
        // The copy is a volume of its own.
        c.put(t, "copy-only", b"only in the copy");
    });
    match kind.access {
        Access::Mount => assert!(
            c.get(&target, "copy-only", 0).is_none(),
            "{what}: writing to the copy changed the source"
        ),
        Access::Block => assert_ne!(
            c.get(&target, "copy-only", 16),
            Some(b"only in the copy".to_vec()),
            "{what}: writing to the copy changed the source"
        ),
    }
    assert_eq!(
        c.get(&target, "before", new.len()),
        Some(new),
        "{what}: the source lost its data"
    );
    h.unmount(&source, staging.as_deref(), &target);
}

/// A volume made from a snapshot has what was written before the snapshot
/// and nothing written after it.
#[test]
fn restore_from_snapshot() {
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    for kind in kinds(&h) {
        let what = format!("{} volume from a snapshot", kind.label);
        copy_keeps_the_past(&h, &kind, &what, &|source| {
            let s = ready_snapshot(&h, &source.volume_id);
            let src = from_snapshot(&s.snapshot_id);
            let v = h.create_with(pb::CreateVolumeRequest {
                volume_content_source: src.clone(),
                capacity_range: range(source.capacity_bytes, 0),
                ..h.create_request(&kind, &h.name("restored"))
            });
            (v, src)
        });
    }
}

/// A clone (CLONE_VOLUME) has what its source had when cloned, and nothing
/// written after.
#[test]
fn clone_volume() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::CloneVolume]) {
        return;
    }
    for kind in kinds(&h) {
        let what = format!("{} clone", kind.label);
        copy_keeps_the_past(&h, &kind, &what, &|source| {
            let src = from_volume(&source.volume_id);
            let v = h.create_with(pb::CreateVolumeRequest {
                volume_content_source: src.clone(),
                capacity_range: range(source.capacity_bytes, 0),
                ..h.create_request(&kind, &h.name("clone"))
            });
            (v, src)
        });
    }
}

/// A copy bigger than its source: "the Plugin can either refuse such a call
/// with OUT_OF_RANGE or MUST provide a volume that, when presented to a
/// workload by NodePublish call, has both the requested (larger) size and
/// contains data from the snapshot (or original volume)."
#[test]
fn bigger_copy_has_the_size_and_the_data() {
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let mut kinds = h.image_kinds();
    kinds.push(h.block_kind());
    for kind in kinds {
        let Some(source) = make(&h, &kind) else {
            continue;
        };
        let c = Content { kind: &kind };
        let data = pattern(128 * 1024, 31);
        with_mounted(&h, &kind, &source, |t| c.put(t, "before", &data));
        let s = ready_snapshot(&h, &source.volume_id);
        let mut sources = vec![("snapshot", from_snapshot(&s.snapshot_id))];
        if h.has_ctrl(Ctrl::CloneVolume) {
            sources.push(("volume", from_volume(&source.volume_id)));
        }
        for (from, src) in sources {
            let what = format!("{} volume twice the size of its {from}", kind.label);
            let want = 2 * source.capacity_bytes;
            let r = h.create_volume(pb::CreateVolumeRequest {
                volume_content_source: src,
                capacity_range: range(want, 0),
                ..h.create_request(&kind, &h.name("bigger"))
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
            with_mounted(&h, &kind, &v, |t| {
                assert_eq!(
                    c.get(t, "before", data.len()),
                    Some(data.clone()),
                    "{what}: the data"
                );
                let size = match kind.access {
                    Access::Mount => statvfs(t).0,
                    Access::Block => device_size(t),
                };
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
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let kind = h.image_kind();
    let v = h.create(&kind);
    let s = ready_snapshot(&h, &v.volume_id);
    let with = |src: Option<pb::VolumeContentSource>, r: Option<pb::CapacityRange>, k: &Kind| {
        h.create_volume(pb::CreateVolumeRequest {
            volume_content_source: src,
            capacity_range: r,
            ..h.create_request(k, &h.name("from"))
        })
    };
    let mut cases = vec![case(
        "from an unknown snapshot",
        with(
            from_snapshot("conformance-no-such-snapshot"),
            range(kind.size, 0),
            &kind,
        ),
        &[Code::NotFound],
    )];
    if s.size_bytes > 1 {
        cases.push(case(
            format!(
                "from a snapshot of {} bytes, at most {}",
                s.size_bytes,
                s.size_bytes / 2
            ),
            with(
                from_snapshot(&s.snapshot_id),
                range(0, s.size_bytes / 2),
                &kind,
            ),
            &[Code::OutOfRange],
        ));
    } else {
        h.skip("the snapshot has no size to go below");
    }
    if h.has_ctrl(Ctrl::CloneVolume) {
        cases.push(case(
            "from an unknown volume",
            with(
                from_volume("conformance-no-such-volume"),
                range(kind.size, 0),
                &kind,
            ),
            &[Code::NotFound],
        ));
        cases.push(case(
            format!(
                "from a volume of {} bytes, at most {}",
                v.capacity_bytes,
                v.capacity_bytes / 2
            ),
            with(
                from_volume(&v.volume_id),
                range(0, v.capacity_bytes / 2),
                &kind,
            ),
            &[Code::OutOfRange],
        ));
    }
    if h.strata {
        // Strata's block volumes come only from block volumes, and mount
        // volumes only from mount volumes.
        let block = h.block_kind();
        cases.push(case(
            "block volume from a mount volume's snapshot",
            with(from_snapshot(&s.snapshot_id), range(block.size, 0), &block),
            &[Code::InvalidArgument],
        ));
        cases.push(case(
            "block volume cloned from a mount volume",
            with(from_volume(&v.volume_id), range(block.size, 0), &block),
            &[Code::InvalidArgument],
        ));
        let (_, b) = h.create_block().expect("Strata makes block volumes");
        cases.push(case(
            "mount volume cloned from a block volume",
            with(from_volume(&b.volume_id), range(kind.size, 0), &kind),
            &[Code::InvalidArgument],
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
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let kind = h.image_kind();
    let v = h.create(&kind);
    let c = Content { kind: &kind };
    let data = pattern(64 * 1024, 41);
    with_mounted(&h, &kind, &v, |t| c.put(t, "before", &data));
    let s = ready_snapshot(&h, &v.volume_id);
    let r = h.delete_volume(pb::DeleteVolumeRequest {
        volume_id: v.volume_id.clone(),
        ..Default::default()
    });
    match r {
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
            let restored = h.create_with(pb::CreateVolumeRequest {
                volume_content_source: from_snapshot(&s.snapshot_id),
                ..h.create_request(&kind, &h.name("orphan"))
            });
            with_mounted(&h, &kind, &restored, |t| {
                assert_eq!(
                    c.get(t, "before", data.len()),
                    Some(data.clone()),
                    "the orphan snapshot's data"
                );
            });
        }
        Err(e) if e.code() == Code::FailedPrecondition => {
            assert!(!e.message().is_empty());
            with_mounted(&h, &kind, &v, |t| {
                assert_eq!(
                    c.get(t, "before", data.len()),
                    Some(data.clone()),
                    "the volume was altered"
                );
            });
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
    let h = Csi::start();
    if !snapshots(&h) {
        return;
    }
    let mut names: HashMap<String, Vec<u8>> = HashMap::new();
    for kind in h.image_kinds() {
        let v = h.create(&kind);
        let c = Content { kind: &kind };
        let (staging, target) = h.mount(&v, &kind.cap());
        let mut taken: Vec<(String, pb::Snapshot)> = Vec::new();
        for i in 0..3u8 {
            let name = format!("file-{i}");
            let data = pattern(32 * 1024, 50 + i);
            c.put(&target, &name, &data);
            names.insert(name.clone(), data);
            taken.push((name, ready_snapshot(&h, &v.volume_id)));
        }
        h.unmount(&v, staging.as_deref(), &target);
        for (i, (_, s)) in taken.iter().enumerate() {
            let restored = h.create_with(pb::CreateVolumeRequest {
                volume_content_source: from_snapshot(&s.snapshot_id),
                ..h.create_request(&kind, &h.name("restored"))
            });
            with_mounted(&h, &kind, &restored, |t| {
                for (j, (name, _)) in taken.iter().enumerate() {
                    let got = c.get(t, name, 0);
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
