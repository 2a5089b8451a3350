//! What an instruction means once its variables are expanded: the types the
//! builder matches on.

use std::time::Duration;

use crate::dockerfile::ArgDecl;

/// One expanded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Run {
        command: Command,
        mounts: Vec<RunMount>,
        /// `--network`: `default`, `none` or `host`.
        network: Option<String>,
        /// `--security`: `sandbox` or `insecure`.
        security: Option<String>,
    },
    Copy(CopySpec),
    Add(CopySpec),
    Env(Vec<(String, String)>),
    /// Defaults already expanded.
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Entrypoint(Command),
    Cmd(Command),
    Shell(Vec<String>),
    StopSignal(String),
    /// `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    /// The trigger as written (heredoc bodies included), to store in the
    /// image config; [`crate::parse_instruction`] reads it back.
    Onbuild(String),
    Maintainer(String),
}

/// The exec form (a JSON array) or the shell form (text for the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    /// For `RUN`, heredocs are already folded in: a command that is only a
    /// heredoc is its body (which may start with `#!`); otherwise the line,
    /// then each body and terminator, for the shell to read itself.
    Shell(String),
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    pub sources: Vec<String>,
    /// Sources given as heredocs (`COPY <<EOF /dst`), in order.
    pub heredocs: Vec<InlineFile>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `ADD --checksum`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
    /// `COPY --parents`.
    pub parents: bool,
    pub excludes: Vec<String>,
}

/// A file whose content is written in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc's terminator word, e.g. `EOF`.
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountKind {
    Cache,
    /// Docker's type when `--mount` names none.
    #[default]
    Bind,
    Tmpfs,
    Secret,
    Ssh,
}

/// One `RUN --mount`, with Docker's defaults filled in where Docker fills
/// them at parse time (readonly; secret and ssh ids and targets).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunMount {
    pub kind: MountKind,
    pub target: String,
    pub id: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub readonly: bool,
    /// `shared`, `private` or `locked` (cache mounts only).
    pub sharing: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Secret and ssh mounts: fail if the secret or agent is missing.
    pub required: bool,
    /// Secret mounts: also expose the secret as this environment variable.
    pub env: Option<String>,
    /// Tmpfs mounts: size limit in bytes.
    pub size: Option<u64>,
}

/// `HEALTHCHECK CMD`. `None` fields (and zero values, which Docker treats the
/// same) mean "inherit from the base image".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", ...]` for the exec form, `["CMD-SHELL", "..."]` otherwise.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}
