//! The SIGSEGV handler's table of allocations whose page state faults change (guarded or
//! signal-watched ones): a persistent (path-copying) AVL tree keyed by allocation base.
//!
//! A version of the table is immutable. A change builds a new version that copies only the
//! nodes on the path from the root to the changed key (and the few a rebalancing rotation
//! touches) — O(log n) new nodes — and shares every other subtree with the previous version
//! through `Arc`s. `engine::fault` publishes each version through a
//! [`SnapshotCell`](crate::engine::snapshot::SnapshotCell), so:
//!
//! * the handler's lookup ([`FaultTable::floor`]) is a loop of plain loads down one path: no
//!   lock, no allocation, no reference-count change, no recursion;
//! * a version is dropped only when its snapshot is freed, i.e. two epochs after it was
//!   replaced, when no reader can still be inside it; dropping it frees only the nodes whose
//!   last owner it was — nodes that a newer version shares have further `Arc` owners and
//!   stay. Nodes are never dropped by a reader (the handler only borrows).
//!
//! Cost: insert, replace and remove are O(log n) time and allocation; lookup O(log n); the
//! tree's height is at most ~1.44 log2(n + 2) (under 30 for a million entries), which also
//! bounds the recursion of changes and of drops.

use crate::os::linux::metaheap::MetaArc as Arc;

type Link<V> = Option<Arc<Node<V>>>;

struct Node<V> {
    key: usize,
    value: V,
    left: Link<V>,
    right: Link<V>,
    /// Height of the subtree rooted here (a leaf is 1).
    height: u8,
}

/// An immutable ordered map from `usize` keys to `V`s; changes return a new version sharing
/// all unchanged subtrees with this one. Cloning is O(1).
pub(crate) struct FaultTable<V> {
    root: Link<V>,
}

impl<V> Clone for FaultTable<V> {
    fn clone(&self) -> Self {
        FaultTable {
            root: self.root.clone(),
        }
    }
}

impl<V> Default for FaultTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

fn height<V>(l: &Link<V>) -> u8 {
    l.as_ref().map_or(0, |n| n.height)
}

fn node<V>(key: usize, value: V, left: Link<V>, right: Link<V>) -> Arc<Node<V>> {
    let height = 1 + height(&left).max(height(&right));
    Arc::new(Node {
        key,
        value,
        left,
        right,
        height,
    })
}

/// A node over `left` and `right`, whose heights differ by at most 2 (after one insertion or
/// removal below), rotated back into AVL balance.
fn balanced<V: Clone>(key: usize, value: V, left: Link<V>, right: Link<V>) -> Arc<Node<V>> {
    let (hl, hr) = (height(&left), height(&right));
    if hl > hr + 1 {
        let l = left.as_ref().expect("left is the higher side");
        if height(&l.left) >= height(&l.right) {
            node(
                l.key,
                l.value.clone(),
                l.left.clone(),
                Some(node(key, value, l.right.clone(), right)),
            )
        } else {
            let lr = l.right.as_ref().expect("left's right is its higher side");
            node(
                lr.key,
                lr.value.clone(),
                Some(node(
                    l.key,
                    l.value.clone(),
                    l.left.clone(),
                    lr.left.clone(),
                )),
                Some(node(key, value, lr.right.clone(), right)),
            )
        }
    } else if hr > hl + 1 {
        let r = right.as_ref().expect("right is the higher side");
        if height(&r.right) >= height(&r.left) {
            node(
                r.key,
                r.value.clone(),
                Some(node(key, value, left, r.left.clone())),
                r.right.clone(),
            )
        } else {
            let rl = r.left.as_ref().expect("right's left is its higher side");
            node(
                rl.key,
                rl.value.clone(),
                Some(node(key, value, left, rl.left.clone())),
                Some(node(
                    r.key,
                    r.value.clone(),
                    rl.right.clone(),
                    r.right.clone(),
                )),
            )
        }
    } else {
        node(key, value, left, right)
    }
}

