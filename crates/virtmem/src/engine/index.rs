//! The index of an address space's allocations: an ordered map from base address to
//! allocation, as a B-tree whose nodes live on the metadata heap (never the process heap, so
//! a `malloc` built on virtmem can reserve memory). Each node keeps up to 15 keys side by side
//! (two cache lines), so a lookup among 10,000 allocations touches about four nodes. Insert,
//! remove and lookup are O(log n); nothing but nodes is allocated. Iteration keeps its path
//! in a fixed array (a tree of minimum degree 8 holding 2^64 keys is less than 24 deep).

use crate::os::linux::metaheap::{Meta, MetaBox};

/// Minimum degree: every node but the root holds `T - 1 ..= 2T - 1` keys.
const T: usize = 8;
/// Most keys in a node.
const CAP: usize = 2 * T - 1;
/// Deeper than any tree of this degree can be.
const MAX_DEPTH: usize = 32;

type Child<V> = Option<MetaBox<Node<V>>>;

struct Node<V> {
    /// Keys in use: `keys[..len]`, ascending.
    len: usize,
    keys: [usize; CAP],
    vals: [Option<V>; CAP],
    /// `kids[..=len]` for an internal node; all `None` for a leaf.
    kids: [Child<V>; CAP + 1],
}

/// An ordered map from `usize` keys to `V`s.
pub(crate) struct Index<V> {
    root: Child<V>,
    len: usize,
}

impl<V> Node<V> {
    fn new() -> MetaBox<Node<V>> {
        MetaBox::new_in(
            Node {
                len: 0,
                keys: [0; CAP],
                vals: std::array::from_fn(|_| None),
                kids: std::array::from_fn(|_| None),
            },
            Meta,
        )
    }

    fn leaf(&self) -> bool {
        self.kids[0].is_none()
    }

    /// The number of keys below `k` (where `k` is, or would be inserted).
    fn rank(&self, k: usize) -> usize {
        self.keys[..self.len].iter().take_while(|&&x| x < k).count()
    }

    fn kid(&mut self, i: usize) -> &mut Node<V> {
        self.kids[i].as_deref_mut().expect("an internal node has len + 1 children")
    }

    /// Inserts key `k` and value `v` at position `i` (and `right` as child `i + 1`).
    fn insert_at(&mut self, i: usize, k: usize, v: V, right: Child<V>) {
        debug_assert!(self.len < CAP);
        self.keys.copy_within(i..self.len, i + 1);
        self.keys[i] = k;
        self.vals[i..=self.len].rotate_right(1);
        self.vals[i] = Some(v);
        self.kids[i + 1..=self.len + 1].rotate_right(1);
        self.kids[i + 1] = right;
        self.len += 1;
    }

    /// Removes key `i` (and child `i + 1`); returns them.
    fn remove_at(&mut self, i: usize) -> (usize, V, Child<V>) {
        let k = self.keys[i];
        let v = self.vals[i].take().expect("a key has a value");
        let right = self.kids[i + 1].take();
        self.keys.copy_within(i + 1..self.len, i);
        self.vals[i..self.len].rotate_left(1);
        self.kids[i + 1..=self.len].rotate_left(1);
        self.len -= 1;
        (k, v, right)
    }

    /// Splits the full child `i` around its median, which moves up into `self` at `i`.
    fn split_child(&mut self, i: usize) {
        let mut right = Node::new();
        let kid = self.kid(i);
        debug_assert_eq!(kid.len, CAP);
        right.len = T - 1;
        right.keys[..T - 1].copy_from_slice(&kid.keys[T..]);
        for j in 0..T - 1 {
            right.vals[j] = kid.vals[T + j].take();
        }
        for j in 0..T {
            right.kids[j] = kid.kids[T + j].take();
        }
        let mk = kid.keys[T - 1];
        let mv = kid.vals[T - 1].take().expect("the median has a value");
        kid.len = T - 1;
        self.insert_at(i, mk, mv, Some(right));
    }

    /// Merges child `i + 1` and the key between into child `i` (both have `T - 1` keys).
    fn merge(&mut self, i: usize) {
        let (k, v, right) = self.remove_at(i);
        let mut right = right.expect("a right sibling to merge");
        let left = self.kid(i);
        let n = left.len;
        left.keys[n] = k;
        left.vals[n] = Some(v);
        left.keys[n + 1..n + 1 + right.len].copy_from_slice(&right.keys[..right.len]);
        for j in 0..right.len {
            left.vals[n + 1 + j] = right.vals[j].take();
        }
        for j in 0..=right.len {
            left.kids[n + 1 + j] = right.kids[j].take();
        }
        left.len = n + 1 + right.len;
    }

