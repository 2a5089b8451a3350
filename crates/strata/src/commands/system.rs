//! `system df` and `system check`.

use std::io::Write;

use anyhow::bail;
use serde_json::json;
use strata_image::Store;
use strata_image::check::CheckOptions;

use crate::cli::{CheckArgs, DfArgs, OutputFormat};
use crate::output::{Table, ago, size};

pub fn df(store: &Store, args: &DfArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let usage = store.disk_usage()?;
    let cache = store.build_cache_usage()?;
    let images = usage.images.len();
    let volumes = super::volume::service(store).usage()?;
    let count = |used: bool| volumes.iter().filter(move |(_, l, _)| (*l > 0) == used);
    let volume_bytes: u64 = volumes.iter().map(|(_, _, b)| b).sum();
    // No containers yet: every image is reclaimable.
    let summary = [
        (
            "Images",
            images as u64,
            0u64,
            usage.layers_size,
            usage.layers_size,
        ),
        ("Containers", 0, 0, 0, 0),
        (
            "Local Volumes",
            volumes.len() as u64,
            count(true).count() as u64,
            volume_bytes,
            count(false).map(|(_, _, b)| b).sum(),
        ),
        (
            "Build Cache",
            cache.steps,
            0,
            cache.bytes,
            cache.reclaimable,
        ),
    ];
    if args.format == OutputFormat::Json {
        for (kind, total, active, sz, reclaimable) in summary {
            let v = json!({
                "Type": kind, "TotalCount": total, "Active": active,
                "Size": size(sz), "Reclaimable": size(reclaimable),
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    if !args.verbose {
        let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
        for (kind, total, active, sz, reclaimable) in summary {
            let pct = (reclaimable * 100)
                .checked_div(sz)
                .map(|p| format!(" ({p}%)"))
                .unwrap_or_default();
            t.row(vec![
                kind.into(),
                total.to_string(),
                active.to_string(),
                size(sz),
                format!("{}{pct}", size(reclaimable)),
            ]);
        }
        t.print(out)?;
        return Ok(());
    }
    writeln!(out, "Images space usage:\n")?;
    let mut t = Table::new(&[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]);
    for u in &usage.images {
        let row = &u.image.row;
        let names: Vec<(String, String)> = if u.image.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            u.image
                .names
                .iter()
                .map(|n| {
                    (
                        n.familiar_repository(),
                        n.tag().unwrap_or("<none>").to_owned(),
                    )
                })
                .collect()
        };
        for (repo, tag) in names {
            t.row(vec![
                repo,
                tag,
                row.id.short().to_owned(),
                ago(row.created.as_deref()),
                size(row.size),
                size(u.shared),
                size(u.unique),
                "0".into(),
            ]);
        }
    }
    t.print(out)?;
    writeln!(
        out,
        "\nLayers: {} stored once, {} in all; {} shared by several images ({})",
        usage.layers,
        size(usage.layers_size),
        usage.shared_layers,
        size(usage.shared_size)
    )?;
    writeln!(
        out,
        "\nContainers space usage:\n\nCONTAINER ID   IMAGE   COMMAND   LOCAL VOLUMES   SIZE   CREATED   STATUS   NAMES"
    )?;
    writeln!(out, "\nLocal Volumes space usage:\n")?;
    let mut t = Table::new(&["VOLUME NAME", "LINKS", "SIZE"]);
    for (v, links, bytes) in &volumes {
        t.row(vec![v.name.clone(), links.to_string(), size(*bytes)]);
    }
    t.print(out)?;
    writeln!(out, "\nBuild cache usage: 0B")?;
    Ok(())
}

pub fn check(store: &Store, args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // Exclusive even without --repair: a load in progress is not a problem,
    // so the check waits until nobody is working.
    store.begin_exclusive()?;
    let mut report = store.check(&CheckOptions {
        repair: args.repair,
        verify_digests: !args.quick,
    })?;
    for what in strata_container::Containers::new(store, super::volume::service(store))
        .check(args.repair)?
    {
        report.problems.push(strata_image::check::Problem {
            what,
            repaired: args.repair,
        });
    }
    for p in &report.problems {
        let tag = if p.repaired { "repaired" } else { "problem" };
        writeln!(out, "{tag}: {}", p.what)?;
    }
    let unresolved = report.unresolved();
    match (report.problems.len(), unresolved) {
        (0, _) => writeln!(out, "no problems found")?,
        (n, 0) => writeln!(out, "{} found, all repaired", problems(n))?,
        (n, u) => {
            writeln!(out, "{} found, {u} not repaired", problems(n))?;
            if !args.repair {
                bail!("the store has problems; run 'strata system check --repair'");
            }
            bail!("some problems could not be repaired");
        }
    }
    Ok(())
}

fn problems(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}
