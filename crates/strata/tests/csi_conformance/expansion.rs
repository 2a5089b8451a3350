//! Volume expansion: ControllerExpandVolume and NodeExpandVolume, offline
//! and online (while a workload has the volume published).

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

use pb::volume_usage::Unit;

fn expand_req(
    v: &pb::Volume,
    size: i64,
    c: Option<pb::VolumeCapability>,
) -> pb::ControllerExpandVolumeRequest {
    pb::ControllerExpandVolumeRequest {
        volume_id: v.volume_id.clone(),
        capacity_range: range(size, 0),
        volume_capability: c,
        ..Default::default()
    }
}

fn node_expand_req(
    v: &pb::Volume,
    path: &std::path::Path,
    staging: Option<&std::path::Path>,
    size: i64,
    c: &pb::VolumeCapability,
) -> pb::NodeExpandVolumeRequest {
    pb::NodeExpandVolumeRequest {
        volume_id: v.volume_id.clone(),
        volume_path: path_str(path),
        capacity_range: range(size, 0),
        staging_target_path: staging.map(path_str).unwrap_or_default(),
        volume_capability: Some(c.clone()),
        ..Default::default()
    }
}

/// The volume's capacity as the controller reports it now.
fn capacity_now(h: &Csi, id: &str) -> Option<i64> {
    if h.has_ctrl(Ctrl::GetVolume) {
        let r = ok(
            "ControllerGetVolume",
            h.controller_get_volume(pb::ControllerGetVolumeRequest {
                volume_id: id.to_owned(),
            }),
        );
        return Some(r.volume.expect("no volume").capacity_bytes);
    }
    if h.has_ctrl(Ctrl::ListVolumes) {
        return h
            .all_volumes(0)
            .into_iter()
            .filter_map(|e| e.volume)
            .find(|v| v.volume_id == id)
            .map(|v| v.capacity_bytes);
    }
    None
}

/// ControllerExpandVolume grows every kind of volume, says whether the
/// node must follow, and is idempotent: "If a volume ... is already larger
/// than or equal to the target capacity of the expansion request, the
/// plugin SHOULD reply 0 OK."
#[test]
fn controller_expand_volume() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume]) {
        return;
    }
    let mut kinds = h.mount_kinds();
    kinds.push(h.block_kind());
    for kind in kinds {
        let v = if kind.access == Access::Block {
            match h.create_block() {
                Some((_, v)) => v,
                None => continue,
            }
        } else {
            h.create(&kind)
        };
        let what = format!("ControllerExpandVolume {}", kind.label);
        let want = 2 * v.capacity_bytes;
        let r = ok(
            &what,
            h.controller_expand_volume(expand_req(&v, want, Some(kind.cap()))),
        );
        assert!(
            r.capacity_bytes >= want,
            "{what}: capacity {} below the {want} asked for",
            r.capacity_bytes
        );
        if h.strata && kind.own_fs {
            assert!(
                r.node_expansion_required,
                "{what}: an image's filesystem must be grown on the node"
            );
        }
        if let Some(now) = capacity_now(&h, &v.volume_id) {
            assert_eq!(
                now, r.capacity_bytes,
                "{what}: the controller reports another capacity"
            );
        }
        let again = ok(
            &format!("{what} again"),
            h.controller_expand_volume(expand_req(&v, want, Some(kind.cap()))),
        );
        assert_eq!(
            again.capacity_bytes, r.capacity_bytes,
            "{what} again: capacity"
        );
        let smaller = ok(
            &format!("{what} to less than it has"),
            h.controller_expand_volume(expand_req(&v, v.capacity_bytes, Some(kind.cap()))),
        );
        assert_eq!(
            smaller.capacity_bytes, r.capacity_bytes,
            "{what} to less: the volume shrank"
        );
    }
}

