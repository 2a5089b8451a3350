//! `strata`: the command line. Glue only: parse, open the store, call the
//! library, print. Errors become one line on stderr and exit status 1.

mod cli;
mod commands;
mod output;
mod progress;
mod settings;

use std::io::Write;

use clap::Parser;
use strata_image::{OpenOptions, Store};

use cli::{Cli, Command, ImageCommand, SystemCommand};
use commands::{image, system};

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = run(cli, &mut out);
    let _ = out.flush();
    if let Err(e) = result {
        eprintln!("Error: {}", message(&e));
        std::process::exit(1);
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
    text
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings =
        settings::Settings::resolve(cli.root, cli.storage_driver, cli.config.as_deref())?;
    let store = Store::open(
        &settings.root,
        OpenOptions {
            storage_driver: settings.storage_driver,
        },
    )?;
    match cli.command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(&store, &a, out),
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => {
            image::inspect(&store, &a, out)
        }
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
        Command::System(SystemCommand::Df(a)) => system::df(&store, &a, out),
        Command::System(SystemCommand::Check(a)) => system::check(&store, &a, out),
    }
}
