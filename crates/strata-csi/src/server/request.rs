//! Reading what a CSI request asks for: capabilities, parameters,
//! capacity, topology and paging tokens, checked against what Strata
//! offers. Pure: nothing here touches storage.

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{CsiError, Result, missing};
use crate::pb::volume_capability::{AccessType, access_mode::Mode};
use crate::pb::{CapacityRange, Topology, TopologyRequirement, VolumeCapability};
use crate::storage::{Kind, Source};

/// The topology key whose value is the node holding a volume.
pub const TOPOLOGY_KEY: &str = "topology.csi.strata.dev/node";
/// The capacity of a volume whose request gives none.
pub const DEFAULT_CAPACITY: u64 = 1 << 30;
/// Volume sizes are whole filesystem blocks.
const BLOCK: u64 = 4096;
/// The smallest ext4 image worth making, and the smallest mkfs.xfs makes.
const MIN_EXT4: u64 = 1 << 20;
const MIN_XFS: u64 = 300 << 20;
/// Keys the Kubernetes sidecars add to parameters for themselves.
const SIDECAR_PREFIX: &str = "csi.storage.k8s.io/";

/// How a volume is accessed: as a filesystem (with its type) or a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Mount { fs_type: String },
    Block,
}

/// What CreateVolume asked for, kept with the volume so that a repeated
/// call can be told from a conflicting one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub kind: Kind,
    /// The filesystem of an image volume; empty otherwise.
    pub fs: String,
    pub block: bool,
    pub modes: Vec<i32>,
    pub parameters: BTreeMap<String, String>,
    pub source: Option<Source>,
}

impl Recorded {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a request serializes")
    }

    pub fn from_json(text: &str) -> Option<Recorded> {
        serde_json::from_str(text).ok()
    }

    /// What the volume's context says about it (type and filesystem).
    pub fn context(&self) -> HashMap<String, String> {
        let mut context = HashMap::new();
        let kind = match self.kind {
            Kind::Dir => "dir",
            Kind::Image => "image",
            Kind::Block => "block",
        };
        context.insert("type".to_owned(), kind.to_owned());
        if !self.fs.is_empty() {
            context.insert("fs".to_owned(), self.fs.clone());
        }
        context
    }
}

/// The access of one capability, refusing what Strata cannot give.
pub fn access(cap: &VolumeCapability) -> Result<Access> {
    let mode = cap
        .access_mode
        .as_ref()
        .ok_or_else(|| missing("volume_capability.access_mode"))?
        .mode;
    supported_mode(mode)?;
    match &cap.access_type {
        None => Err(missing("volume_capability.access_type (block or mount)")),
        Some(AccessType::Block(_)) => Ok(Access::Block),
        Some(AccessType::Mount(m)) => Ok(Access::Mount {
            fs_type: m.fs_type.clone(),
        }),
    }
}

/// Strata's volumes live on one node, so only single-node modes work.
fn supported_mode(mode: i32) -> Result<()> {
    match Mode::try_from(mode) {
        Ok(
            Mode::SingleNodeWriter
            | Mode::SingleNodeReaderOnly
            | Mode::SingleNodeSingleWriter
            | Mode::SingleNodeMultiWriter,
        ) => Ok(()),
        Ok(Mode::Unknown) => Err(missing("volume_capability.access_mode.mode")),
        Ok(other) => Err(CsiError::InvalidArgument(format!(
            "access mode {} is not supported (Strata volumes live on one node); use a SINGLE_NODE_* mode",
            other.as_str_name()
        ))),
        Err(_) => Err(CsiError::InvalidArgument(format!(
            "access mode {mode} is not a known access mode"
        ))),
    }
}

/// The access all `caps` ask for: one kind (block or mount), one
/// filesystem type.
pub fn common_access(caps: &[VolumeCapability]) -> Result<Access> {
    let mut found: Option<Access> = None;
    for cap in caps {
        let access = access(cap)?;
        match &found {
            Some(seen) if *seen != access => {
                return Err(CsiError::InvalidArgument(
                    "the volume capabilities ask for different access types or filesystems; give one"
                        .into(),
                ));
            }
            _ => found = Some(access),
        }
    }
    found.ok_or_else(|| missing("volume_capabilities"))
}

