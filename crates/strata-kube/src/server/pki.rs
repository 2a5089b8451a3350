//! The API server's credentials: a CA made at first start, a serving
//! certificate for 127.0.0.1/localhost signed by it, and a bearer token.
//! All live in `<root>/kube/pki/`, readable by root only, so a restart keeps
//! the kubeconfig users already have.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}; remove {dir} to make new credentials", dir = .path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("making certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{path} is not a valid PEM file ({why}); remove it to make new credentials")]
    Pem { path: PathBuf, why: String },
    #[error("setting up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The files, once made.
#[derive(Clone, Debug)]
pub struct Pki {
    dir: PathBuf,
}

const CA_CERT: &str = "ca.crt";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const TOKEN: &str = "token";

impl Pki {
    /// Loads the credentials in `dir`, making any that are missing.
    pub fn ensure(dir: &Path) -> Result<Pki, PkiError> {
        let pki = Pki { dir: dir.into() };
        let io = |source| PkiError::Write {
            path: dir.into(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        let made = [CA_CERT, SERVER_CERT, SERVER_KEY]
            .iter()
            .all(|f| dir.join(f).exists());
        if !made {
            pki.make_certificates()?;
        }
        if !dir.join(TOKEN).exists() {
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            write_private(&dir.join(TOKEN), token.as_bytes())?;
        }
        Ok(pki)
    }

    fn make_certificates(&self) -> Result<(), PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "strata-ca");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "strata-apiserver");
        let cert = params.signed_by(&key, &ca)?;
        // The key first: a certificate without its key is useless, the
        // reverse is remade.
        write_private(&self.dir.join(SERVER_KEY), key.serialize_pem().as_bytes())?;
        write_private(&self.dir.join(SERVER_CERT), cert.pem().as_bytes())?;
        write_private(&self.dir.join(CA_CERT), ca.pem().as_bytes())
    }

    pub fn token(&self) -> Result<String, PkiError> {
        Ok(self.read(TOKEN)?.trim().to_string())
    }

    pub fn ca_pem(&self) -> Result<String, PkiError> {
        self.read(CA_CERT)
    }

    fn read(&self, file: &str) -> Result<String, PkiError> {
        let path = self.dir.join(file);
        fs::read_to_string(&path).map_err(|source| PkiError::Read { path, source })
    }

    /// The TLS configuration that serves the certificate.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let cert_path = self.dir.join(SERVER_CERT);
        let key_path = self.dir.join(SERVER_KEY);
        let pem = |path: &Path, why: String| PkiError::Pem {
            path: path.into(),
            why,
        };
        let certs = CertificateDer::pem_slice_iter(self.read(SERVER_CERT)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem(&cert_path, e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(self.read(SERVER_KEY)?.as_bytes())
            .map_err(|e| pem(&key_path, e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A kubeconfig for `server` that kubectl uses as is.
    pub fn kubeconfig(&self, server: &str) -> Result<String, PkiError> {
        use std::fmt::Write as _;
        let ca = BASE64_STANDARD.encode(self.ca_pem()?.as_bytes());
        let token = self.token()?;
        let mut out = String::new();
        let _ = write!(
            out,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: strata\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: strata-admin\n  user:\n    token: {token}\ncontexts:\n- name: strata\n  context:\n    cluster: strata\n    user: strata-admin\n    namespace: default\ncurrent-context: strata\n"
        );
        Ok(out)
    }
}

/// Writes a file only root can read: temp file, fsync, rename.
fn write_private(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(data).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(&dir.path().join("pki")).unwrap();
        let (token, ca) = (pki.token().unwrap(), pki.ca_pem().unwrap());
        assert_eq!(token.len(), 64);
        let again = Pki::ensure(&dir.path().join("pki")).unwrap();
        assert_eq!(again.token().unwrap(), token);
        assert_eq!(again.ca_pem().unwrap(), ca);
        again.server_config().unwrap();
        let mode = fs::metadata(dir.path().join("pki/server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
