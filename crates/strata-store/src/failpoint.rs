//! Crash injection for tests: `STRATA_FAILPOINT=<name>[:<n>]` makes the
//! process SIGKILL itself the n-th time (default first) it reaches `hit(name)`.
//!
//! It is always compiled in so the crash tests exercise the real binary; the
//! cost when unset is one load of a cached `None`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Point {
    name: String,
    nth: u64,
    seen: AtomicU64,
}

fn point() -> Option<&'static Point> {
    static POINT: OnceLock<Option<Point>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let spec = std::env::var("STRATA_FAILPOINT").ok()?;
            let (name, nth) = match spec.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Point {
                name,
                nth,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Dies here, as a crash would, if this point was asked for.
pub fn hit(name: &str) {
    if let Some(p) = point()
        && p.name == name
        && p.seen.fetch_add(1, Ordering::SeqCst) + 1 == p.nth
    {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
