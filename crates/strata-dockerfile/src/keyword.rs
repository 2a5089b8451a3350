//! Instruction names, the flags each accepts, and splitting a logical line
//! into keyword, flags and arguments.

use crate::flags::{Kind, Spec};
use crate::words::{json_array, split_first, take_flags};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
}

const ALL: [Keyword; 18] = [
    Keyword::Add,
    Keyword::Arg,
    Keyword::Cmd,
    Keyword::Copy,
    Keyword::Entrypoint,
    Keyword::Env,
    Keyword::Expose,
    Keyword::From,
    Keyword::Healthcheck,
    Keyword::Label,
    Keyword::Maintainer,
    Keyword::Onbuild,
    Keyword::Run,
    Keyword::Shell,
    Keyword::StopSignal,
    Keyword::User,
    Keyword::Volume,
    Keyword::Workdir,
];

const RUN_FLAGS: Spec = &[
    ("mount", Kind::List),
    ("network", Kind::Text),
    ("security", Kind::Text),
];
const COPY_FLAGS: Spec = &[
    ("from", Kind::Text),
    ("chown", Kind::Text),
    ("chmod", Kind::Text),
    ("link", Kind::Bool),
    ("parents", Kind::Bool),
    ("exclude", Kind::List),
];
const ADD_FLAGS: Spec = &[
    ("chown", Kind::Text),
    ("chmod", Kind::Text),
    ("link", Kind::Bool),
    ("checksum", Kind::Text),
    ("keep-git-dir", Kind::Bool),
    ("exclude", Kind::List),
];
const HEALTHCHECK_FLAGS: Spec = &[
    ("interval", Kind::Text),
    ("timeout", Kind::Text),
    ("start-period", Kind::Text),
    ("start-interval", Kind::Text),
    ("retries", Kind::Text),
];
pub(crate) const FROM_FLAGS: Spec = &[("platform", Kind::Text)];

impl Keyword {
    pub(crate) fn lookup(word: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(word))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::Add => "ADD",
            Keyword::Arg => "ARG",
            Keyword::Cmd => "CMD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Expose => "EXPOSE",
            Keyword::From => "FROM",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Run => "RUN",
            Keyword::Shell => "SHELL",
            Keyword::StopSignal => "STOPSIGNAL",
            Keyword::User => "USER",
            Keyword::Volume => "VOLUME",
            Keyword::Workdir => "WORKDIR",
        }
    }

    pub(crate) fn flags(self) -> Spec {
        match self {
            Keyword::Run => RUN_FLAGS,
            Keyword::Copy => COPY_FLAGS,
            Keyword::Add => ADD_FLAGS,
            Keyword::Healthcheck => HEALTHCHECK_FLAGS,
            Keyword::From => FROM_FLAGS,
            _ => &[],
        }
    }
}

/// A logical line taken apart: keyword, flag words, the remaining arguments.
pub(crate) struct Parts<'a> {
    pub(crate) keyword: Keyword,
    pub(crate) flags: Vec<String>,
    pub(crate) rest: &'a str,
}

impl<'a> Parts<'a> {
    pub(crate) fn split(text: &'a str) -> Result<Self, String> {
        let (word, after) = split_first(text);
        let keyword =
            Keyword::lookup(word).ok_or_else(|| format!("unknown instruction: {word}"))?;
        let (flags, rest) = take_flags(after);
        Ok(Parts {
            keyword,
            flags,
            rest: rest.trim_end(),
        })
    }

    /// Whether heredoc bodies follow this line: RUN, COPY and ADD in shell
    /// form (also as an ONBUILD trigger), and only if `<<` appears at all.
    pub(crate) fn takes_heredocs(&self) -> bool {
        if !self.rest.contains("<<") {
            return false;
        }
        match self.keyword {
            Keyword::Run | Keyword::Copy | Keyword::Add => json_array(self.rest).is_err(),
            Keyword::Onbuild => Parts::split(self.rest).is_ok_and(|p| p.takes_heredocs()),
            _ => false,
        }
    }
}
