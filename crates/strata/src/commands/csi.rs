//! CSI commands: `csi serve` (this store as the CSI driver
//! csi.strata.dev) and a client of any CSI driver on `--endpoint`:
//! info, create, delete, publish, unpublish, ls, snapshot create/rm/ls.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use strata_csi::client::{
    Access, BlockingCsiClient, ContentSource, PublishOptions, UnpublishOptions, VolumeSpec,
};
use strata_csi::pb;
use strata_csi::pb::volume_capability::access_mode::Mode;

use super::for_each;
use crate::cli::*;
use crate::output::{Table, ago, size};

/// How long `snapshot create` waits for a snapshot to be ready to use.
const SNAPSHOT_READY: Duration = Duration::from_secs(600);

pub fn run(
    settings: &crate::settings::Settings,
    a: CsiArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let endpoint = a.endpoint.as_str();
    match &a.command {
        CsiCommand::Serve(s) => serve(settings, endpoint, s),
        CsiCommand::Info(f) => info(endpoint, f, out),
        CsiCommand::Create(c) => create(endpoint, c, out),
        CsiCommand::Delete(d) => {
            let client = connect(endpoint)?;
            for_each(&d.ids, "volumes", "deleted", |id| {
                client.delete_volume(id)?;
                Ok(writeln!(out, "{id}")?)
            })
        }
        CsiCommand::Publish(p) => publish(endpoint, p, out),
        CsiCommand::Unpublish(u) => unpublish(endpoint, u, out),
        CsiCommand::Ls(l) => ls(endpoint, l, out),
        CsiCommand::Snapshot(CsiSnapshotCommand::Create(c)) => snapshot_create(endpoint, c, out),
        CsiCommand::Snapshot(CsiSnapshotCommand::Rm(d)) => {
            let client = connect(endpoint)?;
            for_each(&d.ids, "snapshots", "deleted", |id| {
                client.delete_snapshot(id)?;
                Ok(writeln!(out, "{id}")?)
            })
        }
        CsiCommand::Snapshot(CsiSnapshotCommand::Ls(l)) => snapshot_ls(endpoint, l, out),
    }
}

fn connect(endpoint: &str) -> anyhow::Result<BlockingCsiClient> {
    Ok(BlockingCsiClient::connect(endpoint)?)
}

/// `csi serve`: this store's volumes, to orchestrators, until SIGTERM.
fn serve(
    settings: &crate::settings::Settings,
    endpoint: &str,
    a: &CsiServeArgs,
) -> anyhow::Result<()> {
    let socket = strata_csi::endpoint::socket_path(endpoint)?;
    let node_id = match &a.node_id {
        Some(id) => id.clone(),
        None => hostname()?,
    };
    if node_id.trim().is_empty() {
        bail!("the node ID is empty; give one with --node-id NAME");
    }
    if a.max_volumes < 0 {
        bail!(
            "--max-volumes {} is negative; give 0 for no limit or a positive count",
            a.max_volumes
        );
    }
    let both = !a.controller && !a.node;
    let config = strata_csi::server::Config {
        socket,
        node_id,
        controller: a.controller || both,
        node: a.node || both,
        attach_required: a.attach_required,
        max_volumes_per_node: a.max_volumes,
    };
    bind_server(settings, config)?.run_until_signal()?;
    Ok(())
}

/// The CSI server over this store's volumes, its socket bound.
pub fn bind_server(
    settings: &crate::settings::Settings,
    config: strata_csi::server::Config,
) -> anyhow::Result<strata_csi::server::Server> {
    let settings = settings.clone();
    Ok(strata_csi::server::Server::bind(
        config,
        move || -> anyhow::Result<strata_csi::storage::Storage> {
            let store = crate::open_store(&settings)?;
            Ok(strata_csi::storage::Storage::new(
                store.layout(),
                store.db().clone(),
            ))
        },
    )?)
}

/// This host's name, the default node ID.
pub fn hostname() -> anyhow::Result<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() || name == "(none)" {
        bail!("this host has no name to use as the node ID; give one with --node-id NAME");
    }
    Ok(name)
}

