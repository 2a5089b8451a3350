//! The one protobuf body kubectl sends for a kind we serve: `kubectl create
//! namespace` posts a Namespace as `application/vnd.kubernetes.protobuf`
//! (its typed client prefers protobuf). This decodes Kubernetes' envelope
//! (`k8s\0` + runtime.Unknown) and the Namespace fields that command sets,
//! into the JSON the registry takes. Everything else must be JSON.

use std::collections::BTreeMap;

use prost::Message;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::kinds::Kind;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// runtime.Unknown: the envelope around every protobuf object.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

/// core/v1 Namespace, with the ObjectMeta fields a create sets.
#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
}

/// The JSON object a protobuf body for `kind` stands for.
pub fn decode(kind: Kind, body: &[u8]) -> Result<Value, ApiError> {
    if kind != Kind::Namespace {
        return Err(ApiError::UnsupportedMediaType(format!(
            "application/json (protobuf is accepted only for namespaces, not {})",
            kind.info().plural
        )));
    }
    let bad =
        |why: String| ApiError::BadRequest(format!("the protobuf body is not a Namespace: {why}"));
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("it does not start with Kubernetes' k8s\\0 prefix".into()))?;
    let unknown = Unknown::decode(envelope).map_err(|e| bad(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    if type_meta.kind != "Namespace" {
        return Err(bad(format!("it holds a {}", type_meta.kind)));
    }
    let namespace = Namespace::decode(unknown.raw.as_slice()).map_err(|e| bad(e.to_string()))?;
    let meta = namespace.metadata.unwrap_or_default();
    let mut metadata = json!({"name": meta.name});
    if !meta.generate_name.is_empty() {
        metadata["generateName"] = meta.generate_name.into();
    }
    if !meta.labels.is_empty() {
        metadata["labels"] = json!(meta.labels);
    }
    if !meta.annotations.is_empty() {
        metadata["annotations"] = json!(meta.annotations);
    }
    Ok(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: "v1".into(),
                kind: kind.into(),
            }),
            raw,
        };
        [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
    }

    #[test]
    fn a_namespace_decodes_to_its_json() {
        let meta = ObjectMeta {
            name: "dev".into(),
            labels: BTreeMap::from([("team".into(), "a".into())]),
            ..ObjectMeta::default()
        };
        let body = envelope(
            "Namespace",
            Namespace {
                metadata: Some(meta),
            }
            .encode_to_vec(),
        );
        let json = decode(Kind::Namespace, &body).unwrap();
        assert_eq!(
            json["metadata"],
            json!({"name": "dev", "labels": {"team": "a"}})
        );
    }

    #[test]
    fn anything_else_is_refused_clearly() {
        let pod = envelope("Pod", Vec::new());
        assert!(matches!(
            decode(Kind::Namespace, &pod),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode(Kind::Namespace, b"{}"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode(Kind::Pod, &pod),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
