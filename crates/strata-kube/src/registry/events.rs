//! Events about objects, aggregated as Kubernetes' recorder does: the same
//! (object, type, reason, message) again bumps `count` and `lastTimestamp`
//! of one Event instead of making another.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{Registry, meta};
use crate::error::ApiError;
use crate::kinds::Kind;

/// The object an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Regarding {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Regarding {
    /// Who `body` (an object of `kind`) is.
    pub fn of(kind: Kind, body: &Value) -> Regarding {
        let field = |f| meta::str_field(body, f).unwrap_or_default().to_string();
        Regarding {
            kind,
            namespace: field("namespace"),
            name: field("name"),
            uid: field("uid"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

type Fingerprint = (Regarding, EventType, String, String);

/// Records events for one component (e.g. `persistentvolume-controller`).
pub struct Recorder {
    registry: Registry,
    component: &'static str,
    /// Where each fingerprint's Event is: (namespace, name).
    recorded: Mutex<HashMap<Fingerprint, (String, String)>>,
}

impl Recorder {
    pub fn new(registry: Registry, component: &'static str) -> Recorder {
        Recorder {
            registry,
            component,
            recorded: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event; failing to is logged, never fatal (as upstream).
    pub fn record(&self, regarding: &Regarding, kind: EventType, reason: &str, message: &str) {
        if let Err(e) = self.try_record(regarding, kind, reason, message) {
            tracing::warn!("recording event {reason} for {}: {e}", regarding.name);
        }
    }

    fn try_record(
        &self,
        regarding: &Regarding,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), ApiError> {
        let fingerprint = (
            regarding.clone(),
            kind,
            reason.to_string(),
            message.to_string(),
        );
        let mut recorded = self.recorded.lock().expect("recorder lock");
        let now = meta::now();
        if let Some((namespace, name)) = recorded.get(&fingerprint)
            && let Ok(event) = self.registry.get(Kind::Event, namespace, name)
        {
            let mut body = (*event.body).clone();
            let count = body.get("count").and_then(Value::as_i64).unwrap_or(1);
            body["count"] = (count + 1).into();
            body["lastTimestamp"] = now.clone().into();
            let result =
                self.registry
                    .store()
                    .update(&event.key, body, Some(event.resource_version));
            if result.is_ok() {
                return Ok(());
            }
        }
        // Cluster-scoped objects' events live in `default`, as upstream.
        let namespace = if regarding.namespace.is_empty() {
            "default"
        } else {
            &regarding.namespace
        };
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{}.{:x}", regarding.name, nanos);
        let body = json!({
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": regarding.kind.as_str(),
                "apiVersion": regarding.kind.api_version(),
                "namespace": regarding.namespace,
                "name": regarding.name,
                "uid": regarding.uid,
            },
            "reason": reason,
            "message": message,
            "type": kind.as_str(),
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component},
            "reportingComponent": self.component,
        });
        let created = self.registry.create(Kind::Event, namespace, body, false)?;
        recorded.insert(fingerprint, (namespace.to_string(), created.key.name));
        Ok(())
    }
}
