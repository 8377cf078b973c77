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
//! and a pop are a length and an item, with no pointer to chase but the table's. A full
//! stack is not a limit: the general path ([`Lookaside::put_any`]) moves its blocks to a
//! chunk of their own (metadata heap) and starts it again, and an empty stack is refilled
//! from its size's last chunk ([`Lookaside::take_any`]), so freeing and reallocating many
//! blocks of one size stays O(1) per call (one general-path call per [`LA_DEPTH`] blocks).
//! What the look-asides hold is bounded by the heap's policy instead: the back end drains
//! them before it commits more memory (`Heaps::alloc_locked`), so waiting blocks never make
//! the heap grow. In front of
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

/// Largest block (in granules, 16 KiB) a look-aside keeps at all: sizes above [`LA_MAX`] have
/// no stack and wait in chunks only, on the general path.
pub(crate) const LA_BIG: usize = 1024;

/// Blocks moved out of the table, or blocks of a size above [`LA_MAX`] (one size's chunks form
/// a list; only the first chunk of a size above `LA_MAX` may be partly full).
#[repr(C)]
struct Chunk {
    next: *mut Chunk,
    len: usize,
    items: [usize; LA_DEPTH],
}

/// Per size, its first chunk (null: none).
type Spill = [*mut Chunk; LA_BIG + 1];

/// A heap's look-asides (under its lock, or its HEAP_NO_SERIALIZE caller's promise).
pub(crate) struct Lookaside {
    /// The most recently freed block (0: none), not in any list.
    recent: usize,
    /// Its size in granules.
    recent_n: usize,
    table: *mut Table,
    /// The chunks of each size (allocated on the first chunk).
    spill: *mut Spill,
    /// Number of chunks in `spill`.
    chunks: usize,
}

