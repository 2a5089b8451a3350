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
    let mut all: Vec<(Kind, pb::Volume)> = h
        .mount_kinds()
        .into_iter()
        .map(|k| {
            let v = h.create(&k);
            (k, v)
        })
        .collect();
    all.extend(h.create_block());
    all
}

fn can_create(h: &Csi) -> bool {
    h.need_ctrl(&[Ctrl::CreateDeleteVolume])
}

fn unpublish(
    h: &Csi,
    id: &str,
    target: &Path,
) -> Result<pb::NodeUnpublishVolumeResponse, tonic::Status> {
    h.node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
        volume_id: id.to_owned(),
        target_path: path_str(target),
    })
}

fn unstage(
    h: &Csi,
    id: &str,
    staging: &Path,
) -> Result<pb::NodeUnstageVolumeResponse, tonic::Status> {
    h.node_unstage_volume(pb::NodeUnstageVolumeRequest {
        volume_id: id.to_owned(),
        staging_target_path: path_str(staging),
    })
}

/// NodeGetInfo: a node_id ("REQUIRED", at most 256 bytes), a non-negative
/// max_volumes_per_node, and a valid topology.
#[test]
fn node_get_info() {
    let h = Csi::start();
    let info = ok("NodeGetInfo", h.node_get_info(pb::NodeGetInfoRequest {}));
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
    let again = ok("NodeGetInfo", h.node_get_info(pb::NodeGetInfoRequest {}));
    assert_eq!(again, info, "NodeGetInfo changed between calls");
}

/// NodeGetCapabilities: known values, the same every time.
#[test]
fn node_get_capabilities() {
    let h = Csi::start();
    let r = ok(
        "NodeGetCapabilities",
        h.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}),
    );
    assert!(
        node_types(&r).iter().all(Option::is_some),
        "unknown node capability in {r:?}"
    );
    let again = ok(
        "NodeGetCapabilities",
        h.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}),
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
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
    for (kind, v) in volumes(&h) {
        let c = kind.cap();
        let what = kind.label.clone();
        let staging = h
            .has_node(NodeCap::StageUnstageVolume)
            .then(|| h.staging_path());
        if let Some(s) = &staging {
            let req = h.stage_request(&v, &c, s);
            ok(
                &format!("NodeStageVolume {what}"),
                h.node_stage_volume(req.clone()),
            );
            ok(
                &format!("NodeStageVolume {what} again"),
                h.node_stage_volume(req),
            );
        }
        let target = h.target_path();
        let req = h.publish_request(&v, &c, staging.as_deref(), &target, false);
        ok(
            &format!("NodePublishVolume {what}"),
            h.node_publish_volume(req.clone()),
        );
        ok(
            &format!("NodePublishVolume {what} again"),
            h.node_publish_volume(req),
        );
        let data = pattern(64 * 1024, 3);
        match kind.access {
            Access::Mount => {
                assert!(target.is_dir(), "{what}: the target is not a folder");
                assert!(
                    is_mount_point(&target),
                    "{what}: nothing is mounted at the target"
                );
                write_file(&target.join("data"), &data);
                assert_eq!(std::fs::read(target.join("data")).unwrap(), data);
            }
            Access::Block => {
                let m = std::fs::metadata(&target).unwrap();
                assert!(
                    m.file_type().is_block_device(),
                    "{what}: the target is not a block device"
                );
                write_at(&target, MIB as u64, &data);
            }
        }
        ok(
            &format!("NodeUnpublishVolume {what}"),
            unpublish(&h, &v.volume_id, &target),
        );
        assert!(
            target.symlink_metadata().is_err(),
            "{what}: NodeUnpublishVolume left the target {} behind",
            target.display()
        );
        ok(
            &format!("NodeUnpublishVolume {what} again"),
            unpublish(&h, &v.volume_id, &target),
        );
        if let Some(s) = &staging {
            ok(
                &format!("NodeUnstageVolume {what}"),
                unstage(&h, &v.volume_id, s),
            );
            assert!(
                !is_mount_point(s),
                "{what}: still mounted at the staging path"
            );
            ok(
                &format!("NodeUnstageVolume {what} again"),
                unstage(&h, &v.volume_id, s),
            );
        }
        // Used again, it has what was written.
        let (staging, target) = h.mount(&v, &c);
        match kind.access {
            Access::Mount => assert_eq!(
                std::fs::read(target.join("data")).ok(),
                Some(data),
                "{what}: the data is gone after unstaging"
            ),
            Access::Block => assert_eq!(
                read_at(&target, MIB as u64, data.len()),
                data,
                "{what}: the data is gone after unstaging"
            ),
        }
        h.unmount(&v, staging.as_deref(), &target);
    }
}

