//! What a build prints: numbered steps, `CACHED` on hits, the time each
//! took, RUN output as it comes, then the image ID. With `-q`, only the
//! ID; RUN output is kept (its tail) to show if the step fails.

use std::io::Write;
use std::time::Duration;

use strata_store::Digest;

/// The tail of a quiet build's RUN output kept for the error.
const KEPT: usize = 64 * 1024;

pub(crate) struct Output<'a> {
    w: &'a mut dyn Write,
    quiet: bool,
    total: usize,
    n: usize,
    kept: Vec<u8>,
}

impl<'a> Output<'a> {
    pub(crate) fn new(w: &'a mut dyn Write, quiet: bool, total: usize) -> Output<'a> {
        Output {
            w,
            quiet,
            total,
            n: 0,
            kept: Vec::new(),
        }
    }

    fn line(&mut self, s: &str) {
        if !self.quiet {
            let _ = writeln!(self.w, "{s}");
            let _ = self.w.flush();
        }
    }

    pub(crate) fn step(&mut self, text: &str) {
        self.n += 1;
        self.kept.clear();
        let s = format!("Step {}/{} : {text}", self.n, self.total);
        self.line(&s);
    }

    pub(crate) fn finished(&mut self, cached: bool, state: &Digest, took: Duration) {
        let hit = if cached { "CACHED " } else { "" };
        let s = format!(
            " ---> {hit}{} {:.3}s",
            &state.hex()[..12],
            took.as_secs_f64()
        );
        self.line(&s);
    }

    pub(crate) fn note(&mut self, s: &str) {
        self.line(s);
    }

    /// RUN output, streamed (or kept, when quiet).
    pub(crate) fn run_output(&mut self, bytes: &[u8]) {
        if self.quiet {
            self.kept.extend_from_slice(bytes);
            if self.kept.len() > KEPT {
                self.kept.drain(..self.kept.len() - KEPT);
            }
        } else {
            let _ = self.w.write_all(bytes);
            let _ = self.w.flush();
        }
    }

    /// A quiet build's failing RUN shows its output after all.
    pub(crate) fn flush_kept(&mut self) {
        if self.quiet && !self.kept.is_empty() {
            let _ = self.w.write_all(&self.kept);
            let _ = self.w.flush();
        }
    }

    pub(crate) fn built(&mut self, id: &Digest, names: &[String]) {
        if self.quiet {
            let _ = writeln!(self.w, "{id}");
            return;
        }
        self.line(&format!("Successfully built {}", &id.hex()[..12]));
        for n in names {
            self.line(&format!("Successfully tagged {n}"));
        }
    }
}