fn info(endpoint: &str, a: &CsiFormatArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let info = connect(endpoint)?.info()?;
    let names = |caps: Option<Vec<&'static str>>| caps.map(|c| c.join(", "));
    let controller: Option<Vec<&str>> = info
        .controller
        .as_ref()
        .map(|c| c.iter().map(|t| t.as_str_name()).collect());
    let node: Option<Vec<&str>> = info
        .node
        .as_ref()
        .map(|c| c.iter().map(|t| t.as_str_name()).collect());
    if a.format == OutputFormat::Json {
        let node_info = info.node_info.as_ref().map(|n| {
            json!({
                "NodeId": n.node_id,
                "MaxVolumesPerNode": n.max_volumes_per_node,
                "Topology": n.topology,
            })
        });
        let line = json!({
            "Name": info.name,
            "VendorVersion": info.vendor_version,
            "Manifest": info.manifest,
            "PluginCapabilities": info.plugin_capability_names(),
            "ControllerCapabilities": controller,
            "NodeCapabilities": node,
            "Node": node_info,
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    let not_served = || "not served".to_owned();
    let none = |s: String| if s.is_empty() { "none".to_owned() } else { s };
    let mut lines = vec![
        ("Driver", info.name.clone()),
        ("Version", info.vendor_version.clone()),
    ];
    if !info.manifest.is_empty() {
        lines.push(("Manifest", pairs_text(&info.manifest)));
    }
    lines.push((
        "Plugin capabilities",
        none(info.plugin_capability_names().join(", ")),
    ));
    lines.push((
        "Controller",
        names(controller).map(none).unwrap_or_else(not_served),
    ));
    lines.push(("Node", names(node).map(none).unwrap_or_else(not_served)));
    if let Some(n) = &info.node_info {
        lines.push(("Node ID", n.node_id.clone()));
        let max = match n.max_volumes_per_node {
            0 => "no limit".to_owned(),
            m => m.to_string(),
        };
        lines.push(("Max volumes", max));
        lines.push(("Topology", none(pairs_text(&n.topology))));
    }
    for (key, value) in lines {
        writeln!(out, "{:<21}{value}", format!("{key}:"))?;
    }
    Ok(())
}

fn pairs_text(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mode(m: CsiAccessMode) -> Mode {
    match m {
        CsiAccessMode::SingleNodeWriter => Mode::SingleNodeWriter,
        CsiAccessMode::SingleNodeReaderOnly => Mode::SingleNodeReaderOnly,
        CsiAccessMode::SingleNodeSingleWriter => Mode::SingleNodeSingleWriter,
        CsiAccessMode::SingleNodeMultiWriter => Mode::SingleNodeMultiWriter,
        CsiAccessMode::MultiNodeReaderOnly => Mode::MultiNodeReaderOnly,
        CsiAccessMode::MultiNodeSingleWriter => Mode::MultiNodeSingleWriter,
        CsiAccessMode::MultiNodeMultiWriter => Mode::MultiNodeMultiWriter,
    }
}

/// A size as `volume create --opt size=` reads it (Docker's RAMInBytes:
/// 64M, 1.5G, 10GiB); more than 0 bytes.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let bytes = strata_mountspec::parse_size(text)?;
    if bytes == 0 {
        bail!("invalid size: '{text}' (a volume must be more than 0 bytes)");
    }
    Ok(bytes)
}

fn parameters(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                if map.insert(k.to_owned(), v.to_owned()).is_some() {
                    bail!("parameter '{k}' is given twice; give each parameter once");
                }
            }
            _ => bail!("invalid parameter '{item}': use KEY=VALUE"),
        }
    }
    Ok(map)
}

fn access(block: bool, fs: Option<&str>, mount_flags: &[String]) -> Access {
    if block {
        return Access::Block;
    }
    Access::Mount {
        fs_type: fs.unwrap_or_default().to_owned(),
        mount_flags: mount_flags.to_vec(),
    }
}

/// The volume `csi create` asks for.
fn volume_spec(a: &CsiCreateArgs) -> anyhow::Result<VolumeSpec> {
    let mut spec = VolumeSpec::new(&a.name);
    spec.capacity = a.size.as_deref().map(parse_size).transpose()?;
    spec.parameters = parameters(&a.param)?;
    spec.access = access(a.block, a.fs.as_deref(), &[]);
    spec.access_mode = mode(a.access_mode);
    spec.source = match (&a.from_snapshot, &a.from_volume) {
        (Some(s), _) => Some(ContentSource::Snapshot(s.clone())),
        (None, Some(v)) => Some(ContentSource::Volume(v.clone())),
        (None, None) => None,
    };
    // Refused here, before anything is sent.
    strata_csi::client::create_request(&spec)?;
    Ok(spec)
}

