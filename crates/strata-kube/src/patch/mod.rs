//! Patches the API server applies to stored objects: JSON patch (RFC 6902),
//! JSON merge patch (RFC 7386), strategic merge patch (a merge patch that
//! knows which lists of each kind merge by key, as `kubectl apply` needs)
//! and a minimal server-side apply: the applied manifest strategic-merged
//! onto the live object, for a single field manager, without
//! `managedFields` bookkeeping.
//!
//! Everything here is pure: bytes and JSON in, JSON out.

mod json_patch;
mod merge;
mod schema;
mod strategic;

use serde_json::Value;

use crate::kinds::Kind;

/// The patch formats, named by the request's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchKind {
    pub const ALL: [PatchKind; 4] = [
        PatchKind::Json,
        PatchKind::Merge,
        PatchKind::StrategicMerge,
        PatchKind::Apply,
    ];

    /// The media type a client sends this patch as.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchKind::Json => "application/json-patch+json",
            PatchKind::Merge => "application/merge-patch+json",
            PatchKind::StrategicMerge => "application/strategic-merge-patch+json",
            PatchKind::Apply => "application/apply-patch+yaml",
        }
    }

    /// The patch kind of a `Content-Type` header; parameters such as
    /// `; charset=utf-8` are ignored and media types are case-insensitive.
    pub fn from_content_type(content_type: &str) -> Option<PatchKind> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        PatchKind::ALL
            .into_iter()
            .find(|kind| kind.content_type().eq_ignore_ascii_case(media_type))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("the patch body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("the apply body is neither valid JSON nor valid YAML: {0}")]
    InvalidYaml(#[source] Box<serde_saphyr::Error>),
    /// The body parsed, but is not the object this patch kind needs; names
    /// what was expected to be an object.
    #[error("{0} must be a JSON object")]
    NotAnObject(&'static str),
    #[error(
        "a JSON patch must be a list of operations, e.g. [{{\"op\": \"replace\", \"path\": \"/spec/x\", \"value\": 1}}]"
    )]
    NotAnOperationList,
    /// A JSON patch operation that is malformed or does not apply.
    #[error("JSON patch operation {index} (op \"{op}\", path \"{path}\"): {reason}")]
    Operation {
        index: usize,
        op: String,
        path: String,
        reason: String,
    },
    /// A malformed strategic merge patch; `field` is where, as
    /// `spec.containers[].env`.
    #[error("invalid strategic merge patch at {field}: {reason}")]
    Strategic { field: String, reason: String },
    #[error(
        "the patch replaced the whole object with something that is not a JSON object; patch its fields instead"
    )]
    ResultNotAnObject,
}

impl PatchError {
    /// The HTTP status the API server answers with, as upstream does: 400
    /// when the patch itself is malformed, 422 when a JSON patch does not
    /// apply to this object or the result is no object.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::Operation { .. } | PatchError::ResultNotAnObject => 422,
            _ => 400,
        }
    }
}

/// `target` patched by `patch_body`, which is in the format `kind_of_patch`.
/// `kind` says which lists a strategic merge (or apply) merges by key.
pub fn apply_patch(
    kind: Kind,
    kind_of_patch: PatchKind,
    target: &Value,
    patch_body: &[u8],
) -> Result<Value, PatchError> {
    let patched = match kind_of_patch {
        PatchKind::Json => json_patch::apply(target, &parse_json(patch_body)?)?,
        PatchKind::Merge => merge::merge_patch(target.clone(), &parse_json(patch_body)?),
        PatchKind::StrategicMerge => strategic::merge(kind, target, &parse_json(patch_body)?)?,
        PatchKind::Apply => strategic::merge(kind, target, &parse_apply_body(patch_body)?)?,
    };
    if patched.is_object() {
        Ok(patched)
    } else {
        Err(PatchError::ResultNotAnObject)
    }
}

/// The manifest of a server-side apply (YAML or JSON), for when the object
/// does not exist yet and the API server creates it from the manifest.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, PatchError> {
    // JSON first: it is what kubectl sends, and JSON parses numbers exactly.
    let manifest: Value = match serde_json::from_slice(body) {
        Ok(manifest) => manifest,
        Err(_) => {
            serde_saphyr::from_slice(body).map_err(|e| PatchError::InvalidYaml(Box::new(e)))?
        }
    };
    if manifest.is_object() {
        Ok(manifest)
    } else {
        Err(PatchError::NotAnObject("the apply body"))
    }
}

fn parse_json(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(PatchError::InvalidJson)
}