/// The kind and filesystem of a new volume from its parameters and access.
pub fn shape(parameters: &HashMap<String, String>, access: &Access) -> Result<(Kind, String)> {
    if let Some(key) = parameters
        .keys()
        .find(|k| !k.starts_with(SIDECAR_PREFIX) && !matches!(k.as_str(), "type" | "fs"))
    {
        return Err(CsiError::InvalidArgument(format!(
            "unknown parameter {key}; Strata takes type=dir|image and fs=ext4|xfs"
        )));
    }
    let kind = parameters.get("type").map(String::as_str);
    let fs = parameters.get("fs").map(String::as_str);
    match access {
        Access::Block => match (kind, fs) {
            (None | Some("image"), None) => Ok((Kind::Block, String::new())),
            _ => Err(CsiError::InvalidArgument(
                "a block volume is a raw image: leave out type=dir and fs=".into(),
            )),
        },
        Access::Mount { fs_type } => match kind {
            None | Some("dir") => Ok((Kind::Dir, String::new())),
            Some("image") => Ok((Kind::Image, image_fs(fs, fs_type)?)),
            Some(other) => Err(CsiError::InvalidArgument(format!(
                "type={other} is not supported; use type=dir or type=image"
            ))),
        },
    }
}

/// The filesystem of an image volume: the parameter or the capability's
/// fs_type (which must agree), ext4 if neither says.
fn image_fs(param: Option<&str>, fs_type: &str) -> Result<String> {
    let fs = match (param, fs_type) {
        (Some(p), t) if !t.is_empty() && p != t => {
            return Err(CsiError::InvalidArgument(format!(
                "fs={p} and the capability's fs_type {t} disagree; give one filesystem"
            )));
        }
        (Some(p), _) => p,
        (None, "") => "ext4",
        (None, t) => t,
    };
    match fs {
        "ext4" | "xfs" => Ok(fs.to_owned()),
        other => Err(CsiError::InvalidArgument(format!(
            "filesystem {other} is not supported; use ext4 or xfs"
        ))),
    }
}

/// The smallest volume of `kind` (with filesystem `fs`).
pub fn minimum(kind: Kind, fs: &str) -> u64 {
    match (kind, fs) {
        (Kind::Dir, _) => 0,
        (Kind::Block, _) => BLOCK,
        (Kind::Image, "xfs") => MIN_XFS,
        (Kind::Image, _) => MIN_EXT4,
    }
}

/// The capacity to give within `range`, at least `floor` (a source's
/// size) and `min`; OUT_OF_RANGE if the range does not allow one.
pub fn capacity(range: Option<&CapacityRange>, floor: u64, min: u64) -> Result<u64> {
    let (required, limit) = range.map_or((0, 0), |r| (r.required_bytes, r.limit_bytes));
    let (Ok(required), Ok(limit)) = (u64::try_from(required), u64::try_from(limit)) else {
        return Err(CsiError::InvalidArgument(
            "capacity_range bytes must not be negative".into(),
        ));
    };
    if limit > 0 && required > limit {
        return Err(CsiError::OutOfRange(format!(
            "required_bytes {required} is more than limit_bytes {limit}"
        )));
    }
    // What the volume must hold, and what it gets when no size is asked.
    let need = required.max(floor).max(min);
    // A copy of a source is the source's size unless more is asked for.
    let wanted = match (required, limit) {
        (0, _) if floor > 0 => need,
        (0, 0) => need.max(DEFAULT_CAPACITY),
        (0, limit) => need.max(DEFAULT_CAPACITY.min(limit)),
        _ => need,
    };
    let mut size = round_up(wanted);
    if limit > 0 && size > limit {
        size = limit / BLOCK * BLOCK;
        if size < need || size == 0 {
            return Err(CsiError::OutOfRange(format!(
                "limit_bytes {limit} is less than the {need} bytes this volume needs (whole 4 KiB blocks)"
            )));
        }
    }
    Ok(size)
}

