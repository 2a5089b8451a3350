//! The command line, shaped after Docker's where the commands match.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::ListFormat;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "A container storage stack: images as layers, storage drivers, volumes"
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes.
#[derive(Args)]
pub struct Globals {
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
}

impl Cli {
    /// The command line, parsed. Every subcommand's tree is deferred
    /// (`#[command(defer = true)]` on each command enum): clap builds only
    /// the one a line names, where building every command's tree cost more
    /// than a short command's own work (0.4 ms of CPU of a 2 ms `strata
    /// volume ls`, mostly first touches of code and memory). Help lists
    /// every command still.
    pub fn parse_args() -> Cli {
        Cli::try_parse().unwrap_or_else(|e| {
            let _ = e.print();
            // Docker's status for a command line it cannot take (help
            // and the version are not failures).
            std::process::exit(if e.use_stderr() { 125 } else { 0 })
        })
    }
}

#[derive(Subcommand)]
#[command(defer = true)]
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
    /// Show low-level information about containers or images
    Inspect(InspectArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Manage the store
    #[command(subcommand)]
    System(SystemCommand),
    /// Create a container
    Create(CreateArgs),
    /// Create and start a container
    Run(RunArgs),
    /// Start stopped containers
    Start(StartArgs),
    /// Stop running containers
    Stop(StopArgs),
    /// Kill running containers
    Kill(KillArgs),
    /// Remove containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Attach to a running container's input and output
    Attach(AttachArgs),
    /// Fetch a container's logs
    Logs(LogsArgs),
    /// Block until containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// List the changes to a container's filesystem
    Diff(ContainerArg),
    /// Create an image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar
    Export(ExportArgs),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Volume plugins
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Serve Strata's volumes as a CSI driver, or drive any CSI driver
    Csi(CsiArgs),
    /// Run the Kubernetes-style storage API (for kubectl), its controllers and the CSI driver
    Serve(ServeArgs),
    /// Print a kubeconfig for kubectl to reach `strata serve`
    Kubeconfig(KubeconfigArgs),
    /// Watch a container (started by strata itself, which says which on
    /// file descriptor 3)
    #[command(hide = true, name = "container-monitor")]
    Monitor,
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// Create a container
    Create(CreateArgs),
    /// Create and start a container
    Run(RunArgs),
    /// Start stopped containers
    Start(StartArgs),
    /// Stop running containers
    Stop(StopArgs),
    /// Kill running containers
    Kill(KillArgs),
    /// Remove containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Show low-level information about containers
    Inspect(InspectArgs),
    /// Attach to a running container's input and output
    Attach(AttachArgs),
    /// Fetch a container's logs
    Logs(LogsArgs),
    /// Block until containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// List the changes to a container's filesystem
    Diff(ContainerArg),
    /// Create an image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar
    Export(ExportArgs),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Remove all stopped containers
    Prune(ForceArg),
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Show volumes in detail
    Inspect(VolumeInspectArgs),
    /// Remove volumes
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused anonymous volumes (-a: unused named ones too)
    Prune(VolumePruneArgs),
    /// Write a volume's files to a tar archive
    Export(VolumeExportArgs),
    /// Fill a new or empty volume from a tar archive (plain, gzip or zstd)
    Import(VolumeImportArgs),
    /// Copy a volume into a new one (reflinks where the filesystem can)
    Clone(VolumeCloneArgs),
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum PluginCommand {
    /// Serve Strata's local volumes to Docker over the volume plugin protocol
    Serve(PluginServeArgs),
}

#[derive(Args)]
pub struct PluginServeArgs {
    /// The plugin's name, as clients select it (-d NAME)
    #[arg(long, default_value = "strata")]
    pub name: String,
    /// Socket to listen on [default: /run/docker/plugins/NAME.sock]
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

#[derive(Args)]
pub struct CsiArgs {
    /// The CSI driver's socket (unix:///path/csi.sock or an absolute path)
    #[arg(
        long,
        env = "STRATA_CSI_ENDPOINT",
        global = true,
        default_value = "unix:///run/strata/csi.sock"
    )]
    pub endpoint: String,
    #[command(subcommand)]
    pub command: CsiCommand,
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum CsiCommand {
    /// Serve this store's volumes as the CSI driver csi.strata.dev on --endpoint
    Serve(CsiServeArgs),
    /// Show the driver's name, version, capabilities and node
    Info(CsiFormatArgs),
    /// Create a volume and print its ID
    Create(CsiCreateArgs),
    /// Delete volumes
    #[command(alias = "rm")]
    Delete(CsiIdsArgs),
    /// Make a volume usable at a path on this node (stage and publish it)
    Publish(CsiPublishArgs),
    /// Undo publish (and unstage once no other path uses the volume)
    Unpublish(CsiTargetArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(CsiLsArgs),
    /// Manage snapshots
    #[command(subcommand)]
    Snapshot(CsiSnapshotCommand),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Where the API listens for kubectl (HTTPS, bearer token)
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub address: std::net::SocketAddr,
    /// This node's name [default: the host name]
    #[arg(long)]
    pub node_name: Option<String>,
}

#[derive(Args)]
pub struct KubeconfigArgs {
    /// The API's address, as `strata serve --address` was given
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub address: std::net::SocketAddr,
}

#[derive(Args)]
pub struct CsiServeArgs {
    /// This node's ID, also its topology [default: the host name]
    #[arg(long)]
    pub node_id: Option<String>,
    /// Serve the Controller service (with neither --controller nor --node: both)
    #[arg(long)]
    pub controller: bool,
    /// Serve the Node service (with neither --controller nor --node: both)
    #[arg(long)]
    pub node: bool,
    /// Offer ControllerPublishVolume, for orchestrators that attach volumes
    #[arg(long)]
    pub attach_required: bool,
    /// How many volumes this node may hold (0: no limit)
    #[arg(long = "max-volumes", default_value_t = 0)]
    pub max_volumes: i64,
}

#[derive(Args)]
pub struct CsiFormatArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// CSI access modes.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CsiAccessMode {
    SingleNodeWriter,
    SingleNodeReaderOnly,
    SingleNodeSingleWriter,
    SingleNodeMultiWriter,
    MultiNodeReaderOnly,
    MultiNodeSingleWriter,
    MultiNodeMultiWriter,
}

#[derive(Args)]
pub struct CsiCreateArgs {
    /// Capacity (e.g. 64M, 1.5G, 10GiB) [default: the driver's]
    #[arg(long)]
    pub size: Option<String>,
    /// A parameter, as in a StorageClass (KEY=VALUE; Strata: type=dir|image, fs=ext4|xfs)
    #[arg(short, long = "param")]
    pub param: Vec<String>,
    /// A raw block volume instead of a filesystem
    #[arg(long)]
    pub block: bool,
    /// Filesystem type of a mount volume (Strata: for type=image)
    #[arg(long, conflicts_with = "block")]
    pub fs: Option<String>,
    /// How the volume will be used
    #[arg(long, value_enum, default_value = "single-node-writer")]
    pub access_mode: CsiAccessMode,
    /// Fill the volume from this snapshot
    #[arg(long, conflicts_with = "from_volume")]
    pub from_snapshot: Option<String>,
    /// Fill the volume with a copy of this volume
    #[arg(long)]
    pub from_volume: Option<String>,
    /// The volume's name; creating a name again gives the same volume
    pub name: String,
}

#[derive(Args)]
pub struct CsiIdsArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Args)]
pub struct CsiPublishArgs {
    /// Publish read-only
    #[arg(long)]
    pub readonly: bool,
    /// Publish a block volume: TARGET becomes its device
    #[arg(long)]
    pub block: bool,
    /// Filesystem type of a mount volume
    #[arg(long, conflicts_with = "block")]
    pub fs: Option<String>,
    /// A mount flag (e.g. noatime, nosuid); may be repeated
    #[arg(long = "mount-flag", conflicts_with = "block")]
    pub mount_flags: Vec<String>,
    /// How the volume will be used
    #[arg(long, value_enum, default_value = "single-node-writer")]
    pub access_mode: CsiAccessMode,
    #[command(flatten)]
    pub at: CsiTargetArgs,
}

