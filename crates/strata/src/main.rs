//! `strata`: the command line. Glue only: parse, open the store, call the
//! library, print. Errors become one line on stderr and exit status 1
//! (`run`: Docker's 125, 126 or 127); a command line that does not parse,
//! status 125, as Docker's.

mod cli;
mod commands;
mod output;
mod progress;
mod settings;

use std::io::Write;
use std::path::PathBuf;

use strata_image::{OpenOptions, Store};

use cli::{
    BuilderCommand, Cli, Command, ContainerCommand, ImageCommand, PluginCommand, SystemCommand,
    VolumeCommand,
};
use commands::{build, container, csi, image, serve, system, volume};

fn main() {
    let cli = Cli::parse_args();
    init_logging(&cli.globals.log_level);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let failed = match &cli.command {
        Command::Run(_) | Command::Container(ContainerCommand::Run(_)) => container::run_failed,
        _ => |_: &anyhow::Error| 1,
    };
    let result = run(cli, &mut out);
    let _ = out.flush();
    match exit_code(result, failed) {
        0 => {}
        code => std::process::exit(code),
    }
}

/// Log lines on stderr at `level`: a level ("warn", the default) or
/// `tracing` directives ("strata_csi=debug"). A plain level skips the
/// directive parser, which costs every command a measurable part of its
/// start.
fn init_logging(level: &str) {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false);
    match level.parse::<LevelFilter>() {
        Ok(level) => fmt.with_max_level(level).init(),
        Err(_) => fmt
            .with_env_filter(EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("warn")))
            .init(),
    }
}

/// The exit status a command's result gives, once an error is said
/// (`failed` gives a failure's).
fn exit_code(result: anyhow::Result<()>, failed: fn(&anyhow::Error) -> i32) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref() {
            Some(container::Exit(code)) => *code,
            None => {
                eprintln!("Error: {}", message(&e));
                failed(&e)
            }
        },
    }
}

/// One line for the whole error chain. Library errors often already say
/// their cause ("path: reason"), so a cause is appended only when new.
pub(crate) fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    tidy_os_errors(&text)
}

/// Operating-system errors read "No such file or directory (os error 2)";
/// in our one-line messages they read "no such file or directory".
fn tidy_os_errors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            rest = &tail[digits + 1..];
        } else {
            out.push_str(" (os error ");
            rest = tail;
        }
    }
    out.push_str(rest);
    let mut chars: Vec<char> = out.chars().collect();
    for i in 2..chars.len().saturating_sub(1) {
        // A word like "No", not a name like "VolumeDriver.Create".
        let word = chars[i + 1..]
            .iter()
            .take_while(|c| !c.is_whitespace())
            .all(|c| c.is_ascii_lowercase());
        if chars[i - 2] == ':' && chars[i - 1] == ' ' && chars[i].is_ascii_uppercase() && word {
            chars[i] = chars[i].to_ascii_lowercase();
        }
    }
    chars.into_iter().collect()
}

/// The store the settings name, made if new.
pub fn open_store(settings: &settings::Settings) -> anyhow::Result<Store> {
    Ok(Store::open(
        &settings.root,
        OpenOptions {
            storage_driver: settings.storage_driver.clone(),
        },
    )?)
}

