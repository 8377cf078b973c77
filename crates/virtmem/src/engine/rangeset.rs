//! A set of disjoint address ranges (used for locks on memory virtmem did not allocate).

use std::collections::BTreeMap;

/// Disjoint, non-adjacent `[start, end)` ranges keyed by start.
#[derive(Default, Debug)]
pub(crate) struct RangeSet {
    map: BTreeMap<usize, usize>,
}

impl RangeSet {
    /// Adds `[start, end)`, merging with overlapping or adjacent ranges.
    pub(crate) fn insert(&mut self, mut start: usize, mut end: usize) {
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
            }
        }
        let covered: Vec<usize> = self.map.range(start..=end).map(|(&s, _)| s).collect();
        for s in covered {
            let e = self.map.remove(&s).unwrap_or(s);
            end = end.max(e);
        }
        self.map.insert(start, end);
    }

    /// Removes `[start, end)`.
    pub(crate) fn remove(&mut self, start: usize, end: usize) {
        let mut touched: Vec<(usize, usize)> = Vec::new();
        if let Some((&s, &e)) = self.map.range(..start).next_back() {
            if e > start {
                touched.push((s, e));
            }
        }
        touched.extend(self.map.range(start..end).map(|(&s, &e)| (s, e)));
        for (s, e) in touched {
            self.map.remove(&s);
            if s < start {
                self.map.insert(s, start);
            }
            if e > end {
                self.map.insert(end, e);
            }
        }
    }

    /// Whether every byte of `[start, end)` is in the set.
    pub(crate) fn contains(&self, start: usize, end: usize) -> bool {
        match self.map.range(..=start).next_back() {
            Some((_, &e)) => e >= end,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_contains() {
        let mut s = RangeSet::default();
        s.insert(10, 20);
        s.insert(20, 30);
        s.insert(40, 50);
        assert!(s.contains(10, 30));
        assert!(!s.contains(10, 41));
        s.remove(15, 45);
        assert!(s.contains(10, 15));
        assert!(!s.contains(14, 16));
        assert!(s.contains(45, 50));
        s.insert(0, 100);
        assert!(s.contains(0, 100));
    }
}