fn create(endpoint: &str, a: &CsiCreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let spec = volume_spec(a)?;
    let volume = connect(endpoint)?.create_volume(&spec)?;
    writeln!(out, "{}", volume.volume_id)?;
    Ok(())
}

/// `path` made absolute against the current folder (CSI takes only
/// absolute paths), without resolving symlinks.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

fn publish(endpoint: &str, a: &CsiPublishArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let target = absolute(&a.at.target)?;
    let opts = PublishOptions {
        readonly: a.readonly,
        access: access(a.block, a.fs.as_deref(), &a.mount_flags),
        access_mode: mode(a.access_mode),
        staging_root: Some(absolute(&a.at.staging_root)?),
        node_id: a.at.node_id.clone(),
        ..PublishOptions::default()
    };
    connect(endpoint)?.publish(&a.at.id, &target, &opts)?;
    writeln!(out, "{}", target.display())?;
    Ok(())
}

fn unpublish(endpoint: &str, a: &CsiTargetArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let target = absolute(&a.target)?;
    let opts = UnpublishOptions {
        staging_root: Some(absolute(&a.staging_root)?),
        node_id: a.node_id.clone(),
        ..UnpublishOptions::default()
    };
    let done = connect(endpoint)?.unpublish(&a.id, &target, &opts)?;
    if !done.released {
        let others: Vec<String> = done
            .remaining
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "volume {} stays staged on this node: it is still published at {}",
            a.id,
            others.join(", ")
        );
    }
    writeln!(out, "{}", target.display())?;
    Ok(())
}

