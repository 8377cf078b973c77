//! Which heap structure owns an address: a two-level table over 64 KiB granules, read without
//! locks (two dependent loads), written under the registry's lock. Every heap reservation
//! (segment, front-end arena, large block) starts on a granule boundary, so each granule of
//! heap memory belongs to exactly one descriptor. An entry is a descriptor's address with a
//! tag in its low bits. Descriptors are pooled and never freed (`pool.rs`), so a stale entry
//! read by a racing, erroneous call still points at a valid descriptor whose owner check
//! fails; it never points at freed memory.

use crate::os::linux::metaheap::Meta;
use allocator_api2::alloc::{Allocator, Layout};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Address bits the table covers (48: every user address on x86-64 and aarch64 Linux).
const ADDRESS_BITS: u32 = 48;
const GRANULE_BITS: u32 = 16;
const LEAF_BITS: u32 = 16;
const TOP_BITS: u32 = ADDRESS_BITS - GRANULE_BITS - LEAF_BITS;
const LEAF: usize = 1 << LEAF_BITS;
const TOP: usize = 1 << TOP_BITS;

/// The kind of structure an entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    /// A back-end segment (`backend::Segment`).
    Segment = 1,
    /// A front-end page (`lfh::Page`).
    Page = 2,
    /// A large block (`large::Large`).
    Large = 3,
}

type Leaf = [AtomicUsize; LEAF];

/// The table.
pub(crate) struct GranuleMap {
    top: *mut [AtomicPtr<Leaf>; TOP],
}

// SAFETY: every field is reached through atomics; leaves are never freed.
unsafe impl Sync for GranuleMap {}
// SAFETY: as above.
unsafe impl Send for GranuleMap {}

fn zeroed<T>() -> *mut T {
    let layout = Layout::new::<T>();
    match Meta.allocate_zeroed(layout) {
        Ok(p) => p.as_ptr().cast(),
        Err(_) => std::alloc::handle_alloc_error(std::alloc::Layout::new::<T>()),
    }
}

impl GranuleMap {
    /// An empty table (its top level comes from the metadata heap, zeroed).
    pub(crate) fn new() -> GranuleMap {
        GranuleMap { top: zeroed() }
    }

    fn split(addr: usize) -> Option<(usize, usize)> {
        if (addr as u64) >> ADDRESS_BITS != 0 {
            return None;
        }
        let g = addr >> GRANULE_BITS;
        Some((g >> LEAF_BITS, g & (LEAF - 1)))
    }

    /// The entry for `addr`: `(tag, descriptor address)`, or `None`.
    #[inline]
    pub(crate) fn get(&self, addr: usize) -> Option<(Tag, usize)> {
        let (t, l) = Self::split(addr)?;
        // SAFETY: `top` lives as long as the table; index in range.
        let leaf = unsafe { (*self.top)[t].load(Ordering::Acquire) };
        if leaf.is_null() {
            return None;
        }
        // SAFETY: leaves are never freed; index in range.
        Self::decode(unsafe { (*leaf)[l].load(Ordering::Acquire) })
    }

    /// The raw entry for `addr` (descriptor address | tag, 0 if none): HeapFree's fast path
    /// tests the tag itself ([`GranuleMap::decode`] gives the rest).
    #[inline(always)]
    pub(crate) fn entry(&self, addr: usize) -> usize {
        let Some((t, l)) = Self::split(addr) else {
            return 0;
        };
        // SAFETY: `top` lives as long as the table; index in range.
        let leaf = unsafe { (*self.top)[t].load(Ordering::Acquire) };
        if leaf.is_null() {
            return 0;
        }
        // SAFETY: leaves are never freed; index in range.
        unsafe { (*leaf)[l].load(Ordering::Acquire) }
    }

    /// A raw entry as `(tag, descriptor address)`.
    #[inline(always)]
    pub(crate) fn decode(e: usize) -> Option<(Tag, usize)> {
        let tag = match e & 3 {
            1 => Tag::Segment,
            2 => Tag::Page,
            3 => Tag::Large,
            _ => return None,
        };
        Some((tag, e & !3))
    }

    /// Points every granule of `[start, end)` (granule-aligned start) at `desc` with `tag`, or
    /// clears them (`desc == 0`). Writers of the same granules are serialized by their
    /// heap's lock; a new leaf is installed with a compare-and-swap.
    pub(crate) fn set(&self, start: usize, end: usize, tag: Tag, desc: usize) {
        let v = if desc == 0 { 0 } else { desc | tag as usize };
        let mut a = start;
        while a < end {
            let Some((t, l)) = Self::split(a) else { return };
            // SAFETY: `top` lives as long as the table; index in range.
            let slot = unsafe { &(*self.top)[t] };
            let mut leaf = slot.load(Ordering::Acquire);
            if leaf.is_null() {
                if v == 0 {
                    a = (a | ((LEAF << GRANULE_BITS) - 1)).saturating_add(1);
                    continue;
                }
                let fresh = zeroed::<Leaf>();
                leaf = match slot.compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => fresh,
                    // Another writer installed this leaf first: use theirs (ours is a
                    // never-used zeroed block, given back).
                    Err(theirs) => {
                        // SAFETY: `fresh` came from `Meta` with this layout and nobody saw it.
                        unsafe {
                            Meta.deallocate(
                                std::ptr::NonNull::new_unchecked(fresh.cast()),
                                Layout::new::<Leaf>(),
                            )
                        };
                        theirs
                    }
                };
            }
            // SAFETY: leaves are never freed; index in range.
            unsafe { (*leaf)[l].store(v, Ordering::Release) };
            a += 1 << GRANULE_BITS;
        }
    }
}
