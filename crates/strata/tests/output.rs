//! What the commands print, as snapshots (`cargo insta review` to update).
//! Images are built with fixed dates; relative times are filtered.

mod common;

use common::Strata;
use common::archive::{Image, Tar};

fn settled(s: &Strata) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"(About an? \w+|\d+ \w+|Less than a second) ago", "[ago]");
    settings.add_filter(&regex_escape(&s.root.to_string_lossy()), "[root]");
    settings.add_filter(r#""LastTagTime": "[^"]+""#, r#""LastTagTime": "[time]""#);
    settings
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '/' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn two_images(s: &Strata) {
    let base = Tar::new()
        .dir("etc", 0o755)
        .file("etc/os-release", &[b'x'; 4096])
        .build();
    let app = Tar::new()
        .dir("app", 0o755)
        .file("app/run", &[b'y'; 1500])
        .build();
    for image in [
        Image::new("example.com/base:1.0", vec![base.clone()]),
        Image::new("app", vec![base, app]),
    ] {
        let file = s.path("image.tar");
        image.write_oci(&file);
        s.ok(&["load", "-i", file.to_str().unwrap()]);
    }
}

#[test]
fn listing_commands() {
    let s = Strata::with_driver(Some("overlay"));
    two_images(&s);
    settled(&s).bind(|| {
        insta::assert_snapshot!("images", s.ok(&["images"]));
        insta::assert_snapshot!("images_digests", s.ok(&["images", "--digests"]));
        insta::assert_snapshot!("images_json", s.ok(&["images", "--format", "json"]));
        insta::assert_snapshot!("history", s.ok(&["history", "app"]));
        insta::assert_snapshot!("df", s.ok(&["system", "df"]));
        insta::assert_snapshot!("df_verbose", s.ok(&["system", "df", "-v"]));
        insta::assert_snapshot!("inspect", s.ok(&["image", "inspect", "app"]));
        insta::assert_snapshot!(
            "inspect_format",
            s.ok(&["inspect", "-f", "{{.Id}} {{.Os}}", "app"])
        );
    });
}

/// `--format` as Docker takes it: its own table, a template per row, or a
/// template lined up under headers (`table ...`, with `\t` between).
#[test]
fn list_formats() {
    let s = Strata::with_driver(Some("overlay"));
    two_images(&s);
    s.ok(&["volume", "create", "--label", "tier=db", "data"]);
    s.ok(&[
        "create",
        "--name",
        "web",
        "-v",
        "data:/data",
        "--label",
        "app=web",
        "app",
        "/app/run",
    ]);
    let mut settings = settled(&s);
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[id]");
    // The container is seconds old: "Less than a second ago" or "1 second
    // ago" sets the CREATED column's width.
    settings.add_filter(r"CREATED +STATUS", "CREATED   STATUS");
    settings.add_filter(r"\[ago\] +", "[ago]   ");
    settings.bind(|| {
        insta::assert_snapshot!("ps", s.ok(&["ps", "-a"]));
        insta::assert_snapshot!(
            "ps_table_template",
            s.ok(&[
                "ps",
                "-a",
                "--format",
                "table {{.Names}}\\t{{.State}}\\t{{.Mounts}}\\t{{.Labels}}\\t{{.Networks}}",
            ])
        );
        insta::assert_snapshot!(
            "images_template",
            s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}\\t{{.Size}}"])
        );
        insta::assert_snapshot!("volume_ls", s.ok(&["volume", "ls"]));
        insta::assert_snapshot!(
            "volume_ls_table_template",
            s.ok(&[
                "volume",
                "ls",
                "--format",
                "table {{.Name}}\\t{{.Driver}}\\t{{.Labels}}",
            ])
        );
        insta::assert_snapshot!(
            "ps_bad_template",
            s.fails(&["ps", "-a", "--format", "{{.Nope}}"])
        );
    });
}

#[test]
fn error_messages() {
    let s = Strata::new();
    two_images(&s);
    let missing = s.path("missing.tar");
    settled(&s).bind(|| {
        insta::assert_snapshot!("rmi_missing", s.fails(&["rmi", "nope"]));
        insta::assert_snapshot!("history_missing", s.fails(&["history", "nope:2"]));
        insta::assert_snapshot!("bad_tag", s.fails(&["tag", "app", "Bad:Name"]));
        let load = s.fails(&["load", "-i", missing.to_str().unwrap()]);
        insta::assert_snapshot!(
            "load_missing",
            load.replace(&*s.work.to_string_lossy(), "[work]")
        );
    });
}

/// The command lists are what a user reads first: every command has a
/// one-line summary, beside its own name.
#[test]
fn top_level_help() {
    let s = Strata::new();
    let mut settings = insta::Settings::clone_current();
    // An `[env: NAME=value]` shows the caller's environment.
    settings.add_filter(r"\[env: (\w+)=[^\]]*\]", "[env: $1=]");
    let help = |args: &[&str]| {
        let text = s.ok(args);
        let commands = text.lines().skip_while(|l| *l != "Commands:").skip(1);
        for line in commands.take_while(|l| !l.is_empty()) {
            assert!(
                line.split_whitespace().count() > 1,
                "{args:?}: no summary: {line}"
            );
        }
        text
    };
    settings.bind(|| {
        insta::assert_snapshot!("help", help(&["--help"]));
        insta::assert_snapshot!("help_image", help(&["image", "--help"]));
        insta::assert_snapshot!("help_container", help(&["container", "--help"]));
        insta::assert_snapshot!("help_volume", help(&["volume", "--help"]));
    });
}
