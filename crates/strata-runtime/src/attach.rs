//! Attaching to a running container (`strata attach`): the monitor serves
//! the container's stdio on a unix socket in its bundle (root only), and a
//! client copies it to and from the user's terminal.
//!
//! Both directions carry frames: a kind byte, a big-endian u32 length, the
//! payload. The monitor sends output (`STDOUT`, `STDERR`; a terminal's
//! output is all `STDOUT`) and, when the container ends, `EXIT` with its
//! code. A client sends `STDIN` bytes and `RESIZE` (rows, cols as u16).
//! Output goes to every client attached at the time, as in Docker; nothing
//! earlier is replayed (that is `logs`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::termios::{self, Winsize};

use crate::logs::Stream;

/// The socket's name in the bundle.
pub const SOCKET: &str = "attach.sock";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;
const RESIZE: u8 = 4;

/// A client that cannot take output this long is dropped, so it never
/// holds up the container.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `f` on a short name for `path`, through an open folder: a socket's
/// path must fit in 108 bytes, and a container's bundle is deeper.
fn via_parent<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a socket path needs a name"))?;
    let dir = rustix::fs::open(
        parent,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    f(&Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name))
}

fn write_frame(to: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    to.write_all(&frame)
}

/// The next frame; None at a clean end of the stream.
fn read_frame(from: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match from.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 1 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame over 1 MiB",
        ));
    }
    let mut payload = vec![0u8; len];
    from.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// The monitor's side: who is attached, and where their input goes.
pub struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    /// The container's stdin (a pipe, or the terminal's master side);
    /// None when it takes no input.
    input: Mutex<Option<File>>,
    /// The container's terminal, for resizing.
    pty: Option<Pty>,
}

/// The master side of the terminal the runtime was given, and the
/// runtime, which keeps the container's own terminal the same size.
pub struct Pty {
    pub master: File,
    pub runtime_pid: u32,
}

