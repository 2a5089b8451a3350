//! A container seen from outside while it runs and after: `run --rm` leaves
//! nothing once it returns, `attach` passes input, output, exit code and
//! the terminal's size, `cp` reaches into volumes and bind mounts, `-v`
//! takes a `.`-relative host path, and `commit` pauses a running container.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use common::Strata;
use common::archive::Tar;

/// busybox with the applets used here, and `VOLUME /vol`.
fn image(s: &Strata) {
    let busybox = std::fs::read("/bin/busybox").expect("install busybox-static (scripts/setup)");
    let mut t = Tar::new();
    t.dir("bin", 0o755)
        .file_mode("bin/busybox", &busybox, 0o755, 0, 0);
    for applet in ["sh", "cat", "echo", "sleep", "stty", "true", "mkdir"] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.dir("tmp", 0o1777);
    let tar = s.path("bb.tar");
    std::fs::write(&tar, t.build()).unwrap();
    s.ok(&["import", "-c", "VOLUME /vol", tar.to_str().unwrap(), "bb"]);
}

/// Waits until `cond` holds (10 s at most).
fn eventually(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        common::wait_until(Duration::from_secs(10), cond),
        "never: {what}"
    );
}

#[test]
fn run_rm_has_removed_the_container_when_it_returns() {
    let s = Strata::new();
    image(&s);
    let layers = s.state().snapshots;
    // The same name twice in a row: the first is gone, name and all.
    for _ in 0..2 {
        let out = s.ok(&[
            "run",
            "--rm",
            "--name",
            "quick",
            "bb",
            "sh",
            "-c",
            "echo hi > /vol/f; cat /vol/f",
        ]);
        assert_eq!(out, "hi\n");
    }
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    // Its anonymous volume went with it; its root filesystem is unmounted.
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(common::mounts_under(&s.root), Vec::<String>::new());
    let out = s.run(&["run", "--rm", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    // A command the runtime cannot start: a clear failure, nothing left.
    let out = s.run(&["run", "--rm", "bb", "no-such-command"]);
    assert!(!out.status.success());
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert_eq!(common::mounts_under(&s.root), Vec::<String>::new());
    // Every command finished cleanly: no writer's mark asks for a repair.
    assert_eq!(s.writer_marks(), 0);
    // The folders went to the trash at once, and the monitors empty it.
    eventually("the monitors empty the trash", || s.trash_entries() == 0);
    // What stays is the image's: its layers and the init layer the first
    // run made.
    let left = s.state().snapshots;
    assert_eq!(left.len(), layers.len() + 1, "{left:?}");
    assert!(layers.iter().all(|l| left.contains(l)), "{left:?}");
    assert_eq!(
        common::listing(s.root.join("containers")),
        Vec::<String>::new()
    );
}

#[test]
fn removals_empty_the_trash_before_returning_or_at_the_next_write() {
    let s = Strata::new();
    image(&s);
    s.ok(&["create", "--name", "gone", "bb", "true"]);
    s.ok(&["rm", "gone"]);
    assert_eq!(s.trash_entries(), 0, "rm deletes before it returns");
    // What a killed process left in the trash goes with the next write.
    let left = s.root.join("trash/left-by-a-killed-monitor");
    std::fs::create_dir_all(left.join("fs/deep")).unwrap();
    std::fs::write(left.join("fs/deep/file"), b"data").unwrap();
    s.ok(&["create", "--name", "next", "bb", "true"]);
    assert_eq!(s.trash_entries(), 0);
    assert_eq!(s.ok(&["system", "check"]), "no problems found\n");
}

#[test]
fn a_killed_run_rm_is_still_removed_by_its_monitor() {
    let s = Strata::new();
    image(&s);
    // The container waits for a line on its stdin, which the monitor
    // passes on from ours.
    let mut run = s
        .command(&[
            "run",
            "--rm",
            "-i",
            "--name",
            "orphan",
            "bb",
            "sh",
            "-c",
            "read l; echo \"$l\" > /vol/f",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the container running", || {
        s.ok(&["ps", "-q"]).trim().len() == 12
    });
    assert!(
        !s.ok(&["volume", "ls", "-q"]).is_empty(),
        "VOLUME /vol made an anonymous volume"
    );
    // (`wait` would close it.)
    let mut stdin = run.stdin.take().unwrap();
    // The starter dies; the monitor it launched carries on.
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(s.ok(&["ps", "-a"]).contains("orphan"));
    // The container ends; with nobody to answer it, the monitor tidies up:
    // the container, its anonymous volume and its mount are gone.
    stdin.write_all(b"bye\n").unwrap();
    drop(stdin);
    eventually("the container removed", || s.ok(&["ps", "-aq"]).is_empty());
    eventually("its volume removed", || {
        s.ok(&["volume", "ls", "-q"]).is_empty()
    });
    assert_eq!(common::mounts_under(&s.root), Vec::<String>::new());
    // Its name is free again.
    s.ok(&["run", "--rm", "--name", "orphan", "bb", "true"]);
}

#[test]
fn attach_passes_input_and_output_and_returns_the_exit_code() {
    let s = Strata::new();
    image(&s);
    let script = "while read l; do echo \"got $l\"; echo \"err $l\" >&2; \
                  [ \"$l\" = quit ] && exit 7; done";
    s.ok(&[
        "run", "-d", "-i", "--name", "reader", "bb", "sh", "-c", script,
    ]);
    let out = common::output_with_stdin(&mut s.command(&["attach", "reader"]), b"one\nquit\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got one\ngot quit\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err one\nerr quit\n");
    assert_eq!(out.status.code(), Some(7));
    let err = s.fails(&["attach", "reader"]);
    assert!(
        err.contains("cannot attach to a stopped container reader"),
        "{err}"
    );
    assert!(s.ok(&["ps", "-a"]).contains("Exited (7)"));

    // Without -i the container's stdin stays closed; output still comes.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "bb",
        "sh",
        "-c",
        "sleep 1; echo late",
    ]);
    let out = s.run(&["attach", "--no-stdin", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "late\n");
    assert!(out.status.success());
}

/// A pseudo-terminal of `rows` x `cols`: (master, slave).
fn pty(rows: u16, cols: u16) -> (std::fs::File, OwnedFd) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap()
        .into();
    set_size(&master, rows, cols);
    (std::fs::File::from(master), slave)
}

