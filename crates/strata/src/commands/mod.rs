pub mod build;
pub mod container;
pub mod csi;
pub mod image;
pub mod pods;
pub mod serve;
pub mod system;
pub mod volume;

use std::io::Write;

use anyhow::bail;

use crate::output::{pretty_json, template};

/// Runs `f` for every name, as docker does: one failure does not stop the
/// rest; each is reported, and the command fails if any did. With one
/// name, its error is the command's.
pub fn for_each(
    names: &[String],
    what: &str,
    done: &str,
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let [one] = names {
        return f(one);
    }
    let mut failed = 0;
    for name in names {
        if let Err(e) = f(name) {
            eprintln!("Error: {}", crate::message(&e));
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} {what} could not be {done}", names.len());
    }
    Ok(())
}

/// `inspect` of every name: the values as one JSON array, or each through
/// `--format`; names `lookup` cannot find are reported, and then fail the
/// command.
pub fn inspect_each(
    names: &[String],
    format: Option<&str>,
    what: &str,
    out: &mut dyn Write,
    mut lookup: impl FnMut(&str) -> anyhow::Result<serde_json::Value>,
) -> anyhow::Result<()> {
    let mut found = Vec::new();
    let mut failed = false;
    for name in names {
        match lookup(name) {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("Error: {}", crate::message(&e));
                failed = true;
            }
        }
    }
    match format {
        Some(tpl) => {
            for v in &found {
                writeln!(out, "{}", template(tpl, v)?)?;
            }
        }
        None => writeln!(out, "{}", pretty_json(&serde_json::Value::Array(found)))?,
    }
    if failed {
        bail!("not every {what} could be inspected");
    }
    Ok(())
}

/// Asks before removing `what`, as docker's prune commands do; `force`
/// skips the question.
pub fn confirm(force: bool, what: &str) -> anyhow::Result<bool> {
    if force {
        return Ok(true);
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Writes a tar made by `write` to `output` (whole or not at all: a
/// temporary file renamed into place), or to stdout if that is not a
/// terminal.
pub fn write_tar(
    output: Option<&std::path::Path>,
    write: impl FnOnce(&mut (dyn Write + Send)) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let Some(path) = output else {
        if std::io::stdout().is_terminal() {
            bail!("refusing to write a tar to a terminal; use -o FILE or redirect the output");
        }
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        write(&mut out)?;
        return Ok(out.flush()?);
    };
    strata_store::fsutil::write_streamed(
        path,
        |out| write(out),
        |p, e| anyhow::Error::new(e).context(format!("writing {}", p.display())),
    )
}
