//! Controller service: CreateVolume, DeleteVolume,
//! ValidateVolumeCapabilities, ListVolumes, GetCapacity,
//! ControllerGetVolume.

use std::collections::{HashMap, HashSet};

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

use pb::volume_content_source::{SnapshotSource, Type as Source, VolumeSource};

/// What a successful CreateVolume must answer for `req`.
fn assert_created(h: &Csi, what: &str, req: &pb::CreateVolumeRequest, v: &pb::Volume) {
    check_volume(what, v);
    if let Some(r) = &req.capacity_range {
        // A capacity of 0 means "unknown"; anything else must honour the range.
        if v.capacity_bytes != 0 || h.strata {
            assert!(
                v.capacity_bytes >= r.required_bytes,
                "{what}: capacity {} is below required_bytes {}",
                v.capacity_bytes,
                r.required_bytes
            );
            if r.limit_bytes > 0 {
                assert!(
                    v.capacity_bytes <= r.limit_bytes,
                    "{what}: capacity {} is above limit_bytes {}",
                    v.capacity_bytes,
                    r.limit_bytes
                );
            }
        }
    }
    if !h.has_plugin(Service::VolumeAccessibilityConstraints) {
        assert!(
            v.accessible_topology.is_empty(),
            "{what}: accessible_topology without VOLUME_ACCESSIBILITY_CONSTRAINTS"
        );
    }
    if req.volume_content_source.is_none() {
        assert!(
            v.content_source.is_none(),
            "{what}: an empty volume claims a content source"
        );
    }
}

/// CreateVolume with valid input makes a mount volume of every kind, with
/// or without a capacity range, and with any allowed name.
#[test]
fn create_volume_mount() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    for kind in h.mount_kinds() {
        let base = h.create_request(&kind, &h.name(&kind.label));
        let exact = pb::CreateVolumeRequest {
            name: h.name(&format!("{}-exact", kind.label)),
            capacity_range: range(kind.size, kind.size),
            ..base.clone()
        };
        let no_size = pb::CreateVolumeRequest {
            name: h.name(&format!("{}-nosize", kind.label)),
            capacity_range: None,
            ..base.clone()
        };
        // "Any Unicode string that conforms to the length limit is allowed
        // except those containing [control characters]."
        let odd = pb::CreateVolumeRequest {
            name: format!("Conformance vol/ünïcödé: {} ✓", h.name(&kind.label)),
            ..base.clone()
        };
        let mut ids = HashSet::new();
        for (what, req) in [
            ("required only", base),
            ("exact", exact),
            ("no capacity_range", no_size),
            ("odd name", odd),
        ] {
            let what = format!("CreateVolume {} ({what})", kind.label);
            let v = h.create_with(req.clone());
            assert_created(&h, &what, &req, &v);
            if what.contains("exact") && (v.capacity_bytes != 0 || h.strata) {
                assert_eq!(
                    v.capacity_bytes, kind.size,
                    "{what}: an exact range gives that size"
                );
            }
            assert!(
                ids.insert(v.volume_id.clone()),
                "{what}: volume_id {} reused",
                v.volume_id
            );
        }
    }
}

/// CreateVolume with a block capability.
#[test]
fn create_volume_block() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = h.block_kind();
    let req = h.create_request(&kind, &h.name("block"));
    let v = match h.create_volume(req.clone()) {
        Ok(r) => r.volume.expect("CreateVolume: no volume (REQUIRED)"),
        Err(s) if !h.strata && s.code() == Code::InvalidArgument => {
            return h.skip(&format!("no block volumes: {}", s.message()));
        }
        Err(s) => panic!("CreateVolume (block): {}", status_text(&s)),
    };
    assert_created(&h, "CreateVolume (block)", &req, &v);
    let exact = pb::CreateVolumeRequest {
        name: h.name("block-exact"),
        capacity_range: range(kind.size, kind.size),
        ..req
    };
    let v = h.create_with(exact.clone());
    assert_created(&h, "CreateVolume (block, exact)", &exact, &v);
    assert_eq!(
        v.capacity_bytes, kind.size,
        "an exact range gives that size"
    );
}

/// Every single-node access mode the plugin claims is accepted
/// (SINGLE_NODE_WRITER always: "Plugins MUST accept and allow use of the
/// SINGLE_NODE_WRITER access mode").
#[test]
fn create_volume_single_node_modes() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let mut modes = vec![Mode::SingleNodeWriter, Mode::SingleNodeReaderOnly];
    if h.has_ctrl(Ctrl::SingleNodeMultiWriter) {
        modes.extend([Mode::SingleNodeSingleWriter, Mode::SingleNodeMultiWriter]);
    } else {
        h.skip("no SINGLE_NODE_MULTI_WRITER: its two modes are not tried");
    }
    let kind = h.mount_kind();
    let mut cases = Vec::new();
    for mode in &modes {
        let req = pb::CreateVolumeRequest {
            volume_capabilities: vec![kind.cap_with(*mode)],
            ..h.create_request(&kind, &h.name("mode"))
        };
        cases.push(case(mode.as_str_name(), h.create_volume(req), &[Code::Ok]));
    }
    let all = pb::CreateVolumeRequest {
        volume_capabilities: modes.iter().map(|m| kind.cap_with(*m)).collect(),
        ..h.create_request(&kind, &h.name("modes"))
    };
    cases.push(case(
        "all of them at once",
        h.create_volume(all),
        &[Code::Ok],
    ));
    check("CreateVolume", cases);
}

