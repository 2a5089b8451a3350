//! How long operations report what they are doing. The image layer only
//! calls these; the command line draws bars on a terminal and stays quiet
//! otherwise.

pub trait Progress {
    /// A new unit of work (a layer), `total` bytes if known.
    fn start(&self, _what: &str, _total: Option<u64>) {}
    /// Bytes of the current unit done so far.
    fn position(&self, _done: u64) {}
    /// The current unit is finished.
    fn finish(&self, _summary: &str) {}
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {}
