//! An ordered map that also finds, in logarithmic time, the first entry in
//! key order whose value is at most a bound.
//!
//! The binder keeps claims waiting for a volume in one of these, keyed by
//! creation order and valued by requested size: "the oldest waiting claim a
//! new volume of size S can satisfy" is then one query, where scanning the
//! waiting claims would make N arrivals cost O(N²) in the worst order. It is
//! a treap: a binary search tree by key that is a heap by random priority
//! (so expected depth is logarithmic), with each node also holding the
//! smallest value in its subtree so whole subtrees can be skipped.

type Link = Option<usize>;

struct Node<K, V> {
    key: K,
    value: V,
    subtree_min: V,
    priority: u64,
    left: Link,
    right: Link,
}

pub(super) struct MinTree<K, V> {
    /// Nodes by slot; slots in `vacant` are unused and get reused.
    nodes: Vec<Node<K, V>>,
    vacant: Vec<usize>,
    root: Link,
    priority_state: u64,
}

impl<K: Ord, V: Ord + Copy> MinTree<K, V> {
    pub fn new() -> MinTree<K, V> {
        MinTree {
            nodes: Vec::new(),
            vacant: Vec::new(),
            root: None,
            priority_state: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Inserts `key`, replacing the value of an equal key.
    pub fn insert(&mut self, key: K, value: V) {
        self.remove(&key);
        let (less, rest) = self.split(self.root, &|k: &K| *k < key);
        let node = Node {
            key,
            value,
            subtree_min: value,
            priority: self.next_priority(),
            left: None,
            right: None,
        };
        let slot = self.allocate(node);
        let joined = self.merge(less, Some(slot));
        self.root = self.merge(joined, rest);
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (less, rest) = self.split(self.root, &|k: &K| k < key);
        let (equal, greater) = self.split(rest, &|k: &K| k <= key);
        self.root = self.merge(less, greater);
        let slot = equal?;
        self.vacant.push(slot);
        Some(self.nodes[slot].value)
    }

    /// The first entry in key order, strictly after `after` if given, whose
    /// value is at most `bound`.
    pub fn first_at_most(&self, bound: V, after: Option<&K>) -> Option<(&K, V)> {
        let slot = self.find_first(self.root, bound, after)?;
        let node = &self.nodes[slot];
        Some((&node.key, node.value))
    }

    fn find_first(&self, link: Link, bound: V, after: Option<&K>) -> Link {
        let node = &self.nodes[link?];
        if node.subtree_min > bound {
            return None;
        }
        // A node at or before `after` has its whole left subtree there too.
        if after.is_none_or(|a| node.key > *a) {
            if let Some(found) = self.find_first(node.left, bound, after) {
                return Some(found);
            }
            if node.value <= bound {
                return link;
            }
        }
        self.find_first(node.right, bound, after)
    }

    /// Splits the subtree into the keys for which `goes_left` holds (a
    /// prefix in key order) and the rest.
    fn split(&mut self, link: Link, goes_left: &impl Fn(&K) -> bool) -> (Link, Link) {
        let Some(slot) = link else {
            return (None, None);
        };
        if goes_left(&self.nodes[slot].key) {
            let (left, right) = self.split(self.nodes[slot].right, goes_left);
            self.nodes[slot].right = left;
            self.refresh(slot);
            (Some(slot), right)
        } else {
            let (left, right) = self.split(self.nodes[slot].left, goes_left);
            self.nodes[slot].left = right;
            self.refresh(slot);
            (left, Some(slot))
        }
    }

    /// Joins two subtrees where every key of `a` is below every key of `b`.
    fn merge(&mut self, a: Link, b: Link) -> Link {
        let (Some(x), Some(y)) = (a, b) else {
            return a.or(b);
        };
        if self.nodes[x].priority > self.nodes[y].priority {
            let right = self.merge(self.nodes[x].right, b);
            self.nodes[x].right = right;
            self.refresh(x);
            a
        } else {
            let left = self.merge(a, self.nodes[y].left);
            self.nodes[y].left = left;
            self.refresh(y);
            b
        }
    }

    fn allocate(&mut self, node: Node<K, V>) -> usize {
        match self.vacant.pop() {
            Some(slot) => {
                self.nodes[slot] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    fn refresh(&mut self, slot: usize) {
        let node = &self.nodes[slot];
        let children = [node.left, node.right].into_iter().flatten();
        let min = children.fold(node.value, |min, c| min.min(self.nodes[c].subtree_min));
        self.nodes[slot].subtree_min = min;
    }

    /// SplitMix64: cheap, well-spread priorities without a random source;
    /// only the tree's shape depends on them, never its answers.
    fn next_priority(&mut self) -> u64 {
        self.priority_state = self.priority_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.priority_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn check(entries: &[(u32, u32)], bound: u32, after: Option<u32>, expected: Option<(u32, u32)>) {
        let mut tree = MinTree::new();
        for &(key, value) in entries {
            tree.insert(key, value);
        }
        let found = tree
            .first_at_most(bound, after.as_ref())
            .map(|(k, v)| (*k, v));
        assert_eq!(found, expected, "{entries:?} bound {bound} after {after:?}");
    }

    #[test]
    fn finds_the_first_small_enough_entry() {
        let entries = [(1, 50), (2, 10), (3, 40), (4, 5), (5, 30)];
        let cases = [
            (60, None, Some((1, 50))),
            (45, None, Some((2, 10))),
            (9, None, Some((4, 5))),
            (4, None, None),
            (45, Some(2), Some((3, 40))),
            (35, Some(2), Some((4, 5))),
            (35, Some(4), Some((5, 30))),
            (60, Some(5), None),
        ];
        for (bound, after, expected) in cases {
            check(&entries, bound, after, expected);
        }
        check(&[], 10, None, None);
        // Re-inserting a key replaces its value.
        check(&[(1, 50), (1, 5)], 10, None, Some((1, 5)));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u8),
        Remove(u8),
        Query(u8, Option<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Insert(k % 32, v)),
            any::<u8>().prop_map(|k| Op::Remove(k % 32)),
            (any::<u8>(), proptest::option::of(any::<u8>()))
                .prop_map(|(b, a)| Op::Query(b, a.map(|a| a % 32))),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_scan(ops in proptest::collection::vec(op(), 0..200)) {
            let mut tree = MinTree::new();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        tree.insert(k, v);
                        model.insert(k, v);
                    }
                    Op::Remove(k) => prop_assert_eq!(tree.remove(&k), model.remove(&k)),
                    Op::Query(bound, after) => {
                        let expected = model
                            .iter()
                            .filter(|(k, _)| after.is_none_or(|a| **k > a))
                            .find(|(_, v)| **v <= bound)
                            .map(|(k, v)| (*k, *v));
                        let found = tree.first_at_most(bound, after.as_ref()).map(|(k, v)| (*k, v));
                        prop_assert_eq!(found, expected);
                    }
                }
                prop_assert_eq!(tree.is_empty(), model.is_empty());
            }
        }
    }
}
