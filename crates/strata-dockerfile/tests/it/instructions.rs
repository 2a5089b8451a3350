//! Each instruction's arguments after expansion: which are expanded, how
//! words split, exec and shell forms.

use strata_dockerfile::{ArgDecl, CopySpec, Step};

use crate::support::{check_steps, copy, exec, pairs, run, shell, strings};

const VARS: &[(&str, &str)] = &[("A", "a"), ("SP", "x y"), ("P", "8080")];

fn check(input: &str, want: Step) {
    check_steps(input, VARS, vec![want]);
}

fn arg(name: &str, default: Option<&str>) -> ArgDecl {
    ArgDecl {
        name: name.to_owned(),
        default: default.map(str::to_owned),
    }
}

#[test]
fn run_cmd_entrypoint_are_not_expanded() {
    for (input, want) in [
        ("RUN echo $A \"q\"", run("echo $A \"q\"")),
        (
            "RUN [\"echo\", \"$A\"]",
            Step::Run {
                command: exec(&["echo", "$A"]),
                mounts: vec![],
                network: None,
                security: None,
            },
        ),
        // Not valid JSON: shell form, as written.
        ("RUN [\"echo\", $A]", run("[\"echo\", $A]")),
        ("RUN [echo]", run("[echo]")),
        ("CMD [\"a\",\"b c\"]", Step::Cmd(exec(&["a", "b c"]))),
        ("CMD  [ ]", Step::Cmd(exec(&[]))),
        ("CMD echo $A", Step::Cmd(shell("echo $A"))),
        ("CMD", Step::Cmd(exec(&[]))),
        (
            "ENTRYPOINT [\"/bin/app\"]",
            Step::Entrypoint(exec(&["/bin/app"])),
        ),
        ("ENTRYPOINT exec app", Step::Entrypoint(shell("exec app"))),
        (
            "SHELL [\"/bin/bash\", \"-c\"]",
            Step::Shell(strings(&["/bin/bash", "-c"])),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn env_and_label() {
    for (input, want) in [
        ("ENV K=v", Step::Env(pairs(&[("K", "v")]))),
        (
            "ENV K1=\"a b\" K2=$A K3='$A' K4=a\\ b K5=",
            Step::Env(pairs(&[
                ("K1", "a b"),
                ("K2", "a"),
                ("K3", "$A"),
                ("K4", "a b"),
                ("K5", ""),
            ])),
        ),
        // Legacy form: the rest of the line is the value.
        (
            "ENV K  the  value $A",
            Step::Env(pairs(&[("K", "the  value a")])),
        ),
        ("ENV ${A}x=1", Step::Env(pairs(&[("ax", "1")]))),
        // All values see the environment from before the instruction.
        (
            "ENV A=new B=$A",
            Step::Env(pairs(&[("A", "new"), ("B", "a")])),
        ),
        (
            "LABEL \"com.example.key\"=\"v $A\" other=1",
            Step::Label(pairs(&[("com.example.key", "v a"), ("other", "1")])),
        ),
        (
            "LABEL key value with spaces",
            Step::Label(pairs(&[("key", "value with spaces")])),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn arg_defaults() {
    for (input, want) in [
        ("ARG X", Step::Arg(vec![arg("X", None)])),
        ("ARG X=$A-1", Step::Arg(vec![arg("X", Some("a-1"))])),
        (
            "ARG X Y=\"two words\" Z=",
            Step::Arg(vec![
                arg("X", None),
                arg("Y", Some("two words")),
                arg("Z", Some("")),
            ]),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn single_word_instructions() {
    for (input, want) in [
        ("WORKDIR /app/$A", Step::Workdir("/app/a".into())),
        ("WORKDIR /my dir", Step::Workdir("/my dir".into())),
        ("USER $A:${G:-users}", Step::User("a:users".into())),
        ("STOPSIGNAL SIG$A", Step::StopSignal("SIGa".into())),
        (
            "MAINTAINER Jo $A <jo@x>",
            Step::Maintainer("Jo $A <jo@x>".into()),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn lists() {
    for (input, want) in [
        (
            "EXPOSE 80 $P/tcp",
            Step::Expose(strings(&["80", "8080/tcp"])),
        ),
        // EXPOSE splits what variables bring in.
        ("EXPOSE $SP", Step::Expose(strings(&["x", "y"]))),
        ("VOLUME /a $A", Step::Volume(strings(&["/a", "a"]))),
        (
            "VOLUME [\"/a b\", \"/$A\"]",
            Step::Volume(strings(&["/a b", "/a"])),
        ),
        // VOLUME does not split a variable's value.
        ("VOLUME /$SP", Step::Volume(strings(&["/x y"]))),
    ] {
        check(input, want);
    }
}

#[test]
fn copy_and_add() {
    let with = |f: fn(&mut CopySpec), spec: CopySpec| {
        let mut spec = spec;
        f(&mut spec);
        spec
    };
    for (input, want) in [
        ("COPY a b /dst/", Step::Copy(copy(&["a", "b"], "/dst/"))),
        ("COPY $A /$A", Step::Copy(copy(&["a"], "/a"))),
        (
            "COPY [\"a b\", \"$A\", \"/d/\"]",
            Step::Copy(copy(&["a b", "a"], "/d/")),
        ),
        // Words split before expansion: an escaped blank does not join them.
        ("COPY a\\ b /d", Step::Copy(copy(&["a", "b"], "/d"))),
        (
            "ADD https://x/y.tgz /d",
            Step::Add(copy(&["https://x/y.tgz"], "/d")),
        ),
        (
            "COPY --from=$A --chown=$A:g --chmod=0644 --link --parents --exclude=*.md --exclude=$A x /y",
            Step::Copy(with(
                |s| {
                    s.from = Some("a".into());
                    s.chown = Some("a:g".into());
                    s.chmod = Some("0644".into());
                    s.link = true;
                    s.parents = true;
                    s.excludes = strings(&["*.md", "a"]);
                },
                copy(&["x"], "/y"),
            )),
        ),
        (
            "COPY --link=false --from= x /y",
            Step::Copy(with(|s| s.from = Some(String::new()), copy(&["x"], "/y"))),
        ),
        (
            "ADD --checksum=sha256:$A --keep-git-dir=TRUE --chown=1 git@x:r.git /src",
            Step::Add(with(
                |s| {
                    s.checksum = Some("sha256:a".into());
                    s.keep_git_dir = true;
                    s.chown = Some("1".into());
                },
                copy(&["git@x:r.git"], "/src"),
            )),
        ),
    ] {
        check(input, want);
    }
}
