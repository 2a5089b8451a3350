//! FROM lines, stage names, meta ARGs and stage lookup.

use strata_dockerfile::parse;

use crate::support::render;

fn check(input: &str, want: &str) {
    let file = parse(input).unwrap_or_else(|e| panic!("input {input:?}: {e}"));
    assert_eq!(render(&file), want, "input {input:?}");
}

#[test]
fn from_lines() {
    for (input, want) in [
        (
            "FROM scratch",
            "1: stage 0 None FROM scratch platform=None\n",
        ),
        (
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build",
            "1: stage 0 Some(\"build\") FROM golang:1.22 platform=Some(\"$BUILDPLATFORM\")\n",
        ),
        (
            "from a as b.c-d_e9",
            "1: stage 0 Some(\"b.c-d_e9\") FROM a platform=None\n",
        ),
        (
            "ARG V=1\nARG A B=\"x y\"\nFROM img:$V\nRUN x\nFROM img2 AS two\nARG V\n",
            concat!(
                "meta V=Some(\"1\")\nmeta A=None\nmeta B=Some(\"\\\"x y\\\"\")\n",
                "3: stage 0 None FROM img:$V platform=None\n4: RUN x\n",
                "5: stage 1 Some(\"two\") FROM img2 platform=None\n6: ARG V\n",
            ),
        ),
    ] {
        check(input, want);
    }
}

#[test]
fn stage_index() {
    let file = parse("FROM a AS Build\nFROM b\nFROM c AS final").expect("parses");
    for (query, want) in [
        ("build", Some(0)),
        ("BUILD", Some(0)),
        ("final", Some(2)),
        ("0", Some(0)),
        ("1", Some(1)),
        ("3", None),
        ("-1", None),
        ("other", None),
    ] {
        assert_eq!(file.stage_index(query), want, "{query}");
    }
}

#[test]
fn stage_refs() {
    let input = concat!(
        "FROM a AS one\nFROM b\n",
        "COPY --from=one /x /y\nCOPY --from=0 /x /y\nCOPY --from=alpine:3 /x /y\n",
        "COPY --from=$BASE /x /y\nCOPY /x /y\n",
        "RUN --mount=type=bind,from=one,target=/m --mount=type=cache,target=/c --mount=from=0,target=/n x\n",
        "ADD /a /b\n",
    );
    let file = parse(input).expect("parses");
    let refs: Vec<Vec<String>> = file.stages[1]
        .instructions
        .iter()
        .map(|i| i.stage_refs())
        .collect();
    let want: Vec<Vec<&str>> = vec![
        vec!["one"],
        vec!["0"],
        vec!["alpine:3"],
        vec!["$BASE"],
        vec![],
        vec!["one", "0"],
        vec![],
    ];
    assert_eq!(refs, want);
}
