//! The back end's segments: one reservation each (H76), a [`SEGMENT_HEADER`] then a grid of
//! 16-byte granules. A block of `n` granules at granule `g` has its 8-byte header at
//! `origin + 16g` and its pointer 8 bytes later (16-aligned); blocks are exactly
//! `align16(max(size, 16) + 8)` apart (H27). Out of band, under the heap lock:
//!
//! * `busy`: one bit per granule, set where a live block starts — exact, so a pointer that is
//!   not a live block's start is refused before anything changes (H34);
//! * `free`: the free ranges, sorted by start and always coalesced (a freed block merges with
//!   free neighbours at once), and `fstart`, one bit per granule set where a free range
//!   starts (so "does a block or a free range begin at granule `e`?", the header check, is
//!   one load, not a search);
//! * a freed block waiting in the heap's look-aside (heaps without a front end keep small
//!   freed blocks per size for reuse, as Windows' look-aside lists did) keeps its busy bit (so
//!   nothing coalesces into it); its header says it is not live (`lookaside.rs`). Every pass
//!   that reads the free ranges or enumerates blocks first drains the look-aside
//!   (`Heaps::drain_lookaside`);
//! * `commit`: the committed prefix of the reservation (commit on demand; HeapCompact gives
//!   back the free tail), and `holes`: whole pages inside free ranges below it that
//!   HeapCompact decommitted (`holes.rs`).
//!
//! The header holds the requested size, encoded with the heap's key and the block address;
//! it is trusted only after the busy bit says a block starts there, and only if the size it
//! decodes to ends exactly where the next block or free range begins.

use super::holes::Holes;
use super::ranges::FreeRanges;
use crate::os::linux::metaheap::{meta_vec, MetaVec};
use crate::rules::heap::{GRANULE, SEGMENT_HEADER};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Unused pairs at the start of a segment's bit table: its first words, the ones every small
/// heap uses, then sit in the second cache line of the table's (often 4 KiB-aligned) block,
/// not at a 4 KiB boundary with every other page-aligned structure's first line.
const BITS_SKIP: usize = 4;

/// A back-end segment's descriptor (pooled, never freed).
pub(crate) struct Segment {
    /// The owning heap's descriptor address (0: unassigned).
    pub owner: AtomicUsize,
    /// Its generation when assigned.
    pub gen: AtomicU64,
    /// The reservation's base.
    pub base: AtomicUsize,
    /// Under the owning heap's lock.
    inner: UnsafeCell<Inner>,
}

// SAFETY: `inner` is reached only under the owning heap's lock (or by its single
// HEAP_NO_SERIALIZE caller); the rest is atomic.
unsafe impl Sync for Segment {}
// SAFETY: as above.
unsafe impl Send for Segment {}

/// A segment's layout and lists.
pub(crate) struct Inner {
    /// Base of the reservation.
    pub base: usize,
    /// Bytes reserved.
    pub reserve: usize,
    /// Bytes committed from the base.
    pub commit: usize,
    /// Number of granules.
    pub ngran: usize,
    /// Per 64 granules: the busy bits, then the free-range start bits (one cache line holds
    /// both words the header check reads).
    bits: MetaVec<[u64; 2]>,
    /// One bit per granule, set at the last granule of each free range (so a freed block
    /// learns whether a free range ends right before it without a search).
    fend: MetaVec<u64>,
    /// Free ranges `(granule, count)`, coalesced (`ranges.rs`).
    pub free: FreeRanges,
    /// Decommitted pages inside free ranges.
    pub holes: Holes,
}

impl Segment {
    /// An unassigned descriptor.
    pub(crate) fn new() -> Segment {
        Segment {
            owner: AtomicUsize::new(0),
            gen: AtomicU64::new(0),
            base: AtomicUsize::new(0),
            inner: UnsafeCell::new(Inner {
                base: 0,
                reserve: 0,
                commit: 0,
                ngran: 0,
                bits: meta_vec(),
                fend: meta_vec(),
                free: FreeRanges::new(),
                holes: Holes::new(),
            }),
        }
    }

