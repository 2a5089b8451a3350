//! The command line, shaped after Docker's where the commands match.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "A container storage stack: images as layers, storage drivers, volumes"
)]
pub struct Cli {
    /// Store root folder [default: /var/lib/strata]
    #[arg(long, env = "STRATA_ROOT", global = true)]
    pub root: Option<PathBuf>,
    /// Storage driver for a new store (overlay, vfs) [default: the best that works here]
    #[arg(long, env = "STRATA_STORAGE_DRIVER", global = true)]
    pub storage_driver: Option<String>,
    /// Config file [default: /etc/strata/strata.toml]
    #[arg(long, env = "STRATA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace)
    #[arg(long, env = "STRATA_LOG", global = true, default_value = "warn")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Load images from an archive (docker-archive or OCI layout)
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
    /// Make an image from a tar of a root filesystem
    Import(ImportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Show low-level information about images
    Inspect(InspectArgs),
    /// Manage the store
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    Inspect(InspectArgs),
    Import(ImportArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    History(HistoryArgs),
    Tag(TagArgs),
    /// Remove images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Mount an image's filesystem read-only and print where
    Mount(MountArgs),
    /// Unmount an image mounted with 'image mount'
    #[command(alias = "umount")]
    Unmount(MountArgs),
}

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Check the store against its records, and repair it
    Check(CheckArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show all images (no intermediate images are hidden yet)
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from an archive file or OCI layout directory instead of stdin
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchiveFormat {
    DockerArchive,
    /// OCI image layout: a tar, or a directory if -o names one
    Oci,
    OciArchive,
    OciDir,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to a file (or directory, for OCI layouts) instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: ArchiveFormat,
    /// Compress layers
    #[arg(long, value_enum, default_value = "none")]
    pub compression: LayerCompression,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image (CMD, ENV, ...)
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message for the imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// A tar of a root filesystem (uncompressed, gzip or zstd), or - for stdin
    pub file: String,
    /// [REGISTRY/]NAME[:TAG]
    pub reference: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human-readable form
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    pub image: String,
}

#[derive(Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Remove an image even if several names point to it
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format the output with a template ('{{.Id}}', '{{json .Config}}')
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct MountArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all images without a container, not just untagged ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct DfArgs {
    /// Show details per image
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Args)]
pub struct CheckArgs {
    /// Remove orphans, interrupted writes and half-made snapshots, and images that cannot be repaired
    #[arg(long)]
    pub repair: bool,
    /// Skip re-hashing blobs
    #[arg(long)]
    pub quick: bool,
}
