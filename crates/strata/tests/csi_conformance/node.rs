//! Node service: NodeStageVolume, NodeUnstageVolume, NodePublishVolume,
//! NodeUnpublishVolume, NodeGetVolumeStats, NodeGetInfo,
//! NodeGetCapabilities, and what a workload sees at the target.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

use pb::volume_usage::Unit;

/// One volume of every kind the plugin makes (block ones if it can).
fn volumes(h: &Csi) -> Vec<(Kind, pb::Volume)> {
    let kinds = h.all_kinds().into_iter();
    kinds.filter_map(|k| h.make(&k).map(|v| (k, v))).collect()
}

/// The plugin with CREATE_DELETE_VOLUME, and the node capabilities `caps`.
fn creating(caps: &[NodeCap]) -> Option<Csi> {
    let h = Csi::start().requiring(&[Ctrl::CreateDeleteVolume])?;
    h.need_node(caps).then_some(h)
}

/// NodeGetInfo: a node_id ("REQUIRED", at most 256 bytes), a non-negative
/// max_volumes_per_node, and a valid topology.
#[test]
fn node_get_info() {
    let h = Csi::start();
    let (info, again) = twice("NodeGetInfo", || h.node_get_info(pb::NodeGetInfoRequest {}));
    assert!(!info.node_id.is_empty(), "node_id is REQUIRED");
    assert!(info.node_id.len() <= 256, "node_id is over 256 bytes");
    assert!(
        info.max_volumes_per_node >= 0,
        "negative max_volumes_per_node"
    );
    if let Some(t) = &info.accessible_topology {
        assert!(!t.segments.is_empty(), "an empty accessible_topology");
        for (k, v) in &t.segments {
            assert!(valid_topology_key(k), "invalid topology key {k}");
            assert!(valid_topology_value(v), "invalid topology value {v}");
        }
    }
    if h.strata {
        assert_eq!(info.node_id, NODE_ID);
        let t = info
            .accessible_topology
            .as_ref()
            .expect("Strata's node topology");
        assert_eq!(t.segments, map(&[(TOPOLOGY_KEY, NODE_ID)]));
    }
    assert_eq!(again, info, "NodeGetInfo changed between calls");
}

/// NodeGetCapabilities: known values, the same every time.
#[test]
fn node_get_capabilities() {
    let h = Csi::start();
    let (r, again) = twice("NodeGetCapabilities", || {
        h.node_get_capabilities(pb::NodeGetCapabilitiesRequest {})
    });
    assert!(
        node_types(&r).iter().all(Option::is_some),
        "unknown node capability in {r:?}"
    );
    assert_eq!(again, r);
    if h.strata {
        assert!(
            h.has_node(NodeCap::StageUnstageVolume),
            "Strata stages volumes"
        );
    }
}

/// The whole node cycle for every kind, each step twice ("This operation
/// MUST be idempotent"): stage, publish, use, unpublish (the target is
/// gone: "The SP MUST delete the file or directory it created at this
/// path"), unstage; and the data is still there on the next use.
#[test]
fn node_stage_publish_unpublish_unstage() {
    let Some(h) = creating(&[]) else { return };
    for (kind, v) in volumes(&h) {
        let c = kind.cap();
        let what = kind.label.clone();
        let id = v.volume_id.as_str();
        let staging = h.staging_if_staged();
        if let Some(s) = &staging {
            let stage = || h.node_stage_volume(h.stage_request(&v, &c, s));
            twice(&format!("NodeStageVolume {what}"), stage);
        }
        let target = h.target_path();
        let req = h.publish_request(&v, &c, staging.as_deref(), &target, false);
        twice(&format!("NodePublishVolume {what}"), || {
            h.node_publish_volume(req.clone())
        });
        match kind.access {
            Access::Mount => {
                assert!(target.is_dir(), "{what}: the target is not a folder");
                assert!(
                    is_mount_point(&target),
                    "{what}: nothing is mounted at the target"
                );
            }
            Access::Block => {
                let m = std::fs::metadata(&target).unwrap();
                assert!(
                    m.file_type().is_block_device(),
                    "{what}: the target is not a block device"
                );
            }
        }
        let data = pattern(64 * 1024, 3);
        kind.put(&target, "data", &data);
        assert_eq!(
            kind.get(&target, "data", data.len()).as_ref(),
            Some(&data),
            "{what}: read back"
        );
        twice(&format!("NodeUnpublishVolume {what}"), || {
            let r = h.try_unpublish(id, &target);
            assert!(
                r.is_err() || target.symlink_metadata().is_err(),
                "{what}: NodeUnpublishVolume left the target {} behind",
                target.display()
            );
            r
        });
        if let Some(s) = &staging {
            twice(&format!("NodeUnstageVolume {what}"), || {
                let r = h.try_unstage(id, s);
                assert!(
                    r.is_err() || !is_mount_point(s),
                    "{what}: still mounted at the staging path"
                );
                r
            });
        }
        // Used again, it has what was written.
        let used = h.with_mounted(&kind, &v, |t| kind.get(t, "data", data.len()));
        assert_eq!(used, Some(data), "{what}: the data is gone after unstaging");
    }
}

