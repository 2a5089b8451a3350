//! `expand_word`: quotes, escapes and every substitution form.

use strata_dockerfile::{expand_word, expand_words};

use crate::support::env;

const VARS: &[(&str, &str)] = &[
    ("A", "a"),
    ("EMPTY", ""),
    ("SP", "x  y"),
    ("PATH", "/usr/local/bin:/usr/bin"),
    ("FILE", "archive.tar.gz"),
    ("é", "accent"),
];

fn check(word: &str, want: Result<&str, &str>) {
    let got = expand_word(word, '\\', &env(VARS)).map_err(|e| e.to_string());
    assert_eq!(
        got.as_deref(),
        want.map_err(|e| e.to_owned()).as_deref(),
        "word {word:?}"
    );
}

#[test]
fn quotes_and_escapes() {
    for (word, want) in [
        ("plain", Ok("plain")),
        ("", Ok("")),
        ("'single $A \\x'", Ok("single $A \\x")),
        ("\"double $A\"", Ok("double a")),
        ("\"a\\\"b\\$A\\\\c\\d\"", Ok("a\"b$A\\c\\d")),
        ("a\\ b", Ok("a b")),
        ("\\$A", Ok("$A")),
        ("\\'x\\'", Ok("'x'")),
        ("trailing\\", Ok("trailing")),
        ("mix'ed'\"up\"", Ok("mixedup")),
        (
            "it's",
            Err("unexpected end of statement while looking for matching single-quote"),
        ),
        (
            "\"open",
            Err("unexpected end of statement while looking for matching double-quote"),
        ),
    ] {
        check(word, want);
    }
}

#[test]
fn variables() {
    for (word, want) in [
        ("$A", Ok("a")),
        ("${A}", Ok("a")),
        ("$A$A-${A}b", Ok("aa-ab")),
        ("$Ab", Ok("")),
        ("$UNSET", Ok("")),
        ("$", Ok("$")),
        ("a$", Ok("a$")),
        ("$ x", Ok("$ x")),
        ("$1x", Ok("x")),
        ("$é", Ok("accent")),
        ("${A", Err("syntax error: missing '}'")),
        ("${", Err("syntax error: missing '}'")),
        ("${}", Err("syntax error: bad substitution")),
        ("${:-x}", Err("syntax error: bad substitution")),
        ("${A B}", Err("unsupported modifier ( ) in substitution")),
        ("${A:x}", Err("unsupported modifier (:x) in substitution")),
    ] {
        check(word, want);
    }
}

#[test]
fn defaults_and_alternatives() {
    for (word, want) in [
        ("${A:-d}", Ok("a")),
        ("${EMPTY:-d}", Ok("d")),
        ("${UNSET:-d}", Ok("d")),
        ("${EMPTY-d}", Ok("")),
        ("${UNSET-d}", Ok("d")),
        ("${UNSET:-$A-\"q q\"}", Ok("a-q q")),
        ("${UNSET:-${A:+nested}}", Ok("nested")),
        ("${A:+set}", Ok("set")),
        ("${EMPTY:+set}", Ok("")),
        ("${EMPTY+set}", Ok("set")),
        ("${UNSET+set}", Ok("")),
        ("${A:?}", Ok("a")),
        ("${EMPTY?}", Ok("")),
        ("${UNSET?}", Err("UNSET: is not allowed to be unset")),
        ("${EMPTY:?}", Err("EMPTY: is not allowed to be empty")),
        ("${UNSET:?give it}", Err("UNSET: give it")),
        ("${A:-x", Err("syntax error: missing '}'")),
    ] {
        check(word, want);
    }
}

#[test]
fn patterns() {
    for (word, want) in [
        ("${FILE#*.}", Ok("tar.gz")),
        ("${FILE##*.}", Ok("gz")),
        ("${FILE%.*}", Ok("archive.tar")),
        ("${FILE%%.*}", Ok("archive")),
        ("${FILE#nomatch}", Ok("archive.tar.gz")),
        ("${FILE#\\*}", Ok("archive.tar.gz")),
        ("${FILE%.[a-z]z}", Ok("archive.tar")),
        ("${FILE#[!a]}", Ok("archive.tar.gz")),
        ("${FILE#?}", Ok("rchive.tar.gz")),
        ("${UNSET#x}", Ok("")),
        (
            "${FILE:#x}",
            Err("unsupported modifier (:#) in substitution"),
        ),
        ("${PATH/:/;}", Ok("/usr/local/bin;/usr/bin")),
        ("${PATH//\\//|}", Ok("|usr|local|bin:|usr|bin")),
        ("${PATH/usr*/X}", Ok("/X")),
        ("${FILE/a/}", Ok("rchive.tar.gz")),
        ("${FILE//a/A}", Ok("Archive.tAr.gz")),
        ("${FILE/x}", Err("syntax error: missing '/' in ${}")),
    ] {
        check(word, want);
    }
}

#[test]
fn word_splitting() {
    for (word, want) in [
        ("80 443/udp", vec!["80", "443/udp"]),
        ("$SP", vec!["x", "y"]),
        ("\"$SP\"", vec!["x  y"]),
        ("a\\ b c", vec!["a b", "c"]),
        ("'' $EMPTY", vec![]),
    ] {
        let got = expand_words(word, '\\', &env(VARS)).expect("expands");
        assert_eq!(got, want, "word {word:?}");
    }
}

#[test]
fn backtick_escape() {
    for (word, want) in [
        ("c:\\dir\\$A", "c:\\dir\\a"),
        ("`$A", "$A"),
        ("\"`\"`$A\"", "\"$A"),
    ] {
        let got = expand_word(word, '`', &env(VARS)).expect("expands");
        assert_eq!(got, want, "word {word:?}");
    }
}
