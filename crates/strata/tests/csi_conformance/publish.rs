//! ControllerPublishVolume and ControllerUnpublishVolume, on a plugin that
//! wants volumes attached first (Strata with `--attach-required`).

use strata_csi::pb;
use tonic::Code;

use crate::harness::*;

fn attached() -> Option<Csi> {
    let h = Csi::attach_required();
    h.need_ctrl(&[Ctrl::CreateDeleteVolume, Ctrl::PublishUnpublishVolume])
        .then_some(h)
}

fn publish_req(
    h: &Csi,
    v: &pb::Volume,
    c: pb::VolumeCapability,
    readonly: bool,
) -> pb::ControllerPublishVolumeRequest {
    pb::ControllerPublishVolumeRequest {
        volume_id: v.volume_id.clone(),
        node_id: h.info.node_id.clone(),
        volume_capability: Some(c),
        readonly,
        volume_context: v.volume_context.clone(),
        ..Default::default()
    }
}

fn unpublish(
    h: &Csi,
    volume: &str,
    node: &str,
) -> Result<pb::ControllerUnpublishVolumeResponse, tonic::Status> {
    h.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest {
        volume_id: volume.to_owned(),
        node_id: node.to_owned(),
        ..Default::default()
    })
}

/// The nodes a volume is published to, as ControllerGetVolume and
/// ListVolumes say (with LIST_VOLUMES_PUBLISHED_NODES).
fn published_nodes(h: &Csi, id: &str) -> Option<Vec<String>> {
    if !h.has_ctrl(Ctrl::ListVolumesPublishedNodes) {
        return None;
    }
    let mut from_list = None;
    if h.has_ctrl(Ctrl::ListVolumes) {
        for e in h.all_volumes(0) {
            if e.volume.as_ref().is_some_and(|v| v.volume_id == id) {
                let status = e
                    .status
                    .expect("ListVolumes: no status with LIST_VOLUMES_PUBLISHED_NODES");
                from_list = Some(status.published_node_ids);
            }
        }
    }
    if h.has_ctrl(Ctrl::GetVolume) {
        let r = ok(
            "ControllerGetVolume",
            h.controller_get_volume(pb::ControllerGetVolumeRequest {
                volume_id: id.to_owned(),
            }),
        );
        let nodes = r
            .status
            .expect("ControllerGetVolume: no status")
            .published_node_ids;
        if let Some(listed) = &from_list {
            assert_eq!(
                listed, &nodes,
                "ListVolumes and ControllerGetVolume disagree on {id}"
            );
        }
        return Some(nodes);
    }
    from_list
}

/// Publish, publish again ("MUST reply 0 OK"), use it on the node with the
/// publish_context, unpublish, unpublish again ("If the volume ... is not
/// attached to the node ..., the Plugin MUST reply 0 OK").
#[test]
fn controller_publish_and_unpublish() {
    let Some(h) = attached() else { return };
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
        let what = format!("ControllerPublishVolume {}", kind.label);
        let first = ok(
            &what,
            h.controller_publish_volume(publish_req(&h, &v, kind.cap(), false)),
        );
        let again = ok(
            &format!("{what} again"),
            h.controller_publish_volume(publish_req(&h, &v, kind.cap(), false)),
        );
        assert_eq!(
            again.publish_context, first.publish_context,
            "{what}: publish_context changed (SHALL NOT be mutable)"
        );
        if let Some(nodes) = published_nodes(&h, &v.volume_id) {
            assert_eq!(
                nodes,
                vec![h.info.node_id.clone()],
                "{what}: published_node_ids"
            );
        }
        // The node side, with what ControllerPublishVolume gave.
        let staging = h
            .has_node(NodeCap::StageUnstageVolume)
            .then(|| h.staging_path());
        if let Some(staging) = &staging {
            let mut req = h.stage_request(&v, &kind.cap(), staging);
            req.publish_context = first.publish_context.clone();
            ok("NodeStageVolume", h.node_stage_volume(req));
        }
        let target = h.target_path();
        let mut req = h.publish_request(&v, &kind.cap(), staging.as_deref(), &target, false);
        req.publish_context = first.publish_context.clone();
        ok("NodePublishVolume", h.node_publish_volume(req));
        match kind.access {
            Access::Mount => write_file(&target.join("hello"), b"attached"),
            Access::Block => write_at(&target, 0, &pattern(4096, 7)),
        }
        h.unmount(&v, staging.as_deref(), &target);
        ok(
            "ControllerUnpublishVolume",
            unpublish(&h, &v.volume_id, &h.info.node_id),
        );
        ok(
            "ControllerUnpublishVolume again",
            unpublish(&h, &v.volume_id, &h.info.node_id),
        );
        if let Some(nodes) = published_nodes(&h, &v.volume_id) {
            assert!(
                nodes.is_empty(),
                "{what}: still published to {nodes:?} after unpublishing"
            );
        }
        h.delete(&v.volume_id);
    }
}

