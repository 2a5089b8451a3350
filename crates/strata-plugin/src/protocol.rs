//! The bodies of Docker's volume plugin protocol, with Docker's JSON field
//! names. Client and server share these types, so the two cannot drift.
//!
//! Every response may also carry `Err`; that field lives in
//! [`ErrorResponse`] alone, because a client looks for it before it knows
//! whether the call succeeded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};
use strata_volume::driver::DriverVolume;

pub const ACTIVATE: &str = "Plugin.Activate";
pub const CREATE: &str = "VolumeDriver.Create";
pub const REMOVE: &str = "VolumeDriver.Remove";
pub const MOUNT: &str = "VolumeDriver.Mount";
pub const UNMOUNT: &str = "VolumeDriver.Unmount";
pub const PATH: &str = "VolumeDriver.Path";
pub const GET: &str = "VolumeDriver.Get";
pub const LIST: &str = "VolumeDriver.List";
pub const CAPABILITIES: &str = "VolumeDriver.Capabilities";

/// What `Plugin.Activate` must list for a plugin to be a volume driver.
pub const VOLUME_DRIVER: &str = "VolumeDriver";

/// The media type Docker sends in `Accept` (and plugins answer with).
pub const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// `Plugin.Activate` answer (its request body is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivateResponse {
    #[serde(rename = "Implements", default, deserialize_with = "null_as_default")]
    pub implements: Vec<String>,
}

/// `VolumeDriver.Create`. Docker sends `"Opts": null` when the user gave
/// no options (a nil Go map), so both sides must accept it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Opts", default)]
    pub opts: Option<BTreeMap<String, String>>,
}

/// The body of Remove, Path and Get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameRequest {
    #[serde(rename = "Name")]
    pub name: String,
}

/// The body of Mount and Unmount: `ID` names the caller (a container).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountRequest {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "ID")]
    pub id: String,
}

/// The body of List and Capabilities (`{}`), and the answer of Create,
/// Remove and Unmount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

/// The answer of Mount and Path. Path may leave it out or empty when the
/// volume has no place on the host yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountResponse {
    #[serde(
        rename = "Mountpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mountpoint: Option<PathBuf>,
}

/// One volume in Get and List answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(
        rename = "Mountpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mountpoint: Option<PathBuf>,
    /// Docker decodes this as a Go `time.Time`: anything but RFC 3339
    /// fails the whole call, so the type admits nothing else.
    #[serde(rename = "CreatedAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<jiff::Timestamp>,
    #[serde(
        rename = "Status",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub status: BTreeMap<String, serde_json::Value>,
}

/// `VolumeDriver.Get` answer; `Volume: null` means "not here".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetResponse {
    #[serde(rename = "Volume", default)]
    pub volume: Option<Volume>,
}

/// `VolumeDriver.List` answer. A Go plugin with no volumes sends
/// `"Volumes": null` (a nil slice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListResponse {
    #[serde(rename = "Volumes", default, deserialize_with = "null_as_default")]
    pub volumes: Vec<Volume>,
}

/// `VolumeDriver.Capabilities` answer. Docker reads a missing or unknown
/// scope as `local`, so the scope stays a string here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    #[serde(rename = "Capabilities", default)]
    pub capabilities: Option<Capabilities>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(rename = "Scope", default)]
    pub scope: String,
}

/// The `Err` every answer may carry; non-empty means the call failed,
/// whatever the HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    #[serde(rename = "Err", default)]
    pub err: String,
}

impl From<Volume> for DriverVolume {
    fn from(v: Volume) -> Self {
        DriverVolume {
            name: v.name,
            mountpoint: v.mountpoint.filter(|p| !p.as_os_str().is_empty()),
            created_at: v.created_at.map(|t| t.to_string()),
            status: v.status,
        }
    }
}

