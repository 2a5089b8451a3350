//! Finding a legacy (out-of-process) plugin by name, in Docker's order:
//! a socket in the socket folder, else a `.spec` or `.json` file in the
//! spec folders. The plugin's name is the file's name without extension.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Colon-separated folders: the socket folder, then the spec folders.
pub const DIRS_ENV: &str = "STRATA_PLUGIN_DIRS";

/// Where plugins are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDirs {
    /// Holds `<name>.sock` or `<name>/<name>.sock`.
    pub sockets: PathBuf,
    /// Hold `<name>.{spec,json}` or `<name>/<name>.{spec,json}`; the first
    /// folder that has one wins.
    pub specs: Vec<PathBuf>,
}

impl Default for PluginDirs {
    /// Docker's folders, so plugins installed for Docker work unchanged.
    fn default() -> Self {
        PluginDirs {
            sockets: "/run/docker/plugins".into(),
            specs: vec![
                "/etc/docker/plugins".into(),
                "/usr/lib/docker/plugins".into(),
            ],
        }
    }
}

/// How to reach a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    /// The address as written (or `unix://` + the socket found), for
    /// messages.
    pub url: String,
    pub address: Address,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    /// `tcp://` and `http://` are plain HTTP; `https://` has `tls`.
    Tcp {
        host: String,
        port: u16,
        tls: Option<TlsFiles>,
    },
}

/// A `.json` spec's `TLSConfig`. Its `InsecureSkipVerify` is deliberately
/// not read: Strata always verifies the plugin's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The roots to trust; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, when the plugin asks for one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot read plugin spec {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "plugin spec {path} is not valid JSON: {source}; expected {{\"Addr\":\"https://host:port\",\"TLSConfig\":{{...}}}}"
    )]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("plugin spec {path} has address {url:?}: {reason}")]
    Address {
        path: PathBuf,
        url: String,
        reason: String,
    },
}

/// Where a plugin was found, before its spec file is read.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Socket(PathBuf),
    Spec(PathBuf),
    Json(PathBuf),
}

impl PluginDirs {
    /// Docker's folders, unless `STRATA_PLUGIN_DIRS` names others (tests
    /// and non-root users point it at folders of their own).
    pub fn from_env() -> Self {
        match std::env::var_os(DIRS_ENV) {
            Some(value) if !value.is_empty() => Self::parse(&value.to_string_lossy()),
            _ => Self::default(),
        }
    }

    fn parse(value: &str) -> Self {
        let mut dirs = value.split(':');
        PluginDirs {
            sockets: dirs.next().unwrap_or_default().into(),
            specs: dirs.filter(|d| !d.is_empty()).map(PathBuf::from).collect(),
        }
    }

    /// The plugin called `name`, or None when no socket or spec has it.
    pub fn find(&self, name: &str) -> Result<Option<Endpoint>, DiscoveryError> {
        let endpoint = match self.locate(name) {
            None => return Ok(None),
            Some(Found::Socket(path)) => Endpoint {
                name: name.into(),
                url: format!("unix://{}", path.display()),
                address: Address::Unix(path),
            },
            Some(Found::Spec(path)) => read_spec(name, &path)?,
            Some(Found::Json(path)) => read_json(name, &path)?,
        };
        Ok(Some(endpoint))
    }

    /// The names of every plugin a socket or spec file offers, sorted.
    pub fn scan(&self) -> Vec<String> {
        let mut candidates = BTreeSet::new();
        for dir in std::iter::once(&self.sockets).chain(&self.specs) {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = PathBuf::from(entry.file_name());
                let name = match path.extension().and_then(OsStr::to_str) {
                    Some("sock" | "spec" | "json") => path.file_stem(),
                    _ => Some(path.as_os_str()),
                };
                candidates.extend(name.and_then(OsStr::to_str).map(str::to_owned));
            }
        }
        // Keep only what `find` would find, so the two always agree.
        candidates
            .into_iter()
            .filter(|name| self.locate(name).is_some())
            .collect()
    }

    fn locate(&self, name: &str) -> Option<Found> {
        // A name with a slash or dots would climb out of the folders.
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            return None;
        }
        let socket = candidates(&self.sockets, name, "sock").find(|p| is_socket(p));
        if let Some(path) = socket {
            return Some(Found::Socket(path));
        }
        self.specs.iter().find_map(|dir| {
            let spec = candidates(dir, name, "spec").find(|p| p.is_file());
            spec.map(Found::Spec).or_else(|| {
                let json = candidates(dir, name, "json").find(|p| p.is_file());
                json.map(Found::Json)
            })
        })
    }
}

/// `<dir>/<name>.<ext>`, then `<dir>/<name>/<name>.<ext>`.
fn candidates(dir: &Path, name: &str, ext: &str) -> impl Iterator<Item = PathBuf> {
    let file = format!("{name}.{ext}");
    [dir.join(&file), dir.join(name).join(&file)].into_iter()
}