/// "Volume published but is incompatible → ALREADY_EXISTS: ... already
/// been published at the node ... but is incompatible with the specified
/// volume_capability or readonly flag."
#[test]
fn controller_publish_incompatible_repeat_already_exists() {
    let Some(h) = attached() else { return };
    let kind = h.image_kind();
    let v = h.create(&kind);
    let created = h.create(&kind);
    ok(
        "ControllerPublishVolume",
        h.controller_publish_volume(publish_req(&h, &v, kind.cap(), false)),
    );
    // "CO MUST set this field to false if SP does not have the
    // PUBLISH_READONLY controller capability": without it, readonly=true is
    // an invalid field; either way it must not succeed.
    let readonly_codes: &[Code] = if h.has_ctrl(Ctrl::PublishReadonly) {
        &[Code::AlreadyExists]
    } else {
        &[Code::AlreadyExists, Code::InvalidArgument]
    };
    let mut cases = vec![
        case(
            "with readonly flipped",
            h.controller_publish_volume(publish_req(&h, &v, kind.cap(), true)),
            readonly_codes,
        ),
        case(
            "as SINGLE_NODE_READER_ONLY",
            h.controller_publish_volume(publish_req(
                &h,
                &v,
                kind.cap_with(Mode::SingleNodeReaderOnly),
                false,
            )),
            &[Code::AlreadyExists],
        ),
    ];
    if h.has_ctrl(Ctrl::SingleNodeMultiWriter) {
        cases.push(case(
            "as SINGLE_NODE_MULTI_WRITER",
            h.controller_publish_volume(publish_req(
                &h,
                &v,
                kind.cap_with(Mode::SingleNodeMultiWriter),
                false,
            )),
            &[Code::AlreadyExists],
        ));
    }
    cases.push(case(
        "the same again",
        h.controller_publish_volume(publish_req(&h, &v, kind.cap(), false)),
        &[Code::Ok],
    ));
    // Another volume on the same node is no conflict.
    cases.push(case(
        "another volume to the same node",
        h.controller_publish_volume(publish_req(&h, &created, kind.cap(), false)),
        &[Code::Ok],
    ));
    check("ControllerPublishVolume", cases);
}

/// ControllerPublishVolume's errors: required fields, unknown volume and
/// node ("Volume does not exist" / "Node does not exist" → NOT_FOUND).
#[test]
fn controller_publish_errors() {
    let Some(h) = attached() else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let with = |change: &dyn Fn(&mut pb::ControllerPublishVolumeRequest)| {
        let mut r = publish_req(&h, &v, kind.cap(), false);
        change(&mut r);
        h.controller_publish_volume(r)
    };
    let invalid = &[Code::InvalidArgument];
    let mut cases = vec![
        case(
            "without a volume_id",
            with(&|r| r.volume_id.clear()),
            invalid,
        ),
        case("without a node_id", with(&|r| r.node_id.clear()), invalid),
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
            "of an unknown volume",
            with(&|r| r.volume_id = "conformance-no-such-volume".into()),
            &[Code::NotFound],
        ),
        case(
            "to an unknown node",
            with(&|r| r.node_id = "conformance-no-such-node".into()),
            &[Code::NotFound],
        ),
    ];
    if h.strata {
        cases.push(case(
            "as MULTI_NODE_MULTI_WRITER",
            with(&|r| r.volume_capability = Some(kind.cap_with(Mode::MultiNodeMultiWriter))),
            invalid,
        ));
    }
    check("ControllerPublishVolume", cases);
    if let Some(nodes) = published_nodes(&h, &v.volume_id) {
        assert!(
            nodes.is_empty(),
            "failed publishes left the volume published to {nodes:?}"
        );
    }
}

/// ControllerUnpublishVolume in reverse order and with unknowns: not
/// attached → OK; an unknown volume or node "SHOULD return 0 OK" (or
/// NOT_FOUND when not assumed unpublished); an empty node_id unpublishes
/// from every node.
#[test]
fn controller_unpublish_reversed_and_unknown() {
    let Some(h) = attached() else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    let node = h.info.node_id.clone();
    let ok_or_not_found = &[Code::Ok, Code::NotFound];
    let mut cases = vec![
        case(
            "of a volume never published",
            unpublish(&h, &v.volume_id, &node),
            &[Code::Ok],
        ),
        case(
            "without a volume_id",
            unpublish(&h, "", &node),
            &[Code::InvalidArgument],
        ),
        case(
            "of an unknown volume",
            unpublish(&h, "conformance-no-such-volume", &node),
            ok_or_not_found,
        ),
        case(
            "from an unknown node",
            unpublish(&h, &v.volume_id, "conformance-no-such-node"),
            ok_or_not_found,
        ),
    ];
    ok(
        "ControllerPublishVolume",
        h.controller_publish_volume(publish_req(&h, &v, kind.cap(), false)),
    );
    cases.push(case(
        "from every node (no node_id)",
        unpublish(&h, &v.volume_id, ""),
        &[Code::Ok],
    ));
    check("ControllerUnpublishVolume", cases);
    if let Some(nodes) = published_nodes(&h, &v.volume_id) {
        assert!(
            nodes.is_empty(),
            "unpublished from every node, but still on {nodes:?}"
        );
    }
    // Unpublished everywhere, it can be deleted.
    h.delete(&v.volume_id);
}

/// DeleteVolume of a published volume: "Volume in use → FAILED_PRECONDITION"
/// and the volume is left as it was.
#[test]
fn delete_published_volume_fails() {
    let Some(h) = attached() else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    ok(
        "ControllerPublishVolume",
        h.controller_publish_volume(publish_req(&h, &v, kind.cap(), false)),
    );
    let r = h.delete_volume(pb::DeleteVolumeRequest {
        volume_id: v.volume_id.clone(),
        ..Default::default()
    });
    check(
        "DeleteVolume",
        vec![case(
            "of a volume published to a node",
            r,
            &[Code::FailedPrecondition],
        )],
    );
    if h.has_ctrl(Ctrl::GetVolume) {
        ok(
            "ControllerGetVolume after a refused delete",
            h.controller_get_volume(pb::ControllerGetVolumeRequest {
                volume_id: v.volume_id.clone(),
            }),
        );
    }
    // Still usable on the node.
    let (staging, target) = h.mount(&v, &kind.cap());
    write_file(&target.join("still-here"), b"yes");
    h.unmount(&v, staging.as_deref(), &target);
    ok(
        "ControllerUnpublishVolume",
        unpublish(&h, &v.volume_id, &h.info.node_id),
    );
    h.delete(&v.volume_id);
}
