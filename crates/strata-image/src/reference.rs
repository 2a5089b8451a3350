//! Image references, parsed and normalized exactly as Docker does:
//! `busybox` is `docker.io/library/busybox:latest`, `user/app` is
//! `docker.io/user/app:latest`, a first component with a `.` or `:` (or
//! `localhost`) is a registry, and `name@sha256:…` pins a digest.

use std::fmt;
use std::str::FromStr;

use strata_store::Digest;

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";

/// A normalized reference: always a domain and a path; a tag unless only a
/// digest was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: '{0}' (expected [registry/]name[:tag][@sha256:digest])")]
    Format(String),
    #[error("invalid reference format: repository name '{0}' must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: '{0}' is longer than 255 characters")]
    TooLong(String),
    #[error(
        "invalid reference format: tag '{0}' may only hold letters, digits, '_', '.' and '-' (at most 128)"
    )]
    Tag(String),
    #[error("invalid reference format: {0}")]
    Digest(#[from] strata_store::digest::DigestError),
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__', or any run of '-'.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `host[:port]`, host made of `[a-zA-Z0-9-]` labels separated by dots, or
/// a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        let bad = || ReferenceError::Format(s.to_owned());
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/' (before that, ':' is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(ReferenceError::Tag(t.to_owned()));
        }
        if name.is_empty() {
            return Err(bad());
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.to_lowercase() != first =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
        };
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_owned()
        } else {
            domain
        };
        if !valid_domain(&domain) {
            return Err(bad());
        }
        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase(path));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(bad());
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        // Measured normalized, so every name accepted prints as one that
        // parses again (found by fuzzing).
        if domain.len() + 1 + path.len() > 255 {
            return Err(ReferenceError::TooLong(name.to_owned()));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }
}

impl Reference {
    /// `docker.io/library/busybox`
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The repository as Docker shows it: `busybox`, `user/app`,
    /// `localhost:5000/app`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_owned()
        } else {
            self.repository()
        }
    }

    /// `busybox:latest`, as `docker load` and `docker save` write it.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    /// The full normalized form, as Strata stores tags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), &str>) {
        let got = input
            .parse::<Reference>()
            .map(|r| (r.to_string(), r.familiar()))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(full, fam)| (full.to_owned(), fam.to_owned()))
            .map_err(str::to_owned);
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn normalizes_like_docker() {
        check(
            "busybox",
            Ok(("docker.io/library/busybox:latest", "busybox:latest")),
        );
        check(
            "busybox:1.36",
            Ok(("docker.io/library/busybox:1.36", "busybox:1.36")),
        );
        check(
            "user/app",
            Ok(("docker.io/user/app:latest", "user/app:latest")),
        );
        check(
            "docker.io/library/alpine:3",
            Ok(("docker.io/library/alpine:3", "alpine:3")),
        );
        check(
            "index.docker.io/library/alpine",
            Ok(("docker.io/library/alpine:latest", "alpine:latest")),
        );
        check(
            "localhost/foo",
            Ok(("localhost/foo:latest", "localhost/foo:latest")),
        );
        check(
            "localhost:5000/a/b:t",
            Ok(("localhost:5000/a/b:t", "localhost:5000/a/b:t")),
        );
        check("quay.io/x/y:z", Ok(("quay.io/x/y:z", "quay.io/x/y:z")));
        check(
            "127.0.0.1:5000/app",
            Ok(("127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest")),
        );
        check(
            "a.b-c__d---e",
            Ok((
                "docker.io/library/a.b-c__d---e:latest",
                "a.b-c__d---e:latest",
            )),
        );
        let d = format!("sha256:{}", "a".repeat(64));
        check(
            &format!("busybox@{d}"),
            Ok((
                &format!("docker.io/library/busybox@{d}"),
                &format!("busybox@{d}"),
            )),
        );
    }

    #[test]
    fn rejects_what_docker_rejects() {
        let fmt = |s: &str| {
            format!(
                "invalid reference format: '{s}' (expected [registry/]name[:tag][@sha256:digest])"
            )
        };
        check("", Err(&fmt("")));
        check(
            "Busybox",
            Err("invalid reference format: repository name 'Busybox' must be lowercase"),
        );
        check("../evil", Err(&fmt("../evil")));
        check("a/../b", Err(&fmt("a/../b")));
        check("a//b", Err(&fmt("a//b")));
        check("/abs", Err(&fmt("/abs")));
        check("a/", Err(&fmt("a/")));
        check("-a", Err(&fmt("-a")));
        check("a__-b", Err(&fmt("a__-b")));
        check("a:b/c", Err(&fmt("a:b/c")));
        check(
            "a:.x",
            Err(
                "invalid reference format: tag '.x' may only hold letters, digits, '_', '.' and '-' (at most 128)",
            ),
        );
        check(
            "a@sha256:xyz",
            Err(
                "invalid reference format: digest 'sha256:xyz' is not 64 lower-case hex digits after 'sha256:'",
            ),
        );
        check(
            &"a".repeat(256),
            Err(&format!(
                "invalid reference format: '{}' is longer than 255 characters",
                "a".repeat(256)
            )),
        );
        // Short as given, too long once normalized (docker.io/library/…):
        // refused, so every accepted name prints as one that parses again.
        let long = "a".repeat(240);
        check(
            &long,
            Err(&format!(
                "invalid reference format: '{long}' is longer than 255 characters"
            )),
        );
    }
}