/// Only a real socket counts: a stale regular file must not shadow specs.
fn is_socket(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn read_spec(name: &str, path: &Path) -> Result<Endpoint, DiscoveryError> {
    let text = fs::read_to_string(path).map_err(|source| DiscoveryError::Read {
        path: path.into(),
        source,
    })?;
    endpoint(name, path, text.trim(), None)
}

/// The parts of a `.json` spec Strata reads. `Name` is ignored, as Docker
/// does: the file's name is the plugin's name.
#[derive(Deserialize)]
struct JsonSpec {
    #[serde(rename = "Addr")]
    addr: String,
    #[serde(rename = "TLSConfig", default)]
    tls: Option<JsonTls>,
}

#[derive(Deserialize)]
struct JsonTls {
    #[serde(rename = "CAFile", default)]
    ca_file: String,
    #[serde(rename = "CertFile", default)]
    cert_file: String,
    #[serde(rename = "KeyFile", default)]
    key_file: String,
}

fn read_json(name: &str, path: &Path) -> Result<Endpoint, DiscoveryError> {
    let bytes = fs::read(path).map_err(|source| DiscoveryError::Read {
        path: path.into(),
        source,
    })?;
    let spec: JsonSpec = serde_json::from_slice(&bytes).map_err(|source| DiscoveryError::Json {
        path: path.into(),
        source,
    })?;
    // Go writes unset strings as "", so empty means absent.
    let file = |s: String| (!s.is_empty()).then(|| PathBuf::from(s));
    let tls = spec.tls.map(|t| TlsFiles {
        ca_file: file(t.ca_file),
        cert_file: file(t.cert_file),
        key_file: file(t.key_file),
    });
    endpoint(name, path, spec.addr.trim(), tls)
}

fn endpoint(
    name: &str,
    path: &Path,
    url: &str,
    tls: Option<TlsFiles>,
) -> Result<Endpoint, DiscoveryError> {
    let address = parse_address(url, tls).map_err(|reason| DiscoveryError::Address {
        path: path.into(),
        url: url.into(),
        reason,
    })?;
    Ok(Endpoint {
        name: name.into(),
        url: url.into(),
        address,
    })
}

fn parse_address(url: &str, tls: Option<TlsFiles>) -> Result<Address, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(
            "it has no scheme; write unix:///path.sock, tcp://host:port, \
                    http://host:port or https://host:port"
                .into(),
        );
    };
    let (default_port, tls) = match scheme {
        "unix" if rest.starts_with('/') => return Ok(Address::Unix(rest.into())),
        "unix" => {
            return Err("a unix address needs an absolute path, like unix:///run/p.sock".into());
        }
        "tcp" => (None, None),
        "http" => (Some(80), None),
        "https" => (Some(443), Some(tls.unwrap_or_default())),
        other => {
            return Err(format!(
                "scheme {other:?} is not supported; use unix, tcp, http or https"
            ));
        }
    };
    let (host, port) = host_port(rest, default_port)?;
    Ok(Address::Tcp { host, port, tls })
}

/// Splits `host[:port][/path]`; IPv6 hosts come in brackets.
fn host_port(rest: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("it names no host".into());
    }
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("port {p:?} is not a number"))?,
        None => default_port.ok_or("a tcp address needs a port, like tcp://host:8080")?,
    };
    Ok((host.into(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Result<Address, &str>) {
        let got = parse_address(url, None);
        match expected {
            Ok(address) => assert_eq!(got, Ok(address), "{url}"),
            Err(part) => {
                let err = got.expect_err(url);
                assert!(err.contains(part), "{url}: {err}");
            }
        }
    }

    fn tcp(host: &str, port: u16, tls: bool) -> Result<Address, &'static str> {
        let tls = tls.then(TlsFiles::default);
        Ok(Address::Tcp {
            host: host.into(),
            port,
            tls,
        })
    }

    #[test]
    fn addresses() {
        check(
            "unix:///run/p.sock",
            Ok(Address::Unix("/run/p.sock".into())),
        );
        check("tcp://10.0.0.1:8080", tcp("10.0.0.1", 8080, false));
        check("http://plugin.example", tcp("plugin.example", 80, false));
        check(
            "http://plugin.example:81/x",
            tcp("plugin.example", 81, false),
        );
        check("https://plugin.example", tcp("plugin.example", 443, true));
        check("https://[::1]:8443", tcp("::1", 8443, true));
        check("/run/p.sock", Err("no scheme"));
        check("unix://p.sock", Err("absolute path"));
        check("tcp://host", Err("needs a port"));
        check("tcp://host:x", Err("not a number"));
        check("npipe:////./pipe/p", Err("not supported"));
        check("https://:443", Err("no host"));
    }

    #[test]
    fn env_dirs() {
        let dirs = PluginDirs::parse("/s:/a::/b");
        assert_eq!(dirs.sockets, PathBuf::from("/s"));
        assert_eq!(dirs.specs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(PluginDirs::parse("/s").specs.is_empty());
    }
}