impl Hub {
    pub fn new(input: Option<File>, pty: Option<Pty>) -> Arc<Hub> {
        Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            input: Mutex::new(input),
            pty,
        })
    }

    /// Sends container output to every client, dropping those that fail.
    pub fn output(&self, stream: Stream, bytes: &[u8]) {
        let kind = match stream {
            Stream::Stdout => STDOUT,
            Stream::Stderr => STDERR,
        };
        self.broadcast(kind, bytes);
    }

    fn broadcast(&self, kind: u8, payload: &[u8]) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.retain_mut(|c| write_frame(c, kind, payload).is_ok());
        }
    }

    /// Passes input to the container.
    pub fn input(&self, bytes: &[u8]) {
        if let Ok(mut input) = self.input.lock()
            && let Some(to) = input.as_mut()
            && to.write_all(bytes).is_err()
        {
            *input = None;
        }
    }

    /// Closes the container's stdin: it reads end of file.
    pub fn close_input(&self) {
        if let Ok(mut input) = self.input.lock() {
            *input = None;
        }
    }

    /// Sets the container's terminal size.
    pub fn resize(&self, size: Winsize) {
        let Some(pty) = &self.pty else {
            return;
        };
        if termios::tcsetwinsize(&pty.master, size).is_err() {
            return;
        }
        // The runtime copies its terminal's size to the container's when
        // told by SIGWINCH, which the kernel sends only to a terminal's
        // session, and the runtime has none.
        if let Some(pid) = rustix::process::Pid::from_raw(pty.runtime_pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
        }
    }

    /// Listens at `path` (root only) for clients, on a thread of its own.
    pub fn serve(self: &Arc<Self>, path: &Path) -> io::Result<()> {
        let listener = via_parent(path, |short| {
            let _ = std::fs::remove_file(short);
            let listener = UnixListener::bind(short)?;
            std::fs::set_permissions(short, std::fs::Permissions::from_mode(0o600))?;
            Ok(listener)
        })?;
        let hub = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                hub.add(stream);
            }
        });
        Ok(())
    }

    fn add(self: &Arc<Self>, stream: UnixStream) {
        let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
        let Ok(mut reader) = stream.try_clone() else {
            return;
        };
        if let Ok(mut clients) = self.clients.lock() {
            clients.push(stream);
        }
        let hub = self.clone();
        std::thread::spawn(move || {
            while let Ok(Some((kind, payload))) = read_frame(&mut reader) {
                match (kind, payload.as_slice()) {
                    (STDIN, bytes) => hub.input(bytes),
                    (RESIZE, &[r0, r1, c0, c1]) => hub.resize(Winsize {
                        ws_row: u16::from_be_bytes([r0, r1]),
                        ws_col: u16::from_be_bytes([c0, c1]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    }),
                    _ => break,
                }
            }
        });
    }

    /// Tells every client the container ended with `code`, and lets them go.
    pub fn exit(&self, code: i32) {
        self.broadcast(EXIT, &code.to_be_bytes());
        if let Ok(mut clients) = self.clients.lock() {
            for c in clients.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// How a client attaches.
#[derive(Debug, Clone, Copy)]
pub struct AttachOptions {
    /// Pass our stdin to the container.
    pub stdin: bool,
    /// The container has a terminal: send our size, and watch for the
    /// detach keys (ctrl-p ctrl-q) in our input.
    pub tty: bool,
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
}

/// The client's side: copies our stdio to and from the container attached
/// at `socket` until it exits or the user detaches.
pub fn attach(socket: &Path, opts: AttachOptions) -> io::Result<Ended> {
    let stream = via_parent(socket, |short| UnixStream::connect(short))?;
    let (done_tx, done) = std::sync::mpsc::channel();
    if opts.tty {
        send_size(&stream);
        let resizes = stream.try_clone()?;
        watch_window_size(resizes)?;
    }
    if opts.stdin {
        let to = stream.try_clone()?;
        let detached = done_tx.clone();
        std::thread::spawn(move || {
            if forward_stdin(to, opts.tty) {
                let _ = detached.send(Ok(Ended::Detached));
            }
        });
    }
    let mut from = stream;
    std::thread::spawn(move || {
        let _ = done_tx.send(copy_output(&mut from));
    });
    done.recv()
        .unwrap_or_else(|_| Err(io::Error::other("attach ended without word")))
}

/// Copies output frames to our stdout and stderr until the exit frame.
fn copy_output(from: &mut UnixStream) -> io::Result<Ended> {
    let (mut out, mut err) = (dup_stdio(1)?, dup_stdio(2)?);
    while let Some((kind, payload)) = read_frame(from)? {
        match (kind, payload.as_slice()) {
            (STDOUT, bytes) => out.write_all(bytes)?,
            (STDERR, bytes) => err.write_all(bytes)?,
            (EXIT, &[a, b, c, d]) => return Ok(Ended::Exited(i32::from_be_bytes([a, b, c, d]))),
            _ => break,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the container's monitor went away without its exit code",
    ))
}

/// Our own copy of fd 1 or 2: std's handles may be locked by whoever
/// prints in this process, the raw descriptors never are. Close-on-exec,
/// so the runtime and the container never inherit it.
pub(crate) fn dup_stdio(fd: i32) -> io::Result<File> {
    // SAFETY: fds 1 and 2 are open for the life of the process.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    Ok(File::from(rustix::io::fcntl_dupfd_cloexec(borrowed, 3)?))
}

/// Sends our stdin as input frames; true if the user typed the detach keys
/// (only looked for on a terminal, as Docker does).
fn forward_stdin(mut to: UnixStream, tty: bool) -> bool {
    const CTRL_P: u8 = 0x10;
    const CTRL_Q: u8 = 0x11;
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut held_ctrl_p = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let mut chunk = Vec::with_capacity(n + 1);
        for &b in &buf[..n] {
            if tty && held_ctrl_p && b == CTRL_Q {
                return true;
            }
            if std::mem::take(&mut held_ctrl_p) {
                chunk.push(CTRL_P);
            }
            if tty && b == CTRL_P {
                held_ctrl_p = true;
            } else {
                chunk.push(b);
            }
        }
        if !chunk.is_empty() && write_frame(&mut to, STDIN, &chunk).is_err() {
            return false;
        }
    }
}

/// Our terminal's size as a resize frame.
fn send_size(mut to: &UnixStream) {
    if let Ok(size) = termios::tcgetwinsize(io::stdin()) {
        let mut payload = size.ws_row.to_be_bytes().to_vec();
        payload.extend_from_slice(&size.ws_col.to_be_bytes());
        let _ = write_frame(&mut to, RESIZE, &payload);
    }
}

/// Calls `on_resize` on a thread each time our terminal changes size
/// (SIGWINCH).
pub fn on_window_change(on_resize: impl Fn() + Send + 'static) -> io::Result<()> {
    let (mut woken, waker) = UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGWINCH, waker)?;
    std::thread::spawn(move || {
        let mut byte = [0u8];
        while woken.read(&mut byte).is_ok_and(|n| n > 0) {
            on_resize();
        }
    });
    Ok(())
}

fn watch_window_size(to: UnixStream) -> io::Result<()> {
    on_window_change(move || send_size(&to))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_frames_read_back(frames in proptest::collection::vec(
            (0u8..8, proptest::collection::vec(proptest::num::u8::ANY, 0..4096)), 0..8)) {
            let mut buf = Vec::new();
            for (kind, payload) in &frames {
                write_frame(&mut buf, *kind, payload).unwrap();
            }
            let mut r = buf.as_slice();
            for frame in &frames {
                proptest::prop_assert_eq!(read_frame(&mut r).unwrap(), Some(frame.clone()));
            }
            proptest::prop_assert_eq!(read_frame(&mut r).unwrap(), None);
        }

        #[test]
        fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut r = bytes.as_slice();
            while let Ok(Some(_)) = read_frame(&mut r) {}
        }
    }

    #[test]
    fn a_huge_or_cut_frame_is_an_error() {
        let mut r: &[u8] = &[STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut r).is_err());
        let mut r: &[u8] = &[STDIN, 0, 0, 0, 9, b'x'];
        assert!(read_frame(&mut r).is_err());
    }

    #[test]
    fn clients_get_output_and_the_exit_code() {
        let t = tempfile::tempdir().unwrap();
        let socket = t.path().join(SOCKET);
        let (input_r, input_w) = std::io::pipe().unwrap();
        let hub = Hub::new(Some(File::from(std::os::fd::OwnedFd::from(input_w))), None);
        hub.serve(&socket).unwrap();
        let mut client = UnixStream::connect(&socket).unwrap();
        write_frame(&mut client, STDIN, b"typed").unwrap();
        let mut got = [0u8; 5];
        let mut input_r = input_r;
        input_r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"typed");
        // Its input came through: the hub has the client.
        hub.output(Stream::Stderr, b"oops");
        hub.exit(3);
        assert_eq!(
            read_frame(&mut client).unwrap(),
            Some((STDERR, b"oops".to_vec()))
        );
        assert_eq!(
            read_frame(&mut client).unwrap(),
            Some((EXIT, 3i32.to_be_bytes().to_vec()))
        );
        assert_eq!(read_frame(&mut client).unwrap(), None);
    }
}
