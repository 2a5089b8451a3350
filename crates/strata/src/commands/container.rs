//! Container commands: create, run, start, stop, kill, rm, ps, logs, wait,
//! exec, diff, commit, export, cp, rename, container prune, inspect.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;
use strata_container::config::MountKind;
use strata_container::{
    ChangeKind, ContainerError, Containers, CreateOptions, ExecOptions, Launch, Monitor, Started,
    Status, short,
};
use strata_image::commit::CommitOptions;
use strata_image::{Reference, Store};

use super::{for_each, inspect_each};
use crate::cli::*;
use crate::output::{Columns, ago, docker_time, labels_text, print_list};
use crate::progress::for_terminal;

/// A command's wish to end with a given exit code (the container's).
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct Exit(pub i32);

/// `run`'s exit status when it fails before the container's command ran,
/// as Docker's: the start failure's (127 when the runtime found no such
/// command, 126 when it could not run it), else 125 (Strata's own).
pub fn run_failed(e: &anyhow::Error) -> i32 {
    match e.downcast_ref() {
        Some(ContainerError::StartFailed { status, .. }) => *status,
        _ => 125,
    }
}

/// What the container commands need besides the store.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub runtime: &'a Path,
    /// How to start a monitor.
    pub monitor: &'a strata_container::MonitorCommand<'a>,
}

impl Ctx<'_> {
    fn containers(&self) -> Containers<'_> {
        Containers::new(self.store, super::volume::service(self.store))
    }
}

fn create_options(ctx: &Ctx, a: &CreateArgs) -> anyhow::Result<CreateOptions> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(strata_mountspec::parse_volume(v, &cwd).with_context(|| format!("-v {v}"))?);
    }
    for m in &a.mount {
        mounts
            .push(strata_mountspec::parse_mount(m, &cwd).with_context(|| format!("--mount {m}"))?);
    }
    for t in &a.tmpfs {
        mounts.push(strata_mountspec::parse_tmpfs(t).with_context(|| format!("--tmpfs {t}"))?);
    }
    let devices = a
        .device
        .iter()
        .map(|d| strata_mountspec::parse_device(d).with_context(|| format!("--device {d}")))
        .collect::<anyhow::Result<_>>()?;
    let mut env = Vec::new();
    for file in &a.env_file {
        env.extend(env_file(file)?);
    }
    env.extend(a.env.iter().cloned());
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    Ok(CreateOptions {
        id: None,
        image: a.image.clone(),
        name: a.name.clone(),
        command: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        interactive: a.interactive,
        read_only: a.read_only,
        network: Some(a.network.clone()),
        hostname: a.hostname.clone(),
        mounts,
        devices,
        volumes_from: a.volumes_from.clone(),
        volume_driver: a.volume_driver.clone(),
        labels,
        stop_timeout: a.stop_timeout,
        auto_remove: a.rm,
        runtime: runtime(a, ctx.runtime),
    })
}

/// `--runtime`, else the configured one.
fn runtime(a: &CreateArgs, configured: &Path) -> PathBuf {
    a.runtime.clone().unwrap_or_else(|| configured.to_owned())
}

/// What `run`'s monitor may start before the store is open.
pub fn launch(settings: &crate::settings::Settings, a: &RunArgs) -> Launch {
    let stdio = strata_runtime::monitor::Stdio3 {
        tty: a.create.tty,
        interactive: a.create.interactive,
        attached: !a.detach,
    };
    Launch::new(runtime(&a.create, &settings.runtime), stdio)
}

/// `--env-file`: KEY=VALUE lines; blank lines and `#` comments skipped.
fn env_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading env file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

pub fn create(ctx: &Ctx, a: &CreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let c = ctx.containers().create(&create_options(ctx, a)?)?;
    writeln!(out, "{}", c.id())?;
    Ok(())
}

/// `run`: create, then start with `monitor` (launched by the caller, as
/// early as it could: attached unless `-d`).
pub fn run(ctx: &Ctx, a: &RunArgs, monitor: Monitor, out: &mut dyn Write) -> anyhow::Result<()> {
    let containers = ctx.containers();
    let opts = CreateOptions {
        id: monitor.launched_id().map(String::from),
        ..create_options(ctx, &a.create)?
    };
    out.flush()?;
    // One batch: the new records' fsync runs while the runtime starts,
    // and still ends before `run` reports anything (the ID, or the exit).
    let (c, started) = ctx.store.db().batch(|| -> anyhow::Result<_> {
        let c = containers.create(&opts)?;
        let started = containers.start(c.id(), monitor)?;
        Ok((c, started))
    })?;
    if a.detach {
        writeln!(out, "{}", c.id())?;
        return Ok(());
    }
    let Started::Attached(attached) = started else {
        bail!("container {} did not start attached", c.name());
    };
    wait_attached(&containers, attached)
}

