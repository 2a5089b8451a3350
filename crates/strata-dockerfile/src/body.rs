//! Each instruction's own argument rules (BuildKit's per-instruction
//! parsers): counts, JSON or shell form, flags, heredocs. The result is kept
//! unexpanded.

use crate::dockerfile::ArgDecl;
use crate::expand::expand_word;
use crate::flags::Flags;
use crate::heredoc::{self, Heredoc};
use crate::keyword::{Keyword, Parts};
use crate::mount;
use crate::step::{Command, CopySpec, Healthcheck, InlineFile, MountKind, RunMount};
use crate::words::{NOT_STRINGS, NotJson, json_array, quoted_words, split_blank, split_first};

/// The checked, unexpanded arguments of each kind of instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    Run {
        command: Command,
        mounts: Vec<String>,
        network: Option<String>,
        security: Option<String>,
    },
    /// COPY or ADD; `expand` says, per heredoc, whether its body is expanded.
    Copy {
        add: bool,
        spec: CopySpec,
        expand: Vec<bool>,
    },
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    StopSignal(String),
    Maintainer(String),
    Onbuild(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Shell(Vec<String>),
    Cmd(Command),
    Entrypoint(Command),
    Healthcheck(Option<Healthcheck>),
}

/// Parses RUN's mounts with `expand` applied to each field value.
pub(crate) fn run_mounts(
    specs: &[String],
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<RunMount>, String> {
    let mut ssh = 0;
    specs
        .iter()
        .map(|spec| {
            let parsed = mount::parse(spec, expand, ssh)
                .map_err(|e| format!("invalid mount \"{spec}\": {e}"))?;
            if parsed.kind == MountKind::Ssh {
                ssh += 1;
            }
            Ok(parsed)
        })
        .collect()
}

pub(crate) fn parse(parts: &Parts, heredocs: &[Heredoc], escape: char) -> Result<Body, String> {
    let kw = parts.keyword;
    let flags = if kw == Keyword::Healthcheck && is_none_check(parts.rest) {
        // Docker never looks at the flags of HEALTHCHECK NONE.
        Flags::default()
    } else {
        Flags::parse(&parts.flags, kw.flags(), kw.name())?
    };
    let rest = parts.rest;
    match kw {
        Keyword::Run => run(&flags, rest, heredocs, escape),
        Keyword::Copy | Keyword::Add => copy(kw, &flags, rest, heredocs),
        Keyword::Env => Ok(Body::Env(pairs(kw, rest, escape)?)),
        Keyword::Label => Ok(Body::Label(pairs(kw, rest, escape)?)),
        Keyword::Arg => Ok(Body::Arg(args(rest, escape)?)),
        Keyword::Workdir => Ok(Body::Workdir(one(kw, rest)?)),
        Keyword::User => Ok(Body::User(one(kw, rest)?)),
        Keyword::StopSignal => Ok(Body::StopSignal(one(kw, rest)?)),
        Keyword::Maintainer => Ok(Body::Maintainer(one(kw, rest)?)),
        Keyword::Expose => Ok(Body::Expose(at_least_one(kw, split_blank(rest))?)),
        Keyword::Volume => volume(rest),
        Keyword::Shell => shell(rest),
        Keyword::Cmd => Ok(Body::Cmd(exec_or_shell(rest)?)),
        Keyword::Entrypoint => Ok(Body::Entrypoint(exec_or_shell(rest)?)),
        Keyword::Healthcheck => healthcheck(&flags, rest),
        Keyword::Onbuild => onbuild(rest, heredocs, escape),
        Keyword::From => Err("FROM starts a build stage and cannot be used here".into()),
    }
}

/// The whole rest of the line as one argument (USER, WORKDIR...).
fn one(kw: Keyword, rest: &str) -> Result<String, String> {
    if rest.is_empty() {
        return Err(format!("{} requires exactly one argument", kw.name()));
    }
    Ok(rest.to_owned())
}

fn at_least_one(kw: Keyword, list: Vec<String>) -> Result<Vec<String>, String> {
    if list.is_empty() {
        return Err(format!("{} requires at least one argument", kw.name()));
    }
    Ok(list)
}

/// The exec form if `rest` is a JSON array of strings, else the shell form.
fn exec_or_shell(rest: &str) -> Result<Command, String> {
    match json_array(rest) {
        Ok(args) => Ok(Command::Exec(args)),
        Err(NotJson::NotStrings) => Err(NOT_STRINGS.into()),
        Err(NotJson::Shell) if rest.is_empty() => Ok(Command::Exec(Vec::new())),
        Err(NotJson::Shell) => Ok(Command::Shell(rest.to_owned())),
    }
}

/// Arguments that may be a JSON array or whitespace-separated words.
fn json_or_words(rest: &str) -> Result<(Vec<String>, bool), String> {
    match json_array(rest) {
        Ok(args) => Ok((args, true)),
        Err(NotJson::NotStrings) => Err(NOT_STRINGS.into()),
        Err(NotJson::Shell) => Ok((split_blank(rest), false)),
    }
}

fn run(flags: &Flags, rest: &str, heredocs: &[Heredoc], escape: char) -> Result<Body, String> {
    let network = flags.text("network");
    if let Some(mode) = network
        .as_deref()
        .filter(|m| !["default", "none", "host"].contains(m))
    {
        return Err(format!(
            "unsupported network mode \"{mode}\" (expected default, none or host)"
        ));
    }
    let security = flags.text("security");
    if let Some(mode) = security
        .as_deref()
        .filter(|m| !["sandbox", "insecure"].contains(m))
    {
        return Err(format!(
            "unsupported security mode \"{mode}\" (expected sandbox or insecure)"
        ));
    }
    let mounts = flags.list("mount");
    check_mounts(&mounts, escape)?;
    let command = match exec_or_shell(rest)? {
        Command::Exec(args) if args.is_empty() => {
            return Err("RUN requires at least one argument".into());
        }
        Command::Shell(line) => Command::Shell(with_heredocs(line, heredocs)),
        exec => exec,
    };
    Ok(Body::Run {
        command,
        mounts,
        network,
        security,
    })
}

/// Checks mounts now where no variable is involved; the others are checked
/// when expanded.
fn check_mounts(mounts: &[String], escape: char) -> Result<(), String> {
    let fixed: Vec<String> = mounts
        .iter()
        .filter(|m| !m.contains('$'))
        .cloned()
        .collect();
    let literal = |v: &str| expand_word(v, escape, &|_| None).map_err(|e| e.to_string());
    run_mounts(&fixed, &literal)?;
    for spec in mounts.iter().filter(|m| m.contains('$')) {
        mount::fields(spec).map_err(|e| format!("invalid mount \"{spec}\": {e}"))?;
    }
    Ok(())
}

/// BuildKit's RUN heredoc rule: a command that is only a heredoc runs its
/// body; otherwise the shell gets the line with the heredocs after it.
fn with_heredocs(line: String, heredocs: &[Heredoc]) -> String {
    let Some(first) = heredocs.first() else {
        return line;
    };
    if heredoc::parse(&line).is_some() {
        return first.content();
    }
    let mut script = line;
    script.push('\n');
    for doc in heredocs {
        script.push_str(&doc.body);
        script.push_str(&doc.spec.name);
        script.push('\n');
    }
    script
}

fn copy(kw: Keyword, flags: &Flags, rest: &str, heredocs: &[Heredoc]) -> Result<Body, String> {
    let name = kw.name();
    let (mut args, json) = json_or_words(rest)?;
    if args.len() < 2 {
        return Err(format!(
            "{name} requires at least two arguments (one or more sources, then the destination), but {} given",
            if args.is_empty() {
                "none was"
            } else {
                "only one was"
            }
        ));
    }
    let dest = args.pop().unwrap_or_default();
    if !json && heredoc::parse(&dest).is_some() {
        return Err(format!("{name} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut files = Vec::new();
    let mut expand = Vec::new();
    for src in args {
        match heredoc::parse(&src).filter(|_| !json) {
            Some(spec) => {
                let doc = heredocs.iter().rev().find(|d| d.spec.name == spec.name);
                let content = doc.map(Heredoc::content).unwrap_or_default();
                files.push(InlineFile {
                    name: spec.name,
                    content,
                });
                expand.push(spec.expand);
            }
            None => sources.push(src),
        }
    }
    let spec = CopySpec {
        sources,
        heredocs: files,
        dest,
        from: flags.text("from"),
        chown: flags.text("chown"),
        chmod: flags.text("chmod"),
        link: flags.bool("link"),
        checksum: flags.text("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        parents: flags.bool("parents"),
        excludes: flags.list("exclude"),
    };
    Ok(Body::Copy {
        add: kw == Keyword::Add,
        spec,
        expand,
    })
}

/// ENV and LABEL: `key=value ...`, or the legacy `key value with spaces`.
fn pairs(kw: Keyword, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let name = kw.name();
    let words = quoted_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{name} requires at least one argument"));
    };
    if !first.contains('=') {
        let (key, value) = split_first(rest);
        if value.is_empty() {
            return Err(format!(
                "{name} must have two arguments (write {name} key=value)"
            ));
        }
        return Ok(vec![(key.to_owned(), value.to_owned())]);
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            None => Err(format!(
                "syntax error - can't find = in \"{word}\". must be of the form: name=value"
            )),
            Some(("", _)) => Err(format!("{name} names can not be blank")),
            Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        })
        .collect()
}

/// ARG: `name` or `name=default`, several per line.
fn args(rest: &str, escape: char) -> Result<Vec<ArgDecl>, String> {
    let words = quoted_words(rest, escape);
    if words.is_empty() {
        return Err("ARG requires at least one argument".into());
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".into()),
            Some((name, default)) => Ok(ArgDecl {
                name: name.to_owned(),
                default: Some(default.to_owned()),
            }),
            None => Ok(ArgDecl {
                name: word,
                default: None,
            }),
        })
        .collect()
}

fn volume(rest: &str) -> Result<Body, String> {
    let (list, _) = json_or_words(rest)?;
    let list = at_least_one(Keyword::Volume, list)?;
    let list: Vec<String> = list.iter().map(|v| v.trim().to_owned()).collect();
    if list.iter().any(String::is_empty) {
        return Err("VOLUME specified can not be an empty string".into());
    }
    Ok(Body::Volume(list))
}

fn shell(rest: &str) -> Result<Body, String> {
    match json_array(rest) {
        Ok(list) => Ok(Body::Shell(at_least_one(Keyword::Shell, list)?)),
        Err(NotJson::NotStrings) => Err(NOT_STRINGS.into()),
        Err(NotJson::Shell) if rest.is_empty() => {
            Err("SHELL requires at least one argument".into())
        }
        Err(NotJson::Shell) => Err(
            "SHELL requires the arguments to be in JSON form (e.g. SHELL [\"/bin/sh\", \"-c\"])"
                .into(),
        ),
    }
}

fn is_none_check(rest: &str) -> bool {
    split_first(rest).0.eq_ignore_ascii_case("none")
}

fn healthcheck(flags: &Flags, rest: &str) -> Result<Body, String> {
    let (kind, command) = split_first(rest);
    if kind.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".into());
    }
    if kind.eq_ignore_ascii_case("none") {
        if !command.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Body::Healthcheck(None));
    }
    if !kind.eq_ignore_ascii_case("cmd") {
        return Err(format!(
            "unknown type \"{}\" in HEALTHCHECK (try CMD)",
            kind.to_ascii_uppercase()
        ));
    }
    let test = match exec_or_shell(command)? {
        Command::Exec(args) if args.is_empty() => {
            return Err("missing command after HEALTHCHECK CMD".into());
        }
        Command::Exec(args) => [vec!["CMD".to_owned()], args].concat(),
        Command::Shell(line) => vec!["CMD-SHELL".to_owned(), line],
    };
    Ok(Body::Healthcheck(Some(Healthcheck {
        test,
        interval: interval(flags, "interval")?,
        timeout: interval(flags, "timeout")?,
        start_period: interval(flags, "start-period")?,
        start_interval: interval(flags, "start-interval")?,
        retries: retries(flags)?,
    })))
}

