//! `ps --filter`, with Docker's keys and Docker's rule for combining them
//! ([`strata_volume::filter::all_keys_match`]).

use std::str::FromStr;

use strata_image::Reference;
use strata_volume::filter::LabelFilter;

use crate::config::MountKind;
use crate::{Container, ContainerError, Status};

/// Docker's container states; only some happen here, but asking for any
/// of them is a fair question.
const STATES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `id=PREFIX`.
    Id(String),
    /// `name=TEXT`: the name contains TEXT.
    Name(String),
    Label(LabelFilter),
    /// `status=STATE`.
    Status(String),
    /// `exited=CODE`.
    Exited(i32),
    /// `ancestor=IMAGE`: made from the image as named, or by ID prefix.
    Ancestor(String),
    /// `volume=NAME` or `volume=/target`.
    Volume(String),
    /// `network=none|host`.
    Network(String),
}

impl FromStr for Filter {
    type Err = ContainerError;

    fn from_str(s: &str) -> Result<Filter, ContainerError> {
        let bad = |why: &str| {
            ContainerError::Invalid(format!(
                "bad filter '{s}': {why}; filters are id=, name=, label=KEY[=VALUE], \
                 status=, exited=CODE, ancestor=IMAGE, volume=, network="
            ))
        };
        let (key, value) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        Ok(match key {
            "id" => Filter::Id(value.to_owned()),
            "name" => Filter::Name(value.to_owned()),
            "label" => Filter::Label(LabelFilter::parse(value)),
            "status" if STATES.contains(&value) => Filter::Status(value.to_owned()),
            "status" => return Err(bad(&format!("the states are {}", STATES.join(", ")))),
            "exited" => Filter::Exited(value.parse().map_err(|_| bad("not an exit code"))?),
            "ancestor" => Filter::Ancestor(value.to_owned()),
            "volume" => Filter::Volume(value.to_owned()),
            "network" => Filter::Network(value.to_owned()),
            _ => return Err(bad("unknown key")),
        })
    }
}

impl Filter {
    /// Its key for `all_keys_match`: labels must all match.
    pub fn key(&self) -> Option<&'static str> {
        Some(match self {
            Filter::Id(_) => "id",
            Filter::Name(_) => "name",
            Filter::Label(..) => return None,
            Filter::Status(_) => "status",
            Filter::Exited(_) => "exited",
            Filter::Ancestor(_) => "ancestor",
            Filter::Volume(_) => "volume",
            Filter::Network(_) => "network",
        })
    }

    pub fn matches(&self, c: &Container, status: &Status) -> bool {
        let cfg = &c.config;
        match self {
            Filter::Id(prefix) => c.id().starts_with(prefix.as_str()),
            Filter::Name(text) => c.name().contains(text.as_str()),
            Filter::Label(label) => label.matches(&cfg.labels),
            Filter::Status(state) => status.word() == state,
            Filter::Exited(want) => matches!(status, Status::Exited { code, .. } if code == want),
            Filter::Ancestor(image) => {
                let id = image.trim_start_matches("sha256:");
                same_image(&cfg.image_name, image)
                    || (!id.is_empty() && c.row.image.trim_start_matches("sha256:").starts_with(id))
            }
            Filter::Volume(v) => cfg.mounts.iter().any(|m| {
                m.target == *v || matches!(&m.kind, MountKind::Volume { name, .. } if name == v)
            }),
            Filter::Network(n) => cfg.network == *n,
        }
    }
}

/// Whether two image names name the same image (`bb` is `bb:latest` and
/// `docker.io/library/bb`).
fn same_image(a: &str, b: &str) -> bool {
    let normal = |s: &str| {
        let r = s.parse::<Reference>().ok()?;
        Some((
            r.repository(),
            r.tag().unwrap_or("latest").to_owned(),
            r.digest().cloned(),
        ))
    };
    a == b || normal(a).is_some_and(|x| normal(b) == Some(x))
}