/// `link` with `key` set to `value`.
fn insert<V: Clone>(link: &Link<V>, key: usize, value: V) -> Arc<Node<V>> {
    let Some(n) = link else {
        return node(key, value, None, None);
    };
    if key < n.key {
        let l = insert(&n.left, key, value);
        balanced(n.key, n.value.clone(), Some(l), n.right.clone())
    } else if key > n.key {
        let r = insert(&n.right, key, value);
        balanced(n.key, n.value.clone(), n.left.clone(), Some(r))
    } else {
        node(key, value, n.left.clone(), n.right.clone())
    }
}

/// `n` without its least entry, and that entry.
fn remove_min<V: Clone>(n: &Arc<Node<V>>) -> (Link<V>, usize, V) {
    match &n.left {
        None => (n.right.clone(), n.key, n.value.clone()),
        Some(l) => {
            let (l, k, v) = remove_min(l);
            let t = balanced(n.key, n.value.clone(), l, n.right.clone());
            (Some(t), k, v)
        }
    }
}

/// `link` without `key`, and the removed value (`None`: `key` is absent).
fn remove<V: Clone>(link: &Link<V>, key: usize) -> Option<(Link<V>, V)> {
    let n = link.as_ref()?;
    if key < n.key {
        let (l, v) = remove(&n.left, key)?;
        Some((
            Some(balanced(n.key, n.value.clone(), l, n.right.clone())),
            v,
        ))
    } else if key > n.key {
        let (r, v) = remove(&n.right, key)?;
        Some((Some(balanced(n.key, n.value.clone(), n.left.clone(), r)), v))
    } else {
        let rest = match (&n.left, &n.right) {
            (None, r) => r.clone(),
            (l, None) => l.clone(),
            (Some(_), Some(r)) => {
                let (r, k, v) = remove_min(r);
                Some(balanced(k, v, n.left.clone(), r))
            }
        };
        Some((rest, n.value.clone()))
    }
}

impl<V> FaultTable<V> {
    /// The empty table.
    pub(crate) const fn new() -> Self {
        FaultTable { root: None }
    }

    /// The entry with the greatest key `<= at`.
    ///
    /// Async-signal-safe: a bounded loop of loads through borrowed nodes — no allocation, no
    /// lock, no reference-count change, no recursion.
    pub(crate) fn floor(&self, at: usize) -> Option<(usize, &V)> {
        let mut best = None;
        let mut cur = self.root.as_deref();
        while let Some(n) = cur {
            if n.key <= at {
                best = Some((n.key, &n.value));
                cur = n.right.as_deref();
            } else {
                cur = n.left.as_deref();
            }
        }
        best
    }

    /// The value at `key`.
    pub(crate) fn get(&self, key: usize) -> Option<&V> {
        self.floor(key).filter(|&(k, _)| k == key).map(|(_, v)| v)
    }

