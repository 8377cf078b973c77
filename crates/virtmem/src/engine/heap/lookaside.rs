//! Look-asides: heaps without a front end (HEAP_NO_SERIALIZE or fixed-size heaps, where
//! `rules::lfh_eligible` is false) keep freed small back-end blocks per size, in granules, for
//! reuse without touching the segment's free ranges — Windows' look-aside lists.
//!
//! A waiting block stays busy in its segment (nothing coalesces into it), and its header
//! holds [`WAITING`] with its size in granules, encoded like a live header: it never decodes
//! to a request a block can have, so HeapFree / HeapSize / HeapReAlloc / HeapValidate refuse
//! it exactly as they refuse a freed LFH slot (whose header is 0). HeapWalk, HeapSummary,
//! HeapValidate(NULL), HeapCompact and a request that finds no free range drain the
//! look-asides first (`Heaps::drain_lookaside`), so they see exactly the live blocks and the
//! coalesced free ranges.
//!
//! The lists are fixed-size stacks of block pointers in one table per heap, taken from the
//! metadata heap on the first freed block (heaps with a front end never need one): a push
//! and a pop are a length and an item, with no pointer to chase but the table's. In front of
//! them, the most recently freed block waits in a slot of its own, with its size: a pop of
//! that size takes it, and the next push moves it to its list. With HeapAlloc and HeapFree
//! alternating — each reading what the other has just stored — the pointer HeapAlloc hands
//! out is then one forwarded load from a fixed place, whose store HeapFree makes with the
//! pointer it was given: the block's size, which HeapFree reads from the segment's bits,
//! only decides branches, and the next call does not wait for it.

use crate::os::linux::metaheap::Meta;
use allocator_api2::alloc::{Allocator, Layout};

/// Largest block (in granules) a look-aside keeps.
pub(crate) const LA_MAX: usize = crate::rules::heap::LFH_MAX_SLOT / crate::rules::heap::GRANULE;
/// Blocks a look-aside list keeps per size (the most recently freed block waits beside the
/// lists, in a slot of its own).
pub(crate) const LA_DEPTH: usize = 31;
/// The header word's request of a waiting block: this bit with its size in granules. No
/// request reaches it (`rules::heap` caps requests far below), so it never reads as live.
pub(crate) const WAITING: usize = 1 << 62;

/// One size's list: word 0 is the length, words `1..=len` the blocks (the top at `len`), so
/// an index is `len & 31`, never out of bounds (no check on the fast paths).
#[repr(C)]
struct Stack {
    words: [usize; LA_DEPTH + 1],
}

const _: () = assert!((LA_DEPTH + 1).is_power_of_two());

type Table = [Stack; LA_MAX + 1];

/// A heap's look-asides (under its lock, or its HEAP_NO_SERIALIZE caller's promise).
pub(crate) struct Lookaside {
    /// The most recently freed block (0: none), not in any list.
    recent: usize,
    /// Its size in granules.
    recent_n: usize,
    table: *mut Table,
}

impl Lookaside {
    /// No table yet.
    pub(crate) const fn new() -> Lookaside {
        Lookaside {
            recent: 0,
            recent_n: 0,
            table: std::ptr::null_mut(),
        }
    }

