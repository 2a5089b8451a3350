//! Where calls run: a few threads that each own a [`Storage`] (which keeps
//! `Rc` state and a database connection, so it never crosses threads), and
//! the set of volumes and snapshots a call is working on.
//!
//! Calls on different volumes run side by side; a second call on a volume
//! that one is already working on gets ABORTED at once, as the spec asks,
//! instead of queueing behind it.

use std::collections::HashSet;
use std::error::Error;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use tokio::sync::oneshot;

use crate::error::{CsiError, Result};
use crate::storage::Storage;

type Job = Box<dyn FnOnce(&Storage) + Send>;

/// Threads that run calls against their own [`Storage`].
pub struct Workers {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts `count` threads, each with the storage `open` makes. Fails
    /// if the first cannot open it.
    pub fn start<F, E>(count: usize, open: F) -> Result<Workers, Box<dyn Error + Send + Sync>>
    where
        F: Fn() -> Result<Storage, E> + Send + Sync + 'static,
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        let open = Arc::new(open);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::new();
        for _ in 0..count.max(1) {
            let (ready, is_ready) = mpsc::sync_channel(1);
            let (open, queue) = (open.clone(), queue.clone());
            threads.push(thread::spawn(move || {
                let storage = match open() {
                    Ok(storage) => storage,
                    Err(e) => return drop(ready.send(Err(e.into()))),
                };
                let _ = ready.send(Ok(()));
                loop {
                    let job = queue.lock().expect("the queue lock").recv();
                    match job {
                        Ok(job) => job(&storage),
                        Err(_) => return,
                    }
                }
            }));
            match is_ready.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("a worker panicked while opening the store".into()),
            }
        }
        Ok(Workers {
            jobs: Mutex::new(Some(jobs)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a worker and returns its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Storage) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |storage| {
            // A call that panics fails alone; the worker goes on. Storage
            // keeps nothing half-changed in memory (its state is on disk
            // and in SQLite), so it is safe to use after the unwind.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(storage)))
                .unwrap_or_else(|_| Err(panicked()));
            // A caller that went away no longer wants the answer.
            let _ = reply.send(result);
        });
        let sent = match &*self.jobs.lock().expect("the jobs lock") {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Lets the threads finish their calls and end.
    pub fn stop(&self) {
        self.jobs.lock().expect("the jobs lock").take();
        for thread in self.threads.lock().expect("the threads lock").drain(..) {
            let _ = thread.join();
        }
    }
}

fn panicked() -> CsiError {
    CsiError::Io {
        what: "serving",
        path: "a storage worker".into(),
        source: std::io::Error::other("the call panicked (see the log); it may be retried"),
    }
}

fn stopped() -> CsiError {
    CsiError::Io {
        what: "serving",
        path: "the storage workers".into(),
        source: std::io::Error::other("they have stopped; restart the server"),
    }
}

/// The volumes and snapshots calls are working on.
#[derive(Default)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

/// A claim on one name, given up when dropped.
pub struct Claim {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl InFlight {
    /// Claims `key` (a volume's or snapshot's name or ID), or ABORTED if
    /// another call holds it.
    pub fn claim(&self, what: &str, key: &str) -> Result<Claim> {
        let full = format!("{what}/{key}");
        if !self
            .0
            .lock()
            .expect("the in-flight lock")
            .insert(full.clone())
        {
            return Err(CsiError::Aborted(format!(
                "an operation on {what} {key} is already in progress; try again when it has finished"
            )));
        }
        Ok(Claim {
            set: self.0.clone(),
            key: full,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("the in-flight lock")
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_aborted_until_the_first_goes() {
        let inflight = InFlight::default();
        let first = inflight.claim("volume", "v1").unwrap();
        let again = inflight.claim("volume", "v1").err().unwrap();
        assert_eq!(again.code(), tonic::Code::Aborted, "{again}");
        inflight
            .claim("snapshot", "v1")
            .expect("other kinds are apart");
        inflight
            .claim("volume", "v2")
            .expect("other volumes are apart");
        drop(first);
        inflight.claim("volume", "v1").expect("released on drop");
    }
}
