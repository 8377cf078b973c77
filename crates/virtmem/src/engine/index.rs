//! The index of an address space's allocations: an ordered map from base address to
//! allocation, as an AVL tree whose nodes live on the metadata heap (never the process heap,
//! so a `malloc` built on virtmem can reserve memory). Insert, remove and every lookup are
//! O(log n); one node per allocation; nothing else is allocated. Iteration keeps its path in
//! a fixed array (the height of an AVL tree of n < 2^48 nodes is below 70), so it allocates
//! nothing either.

use crate::os::linux::metaheap::{Meta, MetaBox};

type Link<V> = Option<MetaBox<Node<V>>>;

struct Node<V> {
    key: usize,
    value: V,
    left: Link<V>,
    right: Link<V>,
    height: u8,
}

/// An ordered map from `usize` keys to `V`s.
pub(crate) struct Index<V> {
    root: Link<V>,
    len: usize,
}

fn height<V>(l: &Link<V>) -> u8 {
    l.as_ref().map_or(0, |n| n.height)
}

fn fix<V>(n: &mut Node<V>) {
    n.height = 1 + height(&n.left).max(height(&n.right));
}

fn rotate_right<V>(mut n: MetaBox<Node<V>>) -> MetaBox<Node<V>> {
    let mut l = n.left.take().expect("a left child to rotate up");
    n.left = l.right.take();
    fix(&mut n);
    l.right = Some(n);
    fix(&mut l);
    l
}

fn rotate_left<V>(mut n: MetaBox<Node<V>>) -> MetaBox<Node<V>> {
    let mut r = n.right.take().expect("a right child to rotate up");
    n.right = r.left.take();
    fix(&mut n);
    r.left = Some(n);
    fix(&mut r);
    r
}

/// Restores the AVL balance of `n`, whose subtrees differ in height by at most 2.
fn rebalance<V>(mut n: MetaBox<Node<V>>) -> MetaBox<Node<V>> {
    fix(&mut n);
    let (hl, hr) = (height(&n.left), height(&n.right));
    if hl > hr + 1 {
        let l = n.left.as_ref().expect("left is higher");
        if height(&l.left) < height(&l.right) {
            n.left = Some(rotate_left(n.left.take().expect("checked")));
        }
        return rotate_right(n);
    }
    if hr > hl + 1 {
        let r = n.right.as_ref().expect("right is higher");
        if height(&r.right) < height(&r.left) {
            n.right = Some(rotate_right(n.right.take().expect("checked")));
        }
        return rotate_left(n);
    }
    n
}

fn insert<V>(link: Link<V>, key: usize, value: V, old: &mut Option<V>) -> MetaBox<Node<V>> {
    let Some(mut n) = link else {
        return MetaBox::new_in(
            Node {
                key,
                value,
                left: None,
                right: None,
                height: 1,
            },
            Meta,
        );
    };
    if key < n.key {
        n.left = Some(insert(n.left.take(), key, value, old));
    } else if key > n.key {
        n.right = Some(insert(n.right.take(), key, value, old));
    } else {
        *old = Some(std::mem::replace(&mut n.value, value));
        return n;
    }
    rebalance(n)
}

/// Removes the smallest node of a non-empty subtree; returns the rest and that node.
fn take_min<V>(mut n: MetaBox<Node<V>>) -> (Link<V>, MetaBox<Node<V>>) {
    match n.left.take() {
        None => {
            let rest = n.right.take();
            (rest, n)
        }
        Some(l) => {
            let (rest, min) = take_min(l);
            n.left = rest;
            (Some(rebalance(n)), min)
        }
    }
}

