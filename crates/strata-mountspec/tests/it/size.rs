//! `parse_size`: go-units' `RAMInBytes`, with its test table and more.

use strata_mountspec::parse_size;

use crate::support::{GIB, KIB, MIB};

fn check(input: &str, want: Result<u64, String>) {
    let got = parse_size(input).map_err(|e| e.to_string());
    assert_eq!(got, want, "input {input:?}");
}

#[test]
fn sizes() {
    const TIB: u64 = 1 << 40;
    const PIB: u64 = 1 << 50;
    for (input, bytes) in [
        ("0", 0),
        ("32", 32),
        ("32b", 32),
        ("32B", 32),
        ("32k", 32 * KIB),
        ("32K", 32 * KIB),
        ("32kb", 32 * KIB),
        ("32Kb", 32 * KIB),
        ("32Kib", 32 * KIB),
        ("32KIB", 32 * KIB),
        ("32m", 32 * MIB),
        ("32Mb", 32 * MIB),
        ("32MiB", 32 * MIB),
        ("32g", 32 * GIB),
        ("32Gb", 32 * GIB),
        ("32t", 32 * TIB),
        ("32Tb", 32 * TIB),
        ("32p", 32 * PIB),
        ("32PB", 32 * PIB),
        ("32.3", 32),
        ("32.3 mb", (32.3 * MIB as f64) as u64),
        ("0.3MB", (0.3 * MIB as f64) as u64),
        ("1.5g", 3 * GIB / 2),
        (".5k", 512),
        ("5.", 5),
        ("5 ", 5),
        ("1e3", 1000),
        ("8e18", 8_000_000_000_000_000_000),
    ] {
        check(input, Ok(bytes));
    }
}

#[test]
fn size_errors() {
    for input in [
        "",
        "hello",
        "-32",
        " 32 ",
        "32m b",
        "32bm",
        "32ki",
        "32kibb",
        "32x",
        "k",
        ".",
        "1.2.3",
        "1e30p",
        "9223372036854775808",
    ] {
        let want = format!(
            "invalid size: '{input}' (expected bytes with an optional k, m, g, t or p suffix, e.g. 64m, 1.5g or 512KiB)"
        );
        check(input, Err(want));
    }
}
