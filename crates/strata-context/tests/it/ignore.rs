use strata_context::{Ignore, IgnoreError};

/// Whether `path` is excluded by the `.dockerignore` `patterns`.
fn check(patterns: &str, path: &str, excluded: bool) {
    let ignore = Ignore::parse(patterns).unwrap();
    assert_eq!(
        ignore.is_excluded(path),
        excluded,
        "patterns {patterns:?}, path {path:?}"
    );
}

#[test]
fn docker_documented_examples() {
    let table: &[(&str, &str, bool)] = &[
        // The example file from Docker's docs.
        (
            "# comment\n*/temp*\n*/*/temp*\ntemp?",
            "somedir/temporary.txt",
            true,
        ),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "somedir/temp", true),
        (
            "# comment\n*/temp*\n*/*/temp*\ntemp?",
            "somedir/temp/inside",
            true,
        ),
        (
            "# comment\n*/temp*\n*/*/temp*\ntemp?",
            "somedir/subdir/temporary.txt",
            true,
        ),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "tempa", true),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "tempb", true),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "temp", false),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "tempab", false),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "a/b/c/temp", false),
        (
            "# comment\n*/temp*\n*/*/temp*\ntemp?",
            "temporary.txt",
            false,
        ),
        ("# comment\n*/temp*\n*/*/temp*\ntemp?", "# comment", false),
        // `**` matches any number of directories, including none.
        ("**/*.go", "main.go", true),
        ("**/*.go", "cmd/tool/main.go", true),
        ("**/*.go", "main.go.txt", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/x/y/c", false),
        ("a/**", "a/x", true),
        ("**", "anything/at/all", true),
        // Exceptions: the last matching line decides.
        ("*.md\n!README.md", "README.md", false),
        ("*.md\n!README.md", "CHANGES.md", true),
        ("*.md\n!README.md", "docs/x.md", false),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
        ),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-public.md",
            false,
        ),
        (
            "*.md\nREADME-secret.md\n!README*.md",
            "README-secret.md",
            false,
        ),
        ("*\n!keep", "keep", false),
        ("*\n!keep", "other", true),
        // Plain names exclude themselves and everything below.
        (".git", ".git", true),
        (".git", ".git/objects/ab/cdef", true),
        (".git", ".gitignore", false),
        (".git", "sub/.git", false),
        ("node_modules", "node_modules/x/y.js", true),
        // Cleaning: `./`, leading and trailing `/`, `..`, whitespace.
        ("./foo", "foo", true),
        ("./foo", "foo/bar", true),
        ("/foo/", "foo", true),
        ("/foo/", "foo/bar", true),
        ("/foo/", "xfoo", false),
        ("foo/../bar", "bar", true),
        ("  spaced  ", "spaced", true),
        ("a//b", "a/b", true),
        // Directory excluded, a child re-included.
        ("dir\n!dir/keep", "dir/keep", false),
        ("dir\n!dir/keep", "dir/keep/inner", false),
        ("dir\n!dir/keep", "dir/other", true),
        ("dir\n!dir/keep", "dir", true),
        ("dir\n!dir/keep\ndir/keep/secret", "dir/keep/secret", true),
        // Escapes and classes.
        ("\\*star", "*star", true),
        ("\\*star", "xstar", false),
        ("file\\?", "file?", true),
        ("file\\?", "filex", false),
        ("[abc].txt", "b.txt", true),
        ("[abc].txt", "d.txt", false),
        ("[^abc].txt", "d.txt", true),
        ("[a-c]*", "cat", true),
        ("\\#notcomment", "#notcomment", true),
        ("#comment", "#comment", false),
        // `?` and `*` do not cross `/`.
        ("a?b", "a/b", false),
        ("a*b", "a/b", false),
        // Exceptions alone include everything.
        ("!foo", "foo", false),
        ("!foo", "bar", false),
        // Windows line endings and a BOM.
        ("\u{feff}one\r\ntwo\r\n", "one", true),
        ("\u{feff}one\r\ntwo\r\n", "two", true),
    ];
    for &(patterns, path, excluded) in table {
        check(patterns, path, excluded);
    }
}

#[test]
fn callers_paths_are_normalised() {
    check("foo", "./foo", true);
    check("foo", "foo/", true);
    check("foo", "/foo/bar", true);
}

#[test]
fn bad_patterns_are_errors_naming_them() {
    let err = Ignore::parse("ok\n[abc\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 2") && msg.contains("'[abc'"), "{msg}");
    assert!(matches!(
        Ignore::parse("!").unwrap_err(),
        IgnoreError::BareExclamation { line: 1 }
    ));
    assert!(Ignore::parse("  !  ").is_err());
    assert!(Ignore::parse("x\\").is_err());
    assert!(Ignore::parse("[z-a]").is_err());
}

#[test]
fn may_include_under_lets_walks_skip() {
    let ignore = Ignore::parse("dir\n!dir/keep\nbuild\n!**/*.keep\nlate\n!late/x\nlate").unwrap();
    assert!(ignore.may_include_under("dir"));
    assert!(ignore.may_include_under("src"));
    assert!(ignore.may_include_under("build"));
    // `late` is excluded again after its exception: nothing below survives.
    assert!(!ignore.may_include_under("late"));
    let ignore = Ignore::parse("node_modules\n!keep").unwrap();
    assert!(!ignore.may_include_under("node_modules"));
    assert!(!ignore.may_include_under("node_modules/sub"));
    let ignore = Ignore::parse("a\n!a/b/c").unwrap();
    assert!(ignore.may_include_under("a"));
    assert!(ignore.may_include_under("a/b"));
    assert!(!ignore.may_include_under("a/x"));
}