/// Reverse calls are fine: NodeUnpublishVolume of what was never published
/// and NodeUnstageVolume of what was never staged ("If the volume ... is
/// not staged to the staging_target_path, the Plugin MUST reply 0 OK").
#[test]
fn node_reversed_order_is_ok() {
    let Some(h) = creating(&[]) else { return };
    let done = &[Code::Ok];
    let mut all = Vec::new();
    for (kind, v) in volumes(&h) {
        let id = v.volume_id.as_str();
        let never = h.target_path();
        let mut cases = vec![case(
            "NodeUnpublishVolume of a target never made",
            h.try_unpublish(id, &never),
            done,
        )];
        if h.has_node(NodeCap::StageUnstageVolume) {
            let empty = h.staging_path();
            let missing = h.dir.join("no-such-staging");
            cases.push(case(
                "NodeUnstageVolume of a staging folder never staged",
                h.try_unstage(id, &empty),
                done,
            ));
            cases.push(case(
                "NodeUnstageVolume of a staging path that does not exist",
                h.try_unstage(id, &missing),
                done,
            ));
        }
        all.extend(prefixed(&kind.label, cases));
        // And the volume still works normally afterwards.
        h.with_mounted(&kind, &v, |_| ());
    }
    check("reversed", all);
}

/// NodeStageVolume's errors: required fields (INVALID_ARGUMENT), "Volume
/// does not exist → NOT_FOUND".
#[test]
fn node_stage_errors() {
    let Some(h) = creating(&[NodeCap::StageUnstageVolume]) else {
        return;
    };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let staging = h.staging_path();
    changes(h.stage_request(&v, &kind.cap(), &staging), |r| {
        h.node_stage_volume(r)
    })
    .without_volume_id()
    .row(
        "without a staging_target_path",
        |r| r.staging_target_path.clear(),
        INVALID,
    )
    .bad_capabilities()
    .row(
        "with a relative staging_target_path",
        |r| r.staging_target_path = "relative/staging".into(),
        INVALID,
    )
    .of_unknown_volume()
    // "Exceeds capabilities → FAILED_PRECONDITION", or an unsupported
    // field.
    .when(h.strata, |t| {
        t.with_capability(
            "as MULTI_NODE_MULTI_WRITER",
            kind.cap_with(Mode::MultiNodeMultiWriter),
            &[Code::FailedPrecondition, Code::InvalidArgument],
        )
    })
    .check("NodeStageVolume");
    assert!(
        !is_mount_point(&staging),
        "a failed NodeStageVolume left a mount"
    );
}

/// NodeStageVolume at a path where the volume is already staged another
/// way: "Volume published but is incompatible → ALREADY_EXISTS" (or
/// FAILED_PRECONDITION, "Exceeds capabilities").
#[test]
fn node_stage_incompatible_repeat() {
    let Some(h) = creating(&[NodeCap::StageUnstageVolume]) else {
        return;
    };
    let kind = h.image_kind();
    let v = h.create(&kind);
    let staging = h.stage(&v, &kind.cap()).expect("staged");
    let refused = &[Code::AlreadyExists, Code::FailedPrecondition];
    changes(h.stage_request(&v, &kind.cap(), &staging), |r| {
        h.node_stage_volume(r)
    })
    .with_capability(
        "as a block volume",
        block_cap(Mode::SingleNodeWriter),
        refused,
    )
    .with_capability(
        "as SINGLE_NODE_READER_ONLY",
        kind.cap_with(Mode::SingleNodeReaderOnly),
        refused,
    )
    .row("identical", |_| {}, &[Code::Ok])
    .check("NodeStageVolume again");
}

