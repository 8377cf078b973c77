//! The lock-free lookup side of the index: which allocation holds an address, in a handful
//! of loads whatever the number of allocations.
//!
//! A sparse radix tree keyed on the allocation-granularity unit (the *granule*, 64 KiB on
//! Windows), shaped like a page table: 64 slots per node, six key bits per level (a 47-bit
//! address space with 64 KiB granules is six levels; the top ones stay in cache). A slot
//! holds nothing, a child node, an allocation that covers its **whole** block (so a 1 TiB
//! reservation is a few dozen slots, not 2^24), or [`SHARED`] for a granule two allocations
//! share (only possible where allocations are not granule-aligned: the reader then asks the
//! ordered index). The ordered B-tree (`index.rs`) stays the authority for placement and
//! iteration; this tree mirrors it and is changed only by the holder of the index's write
//! lock, right after the B-tree.
//!
//! Readers walk it without locks, pinned in the epoch of [`super::snapshot`]; nodes that
//! empty out are retired through the same epochs, and so are the allocations removed from
//! the index ([`super::Space`] keeps the B-tree's reference alive until then). Empty nodes are
//! kept linked for a while (up to [`KEEP_EMPTY`]): an allocation released and made again at
//! the same place — the common cycle — neither frees nor allocates a node.

use super::snapshot::retire_raw;
use crate::os::linux::metaheap::{Meta, MetaBox, MetaVec};
use std::sync::atomic::{AtomicUsize, Ordering::Acquire, Ordering::Release, Ordering::SeqCst};

/// Key bits per level.
const BITS: u32 = 6;
/// Slots per node.
const FANOUT: usize = 1 << BITS;
/// Tag of a slot holding a child node.
const CHILD: usize = 1;
/// A granule that several allocations share: ask the ordered index.
pub(crate) const SHARED: usize = 2;
/// Empty nodes kept linked before a sweep frees them.
const KEEP_EMPTY: usize = 64;

/// One node: `FANOUT` slots (512 bytes: one metadata-heap size class, eight cache lines).
struct Node {
    slots: [AtomicUsize; FANOUT],
}

impl Node {
    /// A node whose every slot holds `fill`.
    fn new(fill: usize) -> *mut Node {
        MetaBox::into_raw(MetaBox::new_in(
            Node {
                slots: std::array::from_fn(|_| AtomicUsize::new(fill)),
            },
            Meta,
        ))
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.load(Acquire) == 0)
    }
}

/// Frees a retired node.
///
/// # Safety
/// `p` is a node pointer no reader can reach any more, passed once; its slots hold no child.
unsafe fn drop_node(p: *mut ()) {
    // SAFETY: the caller's contract.
    drop(unsafe { MetaBox::from_raw_in(p.cast::<Node>(), Meta) });
}

/// Nodes one `set` left empty (at most two per level: a range is partial only at its
/// ends), kept on the stack: `(node, level shift, first granule)`.
#[derive(Default)]
struct Emptied {
    items: [(usize, u32, usize); 24],
    len: usize,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// No allocation overlaps the address's granule.
    Nothing,
    /// The granule belongs to this allocation (a raw `MetaArc` block; the address may still
    /// lie past the allocation's end, in the unused tail of its last granule).
    Block(*const ()),
    /// Several allocations share the granule: ask the ordered index.
    Shared,
}

/// The radix tree. Readers: [`Radix::lookup`] while pinned. Writers: everything else, only
/// while holding the index's write lock.
pub(crate) struct Radix {
    /// log2 of the granularity.
    shift: u32,
    /// Granules `0..limit` are indexed (the address space's).
    limit: usize,
    /// Key bits below the root's slot index.
    top: u32,
    root: *mut Node,
    /// Nodes that emptied and are still linked: `(node, level shift, first granule)`.
    empty: std::sync::Mutex<MetaVec<(usize, u32, usize)>>,
}

// SAFETY: the tree is shared by design: slots are atomics, nodes are freed only through the
// epoch scheme, and the writer-side list is behind a mutex.
unsafe impl Send for Radix {}
// SAFETY: as above.
unsafe impl Sync for Radix {}

impl Radix {
    /// A tree for addresses up to `max_address` with granules of `granularity` bytes (a
    /// power of two).
    pub(crate) fn new(granularity: usize, max_address: usize) -> Radix {
        let shift = granularity.trailing_zeros();
        let limit = (max_address >> shift) + 1;
        let key_bits = usize::BITS - (limit - 1).leading_zeros();
        let levels = key_bits.div_ceil(BITS).max(1);
        Radix {
            shift,
            limit,
            top: (levels - 1) * BITS,
            root: Node::new(0),
            empty: std::sync::Mutex::new(MetaVec::new_in(Meta)),
        }
    }

