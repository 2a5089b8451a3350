//! A controller's view of the store: everything of the kinds it cares
//! about, then every change to them, in order. When its watch falls behind
//! it gets the whole state again instead (as a Kubernetes informer relists).

use std::sync::Arc;
use std::time::Duration;

use crate::kinds::Kind;
use crate::registry::{Filter, Registry};
use crate::store::{Object, Watch, WatchEvent};

pub struct Informer {
    registry: Registry,
    kinds: &'static [Kind],
    watch: Watch,
    runtime: tokio::runtime::Runtime,
}

pub enum Next {
    Changed(Arc<WatchEvent>),
    /// The watch fell behind: this is the current state of every object of
    /// the informer's kinds; forget what you had.
    Relisted(Vec<Object>),
    Idle,
}

impl Informer {
    /// An informer and the current objects of `kinds`.
    pub fn start(registry: &Registry, kinds: &'static [Kind]) -> (Informer, Vec<Object>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime builds");
        let (watch, objects) = subscribe(registry, kinds);
        let informer = Informer {
            registry: registry.clone(),
            kinds,
            watch,
            runtime,
        };
        (informer, objects)
    }

    /// The next change, waiting at most `timeout` for one.
    pub fn next(&mut self, timeout: Duration) -> Next {
        let watch = &mut self.watch;
        let next = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, watch.next()).await });
        match next {
            Err(_) | Ok(Ok(None)) => Next::Idle,
            Ok(Ok(Some(event))) => self.accept(event),
            Ok(Err(_gone)) => self.relist(),
        }
    }

    /// The next change if one is waiting.
    pub fn try_next(&mut self) -> Next {
        match self.watch.try_next() {
            Ok(None) => Next::Idle,
            Ok(Some(event)) => self.accept(event),
            Err(_gone) => self.relist(),
        }
    }

    fn accept(&mut self, event: Arc<WatchEvent>) -> Next {
        if self.kinds.contains(&event.object.key.kind) {
            Next::Changed(event)
        } else {
            self.try_next()
        }
    }

    fn relist(&mut self) -> Next {
        let (watch, objects) = subscribe(&self.registry, self.kinds);
        self.watch = watch;
        Next::Relisted(objects)
    }
}

/// Watch first, then list: a change between the two shows up in both, and
/// consumers drop the older copy by resourceVersion.
fn subscribe(registry: &Registry, kinds: &[Kind]) -> (Watch, Vec<Object>) {
    let since = registry.store().revision();
    let watch = registry
        .watch(None, None, since)
        .expect("a watch from the current revision always starts");
    let objects = kinds
        .iter()
        .flat_map(|k| registry.list(*k, None, &Filter::default()).items)
        .collect();
    (watch, objects)
}

/// `object` as its k8s-openapi type; one that does not decode is logged
/// and skipped (the registry validated it, so this means a bug).
pub fn typed<T: serde::de::DeserializeOwned>(object: &Object) -> Option<T> {
    match serde_json::from_value((*object.body).clone()) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!("{} does not decode: {e}", object.key.display_name());
            None
        }
    }
}
