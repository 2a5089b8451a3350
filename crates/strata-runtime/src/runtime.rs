//! The seam to the OCI runtime, and `runc` behind it.
//!
//! The runtime's command line is the contract (runc, crun and youki share
//! it), so the seam hands out commands for the long-lived calls (`run`,
//! `exec`), which the caller wires to its own stdio, and performs the
//! short ones itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Result, RuntimeError};

/// What the runtime says about a container it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    pub pid: i32,
}

pub trait Runtime {
    /// The runtime's name for messages (its path).
    fn name(&self) -> String;
    /// `run` in the foreground: creates, starts and waits for the
    /// container; exits with its exit code (128+n when killed by signal n)
    /// and removes the runtime's state of it.
    fn run_command(&self, bundle: &Path, id: &str, pid_file: &Path) -> Command;
    /// Runs another process in a running container.
    fn exec_command(&self, id: &str, process: &Path, detach: bool) -> Command;
    /// Sends `signal` (a number or a name like `TERM`) to the container's
    /// first process.
    fn kill(&self, id: &str, signal: &str) -> Result<()>;
    /// None if the runtime does not know the container.
    fn state(&self, id: &str) -> Result<Option<RuntimeState>>;
    /// Forgets a stopped container (`force`: kills it first).
    fn delete(&self, id: &str, force: bool) -> Result<()>;
    /// Freezes every process of a running container (cgroup freezer).
    fn pause(&self, id: &str) -> Result<()>;
    /// Thaws a paused container.
    fn resume(&self, id: &str) -> Result<()>;
}

/// runc (or any runtime with its command line) at `path`, keeping its state
/// under `state_root` (on tmpfs, so a reboot forgets every container, as it
/// forgets their processes).
#[derive(Debug, Clone)]
pub struct Runc {
    pub path: PathBuf,
    pub state_root: PathBuf,
}

impl Runc {
    pub fn new(path: &Path) -> Runc {
        Runc {
            path: path.to_owned(),
            state_root: PathBuf::from("/run/strata/runc"),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(&self.state_root);
        c
    }

    fn call(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.failed(args[0], e.to_string()))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(self.failed(
            args[0],
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }

    fn failed(&self, call: &str, what: String) -> RuntimeError {
        RuntimeError::Runtime {
            runtime: self.name(),
            what: format!("{call}: {}", words(&what)),
        }
    }
}

/// What the runtime said, one line after another: runc's log lines
/// (`time="…" level=error msg="…"`) reduced to their message, any other
/// line kept as it is.
pub fn words(output: &str) -> String {
    let lines: Vec<String> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| logged_message(l).unwrap_or_else(|| l.to_owned()))
        .collect();
    lines.join("; ")
}

/// Docker's exit status for a container whose command the runtime could
/// not start, from the runtime's `words`: 127 when it found no such
/// command, 126 when it could not run it, 125 for any other failure.
pub fn start_failure_status(words: &str) -> i32 {
    let said = |phrases: &[&str]| phrases.iter().any(|p| words.contains(p));
    if said(&["executable file not found", "no such file or directory"]) {
        127
    } else if said(&["permission denied", "is a directory"]) {
        126
    } else {
        125
    }
}

/// The `msg="…"` of a logrus text line, unquoted.
fn logged_message(line: &str) -> Option<String> {
    let (_, quoted) = line.split_once(" msg=\"")?;
    let mut msg = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(msg),
            '\\' => msg.push(chars.next()?),
            c => msg.push(c),
        }
    }
    None
}

impl Runtime for Runc {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn run_command(&self, bundle: &Path, id: &str, pid_file: &Path) -> Command {
        let mut c = self.command();
        c.arg("run").arg("--bundle").arg(bundle);
        c.arg("--pid-file").arg(pid_file).arg(id);
        c
    }

    fn exec_command(&self, id: &str, process: &Path, detach: bool) -> Command {
        let mut c = self.command();
        c.arg("exec").arg("--process").arg(process);
        if detach {
            c.arg("--detach");
        }
        c.arg(id);
        c
    }

    fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.call(&["kill", id, signal]).map(drop)
    }

    fn state(&self, id: &str) -> Result<Option<RuntimeState>> {
        let out = match self
            .command()
            .args(["state", id])
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => out,
            // A runtime that is not there runs nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.failed("state", e.to_string())),
        };
        if !out.status.success() {
            // runc says "container does not exist" for ones it never ran or
            // already removed.
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| self.failed("state", format!("unreadable answer: {e}")))?;
        Ok(Some(RuntimeState {
            status: v["status"].as_str().unwrap_or("unknown").to_owned(),
            pid: v["pid"].as_i64().unwrap_or(0) as i32,
        }))
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        self.call(&args).map(drop)
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.call(&["pause", id]).map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.call(&["resume", id]).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(output: &str, expected: &str) {
        assert_eq!(words(output), expected, "{output}");
    }

    #[test]
    fn runc_log_lines_give_their_message() {
        check(
            r#"time="2026-11-24T18:13:57Z" level=error msg="runc run failed: exec: \"nosuchcmd\": executable file not found in $PATH""#,
            r#"runc run failed: exec: "nosuchcmd": executable file not found in $PATH"#,
        );
        check(
            "time=\"t\" level=error msg=\"container not running\"\n",
            "container not running",
        );
        check(r#"level=warning msg="a \\ b" x=1"#, r"a \ b");
        // Anything else is kept, line by line.
        check("plain words\n\n  second line  ", "plain words; second line");
        check(
            r#"level=error msg="never closed"#,
            r#"level=error msg="never closed"#,
        );
        check("", "");
    }

    fn check_status(words: &str, expected: i32) {
        assert_eq!(start_failure_status(words), expected, "{words}");
    }

    #[test]
    fn start_failures_get_dockers_statuses() {
        let runc = |msg: &str| format!("runc run failed: unable to start container process: {msg}");
        check_status(
            &runc(r#"exec: "nosuchcmd": executable file not found in $PATH"#),
            127,
        );
        check_status(
            &runc(r#"exec: "/no/such": stat /no/such: no such file or directory"#),
            127,
        );
        check_status(&runc(r#"exec: "/etc/passwd": permission denied"#), 126);
        check_status(&runc(r#"exec: "/bin": is a directory"#), 126);
        check_status(&runc("error during container init: cgroup"), 125);
        check_status("", 125);
    }
}