/// Reverse calls are fine: NodeUnpublishVolume of what was never published
/// and NodeUnstageVolume of what was never staged ("If the volume ... is
/// not staged to the staging_target_path, the Plugin MUST reply 0 OK").
#[test]
fn node_reversed_order_is_ok() {
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
    let mut all = Vec::new();
    for (kind, v) in volumes(&h) {
        let never = h.target_path();
        let empty = h.staging_path();
        let mut cases = vec![case(
            "NodeUnpublishVolume of a target never made",
            unpublish(&h, &v.volume_id, &never),
            &[Code::Ok],
        )];
        if h.has_node(NodeCap::StageUnstageVolume) {
            cases.push(case(
                "NodeUnstageVolume of a staging folder never staged",
                unstage(&h, &v.volume_id, &empty),
                &[Code::Ok],
            ));
            cases.push(case(
                "NodeUnstageVolume of a staging path that does not exist",
                unstage(&h, &v.volume_id, &h.dir.join("no-such-staging")),
                &[Code::Ok],
            ));
        }
        all.extend(prefixed(&kind.label, cases));
        // And the volume still works normally afterwards.
        let (staging, target) = h.mount(&v, &kind.cap());
        h.unmount(&v, staging.as_deref(), &target);
    }
    check("reversed", all);
}

/// NodeStageVolume's errors: required fields (INVALID_ARGUMENT), "Volume
/// does not exist → NOT_FOUND".
#[test]
fn node_stage_errors() {
    let h = Csi::start();
    if !can_create(&h) || !h.need_node(&[NodeCap::StageUnstageVolume]) {
        return;
    }
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let staging = h.staging_path();
    let with = |change: &dyn Fn(&mut pb::NodeStageVolumeRequest)| {
        let mut r = h.stage_request(&v, &kind.cap(), &staging);
        change(&mut r);
        h.node_stage_volume(r)
    };
    let invalid = &[Code::InvalidArgument];
    let mut cases = vec![
        case(
            "without a volume_id",
            with(&|r| r.volume_id.clear()),
            invalid,
        ),
        case(
            "without a staging_target_path",
            with(&|r| r.staging_target_path.clear()),
            invalid,
        ),
        case(
            "without a volume_capability",
            with(&|r| r.volume_capability = None),
            invalid,
        ),
        case(
            "with a capability without access mode",
            with(&|r| r.volume_capability.as_mut().unwrap().access_mode = None),
            invalid,
        ),
        case(
            "with a capability without access type",
            with(&|r| r.volume_capability.as_mut().unwrap().access_type = None),
            invalid,
        ),
        case(
            "with a relative staging_target_path",
            with(&|r| r.staging_target_path = "relative/staging".into()),
            invalid,
        ),
        case(
            "of an unknown volume",
            with(&|r| r.volume_id = "conformance-no-such-volume".into()),
            &[Code::NotFound],
        ),
    ];
    if h.strata {
        // "Exceeds capabilities → FAILED_PRECONDITION", or an unsupported
        // field.
        cases.push(case(
            "as MULTI_NODE_MULTI_WRITER",
            with(&|r| r.volume_capability = Some(kind.cap_with(Mode::MultiNodeMultiWriter))),
            &[Code::FailedPrecondition, Code::InvalidArgument],
        ));
    }
    check("NodeStageVolume", cases);
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
    let h = Csi::start();
    if !can_create(&h) || !h.need_node(&[NodeCap::StageUnstageVolume]) {
        return;
    }
    let kind = h.image_kind();
    let v = h.create(&kind);
    let staging = h.stage(&v, &kind.cap()).expect("staged");
    let with = |c: pb::VolumeCapability| h.node_stage_volume(h.stage_request(&v, &c, &staging));
    let refused = &[Code::AlreadyExists, Code::FailedPrecondition];
    check(
        "NodeStageVolume again",
        vec![
            case(
                "as a block volume",
                with(block_cap(Mode::SingleNodeWriter)),
                refused,
            ),
            case(
                "as SINGLE_NODE_READER_ONLY",
                with(kind.cap_with(Mode::SingleNodeReaderOnly)),
                refused,
            ),
            case("identical", with(kind.cap()), &[Code::Ok]),
        ],
    );
}