    /// Makes child `i` hold at least `T` keys (borrowing from a sibling or merging); returns
    /// the index of the child that now covers what child `i` covered.
    fn fill(&mut self, i: usize) -> usize {
        if self.kid(i).len >= T {
            return i;
        }
        if i > 0 && self.kid(i - 1).len >= T {
            // Rotate right: the separator comes down, the left sibling's last key goes up.
            let left = self.kid(i - 1);
            let (lk, lv, lkid) = (
                left.keys[left.len - 1],
                left.vals[left.len - 1].take().expect("value"),
                left.kids[left.len].take(),
            );
            left.len -= 1;
            let sk = std::mem::replace(&mut self.keys[i - 1], lk);
            let sv = self.vals[i - 1].replace(lv).expect("value");
            let kid = self.kid(i);
            let first = kid.kids[0].take();
            kid.insert_at(0, sk, sv, first);
            kid.kids[0] = lkid;
            return i;
        }
        if i < self.len && self.kid(i + 1).len >= T {
            // Rotate left: the separator comes down, the right sibling's first key goes up.
            let right = self.kid(i + 1);
            let rkid0 = right.kids[0].take();
            let rk = right.keys[0];
            let rv = right.vals[0].take().expect("value");
            right.keys.copy_within(1..right.len, 0);
            right.vals[..right.len].rotate_left(1);
            right.kids[..=right.len].rotate_left(1);
            right.len -= 1;
            let sk = std::mem::replace(&mut self.keys[i], rk);
            let sv = self.vals[i].replace(rv).expect("value");
            let kid = self.kid(i);
            let n = kid.len;
            kid.insert_at(n, sk, sv, rkid0);
            return i;
        }
        if i < self.len {
            self.merge(i);
            i
        } else {
            self.merge(i - 1);
            i - 1
        }
    }

    /// Removes and returns the largest entry of this subtree (which has at least `T` keys,
    /// or is the root).
    fn pop_max(&mut self) -> (usize, V) {
        if self.leaf() {
            let (k, v, _) = self.remove_at(self.len - 1);
            return (k, v);
        }
        let i = self.fill(self.len);
        self.kid(i).pop_max()
    }

    /// Removes and returns the smallest entry of this subtree (as [`Node::pop_max`]).
    fn pop_min(&mut self) -> (usize, V) {
        if self.leaf() {
            let k = self.keys[0];
            let v = self.vals[0].take().expect("value");
            self.keys.copy_within(1..self.len, 0);
            self.vals[..self.len].rotate_left(1);
            self.len -= 1;
            return (k, v);
        }
        let i = self.fill(0);
        self.kid(i).pop_min()
    }

    /// Removes `k` from this subtree (which has at least `T` keys, or is the root).
    fn remove(&mut self, k: usize) -> Option<V> {
        let i = self.rank(k);
        let here = i < self.len && self.keys[i] == k;
        if self.leaf() {
            return here.then(|| self.remove_at(i).1);
        }
        if here {
            if self.kid(i).len >= T {
                let (pk, pv) = self.kid(i).pop_max();
                self.keys[i] = pk;
                return self.vals[i].replace(pv);
            }
            if self.kid(i + 1).len >= T {
                let (sk, sv) = self.kid(i + 1).pop_min();
                self.keys[i] = sk;
                return self.vals[i].replace(sv);
            }
            self.merge(i);
            return self.kid(i).remove(k);
        }
        let j = self.fill(i);
        self.kid(j).remove(k)
    }
}

impl<V> Index<V> {
    /// An empty map.
    pub(crate) const fn new() -> Index<V> {
        Index { root: None, len: 0 }
    }

    /// Number of entries.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Inserts `value` at `key`, returning the value it replaced.
    pub(crate) fn insert(&mut self, key: usize, value: V) -> Option<V> {
        let root = self.root.get_or_insert_with(Node::new);
        if root.len == CAP {
            let old = std::mem::replace(root, Node::new());
            root.kids[0] = Some(old);
            root.split_child(0);
        }
        let mut node: &mut Node<V> = root;
        loop {
            let mut i = node.rank(key);
            if i < node.len && node.keys[i] == key {
                return node.vals[i].replace(value);
            }
            if node.leaf() {
                node.insert_at(i, key, value, None);
                self.len += 1;
                return None;
            }
            if node.kid(i).len == CAP {
                node.split_child(i);
                if node.keys[i] == key {
                    return node.vals[i].replace(value);
                }
                if key > node.keys[i] {
                    i += 1;
                }
            }
            node = node.kid(i);
        }
    }

    /// Removes the entry at `key`.
    pub(crate) fn remove(&mut self, key: usize) -> Option<V> {
        let root = self.root.as_deref_mut()?;
        let out = root.remove(key);
        if root.len == 0 {
            // The root emptied: its only child (if any) becomes the root.
            self.root = self.root.take().and_then(|mut r| r.kids[0].take());
        }
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    /// The entry with the greatest key ≤ `key`.
    pub(crate) fn floor(&self, key: usize) -> Option<(usize, &V)> {
        let mut at = self.root.as_deref();
        let mut best = None;
        while let Some(n) = at {
            // Keys ≤ `key` in this node: a linear scan over contiguous keys.
            let i = n.keys[..n.len].iter().take_while(|&&x| x <= key).count();
            if i > 0 {
                best = Some((n.keys[i - 1], n.vals[i - 1].as_ref().expect("value")));
            }
            at = n.kids[i].as_deref();
        }
        best
    }

    /// The entry with the greatest key < `key`.
    pub(crate) fn below(&self, key: usize) -> Option<(usize, &V)> {
        key.checked_sub(1).and_then(|k| self.floor(k))
    }

    /// The entries with keys ≥ `start`, ascending.
    pub(crate) fn from(&self, start: usize) -> Iter<'_, V> {
        let mut it = Iter {
            stack: [None; MAX_DEPTH],
            depth: 0,
        };
        let mut at = self.root.as_deref();
        while let Some(n) = at {
            let i = n.rank(start);
            it.stack[it.depth] = Some((n, i));
            it.depth += 1;
            at = n.kids[i].as_deref();
        }
        it
    }
}

