//! A segment's free ranges `(start granule, count)`: disjoint, kept in address order in a
//! treap (a binary search tree balanced by random priorities) whose nodes also hold the
//! largest count in their subtree. Every operation — insert, remove, exact and neighbour
//! lookups, and first fit (the lowest range of at least `n` granules) — is O(log n) expected
//! for n ranges, so a fragmented segment costs no more per call than a tidy one. Nodes live in
//! one metadata-heap vector (indices, not pointers; freed nodes are reused), never in the
//! process heap.

use crate::os::linux::metaheap::{meta_vec, MetaVec};

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    start: usize,
    len: usize,
    /// The largest `len` in this subtree.
    max: usize,
    left: u32,
    right: u32,
    prio: u32,
}

/// The free ranges of one segment.
pub(crate) struct FreeRanges {
    nodes: MetaVec<Node>,
    root: u32,
    /// First reusable node (linked through `left`).
    spare: u32,
    count: usize,
    seed: u32,
}

impl FreeRanges {
    /// No ranges.
    pub(crate) fn new() -> FreeRanges {
        FreeRanges {
            nodes: meta_vec(),
            root: NIL,
            spare: NIL,
            count: 0,
            seed: 0x9E37_79B9,
        }
    }

    /// Forgets every range.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.root = NIL;
        self.spare = NIL;
        self.count = 0;
    }

    /// Number of ranges.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn max_of(&self, t: u32) -> usize {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].max
        }
    }

    fn fix(&mut self, t: u32) {
        let n = self.nodes[t as usize];
        let m = n.len.max(self.max_of(n.left)).max(self.max_of(n.right));
        self.nodes[t as usize].max = m;
    }

    /// `(keys < key, keys >= key)`.
    fn split(&mut self, t: u32, key: usize) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let n = self.nodes[t as usize];
        if n.start < key {
            let (a, b) = self.split(n.right, key);
            self.nodes[t as usize].right = a;
            self.fix(t);
            (t, b)
        } else {
            let (a, b) = self.split(n.left, key);
            self.nodes[t as usize].left = b;
            self.fix(t);
            (a, t)
        }
    }

    /// Joins two trees, every key of `a` below every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.nodes[a as usize].right;
            let m = self.merge(r, b);
            self.nodes[a as usize].right = m;
            self.fix(a);
            a
        } else {
            let l = self.nodes[b as usize].left;
            let m = self.merge(a, l);
            self.nodes[b as usize].left = m;
            self.fix(b);
            b
        }
    }

    fn next_prio(&mut self) -> u32 {
        // xorshift32: balance needs only that priorities look independent of the keys.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    /// Adds `[start, start + len)` (disjoint from every range; `len > 0`).
    pub(crate) fn insert(&mut self, start: usize, len: usize) {
        let node = Node {
            start,
            len,
            max: len,
            left: NIL,
            right: NIL,
            prio: self.next_prio(),
        };
        let k = if self.spare != NIL {
            let k = self.spare;
            self.spare = self.nodes[k as usize].left;
            self.nodes[k as usize] = node;
            k
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        let (a, b) = self.split(self.root, start);
        let a = self.merge(a, k);
        self.root = self.merge(a, b);
        self.count += 1;
    }

    /// Removes the range starting at `start`; its length.
    pub(crate) fn remove(&mut self, start: usize) -> Option<usize> {
        let (a, b) = self.split(self.root, start);
        let (m, c) = self.split(b, start + 1);
        let len = (m != NIL).then(|| self.nodes[m as usize].len);
        if m != NIL {
            self.nodes[m as usize].left = self.spare;
            self.spare = m;
            self.count -= 1;
        }
        self.root = self.merge(a, c);
        len
    }

    /// Replaces the range starting at `start` by `[to, to + len)`, which must stay between
    /// its neighbours (so the tree's order holds: the node changes in place, no rebalancing);
    /// whether there is one. Carving a block off the front of a range, or a freed block
    /// joining the range after it, is this.
    pub(crate) fn reshape(&mut self, start: usize, to: usize, len: usize) -> bool {
        self.reshape_in(self.root, start, to, len)
    }

    fn reshape_in(&mut self, t: u32, start: usize, to: usize, len: usize) -> bool {
        if t == NIL {
            return false;
        }
        let n = self.nodes[t as usize];
        let found = if start == n.start {
            let node = &mut self.nodes[t as usize];
            node.start = to;
            node.len = len;
            true
        } else if start < n.start {
            self.reshape_in(n.left, start, to, len)
        } else {
            self.reshape_in(n.right, start, to, len)
        };
        if found {
            self.fix(t);
        }
        found
    }

    /// Takes `n` granules off the front of the lowest range of at least `n` (first fit), in
    /// one descent; removes the range if it has exactly `n`. Returns the range as it was.
    pub(crate) fn take_first_fit(&mut self, n: usize) -> Option<(usize, usize)> {
        if self.max_of(self.root) < n {
            return None;
        }
        let (g, len) = self.carve_in(self.root, n);
        if len == n {
            self.remove(g);
        }
        Some((g, len))
    }

    /// [`FreeRanges::take_first_fit`] below `t` (whose subtree has a fit): the first fit as
    /// it was, carved in place unless it is exactly `n` long; `max` fixed on the way back.
    fn carve_in(&mut self, t: u32, n: usize) -> (usize, usize) {
        let node = self.nodes[t as usize];
        let r = if self.max_of(node.left) >= n {
            self.carve_in(node.left, n)
        } else if node.len >= n {
            if node.len > n {
                // The start moves up inside the range: the order holds.
                self.nodes[t as usize].start = node.start + n;
                self.nodes[t as usize].len = node.len - n;
            }
            (node.start, node.len)
        } else {
            self.carve_in(node.right, n)
        };
        self.fix(t);
        r
    }

    /// Changes the range with the greatest start `<= g` to `f(start, len)`, which must stay
    /// between its neighbours, in one descent. Returns the range as it was.
    pub(crate) fn update_at_or_before(
        &mut self,
        g: usize,
        f: impl FnOnce(usize, usize) -> (usize, usize),
    ) -> Option<(usize, usize)> {
        self.update_in(self.root, g, &mut Some(f))
    }

    fn update_in<F: FnOnce(usize, usize) -> (usize, usize)>(
        &mut self,
        t: u32,
        g: usize,
        f: &mut Option<F>,
    ) -> Option<(usize, usize)> {
        if t == NIL {
            return None;
        }
        let node = self.nodes[t as usize];
        let r = if node.start <= g {
            // This node, unless its right subtree has a greater start <= g.
            self.update_in(node.right, g, f).or_else(|| {
                let (s1, l1) = (f.take().expect("applied once"))(node.start, node.len);
                self.nodes[t as usize].start = s1;
                self.nodes[t as usize].len = l1;
                Some((node.start, node.len))
            })
        } else {
            self.update_in(node.left, g, f)
        };
        if r.is_some() {
            self.fix(t);
        }
        r
    }

    /// Changes the range starting exactly at `start` to `f(len)` (a new start and length that
    /// keep it between its neighbours), in one descent. Returns its old length.
    pub(crate) fn update(&mut self, start: usize, f: impl FnOnce(usize) -> (usize, usize)) -> Option<usize> {
        let mut old = None;
        self.update_at_or_before(start, |s, l| {
            if s == start {
                old = Some(l);
                f(l)
            } else {
                (s, l)
            }
        });
        old
    }

    /// The length of the range starting at `start`.
    pub(crate) fn get(&self, start: usize) -> Option<usize> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            if start == n.start {
                return Some(n.len);
            }
            t = if start < n.start { n.left } else { n.right };
        }
        None
    }

    /// The range with the greatest start `<= g`.
    pub(crate) fn at_or_before(&self, g: usize) -> Option<(usize, usize)> {
        let (mut t, mut best) = (self.root, None);
        while t != NIL {
            let n = &self.nodes[t as usize];
            if n.start <= g {
                best = Some((n.start, n.len));
                t = n.right;
            } else {
                t = n.left;
            }
        }
        best
    }

    /// The range with the least start `>= g`.
    pub(crate) fn at_or_after(&self, g: usize) -> Option<(usize, usize)> {
        let (mut t, mut best) = (self.root, None);
        while t != NIL {
            let n = &self.nodes[t as usize];
            if n.start >= g {
                best = Some((n.start, n.len));
                t = n.left;
            } else {
                t = n.right;
            }
        }
        best
    }

    /// The lowest range of at least `n` granules (first fit), unchanged (the tests' check of
    /// [`FreeRanges::take_first_fit`]).
    #[cfg(test)]
    pub(crate) fn first_fit(&self, n: usize) -> Option<(usize, usize)> {
        let mut t = self.root;
        if self.max_of(t) < n {
            return None;
        }
        loop {
            let node = &self.nodes[t as usize];
            if self.max_of(node.left) >= n {
                t = node.left;
            } else if node.len >= n {
                return Some((node.start, node.len));
            } else {
                t = node.right;
            }
        }
    }

    /// The highest range.
    pub(crate) fn last(&self) -> Option<(usize, usize)> {
        let mut t = self.root;
        let mut best = None;
        while t != NIL {
            let n = &self.nodes[t as usize];
            best = Some((n.start, n.len));
            t = n.right;
        }
        best
    }

    /// The ranges in address order (each step a lookup: O(log n)).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut next = self.at_or_after(0);
        std::iter::from_fn(move || {
            let r = next?;
            next = self.at_or_after(r.0 + 1);
            Some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Random inserts and removes against a `BTreeMap`, every query checked.
    #[test]
    fn matches_a_sorted_map() {
        let mut f = FreeRanges::new();
        let mut m = BTreeMap::<usize, usize>::new();
        let mut x = 12345u64;
        let mut rnd = |k: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % k
        };
        for step in 0..20_000 {
            let g = rnd(4000) as usize * 4;
            let len = 1 + rnd(3) as usize;
            // Ranges stay disjoint, as a segment's are (the in-place changes rely on it).
            let fits = m.range(..=g).next_back().is_none_or(|(&a, &b)| a + b <= g)
                && m.range(g..).next().is_none_or(|(&a, _)| a >= g + len);
            if rnd(3) > 0 && fits {
                f.insert(g, len);
                m.insert(g, len);
            } else if rnd(4) == 0 && m.contains_key(&g) && !m.contains_key(&(g + 1)) {
                // Keys are multiples of 4, some moved up by one: a move keeps the order.
                let len = 1 + rnd(2) as usize;
                let to = g + rnd(2) as usize;
                assert!(f.reshape(g, to, len));
                m.remove(&g);
                m.insert(to, len);
            } else {
                assert_eq!(f.remove(g), m.remove(&g));
            }
            assert_eq!(f.len(), m.len());
            let q = rnd(16_100) as usize;
            assert_eq!(f.get(q), m.get(&q).copied());
            assert_eq!(
                f.at_or_before(q),
                m.range(..=q).next_back().map(|(&a, &b)| (a, b))
            );
            assert_eq!(f.at_or_after(q), m.range(q..).next().map(|(&a, &b)| (a, b)));
            let n = 1 + rnd(3) as usize;
            assert_eq!(
                f.first_fit(n),
                m.iter().find(|r| *r.1 >= n).map(|(&a, &b)| (a, b))
            );
            assert_eq!(f.last(), m.iter().next_back().map(|(&a, &b)| (a, b)));
            match rnd(4) {
                0 => {
                    // First fit carved in one descent.
                    let want = m.iter().find(|r| *r.1 >= n).map(|(&a, &b)| (a, b));
                    assert_eq!(f.take_first_fit(n), want);
                    if let Some((a, b)) = want {
                        m.remove(&a);
                        if b > n {
                            m.insert(a + n, b - n);
                        }
                    }
                }
                1 => {
                    // The range at or before `q` grows by one where there is room.
                    let before = m.range(..=q).next_back().map(|(&a, &b)| (a, b));
                    let room = |a: usize, b: usize| m.range(a + 1..).next().is_none_or(|r| *r.0 > a + b + 1);
                    let got = f.update_at_or_before(q, |a, b| if room(a, b) { (a, b + 1) } else { (a, b) });
                    assert_eq!(got, before);
                    if let Some((a, b)) = before {
                        if room(a, b) {
                            m.insert(a, b + 1);
                        }
                    }
                }
                2 => {
                    // The range starting exactly at `q`, if any, loses its first granule.
                    let at = m.get(&q).copied();
                    let got = f.update(q, |b| if b > 1 { (q + 1, b - 1) } else { (q, b) });
                    assert_eq!(got, at);
                    if let Some(b) = at {
                        if b > 1 {
                            m.remove(&q);
                            m.insert(q + 1, b - 1);
                        }
                    }
                }
                _ => {}
            }
            assert_eq!(f.len(), m.len());
            assert_eq!(
                f.first_fit(n),
                m.iter().find(|r| *r.1 >= n).map(|(&a, &b)| (a, b)),
                "max kept right"
            );
            if step % 1000 == 0 {
                assert!(f.iter().eq(m.iter().map(|(&a, &b)| (a, b))));
            }
        }
        f.clear();
        assert_eq!((f.len(), f.first_fit(1), f.last()), (0, None, None));
    }

    /// 10^5 ranges inserted in address order (the worst case for an unbalanced tree) keep every
    /// operation fast: the tree stays shallow.
    #[test]
    fn sorted_inserts_stay_balanced() {
        let mut f = FreeRanges::new();
        for k in 0..100_000 {
            f.insert(k * 2, 1);
        }
        fn depth(f: &FreeRanges, t: u32) -> usize {
            if t == NIL {
                0
            } else {
                let n = f.nodes[t as usize];
                1 + depth(f, n.left).max(depth(f, n.right))
            }
        }
        assert!(depth(&f, f.root) < 60, "depth {}", depth(&f, f.root));
        f.insert(1_000_000, 5);
        assert_eq!(f.first_fit(2), Some((1_000_000, 5)));
    }
}
