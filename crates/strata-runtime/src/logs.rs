//! Container logs, in Docker's json-file format: one JSON object per line
//! of output, `{"log":"...\n","stream":"stdout","time":"..."}`, so stdout
//! and stderr stay apart and every line has its time.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Serialize, Deserialize)]
struct Record {
    log: String,
    stream: Stream,
    time: String,
}

/// Appends output to a log file, a record per line. A line longer than
/// 16 KiB is cut into records, as Docker does.
pub struct LogWriter {
    file: File,
    pending: [Vec<u8>; 2],
}

const MAX_LINE: usize = 16 * 1024;

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter {
            file,
            pending: [Vec::new(), Vec::new()],
        })
    }

    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let i = stream as usize;
        self.pending[i].extend_from_slice(bytes);
        while let Some(end) = line_end(&self.pending[i]) {
            let line: Vec<u8> = self.pending[i].drain(..end).collect();
            self.record(stream, &line)?;
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines.
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.record(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let rec = Record {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: jiff::Timestamp::now().to_string(),
        };
        let mut bytes = serde_json::to_vec(&rec).expect("records serialize");
        bytes.push(b'\n');
        self.file.write_all(&bytes)
    }
}

fn line_end(buf: &[u8]) -> Option<usize> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => Some(i + 1),
        None if buf.len() >= MAX_LINE => Some(MAX_LINE),
        None => None,
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub follow: bool,
    pub timestamps: bool,
    /// Only the last n lines.
    pub tail: Option<usize>,
}

/// Writes the log at `path` to `out` and `err`. With `follow`, keeps
/// reading as it grows until `finished()` says the container has exited
/// (and what it wrote last has been read).
pub fn read(
    path: &Path,
    opts: &ReadOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    finished: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(n) = opts.tail {
        let lines = BufReader::new(&file).lines().count();
        file.rewind()?;
        skip_lines(&mut file, lines.saturating_sub(n))?;
    }
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        let done = opts.follow && finished();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                // A record being written: read it whole next time.
                reader.seek_relative(-(n as i64))?;
                break;
            }
            emit(&line, opts, out, err)?;
        }
        out.flush()?;
        err.flush()?;
        if !opts.follow || done {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn skip_lines(file: &mut File, n: usize) -> io::Result<()> {
    let mut reader = BufReader::new(&*file);
    let mut pos = 0u64;
    let mut line = Vec::new();
    for _ in 0..n {
        line.clear();
        pos += reader.read_until(b'\n', &mut line)? as u64;
    }
    file.seek(io::SeekFrom::Start(pos))?;
    Ok(())
}

fn emit(
    line: &str,
    opts: &ReadOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    let Ok(rec) = serde_json::from_str::<Record>(line) else {
        return Ok(());
    };
    let w: &mut dyn Write = match rec.stream {
        Stream::Stdout => out,
        Stream::Stderr => err,
    };
    if opts.timestamps {
        write!(w, "{} ", rec.time)?;
    }
    w.write_all(rec.log.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(writes: &[(Stream, &str)], opts: ReadOptions, want_out: &str, want_err: &str) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        for (s, b) in writes {
            w.write(*s, b.as_bytes()).unwrap();
        }
        w.flush().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        read(&p, &opts, &mut out, &mut err, &|| true).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want_out);
        assert_eq!(String::from_utf8(err).unwrap(), want_err);
    }

    #[test]
    fn streams_lines_and_tails() {
        use Stream::*;
        check(
            &[(Stdout, "a\nb"), (Stderr, "e\n"), (Stdout, "c\n")],
            ReadOptions::default(),
            "a\nbc\n",
            "e\n",
        );
        check(
            &[(Stdout, "1\n2\n3\n")],
            ReadOptions {
                tail: Some(2),
                ..Default::default()
            },
            "2\n3\n",
            "",
        );
        check(
            &[(Stdout, "no newline")],
            ReadOptions::default(),
            "no newline",
            "",
        );
        check(
            &[],
            ReadOptions {
                follow: true,
                ..Default::default()
            },
            "",
            "",
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let long = "x".repeat(MAX_LINE + 10);
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(Stream::Stdout, long.as_bytes()).unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
    }
}
