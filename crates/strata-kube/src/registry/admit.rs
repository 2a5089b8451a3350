//! Admission that needs other objects: the default StorageClass for new
//! claims, the protection finalizers, and the resize gate.

use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::Value;

use super::Registry;
use super::meta;
use crate::admission;
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::quantity::parse_quantity;
use crate::store::ObjectKey;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

impl Registry {
    pub(super) fn admit_create(&self, kind: Kind, body: &mut Value) -> Result<(), ApiError> {
        match kind {
            Kind::PersistentVolumeClaim => {
                if body.pointer("/spec/storageClassName").is_none()
                    && meta::annotation(body, BETA_CLASS).is_none()
                    && let Some(class) = self.default_class()
                    && let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut)
                {
                    spec.insert("storageClassName".into(), class.into());
                }
                meta::add_finalizer(body, PVC_PROTECTION);
            }
            Kind::PersistentVolume => meta::add_finalizer(body, PV_PROTECTION),
            _ => {}
        }
        Ok(())
    }

    pub(super) fn admit_update(
        &self,
        kind: Kind,
        old: &Value,
        new: &mut Value,
    ) -> Result<(), ApiError> {
        if kind == Kind::PersistentVolumeClaim && grows(old, new) {
            self.admit_resize(new)?;
        }
        Ok(())
    }

    /// Only claims of a class that allows expansion may grow.
    fn admit_resize(&self, claim: &Value) -> Result<(), ApiError> {
        let class = claim
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let allowed = !class.is_empty()
            && self
                .store
                .get(&ObjectKey::new(Kind::StorageClass, "", class))
                .and_then(|sc| sc.body.get("allowVolumeExpansion").and_then(Value::as_bool))
                .unwrap_or(false);
        if allowed {
            return Ok(());
        }
        let name = meta::str_field(claim, "name").unwrap_or_default();
        Err(ApiError::Forbidden(format!(
            "persistentvolumeclaims \"{name}\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
        )))
    }

    /// The default StorageClass's name, if one is marked.
    pub fn default_class(&self) -> Option<String> {
        let classes: Vec<StorageClass> = self
            .store
            .list(Kind::StorageClass, None)
            .items
            .iter()
            .filter_map(|o| serde_json::from_value((*o.body).clone()).ok())
            .collect();
        choose_default_class(&classes).and_then(|c| c.metadata.name.clone())
    }
}

/// Upstream's choice among classes marked default: the newest, then the
/// first by name.
pub fn choose_default_class<'a>(
    classes: impl IntoIterator<Item = &'a StorageClass>,
) -> Option<&'a StorageClass> {
    classes
        .into_iter()
        .filter(|c| admission::is_default_class(c))
        .min_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.clone().map(|t| t.0);
            created(b)
                .cmp(&created(a))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        })
}

fn requested_storage(claim: &Value) -> Option<crate::quantity::Quantity> {
    let text = claim
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)?;
    parse_quantity(text).ok()
}

/// Whether an update raises a claim's storage request.
fn grows(old: &Value, new: &Value) -> bool {
    match (requested_storage(old), requested_storage(new)) {
        (Some(before), Some(after)) => after > before,
        _ => false,
    }
}
