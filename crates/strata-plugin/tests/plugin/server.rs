use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use strata_plugin::protocol::{MOUNT, REMOVE};
use strata_plugin::{PluginDirs, Registry, ServeError, Server, Timeouts, serve_blocking};
use strata_volume::driver::{DriverError, DriverResult, DriverVolume, Scope, VolumeDriver};

/// Volumes in memory: each holds the IDs of the callers that mounted it.
/// The `Rc` makes it `!Send`, as Strata's real driver is.
#[derive(Default)]
struct Memory {
    volumes: Rc<RefCell<BTreeMap<String, BTreeSet<String>>>>,
}

fn memory() -> Result<Box<dyn VolumeDriver>, DriverError> {
    Ok(Box::new(Memory::default()))
}

impl Memory {
    fn fail(&self, call: &'static str, message: String) -> DriverError {
        DriverError {
            driver: "mem".into(),
            call,
            message,
        }
    }

    fn mountpoint(name: &str) -> PathBuf {
        PathBuf::from("/mnt/mem").join(name)
    }

    fn volume(&self, name: &str, ids: &BTreeSet<String>) -> DriverVolume {
        // Not RFC 3339, so the server must leave it out.
        let created = if name == "badtime" {
            "yesterday"
        } else {
            "2024-05-01T10:00:00Z"
        };
        DriverVolume {
            name: name.into(),
            mountpoint: (!ids.is_empty()).then(|| Memory::mountpoint(name)),
            created_at: Some(created.into()),
            status: BTreeMap::from([("mounts".into(), ids.len().into())]),
        }
    }
}

impl VolumeDriver for Memory {
    fn name(&self) -> &str {
        "mem"
    }

    fn create(&self, name: &str, opts: &BTreeMap<String, String>) -> DriverResult<()> {
        if opts.contains_key("fail") {
            return Err(self.fail("VolumeDriver.Create", "size is required".into()));
        }
        self.volumes.borrow_mut().entry(name.into()).or_default();
        Ok(())
    }

    fn remove(&self, name: &str) -> DriverResult<()> {
        let mut volumes = self.volumes.borrow_mut();
        match volumes.get(name) {
            Some(ids) if !ids.is_empty() => {
                Err(self.fail(REMOVE, format!("volume {name} is in use")))
            }
            Some(_) => {
                volumes.remove(name);
                Ok(())
            }
            None => Err(self.fail(REMOVE, format!("no such volume: {name}"))),
        }
    }

    fn mount(&self, name: &str, id: &str) -> DriverResult<PathBuf> {
        let mut volumes = self.volumes.borrow_mut();
        let ids = volumes
            .get_mut(name)
            .ok_or_else(|| self.fail(MOUNT, format!("no such volume: {name}")))?;
        ids.insert(id.into());
        Ok(Memory::mountpoint(name))
    }

    fn unmount(&self, name: &str, id: &str) -> DriverResult<()> {
        if let Some(ids) = self.volumes.borrow_mut().get_mut(name) {
            ids.remove(id);
        }
        Ok(())
    }

    fn path(&self, name: &str) -> DriverResult<Option<PathBuf>> {
        Ok(self.get(name)?.and_then(|v| v.mountpoint))
    }

    fn get(&self, name: &str) -> DriverResult<Option<DriverVolume>> {
        let volumes = self.volumes.borrow();
        Ok(volumes.get(name).map(|ids| self.volume(name, ids)))
    }

    fn list(&self) -> DriverResult<Vec<DriverVolume>> {
        let volumes = self.volumes.borrow();
        Ok(volumes
            .iter()
            .map(|(name, ids)| self.volume(name, ids))
            .collect())
    }

    fn capabilities(&self) -> DriverResult<Scope> {
        Ok(Scope::Local)
    }
}

fn client(socket_dir: &Path) -> Box<dyn VolumeDriver> {
    let dirs = PluginDirs {
        sockets: socket_dir.into(),
        specs: vec![],
    };
    let timeouts = Timeouts {
        create_mount: Duration::from_secs(2),
        other: Duration::from_secs(2),
        retry_budget: Duration::ZERO,
    };
    let driver = Registry::new(dirs, timeouts).find("mem").unwrap();
    Box::new(driver.expect("the server's socket is found"))
}

#[test]
fn round_trips_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/mem.sock");
    let server = Server::bind(&socket, memory).unwrap().spawn();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let driver = client(&dir.path().join("run"));
    let none = BTreeMap::new();

    driver.create("v", &none).unwrap();
    driver.create("v", &none).unwrap();
    assert_eq!(driver.path("v").unwrap(), None);
    assert_eq!(driver.mount("v", "c1").unwrap(), Path::new("/mnt/mem/v"));
    driver.mount("v", "c2").unwrap();
    driver.unmount("v", "c1").unwrap();
    let volume = driver.get("v").unwrap().unwrap();
    assert_eq!(volume.status["mounts"], 1, "c2 still holds it");
    assert_eq!(volume.mountpoint.as_deref(), Some(Path::new("/mnt/mem/v")));
    assert_eq!(volume.created_at.as_deref(), Some("2024-05-01T10:00:00Z"));

    let err = driver.remove("v").unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume driver mem: VolumeDriver.Remove: volume v is in use"
    );
    driver.unmount("v", "c2").unwrap();
    assert_eq!(driver.path("v").unwrap(), None);

    let fail = BTreeMap::from([("fail".to_string(), "1".to_string())]);
    let err = driver.create("w", &fail).unwrap_err();
    assert_eq!(
        (err.call, err.message.as_str()),
        ("VolumeDriver.Create", "size is required")
    );

    driver.create("badtime", &none).unwrap();
    assert_eq!(driver.get("badtime").unwrap().unwrap().created_at, None);
    assert_eq!(driver.get("nope").unwrap(), None);
    let names: Vec<_> = driver.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["badtime", "v"]);
    assert_eq!(driver.capabilities().unwrap(), Scope::Local);
    driver.remove("v").unwrap();
    driver.remove("badtime").unwrap();
    assert!(driver.list().unwrap().is_empty());

    server.stop().unwrap();
    assert!(!socket.exists(), "stopping removes the socket");
}