/// "Missing required field → INVALID_ARGUMENT", for CreateVolume.
#[test]
fn create_volume_missing_fields() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = h.mount_kind();
    let base = || h.create_request(&kind, &h.name("bad"));
    let invalid = &[Code::InvalidArgument];
    let mut cases = vec![
        case(
            "without a name",
            h.create_volume(pb::CreateVolumeRequest {
                name: String::new(),
                ..base()
            }),
            invalid,
        ),
        case(
            "without volume_capabilities",
            h.create_volume(pb::CreateVolumeRequest {
                volume_capabilities: vec![],
                ..base()
            }),
            invalid,
        ),
        case(
            "with a capability without access type",
            h.create_volume(pb::CreateVolumeRequest {
                volume_capabilities: vec![pb::VolumeCapability {
                    access_type: None,
                    ..kind.cap()
                }],
                ..base()
            }),
            invalid,
        ),
        case(
            "with a capability without access mode",
            h.create_volume(pb::CreateVolumeRequest {
                volume_capabilities: vec![pb::VolumeCapability {
                    access_mode: None,
                    ..kind.cap()
                }],
                ..base()
            }),
            invalid,
        ),
        case(
            "with access mode UNKNOWN",
            h.create_volume(pb::CreateVolumeRequest {
                volume_capabilities: vec![kind.cap_with(Mode::Unknown)],
                ..base()
            }),
            invalid,
        ),
        case(
            "with a good capability and one without access type",
            h.create_volume(pb::CreateVolumeRequest {
                volume_capabilities: vec![
                    kind.cap(),
                    pb::VolumeCapability {
                        access_type: None,
                        ..kind.cap()
                    },
                ],
                ..base()
            }),
            invalid,
        ),
        case(
            "with a control character in the name",
            h.create_volume(pb::CreateVolumeRequest {
                name: format!("{}\u{1}", h.name("ctl")),
                ..base()
            }),
            invalid,
        ),
        case(
            "with a content source of no type",
            h.create_volume(pb::CreateVolumeRequest {
                volume_content_source: Some(pb::VolumeContentSource { r#type: None }),
                ..base()
            }),
            invalid,
        ),
    ];
    if h.has_ctrl(Ctrl::CreateDeleteSnapshot) {
        cases.push(case(
            "from a snapshot with no snapshot_id",
            h.create_volume(pb::CreateVolumeRequest {
                volume_content_source: Some(pb::VolumeContentSource {
                    r#type: Some(Source::Snapshot(SnapshotSource {
                        snapshot_id: String::new(),
                    })),
                }),
                ..base()
            }),
            invalid,
        ));
    }
    if h.has_ctrl(Ctrl::CloneVolume) {
        cases.push(case(
            "from a volume with no volume_id",
            h.create_volume(pb::CreateVolumeRequest {
                volume_content_source: Some(pb::VolumeContentSource {
                    r#type: Some(Source::Volume(VolumeSource {
                        volume_id: String::new(),
                    })),
                }),
                ..base()
            }),
            invalid,
        ));
    }
    if h.has_plugin(Service::VolumeAccessibilityConstraints) {
        // "If TopologyRequirement is specified either requisite or
        // preferred or both MUST be specified."
        cases.push(case(
            "with an empty TopologyRequirement",
            h.create_volume(pb::CreateVolumeRequest {
                accessibility_requirements: Some(pb::TopologyRequirement::default()),
                ..base()
            }),
            invalid,
        ));
    }
    check("CreateVolume", cases);
}

