//! Controller service: CreateVolume, DeleteVolume,
//! ValidateVolumeCapabilities, ListVolumes, GetCapacity,
//! ControllerGetVolume.

use std::collections::{HashMap, HashSet};

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

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

/// `got` is the volume `want`: the same ID, capacity, and volume_context
/// (which "SHALL NOT be mutable").
fn assert_same_volume(what: &str, got: &pb::Volume, want: &pb::Volume) {
    assert_eq!(got.volume_id, want.volume_id, "{what}: another volume");
    assert_eq!(got.capacity_bytes, want.capacity_bytes, "{what}: capacity");
    assert_eq!(
        got.volume_context, want.volume_context,
        "{what}: volume_context"
    );
}

/// The plugin with CREATE_DELETE_VOLUME.
fn creating() -> Option<Csi> {
    Csi::start().requiring(&[Ctrl::CreateDeleteVolume])
}

/// CreateVolume of fresh names of `kind`, as a table.
fn creates<'a>(
    h: &'a Csi,
    kind: &'a Kind,
) -> Changes<'a, pb::CreateVolumeRequest, pb::CreateVolumeResponse> {
    fresh_changes(
        move || h.create_request(kind, &kind.label),
        |r| h.create_volume(r),
    )
}

/// The same topology keys as `here`, with values no node has.
fn elsewhere(here: &pb::Topology) -> pb::Topology {
    let keys = here.segments.keys();
    pb::Topology {
        segments: keys
            .map(|k| (k.clone(), "conformance-elsewhere".to_owned()))
            .collect(),
    }
}

fn capacity_request(kind: &Kind) -> pb::GetCapacityRequest {
    pb::GetCapacityRequest {
        volume_capabilities: vec![kind.cap()],
        parameters: kind.params.clone(),
        ..Default::default()
    }
}

fn validate_request(
    v: &pb::Volume,
    caps: Vec<pb::VolumeCapability>,
) -> pb::ValidateVolumeCapabilitiesRequest {
    pb::ValidateVolumeCapabilitiesRequest {
        volume_id: v.volume_id.clone(),
        volume_capabilities: caps,
        volume_context: v.volume_context.clone(),
        ..Default::default()
    }
}

