//! A container's run state: one small JSON file its monitor writes
//! (atomically) when the container starts and when it exits. Commands read
//! it to tell Created / Up / Exited without asking any daemon.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Result, RuntimeError, io_at};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub running: bool,
    /// The monitor process, and its start time (so a reused pid is not
    /// taken for it).
    pub monitor_pid: i32,
    pub monitor_start: u64,
    /// The container's first process, once started (host pid).
    pub pid: i32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    /// Why the runtime could not start the container (then `pid` is 0 and
    /// `exit_code` is Docker's status for it: 127, 126 or 125).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state at `path`; None if the container never started.
pub fn read(path: &Path) -> Result<Option<RunState>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::Spec(format!("{}: unreadable state: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

pub fn write(path: &Path, state: &RunState) -> Result<()> {
    let bytes = serde_json::to_vec(state).expect("state serializes");
    strata_store::fsutil::write_replace(path, &bytes).map_err(io_at(path))
}

/// The start time of process `pid` (clock ticks since boot), if it lives.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'. starttime is field 22.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start` still runs.
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
        assert!(!alive(0, start));
    }

    #[test]
    fn round_trips() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.json");
        assert_eq!(read(&p).unwrap(), None);
        let s = RunState {
            running: false,
            monitor_pid: 1,
            monitor_start: 2,
            pid: 3,
            started_at: "a".into(),
            finished_at: Some("b".into()),
            exit_code: Some(7),
            error: None,
        };
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap(), Some(s.clone()));
        // A failed start's words, and a state written before they were.
        let failed = RunState {
            pid: 0,
            exit_code: Some(127),
            error: Some("exec: \"x\": executable file not found".into()),
            ..s
        };
        write(&p, &failed).unwrap();
        assert_eq!(read(&p).unwrap(), Some(failed));
        std::fs::write(&p, r#"{"running":false,"monitor_pid":1,"monitor_start":2,"pid":3,"started_at":"a","finished_at":null,"exit_code":0}"#).unwrap();
        assert_eq!(read(&p).unwrap().unwrap().error, None);
    }
}