    /// The entry for `addr`. Lock-free and allocation-free; the caller must be pinned for
    /// as long as it uses a [`Found::Block`] (see [`super::snapshot::pin`]).
    #[inline]
    pub(crate) fn lookup(&self, addr: usize) -> Found {
        let g = addr >> self.shift;
        if g >= self.limit {
            return Found::Nothing;
        }
        let mut node = self.root;
        let mut s = self.top;
        loop {
            // SAFETY: `node` is the root or a child loaded from a slot while pinned: nodes
            // are freed only after every reader pinned when they were unlinked has left.
            // SeqCst (a plain load on x86): ordered after the pin's read-modify-write, as
            // the epoch argument needs on weaker architectures too.
            let v = unsafe { &*node }.slots[(g >> s) & (FANOUT - 1)].load(SeqCst);
            match v {
                0 => return Found::Nothing,
                SHARED => return Found::Shared,
                v if v & CHILD != 0 => {
                    node = (v & !CHILD) as *mut Node;
                    s -= BITS;
                }
                v => return Found::Block(v as *const ()),
            }
        }
    }

    /// Makes every granule of `[lo, hi)` read `value` (a block pointer, 0 or [`SHARED`]).
    /// Writers only.
    pub(crate) fn set(&self, lo: usize, hi: usize, value: usize) {
        let hi = hi.min(self.limit);
        if lo >= hi {
            return;
        }
        let mut emptied = Emptied::default();
        // SAFETY: the root lives as long as the tree.
        self.set_in(unsafe { &*self.root }, self.top, 0, lo, hi, value, &mut emptied);
        if emptied.len > 0 {
            let mut list = self.empty.lock().unwrap_or_else(|e| e.into_inner());
            for &e in &emptied.items[..emptied.len] {
                if !list.contains(&e) {
                    list.push(e);
                }
            }
            if list.len() > KEEP_EMPTY {
                self.sweep(&mut list);
            }
        }
    }

    /// log2 of the granularity.
    pub(crate) fn shift(&self) -> u32 {
        self.shift
    }

    /// The granule range of bytes `[start, end)`: the granules wholly inside it, and the
    /// first and last granules it touches.
    pub(crate) fn granules(&self, start: usize, end: usize) -> (usize, usize, usize, usize) {
        let g = 1usize << self.shift;
        let full_lo = start.div_ceil(g);
        let full_hi = end >> self.shift;
        (full_lo, full_hi, start >> self.shift, (end - 1) >> self.shift)
    }

    /// `set` within `node`, whose slots cover granules from `base` in blocks of 2^`s`.
    #[allow(clippy::too_many_arguments)]
    fn set_in(
        &self,
        node: &Node,
        s: u32,
        base: usize,
        lo: usize,
        hi: usize,
        value: usize,
        emptied: &mut Emptied,
    ) {
        let mask = (1usize << s) - 1;
        let first = (lo - base) >> s;
        let last = (hi - 1 - base) >> s;
        // Slots `first..=last`; only the first and the last can be partial.
        let head_partial = (lo - base) & mask != 0;
        let tail_partial = (hi - base) & mask != 0;
        if first == last {
            if head_partial || tail_partial {
                self.set_part(node, first, s, base, lo, hi, value, emptied);
            } else {
                self.set_whole(&node.slots[first], value);
            }
            return;
        }
        let mut from = first;
        if head_partial {
            self.set_part(node, first, s, base, lo, hi, value, emptied);
            from += 1;
        }
        let to = if tail_partial { last } else { last + 1 };
        for slot in &node.slots[from..to] {
            self.set_whole(slot, value);
        }
        if tail_partial {
            self.set_part(node, last, s, base, lo, hi, value, emptied);
        }
    }

    /// Sets a slot whose whole block gets `value`.
    #[inline]
    fn set_whole(&self, slot: &AtomicUsize, value: usize) {
        // One writer at a time (the index's write lock): a load and a store, no
        // read-modify-write.
        let old = slot.load(Acquire);
        if old == value {
            return;
        }
        slot.store(value, Release);
        if old & CHILD != 0 && old != SHARED {
            self.retire_subtree(old & !CHILD);
        }
    }

    /// Sets the part `[lo, hi)` of slot `i`'s block: goes down, pushing a whole-block value
    /// into a new child.
    #[allow(clippy::too_many_arguments)]
    fn set_part(
        &self,
        node: &Node,
        i: usize,
        s: u32,
        base: usize,
        lo: usize,
        hi: usize,
        value: usize,
        emptied: &mut Emptied,
    ) {
        let b_lo = base + (i << s);
        let b_hi = b_lo + (1usize << s);
        let slot = &node.slots[i];
        let cur = slot.load(Acquire);
        let child = if cur & CHILD != 0 && cur != SHARED {
            cur & !CHILD
        } else {
            if cur == value {
                return;
            }
            let c = Node::new(cur) as usize;
            slot.store(c | CHILD, Release);
            c
        };
        // SAFETY: a child we hold linked; only writers (us) unlink nodes.
        let c = unsafe { &*(child as *const Node) };
        self.set_in(c, s - BITS, b_lo, lo.max(b_lo), hi.min(b_hi), value, emptied);
        if value == 0 && c.is_empty() && emptied.len < emptied.items.len() {
            emptied.items[emptied.len] = (child, s - BITS, b_lo);
            emptied.len += 1;
        }
    }

