//! Volume plugins for the tests: `strata plugin serve` itself, for one
//! that behaves, and one that misbehaves on purpose, for the client's
//! failure paths: a real unix socket and real HTTP, with canned answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `strata plugin serve --name NAME` over `store`'s volumes, on `socket`
/// (None: the default, `/run/docker/plugins/NAME.sock`); stopped, and its
/// socket removed, when dropped.
pub struct Serving {
    child: Child,
    socket: PathBuf,
}

impl Serving {
    pub fn start(store: &super::Strata, name: &str, socket: Option<&Path>) -> Serving {
        let mut cmd = store.command(&["plugin", "serve", "--name", name]);
        if let Some(path) = socket {
            cmd.arg("--socket").arg(path);
        }
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("start strata plugin serve");
        let socket = socket.map_or_else(
            || PathBuf::from(format!("/run/docker/plugins/{name}.sock")),
            Path::to_owned,
        );
        super::wait_for_socket(&socket);
        Serving { child, socket }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// How the plugin answers every VolumeDriver call (Activate always works).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    /// Sleeps this long before answering.
    Slow(Duration),
    /// Answers 200 with a body that is not JSON.
    Garbage,
    /// Answers 500 with `{"Err": "..."}`.
    Refuses,
    /// Answers 200 with `{"Err": "..."}`.
    ErrOn200,
}

pub struct BadPlugin {
    pub socket: PathBuf,
    /// `VolumeDriver.Create` calls seen.
    pub creates: Arc<AtomicUsize>,
}

/// What [`Knob::Refuses`] and [`Knob::ErrOn200`] say.
pub const REFUSAL: &str = "the backend is out of capacity";

impl BadPlugin {
    /// Listens on `<dir>/<name>.sock` until the test process ends.
    pub fn start(dir: &Path, name: &str, knob: Knob) -> BadPlugin {
        let socket = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).expect("bind the test plugin");
        let creates = Arc::new(AtomicUsize::new(0));
        let seen = creates.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve(conn, knob, &seen));
            }
        });
        BadPlugin { socket, creates }
    }

    /// A socket file nobody listens on: connections are refused.
    pub fn down(dir: &Path, name: &str) -> PathBuf {
        let socket = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        drop(UnixListener::bind(&socket).expect("bind"));
        socket
    }
}

fn serve(conn: UnixStream, knob: Knob, seen: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut conn = conn;
    while let Some(path) = read_request(&mut reader) {
        let (status, body) = if path == "/Plugin.Activate" {
            (200, r#"{"Implements":["VolumeDriver"]}"#.to_owned())
        } else {
            if path == "/VolumeDriver.Create" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            answer(knob)
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(knob: Knob) -> (u16, String) {
    match knob {
        Knob::Slow(d) => {
            std::thread::sleep(d);
            (200, r#"{"Err":""}"#.into())
        }
        Knob::Garbage => (200, "<html>not a plugin</html>".into()),
        Knob::Refuses => (500, format!(r#"{{"Err":"{REFUSAL}"}}"#)),
        Knob::ErrOn200 => (200, format!(r#"{{"Err":"{REFUSAL}"}}"#)),
    }
}

/// Reads one request; its path (None at the end of the connection).
fn read_request(r: &mut BufReader<UnixStream>) -> Option<String> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        r.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(path)
}
