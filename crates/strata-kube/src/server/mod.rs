//! The Kubernetes API over HTTP: HTTPS with a bearer token on
//! 127.0.0.1:6443 for kubectl, and plain HTTP on a root-only unix socket for
//! the local command line. Both serve the same router over the registry.

mod discovery;
mod handlers;
mod openapi;
mod path;
pub mod pki;
mod protobuf;
mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::error::ApiError;
use crate::registry::Registry;

pub use pki::{Pki, PkiError};

/// Reads a pod's logs: (namespace, pod, container) -> text.
pub type PodLogs = Arc<dyn Fn(&str, &str, Option<&str>) -> Result<String, ApiError> + Send + Sync>;

/// Where and how to serve.
pub struct ServerConfig {
    pub address: SocketAddr,
    pub socket: PathBuf,
    pub pki: Pki,
    pub logs: Option<PodLogs>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listening on {address}: {source}; is another `strata serve` running?")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Socket(#[from] strata_serve::SocketError),
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// What every handler shares.
pub struct App {
    registry: Registry,
    /// `host:port` clients reach us at, for discovery.
    address: String,
    logs: Option<PodLogs>,
}

/// Serves until `stopped` resolves.
pub async fn serve(
    registry: Registry,
    config: ServerConfig,
    stopped: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let app = Arc::new(App {
        registry,
        address: config.address.to_string(),
        logs: config.logs,
    });
    let router = Router::new()
        .fallback(handlers::handle)
        .with_state(app.clone());
    let token: Arc<str> = config.pki.token()?.into();
    let authenticated = router
        .clone()
        .layer(middleware::from_fn_with_state(token, require_token));
    let acceptor = TlsAcceptor::from(config.pki.server_config()?);
    let tcp = TcpListener::bind(config.address)
        .await
        .map_err(|source| ServerError::Listen {
            address: config.address.to_string(),
            source,
        })?;
    let unix = strata_serve::bind_socket(&config.socket)?;
    unix.set_nonblocking(true)
        .map_err(|source| ServerError::Listen {
            address: config.socket.display().to_string(),
            source,
        })?;
    let unix = tokio::net::UnixListener::from_std(unix).map_err(|source| ServerError::Listen {
        address: config.socket.display().to_string(),
        source,
    })?;
    let https = serve_https(tcp, acceptor, authenticated);
    let local = async {
        let _ = axum::serve(unix, router).await;
    };
    tokio::select! {
        _ = https => {}
        _ = local => {}
        _ = stopped => {}
    }
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

async fn serve_https(listener: TcpListener, acceptor: TlsAcceptor, router: Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            // A client that does not trust our CA hangs up here.
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Over TCP every request carries the bearer token; anything else is 401.
async fn require_token(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        next.run(request).await
    } else {
        handlers::error_response(&ApiError::Unauthorized)
    }
}

/// Compares without stopping at the first difference, so timing does not
/// reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
