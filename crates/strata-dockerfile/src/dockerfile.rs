//! A whole Dockerfile: meta ARGs, then stages that each start with FROM.

use crate::directives::Directives;
use crate::error::ParseError;
use crate::flags::Flags;
use crate::heredoc::{self, Heredoc};
use crate::instruction::Instruction;
use crate::keyword::{FROM_FLAGS, Keyword, Parts};
use crate::reader::{Logical, Reader};
use crate::words::split_blank;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character in force (`\` unless `# escape=` said otherwise).
    pub escape: char,
    /// The ARGs before the first FROM, usable in FROM lines.
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The stage a `--target` or `--from` value names: a stage name (any
    /// case) or a stage number.
    pub fn stage_index(&self, name_or_index: &str) -> Option<usize> {
        let lower = name_or_index.to_ascii_lowercase();
        let by_name = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()));
        by_name.or_else(|| {
            name_or_index
                .parse::<usize>()
                .ok()
                .filter(|i| *i < self.stages.len())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    pub from: From,
    pub instructions: Vec<Instruction>,
}

/// A stage's FROM line, unexpanded (the builder expands it with the meta
/// ARGs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub line: usize,
    pub image: String,
    pub platform: Option<String>,
}

/// `ARG name` or `ARG name=default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// One logical line, read and checked.
enum Item {
    Stage(From, Option<String>),
    Instruction(Instruction),
}

/// Parses a Dockerfile into its stages; every error names its line.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut reader = Reader::new(text, Directives::new());
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    while let Some(logical) = reader.next_logical()? {
        let line = logical.line;
        match read_item(&mut reader, logical)? {
            Item::Stage(from, name) => {
                if let Some(name) = &name
                    && stages.iter().any(|s| s.name.as_ref() == Some(name))
                {
                    return Err(ParseError::new(
                        line,
                        format!("duplicate stage name \"{name}\""),
                    ));
                }
                stages.push(Stage {
                    index: stages.len(),
                    name,
                    from,
                    instructions: Vec::new(),
                });
            }
            Item::Instruction(ins) => match stages.last_mut() {
                Some(stage) => {
                    check_stage_refs(&ins, stage.index)?;
                    stage.instructions.push(ins);
                }
                None => {
                    if let Some(args) = ins.arg_decls() {
                        meta_args.extend_from_slice(args);
                        continue;
                    }
                    return Err(ParseError::new(
                        line,
                        format!(
                            "no build stage in current context: {} must come after a FROM instruction",
                            ins.keyword()
                        ),
                    ));
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(ParseError::new(
            reader.line().max(1),
            "dockerfile has no FROM instruction, so there is no stage to build",
        ));
    }
    Ok(Dockerfile {
        escape: reader.directives.escape,
        meta_args,
        stages,
    })
}

/// Parses one instruction, such as an ONBUILD trigger from an image config
/// (heredoc bodies may follow on the next lines). FROM is refused: it starts
/// a stage rather than being an instruction.
pub fn parse_instruction(text: &str, escape: char) -> Result<Instruction, ParseError> {
    let mut reader = Reader::new(text, Directives::none(escape));
    let Some(logical) = reader.next_logical()? else {
        return Err(ParseError::new(1, "no instruction found"));
    };
    let line = logical.line;
    let item = read_item(&mut reader, logical)?;
    if let Some(extra) = reader.next_logical()? {
        return Err(ParseError::new(
            extra.line,
            "expected a single instruction, found more",
        ));
    }
    match item {
        Item::Instruction(ins) => Ok(ins),
        Item::Stage(..) => Err(ParseError::new(line, "FROM is not allowed here")),
    }
}

/// Parses a logical line, reading its heredoc bodies from `reader`.
fn read_item(reader: &mut Reader, logical: Logical) -> Result<Item, ParseError> {
    let Logical { line, text } = logical;
    let at = |message: String| ParseError::new(line, message);
    let parts = Parts::split(&text).map_err(at)?;
    if parts.keyword == Keyword::From {
        let (from, name) = parse_from(line, &parts).map_err(at)?;
        return Ok(Item::Stage(from, name));
    }
    let mut heredocs = Vec::new();
    if parts.takes_heredocs() {
        let specs = heredoc::find(&text);
        let bodies = reader.heredoc_bodies(&specs, line)?;
        heredocs = specs
            .into_iter()
            .zip(bodies)
            .map(|(spec, body)| Heredoc { spec, body })
            .collect();
    }
    let escape = reader.directives.escape;
    let ins = Instruction::new(line, &text, parts, heredocs, escape).map_err(at)?;
    Ok(Item::Instruction(ins))
}

/// `FROM [--platform=P] image [AS name]`.
fn parse_from(line: usize, parts: &Parts) -> Result<(From, Option<String>), String> {
    let flags = Flags::parse(&parts.flags, FROM_FLAGS, "FROM")?;
    let args = split_blank(parts.rest);
    let name = match args.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some(stage_name(name)?),
        _ => {
            return Err(
                "FROM requires either one or three arguments (FROM image [AS name])".into(),
            );
        }
    };
    let from = From {
        line,
        image: args[0].clone(),
        platform: flags.text("platform"),
    };
    Ok((from, name))
}

/// Stage names match `^[a-z][a-z0-9-_.]*$` once lower-cased.
fn stage_name(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        return Err(format!(
            "invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"
        ));
    }
    Ok(lower)
}

/// A numeric `--from` must name an earlier stage.
fn check_stage_refs(ins: &Instruction, current: usize) -> Result<(), ParseError> {
    for reference in ins.stage_refs() {
        let Ok(index) = reference.parse::<i64>() else {
            continue;
        };
        if index < 0 || index >= current as i64 {
            return Err(ParseError::new(
                ins.line,
                format!(
                    "--from={reference} does not name an earlier stage (this is stage {current}; stages count from 0)"
                ),
            ));
        }
    }
    Ok(())
}