/// Waits for a container running on our stdio; its exit code is ours.
fn wait_attached(
    containers: &Containers,
    attached: strata_container::Attached,
) -> anyhow::Result<()> {
    let raw = attached.tty().then(RawTerminal::enter).flatten();
    let code = containers.wait_attached(attached);
    drop(raw);
    match code? {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}

/// The user's terminal in raw mode while a `-t` container has it; restored
/// when dropped.
struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

pub fn start(ctx: &Ctx, a: &StartArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let containers = ctx.containers();
    if a.attach {
        let [name] = a.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let monitor = Monitor::spawn((ctx.monitor)(), true)?;
        if let Started::Attached(attached) = containers.start(name, monitor)? {
            return wait_attached(&containers, attached);
        }
        return Ok(());
    }
    for_each(&a.containers, "containers", "started", |name| {
        containers.start(name, Monitor::spawn((ctx.monitor)(), false)?)?;
        Ok(writeln!(out, "{name}")?)
    })
}

pub fn attach(ctx: &Ctx, a: &AttachArgs) -> anyhow::Result<()> {
    use strata_runtime::attach::{AttachOptions, Ended};
    let (c, socket) = ctx.containers().attach_socket(&a.container)?;
    let opts = AttachOptions {
        stdin: c.config.open_stdin && !a.no_stdin,
        tty: c.config.tty,
    };
    let raw = opts.tty.then(RawTerminal::enter).flatten();
    let ended = strata_runtime::attach::attach(&socket, opts);
    drop(raw);
    match ended.with_context(|| format!("attaching to container {}", c.name()))? {
        Ended::Exited(0) | Ended::Detached => Ok(()),
        Ended::Exited(code) => Err(Exit(code).into()),
    }
}

pub fn stop(ctx: &Ctx, a: &StopArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let containers = ctx.containers();
    for_each(&a.containers, "containers", "stopped", |name| {
        containers.stop(name, a.time)?;
        Ok(writeln!(out, "{name}")?)
    })
}

pub fn kill(ctx: &Ctx, a: &KillArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let containers = ctx.containers();
    for_each(&a.containers, "containers", "killed", |name| {
        containers.kill(name, &a.signal)?;
        Ok(writeln!(out, "{name}")?)
    })
}

pub fn rm(ctx: &Ctx, a: &RmArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let containers = ctx.containers();
    for_each(&a.containers, "containers", "removed", |name| {
        containers.remove(name, a.force, a.volumes)?;
        Ok(writeln!(out, "{name}")?)
    })
}

pub fn wait(ctx: &Ctx, a: &ContainersArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let containers = ctx.containers();
    for_each(&a.containers, "containers", "waited for", |name| {
        Ok(writeln!(out, "{}", containers.wait(name)?)?)
    })
}

pub fn prune(ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<()> {
    let removed = ctx.containers().prune()?;
    if !removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &removed {
            writeln!(out, "{id}")?;
        }
    }
    Ok(())
}

fn status_text(s: &Status) -> String {
    match s {
        Status::Created => "Created".into(),
        Status::Running { started_at, .. } => {
            format!("Up {}", ago(Some(started_at)).trim_end_matches(" ago"))
        }
        Status::Exited {
            code, finished_at, ..
        } => format!("Exited ({code}) {}", ago(Some(finished_at))),
    }
}

pub fn ps(ctx: &Ctx, a: &PsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let filters = a
        .filter
        .iter()
        .map(|f| f.parse::<strata_container::filter::Filter>())
        .collect::<Result<Vec<_>, _>>()?;
    // -n and -l count every container, newest first, as Docker's do.
    let last = if a.latest { Some(1) } else { a.last };
    let mut rows = ctx.containers().list(a.all || last.is_some(), &filters)?;
    if let Some(n) = last {
        rows.truncate(n);
    }
    let id = |s: &str| {
        if a.no_trunc {
            s.to_owned()
        } else {
            short(s).to_owned()
        }
    };
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", id(r.container.id()))?;
        }
        return Ok(());
    }
    let command = |args: &[String]| {
        let c = format!("\"{}\"", args.join(" "));
        if a.no_trunc || c.chars().count() <= 22 {
            c
        } else {
            // By characters: a cut inside one would panic.
            let head: String = c.chars().take(20).collect();
            format!("{head}…\"")
        }
    };
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            let c = &r.container;
            json!({
                "ID": id(c.id()),
                "Image": c.config.image_name,
                "Command": command(&c.config.args),
                "CreatedAt": docker_time(&c.row.created),
                "RunningFor": ago(Some(&c.row.created)),
                "Ports": "",
                "State": r.status.word(),
                "Status": status_text(&r.status),
                "Names": c.name(),
                "Labels": labels_text(&c.config.labels),
                "Mounts": mounts_text(&c.config.mounts, a.no_trunc),
                "Networks": c.config.network,
            })
        })
        .collect();
    print_list(&a.format, &PS_COLUMNS, &rows, out)
}

/// `ps`'s fields, with Docker's headers, and its default table.
const PS_COLUMNS: Columns = Columns {
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
    ],
    default: &[
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ],
};

