//! Generated CSI v1 protocol types and gRPC stubs (package `csi.v1`).
//!
//! Built from `proto/csi.proto` by `build.rs`. Servers live in
//! `*_server` modules (e.g. [`identity_server::IdentityServer`]) and clients
//! in `*_client` modules (e.g. [`node_client::NodeClient`]).

tonic::include_proto!("csi.v1");

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::collections::HashMap;

    /// Compares one encoded message (or enum number) with what the spec says.
    fn check<T: PartialEq + std::fmt::Debug>(name: &str, input: T, expected: T) {
        assert_eq!(input, expected, "{name}");
    }

    fn mount(fs_type: &str, mode: volume_capability::access_mode::Mode) -> VolumeCapability {
        VolumeCapability {
            access_type: Some(volume_capability::AccessType::Mount(
                volume_capability::MountVolume {
                    fs_type: fs_type.into(),
                    ..Default::default()
                },
            )),
            access_mode: Some(volume_capability::AccessMode { mode: mode as i32 }),
        }
    }

    fn secrets() -> HashMap<String, String> {
        HashMap::from([("k".to_owned(), "v".to_owned())])
    }

    #[test]
    fn wire_encoding_matches_spec_field_numbers() {
        use volume_capability::access_mode::Mode;

        // Key byte = field_number << 3 | wire_type (0 varint, 2 length-delimited).
        let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
            (
                "CreateVolumeRequest.name = 1",
                CreateVolumeRequest {
                    name: "a".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x0a, 1, b'a'],
            ),
            (
                "VolumeCapability.mount = 2 (oneof), access_mode = 3, SINGLE_NODE_MULTI_WRITER = 7",
                mount("xfs", Mode::SingleNodeMultiWriter).encode_to_vec(),
                vec![0x12, 5, 0x0a, 3, b'x', b'f', b's', 0x1a, 2, 0x08, 7],
            ),
            (
                "VolumeCapability.block = 1 (oneof, empty message)",
                VolumeCapability {
                    access_type: Some(volume_capability::AccessType::Block(
                        volume_capability::BlockVolume {},
                    )),
                    access_mode: None,
                }
                .encode_to_vec(),
                vec![0x0a, 0],
            ),
            (
                "MountVolume.mount_flags = 2, volume_mount_group = 3",
                volume_capability::MountVolume {
                    fs_type: String::new(),
                    mount_flags: vec!["ro".into()],
                    volume_mount_group: "9".into(),
                }
                .encode_to_vec(),
                vec![0x12, 2, b'r', b'o', 0x1a, 1, b'9'],
            ),
            (
                "Volume.capacity_bytes = 1, volume_id = 2, accessible_topology = 5",
                Volume {
                    capacity_bytes: 1,
                    volume_id: "v".into(),
                    accessible_topology: vec![Topology::default()],
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x08, 1, 0x12, 1, b'v', 0x2a, 0],
            ),
            (
                "VolumeContentSource.volume = 2 { volume_id = 1 }",
                VolumeContentSource {
                    r#type: Some(volume_content_source::Type::Volume(
                        volume_content_source::VolumeSource {
                            volume_id: "s".into(),
                        },
                    )),
                }
                .encode_to_vec(),
                vec![0x12, 3, 0x0a, 1, b's'],
            ),
            (
                "ControllerServiceCapability.rpc = 1 { type = GET_SNAPSHOT (15) }",
                ControllerServiceCapability {
                    r#type: Some(controller_service_capability::Type::Rpc(
                        controller_service_capability::Rpc {
                            r#type: controller_service_capability::rpc::Type::GetSnapshot as i32,
                        },
                    )),
                }
                .encode_to_vec(),
                vec![0x0a, 2, 0x08, 15],
            ),
            (
                "PluginCapability.volume_expansion = 2 { type = OFFLINE (2) }",
                PluginCapability {
                    r#type: Some(plugin_capability::Type::VolumeExpansion(
                        plugin_capability::VolumeExpansion {
                            r#type: plugin_capability::volume_expansion::Type::Offline as i32,
                        },
                    )),
                }
                .encode_to_vec(),
                vec![0x12, 2, 0x08, 2],
            ),
            (
                "Snapshot.ready_to_use = 5, group_snapshot_id = 6",
                Snapshot {
                    ready_to_use: true,
                    group_snapshot_id: "g".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x28, 1, 0x32, 1, b'g'],
            ),
            (
                "GetCapacityResponse.minimum_volume_size = 3 (Int64Value)",
                GetCapacityResponse {
                    minimum_volume_size: Some(5),
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x1a, 2, 0x08, 5],
            ),
            (
                "NodeGetVolumeStatsResponse.volume_condition = 2 { abnormal = 1 }",
                NodeGetVolumeStatsResponse {
                    usage: vec![],
                    volume_condition: Some(VolumeCondition {
                        abnormal: true,
                        message: String::new(),
                    }),
                }
                .encode_to_vec(),
                vec![0x12, 2, 0x08, 1],
            ),
            (
                "ListVolumesResponse.VolumeStatus.published_node_ids = 1",
                list_volumes_response::VolumeStatus {
                    published_node_ids: vec!["n".into()],
                    volume_condition: None,
                }
                .encode_to_vec(),
                vec![0x0a, 1, b'n'],
            ),
            (
                "NodeExpandVolumeRequest.secrets = 6 (map entry key = 1, value = 2)",
                NodeExpandVolumeRequest {
                    secrets: secrets(),
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x32, 6, 0x0a, 1, b'k', 0x12, 1, b'v'],
            ),
            (
                "ControllerModifyVolumeRequest.mutable_parameters = 3",
                ControllerModifyVolumeRequest {
                    mutable_parameters: secrets(),
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x1a, 6, 0x0a, 1, b'k', 0x12, 1, b'v'],
            ),
            (
                "NodePublishVolumeRequest.readonly = 6, secrets = 7",
                NodePublishVolumeRequest {
                    readonly: true,
                    secrets: secrets(),
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x30, 1, 0x3a, 6, 0x0a, 1, b'k', 0x12, 1, b'v'],
            ),
            (
                "NodeGetInfoResponse.max_volumes_per_node = 2",
                NodeGetInfoResponse {
                    max_volumes_per_node: 3,
                    ..Default::default()
                }
                .encode_to_vec(),
                vec![0x10, 3],
            ),
        ];
        for (name, input, expected) in cases {
            check(name, input, expected);
        }
    }

    #[test]
    fn enum_numbers_match_spec() {
        use controller_service_capability::rpc::Type as Ctrl;
        use node_service_capability::rpc::Type as NodeCap;
        use plugin_capability::service::Type as Svc;
        use volume_capability::access_mode::Mode;

        let cases: Vec<(&str, i32, i32)> = vec![
            ("Mode::SINGLE_NODE_WRITER", Mode::SingleNodeWriter as i32, 1),
            (
                "Mode::MULTI_NODE_MULTI_WRITER",
                Mode::MultiNodeMultiWriter as i32,
                5,
            ),
            (
                "Mode::SINGLE_NODE_SINGLE_WRITER",
                Mode::SingleNodeSingleWriter as i32,
                6,
            ),
            (
                "Mode::SINGLE_NODE_MULTI_WRITER",
                Mode::SingleNodeMultiWriter as i32,
                7,
            ),
            (
                "Ctrl::CREATE_DELETE_VOLUME",
                Ctrl::CreateDeleteVolume as i32,
                1,
            ),
            ("Ctrl::CLONE_VOLUME", Ctrl::CloneVolume as i32, 7),
            ("Ctrl::EXPAND_VOLUME", Ctrl::ExpandVolume as i32, 9),
            (
                "Ctrl::LIST_VOLUMES_PUBLISHED_NODES",
                Ctrl::ListVolumesPublishedNodes as i32,
                10,
            ),
            ("Ctrl::VOLUME_CONDITION", Ctrl::VolumeCondition as i32, 11),
            ("Ctrl::GET_VOLUME", Ctrl::GetVolume as i32, 12),
            (
                "Ctrl::SINGLE_NODE_MULTI_WRITER",
                Ctrl::SingleNodeMultiWriter as i32,
                13,
            ),
            ("Ctrl::MODIFY_VOLUME", Ctrl::ModifyVolume as i32, 14),
            ("Ctrl::GET_SNAPSHOT", Ctrl::GetSnapshot as i32, 15),
            (
                "Node::STAGE_UNSTAGE_VOLUME",
                NodeCap::StageUnstageVolume as i32,
                1,
            ),
            ("Node::GET_VOLUME_STATS", NodeCap::GetVolumeStats as i32, 2),
            ("Node::EXPAND_VOLUME", NodeCap::ExpandVolume as i32, 3),
            ("Node::VOLUME_CONDITION", NodeCap::VolumeCondition as i32, 4),
            (
                "Node::SINGLE_NODE_MULTI_WRITER",
                NodeCap::SingleNodeMultiWriter as i32,
                5,
            ),
            (
                "Node::VOLUME_MOUNT_GROUP",
                NodeCap::VolumeMountGroup as i32,
                6,
            ),
            (
                "Service::CONTROLLER_SERVICE",
                Svc::ControllerService as i32,
                1,
            ),
            (
                "Service::VOLUME_ACCESSIBILITY_CONSTRAINTS",
                Svc::VolumeAccessibilityConstraints as i32,
                2,
            ),
            (
                "Service::GROUP_CONTROLLER_SERVICE",
                Svc::GroupControllerService as i32,
                3,
            ),
            (
                "Service::SNAPSHOT_METADATA_SERVICE",
                Svc::SnapshotMetadataService as i32,
                4,
            ),
            ("Unit::BYTES", volume_usage::Unit::Bytes as i32, 1),
            ("Unit::INODES", volume_usage::Unit::Inodes as i32, 2),
            (
                "BlockMetadataType::VARIABLE_LENGTH",
                BlockMetadataType::VariableLength as i32,
                2,
            ),
        ];
        for (name, input, expected) in cases {
            check(name, input, expected);
        }

        // Proto names survive code generation (they appear in logs / JSON).
        check(
            "name of 7",
            Mode::SingleNodeMultiWriter.as_str_name(),
            "SINGLE_NODE_MULTI_WRITER",
        );
        check(
            "name of 15",
            Ctrl::GetSnapshot.as_str_name(),
            "GET_SNAPSHOT",
        );
    }

    #[test]
    fn grpc_service_names_match_spec() {
        let cases = [
            (identity_server::SERVICE_NAME, "csi.v1.Identity"),
            (controller_server::SERVICE_NAME, "csi.v1.Controller"),
            (node_server::SERVICE_NAME, "csi.v1.Node"),
            (
                group_controller_server::SERVICE_NAME,
                "csi.v1.GroupController",
            ),
            (
                snapshot_metadata_server::SERVICE_NAME,
                "csi.v1.SnapshotMetadata",
            ),
        ];
        for (input, expected) in cases {
            check(expected, input, expected);
        }
    }
}