    /// A waiting block of `n` granules (its pointer), taken off its list.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Option<usize> {
        if self.recent != 0 && self.recent_n == n {
            let p = self.recent;
            self.recent = 0;
            return Some(p);
        }
        // SAFETY: the table is ours (allocated in `put`, never freed) or null.
        let t = unsafe { self.table.as_mut()? };
        let s = &mut t.get_mut(n)?.words;
        let len = s[0];
        if len == 0 {
            return None;
        }
        s[0] = len - 1;
        Some(s[len & LA_DEPTH])
    }

    /// Whether the table exists ([`Lookaside::put`] needs it).
    #[inline(always)]
    pub(crate) fn ready(&self) -> bool {
        !self.table.is_null()
    }

    /// Keeps block `p` of `n` granules if its list has room; `false` changes nothing (also
    /// when `n` is too large or there is no table yet: [`Lookaside::allocate`]).
    #[inline(always)]
    pub(crate) fn put(&mut self, n: usize, p: usize) -> bool {
        // SAFETY: the table is ours (allocated in `allocate`, never freed) or null.
        let Some(t) = (unsafe { self.table.as_mut() }) else {
            return false;
        };
        if n >= t.len() {
            return false;
        }
        if self.recent != 0 && !Self::push(t, self.recent_n, self.recent) {
            return false;
        }
        self.recent = p;
        self.recent_n = n;
        true
    }

    /// Pushes block `p` of `n <= LA_MAX` granules on its list if it has room.
    #[inline(always)]
    fn push(t: &mut Table, n: usize, p: usize) -> bool {
        let Some(s) = t.get_mut(n) else {
            return false;
        };
        let s = &mut s.words;
        let len = s[0];
        if len >= LA_DEPTH {
            return false;
        }
        s[(len + 1) & LA_DEPTH] = p;
        s[0] = len + 1;
        true
    }

    /// Makes the table; whether it exists.
    #[cold]
    #[inline(never)]
    pub(crate) fn allocate(&mut self) -> bool {
        match Meta.allocate_zeroed(Layout::new::<Table>()) {
            Ok(b) => {
                self.table = b.as_ptr().cast();
                true
            }
            Err(_) => false,
        }
    }

    /// Empties every list, giving each block to `f(pointer, granules)`; whether there was any.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(usize, usize)) -> bool {
        // SAFETY: as in `take`.
        let Some(t) = (unsafe { self.table.as_mut() }) else {
            return false;
        };
        let mut any = false;
        if self.recent != 0 {
            f(self.recent, self.recent_n);
            self.recent = 0;
            any = true;
        }
        for (n, s) in t.iter_mut().enumerate() {
            let len = s.words[0].min(LA_DEPTH);
            for &p in &s.words[1..=len] {
                f(p, n);
                any = true;
            }
            s.words[0] = 0;
        }
        any
    }

    /// Forgets every block (the heap's memory is gone or reset).
    pub(crate) fn clear(&mut self) {
        self.recent = 0;
        // SAFETY: as in `take`.
        if let Some(t) = unsafe { self.table.as_mut() } {
            t.iter_mut().for_each(|s| s.words[0] = 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recent_slot_keeps_every_list_lifo_and_bounded() {
        let mut la = Lookaside::new();
        assert!(!la.put(3, 0x1000), "no table: refused");
        assert_eq!(la.take(3), None);
        assert!(la.allocate());
        // Alternating put/take of one size: the recent slot only.
        for i in 0..100 {
            let p = 0x10_0000 + i * 0x40;
            assert!(la.put(3, p));
            assert_eq!(la.take(2), None, "another size finds nothing");
            assert_eq!(la.take(3), Some(p));
            assert_eq!(la.take(3), None);
        }
        // A size's list holds LA_DEPTH blocks, plus the recent one while it is that size.
        let blocks: Vec<usize> = (1..=LA_DEPTH + 1).map(|i| i * 0x100).collect();
        for &p in &blocks {
            assert!(la.put(5, p));
        }
        assert!(!la.put(5, 0xdead0), "full: refused, nothing changed");
        // Another size's block moves the recent one to its (full) list: refused too.
        assert!(!la.put(6, 0xbeef0));
        for &p in blocks.iter().rev() {
            assert_eq!(la.take(5), Some(p), "last in, first out");
        }
        assert_eq!(la.take(5), None);
        // Mixed sizes: each size's blocks come back in reverse order.
        for i in 0..10 {
            assert!(la.put(1 + i % 3, 0x1_0000 + i * 0x10));
        }
        for n in 1..=3 {
            let mut got = vec![];
            while let Some(p) = la.take(n) {
                got.push(p);
            }
            let want: Vec<usize> = (0..10).rev().filter(|i| 1 + i % 3 == n).map(|i| 0x1_0000 + i * 0x10).collect();
            assert_eq!(got, want, "size {n}");
        }
        // Drain gives every waiting block once, the recent one included; clear forgets all.
        for (i, n) in [(0, 4), (1, 4), (2, 7)] {
            assert!(la.put(n, 0x2_0000 + i * 0x10));
        }
        let mut seen = vec![];
        assert!(la.drain(|p, n| seen.push((p, n))));
        seen.sort();
        assert_eq!(seen, [(0x2_0000, 4), (0x2_0010, 4), (0x2_0020, 7)]);
        assert!(!la.drain(|_, _| panic!("drained twice")));
        assert!(la.put(4, 0x3_0000) && la.put(4, 0x3_0010));
        la.clear();
        assert_eq!((la.take(4), la.take(4)), (None, None));
    }
}
