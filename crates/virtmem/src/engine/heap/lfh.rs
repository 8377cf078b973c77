//! The low-fragmentation front end (`docs/heap-spec.md` §6): size classes of 16-byte steps
//! up to `LFH_MAX_SLOT`, each served by *pages* — one 64 KiB granule of a front-end arena cut
//! into equal slots (an 8-byte header, then the block). All control state is out of band, in
//! the page's descriptor:
//!
//! * whether slot `i` is a live block is its 8-byte header: the requested size encoded with
//!   the heap's key and the block address while live, 0 otherwise (`Heap::is_live_slot`). The
//!   key has bit 17 set, so 0 — a freed slot, or one never handed out — decodes to a size of at
//!   least 2^17 for every 16-aligned address and is never taken for a live block: exact, so a
//!   freed, interior or foreign pointer is refused before any list is touched (H34). Keeping
//!   the state in the block's own cache line (rather than in a shared per-page array) is what
//!   lets two threads free neighbouring slots without bouncing a line between them. Two
//!   threads freeing *the same* block at the same instant is the one misuse this cannot always
//!   catch.
//! * `free`: a bitmap of the slots that are in no thread's cache, and their count, under the
//!   class's spin lock. Thread caches (`cache.rs`) take and give back slots in batches.
//! * a class's `batches`: whole batches a thread cache gave back, kept as they came (up to
//!   [`MAX_BATCHES`]) and handed to the next refill as they are — one copy under the class
//!   lock, no page touched — so a program that frees many blocks on one thread and allocates
//!   them again does not move each slot through its page's bitmap twice. A slot there is
//!   free (header 0) and in no bitmap, as in a thread cache; HeapCompact first gives every
//!   batch back to its pages (`take_empty_pages`).
//!
//! The heap lock is never taken here (H56); only a new page goes through the back end.

use super::lock::Spin;
use super::map::{GranuleMap, Tag};
use crate::os::linux::metaheap::{meta_vec, MetaVec};
use crate::rules::heap::{slot_size, GRANULE, LFH_CLASSES};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Slots a thread cache takes or gives back at a time.
pub(crate) const BATCH: usize = super::cache::K / 2;
/// Batches a class keeps whole (beyond them, given-back slots go to their pages).
pub(crate) const MAX_BATCHES: usize = 256;

/// Bytes of one front-end page (one allocation granule).
pub(crate) const PAGE: usize = 0x10000;
/// Most slots a page can have (16-byte slots).
pub(crate) const MAX_SLOTS: usize = PAGE / GRANULE;
/// Offset of slot 0's block pointer from the page base (its header is 8 bytes before).
pub(crate) const FIRST: usize = GRANULE;

/// A front-end page's descriptor (pooled, never freed). What HeapFree's fast path reads
/// (owner, geometry, class range) is the second cache line, never the first: descriptors
/// come from the metadata heap one after another, often starting on a 4 KiB boundary, and a
/// hot word at a 4 KiB boundary's first bytes would share its address bits 0–11 with the
/// header of every page's first slot (`base + 8`), which HeapAlloc has just written; the
/// processor then holds the descriptor's load behind that store (4K aliasing; measured: 7.4
/// → 10–20 ns per alloc + free). The size is a multiple of 128, so the hot line of a
/// descriptor is never at a 4 KiB boundary.
#[repr(C, align(128))]
pub(crate) struct Page {
    /// The owner's generation when assigned.
    pub gen: AtomicU64,
    /// Number of slots.
    pub nslots: AtomicUsize,
    /// `ceil(2^32 / (slot / 16))`: slot index by multiplication.
    magic: AtomicU64,
    _cold: [u64; 5],
    /// The owning heap (its descriptor's address), 0 when unassigned.
    pub owner: AtomicUsize,
    /// The page's address.
    pub base: AtomicUsize,
    /// Its size class.
    pub class: AtomicUsize,
    /// Bytes from the first slot's pointer to the end of the last slot (low 32 bits), and
    /// the rotation of the slot-start test (high 32 bits).
    limit_rot: AtomicU64,
    /// Slot-start test without division (`rules::heap::divisibility`): the odd factor's
    /// inverse and the limit.
    div_inv: AtomicU64,
    div_lim: AtomicU64,
    /// The class's requests (`rules::heap::class_range`): lowest, and highest − lowest.
    req_lo: AtomicUsize,
    req_span: AtomicUsize,
    /// Under the class lock.
    lists: UnsafeCell<PageLists>,
}