fn ls(endpoint: &str, a: &CsiLsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let entries = connect(endpoint)?.list_volumes(a.page_size)?;
    let volumes = entries.iter().filter_map(|e| {
        e.volume
            .as_ref()
            .map(|v| (v, e.status.clone().unwrap_or_default()))
    });
    if a.quiet {
        for (v, _) in volumes {
            writeln!(out, "{}", v.volume_id)?;
        }
        return Ok(());
    }
    if a.format == OutputFormat::Json {
        for (v, status) in volumes {
            let line = json!({
                "VolumeId": v.volume_id,
                "CapacityBytes": v.capacity_bytes,
                "VolumeContext": sorted(&v.volume_context),
                "ContentSource": content_source(v.content_source.as_ref()),
                "AccessibleTopology": v
                    .accessible_topology
                    .iter()
                    .map(|t| sorted(&t.segments))
                    .collect::<Vec<_>>(),
                "PublishedNodeIds": status.published_node_ids,
                "Condition": status.volume_condition.map(|c| json!({
                    "Abnormal": c.abnormal,
                    "Message": c.message,
                })),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let mut table = Table::new(&["VOLUME ID", "CAPACITY", "PUBLISHED NODES", "CONDITION"]);
    for (v, status) in volumes {
        let nodes = match status.published_node_ids.join(",") {
            n if n.is_empty() => "<none>".to_owned(),
            n => n,
        };
        table.row(vec![
            v.volume_id.clone(),
            capacity(v.capacity_bytes),
            nodes,
            condition(status.volume_condition.as_ref()),
        ]);
    }
    table.print(out)?;
    Ok(())
}

fn sorted(map: &std::collections::HashMap<String, String>) -> BTreeMap<&str, &str> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn content_source(source: Option<&pb::VolumeContentSource>) -> serde_json::Value {
    use pb::volume_content_source::Type;
    match source.and_then(|s| s.r#type.as_ref()) {
        Some(Type::Snapshot(s)) => json!({"SnapshotId": s.snapshot_id}),
        Some(Type::Volume(v)) => json!({"VolumeId": v.volume_id}),
        None => serde_json::Value::Null,
    }
}

/// A capacity as Docker prints sizes; "unknown" when the driver gives none.
fn capacity(bytes: i64) -> String {
    match u64::try_from(bytes) {
        Ok(b) if b > 0 => size(b),
        _ => "unknown".to_owned(),
    }
}

fn condition(c: Option<&pb::VolumeCondition>) -> String {
    match c {
        None => "unknown".to_owned(),
        Some(c) if c.abnormal => format!("abnormal: {}", c.message),
        Some(_) => "healthy".to_owned(),
    }
}

/// `snapshot create`: takes the snapshot and waits until it is ready to
/// use, repeating CreateSnapshot as the spec has a CO do.
fn snapshot_create(
    endpoint: &str,
    a: &CsiSnapshotCreateArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let client = connect(endpoint)?;
    let started = Instant::now();
    loop {
        let snapshot = client.create_snapshot(&a.source, &a.name)?;
        if snapshot.ready_to_use {
            writeln!(out, "{}", snapshot.snapshot_id)?;
            return Ok(());
        }
        if started.elapsed() > SNAPSHOT_READY {
            bail!(
                "snapshot {} of volume {} is not ready to use after {} minutes; check it later with `strata csi snapshot ls`",
                snapshot.snapshot_id,
                a.source,
                SNAPSHOT_READY.as_secs() / 60
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn snapshot_ls(endpoint: &str, a: &CsiSnapshotLsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let snapshots = connect(endpoint)?
        .list_snapshots(a.source.as_deref(), strata_csi::client::DEFAULT_PAGE_SIZE)?;
    if a.quiet {
        for s in &snapshots {
            writeln!(out, "{}", s.snapshot_id)?;
        }
        return Ok(());
    }
    let created = |s: &pb::Snapshot| {
        s.creation_time
            .as_ref()
            .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
            .map(|t| t.to_string())
    };
    if a.format == OutputFormat::Json {
        for s in &snapshots {
            let line = json!({
                "SnapshotId": s.snapshot_id,
                "SourceVolumeId": s.source_volume_id,
                "SizeBytes": s.size_bytes,
                "ReadyToUse": s.ready_to_use,
                "CreationTime": created(s),
                "GroupSnapshotId": s.group_snapshot_id,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let mut table = Table::new(&["SNAPSHOT ID", "SOURCE VOLUME", "SIZE", "READY", "CREATED"]);
    for s in &snapshots {
        table.row(vec![
            s.snapshot_id.clone(),
            s.source_volume_id.clone(),
            capacity(s.size_bytes),
            if s.ready_to_use { "yes" } else { "no" }.to_owned(),
            ago(created(s).as_deref()),
        ]);
    }
    table.print(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let check = |input: &str, expected: Result<u64, &str>| {
            let got = parse_size(input).map_err(|e| e.to_string());
            match (&got, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(g, e, "{input}"),
                (Err(g), Err(e)) => assert!(g.contains(e), "{input}: {g}"),
                _ => panic!("{input}: {got:?}, expected {expected:?}"),
            }
        };
        check("64M", Ok(64 << 20));
        check("1G", Ok(1 << 30));
        check("1.5GiB", Ok(3 << 29));
        check("16m", Ok(16 << 20));
        check("4096", Ok(4096));
        check("0", Err("more than 0 bytes"));
        check("12x", Err("invalid size: '12x'"));
        check("", Err("invalid size"));
        check("-1G", Err("invalid size"));
    }

    #[test]
    fn parameter_pairs() {
        let check = |input: &[&str], expected: Result<Vec<(&str, &str)>, &str>| {
            let items: Vec<String> = input.iter().map(|s| s.to_string()).collect();
            let got = parameters(&items).map_err(|e| e.to_string());
            match (&got, &expected) {
                (Ok(g), Ok(e)) => {
                    let e: BTreeMap<String, String> = e
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(g, &e, "{input:?}");
                }
                (Err(g), Err(e)) => assert!(g.contains(e), "{input:?}: {g}"),
                _ => panic!("{input:?}: {got:?}, expected {expected:?}"),
            }
        };
        check(&[], Ok(vec![]));
        check(
            &["type=image", "fs=xfs"],
            Ok(vec![("type", "image"), ("fs", "xfs")]),
        );
        check(&["k="], Ok(vec![("k", "")]));
        check(&["a=b=c"], Ok(vec![("a", "b=c")]));
        check(&["nokey"], Err("invalid parameter 'nokey': use KEY=VALUE"));
        check(&["=v"], Err("invalid parameter '=v'"));
        check(&["a=1", "a=2"], Err("parameter 'a' is given twice"));
    }

    #[test]
    fn capacities_and_conditions() {
        let check = |input: &str, got: String, expected: &str| assert_eq!(got, expected, "{input}");
        check("64M", capacity(64 << 20), "67.1MB");
        check("0", capacity(0), "unknown");
        check("-1", capacity(-1), "unknown");
        check("none", condition(None), "unknown");
        check(
            "healthy",
            condition(Some(&pb::VolumeCondition {
                abnormal: false,
                message: "volume is healthy".into(),
            })),
            "healthy",
        );
        check(
            "abnormal",
            condition(Some(&pb::VolumeCondition {
                abnormal: true,
                message: "image is gone".into(),
            })),
            "abnormal: image is gone",
        );
    }
}