/// "This operation MUST be idempotent": the same name and arguments give
/// the same volume, and so does any compatible capacity range.
#[test]
fn create_volume_is_idempotent() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let mut kinds = h.mount_kinds();
    kinds.push(h.block_kind());
    for kind in kinds {
        let req = h.create_request(&kind, &h.name(&kind.label));
        let first = match h.create_volume(req.clone()) {
            Ok(r) => r.volume.expect("CreateVolume: no volume"),
            Err(s)
                if kind.access == Access::Block
                    && !h.strata
                    && s.code() == Code::InvalidArgument =>
            {
                h.skip("no block volumes");
                continue;
            }
            Err(s) => panic!("CreateVolume {}: {}", kind.label, status_text(&s)),
        };
        let what = format!("CreateVolume {} again", kind.label);
        let again = h.create_with(req.clone());
        assert_eq!(again.volume_id, first.volume_id, "{what}: another volume");
        assert_eq!(
            again.capacity_bytes, first.capacity_bytes,
            "{what}: capacity"
        );
        assert_eq!(
            again.volume_context, first.volume_context,
            "{what}: volume_context"
        );
        assert_eq!(
            again.accessible_topology, first.accessible_topology,
            "{what}: topology"
        );
        // "...compatible with the specified capacity_range ... MUST reply 0 OK".
        for (label, r) in [
            ("required at the capacity", range(first.capacity_bytes, 0)),
            (
                "limit above the capacity",
                range(0, first.capacity_bytes * 2),
            ),
            (
                "range around the capacity",
                range(first.capacity_bytes / 2, first.capacity_bytes * 2),
            ),
        ] {
            let compatible = pb::CreateVolumeRequest {
                capacity_range: r,
                ..req.clone()
            };
            let v = ok(&format!("{what} ({label})"), h.create_volume(compatible))
                .volume
                .expect("CreateVolume: no volume");
            assert_eq!(
                v.volume_id, first.volume_id,
                "{what} ({label}): another volume"
            );
            assert_eq!(
                v.capacity_bytes, first.capacity_bytes,
                "{what} ({label}): capacity"
            );
        }
    }
}

