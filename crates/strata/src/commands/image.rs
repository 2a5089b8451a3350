//! Image commands: images, inspect, history, import, load, save, tag, rmi, prune.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;
use strata_image::load::ImportOptions;
use strata_image::remove::Removed;
use strata_image::save::{SaveFormat, SaveOptions, Target};
use strata_image::{Reference, Store};

use super::{for_each, inspect_each};
use crate::cli::*;
use crate::output::{Columns, Table, ago, docker_time, print_list, size};
use crate::progress::for_terminal;

pub fn images(store: &Store, args: &ImagesArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let images = store.images()?;
    let id = |d: &strata_store::Digest| {
        if args.no_trunc {
            d.to_string()
        } else {
            d.short().to_owned()
        }
    };
    if args.quiet {
        for image in &images {
            writeln!(out, "{}", id(&image.row.id))?;
        }
        return Ok(());
    }
    // One row per tag; untagged images once, as <none>.
    let mut rows = Vec::new();
    for image in &images {
        if image.names.is_empty() {
            rows.push((image, "<none>".to_owned(), "<none>".to_owned()));
        }
        for n in &image.names {
            rows.push((
                image,
                n.familiar_repository(),
                n.tag().unwrap_or("<none>").to_owned(),
            ));
        }
    }
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(image, repo, tag)| {
            json!({
                "Containers": "N/A",
                "CreatedAt": image.row.created.as_deref().map(docker_time).unwrap_or_default(),
                "CreatedSince": ago(image.row.created.as_deref()),
                "Digest": image.row.manifest.to_string(),
                "ID": id(&image.row.id),
                "Repository": repo,
                "Tag": tag,
                "Size": size(image.row.size),
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "VirtualSize": size(image.row.size),
            })
        })
        .collect();
    let columns = Columns {
        headers: &[
            ("Containers", "CONTAINERS"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedSince", "CREATED"),
            ("Digest", "DIGEST"),
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("VirtualSize", "VIRTUAL SIZE"),
        ],
        default: if args.digests {
            &["Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"]
        } else {
            &["Repository", "Tag", "ID", "CreatedSince", "Size"]
        },
    };
    print_list(&args.format, &columns, &rows, out)
}

pub fn inspect(store: &Store, args: &InspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    inspect_each(&args.images, args.format.as_deref(), "image", out, |name| {
        Ok(store.inspect(name)?)
    })
}