/// NodePublishVolume's errors: required fields, NOT_FOUND, and "Staging
/// target path not set → FAILED_PRECONDITION"; publishing what is not
/// staged ("NodeStageVolume MUST be called and return success ... before
/// any NodePublishVolume") fails the same way.
#[test]
fn node_publish_errors() {
    let Some(h) = creating(&[]) else { return };
    let unstaged = &[Code::FailedPrecondition];
    let mut all = Vec::new();
    for (kind, v) in volumes(&h) {
        let staging = h.staging_path();
        let target = h.target_path();
        let good = h.publish_request(&v, &kind.cap(), Some(&staging), &target, false);
        let mut cases = changes(good, |r| h.node_publish_volume(r))
            .without_volume_id()
            .row("without a target_path", |r| r.target_path.clear(), INVALID)
            .bad_capabilities()
            .row(
                "with a relative target_path",
                |r| r.target_path = "relative/target".into(),
                INVALID,
            )
            .of_unknown_volume()
            .when(h.has_node(NodeCap::StageUnstageVolume), |t| {
                t.row(
                    "without a staging_target_path",
                    |r| r.staging_target_path.clear(),
                    unstaged,
                )
                .row("before NodeStageVolume", |_| {}, unstaged)
            })
            .cases();
        cases.push(fact(
            "no mount left at the target",
            !is_mount_point(&target),
            "a failed NodePublishVolume left a mount at the target",
        ));
        all.extend(prefixed(&kind.label, cases));
    }
    check("NodePublishVolume", all);
}

/// NodeUnpublishVolume and NodeUnstageVolume: required fields.
#[test]
fn node_unpublish_unstage_errors() {
    let h = Csi::start();
    let target = h.target_path();
    let staging = h.staging_path();
    let volume = "conformance-volume";
    let nowhere = Path::new("");
    let mut cases = vec![
        case(
            "NodeUnpublishVolume without a volume_id",
            h.try_unpublish("", &target),
            INVALID,
        ),
        case(
            "NodeUnpublishVolume without a target_path",
            h.try_unpublish(volume, nowhere),
            INVALID,
        ),
    ];
    if h.has_node(NodeCap::StageUnstageVolume) {
        cases.push(case(
            "NodeUnstageVolume without a volume_id",
            h.try_unstage("", &staging),
            INVALID,
        ));
        cases.push(case(
            "NodeUnstageVolume without a staging_target_path",
            h.try_unstage(volume, nowhere),
            INVALID,
        ));
    }
    check("node", cases);
}

/// A read-only publish ("Indicates SP MUST publish the volume in readonly
/// mode") really is: writing fails with EROFS, reading works.
#[test]
fn node_publish_read_only() {
    let Some(h) = creating(&[]) else { return };
    for (kind, v) in volumes(&h) {
        let what = kind.label.clone();
        let c = kind.cap();
        let staging = h.stage(&v, &c);
        // Something to read, written through a read-write publish.
        let rw = h.publish(&v, &c, staging.as_deref(), false);
        let data = pattern(8192, 9);
        kind.put(&rw, "before", &data);
        ok("NodeUnpublishVolume", h.try_unpublish(&v.volume_id, &rw));
        let ro = h.publish(&v, &c, staging.as_deref(), true);
        assert_eq!(
            kind.get(&ro, "before", data.len()).as_ref(),
            Some(&data),
            "{what}: reading"
        );
        match kind.access {
            Access::Mount => {
                assert!(
                    is_read_only(&ro),
                    "{what}: the read-only target is mounted read-write"
                );
                let err = std::fs::write(ro.join("after"), b"x")
                    .expect_err("writing a file under a read-only target worked");
                assert_eq!(
                    err.raw_os_error(),
                    Some(rustix::io::Errno::ROFS.raw_os_error()),
                    "{what}: writing under a read-only target: {err}"
                );
                let err = std::fs::remove_file(ro.join("before"))
                    .expect_err("removing a file under a read-only target worked");
                assert_eq!(
                    err.raw_os_error(),
                    Some(rustix::io::Errno::ROFS.raw_os_error()),
                    "{what}: {err}"
                );
            }
            Access::Block => {
                let wrote = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&ro)
                    .and_then(|f| {
                        use std::os::unix::fs::FileExt;
                        f.write_all_at(&pattern(8192, 1), block_offset("before"))?;
                        f.sync_all()
                    });
                assert!(
                    wrote.is_err(),
                    "{what}: writing to a read-only block device worked"
                );
                assert_eq!(
                    kind.get(&ro, "before", data.len()),
                    Some(data),
                    "{what}: the read-only device changed"
                );
            }
        }
        h.unmount(&v.volume_id, staging.as_deref(), &ro);
    }
}

