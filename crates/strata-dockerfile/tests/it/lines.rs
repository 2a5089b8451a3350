//! Reading lines: directives, comments, continuations, CRLF, keyword case.

use strata_dockerfile::parse;

use crate::support::render;

fn check(input: &str, want: &str) {
    let file = parse(input).unwrap_or_else(|e| panic!("input {input:?}: {e}"));
    assert_eq!(render(&file), want, "input {input:?}");
}

fn check_escape(input: &str, want: char) {
    let file = parse(input).unwrap_or_else(|e| panic!("input {input:?}: {e}"));
    assert_eq!(file.escape, want, "input {input:?}");
}

const STAGE: &str = "stage 0 None FROM a platform=None";

#[test]
fn comments_and_blank_lines() {
    for (input, want) in [
        ("FROM a\n", format!("1: {STAGE}\n")),
        (
            "# c\n\nFROM a\n  # indented\nRUN x\n",
            format!("3: {STAGE}\n5: RUN x\n"),
        ),
        // A `#` that is not at the start of a line is an argument.
        (
            "FROM a\nRUN echo # not a comment",
            format!("1: {STAGE}\n2: RUN echo # not a comment\n"),
        ),
        // No trailing newline, leading blanks on the instruction line.
        ("FROM a\n   RUN x", format!("1: {STAGE}\n2: RUN x\n")),
    ] {
        check(input, &want);
    }
}

#[test]
fn continuations() {
    for (input, want) in [
        ("FROM a\nRUN a \\\n  b", "2: RUN a   b"),
        // Blanks after the escape character still continue the line.
        ("FROM a\nRUN a \\  \t\nb", "2: RUN a b"),
        // Comments and empty lines inside a continuation are skipped.
        (
            "FROM a\nRUN a \\\n# note\n\n  \n b \\\n c",
            "2: RUN a  b  c",
        ),
        // A continuation at the end of the file just ends.
        ("FROM a\nRUN a \\", "2: RUN a"),
        // An escaped escape at the end still continues (as in Docker).
        ("FROM a\nRUN a\\\\\nb", "2: RUN a\\b"),
        // A line that is only the escape character starts the instruction.
        ("FROM a\n\\\nRUN b", "2: RUN b"),
        ("FROM a\r\nRUN a \\\r\n b\r\n", "2: RUN a  b"),
    ] {
        check(input, &format!("1: {STAGE}\n{want}\n"));
    }
}

#[test]
fn keywords_are_case_insensitive() {
    for (input, want) in [
        ("from a\nrun x", format!("1: {STAGE}\n2: RUN x\n")),
        ("From a\nWorkDir /x", format!("1: {STAGE}\n2: WORKDIR /x\n")),
        (
            "FROM a\nstopSignal   9",
            format!("1: {STAGE}\n2: STOPSIGNAL   9\n"),
        ),
    ] {
        check(input, &want);
    }
}

#[test]
fn directives() {
    for (input, want) in [
        ("FROM a", '\\'),
        ("# escape=`\nFROM a", '`'),
        ("#escape=\\\nFROM a", '\\'),
        ("# ESCAPE = `  \nFROM a", '`'),
        ("  #\tescape=`\nFROM a", '`'),
        ("# syntax=docker/dockerfile:1\n# escape=`\nFROM a", '`'),
        ("# check=skip=all\n# escape=`\nFROM a", '`'),
        ("\u{feff}# escape=`\nFROM a", '`'),
        // After a blank line, an ordinary comment or an unknown directive,
        // directives are comments.
        ("\n# escape=`\nFROM a", '\\'),
        ("# hello\n# escape=`\nFROM a", '\\'),
        ("# unknown=x\n# escape=`\nFROM a", '\\'),
        ("FROM a\n# escape=`", '\\'),
    ] {
        check_escape(input, want);
    }
}

#[test]
fn backtick_escape() {
    for (input, want) in [
        ("# escape=`\nFROM a\nRUN a `\n b", "3: RUN a  b"),
        // A backslash is ordinary: Windows paths need no doubling.
        (
            "# escape=`\nFROM a\nCOPY c:\\x c:\\y\\",
            "3: COPY c:\\x c:\\y\\",
        ),
    ] {
        check(input, &format!("2: {STAGE}\n{want}\n"));
    }
}