struct PageLists {
    free: [u64; MAX_SLOTS / 64],
    nfree: usize,
    listed: bool,
}

// SAFETY: `lists` is reached only under the owning class's spin lock; the rest is atomic.
unsafe impl Sync for Page {}
// SAFETY: as above.
unsafe impl Send for Page {}

impl Page {
    /// An unassigned descriptor.
    pub(crate) fn new() -> Page {
        Page {
            _cold: [0; 5],
            owner: AtomicUsize::new(0),
            gen: AtomicU64::new(0),
            base: AtomicUsize::new(0),
            class: AtomicUsize::new(0),
            nslots: AtomicUsize::new(0),
            magic: AtomicU64::new(0),
            limit_rot: AtomicU64::new(0),
            div_inv: AtomicU64::new(0),
            div_lim: AtomicU64::new(0),
            req_lo: AtomicUsize::new(0),
            req_span: AtomicUsize::new(0),
            lists: UnsafeCell::new(PageLists {
                free: [0; MAX_SLOTS / 64],
                nfree: 0,
                listed: false,
            }),
        }
    }

    /// Prepares the page at `base` for `class` of heap `owner` (generation `gen`): every slot
    /// free. The caller then publishes it in the granule map and lists it in its class.
    pub(crate) fn assign(&self, owner: usize, gen: u64, base: usize, class: usize) {
        let s = slot_size(class);
        let n = (PAGE - FIRST + crate::rules::heap::BLOCK_HEADER) / s;
        let k = (s / GRANULE) as u64;
        self.base.store(base, Ordering::Relaxed);
        self.class.store(class, Ordering::Relaxed);
        self.nslots.store(n, Ordering::Relaxed);
        self.magic.store((1u64 << 32).div_ceil(k), Ordering::Relaxed);
        let (inv, sh, lim) = crate::rules::heap::divisibility(s as u64);
        self.limit_rot
            .store((n * s) as u64 | (sh as u64) << 32, Ordering::Relaxed);
        self.div_inv.store(inv, Ordering::Relaxed);
        self.div_lim.store(lim, Ordering::Relaxed);
        let (lo, hi) = crate::rules::heap::class_range(class);
        self.req_lo.store(lo, Ordering::Relaxed);
        self.req_span.store(hi - lo, Ordering::Relaxed);
        // SAFETY: not yet published: nobody else reaches the lists.
        let l = unsafe { &mut *self.lists.get() };
        l.free = [0; MAX_SLOTS / 64];
        for i in 0..n {
            l.free[i / 64] |= 1 << (i % 64);
        }
        l.nfree = n;
        l.listed = false;
        self.gen.store(gen, Ordering::Relaxed);
        self.owner.store(owner, Ordering::Release);
    }

    /// The slot index of block pointer `p`, if `p` is exactly a slot's block pointer.
    #[inline]
    pub(crate) fn slot_of(&self, p: usize) -> Option<usize> {
        let base = self.base.load(Ordering::Relaxed);
        let off = p.wrapping_sub(base).wrapping_sub(FIRST);
        if off >= PAGE || off % GRANULE != 0 {
            return None;
        }
        let q = (off / GRANULE) as u64;
        let k = (slot_size(self.class.load(Ordering::Relaxed)) / GRANULE) as u64;
        let i = (q * self.magic.load(Ordering::Relaxed)) >> 32;
        (i * k == q && (i as usize) < self.nslots.load(Ordering::Relaxed)).then_some(i as usize)
    }

