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
    /// Only lines written at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only lines written at or before this time.
    pub until: Option<jiff::Timestamp>,
}

/// A `--since`/`--until` value as Docker takes it: a duration back from
/// `now` (`10m`, `1h30m`), an RFC 3339 time, a date or date and time in
/// the local zone (`2026-11-24`, `2026-11-24T16:44:58`), or Unix seconds.
pub fn parse_time(value: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, String> {
    let value = value.trim();
    if let Ok(back) = value.parse::<jiff::SignedDuration>() {
        return now
            .checked_sub(back)
            .map_err(|e| format!("'{value}' reaches too far back: {e}"));
    }
    if let Ok(t) = value.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let local = |dt: jiff::civil::DateTime| {
        dt.to_zoned(jiff::tz::TimeZone::system())
            .map(|z| z.timestamp())
    };
    if let Ok(dt) = value.parse::<jiff::civil::DateTime>() {
        return local(dt).map_err(|e| format!("'{value}': {e}"));
    }
    if let Ok(d) = value.parse::<jiff::civil::Date>() {
        return local(d.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| format!("'{value}': {e}"));
    }
    if let Ok(secs) = value.parse::<f64>()
        && let Ok(t) = jiff::Timestamp::from_duration(jiff::SignedDuration::from_secs_f64(secs))
    {
        return Ok(t);
    }
    Err(format!(
        "'{value}' is not a time: give a duration back from now (10m, 1h30m), \
         an RFC 3339 time (2026-11-24T16:44:58Z), a date (2026-11-24) or Unix seconds"
    ))
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
    if opts.since.is_some() || opts.until.is_some() {
        let Ok(at) = rec.time.parse::<jiff::Timestamp>() else {
            return Ok(());
        };
        if opts.since.is_some_and(|s| at < s) || opts.until.is_some_and(|u| at > u) {
            return Ok(());
        }
    }
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
    fn since_and_until_keep_the_lines_written_between() {
        use Stream::*;
        let at = |t: &str| Some(t.parse::<jiff::Timestamp>().unwrap());
        let lines = [(Stdout, "a\n"), (Stderr, "e\n")];
        let window = |since, until| ReadOptions {
            since,
            until,
            ..Default::default()
        };
        check(
            &lines,
            window(at("2000-01-01T00:00:00Z"), None),
            "a\n",
            "e\n",
        );
        check(&lines, window(at("2999-01-01T00:00:00Z"), None), "", "");
        check(&lines, window(None, at("2000-01-01T00:00:00Z")), "", "");
        check(
            &lines,
            window(None, at("2999-01-01T00:00:00Z")),
            "a\n",
            "e\n",
        );
    }

    #[test]
    fn times_parse_as_docker_takes_them() {
        let now: jiff::Timestamp = "2026-11-24T16:00:00Z".parse().unwrap();
        let check = |value: &str, expected: &str| {
            let got = parse_time(value, now).map(|t| t.to_string());
            assert_eq!(got.as_deref(), Ok(expected), "{value}");
        };
        check("10m", "2026-11-24T15:50:00Z");
        check("1h30m", "2026-11-24T14:30:00Z");
        check("45s", "2026-11-24T15:59:15Z");
        check("0s", "2026-11-24T16:00:00Z");
        check("2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z");
        check("2026-11-24T11:00:00+01:00", "2026-11-24T10:00:00Z");
        check("1700000000", "2023-11-14T22:13:20Z");
        check("1700000000.5", "2023-11-14T22:13:20.5Z");
        // A date or a date and time without a zone are local, as Docker's.
        let local = |dt: &str| {
            let dt: jiff::civil::DateTime = dt.parse().unwrap();
            let z = dt.to_zoned(jiff::tz::TimeZone::system()).unwrap();
            z.timestamp().to_string()
        };
        check("2026-11-24", &local("2026-11-24T00:00:00"));
        check("2026-11-24T08:30:00", &local("2026-11-24T08:30:00"));
        for bad in ["yesterday", "", "10 parsecs", "2026-13-01"] {
            let err = parse_time(bad, now).unwrap_err();
            assert!(err.contains("is not a time"), "{bad}: {err}");
        }
    }

    proptest::proptest! {
        /// Any time it printed reads back; any whole seconds back from now
        /// land that far back; nothing panics.
        #[test]
        fn times_read_back(secs in 0i64..4_000_000_000, back in 0i64..1_000_000_000, junk in ".*") {
            let now = jiff::Timestamp::from_second(secs).unwrap();
            proptest::prop_assert_eq!(parse_time(&now.to_string(), now), Ok(now));
            let then = parse_time(&format!("{back}s"), now);
            proptest::prop_assert_eq!(then, Ok(now - jiff::SignedDuration::from_secs(back)));
            let _ = parse_time(&junk, now);
        }
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
