//! `--device HOST[:CONTAINER][:PERMISSIONS]`, as Docker parses it: the
//! container path defaults to the host's, permissions to `rwm`, and a
//! second part made only of `r`, `w` and `m` is the permissions.

use crate::error::SpecError;

/// A host device node to give a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub host: String,
    pub container: String,
    /// A non-empty subset of `rwm` (read, write, mknod), as cgroups take it.
    pub permissions: String,
}

fn is_permissions(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

pub fn parse_device(spec: &str) -> Result<DeviceSpec, SpecError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, permissions) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, perms] if is_permissions(perms) => (*host, *host, *perms),
        [host, container] => (*host, *container, "rwm"),
        [host, container, perms] => (*host, *container, *perms),
        _ => {
            return Err(SpecError::InvalidDevice {
                spec: spec.to_owned(),
            });
        }
    };
    if !is_permissions(permissions) {
        return Err(SpecError::InvalidDeviceMode {
            mode: permissions.to_owned(),
        });
    }
    for path in [host, container] {
        if !path.starts_with('/') {
            return Err(SpecError::DevicePath {
                path: path.to_owned(),
            });
        }
    }
    Ok(DeviceSpec {
        host: host.to_owned(),
        container: crate::path::clean_str(container),
        permissions: permissions.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<(&str, &str, &str), &str>) {
        let got = parse_device(spec)
            .map(|d| (d.host, d.container, d.permissions))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(h, c, p)| (h.to_owned(), c.to_owned(), p.to_owned()))
            .map_err(str::to_owned);
        assert_eq!(got, expected, "{spec}");
    }

    #[test]
    fn device_specs_parse_as_docker_parses_them() {
        check("/dev/loop3", Ok(("/dev/loop3", "/dev/loop3", "rwm")));
        check("/dev/loop3:r", Ok(("/dev/loop3", "/dev/loop3", "r")));
        check(
            "/dev/loop3:/dev/xvda",
            Ok(("/dev/loop3", "/dev/xvda", "rwm")),
        );
        check(
            "/dev/loop3:/dev/xvda:rw",
            Ok(("/dev/loop3", "/dev/xvda", "rw")),
        );
        check(
            "/dev/loop3:/dev//xvda/",
            Ok(("/dev/loop3", "/dev/xvda", "rwm")),
        );
        check(
            "/dev/a:/dev/b:rx",
            Err("invalid device mode: rx (expected a combination of r, w and m, e.g. rwm)"),
        );
        check(
            "loop3",
            Err("bad format for path: loop3 (device paths are absolute, e.g. /dev/loop3)"),
        );
        check(
            "/dev/a:dev/b",
            Err("bad format for path: dev/b (device paths are absolute, e.g. /dev/loop3)"),
        );
        check(
            "/a:/b:rw:x",
            Err(
                "invalid device specification: /a:/b:rw:x (expected HOST[:CONTAINER][:PERMISSIONS])",
            ),
        );
    }
}
