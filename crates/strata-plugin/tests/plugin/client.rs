use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_plugin::protocol::{CREATE, MEDIA_TYPE};
use strata_plugin::{PluginDirs, Registry, Timeouts};
use strata_volume::driver::{Scope, VolumeDriver};
use tempfile::TempDir;

use crate::fake::{FakePlugin, Knob, Seen};

const SHORT: Duration = Duration::from_millis(500);

fn timeouts(call: Duration, retry_budget: Duration) -> Timeouts {
    Timeouts {
        create_mount: call,
        other: call,
        retry_budget,
    }
}

/// A plugin folder of its own, and a registry that looks only there.
fn setup(timeouts: Timeouts) -> (TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let dirs = PluginDirs {
        sockets: dir.path().join("run"),
        specs: vec![dir.path().join("etc")],
    };
    (dir, Registry::new(dirs, timeouts))
}

fn socket(dir: &Path) -> PathBuf {
    dir.join("run/p.sock")
}

/// Creates a volume on a plugin set to `knob`, which must fail with a
/// message that names the plugin and the call and has `expected` in it.
fn check_failure(knob: Knob, expected: &str) {
    let (dir, registry) = setup(timeouts(SHORT, SHORT));
    let _plugin = FakePlugin::unix(&socket(dir.path()), knob);
    let driver = registry.find("p").unwrap().unwrap();
    let err = driver.create("v", &BTreeMap::new()).unwrap_err();
    assert_eq!(
        (err.driver.as_str(), err.call),
        ("p", CREATE),
        "{knob:?}: {err}"
    );
    let expected = expected.replace("{dir}", &dir.path().display().to_string());
    assert!(err.to_string().contains(&expected), "{knob:?}: {err}");
}

#[test]
fn misbehaving_plugins_fail_with_clear_messages() {
    let cases = [
        (Knob::Garbage, "the plugin answered with invalid JSON"),
        (
            Knob::RawError,
            "the plugin answered 500 Internal Server Error: disk on fire",
        ),
        (Knob::ErrOn200, "VolumeDriver.Create: quota exceeded"),
        (
            Knob::NotVolume,
            r#"Plugin.Activate says the plugin implements ["NetworkDriver"], not VolumeDriver; is p the right plugin?"#,
        ),
        (Knob::Slow(Duration::from_secs(5)), "no answer within 0.5s"),
        (
            Knob::Down,
            "cannot reach the plugin at unix://{dir}/run/p.sock after 0.5s: connection refused; \
             is the plugin running?",
        ),
    ];
    for (knob, expected) in cases {
        check_failure(knob, expected);
    }
}

#[test]
fn get_and_capabilities_forgive_what_docker_forgives() {
    // (knob, whether Get fails): only an unreachable plugin makes Get fail.
    let cases = [
        (Knob::Garbage, false),
        (Knob::RawError, false),
        (Knob::ErrOn200, false),
        (Knob::Down, true),
    ];
    for (knob, get_fails) in cases {
        let (dir, registry) = setup(timeouts(SHORT, Duration::ZERO));
        let _plugin = FakePlugin::unix(&socket(dir.path()), knob);
        let driver = registry.find("p").unwrap().unwrap();
        match driver.get("v") {
            Ok(volume) => assert!(!get_fails && volume.is_none(), "{knob:?}: {volume:?}"),
            Err(err) => assert!(get_fails, "{knob:?}: {err}"),
        }
        assert_eq!(driver.capabilities().unwrap(), Scope::Local, "{knob:?}");
    }
}