/// "Volume already exists but is incompatible → ALREADY_EXISTS ... with the
/// specified capacity_range, volume_capabilities, parameters,
/// accessibility_requirements or volume_content_source."
#[test]
fn create_volume_incompatible_repeat_already_exists() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let exists = &[Code::AlreadyExists];
    let mut kinds = h.mount_kinds();
    kinds.push(h.block_kind());
    let mut all = Vec::new();
    for kind in kinds {
        let req = h.create_request(&kind, &h.name(&kind.label));
        let v = match h.create_volume(req.clone()) {
            Ok(r) => r.volume.expect("CreateVolume: no volume"),
            Err(s)
                if kind.access == Access::Block
                    && !h.strata
                    && s.code() == Code::InvalidArgument =>
            {
                h.skip("no block volumes");
                continue;
            }
            Err(s) => panic!("CreateVolume {}: {}", kind.label, status_text(&s)),
        };
        let capacity = v.capacity_bytes;
        let other = h.create(&kind);
        let (flipped, flipped_label) = match kind.access {
            Access::Mount => (block_cap(Mode::SingleNodeWriter), "as a block volume"),
            Access::Block => (mount_cap(Mode::SingleNodeWriter), "as a mount volume"),
        };
        let again = |change: &dyn Fn(&mut pb::CreateVolumeRequest)| {
            let mut r = req.clone();
            change(&mut r);
            h.create_volume(r)
        };
        let mut cases = vec![
            case(
                "with required_bytes above its capacity",
                again(&|r| r.capacity_range = range(capacity + 64 * MIB, 0)),
                exists,
            ),
            case(
                "with limit_bytes below its capacity",
                again(&|r| r.capacity_range = range(0, capacity / 2)),
                exists,
            ),
            case(
                flipped_label,
                again(&|r| r.volume_capabilities = vec![flipped.clone()]),
                // Strata's block volumes take no type=dir or fs=: with
                // those parameters a block request is invalid whatever
                // exists.
                if h.strata && kind.access == Access::Mount {
                    &[Code::AlreadyExists, Code::InvalidArgument]
                } else {
                    exists
                },
            ),
        ];
        if h.strata && kind.access == Access::Block {
            // No other parameters make a valid block volume.
        } else if h.strata {
            let params = if kind.params.get("type").map(String::as_str) == Some("dir") {
                map(&[("type", "image"), ("fs", "ext4")])
            } else if kind.params.get("fs").map(String::as_str) == Some("ext4") {
                map(&[("type", "image"), ("fs", "xfs")])
            } else {
                map(&[("type", "dir")])
            };
            cases.push(case(
                format!("with other parameters {params:?}"),
                again(&|r| r.parameters = params.clone()),
                exists,
            ));
        } else {
            // Another driver's parameters are opaque: an extra one is
            // either another volume's or not allowed at all.
            cases.push(case(
                "with an extra parameter",
                again(&|r| {
                    r.parameters
                        .insert("conformance.example.com/extra".into(), "1".into());
                }),
                &[Code::AlreadyExists, Code::InvalidArgument],
            ));
        }
        if h.has_ctrl(Ctrl::CloneVolume) {
            let source = pb::VolumeContentSource {
                r#type: Some(Source::Volume(VolumeSource {
                    volume_id: other.volume_id.clone(),
                })),
            };
            cases.push(case(
                "with a content source",
                again(&|r| r.volume_content_source = Some(source.clone())),
                exists,
            ));
        }
        if h.has_plugin(Service::VolumeAccessibilityConstraints) {
            let elsewhere = pb::Topology {
                segments: h
                    .info
                    .accessible_topology
                    .as_ref()
                    .map(|t| {
                        t.segments
                            .keys()
                            .map(|k| (k.clone(), "conformance-elsewhere".to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if !elsewhere.segments.is_empty() {
                cases.push(case(
                    "required to be accessible from another node",
                    again(&|r| {
                        r.accessibility_requirements = Some(pb::TopologyRequirement {
                            requisite: vec![elsewhere.clone()],
                            preferred: vec![],
                        })
                    }),
                    // Already-exists-but-incompatible, or unable to
                    // provision there: either tells the CO the truth.
                    &[Code::AlreadyExists, Code::ResourceExhausted],
                ));
            }
        }
        // The volume is still there, as it was.
        let same = h.create_with(req.clone());
        cases.push(fact(
            "then the original request again",
            same.volume_id == v.volume_id && same.capacity_bytes == capacity,
            format!("gave {same:?}, not {v:?}"),
        ));
        all.extend(prefixed(&kind.label, cases));
    }
    check("CreateVolume again", all);
}

/// "Unsupported capacity_range → OUT_OF_RANGE." A size the storage cannot
/// hold at all may instead be RESOURCE_EXHAUSTED (not enough space).
#[test]
fn create_volume_capacity_out_of_range() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let mut kinds = h.mount_kinds();
    if h.strata {
        kinds.push(h.block_kind());
    }
    let out = &[Code::OutOfRange];
    let too_big = &[Code::OutOfRange, Code::ResourceExhausted];
    let mut all = Vec::new();
    for kind in kinds {
        let base = || h.create_request(&kind, &h.name(&kind.label));
        let with = |r: Option<pb::CapacityRange>| {
            h.create_volume(pb::CreateVolumeRequest {
                capacity_range: r,
                ..base()
            })
        };
        let mut cases = vec![
            case(
                "required_bytes above limit_bytes",
                with(range(2 * kind.size, kind.size)),
                out,
            ),
            case(
                "negative required_bytes",
                with(range(-kind.size, 0)),
                &[Code::InvalidArgument, Code::OutOfRange],
            ),
            case(
                "negative limit_bytes",
                with(range(0, -kind.size)),
                &[Code::InvalidArgument, Code::OutOfRange],
            ),
            case("1 EiB", with(range(1 << 60, 0)), too_big),
            case("i64::MAX bytes", with(range(i64::MAX, 0)), too_big),
        ];
        let bounds = if h.has_ctrl(Ctrl::GetCapacity) {
            ok(
                "GetCapacity",
                h.get_capacity(pb::GetCapacityRequest {
                    volume_capabilities: vec![kind.cap()],
                    parameters: kind.params.clone(),
                    ..Default::default()
                }),
            )
        } else {
            pb::GetCapacityResponse::default()
        };
        // "The smallest size that may be used in limit_bytes."
        let minimum = bounds
            .minimum_volume_size
            .filter(|m| *m > 1)
            .or((h.strata && kind.own_fs).then_some(4096));
        match minimum {
            Some(min) => {
                cases.push(case(
                    format!("limit_bytes {} below the minimum {min}", min - 1),
                    with(range(0, min - 1)),
                    out,
                ));
                if bounds.minimum_volume_size.is_some() {
                    cases.push(case(
                        format!("limit_bytes at the minimum {min}"),
                        with(range(0, min)),
                        &[Code::Ok],
                    ));
                }
            }
            None if kind.own_fs => h.skip(&format!(
                "{}: no minimum_volume_size to go below",
                kind.label
            )),
            None => {}
        }
        // "The largest size that may be used in required_bytes."
        if let Some(max) = bounds.maximum_volume_size.filter(|m| *m < i64::MAX) {
            cases.push(case(
                format!("required_bytes above the maximum {max}"),
                with(range(max + 1, 0)),
                too_big,
            ));
        }
        all.extend(prefixed(&kind.label, cases));
    }
    check("CreateVolume", all);
}

/// Access modes the plugin does not support: Strata supports none of the
/// MULTI_NODE_* ones ("If ANY of the specified volume capabilities are not
/// supported by the SP, the call MUST return the appropriate gRPC error
/// code" — INVALID_ARGUMENT, an unsupported field).
#[test]
fn create_volume_unsupported_access_modes() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    // Another driver may well support them.
    let want: &[Code] = if h.strata {
        &[Code::InvalidArgument]
    } else {
        &[Code::InvalidArgument, Code::Ok]
    };
    let kind = h.mount_kind();
    let mut cases = Vec::new();
    for mode in [
        Mode::MultiNodeReaderOnly,
        Mode::MultiNodeSingleWriter,
        Mode::MultiNodeMultiWriter,
    ] {
        let req = pb::CreateVolumeRequest {
            volume_capabilities: vec![kind.cap_with(mode)],
            ..h.create_request(&kind, &h.name("multi"))
        };
        cases.push(case(mode.as_str_name(), h.create_volume(req), want));
        let req = pb::CreateVolumeRequest {
            volume_capabilities: vec![kind.cap(), kind.cap_with(mode)],
            ..h.create_request(&kind, &h.name("mixed"))
        };
        cases.push(case(
            format!("SINGLE_NODE_WRITER and {}", mode.as_str_name()),
            h.create_volume(req),
            want,
        ));
    }
    if h.strata {
        let block = h.block_kind();
        let req = pb::CreateVolumeRequest {
            volume_capabilities: vec![block.cap_with(Mode::MultiNodeMultiWriter)],
            ..h.create_request(&block, &h.name("multi-block"))
        };
        cases.push(case(
            "MULTI_NODE_MULTI_WRITER (block)",
            h.create_volume(req),
            want,
        ));
    }
    check("CreateVolume", cases);
}

/// Strata's own parameters: anything but type=dir|image and fs=ext4|xfs is
/// an invalid field, and so is a block folder volume.
#[test]
fn create_volume_rejects_bad_parameters() {
    let h = Csi::start();
    if !h.strata {
        return h.skip("Strata's parameters");
    }
    let kind = h.image_kind();
    let with = |params: HashMap<String, String>, c: pb::VolumeCapability| {
        h.create_volume(pb::CreateVolumeRequest {
            parameters: params,
            volume_capabilities: vec![c],
            ..h.create_request(&kind, &h.name("params"))
        })
    };
    let mount = mount_cap(Mode::SingleNodeWriter);
    let block = block_cap(Mode::SingleNodeWriter);
    let invalid = &[Code::InvalidArgument];
    check(
        "CreateVolume",
        vec![
            case(
                "type=bogus",
                with(map(&[("type", "bogus")]), mount.clone()),
                invalid,
            ),
            case(
                "fs=btrfs",
                with(map(&[("type", "image"), ("fs", "btrfs")]), mount.clone()),
                invalid,
            ),
            case(
                "type=dir as a block volume",
                with(map(&[("type", "dir")]), block),
                invalid,
            ),
            case(
                "no parameters at all",
                with(HashMap::new(), mount),
                &[Code::Ok],
            ),
        ],
    );
}

/// Accessibility requirements: met when the node's topology is required or
/// preferred (and returned in accessible_topology); RESOURCE_EXHAUSTED
/// ("Unable to provision in accessible_topology") when no required
/// topology can be had.
#[test]
fn create_volume_topology() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    if !h.has_plugin(Service::VolumeAccessibilityConstraints) {
        return h.skip("no VOLUME_ACCESSIBILITY_CONSTRAINTS");
    }
    let here = h
        .info
        .accessible_topology
        .clone()
        .expect("NodeGetInfo gives no accessible_topology although the plugin has VOLUME_ACCESSIBILITY_CONSTRAINTS");
    if h.strata {
        assert_eq!(
            here.segments,
            map(&[(TOPOLOGY_KEY, NODE_ID)]),
            "the node's topology"
        );
    }
    let elsewhere = pb::Topology {
        segments: here
            .segments
            .keys()
            .map(|k| (k.clone(), "conformance-elsewhere".to_owned()))
            .collect(),
    };
    let kind = h.mount_kind();
    let with = |requisite: Vec<pb::Topology>, preferred: Vec<pb::Topology>| {
        let req = pb::CreateVolumeRequest {
            accessibility_requirements: Some(pb::TopologyRequirement {
                requisite,
                preferred,
            }),
            ..h.create_request(&kind, &h.name("topo"))
        };
        (req.clone(), h.create_volume(req))
    };
    let satisfiable = [
        ("requisite: this node", with(vec![here.clone()], vec![])),
        ("preferred: this node", with(vec![], vec![here.clone()])),
        (
            "requisite: elsewhere or this node, preferred: this node",
            with(vec![elsewhere.clone(), here.clone()], vec![here.clone()]),
        ),
        (
            "requisite: elsewhere or this node",
            with(vec![elsewhere.clone(), here.clone()], vec![]),
        ),
    ];
    for (what, (req, r)) in satisfiable {
        let v = ok(&format!("CreateVolume ({what})"), r)
            .volume
            .expect("CreateVolume: no volume");
        assert_created(&h, what, &req, &v);
        assert!(
            v.accessible_topology.contains(&here),
            "CreateVolume ({what}): accessible_topology {:?} does not include this node's {:?}",
            v.accessible_topology,
            here
        );
        let requisite = &req.accessibility_requirements.as_ref().unwrap().requisite;
        if !requisite.is_empty() && v.accessible_topology.len() <= requisite.len() {
            // x <= n: "the SP SHALL choose x unique topologies from the
            // list of requisite topologies."
            for t in &v.accessible_topology {
                assert!(
                    requisite.contains(t),
                    "CreateVolume ({what}): {t:?} is not requisite"
                );
            }
        }
    }
    let (_, r) = with(vec![elsewhere.clone()], vec![]);
    let (_, r2) = with(vec![elsewhere.clone()], vec![elsewhere]);
    check(
        "CreateVolume",
        vec![
            case("requisite: only elsewhere", r, &[Code::ResourceExhausted]),
            case(
                "requisite and preferred: only elsewhere",
                r2,
                &[Code::ResourceExhausted],
            ),
        ],
    );
}