fn round_up(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// Whether `capacity` lies within `range` (for repeated calls).
pub fn within(range: Option<&CapacityRange>, capacity: u64) -> bool {
    let Some(r) = range else { return true };
    let required = u64::try_from(r.required_bytes).unwrap_or(0);
    let limit = u64::try_from(r.limit_bytes).unwrap_or(0);
    capacity >= required && (limit == 0 || capacity <= limit)
}

/// This node's topology segment.
pub fn topology(node_id: &str) -> Topology {
    let mut segments = HashMap::new();
    segments.insert(TOPOLOGY_KEY.to_owned(), node_id.to_owned());
    Topology { segments }
}

/// Whether `t` is this node: its segment under our topology key names
/// this node (other keys, which we do not use, are ignored).
pub fn is_this_node(t: &Topology, node_id: &str) -> bool {
    t.segments.get(TOPOLOGY_KEY).map(String::as_str) == Some(node_id)
}

/// RESOURCE_EXHAUSTED unless this node satisfies `requirements`.
pub fn check_requirements(requirements: Option<&TopologyRequirement>, node_id: &str) -> Result<()> {
    let Some(r) = requirements else { return Ok(()) };
    if r.requisite.is_empty() && r.preferred.is_empty() {
        return Err(CsiError::InvalidArgument(
            "accessibility_requirements has neither requisite nor preferred topologies; give one or leave it out".into(),
        ));
    }
    let listed = if r.requisite.is_empty() {
        &r.preferred
    } else {
        &r.requisite
    };
    if listed.is_empty() || listed.iter().any(|t| is_this_node(t, node_id)) {
        return Ok(());
    }
    Err(CsiError::ResourceExhausted(format!(
        "this controller provisions only on node {node_id} ({TOPOLOGY_KEY}={node_id}), which the accessibility requirements do not allow"
    )))
}

/// The position a paging token stands for; ABORTED for one we did not
/// give out, as the spec asks.
pub fn after_token(token: &str) -> Result<String> {
    if token.is_empty() {
        return Ok(String::new());
    }
    token
        .strip_prefix(TOKEN_PREFIX)
        .filter(|rest| !rest.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            CsiError::Aborted(format!(
                "starting_token '{token}' is not one this plugin gave out; list again from the start"
            ))
        })
}

const TOKEN_PREFIX: &str = "after:";

/// The token for the page after the one ending at `last`.
pub fn token_after(last: &str) -> String {
    format!("{TOKEN_PREFIX}{last}")
}

/// How many entries a page may hold; INVALID_ARGUMENT for a negative one.
pub fn page_size(max_entries: i32) -> Result<usize> {
    match max_entries {
        n if n < 0 => Err(CsiError::InvalidArgument(format!(
            "max_entries {n} is negative; give 0 (no limit) or more"
        ))),
        0 => Ok(usize::MAX / 2),
        n => Ok(n as usize),
    }
}

/// A required string field.
pub fn required<'a>(value: &'a str, field: &str) -> Result<&'a str> {
    if value.is_empty() {
        return Err(missing(field));
    }
    Ok(value)
}

/// A required name: the spec forbids control characters in strings.
pub fn name<'a>(value: &'a str, field: &str) -> Result<&'a str> {
    let value = required(value, field)?;
    if value.chars().any(char::is_control) {
        return Err(CsiError::InvalidArgument(format!(
            "{field} {value:?} holds control characters, which CSI strings may not"
        )));
    }
    Ok(value)
}

/// The range an expansion asks for: given, with at least one bound.
pub fn growth(range: Option<&CapacityRange>) -> Result<&CapacityRange> {
    match range {
        Some(r) if r.required_bytes != 0 || r.limit_bytes != 0 => Ok(r),
        _ => Err(missing("capacity_range (required_bytes or limit_bytes)")),
    }
}

/// Whether the capability an expansion names fits a volume of `kind`;
/// INVALID_ARGUMENT (the spec's "exceeds capabilities") if not.
pub fn fits(cap: Option<&VolumeCapability>, kind: Kind) -> Result<()> {
    let Some(cap) = cap else { return Ok(()) };
    let block = matches!(access(cap)?, Access::Block);
    if block != (kind == Kind::Block) {
        return Err(CsiError::InvalidArgument(format!(
            "the volume is a {kind:?} volume; that access type does not fit it"
        )));
    }
    Ok(())
}

