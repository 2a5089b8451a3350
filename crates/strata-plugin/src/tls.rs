//! TLS for `https://` plugins. Unlike Docker, which skips verification
//! when a spec names no CA file, Strata always verifies: against the spec's
//! `CAFile`, else against the system's roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::discovery::TlsFiles;

/// Debian's bundle of the system's trusted roots (`ca-certificates`).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot load {what} from {path}: {message}")]
    Load {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{path} holds no certificate; CAFile must be PEM with at least one CERTIFICATE")]
    NoRoots { path: PathBuf },
    #[error("TLSConfig gives {0} without {1}; give both CertFile and KeyFile, or neither")]
    HalfPair(&'static str, &'static str),
    #[error("{0:?} is not a host name or IP address TLS can verify")]
    ServerName(String),
    #[error("cannot set up TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A connector that trusts exactly the roots `files` calls for.
pub fn connector(files: &TlsFiles) -> Result<TlsConnector, TlsError> {
    // The ring provider explicitly: the build must not depend on aws-lc.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(files.ca_file.as_deref())?);
    let config = match (&files.cert_file, &files.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(certs(cert)?, private_key(key)?)?
        }
        (Some(_), None) => return Err(TlsError::HalfPair("CertFile", "KeyFile")),
        (None, Some(_)) => return Err(TlsError::HalfPair("KeyFile", "CertFile")),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_ROOTS));
    let mut store = RootCertStore::empty();
    // A bundle may hold certificates webpki cannot use; skip those, as
    // long as something usable is left.
    store.add_parsable_certificates(certs(path)?);
    if store.is_empty() {
        return Err(TlsError::NoRoots { path: path.into() });
    }
    Ok(store)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let load = |message: String| TlsError::Load {
        what: "certificates",
        path: path.into(),
        message,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|e| load(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| load(e.to_string()))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Load {
        what: "a private key",
        path: path.into(),
        message: e.to_string(),
    })
}
