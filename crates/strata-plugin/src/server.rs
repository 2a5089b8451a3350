//! Offering a [`VolumeDriver`] to Docker as a volume plugin on a unix
//! socket.
//!
//! Strata's drivers keep `Rc` state and are not `Send`, so the driver
//! lives on one thread of its own; HTTP handlers hand it each call over a
//! channel and await the answer. Calls are served one at a time.

use std::error::Error;
use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use axum::Router;
use axum::extract::{Path as Route, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::Serialize;
use strata_serve::{SocketError, bind_socket, terminated};
use strata_volume::driver::{DriverError, VolumeDriver};
use tokio::sync::oneshot;

use crate::protocol::*;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the volume driver: {0}")]
    Driver(Box<dyn Error + Send + Sync>),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// A call for the driver thread, with where to send its answer: the JSON
/// body, or the message for `Err`.
struct Job {
    call: Call,
    reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// A parsed request.
enum Call {
    Create(CreateRequest),
    Remove(NameRequest),
    Mount(MountRequest),
    Unmount(MountRequest),
    Path(NameRequest),
    Get(NameRequest),
    List,
    Capabilities,
}

impl Call {
    /// None for a method this server does not offer.
    fn parse(method: &str, body: &[u8]) -> Result<Option<Call>, serde_json::Error> {
        let call = match method {
            CREATE => Call::Create(serde_json::from_slice(body)?),
            REMOVE => Call::Remove(serde_json::from_slice(body)?),
            MOUNT => Call::Mount(serde_json::from_slice(body)?),
            UNMOUNT => Call::Unmount(serde_json::from_slice(body)?),
            PATH => Call::Path(serde_json::from_slice(body)?),
            GET => Call::Get(serde_json::from_slice(body)?),
            // Their bodies carry nothing, so any body will do.
            LIST => Call::List,
            CAPABILITIES => Call::Capabilities,
            _ => return Ok(None),
        };
        Ok(Some(call))
    }
}

/// A socket bound and a driver made, ready to serve. One dropped without
/// running leaves its socket; the next `bind` replaces it as stale.
pub struct Server {
    socket: PathBuf,
    listener: UnixListener,
    jobs: mpsc::Sender<Job>,
    driver: JoinHandle<()>,
}

/// A server running on a thread of its own (see [`Server::spawn`]).
pub type RunningServer = strata_serve::Background<ServeError>;

/// Serves `make_driver`'s driver on `socket` until SIGTERM or SIGINT.
pub fn serve_blocking<F, E>(socket: &Path, make_driver: F) -> Result<(), ServeError>
where
    F: FnOnce() -> Result<Box<dyn VolumeDriver>, E> + Send + 'static,
    E: Into<Box<dyn Error + Send + Sync>>,
{
    Server::bind(socket, make_driver)?.run_until_signal()
}

impl Server {
    /// Makes the driver on its own thread, then binds `socket` (making its
    /// folder, replacing a stale socket). A driver that cannot be made
    /// leaves no socket behind.
    pub fn bind<F, E>(socket: &Path, make_driver: F) -> Result<Server, ServeError>
    where
        F: FnOnce() -> Result<Box<dyn VolumeDriver>, E> + Send + 'static,
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        let (jobs, driver) = start_driver(make_driver)?;
        let listener = bind_socket(socket)?;
        Ok(Server {
            socket: socket.into(),
            listener,
            jobs,
            driver,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
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
        let Server {
            socket,
            listener,
            jobs,
            driver,
        } = self;
        let served = serve_on(listener, jobs, shutdown);
        // A socket left behind would make clients wait for a dead plugin.
        let _ = fs::remove_file(&socket);
        // The last job senders went with the runtime, so the driver thread
        // ends. A panic there was printed already, and every call after it
        // was answered with an error.
        let _ = driver.join();
        served.map_err(|source| ServeError::Io {
            action: "serve on",
            path: socket,
            source,
        })
    }
}

/// Serves until `shutdown`, on a runtime that is gone when this returns.
fn serve_on(
    listener: UnixListener,
    jobs: mpsc::Sender<Job>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let app = Router::new()
            .route("/{method}", post(handle))
            .with_state(jobs);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    })
}

fn start_driver<F, E>(make_driver: F) -> Result<(mpsc::Sender<Job>, JoinHandle<()>), ServeError>
where
    F: FnOnce() -> Result<Box<dyn VolumeDriver>, E> + Send + 'static,
    E: Into<Box<dyn Error + Send + Sync>>,
{
    let (ready, is_ready) = mpsc::sync_channel(1);
    let (jobs, queue) = mpsc::channel::<Job>();
    let driver = thread::spawn(move || {
        let driver = match make_driver() {
            Ok(driver) => driver,
            Err(e) => return drop(ready.send(Err(e.into()))),
        };
        let _ = ready.send(Ok(()));
        for job in queue {
            // A caller that went away no longer wants the answer.
            let _ = job.reply.send(answer(driver.as_ref(), job.call));
        }
    });
    match is_ready.recv() {
        Ok(Ok(())) => Ok((jobs, driver)),
        Ok(Err(e)) => Err(ServeError::Driver(e)),
        Err(_) => Err(ServeError::Driver("it panicked while starting".into())),
    }
}

async fn handle(
    State(jobs): State<mpsc::Sender<Job>>,
    Route(method): Route<String>,
    body: Bytes,
) -> Response {
    // Activation needs no driver, and its body is empty.
    if method == ACTIVATE {
        let implements = vec![VOLUME_DRIVER.into()];
        return respond(StatusCode::OK, json(&ActivateResponse { implements }));
    }
    let call = match Call::parse(&method, &body) {
        Ok(Some(call)) => call,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, format!("unknown call {method}")),
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("invalid {method} request: {e}"),
            );
        }
    };
    let (reply, answer) = oneshot::channel();
    if jobs.send(Job { call, reply }).is_err() {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the volume driver has stopped".into(),
        );
    }
    match answer.await {
        Ok(Ok(body)) => respond(StatusCode::OK, body),
        Ok(Err(message)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the volume driver stopped while answering".into(),
        ),
    }
}

