//! One HTTP/1.1 exchange with a plugin, the way Docker talks to plugins:
//! a fresh connection per call, `POST /<Method>`, Docker's `Accept` and
//! `Host`. Retries and timeouts belong to the caller.

use std::error::Error;
use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use crate::discovery::{Address, Endpoint};
use crate::protocol::MEDIA_TYPE;
use crate::tls::{self, TlsError};

/// What current Docker sends as `Host` over a unix socket.
const UNIX_HOST: &str = "plugin.moby.localhost";

/// An answer larger than this is a broken plugin, not a big volume list.
const MAX_ANSWER: usize = 16 << 20;

/// Why one attempt failed.
#[derive(Debug)]
pub enum AttemptError {
    /// No connection, so the plugin saw nothing: it may still be starting,
    /// and trying again is safe.
    Connect(io::Error),
    /// Failed once connected; trying again could repeat the call.
    Failed(String),
}

/// How to open connections to one plugin.
pub struct Transport {
    endpoint: Endpoint,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Transport {
    pub fn new(endpoint: &Endpoint) -> Result<Self, TlsError> {
        let tls = match &endpoint.address {
            Address::Tcp {
                host,
                tls: Some(files),
                ..
            } => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|_| TlsError::ServerName(host.clone()))?;
                Some((tls::connector(files)?, name))
            }
            _ => None,
        };
        Ok(Transport {
            endpoint: endpoint.clone(),
            tls,
        })
    }

    /// Sends `body` to `/<method>` and reads the whole answer.
    pub async fn post(
        &self,
        method: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), AttemptError> {
        let request = Request::post(format!("/{method}"))
            .header(HOST, self.host())
            .header(ACCEPT, MEDIA_TYPE)
            .body(Full::new(body))
            .map_err(|e| AttemptError::Failed(format!("cannot build the request: {e}")))?;
        match (&self.endpoint.address, &self.tls) {
            (Address::Unix(path), _) => {
                let stream = UnixStream::connect(path).await;
                self.exchange(stream.map_err(AttemptError::Connect)?, request)
                    .await
            }
            (Address::Tcp { host, port, .. }, None) => {
                let stream = TcpStream::connect((host.as_str(), *port)).await;
                self.exchange(stream.map_err(AttemptError::Connect)?, request)
                    .await
            }
            (Address::Tcp { host, port, .. }, Some((connector, name))) => {
                let stream = TcpStream::connect((host.as_str(), *port)).await;
                let stream = stream.map_err(AttemptError::Connect)?;
                let stream = connector.connect(name.clone(), stream).await;
                self.exchange(stream.map_err(|e| self.handshake_failed(e))?, request)
                    .await
            }
        }
    }

    /// A bad certificate stays bad: not worth a retry.
    fn handshake_failed(&self, error: io::Error) -> AttemptError {
        AttemptError::Failed(format!(
            "TLS handshake with {} failed: {error}; check the plugin's certificate \
             and the CAFile in its .json spec",
            self.endpoint
        ))
    }

    fn host(&self) -> String {
        match &self.endpoint.address {
            Address::Unix(_) => UNIX_HOST.into(),
            Address::Tcp { host, port, .. } if host.contains(':') => format!("[{host}]:{port}"),
            Address::Tcp { host, port, .. } => format!("{host}:{port}"),
        }
    }

    async fn exchange<S>(
        &self,
        stream: S,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), AttemptError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let broke = |e: &dyn Error| {
            AttemptError::Failed(format!(
                "the plugin at {} broke off the exchange: {}",
                self.endpoint,
                causes(e)
            ))
        };
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| broke(&e))?;
        let send = async move {
            let response = sender.send_request(request).await.map_err(|e| broke(&e))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER);
            let body = body.collect().await.map_err(|e| broke(&*e))?;
            Ok((status, body.to_bytes()))
        };
        // The connection must be driven while the request runs; it ends
        // once `send` drops the sender.
        let (answer, _) = tokio::join!(send, connection);
        answer
    }
}

/// An error and its sources: hyper's own message alone ("connection
/// error") hides the reason, such as a TLS alert.
fn causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