/// DeleteVolume: "If a volume corresponding to the specified volume_id does
/// not exist or the artifacts associated with the volume do not exist
/// anymore, the Plugin MUST reply 0 OK."
#[test]
fn delete_volume() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let del = |id: &str| {
        h.delete_volume(pb::DeleteVolumeRequest {
            volume_id: id.to_owned(),
            ..Default::default()
        })
    };
    let mut cases = vec![
        case("without a volume_id", del(""), &[Code::InvalidArgument]),
        case(
            "of an unknown volume",
            del("conformance-no-such-volume"),
            &[Code::Ok],
        ),
    ];
    let mut kinds = h.mount_kinds();
    if h.strata {
        kinds.push(h.block_kind());
    }
    for kind in kinds {
        let v = h.create(&kind);
        cases.push(case(
            format!("of a {} volume", kind.label),
            del(&v.volume_id),
            &[Code::Ok],
        ));
        cases.push(case(
            format!("of a {} volume again", kind.label),
            del(&v.volume_id),
            &[Code::Ok],
        ));
        if h.has_ctrl(Ctrl::GetVolume) {
            let r = h.controller_get_volume(pb::ControllerGetVolumeRequest {
                volume_id: v.volume_id.clone(),
            });
            cases.push(case(
                format!("then ControllerGetVolume of the {} volume", kind.label),
                r.map(drop),
                &[Code::NotFound],
            ));
        }
        if h.has_ctrl(Ctrl::ListVolumes) {
            let listed = h.all_volumes(0).iter().any(|e| {
                e.volume
                    .as_ref()
                    .is_some_and(|x| x.volume_id == v.volume_id)
            });
            assert!(
                !listed,
                "ListVolumes still lists deleted volume {}",
                v.volume_id
            );
        }
        // The name is free again: a new volume of that name is made.
        let again = h.create_with(h.create_request(&kind, &h.name(&kind.label)));
        check_volume("CreateVolume after delete", &again);
    }
    check("DeleteVolume", cases);
}