/// A second NodePublishVolume at the same target with other arguments:
/// "T1=T2, P1!=P2 → ALREADY_EXISTS" ("Volume published but is incompatible
/// with the specified volume_capability or readonly flag").
#[test]
fn node_publish_same_target_other_arguments() {
    let Some(h) = creating(&[]) else { return };
    let mut all = Vec::new();
    for (kind, v) in volumes(&h) {
        let c = kind.cap();
        let staging = h.stage(&v, &c);
        let target = h.publish(&v, &c, staging.as_deref(), false);
        let good = h.publish_request(&v, &c, staging.as_deref(), &target, false);
        // A capability change is also what "COs SHOULD NOT" do, for which
        // "the Plugin SHOULD return FAILED_PRECONDITION".
        let mut cases = changes(good, |r| h.node_publish_volume(r))
            .row("read-only", |r| r.readonly = true, &[Code::AlreadyExists])
            .with_capability(
                "as SINGLE_NODE_READER_ONLY",
                kind.cap_with(Mode::SingleNodeReaderOnly),
                &[Code::AlreadyExists, Code::FailedPrecondition],
            )
            .row("the same", |_| {}, &[Code::Ok])
            .cases();
        if kind.access == Access::Mount {
            cases.push(fact(
                "the mount after the refused calls",
                !is_read_only(&target),
                "a refused call made the target read-only",
            ));
        }
        all.extend(prefixed(&kind.label, cases));
    }
    check("NodePublishVolume at the same target", all);
}

/// SINGLE_NODE_MULTI_WRITER: "T1!=T2 → OK": one staged volume published
/// at several targets, read-write and read-only, all showing the same
/// data.
#[test]
fn node_publish_second_target_multi_writer() {
    let Some(h) = creating(&[NodeCap::SingleNodeMultiWriter]) else {
        return;
    };
    for kind in h.all_kinds() {
        let c = kind.cap_with(Mode::SingleNodeMultiWriter);
        let req = pb::CreateVolumeRequest {
            volume_capabilities: vec![c.clone()],
            ..h.create_request(&kind, &kind.label)
        };
        let Some(v) = h.try_create(&kind, req) else {
            continue;
        };
        let staging = h.stage(&v, &c);
        let one = h.publish(&v, &c, staging.as_deref(), false);
        let two = h.publish(&v, &c, staging.as_deref(), false);
        let three = h.publish(&v, &c, staging.as_deref(), true);
        let data = pattern(MIB as usize, 5);
        kind.put(&one, "shared", &data);
        for (t, which) in [(&two, "second target"), (&three, "read-only target")] {
            assert_eq!(
                kind.get(t, "shared", data.len()).as_ref(),
                Some(&data),
                "{}: {which}",
                kind.label
            );
        }
        if kind.access == Access::Mount {
            write_file(&two.join("back"), b"from two");
            assert_eq!(
                std::fs::read(one.join("back")).ok(),
                Some(b"from two".to_vec())
            );
        }
        for t in [&one, &two, &three] {
            ok("NodeUnpublishVolume", h.try_unpublish(&v.volume_id, t));
        }
    }
}