/// CreateVolume with valid input makes a mount volume of every kind, with
/// or without a capacity range, and with any allowed name.
#[test]
fn create_volume_mount() {
    let Some(h) = creating() else { return };
    for kind in h.mount_kinds() {
        let base = h.create_request(&kind, &kind.label);
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
    let Some(h) = creating() else { return };
    let kind = h.block_kind();
    let req = h.create_request(&kind, "block");
    let Some(v) = h.try_create(&kind, req.clone()) else {
        return;
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
    let Some(h) = creating() else { return };
    let mut modes = vec![Mode::SingleNodeWriter, Mode::SingleNodeReaderOnly];
    if h.has_ctrl(Ctrl::SingleNodeMultiWriter) {
        modes.extend([Mode::SingleNodeSingleWriter, Mode::SingleNodeMultiWriter]);
    } else {
        h.skip("no SINGLE_NODE_MULTI_WRITER: its two modes are not tried");
    }
    let kind = h.mount_kind();
    let mut table = creates(&h, &kind);
    for mode in &modes {
        let only =
            |r: &mut pb::CreateVolumeRequest| r.volume_capabilities = vec![kind.cap_with(*mode)];
        table = table.row(mode.as_str_name(), only, &[Code::Ok]);
    }
    let all = modes.iter().map(|m| kind.cap_with(*m)).collect();
    table
        .row(
            "all of them at once",
            |r| r.volume_capabilities = all,
            &[Code::Ok],
        )
        .check("CreateVolume");
}

/// "Missing required field → INVALID_ARGUMENT", for CreateVolume.
#[test]
fn create_volume_missing_fields() {
    let Some(h) = creating() else { return };
    let kind = h.mount_kind();
    let bad = pb::VolumeCapability {
        access_type: None,
        ..kind.cap()
    };
    let no_type = Some(pb::VolumeContentSource { r#type: None });
    creates(&h, &kind)
        .row("without a name", |r| r.name.clear(), INVALID)
        .bad_capabilities()
        .with_capability(
            "with access mode UNKNOWN",
            kind.cap_with(Mode::Unknown),
            INVALID,
        )
        .row(
            "with a good capability and one without access type",
            |r| r.volume_capabilities.push(bad),
            INVALID,
        )
        .row(
            "with a control character in the name",
            |r| r.name.push('\u{1}'),
            INVALID,
        )
        .row(
            "with a content source of no type",
            |r| r.volume_content_source = no_type,
            INVALID,
        )
        .when(h.has_ctrl(Ctrl::CreateDeleteSnapshot), |t| {
            t.row(
                "from a snapshot with no snapshot_id",
                |r| r.volume_content_source = from_snapshot(""),
                INVALID,
            )
        })
        .when(h.has_ctrl(Ctrl::CloneVolume), |t| {
            t.row(
                "from a volume with no volume_id",
                |r| r.volume_content_source = from_volume(""),
                INVALID,
            )
        })
        // "If TopologyRequirement is specified either requisite or
        // preferred or both MUST be specified."
        .when(h.has_plugin(Service::VolumeAccessibilityConstraints), |t| {
            t.row(
                "with an empty TopologyRequirement",
                |r| r.accessibility_requirements = Some(pb::TopologyRequirement::default()),
                INVALID,
            )
        })
        .check("CreateVolume");
}

/// "This operation MUST be idempotent": the same name and arguments give
/// the same volume, and so does any compatible capacity range.
#[test]
fn create_volume_is_idempotent() {
    let Some(h) = creating() else { return };
    for kind in h.all_kinds() {
        let req = h.create_request(&kind, &kind.label);
        let Some(first) = h.try_create(&kind, req.clone()) else {
            continue;
        };
        let what = format!("CreateVolume {} again", kind.label);
        let again = h.create_with(req.clone());
        assert_same_volume(&what, &again, &first);
        assert_eq!(
            again.accessible_topology, first.accessible_topology,
            "{what}: topology"
        );
        // "...compatible with the specified capacity_range ... MUST reply 0 OK".
        let size = first.capacity_bytes;
        for (label, r) in [
            ("required at the capacity", range(size, 0)),
            ("limit above the capacity", range(0, size * 2)),
            ("range around the capacity", range(size / 2, size * 2)),
        ] {
            let v = h.create_with(pb::CreateVolumeRequest {
                capacity_range: r,
                ..req.clone()
            });
            assert_same_volume(&format!("{what} ({label})"), &v, &first);
        }
    }
}

/// "Volume already exists but is incompatible → ALREADY_EXISTS ... with the
/// specified capacity_range, volume_capabilities, parameters,
/// accessibility_requirements or volume_content_source."
#[test]
fn create_volume_incompatible_repeat_already_exists() {
    let Some(h) = creating() else { return };
    let exists = &[Code::AlreadyExists];
    let mut all = Vec::new();
    for kind in h.all_kinds() {
        let req = h.create_request(&kind, &kind.label);
        let Some(v) = h.try_create(&kind, req.clone()) else {
            continue;
        };
        let capacity = v.capacity_bytes;
        let other = h.create(&kind);
        let (flipped, flipped_label) = match kind.access {
            Access::Mount => (block_cap(Mode::SingleNodeWriter), "as a block volume"),
            Access::Block => (mount_cap(Mode::SingleNodeWriter), "as a mount volume"),
        };
        // Strata's block volumes take no type=dir or fs=: with those
        // parameters a block request is invalid whatever exists.
        let flipped_codes: &[Code] = if h.strata && kind.access == Access::Mount {
            &[Code::AlreadyExists, Code::InvalidArgument]
        } else {
            exists
        };
        let mut table = changes(req.clone(), |r| h.create_volume(r))
            .sized(
                "with required_bytes above its capacity",
                capacity + 64 * MIB,
                0,
                exists,
            )
            .sized(
                "with limit_bytes below its capacity",
                0,
                capacity / 2,
                exists,
            )
            .with_capability(flipped_label, flipped, flipped_codes);
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
            let name = format!("with other parameters {params:?}");
            table = table.row(name, |r| r.parameters = params, exists);
        } else {
            // Another driver's parameters are opaque: an extra one is
            // either another volume's or not allowed at all.
            let extra = |r: &mut pb::CreateVolumeRequest| {
                r.parameters
                    .insert("conformance.example.com/extra".into(), "1".into());
            };
            table = table.row(
                "with an extra parameter",
                extra,
                &[Code::AlreadyExists, Code::InvalidArgument],
            );
        }
        let source = from_volume(&other.volume_id);
        table = table.when(h.has_ctrl(Ctrl::CloneVolume), |t| {
            t.row(
                "with a content source",
                |r| r.volume_content_source = source,
                exists,
            )
        });
        let far = h.info.accessible_topology.as_ref().map(elsewhere);
        if let Some(far) = far.filter(|t| !t.segments.is_empty())
            && h.has_plugin(Service::VolumeAccessibilityConstraints)
        {
            let requirement = pb::TopologyRequirement {
                requisite: vec![far],
                preferred: vec![],
            };
            table = table.row(
                "required to be accessible from another node",
                |r| r.accessibility_requirements = Some(requirement),
                // Already-exists-but-incompatible, or unable to
                // provision there: either tells the CO the truth.
                &[Code::AlreadyExists, Code::ResourceExhausted],
            );
        }
        let mut cases = table.cases();
        // The volume is still there, as it was.
        let same = h.create_with(req);
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
    let Some(h) = creating() else { return };
    let out = &[Code::OutOfRange];
    let negative = &[Code::InvalidArgument, Code::OutOfRange];
    let too_big = &[Code::OutOfRange, Code::ResourceExhausted];
    let mut all = Vec::new();
    for kind in h.sure_kinds() {
        let size = kind.size;
        let mut table = creates(&h, &kind)
            .required_above_limit(2 * size, size)
            .sized("negative required_bytes", -size, 0, negative)
            .sized("negative limit_bytes", 0, -size, negative)
            .sized("1 EiB", 1 << 60, 0, too_big)
            .sized("i64::MAX bytes", i64::MAX, 0, too_big);
        let bounds = if h.has_ctrl(Ctrl::GetCapacity) {
            ok("GetCapacity", h.get_capacity(capacity_request(&kind)))
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
                let below = format!("limit_bytes {} below the minimum {min}", min - 1);
                table = table.sized(below, 0, min - 1, out).when(
                    bounds.minimum_volume_size.is_some(),
                    |t| {
                        let at = format!("limit_bytes at the minimum {min}");
                        t.sized(at, 0, min, &[Code::Ok])
                    },
                );
            }
            None if kind.own_fs => h.skip(&format!(
                "{}: no minimum_volume_size to go below",
                kind.label
            )),
            None => {}
        }
        // "The largest size that may be used in required_bytes."
        if let Some(max) = bounds.maximum_volume_size.filter(|m| *m < i64::MAX) {
            let above = format!("required_bytes above the maximum {max}");
            table = table.sized(above, max + 1, 0, too_big);
        }
        all.extend(prefixed(&kind.label, table.cases()));
    }
    check("CreateVolume", all);
}

/// Access modes the plugin does not support: Strata supports none of the
/// MULTI_NODE_* ones ("If ANY of the specified volume capabilities are not
/// supported by the SP, the call MUST return the appropriate gRPC error
/// code" — INVALID_ARGUMENT, an unsupported field).
#[test]
fn create_volume_unsupported_access_modes() {
    let Some(h) = creating() else { return };
    // Another driver may well support them.
    let want: &[Code] = if h.strata {
        &[Code::InvalidArgument]
    } else {
        &[Code::InvalidArgument, Code::Ok]
    };
    let kind = h.mount_kind();
    let mut table = creates(&h, &kind);
    for mode in [
        Mode::MultiNodeReaderOnly,
        Mode::MultiNodeSingleWriter,
        Mode::MultiNodeMultiWriter,
    ] {
        let mixed = format!("SINGLE_NODE_WRITER and {}", mode.as_str_name());
        table = table
            .with_capability(mode.as_str_name(), kind.cap_with(mode), want)
            .row(
                mixed,
                |r| r.volume_capabilities.push(kind.cap_with(mode)),
                want,
            );
    }
    let mut cases = table.cases();
    if h.strata {
        let block = h.block_kind();
        cases.extend(
            creates(&h, &block)
                .with_capability(
                    "MULTI_NODE_MULTI_WRITER (block)",
                    block.cap_with(Mode::MultiNodeMultiWriter),
                    want,
                )
                .cases(),
        );
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
    let block = block_cap(Mode::SingleNodeWriter);
    let params = |p: &[(&str, &str)]| {
        let p = map(p);
        move |r: &mut pb::CreateVolumeRequest| r.parameters = p
    };
    creates(&h, &kind)
        .row("type=bogus", params(&[("type", "bogus")]), INVALID)
        .row(
            "fs=btrfs",
            params(&[("type", "image"), ("fs", "btrfs")]),
            INVALID,
        )
        .row(
            "type=dir as a block volume",
            |r| {
                params(&[("type", "dir")])(r);
                r.volume_capabilities = vec![block];
            },
            INVALID,
        )
        .row(
            "no parameters at all",
            |r| r.parameters.clear(),
            &[Code::Ok],
        )
        .check("CreateVolume");
}

/// Accessibility requirements: met when the node's topology is required or
/// preferred (and returned in accessible_topology); RESOURCE_EXHAUSTED
/// ("Unable to provision in accessible_topology") when no required
/// topology can be had.
#[test]
fn create_volume_topology() {
    let Some(h) = creating() else { return };
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
    let far = elsewhere(&here);
    let kind = h.mount_kind();
    let with = |requisite: Vec<pb::Topology>, preferred: Vec<pb::Topology>| {
        let req = pb::CreateVolumeRequest {
            accessibility_requirements: Some(pb::TopologyRequirement {
                requisite,
                preferred,
            }),
            ..h.create_request(&kind, "topo")
        };
        (req.clone(), h.create_volume(req))
    };
    let satisfiable = [
        ("requisite: this node", with(vec![here.clone()], vec![])),
        ("preferred: this node", with(vec![], vec![here.clone()])),
        (
            "requisite: elsewhere or this node, preferred: this node",
            with(vec![far.clone(), here.clone()], vec![here.clone()]),
        ),
        (
            "requisite: elsewhere or this node",
            with(vec![far.clone(), here.clone()], vec![]),
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
    let exhausted = &[Code::ResourceExhausted];
    let (_, r) = with(vec![far.clone()], vec![]);
    let (_, r2) = with(vec![far.clone()], vec![far]);
    check(
        "CreateVolume",
        vec![
            case("requisite: only elsewhere", r, exhausted),
            case("requisite and preferred: only elsewhere", r2, exhausted),
        ],
    );
}

/// DeleteVolume: "If a volume corresponding to the specified volume_id does
/// not exist or the artifacts associated with the volume do not exist
/// anymore, the Plugin MUST reply 0 OK."
#[test]
fn delete_volume() {
    let Some(h) = creating() else { return };
    let done = &[Code::Ok];
    let mut cases = vec![
        case("without a volume_id", h.try_delete(""), INVALID),
        case("of an unknown volume", h.try_delete(NO_SUCH_VOLUME), done),
    ];
    for kind in h.sure_kinds() {
        let req = h.create_request(&kind, &kind.label);
        let v = h.create_with(req.clone());
        let of = format!("of a {} volume", kind.label);
        cases.push(case(&of, h.try_delete(&v.volume_id), done));
        cases.push(case(
            format!("{of} again"),
            h.try_delete(&v.volume_id),
            done,
        ));
        if h.has_ctrl(Ctrl::GetVolume) {
            let r = h.try_get_volume(&v.volume_id);
            cases.push(case(format!("then ControllerGetVolume {of}"), r, NOT_FOUND));
        }
        if h.has_ctrl(Ctrl::ListVolumes) {
            assert!(
                !h.volume_ids().contains(&v.volume_id),
                "ListVolumes still lists deleted volume {}",
                v.volume_id
            );
        }
        // The name is free again: a new volume of that name is made.
        let again = h.create_with(req);
        check_volume("CreateVolume of the name after delete", &again);
    }
    check("DeleteVolume", cases);
}

/// ValidateVolumeCapabilities: required fields and NOT_FOUND.
#[test]
fn validate_volume_capabilities_errors() {
    let Some(h) = creating() else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let good = pb::ValidateVolumeCapabilitiesRequest {
        parameters: kind.params.clone(),
        ..validate_request(&v, vec![kind.cap()])
    };
    changes(good, |r| h.validate_volume_capabilities(r))
        .without_volume_id()
        .bad_capabilities()
        .of_unknown_volume()
        .check("ValidateVolumeCapabilities");
}

/// ValidateVolumeCapabilities confirms what the volume supports, echoing
/// the capabilities ("Volume capabilities supported by the plugin. This
/// field is REQUIRED").
#[test]
fn validate_volume_capabilities_confirms_supported() {
    let Some(h) = creating() else { return };
    for kind in h.all_kinds() {
        let Some(v) = h.make(&kind) else { continue };
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
            let req = pb::ValidateVolumeCapabilitiesRequest {
                parameters: kind.params.clone(),
                ..validate_request(&v, caps.clone())
            };
            let r = ok(&what, h.validate_volume_capabilities(req));
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
    let Some(h) = creating() else { return };
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
        match h.validate_volume_capabilities(validate_request(vol, caps)) {
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
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::ListVolumes]) else {
        return;
    };
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
                check_condition(&format!("ListVolumes, {}", v.volume_id), condition);
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
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::ListVolumes]) else {
        return;
    };
    h.create(&h.mount_kind());
    let aborted = &[Code::Aborted];
    changes(pb::ListVolumesRequest::default(), |r| h.list_volumes(r))
        .row(
            "with an invalid starting_token",
            |r| r.starting_token = "conformance-not-a-token".into(),
            aborted,
        )
        .row(
            "with a garbage starting_token",
            |r| (r.max_entries, r.starting_token) = (1, "\u{7f}\u{1}%%".into()),
            aborted,
        )
        .row("with negative max_entries", |r| r.max_entries = -1, INVALID)
        .row("with max_entries 0", |_| {}, &[Code::Ok])
        .check("ListVolumes");
}

/// GetCapacity: non-negative numbers, for any capabilities and parameters
/// the plugin takes, and the minimum no bigger than the maximum.
#[test]
fn get_capacity() {
    let Some(h) = Csi::start().requiring(&[Ctrl::GetCapacity]) else {
        return;
    };
    let mut reqs = vec![("no arguments".to_owned(), pb::GetCapacityRequest::default())];
    for kind in h.all_kinds() {
        reqs.push((kind.label.clone(), capacity_request(&kind)));
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
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::GetVolume]) else {
        return;
    };
    for kind in h.sure_kinds() {
        let made = h.create(&kind);
        let what = format!("ControllerGetVolume {}", kind.label);
        let r = ok(&what, h.try_get_volume(&made.volume_id));
        let v = r
            .volume
            .unwrap_or_else(|| panic!("{what}: no volume (REQUIRED)"));
        check_volume(&what, &v);
        assert_same_volume(&what, &v, &made);
        let status = r
            .status
            .unwrap_or_else(|| panic!("{what}: no status (REQUIRED)"));
        assert!(
            status.published_node_ids.is_empty(),
            "{what}: published to {:?}",
            status.published_node_ids
        );
        if h.has_ctrl(Ctrl::VolumeCondition) {
            check_condition(&what, status.volume_condition.as_ref());
        }
    }
}

#[test]
fn controller_get_volume_errors() {
    let Some(h) = Csi::start().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::GetVolume]) else {
        return;
    };
    let v = h.create(&h.mount_kind());
    h.delete(&v.volume_id);
    check(
        "ControllerGetVolume",
        vec![
            case("without a volume_id", h.try_get_volume(""), INVALID),
            case(
                "of an unknown volume",
                h.try_get_volume(NO_SUCH_VOLUME),
                NOT_FOUND,
            ),
            case(
                "of a deleted volume",
                h.try_get_volume(&v.volume_id),
                NOT_FOUND,
            ),
        ],
    );
}
