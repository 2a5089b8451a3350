//! Sets of access modes: the key of the binder's volume buckets.

use std::cmp::Ordering;

/// The known access modes, in upstream's order (that of
/// `crate::admission::accessmodes_string`, whose strings key upstream's
/// buckets; a set here is the same key as a bit mask).
const MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

/// A set of access modes, one bit per entry of `MODES`. Ordered by number
/// of modes first, which is the order upstream searches its buckets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct AccessModeSet(u8);

impl AccessModeSet {
    /// Every possible set, fewest modes first.
    pub fn all_by_size() -> impl Iterator<Item = AccessModeSet> {
        let mut sets: Vec<AccessModeSet> = (0..1 << MODES.len()).map(AccessModeSet).collect();
        sets.sort();
        sets.into_iter()
    }

    /// The set a volume offers. Unknown names are dropped, as they are from
    /// upstream's index key.
    pub fn offered(modes: &[String]) -> AccessModeSet {
        AccessModeSet(
            modes
                .iter()
                .filter_map(|m| bit(m))
                .fold(0, |set, b| set | b),
        )
    }

    /// The set a claim asks for; None if it asks for a mode no volume can
    /// offer.
    pub fn requested(modes: &[String]) -> Option<AccessModeSet> {
        modes
            .iter()
            .try_fold(0, |set, m| Some(set | bit(m)?))
            .map(AccessModeSet)
    }

    pub fn contains_all(self, other: AccessModeSet) -> bool {
        self.0 & other.0 == other.0
    }

    fn len(self) -> u32 {
        self.0.count_ones()
    }
}

fn bit(mode: &str) -> Option<u8> {
    MODES.iter().position(|name| *name == mode).map(|i| 1 << i)
}

impl Ord for AccessModeSet {
    fn cmp(&self, other: &AccessModeSet) -> Ordering {
        (self.len(), self.0).cmp(&(other.len(), other.0))
    }
}

impl PartialOrd for AccessModeSet {
    fn partial_cmp(&self, other: &AccessModeSet) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(list: &[&str]) -> Vec<String> {
        list.iter().map(|m| m.to_string()).collect()
    }

    fn check(offered: &[&str], requested: &[&str], expected: bool) {
        let requested = AccessModeSet::requested(&modes(requested)).unwrap();
        let covered = AccessModeSet::offered(&modes(offered)).contains_all(requested);
        assert_eq!(covered, expected, "{offered:?} offers {requested:?}");
    }

    #[test]
    fn a_volume_covers_a_claim_offering_every_requested_mode() {
        let cases: [(&[&str], &[&str], bool); 7] = [
            (&["ReadWriteOnce"], &["ReadWriteOnce"], true),
            (&["ReadWriteOnce", "ReadOnlyMany"], &["ReadWriteOnce"], true),
            (&["ReadOnlyMany"], &["ReadWriteOnce"], false),
            (
                &["ReadWriteOnce"],
                &["ReadWriteMany", "ReadWriteOnce"],
                false,
            ),
            (
                &["ReadWriteMany", "ReadWriteOnce"],
                &["ReadWriteOnce", "ReadWriteMany", "ReadWriteOnce"],
                true,
            ),
            (&["Bogus", "ReadWriteOnce"], &["ReadWriteOnce"], true),
            (&[], &[], true),
        ];
        for (offered, requested, expected) in cases {
            check(offered, requested, expected);
        }
    }

    #[test]
    fn claims_with_unknown_modes_request_nothing_offerable() {
        assert_eq!(AccessModeSet::requested(&modes(&["Bogus"])), None);
    }

    #[test]
    fn buckets_come_fewest_modes_first() {
        let sets: Vec<AccessModeSet> = AccessModeSet::all_by_size().collect();
        assert_eq!(sets.len(), 16);
        let sizes: Vec<u32> = sets.iter().map(|s| s.len()).collect();
        assert_eq!(sizes, [0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4]);
        let rwo = AccessModeSet::requested(&modes(&["ReadWriteOnce"])).unwrap();
        assert_eq!(sets[1], rwo);
    }
}
