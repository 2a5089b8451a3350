use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use strata_plugin::{PluginDirs, Registry, Timeouts};
use strata_volume::driver::VolumeDriver;
use tempfile::TempDir;
use tokio_rustls::TlsAcceptor;

use crate::fake::{FakePlugin, Knob};

/// A test CA, a second CA nobody should trust, and the certificates the
/// CA signed for the plugin (`localhost`) and for the client.
struct Pki {
    dir: TempDir,
    acceptor: TlsAcceptor,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Writes a certificate for `name` signed by `ca` and its key to
/// `<dir>/<file>.pem` and `<dir>/<file>.key`.
fn issue(dir: &Path, file: &str, name: &str, ca: &CertifiedIssuer<KeyPair>) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (ca("strata test CA"), ca("untrusted CA"));
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
    let (cert, key) = issue(dir.path(), "plugin", "localhost", &ca);
    issue(dir.path(), "client", "client", &ca);

    // The plugin wants clients to show a certificate from the same CA.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
        .build()
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.into()], key)
        .unwrap();
    Pki {
        dir,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

/// A registry whose only plugin `p` is at `addr` with this `TLSConfig`
/// (`{pki}` stands for the folder of the test certificates).
fn registry(pki: &Pki, addr: &str, tls_config: &str) -> (TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let tls_config = tls_config.replace("{pki}", &pki.dir.path().display().to_string());
    let spec = format!(r#"{{"Name":"p","Addr":"{addr}","TLSConfig":{tls_config}}}"#);
    std::fs::write(dir.path().join("p.json"), spec).unwrap();
    let dirs = PluginDirs {
        sockets: dir.path().join("run"),
        specs: vec![dir.path().into()],
    };
    let timeouts = Timeouts {
        create_mount: Duration::from_secs(2),
        other: Duration::from_secs(2),
        retry_budget: Duration::ZERO,
    };
    (dir, Registry::new(dirs, timeouts))
}

#[test]
fn https_plugins_are_always_verified() {
    let pki = pki();
    let (plugin, port) = FakePlugin::https(pki.acceptor.clone(), Knob::Healthy);
    let addr = format!("https://localhost:{port}");
    let client = r#""CertFile":"{pki}/client.pem","KeyFile":"{pki}/client.key""#;
    // (TLSConfig, None if the call works, else part of its error)
    let cases = [
        (format!(r#"{{"CAFile":"{{pki}}/ca.pem",{client}}}"#), None),
        // InsecureSkipVerify is ignored: Strata always verifies.
        (
            format!(r#"{{"InsecureSkipVerify":true,"CAFile":"{{pki}}/other-ca.pem",{client}}}"#),
            Some("invalid peer certificate: UnknownIssuer"),
        ),
        // No CAFile: the system's roots, which do not know the test CA.
        (
            format!("{{{client}}}"),
            Some("invalid peer certificate: UnknownIssuer"),
        ),
        // The plugin wants a client certificate.
        (
            r#"{"CAFile":"{pki}/ca.pem"}"#.to_string(),
            Some("CertificateRequired"),
        ),
    ];
    for (tls_config, expected) in cases {
        let (_dir, registry) = registry(&pki, &addr, &tls_config);
        let driver = registry.find("p").unwrap().unwrap();
        match (driver.list(), expected) {
            (Ok(volumes), None) => assert_eq!(volumes.len(), 2),
            (Err(err), Some(part)) => {
                assert!(err.to_string().contains(part), "{tls_config}: {err}")
            }
            (got, _) => panic!("{tls_config}: {got:?}"),
        }
    }
    assert!(
        plugin.activations() == 1,
        "only the trusted client got through"
    );
}

#[test]
fn bad_tls_files_are_reported_when_the_plugin_is_found() {
    let pki = pki();
    let cases = [
        (
            r#"{"CAFile":"{pki}/missing.pem"}"#,
            "cannot load certificates from {pki}/missing.pem",
        ),
        (r#"{"CAFile":"{pki}/client.key"}"#, "holds no certificate"),
        (
            r#"{"CertFile":"{pki}/client.pem"}"#,
            "gives CertFile without KeyFile",
        ),
        (
            r#"{"CAFile":"{pki}/ca.pem","CertFile":"{pki}/client.pem","KeyFile":"{pki}/ca.pem"}"#,
            "cannot load a private key from",
        ),
    ];
    for (tls_config, expected) in cases {
        let (_dir, registry) = registry(&pki, "https://localhost:1", tls_config);
        let err = registry.find("p").err().expect(tls_config).to_string();
        assert!(
            err.contains("volume plugin p at https://localhost:1: "),
            "{err}"
        );
        let expected = expected.replace("{pki}", &pki.dir.path().display().to_string());
        assert!(err.contains(&expected), "{tls_config}: {err}");
    }
}
