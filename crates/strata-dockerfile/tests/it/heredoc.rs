//! Heredocs in RUN, COPY and ADD.

use strata_dockerfile::{InlineFile, Step, parse};

use crate::support::{check_steps, copy, render, run};

const VARS: &[(&str, &str)] = &[("A", "a")];

fn check(input: &str, want: Vec<Step>) {
    check_steps(input, VARS, want);
}

fn inline(name: &str, content: &str) -> InlineFile {
    InlineFile {
        name: name.to_owned(),
        content: content.to_owned(),
    }
}

fn copy_inline(files: Vec<InlineFile>, sources: &[&str], dest: &str) -> Step {
    let mut spec = copy(sources, dest);
    spec.heredocs = files;
    Step::Copy(spec)
}

#[test]
fn run_heredocs() {
    for (input, want) in [
        // Only a heredoc: the body is the script.
        (
            "RUN <<EOF\necho $A\necho 2\nEOF\nRUN after",
            vec![run("echo $A\necho 2\n"), run("after")],
        ),
        (
            "RUN <<-EOF\n\techo 1\n\t\techo 2\n\tEOF",
            vec![run("echo 1\necho 2\n")],
        ),
        // Anything else: the shell gets the line, the bodies and terminators.
        (
            "RUN cat <<EOF > /f\nhello\nEOF",
            vec![run("cat <<EOF > /f\nhello\nEOF\n")],
        ),
        (
            "RUN python3 - <<'PY' && cat <<-END\nprint(1)\nPY\n\tx\n\tEND",
            vec![run(
                "python3 - <<'PY' && cat <<-END\nprint(1)\nPY\n\tx\nEND\n",
            )],
        ),
        // An empty body.
        ("RUN <<EOF\nEOF", vec![run("")]),
        // A quoted `<<` is not a heredoc; nor is `<<` in exec form.
        ("RUN echo '<<EOF'", vec![run("echo '<<EOF'")]),
        ("RUN echo a<<b", vec![run("echo a<<b")]),
        // CRLF bodies get LF line ends.
        ("RUN <<EOF\r\necho 1\r\nEOF\r\n", vec![run("echo 1\n")]),
    ] {
        check(input, want);
    }
}

#[test]
fn copy_heredocs() {
    for (input, want) in [
        (
            "COPY <<EOF /f\nv=$A\n\"q\" \\$A\nEOF",
            vec![copy_inline(
                vec![inline("EOF", "v=a\n\"q\" $A\n")],
                &[],
                "/f",
            )],
        ),
        // A quoted delimiter keeps the body literal.
        (
            "COPY <<\"EOF\" /f\nv=$A \\$\nEOF",
            vec![copy_inline(vec![inline("EOF", "v=$A \\$\n")], &[], "/f")],
        ),
        (
            "COPY <<'E'x /f\n$A\nEx",
            vec![copy_inline(vec![inline("Ex", "$A\n")], &[], "/f")],
        ),
        (
            "COPY <<one real <<-two /dir/\n1\none\n\t2\n\ttwo",
            vec![copy_inline(
                vec![inline("one", "1\n"), inline("two", "2\n")],
                &["real"],
                "/dir/",
            )],
        ),
        (
            "ADD <<EOF /f\nx\nEOF",
            vec![{
                let mut spec = copy(&[], "/f");
                spec.heredocs = vec![inline("EOF", "x\n")];
                Step::Add(spec)
            }],
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn heredoc_lines_are_skipped_and_numbered() {
    let file = parse("FROM a\nRUN <<EOF\nFROM b\nEOF\nRUN x").expect("parses");
    assert_eq!(
        render(&file),
        "1: stage 0 None FROM a platform=None\n2: RUN <<EOF\n5: RUN x\n"
    );
}
