//! One instruction: parsed and checked from its logical line, kept raw, and
//! expanded into a [`Step`] when the builder knows the variables.

use crate::body::{self, Body, run_mounts};
use crate::dockerfile::ArgDecl;
use crate::expand::{expand_heredoc, expand_word, expand_words};
use crate::heredoc::Heredoc;
use crate::keyword::{Keyword, Parts};
use crate::mount;
use crate::step::{CopySpec, InlineFile, Step};
use crate::words::split_first;

/// One instruction of a stage (anything but FROM), checked but unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line the instruction starts on (1-based).
    pub line: usize,
    keyword: Keyword,
    text: String,
    escape: char,
    body: Body,
}

impl Instruction {
    /// Builds an instruction from its logical line (`text`, already split
    /// into `parts`) and the bodies of its heredocs.
    pub(crate) fn new(
        line: usize,
        text: &str,
        parts: Parts,
        heredocs: Vec<Heredoc>,
        escape: char,
    ) -> Result<Self, String> {
        let body = body::parse(&parts, &heredocs, escape)?;
        let (word, _) = split_first(text);
        let written = text.trim();
        Ok(Instruction {
            line,
            keyword: parts.keyword,
            text: format!("{}{}", parts.keyword.name(), &written[word.len()..]),
            escape,
            body,
        })
    }

    /// The instruction name, upper-case: `"RUN"`, `"COPY"`...
    pub fn keyword(&self) -> &'static str {
        self.keyword.name()
    }

    /// The instruction as written on one line (continuations joined, keyword
    /// upper-cased, heredoc bodies left out), for build progress output.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The raw `--from` values of COPY and of RUN's mounts: the stages or
    /// images this instruction reads from.
    pub fn stage_refs(&self) -> Vec<String> {
        match &self.body {
            Body::Copy { spec, .. } => spec.from.iter().cloned().collect(),
            Body::Run { mounts, .. } => mounts.iter().filter_map(|m| mount::raw_from(m)).collect(),
            _ => Vec::new(),
        }
    }

    /// An ARG's declarations, defaults unexpanded (for the meta ARGs).
    pub(crate) fn arg_decls(&self) -> Option<&[ArgDecl]> {
        match &self.body {
            Body::Arg(args) => Some(args),
            _ => None,
        }
    }

    /// Substitutes variables where Docker does and returns the typed step.
    /// `lookup` gives the value of a build arg or environment variable.
    pub fn expand(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Step, crate::ParseError> {
        self.expand_body(lookup)
            .map_err(|message| crate::ParseError::new(self.line, message))
    }

    fn expand_body(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Step, String> {
        let word =
            |w: &str| expand_word(w, self.escape, lookup).map_err(|e| format!("{e} (in \"{w}\")"));
        let all = |ws: &[String]| ws.iter().map(|w| word(w)).collect::<Result<Vec<_>, _>>();
        let pairs = |ps: &[(String, String)]| {
            ps.iter()
                .map(|(k, v)| Ok((word(k)?, word(v)?)))
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(match &self.body {
            Body::Run {
                command,
                mounts,
                network,
                security,
            } => Step::Run {
                command: command.clone(),
                mounts: run_mounts(mounts, &|v| word(v))?,
                network: network.clone(),
                security: security.clone(),
            },
            Body::Copy { add, spec, expand } => {
                let spec = self.expand_copy(spec, expand, lookup, &word)?;
                if *add {
                    Step::Add(spec)
                } else {
                    Step::Copy(spec)
                }
            }
            Body::Env(ps) => Step::Env(pairs(ps)?),
            Body::Label(ps) => Step::Label(pairs(ps)?),
            Body::Arg(args) => Step::Arg(
                args.iter()
                    .map(|a| {
                        let default = a.default.as_deref().map(word).transpose()?;
                        Ok(ArgDecl {
                            name: a.name.clone(),
                            default,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Body::Workdir(t) => Step::Workdir(word(t)?),
            Body::User(t) => Step::User(word(t)?),
            Body::StopSignal(t) => Step::StopSignal(word(t)?),
            Body::Maintainer(t) => Step::Maintainer(t.clone()),
            Body::Onbuild(t) => Step::Onbuild(t.clone()),
            Body::Expose(ports) => {
                let mut out = Vec::new();
                for port in ports {
                    let words = expand_words(port, self.escape, lookup)
                        .map_err(|e| format!("{e} (in \"{port}\")"))?;
                    out.extend(words);
                }
                Step::Expose(out)
            }
            Body::Volume(vs) => Step::Volume(all(vs)?),
            Body::Shell(sh) => Step::Shell(sh.clone()),
            Body::Cmd(c) => Step::Cmd(c.clone()),
            Body::Entrypoint(c) => Step::Entrypoint(c.clone()),
            Body::Healthcheck(h) => Step::Healthcheck(h.clone()),
        })
    }

    fn expand_copy(
        &self,
        spec: &CopySpec,
        expand: &[bool],
        lookup: &dyn Fn(&str) -> Option<String>,
        word: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<CopySpec, String> {
        let opt = |v: &Option<String>| v.as_deref().map(word).transpose();
        let heredocs = spec
            .heredocs
            .iter()
            .zip(expand)
            .map(|(file, &expand)| {
                let content = if expand {
                    expand_heredoc(&file.content, self.escape, lookup)
                        .map_err(|e| format!("{e} (in heredoc {})", file.name))?
                } else {
                    file.content.clone()
                };
                Ok(InlineFile {
                    name: file.name.clone(),
                    content,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(CopySpec {
            sources: spec
                .sources
                .iter()
                .map(|s| word(s))
                .collect::<Result<_, _>>()?,
            heredocs,
            dest: word(&spec.dest)?,
            from: opt(&spec.from)?,
            chown: opt(&spec.chown)?,
            chmod: opt(&spec.chmod)?,
            link: spec.link,
            checksum: opt(&spec.checksum)?,
            keep_git_dir: spec.keep_git_dir,
            parents: spec.parents,
            excludes: spec
                .excludes
                .iter()
                .map(|s| word(s))
                .collect::<Result<_, _>>()?,
        })
    }
}