/// NodePublishVolume's errors: required fields, NOT_FOUND, and "Staging
/// target path not set → FAILED_PRECONDITION"; publishing what is not
/// staged ("NodeStageVolume MUST be called and return success ... before
/// any NodePublishVolume") fails the same way.
#[test]
fn node_publish_errors() {
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
    let invalid = &[Code::InvalidArgument];
    let mut all = Vec::new();
    for (kind, v) in volumes(&h) {
        let staging = h.staging_path();
        let target = h.target_path();
        let with = |change: &dyn Fn(&mut pb::NodePublishVolumeRequest)| {
            let mut r = h.publish_request(&v, &kind.cap(), Some(&staging), &target, false);
            change(&mut r);
            h.node_publish_volume(r)
        };
        let mut cases = vec![
            case(
                "without a volume_id",
                with(&|r| r.volume_id.clear()),
                invalid,
            ),
            case(
                "without a target_path",
                with(&|r| r.target_path.clear()),
                invalid,
            ),
            case(
                "without a volume_capability",
                with(&|r| r.volume_capability = None),
                invalid,
            ),
            case(
                "with a capability without access mode",
                with(&|r| r.volume_capability.as_mut().unwrap().access_mode = None),
                invalid,
            ),
            case(
                "with a relative target_path",
                with(&|r| r.target_path = "relative/target".into()),
                invalid,
            ),
            case(
                "of an unknown volume",
                with(&|r| r.volume_id = "conformance-no-such-volume".into()),
                &[Code::NotFound],
            ),
        ];
        if h.has_node(NodeCap::StageUnstageVolume) {
            cases.push(case(
                "without a staging_target_path",
                with(&|r| r.staging_target_path.clear()),
                &[Code::FailedPrecondition],
            ));
            cases.push(case(
                "before NodeStageVolume",
                with(&|_| {}),
                &[Code::FailedPrecondition],
            ));
        }
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
    let mut cases = vec![
        case(
            "NodeUnpublishVolume without a volume_id",
            unpublish(&h, "", &target).map(drop),
            &[Code::InvalidArgument],
        ),
        case(
            "NodeUnpublishVolume without a target_path",
            h.node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
                volume_id: "conformance-volume".into(),
                target_path: String::new(),
            })
            .map(drop),
            &[Code::InvalidArgument],
        ),
    ];
    if h.has_node(NodeCap::StageUnstageVolume) {
        cases.push(case(
            "NodeUnstageVolume without a volume_id",
            unstage(&h, "", &staging).map(drop),
            &[Code::InvalidArgument],
        ));
        cases.push(case(
            "NodeUnstageVolume without a staging_target_path",
            h.node_unstage_volume(pb::NodeUnstageVolumeRequest {
                volume_id: "conformance-volume".into(),
                staging_target_path: String::new(),
            })
            .map(drop),
            &[Code::InvalidArgument],
        ));
    }
    check("node", cases);
}

/// A read-only publish ("Indicates SP MUST publish the volume in readonly
/// mode") really is: writing fails with EROFS, reading works.
#[test]
fn node_publish_read_only() {
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
    for (kind, v) in volumes(&h) {
        let what = kind.label.clone();
        let c = kind.cap();
        let staging = h.stage(&v, &c);
        // Something to read, written through a read-write publish.
        let rw = h.publish(&v, &c, staging.as_deref(), false);
        let data = pattern(8192, 9);
        match kind.access {
            Access::Mount => write_file(&rw.join("before"), &data),
            Access::Block => write_at(&rw, 0, &data),
        }
        ok("NodeUnpublishVolume", unpublish(&h, &v.volume_id, &rw));
        let ro = h.publish(&v, &c, staging.as_deref(), true);
        match kind.access {
            Access::Mount => {
                assert!(
                    is_read_only(&ro),
                    "{what}: the read-only target is mounted read-write"
                );
                assert_eq!(
                    std::fs::read(ro.join("before")).unwrap(),
                    data,
                    "{what}: reading"
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
                assert_eq!(read_at(&ro, 0, data.len()), data, "{what}: reading");
                let wrote = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&ro)
                    .and_then(|f| {
                        use std::os::unix::fs::FileExt;
                        f.write_all_at(&pattern(8192, 1), 0)?;
                        f.sync_all()
                    });
                assert!(
                    wrote.is_err(),
                    "{what}: writing to a read-only block device worked"
                );
                assert_eq!(
                    read_at(&ro, 0, data.len()),
                    data,
                    "{what}: the read-only device changed"
                );
            }
        }
        ok("NodeUnpublishVolume", unpublish(&h, &v.volume_id, &ro));
        if let Some(s) = &staging {
            ok("NodeUnstageVolume", unstage(&h, &v.volume_id, s));
        }
    }
}

