//! Every refusal, with the line it names.

use crate::support::check_err;

#[test]
fn structure() {
    for (input, line, part) in [
        ("", 1, "dockerfile has no FROM instruction"),
        (
            "# only a comment\n\n",
            2,
            "dockerfile has no FROM instruction",
        ),
        ("ARG A\nARG B=1\n", 2, "dockerfile has no FROM instruction"),
        (
            "ARG A\nRUN x\nFROM a",
            2,
            "no build stage in current context: RUN must come after a FROM",
        ),
        (
            "\n\nENV A=1\nFROM a",
            3,
            "no build stage in current context",
        ),
        ("FROM a\nBOGUS x", 2, "unknown instruction: BOGUS"),
        ("FROM a\n  frum x", 2, "unknown instruction: frum"),
        ("FROM a\nRUN x \\\n y\nFOO", 4, "unknown instruction: FOO"),
    ] {
        check_err(input, line, part);
    }
}

#[test]
fn directives() {
    for (input, line, part) in [
        (
            "# escape=x\nFROM a",
            1,
            "invalid escape token 'x' does not match ` or \\",
        ),
        ("# escape=\\\\\nFROM a", 1, "invalid escape token"),
        (
            "# escape=`\n# escape=`\nFROM a",
            2,
            "only one escape parser directive can be used",
        ),
        (
            "# syntax=a\n# SYNTAX=b\nFROM a",
            2,
            "only one syntax parser directive can be used",
        ),
    ] {
        check_err(input, line, part);
    }
}

#[test]
fn from_and_stages() {
    for (input, line, part) in [
        ("FROM", 1, "FROM requires either one or three arguments"),
        ("FROM a b", 1, "FROM requires either one or three arguments"),
        (
            "FROM a AS",
            1,
            "FROM requires either one or three arguments",
        ),
        (
            "FROM a TO b",
            1,
            "FROM requires either one or three arguments",
        ),
        ("FROM a AS 1st", 1, "invalid name for build stage: \"1st\""),
        ("FROM a AS b/c", 1, "invalid name for build stage"),
        ("FROM a AS x\nFROM b AS X", 2, "duplicate stage name \"x\""),
        (
            "FROM --platfrom=x a",
            1,
            "unknown flag: --platfrom (FROM accepts --platform)",
        ),
        (
            "FROM a\nCOPY --from=0 x /y",
            2,
            "--from=0 does not name an earlier stage",
        ),
        (
            "FROM a\nFROM b\nCOPY --from=2 x /y",
            3,
            "--from=2 does not name an earlier stage",
        ),
        (
            "FROM a\nCOPY --from=-1 x /y",
            2,
            "--from=-1 does not name an earlier stage",
        ),
        (
            "FROM a\nRUN --mount=from=0,target=/x y",
            2,
            "--from=0 does not name an earlier stage",
        ),
    ] {
        check_err(input, line, part);
    }
}

#[test]
fn arguments() {
    for (input, line, part) in [
        ("FROM a\nRUN", 2, "RUN requires at least one argument"),
        ("FROM a\nRUN []", 2, "RUN requires at least one argument"),
        (
            "FROM a\nCMD [\"a\", 1]",
            2,
            "arrays must be comprised of strings only",
        ),
        ("FROM a\nENV", 2, "ENV requires at least one argument"),
        ("FROM a\nENV K", 2, "ENV must have two arguments"),
        ("FROM a\nENV K=1 J", 2, "can't find = in \"J\""),
        ("FROM a\nENV =1", 2, "ENV names can not be blank"),
        ("FROM a\nLABEL", 2, "LABEL requires at least one argument"),
        ("FROM a\nLABEL k", 2, "LABEL must have two arguments"),
        ("FROM a\nARG", 2, "ARG requires at least one argument"),
        ("FROM a\nARG =x", 2, "ARG names can not be blank"),
        (
            "FROM a\nCOPY onlyone",
            2,
            "COPY requires at least two arguments",
        ),
        ("FROM a\nCOPY", 2, "COPY requires at least two arguments"),
        (
            "FROM a\nADD [\"a\"]",
            2,
            "ADD requires at least two arguments",
        ),
        (
            "FROM a\nCOPY [1, \"/x\"]",
            2,
            "arrays must be comprised of strings only",
        ),
        (
            "FROM a\nWORKDIR",
            2,
            "WORKDIR requires exactly one argument",
        ),
        ("FROM a\nUSER", 2, "USER requires exactly one argument"),
        (
            "FROM a\nSTOPSIGNAL",
            2,
            "STOPSIGNAL requires exactly one argument",
        ),
        (
            "FROM a\nMAINTAINER",
            2,
            "MAINTAINER requires exactly one argument",
        ),
        ("FROM a\nEXPOSE", 2, "EXPOSE requires at least one argument"),
        ("FROM a\nVOLUME", 2, "VOLUME requires at least one argument"),
        (
            "FROM a\nVOLUME [\"/a\", \" \"]",
            2,
            "VOLUME specified can not be an empty string",
        ),
        (
            "FROM a\nSHELL /bin/sh -c",
            2,
            "SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nSHELL []",
            2,
            "SHELL requires at least one argument",
        ),
        ("FROM a\nSHELL", 2, "SHELL requires at least one argument"),
        (
            "FROM a\nONBUILD",
            2,
            "ONBUILD requires at least one argument",
        ),
    ] {
        check_err(input, line, part);
    }
}

#[test]
fn heredocs() {
    for (input, line, part) in [
        (
            "FROM a\nRUN <<EOF\necho",
            2,
            "unterminated heredoc: no line \"EOF\" ends it",
        ),
        (
            "FROM a\n\nRUN <<A <<B\n1\nA\n2\n",
            3,
            "no line \"B\" ends it",
        ),
        (
            "FROM a\nCOPY x <<EOF\nEOF",
            2,
            "COPY cannot accept a heredoc as a destination",
        ),
    ] {
        check_err(input, line, part);
    }
}