/// ControllerExpandVolume's errors: required fields (INVALID_ARGUMENT),
/// "Volume does not exist → NOT_FOUND", "Unsupported capacity_range →
/// OUT_OF_RANGE", "Exceeds capabilities → INVALID_ARGUMENT".
#[test]
fn controller_expand_volume_errors() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume]) {
        return;
    }
    let mut kinds = h.mount_kinds();
    if h.strata {
        kinds.push(h.block_kind());
    }
    let mut all = Vec::new();
    for kind in kinds {
        let v = h.create(&kind);
        let with = |change: &dyn Fn(&mut pb::ControllerExpandVolumeRequest)| {
            let mut r = expand_req(&v, 2 * v.capacity_bytes, Some(kind.cap()));
            change(&mut r);
            h.controller_expand_volume(r)
        };
        let invalid = &[Code::InvalidArgument];
        let mut cases = vec![
            case(
                "without a volume_id",
                with(&|r| r.volume_id.clear()),
                invalid,
            ),
            case(
                "without a capacity_range",
                with(&|r| r.capacity_range = None),
                invalid,
            ),
            case(
                "with an empty capacity_range",
                with(&|r| r.capacity_range = range(0, 0)),
                invalid,
            ),
            case(
                "of an unknown volume",
                with(&|r| r.volume_id = "conformance-no-such-volume".into()),
                &[Code::NotFound],
            ),
            case(
                "with required_bytes above limit_bytes",
                with(&|r| r.capacity_range = range(4 * v.capacity_bytes, 3 * v.capacity_bytes)),
                &[Code::OutOfRange],
            ),
            case(
                "with negative required_bytes",
                with(&|r| r.capacity_range = range(-1, 0)),
                &[Code::InvalidArgument, Code::OutOfRange],
            ),
            case(
                "to 1 EiB",
                with(&|r| r.capacity_range = range(1 << 60, 0)),
                &[Code::OutOfRange, Code::ResourceExhausted],
            ),
        ];
        if h.strata && !kind.own_fs && kind.access == Access::Mount {
            cases.push(case(
                "of a folder volume as a block volume",
                with(&|r| r.volume_capability = Some(block_cap(Mode::SingleNodeWriter))),
                invalid,
            ));
        }
        if h.strata && kind.access == Access::Block {
            cases.push(case(
                "of a block volume as a mount volume",
                with(&|r| r.volume_capability = Some(mount_cap(Mode::SingleNodeWriter))),
                invalid,
            ));
        }
        if let Some(now) = capacity_now(&h, &v.volume_id) {
            cases.push(fact(
                "the capacity after the failed calls",
                now == v.capacity_bytes,
                format!("changed from {} to {now}", v.capacity_bytes),
            ));
        }
        all.extend(prefixed(&kind.label, cases));
    }
    check("ControllerExpandVolume", all);
}

/// The size a workload sees at `target`.
fn seen_size(kind: &Kind, target: &std::path::Path) -> u64 {
    match kind.access {
        Access::Mount => statvfs(target).0,
        Access::Block => device_size(target),
    }
}

/// Online expansion: a published volume grown by ControllerExpandVolume
/// and then NodeExpandVolume shows the new size to the workload (statvfs
/// of the target, the device's size) and in NodeGetVolumeStats, and keeps
/// its data.
#[test]
fn online_expansion() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume]) {
        return;
    }
    if !h.expansion.contains(&Expansion::Online) {
        return h.skip("no ONLINE volume expansion");
    }
    let mut kinds: Vec<Kind> = h
        .image_kinds()
        .into_iter()
        .filter(|k| h.grows_mounted(k))
        .collect();
    kinds.push(h.block_kind());
    for kind in kinds {
        let v = if kind.access == Access::Block {
            match h.create_block() {
                Some((_, v)) => v,
                None => continue,
            }
        } else {
            h.create(&kind)
        };
        let what = format!("online expansion of {}", kind.label);
        let c = kind.cap();
        let (staging, target) = h.mount(&v, &c);
        let data = pattern(256 * 1024, 61);
        match kind.access {
            Access::Mount => write_file(&target.join("kept"), &data),
            Access::Block => write_at(&target, MIB as u64, &data),
        }
        let before = seen_size(&kind, &target);
        let stats_before = h.has_node(NodeCap::GetVolumeStats).then(|| {
            usage(&h.stats(&v, &target, staging.as_deref()), Unit::Bytes)
                .expect("BYTES usage")
                .total
        });
        let want = 2 * v.capacity_bytes;
        let r = ok(
            &what,
            h.controller_expand_volume(expand_req(&v, want, Some(c.clone()))),
        );
        assert!(
            r.capacity_bytes >= want,
            "{what}: capacity {}",
            r.capacity_bytes
        );
        if r.node_expansion_required {
            assert!(
                h.has_node(NodeCap::ExpandVolume),
                "{what}: node_expansion_required, but the node has no EXPAND_VOLUME"
            );
            let req = node_expand_req(&v, &target, staging.as_deref(), want, &c);
            let n = ok(
                &format!("{what}: NodeExpandVolume"),
                h.node_expand_volume(req.clone()),
            );
            assert!(
                n.capacity_bytes == 0 || n.capacity_bytes >= want,
                "{what}: NodeExpandVolume says {}",
                n.capacity_bytes
            );
            ok(
                &format!("{what}: NodeExpandVolume again"),
                h.node_expand_volume(req),
            );
        } else if h.strata && kind.own_fs {
            panic!("{what}: Strata must ask for NodeExpandVolume to grow an image's filesystem");
        }
        let after = seen_size(&kind, &target);
        assert!(
            after as f64 >= before as f64 * 1.8,
            "{what}: the workload sees {after} bytes, was {before}, asked for {want}"
        );
        if let Some(b) = stats_before {
            let a = usage(&h.stats(&v, &target, staging.as_deref()), Unit::Bytes)
                .expect("BYTES usage")
                .total;
            assert!(
                a as f64 >= b as f64 * 1.8,
                "{what}: NodeGetVolumeStats total went from {b} to {a}"
            );
            if kind.own_fs {
                assert_eq!(
                    a as u64, after,
                    "{what}: NodeGetVolumeStats and statvfs disagree"
                );
            }
        }
        match kind.access {
            Access::Mount => {
                assert_eq!(
                    std::fs::read(target.join("kept")).ok(),
                    Some(data.clone()),
                    "{what}: the file"
                );
                // The new space is usable.
                write_file(&target.join("more"), &pattern(MIB as usize, 62));
            }
            Access::Block => {
                assert_eq!(
                    read_at(&target, MIB as u64, data.len()),
                    data,
                    "{what}: the data"
                );
                let tail = pattern(4096, 63);
                write_at(&target, after - 4096, &tail);
                assert_eq!(
                    read_at(&target, after - 4096, 4096),
                    tail,
                    "{what}: the new end"
                );
            }
        }
        // It stays grown through another stage and publish.
        h.unmount(&v, staging.as_deref(), &target);
        let (staging, target) = h.mount(&v, &c);
        assert!(
            seen_size(&kind, &target) >= after,
            "{what}: shrank after publishing again"
        );
        h.unmount(&v, staging.as_deref(), &target);
    }
}