/// Single writers: a second target is "T1!=T2 → FAILED_PRECONDITION" for
/// SINGLE_NODE_WRITER and SINGLE_NODE_SINGLE_WRITER (what the plugin
/// SHOULD return).
#[test]
fn node_publish_second_target_single_writer() {
    let Some(h) = creating(&[]) else { return };
    let mut modes = vec![Mode::SingleNodeWriter];
    if h.has_node(NodeCap::SingleNodeMultiWriter) {
        modes.push(Mode::SingleNodeSingleWriter);
    }
    let kind = h.mount_kind();
    let mut cases = Vec::new();
    for mode in modes {
        let c = kind.cap_with(mode);
        let v = h.create_with(pb::CreateVolumeRequest {
            volume_capabilities: vec![c.clone()],
            ..h.create_request(&kind, "single")
        });
        let staging = h.stage(&v, &c);
        h.publish(&v, &c, staging.as_deref(), false);
        let second = h.target_path();
        let r =
            h.node_publish_volume(h.publish_request(&v, &c, staging.as_deref(), &second, false));
        cases.push(case(
            format!("{} at a second target", mode.as_str_name()),
            r,
            &[Code::FailedPrecondition],
        ));
    }
    check("NodePublishVolume", cases);
}

/// The checks on one usage entry: total REQUIRED, nothing negative, used
/// and available within total.
fn check_usage(what: &str, u: &pb::VolumeUsage) {
    assert!(u.total > 0, "{what}: total {} (REQUIRED)", u.total);
    assert!(
        u.used >= 0 && u.available >= 0,
        "{what}: negative numbers in {u:?}"
    );
    assert!(u.used <= u.total, "{what}: used above total in {u:?}");
    assert!(
        u.available <= u.total,
        "{what}: available above total in {u:?}"
    );
    assert!(
        u.used + u.available <= u.total,
        "{what}: used + available above total in {u:?}"
    );
}

/// NodeGetVolumeStats on a published volume: consistent bytes (and inodes
/// for mount volumes), growing as files are written; at the staging path
/// too; with a condition when the plugin has VOLUME_CONDITION.
#[test]
fn node_get_volume_stats() {
    let Some(h) = creating(&[NodeCap::GetVolumeStats]) else {
        return;
    };
    for (kind, v) in volumes(&h) {
        let what = format!("NodeGetVolumeStats {}", kind.label);
        let m = h.mount(&v, &kind.cap());
        let target = &m.target;
        let before = m.stats();
        let bytes = usage(&before, Unit::Bytes).unwrap_or_else(|| panic!("{what}: no BYTES usage"));
        check_usage(&what, &bytes);
        assert!(
            before.usage.iter().all(|u| u.unit != Unit::Unknown as i32),
            "{what}: a usage of UNKNOWN unit"
        );
        if h.has_node(NodeCap::VolumeCondition) {
            check_condition(&what, before.volume_condition.as_ref());
        }
        match kind.access {
            Access::Block => {
                if h.strata {
                    assert_eq!(
                        bytes.total, v.capacity_bytes,
                        "{what}: total of a block volume"
                    );
                }
            }
            Access::Mount => {
                if kind.own_fs {
                    let (total, _) = statvfs(target);
                    assert_eq!(
                        bytes.total as u64, total,
                        "{what}: total is not the filesystem's"
                    );
                    assert!(
                        bytes.total <= v.capacity_bytes && bytes.total >= v.capacity_bytes / 2,
                        "{what}: total {} for a capacity of {}",
                        bytes.total,
                        v.capacity_bytes
                    );
                } else if h.strata {
                    assert_eq!(
                        bytes.total, v.capacity_bytes,
                        "{what}: total of a folder volume"
                    );
                }
                let inodes = usage(&before, Unit::Inodes);
                match &inodes {
                    Some(i) => check_usage(&format!("{what} (inodes)"), i),
                    None if h.strata => panic!("{what}: no INODES usage for a mount volume"),
                    None => h.skip(&format!("{what}: no INODES usage")),
                }
                // Writing grows used (and shrinks available).
                for i in 0..4 {
                    write_file(
                        &target.join(format!("fill-{i}")),
                        &pattern(2 * MIB as usize, i),
                    );
                }
                let after = m.stats();
                let grown = usage(&after, Unit::Bytes).expect("BYTES usage");
                check_usage(&what, &grown);
                assert!(
                    grown.used >= bytes.used + 4 * MIB,
                    "{what}: used went from {} to {} after writing 8 MiB",
                    bytes.used,
                    grown.used
                );
                if kind.own_fs || h.strata {
                    assert!(
                        grown.available < bytes.available,
                        "{what}: available went from {} to {} after writing 8 MiB",
                        bytes.available,
                        grown.available
                    );
                }
                // (A folder volume shares its filesystem's inodes with
                // whatever else runs there.)
                if let (true, Some(i0), Some(i1)) =
                    (kind.own_fs, inodes, usage(&after, Unit::Inodes))
                {
                    assert!(
                        i1.used >= i0.used + 4,
                        "{what}: inodes used went from {} to {} after 4 files",
                        i0.used,
                        i1.used
                    );
                }
            }
        }
        // "It can be any valid path where volume was previously staged or
        // published."
        if let Some(s) = m.staging() {
            let at_staging = h.stats(&v.volume_id, s, Some(s));
            check_usage(
                &format!("{what} at the staging path"),
                &usage(&at_staging, Unit::Bytes).expect("BYTES usage"),
            );
        }
        m.unmount();
    }
}

