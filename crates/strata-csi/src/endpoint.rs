//! CSI endpoints as orchestrators write them: `unix:///run/csi.sock`,
//! `unix:/run/csi.sock`, or a bare absolute path. Only unix sockets: a CSI
//! driver manages the host's storage and must not listen on the network.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid CSI endpoint '{0}'; give a unix socket as unix:///path/to/csi.sock (or an absolute path)"
)]
pub struct EndpointError(pub String);

/// The socket path of `endpoint`.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, EndpointError> {
    let path = endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.strip_prefix("unix:"))
        .unwrap_or(endpoint);
    if !path.starts_with('/') || path.len() < 2 {
        return Err(EndpointError(endpoint.to_owned()));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let check = |endpoint: &str, expected: Option<&str>| {
            assert_eq!(
                socket_path(endpoint).ok(),
                expected.map(PathBuf::from),
                "{endpoint}"
            );
        };
        check("unix:///run/strata/csi.sock", Some("/run/strata/csi.sock"));
        check("unix:/run/csi.sock", Some("/run/csi.sock"));
        check(
            "/var/lib/kubelet/plugins/x/csi.sock",
            Some("/var/lib/kubelet/plugins/x/csi.sock"),
        );
        check("tcp://127.0.0.1:10000", None);
        check("unix://relative.sock", None);
        check("csi.sock", None);
        check("unix://", None);
        check("", None);
    }
}
