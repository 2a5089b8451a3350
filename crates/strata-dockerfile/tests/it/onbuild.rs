//! ONBUILD triggers and reading them back with `parse_instruction`.

use strata_dockerfile::{Step, parse_instruction};

use crate::support::{check_steps, copy, env, run};

#[test]
fn triggers_are_kept_as_written() {
    for (input, want) in [
        ("ONBUILD RUN echo $A", "RUN echo $A"),
        ("onbuild   copy --from=x a /b", "copy --from=x a /b"),
        ("ONBUILD RUN a \\\n b", "RUN a  b"),
        ("ONBUILD RUN <<EOF\necho hi\nEOF", "RUN <<EOF\necho hi\nEOF"),
    ] {
        check_steps(input, &[("A", "a")], vec![Step::Onbuild(want.to_owned())]);
    }
}

#[test]
fn parse_instruction_reads_triggers() {
    let lookup = env(&[("A", "a")]);
    for (text, escape, want) in [
        ("RUN echo $A", '\\', run("echo $A")),
        ("COPY $A /b", '\\', Step::Copy(copy(&["a"], "/b"))),
        ("RUN <<EOF\necho hi\nEOF", '\\', run("echo hi\n")),
        ("RUN a `\n b", '`', run("a  b")),
        // Directives are not read from triggers.
        ("# escape=`\nRUN a", '\\', run("a")),
    ] {
        let ins = parse_instruction(text, escape).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(ins.expand(&lookup).expect("expands"), want, "{text:?}");
    }
}

#[test]
fn parse_instruction_errors() {
    for (text, line, part) in [
        ("", 1, "no instruction found"),
        ("RUN a\nRUN b", 2, "expected a single instruction"),
        ("FROM x", 1, "FROM is not allowed here"),
        ("BOGUS x", 1, "unknown instruction: BOGUS"),
        ("RUN <<EOF\nx", 1, "unterminated heredoc"),
    ] {
        let err = parse_instruction(text, '\\').expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(err.message.contains(part), "{text:?}: {err}");
    }
}
