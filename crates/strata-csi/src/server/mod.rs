//! `strata csi serve`: the CSI Identity, Controller and Node services on a
//! unix socket, backed by Strata's volumes.
//!
//! One process serves the controller, the node, or both (a Kubernetes
//! deployment may split them); Identity is always served. Requests are
//! checked and translated here; the work runs on [`workers::Workers`]
//! against [`Storage`]; every error becomes a gRPC status in one place
//! ([`crate::error`]).

mod controller;
mod identity;
mod node;
mod request;
mod workers;

use std::error::Error;
use std::future::Future;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use strata_serve::{SocketError, bind_socket, terminated};
use tokio_stream::wrappers::UnixListenerStream;

use crate::error::CsiError;
use crate::pb;
use crate::storage::Storage;
use workers::{InFlight, Workers};

pub use identity::DRIVER_NAME;
pub use request::TOPOLOGY_KEY;

/// Calls that may run at once (each on its own thread and database
/// connection); more queue.
const WORKERS: usize = 4;

/// How long calls in flight may run on after a shutdown.
const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What `strata csi serve` was asked to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    /// This node's ID, also its topology segment.
    pub node_id: String,
    pub controller: bool,
    pub node: bool,
    /// Offer ControllerPublishVolume/ControllerUnpublishVolume (attach
    /// required), for orchestrators that expect them.
    pub attach_required: bool,
    /// NodeGetInfo's limit; 0 for none.
    pub max_volumes_per_node: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store for the CSI driver: {0}")]
    Store(Box<dyn Error + Send + Sync>),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("serving CSI on {path}: {source}")]
    Serve { path: PathBuf, source: io::Error },
    #[error("cannot tidy up the store before serving: {0}")]
    Reconcile(CsiError),
}

/// What the services share.
pub struct Shared {
    config: Config,
    workers: Workers,
    inflight: InFlight,
}

impl Shared {
    /// UNIMPLEMENTED unless attach is required, as ControllerPublish's
    /// capability is then not offered.
    fn attach_required(&self) -> Result<(), CsiError> {
        match self.config.attach_required {
            true => Ok(()),
            false => Err(CsiError::Unimplemented(
                "ControllerPublishVolume is not offered: this driver needs no attach (serve with --attach-required to offer it)".into(),
            )),
        }
    }
}

/// A socket bound and storage opened, ready to serve.
pub struct Server {
    shared: Arc<Shared>,
    listener: UnixListener,
}

/// A server running on a thread of its own (see [`Server::spawn`]).
pub type RunningServer = strata_serve::Background<ServeError>;

impl Server {
    /// Opens the storage (one per worker, with `open`), tidies what a
    /// crash left (controller), then binds the socket.
    pub fn bind<F, E>(config: Config, open: F) -> Result<Server, ServeError>
    where
        F: Fn() -> Result<Storage, E> + Send + Sync + 'static,
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        let workers = Workers::start(WORKERS, open).map_err(ServeError::Store)?;
        if config.controller {
            reconcile(&workers)?;
        }
        let listener = bind_socket(&config.socket)?;
        let shared = Arc::new(Shared {
            config,
            workers,
            inflight: InFlight::default(),
        });
        Ok(Server { shared, listener })
    }

    /// Serves until SIGTERM or SIGINT, then removes the socket.
    pub fn run_until_signal(self) -> Result<(), ServeError> {
        self.run(terminated())
    }

    /// Serves on a background thread until [`RunningServer::stop`].
    pub fn spawn(self) -> RunningServer {
        strata_serve::Background::spawn(move |stopped| self.run(stopped))
    }

    fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let socket = self.shared.config.socket.clone();
        let served = self.serve(shutdown);
        let _ = std::fs::remove_file(&socket);
        served.map_err(|source| ServeError::Serve {
            path: socket,
            source,
        })
    }

    fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let shared = self.shared.clone();
        let served = runtime.block_on(async move {
            let incoming =
                UnixListenerStream::new(tokio::net::UnixListener::from_std(self.listener)?);
            let config = &shared.config;
            let mut router = tonic::transport::Server::builder().add_service(
                pb::identity_server::IdentityServer::new(identity::Identity(shared.clone())),
            );
            if config.controller {
                router = router.add_service(pb::controller_server::ControllerServer::new(
                    controller::Controller(shared.clone()),
                ));
            }
            if config.node {
                router = router
                    .add_service(pb::node_server::NodeServer::new(node::Node(shared.clone())));
            }
            // After the shutdown, calls in flight get GRACE to finish; a
            // client that holds its connection open without reading (one
            // whose runtime stopped) does not keep the server up.
            let (stopping, stopped) = tokio::sync::oneshot::channel();
            let served = router.serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                let _ = stopping.send(());
            });
            tokio::select! {
                served = served => served.map_err(io::Error::other),
                _ = async {
                    let _ = stopped.await;
                    tokio::time::sleep(GRACE).await;
                } => Ok(()),
            }
        });
        self.shared.workers.stop();
        served
    }
}

/// Snapshots a crash left half-made are removed before serving.
fn reconcile(workers: &Workers) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| ServeError::Reconcile(crate::error::io_err("starting", "a runtime")(e)))?;
    runtime
        .block_on(workers.run(|s| s.reconcile_snapshots()))
        .map(drop)
        .map_err(ServeError::Reconcile)
}