/// ValidateVolumeCapabilities: required fields and NOT_FOUND.
#[test]
fn validate_volume_capabilities_errors() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let validate = |id: &str, caps: Vec<pb::VolumeCapability>| {
        h.validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest {
            volume_id: id.to_owned(),
            volume_capabilities: caps,
            volume_context: v.volume_context.clone(),
            parameters: kind.params.clone(),
            ..Default::default()
        })
    };
    let invalid = &[Code::InvalidArgument];
    check(
        "ValidateVolumeCapabilities",
        vec![
            case(
                "without a volume_id",
                validate("", vec![kind.cap()]),
                invalid,
            ),
            case(
                "without capabilities",
                validate(&v.volume_id, vec![]),
                invalid,
            ),
            case(
                "with a capability without access mode",
                validate(
                    &v.volume_id,
                    vec![pb::VolumeCapability {
                        access_mode: None,
                        ..kind.cap()
                    }],
                ),
                invalid,
            ),
            case(
                "with a capability without access type",
                validate(
                    &v.volume_id,
                    vec![pb::VolumeCapability {
                        access_type: None,
                        ..kind.cap()
                    }],
                ),
                invalid,
            ),
            case(
                "of an unknown volume",
                validate("conformance-no-such-volume", vec![kind.cap()]),
                &[Code::NotFound],
            ),
        ],
    );
}

/// ValidateVolumeCapabilities confirms what the volume supports, echoing
/// the capabilities ("Volume capabilities supported by the plugin. This
/// field is REQUIRED").
#[test]
fn validate_volume_capabilities_confirms_supported() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
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
        let mut sets = vec![
            vec![kind.cap()],
            vec![kind.cap_with(Mode::SingleNodeReaderOnly)],
        ];
        if h.has_ctrl(Ctrl::SingleNodeMultiWriter) {
            sets.push(vec![
                kind.cap_with(Mode::SingleNodeSingleWriter),
                kind.cap_with(Mode::SingleNodeMultiWriter),
            ]);
        }
        for caps in sets {
            let what = format!("ValidateVolumeCapabilities {} {caps:?}", kind.label);
            let r = ok(
                &what,
                h.validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest {
                    volume_id: v.volume_id.clone(),
                    volume_capabilities: caps.clone(),
                    volume_context: v.volume_context.clone(),
                    parameters: kind.params.clone(),
                    ..Default::default()
                }),
            );
            let confirmed = r
                .confirmed
                .unwrap_or_else(|| panic!("{what}: not confirmed: {}", r.message));
            assert_eq!(
                confirmed.volume_capabilities, caps,
                "{what}: confirmed capabilities"
            );
        }
    }
}

