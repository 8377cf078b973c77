//! HeapWalk (H58–H66): the heap's items in a fixed order — each region (the back-end
//! segments, then the front-end arenas) followed by its blocks and uncommitted ranges in
//! address order (a segment's holes, `holes.rs`, are uncommitted ranges between free blocks), then the large blocks (iRegionIndex 64) in allocation order. The walk keeps
//! no state: the next item is the first one after the entry the caller passes back (H66: found
//! by address, so a heap changed between calls never yields an item twice).

use super::backend::Inner;
use super::lfh::{Page, FIRST, PAGE};
use super::{Arena, Heap, Heaps, State, ARENA_PAGES};
use crate::error::{Error, Result};
use crate::os::Os;
use crate::rules::heap::{slot_size, SEGMENT_HEADER};
use std::sync::atomic::Ordering;

/// PROCESS_HEAP_REGION.
pub const REGION: u16 = 0x1;
/// PROCESS_HEAP_UNCOMMITTED_RANGE.
pub const UNCOMMITTED: u16 = 0x2;
/// PROCESS_HEAP_ENTRY_BUSY.
pub const BUSY: u16 = 0x4;
/// iRegionIndex of large blocks (H62).
pub const LARGE_INDEX: u8 = 64;

/// One HeapWalk item (the fields of PROCESS_HEAP_ENTRY; the region fields are 0 for other
/// items).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkEntry {
    /// lpData.
    pub data: usize,
    /// cbData.
    pub size: usize,
    /// cbOverhead.
    pub overhead: u8,
    /// iRegionIndex.
    pub region_index: u8,
    /// wFlags.
    pub flags: u16,
    /// Region.dwCommittedSize.
    pub committed: usize,
    /// Region.dwUnCommittedSize.
    pub uncommitted: usize,
    /// Region.lpFirstBlock.
    pub first_block: usize,
    /// Region.lpLastBlock.
    pub last_block: usize,
}

enum Region<'a> {
    Seg(&'a Inner),
    Arena(&'a Arena),
}

impl Region<'_> {
    fn span(&self) -> (usize, usize) {
        match self {
            Region::Seg(i) => (i.base, i.base + i.reserve),
            Region::Arena(a) => (a.base, a.base + ARENA_PAGES * PAGE),
        }
    }
}

fn regions(st: &State) -> impl Iterator<Item = Region<'_>> {
    st.segments
        .iter()
        // SAFETY: descriptors live forever; the heap lock is held by the walk.
        .map(|&s| Region::Seg(unsafe { (*s).inner() }))
        .chain(st.arenas.iter().map(Region::Arena))
}

/// The reported end of a region's uncommitted tail: its last page is not reported (H60).
fn uncommitted_entry(at: usize, len: usize, idx: u8) -> WalkEntry {
    WalkEntry {
        data: at,
        size: if len > 0x1000 { len - 0x1000 } else { len },
        region_index: idx,
        flags: UNCOMMITTED,
        ..WalkEntry::default()
    }
}

/// A segment's next walk item: a block (its granule), a free block (its header address and
/// granule), a hole (its span).
enum Next {
    Busy(usize),
    Free(usize, usize),
    Hole(usize, usize),
}

impl Next {
    /// Where the item sits in the walk's order.
    fn key(&self, i: &Inner) -> usize {
        match *self {
            Next::Busy(g) => i.header_of(g),
            Next::Free(s, _) | Next::Hole(s, _) => s,
        }
    }
}

