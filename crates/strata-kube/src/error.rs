//! Every way an API request fails, and its one translation into a
//! Kubernetes `metav1.Status` (what kubectl prints as
//! `Error from server (<Reason>): <message>`).

use serde_json::{Value, json};

use crate::kinds::Kind;
use crate::store::StoreError;

/// One field-level problem of an Invalid object, as in
/// `status.details.causes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueForbidden`,
    /// `FieldValueNotSupported`, `FieldValueDuplicate`.
    pub reason: &'static str,
    /// The field path, e.g. `spec.accessModes`.
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn required(field: &str) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    pub fn invalid(field: &str, value: impl std::fmt::Display, why: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: \"{value}\": {why}"),
        }
    }

    pub fn forbidden(field: &str, why: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {why}"),
        }
    }

    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
        }
    }

    /// `field: message`, as Kubernetes joins them.
    pub fn to_line(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{} \"{name}\" not found", resource(*.kind))]
    NotFound { kind: Kind, name: String },
    #[error("{} \"{name}\" already exists", resource(*.kind))]
    AlreadyExists { kind: Kind, name: String },
    #[error(
        "Operation cannot be fulfilled on {} \"{name}\": {why}",
        resource(*.kind)
    )]
    Conflict {
        kind: Kind,
        name: String,
        why: String,
    },
    #[error("{} \"{name}\" is invalid: {}", .kind, join_causes(.causes))]
    Invalid {
        kind: Kind,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed patch that cannot apply to the object.
    #[error("{0}")]
    PatchFailed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Gone(String),
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("Unauthorized")]
    Unauthorized,
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn resource(kind: Kind) -> String {
    let info = kind.info();
    if info.group.is_empty() {
        info.plural.to_string()
    } else {
        format!("{}.{}", info.plural, info.group)
    }
}

fn join_causes(causes: &[Cause]) -> String {
    let lines: Vec<String> = causes.iter().map(Cause::to_line).collect();
    if lines.len() == 1 {
        lines[0].clone()
    } else {
        format!("[{}]", lines.join(", "))
    }
}

impl ApiError {
    pub fn invalid(kind: Kind, name: &str, causes: Vec<Cause>) -> ApiError {
        ApiError::Invalid {
            kind,
            name: name.to_string(),
            causes,
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(error.to_string())
    }

    /// The HTTP status code and the `reason` of the Status.
    pub fn code_and_reason(&self) -> (u16, &'static str) {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => (404, "NotFound"),
            ApiError::AlreadyExists { .. } => (409, "AlreadyExists"),
            ApiError::Conflict { .. } => (409, "Conflict"),
            ApiError::Invalid { .. } => (422, "Invalid"),
            ApiError::BadRequest(_) => (400, "BadRequest"),
            ApiError::PatchFailed(_) => (422, "Invalid"),
            ApiError::Forbidden(_) => (403, "Forbidden"),
            ApiError::Gone(_) => (410, "Expired"),
            ApiError::MethodNotAllowed => (405, "MethodNotAllowed"),
            ApiError::Unauthorized => (401, "Unauthorized"),
            ApiError::UnsupportedMediaType(_) => (415, "UnsupportedMediaType"),
            ApiError::Internal(_) => (500, "InternalError"),
        }
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let (code, reason) = self.code_and_reason();
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "code": code,
        });
        let details = match self {
            ApiError::NotFound { kind, name }
            | ApiError::AlreadyExists { kind, name }
            | ApiError::Conflict { kind, name, .. } => Some(json!({
                "name": name, "group": kind.info().group, "kind": kind.info().plural,
            })),
            ApiError::Invalid { kind, name, causes } => Some(json!({
                "name": name, "group": kind.info().group, "kind": kind.info().kind,
                "causes": causes.iter().map(|c| json!({
                    "reason": c.reason, "message": c.message, "field": c.field,
                })).collect::<Vec<_>>(),
            })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}

impl From<crate::patch::PatchError> for ApiError {
    fn from(error: crate::patch::PatchError) -> ApiError {
        match error.status_code() {
            422 => ApiError::PatchFailed(error.to_string()),
            _ => ApiError::BadRequest(error.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(key) => ApiError::NotFound {
                kind: key.kind,
                name: key.name,
            },
            StoreError::AlreadyExists(key) => ApiError::AlreadyExists {
                kind: key.kind,
                name: key.name,
            },
            StoreError::Conflict { ref key, .. } => ApiError::Conflict {
                kind: key.kind,
                name: key.name.clone(),
                why: error.to_string(),
            },
            StoreError::Gone { .. } => ApiError::Gone(error.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: ApiError, code: u16, message: &str) {
        let status = error.to_status();
        assert_eq!(status["code"], code);
        assert_eq!(status["message"], message);
    }

    #[test]
    fn statuses_read_like_kubernetes() {
        check(
            ApiError::NotFound {
                kind: Kind::PersistentVolumeClaim,
                name: "myclaim".into(),
            },
            404,
            "persistentvolumeclaims \"myclaim\" not found",
        );
        check(
            ApiError::NotFound {
                kind: Kind::StorageClass,
                name: "fast".into(),
            },
            404,
            "storageclasses.storage.k8s.io \"fast\" not found",
        );
        check(
            ApiError::invalid(
                Kind::PersistentVolumeClaim,
                "c",
                vec![Cause::required("spec.accessModes")],
            ),
            422,
            "PersistentVolumeClaim \"c\" is invalid: spec.accessModes: Required value",
        );
    }
}
