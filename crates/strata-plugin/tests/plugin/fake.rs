//! A third-party plugin to test the client against: plain hyper on a real
//! socket, with knobs that make it misbehave the ways plugins do.

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::runtime::Runtime;
use tokio_rustls::TlsAcceptor;

/// How the plugin behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knob {
    /// Answers every call like a good plugin.
    Healthy,
    /// Sleeps this long before answering a VolumeDriver call.
    Slow(Duration),
    /// Its socket exists but nothing listens: connection refused.
    Down,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 500 with plain text, as a crashing web framework would.
    RawError,
    /// 200, but with `Err` set.
    ErrOn200,
    /// Activates as something other than a volume driver.
    NotVolume,
}

/// One request as the plugin saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub path: String,
    pub host: String,
    pub accept: String,
    pub body: String,
}

#[derive(Default)]
pub struct Record {
    pub activations: AtomicUsize,
    pub requests: Mutex<Vec<Seen>>,
}

/// A running fake plugin; it stops when dropped.
pub struct FakePlugin {
    runtime: Option<Runtime>,
    pub record: Arc<Record>,
}

impl Drop for FakePlugin {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl FakePlugin {
    /// Serves on `socket` now; for [`Knob::Down`] only leaves a dead socket.
    pub fn unix(socket: &Path, knob: Knob) -> FakePlugin {
        let plugin = FakePlugin::new();
        if knob == Knob::Down {
            dead_socket(socket);
            return plugin;
        }
        std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
        let listener = {
            let _context = plugin.runtime().enter();
            UnixListener::bind(socket).unwrap()
        };
        let record = plugin.record.clone();
        plugin.runtime().spawn(accept(listener, knob, record));
        plugin
    }

    /// Leaves a dead socket at `socket` and listens there after `delay`,
    /// as a plugin container that is still starting.
    pub fn unix_after(socket: &Path, knob: Knob, delay: Duration) -> FakePlugin {
        dead_socket(socket);
        let plugin = FakePlugin::new();
        let record = plugin.record.clone();
        let socket = socket.to_owned();
        plugin.runtime().spawn(async move {
            tokio::time::sleep(delay).await;
            std::fs::remove_file(&socket).unwrap();
            accept(UnixListener::bind(&socket).unwrap(), knob, record).await;
        });
        plugin
    }

    /// Serves HTTPS on a local port, which it returns.
    pub fn https(acceptor: TlsAcceptor, knob: Knob) -> (FakePlugin, u16) {
        let plugin = FakePlugin::new();
        let record = plugin.record.clone();
        let listener = plugin
            .runtime()
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        plugin.runtime().spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (acceptor, record) = (acceptor.clone(), record.clone());
                tokio::spawn(async move {
                    // A client that does not trust us hangs up here.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(stream, knob, record).await;
                    }
                });
            }
        });
        (plugin, port)
    }

    fn new() -> FakePlugin {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        FakePlugin {
            runtime: Some(runtime),
            record: Arc::default(),
        }
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().unwrap()
    }

    pub fn activations(&self) -> usize {
        self.record.activations.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.record.requests.lock().unwrap().clone()
    }
}

/// A socket file nobody listens on: connecting is refused.
fn dead_socket(socket: &Path) {
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(socket).unwrap());
}

async fn accept(listener: UnixListener, knob: Knob, record: Arc<Record>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(serve(stream, knob, record.clone()));
    }
}

async fn serve<S>(stream: S, knob: Knob, record: Arc<Record>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| answer(request, knob, record.clone()));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(
    request: Request<Incoming>,
    knob: Knob,
    record: Arc<Record>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name| {
        let value = request.headers().get(name);
        value.map_or("", |v| v.to_str().unwrap()).to_owned()
    };
    let (host, accept) = (header(HOST), header(ACCEPT));
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    record.requests.lock().unwrap().push(Seen {
        path: path.clone(),
        host,
        accept,
        body,
    });
    let (status, body) = if path == "/Plugin.Activate" {
        record.activations.fetch_add(1, Ordering::SeqCst);
        match knob {
            Knob::NotVolume => (200, r#"{"Implements":["NetworkDriver"]}"#),
            _ => (200, r#"{"Implements":["authz","VolumeDriver"]}"#),
        }
    } else {
        misbehave(knob, &path).await
    };
    let response = Response::builder().status(status);
    Ok(response.body(Full::new(Bytes::from(body))).unwrap())
}

async fn misbehave(knob: Knob, path: &str) -> (u16, &'static str) {
    match knob {
        Knob::Slow(delay) => tokio::time::sleep(delay).await,
        Knob::Garbage => return (200, "<html>hello</html>"),
        Knob::RawError => return (500, "disk on fire\n"),
        Knob::ErrOn200 => return (200, r#"{"Err":"quota exceeded"}"#),
        Knob::Healthy | Knob::Down | Knob::NotVolume => {}
    }
    healthy(path)
}

/// What a good Go plugin answers, nil slices and all.
fn healthy(path: &str) -> (u16, &'static str) {
    let body = match path {
        "/VolumeDriver.Mount" => r#"{"Mountpoint":"/mnt/v","Err":""}"#,
        "/VolumeDriver.Path" => r#"{"Mountpoint":"","Err":""}"#,
        "/VolumeDriver.Get" => {
            r#"{"Volume":{"Name":"v","Mountpoint":"/mnt/v","CreatedAt":"2024-05-01T12:00:00+02:00","Status":{"size":"5G"}},"Err":""}"#
        }
        "/VolumeDriver.List" => {
            r#"{"Volumes":[{"Name":"v","Mountpoint":""},{"Name":"w"}],"Err":""}"#
        }
        "/VolumeDriver.Capabilities" => r#"{"Capabilities":{"Scope":"GLOBAL"}}"#,
        _ => r#"{"Err":""}"#,
    };
    (200, body)
}
