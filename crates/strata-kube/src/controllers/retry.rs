//! A controller's work list: items to do now, and failed ones to try
//! again after a pause. An item is in it at most once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(crate) struct RetryQueue<T> {
    now: VecDeque<T>,
    later: Vec<(Instant, T)>,
    pause: Duration,
}

impl<T: PartialEq> RetryQueue<T> {
    /// Failed items wait `pause` before they are tried again.
    pub(crate) fn new(pause: Duration) -> RetryQueue<T> {
        RetryQueue {
            now: VecDeque::new(),
            later: Vec::new(),
            pause,
        }
    }

    fn holds(&self, item: &T) -> bool {
        self.now.contains(item) || self.later.iter().any(|(_, t)| t == item)
    }

    /// Queues `item` to do now, unless it is queued already.
    pub(crate) fn add(&mut self, item: T) {
        if !self.holds(&item) {
            self.now.push_back(item);
        }
    }

    /// Puts `item` back to be tried after the pause.
    pub(crate) fn retry(&mut self, item: T) {
        if !self.holds(&item) {
            self.later.push((Instant::now() + self.pause, item));
        }
    }

    /// The next item to do: one queued now, or one whose pause is over.
    pub(crate) fn next(&mut self) -> Option<T> {
        if let Some(item) = self.now.pop_front() {
            return Some(item);
        }
        let now = Instant::now();
        let due = self.later.iter().position(|(at, _)| *at <= now)?;
        Some(self.later.remove(due).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_once_and_failed_ones_after_the_pause() {
        let mut q = RetryQueue::new(Duration::from_millis(50));
        q.add(1);
        q.add(2);
        q.add(1);
        assert_eq!((q.next(), q.next(), q.next()), (Some(1), Some(2), None));
        q.retry(3);
        q.retry(3);
        q.add(3);
        assert_eq!(q.next(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!((q.next(), q.next()), (Some(3), None));
    }
}