/// A second NodePublishVolume at the same target with other arguments:
/// "T1=T2, P1!=P2 → ALREADY_EXISTS" ("Volume published but is incompatible
/// with the specified volume_capability or readonly flag").
#[test]
fn node_publish_same_target_other_arguments() {
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
    let mut all = Vec::new();
    for (kind, v) in volumes(&h) {
        let c = kind.cap();
        let staging = h.stage(&v, &c);
        let target = h.publish(&v, &c, staging.as_deref(), false);
        let again = |c: pb::VolumeCapability, readonly: bool| {
            h.node_publish_volume(h.publish_request(&v, &c, staging.as_deref(), &target, readonly))
        };
        // A capability change is also what "COs SHOULD NOT" do, for which
        // "the Plugin SHOULD return FAILED_PRECONDITION".
        let other_cap = &[Code::AlreadyExists, Code::FailedPrecondition];
        let mut cases = vec![
            case("read-only", again(c.clone(), true), &[Code::AlreadyExists]),
            case(
                "as SINGLE_NODE_READER_ONLY",
                again(kind.cap_with(Mode::SingleNodeReaderOnly), false),
                other_cap,
            ),
            case("the same", again(c.clone(), false), &[Code::Ok]),
        ];
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
    let h = Csi::start();
    if !can_create(&h) || !h.need_node(&[NodeCap::SingleNodeMultiWriter]) {
        return;
    }
    let mut kinds = h.mount_kinds();
    kinds.push(h.block_kind());
    for kind in kinds {
        let c = kind.cap_with(Mode::SingleNodeMultiWriter);
        let req = pb::CreateVolumeRequest {
            volume_capabilities: vec![c.clone()],
            ..h.create_request(&kind, &h.name(&kind.label))
        };
        let v = match h.create_volume(req) {
            Ok(r) => r.volume.expect("CreateVolume: no volume"),
            Err(s)
                if kind.access == Access::Block
                    && !h.strata
                    && s.code() == Code::InvalidArgument =>
            {
                h.skip("no block volumes");
                continue;
            }
            Err(s) => panic!(
                "CreateVolume {} SINGLE_NODE_MULTI_WRITER: {}",
                kind.label,
                status_text(&s)
            ),
        };
        let staging = h.stage(&v, &c);
        let one = h.publish(&v, &c, staging.as_deref(), false);
        let two = h.publish(&v, &c, staging.as_deref(), false);
        let three = h.publish(&v, &c, staging.as_deref(), true);
        let data = pattern(MIB as usize, 5);
        match kind.access {
            Access::Mount => {
                write_file(&one.join("shared"), &data);
                assert_eq!(
                    std::fs::read(two.join("shared")).ok().as_ref(),
                    Some(&data),
                    "{}: second target",
                    kind.label
                );
                assert_eq!(
                    std::fs::read(three.join("shared")).ok().as_ref(),
                    Some(&data),
                    "{}: read-only target",
                    kind.label
                );
                write_file(&two.join("back"), b"from two");
                assert_eq!(
                    std::fs::read(one.join("back")).ok(),
                    Some(b"from two".to_vec())
                );
            }
            Access::Block => {
                write_at(&one, 2 * MIB as u64, &data);
                assert_eq!(
                    read_at(&two, 2 * MIB as u64, data.len()),
                    data,
                    "{}: second target",
                    kind.label
                );
                assert_eq!(
                    read_at(&three, 2 * MIB as u64, data.len()),
                    data,
                    "{}: read-only target",
                    kind.label
                );
            }
        }
        for t in [&one, &two, &three] {
            ok("NodeUnpublishVolume", unpublish(&h, &v.volume_id, t));
        }
    }
}

/// Single writers: a second target is "T1!=T2 → FAILED_PRECONDITION" for
/// SINGLE_NODE_WRITER and SINGLE_NODE_SINGLE_WRITER (what the plugin
/// SHOULD return).
#[test]
fn node_publish_second_target_single_writer() {
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
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
            ..h.create_request(&kind, &h.name("single"))
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
    let h = Csi::start();
    if !can_create(&h) || !h.need_node(&[NodeCap::GetVolumeStats]) {
        return;
    }
    for (kind, v) in volumes(&h) {
        let what = format!("NodeGetVolumeStats {}", kind.label);
        let (staging, target) = h.mount(&v, &kind.cap());
        let before = h.stats(&v, &target, staging.as_deref());
        let bytes = usage(&before, Unit::Bytes).unwrap_or_else(|| panic!("{what}: no BYTES usage"));
        check_usage(&what, &bytes);
        assert!(
            before.usage.iter().all(|u| u.unit != Unit::Unknown as i32),
            "{what}: a usage of UNKNOWN unit"
        );
        if h.has_node(NodeCap::VolumeCondition) {
            let c = before
                .volume_condition
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no volume_condition although VOLUME_CONDITION"));
            assert!(
                !c.abnormal,
                "{what}: a fresh volume is abnormal: {}",
                c.message
            );
            assert!(
                !c.message.is_empty(),
                "{what}: the condition's message is REQUIRED"
            );
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
                    let (total, _) = statvfs(&target);
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
                let after = h.stats(&v, &target, staging.as_deref());
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
        if let Some(s) = &staging {
            let at_staging = h.stats(&v, s, Some(s));
            check_usage(
                &format!("{what} at the staging path"),
                &usage(&at_staging, Unit::Bytes).expect("BYTES usage"),
            );
        }
        h.unmount(&v, staging.as_deref(), &target);
    }
}

/// NodeGetVolumeStats' errors: required fields, and "Volume does not exist
/// → NOT_FOUND ... on specified volume_path".
#[test]
fn node_get_volume_stats_errors() {
    let h = Csi::start();
    if !can_create(&h) || !h.need_node(&[NodeCap::GetVolumeStats]) {
        return;
    }
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let (staging, target) = h.mount(&v, &kind.cap());
    let stats = |id: &str, path: &str| {
        h.node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: id.to_owned(),
            volume_path: path.to_owned(),
            staging_target_path: staging.as_deref().map(path_str).unwrap_or_default(),
        })
    };
    let t = path_str(&target);
    check(
        "NodeGetVolumeStats",
        vec![
            case(
                "without a volume_id",
                stats("", &t),
                &[Code::InvalidArgument],
            ),
            case(
                "without a volume_path",
                stats(&v.volume_id, ""),
                &[Code::InvalidArgument],
            ),
            case(
                "of an unknown volume",
                stats("conformance-no-such-volume", &t),
                &[Code::NotFound],
            ),
            case(
                "at a path that does not exist",
                stats(&v.volume_id, &path_str(&h.dir.join("no-such-path"))),
                &[Code::NotFound],
            ),
            case("at the target", stats(&v.volume_id, &t), &[Code::Ok]),
        ],
    );
    // At a folder where the volume is not: NOT_FOUND, or (with
    // VOLUME_CONDITION) an answer that says the volume is abnormal there.
    let elsewhere = h.staging_path();
    match stats(&v.volume_id, &path_str(&elsewhere)) {
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
    h.unmount(&v, staging.as_deref(), &target);
}

/// A block volume published at a path is a real block device of the
/// volume's size, which takes writes anywhere in it (1 MiB at an offset,
/// the last block) and gives them back through a fresh open.
#[test]
fn node_block_device_io() {
    let h = Csi::start();
    if !can_create(&h) {
        return;
    }
    let Some((kind, v)) = h.create_block() else {
        return;
    };
    let (staging, target) = h.mount(&v, &kind.cap());
    let m = std::fs::metadata(&target).expect("the target");
    assert!(
        m.file_type().is_block_device(),
        "the target {} is not a block device",
        target.display()
    );
    let size = device_size(&target);
    assert!(
        size >= v.capacity_bytes as u64,
        "the device has {size} bytes for a capacity of {}",
        v.capacity_bytes
    );
    let data = pattern(MIB as usize, 11);
    let offset = 7 * MIB as u64 + 4096;
    write_at(&target, offset, &data);
    assert_eq!(
        read_at(&target, offset, data.len()),
        data,
        "1 MiB read back"
    );
    let tail = pattern(4096, 13);
    write_at(&target, size - 4096, &tail);
    assert_eq!(
        read_at(&target, size - 4096, 4096),
        tail,
        "the last block read back"
    );
    // Past the end there is nothing.
    let past = std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .and_then(|f| {
            use std::os::unix::fs::FileExt;
            f.write_at(&tail, size)
        });
    assert!(
        !matches!(past, Ok(n) if n > 0),
        "wrote past the end of the device: {past:?}"
    );
    // Through another stage and publish, the data is still there.
    h.unmount(&v, staging.as_deref(), &target);
    let (staging, target) = h.mount(&v, &kind.cap());
    assert_eq!(
        read_at(&target, offset, data.len()),
        data,
        "after publishing again"
    );
    assert_eq!(
        read_at(&target, size - 4096, 4096),
        tail,
        "after publishing again"
    );
    h.unmount(&v, staging.as_deref(), &target);
}