    /// Sets the descriptor up for a fresh reservation (one free range over every granule).
    pub(crate) fn assign(&self, owner: usize, gen: u64, base: usize, reserve: usize, commit: usize) {
        // SAFETY: not yet published: nobody else reaches it.
        let i = unsafe { &mut *self.inner.get() };
        i.base = base;
        i.reserve = reserve;
        i.commit = commit;
        i.ngran = (reserve - SEGMENT_HEADER - 8) / GRANULE;
        i.bits.clear();
        i.bits.resize(BITS_SKIP + i.ngran.div_ceil(64) + 1, [0; 2]);
        // A sentinel: the grid's end reads as a block start, so "the block ends where
        // something begins" needs no test of its own for the last block (`BitsView`).
        i.bits[BITS_SKIP + i.ngran / 64][0] |= 1 << (i.ngran % 64);
        i.fend.clear();
        i.fend.resize(i.ngran.div_ceil(64), 0);
        i.free.clear();
        i.free.insert(0, i.ngran);
        i.holes.clear();
        i.set_fstart(0, true);
        i.set_fend(i.ngran - 1, true);
        self.base.store(base, Ordering::Relaxed);
        self.gen.store(gen, Ordering::Relaxed);
        self.owner.store(owner, Ordering::Release);
    }

    /// The lists.
    ///
    /// # Safety
    ///
    /// The caller holds the owning heap's lock (or is its HEAP_NO_SERIALIZE caller), and no
    /// other reference from this function is live.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn inner(&self) -> &mut Inner {
        // SAFETY: per the contract.
        unsafe { &mut *self.inner.get() }
    }
}

/// A segment's block-start tests through a raw view of its bit table, kept in the heap's
/// descriptor for its first segment (a HEAP_NO_SERIALIZE heap's free then reaches the bits in
/// one load, not through the segment's descriptor).
#[derive(Clone, Copy)]
pub(crate) struct BitsView {
    /// The segment's first block pointer.
    pub origin: usize,
    /// Its granule count.
    pub ngran: usize,
    /// Its bit table's first used pair.
    pub words: *const [u64; 2],
}

impl BitsView {
    /// The granule whose block pointer is `p`, if `p` is one.
    #[inline(always)]
    pub(crate) fn granule_of(&self, p: usize) -> Option<usize> {
        let off = p.wrapping_sub(self.origin);
        (off % GRANULE == 0 && off / GRANULE < self.ngran).then_some(off / GRANULE)
    }

    /// [`Inner::is_busy`] of granule `g < ngran`, then [`Inner::ends_cleanly`] of `n`
    /// granules from it, for `n <= 64`.
    ///
    /// # Safety
    ///
    /// The segment is still assigned as it was when the view was taken (its table is not
    /// reallocated), no one changes its bits during the call (the heap lock, or the
    /// HEAP_NO_SERIALIZE caller's promise), and `n` returns at most 64.
    #[inline(always)]
    pub(crate) unsafe fn busy_and_ends(&self, g: usize, n: impl FnOnce() -> Option<usize>) -> Option<usize> {
        debug_assert!(g < self.ngran);
        // SAFETY: `g < ngran`, and the table holds `ngran.div_ceil(64) + 1` pairs after
        // `words` (`Segment::assign`); live per the contract.
        let w = unsafe { *self.words.add(g / 64) };
        if w[0] & (1 << (g % 64)) == 0 {
            return None;
        }
        let n = n()?;
        debug_assert!(n <= 64);
        // `e < ngran + 64`: inside the table. The grid's end has the sentinel bit
        // (`Segment::assign`) and nothing past it is set, so an end past the grid is refused.
        let e = g + n;
        // SAFETY: as above, `e / 64 <= ngran.div_ceil(64)`.
        let w = unsafe { *self.words.add(e / 64) };
        ((w[0] | w[1]) & (1 << (e % 64)) != 0).then_some(n)
    }
}

