//! A real client: Docker's own daemon parses the same `-v` and `--mount`
//! specs as Strata, and both must agree on whether each is accepted and,
//! if so, on the mount it makes (type, source, destination, read-write,
//! propagation, volume name). Runs a private dockerd (no bridge, no
//! iptables), as the benchmarks do.

mod common;

use std::path::{Path, PathBuf};

use common::Strata;
use common::archive::busybox_rootfs;
use common::dockerd::Dockerd;
use serde_json::Value;

/// What both sides must agree on about one mount.
fn essentials(m: &Value) -> Value {
    let kind = m["Type"].as_str().unwrap_or_default();
    let name = m["Name"].as_str().unwrap_or_default();
    serde_json::json!({
        "Type": kind,
        "Destination": m["Destination"],
        "RW": m["RW"],
        "Propagation": m["Propagation"],
        // Anonymous volumes get random names on both sides.
        "Name": if name.len() == 64 { "<anonymous>" } else { name },
        // A volume's folder is each tool's own; a bind's is the user's.
        "Source": if kind == "bind" { m["Source"].clone() } else { Value::Null },
    })
}

/// Accepted with these mounts (sorted by destination), or refused.
fn outcome(
    out: std::process::Output,
    inspect: impl Fn(&str) -> Value,
) -> Result<Vec<Value>, String> {
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut mounts: Vec<Value> = inspect(&id)["Mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(essentials)
        .collect();
    mounts.sort_by_key(|m| m["Destination"].as_str().unwrap_or_default().to_owned());
    Ok(mounts)
}

#[test]
fn volume_and_mount_specs_parse_as_docker_parses_them() {
    let docker = Dockerd::start();
    let s = Strata::new();
    let rootfs = s.path("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).unwrap();
    s.ok(&["import", rootfs.to_str().unwrap(), "bb"]);
    docker.ok(&["import", rootfs.to_str().unwrap(), "bb"]);

    let host = s.path("host");
    std::fs::create_dir_all(&host).unwrap();
    let h = host.to_str().unwrap();
    let missing: PathBuf = s.path("not-there");
    let m = missing.to_str().unwrap();
    let specs: Vec<Vec<String>> = [
        // -v: named, anonymous, bind, and their options
        vec!["-v", "data:/data"],
        vec!["-v", "data:/data:ro"],
        vec!["-v", "data:/data:rw"],
        vec!["-v", "data:/data:nocopy"],
        vec!["-v", "data:/data:ro,nocopy"],
        vec!["-v", "/anon"],
        vec!["-v", &format!("{h}:/x")],
        vec!["-v", &format!("{h}:/x:ro")],
        vec!["-v", &format!("{h}:/x:rslave")],
        vec!["-v", &format!("{h}:/x:ro,rprivate")],
        vec!["-v", &format!("{h}:/x:z")],
        vec!["-v", "data:relative"],
        vec!["-v", "data:/data:bogus"],
        vec!["-v", "data:/data:ro,rw"],
        vec!["-v", &format!("{h}:/x:nocopy")],
        vec!["-v", "a/b:/x"],
        vec!["-v", "/a:/b:ro:rw"],
        vec!["-v", "data:/data", "-v", "other:/data"],
        // --mount
        vec!["--mount", "type=volume,src=data,dst=/d"],
        vec!["--mount", "type=volume,dst=/d"],
        vec!["--mount", "type=volume,source=data,target=/d,readonly"],
        vec!["--mount", "type=volume,src=data,dst=/d,volume-nocopy"],
        vec!["--mount", &format!("type=bind,src={h},dst=/d")],
        vec!["--mount", &format!("type=bind,src={h},dst=/d,ro=true")],
        vec![
            "--mount",
            &format!("type=bind,src={h},dst=/d,bind-propagation=rshared"),
        ],
        vec!["--mount", &format!("type=bind,src={m},dst=/d")],
        vec!["--mount", "type=tmpfs,dst=/t"],
        vec!["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"],
        vec!["--mount", "type=tmpfs,src=x,dst=/t"],
        vec!["--mount", "type=bogus,dst=/d"],
        vec!["--mount", "type=volume,src=data"],
        vec!["--mount", "type=volume,src=data,dst=rel"],
        vec![
            "--mount",
            "type=volume,src=data,dst=/d,bind-propagation=rslave",
        ],
        vec![
            "--mount",
            &format!("type=bind,src={h},dst=/d,volume-nocopy"),
        ],
        vec!["--mount", "type=volume,src=data,dst=/d,unknown=1"],
        vec!["--mount", "src=data,dst=/d"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(str::to_owned).collect())
    .collect();
    // Where Strata refuses on purpose what this Docker accepts: `-v :/x`
    // makes Docker 20.10 an anonymous volume at the relative path ":/x".
    let refused_on_purpose = [":/x"];

    let mut disagreements = Vec::new();
    for spec in &specs {
        let args: Vec<&str> = spec.iter().map(String::as_str).collect();
        let mut create = vec!["create"];
        create.extend(&args);
        create.extend(["bb", "true"]);
        let theirs = outcome(docker.cli(&create), |id| {
            let out = docker.cli(&["inspect", id]);
            serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
        });
        let ours = outcome(s.run(&create), |id| {
            serde_json::from_str::<Value>(&s.ok(&["container", "inspect", id])).unwrap()[0].clone()
        });
        let agree = match (&theirs, &ours) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            disagreements.push(format!(
                "{spec:?}\n  docker: {theirs:?}\n  strata: {ours:?}"
            ));
        }
    }
    for spec in refused_on_purpose {
        let create = ["create", "-v", spec, "bb", "true"];
        assert!(
            docker.cli(&create).status.success(),
            "docker now refuses -v {spec}"
        );
        assert!(s.fails(&create).contains("empty section"), "-v {spec}");
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} specs disagree:\n{}",
        disagreements.len(),
        specs.len(),
        disagreements.join("\n")
    );
    // --mount never makes a missing bind source (both refused it).
    assert!(!Path::new(m).exists());
}
