//! The object kinds the control plane serves, and the facts about each that
//! REST paths, discovery and the store need. One table, so adding a kind is
//! one row.

use std::fmt;

/// A kind of API object Strata serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Node,
    Pod,
    PersistentVolume,
    PersistentVolumeClaim,
    Event,
    StorageClass,
    CsiDriver,
}

/// What discovery and routing need to know about a kind.
#[derive(Debug)]
pub struct KindInfo {
    /// The `kind` field, e.g. `PersistentVolumeClaim`.
    pub kind: &'static str,
    /// API group; `""` is the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// The URL segment, e.g. `persistentvolumeclaims`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Whether `/status` is a subresource: writes to the main resource then
    /// keep the stored status, and writes to `/status` keep everything else.
    pub status_subresource: bool,
}

const CORE: &str = "";
const STORAGE: &str = "storage.k8s.io";

const INFOS: [KindInfo; 8] = [
    KindInfo {
        kind: "Namespace",
        group: CORE,
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        status_subresource: true,
    },
    KindInfo {
        kind: "Node",
        group: CORE,
        version: "v1",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        status_subresource: true,
    },
    KindInfo {
        kind: "Pod",
        group: CORE,
        version: "v1",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        status_subresource: true,
    },
    KindInfo {
        kind: "PersistentVolume",
        group: CORE,
        version: "v1",
        plural: "persistentvolumes",
        singular: "persistentvolume",
        namespaced: false,
        short_names: &["pv"],
        status_subresource: true,
    },
    KindInfo {
        kind: "PersistentVolumeClaim",
        group: CORE,
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        namespaced: true,
        short_names: &["pvc"],
        status_subresource: true,
    },
    KindInfo {
        kind: "Event",
        group: CORE,
        version: "v1",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        status_subresource: false,
    },
    KindInfo {
        kind: "StorageClass",
        group: STORAGE,
        version: "v1",
        plural: "storageclasses",
        singular: "storageclass",
        namespaced: false,
        short_names: &["sc"],
        status_subresource: false,
    },
    KindInfo {
        kind: "CSIDriver",
        group: STORAGE,
        version: "v1",
        plural: "csidrivers",
        singular: "csidriver",
        namespaced: false,
        short_names: &[],
        status_subresource: false,
    },
];

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Namespace,
        Kind::Node,
        Kind::Pod,
        Kind::PersistentVolume,
        Kind::PersistentVolumeClaim,
        Kind::Event,
        Kind::StorageClass,
        Kind::CsiDriver,
    ];

    pub fn info(self) -> &'static KindInfo {
        &INFOS[self as usize]
    }

    /// `v1` or `storage.k8s.io/v1`: the `apiVersion` field of its objects.
    pub fn api_version(self) -> String {
        let info = self.info();
        if info.group.is_empty() {
            info.version.to_string()
        } else {
            format!("{}/{}", info.group, info.version)
        }
    }

    /// The kind served under `group` at URL segment `plural`.
    pub fn from_plural(group: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.info().group == group && k.info().plural == plural)
    }

    /// The kind whose `kind` field is `name` (as in an involvedObject).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.info().kind == name)
    }

    /// The name stored in the database: the `kind` field, stable across
    /// releases (the enum's order is not).
    pub fn as_str(self) -> &'static str {
        self.info().kind
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_follow_the_enum() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.info().kind), Some(kind));
            assert_eq!(
                Kind::from_plural(kind.info().group, kind.info().plural),
                Some(kind)
            );
        }
        assert_eq!(Kind::StorageClass.api_version(), "storage.k8s.io/v1");
        assert_eq!(Kind::Pod.api_version(), "v1");
        assert_eq!(Kind::from_plural("", "storageclasses"), None);
    }
}
