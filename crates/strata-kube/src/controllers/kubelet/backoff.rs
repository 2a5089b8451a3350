//! Crash-loop back-off, as the kubelet's: a container that exits is
//! restarted at once the first time, then only after 10 s, 20 s, 40 s, …
//! up to 5 minutes since it last exited; one that ran for longer than twice
//! the maximum starts over.

use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

/// The back-off of one container of one pod.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    /// The wait before the next restart; None before the first.
    delay: Option<Duration>,
    /// When it was last restarted.
    restarted: Option<Instant>,
}

impl Backoff {
    /// For a container that exited at `exited`: how much longer it must
    /// wait at `now`, or None if it may restart now (which doubles the
    /// next wait).
    pub fn wait(&mut self, exited: Instant, now: Instant) -> Option<Duration> {
        let stable = self
            .restarted
            .is_some_and(|at| exited.saturating_duration_since(at) > 2 * MAX);
        if stable {
            self.delay = None;
        }
        if let Some(delay) = self.delay {
            let waited = now.saturating_duration_since(exited);
            if waited < delay {
                return Some(delay - waited);
            }
        }
        self.delay = Some(self.delay.map_or(INITIAL, |d| (d * 2).min(MAX)));
        self.restarted = Some(now);
        None
    }

    /// The current wait, as upstream's back-off messages name it.
    pub fn delay(&self) -> Duration {
        self.delay.unwrap_or(INITIAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds exits (seconds since the start of the test, seconds after the
    /// exit that a restart is asked for) and compares the answers: the wait
    /// left, None for "restart now".
    fn check(steps: &[(u64, u64)], expected: &[Option<u64>]) {
        let start = Instant::now();
        let mut backoff = Backoff::default();
        let got: Vec<Option<u64>> = steps
            .iter()
            .map(|&(exited, asked)| {
                let exited = start + Duration::from_secs(exited);
                let now = exited + Duration::from_secs(asked);
                backoff.wait(exited, now).map(|d| d.as_secs())
            })
            .collect();
        let expected: Vec<Option<u64>> = expected.to_vec();
        assert_eq!(got, expected, "steps {steps:?}");
    }

    #[test]
    fn waits_double_from_ten_seconds_to_five_minutes() {
        // The first restart is at once; the second waits 10 s.
        check(
            &[(0, 0), (1, 0), (1, 4), (1, 10)],
            &[None, Some(10), Some(6), None],
        );
        // 10, 20, 40, 80, 160, 300 (capped), 300.
        let mut steps = vec![(0, 0)];
        let mut expected = vec![None];
        let mut at = 0;
        for wait in [10, 20, 40, 80, 160, 300, 300] {
            at += 1;
            steps.push((at, 0));
            expected.push(Some(wait));
            steps.push((at, wait));
            expected.push(None);
            at += wait;
        }
        check(&steps, &expected);
    }

    #[test]
    fn a_container_that_ran_long_enough_starts_over() {
        // Restarted at 0 and at 10; running until 700 (> 10 minutes) resets.
        check(&[(0, 0), (0, 10), (700, 0)], &[None, None, None]);
        // Running until 500 (< 10 minutes) does not: the wait is 20 s.
        check(&[(0, 0), (0, 10), (500, 0)], &[None, None, Some(20)]);
    }
}