/// ValidateVolumeCapabilities "SHALL return confirmed only if all the
/// volume capabilities specified in the request are supported"; the
/// message says why not.
#[test]
fn validate_volume_capabilities_rejects_unsupported() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume]) {
        return;
    }
    if !h.strata {
        return h.skip("which capabilities another driver lacks is unknown");
    }
    let dir = h.mount_kind();
    let v = h.create(&dir);
    let (_, block) = h.create_block().expect("Strata makes block volumes");
    let sets = [
        (
            "MULTI_NODE_MULTI_WRITER",
            &v,
            vec![dir.cap_with(Mode::MultiNodeMultiWriter)],
        ),
        (
            "MULTI_NODE_READER_ONLY",
            &v,
            vec![dir.cap_with(Mode::MultiNodeReaderOnly)],
        ),
        (
            "SINGLE_NODE_WRITER and MULTI_NODE_SINGLE_WRITER",
            &v,
            vec![dir.cap(), dir.cap_with(Mode::MultiNodeSingleWriter)],
        ),
        (
            "block access to a folder volume",
            &v,
            vec![block_cap(Mode::SingleNodeWriter)],
        ),
        (
            "mount access to a block volume",
            &block,
            vec![mount_cap(Mode::SingleNodeWriter)],
        ),
        (
            "block access to a block volume, MULTI_NODE_MULTI_WRITER",
            &block,
            vec![block_cap(Mode::MultiNodeMultiWriter)],
        ),
    ];
    let mut failures = Vec::new();
    for (what, vol, caps) in sets {
        let r = h.validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest {
            volume_id: vol.volume_id.clone(),
            volume_capabilities: caps,
            volume_context: vol.volume_context.clone(),
            ..Default::default()
        });
        match r {
            Ok(r) if r.confirmed.is_some() => failures.push(format!("{what}: confirmed")),
            Ok(r) if r.message.trim().is_empty() => {
                failures.push(format!("{what}: not confirmed, but no message says why"))
            }
            Ok(_) => {}
            Err(s) => failures.push(format!("{what}: {}", status_text(&s))),
        }
    }
    assert!(
        failures.is_empty(),
        "ValidateVolumeCapabilities:\n{}",
        failures.join("\n")
    );
}

/// ListVolumes pages: never more than max_entries, a next_token while
/// more are left, and every volume exactly once.
#[test]
fn list_volumes_pages() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ListVolumes]) {
        return;
    }
    let kind = h.mount_kind();
    let made: Vec<pb::Volume> = (0..5).map(|_| h.create(&kind)).collect();
    let ids: HashSet<&str> = made.iter().map(|v| v.volume_id.as_str()).collect();
    let first = ok(
        "ListVolumes",
        h.list_volumes(pb::ListVolumesRequest {
            max_entries: 1,
            starting_token: String::new(),
        }),
    );
    assert_eq!(first.entries.len(), 1, "ListVolumes with max_entries 1");
    assert!(
        !first.next_token.is_empty(),
        "ListVolumes: more entries are left but next_token is empty"
    );
    for max in [0, 1, 2, 3, 5, 6, 1000] {
        let all = h.all_volumes(max);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for e in &all {
            let v = e
                .volume
                .as_ref()
                .expect("ListVolumes: an entry without volume (REQUIRED)");
            check_volume("ListVolumes", v);
            *seen.entry(v.volume_id.as_str()).or_default() += 1;
            if h.has_ctrl(Ctrl::ListVolumesPublishedNodes) {
                assert!(
                    e.status.is_some(),
                    "ListVolumes: status MUST be specified with LIST_VOLUMES_PUBLISHED_NODES"
                );
            }
            if h.has_ctrl(Ctrl::VolumeCondition) {
                let condition = e.status.as_ref().and_then(|s| s.volume_condition.as_ref());
                let c = condition.unwrap_or_else(|| {
                    panic!("ListVolumes: volume_condition MUST be specified with VOLUME_CONDITION")
                });
                assert!(
                    !c.abnormal,
                    "ListVolumes: new volume {} abnormal: {}",
                    v.volume_id, c.message
                );
            }
            if let Some(m) = made.iter().find(|m| m.volume_id == v.volume_id) {
                assert_eq!(
                    v.capacity_bytes, m.capacity_bytes,
                    "ListVolumes: capacity of {}",
                    m.volume_id
                );
            }
        }
        for id in &ids {
            assert_eq!(
                seen.get(id).copied().unwrap_or(0),
                1,
                "ListVolumes (max_entries {max}): volume {id} seen {} times",
                seen.get(id).copied().unwrap_or(0)
            );
        }
        if h.strata {
            // Nothing else exists on a private server, and nothing twice.
            assert_eq!(
                all.len(),
                ids.len(),
                "ListVolumes (max_entries {max}) lists {all:?}"
            );
        }
    }
    // A deleted volume leaves the list.
    h.delete(&made[2].volume_id);
    let all = h.all_volumes(2);
    assert!(
        all.iter().all(|e| e
            .volume
            .as_ref()
            .is_some_and(|v| v.volume_id != made[2].volume_id)),
        "ListVolumes still lists deleted volume {}",
        made[2].volume_id
    );
}

