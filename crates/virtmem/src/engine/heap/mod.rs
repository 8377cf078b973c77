//! Windows heaps (`docs/heap-spec.md`), built on the engine's own reserve / commit / decommit /
//! release: every heap segment, front-end arena and large block is an ordinary MEM_PRIVATE
//! allocation that VirtualQuery reports (H76).
//!
//! Two layers, as in Windows (§6):
//!
//! * the **back end** (`backend.rs`, `large.rs`), under the heap lock (H54): segments of
//!   16-byte granules with 8-byte in-band headers (H27), coalescing free ranges, commit on
//!   demand, and large blocks in their own reservations;
//! * the **front end** (`lfh.rs`, `cache.rs`): once a size class has been allocated 0x12
//!   times on a serialized growable heap (H71), its blocks come from 64 KiB pages of equal
//!   slots, through per-thread caches; it never takes the heap lock (H56).
//!
//! Every pointer handed to HeapFree / HeapSize / HeapReAlloc / HeapValidate is resolved through
//! the heap's own tables first (`map.rs`: granule → descriptor; then the descriptor's exact
//! busy bitmap or slot states), so a freed, foreign, interior, misaligned or unmapped pointer
//! is refused before any list changes and no memory outside the heap's committed blocks is
//! read (H31, H34, H43). Control state lives out of band on the metadata heap; nothing here
//! calls `malloc`. Handles are looked up, never dereferenced (H50).
//!
//! Heap memory is touched only through `access.rs` (raw words on real memory, simulated
//! accesses otherwise), so the engine is generic over the backend.

mod access;
mod backend;
mod cache;
mod holes;
mod large;
mod lfh;
mod lock;
mod lookaside;
mod map;
mod ranges;
mod tls;
mod walk;

pub use walk::WalkEntry;

use super::Space;
use crate::error::{Error, Result};
use crate::os::linux::metaheap::{meta_vec, MetaVec};
use crate::os::{KernelRegion, Os};
use crate::rules::heap::{self as rules, class_of, granules};
use crate::rules::{Placement, Protection};
use backend::Segment;
use large::Large;
use lfh::{Front, Page};
use lock::{HeapMutex, Spin};
use lookaside::Lookaside;
use map::{GranuleMap, Tag};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Pages of one front-end arena (a 4 MiB reservation).
const ARENA_PAGES: usize = 64;

/// One heap's descriptor (pooled in its [`Heaps`], never freed: stale references from
/// per-thread caches or racing calls stay valid memory).
/// (The fields the fast paths read come first, in one cache line; see [`Heaps`].)
#[repr(C, align(64))]
pub(crate) struct Heap {
    /// The handle (first segment's base); 0 once destroyed.
    handle: AtomicUsize,
    /// Changes on every creation and destruction.
    gen: AtomicU64,
    /// Small number identifying the descriptor (per-thread cache way).
    slot: usize,
    /// Header encoding key.
    key: AtomicU64,
    /// Creation flags (H9).
    flags: AtomicU32,
    /// HeapCompatibilityInformation (0 or 2).
    compat: AtomicU32,
    cached: bool,
    /// Whether this is a process heap (set once; a process heap is never destroyed, so its
    /// descriptor is never reused).
    process: std::sync::atomic::AtomicBool,
    /// The first segment's granule count and bit table ([`backend::BitsView`]; the handle is
    /// its base): fixed for the heap's life, so a HEAP_NO_SERIALIZE heap's free checks a
    /// block there without the map or the segment's descriptor.
    seg0_ngran: AtomicUsize,
    seg0_words: AtomicUsize,
    map: *const GranuleMap,
    lock: HeapMutex,
    front: Front,
    st: UnsafeCell<State>,
}

// The fast paths read only the first cache line (handle, key, flags, the seg0 view).
const _: () = assert!(std::mem::offset_of!(Heap, seg0_words) + 8 <= 64);

// SAFETY: `st` is reached only under `lock` (or by a HEAP_NO_SERIALIZE caller, who promises
// exclusive use); everything else is atomic or immutable.
unsafe impl Sync for Heap {}
// SAFETY: as above.
unsafe impl Send for Heap {}

struct Arena {
    base: usize,
    used: u64,
    pages: [*const Page; ARENA_PAGES],
}


/// A heap's back-end state (under its lock).
struct State {
    /// Heaps without a front end keep small freed back-end blocks here (`lookaside.rs`).
    la: Lookaside,
    segments: MetaVec<*const Segment>,
    arenas: MetaVec<Arena>,
    large: MetaVec<*const Large>,
    /// Size of the last segment added (H7).
    last_segment: usize,
    /// A fixed heap's reservation, 0 for growable heaps.
    max: usize,
    /// A released large block's reservation kept for the next one, with its descriptor: the
    /// descriptor's owner is 0 (so the freed pointer resolves to nothing: a double free is
    /// refused), but its base, size and granule-map entries stay, so the next large block of
    /// a fitting size takes it without the registry lock or any map store. HeapCompact and
    /// HeapDestroy release it ([`Heaps::drop_spare`]).
    spare: Option<&'static Large>,
}

impl Heap {
    /// Whether this is its address space's process heap.
    #[inline(always)]
    pub(crate) fn is_process(&self) -> bool {
        self.process.load(Ordering::Relaxed)
    }

    fn generation(&self) -> u64 {
        self.gen.load(Ordering::Relaxed)
    }

    fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn id(&self) -> usize {
        self as *const Heap as usize
    }

    /// Gives front-end slots back to their pages (per-thread cache overflow or flush).
    fn give_back(&self, gen: u64, c: usize, slots: &[cache::Item]) {
        // SAFETY: the map lives as long as the `Heaps` that made this descriptor, which
        // lives for the program (`Heaps::new` leaks it).
        let map = unsafe { &*self.map };
        self.front.give_back(self.id(), &self.gen, gen, c, slots, map);
    }

    #[inline]
    fn encode(&self, p: usize, req: usize) -> u64 {
        (req as u64) ^ self.key.load(Ordering::Relaxed) ^ (p as u64).rotate_left(17)
    }

    #[inline]
    fn decode(&self, p: usize, word: u64) -> usize {
        (word ^ self.key.load(Ordering::Relaxed) ^ (p as u64).rotate_left(17)) as usize
    }

    /// The requested size of the front-end slot `p` of class `class`, if it is live: its header
    /// decodes to a size of that class (a free slot's header is 0, which never does: `lfh.rs`).
    #[inline]
    fn live_slot(&self, p: usize, class: usize, word: u64) -> Option<usize> {
        let req = self.decode(p, word);
        (class_of(req) == Some(class)).then_some(req)
    }
}

struct Registry {
    /// Live heaps, in creation order (the process heap first).
    live: MetaVec<*const Heap>,
    spare_heaps: MetaVec<*const Heap>,
    spare_segments: MetaVec<*const Segment>,
    spare_pages: MetaVec<*const Page>,
    spare_large: MetaVec<*const Large>,
    next_slot: usize,
}

// SAFETY: the pointers are descriptors that live forever.
unsafe impl Send for Registry {}


/// The heaps of one address space.
///
/// The fields every HeapAlloc / HeapFree reads (the process heap's handle and descriptor, the
/// granule map) come first, in one cache line: fewer lines on the fast paths, fewer chances
/// for two of them to collide in the processor's L1 way predictor, whose hash of the address
/// bits changes with every run's address-space layout.
#[repr(C, align(64))]
pub struct Heaps<'s, O: Os> {
    process: AtomicUsize,
    process_heap: AtomicPtr<Heap>,
    map: GranuleMap,
    space: &'s Space<O>,
    registry: Spin<Registry>,
    process_once: std::sync::Once,
}

/// A block resolved from a pointer.
enum Block {
    Slot {
        page: &'static Page,
        i: usize,
        req: usize,
    },
    Seg {
        seg: &'static Segment,
        g: usize,
        n: usize,
        req: usize,
    },
    Large {
        large: &'static Large,
        req: usize,
    },
}

/// What a heap-wide pass reports (HeapValidate(NULL), HeapSummary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Sum of the requested sizes of live blocks.
    pub allocated: usize,
    /// Committed bytes of the heap's reservations.
    pub committed: usize,
    /// Reserved bytes.
    pub reserved: usize,
    /// The fixed maximum, or the reserved bytes of a growable heap (H68 (our decision)).
    pub max_reserve: usize,
    /// Whether every block header is intact.
    pub intact: bool,
}

fn leak<'a, T: 'a>(v: T) -> &'a T {
    crate::os::linux::metaheap::MetaBox::leak(crate::os::linux::metaheap::MetaBox::new_in(
        v,
        crate::os::linux::metaheap::Meta,
    ))
}

