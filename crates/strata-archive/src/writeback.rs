//! Starting the writeback of extracted files in the background.
//!
//! A layer becomes durable through one `syncfs` once it is applied; whatever
//! is still dirty then is written while nothing else happens. Handing each
//! finished file to a thread that starts its writeback (`sync_file_range`,
//! which does not wait for the disk) and closes it lets the disk work while
//! the next files are extracted, and keeps both calls off the applying
//! thread.

use rustix::fd::AsFd;
use std::fs::File;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::{self, JoinHandle};

use crate::fsops;

/// Files waiting for the thread; each is an open descriptor, so few.
const QUEUE: usize = 64;

pub struct Writeback {
    tx: Option<SyncSender<File>>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts the thread. Without one (it could not be started), files are
    /// only closed and the final `syncfs` writes them.
    pub fn start() -> Writeback {
        let (tx, rx) = sync_channel::<File>(QUEUE);
        let thread = thread::Builder::new()
            .name("layer-writeback".into())
            .spawn(move || {
                for file in rx {
                    fsops::start_writeback(file.as_fd());
                }
            })
            .ok();
        Writeback {
            tx: thread.is_some().then_some(tx),
            thread,
        }
    }

    /// Hands over a file whose content is all written. When the thread is
    /// behind, the file is simply closed here: the final `syncfs` writes it.
    pub fn file(&self, file: File) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(file);
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