    /// Calls `f` on every value in ascending key order (not for the signal handler: it
    /// recurses, to the tree's height).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&V)) {
        fn walk<V>(l: &Link<V>, f: &mut impl FnMut(&V)) {
            if let Some(n) = l {
                walk(&n.left, f);
                f(&n.value);
                walk(&n.right, f);
            }
        }
        walk(&self.root, &mut f);
    }

    /// The entries in ascending key order.
    #[cfg(test)]
    fn entries(&self) -> Vec<(usize, &V)> {
        fn walk<'a, V>(l: &'a Link<V>, out: &mut Vec<(usize, &'a V)>) {
            if let Some(n) = l {
                walk(&n.left, out);
                out.push((n.key, &n.value));
                walk(&n.right, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Number of entries (O(n)).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

impl<V: Clone> FaultTable<V> {
    /// A new version with `key` mapped to `value` (replacing any entry at `key`).
    pub(crate) fn insert(&self, key: usize, value: V) -> Self {
        FaultTable {
            root: Some(insert(&self.root, key, value)),
        }
    }

    /// A new version without `key`, and the removed value; `None` if `key` is absent.
    pub(crate) fn remove(&self, key: usize) -> Option<(Self, V)> {
        let (root, v) = remove(&self.root, key)?;
        Some((FaultTable { root }, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::SnapshotCell;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    /// Checks order, AVL balance, recorded heights and the length.
    fn check<V>(t: &FaultTable<V>) {
        fn walk<V>(l: &Link<V>, lo: Option<usize>, hi: Option<usize>, count: &mut usize) -> u8 {
            let Some(n) = l else { return 0 };
            *count += 1;
            assert!(lo.is_none_or(|lo| n.key > lo), "order");
            assert!(hi.is_none_or(|hi| n.key < hi), "order");
            let hl = walk(&n.left, lo, Some(n.key), count);
            let hr = walk(&n.right, Some(n.key), hi, count);
            assert!(hl.abs_diff(hr) <= 1, "balance at {}: {hl} vs {hr}", n.key);
            assert_eq!(n.height, 1 + hl.max(hr), "height at {}", n.key);
            n.height
        }
        let mut count = 0;
        walk(&t.root, None, None, &mut count);
        assert_eq!(count, t.len());
    }

    fn same<V: PartialEq + std::fmt::Debug>(t: &FaultTable<V>, m: &BTreeMap<usize, V>) {
        let got: Vec<(usize, &V)> = t.entries();
        let want: Vec<(usize, &V)> = m.iter().map(|(&k, v)| (k, v)).collect();
        assert_eq!(got, want);
    }

    fn nodes<V>(t: &FaultTable<V>) -> HashSet<*const Node<V>> {
        fn walk<V>(l: &Link<V>, out: &mut HashSet<*const Node<V>>) {
            if let Some(n) = l {
                out.insert(Arc::as_ptr(n));
                walk(&n.left, out);
                walk(&n.right, out);
            }
        }
        let mut out = HashSet::new();
        walk(&t.root, &mut out);
        out
    }

    #[test]
    fn insert_floor_get_remove() {
        let t = FaultTable::new();
        assert_eq!(t.floor(usize::MAX), None);
        let t = t
            .insert(0x20000, 'b')
            .insert(0x10000, 'a')
            .insert(0x30000, 'c');
        check(&t);
        assert_eq!(t.len(), 3);
        assert_eq!(t.floor(0xFFFF), None);
        assert_eq!(t.floor(0x10000), Some((0x10000, &'a')));
        assert_eq!(t.floor(0x1FFFF), Some((0x10000, &'a')));
        assert_eq!(t.floor(usize::MAX), Some((0x30000, &'c')));
        assert_eq!(t.get(0x20000), Some(&'b'));
        assert_eq!(t.get(0x20001), None);
        let t2 = t.insert(0x20000, 'B');
        assert_eq!((t2.len(), t2.get(0x20000)), (3, Some(&'B')));
        assert_eq!(t.get(0x20000), Some(&'b'), "the old version is unchanged");
        let (t3, v) = t2.remove(0x10000).unwrap();
        assert_eq!((v, t3.len(), t3.floor(0x1FFFF)), ('a', 2, None));
        assert!(t3.remove(0x10000).is_none());
        check(&t3);
        assert_eq!(t2.len(), 3);
    }

    #[test]
    fn ascending_and_descending_runs_stay_balanced() {
        let mut t = FaultTable::new();
        for i in 0..10_000usize {
            t = t.insert(i << 16, i);
        }
        check(&t);
        // AVL: height <= 1.44 log2(n + 2).
        assert!(t.root.as_ref().unwrap().height <= 20);
        for i in (0..10_000usize).rev().step_by(2) {
            t = t.remove(i << 16).unwrap().0;
        }
        check(&t);
        assert_eq!(t.len(), 5_000);
        assert_eq!(t.floor((9_999 << 16) + 5), Some((9_998 << 16, &9_998)));
    }

    #[test]
    fn a_change_copies_only_a_path() {
        let mut t = FaultTable::new();
        for i in 0..4096usize {
            t = t.insert(i.wrapping_mul(0x9E37_79B9) % 100_003, i);
        }
        let height = usize::from(t.root.as_ref().unwrap().height);
        let old = nodes(&t);
        for key in [0, 7, 50_000, 100_002, 100_500] {
            let t2 = t.insert(key, 0);
            let fresh = nodes(&t2).difference(&old).count();
            assert!(fresh <= height + 3, "insert {key}: {fresh} new nodes");
            if let Some((t3, _)) = t.remove(t.floor(key).map_or(0, |(k, _)| k)) {
                let fresh = nodes(&t3).difference(&old).count();
                assert!(
                    fresh <= 2 * height + 2,
                    "remove near {key}: {fresh} new nodes"
                );
            }
        }
    }

    #[test]
    fn dropping_versions_frees_exactly_the_unshared_nodes() {
        // Values count their owners: after every intermediate version is gone, each value
        // is owned by the test and by the one table that still lists it.
        let vals: Vec<Arc<usize>> = (0..2000).map(Arc::new).collect();
        let mut versions = vec![FaultTable::new()];
        for (i, v) in vals.iter().enumerate() {
            let t = versions.last().unwrap().insert(i * 3 % 2000, v.clone());
            versions.push(t);
        }
        for i in (0..2000).step_by(3) {
            let t = versions.last().unwrap().remove(i * 3 % 2000).unwrap().0;
            versions.push(t);
        }
        let last = versions.pop().unwrap();
        // Drop the old versions in a scrambled order: shared nodes must survive.
        let mut order: Vec<usize> = (0..versions.len()).collect();
        order.sort_by_key(|&i| (i * 7919) % versions.len());
        let mut slots: Vec<Option<FaultTable<Arc<usize>>>> =
            versions.into_iter().map(Some).collect();
        for i in order {
            slots[i] = None;
            // The newest version stays whole while older ones go (key 1 is 667 * 3 % 2000).
            assert_eq!(last.get(1).map(|v| **v), Some(667));
        }
        check(&last);
        for (i, v) in vals.iter().enumerate() {
            let listed = last.get(i * 3 % 2000).is_some();
            assert_eq!(Arc::strong_count(v), 1 + usize::from(listed), "value {i}");
        }
        drop(last);
        assert!(vals.iter().all(|v| Arc::strong_count(v) == 1));
    }

    #[test]
    fn readers_through_a_snapshot_cell_see_whole_versions() {
        // A writer adds and removes; readers look up keys whose value must be the key, and a
        // key that is always present.
        let cell = Arc::new(SnapshotCell::new(
            FaultTable::new().insert(1 << 40, 1usize << 40),
        ));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (cell, stop) = (cell.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut x = r as usize;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let at = (x >> 20) % (1 << 24);
                        cell.read(|t| {
                            if let Some((k, &v)) = t.floor(at) {
                                assert_eq!(k, v);
                                assert!(k <= at);
                            }
                            assert_eq!(t.get(1 << 40), Some(&(1 << 40)));
                        });
                    }
                })
            })
            .collect();
        let mut t = cell.read(|t| t.clone());
        for i in 0..20_000usize {
            let k = (i.wrapping_mul(0x9E37_79B9) % 4096) << 12;
            t = match t.remove(k) {
                Some((t, _)) => t,
                None => t.insert(k, k),
            };
            cell.publish(t.clone());
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            r.join().unwrap();
        }
        check(&t);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(usize, u32),
        Remove(usize),
        Floor(usize),
        /// Keep this version for a later comparison.
        Keep,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Small keys so removals and replacements hit.
        prop_oneof![
            4 => (0usize..256, any::<u32>()).prop_map(|(k, v)| Op::Insert(k << 16, v)),
            3 => (0usize..256).prop_map(|k| Op::Remove(k << 16)),
            2 => (0usize..(257 << 16)).prop_map(Op::Floor),
            1 => Just(Op::Keep),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec(op(), 1..400)) {
            let mut t = FaultTable::new();
            let mut m = BTreeMap::new();
            let mut kept = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        t = t.insert(k, v);
                        m.insert(k, v);
                    }
                    Op::Remove(k) => {
                        let want = m.remove(&k);
                        match t.remove(k) {
                            Some((t2, v)) => {
                                prop_assert_eq!(Some(v), want);
                                t = t2;
                            }
                            None => prop_assert_eq!(want, None),
                        }
                    }
                    Op::Floor(at) => {
                        let want = m.range(..=at).next_back().map(|(&k, v)| (k, v));
                        prop_assert_eq!(t.floor(at), want);
                    }
                    Op::Keep => kept.push((t.clone(), m.clone())),
                }
                prop_assert_eq!(t.len(), m.len());
            }
            check(&t);
            same(&t, &m);
            // Older versions never changed.
            for (t, m) in &kept {
                check(t);
                same(t, m);
            }
        }
    }
}
