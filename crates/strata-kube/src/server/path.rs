//! What a request path names: discovery documents or a resource, with
//! Kubernetes' URL layout (`/api/v1/...` for the core group,
//! `/apis/<group>/<version>/...` for the others).

use crate::kinds::Kind;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: the named groups.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`: the resources served there.
    Resources {
        group: String,
        version: String,
    },
    Resource(Target),
    Version,
    Health,
    /// `/openapi/v3` and the documents it lists.
    OpenApiV3(Option<String>),
    NotFound,
}

/// A resource URL: a collection (no name) or one object, maybe a
/// subresource of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// None for cluster-scoped kinds and for all-namespaces collections.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["openapi", "v3"] => Route::OpenApiV3(None),
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(Some(rest.join("/"))),
        ["apis", group] => Route::Group(group.to_string()),
        ["api", "v1"] => Route::Resources {
            group: String::new(),
            version: "v1".into(),
        },
        ["apis", group, version] => Route::Resources {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let target = |kind: Kind, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        if version != kind.info().version || namespace.is_some() && !kind.info().namespaced {
            return Route::NotFound;
        }
        Route::Resource(Target {
            kind,
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            subresource: sub.map(String::from),
        })
    };
    let kind = |plural: &str| Kind::from_plural(group, plural);
    match rest {
        // `namespaces/<ns>/<plural>...` unless it is a Namespace's own
        // subresource (`namespaces/<name>/status`).
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            match (kind(plural), tail) {
                (Some(k), []) => target(k, Some(ns), None, None),
                (Some(k), [name]) => target(k, Some(ns), Some(name), None),
                (Some(k), [name, sub]) => target(k, Some(ns), Some(name), Some(sub)),
                _ => Route::NotFound,
            }
        }
        [plural] => kind(plural).map_or(Route::NotFound, |k| target(k, None, None, None)),
        [plural, name] => {
            kind(plural).map_or(Route::NotFound, |k| target(k, None, Some(name), None))
        }
        [plural, name, sub] => {
            kind(plural).map_or(Route::NotFound, |k| target(k, None, Some(name), Some(sub)))
        }
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: Route) {
        assert_eq!(route(path), expected, "{path}");
    }

    fn t(kind: Kind, ns: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Route {
        Route::Resource(Target {
            kind,
            namespace: ns.map(String::from),
            name: name.map(String::from),
            subresource: sub.map(String::from),
        })
    }

    #[test]
    fn paths_name_what_kubernetes_names() {
        use Kind::*;
        check("/api", Route::CoreVersions);
        check("/apis", Route::Groups);
        check(
            "/apis/storage.k8s.io/v1",
            Route::Resources {
                group: "storage.k8s.io".into(),
                version: "v1".into(),
            },
        );
        check(
            "/api/v1/persistentvolumes",
            t(PersistentVolume, None, None, None),
        );
        check(
            "/api/v1/persistentvolumes/pv1/status",
            t(PersistentVolume, None, Some("pv1"), Some("status")),
        );
        check(
            "/api/v1/namespaces/default/persistentvolumeclaims/c",
            t(PersistentVolumeClaim, Some("default"), Some("c"), None),
        );
        check(
            "/api/v1/persistentvolumeclaims",
            t(PersistentVolumeClaim, None, None, None),
        );
        check(
            "/api/v1/namespaces/dev",
            t(Namespace, None, Some("dev"), None),
        );
        check(
            "/api/v1/namespaces/dev/status",
            t(Namespace, None, Some("dev"), Some("status")),
        );
        check(
            "/api/v1/namespaces/a/pods/p/log",
            t(Pod, Some("a"), Some("p"), Some("log")),
        );
        check(
            "/apis/storage.k8s.io/v1/storageclasses/fast",
            t(StorageClass, None, Some("fast"), None),
        );
        // Wrong group, unknown plural, namespaced path for a cluster kind.
        check("/api/v1/storageclasses", Route::NotFound);
        check("/api/v1/widgets", Route::NotFound);
        check("/api/v1/namespaces/a/persistentvolumes", Route::NotFound);
        check("/apis/storage.k8s.io/v2/storageclasses", Route::NotFound);
    }
}