/// Sets a terminal's size, as a window change does.
fn set_size(terminal: impl std::os::fd::AsFd, rows: u16, cols: u16) {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(terminal, size).unwrap();
}

/// A command on a terminal of 33 x 77 that is its controlling one, as a
/// user's is (so the kernel tells it of size changes with SIGWINCH).
struct OnTerminal {
    master: std::fs::File,
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl OnTerminal {
    fn spawn(mut cmd: std::process::Command) -> OnTerminal {
        let (master, slave) = pty(33, 77);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: between fork and exec only setsid and an ioctl.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        OnTerminal {
            master,
            child,
            seen,
        }
    }

    /// Types a line until `text` shows on the terminal.
    fn type_until(&mut self, line: &str, text: &str) {
        eventually(text, || {
            self.master
                .write_all(format!("{line}\r").as_bytes())
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
            self.seen.lock().unwrap().contains(text)
        });
    }

    fn resize(&self, rows: u16, cols: u16) {
        set_size(&self.master, rows, cols);
    }

    /// Ends the container's loop; the command's exit status.
    fn quit(mut self) -> std::process::ExitStatus {
        self.master.write_all(b"quit\r").unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {}", self.seen.lock().unwrap());
        status
    }
}

/// Prints the terminal's size for each line read, until `quit`.
const SIZES: &str = "while read l; do stty size; [ \"$l\" = quit ] && exit 0; done";

#[test]
fn a_terminal_passes_its_size_and_later_changes() {
    let s = Strata::new();
    image(&s);
    // run -t: the container's terminal follows the user's.
    let mut run =
        OnTerminal::spawn(s.command(&["run", "--rm", "-t", "-i", "bb", "sh", "-c", SIZES]));
    run.type_until("x", "33 77");
    run.resize(41, 101);
    run.type_until("y", "41 101");
    run.quit();

    // attach: the same through the attach socket.
    s.ok(&[
        "run", "-d", "-t", "-i", "--name", "term", "bb", "sh", "-c", SIZES,
    ]);
    let mut attached = OnTerminal::spawn(s.command(&["attach", "term"]));
    attached.type_until("x", "33 77");
    attached.resize(41, 101);
    attached.type_until("y", "41 101");
    attached.quit();
}

#[test]
fn cp_reaches_volumes_and_bind_mounts_running_or_not() {
    let s = Strata::new();
    image(&s);
    let host = s.path("host");
    std::fs::create_dir(&host).unwrap();
    let bind = format!("{}:/hd", host.display());
    let script = "echo vol > /data/v; mkdir /data/sub; echo deep > /data/sub/d; \
                  echo tmp > /tm/t; echo layer > /tmp/l; sleep 60";
    s.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "store:/data",
        "-v",
        &bind,
        "--tmpfs",
        "/tm",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    let out = s.path("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.to_str().unwrap();
    eventually("the container's files", || {
        s.run(&["cp", "box:/tm/t", o]).status.success()
    });
    // Running: the container's own view, tmpfs included.
    s.ok(&["cp", "box:/data/v", o]);
    s.ok(&["cp", "box:/data", &format!("{o}/whole")]);
    let note = s.path("note");
    std::fs::write(&note, "from host").unwrap();
    s.ok(&["cp", note.to_str().unwrap(), "box:/data/sub/"]);
    assert_eq!(s.ok(&["exec", "box", "cat", "/data/sub/note"]), "from host");
    s.ok(&["cp", note.to_str().unwrap(), "box:/hd/"]);
    assert_eq!(
        std::fs::read_to_string(host.join("note")).unwrap(),
        "from host"
    );
    for (file, want) in [("t", "tmp\n"), ("v", "vol\n"), ("whole/sub/d", "deep\n")] {
        assert_eq!(
            std::fs::read_to_string(out.join(file)).unwrap(),
            want,
            "{file}"
        );
    }

    // Stopped: the volume and the host folder still answer for their paths.
    s.ok(&["stop", "-t", "0", "box"]);
    let back = s.path("back");
    std::fs::create_dir(&back).unwrap();
    let b = back.to_str().unwrap();
    s.ok(&["cp", "box:/data", b]);
    s.ok(&["cp", "box:/data/sub/note", &format!("{b}/n2")]);
    s.ok(&["cp", "box:/tmp/l", b]);
    s.ok(&["cp", note.to_str().unwrap(), "box:/data/later"]);
    for (file, want) in [
        ("data/v", "vol\n"),
        ("data/sub/note", "from host"),
        ("n2", "from host"),
        ("l", "layer\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(back.join(file)).unwrap(),
            want,
            "{file}"
        );
    }
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "store:/data",
        "bb",
        "cat",
        "/data/later",
    ]);
    assert_eq!(out, "from host");
    // Paths climbing out of a volume stay inside the container.
    let err = s.fails(&["cp", "box:/data/../../../etc/shadow", b]);
    assert!(err.contains("/etc/shadow"), "{err}");
}