/// NodeGetVolumeStats' errors: required fields, and "Volume does not exist
/// → NOT_FOUND ... on specified volume_path".
#[test]
fn node_get_volume_stats_errors() {
    let Some(h) = creating(&[NodeCap::GetVolumeStats]) else {
        return;
    };
    let (v, m) = h.create_mounted(&h.mount_kind());
    let at = |path: &Path| stats_request(&v.volume_id, path, m.staging());
    changes(at(&m.target), |r| h.node_get_volume_stats(r))
        .without_volume_id()
        .bad_paths(&h.dir)
        .of_unknown_volume()
        .row("at the target", |_| {}, &[Code::Ok])
        .check("NodeGetVolumeStats");
    // At a folder where the volume is not: NOT_FOUND, or (with
    // VOLUME_CONDITION) an answer that says the volume is abnormal there.
    let elsewhere = h.staging_path();
    match h.node_get_volume_stats(at(&elsewhere)) {
        Err(s) if s.code() == Code::NotFound => {}
        Ok(r) if r.volume_condition.as_ref().is_some_and(|c| c.abnormal) => {}
        r => panic!(
            "NodeGetVolumeStats at a folder where the volume is not: expected NOT_FOUND (or an abnormal condition), got {}",
            match &r {
                Ok(r) => format!("OK {r:?}"),
                Err(s) => status_text(s),
            }
        ),
    }
    m.unmount();
}

/// A block volume published at a path is a real block device of the
/// volume's size, which takes writes anywhere in it (1 MiB at an offset,
/// the last block) and gives them back through a fresh open.
#[test]
fn node_block_device_io() {
    let Some(h) = creating(&[]) else { return };
    let Some((kind, v)) = h.create_block() else {
        return;
    };
    let m = h.mount(&v, &kind.cap());
    let target = &m.target;
    let meta = std::fs::metadata(target).expect("the target");
    assert!(
        meta.file_type().is_block_device(),
        "the target {} is not a block device",
        target.display()
    );
    let size = device_size(target);
    assert!(
        size >= v.capacity_bytes as u64,
        "the device has {size} bytes for a capacity of {}",
        v.capacity_bytes
    );
    let data = pattern(MIB as usize, 11);
    let offset = 7 * MIB as u64 + 4096;
    write_at(target, offset, &data);
    let tail = pattern(4096, 13);
    write_at(target, size - 4096, &tail);
    let has_both = |target: &Path, when: &str| {
        assert_eq!(read_at(target, offset, data.len()), data, "1 MiB {when}");
        assert_eq!(
            read_at(target, size - 4096, 4096),
            tail,
            "the last block {when}"
        );
    };
    has_both(target, "read back");
    // Past the end there is nothing.
    let past = std::fs::OpenOptions::new()
        .write(true)
        .open(target)
        .and_then(|f| {
            use std::os::unix::fs::FileExt;
            f.write_at(&tail, size)
        });
    assert!(
        !matches!(past, Ok(n) if n > 0),
        "wrote past the end of the device: {past:?}"
    );
    // Through another stage and publish, the data is still there.
    m.unmount();
    h.with_mounted(&kind, &v, |t| has_both(t, "after publishing again"));
}