impl Lookaside {
    /// No table yet.
    pub(crate) const fn new() -> Lookaside {
        Lookaside {
            recent: 0,
            recent_n: 0,
            table: std::ptr::null_mut(),
            spill: std::ptr::null_mut(),
            chunks: 0,
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

    /// [`Lookaside::take`], refilling an empty stack from its size's first chunk, and sizes
    /// above [`LA_MAX`] (the general path's).
    pub(crate) fn take_any(&mut self, n: usize) -> Option<usize> {
        if n <= LA_MAX {
            if let Some(p) = self.take(n) {
                return Some(p);
            }
        }
        // SAFETY: the spill table is ours (allocated in `ensure_spill`, never freed) or null;
        // its chunks are ours (allocated in `new_chunk`, freed only here and in
        // `forget_chunks`).
        let head = unsafe { self.spill.as_mut()? }.get_mut(n)?;
        let c = *head;
        if c.is_null() {
            return None;
        }
        // SAFETY: as above.
        let chunk = unsafe { &mut *c };
        let p = if n <= LA_MAX {
            // `take` found this size's stack empty: the whole chunk goes back to it.
            // SAFETY: a chunk of a size up to LA_MAX exists only with the table.
            let s = unsafe { &mut (*self.table)[n].words };
            s[1..].copy_from_slice(&chunk.items);
            s[0] = LA_DEPTH - 1;
            chunk.len = 0;
            s[LA_DEPTH]
        } else {
            chunk.len -= 1;
            chunk.items[chunk.len]
        };
        if chunk.len == 0 {
            *head = chunk.next;
            // SAFETY: our chunk, unlinked just above.
            unsafe { Self::free_chunk(c) };
            self.chunks -= 1;
        }
        Some(p)
    }

    /// [`Lookaside::put`], moving a full stack to a chunk first, and sizes above [`LA_MAX`]
    /// (the general path's); `false` changes nothing (`n` above [`LA_BIG`], or no memory for
    /// a table or a chunk).
    pub(crate) fn put_any(&mut self, n: usize, p: usize) -> bool {
        if n > LA_BIG || !self.ensure_spill() {
            return false;
        }
        if n > LA_MAX {
            // SAFETY: `ensure_spill` made the spill table; its chunks are ours.
            let head = unsafe { &mut (*self.spill)[n] };
            // SAFETY: as above.
            if head.is_null() || unsafe { (**head).len } == LA_DEPTH {
                let Some(c) = Self::new_chunk(*head) else {
                    return false;
                };
                *head = c;
                self.chunks += 1;
            }
            // SAFETY: as above; the chunk has room.
            let chunk = unsafe { &mut **head };
            chunk.items[chunk.len] = p;
            chunk.len += 1;
            return true;
        }
        if self.table.is_null() && !self.allocate() {
            return false;
        }
        if self.put(n, p) {
            return true;
        }
        // Only the recent block's full stack refuses (`put` moves it there).
        self.spill_full(self.recent_n) && self.put(n, p)
    }

    /// An empty chunk linked before `next`.
    fn new_chunk(next: *mut Chunk) -> Option<*mut Chunk> {
        let c: *mut Chunk = Meta.allocate(Layout::new::<Chunk>()).ok()?.as_ptr().cast();
        // SAFETY: a fresh block of the chunk's layout.
        unsafe {
            c.write(Chunk {
                next,
                len: 0,
                items: [0; LA_DEPTH],
            })
        };
        Some(c)
    }

    /// Gives chunk `c` back to the metadata heap.
    ///
    /// # Safety
    ///
    /// `c` came from [`Lookaside::new_chunk`], is linked nowhere and is not used again.
    unsafe fn free_chunk(c: *mut Chunk) {
        // SAFETY: per the contract, a live block of the chunk's layout.
        unsafe { Meta.deallocate(std::ptr::NonNull::new_unchecked(c.cast()), Layout::new::<Chunk>()) };
    }

    /// Moves size `n`'s stack to a new chunk if it is full; whether it has room now.
    #[cold]
    fn spill_full(&mut self, n: usize) -> bool {
        // SAFETY: callers made the table and the spill table, and `n <= LA_MAX`.
        let (s, head) = unsafe { (&mut (*self.table)[n].words, &mut (*self.spill)[n]) };
        if s[0] < LA_DEPTH {
            return true;
        }
        let Some(c) = Self::new_chunk(*head) else {
            return false;
        };
        // SAFETY: our fresh chunk.
        let chunk = unsafe { &mut *c };
        chunk.items.copy_from_slice(&s[1..]);
        chunk.len = LA_DEPTH;
        *head = c;
        s[0] = 0;
        self.chunks += 1;
        true
    }

    /// Whether any block waits (the back end's drain policy; scans the table).
    pub(crate) fn holds_any(&self) -> bool {
        // SAFETY: as in `take`.
        self.recent != 0
            || self.chunks > 0
            || unsafe { self.table.as_ref() }.is_some_and(|t| t.iter().any(|s| s.words[0] > 0))
    }

    /// Makes the table; whether it exists.
    #[cold]
    #[inline(never)]
    fn allocate(&mut self) -> bool {
        if !self.ensure_spill() {
            return false;
        }
        match Meta.allocate_zeroed(Layout::new::<Table>()) {
            Ok(b) => {
                self.table = b.as_ptr().cast();
                true
            }
            Err(_) => false,
        }
    }

    /// Makes the spill table if there is none; whether it exists.
    fn ensure_spill(&mut self) -> bool {
        if self.spill.is_null() {
            match Meta.allocate_zeroed(Layout::new::<Spill>()) {
                Ok(b) => self.spill = b.as_ptr().cast(),
                Err(_) => return false,
            }
        }
        true
    }

    /// Frees every chunk, giving each block to `f(pointer, granules)`.
    fn forget_chunks(&mut self, mut f: impl FnMut(usize, usize)) {
        if self.chunks == 0 {
            return;
        }
        // SAFETY: as in `take_any`.
        let Some(sp) = (unsafe { self.spill.as_mut() }) else {
            return;
        };
        for (n, head) in sp.iter_mut().enumerate() {
            let mut c = std::mem::replace(head, std::ptr::null_mut());
            while !c.is_null() {
                // SAFETY: our chunk, unlinked; freed once.
                let next = unsafe {
                    let chunk = &*c;
                    chunk.items[..chunk.len].iter().for_each(|&p| f(p, n));
                    let next = chunk.next;
                    Self::free_chunk(c);
                    next
                };
                c = next;
            }
        }
        self.chunks = 0;
    }

    /// Empties every list, giving each block to `f(pointer, granules)`; whether there was any.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(usize, usize)) -> bool {
        let mut any = false;
        if self.recent != 0 {
            f(self.recent, self.recent_n);
            self.recent = 0;
            any = true;
        }
        // SAFETY: as in `take`.
        if let Some(t) = unsafe { self.table.as_mut() } {
            for (n, s) in t.iter_mut().enumerate() {
                let len = s.words[0].min(LA_DEPTH);
                for &p in &s.words[1..=len] {
                    f(p, n);
                    any = true;
                }
                s.words[0] = 0;
            }
        }
        any |= self.chunks > 0;
        self.forget_chunks(&mut f);
        any
    }

    /// Forgets every block (the heap's memory is gone or reset).
    pub(crate) fn clear(&mut self) {
        self.recent = 0;
        // SAFETY: as in `take`.
        if let Some(t) = unsafe { self.table.as_mut() } {
            t.iter_mut().for_each(|s| s.words[0] = 0);
        }
        self.forget_chunks(|_, _| ());
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

    #[test]
    fn full_stacks_spill_to_chunks_and_come_back() {
        let mut la = Lookaside::new();
        assert_eq!(la.take_any(3), None);
        assert!(!la.holds_any());
        // Far more blocks of one size than a stack holds, with another size between them.
        let many: Vec<usize> = (1..=1000).map(|i| i * 0x100).collect();
        for (k, &p) in many.iter().enumerate() {
            assert!(la.put_any(3, p));
            if k % 100 == 0 {
                assert!(la.put_any(7, p + 0x10));
            }
        }
        assert!(la.holds_any());
        assert!(la.chunks > 0);
        // Last in, first out across chunks; the fast `take` alone stops where a stack ends.
        for &p in many.iter().rev() {
            assert_eq!(la.take_any(3), Some(p));
        }
        assert_eq!(la.take_any(3), None);
        assert_eq!(la.chunks, 0, "every chunk came back and was freed");
        let mut sevens = vec![];
        while let Some(p) = la.take_any(7) {
            sevens.push(p);
        }
        assert_eq!(sevens.len(), 10);
        assert!(!la.holds_any());
        // Drain and clear see chunked blocks too.
        for &p in &many {
            assert!(la.put_any(2, p));
        }
        let mut seen = vec![];
        assert!(la.drain(|p, n| seen.push((p, n))));
        seen.sort();
        assert_eq!(seen, many.iter().map(|&p| (p, 2)).collect::<Vec<_>>());
        assert_eq!((la.chunks, la.holds_any()), (0, false));
        for &p in &many {
            assert!(la.put_any(2, p));
        }
        la.clear();
        assert_eq!((la.chunks, la.holds_any(), la.take_any(2)), (0, false, None));
    }

    #[test]
    fn sizes_above_the_stacks_wait_in_chunks() {
        let mut la = Lookaside::new();
        assert!(!la.put_any(LA_BIG + 1, 0x1000), "too large: refused");
        assert_eq!(la.take_any(LA_MAX + 1), None);
        let many: Vec<usize> = (1..=100).map(|i| i * 0x1000).collect();
        for &p in &many {
            assert!(la.put_any(LA_MAX + 1, p));
            assert!(la.put_any(LA_BIG, p + 0x10));
        }
        assert!(la.table.is_null(), "no stack table for large sizes");
        assert!(la.holds_any());
        assert_eq!(la.take(LA_MAX + 1), None, "the fast path never sees them");
        for &p in many.iter().rev() {
            assert_eq!(la.take_any(LA_MAX + 1), Some(p));
        }
        assert_eq!(la.take_any(LA_MAX + 1), None);
        let mut seen = vec![];
        assert!(la.drain(|p, n| seen.push((p, n))));
        seen.sort();
        assert_eq!(seen, many.iter().map(|&p| (p + 0x10, LA_BIG)).collect::<Vec<_>>());
        assert_eq!((la.chunks, la.holds_any()), (0, false));
    }
}
