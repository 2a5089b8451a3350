//! Properties over arbitrary input: nothing panics, plain words stay put.

use proptest::prelude::*;
use strata_dockerfile::{expand_word, parse, parse_instruction};

fn lookup(name: &str) -> Option<String> {
    name.len()
        .is_multiple_of(2)
        .then(|| format!("<{name} value>"))
}

/// Text built from the characters that matter to the grammar.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "FROM ",
        "RUN ",
        "COPY ",
        "ADD ",
        "ENV ",
        "ARG ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "CMD ",
        "--mount=",
        "--from=",
        "type=cache,",
        "target=/x",
        "<<EOF",
        "<<-E",
        "EOF",
        "\n",
        "\r\n",
        "\\\n",
        "\\",
        "`",
        "# escape=`\n",
        "#",
        " ",
        "\t",
        "\"",
        "'",
        "$",
        "${",
        "}",
        ":-",
        "[",
        "]",
        "\"a\"",
        ",",
        "=",
        "AS ",
        "x",
        "0",
        "é",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn expand_word_never_panics(word in any::<String>(), backtick in any::<bool>()) {
        let escape = if backtick { '`' } else { '\\' };
        let _ = expand_word(&word, escape, &lookup);
    }

    #[test]
    fn expand_word_on_grammar_pieces_never_panics(word in dockerfile_text()) {
        let _ = expand_word(&word, '\\', &lookup);
    }

    #[test]
    fn plain_words_expand_to_themselves(word in "[^$'\"\\\\]*") {
        prop_assert_eq!(expand_word(&word, '\\', &lookup).ok(), Some(word));
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = parse(&text);
        let _ = parse_instruction(&text, '\\');
    }

    #[test]
    fn parse_and_expand_grammar_pieces_never_panic(text in dockerfile_text()) {
        if let Ok(file) = parse(&text) {
            for ins in file.stages.iter().flat_map(|s| &s.instructions) {
                let _ = ins.expand(&lookup);
            }
        }
        let _ = parse_instruction(&text, '`');
    }
}