fn remove<V>(link: Link<V>, key: usize, out: &mut Option<V>) -> Link<V> {
    let mut n = link?;
    if key < n.key {
        n.left = remove(n.left.take(), key, out);
    } else if key > n.key {
        n.right = remove(n.right.take(), key, out);
    } else {
        let (left, right) = (n.left.take(), n.right.take());
        let Node { value, .. } = MetaBox::into_inner(n);
        *out = Some(value);
        return match (left, right) {
            (None, r) => r,
            (l, None) => l,
            (l, Some(r)) => {
                let (rest, mut m) = take_min(r);
                m.left = l;
                m.right = rest;
                Some(rebalance(m))
            }
        };
    }
    Some(rebalance(n))
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
        let mut old = None;
        self.root = Some(insert(self.root.take(), key, value, &mut old));
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes the entry at `key`.
    pub(crate) fn remove(&mut self, key: usize) -> Option<V> {
        let mut out = None;
        self.root = remove(self.root.take(), key, &mut out);
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
            if n.key <= key {
                best = Some((n.key, &n.value));
                at = n.right.as_deref();
            } else {
                at = n.left.as_deref();
            }
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
            stack: [None; MAX_HEIGHT],
            depth: 0,
        };
        let mut at = self.root.as_deref();
        while let Some(n) = at {
            if n.key >= start {
                it.push(n);
                at = n.left.as_deref();
            } else {
                at = n.right.as_deref();
            }
        }
        it
    }
}

impl<V> Default for Index<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Deeper than any AVL tree that fits in an address space.
const MAX_HEIGHT: usize = 96;

/// An in-order iterator (see [`Index::from`]).
pub(crate) struct Iter<'a, V> {
    stack: [Option<&'a Node<V>>; MAX_HEIGHT],
    depth: usize,
}

impl<'a, V> Iter<'a, V> {
    fn push(&mut self, n: &'a Node<V>) {
        self.stack[self.depth] = Some(n);
        self.depth += 1;
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (usize, &'a V);

    fn next(&mut self) -> Option<(usize, &'a V)> {
        if self.depth == 0 {
            return None;
        }
        self.depth -= 1;
        let n = self.stack[self.depth].take().expect("pushed");
        let mut at = n.right.as_deref();
        while let Some(c) = at {
            self.push(c);
            at = c.left.as_deref();
        }
        Some((n.key, &n.value))
    }
}

impl<V> Drop for Index<V> {
    fn drop(&mut self) {
        // Iteratively, so a degenerate drop never recurses deeply (it cannot: AVL), and so
        // nodes are freed one by one.
        let mut stack: Option<MetaBox<Node<V>>> = self.root.take();
        let mut pending = crate::os::linux::metaheap::MetaVec::new_in(Meta);
        while let Some(mut n) = stack.take().or_else(|| pending.pop()) {
            if let Some(l) = n.left.take() {
                pending.push(l);
            }
            if let Some(r) = n.right.take() {
                pending.push(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn check_balanced<V>(l: &Link<V>, lo: Option<usize>, hi: Option<usize>) -> u8 {
        let Some(n) = l else { return 0 };
        assert!(lo.is_none_or(|lo| n.key > lo) && hi.is_none_or(|hi| n.key < hi));
        let hl = check_balanced(&n.left, lo, Some(n.key));
        let hr = check_balanced(&n.right, Some(n.key), hi);
        assert!(hl.abs_diff(hr) <= 1, "AVL balance");
        assert_eq!(n.height, 1 + hl.max(hr));
        n.height
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec((0u8..3, 0usize..200), 0..400)) {
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
                check_balanced(&ix.root, None, None);
            }
        }
    }

    #[test]
    fn a_million_entries() {
        let mut ix = Index::new();
        for k in 0..1_000_000usize {
            ix.insert(k * 65536, k);
        }
        assert!(height(&ix.root) <= 29);
        assert_eq!(ix.floor(65536 * 5 + 7).map(|(_, &v)| v), Some(5));
        for k in (0..1_000_000usize).step_by(2) {
            ix.remove(k * 65536);
        }
        assert_eq!(ix.len(), 500_000);
        assert_eq!(ix.from(0).count(), 500_000);
    }
}