/// ListVolumes: "Invalid starting_token → ABORTED"; "The value of this
/// field [max_entries] MUST NOT be negative" → INVALID_ARGUMENT.
#[test]
fn list_volumes_errors() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::ListVolumes]) {
        return;
    }
    h.create(&h.mount_kind());
    let list = |max: i32, token: &str| {
        h.list_volumes(pb::ListVolumesRequest {
            max_entries: max,
            starting_token: token.to_owned(),
        })
    };
    check(
        "ListVolumes",
        vec![
            case(
                "with an invalid starting_token",
                list(0, "conformance-not-a-token"),
                &[Code::Aborted],
            ),
            case(
                "with a garbage starting_token",
                list(1, "\u{7f}\u{1}%%"),
                &[Code::Aborted],
            ),
            case(
                "with negative max_entries",
                list(-1, ""),
                &[Code::InvalidArgument],
            ),
            case("with max_entries 0", list(0, ""), &[Code::Ok]),
        ],
    );
}

/// GetCapacity: non-negative numbers, for any capabilities and parameters
/// the plugin takes, and the minimum no bigger than the maximum.
#[test]
fn get_capacity() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::GetCapacity]) {
        return;
    }
    let mut reqs = vec![("no arguments".to_owned(), pb::GetCapacityRequest::default())];
    let mut kinds = h.mount_kinds();
    kinds.push(h.block_kind());
    for kind in kinds {
        reqs.push((
            kind.label.clone(),
            pb::GetCapacityRequest {
                volume_capabilities: vec![kind.cap()],
                parameters: kind.params.clone(),
                ..Default::default()
            },
        ));
    }
    if let Some(here) = h.info.accessible_topology.clone() {
        reqs.push((
            "this node's topology".to_owned(),
            pb::GetCapacityRequest {
                accessible_topology: Some(here),
                ..Default::default()
            },
        ));
    }
    for (what, req) in reqs {
        let r = ok(&format!("GetCapacity ({what})"), h.get_capacity(req));
        assert!(
            r.available_capacity >= 0,
            "GetCapacity ({what}): negative available_capacity"
        );
        if h.strata {
            assert!(
                r.available_capacity > 0,
                "GetCapacity ({what}): nothing available"
            );
        }
        for (name, size) in [
            ("maximum", r.maximum_volume_size),
            ("minimum", r.minimum_volume_size),
        ] {
            assert!(
                size.is_none_or(|s| s >= 0),
                "GetCapacity ({what}): negative {name}_volume_size"
            );
        }
        if let (Some(min), Some(max)) = (r.minimum_volume_size, r.maximum_volume_size) {
            assert!(
                min <= max,
                "GetCapacity ({what}): minimum {min} above maximum {max}"
            );
        }
    }
}

/// ControllerGetVolume: the volume as made, with a status ("This field is
/// REQUIRED") and, with VOLUME_CONDITION, a non-empty condition.
#[test]
fn controller_get_volume() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::GetVolume]) {
        return;
    }
    let mut kinds = h.mount_kinds();
    if h.strata {
        kinds.push(h.block_kind());
    }
    for kind in kinds {
        let made = h.create(&kind);
        let what = format!("ControllerGetVolume {}", kind.label);
        let r = ok(
            &what,
            h.controller_get_volume(pb::ControllerGetVolumeRequest {
                volume_id: made.volume_id.clone(),
            }),
        );
        let v = r
            .volume
            .unwrap_or_else(|| panic!("{what}: no volume (REQUIRED)"));
        check_volume(&what, &v);
        assert_eq!(v.volume_id, made.volume_id, "{what}: volume_id");
        assert_eq!(
            v.capacity_bytes, made.capacity_bytes,
            "{what}: capacity_bytes"
        );
        assert_eq!(
            v.volume_context, made.volume_context,
            "{what}: volume_context (SHALL NOT be mutable)"
        );
        let status = r
            .status
            .unwrap_or_else(|| panic!("{what}: no status (REQUIRED)"));
        assert!(
            status.published_node_ids.is_empty(),
            "{what}: published to {:?}",
            status.published_node_ids
        );
        if h.has_ctrl(Ctrl::VolumeCondition) {
            let c = status
                .volume_condition
                .unwrap_or_else(|| panic!("{what}: no volume_condition although VOLUME_CONDITION"));
            assert!(
                !c.abnormal,
                "{what}: a new volume is abnormal: {}",
                c.message
            );
            assert!(
                !c.message.is_empty(),
                "{what}: the condition's message is REQUIRED"
            );
        }
    }
}

#[test]
fn controller_get_volume_errors() {
    let h = Csi::start();
    if !h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::GetVolume]) {
        return;
    }
    let v = h.create(&h.mount_kind());
    h.delete(&v.volume_id);
    let get = |id: &str| {
        h.controller_get_volume(pb::ControllerGetVolumeRequest {
            volume_id: id.to_owned(),
        })
    };
    check(
        "ControllerGetVolume",
        vec![
            case("without a volume_id", get(""), &[Code::InvalidArgument]),
            case(
                "of an unknown volume",
                get("conformance-no-such-volume"),
                &[Code::NotFound],
            ),
            case("of a deleted volume", get(&v.volume_id), &[Code::NotFound]),
        ],
    );
}