/// `ps`'s MOUNTS: volume names and bind sources, cut to 15 characters
/// unless `--no-trunc`, as Docker's.
fn mounts_text(mounts: &[strata_container::config::MountPoint], no_trunc: bool) -> String {
    let names: Vec<String> = mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Volume { name, .. } => Some(name.clone()),
            MountKind::Bind { source, .. } => Some(source.display().to_string()),
            MountKind::Tmpfs { .. } => None,
        })
        .map(|n| match n.chars().count() {
            len if no_trunc || len <= 15 => n,
            _ => n.chars().take(14).chain(['…']).collect(),
        })
        .collect();
    names.join(",")
}

pub fn logs(ctx: &Ctx, a: &LogsArgs) -> anyhow::Result<()> {
    let containers = ctx.containers();
    let c = containers.get(&a.container)?;
    let now = jiff::Timestamp::now();
    let time = |flag: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| strata_runtime::logs::parse_time(v, now))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let opts = strata_runtime::logs::ReadOptions {
        follow: a.follow,
        timestamps: a.timestamps,
        tail: a.tail.0,
        since: time("since", &a.since)?,
        until: time("until", &a.until)?,
    };
    let finished = || {
        !containers
            .status(&c)
            .map(|s| s.is_running())
            .unwrap_or(false)
    };
    strata_runtime::logs::read(
        &containers.log_file(c.id()),
        &opts,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        &finished,
    )
    .with_context(|| format!("reading the logs of {}", c.name()))
}

pub fn exec(ctx: &Ctx, a: &ExecArgs) -> anyhow::Result<()> {
    let code = ctx.containers().exec(
        &a.container,
        &ExecOptions {
            command: a.command.clone(),
            env: a.env.clone(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            tty: a.tty,
            interactive: a.interactive,
            detach: a.detach,
        },
    )?;
    if code != 0 {
        return Err(Exit(code).into());
    }
    Ok(())
}

pub fn diff(ctx: &Ctx, a: &ContainerArg, out: &mut dyn Write) -> anyhow::Result<()> {
    for change in ctx.containers().diff(&a.container)? {
        let k = match change.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        };
        writeln!(out, "{k} {}", change.path)?;
    }
    Ok(())
}

pub fn commit(ctx: &Ctx, a: &CommitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let name: Option<Reference> = a.reference.as_deref().map(str::parse).transpose()?;
    let progress = for_terminal(false);
    let id = ctx.containers().commit(
        &a.container,
        &CommitOptions {
            author: a.author.clone(),
            message: a.message.clone(),
            changes: a.changes.clone(),
            created_by: String::new(),
        },
        name.as_ref(),
        a.pause,
        progress.as_ref(),
    )?;
    writeln!(out, "{id}")?;
    Ok(())
}

pub fn export(ctx: &Ctx, a: &ExportArgs) -> anyhow::Result<()> {
    let containers = ctx.containers();
    super::write_tar(a.output.as_deref(), |out| {
        Ok(containers.export(&a.container, out)?)
    })
}

pub fn cp(ctx: &Ctx, a: &CpArgs) -> anyhow::Result<()> {
    use strata_container::files::CopyEnd;
    ctx.containers()
        .copy(&CopyEnd::parse(&a.source), &CopyEnd::parse(&a.destination))?;
    Ok(())
}

pub fn rename(ctx: &Ctx, a: &RenameArgs) -> anyhow::Result<()> {
    ctx.containers().rename(&a.container, &a.new_name)?;
    Ok(())
}

/// `inspect`: containers by name or ID, then images.
pub fn inspect(
    ctx: &Ctx,
    a: &InspectArgs,
    images_too: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let containers = ctx.containers();
    let what = if images_too { "object" } else { "container" };
    inspect_each(
        &a.images,
        a.format.as_deref(),
        what,
        out,
        |name| match containers.inspect(name) {
            Err(strata_container::ContainerError::NotFound(_)) if images_too => ctx
                .store
                .inspect(name)
                .map_err(|_| anyhow::anyhow!("no such object: {name}")),
            other => Ok(other?),
        },
    )
}

/// A monitor's life (the hidden `container-monitor`, or `run`'s fork
/// with what it may start early): watch the container its starter names
/// to its end, and tidy up after it unless the starter did.
pub fn monitor(
    settings: &crate::settings::Settings,
    launch: Option<&Launch>,
) -> anyhow::Result<()> {
    let Some((request, watched)) = strata_container::monitor::watch(&settings.root, launch) else {
        return Ok(());
    };
    if watched.cleanup_is_ours {
        let store = crate::open_store(settings)?;
        Containers::new(&store, super::volume::service(&store)).cleanup(&request.id)?;
    }
    Err(Exit(watched.code?).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: anyhow::Error, expected: i32) {
        assert_eq!(run_failed(&error), expected, "{error}");
    }

    #[test]
    fn run_fails_with_dockers_statuses() {
        let start_failed = |status| {
            ContainerError::StartFailed {
                name: "c".into(),
                why: "the runtime could not start it".into(),
                status,
            }
            .into()
        };
        check(start_failed(127), 127);
        check(start_failed(126), 126);
        check(anyhow::anyhow!("no such image: x:latest"), 125);
        // Strata's own failures, whatever their words.
        check(
            ContainerError::Invalid("bind source: no such file or directory".into()).into(),
            125,
        );
    }
}