impl Inner {
    /// The raw view of the block-start tests ([`BitsView`]).
    pub(crate) fn bits_view(&self) -> BitsView {
        BitsView {
            origin: self.ptr_of(0),
            ngran: self.ngran,
            words: self.bits[BITS_SKIP..].as_ptr(),
        }
    }

    /// Address of granule `g`'s header.
    #[inline]
    pub(crate) fn header_of(&self, g: usize) -> usize {
        self.base + SEGMENT_HEADER + 8 + g * GRANULE
    }

    /// Block pointer of granule `g`.
    #[inline]
    pub(crate) fn ptr_of(&self, g: usize) -> usize {
        self.header_of(g) + 8
    }

    /// The granule whose block pointer is `p`, if `p` is one.
    #[inline]
    pub(crate) fn granule_of(&self, p: usize) -> Option<usize> {
        let off = p.checked_sub(self.ptr_of(0))?;
        (off % GRANULE == 0 && off / GRANULE < self.ngran).then_some(off / GRANULE)
    }

    /// Whether a block starts at granule `g` (live, or waiting in the look-aside: its header
    /// tells which).
    #[inline(always)]
    pub(crate) fn is_busy(&self, g: usize) -> bool {
        g < self.ngran && self.bits[BITS_SKIP + g / 64][0] & (1 << (g % 64)) != 0
    }

    fn set_busy(&mut self, g: usize, on: bool) {
        if on {
            self.bits[BITS_SKIP + g / 64][0] |= 1 << (g % 64);
        } else {
            self.bits[BITS_SKIP + g / 64][0] &= !(1 << (g % 64));
        }
    }

    #[inline]
    fn set_fstart(&mut self, g: usize, on: bool) {
        if on {
            self.bits[BITS_SKIP + g / 64][1] |= 1 << (g % 64);
        } else {
            self.bits[BITS_SKIP + g / 64][1] &= !(1 << (g % 64));
        }
    }

    #[inline]
    fn set_fend(&mut self, g: usize, on: bool) {
        if on {
            self.fend[g / 64] |= 1 << (g % 64);
        } else {
            self.fend[g / 64] &= !(1 << (g % 64));
        }
    }

    /// Whether a free range ends at granule `g` (its last granule).
    #[inline]
    fn ends_free(&self, g: usize) -> bool {
        g < self.ngran && self.fend[g / 64] & (1 << (g % 64)) != 0
    }

    /// Whether a free range starts at granule `g`.
    #[inline]
    fn starts_free(&self, g: usize) -> bool {
        g < self.ngran && self.bits[BITS_SKIP + g / 64][1] & (1 << (g % 64)) != 0
    }

    /// The length of the free range starting at `g`, if any.
    fn free_at(&self, g: usize) -> Option<usize> {
        self.starts_free(g).then(|| self.free.get(g)).flatten()
    }

    /// Whether a live block of `n` granules at `g` ends where something begins: the next
    /// block, a free range, or the end of the grid (its sentinel bit, `Segment::assign`) —
    /// the header consistency check: one load.
    #[inline(always)]
    pub(crate) fn ends_cleanly(&self, g: usize, n: usize) -> bool {
        let e = g.wrapping_add(n);
        e <= self.ngran && {
            let w = self.bits[BITS_SKIP + e / 64];
            (w[0] | w[1]) & (1 << (e % 64)) != 0
        }
    }

    /// Whether `fstart` and `fend` mark exactly the starts and ends of the free ranges
    /// (HeapValidate).
    pub(crate) fn starts_consistent(&self) -> bool {
        let marked: usize = self.bits.iter().map(|w| w[1].count_ones() as usize).sum();
        let ends: usize = self.fend.iter().map(|w| w.count_ones() as usize).sum();
        let mut end = 0;
        marked == self.free.len()
            && ends == self.free.len()
            && self.free.iter().all(|r| {
                // In order, disjoint, not touching (coalesced), inside the grid, marked.
                let ok = r.0 >= end
                    && (r.0 > end || end == 0)
                    && r.1 > 0
                    && r.0 + r.1 <= self.ngran
                    && self.starts_free(r.0)
                    && self.ends_free(r.0 + r.1 - 1);
                end = r.0 + r.1;
                ok
            })
    }

