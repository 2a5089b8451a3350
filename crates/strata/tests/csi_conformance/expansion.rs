//! Volume expansion: ControllerExpandVolume and NodeExpandVolume, offline
//! and online (while a workload has the volume published).

use std::path::Path;

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
    path: &Path,
    staging: Option<&Path>,
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

/// The plugin with CREATE_DELETE_VOLUME and the controller's EXPAND_VOLUME.
fn expanding() -> Option<Csi> {
    Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::ExpandVolume])
}

/// The volume's capacity as the controller reports it now.
fn capacity_now(h: &Csi, id: &str) -> Option<i64> {
    if h.has_ctrl(Ctrl::GetVolume) {
        let r = ok("ControllerGetVolume", h.try_get_volume(id));
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
    let Some(h) = expanding() else { return };
    for kind in h.all_kinds() {
        let Some(v) = h.make(&kind) else { continue };
        let what = format!("ControllerExpandVolume {}", kind.label);
        let expand = |size| h.controller_expand_volume(expand_req(&v, size, Some(kind.cap())));
        let want = 2 * v.capacity_bytes;
        let (r, again) = twice(&what, || expand(want));
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
        assert_eq!(
            again.capacity_bytes, r.capacity_bytes,
            "{what} again: capacity"
        );
        if let Some(now) = capacity_now(&h, &v.volume_id) {
            assert_eq!(
                now, r.capacity_bytes,
                "{what}: the controller reports another capacity"
            );
        }
        let smaller = ok(
            &format!("{what} to less than it has"),
            expand(v.capacity_bytes),
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
    let Some(h) = expanding() else { return };
    let mut all = Vec::new();
    for kind in h.sure_kinds() {
        let v = h.create(&kind);
        let size = v.capacity_bytes;
        let good = expand_req(&v, 2 * size, Some(kind.cap()));
        let mut cases = changes(good, |r| h.controller_expand_volume(r))
            .without_volume_id()
            .row(
                "without a capacity_range",
                |r| r.capacity_range = None,
                INVALID,
            )
            .sized("with an empty capacity_range", 0, 0, INVALID)
            .of_unknown_volume()
            .required_above_limit(4 * size, 3 * size)
            .sized(
                "with negative required_bytes",
                -1,
                0,
                &[Code::InvalidArgument, Code::OutOfRange],
            )
            .sized(
                "to 1 EiB",
                1 << 60,
                0,
                &[Code::OutOfRange, Code::ResourceExhausted],
            )
            .when(
                h.strata && kind.access == Access::Mount && !kind.own_fs,
                |t| {
                    t.with_capability(
                        "of a folder volume as a block volume",
                        block_cap(Mode::SingleNodeWriter),
                        INVALID,
                    )
                },
            )
            .when(h.strata && kind.access == Access::Block, |t| {
                t.with_capability(
                    "of a block volume as a mount volume",
                    mount_cap(Mode::SingleNodeWriter),
                    INVALID,
                )
            })
            .cases();
        if let Some(now) = capacity_now(&h, &v.volume_id) {
            cases.push(fact(
                "the capacity after the failed calls",
                now == size,
                format!("changed from {size} to {now}"),
            ));
        }
        all.extend(prefixed(&kind.label, cases));
    }
    check("ControllerExpandVolume", all);
}

/// Online expansion: a published volume grown by ControllerExpandVolume
/// and then NodeExpandVolume shows the new size to the workload (statvfs
/// of the target, the device's size) and in NodeGetVolumeStats, and keeps
/// its data.
#[test]
fn online_expansion() {
    let Some(h) = expanding() else { return };
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
        let Some(v) = h.make(&kind) else { continue };
        let what = format!("online expansion of {}", kind.label);
        let c = kind.cap();
        let m = h.mount(&v, &c);
        let target = &m.target;
        let data = pattern(256 * 1024, 61);
        kind.put(target, "kept", &data);
        let before = kind.seen_size(target);
        let total = || usage(&m.stats(), Unit::Bytes).expect("BYTES usage").total;
        let stats_before = h.has_node(NodeCap::GetVolumeStats).then(total);
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
            let req = node_expand_req(&v, target, m.staging(), want, &c);
            let (n, _) = twice(&format!("{what}: NodeExpandVolume"), || {
                h.node_expand_volume(req.clone())
            });
            assert!(
                n.capacity_bytes == 0 || n.capacity_bytes >= want,
                "{what}: NodeExpandVolume says {}",
                n.capacity_bytes
            );
        } else if h.strata && kind.own_fs {
            panic!("{what}: Strata must ask for NodeExpandVolume to grow an image's filesystem");
        }
        let after = kind.seen_size(target);
        assert!(
            after as f64 >= before as f64 * 1.8,
            "{what}: the workload sees {after} bytes, was {before}, asked for {want}"
        );
        if let Some(b) = stats_before {
            let a = total();
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
        assert_eq!(
            kind.get(target, "kept", data.len()).as_ref(),
            Some(&data),
            "{what}: the data"
        );
        // The new space is usable.
        match kind.access {
            Access::Mount => write_file(&target.join("more"), &pattern(MIB as usize, 62)),
            Access::Block => {
                let tail = pattern(4096, 63);
                write_at(target, after - 4096, &tail);
                assert_eq!(
                    read_at(target, after - 4096, 4096),
                    tail,
                    "{what}: the new end"
                );
            }
        }
        // It stays grown through another stage and publish.
        m.unmount();
        let again = h.with_mounted(&kind, &v, |t| kind.seen_size(t));
        assert!(again >= after, "{what}: shrank after publishing again");
    }
}

/// Offline expansion: grown while not on any node, the volume shows its new
/// size once staged and expanded on the node ("NodeExpandVolume MUST be
/// called after successful NodeStageVolume" and "MAY be called before or
/// after NodePublishVolume").
#[test]
fn offline_expansion() {
    let Some(h) = expanding() else { return };
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
        h.unmount(&v.volume_id, staging.as_deref(), &target);
    }
}

/// NodeExpandVolume's errors: required fields, "Volume does not exist →
/// NOT_FOUND", a path where the volume is not, "Unsupported capacity_range
/// → OUT_OF_RANGE".
#[test]
fn node_expand_volume_errors() {
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume]) else {
        return;
    };
    if !h.need_node(&[NodeCap::ExpandVolume]) {
        return;
    }
    let kind = h.growable_image_kind();
    let (v, m) = h.create_mounted(&kind);
    let size = v.capacity_bytes;
    let good = node_expand_req(&v, &m.target, m.staging(), size, &kind.cap());
    changes(good, |r| h.node_expand_volume(r))
        .without_volume_id()
        .bad_paths(&h.dir)
        .of_unknown_volume()
        .required_above_limit(4 * size, 3 * size)
        .row("at its size (nothing to do)", |_| {}, &[Code::Ok])
        .when(h.strata, |t| {
            t.with_capability(
                "of a mount volume as a block volume",
                block_cap(Mode::SingleNodeWriter),
                INVALID,
            )
        })
        .check("NodeExpandVolume");
    m.unmount();
}