/// Why the driver thread could not answer a call.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// Only the message: Docker prefixes the call's name itself.
    #[error("{}", .0.message)]
    Driver(#[from] DriverError),
    #[error("cannot encode the answer: {0}")]
    Encode(#[from] serde_json::Error),
}

fn answer(driver: &dyn VolumeDriver, call: Call) -> Result<Vec<u8>, String> {
    answer_call(driver, call).map_err(|e| e.to_string())
}

fn answer_call(driver: &dyn VolumeDriver, call: Call) -> Result<Vec<u8>, Refusal> {
    let body = match call {
        Call::Create(r) => {
            driver.create(&r.name, &r.opts.unwrap_or_default())?;
            serde_json::to_vec(&Empty {})
        }
        Call::Remove(r) => {
            driver.remove(&r.name)?;
            serde_json::to_vec(&Empty {})
        }
        Call::Mount(r) => {
            let mountpoint = Some(driver.mount(&r.name, &r.id)?);
            serde_json::to_vec(&MountResponse { mountpoint })
        }
        Call::Unmount(r) => {
            driver.unmount(&r.name, &r.id)?;
            serde_json::to_vec(&Empty {})
        }
        Call::Path(r) => {
            let mountpoint = driver.path(&r.name)?;
            serde_json::to_vec(&MountResponse { mountpoint })
        }
        Call::Get(r) => {
            // An Err rather than `Volume: null`: every Docker version and
            // plugin helper reads that as "no such volume".
            let volume = driver.get(&r.name)?.ok_or_else(|| DriverError {
                driver: driver.name().into(),
                call: GET,
                message: format!("no such volume: {}", r.name),
            })?;
            serde_json::to_vec(&GetResponse {
                volume: Some(volume.into()),
            })
        }
        Call::List => {
            let volumes = driver.list()?.into_iter().map(Volume::from).collect();
            serde_json::to_vec(&ListResponse { volumes })
        }
        Call::Capabilities => {
            let scope = driver.capabilities()?.as_str().into();
            serde_json::to_vec(&CapabilitiesResponse {
                capabilities: Some(Capabilities { scope }),
            })
        }
    };
    Ok(body?)
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain strings always encode")
}

fn refuse(status: StatusCode, err: String) -> Response {
    respond(status, json(&ErrorResponse { err }))
}

/// The body with Go's trailing newline and the plugin media type.
fn respond(status: StatusCode, mut body: Vec<u8>) -> Response {
    body.push(b'\n');
    (status, [(CONTENT_TYPE, MEDIA_TYPE)], body).into_response()
}
