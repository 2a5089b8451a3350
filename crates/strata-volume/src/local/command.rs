//! Running the system's tools (mkfs, mount helpers).

use std::process::Command;

use super::error::{LocalError, Result};

/// Runs `command`, turning a failure into an error carrying its stderr.
pub fn run(command: &mut Command) -> Result<()> {
    run_accepting(command, &[0])
}

/// Runs `command`, taking the exit codes in `ok` as success (e2fsck
/// exits 1 when it fixed something).
pub fn run_accepting(command: &mut Command, ok: &[i32]) -> Result<()> {
    let name = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|source| LocalError::Command {
        command: name.clone(),
        status: "it did not start; is it installed?".into(),
        stderr: source.to_string(),
    })?;
    if output.status.code().is_some_and(|c| ok.contains(&c)) {
        return Ok(());
    }
    Err(LocalError::Command {
        command: name,
        status: output.status.to_string(),
        stderr: message(&String::from_utf8_lossy(&output.stderr)),
    })
}

/// A tool's stderr on one line, without the usage text some print after it.
fn message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn stderr_on_one_line() {
        let check = |stderr: &str, expected: &str| assert_eq!(super::message(stderr), expected);
        check("", "");
        check("bad thing\n", "bad thing");
        check(
            "mount: x: wrong fs type.\n       dmesg(1) may have more.\n",
            "mount: x: wrong fs type.; dmesg(1) may have more.",
        );
        check(
            "Filesystem must be larger than 300MB.\nUsage: mkfs.xfs\n/* blocksize */ [-b size=num]\n",
            "Filesystem must be larger than 300MB.",
        );
    }
}
