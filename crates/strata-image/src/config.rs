//! Image configs. The bytes are kept exactly as they came (the image ID is
//! their digest); this is a read view of the fields Strata needs, and a
//! writer for the configs Strata makes (sorted keys, so the same content is
//! always the same bytes).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use strata_store::Digest;

/// What Strata reads from a config. Unknown fields are ignored here and
/// kept in the stored bytes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigView {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<Value>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

impl ConfigView {
    pub fn parse(bytes: &[u8]) -> Result<ConfigView, String> {
        let view: ConfigView =
            serde_json::from_slice(bytes).map_err(|e| format!("image config is not valid: {e}"))?;
        if view.rootfs.kind != "layers" {
            return Err(format!(
                "image config rootfs type is '{}', expected 'layers'",
                view.rootfs.kind
            ));
        }
        Ok(view)
    }
}

/// The platform Strata runs on, in OCI terms.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A new single-history-entry config for a layer stack made by Strata.
pub struct NewConfig<'a> {
    pub diff_ids: &'a [Digest],
    pub created: &'a str,
    pub created_by: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// The container config (`Cmd`, `Env`, ...), Docker's field names.
    pub config: Map<String, Value>,
}

impl NewConfig<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut history = Map::new();
        history.insert("created".into(), json!(self.created));
        if let Some(by) = self.created_by {
            history.insert("created_by".into(), json!(by));
        }
        if let Some(c) = self.comment {
            history.insert("comment".into(), json!(c));
        }
        let value = json!({
            "architecture": host_architecture(),
            "os": "linux",
            "created": self.created,
            "config": Value::Object(self.config.clone()),
            "rootfs": {
                "type": "layers",
                "diff_ids": self.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            },
            "history": [Value::Object(history)],
        });
        serde_json::to_vec(&value).expect("json values serialize")
    }
}
