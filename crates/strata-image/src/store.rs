//! The store handle: one root folder, its database, content store, storage
//! driver and lock, and the rules for using them from several processes.
//!
//! - Reading commands take no lock: SQLite gives them a consistent view.
//! - Commands that add to the store hold the lock shared, and leave a mark
//!   in `writers/` until they finish cleanly. Before that, each tries to
//!   take the lock exclusive for a moment: if nobody else is working and a
//!   mark shows that a writer died (or the store predates marks), it tidies
//!   up what that run left (interrupted ingests, half-made snapshots,
//!   orphans), so a kill at any point is repaired by the next run, and a
//!   store nobody broke is not walked at every command.
//! - Removing layers or blobs others may be building on (rmi, prune,
//!   repair) holds it exclusive.
//! - A command that fails partway (a load whose second layer is corrupt)
//!   removes the layers it stored that no image uses when its handle is
//!   dropped, if nobody else is working; so a refused archive leaves the
//!   store as it was. Otherwise it leaves its mark, and the next command
//!   that writes tidies up.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashSet;
use std::path::Path;
use std::rc::Rc;

use strata_snapshot::{SnapshotError, Snapshotter, select};
use strata_store::content::ContentStore;
use strata_store::lock::{LockMode, StoreLock};
use strata_store::meta::Db;
use strata_store::meta::images as meta;
use strata_store::trash::Trash;
use strata_store::writers::Writers;
use strata_store::{Digest, Layout};

use crate::error::{Result, io_at};

#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// `--storage-driver`: which driver a new store uses; an existing store
    /// must have been made with it.
    pub storage_driver: Option<String>,
}

pub struct Store {
    pub(crate) layout: Layout,
    pub(crate) db: Rc<Db>,
    pub(crate) content: ContentStore,
    requested_driver: Option<String>,
    snapshots: OnceCell<Box<dyn Snapshotter>>,
    lock: RefCell<StoreLock>,
    writers: Writers,
    /// Layers this handle stored; those no image uses when it is dropped
    /// were left by a failed command.
    stored_layers: RefCell<Vec<Digest>>,
    /// Another process empties the trash after this one ([`Store::defer_tail`]).
    trash_deferred: Cell<bool>,
}

impl Store {
    /// Opens the store at `root`, creating it if needed. Cheap: the storage
    /// driver is only opened when a command needs it.
    pub fn open(root: &Path, opts: OpenOptions) -> Result<Store> {
        use std::os::unix::fs::DirBuilderExt;
        let layout = Layout::new(root);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_at(root))?;
        let tmp = layout.tmp();
        std::fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        let db = Rc::new(Db::open(&layout.db())?);
        let content = ContentStore::open(&layout.content())?;
        let lock = StoreLock::open(&layout.lock()).map_err(io_at(layout.lock()))?;
        if let Some(requested) = &opts.storage_driver {
            // Refuse a mismatch up front, even for commands that never
            // open the driver.
            if let Some(recorded) = select::recorded(&db)?
                && &recorded != requested
            {
                return Err(SnapshotError::from(select::SelectError::Mismatch {
                    root: root.display().to_string(),
                    recorded,
                    requested: requested.clone(),
                })
                .into());
            }
            if !select::DRIVERS.contains(&requested.as_str()) {
                return Err(
                    SnapshotError::from(select::SelectError::Unknown(requested.clone())).into(),
                );
            }
        }
        Ok(Store {
            writers: Writers::new(&layout.writers()),
            layout,
            db,
            content,
            requested_driver: opts.storage_driver,
            snapshots: OnceCell::new(),
            lock: RefCell::new(lock),
            stored_layers: RefCell::new(Vec::new()),
            trash_deferred: Cell::new(false),
        })
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn db(&self) -> &Rc<Db> {
        &self.db
    }

    /// The storage driver (chosen and recorded on first use of a new store).
    pub fn snapshots(&self) -> Result<&dyn Snapshotter> {
        if let Some(s) = self.snapshots.get() {
            return Ok(s.as_ref());
        }
        let s = select::open(
            self.layout.root(),
            &self.layout.tmp(),
            self.db.clone(),
            self.requested_driver.as_deref(),
        )?;
        Ok(self.snapshots.get_or_init(|| s).as_ref())
    }

    /// Where removed folders wait to be deleted ([`strata_store::trash`]).
    pub fn trash(&self) -> Trash {
        Trash::new(&self.layout.trash())
    }

