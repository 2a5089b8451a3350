//! `build` and `builder prune`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use strata_build::{BuildOptions, ContextSource, DockerfileSource};
use strata_image::{Reference, Store};

use crate::cli::{BuildArgs, PruneArgs};
use crate::output::size;

pub fn build(
    store: &Store,
    runtime: &Path,
    args: &BuildArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if args.pull != "false" {
        bail!(
            "--pull={}: strata builds use the base images in the store and cannot pull; load them first and drop --pull",
            args.pull
        );
    }
    let context = match args.context.as_str() {
        "-" => ContextSource::Stdin,
        dir => ContextSource::Dir(PathBuf::from(dir)),
    };
    let dockerfile = match args.file.as_deref() {
        None => DockerfileSource::Default,
        Some("-") if args.context == "-" => {
            bail!("-f - and a context of - both want stdin; give one of them a file")
        }
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the Dockerfile from stdin")?;
            DockerfileSource::Text(text)
        }
        Some(p) => DockerfileSource::Path(PathBuf::from(p)),
    };
    let tags = args
        .tags
        .iter()
        .map(|t| t.parse::<Reference>().with_context(|| format!("-t {t}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = BuildOptions {
        context,
        dockerfile,
        tags,
        build_args: build_args(&args.build_args)?,
        target: args.target.clone(),
        no_cache: args.no_cache,
        labels: pairs(&args.labels, "--label")?,
        runtime: runtime.to_owned(),
        quiet: args.quiet,
    };
    let built = strata_build::build(store, &opts, &mut std::io::stdin(), out)?;
    if !built.unused_args.is_empty() {
        eprintln!(
            "[Warning] One or more build-args {:?} were not consumed",
            built.unused_args
        );
    }
    Ok(())
}

/// `--build-arg K=V`, or `K` to take the value from our environment (an
/// arg not set there is left out, as docker does).
fn build_args(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                map.insert(k.to_owned(), v.to_owned());
            }
            Some(_) => bail!("--build-arg {a}: give KEY=VALUE"),
            None => {
                if let Ok(v) = std::env::var(a) {
                    map.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(map)
}

fn pairs(args: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ if !a.is_empty() && !a.contains('=') => Ok((a.clone(), String::new())),
            _ => bail!("{flag} {a}: give KEY=VALUE"),
        })
        .collect()
}

pub fn prune(store: &Store, args: &PruneArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let what = if args.all {
        "all build cache"
    } else {
        "the build cache of intermediate steps"
    };
    if !super::confirm(args.force, what)? {
        writeln!(out, "Total reclaimed space: 0B")?;
        return Ok(());
    }
    let pruned = store.prune_build_cache(args.all)?;
    writeln!(out, "Deleted build cache steps: {}", pruned.steps)?;
    writeln!(out, "Total reclaimed space: {}", size(pruned.bytes))?;
    Ok(())
}