    /// Takes `n` granules first-fit; the busy bit of the result is set.
    pub(crate) fn take(&mut self, n: usize) -> Option<usize> {
        let (g, len) = self.free.take_first_fit(n)?;
        self.set_fstart(g, false);
        if len > n {
            self.set_fstart(g + n, true);
        } else {
            self.set_fend(g + len - 1, false);
        }
        self.set_busy(g, true);
        Some(g)
    }

    /// Frees `[g, g + n)`, merging with free neighbours; clears the busy bit at `g` if
    /// `block` (a whole block), keeps it otherwise (a shrunk block's tail).
    pub(crate) fn give(&mut self, g: usize, n: usize, block: bool) {
        if block {
            self.set_busy(g, false);
        }
        if n == 0 {
            return;
        }
        // The bits say which neighbours are free; each case is then one change of the tree
        // (two when the block joins both).
        let prev = g > 0 && self.ends_free(g - 1);
        let next = self.starts_free(g + n);
        match (prev, next) {
            (true, true) => {
                let nl = self.free.remove(g + n).expect("a free range starts there");
                self.free.update_at_or_before(g - 1, |s, l| (s, l + n + nl));
                self.set_fstart(g + n, false);
                self.set_fend(g - 1, false);
            }
            (true, false) => {
                self.free.update_at_or_before(g - 1, |s, l| (s, l + n));
                self.set_fend(g - 1, false);
                self.set_fend(g + n - 1, true);
            }
            (false, true) => {
                self.free.update(g + n, |nl| (g, n + nl));
                self.set_fstart(g + n, false);
                self.set_fstart(g, true);
            }
            (false, false) => {
                self.free.insert(g, n);
                self.set_fstart(g, true);
                self.set_fend(g + n - 1, true);
            }
        }
    }

    /// Grows the block `[g, g + n)` to `m > n` granules in place if the free range right
    /// after it is large enough.
    pub(crate) fn grow(&mut self, g: usize, n: usize, m: usize) -> bool {
        let s = g + n;
        let Some(len) = self.free_at(s) else {
            return false;
        };
        let extra = m - n;
        if len < extra {
            return false;
        }
        self.set_fstart(s, false);
        if len > extra {
            self.free.reshape(s, s + extra, len - extra);
            self.set_fstart(s + extra, true);
        } else {
            self.free.remove(s);
            self.set_fend(s + len - 1, false);
        }
        true
    }

    /// Gives back a grown block's extra granules (undo of [`Inner::grow`]).
    pub(crate) fn ungrow(&mut self, g: usize, n: usize, m: usize) {
        self.give(g + n, m - n, false);
    }

    /// Whether granules `[g, e)` are committed (below the prefix, in no hole).
    pub(crate) fn is_committed(&self, g: usize, e: usize) -> bool {
        let (a, b) = (self.end_offset(g), self.end_offset(e));
        b <= self.commit && self.holes.within(a, b).next().is_none()
    }

    /// Bytes committed: the prefix less its holes.
    pub(crate) fn committed(&self) -> usize {
        self.commit - self.holes.bytes()
    }

    /// The whole pages inside free ranges, at or above offset `floor` and below the
    /// committed prefix, that are not holes yet (what HeapCompact decommits).
    pub(crate) fn decommit_plan(&self, floor: usize, page: usize) -> MetaVec<(usize, usize)> {
        let mut out = meta_vec();
        for (g, n) in self.free.iter() {
            let s = crate::rules::heap::round_up(self.end_offset(g), page)
                .unwrap_or(usize::MAX)
                .max(floor);
            let e = (self.end_offset(g + n) / page * page).min(self.commit);
            if s < e {
                out.extend(self.holes.gaps(s, e).iter().copied());
            }
        }
        out
    }

