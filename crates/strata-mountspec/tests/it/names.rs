//! The `local` driver's volume name rule, `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`.

use strata_mountspec::validate_volume_name;

fn check(name: &str, want: Result<(), String>) {
    let got = validate_volume_name(name).map_err(|e| e.to_string());
    assert_eq!(got, want, "name {name:?}");
}

const RULE: &str = "includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path";
const SHORT: &str =
    "volume name is too short, names should be at least two alphanumeric characters";

#[test]
fn volume_names() {
    let hex = "0123456789abcdef".repeat(4);
    for name in [
        "ab", "a1", "1a", "A-Z", "my_vol", "my.vol", "my-vol", "a..", "a-", &hex,
    ] {
        check(name, Ok(()));
    }
    for (name, want) in [
        ("", format!("\"\" {RULE}")),
        ("a", SHORT.to_owned()),
        ("-", SHORT.to_owned()),
        ("-a", format!("\"-a\" {RULE}")),
        ("_a", format!("\"_a\" {RULE}")),
        (".a", format!("\".a\" {RULE}")),
        ("..", format!("\"..\" {RULE}")),
        ("../x", format!("\"../x\" {RULE}")),
        ("a/b", format!("\"a/b\" {RULE}")),
        ("/ab", format!("\"/ab\" {RULE}")),
        ("a b", format!("\"a b\" {RULE}")),
        ("ab$", format!("\"ab$\" {RULE}")),
        ("ab\n", format!("\"ab\\n\" {RULE}")),
        // One character of two bytes is not "too short": it fails the pattern.
        ("é", format!("\"é\" {RULE}")),
        ("aé", format!("\"aé\" {RULE}")),
    ] {
        check(name, Err(want));
    }
}