/// Offline expansion: grown while not on any node, the volume shows its new
/// size once staged and expanded on the node ("NodeExpandVolume MUST be
/// called after successful NodeStageVolume" and "MAY be called before or
/// after NodePublishVolume").
#[test]
fn offline_expansion() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume]) {
        return;
    }
    // Staged, the volume is mounted, and NodeExpandVolume grows it there.
    for kind in h.image_kinds().into_iter().filter(|k| h.grows_mounted(k)) {
        let v = h.create(&kind);
        let what = format!("offline expansion of {}", kind.label);
        let c = kind.cap();
        let want = 2 * v.capacity_bytes;
        let r = ok(
            &what,
            h.controller_expand_volume(expand_req(&v, want, Some(c.clone()))),
        );
        let staging = h.stage(&v, &c);
        if r.node_expansion_required {
            assert!(
                h.has_node(NodeCap::ExpandVolume),
                "{what}: node_expansion_required, but the node has no EXPAND_VOLUME"
            );
            if let Some(s) = &staging {
                ok(
                    &format!("{what}: NodeExpandVolume at the staging path"),
                    h.node_expand_volume(node_expand_req(&v, s, Some(s), want, &c)),
                );
            }
        }
        let target = h.publish(&v, &c, staging.as_deref(), false);
        if r.node_expansion_required && staging.is_none() {
            ok(
                &format!("{what}: NodeExpandVolume"),
                h.node_expand_volume(node_expand_req(&v, &target, None, want, &c)),
            );
        }
        let size = statvfs(&target).0;
        assert!(
            size as f64 >= want as f64 * 0.8,
            "{what}: the workload sees {size} bytes of {want}"
        );
        h.unmount(&v, staging.as_deref(), &target);
    }
}

/// NodeExpandVolume's errors: required fields, "Volume does not exist →
/// NOT_FOUND", a path where the volume is not, "Unsupported capacity_range
/// → OUT_OF_RANGE".
#[test]
fn node_expand_volume_errors() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) || !h.need_node(&[NodeCap::ExpandVolume]) {
        return;
    }
    let kind = h.growable_image_kind();
    let v = h.create(&kind);
    let c = kind.cap();
    let (staging, target) = h.mount(&v, &c);
    let with = |change: &dyn Fn(&mut pb::NodeExpandVolumeRequest)| {
        let mut r = node_expand_req(&v, &target, staging.as_deref(), v.capacity_bytes, &c);
        change(&mut r);
        h.node_expand_volume(r)
    };
    let invalid = &[Code::InvalidArgument];
    let mut cases = vec![
        case(
            "without a volume_id",
            with(&|r| r.volume_id.clear()),
            invalid,
        ),
        case(
            "without a volume_path",
            with(&|r| r.volume_path.clear()),
            invalid,
        ),
        case(
            "of an unknown volume",
            with(&|r| r.volume_id = "conformance-no-such-volume".into()),
            &[Code::NotFound],
        ),
        case(
            "at a path that does not exist",
            with(&|r| r.volume_path = path_str(&h.dir.join("no-such-path"))),
            &[Code::NotFound],
        ),
        case(
            "with required_bytes above limit_bytes",
            with(&|r| r.capacity_range = range(4 * v.capacity_bytes, 3 * v.capacity_bytes)),
            &[Code::OutOfRange],
        ),
        case("at its size (nothing to do)", with(&|_| {}), &[Code::Ok]),
    ];
    if h.strata {
        cases.push(case(
            "of a mount volume as a block volume",
            with(&|r| r.volume_capability = Some(block_cap(Mode::SingleNodeWriter))),
            invalid,
        ));
    }
    check("NodeExpandVolume", cases);
    h.unmount(&v, staging.as_deref(), &target);
}