    /// Whether every hole is page-aligned, below the committed prefix and inside one free
    /// range, and their byte count is right (HeapValidate).
    pub(crate) fn holes_consistent(&self, page: usize) -> bool {
        let mut total = 0;
        let ok = self.holes.spans().iter().all(|&(s, e)| {
            total += e - s;
            let r = self
                .free
                .at_or_before(s.saturating_sub(self.end_offset(0)) / GRANULE);
            s % page == 0
                && e % page == 0
                && s < e
                && e <= self.commit
                && r.is_some_and(|(g, n)| self.end_offset(g) <= s && e <= self.end_offset(g + n))
        });
        ok && total == self.holes.bytes()
    }

    /// Bytes from the base to the end of granule range `[.., e)`.
    pub(crate) fn end_offset(&self, e: usize) -> usize {
        SEGMENT_HEADER + 8 + e * GRANULE
    }

    /// First live block starting at or after granule `g`.
    pub(crate) fn next_busy(&self, g: usize) -> Option<usize> {
        let mut w = g / 64;
        if BITS_SKIP + w >= self.bits.len() {
            return None;
        }
        let mut bits = self.bits[BITS_SKIP + w][0] & (!0u64 << (g % 64));
        loop {
            if bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                return (b < self.ngran).then_some(b);
            }
            w += 1;
            if BITS_SKIP + w >= self.bits.len() {
                return None;
            }
            bits = self.bits[BITS_SKIP + w][0];
        }
    }

    /// First free range starting at or after granule `g`.
    pub(crate) fn next_free(&self, g: usize) -> Option<(usize, usize)> {
        self.free.at_or_after(g)
    }

    /// The free range reaching the end of the grid, if any (the tail HeapCompact trims).
    pub(crate) fn free_tail(&self) -> Option<(usize, usize)> {
        self.free.last().filter(|r| r.0 + r.1 == self.ngran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw view's end test against the descriptor's: a block ending at the grid's end
    /// (the sentinel) is accepted, a size reaching past it or stopping inside the next block
    /// is refused, and the sentinel is invisible to the descriptor's own queries.
    #[test]
    fn the_views_end_test_matches_the_descriptors() {
        let seg = Segment::new();
        // No memory is touched: the descriptor only does arithmetic on the base.
        let reserve = SEGMENT_HEADER + 8 + 200 * GRANULE;
        seg.assign(1, 1, 0x10_0000, reserve, reserve);
        // SAFETY: this test's own descriptor.
        let i = unsafe { seg.inner() };
        assert_eq!(i.ngran, 200);
        // Blocks of 3 granules until the grid is full; the last one takes the remainder.
        let mut blocks = vec![];
        while let Some(g) = i.take(3) {
            blocks.push((g, 3));
        }
        let rest = i.ngran - blocks.iter().map(|b| b.1).sum::<usize>();
        if rest > 0 {
            blocks.push((i.take(rest).expect("the remainder"), rest));
        }
        let (last, ln) = *blocks.last().unwrap();
        assert_eq!(last + ln, i.ngran, "the last block ends at the grid's end");
        assert_eq!(i.next_busy(last + 1), None, "the sentinel is not a block");
        assert!(!i.is_busy(i.ngran));
        let v = i.bits_view();
        for &(g, n) in &blocks {
            for claim in 1..=64 {
                // SAFETY: the view of this descriptor, unchanged during the call; claim <= 64.
                let got = unsafe { v.busy_and_ends(g, || Some(claim)) };
                assert_eq!(got.is_some(), i.ends_cleanly(g, claim), "block {g} claiming {claim}");
                let e = g + claim;
                assert_eq!(got.is_some(), e == i.ngran || (e < i.ngran && i.is_busy(e)));
                assert!(claim != n || got == Some(n));
            }
        }
        // A freed block is not busy; its neighbours still end where they did.
        let (g, n) = blocks[10];
        i.give(g, n, true);
        // SAFETY: as above.
        assert_eq!(unsafe { v.busy_and_ends(g, || Some(n)) }, None);
        let (pg, pn) = blocks[9];
        // SAFETY: as above.
        assert_eq!(unsafe { v.busy_and_ends(pg, || Some(pn)) }, Some(pn), "ends at a free range");
        assert!(i.starts_consistent());
    }
}
