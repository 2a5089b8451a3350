//! Identity service: GetPluginInfo, GetPluginCapabilities, Probe, and
//! whether the capabilities the plugin advertises fit together.

use std::collections::HashSet;

use strata_csi::pb;
use tonic::{Code, Status};

use crate::harness::*;

/// GetPluginInfo: "name MUST follow domain name notation format ... MUST be
/// 63 characters or less, beginning and ending with an alphanumeric
/// character with dashes, dots, and alphanumerics between"; vendor_version
/// is REQUIRED.
#[test]
fn plugin_info_has_a_domain_name_and_a_version() {
    let h = Csi::start();
    let (info, again) = twice("GetPluginInfo", || {
        h.get_plugin_info(pb::GetPluginInfoRequest {})
    });
    let name = &info.name;
    assert!(!name.is_empty(), "name is REQUIRED");
    assert!(name.len() <= 63, "name {name} is over 63 characters");
    assert!(
        name.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'),
        "name {name} has characters other than alphanumerics, dashes and dots"
    );
    for label in name.split('.') {
        let b = label.as_bytes();
        assert!(
            !b.is_empty() && b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric(),
            "name {name}: label '{label}' must begin and end with an alphanumeric"
        );
    }
    assert!(
        !info.vendor_version.is_empty(),
        "vendor_version is REQUIRED"
    );
    if h.strata {
        assert_eq!(name, DRIVER);
    }
    // Asking again gives the same answer.
    assert_eq!(again, info, "GetPluginInfo changed between calls");
}

/// Probe: a healthy, initialised plugin answers OK, ready (or not saying).
#[test]
fn probe_says_ready() {
    let h = Csi::start();
    for _ in 0..3 {
        let r = ok("Probe", h.probe(pb::ProbeRequest {}));
        assert_ne!(
            r.ready,
            Some(false),
            "Probe says not ready on an idle plugin"
        );
    }
}

