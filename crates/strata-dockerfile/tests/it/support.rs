//! Shared helpers: expansion with a fixed environment, a compact rendering
//! of parsed Dockerfiles, and builders for expected steps.

use strata_dockerfile::{Command, CopySpec, Dockerfile, Step, parse};

/// A lookup over fixed `(name, value)` pairs.
pub fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

/// Parses `input` and expands every instruction of every stage with `vars`.
pub fn steps(input: &str, vars: &[(&str, &str)]) -> Vec<Step> {
    let file = parse(input).unwrap_or_else(|e| panic!("input {input:?}: {e}"));
    let lookup = env(vars);
    file.stages
        .iter()
        .flat_map(|s| &s.instructions)
        .map(|i| {
            i.expand(&lookup)
                .unwrap_or_else(|e| panic!("input {input:?}: {e}"))
        })
        .collect()
}

/// Fails unless `input` (after a `FROM scratch` line that this adds) expands
/// to exactly `want`.
pub fn check_steps(input: &str, vars: &[(&str, &str)], want: Vec<Step>) {
    let input = format!("FROM scratch\n{input}");
    assert_eq!(steps(&input, vars), want, "input {input:?}");
}

/// One line per stage and per instruction: `line: text`.
pub fn render(file: &Dockerfile) -> String {
    let mut out = String::new();
    for arg in &file.meta_args {
        out += &format!("meta {}={:?}\n", arg.name, arg.default);
    }
    for stage in &file.stages {
        let from = &stage.from;
        out += &format!(
            "{}: stage {} {:?} FROM {} platform={:?}\n",
            from.line, stage.index, stage.name, from.image, from.platform
        );
        for ins in &stage.instructions {
            out += &format!("{}: {}\n", ins.line, ins.text());
        }
    }
    out
}

/// Fails unless parsing `input` gives an error on `line` whose message
/// contains `part`.
pub fn check_err(input: &str, line: usize, part: &str) {
    match parse(input) {
        Ok(file) => panic!("input {input:?}: parsed, want error\n{}", render(&file)),
        Err(e) => {
            assert_eq!(e.line, line, "input {input:?}: {e}");
            assert!(
                e.message.contains(part),
                "input {input:?}: {e}\nwant {part:?}"
            );
        }
    }
}

/// Like [`check_err`] for errors that only expansion finds.
pub fn check_expand_err(input: &str, vars: &[(&str, &str)], line: usize, part: &str) {
    let input = format!("FROM scratch\n{input}");
    let file = parse(&input).unwrap_or_else(|e| panic!("input {input:?}: {e}"));
    let lookup = env(vars);
    let err = file.stages[0]
        .instructions
        .iter()
        .find_map(|i| i.expand(&lookup).err())
        .unwrap_or_else(|| panic!("input {input:?}: expanded, want error"));
    assert_eq!(err.line, line, "input {input:?}: {err}");
    assert!(
        err.message.contains(part),
        "input {input:?}: {err}\nwant {part:?}"
    );
}

pub fn shell(text: &str) -> Command {
    Command::Shell(text.to_owned())
}

pub fn exec(args: &[&str]) -> Command {
    Command::Exec(strings(args))
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn run(text: &str) -> Step {
    Step::Run {
        command: shell(text),
        mounts: vec![],
        network: None,
        security: None,
    }
}

/// A plain `COPY sources... dest`.
pub fn copy(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        sources: strings(sources),
        heredocs: vec![],
        dest: dest.to_owned(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        checksum: None,
        keep_git_dir: false,
        parents: false,
        excludes: vec![],
    }
}