/// A HEALTHCHECK duration flag; zero means unset, as in Docker.
fn interval(flags: &Flags, name: &str) -> Result<Option<std::time::Duration>, String> {
    let Some(text) = flags.get(name).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match crate::duration::parse(text) {
        Ok(d) if d.is_zero() => Ok(None),
        Ok(d) if d.as_nanos() < 1_000_000 => Err(format!("--{name} cannot be less than 1ms")),
        Ok(d) => Ok(Some(d)),
        Err(true) => Err(format!("--{name} cannot be less than 1ms")),
        Err(false) => Err(format!(
            "invalid duration \"{text}\" for --{name} (expected e.g. 30s, 1m30s or 500ms)"
        )),
    }
}

fn retries(flags: &Flags) -> Result<Option<u32>, String> {
    let Some(text) = flags.get("retries").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<i32>() {
        Ok(n) if n < 0 => Err(format!("--retries cannot be negative ({n})")),
        Ok(n) => Ok(u32::try_from(n).ok().filter(|n| *n > 0)),
        Err(_) => Err(format!(
            "invalid value \"{text}\" for --retries (expected a whole number)"
        )),
    }
}

/// ONBUILD: the trigger is checked as an instruction of its own now, and
/// kept as written (heredocs appended) for the image config.
fn onbuild(rest: &str, heredocs: &[Heredoc], escape: char) -> Result<Body, String> {
    if rest.is_empty() {
        return Err("ONBUILD requires at least one argument".into());
    }
    let parts = Parts::split(rest)?;
    match parts.keyword {
        Keyword::Onbuild => {
            return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
        }
        Keyword::From | Keyword::Maintainer => {
            return Err(format!(
                "{} isn't allowed as an ONBUILD trigger",
                parts.keyword.name()
            ));
        }
        _ => {}
    }
    parse(&parts, heredocs, escape)?;
    let mut trigger = rest.to_owned();
    for doc in heredocs {
        trigger.push('\n');
        trigger.push_str(&doc.body);
        trigger.push_str(&doc.spec.name);
    }
    Ok(Body::Onbuild(trigger))
}
