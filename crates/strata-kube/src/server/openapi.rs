//! Just enough OpenAPI v3 for kubectl to see that this server validates
//! fields itself (`fieldValidation`), so `kubectl apply` needs no
//! `--validate=false` and downloads no schemas: per group version, each
//! object path's PATCH operation names its kind and the parameter.
//! Schemas are left out on purpose; kubectl then computes strategic merge
//! patches from its compiled-in types.

use serde_json::{Map, Value, json};

use crate::kinds::Kind;

/// `api/v1` or `apis/<group>/<version>` for a kind.
fn group_version_path(kind: Kind) -> String {
    let info = kind.info();
    if info.group.is_empty() {
        format!("api/{}", info.version)
    } else {
        format!("apis/{}/{}", info.group, info.version)
    }
}

/// `GET /openapi/v3`: where each group version's document is.
pub fn root() -> Value {
    let mut paths = Map::new();
    for kind in Kind::ALL {
        let path = group_version_path(kind);
        let url = format!("/openapi/v3/{path}?hash={}", env!("CARGO_PKG_VERSION"));
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/<group version path>`.
pub fn document(path: &str) -> Option<Value> {
    let mut paths = Map::new();
    for kind in Kind::ALL
        .into_iter()
        .filter(|k| group_version_path(*k) == path)
    {
        let info = kind.info();
        let item = if info.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", info.plural)
        } else {
            format!("/{path}/{}/{{name}}", info.plural)
        };
        let gvk = json!({"group": info.group, "version": info.version, "kind": info.kind});
        paths.insert(
            item,
            json!({"patch": {
                "operationId": format!("patch{}", info.kind),
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                ],
            }}),
        );
    }
    (!paths.is_empty()).then(|| {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Strata", "version": env!("CARGO_PKG_VERSION")},
            "paths": paths,
            "components": {"schemas": {}},
        })
    })
}
