use std::fs;
use std::path::{Path, PathBuf};

use strata_plugin::{Address, PluginDirs, TlsFiles};

/// What to put at a path under the test folder.
enum Entry {
    /// A real socket (nobody needs to listen for discovery).
    Socket,
    /// A regular file with this text.
    File(&'static str),
}

use Entry::{File, Socket};

/// Lays out `entries` under `root` (`run` is the socket folder, `etc` and
/// `lib` the spec folders, in that order).
fn lay_out(root: &Path, entries: &[(&str, Entry)]) -> PluginDirs {
    for (path, entry) in entries {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        match entry {
            Socket => drop(std::os::unix::net::UnixListener::bind(&path).unwrap()),
            File(text) => fs::write(&path, text).unwrap(),
        }
    }
    PluginDirs {
        sockets: root.join("run"),
        specs: vec![root.join("etc"), root.join("lib")],
    }
}

/// Finds plugin `p` among `entries`; expects its URL (`{root}` stands for
/// the test folder) or None.
fn check(entries: &[(&str, Entry)], expected: Option<&str>) {
    let root = tempfile::tempdir().unwrap();
    let dirs = lay_out(root.path(), entries);
    let found = dirs.find("p").unwrap().map(|e| e.url);
    let root = root.path().display().to_string();
    let expected = expected.map(|url| url.replace("{root}", &root));
    let paths: Vec<_> = entries.iter().map(|(path, _)| *path).collect();
    assert_eq!(found, expected, "{paths:?}");
}

#[test]
fn finds_plugins_in_dockers_order() {
    let tcp = "tcp://10.0.0.1:8080";
    check(&[("run/p.sock", Socket)], Some("unix://{root}/run/p.sock"));
    check(
        &[("run/p/p.sock", Socket)],
        Some("unix://{root}/run/p/p.sock"),
    );
    check(
        &[("etc/p.spec", File("  unix:///x.sock \n"))],
        Some("unix:///x.sock"),
    );
    check(&[("etc/p/p.spec", File(tcp))], Some(tcp));
    check(
        &[("lib/p.json", File(r#"{"Addr":"http://h:81"}"#))],
        Some("http://h:81"),
    );
    check(
        &[("lib/p/p.json", File(r#"{"Addr":"tcp://h:1"}"#))],
        Some("tcp://h:1"),
    );
    // Only a real socket counts.
    check(&[("run/p.sock", File(""))], None);
    check(
        &[("run/p.sock", File("")), ("lib/p.spec", File(tcp))],
        Some(tcp),
    );
    // Other names and other extensions are not `p`.
    check(&[("run/q.sock", Socket), ("etc/p.txt", File(tcp))], None);
    // Sockets first, then spec folders in order; in a folder .spec
    // (plain, then in its subfolder) before .json.
    check(
        &[("run/p.sock", Socket), ("etc/p.spec", File(tcp))],
        Some("unix://{root}/run/p.sock"),
    );
    check(
        &[("run/p.sock", Socket), ("run/p/p.sock", Socket)],
        Some("unix://{root}/run/p.sock"),
    );
    check(
        &[
            ("etc/p.spec", File("tcp://etc:1")),
            ("lib/p.spec", File("tcp://lib:1")),
        ],
        Some("tcp://etc:1"),
    );
    check(
        &[
            ("etc/p.json", File(r#"{"Addr":"tcp://etc:1"}"#)),
            ("lib/p.spec", File("tcp://lib:1")),
        ],
        Some("tcp://etc:1"),
    );
    check(
        &[
            ("etc/p/p.spec", File("tcp://spec:1")),
            ("etc/p.json", File(r#"{"Addr":"tcp://json:1"}"#)),
        ],
        Some("tcp://spec:1"),
    );
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let cases = [
        ("p.spec", "/run/p.sock", "has no scheme"),
        ("p.spec", "ftp://h:1", "scheme \"ftp\" is not supported"),
        ("p.json", "{\"Addr\":", "is not valid JSON"),
        ("p.json", r#"{"Addr":"tcp://h"}"#, "needs a port"),
    ];
    for (file, text, expected) in cases {
        let root = tempfile::tempdir().unwrap();
        let dirs = lay_out(root.path(), &[(&format!("etc/{file}"), File(text))]);
        let err = dirs.find("p").unwrap_err().to_string();
        assert!(
            err.contains(expected) && err.contains(file),
            "{text}: {err}"
        );
    }
}

#[test]
fn json_specs_carry_tls_files() {
    let root = tempfile::tempdir().unwrap();
    let spec = r#"{"Name":"ignored","Addr":"https://h:8443",
        "TLSConfig":{"InsecureSkipVerify":true,"CAFile":"/ca.pem","CertFile":"","KeyFile":""}}"#;
    let dirs = lay_out(root.path(), &[("etc/p.json", File(spec))]);
    let endpoint = dirs.find("p").unwrap().unwrap();
    assert_eq!(endpoint.name, "p");
    let tls = TlsFiles {
        ca_file: Some(PathBuf::from("/ca.pem")),
        ..TlsFiles::default()
    };
    let expected = Address::Tcp {
        host: "h".into(),
        port: 8443,
        tls: Some(tls),
    };
    assert_eq!(endpoint.address, expected);
}

#[test]
fn scan_lists_what_find_finds() {
    let root = tempfile::tempdir().unwrap();
    let dirs = lay_out(
        root.path(),
        &[
            ("run/a.sock", Socket),
            ("run/b/b.sock", Socket),
            ("run/stale.sock", File("")),
            ("run/empty/other.sock", Socket),
            ("etc/c.spec", File("tcp://h:1")),
            ("etc/d/d.json", File("{}")),
            ("etc/notes.txt", File("")),
            ("lib/a.spec", File("tcp://h:1")),
            ("lib/e.json", File("{}")),
        ],
    );
    assert_eq!(dirs.scan(), ["a", "b", "c", "d", "e"]);
    let missing = PluginDirs {
        sockets: root.path().join("none"),
        specs: vec![root.path().join("none")],
    };
    assert!(missing.scan().is_empty());
}
