//! ControllerPublishVolume and ControllerUnpublishVolume, on a plugin that
//! wants volumes attached first (Strata with `--attach-required`).

use tonic::Code;

use crate::harness::*;

fn attached() -> Option<Csi> {
    Csi::attach_required().requiring(&[Ctrl::CreateDeleteVolume, Ctrl::PublishUnpublishVolume])
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
        let r = ok("ControllerGetVolume", h.try_get_volume(id));
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

/// Volume `id` is published to no node (as far as the plugin says).
fn assert_unpublished(h: &Csi, id: &str, when: &str) {
    if let Some(nodes) = published_nodes(h, id) {
        assert!(nodes.is_empty(), "{when}, {id} is published to {nodes:?}");
    }
}

/// Publish, publish again ("MUST reply 0 OK"), use it on the node with the
/// publish_context, unpublish, unpublish again ("If the volume ... is not
/// attached to the node ..., the Plugin MUST reply 0 OK").
#[test]
fn controller_publish_and_unpublish() {
    let Some(h) = attached() else { return };
    let node = &h.info.node_id;
    for kind in h.all_kinds() {
        let Some(v) = h.make(&kind) else { continue };
        let what = format!("ControllerPublishVolume {}", kind.label);
        let (first, again) = twice(&what, || h.attach(&v, &kind.cap(), false));
        assert_eq!(
            again.publish_context, first.publish_context,
            "{what}: publish_context changed (SHALL NOT be mutable)"
        );
        if let Some(nodes) = published_nodes(&h, &v.volume_id) {
            assert_eq!(nodes, vec![node.clone()], "{what}: published_node_ids");
        }
        // The node side, with what ControllerPublishVolume gave ([`Csi::attach`]
        // keeps it for the node calls).
        let m = h.mount(&v, &kind.cap());
        kind.put(&m.target, "hello", &pattern(4096, 7));
        m.unmount();
        twice("ControllerUnpublishVolume", || {
            h.try_detach(&v.volume_id, node)
        });
        assert_unpublished(&h, &v.volume_id, &format!("{what}: after unpublishing"));
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
    ok("ControllerPublishVolume", h.attach(&v, &kind.cap(), false));
    let exists = &[Code::AlreadyExists];
    // "CO MUST set this field to false if SP does not have the
    // PUBLISH_READONLY controller capability": without it, readonly=true is
    // an invalid field; either way it must not succeed.
    let readonly_codes: &[Code] = if h.has_ctrl(Ctrl::PublishReadonly) {
        exists
    } else {
        &[Code::AlreadyExists, Code::InvalidArgument]
    };
    let other = h.attach_request(&created, &kind.cap(), false);
    changes(h.attach_request(&v, &kind.cap(), false), |r| {
        h.controller_publish_volume(r)
    })
    .row(
        "with readonly flipped",
        |r| r.readonly = true,
        readonly_codes,
    )
    .with_capability(
        "as SINGLE_NODE_READER_ONLY",
        kind.cap_with(Mode::SingleNodeReaderOnly),
        exists,
    )
    .when(h.has_ctrl(Ctrl::SingleNodeMultiWriter), |t| {
        t.with_capability(
            "as SINGLE_NODE_MULTI_WRITER",
            kind.cap_with(Mode::SingleNodeMultiWriter),
            exists,
        )
    })
    .row("the same again", |_| {}, &[Code::Ok])
    // Another volume on the same node is no conflict.
    .row(
        "another volume to the same node",
        |r| *r = other,
        &[Code::Ok],
    )
    .check("ControllerPublishVolume");
}

/// ControllerPublishVolume's errors: required fields, unknown volume and
/// node ("Volume does not exist" / "Node does not exist" → NOT_FOUND).
#[test]
fn controller_publish_errors() {
    let Some(h) = attached() else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    changes(h.attach_request(&v, &kind.cap(), false), |r| {
        h.controller_publish_volume(r)
    })
    .without_volume_id()
    .row("without a node_id", |r| r.node_id.clear(), INVALID)
    .bad_capabilities()
    .of_unknown_volume()
    .row(
        "to an unknown node",
        |r| r.node_id = NO_SUCH_NODE.into(),
        NOT_FOUND,
    )
    .when(h.strata, |t| {
        t.with_capability(
            "as MULTI_NODE_MULTI_WRITER",
            kind.cap_with(Mode::MultiNodeMultiWriter),
            INVALID,
        )
    })
    .check("ControllerPublishVolume");
    assert_unpublished(&h, &v.volume_id, "after failed publishes");
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
    let id = v.volume_id.as_str();
    let node = h.info.node_id.as_str();
    let ok_or_not_found = &[Code::Ok, Code::NotFound];
    let mut cases = vec![
        case(
            "of a volume never published",
            h.try_detach(id, node),
            &[Code::Ok],
        ),
        case("without a volume_id", h.try_detach("", node), INVALID),
        case(
            "of an unknown volume",
            h.try_detach(NO_SUCH_VOLUME, node),
            ok_or_not_found,
        ),
        case(
            "from an unknown node",
            h.try_detach(id, NO_SUCH_NODE),
            ok_or_not_found,
        ),
    ];
    ok("ControllerPublishVolume", h.attach(&v, &kind.cap(), false));
    cases.push(case(
        "from every node (no node_id)",
        h.try_detach(id, ""),
        &[Code::Ok],
    ));
    check("ControllerUnpublishVolume", cases);
    assert_unpublished(&h, id, "unpublished from every node");
    // Unpublished everywhere, it can be deleted.
    h.delete(id);
}

/// DeleteVolume of a published volume: "Volume in use → FAILED_PRECONDITION"
/// and the volume is left as it was.
#[test]
fn delete_published_volume_fails() {
    let Some(h) = attached() else { return };
    let kind = h.mount_kind();
    let v = h.create(&kind);
    ok("ControllerPublishVolume", h.attach(&v, &kind.cap(), false));
    let r = h.try_delete(&v.volume_id);
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
            h.try_get_volume(&v.volume_id),
        );
    }
    // Still usable on the node.
    h.with_mounted(&kind, &v, |t| write_file(&t.join("still-here"), b"yes"));
    ok(
        "ControllerUnpublishVolume",
        h.try_detach(&v.volume_id, &h.info.node_id),
    );
    h.delete(&v.volume_id);
}