    /// Leaves the tail of this handle's work to a process that outlives
    /// it (a container's monitor): syncing the log of the batches that
    /// left their sync ([`Db::leave_sync`]), then emptying the trash. So
    /// this command returns without waiting for the disk.
    pub fn defer_tail(&self) {
        self.db.sync_handed_over();
        self.trash_deferred.set(true);
    }

    /// The driver the store was made with, without opening it.
    pub fn recorded_driver(&self) -> Result<Option<String>> {
        Ok(select::recorded(&self.db)?)
    }

    /// Prepares for a command that adds to the store: tidies up after
    /// crashed runs if nobody else is working, leaves this command's mark,
    /// then holds the lock shared.
    pub fn begin_write(&self) -> Result<()> {
        let lock_err = |e| io_at(self.layout.lock())(e);
        let writers_err = |e| io_at(self.layout.writers())(e);
        if self.lock.borrow().held().is_some() {
            return Ok(());
        }
        let exclusive = self
            .lock
            .borrow_mut()
            .try_acquire(LockMode::Exclusive)
            .map_err(lock_err)?;
        if exclusive && self.writers.interrupted().map_err(writers_err)? {
            let report = self.check(&crate::check::CheckOptions {
                repair: true,
                verify_digests: false,
            })?;
            for p in report.problems.iter().filter(|p| p.repaired) {
                tracing::warn!("tidied up after an interrupted run: {}", p.what);
            }
            self.writers.clear().map_err(writers_err)?;
        }
        self.writers.enter().map_err(writers_err)?;
        self.lock
            .borrow_mut()
            .acquire(LockMode::Shared, || waiting("shared"))
            .map_err(lock_err)
    }

    /// Holds the lock exclusive, for removing what others may build on;
    /// leaves this command's mark, as a writer does, so a remover killed
    /// halfway is tidied after too.
    pub fn begin_exclusive(&self) -> Result<()> {
        if self.lock.borrow().held() == Some(LockMode::Exclusive) {
            return Ok(());
        }
        let mut lock = self.lock.borrow_mut();
        if lock.held().is_some() {
            lock.release().map_err(io_at(self.layout.lock()))?;
        }
        lock.acquire(LockMode::Exclusive, || waiting("exclusive"))
            .map_err(io_at(self.layout.lock()))?;
        self.writers
            .enter()
            .map_err(|e| io_at(self.layout.writers())(e))
    }
}

impl Store {
    /// Notes a layer this handle stored (see [`Store::drop_unused_layers`]).
    pub(crate) fn note_stored_layer(&self, chain_id: &Digest) {
        self.stored_layers.borrow_mut().push(chain_id.clone());
    }

    /// Removes the layers this handle stored that no image uses: what a
    /// command that failed partway left. Only when no other process is
    /// working, since another load may be building on them; otherwise
    /// (false) the next command that writes tidies up.
    fn drop_unused_layers(&self) -> Result<bool> {
        let stored = std::mem::take(&mut *self.stored_layers.borrow_mut());
        if stored.is_empty() {
            return Ok(true);
        }
        let unused: HashSet<Digest> = self
            .db
            .read(|tx| meta::unreferenced_layers(tx))?
            .into_iter()
            .map(|l| l.chain_id)
            .collect();
        if !stored.iter().any(|l| unused.contains(l)) {
            return Ok(true);
        }
        {
            let mut lock = self.lock.borrow_mut();
            if lock.held() != Some(LockMode::Exclusive) {
                if lock.held().is_some() {
                    lock.release().map_err(io_at(self.layout.lock()))?;
                }
                if !lock
                    .try_acquire(LockMode::Exclusive)
                    .map_err(io_at(self.layout.lock()))?
                {
                    return Ok(false);
                }
            }
        }
        // Nobody else is working: whatever no image uses is garbage.
        self.collect_garbage()?;
        Ok(true)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let tidied = match self.drop_unused_layers() {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!("removing the layers a failed command stored: {e}");
                false
            }
        };
        // What the trash holds is deleted only once the commits that let
        // it go are durable.
        if let Err(e) = self.db.sync_pending() {
            tracing::warn!("{e}");
            return;
        }
        let writer = self.lock.borrow().held().is_some();
        if writer
            && !self.trash_deferred.get()
            && let Err(e) = self.trash().empty()
        {
            // The mark stays, so the next writer's repair empties it.
            tracing::warn!("{}: {e}", self.layout.trash().display());
            return;
        }
        // Done, nothing left behind: the mark can go.
        if tidied && let Err(e) = self.writers.leave() {
            tracing::warn!("{}: {e}", self.layout.writers().display());
        }
    }
}

fn waiting(mode: &str) {
    eprintln!("waiting for another strata process to finish with the store ({mode} lock)...");
}