pub fn history(store: &Store, args: &HistoryArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let rows = store.history(&args.image)?;
    let id = |d: &Option<strata_store::Digest>| match d {
        Some(d) if args.no_trunc => d.to_string(),
        Some(d) => d.short().to_owned(),
        None => "<missing>".to_owned(),
    };
    if args.quiet {
        for r in &rows {
            writeln!(out, "{}", id(&r.id))?;
        }
        return Ok(());
    }
    if args.format == OutputFormat::Json {
        for r in &rows {
            let v = json!({
                "ID": id(&r.id),
                "CreatedAt": r.created,
                "CreatedSince": ago(r.created.as_deref()),
                "CreatedBy": r.created_by,
                "Size": size(r.size),
                "Comment": r.comment,
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    let mut table = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for r in &rows {
        let by = r.created_by.replace('\t', " ");
        let by = if args.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        let (created, sz) = if args.human {
            (ago(r.created.as_deref()), size(r.size))
        } else {
            (r.created.clone().unwrap_or_default(), r.size.to_string())
        };
        table.row(vec![id(&r.id), created, by, sz, r.comment.clone()]);
    }
    table.print(out)?;
    Ok(())
}

pub fn import(store: &Store, args: &ImportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = args
        .reference
        .as_deref()
        .map(str::parse::<Reference>)
        .transpose()?;
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if args.file == "-" {
        if std::io::stdin().is_terminal() {
            bail!(
                "requested import from stdin, but stdin is a terminal; pipe a tar into it or name a file"
            );
        }
        (Box::new(std::io::stdin()), None)
    } else {
        let path = Path::new(&args.file);
        let file = std::fs::File::open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let len = file.metadata().map(|m| m.len()).ok();
        (Box::new(file), len)
    };
    let opts = ImportOptions {
        changes: args.changes.clone(),
        message: args.message.clone(),
    };
    let progress = for_terminal(false);
    let loaded = store.import(
        reader,
        size,
        &args.file,
        name.as_ref(),
        &opts,
        progress.as_ref(),
    )?;
    writeln!(out, "{}", loaded.id)?;
    Ok(())
}

pub fn load(store: &Store, args: &LoadArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let progress = for_terminal(args.quiet);
    let (path, label, spooled) = match &args.input {
        Some(p) => (p.clone(), p.display().to_string(), None),
        None => {
            let (path, spooled) = stdin_as_file(store)?;
            (path, "stdin".to_owned(), spooled)
        }
    };
    let result = store.load(&path, &label, progress.as_ref());
    if let Some(s) = spooled {
        let _ = std::fs::remove_file(s);
    }
    for loaded in result? {
        for (name, old) in &loaded.moved {
            writeln!(
                out,
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                name.familiar()
            )?;
        }
        if loaded.names.is_empty() {
            writeln!(out, "Loaded image ID: {}", loaded.id)?;
        }
        for name in &loaded.names {
            writeln!(out, "Loaded image: {}", name.familiar())?;
        }
    }
    Ok(())
}

/// An archive on stdin as a file: used in place when stdin is one, copied
/// into the store's scratch folder when it is a pipe.
fn stdin_as_file(store: &Store) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!(
            "requested load from stdin, but stdin is a terminal; use -i FILE or redirect an archive into it"
        );
    }
    let stat = rustix::fs::fstat(&stdin).context("stdin")?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile {
        return Ok((PathBuf::from("/dev/stdin"), None));
    }
    // Hold the store lock first: a writer that finds the store idle tidies
    // up `tmp/`, which would take the spool file with it.
    store.begin_write()?;
    let spool = store
        .layout()
        .tmp()
        .join(format!("stdin-{}.tar", strata_store::fsutil::random_hex(6)));
    let mut file =
        std::fs::File::create_new(&spool).with_context(|| format!("{}", spool.display()))?;
    std::io::copy(&mut stdin.lock(), &mut file).context("reading the archive from stdin")?;
    Ok((spool.clone(), Some(spool)))
}

pub fn save(store: &Store, args: &SaveArgs) -> anyhow::Result<()> {
    let (format, dir) = match args.format {
        ArchiveFormat::DockerArchive => (SaveFormat::DockerArchive, false),
        ArchiveFormat::OciArchive => (SaveFormat::Oci, false),
        ArchiveFormat::OciDir => (SaveFormat::Oci, true),
        ArchiveFormat::Oci => (
            SaveFormat::Oci,
            args.output
                .as_ref()
                .is_some_and(|p| p.is_dir() || p.to_string_lossy().ends_with('/')),
        ),
    };
    let target = match (&args.output, dir) {
        (Some(p), true) => Target::Dir(p.clone()),
        (Some(p), false) => Target::File(p.clone()),
        (None, true) => bail!("an OCI layout directory needs -o DIR"),
        (None, false) => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal; use the -o flag or redirect");
            }
            Target::Stdout
        }
    };
    let compression = match args.compression {
        LayerCompression::None => strata_archive::Compression::None,
        LayerCompression::Gzip => strata_archive::Compression::Gzip,
        LayerCompression::Zstd => strata_archive::Compression::Zstd,
    };
    let progress = for_terminal(matches!(target, Target::Stdout));
    store.save(
        &args.images,
        &target,
        &SaveOptions {
            format,
            compression,
        },
        progress.as_ref(),
    )?;
    Ok(())
}

pub fn tag(store: &Store, args: &TagArgs) -> anyhow::Result<()> {
    store.tag(&args.source, &args.target)?;
    Ok(())
}

pub fn rmi(store: &Store, args: &RmiArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    for_each(&args.images, "images", "removed", |name| {
        let removed = store.remove_image(name, args.force)?;
        print_removed(&removed, out, "Untagged", "Deleted")
    })
}

pub fn mount(store: &Store, args: &MountArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    for_each(&args.images, "images", "mounted", |name| {
        let path = store.mount_image(name)?;
        Ok(writeln!(out, "{}", path.display())?)
    })
}

pub fn unmount(store: &Store, args: &MountArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    for_each(&args.images, "images", "unmounted", |name| {
        store.unmount_image(name)?;
        Ok(writeln!(out, "{name}")?)
    })
}

fn print_removed(
    removed: &[Removed],
    out: &mut dyn Write,
    untagged: &str,
    deleted: &str,
) -> anyhow::Result<()> {
    for r in removed {
        match r {
            Removed::Untagged(n) => writeln!(out, "{untagged}: {}", n.familiar())?,
            Removed::Deleted(d) => writeln!(out, "{deleted}: {d}")?,
        }
    }
    Ok(())
}

pub fn prune(store: &Store, args: &PruneArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !super::confirm(args.force, what)? {
        writeln!(out, "Total reclaimed space: 0B")?;
        return Ok(());
    }
    let (removed, reclaimed) = store.prune_images(args.all)?;
    if !removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        print_removed(&removed, out, "untagged", "deleted")?;
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", size(reclaimed))?;
    Ok(())
}
