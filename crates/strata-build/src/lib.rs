//! `strata build`: a Dockerfile into an image, one layer per instruction
//! that changes files, with a build cache shared by every build in the
//! store.
//!
//! The cache works as Docker's classic builder's: a build is a chain of
//! states (an image config and its layers); each step's key is the digest
//! of the state before it and the instruction after substitution (RUN also
//! with the build args in scope; COPY and ADD with a checksum of the files
//! they copy). A step whose key is cached adopts the cached state, so every
//! later key matches too; a miss makes a new state and so misses every
//! later step of the stage.
//!
//! Filesystem steps run on a transient snapshot of the state before them:
//! RUN through the runtime, COPY and ADD with strata-context. Its changes
//! become a layer exactly as a container commit's do.

mod context;
mod copy;
mod error;
mod exec;
mod output;
mod plan;
mod run;
mod state;
mod workspace;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;

use strata_dockerfile::Dockerfile;
use strata_image::build_cache::BuildState;
use strata_image::{Reference, Store};
use strata_store::Digest;

pub use context::{ContextSource, DockerfileSource};
pub use error::{BuildError, Result};

use context::Context;
use output::Output;
use workspace::Workspace;

/// Build args every build knows without an ARG (Docker's predefined ones);
/// they reach RUN but never the cache key or the history.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub struct BuildOptions {
    pub context: ContextSource,
    pub dockerfile: DockerfileSource,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: Vec<(String, String)>,
    /// The OCI runtime for RUN.
    pub runtime: PathBuf,
    pub quiet: bool,
}

#[derive(Debug, Clone)]
pub struct Built {
    pub id: Digest,
    /// `--build-arg`s no ARG declared (Docker warns about them).
    pub unused_args: Vec<String>,
}

/// Builds the image `opts` describe; progress goes to `out`.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<Built> {
    store.begin_write()?;
    let work = Workspace::open(store.root())?;
    let context = Context::open(
        &opts.context,
        &opts.dockerfile,
        stdin,
        &work,
        store.root(),
        opts.no_cache,
    )?;
    let df = strata_dockerfile::parse(&context.dockerfile)?;
    let mut used_args = BTreeSet::new();
    let meta_args = exec::meta_args(&df, &opts.build_args, &mut used_args)?;
    let target = plan::target(&df, opts.target.as_deref())?;
    let needed = plan::needed(&df, target, &|i| exec::stage_base(&df, i, &meta_args))?;
    let total = needed
        .iter()
        .map(|&i| 1 + df.stages[i].instructions.len())
        .sum();
    let mut b = Builder {
        store,
        opts,
        df: &df,
        work,
        context,
        meta_args,
        used_args: RefCell::new(used_args),
        hits: RefCell::new(Vec::new()),
        stages: vec![None; df.stages.len()],
        out: RefCell::new(Output::new(out, opts.quiet, total)),
    };
    for &i in &needed {
        let built = b.build_stage(i);
        if built.is_err() {
            b.out.borrow_mut().flush_kept();
        }
        b.stages[i] = Some(built?);
    }
    let mut last = b.stages[target].take().expect("the target was built");
    for (k, v) in &opts.labels {
        state::set_label(&mut last, k, v);
    }
    let loaded = store.commit_state(&last, &opts.tags)?;
    b.finish()?;
    let names: Vec<String> = opts.tags.iter().map(|t| t.familiar()).collect();
    b.out.borrow_mut().built(&loaded.id, &names);
    let used = b.used_args.borrow();
    let unused_args = opts
        .build_args
        .keys()
        .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(Built {
        id: loaded.id,
        unused_args,
    })
}

pub(crate) struct Builder<'a, 'o> {
    store: &'a Store,
    opts: &'a BuildOptions,
    df: &'a Dockerfile,
    work: Workspace,
    context: Context,
    /// ARGs before the first FROM, with their values.
    meta_args: BTreeMap<String, String>,
    used_args: RefCell<BTreeSet<String>>,
    /// Cache keys this build hit (their rows are touched at the end).
    hits: RefCell<Vec<Digest>>,
    /// The final state of each stage built so far.
    stages: Vec<Option<BuildState>>,
    out: RefCell<Output<'o>>,
}

impl Builder<'_, '_> {
    /// Marks the cache hits used and saves the stat cache.
    fn finish(&self) -> Result<()> {
        self.store.touch_steps(&self.hits.borrow())?;
        if let Err(e) = self.context.stat_cache.borrow().save() {
            tracing::warn!("saving the build context's stat cache: {e}");
        }
        Ok(())
    }
}