    /// Whether `p` is exactly a slot's block pointer ([`Page::slot_of`] without the index:
    /// a subtraction, a multiplication and a rotation).
    #[inline(always)]
    pub(crate) fn is_slot(&self, p: usize) -> bool {
        let off = p.wrapping_sub(self.base.load(Ordering::Relaxed)).wrapping_sub(FIRST);
        let lr = self.limit_rot.load(Ordering::Relaxed);
        let x = (off as u64)
            .wrapping_mul(self.div_inv.load(Ordering::Relaxed))
            .rotate_right((lr >> 32) as u32);
        (off as u64) < lr & 0xFFFF_FFFF && x <= self.div_lim.load(Ordering::Relaxed)
    }

    /// Whether `req` is a request of the page's class (`class_of(req) == class`, by range).
    #[inline(always)]
    pub(crate) fn fits(&self, req: usize) -> bool {
        req.wrapping_sub(self.req_lo.load(Ordering::Relaxed))
            <= self.req_span.load(Ordering::Relaxed)
    }

    /// Block pointer of slot `i`.
    #[inline]
    pub(crate) fn slot_ptr(&self, i: usize) -> usize {
        self.base.load(Ordering::Relaxed)
            + FIRST
            + i * slot_size(self.class.load(Ordering::Relaxed))
    }

    /// Whether every slot is free and in no cache (class lock held by the caller).
    ///
    /// # Safety
    ///
    /// The caller holds the lock of the page's class.
    pub(crate) unsafe fn all_free(&self) -> bool {
        // SAFETY: per the contract.
        let l = unsafe { &*self.lists.get() };
        l.nfree == self.nslots.load(Ordering::Relaxed)
    }
}

/// One size class's pages with free slots.
pub(crate) struct ClassState {
    /// Pages whose `free` bitmap is not empty.
    pub partial: MetaVec<*const Page>,
    /// Every page of the class.
    pub pages: MetaVec<*const Page>,
    /// Whole batches of free slots given back, in no page's bitmap.
    pub batches: MetaVec<[usize; BATCH]>,
}

// SAFETY: the page pointers are descriptors that live forever.
unsafe impl Send for ClassState {}

/// A heap's front end.
pub(crate) struct Front {
    /// Bit `c` set: class `c` is served by the front end.
    pub active: AtomicU64,
    /// Allocations of each class seen by the back end (H71's activation count).
    pub counts: [AtomicU32; LFH_CLASSES],
    /// Per-class lists.
    pub classes: [Spin<ClassState>; LFH_CLASSES],
}

impl Front {
    /// An idle front end.
    pub(crate) fn new() -> Front {
        Front {
            active: AtomicU64::new(0),
            counts: [const { AtomicU32::new(0) }; LFH_CLASSES],
            classes: std::array::from_fn(|_| {
                Spin::new(ClassState {
                    partial: meta_vec(),
                    pages: meta_vec(),
                    batches: meta_vec(),
                })
            }),
        }
    }

    /// Whether class `c` is served here.
    #[inline]
    pub(crate) fn is_active(&self, c: usize) -> bool {
        self.active.load(Ordering::Relaxed) & (1 << c) != 0
    }

    /// Lists a freshly assigned page in its class.
    pub(crate) fn add_page(&self, page: &'static Page) {
        let c = page.class.load(Ordering::Relaxed);
        self.classes[c].with(|cs| {
            cs.pages.push(page);
            cs.partial.push(page);
            // SAFETY: class lock held.
            unsafe { (*page.lists.get()).listed = true };
        });
    }

