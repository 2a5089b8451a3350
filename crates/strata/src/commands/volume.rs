//! Volume commands: volume create, ls, inspect, rm, prune.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};
use serde_json::json;
use std::path::PathBuf;
use std::rc::Rc;

use strata_volume::{CreateRequest, Filter, PluginError, Plugins, VolumeDriver, Volumes};

use super::{for_each, inspect_each};
use crate::cli::*;
use crate::output::{Columns, labels_text, print_list, size};

/// The volume service, with the plugins installed on this host.
pub fn service(store: &strata_image::Store) -> Volumes {
    let plugins = Installed(strata_plugin::Registry::from_env().map_err(|e| e.to_string()));
    Volumes::new(store.layout(), store.db().clone(), Box::new(plugins))
}

/// The volume plugins found where Docker (or `STRATA_PLUGIN_DIRS`) says.
/// Bad settings in the environment matter only once a plugin is used.
struct Installed(Result<strata_plugin::Registry, String>);

impl Plugins for Installed {
    fn find(&self, name: &str) -> Result<Option<Rc<dyn VolumeDriver>>, PluginError> {
        let found = self.0.as_ref().map_err(|e| e.clone())?.find(name)?;
        Ok(found.map(|d| Rc::new(d) as Rc<dyn VolumeDriver>))
    }

    fn scan(&self) -> Vec<String> {
        self.0.as_ref().map(|r| r.scan()).unwrap_or_default()
    }

    fn places(&self) -> String {
        let dirs = strata_plugin::PluginDirs::from_env();
        let mut places = vec![dirs.sockets.display().to_string()];
        places.extend(dirs.specs.iter().map(|d| d.display().to_string()));
        places.join(", ")
    }
}

/// `plugin serve`: this store's local volumes, to Docker.
pub fn serve(settings: &crate::settings::Settings, a: &PluginServeArgs) -> anyhow::Result<()> {
    strata_mountspec::validate_volume_name(&a.name).map_err(|_| {
        anyhow::anyhow!(
            "invalid plugin name '{}': use letters, digits, '_', '.' and '-'",
            a.name
        )
    })?;
    let socket = a
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/run/docker/plugins/{}.sock", a.name)));
    let (settings, name) = (settings.clone(), a.name.clone());
    strata_plugin::serve_blocking(&socket, move || -> anyhow::Result<Box<dyn VolumeDriver>> {
        let store = crate::open_store(&settings)?;
        // Mounts Docker holds survive a plugin restart: Docker still
        // counts them and will send their Unmount.
        let volumes = Volumes::new(
            store.layout(),
            store.db().clone(),
            Box::new(strata_volume::NoPlugins),
        );
        Ok(Box::new(strata_volume::served::Served::new(&name, volumes)))
    })?;
    Ok(())
}

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
    let (list, warnings) = volumes.list_all(&filters)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if a.quiet {
        for v in &list {
            writeln!(out, "{}", v.name)?;
        }
        return Ok(());
    }
    let rows: Vec<_> = list
        .iter()
        .map(|v| {
            json!({
                "Driver": v.driver,
                "Labels": labels_text(&v.labels),
                "Links": "N/A",
                "Mountpoint": v.mountpoint,
                "Name": v.name,
                "Scope": v.scope,
                "Size": "N/A",
            })
        })
        .collect();
    let columns = Columns {
        headers: &[
            ("Driver", "DRIVER"),
            ("Labels", "LABELS"),
            ("Links", "LINKS"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Name", "VOLUME NAME"),
            ("Scope", "SCOPE"),
            ("Size", "SIZE"),
        ],
        default: &["Driver", "Name"],
    };
    print_list(&a.format, &columns, &rows, out)
}

pub fn inspect(
    volumes: &Volumes,
    a: &VolumeInspectArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    inspect_each(&a.volumes, a.format.as_deref(), "volume", out, |name| {
        Ok(serde_json::to_value(volumes.inspect(name)?)?)
    })
}

pub fn rm(volumes: &Volumes, a: &VolumeRmArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    for_each(&a.volumes, "volumes", "removed", |name| {
        match volumes.remove(name) {
            // Docker's `-f`: a volume already gone is what was asked for.
            Err(strata_volume::VolumeError::NotFound(_)) if a.force => {}
            result => result?,
        }
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

pub fn export(volumes: &Volumes, a: &VolumeExportArgs) -> anyhow::Result<()> {
    super::write_tar(a.output.as_deref(), |out| {
        volumes.with_mounted(&a.volume, |data| {
            strata_volume::backup::export(data, out).map_err(Into::into)
        })?;
        Ok(())
    })
}

pub fn import(volumes: &Volumes, a: &VolumeImportArgs) -> anyhow::Result<()> {
    let mut input: Box<dyn std::io::Read> = match a.file.as_deref() {
        Some(p) if p.as_os_str() != "-" => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        _ => Box::new(std::io::stdin().lock()),
    };
    let created = fresh(volumes, &a.volume, |name| {
        volumes.create(&CreateRequest {
            name: Some(name.to_owned()),
            ..CreateRequest::default()
        })
    })?;
    let imported = volumes.with_mounted(&a.volume, |data| {
        strata_volume::backup::import(&mut input, data).map_err(Into::into)
    });
    undo_if_failed(volumes, &a.volume, created, imported)?;
    Ok(())
}

pub fn clone(volumes: &Volumes, a: &VolumeCloneArgs) -> anyhow::Result<()> {
    let source = volumes.get(&a.source)?;
    let created = fresh(volumes, &a.target, |name| {
        volumes.create(&CreateRequest {
            name: Some(name.to_owned()),
            driver: Some(source.driver.clone()),
            labels: source.labels.clone(),
            options: source.options.clone(),
        })
    })?;
    if !created {
        bail!(
            "volume {} already exists; clone into a new name or remove it first",
            a.target
        );
    }
    let cloned = volumes.with_mounted(&a.source, |src| {
        volumes.with_mounted(&a.target, |dst| {
            strata_volume::backup::clone_tree(src, dst).map_err(Into::into)
        })
    });
    undo_if_failed(volumes, &a.target, true, cloned)?;
    Ok(())
}

/// Creates `name` with `create` unless it exists; says whether it did.
fn fresh(
    volumes: &Volumes,
    name: &str,
    create: impl FnOnce(&str) -> strata_volume::Result<strata_volume::Volume>,
) -> anyhow::Result<bool> {
    match volumes.get(name) {
        Ok(_) => Ok(false),
        Err(strata_volume::VolumeError::NotFound(_)) => {
            create(name).map(|_| true).map_err(Into::into)
        }
        Err(e) => Err(e.into()),
    }
}

/// A volume made for a command that then failed goes again, so a failed
/// command leaves the volumes as they were.
fn undo_if_failed<T>(
    volumes: &Volumes,
    name: &str,
    created: bool,
    result: strata_volume::Result<T>,
) -> anyhow::Result<T> {
    result.map_err(|e| {
        if created {
            let _ = volumes.remove(name);
        }
        e.into()
    })
}
