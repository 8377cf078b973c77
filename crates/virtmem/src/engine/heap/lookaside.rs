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
//! and a pop are a length and an item, with no pointer to chase but the table's.

use crate::os::linux::metaheap::Meta;
use allocator_api2::alloc::{Allocator, Layout};

/// Largest block (in granules) a look-aside keeps.
pub(crate) const LA_MAX: usize = crate::rules::heap::LFH_MAX_SLOT / crate::rules::heap::GRANULE;
/// Blocks a look-aside keeps per size.
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
    table: *mut Table,
}

impl Lookaside {
    /// No table yet.
    pub(crate) const fn new() -> Lookaside {
        Lookaside {
            table: std::ptr::null_mut(),
        }
    }

    /// A waiting block of `n` granules (its pointer), taken off its list.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Option<usize> {
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
        // SAFETY: as in `take`.
        if let Some(t) = unsafe { self.table.as_mut() } {
            t.iter_mut().for_each(|s| s.words[0] = 0);
        }
    }
}