/// Which volume, where, and through which staging root and node: what
/// publish and unpublish both take, so unpublish is given what publish was.
#[derive(Args)]
pub struct CsiTargetArgs {
    /// Where volumes are staged, one folder each (unpublish: as given to publish)
    #[arg(
        long,
        env = "STRATA_CSI_STAGING_ROOT",
        default_value = strata_csi::client::DEFAULT_STAGING_ROOT
    )]
    pub staging_root: PathBuf,
    /// The node the volume is published to [default: the driver's node]
    #[arg(long)]
    pub node_id: Option<String>,
    /// The volume's ID
    pub id: String,
    /// Where the volume is published: a folder, or for a block volume a device file
    pub target: PathBuf,
}

#[derive(Args)]
pub struct CsiLsArgs {
    /// Only show volume IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Volumes per ListVolumes call (all pages are shown)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..))]
    pub page_size: i32,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum CsiSnapshotCommand {
    /// Snapshot a volume and print the snapshot's ID
    Create(CsiSnapshotCreateArgs),
    /// Delete snapshots
    #[command(alias = "delete", alias = "remove")]
    Rm(CsiIdsArgs),
    /// List snapshots
    #[command(alias = "list")]
    Ls(CsiSnapshotLsArgs),
}

#[derive(Args)]
pub struct CsiSnapshotCreateArgs {
    /// The ID of the volume to snapshot
    pub source: String,
    /// The snapshot's name; taking a name again gives the same snapshot
    pub name: String,
}

#[derive(Args)]
pub struct CsiSnapshotLsArgs {
    /// Only show snapshots of this volume
    #[arg(long)]
    pub source: Option<String>,
    /// Only show snapshot IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Args)]
pub struct VolumeExportArgs {
    pub volume: String,
    /// Write to a file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Args)]
pub struct VolumeImportArgs {
    /// The volume to fill (created if missing; it must be empty)
    pub volume: String,
    /// The archive ("-" or none: stdin)
    pub file: Option<PathBuf>,
}

#[derive(Args)]
pub struct VolumeCloneArgs {
    pub source: String,
    /// The new volume (same driver options as the source)
    pub target: String,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the container (and its anonymous volumes) when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass ours on)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Network: none (a namespace of its own) or host
    #[arg(long, default_value = "none")]
    pub network: String,
    /// Container host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add a host device to the container (HOST[:CONTAINER][:PERMISSIONS])
    #[arg(long)]
    pub device: Vec<String>,
    /// Bind mount a volume ([SRC:]DST[:OPTIONS])
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=volume|bind|tmpfs,src=...,dst=...)
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount volumes from the given container(s) (CONTAINER[:ro|rw])
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Volume driver for the container's named volumes
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Set metadata on the container (KEY=VALUE)
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Seconds to wait for the container to stop before killing it
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// OCI runtime to run the container with [default: runc, or the config file's]
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short, long)]
    pub attach: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Kill and remove a running container
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only show container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter (id=, name=, label=KEY[=VALUE], status=, exited=, ancestor=, volume=, network=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Show the n last created containers (all states)
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the latest created container (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// table, json, or a template per container ('{{.Names}}', 'table {{.ID}}\t{{.Status}}')
    #[arg(long, default_value = "table", value_parser = ListFormat::parse)]
    pub format: ListFormat,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs (or "all")
    #[arg(short = 'n', long, default_value = "all", value_parser = Tail::parse)]
    pub tail: Tail,
    /// Show logs since a time (2026-11-24T16:44:58Z) or for a while back (10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs up to a time (2026-11-24T16:44:58Z) or until a while ago (10m)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// `--tail`: a number of lines, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail(pub Option<usize>);

impl Tail {
    fn parse(value: &str) -> Result<Tail, String> {
        match value {
            "all" => Ok(Tail(None)),
            n => n
                .parse()
                .map(|n| Tail(Some(n)))
                .map_err(|_| format!("'{n}' is neither a number of lines nor \"all\"")),
        }
    }
}

#[derive(Args)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,
    pub container: String,
}

#[derive(Args)]
pub struct ContainerArg {
    pub container: String,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct CommitArgs {
    /// Author (e.g. "Jane Doe <jane@example.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the image
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause the container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// [REGISTRY/]NAME[:TAG]
    pub reference: Option<String>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write to a file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(Args)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH or a host path
    pub source: String,
    /// CONTAINER:DEST_PATH or a host path
    pub destination: String,
}

#[derive(Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args)]
pub struct ForceArg {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct VolumeCreateArgs {
    /// Volume driver
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata (KEY=VALUE)
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Driver options (KEY=VALUE)
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[derive(Args)]
pub struct VolumeLsArgs {
    /// Only show volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter (dangling=true|false, name=, label=, driver=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// table, json, or a template per volume ('{{.Name}}')
    #[arg(long, default_value = "table", value_parser = ListFormat::parse)]
    pub format: ListFormat,
}

#[derive(Args)]
pub struct VolumeInspectArgs {
    /// Format the output with a template ('{{.Mountpoint}}')
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args)]
pub struct VolumeRmArgs {
    /// A volume that does not exist is not an error; one in use is still
    /// never removed
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args)]
pub struct VolumePruneArgs {
    /// Remove unused named volumes too
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show low-level information about images
    Inspect(InspectArgs),
    /// Make an image from a tar of a root filesystem
    Import(ImportArgs),
    /// Load images from an archive (docker-archive or OCI layout)
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Give an image another name
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
#[command(defer = true)]
pub enum BuilderCommand {
    /// Remove build cache (-a: all of it, not just intermediate steps)
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be repeated
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; - reads it from stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// A build-time variable (KEY=VALUE; KEY alone takes it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Build this stage, and the stages it needs, only
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Pull base images first (strata builds use the images in the store)
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false"
    )]
    pub pull: String,
    /// A label for the image (KEY=VALUE); may be repeated
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context: a folder, or - for a tar (or a Dockerfile) on stdin
    pub context: String,
}

#[derive(Subcommand)]
#[command(defer = true)]
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
    /// table, json, or a template per image ('{{.Repository}}:{{.Tag}}')
    #[arg(long, default_value = "table", value_parser = ListFormat::parse)]
    pub format: ListFormat,
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

#[derive(Args, Clone)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    /// What a line parses to: the command's name path, or why not.
    fn check(line: &str, expected: Result<&str, ErrorKind>) {
        let words = line.split_whitespace();
        let parsed = Cli::command().try_get_matches_from(words).map(|m| {
            let mut path = Vec::new();
            let mut at = &m;
            while let Some((name, sub)) = at.subcommand() {
                path.push(name.to_owned());
                at = sub;
            }
            path.join(" ")
        });
        assert_eq!(parsed.as_deref().map_err(|e| e.kind()), expected, "{line}");
    }

    #[test]
    fn deferred_commands_parse_when_named() {
        check("strata run --rm bb true", Ok("run"));
        check("strata --root /x run -d --name a bb sh -c true", Ok("run"));
        check("strata run --root=/x -v data:/data bb", Ok("run"));
        check("strata --log-level debug ps -a", Ok("ps"));
        check("strata volume ls --filter dangling=true", Ok("volume ls"));
        check("strata container run bb", Ok("container run"));
        check("strata plugin serve --name x", Ok("plugin serve"));
        check("strata --help", Err(ErrorKind::DisplayHelp));
        check("strata run --help", Err(ErrorKind::DisplayHelp));
        check("strata -V", Err(ErrorKind::DisplayVersion));
        check("strata run", Err(ErrorKind::MissingRequiredArgument));
        check("strata rn bb", Err(ErrorKind::InvalidSubcommand));
        check("strata volume ls --bogus", Err(ErrorKind::UnknownArgument));
        check("strata --root", Err(ErrorKind::InvalidValue));
        check(
            "strata",
            Err(ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand),
        );
    }

    /// clap's own checks of every command's tree, deferred ones built.
    #[test]
    fn every_command_tree_is_sound() {
        Cli::command().debug_assert();
    }
}
