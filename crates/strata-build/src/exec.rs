//! Carrying out one stage: its base, then each instruction as a cached
//! step. Metadata steps change only the config (an empty layer in the
//! history); RUN, COPY and ADD add a layer (see `run` and `copy`).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use strata_dockerfile::{Command, Dockerfile, Healthcheck, Instruction, Step};
use strata_image::ImageError;
use strata_image::build_cache::BuildState;
use strata_image::progress::Quiet;
use strata_image::unpack::{LAYER_LABEL, LayerInput};
use strata_snapshot::{Options, mount};
use strata_store::Digest;
use strata_store::meta::images::LayerRow;

use crate::error::{BuildError, Result, invalid, io_at};
use crate::{Builder, state};

/// Docker's predefined platform args, in scope for FROM (and for a stage
/// that declares them).
fn platform_args() -> [(String, String); 6] {
    let arch = strata_image::config::host_architecture();
    let platform = format!("linux/{arch}");
    [
        ("TARGETPLATFORM".into(), platform.clone()),
        ("TARGETOS".into(), "linux".into()),
        ("TARGETARCH".into(), arch.into()),
        ("BUILDPLATFORM".into(), platform),
        ("BUILDOS".into(), "linux".into()),
        ("BUILDARCH".into(), arch.into()),
    ]
}

fn expand(word: &str, escape: char, vars: &BTreeMap<String, String>) -> Result<String> {
    strata_dockerfile::expand_word(word, escape, &|n| vars.get(n).cloned())
        .map_err(|e| invalid(format!("{word}: {e}")))
}

/// The ARGs before the first FROM, with `--build-arg` values over defaults.
pub(crate) fn meta_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<BTreeMap<String, String>> {
    let mut vars: BTreeMap<String, String> = platform_args().into_iter().collect();
    for a in &df.meta_args {
        let value = match (build_args.get(&a.name), &a.default) {
            (Some(v), _) => {
                used.insert(a.name.clone());
                Some(v.clone())
            }
            (None, Some(d)) => Some(expand(d, df.escape, &vars)?),
            (None, None) => None,
        };
        if let Some(v) = value {
            vars.insert(a.name.clone(), v);
        }
    }
    Ok(vars)
}

/// A stage's FROM, expanded with the meta args.
pub(crate) fn stage_base(
    df: &Dockerfile,
    i: usize,
    meta: &BTreeMap<String, String>,
) -> Result<String> {
    let from = &df.stages[i].from;
    let image = expand(&from.image, df.escape, meta)?;
    if image.is_empty() {
        return Err(invalid(format!(
            "line {}: FROM names no image after substitution of '{}'",
            from.line, from.image
        )));
    }
    Ok(image)
}

/// What a stage has made so far and the names in scope.
pub(crate) struct StageRun {
    pub state: BuildState,
    pub id: Digest,
    /// Declared ARGs that have a value, in declaration order.
    pub args: Vec<(String, String)>,
    /// CMD set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl StageRun {
    fn new(state: BuildState) -> StageRun {
        StageRun {
            id: state::id(&state),
            state,
            args: Vec::new(),
            cmd_set: false,
        }
    }