/// A capability with both its access type and mode, whatever they are.
pub fn complete(cap: &VolumeCapability) -> Result<()> {
    if cap.access_type.is_none() {
        return Err(missing("volume_capability.access_type (block or mount)"));
    }
    match &cap.access_mode {
        Some(m) if m.mode != Mode::Unknown as i32 => Ok(()),
        _ => Err(missing("volume_capability.access_mode")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::volume_capability::{AccessMode, BlockVolume, MountVolume};

    fn cap(block: bool, fs: &str, mode: Mode) -> VolumeCapability {
        VolumeCapability {
            access_type: Some(if block {
                AccessType::Block(BlockVolume {})
            } else {
                AccessType::Mount(MountVolume {
                    fs_type: fs.into(),
                    ..Default::default()
                })
            }),
            access_mode: Some(AccessMode { mode: mode as i32 }),
        }
    }

    #[test]
    fn shapes() {
        let check = |params: &[(&str, &str)],
                     cap: VolumeCapability,
                     expected: Result<(Kind, &str), tonic::Code>| {
            let params = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let got = access(&cap).and_then(|a| shape(&params, &a));
            match (got, expected) {
                (Ok((kind, fs)), Ok((k, f))) => assert_eq!((kind, fs.as_str()), (k, f)),
                (Err(e), Err(code)) => assert_eq!(e.code(), code, "{e}"),
                (got, expected) => panic!("{params:?}: got {got:?}, expected {expected:?}"),
            }
        };
        let writer = Mode::SingleNodeWriter;
        check(&[], cap(false, "", writer), Ok((Kind::Dir, "")));
        check(
            &[("type", "dir")],
            cap(false, "ext4", writer),
            Ok((Kind::Dir, "")),
        );
        check(
            &[("type", "image")],
            cap(false, "", writer),
            Ok((Kind::Image, "ext4")),
        );
        check(
            &[("type", "image")],
            cap(false, "xfs", writer),
            Ok((Kind::Image, "xfs")),
        );
        check(
            &[("type", "image"), ("fs", "xfs")],
            cap(false, "", writer),
            Ok((Kind::Image, "xfs")),
        );
        check(
            &[("type", "image"), ("fs", "xfs")],
            cap(false, "ext4", writer),
            Err(tonic::Code::InvalidArgument),
        );
        check(
            &[("type", "image"), ("fs", "btrfs")],
            cap(false, "", writer),
            Err(tonic::Code::InvalidArgument),
        );
        check(
            &[("type", "nfs")],
            cap(false, "", writer),
            Err(tonic::Code::InvalidArgument),
        );
        check(
            &[("colour", "red")],
            cap(false, "", writer),
            Err(tonic::Code::InvalidArgument),
        );
        check(
            &[("csi.storage.k8s.io/pvc/name", "p")],
            cap(false, "", writer),
            Ok((Kind::Dir, "")),
        );
        check(&[], cap(true, "", writer), Ok((Kind::Block, "")));
        check(
            &[("type", "dir")],
            cap(true, "", writer),
            Err(tonic::Code::InvalidArgument),
        );
        check(
            &[],
            cap(false, "", Mode::SingleNodeMultiWriter),
            Ok((Kind::Dir, "")),
        );
        check(
            &[],
            cap(false, "", Mode::MultiNodeMultiWriter),
            Err(tonic::Code::InvalidArgument),
        );
        check(
            &[],
            cap(false, "", Mode::Unknown),
            Err(tonic::Code::InvalidArgument),
        );
    }

    #[test]
    fn capacities() {
        let check = |required: i64,
                     limit: i64,
                     floor: u64,
                     min: u64,
                     expected: Result<u64, tonic::Code>| {
            let range = CapacityRange {
                required_bytes: required,
                limit_bytes: limit,
            };
            let got = capacity(Some(&range), floor, min).map_err(|e| e.code());
            assert_eq!(got, expected, "required {required} limit {limit}");
        };
        check(0, 0, 0, 0, Ok(DEFAULT_CAPACITY));
        check(1, 0, 0, 0, Ok(4096));
        check(10 << 20, 0, 0, 0, Ok(10 << 20));
        check(10 << 20, 0, 20 << 20, 0, Ok(20 << 20));
        check(0, 0, 20 << 20, 0, Ok(20 << 20));
        check(1000, 0, 0, MIN_EXT4, Ok(MIN_EXT4));
        check(5000, 6000, 0, 0, Err(tonic::Code::OutOfRange));
        check(4096, 6000, 0, 0, Ok(4096));
        check(0, 100 << 20, 0, MIN_XFS, Err(tonic::Code::OutOfRange));
        check(2 << 20, 1 << 20, 0, 0, Err(tonic::Code::OutOfRange));
        check(0, 1 << 20, 0, 0, Ok(1 << 20));
        check(-1, 0, 0, 0, Err(tonic::Code::InvalidArgument));
    }

    #[test]
    fn tokens() {
        assert_eq!(after_token("").unwrap(), "");
        assert_eq!(after_token(&token_after("pvc-1")).unwrap(), "pvc-1");
        for bad in ["garbage", "after:", "12"] {
            assert_eq!(after_token(bad).unwrap_err().code(), tonic::Code::Aborted);
        }
        assert_eq!(
            page_size(-1).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(page_size(3).unwrap(), 3);
    }

    #[test]
    fn requirements() {
        let req = |nodes: &[&str]| TopologyRequirement {
            requisite: nodes.iter().map(|n| topology(n)).collect(),
            preferred: vec![],
        };
        assert!(check_requirements(None, "n1").is_ok());
        let empty = check_requirements(Some(&req(&[])), "n1").unwrap_err();
        assert_eq!(empty.code(), tonic::Code::InvalidArgument);
        assert!(check_requirements(Some(&req(&["n2", "n1"])), "n1").is_ok());
        let e = check_requirements(Some(&req(&["n2"])), "n1").unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    }
}