impl From<DriverVolume> for Volume {
    /// Leaves out a `created_at` that is not RFC 3339: Docker would fail
    /// the whole call over it.
    fn from(v: DriverVolume) -> Self {
        Volume {
            name: v.name,
            mountpoint: v.mountpoint,
            created_at: v.created_at.and_then(|t| t.parse().ok()),
            status: v.status,
        }
    }
}

/// Go encodes nil maps and slices as `null`; read that as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use std::fmt::Debug;

    /// Decodes `json` and checks it, then checks it encodes to `canonical`.
    fn check<T>(json: &str, expected: T, canonical: &str)
    where
        T: DeserializeOwned + Serialize + PartialEq + Debug,
    {
        let got: T = serde_json::from_str(json).unwrap();
        assert_eq!(got, expected, "decoding {json}");
        assert_eq!(serde_json::to_string(&got).unwrap(), canonical);
    }

    #[test]
    fn create_accepts_null_opts_and_a_trailing_newline() {
        let opts = BTreeMap::from([("size".to_string(), "5".to_string())]);
        let create = |opts| CreateRequest {
            name: "v".into(),
            opts,
        };
        check(
            "{\"Name\":\"v\",\"Opts\":null}\n",
            create(None),
            r#"{"Name":"v","Opts":null}"#,
        );
        check(
            r#"{"Name":"v"}"#,
            create(None),
            r#"{"Name":"v","Opts":null}"#,
        );
        check(
            r#"{"Name":"v","Opts":{"size":"5"}}"#,
            create(Some(opts)),
            r#"{"Name":"v","Opts":{"size":"5"}}"#,
        );
    }

    #[test]
    fn mount_uses_docker_field_names() {
        let mount = MountRequest {
            name: "v".into(),
            id: "c1".into(),
        };
        check(
            r#"{"Name":"v","ID":"c1"}"#,
            mount,
            r#"{"Name":"v","ID":"c1"}"#,
        );
        let none = MountResponse { mountpoint: None };
        check(r#"{"Mountpoint":null}"#, none.clone(), "{}");
        check("{}", none, "{}");
    }

    #[test]
    fn volumes_read_go_nils_and_write_rfc3339() {
        let volume = Volume {
            name: "v".into(),
            mountpoint: Some("/m".into()),
            created_at: Some("2024-05-01T10:00:00Z".parse().unwrap()),
            status: BTreeMap::new(),
        };
        check(
            r#"{"Volume":{"Name":"v","Mountpoint":"/m","CreatedAt":"2024-05-01T12:00:00+02:00","Status":null}}"#,
            GetResponse {
                volume: Some(volume),
            },
            r#"{"Volume":{"Name":"v","Mountpoint":"/m","CreatedAt":"2024-05-01T10:00:00Z"}}"#,
        );
        check(
            r#"{"Volume":null,"Err":""}"#,
            GetResponse { volume: None },
            r#"{"Volume":null}"#,
        );
        check(
            r#"{"Volumes":null}"#,
            ListResponse { volumes: vec![] },
            r#"{"Volumes":[]}"#,
        );
    }

    #[test]
    fn created_at_must_be_rfc3339() {
        let err = serde_json::from_str::<Volume>(r#"{"Name":"v","CreatedAt":"yesterday"}"#);
        assert!(err.is_err());
    }

    #[test]
    fn activate_and_capabilities_match_docker() {
        check(
            r#"{"Implements":["VolumeDriver"]}"#,
            ActivateResponse {
                implements: vec![VOLUME_DRIVER.into()],
            },
            r#"{"Implements":["VolumeDriver"]}"#,
        );
        check(
            r#"{"Capabilities":{"Scope":"global"}}"#,
            CapabilitiesResponse {
                capabilities: Some(Capabilities {
                    scope: "global".into(),
                }),
            },
            r#"{"Capabilities":{"Scope":"global"}}"#,
        );
        check(
            r#"{"Err":"size is required"}"#,
            ErrorResponse {
                err: "size is required".into(),
            },
            r#"{"Err":"size is required"}"#,
        );
    }
}
