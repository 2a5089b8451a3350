//! Watch streams: newline-delimited `{"type": ..., "object": ...}` events
//! over a chunked response, from a resourceVersion on.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use super::App;
use super::handlers::Params;
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::registry::Filter;
use crate::store::{Change, Object, Watch};
use crate::table::{self, IncludeObject};

/// How long a watch runs when the client names no timeout (upstream picks
/// 30–60 minutes at random).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Starts a watch of `kind` for the client.
pub fn stream(
    app: &Arc<App>,
    kind: Kind,
    namespace: Option<&str>,
    filter: Filter,
    params: &Params,
    as_table: bool,
) -> Result<Response, ApiError> {
    let registry = &app.registry;
    let rv = params
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let initial_events = params.get("sendInitialEvents").is_some_and(|v| v == "true");
    // "" and "0" mean "what exists now, then changes" (as upstream), and so
    // does sendInitialEvents.
    let (initial, since) = if rv.is_empty() || rv == "0" || initial_events {
        let listing = registry.list(kind, namespace, &filter);
        (Some(listing.items), listing.revision)
    } else {
        let since = rv.parse().map_err(|_| {
            ApiError::BadRequest(format!("resourceVersion \"{rv}\" is not a number"))
        })?;
        (None, since)
    };
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let events = Events { kind, as_table };
    let (sender, receiver) = mpsc::channel::<Bytes>(256);
    let mut first = Vec::new();
    let watch = match registry.watch(Some(kind), namespace, since) {
        Ok(watch) => Some(watch),
        Err(error) => {
            first.push(events.error(&error));
            None
        }
    };
    if let Some(items) = initial.filter(|_| watch.is_some()) {
        first.extend(items.iter().map(|o| events.line(Change::Added, o)));
        if initial_events {
            first.push(events.initial_end(since));
        }
    }
    tokio::spawn(async move {
        for line in first {
            if sender.send(line).await.is_err() {
                return;
            }
        }
        if let Some(watch) = watch {
            let _ = tokio::time::timeout(timeout, forward(watch, filter, events, sender)).await;
        }
    });
    let body =
        Body::from_stream(ReceiverStream::new(receiver).map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn forward(mut watch: Watch, filter: Filter, events: Events, sender: mpsc::Sender<Bytes>) {
    loop {
        let line = match watch.next().await {
            Ok(Some(event)) => {
                if !filter.matches(&event.object.body) {
                    continue;
                }
                events.line(event.change, &event.object)
            }
            Ok(None) => return,
            Err(error) => {
                let _ = sender.send(events.error(&error.into())).await;
                return;
            }
        };
        if sender.send(line).await.is_err() {
            return;
        }
    }
}

/// Renders events for one watch.
#[derive(Clone, Copy)]
struct Events {
    kind: Kind,
    as_table: bool,
}

impl Events {
    fn line(&self, change: Change, object: &Object) -> Bytes {
        let object = if self.as_table {
            table::table(
                self.kind,
                std::slice::from_ref(object),
                object.resource_version,
                jiff::Timestamp::now(),
                IncludeObject::Metadata,
            )
        } else {
            (*object.body).clone()
        };
        event_line(change.as_str(), &object)
    }

    fn error(&self, error: &ApiError) -> Bytes {
        event_line("ERROR", &error.to_status())
    }

    /// The bookmark that ends the initial events of a watch-list.
    fn initial_end(&self, revision: u64) -> Bytes {
        let object = json!({
            "kind": self.kind.as_str(),
            "apiVersion": self.kind.api_version(),
            "metadata": {
                "resourceVersion": revision.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        });
        event_line("BOOKMARK", &object)
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}