impl<V> Default for Index<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// An in-order iterator (see [`Index::from`]): the path of (node, next key) pairs.
pub(crate) struct Iter<'a, V> {
    stack: [Option<(&'a Node<V>, usize)>; MAX_DEPTH],
    depth: usize,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (usize, &'a V);

    fn next(&mut self) -> Option<(usize, &'a V)> {
        loop {
            if self.depth == 0 {
                return None;
            }
            let (n, i) = self.stack[self.depth - 1].expect("pushed");
            if i >= n.len {
                self.depth -= 1;
                continue;
            }
            // Yield key i; next time, descend into child i + 1's leftmost path first.
            self.stack[self.depth - 1] = Some((n, i + 1));
            let mut at = n.kids[i + 1].as_deref();
            while let Some(c) = at {
                self.stack[self.depth] = Some((c, 0));
                self.depth += 1;
                at = c.kids[0].as_deref();
            }
            return Some((n.keys[i], n.vals[i].as_ref().expect("value")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Checks the B-tree invariants below `n`; returns its height.
    fn check<V>(n: &Node<V>, lo: Option<usize>, hi: Option<usize>, root: bool) -> usize {
        assert!(n.len <= CAP);
        assert!(root || n.len >= T - 1, "an underfull node");
        let keys = &n.keys[..n.len];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(keys.iter().all(|&k| lo.is_none_or(|l| k > l) && hi.is_none_or(|h| k < h)));
        assert!((0..n.len).all(|i| n.vals[i].is_some()) && (n.len..CAP).all(|i| n.vals[i].is_none()));
        if n.leaf() {
            assert!(n.kids.iter().all(Option::is_none));
            return 1;
        }
        let mut h = None;
        for i in 0..=n.len {
            let lo = if i == 0 { lo } else { Some(n.keys[i - 1]) };
            let hi = if i == n.len { hi } else { Some(n.keys[i]) };
            let kh = check(n.kids[i].as_deref().expect("child"), lo, hi, false);
            assert!(h.is_none_or(|h| h == kh), "leaves at one depth");
            h = Some(kh);
        }
        assert!(n.kids[n.len + 1..].iter().all(Option::is_none));
        1 + h.unwrap()
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec((0u8..3, 0usize..300), 0..600)) {
            let mut ix = Index::new();
            let mut model = BTreeMap::new();
            for (i, (op, k)) in ops.into_iter().enumerate() {
                match op {
                    0 => prop_assert_eq!(ix.insert(k, i), model.insert(k, i)),
                    1 => prop_assert_eq!(ix.remove(k), model.remove(&k)),
                    _ => {
                        prop_assert_eq!(ix.floor(k).map(|(a, &b)| (a, b)), model.range(..=k).next_back().map(|(&a, &b)| (a, b)));
                        prop_assert_eq!(ix.below(k).map(|(a, &b)| (a, b)), model.range(..k).next_back().map(|(&a, &b)| (a, b)));
                        let got: Vec<_> = ix.from(k).map(|(a, &b)| (a, b)).collect();
                        let want: Vec<_> = model.range(k..).map(|(&a, &b)| (a, b)).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(ix.len(), model.len());
                if let Some(r) = ix.root.as_deref() {
                    check(r, None, None, true);
                    prop_assert!(r.len > 0);
                }
            }
            let got: Vec<_> = ix.from(0).map(|(a, &b)| (a, b)).collect();
            let want: Vec<_> = model.iter().map(|(&a, &b)| (a, b)).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_million_entries() {
        let mut ix = Index::new();
        for k in 0..1_000_000usize {
            ix.insert(k * 65536, k);
        }
        let h = check(ix.root.as_deref().unwrap(), None, None, true);
        assert!(h <= 8, "height {h}");
        assert_eq!(ix.floor(65536 * 5 + 7).map(|(_, &v)| v), Some(5));
        for k in (0..1_000_000usize).step_by(2) {
            assert_eq!(ix.remove(k * 65536), Some(k));
        }
        assert_eq!(ix.len(), 500_000);
        assert_eq!(ix.from(0).count(), 500_000);
        check(ix.root.as_deref().unwrap(), None, None, true);
        for k in (1..1_000_000usize).step_by(2) {
            assert_eq!(ix.remove(k * 65536), Some(k));
        }
        assert!(ix.root.is_none() && ix.len() == 0);
    }
}