/// GetPluginCapabilities, ControllerGetCapabilities, NodeGetCapabilities:
/// known values only, and the rules that tie them together.
#[test]
fn capabilities_are_known_and_consistent() {
    let h = Csi::start();
    let plugin = ok(
        "GetPluginCapabilities",
        h.get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {}),
    );
    use pb::plugin_capability::Type as P;
    for c in &plugin.capabilities {
        match &c.r#type {
            Some(P::Service(s)) => assert!(
                Service::try_from(s.r#type).is_ok_and(|t| t != Service::Unknown),
                "plugin service capability {} is unknown",
                s.r#type
            ),
            Some(P::VolumeExpansion(e)) => assert!(
                Expansion::try_from(e.r#type).is_ok_and(|t| t != Expansion::Unknown),
                "volume expansion type {} is unknown",
                e.r#type
            ),
            None => panic!("a plugin capability without a type"),
        }
    }
    let mut problems = Vec::new();
    if h.has_plugin(Service::ControllerService) {
        let ctrl = ok(
            "ControllerGetCapabilities",
            h.controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {}),
        );
        if ctrl_types(&ctrl).iter().any(Option::is_none) {
            problems.push(format!("unknown controller capability in {ctrl:?}"));
        }
    }
    let node = ok(
        "NodeGetCapabilities",
        h.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}),
    );
    if node_types(&node).iter().any(Option::is_none) {
        problems.push(format!("unknown node capability in {node:?}"));
    }
    // "LIST_VOLUMES_PUBLISHED_NODES ... The SP MUST also support
    // PUBLISH_UNPUBLISH_VOLUME."
    if h.has_ctrl(Ctrl::ListVolumesPublishedNodes) && !h.has_ctrl(Ctrl::PublishUnpublishVolume) {
        problems.push(
            "LIST_VOLUMES_PUBLISHED_NODES without PUBLISH_UNPUBLISH_VOLUME (the SP MUST also support it)"
                .to_owned(),
        );
    }
    // "ONLINE ... MUST implement either the EXPAND_VOLUME controller
    // capability or the EXPAND_VOLUME node capability or both."
    if h.expansion.contains(&Expansion::Online)
        && !h.has_ctrl(Ctrl::ExpandVolume)
        && !h.has_node(NodeCap::ExpandVolume)
    {
        problems.push("ONLINE expansion without any EXPAND_VOLUME capability".to_owned());
    }
    // "OFFLINE ... MUST implement either the EXPAND_VOLUME controller
    // capability or both."
    if h.expansion.contains(&Expansion::Offline) && !h.has_ctrl(Ctrl::ExpandVolume) {
        problems.push("OFFLINE expansion without the controller's EXPAND_VOLUME".to_owned());
    }
    // Expansion capabilities without the plugin's VolumeExpansion.
    if (h.has_ctrl(Ctrl::ExpandVolume) || h.has_node(NodeCap::ExpandVolume))
        && h.expansion.is_empty()
    {
        problems.push("EXPAND_VOLUME without a VolumeExpansion plugin capability".to_owned());
    }
    // "A plugin that returns this field [NodeGetInfo.accessible_topology]
    // MUST also set the VOLUME_ACCESSIBILITY_CONSTRAINTS plugin capability."
    if h.info.accessible_topology.is_some()
        && !h.has_plugin(Service::VolumeAccessibilityConstraints)
    {
        problems.push(
            "NodeGetInfo has a topology but VOLUME_ACCESSIBILITY_CONSTRAINTS is missing".to_owned(),
        );
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The names of `caps`, sorted.
fn names<T: Copy>(caps: &HashSet<T>, name: fn(&T) -> &'static str) -> Vec<&'static str> {
    let mut names: Vec<&str> = caps.iter().map(name).collect();
    names.sort();
    names
}

/// The exact set Strata advertises: everything it implements, with
/// PUBLISH_UNPUBLISH_VOLUME (and LIST_VOLUMES_PUBLISHED_NODES, which the
/// spec ties to it) only under `--attach-required`.
#[test]
fn strata_advertises_the_expected_capabilities() {
    for variant in [Variant::Plain, Variant::AttachRequired] {
        let h = match variant {
            Variant::Plain => Csi::start(),
            Variant::AttachRequired => Csi::attach_required(),
        };
        if !h.strata {
            h.skip("not a Strata server");
            return;
        }
        let attach = variant == Variant::AttachRequired;
        let plugin: HashSet<Service> = [
            Service::ControllerService,
            Service::VolumeAccessibilityConstraints,
        ]
        .into();
        assert_eq!(
            h.plugin_caps, plugin,
            "{variant:?}: plugin service capabilities"
        );
        assert_eq!(
            h.expansion,
            [Expansion::Online].into(),
            "{variant:?}: volume expansion"
        );
        let mut ctrl: HashSet<Ctrl> = [
            Ctrl::CreateDeleteVolume,
            Ctrl::ListVolumes,
            Ctrl::GetCapacity,
            Ctrl::CreateDeleteSnapshot,
            Ctrl::ListSnapshots,
            Ctrl::CloneVolume,
            Ctrl::ExpandVolume,
            Ctrl::VolumeCondition,
            Ctrl::GetVolume,
            Ctrl::SingleNodeMultiWriter,
        ]
        .into();
        if attach {
            ctrl.insert(Ctrl::PublishUnpublishVolume);
            ctrl.insert(Ctrl::ListVolumesPublishedNodes);
        }
        assert_eq!(
            names(&h.ctrl_caps, Ctrl::as_str_name),
            names(&ctrl, Ctrl::as_str_name),
            "{variant:?}: controller capabilities"
        );
        let node: HashSet<NodeCap> = [
            NodeCap::StageUnstageVolume,
            NodeCap::GetVolumeStats,
            NodeCap::ExpandVolume,
            NodeCap::VolumeCondition,
            NodeCap::SingleNodeMultiWriter,
        ]
        .into();
        assert_eq!(
            names(&h.node_caps, NodeCap::as_str_name),
            names(&node, NodeCap::as_str_name),
            "{variant:?}: node capabilities"
        );
        // Nothing is advertised twice.
        let caps = ok(
            "ControllerGetCapabilities",
            h.controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {}),
        );
        assert_eq!(
            caps.capabilities.len(),
            ctrl.len(),
            "{variant:?}: duplicates in {caps:?}"
        );
    }
}

/// "Call not implemented → UNIMPLEMENTED: the invoked RPC is not
/// implemented by the Plugin or disabled in the Plugin's current mode of
/// operation." Every optional RPC the plugin does not advertise must say
/// so, whatever the request.
#[test]
fn unadvertised_rpcs_are_unimplemented() {
    type Call<'a> = &'a dyn Fn() -> Result<(), Status>;
    let h = Csi::start();
    let nothing = h.dir.join("nothing");
    let unknown = pb::Volume {
        volume_id: NO_SUCH_VOLUME.into(),
        ..Default::default()
    };
    let node = h.info.node_id.as_str();
    let expand = pb::ControllerExpandVolumeRequest {
        volume_id: NO_SUCH_VOLUME.into(),
        capacity_range: range(MIB, 0),
        ..Default::default()
    };
    let modify = pb::ControllerModifyVolumeRequest {
        volume_id: NO_SUCH_VOLUME.into(),
        mutable_parameters: map(&[("conformance", "1")]),
        ..Default::default()
    };
    let node_expand = pb::NodeExpandVolumeRequest {
        volume_id: NO_SUCH_VOLUME.into(),
        volume_path: path_str(&nothing),
        ..Default::default()
    };
    let get_snapshot = pb::GetSnapshotRequest {
        snapshot_id: NO_SUCH_SNAPSHOT.into(),
        ..Default::default()
    };
    let attach = || {
        let c = mount_cap(Mode::SingleNodeWriter);
        h.controller_publish_volume(h.attach_request(&unknown, &c, false))
    };
    let ctrl: [(Ctrl, &str, Call); 11] = [
        (
            Ctrl::PublishUnpublishVolume,
            "ControllerPublishVolume",
            &|| attach().map(drop),
        ),
        (
            Ctrl::PublishUnpublishVolume,
            "ControllerUnpublishVolume",
            &|| h.try_detach(NO_SUCH_VOLUME, node).map(drop),
        ),
        (Ctrl::CreateDeleteVolume, "DeleteVolume", &|| {
            h.try_delete(NO_SUCH_VOLUME).map(drop)
        }),
        (Ctrl::ListVolumes, "ListVolumes", &|| {
            h.list_volumes(Default::default()).map(drop)
        }),
        (Ctrl::GetCapacity, "GetCapacity", &|| {
            h.get_capacity(Default::default()).map(drop)
        }),
        (Ctrl::CreateDeleteSnapshot, "DeleteSnapshot", &|| {
            h.try_delete_snapshot(NO_SUCH_SNAPSHOT).map(drop)
        }),
        (Ctrl::ListSnapshots, "ListSnapshots", &|| {
            h.list_snapshots(Default::default()).map(drop)
        }),
        (Ctrl::GetSnapshot, "GetSnapshot", &|| {
            h.get_snapshot(get_snapshot.clone()).map(drop)
        }),
        (Ctrl::ExpandVolume, "ControllerExpandVolume", &|| {
            h.controller_expand_volume(expand.clone()).map(drop)
        }),
        (Ctrl::GetVolume, "ControllerGetVolume", &|| {
            h.try_get_volume(NO_SUCH_VOLUME).map(drop)
        }),
        (Ctrl::ModifyVolume, "ControllerModifyVolume", &|| {
            h.controller_modify_volume(modify.clone()).map(drop)
        }),
    ];
    let node: [(NodeCap, &str, Call); 2] = [
        (NodeCap::StageUnstageVolume, "NodeUnstageVolume", &|| {
            h.try_unstage(NO_SUCH_VOLUME, &nothing).map(drop)
        }),
        (NodeCap::ExpandVolume, "NodeExpandVolume", &|| {
            h.node_expand_volume(node_expand.clone()).map(drop)
        }),
    ];
    let unimplemented = &[Code::Unimplemented];
    let mut cases: Vec<Case> = Vec::new();
    if h.has_plugin(Service::ControllerService) {
        for (cap, rpc, call) in ctrl {
            if !h.has_ctrl(cap) {
                cases.push(case(rpc, call(), unimplemented));
            }
        }
    }
    for (cap, rpc, call) in node {
        if !h.has_node(cap) {
            cases.push(case(rpc, call(), unimplemented));
        }
    }
    if cases.is_empty() {
        h.skip("the plugin advertises every optional RPC");
    }
    check("unadvertised RPC", cases);
}