#[test]
fn a_dot_relative_bind_source_is_the_working_directory() {
    let s = Strata::new();
    image(&s);
    let dir = s.path("project");
    std::fs::create_dir(&dir).unwrap();
    let out = common::stdout_of(
        s.command(&[
            "run",
            "--rm",
            "-v",
            "./data:/d",
            "-v",
            ".:/p:ro",
            "bb",
            "sh",
            "-c",
            "echo made > /d/f; cat /p/data/f; echo no > /p/x || echo refused",
        ])
        .current_dir(&dir),
    );
    assert_eq!(out, "made\nrefused\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/f")).unwrap(),
        "made\n"
    );
}

#[test]
fn commit_pauses_a_running_container_unless_told_not_to() {
    let s = Strata::new();
    image(&s);
    // runc behind a wrapper that notes each subcommand.
    let calls = s.path("calls");
    let wrapper = s.path("runc-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in pause|resume) echo \"$a\" >> {};; esac; done\nexec runc \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    common::tool("chmod", &["+x", wrapper.to_str().unwrap()]);
    let w = wrapper.to_str().unwrap();
    s.ok(&[
        "run",
        "-d",
        "--runtime",
        w,
        "--name",
        "busy",
        "bb",
        "sh",
        "-c",
        "echo x > /tmp/f; while true; do sleep 0.05; done",
    ]);
    eventually("the container's first file", || {
        s.run(&["exec", "busy", "cat", "/tmp/f"]).stdout == b"x\n"
    });
    s.ok(&["commit", "busy", "snap:1"]);
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "pause\nresume\n");
    s.ok(&["commit", "--pause=false", "busy", "snap:2"]);
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "pause\nresume\n");
    // Resumed: it still runs, and the image has its file.
    assert!(s.ok(&["ps"]).contains("busy"));
    assert_eq!(s.ok(&["run", "--rm", "snap:1", "cat", "/tmp/f"]), "x\n");
    s.ok(&["rm", "-f", "busy"]);
}
