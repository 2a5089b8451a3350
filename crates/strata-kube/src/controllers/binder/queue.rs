//! The binder's work queue: FIFO, and an item already waiting is not added
//! twice.

use std::collections::{HashSet, VecDeque};

use super::Work;

#[derive(Default)]
pub(super) struct WorkQueue {
    order: VecDeque<Work>,
    queued: HashSet<Work>,
}

impl WorkQueue {
    pub fn push(&mut self, work: Work) {
        if self.queued.insert(work.clone()) {
            self.order.push_back(work);
        }
    }

    pub fn pop(&mut self) -> Option<Work> {
        let work = self.order.pop_front()?;
        self.queued.remove(&work);
        Some(work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str) -> Work {
        Work::Volume { name: name.into() }
    }

    fn check(pushes: &[&str], expected: &[&str]) {
        let mut queue = WorkQueue::default();
        for name in pushes {
            queue.push(volume(name));
        }
        let popped: Vec<Work> = std::iter::from_fn(|| queue.pop()).collect();
        let expected: Vec<Work> = expected.iter().map(|n| volume(n)).collect();
        assert_eq!(popped, expected, "{pushes:?}");
    }

    #[test]
    fn first_in_first_out_without_duplicates() {
        check(&[], &[]);
        check(&["a", "b", "c"], &["a", "b", "c"]);
        check(&["a", "b", "a", "c", "b"], &["a", "b", "c"]);
    }

    #[test]
    fn an_item_taken_out_can_be_queued_again() {
        let mut queue = WorkQueue::default();
        queue.push(volume("a"));
        assert_eq!(queue.pop(), Some(volume("a")));
        queue.push(volume("a"));
        assert_eq!(queue.pop(), Some(volume("a")));
        assert_eq!(queue.pop(), None);
    }
}