#[test]
fn speaks_dockers_wire_format() {
    let (dir, registry) = setup(timeouts(SHORT, SHORT));
    let plugin = FakePlugin::unix(&socket(dir.path()), Knob::Healthy);
    let driver = registry.find("p").unwrap().unwrap();
    assert_eq!(driver.name(), "p");

    let opts = BTreeMap::from([("size".to_string(), "5".to_string())]);
    driver.create("v", &BTreeMap::new()).unwrap();
    driver.create("v", &opts).unwrap();
    assert_eq!(driver.mount("v", "c1").unwrap(), Path::new("/mnt/v"));
    driver.unmount("v", "c1").unwrap();
    assert_eq!(
        driver.path("v").unwrap(),
        None,
        "an empty Mountpoint is unknown"
    );
    let volume = driver.get("v").unwrap().unwrap();
    assert_eq!(volume.mountpoint.as_deref(), Some(Path::new("/mnt/v")));
    assert_eq!(volume.created_at.as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(volume.status["size"], "5G");
    let listed = driver.list().unwrap();
    let names: Vec<_> = listed
        .iter()
        .map(|v| (v.name.as_str(), v.mountpoint.clone()))
        .collect();
    assert_eq!(names, [("v", None), ("w", None)]);
    assert_eq!(driver.capabilities().unwrap(), Scope::Global);
    driver.remove("v").unwrap();

    let seen = |path: &str, body: &str| Seen {
        path: path.into(),
        host: "plugin.moby.localhost".into(),
        accept: MEDIA_TYPE.into(),
        body: body.into(),
    };
    let expected = [
        seen("/Plugin.Activate", ""),
        seen("/VolumeDriver.Create", "{\"Name\":\"v\",\"Opts\":null}\n"),
        seen(
            "/VolumeDriver.Create",
            "{\"Name\":\"v\",\"Opts\":{\"size\":\"5\"}}\n",
        ),
        seen("/VolumeDriver.Mount", "{\"Name\":\"v\",\"ID\":\"c1\"}\n"),
        seen("/VolumeDriver.Unmount", "{\"Name\":\"v\",\"ID\":\"c1\"}\n"),
        seen("/VolumeDriver.Path", "{\"Name\":\"v\"}\n"),
        seen("/VolumeDriver.Get", "{\"Name\":\"v\"}\n"),
        seen("/VolumeDriver.List", "{}\n"),
        seen("/VolumeDriver.Capabilities", "{}\n"),
        seen("/VolumeDriver.Remove", "{\"Name\":\"v\"}\n"),
    ];
    assert_eq!(plugin.requests(), expected);
}

#[test]
fn activates_once_per_driver() {
    let (dir, registry) = setup(timeouts(SHORT, SHORT));
    let plugin = FakePlugin::unix(&socket(dir.path()), Knob::Healthy);
    let first = registry.find("p").unwrap().unwrap();
    assert_eq!(plugin.activations(), 0, "finding a plugin sends nothing");
    first.list().unwrap();
    first.get("v").unwrap();
    first.path("v").unwrap();
    assert_eq!(plugin.activations(), 1);
    let second = registry.find("p").unwrap().unwrap();
    second.list().unwrap();
    first.list().unwrap();
    assert_eq!(plugin.activations(), 2);
}

#[test]
fn failed_activation_is_tried_again() {
    let (dir, registry) = setup(timeouts(SHORT, SHORT));
    let plugin = FakePlugin::unix(&socket(dir.path()), Knob::NotVolume);
    let driver = registry.find("p").unwrap().unwrap();
    driver.list().unwrap_err();
    driver.list().unwrap_err();
    assert_eq!(plugin.activations(), 2);
}

#[test]
fn waits_for_a_plugin_that_is_starting() {
    let (dir, registry) = setup(timeouts(SHORT, Duration::from_secs(5)));
    let delay = Duration::from_millis(300);
    let plugin = FakePlugin::unix_after(&socket(dir.path()), Knob::Healthy, delay);
    let driver = registry.find("p").unwrap().unwrap();
    let start = Instant::now();
    driver.list().unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= delay && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(plugin.activations(), 1);
}

#[test]
fn gives_up_when_the_retry_budget_is_spent() {
    let (dir, registry) = setup(timeouts(SHORT, Duration::from_secs(2)));
    let _plugin = FakePlugin::unix(&socket(dir.path()), Knob::Down);
    let driver = registry.find("p").unwrap().unwrap();
    let start = Instant::now();
    let err = driver.list().unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        err.message.contains("after 2s: connection refused"),
        "{err}"
    );
    let expected = Duration::from_secs(2)..Duration::from_millis(3500);
    assert!(expected.contains(&elapsed), "{elapsed:?}");
}

#[test]
fn a_spec_may_name_a_socket_that_is_not_there() {
    let (dir, registry) = setup(timeouts(SHORT, Duration::ZERO));
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let spec = format!("unix://{}/gone.sock\n", dir.path().display());
    std::fs::write(dir.path().join("etc/p.spec"), spec).unwrap();
    let err = registry.find("p").unwrap().unwrap().list().unwrap_err();
    assert!(err.message.contains("the socket does not exist"), "{err}");
}

#[test]
fn unknown_plugins_are_none() {
    let (_dir, registry) = setup(timeouts(SHORT, SHORT));
    assert!(registry.find("nope").unwrap().is_none());
    assert!(registry.find("../etc/p").unwrap().is_none());
}