impl<O: Os> Heaps<'_, O> {
    fn region_entry(&self, r: &Region<'_>, idx: u8) -> WalkEntry {
        match r {
            Region::Seg(i) => {
                let unc = i.reserve - i.commit;
                WalkEntry {
                    data: i.base,
                    size: SEGMENT_HEADER,
                    region_index: idx,
                    flags: REGION,
                    committed: i.committed(),
                    uncommitted: i.reserve - i.committed(),
                    first_block: i.base + SEGMENT_HEADER + 16,
                    last_block: i.base + i.commit + uncommitted_entry(0, unc, 0).size,
                    ..WalkEntry::default()
                }
            }
            Region::Arena(a) => {
                let used = a.used.count_ones() as usize * PAGE;
                WalkEntry {
                    data: a.base,
                    size: 0,
                    region_index: idx,
                    flags: REGION,
                    committed: used,
                    uncommitted: ARENA_PAGES * PAGE - used,
                    first_block: a.base + FIRST,
                    last_block: a.base + ARENA_PAGES * PAGE,
                    ..WalkEntry::default()
                }
            }
        }
    }

    /// The first item of a segment whose key is above `after`: a block's or free block's
    /// header address, a hole's start (page-aligned: never a header address), the commit end
    /// for the uncommitted tail. A free range with holes is reported as free blocks
    /// between uncommitted ranges.
    fn seg_next(&self, heap: &Heap, i: &Inner, mut after: usize, idx: u8) -> Option<WalkEntry> {
        loop {
            match self.seg_item(heap, i, after, idx) {
                // A free piece too short to report (under 16 bytes before a hole): skipped.
                Err(key) => after = key,
                Ok(item) => return item,
            }
        }
    }

    /// [`Heaps::seg_next`]'s step: the item, or `Err(key)` for a free piece to skip.
    fn seg_item(
        &self,
        heap: &Heap,
        i: &Inner,
        after: usize,
        idx: u8,
    ) -> std::result::Result<Option<WalkEntry>, usize> {
        let h0 = i.header_of(0);
        let g0 = if after < h0 { 0 } else { (after - h0) / 16 + 1 };
        let cend = i.base + i.commit;
        // The first granule whose header is at or above `a`.
        let gran_at = |a: usize| (a.max(h0) - h0).div_ceil(16);
        let busy = i.next_busy(g0).map(Next::Busy);
        let free = i
            .next_free(g0)
            .map(|f| Next::Free(i.header_of(f.0), f.0))
            .filter(|f| f.key(i) < cend);
        let holes = i.holes.spans();
        let hole = holes
            .get(holes.partition_point(|h| i.base + h.0 <= after))
            .map(|&(s, e)| Next::Hole(i.base + s, i.base + e));
        // A free block right after a hole, if its free range goes on past the hole.
        let piece = holes
            .get(holes.partition_point(|h| i.header_of(gran_at(i.base + h.1)) <= after))
            .and_then(|&(_, e)| {
                let g = gran_at(i.base + e);
                let (fs, fnum) = i.free.at_or_before(g)?;
                (g < fs + fnum && i.header_of(g) < cend).then(|| Next::Free(i.header_of(g), g))
            });
        let next = [busy, free, piece, hole]
            .into_iter()
            .flatten()
            .min_by_key(|n| n.key(i));
        Ok(match next {
            None => (i.commit < i.reserve && cend > after)
                .then(|| uncommitted_entry(cend, i.reserve - i.commit, idx)),
            Some(Next::Busy(g)) => {
                let p = i.ptr_of(g);
                let req = heap.decode(p, self.space.heap_load(p - 8));
                let n = crate::rules::heap::granules(req).unwrap_or(1);
                Some(WalkEntry {
                    data: p,
                    size: req.min(u32::MAX as usize),
                    overhead: (n * 16).saturating_sub(req + 8).min(255) as u8,
                    region_index: idx,
                    flags: BUSY,
                    ..WalkEntry::default()
                })
            }
            Some(Next::Free(s, g)) => {
                // The free block ends at its range's end, the commit end or the next hole.
                let (fs, fnum) = i.free.at_or_before(g).unwrap_or((g, 0));
                let mut e = i.header_of(fs + fnum).min(cend);
                if let Some(&(hs, _)) = holes.get(holes.partition_point(|h| i.base + h.0 <= s)) {
                    e = e.min(i.base + hs);
                }
                let data = s + 16;
                if e < data {
                    return Err(s);
                }
                let (size, overhead) = if e >= data + 0x40 {
                    (e - data - 0x40, 0x20)
                } else {
                    (e - data, 0)
                };
                Some(WalkEntry {
                    data,
                    size,
                    overhead,
                    region_index: idx,
                    flags: 0,
                    ..WalkEntry::default()
                })
            }
            Some(Next::Hole(s, e)) => Some(WalkEntry {
                data: s,
                size: e - s,
                region_index: idx,
                flags: UNCOMMITTED,
                ..WalkEntry::default()
            }),
        })
    }

    /// The first item of an arena whose key `(address, 1)` is above `after`.
    fn arena_next(&self, heap: &Heap, a: &Arena, after: usize, idx: u8) -> Option<WalkEntry> {
        let mut k = 0;
        while k < ARENA_PAGES {
            let pb = a.base + k * PAGE;
            if a.pages[k].is_null() {
                let mut e = k;
                while e < ARENA_PAGES && a.pages[e].is_null() {
                    e += 1;
                }
                if pb > after {
                    return Some(WalkEntry {
                        data: pb,
                        size: (e - k) * PAGE,
                        region_index: idx,
                        flags: UNCOMMITTED,
                        ..WalkEntry::default()
                    });
                }
                k = e;
                continue;
            }
            // SAFETY: descriptors live forever.
            let page: &Page = unsafe { &*a.pages[k] };
            let s = slot_size(page.class.load(Ordering::Relaxed));
            let n = page.nslots.load(Ordering::Relaxed);
            let first = if after < pb + FIRST {
                0
            } else {
                (after - pb - FIRST) / s + 1
            };
            if first < n {
                let p = page.slot_ptr(first);
                let class = page.class.load(Ordering::Relaxed);
                let live = heap.live_slot(p, class, self.space.heap_load(p - 8));
                return Some(if let Some(req) = live {
                    WalkEntry {
                        data: p,
                        size: req.min(u32::MAX as usize),
                        overhead: 8,
                        region_index: idx,
                        flags: BUSY,
                        ..WalkEntry::default()
                    }
                } else {
                    WalkEntry {
                        data: p,
                        size: s,
                        overhead: 16,
                        region_index: idx,
                        flags: 0,
                        ..WalkEntry::default()
                    }
                });
            }
            k += 1;
        }
        None
    }

    fn large_entry(&self, st: &State, k: usize) -> Option<WalkEntry> {
        // SAFETY: descriptors live forever.
        let l = unsafe { &**st.large.get(k)? };
        Some(WalkEntry {
            data: l.ptr(),
            size: l.req.load(Ordering::Relaxed).min(u32::MAX as usize),
            region_index: LARGE_INDEX,
            flags: BUSY,
            ..WalkEntry::default()
        })
    }

    /// HeapWalk: the item after `cur` (`cur.data == 0`: the first), or `None` at the end.
    pub fn walk(&self, h: usize, cur: &WalkEntry) -> Result<Option<WalkEntry>> {
        let heap = self.lookup(h)?;
        self.locked(heap, h, 0, |st| {
            self.drain_lookaside(st);
            let idx_of = |k: usize| k.min(63) as u8;
            let nreg = st.segments.len() + st.arenas.len();
            let first_after = |k: usize| -> Option<WalkEntry> {
                match regions(st).nth(k) {
                    Some(r) => Some(self.region_entry(&r, idx_of(k))),
                    None => self.large_entry(st, 0),
                }
            };
            if cur.data == 0 {
                return Ok(first_after(0));
            }
            if cur.flags & BUSY != 0 && cur.region_index == LARGE_INDEX {
                for k in 0..st.large.len() {
                    if self.large_entry(st, k).map(|e| e.data) == Some(cur.data) {
                        return Ok(self.large_entry(st, k + 1));
                    }
                }
                return Err(Error::InvalidParameter("the entry is no longer in the heap"));
            }
            let found = regions(st).enumerate().find(|(_, r)| {
                let (b, e) = r.span();
                if cur.flags & REGION != 0 {
                    cur.data == b
                } else {
                    cur.data >= b && cur.data < e
                }
            });
            let Some((k, r)) = found else {
                return Err(Error::InvalidParameter("the entry is no longer in the heap"));
            };
            let next = match r {
                Region::Seg(i) => {
                    let after = if cur.flags & REGION != 0 {
                        i.base
                    } else if cur.flags & UNCOMMITTED != 0 {
                        // A hole inside the committed prefix, or the uncommitted tail (the
                        // segment's last item).
                        if cur.data < i.base + i.commit {
                            cur.data
                        } else {
                            usize::MAX
                        }
                    } else if cur.flags & BUSY != 0 {
                        cur.data - 8
                    } else {
                        cur.data - 16
                    };
                    if after == usize::MAX {
                        None
                    } else {
                        self.seg_next(heap, i, after, idx_of(k))
                    }
                }
                Region::Arena(a) => {
                    let after = if cur.flags & REGION != 0 {
                        a.base.wrapping_sub(1)
                    } else {
                        cur.data
                    };
                    self.arena_next(heap, a, after, idx_of(k))
                }
            };
            Ok(match next {
                Some(e) => Some(e),
                None if k + 1 < nreg => first_after(k + 1),
                None => self.large_entry(st, 0),
            })
        })
    }
}