    /// Takes up to `out.len()` free slots of class `c` (block pointers); returns how many. The
    /// slots stay "not live" (header 0) until handed out.
    pub(crate) fn take(&self, c: usize, out: &mut [usize]) -> usize {
        self.classes[c].with(|cs| {
            if out.len() == BATCH {
                if let Some(b) = cs.batches.pop() {
                    out.copy_from_slice(&b);
                    return BATCH;
                }
            }
            let mut n = 0;
            while n < out.len() {
                let Some(&page) = cs.partial.last() else { break };
                // SAFETY: descriptors live forever; class lock held.
                let page = unsafe { &*page };
                let l = unsafe { &mut *page.lists.get() };
                let mut w = 0;
                while n < out.len() && l.nfree > 0 {
                    while l.free[w] == 0 {
                        w += 1;
                    }
                    let b = l.free[w].trailing_zeros() as usize;
                    l.free[w] &= !(1 << b);
                    l.nfree -= 1;
                    let i = w * 64 + b;
                    out[n] = page.slot_ptr(i);
                    n += 1;
                }
                if l.nfree == 0 {
                    l.listed = false;
                    cs.partial.pop();
                }
            }
            n
        })
    }

    /// Gives slots of class `c` back to their pages, if the heap still has generation `gen`
    /// (checked under the class lock, which HeapDestroy takes while it changes generations):
    /// slots of a destroyed heap are dropped without touching anything.
    pub(crate) fn give_back(
        &self,
        owner: usize,
        gen: &AtomicU64,
        want_gen: u64,
        c: usize,
        slots: &[usize],
        map: &GranuleMap,
    ) {
        self.classes[c].with(|cs| {
            if gen.load(Ordering::Relaxed) != want_gen {
                return;
            }
            if slots.len() == BATCH && cs.batches.len() < MAX_BATCHES {
                cs.batches.push(slots.try_into().expect("a batch"));
                return;
            }
            Self::to_pages(cs, owner, slots, map);
        });
    }

    /// Gives slots back to their pages' bitmaps (class lock held): a slot that is not one of
    /// `owner`'s pages, or already free, is skipped.
    fn to_pages(cs: &mut ClassState, owner: usize, slots: &[usize], map: &GranuleMap) {
        for &p in slots {
            let Some((Tag::Page, d)) = map.get(p) else { continue };
            // SAFETY: descriptors live forever.
            let page = unsafe { &*(d as *const Page) };
            if page.owner.load(Ordering::Relaxed) != owner {
                continue;
            }
            let Some(i) = page.slot_of(p) else { continue };
            // SAFETY: class lock held.
            let l = unsafe { &mut *page.lists.get() };
            if l.free[i / 64] & (1 << (i % 64)) != 0 {
                continue;
            }
            l.free[i / 64] |= 1 << (i % 64);
            l.nfree += 1;
            if !l.listed {
                l.listed = true;
                cs.partial.push(page);
            }
        }
    }

    /// Removes from class `c` every page whose slots are all free and in no cache, and
    /// returns them (HeapCompact; the caller holds the heap lock). The class's batches go
    /// back to their pages first.
    pub(crate) fn take_empty_pages(&self, owner: usize, map: &GranuleMap, c: usize, out: &mut MetaVec<*const Page>) {
        self.classes[c].with(|cs| {
            while let Some(b) = cs.batches.pop() {
                Self::to_pages(cs, owner, &b, map);
            }
            // SAFETY: descriptors live forever; class lock held.
            let empty = |p: &*const Page| unsafe { (**p).all_free() };
            out.extend(cs.pages.iter().copied().filter(empty));
            cs.pages.retain(|p| !empty(p));
            cs.partial.retain(|p| !empty(p));
        });
    }

    /// Forgets every page (HeapDestroy), under each class lock.
    pub(crate) fn clear(&self) {
        for cl in &self.classes {
            cl.with(|cs| {
                cs.partial.clear();
                cs.pages.clear();
                cs.batches.clear();
            });
        }
        self.active.store(0, Ordering::Relaxed);
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }
}

const _: () = assert!(std::mem::offset_of!(Page, owner) == 64);
const _: () = assert!(std::mem::size_of::<Page>() % 128 == 0);