    /// ENV wins over ARG, as in Docker.
    pub(crate) fn lookup(&self, name: &str) -> Option<String> {
        state::env_var(&self.state, name).or_else(|| {
            self.args
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    /// Declared args not shadowed by ENV: what RUN sees and is keyed by.
    pub(crate) fn run_args(&self) -> Vec<(String, String)> {
        let mut seen = BTreeSet::new();
        let mut out: Vec<(String, String)> = self
            .args
            .iter()
            .rev()
            .filter(|(k, _)| seen.insert(k.clone()))
            .filter(|(k, _)| state::env_var(&self.state, k).is_none())
            .cloned()
            .collect();
        out.reverse();
        out
    }

    pub(crate) fn adopt(&mut self, state: BuildState) {
        self.id = state::id(&state);
        self.state = state;
    }

    pub(crate) fn workdir(&self) -> String {
        match state::get_str(&self.state, "WorkingDir") {
            w if w.is_empty() => "/".to_owned(),
            w => w,
        }
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        match state::get_list(&self.state, "Shell") {
            s if s.is_empty() => vec!["/bin/sh".into(), "-c".into()],
            s => s,
        }
    }

    fn command(&self, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }
}

impl Builder<'_, '_> {
    pub(crate) fn build_stage(&self, i: usize) -> Result<BuildState> {
        let df = self.df;
        let stage = &df.stages[i];
        let base = stage_base(df, i, &self.meta_args)?;
        let start = Instant::now();
        let alias = stage
            .name
            .as_ref()
            .map(|n| format!(" AS {n}"))
            .unwrap_or_default();
        self.out.borrow_mut().step(&format!("FROM {base}{alias}"));
        if let Some(p) = &stage.from.platform {
            let p = expand(p, df.escape, &self.meta_args)?;
            let host = format!("linux/{}", strata_image::config::host_architecture());
            if p != host {
                return Err(invalid(format!(
                    "line {}: FROM --platform={p}: this host builds only {host}",
                    stage.from.line
                )));
            }
        }
        let mut run = StageRun::new(self.base_state(i, &base)?);
        self.out
            .borrow_mut()
            .finished(false, &run.id, start.elapsed());
        let triggers = state::get_list(&run.state, "OnBuild");
        if !triggers.is_empty() {
            state::container(&mut run.state).remove("OnBuild");
            run.id = state::id(&run.state);
            for t in &triggers {
                let ins = strata_dockerfile::parse_instruction(t, df.escape)?;
                self.out
                    .borrow_mut()
                    .note(&format!(" # executing build trigger: {t}"));
                self.instruction(&mut run, &ins)?;
            }
        }
        for ins in &stage.instructions {
            let start = Instant::now();
            self.out.borrow_mut().step(ins.text());
            let cached = self
                .instruction(&mut run, ins)
                .map_err(|e| BuildError::Step {
                    step: format!("line {}: {}", ins.line, ins.text()),
                    source: Box::new(e),
                })?;
            self.out
                .borrow_mut()
                .finished(cached, &run.id, start.elapsed());
        }
        Ok(run.state)
    }

    /// The state a stage starts from: an earlier stage, scratch, or an
    /// image in the store.
    fn base_state(&self, i: usize, base: &str) -> Result<BuildState> {
        if let Some(j) = self.df.stage_index(base)
            && j < i
        {
            return Ok(self.stages[j]
                .clone()
                .expect("needed stages are built first"));
        }
        if base == "scratch" {
            return Ok(state::scratch());
        }
        self.image_state(base, "FROM")
    }

    pub(crate) fn image_state(&self, name: &str, what: &str) -> Result<BuildState> {
        match self.store.resolve(name) {
            Ok((id, _)) => Ok(self.store.image_state(&id)?),
            Err(ImageError::NotFound(_)) => Err(invalid(format!(
                "{what} {name}: no such image in the store; load or import it first (strata build does not pull)"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Carries out one instruction; true when it came from the cache.
    fn instruction(&self, run: &mut StageRun, ins: &Instruction) -> Result<bool> {
        let step = ins.expand(&|n| run.lookup(n))?;
        match step {
            Step::Arg(decls) => {
                let text = decls
                    .iter()
                    .map(|d| match &d.default {
                        Some(v) => format!("{}={}", d.name, quote(v)),
                        None => d.name.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                for d in decls {
                    let given = self.opts.build_args.get(&d.name);
                    if given.is_some() {
                        self.used_args.borrow_mut().insert(d.name.clone());
                    }
                    let value = given
                        .cloned()
                        .or(d.default)
                        .or_else(|| self.meta_args.get(&d.name).cloned());
                    if let Some(v) = value {
                        run.args.push((d.name, v));
                    }
                }
                // Values reach the cache through the RUN steps they affect.
                self.meta(run, &format!("ARG {text}"), |_| {})
            }
            Step::Env(pairs) => {
                let text = format!("ENV {}", pairs_text(&pairs));
                self.meta(run, &text, |s| {
                    for (k, v) in &pairs {
                        state::set_env(s, k, v);
                    }
                })
            }
            Step::Label(pairs) => {
                let text = format!("LABEL {}", pairs_text(&pairs));
                self.meta(run, &text, |s| {
                    for (k, v) in &pairs {
                        state::set_label(s, k, v);
                    }
                })
            }
            Step::Expose(ports) => {
                let ports: Vec<String> = ports.iter().map(|p| port(p)).collect();
                self.meta(run, &format!("EXPOSE {}", ports.join(" ")), |s| {
                    for p in &ports {
                        state::add_to_set(s, "ExposedPorts", p);
                    }
                })
            }
            Step::Volume(paths) => self.meta(run, &format!("VOLUME {}", json!(paths)), |s| {
                for p in &paths {
                    state::add_to_set(s, "Volumes", p);
                }
            }),
            Step::Workdir(dir) => {
                let dir = join_path(&run.workdir(), &dir);
                self.meta(run, &format!("WORKDIR {dir}"), |s| {
                    state::container(s).insert("WorkingDir".into(), json!(dir));
                })
            }
            Step::User(u) => self.meta(run, &format!("USER {u}"), |s| {
                state::container(s).insert("User".into(), json!(u));
            }),
            Step::Cmd(c) => {
                let v = run.command(&c);
                run.cmd_set = true;
                self.meta(run, &format!("CMD {}", json!(v)), |s| {
                    state::container(s).insert("Cmd".into(), json!(v));
                })
            }
            Step::Entrypoint(c) => {
                let v = run.command(&c);
                // Docker: a CMD inherited from the base makes no sense
                // for a new ENTRYPOINT, so it is dropped.
                let reset_cmd = !run.cmd_set;
                self.meta(run, &format!("ENTRYPOINT {}", json!(v)), |s| {
                    let c = state::container(s);
                    c.insert("Entrypoint".into(), json!(v));
                    if reset_cmd {
                        c.remove("Cmd");
                    }
                })
            }
            Step::Shell(v) => self.meta(run, &format!("SHELL {}", json!(v)), |s| {
                state::container(s).insert("Shell".into(), json!(v));
            }),
            Step::StopSignal(sig) => self.meta(run, &format!("STOPSIGNAL {sig}"), |s| {
                state::container(s).insert("StopSignal".into(), json!(sig));
            }),
            Step::Healthcheck(h) => {
                let value = healthcheck(h.as_ref());
                self.meta(run, &format!("HEALTHCHECK {value}"), |s| {
                    state::container(s).insert("Healthcheck".into(), value.clone());
                })
            }
            Step::Onbuild(t) => self.meta(run, &format!("ONBUILD {t}"), |s| {
                let mut list = state::get_list(s, "OnBuild");
                list.push(t.clone());
                state::container(s).insert("OnBuild".into(), json!(list));
            }),
            Step::Maintainer(m) => self.meta(run, &format!("MAINTAINER {m}"), |s| {
                if let Some(top) = s.config.as_object_mut() {
                    top.insert("author".into(), json!(m));
                }
            }),
            Step::Run {
                command,
                mounts,
                network,
                ..
            } => self.run(run, &command, &mounts, network.as_deref()),
            Step::Copy(spec) => self.copy(run, &spec, false),
            Step::Add(spec) => self.copy(run, &spec, true),
        }
    }

    /// The cached state for `key`, unless `--no-cache`.
    fn cached(&self, key: &Digest) -> Result<Option<BuildState>> {
        if self.opts.no_cache {
            return Ok(None);
        }
        let hit = self.store.cached_step(key)?;
        if hit.is_some() {
            self.hits.borrow_mut().push(key.clone());
        }
        Ok(hit)
    }

    fn record(&self, run: &mut StageRun, key: &Digest) -> Result<()> {
        run.id = self.store.record_step(key, &run.id, &run.state)?;
        Ok(())
    }

    /// A step that changes only the config.
    fn meta(
        &self,
        run: &mut StageRun,
        text: &str,
        edit: impl FnOnce(&mut BuildState),
    ) -> Result<bool> {
        let key = step_key(&run.id, text);
        if let Some(hit) = self.cached(&key)? {
            run.adopt(hit);
            return Ok(true);
        }
        edit(&mut run.state);
        state::push_history(&mut run.state, &format!("/bin/sh -c #(nop)  {text}"), true);
        self.record(run, &key)?;
        Ok(false)
    }

    /// A step that adds a layer: `fill` changes the root filesystem
    /// mounted at the path it is given.
    pub(crate) fn layer(
        &self,
        run: &mut StageRun,
        key_text: &str,
        created_by: &str,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<bool> {
        let key = step_key(&run.id, key_text);
        if let Some(hit) = self.cached(&key)? {
            run.adopt(hit);
            return Ok(true);
        }
        let row = self.new_layer(&run.state, created_by, fill)?;
        state::push_layer(&mut run.state, row);
        state::push_history(&mut run.state, created_by, false);
        self.record(run, &key)?;
        Ok(false)
    }

    /// Runs `fill` on a transient snapshot of `state` and stores what it
    /// changed as a layer; the snapshot is removed either way.
    fn new_layer(
        &self,
        state: &BuildState,
        what: &str,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<LayerRow> {
        let snapshots = self.store.snapshots()?;
        let key = format!("build-{}", strata_store::fsutil::random_hex(8));
        let parent = state::top_layer(state);
        let opts = Options {
            labels: [(LAYER_LABEL.to_owned(), "build".to_owned())].into(),
            transient: true,
        };
        let parent_key = parent.as_ref().map(Digest::to_string);
        let mounts = snapshots.prepare(&key, parent_key.as_deref(), &opts)?;
        let made = self.fill_and_store(&key, &mounts, parent.as_ref(), what, fill);
        if let Err(e) = snapshots.remove(&key) {
            tracing::warn!("removing the build snapshot {key}: {e}");
        }
        made
    }

    fn fill_and_store(
        &self,
        key: &str,
        mounts: &[strata_snapshot::Mount],
        parent: Option<&Digest>,
        what: &str,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<LayerRow> {
        let target = self.work.fresh("rootfs")?;
        let mounted = mount::mount(mounts, &target)?;
        let filled = fill(mounted.target());
        mounted.unmount().map_err(io_at(&target))?;
        filled?;
        let changes = self.store.snapshot_changes(key)?;
        let changes = changes.leaving_out(strata_runtime::netfiles::MOUNT_POINTS);
        changes.stream(|reader| -> Result<LayerRow> {
            Ok(self.store.unpack_layer(
                LayerInput {
                    reader,
                    size: None,
                    blob: None,
                    diff_id: None,
                    what: what.to_owned(),
                },
                parent,
                &Quiet,
            )?)
        })
    }
}

/// The cache key of a step: the state before it and the instruction.
pub(crate) fn step_key(parent: &Digest, text: &str) -> Digest {
    Digest::of(format!("{parent}\n{text}").as_bytes())
}

fn pairs_text(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a value with spaces or quotes, as Docker's history shows it.
fn quote(v: &str) -> String {
    if v.is_empty() || v.contains([' ', '"', '\t', '\\']) {
        json!(v).to_string()
    } else {
        v.to_owned()
    }
}

/// `80` is `80/tcp`.
fn port(p: &str) -> String {
    if p.contains('/') {
        p.to_lowercase()
    } else {
        format!("{p}/tcp")
    }
}

/// `dir` against the current working directory, cleaned.
pub(crate) fn join_path(cwd: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_owned()
    } else {
        format!("{cwd}/{dir}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn healthcheck(h: Option<&Healthcheck>) -> Value {
    let Some(h) = h else {
        return json!({"Test": ["NONE"]});
    };
    let mut v = json!({"Test": h.test});
    let obj = v.as_object_mut().expect("an object");
    let ns = |d: &std::time::Duration| json!(d.as_nanos() as u64);
    if let Some(d) = &h.interval {
        obj.insert("Interval".into(), ns(d));
    }
    if let Some(d) = &h.timeout {
        obj.insert("Timeout".into(), ns(d));
    }
    if let Some(d) = &h.start_period {
        obj.insert("StartPeriod".into(), ns(d));
    }
    if let Some(d) = &h.start_interval {
        obj.insert("StartInterval".into(), ns(d));
    }
    if let Some(r) = h.retries {
        obj.insert("Retries".into(), json!(r));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_cleans() {
        fn check(cwd: &str, dir: &str, want: &str) {
            assert_eq!(join_path(cwd, dir), want, "{cwd} + {dir}");
        }
        check("/", "app", "/app");
        check("/app", "src", "/app/src");
        check("/app", "/abs", "/abs");
        check("/app", "../x", "/x");
        check("/", "../../x", "/x");
        check("/a/b", "./c/", "/a/b/c");
    }

    #[test]
    fn ports_default_to_tcp() {
        assert_eq!(port("80"), "80/tcp");
        assert_eq!(port("53/UDP"), "53/udp");
    }
}