#[test]
fn flags() {
    for (input, line, part) in [
        (
            "FROM a\nRUN --bogus x",
            2,
            "unknown flag: --bogus (RUN accepts --mount, --network, --security)",
        ),
        (
            "FROM a\nENV --x=1 A=b",
            2,
            "unknown flag: --x (ENV takes no flags)",
        ),
        ("FROM a\nCMD --help", 2, "unknown flag: --help"),
        (
            "FROM a\nADD --from=x a b",
            2,
            "unknown flag: --from (ADD accepts",
        ),
        ("FROM a\nADD --parents a b", 2, "unknown flag: --parents"),
        (
            "FROM a\nCOPY --checksum=x a b",
            2,
            "unknown flag: --checksum (COPY accepts",
        ),
        (
            "FROM a\nCOPY --keep-git-dir a b",
            2,
            "unknown flag: --keep-git-dir",
        ),
        (
            "FROM a\nCOPY --from=a --from=b x y",
            2,
            "duplicate flag specified: --from",
        ),
        (
            "FROM a\nCOPY --from x y",
            2,
            "missing a value on flag: --from",
        ),
        (
            "FROM a\nCOPY --link= x y",
            2,
            "missing a value on flag: --link",
        ),
        (
            "FROM a\nCOPY --link=maybe x y",
            2,
            "expecting boolean value for flag --link, not: maybe",
        ),
        (
            "FROM a\nRUN --network=bridge x",
            2,
            "unsupported network mode \"bridge\"",
        ),
        (
            "FROM a\nRUN --security=low x",
            2,
            "unsupported security mode \"low\"",
        ),
        (
            "FROM a\nRUN --mount x",
            2,
            "missing a value on flag: --mount",
        ),
        ("FROM a\nRUN --mount= x", 2, "empty --mount value"),
        (
            "FROM a\nRUN --mount=type=nfs,target=/x y",
            2,
            "unsupported mount type \"nfs\"",
        ),
        (
            "FROM a\nRUN --mount=type=cache y",
            2,
            "mount target is required",
        ),
        (
            "FROM a\nRUN --mount=target=/x,bogus=1 y",
            2,
            "unexpected key 'bogus'",
        ),
        (
            "FROM a\nRUN --mount=target=/x,exec y",
            2,
            "invalid field 'exec' must be a key=value pair",
        ),
        (
            "FROM a\nRUN --mount=target=/x,ro=maybe y",
            2,
            "invalid value for ro: maybe",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x,mode=999 y",
            2,
            "invalid value 999 for mode",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x,uid=-1 y",
            2,
            "invalid value -1 for uid",
        ),
        (
            "FROM a\nRUN --mount=target=/x,mode=0644 y",
            2,
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "FROM a\nRUN --mount=target=/x,sharing=shared y",
            2,
            "invalid cache sharing set for bind mount",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x,sharing=all y",
            2,
            "unrecognized sharing mode \"all\"",
        ),
        (
            "FROM a\nRUN --mount=type=secret y",
            2,
            "one of source, target or id is required",
        ),
        (
            "FROM a\nRUN --mount=type=secret,id=a,from=b y",
            2,
            "secret mount should not have a from",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x,required y",
            2,
            "unexpected key 'required'",
        ),
        (
            "FROM a\nRUN --mount=type=tmpfs,target=/x,size=lots y",
            2,
            "invalid size: 'lots'",
        ),
        // Quotes around a flag are the flag's own; CSV quotes sit inside them.
        (
            "FROM a\nRUN --mount='\"target=/x' y",
            2,
            "extraneous or missing \" in quoted-field",
        ),
        (
            "FROM a\nRUN --mount='target=/x\"y\"' z",
            2,
            "bare \" in non-quoted-field",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=5 CMD x",
            2,
            "invalid duration \"5\" for --interval",
        ),
        (
            "FROM a\nHEALTHCHECK --timeout=-1s CMD x",
            2,
            "--timeout cannot be less than 1ms",
        ),
        (
            "FROM a\nHEALTHCHECK --start-period=10us CMD x",
            2,
            "--start-period cannot be less than 1ms",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=-2 CMD x",
            2,
            "--retries cannot be negative (-2)",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=many CMD x",
            2,
            "invalid value \"many\" for --retries",
        ),
        (
            "FROM a\nHEALTHCHECK --bogus=1 CMD x",
            2,
            "unknown flag: --bogus",
        ),
    ] {
        check_err(input, line, part);
    }
}

#[test]
fn healthcheck_and_onbuild() {
    for (input, line, part) in [
        (
            "FROM a\nHEALTHCHECK",
            2,
            "HEALTHCHECK requires at least one argument",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x",
            2,
            "HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nHEALTHCHECK CMD",
            2,
            "missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK CMD []",
            2,
            "missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK RUN x",
            2,
            "unknown type \"RUN\" in HEALTHCHECK (try CMD)",
        ),
        (
            "FROM a\nONBUILD ONBUILD RUN x",
            2,
            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (
            "FROM a\nONBUILD FROM x",
            2,
            "FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nONBUILD maintainer x",
            2,
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("FROM a\nONBUILD BOGUS x", 2, "unknown instruction: BOGUS"),
        (
            "FROM a\nONBUILD COPY x",
            2,
            "COPY requires at least two arguments",
        ),
        ("FROM a\nONBUILD RUN --bad x", 2, "unknown flag: --bad"),
    ] {
        check_err(input, line, part);
    }
}