/// How to start a monitor: `strata` re-executing itself with the same
/// store and config (read back by [`container::monitor`]).
pub fn monitor_command(
    root: PathBuf,
    config: Option<PathBuf>,
) -> impl Fn() -> std::process::Command {
    move || {
        let exe = std::env::current_exe().unwrap_or_else(|_| "strata".into());
        let mut c = std::process::Command::new(exe);
        c.arg("--root").arg(&root);
        if let Some(config) = &config {
            c.arg("--config").arg(config);
        }
        c.arg("container-monitor");
        c
    }
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = settings::Settings::resolve(
        cli.globals.root,
        cli.globals.storage_driver,
        cli.globals.config.as_deref(),
    )?;
    // A CSI client needs no store, and `csi serve` opens its own.
    let command = match cli.command {
        Command::Csi(a) => return csi::run(&settings, a, out),
        Command::Serve(a) => return serve::serve(&settings, &a, cli.globals.config.clone()),
        Command::Kubeconfig(a) => return serve::kubeconfig(&settings, &a, out),
        // The monitor opens the store only if it has to tidy up.
        Command::Monitor => return container::monitor(&settings, None),
        command => command,
    };
    let monitor = monitor_command(settings.root.clone(), cli.globals.config.clone());
    // `run`'s monitor starts before anything else: a fork of this process,
    // which starts the runtime while this one opens the store and makes
    // the container.
    let run_monitor = match &command {
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            let launch = container::launch(&settings, a);
            let body = || exit_code(container::monitor(&settings, Some(&launch)), |_| 1);
            // SAFETY: one thread so far, and the store is not open yet.
            Some(unsafe { strata_container::Monitor::fork(body, &launch)? })
        }
        _ => None,
    };
    let store = open_store(&settings)?;
    let ctx = container::Ctx {
        store: &store,
        runtime: &settings.runtime,
        monitor: &monitor,
    };
    let volumes = || volume::service(&store);
    match command {
        Command::Csi(a) => csi::run(&settings, a, out),
        Command::Serve(_) | Command::Kubeconfig(_) | Command::Monitor => {
            unreachable!("dispatched before the store opens")
        }
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            container::create(&ctx, &a, out)
        }
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            let monitor = run_monitor.expect("spawned for run");
            container::run(&ctx, &a, monitor, out)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::start(&ctx, &a, out)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(&ctx, &a, out)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(&ctx, &a, out)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            container::rm(&ctx, &a, out)
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => {
            container::ps(&ctx, &a, out)
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs(&ctx, &a)
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            container::attach(&ctx, &a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(&ctx, &a, out)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            container::exec(&ctx, &a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            container::diff(&ctx, &a, out)
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            container::commit(&ctx, &a, out)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            container::export(&ctx, &a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => container::cp(&ctx, &a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            container::rename(&ctx, &a)
        }
        Command::Container(ContainerCommand::Prune(_)) => container::prune(&ctx, out),
        Command::Container(ContainerCommand::Inspect(a)) => {
            container::inspect(&ctx, &a, false, out)
        }
        Command::Inspect(a) => container::inspect(&ctx, &a, true, out),
        Command::Volume(VolumeCommand::Create(a)) => {
            store.begin_write()?;
            volume::create(&volumes(), &a, out)
        }
        Command::Volume(VolumeCommand::Export(a)) => volume::export(&volumes(), &a),
        Command::Volume(VolumeCommand::Import(a)) => {
            store.begin_write()?;
            volume::import(&volumes(), &a)
        }
        Command::Volume(VolumeCommand::Clone(a)) => {
            store.begin_write()?;
            volume::clone(&volumes(), &a)
        }
        Command::Plugin(PluginCommand::Serve(a)) => volume::serve(&settings, &a),
        Command::Volume(VolumeCommand::Ls(a)) => volume::ls(&volumes(), &a, out),
        Command::Volume(VolumeCommand::Inspect(a)) => volume::inspect(&volumes(), &a, out),
        Command::Volume(VolumeCommand::Rm(a)) => volume::rm(&volumes(), &a, out),
        Command::Volume(VolumeCommand::Prune(a)) => volume::prune(&volumes(), &a, out),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(&store, &a, out),
        Command::Image(ImageCommand::Inspect(a)) => image::inspect(&store, &a, out),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            image::history(&store, &a, out)
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            image::import(&store, &a, out)
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(&store, &a, out),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(&store, &a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&store, &a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(&store, &a, out),
        Command::Image(ImageCommand::Prune(a)) => image::prune(&store, &a, out),
        Command::Image(ImageCommand::Mount(a)) => image::mount(&store, &a, out),
        Command::Image(ImageCommand::Unmount(a)) => image::unmount(&store, &a, out),
        Command::Build(a) => build::build(&store, &settings.runtime, &a, out),
        Command::Builder(BuilderCommand::Prune(a)) => build::prune(&store, &a, out),
        Command::System(SystemCommand::Df(a)) => system::df(&store, &a, out),
        Command::System(SystemCommand::Check(a)) => system::check(&store, &a, out),
    }
}

#[cfg(test)]
mod tests {
    use super::tidy_os_errors;

    #[test]
    fn os_errors_read_like_ours() {
        let check = |input: &str, expected: &str| assert_eq!(tidy_os_errors(input), expected);
        check(
            "/x/y.tar: No such file or directory (os error 2)",
            "/x/y.tar: no such file or directory",
        );
        check(
            "a: Permission denied (os error 13): b",
            "a: permission denied: b",
        );
        check(
            "layer ID: sha256 (os error x)",
            "layer ID: sha256 (os error x)",
        );
        check("no such image: busybox", "no such image: busybox");
        check(
            "volume driver x: VolumeDriver.Create: Bad answer",
            "volume driver x: VolumeDriver.Create: bad answer",
        );
    }
}
