//! Which lists of each kind a strategic merge patch merges, and how: the
//! `patchStrategy` / `patchMergeKey` struct tags of the upstream Go types
//! (k8s.io/api core/v1, storage/v1, meta/v1). A list not named here is
//! atomic and a patch replaces it whole — e.g. `spec.tolerations`,
//! `status.containerStatuses`, `spec.accessModes`, `spec.mountOptions`,
//! `allowedTopologies`, node `spec.taints`.

use crate::kinds::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ListStrategy {
    /// Replaced whole by the patch's list.
    Atomic,
    /// Primitives merged as a set: the union, original order first.
    Set,
    /// Objects merged element by element, matched on this field.
    ByKey(&'static str),
}

use ListStrategy::{ByKey, Set};

/// Field paths from the object's root; `[]` steps into a list's elements.
type Schema = &'static [(&'static str, ListStrategy)];

const EVERY_KIND: Schema = &[
    ("metadata.finalizers", Set),
    ("metadata.ownerReferences", ByKey("uid")),
];

const POD: Schema = &[
    ("spec.volumes", ByKey("name")),
    ("spec.imagePullSecrets", ByKey("name")),
    ("spec.hostAliases", ByKey("ip")),
    ("spec.topologySpreadConstraints", ByKey("topologyKey")),
    ("spec.schedulingGates", ByKey("name")),
    ("spec.resourceClaims", ByKey("name")),
    ("spec.containers", ByKey("name")),
    ("spec.containers[].env", ByKey("name")),
    ("spec.containers[].ports", ByKey("containerPort")),
    ("spec.containers[].volumeMounts", ByKey("mountPath")),
    ("spec.containers[].volumeDevices", ByKey("devicePath")),
    ("spec.initContainers", ByKey("name")),
    ("spec.initContainers[].env", ByKey("name")),
    ("spec.initContainers[].ports", ByKey("containerPort")),
    ("spec.initContainers[].volumeMounts", ByKey("mountPath")),
    ("spec.initContainers[].volumeDevices", ByKey("devicePath")),
    ("spec.ephemeralContainers", ByKey("name")),
    ("spec.ephemeralContainers[].env", ByKey("name")),
    ("spec.ephemeralContainers[].ports", ByKey("containerPort")),
    (
        "spec.ephemeralContainers[].volumeMounts",
        ByKey("mountPath"),
    ),
    (
        "spec.ephemeralContainers[].volumeDevices",
        ByKey("devicePath"),
    ),
    ("status.conditions", ByKey("type")),
    ("status.podIPs", ByKey("ip")),
    ("status.hostIPs", ByKey("ip")),
    ("status.resourceClaimStatuses", ByKey("name")),
];

const NODE: Schema = &[
    ("spec.podCIDRs", Set),
    ("status.conditions", ByKey("type")),
    ("status.addresses", ByKey("type")),
];

const CONDITIONS_BY_TYPE: Schema = &[("status.conditions", ByKey("type"))];

fn schema(kind: Kind) -> Schema {
    match kind {
        Kind::Pod => POD,
        Kind::Node => NODE,
        Kind::PersistentVolumeClaim | Kind::Namespace => CONDITIONS_BY_TYPE,
        Kind::PersistentVolume | Kind::Event | Kind::StorageClass | Kind::CsiDriver => &[],
    }
}

/// How the list at `path` (e.g. `spec.containers[].env`) of a `kind` merges.
pub(super) fn list_strategy(kind: Kind, path: &str) -> ListStrategy {
    EVERY_KIND
        .iter()
        .chain(schema(kind))
        .find(|(field, _)| *field == path)
        .map_or(ListStrategy::Atomic, |(_, strategy)| *strategy)
}