fn random_key() -> u64 {
    let mut k = 0u64;
    // SAFETY: writes at most 8 bytes into `k`.
    let n = unsafe { libc::getrandom((&mut k as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
    if n != 8 {
        k = (&k as *const u64 as u64).rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
    }
    // Bit 17: a zero header never decodes to a live slot's size (`lfh.rs`).
    k | 1 | 1 << 17
}

fn nomem(_: Error) -> Error {
    Error::NotEnoughMemory("the heap cannot grow")
}

/// What HeapFree's fast path ([`Heaps::free_front`]) did, or which out-of-line path finishes
/// the call (nothing changed yet, except for `Overflow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeStep {
    /// Freed.
    Done,
    /// Not decided here: [`Heaps::free`] frees the block or says why it is refused.
    General,
    /// A large block (its descriptor): [`Heaps::free_large_front`].
    Large(usize),
    /// A block of a HEAP_NO_SERIALIZE heap (the heap's descriptor):
    /// [`Heaps::free_unserialized`].
    Unserialized(usize),
    /// A freed front-end slot of the page (its map entry) that this thread's cache had no
    /// room for: [`Heaps::free_overflow`] finishes it (the slot is already not live).
    Overflow(usize),
}

/// [`Heaps::free_unserialized`]: freed.
pub const UNSERIALIZED_FREED: usize = 0;
/// [`Heaps::free_unserialized`]: nothing changed, go on with [`Heaps::free`].
pub const UNSERIALIZED_GENERAL: usize = 1;

/// [`Heaps::alloc_front`]: go on with [`Heaps::alloc`].
pub const ALLOC_GENERAL: usize = 0;
/// [`Heaps::alloc_front`]: go on with [`Heaps::alloc_lookaside_front`].
pub const ALLOC_LOOKASIDE: usize = 8;
/// [`Heaps::alloc_front`]: go on with [`Heaps::alloc_large_front`].
pub const ALLOC_LARGE: usize = 16;

static NATIVE: std::sync::OnceLock<&'static Heaps<'static, crate::os::linux::LinuxOs>> =
    std::sync::OnceLock::new();
/// [`NATIVE`]'s value once set: one load on the fast paths instead of the `OnceLock`'s two.
static NATIVE_PTR: std::sync::atomic::AtomicPtr<Heaps<'static, crate::os::linux::LinuxOs>> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

impl Heaps<'static, crate::os::linux::LinuxOs> {
    /// The heaps of this process's real address space.
    #[inline(always)]
    pub(crate) fn native() -> &'static Heaps<'static, crate::os::linux::LinuxOs> {
        let p = NATIVE_PTR.load(Ordering::Acquire);
        if p.is_null() {
            return Self::native_init();
        }
        // SAFETY: only the leaked, never-freed value of `NATIVE` is stored.
        unsafe { &*p }
    }

    /// The native heaps if they exist already (the fast paths make no calls).
    #[inline(always)]
    pub(crate) fn native_ready() -> Option<&'static Heaps<'static, crate::os::linux::LinuxOs>> {
        // SAFETY: only the leaked, never-freed value of `NATIVE` is stored.
        unsafe { NATIVE_PTR.load(Ordering::Acquire).as_ref() }
    }

    #[cold]
    #[inline(never)]
    fn native_init() -> &'static Heaps<'static, crate::os::linux::LinuxOs> {
        let h = *NATIVE.get_or_init(|| Heaps::new(Space::native()));
        NATIVE_PTR.store(h as *const Self as *mut Self, Ordering::Release);
        h
    }
}

impl<'s, O: Os> Heaps<'s, O> {
    /// The heaps of `space` (none yet; the process heap is made on first use). The value is
    /// leaked: heap descriptors refer to it for the program's lifetime.
    pub fn new(space: &'s Space<O>) -> &'s Heaps<'s, O> {
        let h = Heaps {
            space,
            map: GranuleMap::new(),
            registry: Spin::new(Registry {
                live: meta_vec(),
                spare_heaps: meta_vec(),
                spare_segments: meta_vec(),
                spare_pages: meta_vec(),
                spare_large: meta_vec(),
                next_slot: 0,
            }),
            process: AtomicUsize::new(0),
            process_heap: AtomicPtr::new(std::ptr::null_mut()),
            process_once: std::sync::Once::new(),
        };
        leak(h)
    }

    fn prot(flags: u32) -> Protection {
        let v = if flags & rules::CREATE_ENABLE_EXECUTE != 0 {
            crate::vocab::consts::PAGE_EXECUTE_READWRITE
        } else {
            crate::vocab::consts::PAGE_READWRITE
        };
        Protection::parse(v, false).expect("a valid protection")
    }

    // ----- descriptors ------------------------------------------------------------------

    fn new_heap(&self) -> &'static Heap {
        let spare = self.registry.with(|r| {
            let s = r.spare_heaps.pop();
            let slot = r.next_slot;
            if s.is_none() {
                r.next_slot += 1;
            }
            (s, slot)
        });
        if let (Some(h), _) = spare {
            // SAFETY: descriptors live forever.
            return unsafe { &*h };
        }
        leak(Heap {
            handle: AtomicUsize::new(0),
            seg0_ngran: AtomicUsize::new(0),
            seg0_words: AtomicUsize::new(0),
            gen: AtomicU64::new(0),
            slot: spare.1,
            flags: AtomicU32::new(0),
            key: AtomicU64::new(0),
            compat: AtomicU32::new(0),
            lock: HeapMutex::new(),
            front: Front::new(),
            map: &self.map,
            cached: self.space.os().real_memory(),
            process: std::sync::atomic::AtomicBool::new(false),
            st: UnsafeCell::new(State {
                segments: meta_vec(),
                arenas: meta_vec(),
                large: meta_vec(),
                la: Lookaside::new(),
                last_segment: 0,
                max: 0,
                spare: None,
            }),
        })
    }

    fn new_segment(&self) -> &'static Segment {
        match self.registry.with(|r| r.spare_segments.pop()) {
            // SAFETY: descriptors live forever.
            Some(s) => unsafe { &*s },
            None => leak(Segment::new()),
        }
    }

    fn new_page(&self) -> &'static Page {
        match self.registry.with(|r| r.spare_pages.pop()) {
            // SAFETY: descriptors live forever.
            Some(p) => unsafe { &*p },
            None => leak(Page::new()),
        }
    }

    fn new_large(&self) -> &'static Large {
        match self.registry.with(|r| r.spare_large.pop()) {
            // SAFETY: descriptors live forever.
            Some(l) => unsafe { &*l },
            None => leak(Large::new()),
        }
    }

    /// Releases the heap's spare large reservation (heap lock held) and clears its map
    /// entries; returns its descriptor for the registry's pool.
    fn drop_spare(&self, st: &mut State) -> Option<&'static Large> {
        let l = st.spare.take()?;
        let b = l.base.load(Ordering::Relaxed);
        self.map.set(b, b + l.size.load(Ordering::Relaxed), Tag::Large, 0);
        let _ = self.space.release(b);
        Some(l)
    }

    // ----- creation, lookup, destruction ------------------------------------------------

    /// HeapCreate (H1–H9): the new heap's handle.
    pub fn create(&self, options: u32, initial: usize, maximum: usize) -> Result<usize> {
        let plan = rules::create_plan(options, initial, maximum, self.space.page())?;
        let prot = Self::prot(plan.flags);
        let base = self
            .space
            .reserve(Placement::Anywhere, plan.reserve, false, prot, false)
            .map_err(nomem)?;
        if let Err(e) = self.space.commit(base, base + plan.commit, prot) {
            let _ = self.space.release(base);
            return Err(nomem(e));
        }
        let heap = self.new_heap();
        heap.flags.store(plan.flags, Ordering::Relaxed);
        heap.key.store(random_key(), Ordering::Relaxed);
        heap.compat.store(0, Ordering::Relaxed);
        let gen = heap.gen.fetch_add(1, Ordering::Relaxed) + 1;
        // SAFETY: the descriptor is not published yet: nobody else reaches its state.
        let st = unsafe { &mut *heap.st.get() };
        let seg = self.new_segment();
        seg.assign(heap.id(), gen, base, plan.reserve, plan.commit);
        st.segments.clear();
        st.segments.push(seg);
        // SAFETY: not published yet.
        let view = unsafe { seg.inner() }.bits_view();
        heap.seg0_ngran.store(view.ngran, Ordering::Relaxed);
        heap.seg0_words.store(view.words as usize, Ordering::Relaxed);
        st.arenas.clear();
        st.large.clear();
        st.la.clear();
        st.last_segment = plan.reserve;
        st.max = if plan.growable { 0 } else { plan.reserve };
        st.spare = None;
        self.map.set(base, base + plan.reserve, Tag::Segment, seg as *const Segment as usize);
        heap.handle.store(base, Ordering::Release);
        self.registry.with(|r| r.live.push(heap));
        Ok(base)
    }

    /// GetProcessHeap (H51): the process heap's handle, made on first use.
    pub fn process_heap(&self) -> Result<usize> {
        let h = self.process.load(Ordering::Acquire);
        if h != 0 {
            return Ok(h);
        }
        self.process_once.call_once(|| {
            if let Ok(h) = self.create(0, 0, 0) {
                if let Ok(heap) = self.lookup(h) {
                    // Before the handle is published: no thread caches it in another way.
                    heap.process.store(true, Ordering::Relaxed);
                    self.process_heap
                        .store(heap as *const Heap as *mut Heap, Ordering::Relaxed);
                    self.process.store(h, Ordering::Release);
                }
            }
        });
        match self.process.load(Ordering::Acquire) {
            0 => Err(Error::NotEnoughMemory("the process heap cannot be created")),
            h => Ok(h),
        }
    }

    /// The live heap whose handle is `h` (H50: by lookup, never by dereference).
    #[inline(always)]
    fn lookup(&self, h: usize) -> Result<&'static Heap> {
        match self.lookup_fast(h) {
            Some(heap) => Ok(heap),
            None => self.lookup_slow(h),
        }
    }

    /// [`Heaps::lookup`] without its slow path (the fast paths make no calls): the process
    /// heap or this thread's last heap, else `None`.
    #[inline(always)]
    fn lookup_fast(&self, h: usize) -> Option<&'static Heap> {
        if h != 0 && h == self.process.load(Ordering::Relaxed) {
            // SAFETY: set with the handle; descriptors live forever.
            return Some(unsafe { &*self.process_heap.load(Ordering::Relaxed) });
        }
        self.lookup_last(h)
    }

    /// [`Heaps::lookup_fast`] past the process heap: this thread's last heap, else `None`.
    #[inline(always)]
    fn lookup_last(&self, h: usize) -> Option<&'static Heap> {
        // SAFETY: this thread's own block; the copy is read at once.
        let (k, kh, d) = cache::tls().map_or((0, 0, 0), |t| unsafe { (*t).last_heap });
        if k == self as *const Self as usize && kh == h && h != 0 {
            // SAFETY: `d` was a heap descriptor of this `Heaps`; descriptors live forever.
            let heap = unsafe { &*(d as *const Heap) };
            // As in `lookup`: the descriptor still has handle `h` only while it is heap `h`.
            if heap.handle.load(Ordering::Acquire) == h {
                return Some(heap);
            }
        }
        None
    }

    /// [`Heaps::lookup`] past the per-thread entry: through the granule map, then remembered.
    #[cold]
    #[inline(never)]
    fn lookup_slow(&self, h: usize) -> Result<&'static Heap> {
        let heap = self.lookup_map(h)?;
        if let Some(t) = cache::tls() {
            // SAFETY: this thread's own block; no other reference to it is live.
            unsafe { (*t).last_heap = (self as *const Self as usize, h, heap.id()) };
        }
        Ok(heap)
    }

    fn lookup_map(&self, h: usize) -> Result<&'static Heap> {
        if let Some((Tag::Segment, d)) = self.map.get(h) {
            // SAFETY: descriptors live forever.
            let seg = unsafe { &*(d as *const Segment) };
            let owner = seg.owner.load(Ordering::Acquire);
            if owner != 0 && seg.base.load(Ordering::Relaxed) == h {
                // SAFETY: a segment's owner is a heap descriptor, which lives forever.
                let heap = unsafe { &*(owner as *const Heap) };
                if heap.handle.load(Ordering::Acquire) == h {
                    return Ok(heap);
                }
            }
        }
        Err(Error::InvalidHandle)
    }

    /// HeapDestroy (H49, H50): releases every reservation of the heap at once.
    pub fn destroy(&self, h: usize) -> Result<()> {
        let heap = self.lookup(h)?;
        if h == self.process.load(Ordering::Relaxed) {
            return Err(Error::InvalidHandle);
        }
        heap.lock.lock();
        if heap.handle.load(Ordering::Relaxed) != h {
            heap.lock.unlock();
            return Err(Error::InvalidHandle);
        }
        heap.handle.store(0, Ordering::Release);
        // A new generation, under every class lock: per-thread caches and their flushes
        // see it before they touch anything of this heap again.
        for c in &heap.front.classes {
            c.acquire();
        }
        heap.gen.fetch_add(1, Ordering::Relaxed);
        for c in &heap.front.classes {
            c.release();
        }
        heap.front.clear();
        // SAFETY: heap lock held.
        let st = unsafe { &mut *heap.st.get() };
        let mut segs = meta_vec::<*const Segment>();
        let mut pages = meta_vec::<*const Page>();
        let mut larges = meta_vec::<*const Large>();
        for &s in st.segments.iter() {
            // SAFETY: descriptors live forever.
            let seg = unsafe { &*s };
            // SAFETY: heap lock held.
            let i = unsafe { seg.inner() };
            self.map.set(i.base, i.base + i.reserve, Tag::Segment, 0);
            seg.owner.store(0, Ordering::Release);
            let _ = self.space.release(i.base);
            segs.push(s);
        }
        for a in st.arenas.iter() {
            for &p in a.pages.iter().filter(|p| !p.is_null()) {
                // SAFETY: descriptors live forever.
                let page = unsafe { &*p };
                let b = page.base.load(Ordering::Relaxed);
                self.map.set(b, b + lfh::PAGE, Tag::Page, 0);
                page.owner.store(0, Ordering::Release);
                pages.push(p);
            }
            let _ = self.space.release(a.base);
        }
        for &l in st.large.iter() {
            // SAFETY: descriptors live forever.
            let large = unsafe { &*l };
            let b = large.base.load(Ordering::Relaxed);
            self.map
                .set(b, b + large.size.load(Ordering::Relaxed), Tag::Large, 0);
            large.owner.store(0, Ordering::Release);
            let _ = self.space.release(b);
            larges.push(l);
        }
        if let Some(l) = self.drop_spare(st) {
            larges.push(l);
        }
        st.segments.clear();
        st.arenas.clear();
        st.large.clear();
        st.la.clear();
        // Every level: the caller may have locked the heap with HeapLock before destroying it,
        // and the descriptor goes back to the registry for the next HeapCreate.
        heap.lock.unlock_all();
        self.registry.with(|r| {
            r.live.retain(|&x| !std::ptr::eq(x, heap));
            r.spare_heaps.push(heap);
            r.spare_segments.extend(segs.iter().copied());
            r.spare_pages.extend(pages.iter().copied());
            r.spare_large.extend(larges.iter().copied());
        });
        Ok(())
    }

    /// GetProcessHeaps (H12, H52): every live heap's handle, the process heap first, then in
    /// creation order.
    pub(crate) fn handles(&self) -> MetaVec<usize> {
        let _ = self.process_heap();
        let mut out = meta_vec();
        self.registry.with(|r| {
            for &h in r.live.iter() {
                // SAFETY: descriptors live forever.
                let h = unsafe { &*h }.handle.load(Ordering::Relaxed);
                if h != 0 {
                    out.push(h);
                }
            }
        });
        out
    }

    // ----- locking ----------------------------------------------------------------------

    /// Runs `f` on the heap's back-end state with its lock held, unless the call is
    /// HEAP_NO_SERIALIZE (H13, H14). Fails with ERROR_INVALID_HANDLE if the heap was destroyed
    /// meanwhile.
    fn locked<R>(
        &self,
        heap: &Heap,
        h: usize,
        flags: u32,
        f: impl FnOnce(&mut State) -> Result<R>,
    ) -> Result<R> {
        // One thread in the process: nothing to exclude (`lock::single_threaded`).
        let serialize = rules::effective_flags(heap.flags(), flags) & rules::NO_SERIALIZE == 0
            && !lock::single_threaded();
        struct Unlock<'a>(Option<&'a HeapMutex>);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                if let Some(l) = self.0 {
                    l.unlock();
                }
            }
        }
        let _u = if serialize {
            heap.lock.lock();
            Unlock(Some(&heap.lock))
        } else {
            Unlock(None)
        };
        if heap.handle.load(Ordering::Acquire) != h {
            return Err(Error::InvalidHandle);
        }
        // SAFETY: lock held (or the caller's HEAP_NO_SERIALIZE promise); no other reference
        // to the state is live (`f` does not re-enter `locked`).
        f(unsafe { &mut *heap.st.get() })
    }

    /// HeapLock (H54, H55).
    pub fn lock(&self, h: usize) -> Result<()> {
        let heap = self.lookup(h)?;
        if heap.flags() & rules::NO_SERIALIZE == 0 {
            heap.lock.lock();
        }
        Ok(())
    }

    /// HeapUnlock (H54, H55, H57).
    pub fn unlock(&self, h: usize) -> Result<()> {
        let heap = self.lookup(h)?;
        if heap.flags() & rules::NO_SERIALIZE != 0 || heap.lock.unlock() {
            Ok(())
        } else {
            Err(Error::NotLocked)
        }
    }

    // ----- pointers ---------------------------------------------------------------------

    /// The error for a pointer that is not a live block (H34, H43 (our decision)): ERROR_NOACCESS if
    /// nothing is mapped there, else ERROR_INVALID_PARAMETER.
    fn bad(&self, p: usize) -> Error {
        if self.space.find(p).is_none()
            && matches!(self.space.os().kernel_region(p), KernelRegion::Free { .. })
        {
            Error::NoAccess("the pointer is not in mapped memory")
        } else {
            Error::InvalidParameter("not a live block of this heap")
        }
    }

    /// Resolves a front-end slot pointer without any lock.
    #[inline]
    fn resolve_slot(&self, heap: &Heap, p: usize, d: usize) -> Option<Block> {
        // SAFETY: descriptors live forever.
        let page = unsafe { &*(d as *const Page) };
        // A page of a destroyed heap has no owner (HeapDestroy clears it before the
        // descriptor is reused), so the owner check also rules out old generations.
        if page.owner.load(Ordering::Acquire) != heap.id() {
            return None;
        }
        let i = page.slot_of(p)?;
        let req = heap.live_slot(
            p,
            page.class.load(Ordering::Relaxed),
            self.space.heap_load(p - 8),
        )?;
        Some(Block::Slot { page, i, req })
    }

    /// Resolves a back-end or large pointer (heap lock held).
    fn resolve_locked(&self, heap: &Heap, p: usize, tag: Tag, d: usize) -> Option<Block> {
        match tag {
            Tag::Page => self.resolve_slot(heap, p, d),
            Tag::Segment => {
                // SAFETY: descriptors live forever.
                let seg = unsafe { &*(d as *const Segment) };
                if seg.owner.load(Ordering::Acquire) != heap.id() {
                    return None;
                }
                // SAFETY: the owner's lock is held by the caller.
                let i = unsafe { seg.inner() };
                let g = i.granule_of(p)?;
                if !i.is_busy(g) {
                    return None;
                }
                // A block waiting in the look-aside has a header no live block has: its
                // size decodes to nothing that ends cleanly (`lookaside.rs`).
                let req = heap.decode(p, self.space.heap_load(p - 8));
                let n = granules(req)?;
                i.ends_cleanly(g, n)
                    .then_some(Block::Seg { seg, g, n, req })
            }
            Tag::Large => {
                // SAFETY: descriptors live forever.
                let large = unsafe { &*(d as *const Large) };
                if large.owner.load(Ordering::Acquire) != heap.id() || large.ptr() != p {
                    return None;
                }
                let req = large.req.load(Ordering::Relaxed);
                (heap.decode(p, self.space.heap_load(p - 8)) == req)
                    .then_some(Block::Large { large, req })
            }
        }
    }

    // ----- allocation -------------------------------------------------------------------

    /// HeapAlloc's fast path: a block from this thread's cache of an active front-end class
    /// (its address), or [`ALLOC_GENERAL`] / [`ALLOC_LOOKASIDE`]: nothing changed, the caller
    /// goes on with [`Heaps::alloc`] or [`Heaps::alloc_lookaside_front`] (tail calls: no call
    /// is made here).
    #[inline(always)]
    pub fn alloc_front(&self, h: usize, flags: u32, req: usize) -> usize {
        if h != 0 && h == self.process.load(Ordering::Relaxed) {
            // SAFETY: set with the handle; descriptors live forever.
            let heap = unsafe { &*self.process_heap.load(Ordering::Relaxed) };
            return self.alloc_front_process(heap, flags, req);
        }
        let Some(heap) = self.lookup_last(h) else {
            return ALLOC_GENERAL;
        };
        // A HEAP_NO_SERIALIZE heap never has a front end (`rules::lfh_eligible`): its
        // look-asides, inline unless the block must be zeroed (a call).
        if heap.flags() & rules::NO_SERIALIZE != 0 {
            if rules::effective_flags(heap.flags(), flags) & rules::ZERO_MEMORY != 0 {
                return ALLOC_LOOKASIDE;
            }
            if req >= rules::LARGE_THRESHOLD {
                return ALLOC_LARGE;
            }
            return match granules(req) {
                // SAFETY: a HEAP_NO_SERIALIZE heap's state is its caller's alone for the call.
                Some(n) => match unsafe { &mut *heap.st.get() }.la.take(n) {
                    Some(p) => {
                        self.space.heap_store(p - 8, heap.encode(p, req));
                        p
                    }
                    None => ALLOC_GENERAL,
                },
                None => ALLOC_GENERAL,
            };
        }
        let Some(c) = class_of(req) else {
            return Self::beyond_front(req);
        };
        // No test of the class being active: a slot in this thread's way of the heap's
        // current generation comes from a page of an active class (classes become inactive
        // only when HeapDestroy ends the generation).
        if !heap.cached || rules::effective_flags(heap.flags(), flags) & rules::ZERO_MEMORY != 0
        {
            return ALLOC_GENERAL;
        }
        let Some(p) = cache::pop(heap, c) else {
            return ALLOC_GENERAL;
        };
        // The header makes the slot live (`lfh.rs`).
        self.space.heap_store(p - 8, heap.encode(p, req));
        p
    }

    /// [`Heaps::alloc_front`] on the process heap: its own way of the thread cache (no
    /// generation: never destroyed), and no test of the class being active: only active
    /// classes have pages, so a cached slot means an active class (the process heap's classes
    /// never become inactive; only HeapDestroy resets them).
    #[inline(always)]
    fn alloc_front_process(&self, heap: &Heap, flags: u32, req: usize) -> usize {
        let Some(c) = class_of(req) else {
            return Self::beyond_front(req);
        };
        if rules::effective_flags(heap.flags(), flags) & rules::ZERO_MEMORY != 0 {
            return ALLOC_GENERAL;
        }
        let Some(p) = cache::pop_process(heap, c) else {
            return ALLOC_GENERAL;
        };
        // The header makes the slot live (`lfh.rs`).
        self.space.heap_store(p - 8, heap.encode(p, req));
        p
    }

    /// Where HeapAlloc goes on with a request the front end does not serve.
    #[inline(always)]
    fn beyond_front(req: usize) -> usize {
        if req >= rules::LARGE_THRESHOLD {
            ALLOC_LARGE
        } else {
            ALLOC_GENERAL
        }
    }

    /// Finishes [`ALLOC_LOOKASIDE`]: a block from a HEAP_NO_SERIALIZE heap's look-asides, or
    /// 0 (nothing changed; the caller goes on with [`Heaps::alloc`]).
    #[inline(never)]
    pub fn alloc_lookaside_front(&self, h: usize, flags: u32, req: usize) -> usize {
        match self.lookup(h) {
            Ok(heap) => self.la_alloc_unserialized(heap, flags, req).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// HeapAlloc (H13–H28).
    #[inline]
    pub fn alloc(&self, h: usize, flags: u32, req: usize) -> Result<usize> {
        let heap = self.lookup(h)?;
        let fl = rules::effective_flags(heap.flags(), flags);
        if let Some(c) = class_of(req) {
            if heap.front.is_active(c) {
                if let Some(p) = self.front_alloc(heap, h, c, req, fl) {
                    return Ok(p);
                }
            }
        }
        self.alloc_slow(heap, h, fl, req)
    }

    fn front_alloc(&self, heap: &Heap, h: usize, c: usize, req: usize, fl: u32) -> Option<usize> {
        let p = match heap.cached.then(|| cache::pop(heap, c)).flatten() {
            Some(x) => x,
            None => self.refill(heap, h, c)?,
        };
        // The header makes the slot live (`lfh.rs`).
        self.space.heap_store(p - 8, heap.encode(p, req));
        if fl & rules::ZERO_MEMORY != 0 {
            self.space.heap_zero(p, req);
        }
        Some(p)
    }

    /// Takes a batch of free slots of class `c`, adding a page if there are none.
    fn refill(&self, heap: &Heap, h: usize, c: usize) -> Option<cache::Item> {
        let mut buf = [0usize; lfh::BATCH];
        let want = if heap.cached { buf.len() } else { 1 };
        for _ in 0..4 {
            let n = heap.front.take(c, &mut buf[..want]);
            if n > 0 {
                if n > 1 {
                    cache::fill(heap, c, &buf[1..n]);
                }
                return Some(buf[0]);
            }
            self.locked(heap, h, 0, |st| self.add_page(heap, st, c)).ok()?;
        }
        None
    }

    /// Commits a new front-end page for class `c` (heap lock held).
    fn add_page(&self, heap: &Heap, st: &mut State, c: usize) -> Result<()> {
        let prot = Self::prot(heap.flags());
        let ai = match st.arenas.iter().position(|a| a.used != u64::MAX) {
            Some(i) => i,
            None => {
                let base = self
                    .space
                    .reserve(
                        Placement::Anywhere,
                        ARENA_PAGES * lfh::PAGE,
                        false,
                        prot,
                        false,
                    )
                    .map_err(nomem)?;
                st.arenas.push(Arena {
                    base,
                    used: 0,
                    pages: [std::ptr::null(); ARENA_PAGES],
                });
                st.arenas.len() - 1
            }
        };
        let a = &mut st.arenas[ai];
        let k = (!a.used).trailing_zeros() as usize;
        let pb = a.base + k * lfh::PAGE;
        self.space.commit(pb, pb + lfh::PAGE, prot).map_err(nomem)?;
        let page = self.new_page();
        page.assign(heap.id(), heap.generation(), pb, c);
        a.used |= 1 << k;
        a.pages[k] = page;
        self.map.set(pb, pb + lfh::PAGE, Tag::Page, page as *const Page as usize);
        heap.front.add_page(page);
        Ok(())
    }

    /// Whether the heap keeps freed back-end blocks of `n` granules in its look-asides
    /// (`State::la`): every size on a heap without a front end; on a heap with one, the sizes
    /// above the front end's classes (so a class's allocations still all reach the back end
    /// and count towards its activation).
    #[inline]
    fn has_lookaside(heap: &Heap, n: usize) -> bool {
        n > lookaside::LA_MAX || !rules::lfh_eligible(heap.flags())
    }

    /// A look-aside block of `n` granules, live again (its header is the caller's to write).
    #[inline(always)]
    fn la_take(st: &mut State, n: usize) -> Option<usize> {
        st.la.take_any(n)
    }

    /// Keeps the freed live block `p` (`n` granules) in the look-aside, if there is room: its
    /// header then says it waits (`lookaside.rs`).
    #[inline(always)]
    fn la_put(&self, heap: &Heap, st: &mut State, p: usize, n: usize) -> bool {
        if !st.la.put_any(n, p) {
            return false;
        }
        self.space
            .heap_store(p - 8, heap.encode(p, lookaside::WAITING | n));
        true
    }

    /// Gives every look-aside block back to its segment's free ranges (coalescing); whether
    /// there was any. Heap lock held (or the HEAP_NO_SERIALIZE caller's promise).
    fn drain_lookaside(&self, st: &mut State) -> bool {
        // In address order: neighbours coalesce at once, and the free ranges' tree nodes are
        // made in address order, as frees without look-asides would make them (a tree built
        // in the look-asides' size order was slower to search: `heap_fragmented` 3.9x ->
        // 5.3x malloc). Without memory for the list, in the look-asides' order.
        let mut all = meta_vec::<(usize, usize)>();
        let give = |p: usize, n: usize| {
            if let Some((Tag::Segment, d)) = self.map.get(p) {
                // SAFETY: descriptors live forever; lock held as above.
                let i = unsafe { (*(d as *const Segment)).inner() };
                if let Some(g) = i.granule_of(p) {
                    i.give(g, n, true);
                }
            }
        };
        let any = st.la.drain(|p, n| {
            if all.try_reserve(1).is_ok() {
                all.push((p, n));
            } else {
                give(p, n);
            }
        });
        all.sort_unstable();
        for &(p, n) in all.iter() {
            give(p, n);
        }
        any
    }

    /// The look-aside fast path of HeapAlloc on a heap created with HEAP_NO_SERIALIZE (whose
    /// callers promise not to call it concurrently, H11: no lock).
    #[inline(always)]
    fn la_alloc_unserialized(&self, heap: &Heap, flags: u32, req: usize) -> Option<usize> {
        // SAFETY: a HEAP_NO_SERIALIZE heap's state is its caller's alone for the call.
        let st = unsafe { &mut *heap.st.get() };
        let p = Self::la_take(st, granules(req)?)?;
        self.space.heap_store(p - 8, heap.encode(p, req));
        if rules::effective_flags(heap.flags(), flags) & rules::ZERO_MEMORY != 0 {
            self.space.heap_zero(p, req);
        }
        Some(p)
    }

    /// The look-aside fast path of HeapFree on a heap created with HEAP_NO_SERIALIZE, for a
    /// block of the segment `bits` views: the same checks as [`Heaps::resolve_locked`] (live
    /// block start, header consistent with where the next block begins), then a push;
    /// `false` changes nothing.
    ///
    /// # Safety
    ///
    /// `bits` views a segment of `heap` (as [`backend::BitsView::busy_and_ends`] requires),
    /// `g` is its granule of `p` (`bits.granule_of(p)`), and the caller is the heap's only
    /// user for the call.
    #[inline(always)]
    unsafe fn la_free_unserialized(
        &self,
        heap: &Heap,
        bits: backend::BitsView,
        g: usize,
        p: usize,
    ) -> bool {
        // A waiting block's header decodes to no size that ends cleanly; a look-aside size is
        // at most LA_MAX = 64 granules (`busy_and_ends`' bound).
        let n = || {
            let req = heap.decode(p, self.space.heap_load(p - 8));
            (req <= rules::LFH_MAX_REQUEST).then(|| (req.max(rules::GRANULE) + rules::BLOCK_HEADER).div_ceil(rules::GRANULE))
        };
        const _: () = assert!(lookaside::LA_MAX == 64 && rules::LFH_MAX_REQUEST + 8 + 15 < 65 * 16);
        // SAFETY: per the contract.
        let Some(n) = (unsafe { bits.busy_and_ends(g, n) }) else {
            return false;
        };
        // SAFETY: the caller's promise: the heap's state is its alone for the call.
        let st = unsafe { &mut *heap.st.get() };
        // No allocation on this path: without a table `put` refuses, and the heap's first
        // look-aside block goes through the general path, which makes the table.
        if !st.la.put(n, p) {
            return false;
        }
        self.space
            .heap_store(p - 8, heap.encode(p, lookaside::WAITING | n));
        true
    }

    fn alloc_slow(&self, heap: &Heap, h: usize, fl: u32, req: usize) -> Result<usize> {
        let growable = heap.flags() & rules::GROWABLE != 0;
        rules::request_fits(req, growable)?;
        let p = self.locked(heap, h, fl, |st| self.alloc_locked(heap, st, req))?;
        if fl & rules::ZERO_MEMORY != 0 {
            self.space.heap_zero(p, req);
        }
        Ok(p)
    }

    /// A back-end or large block (heap lock held); counts allocations towards the front end.
    fn alloc_locked(&self, heap: &Heap, st: &mut State, req: usize) -> Result<usize> {
        if req >= rules::LARGE_THRESHOLD {
            return self.alloc_large(heap, st, req);
        }
        let n = granules(req).ok_or(Error::NotEnoughMemory("too large"))?;
        if let Some(p) = Self::la_take(st, n) {
            self.space.heap_store(p - 8, heap.encode(p, req));
            return Ok(p);
        }
        let mut found = None;
        for round in 0..2 {
            for &s in st.segments.iter() {
                // SAFETY: descriptors live forever.
                let seg = unsafe { &*s };
                // SAFETY: heap lock held.
                let i = unsafe { seg.inner() };
                if let Some(g) = i.take(n) {
                    // Blocks waiting in the look-aside never make the heap commit more:
                    // they go back first (they coalesce), and the search starts again.
                    if round == 0 && !i.is_committed(g, g + n) && st.la.holds_any() {
                        i.give(g, n, true);
                        break;
                    }
                    if self.ensure_commit(heap, i, g, g + n).is_ok() {
                        found = Some(i.ptr_of(g));
                        break;
                    }
                    i.give(g, n, true);
                }
            }
            // No free range fits: give the look-aside's blocks back (they coalesce) and retry.
            if found.is_some() || round == 1 || !self.drain_lookaside(st) {
                break;
            }
        }
        let p = match found {
            Some(p) => p,
            None => {
                if st.max != 0 {
                    return Err(Error::NotEnoughMemory("the fixed-size heap is full"));
                }
                self.grow_heap(heap, st, n)?
            }
        };
        self.space.heap_store(p - 8, heap.encode(p, req));
        if let Some(c) = class_of(req) {
            if rules::lfh_eligible(heap.flags())
                && heap.front.counts[c].fetch_add(1, Ordering::Relaxed) + 1
                    >= rules::LFH_ACTIVATION
                && !heap.front.is_active(c) {
                    // The class's first page now, under the lock we hold: later front-end
                    // calls then never wait for a HeapLock holder (case 46). Without one, the
                    // class simply stays on the back end.
                    if self.add_page(heap, st, c).is_ok() {
                        heap.front.active.fetch_or(1 << c, Ordering::Relaxed);
                        heap.compat.store(2, Ordering::Relaxed);
                    }
                }
        }
        Ok(p)
    }

    /// Commits what granules `[g, e)` of a segment need (heap lock held): the holes
    /// HeapCompact left in them, then the prefix up to their end. All or nothing: a failed
    /// commit leaves the holes and the prefix as they were.
    fn ensure_commit(&self, heap: &Heap, i: &mut backend::Inner, g: usize, e: usize) -> Result<()> {
        let prot = Self::prot(heap.flags());
        let page = self.space.page();
        let need = i.end_offset(e);
        let a = i.end_offset(g) / page * page;
        let b = rules::round_up(need, page).unwrap_or(usize::MAX);
        // Undo of a failure: the first `filled` holes, committed by this call, become holes
        // again (the list is changed only once everything succeeded).
        let unfill = |i: &backend::Inner, filled: usize| {
            for (s, t) in i.holes.within(a, b).take(filled) {
                let _ = self.space.decommit(i.base + s, i.base + t);
            }
        };
        let mut filled = 0;
        if !i.holes.is_empty() {
            for (s, t) in i.holes.within(a, b) {
                if let Err(err) = self.space.commit(i.base + s, i.base + t, prot) {
                    unfill(i, filled);
                    return Err(nomem(err));
                }
                filled += 1;
            }
        }
        if need > i.commit {
            let to = rules::round_up(need, 0x10000)
                .unwrap_or(usize::MAX)
                .min(i.reserve);
            if let Err(err) = self.space.commit(i.base + i.commit, i.base + to, prot) {
                unfill(i, filled);
                return Err(nomem(err));
            }
            i.commit = to;
        }
        if filled > 0 {
            i.holes.fill(a, b);
        }
        Ok(())
    }

    /// Adds a segment to a growable heap (H7) and takes `n` granules from it.
    fn grow_heap(&self, heap: &Heap, st: &mut State, n: usize) -> Result<usize> {
        let size = rules::next_segment(st.last_segment, n * rules::GRANULE, self.space.page())
            .ok_or(Error::NotEnoughMemory("too large"))?;
        let prot = Self::prot(heap.flags());
        let base = self
            .space
            .reserve(Placement::Anywhere, size, false, prot, false)
            .map_err(nomem)?;
        let seg = self.new_segment();
        seg.assign(heap.id(), heap.generation(), base, size, 0);
        // SAFETY: heap lock held; the segment is ours.
        let i = unsafe { seg.inner() };
        let g = i.take(n).expect("a new segment fits the block");
        if let Err(e) = self.ensure_commit(heap, i, g, g + n) {
            let _ = self.space.release(base);
            seg.owner.store(0, Ordering::Relaxed);
            self.registry.with(|r| r.spare_segments.push(seg));
            return Err(e);
        }
        self.map.set(base, base + size, Tag::Segment, seg as *const Segment as usize);
        st.segments.push(seg);
        st.last_segment = size;
        Ok(i.ptr_of(g))
    }

    /// A large block in its own reservation (H22).
    fn alloc_large(&self, heap: &Heap, st: &mut State, req: usize) -> Result<usize> {
        if let Some(p) = self.take_spare(heap, st, req) {
            return Ok(p);
        }
        let size = rules::round_up(rules::LARGE_OFFSET + req, self.space.page())
            .ok_or(Error::NotEnoughMemory("too large"))?;
        let base = self
            .space
            .reserve(Placement::Anywhere, size, true, Self::prot(heap.flags()), false)
            .map_err(nomem)?;
        let large = self.new_large();
        large.assign(heap.id(), heap.generation(), base, size, req);
        self.map.set(base, base + size, Tag::Large, large as *const Large as usize);
        Ok(self.large_live(heap, st, large, req))
    }

    /// A large block of `req` bytes in the heap's spare reservation, if it fits (heap lock
    /// held): the spare's descriptor and map entries are still in place, only its owner and
    /// sizes change.
    #[inline(always)]
    fn take_spare(&self, heap: &Heap, st: &mut State, req: usize) -> Option<usize> {
        let l = st.spare?;
        let size = rules::round_up(rules::LARGE_OFFSET + req, self.space.page())?;
        let s = l.size.load(Ordering::Relaxed);
        if !(size..=size * 2).contains(&s) {
            return None;
        }
        st.spare = None;
        l.assign(heap.id(), heap.generation(), l.base.load(Ordering::Relaxed), s, req);
        Some(self.large_live(heap, st, l, req))
    }

    /// Lists the assigned large block and writes its header: its pointer.
    #[inline(always)]
    fn large_live(&self, heap: &Heap, st: &mut State, large: &'static Large, req: usize) -> usize {
        st.large.push(large);
        let p = large.ptr();
        self.space.heap_store(p - 8, heap.encode(p, req));
        p
    }

    /// HeapAlloc's path for a large block ([`ALLOC_LARGE`]): the heap's spare reservation if
    /// it fits, under the heap lock as the call's flags ask; else 0 (nothing changed; the
    /// caller goes on with [`Heaps::alloc`]), also for a heap this thread has not used
    /// through its handle yet, a fixed-size heap or HEAP_ZERO_MEMORY.
    #[inline(never)]
    pub fn alloc_large_front(&self, h: usize, flags: u32, req: usize) -> usize {
        let Some(heap) = self.lookup_fast(h) else {
            return 0;
        };
        let fl = rules::effective_flags(heap.flags(), flags);
        if fl & rules::ZERO_MEMORY != 0
            || heap.flags() & rules::GROWABLE == 0
            || rules::request_fits(req, true).is_err()
        {
            return 0;
        }
        self.locked(heap, h, fl, |st| Ok(self.take_spare(heap, st, req)))
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    // ----- free, size, validate ---------------------------------------------------------

    /// HeapFree's fast path: frees `p` if it is a live front-end slot of heap `h` that this
    /// thread's cache takes at once ([`FreeStep::Done`]); otherwise changes nothing and names
    /// the out-of-line path that finishes the call. One table load finds the page; its owner,
    /// the slot geometry and the header (`lfh.rs`) decide. No call is made here, so the caller
    /// (`HeapFree`) needs no stack frame and reaches every other path by a tail call.
    #[inline(always)]
    pub fn free_front(&self, h: usize, p: usize) -> FreeStep {
        let process = h != 0 && h == self.process.load(Ordering::Relaxed);
        let heap = if process {
            // SAFETY: set with the handle; descriptors live forever.
            unsafe { &*self.process_heap.load(Ordering::Relaxed) }
        } else {
            match self.lookup_last(h) {
                // A HEAP_NO_SERIALIZE heap has no front end: its look-asides.
                Some(heap) if heap.flags() & rules::NO_SERIALIZE != 0 => {
                    return FreeStep::Unserialized(heap.id())
                }
                Some(heap) => heap,
                None => return FreeStep::General,
            }
        };
        let e = self.map.entry(p);
        if e & 3 != Tag::Page as usize {
            if e & 3 == Tag::Large as usize {
                return FreeStep::Large(e & !3);
            }
            return FreeStep::General;
        }
        let d = e & !3;
        // SAFETY: descriptors live forever.
        let page = unsafe { &*(d as *const Page) };
        // The header is read only once `p` is known to be a slot of the page (16-aligned,
        // past the page's own header): any other pointer of the granule may have its 8 bytes
        // before it in the previous, possibly unmapped, granule, or be misaligned.
        if page.owner.load(Ordering::Acquire) != heap.id() || !page.is_slot(p) {
            return FreeStep::General;
        }
        if !page.fits(heap.decode(p, self.space.heap_load(p - 8))) {
            return FreeStep::General;
        }
        // A zero header: the slot is no longer live (`lfh.rs`).
        self.space.heap_store(p - 8, 0);
        let c = page.class.load(Ordering::Relaxed);
        let cached = if process {
            cache::try_push_process(heap, c, p)
        } else {
            heap.cached && cache::try_push(heap, c, p)
        };
        if cached {
            FreeStep::Done
        } else {
            FreeStep::Overflow(d)
        }
    }

    /// Finishes [`FreeStep::Unserialized`]: a block of the HEAP_NO_SERIALIZE heap `d`'s
    /// segments goes to its look-asides (no lock; the first segment found without the map).
    /// Returns [`UNSERIALIZED_FREED`], [`UNSERIALIZED_GENERAL`] (nothing changed: the general
    /// path frees the block or reports why it is refused), or a large block's descriptor
    /// (finish with [`Heaps::free_large_front`]).
    ///
    /// # Safety
    ///
    /// `d` is the payload of a [`FreeStep::Unserialized`] that [`Heaps::free_front`] of this
    /// `Heaps` returned for this call's heap handle, and the caller is that heap's only user
    /// for the call (its HEAP_NO_SERIALIZE promise).
    #[inline(always)]
    pub unsafe fn free_unserialized(&self, d: usize, p: usize) -> usize {
        // SAFETY: per the contract, a heap descriptor (they live forever).
        let heap = unsafe { &*(d as *const Heap) };
        let h = heap.handle.load(Ordering::Relaxed);
        let seg0 = backend::BitsView {
            origin: h + rules::SEGMENT_HEADER + 16,
            ngran: heap.seg0_ngran.load(Ordering::Relaxed),
            words: heap.seg0_words.load(Ordering::Relaxed) as *const [u64; 2],
        };
        let (bits, g) = match seg0.granule_of(p) {
            Some(g) => (seg0, g),
            None => {
                let sd = match GranuleMap::decode(self.map.entry(p)) {
                    Some((Tag::Segment, sd)) => sd,
                    Some((Tag::Large, ld)) => return ld,
                    _ => return UNSERIALIZED_GENERAL,
                };
                // SAFETY: descriptors live forever.
                let seg = unsafe { &*(sd as *const Segment) };
                if seg.owner.load(Ordering::Acquire) != heap.id() {
                    return UNSERIALIZED_GENERAL;
                }
                // SAFETY: the heap's segment; its caller is its only user for the call.
                let bits = unsafe { seg.inner() }.bits_view();
                let Some(g) = bits.granule_of(p) else {
                    return UNSERIALIZED_GENERAL;
                };
                (bits, g)
            }
        };
        // SAFETY: a segment of the heap, viewed as assigned (the first one's view was taken
        // at creation and its table is never reallocated while the heap lives), `g` its
        // granule of `p`; the caller's promise.
        if unsafe { self.la_free_unserialized(heap, bits, g, p) } {
            UNSERIALIZED_FREED
        } else {
            UNSERIALIZED_GENERAL
        }
    }

    /// Finishes [`FreeStep::Overflow`]: the slot `p` of page `d` (already not live) goes to
    /// this thread's cache after half of it went back, or straight back to its page.
    ///
    /// # Safety
    ///
    /// `d` is the payload of a [`FreeStep::Overflow`] that [`Heaps::free_front`] of this
    /// `Heaps` returned for slot `p` in this call.
    #[cold]
    #[inline(never)]
    pub unsafe fn free_overflow(&self, d: usize, p: usize) {
        // SAFETY: descriptors live forever; `free_front` found this page's owner to be a heap
        // descriptor, which lives forever too (a concurrent HeapDestroy of the heap being
        // freed into is the caller's race, as on Windows; the slot then goes to a generation
        // that no longer exists and is dropped).
        let page = unsafe { &*(d as *const Page) };
        let owner = page.owner.load(Ordering::Acquire);
        if owner == 0 {
            return;
        }
        // SAFETY: as above.
        let heap = unsafe { &*(owner as *const Heap) };
        Self::free_slot_slow(heap, page.class.load(Ordering::Relaxed), p);
    }

    /// Finishes [`FreeStep::Large`], a large block (map entry `d`): the heap lock (unless
    /// HEAP_NO_SERIALIZE), the same checks and work as [`Heaps::free`]; `false` changes
    /// nothing (the general path then reports why).
    ///
    /// # Safety
    ///
    /// `d` is the descriptor address of a large block's granule-map entry that this call
    /// read for `p` (the payload of a [`FreeStep::Large`] that [`Heaps::free_front`] of this
    /// `Heaps` returned for `p`, for instance).
    #[inline(never)]
    pub unsafe fn free_large_front(&self, h: usize, flags: u32, d: usize, p: usize) -> bool {
        let Ok(heap) = self.lookup(h) else {
            return false;
        };
        self.locked(heap, h, flags, |st| {
            Ok(match self.resolve_locked(heap, p, Tag::Large, d) {
                Some(b) => {
                    self.free_block(heap, st, b);
                    true
                }
                None => false,
            })
        })
        .unwrap_or(false)
    }

    /// HeapFree (H32–H36).
    #[inline]
    pub fn free(&self, h: usize, flags: u32, p: usize) -> Result<()> {
        let heap = self.lookup(h)?;
        if p == 0 {
            return Ok(());
        }
        match self.map.get(p) {
            Some((Tag::Page, d)) => match self.resolve_slot(heap, p, d) {
                Some(Block::Slot { page, .. }) => {
                    self.free_slot(heap, page, p);
                    Ok(())
                }
                _ => Err(self.bad(p)),
            },
            Some((tag, d)) => {
                let r = self.locked(heap, h, flags, |st| {
                    match self.resolve_locked(heap, p, tag, d) {
                        Some(b) => {
                            self.free_block(heap, st, b);
                            Ok(true)
                        }
                        None => Ok(false),
                    }
                })?;
                if r {
                    Ok(())
                } else {
                    Err(self.bad(p))
                }
            }
            None => Err(self.bad(p)),
        }
    }

    #[inline(always)]
    fn free_slot(&self, heap: &Heap, page: &Page, p: usize) {
        // A zero header: the slot is no longer live (`lfh.rs`).
        self.space.heap_store(p - 8, 0);
        let c = page.class.load(Ordering::Relaxed);
        if !(heap.cached && cache::try_push(heap, c, p)) {
            Self::free_slot_slow(heap, c, p);
        }
    }

    /// A freed slot the thread's cache does not take at once.
    #[cold]
    #[inline(never)]
    fn free_slot_slow(heap: &Heap, c: usize, p: usize) {
        if heap.cached {
            cache::push(heap, c, p);
        } else {
            heap.give_back(heap.generation(), c, &[p]);
        }
    }

    /// Frees a resolved back-end or large block (heap lock held).
    fn free_block(&self, heap: &Heap, st: &mut State, b: Block) {
        match b {
            Block::Slot { page, i, .. } => {
                let p = page.slot_ptr(i);
                self.free_slot(heap, page, p)
            }
            Block::Seg { seg, g, n, .. } => {
                // SAFETY: heap lock held.
                let p = unsafe { seg.inner() }.ptr_of(g);
                if !(Self::has_lookaside(heap, n) && self.la_put(heap, st, p, n)) {
                    // SAFETY: heap lock held.
                    unsafe { seg.inner() }.give(g, n, true);
                }
            }
            Block::Large { large, .. } => {
                let base = large.base.load(Ordering::Relaxed);
                let size = large.size.load(Ordering::Relaxed);
                // Not live any more: the owner check of `resolve_locked` refuses the pointer.
                large.owner.store(0, Ordering::Release);
                // Allocation order is kept (H62); the last block (the usual case) is O(1).
                if st.large.last().is_some_and(|&l| std::ptr::eq(l, large)) {
                    st.large.pop();
                } else if let Some(k) = st.large.iter().position(|&l| std::ptr::eq(l, large)) {
                    st.large.remove(k);
                }
                // One fully committed reservation is kept for the next large block, with its
                // descriptor and map entries; HeapCompact and HeapDestroy release it.
                if st.spare.is_none()
                    && large.commit.load(Ordering::Relaxed) == size
                    && size <= 16 << 20
                {
                    st.spare = Some(large);
                } else {
                    self.map.set(base, base + size, Tag::Large, 0);
                    let _ = self.space.release(base);
                    self.registry.with(|r| r.spare_large.push(large));
                }
            }
        }
    }

    /// Resolves `p` in `heap` with whatever lock it needs, then runs `f` on the block.
    fn with_block<R>(
        &self,
        heap: &Heap,
        h: usize,
        flags: u32,
        p: usize,
        f: impl FnOnce(&Block) -> R,
    ) -> Result<Option<R>> {
        match self.map.get(p) {
            Some((Tag::Page, d)) => Ok(self.resolve_slot(heap, p, d).map(|b| f(&b))),
            Some((tag, d)) => self.locked(heap, h, flags, |_| {
                Ok(self.resolve_locked(heap, p, tag, d).map(|b| f(&b)))
            }),
            None => Ok(None),
        }
    }

    /// HeapSize (H29–H31): the requested size.
    pub fn size(&self, h: usize, flags: u32, p: usize) -> Result<usize> {
        let heap = self.lookup(h)?;
        let r = self.with_block(heap, h, flags, p, |b| match *b {
            Block::Slot { req, .. } | Block::Seg { req, .. } | Block::Large { req, .. } => req,
        })?;
        r.ok_or_else(|| self.bad(p))
    }

    /// HeapValidate (H45–H47): `Ok(false)` for a pointer that is not a live block (or a
    /// damaged heap); ERROR_NOACCESS for an unmapped pointer.
    pub fn validate(&self, h: usize, flags: u32, p: usize) -> Result<bool> {
        let heap = self.lookup(h)?;
        if p == 0 {
            return Ok(self.summary_of(heap, h, flags)?.intact);
        }
        match self.with_block(heap, h, flags, p, |_| ())? {
            Some(()) => Ok(true),
            None => match self.bad(p) {
                e @ Error::NoAccess(_) => Err(e),
                _ => Ok(false),
            },
        }
    }

    // ----- realloc ----------------------------------------------------------------------

    /// HeapReAlloc (H37–H44).
    pub fn realloc(&self, h: usize, flags: u32, p: usize, req: usize) -> Result<usize> {
        let heap = self.lookup(h)?;
        if p == 0 {
            return Err(Error::Code(0));
        }
        let fl = rules::effective_flags(heap.flags(), flags);
        let growable = heap.flags() & rules::GROWABLE != 0;
        rules::request_fits(req, growable)?;
        let in_place_only = fl & rules::REALLOC_IN_PLACE_ONLY != 0;
        // In place, if possible: Ok(Some(old size)) done; Ok(None) must move.
        let tag = self.map.get(p);
        let done = match tag {
            Some((Tag::Page, d)) => match self.resolve_slot(heap, p, d) {
                Some(Block::Slot { page, req: old, .. }) => {
                    if class_of(req) == Some(page.class.load(Ordering::Relaxed)) {
                        self.space.heap_store(p - 8, heap.encode(p, req));
                        Some(old)
                    } else {
                        None
                    }
                }
                _ => return Err(self.bad(p)),
            },
            Some((tag, d)) => {
                let r = self.locked(heap, h, fl, |st| {
                    let Some(b) = self.resolve_locked(heap, p, tag, d) else {
                        return Ok(Err(()));
                    };
                    Ok(Ok(self.realloc_in_place(heap, st, b, p, req)))
                })?;
                match r {
                    Ok(x) => x,
                    Err(()) => return Err(self.bad(p)),
                }
            }
            None => return Err(self.bad(p)),
        };
        if let Some(old) = done {
            if req > old && fl & rules::ZERO_MEMORY != 0 {
                self.space.heap_zero(p + old, req - old);
            }
            return Ok(p);
        }
        if in_place_only {
            return Err(Error::NotEnoughMemory("the block cannot grow in place"));
        }
        let old = self.size(h, fl, p)?;
        let q = self.alloc(h, fl & !rules::ZERO_MEMORY, req)?;
        self.space.heap_copy(q, p, old.min(req));
        if req > old && fl & rules::ZERO_MEMORY != 0 {
            self.space.heap_zero(q + old, req - old);
        }
        self.free(h, fl, p)?;
        Ok(q)
    }

    /// Resizes a back-end or large block in place if possible (heap lock held): the old
    /// requested size, or `None`.
    fn realloc_in_place(
        &self,
        heap: &Heap,
        st: &mut State,
        b: Block,
        p: usize,
        req: usize,
    ) -> Option<usize> {
        match b {
            Block::Slot { .. } => None,
            Block::Seg { seg, g, n, req: old } => {
                if req >= rules::LARGE_THRESHOLD {
                    return None;
                }
                let m = granules(req)?;
                // SAFETY: heap lock held; the borrow ends before the look-aside is drained.
                let grown = m > n && unsafe { seg.inner() }.grow(g, n, m);
                if m > n && !grown && !(self.drain_lookaside(st) && {
                    // SAFETY: heap lock held.
                    unsafe { seg.inner() }.grow(g, n, m)
                }) {
                    return None;
                }
                // SAFETY: heap lock held.
                let i = unsafe { seg.inner() };
                if m <= n {
                    i.give(g + m, n - m, false);
                } else {
                    if self.ensure_commit(heap, i, g + n, g + m).is_err() {
                        i.ungrow(g, n, m);
                        return None;
                    }
                }
                self.space.heap_store(p - 8, heap.encode(p, req));
                Some(old)
            }
            Block::Large { large, req: old } => {
                let base = large.base.load(Ordering::Relaxed);
                let commit = large.commit.load(Ordering::Relaxed);
                let end = rules::LARGE_OFFSET.checked_add(req)?;
                if end > commit {
                    return None;
                }
                let keep = rules::round_up(end, self.space.page())?;
                if keep < commit && self.space.decommit(base + keep, base + commit).is_ok() {
                    large.commit.store(keep, Ordering::Relaxed);
                }
                large.req.store(req, Ordering::Relaxed);
                self.space.heap_store(p - 8, heap.encode(p, req));
                Some(old)
            }
        }
    }

    // ----- heap-wide passes -------------------------------------------------------------

    /// Sums and checks every block (HeapValidate(NULL), HeapSummary).
    fn summary_of(&self, heap: &Heap, h: usize, flags: u32) -> Result<Summary> {
        self.locked(heap, h, flags, |st| {
            self.drain_lookaside(st);
            let mut s = Summary {
                intact: true,
                ..Summary::default()
            };
            for &sp in st.segments.iter() {
                // SAFETY: descriptors live forever; heap lock held.
                let i = unsafe { (*sp).inner() };
                s.committed += i.committed();
                s.reserved += i.reserve;
                // The out-of-band index of free-range starts agrees with the ranges, and the
                // holes lie inside them.
                s.intact &= i.starts_consistent() && i.holes_consistent(self.space.page());
                let mut g = 0;
                while let Some(b) = i.next_busy(g) {
                    let p = i.ptr_of(b);
                    let req = heap.decode(p, self.space.heap_load(p - 8));
                    match granules(req) {
                        Some(n) if i.ends_cleanly(b, n) => {
                            s.allocated += req;
                            g = b + n;
                        }
                        _ => {
                            s.intact = false;
                            g = b + 1;
                        }
                    }
                }
            }
            for a in st.arenas.iter() {
                s.reserved += ARENA_PAGES * lfh::PAGE;
                for &pg in a.pages.iter().filter(|p| !p.is_null()) {
                    s.committed += lfh::PAGE;
                    // SAFETY: descriptors live forever.
                    let page = unsafe { &*pg };
                    let class = page.class.load(Ordering::Relaxed);
                    for i in 0..page.nslots.load(Ordering::Relaxed) {
                        let p = page.slot_ptr(i);
                        let word = self.space.heap_load(p - 8);
                        match heap.live_slot(p, class, word) {
                            Some(req) => s.allocated += req,
                            // A free slot's header is always 0: anything else is damage.
                            None => s.intact &= word == 0,
                        }
                    }
                }
            }
            for &l in st.large.iter() {
                // SAFETY: descriptors live forever.
                let large = unsafe { &*l };
                let req = large.req.load(Ordering::Relaxed);
                s.allocated += req;
                s.committed += large.commit.load(Ordering::Relaxed);
                s.reserved += large.size.load(Ordering::Relaxed);
                let p = large.ptr();
                s.intact &= heap.decode(p, self.space.heap_load(p - 8)) == req;
            }
            s.max_reserve = if st.max != 0 { st.max } else { s.reserved };
            Ok(s)
        })
    }

    /// HeapSummary (H67, H68).
    pub fn summary(&self, h: usize, flags: u32) -> Result<Summary> {
        let heap = self.lookup(h)?;
        self.summary_of(heap, h, flags)
    }

    /// HeapCompact (H48 (our decision)): gives this thread's cached slots back, decommits empty
    /// front-end pages and free segment tails, releases empty extra segments and the spare
    /// large reservation; returns the largest committed free block.
    pub fn compact(&self, h: usize, flags: u32) -> Result<usize> {
        let heap = self.lookup(h)?;
        if heap.cached {
            cache::flush_heap(heap);
        }
        self.locked(heap, h, flags, |st| {
            self.drain_lookaside(st);
            let page = self.space.page();
            if let Some(l) = self.drop_spare(st) {
                self.registry.with(|r| r.spare_large.push(l));
            }
            let mut empty = meta_vec::<*const Page>();
            for c in 0..rules::LFH_CLASSES {
                heap.front.take_empty_pages(heap.id(), &self.map, c, &mut empty);
            }
            for &pg in empty.iter() {
                // SAFETY: descriptors live forever.
                let pgd = unsafe { &*pg };
                let b = pgd.base.load(Ordering::Relaxed);
                self.map.set(b, b + lfh::PAGE, Tag::Page, 0);
                pgd.owner.store(0, Ordering::Release);
                if let Some(a) = st
                    .arenas
                    .iter_mut()
                    .find(|a| b >= a.base && b < a.base + ARENA_PAGES * lfh::PAGE)
                {
                    let k = (b - a.base) / lfh::PAGE;
                    a.used &= !(1 << k);
                    a.pages[k] = std::ptr::null();
                }
                let _ = self.space.decommit(b, b + lfh::PAGE);
            }
            st.arenas.retain(|a| {
                let keep = a.used != 0;
                if !keep {
                    let _ = self.space.release(a.base);
                }
                keep
            });
            self.registry.with(|r| r.spare_pages.extend(empty.iter().copied()));
            let mut largest = 0;
            let mut k = 0;
            while k < st.segments.len() {
                // SAFETY: descriptors live forever; heap lock held.
                let seg = unsafe { &*st.segments[k] };
                // SAFETY: heap lock held.
                let i = unsafe { seg.inner() };
                if k > 0 && i.free.len() == 1 && i.free.get(0) == Some(i.ngran) {
                    self.map.set(i.base, i.base + i.reserve, Tag::Segment, 0);
                    seg.owner.store(0, Ordering::Release);
                    let _ = self.space.release(i.base);
                    st.segments.remove(k);
                    self.registry.with(|r| r.spare_segments.push(seg));
                    continue;
                }
                if let Some((g, _)) = i.free_tail() {
                    let keep = rules::round_up(i.end_offset(g) + 8, page)
                        .unwrap_or(i.commit)
                        .max(rules::MIN_COMMIT);
                    if keep < i.commit && self.space.decommit(i.base + keep, i.base + i.commit).is_ok()
                    {
                        i.commit = keep;
                        i.holes.truncate(keep);
                    }
                }
                // Whole pages inside the other free ranges become holes (as Windows leaves
                // uncommitted ranges inside a segment): the first MIN_COMMIT bytes stay, as
                // they do at the tail.
                for &(s, e) in i.decommit_plan(rules::MIN_COMMIT, page).iter() {
                    if self.space.decommit(i.base + s, i.base + e).is_ok() {
                        i.holes.add(s, e);
                    }
                }
                // The largest committed free block: free ranges cut at their holes.
                for (g, n) in i.free.iter() {
                    let (s, e) = (i.end_offset(g), i.end_offset(g + n).min(i.commit));
                    let mut at = s;
                    for (hs, he) in i.holes.within(s, e) {
                        largest = largest.max(hs - at);
                        at = he;
                    }
                    largest = largest.max(e.saturating_sub(at));
                }
                k += 1;
            }
            Ok(largest)
        })
    }

    // ----- information ------------------------------------------------------------------

    /// HeapQueryInformation(HeapCompatibilityInformation) (H71).
    pub fn compatibility(&self, h: usize) -> Result<u32> {
        Ok(self.lookup(h)?.compat.load(Ordering::Relaxed))
    }

    /// HeapSetInformation(HeapCompatibilityInformation) (H72).
    pub fn set_compatibility(&self, h: usize, value: u32) -> Result<()> {
        let heap = self.lookup(h)?;
        let v = rules::set_compatibility(heap.compat.load(Ordering::Relaxed), value, heap.flags())?;
        heap.compat.store(v, Ordering::Relaxed);
        Ok(())
    }

    /// The creation flags kept (H9).
    pub fn creation_flags(&self, h: usize) -> Result<u32> {
        Ok(self.lookup(h)?.flags())
    }

    /// Every reservation of the heap `(base, size)`: segments, front-end arenas, large blocks.
    pub fn reservations(&self, h: usize) -> Result<Vec<(usize, usize)>> {
        let heap = self.lookup(h)?;
        self.locked(heap, h, 0, |st| {
            let mut out = Vec::new();
            for &s in st.segments.iter() {
                // SAFETY: descriptors live forever; heap lock held.
                let i = unsafe { (*s).inner() };
                out.push((i.base, i.reserve));
            }
            for a in st.arenas.iter() {
                out.push((a.base, ARENA_PAGES * lfh::PAGE));
            }
            for &l in st.large.iter() {
                // SAFETY: descriptors live forever.
                let l = unsafe { &*l };
                out.push((l.base.load(Ordering::Relaxed), l.size.load(Ordering::Relaxed)));
            }
            if let Some(l) = st.spare {
                out.push((l.base.load(Ordering::Relaxed), l.size.load(Ordering::Relaxed)));
            }
            Ok(out)
        })
    }

    // ----- fork -------------------------------------------------------------------------

    /// `fork` prepare: takes every serialized heap's lock, the registry, and every front-end
    /// class lock, so the child never inherits a heap half-way through an operation. Waits
    /// for a heap held by HeapLock in another thread to be unlocked.
    pub(crate) fn fork_prepare(&self) {
        loop {
            let mut heaps = meta_vec::<*const Heap>();
            self.registry.with(|r| heaps.extend(r.live.iter().copied()));
            for &h in heaps.iter() {
                // SAFETY: descriptors live forever.
                unsafe { &*h }.lock.lock();
            }
            self.registry.acquire();
            // SAFETY: registry lock held.
            let same = unsafe { (*self.registry_ptr()).live.as_slice() == heaps.as_slice() };
            if same {
                for &h in heaps.iter() {
                    // SAFETY: descriptors live forever.
                    for c in &unsafe { &*h }.front.classes {
                        c.acquire();
                    }
                }
                return;
            }
            self.registry.release();
            for &h in heaps.iter() {
                // SAFETY: descriptors live forever; we took the lock above.
                unsafe { &*h }.lock.unlock();
            }
        }
    }

    fn registry_ptr(&self) -> *mut Registry {
        self.registry.value_ptr()
    }

    /// `fork` parent / child: releases what [`Heaps::fork_prepare`] took. In the child, the
    /// forking thread is the only thread and the owner of every lock taken here (locks held
    /// by HeapLock in the parent's other threads were waited for in prepare).
    pub(crate) fn fork_release(&self) {
        // SAFETY: registry lock held since prepare.
        let heaps = unsafe { &(*self.registry_ptr()).live };
        for &h in heaps.iter() {
            // SAFETY: descriptors live forever.
            for c in &unsafe { &*h }.front.classes {
                c.release();
            }
        }
        for &h in heaps.iter() {
            // SAFETY: descriptors live forever; we took the lock in prepare.
            unsafe { &*h }.lock.unlock();
        }
        self.registry.release();
    }
}

/// The heaps of the native space if they exist (for `fork`'s handlers: never creates them).
pub(crate) fn native_if_any() -> Option<&'static Heaps<'static, crate::os::linux::LinuxOs>> {
    NATIVE.get().copied()
}

// ----- Global/Local support (issue 16 item 2, `engine/global.rs`) ----------------------------
// The moveable-handle table sits on top of the process heap and needs two facts the heap
// keeps private: the space it lives in, and whether a block is a front-end slot (such a block
// never changes size in place for GlobalReAlloc / LocalReAlloc, G19).
impl<'s, O: Os> Heaps<'s, O> {
    /// The address space these heaps live in.
    pub(crate) fn space(&self) -> &'s Space<O> {
        self.space
    }

    /// Whether `p` lies in a front-end (low-fragmentation) page of some heap.
    pub(crate) fn in_front_end(&self, p: usize) -> bool {
        matches!(self.map.get(p), Some((Tag::Page, d)) if d != 0)
    }
}
