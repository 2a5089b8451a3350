//! `-u user[:group]`: names looked up in the container's own /etc/passwd
//! and /etc/group, opened inside its root (a symlink there cannot make us
//! read the host's).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::OFlags;
use strata_archive::fsops;

use crate::{ContainerError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) against
/// the root filesystem at `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<Ids> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(rootfs, "etc/passwd");
    let groups = read_in_root(rootfs, "etc/group");
    let entry = if user.is_empty() {
        None
    } else {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| {
                f.len() >= 4 && (f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user))
            })
    };
    let uid = match (&entry, user.parse::<u32>()) {
        (_, Ok(n)) => n,
        (Some(f), _) => f[2].parse().unwrap_or(0),
        (None, _) if user.is_empty() => 0,
        (None, _) => {
            return Err(ContainerError::Invalid(format!(
                "unable to find user {user}: no matching entries in the container's /etc/passwd; give a numeric uid instead"
            )));
        }
    };
    let name = entry.as_ref().map(|f| f[0].to_owned());
    let gid = match group {
        Some(g) => group_id(&groups, g)?,
        None => entry.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let additional_gids = match &name {
        Some(n) => groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == n))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    Ok(Ids {
        uid,
        gid,
        additional_gids,
    })
}

fn group_id(groups: &str, g: &str) -> Result<u32> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == g)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| {
            ContainerError::Invalid(format!(
                "unable to find group {g}: no matching entries in the container's /etc/group; give a numeric gid instead"
            ))
        })
}

/// A small text file inside the root, or "" if it is not there.
fn read_in_root(rootfs: &Path, rel: &str) -> String {
    let read = || -> std::io::Result<String> {
        let root = fsops::open_dir(rootfs)?;
        let fd = fsops::open_in_root(root.as_fd(), rel.as_bytes(), OFlags::RDONLY)?;
        let mut s = String::new();
        std::fs::File::from(fd)
            .take(1 << 20)
            .read_to_string(&mut s)?;
        Ok(s)
    };
    read().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, want: Result<(u32, u32, Vec<u32>), &str>) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nadm:x:4:www,root\nstaff:x:50:\n",
        )
        .unwrap();
        let got = resolve(t.path(), spec).map(|i| (i.uid, i.gid, i.additional_gids));
        match want {
            Ok(w) => assert_eq!(got.unwrap(), w, "{spec}"),
            Err(msg) => assert!(got.unwrap_err().to_string().contains(msg), "{spec}"),
        }
    }

    #[test]
    fn users_resolve_like_docker() {
        check("", Ok((0, 0, vec![])));
        check("root", Ok((0, 0, vec![4])));
        check("www", Ok((33, 33, vec![4])));
        check("33", Ok((33, 33, vec![4])));
        check("1000", Ok((1000, 0, vec![])));
        check("www:staff", Ok((33, 50, vec![4])));
        check("1000:1000", Ok((1000, 1000, vec![])));
        check("nobody", Err("unable to find user nobody"));
        check("www:nogroup", Err("unable to find group nogroup"));
    }
}