/// One raw HTTP exchange, with the odd `Host` and `Accept` older Dockers
/// send; returns the status and the body.
fn raw(socket: &Path, method: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)?;
    write!(
        stream,
        "POST /{method} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.plugins.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        socket.display(),
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    Ok((status, body.into()))
}

#[test]
fn conforms_to_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mem.sock");
    let server = Server::bind(&socket, memory).unwrap().spawn();
    let volume_a = r#"{"Volume":{"Name":"a","Mountpoint":"/mnt/mem/a","CreatedAt":"2024-05-01T10:00:00Z","Status":{"mounts":1}}}"#;
    let list = r#"{"Volumes":[{"Name":"a","Mountpoint":"/mnt/mem/a","CreatedAt":"2024-05-01T10:00:00Z","Status":{"mounts":1}},{"Name":"badtime","Status":{"mounts":0}}]}"#;
    // (method, request body, status, what the answer starts with); in order.
    let cases = [
        (
            "Plugin.Activate",
            "",
            200,
            r#"{"Implements":["VolumeDriver"]}"#,
        ),
        (
            "VolumeDriver.Create",
            "{\"Name\":\"a\",\"Opts\":null}\n",
            200,
            "{}\n",
        ),
        ("VolumeDriver.Create", r#"{"Name":"a"}"#, 200, "{}\n"),
        ("VolumeDriver.Path", r#"{"Name":"a"}"#, 200, "{}\n"),
        (
            "VolumeDriver.Mount",
            r#"{"Name":"a","ID":"c"}"#,
            200,
            r#"{"Mountpoint":"/mnt/mem/a"}"#,
        ),
        (
            "VolumeDriver.Path",
            r#"{"Name":"a"}"#,
            200,
            r#"{"Mountpoint":"/mnt/mem/a"}"#,
        ),
        ("VolumeDriver.Get", r#"{"Name":"a"}"#, 200, volume_a),
        ("VolumeDriver.Create", r#"{"Name":"badtime"}"#, 200, "{}\n"),
        ("VolumeDriver.List", "{}\n", 200, list),
        ("VolumeDriver.List", "", 200, list),
        (
            "VolumeDriver.Capabilities",
            "",
            200,
            "{\"Capabilities\":{\"Scope\":\"local\"}}\n",
        ),
        (
            "VolumeDriver.Mount",
            r#"{"Name":"nope","ID":"c"}"#,
            500,
            "{\"Err\":\"no such volume: nope\"}\n",
        ),
        (
            "VolumeDriver.Get",
            r#"{"Name":"nope"}"#,
            500,
            r#"{"Err":"no such volume: nope"}"#,
        ),
        (
            "VolumeDriver.Create",
            r#"{"Name":"#,
            400,
            r#"{"Err":"invalid VolumeDriver.Create request: "#,
        ),
        (
            "VolumeDriver.Unmount",
            r#"{"Name":"a"}"#,
            400,
            r#"{"Err":"invalid VolumeDriver.Unmount request: missing field `ID`"#,
        ),
        (
            "VolumeDriver.Frobnicate",
            "{}",
            404,
            r#"{"Err":"unknown call VolumeDriver.Frobnicate"}"#,
        ),
    ];
    for (method, body, status, expected) in cases {
        let (got_status, got) = raw(&socket, method, body).unwrap();
        assert_eq!(got_status, status, "{method} {body}: {got}");
        assert!(got.starts_with(expected), "{method} {body}: {got}");
    }
    server.stop().unwrap();
}

#[test]
fn binds_only_where_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mem.sock");
    let check = |expected: &str| {
        let err = Server::bind(&socket, memory)
            .err()
            .expect(expected)
            .to_string();
        assert!(err.contains(expected), "{err}");
    };

    std::fs::write(&socket, "").unwrap();
    check("exists and is not a socket");
    std::fs::remove_file(&socket).unwrap();

    let running = Server::bind(&socket, memory).unwrap().spawn();
    check("another server already serves on");
    running.stop().unwrap();

    // A stale socket from a server that died is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    Server::bind(&socket, memory)
        .unwrap()
        .spawn()
        .stop()
        .unwrap();

    let broken = || Err::<Box<dyn VolumeDriver>, _>("the store is locked");
    let err = Server::bind(&socket, broken).err().unwrap();
    assert!(matches!(err, ServeError::Driver(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "cannot start the volume driver: the store is locked"
    );
    assert!(!socket.exists(), "a driver that fails leaves no socket");
}

const CHILD_SOCKET: &str = "STRATA_PLUGIN_TEST_SIGTERM_SOCKET";

#[test]
#[ignore = "the process stops_on_sigterm starts runs it"]
fn serve_until_signalled() {
    let socket = std::env::var_os(CHILD_SOCKET).expect("run by stops_on_sigterm");
    serve_blocking(Path::new(&socket), memory).unwrap();
}

/// Signal handlers are for the whole process, so the server runs in a
/// process of its own: this test binary, running the test above.
#[test]
fn stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mem.sock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["server::serve_until_signalled", "--exact", "--ignored"])
        .env(CHILD_SOCKET, &socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while raw(&socket, "Plugin.Activate", "").is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!socket.exists(), "the server removed its socket");
}
