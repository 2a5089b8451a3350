//! Fan-out of store changes: a bounded history, so a watch can start at an
//! older revision, and a broadcast channel for what comes after.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::{StoreError, WatchEvent};
use crate::kinds::Kind;

/// Recent changes and the channel live watchers listen on. A store owns one
/// and calls it under its write lock, so history, channel and revision agree.
pub struct WatchHub {
    history: VecDeque<Arc<WatchEvent>>,
    capacity: usize,
    sender: broadcast::Sender<Arc<WatchEvent>>,
}

impl WatchHub {
    /// Keeps the last `capacity` changes; a watcher that falls that far
    /// behind is ended with `Gone` and must list again, as with Kubernetes.
    pub fn new(capacity: usize) -> WatchHub {
        WatchHub {
            history: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            sender: broadcast::channel(capacity).0,
        }
    }

    /// Records a change that is already durable.
    pub fn publish(&mut self, event: WatchEvent) {
        let event = Arc::new(event);
        if self.history.len() == self.capacity {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// A watch of changes after `since`, when the store is at `revision`.
    pub fn subscribe(
        &self,
        kind: Option<Kind>,
        namespace: Option<&str>,
        since: u64,
        revision: u64,
    ) -> Result<Watch, StoreError> {
        let live = self.sender.subscribe();
        let backlog: VecDeque<_> = if since >= revision {
            VecDeque::new()
        } else {
            let oldest = self
                .history
                .front()
                .map(|e| e.object.resource_version)
                .unwrap_or(revision + 1);
            // Revisions are consecutive, so history covers `since` exactly
            // when it starts at or before the next one.
            if oldest > since + 1 {
                return Err(StoreError::Gone {
                    requested: since,
                    oldest: oldest.saturating_sub(1),
                });
            }
            self.history
                .iter()
                .filter(|e| e.object.resource_version > since)
                .cloned()
                .collect()
        };
        Ok(Watch {
            backlog,
            live,
            kind,
            namespace: namespace.map(str::to_string),
            after: since,
        })
    }
}

/// A stream of changes, in revision order, filtered by kind and namespace.
pub struct Watch {
    backlog: VecDeque<Arc<WatchEvent>>,
    live: broadcast::Receiver<Arc<WatchEvent>>,
    kind: Option<Kind>,
    namespace: Option<String>,
    after: u64,
}

impl Watch {
    /// The next change; `Ok(None)` once the store is gone, `Gone` if this
    /// watcher fell too far behind.
    pub async fn next(&mut self) -> Result<Option<Arc<WatchEvent>>, StoreError> {
        loop {
            let event = match self.backlog.pop_front() {
                Some(event) => event,
                None => match self.live.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Closed) => return Ok(None),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Err(StoreError::Gone {
                            requested: self.after,
                            oldest: self.after,
                        });
                    }
                },
            };
            if let Some(event) = self.accept(event) {
                return Ok(Some(event));
            }
        }
    }

    /// Like `next`, but returns `Ok(None)` at once when nothing is waiting.
    pub fn try_next(&mut self) -> Result<Option<Arc<WatchEvent>>, StoreError> {
        loop {
            let event = match self.backlog.pop_front() {
                Some(event) => event,
                None => match self.live.try_recv() {
                    Ok(event) => event,
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {
                        return Err(StoreError::Gone {
                            requested: self.after,
                            oldest: self.after,
                        });
                    }
                    Err(_) => return Ok(None),
                },
            };
            if let Some(event) = self.accept(event) {
                return Ok(Some(event));
            }
        }
    }

    fn accept(&mut self, event: Arc<WatchEvent>) -> Option<Arc<WatchEvent>> {
        let object = &event.object;
        // The live channel may repeat what the backlog already gave.
        if object.resource_version <= self.after {
            return None;
        }
        self.after = object.resource_version;
        let kind_ok = self.kind.is_none_or(|k| k == object.key.kind);
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|ns| ns == object.key.namespace);
        (kind_ok && ns_ok).then_some(event)
    }
}