    /// Retires a node unlinked from the tree, and the nodes below it.
    fn retire_subtree(&self, node: usize) {
        // SAFETY: unlinked by the caller; its children are reachable only through it.
        let n = unsafe { &*(node as *const Node) };
        for slot in &n.slots {
            let v = slot.load(Acquire);
            if v & CHILD != 0 && v != SHARED {
                self.retire_subtree(v & !CHILD);
            }
        }
        // Forget it in the list of empty nodes (a sweep must not unlink it again).
        let mut list = self.empty.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&(p, _, _)| p != node);
        drop(list);
        // SAFETY: unlinked: readers pinned from now on cannot reach it.
        unsafe { retire_raw(node as *mut (), drop_node) };
    }

    /// Unlinks and retires the listed nodes that are still empty, and then every ancestor
    /// that this leaves empty (the root stays).
    fn sweep(&self, list: &mut MetaVec<(usize, u32, usize)>) {
        for (node, s, base) in std::mem::replace(list, MetaVec::new_in(Meta)) {
            self.unlink_if_empty(node, s, base);
        }
    }

    /// Unlinks `node` (slots of 2^`s` granules from `base`) if it is still linked and empty,
    /// then its parent if that leaves it empty, and so on up.
    fn unlink_if_empty(&self, node: usize, s: u32, base: usize) {
        // The path from the root: (node, its level) for every node above `node`.
        let mut path = [(0usize, 0u32); 12];
        let mut depth = 0;
        let mut n = self.root as usize;
        let mut level = self.top;
        while level > s {
            path[depth] = (n, level);
            depth += 1;
            // SAFETY: the root, or a linked child.
            let v = unsafe { &*(n as *const Node) }.slots[(base >> level) & (FANOUT - 1)]
                .load(Acquire);
            if v & CHILD == 0 || v == SHARED {
                return; // no longer linked (already unlinked, or replaced)
            }
            n = v & !CHILD;
            level -= BITS;
        }
        if n != node {
            return;
        }
        // Unlink bottom-up while the node is empty; never the root (path[0]).
        let mut cur = node;
        while depth > 0 {
            // SAFETY: `cur` is linked (we walked to it under the writer lock).
            if !unsafe { &*(cur as *const Node) }.is_empty() {
                return;
            }
            let (parent, plevel) = path[depth - 1];
            // SAFETY: a linked node on our path.
            unsafe { &*(parent as *const Node) }.slots[(base >> plevel) & (FANOUT - 1)]
                .store(0, Release);
            // SAFETY: just unlinked; an empty node has no children.
            unsafe { retire_raw(cur as *mut (), drop_node) };
            cur = parent;
            depth -= 1;
        }
    }

    /// Frees every node (the tree is going away and no reader can reach it).
    fn free_all(&mut self) {
        fn free(node: *mut Node) {
            // SAFETY: owned by the tree, which is being dropped.
            let n = unsafe { &*node };
            for slot in &n.slots {
                let v = slot.load(Acquire);
                if v & CHILD != 0 && v != SHARED {
                    free((v & !CHILD) as *mut Node);
                }
            }
            // SAFETY: as above; each node is linked once.
            drop(unsafe { MetaBox::from_raw_in(node, Meta) });
        }
        free(self.root);
    }
}

impl Drop for Radix {
    fn drop(&mut self) {
        // Readers reach the tree only through its space, which is being dropped.
        self.free_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(r: &Radix, g: usize) -> Found {
        r.lookup(g << r.shift)
    }

    #[test]
    fn whole_blocks_and_edges() {
        let r = Radix::new(1 << 16, 0x7FFF_FFFE_FFFF);
        let a = 0x1000usize; // any 16-aligned non-zero value stands for a block
        r.set(5, 1 << 24, a);
        assert_eq!(at(&r, 4), Found::Nothing);
        assert_eq!(at(&r, 5), Found::Block(a as *const ()));
        assert_eq!(at(&r, (1 << 24) - 1), Found::Block(a as *const ()));
        assert_eq!(at(&r, 1 << 24), Found::Nothing);
        r.set(70, 71, SHARED);
        assert_eq!(at(&r, 70), Found::Shared);
        r.set(5, 1 << 24, 0);
        for g in [5, 70, 4095, 1 << 20] {
            assert_eq!(at(&r, g), Found::Nothing);
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_a_plain_map(ops in proptest::collection::vec((0usize..5000, 1usize..3000, 0usize..4), 1..80)) {
            let r = Radix::new(1 << 16, (1 << 30) - 1);
            let mut model = vec![0usize; 8192];
            for (lo, len, v) in ops {
                let hi = (lo + len).min(8192);
                let value = [0, SHARED, 0x100, 0x200][v];
                r.set(lo, hi, value);
                model[lo..hi].iter_mut().for_each(|m| *m = value);
                for (g, &m) in model.iter().enumerate().step_by(7) {
                    let want = match m {
                        0 => Found::Nothing,
                        SHARED => Found::Shared,
                        p => Found::Block(p as *const ()),
                    };
                    proptest::prop_assert_eq!(at(&r, g), want);
                }
            }
        }
    }
}
