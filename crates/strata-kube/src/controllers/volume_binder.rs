//! The binder's loop: feeds the pure `Binder` from an informer, performs the
//! actions of each sync through the registry, and feeds the stored results
//! back, so the binder always decides on what is really stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::binder::{Action, Binder, Work};
use super::informer::{Informer, Next, typed};
use crate::kinds::Kind;
use crate::registry::Registry;
use crate::registry::events::{Recorder, Regarding};
use crate::store::{Change, Object, WatchEvent};

const KINDS: &[Kind] = &[
    Kind::PersistentVolume,
    Kind::PersistentVolumeClaim,
    Kind::StorageClass,
    Kind::Pod,
];

/// Upstream's resync period: a safety net, not how work is found.
const RESYNC: Duration = Duration::from_secs(15);

/// How many syncs run between looks at the watch, so the binder's caches
/// never fall far behind the store.
const BATCH: usize = 256;

pub fn run(registry: Registry, stop: Arc<AtomicBool>) {
    let recorder = Recorder::new(registry.clone(), "persistentvolume-controller");
    let (mut informer, objects) = Informer::start(&registry, KINDS);
    let mut binder = Binder::new();
    objects
        .iter()
        .for_each(|o| feed(&mut binder, Change::Added, o));
    let mut resynced = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        drain(&mut informer, &mut binder);
        let mut done = 0;
        while let Some(work) = binder.next_work() {
            perform(&registry, &recorder, &mut binder, work);
            done += 1;
            if done % BATCH == 0 {
                drain(&mut informer, &mut binder);
            }
        }
        if resynced.elapsed() >= RESYNC {
            binder.resync_all();
            resynced = Instant::now();
            continue;
        }
        match informer.next(Duration::from_millis(500)) {
            Next::Changed(event) => apply(&mut binder, &event),
            Next::Relisted(objects) => relist(&mut binder, &objects),
            Next::Idle => {}
        }
    }
}

fn drain(informer: &mut Informer, binder: &mut Binder) {
    loop {
        match informer.try_next() {
            Next::Changed(event) => apply(binder, &event),
            Next::Relisted(objects) => relist(binder, &objects),
            Next::Idle => return,
        }
    }
}

fn relist(binder: &mut Binder, objects: &[Object]) {
    *binder = Binder::new();
    objects.iter().for_each(|o| feed(binder, Change::Added, o));
}

fn apply(binder: &mut Binder, event: &WatchEvent) {
    feed(binder, event.change, &event.object);
}

fn feed(binder: &mut Binder, change: Change, object: &Object) {
    let key = &object.key;
    if change == Change::Deleted {
        match key.kind {
            Kind::PersistentVolume => binder.remove_volume(&key.name),
            Kind::PersistentVolumeClaim => binder.remove_claim(&key.namespace, &key.name),
            Kind::StorageClass => binder.remove_class(&key.name),
            Kind::Pod => binder.remove_pod(&key.namespace, &key.name),
            _ => {}
        }
        return;
    }
    match key.kind {
        Kind::PersistentVolume => typed(object).map(|pv| binder.upsert_volume(pv)),
        Kind::PersistentVolumeClaim => typed(object).map(|c| binder.upsert_claim(c)),
        Kind::StorageClass => typed(object).map(|sc| binder.upsert_class(sc)),
        Kind::Pod => typed(object).map(|pod| binder.upsert_pod(&pod)),
        _ => None,
    };
}

/// Runs one sync's actions in order; the first failed write stops them and
/// puts the work back (a later sync finishes the job, as upstream).
fn perform(registry: &Registry, recorder: &Recorder, binder: &mut Binder, work: Work) {
    let actions = binder.sync(&work, jiff::Timestamp::now());
    for action in actions {
        let saved = match action {
            Action::SaveVolume(pv) => save(registry, Kind::PersistentVolume, &pv),
            Action::SaveClaim(claim) => save(registry, Kind::PersistentVolumeClaim, &claim),
            Action::Event {
                regarding,
                type_,
                reason,
                message,
            } => {
                let kind = regarding
                    .kind
                    .as_deref()
                    .and_then(Kind::from_name)
                    .unwrap_or(Kind::PersistentVolumeClaim);
                let regarding = Regarding {
                    kind,
                    namespace: regarding.namespace.unwrap_or_default(),
                    name: regarding.name.unwrap_or_default(),
                    uid: regarding.uid.unwrap_or_default(),
                };
                recorder.record(&regarding, type_, reason, &message);
                continue;
            }
        };
        match saved {
            Some(object) => feed(binder, Change::Modified, &object),
            None => {
                binder.requeue(work);
                return;
            }
        }
    }
}

fn save<T: serde::Serialize>(registry: &Registry, kind: Kind, value: &T) -> Option<Object> {
    let body = serde_json::to_value(value).ok()?;
    match registry.save(kind, body) {
        Ok(object) => Some(object),
        Err(e) => {
            tracing::debug!("binder: saving a {kind}: {e}; retried");
            None
        }
    }
}
