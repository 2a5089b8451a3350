//! Volume commands: volume create, ls, inspect, rm, prune.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;
use serde_json::json;
use strata_volume::{CreateRequest, Filter, Volumes};

use super::{for_each, inspect_each};
use crate::cli::*;
use crate::output::{Table, size};

fn pairs(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => map.insert(k.to_owned(), v.to_owned()),
            _ if what == "label" && !item.is_empty() => map.insert(item.clone(), String::new()),
            _ => bail!("invalid {what} '{item}': use KEY=VALUE"),
        };
    }
    Ok(map)
}

pub fn create(volumes: &Volumes, a: &VolumeCreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let v = volumes.create(&CreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        labels: pairs(&a.label, "label")?,
        options: pairs(&a.opt, "option")?,
    })?;
    writeln!(out, "{}", v.name)?;
    Ok(())
}

pub fn ls(volumes: &Volumes, a: &VolumeLsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let filters = a
        .filter
        .iter()
        .map(|f| f.parse::<Filter>())
        .collect::<Result<Vec<_>, _>>()?;
    let list = volumes.list(&filters)?;
    if a.quiet {
        for v in &list {
            writeln!(out, "{}", v.name)?;
        }
        return Ok(());
    }
    if a.format == OutputFormat::Json {
        for v in &list {
            let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
            let line = json!({
                "Driver": v.driver,
                "Labels": labels.join(","),
                "Mountpoint": v.mountpoint,
                "Name": v.name,
                "Scope": v.scope,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let mut table = Table::new(&["DRIVER", "VOLUME NAME"]);
    for v in &list {
        table.row(vec![v.driver.clone(), v.name.clone()]);
    }
    table.print(out)?;
    Ok(())
}

pub fn inspect(
    volumes: &Volumes,
    a: &VolumeInspectArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    inspect_each(&a.volumes, a.format.as_deref(), "volume", out, |name| {
        Ok(serde_json::to_value(volumes.get(name)?)?)
    })
}

pub fn rm(volumes: &Volumes, a: &VolumeRmArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    for_each(&a.volumes, "volumes", "removed", |name| {
        volumes.remove(name)?;
        Ok(writeln!(out, "{name}")?)
    })
}

pub fn prune(volumes: &Volumes, a: &VolumePruneArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (removed, freed) = volumes.prune(a.all)?;
    if !removed.is_empty() {
        writeln!(out, "Deleted Volumes:")?;
        for name in &removed {
            writeln!(out, "{name}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", size(freed))?;
    Ok(())
}
