//! Upstream defaults and validation for each kind, applied to JSON bodies as
//! they arrive from clients, plus the two small helpers the binder and the
//! tables share with them (access-mode strings, the default class).

mod defaults;
mod names;
mod pod;
mod storage;
#[cfg(test)]
mod tests;
mod validate;

use k8s_openapi::api::storage::v1::StorageClass;

pub use defaults::apply_defaults;
pub use validate::{validate_create, validate_update};

const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// Access modes as kubectl and the PV controller's index show them:
/// abbreviated, duplicates dropped, in the fixed order RWO, ROX, RWX, RWOP,
/// comma-joined. Unknown modes are left out.
pub fn accessmodes_string(modes: &[String]) -> String {
    access_modes_abbreviated(modes.iter().map(String::as_str))
}

/// [`accessmodes_string`] over any strings, so the tables can read modes
/// straight out of JSON.
pub(crate) fn access_modes_abbreviated<'a>(modes: impl Iterator<Item = &'a str> + Clone) -> String {
    const ORDER: [(&str, &str); 4] = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    let present: Vec<&str> = ORDER
        .iter()
        .filter(|(mode, _)| modes.clone().any(|m| m == *mode))
        .map(|(_, short)| *short)
        .collect();
    present.join(",")
}

/// Whether a class is marked as the default: either annotation is exactly
/// `"true"`.
pub fn is_default_class(sc: &StorageClass) -> bool {
    let annotations = sc.metadata.annotations.as_ref();
    is_default_annotated(|key| annotations.and_then(|a| a.get(key)).map(String::as_str))
}

/// [`is_default_class`] over any annotation lookup (the tables read JSON).
pub(crate) fn is_default_annotated<'a>(annotation: impl Fn(&str) -> Option<&'a str>) -> bool {
    [DEFAULT_CLASS_ANNOTATION, BETA_DEFAULT_CLASS_ANNOTATION]
        .into_iter()
        .any(|key| annotation(key) == Some("true"))
}
