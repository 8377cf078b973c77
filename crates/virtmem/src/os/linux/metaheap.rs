//! The metadata heap: where virtmem keeps its own bookkeeping (allocations, page-run tables,
//! snapshots, index nodes), on memory it maps itself, never on the process heap.
//!
//! A `malloc` (or a Rust global allocator) built on virtmem calls `VirtualAlloc` from inside
//! its own allocation path; if virtmem then called `malloc` it would re-enter the allocator
//! mid-operation. So the engine allocates only through [`Meta`], an
//! [`allocator_api2::alloc::Allocator`]: small blocks come from size classes carved out of
//! 64 KiB chunks (never returned: metadata is bounded by its peak), large blocks are powers
//! of two whose memory goes back to the kernel (`MADV_DONTNEED`) when freed while their
//! address range is kept for the next block of that size. Both are cut from *arenas*: 1 GiB reservations (`PROT_NONE`,
//! which costs nothing) whose pieces are made read-write as needed, so the metadata never
//! lands in address ranges the program's allocations just released. Each class's free list is a spin lock around a
//! pointer pop or push — no system call is made under it, nothing here calls `malloc`, and no
//! lock that `malloc` could need is ever taken. [`lock_all`] / [`unlock_all`] let `fork`
//! handlers hold every class so that a child never inherits a list locked by a thread that no
//! longer exists.

use allocator_api2::alloc::{AllocError, Allocator, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// The largest block served from size classes; larger ones are mapped individually.
const SMALL_MAX: usize = 16 * 1024;
/// Bytes mapped at a time to refill a size class.
const CHUNK: usize = 64 * 1024;
/// The alignment every small block has.
const SMALL_ALIGN: usize = 16;
/// Number of size classes (see [`class_of`]).
const CLASSES: usize = 8 + 4 * 7;
/// Large blocks: powers of two from 2^15 to 2^(15 + LARGE_CLASSES - 1) bytes.
const LARGE_CLASSES: usize = 24;
const LARGE_MIN_SHIFT: usize = 15;

/// The allocator of virtmem's metadata (a zero-sized handle to one process-wide heap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta;

/// A free block (the first word of the block links to the next).
struct Free {
    next: *mut Free,
}

struct Class {
    lock: AtomicBool,
    head: AtomicPtr<Free>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Class = Class {
    lock: AtomicBool::new(false),
    head: AtomicPtr::new(std::ptr::null_mut()),
};
static CLASS: [Class; CLASSES] = [EMPTY; CLASSES];
/// Freed large blocks of each power-of-two size (memory already returned to the kernel).
static LARGE: [Class; LARGE_CLASSES] = [EMPTY; LARGE_CLASSES];
/// Bytes of chunks and large blocks currently mapped (for tests and diagnostics).
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// The size class of a small request: 16-byte steps up to 128, then four classes per power
/// of two up to [`SMALL_MAX`]. Returns the class index and its block size.
const fn class_of(size: usize) -> (usize, usize) {
    if size <= 128 {
        let i = if size == 0 { 0 } else { (size - 1) / 16 };
        return (i, (i + 1) * 16);
    }
    // size in (2^k, 2^(k+1)] with k >= 7: four steps of 2^(k-2).
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize; // 2^k < size <= 2^(k+1)
    let step = 1usize << (k - 2);
    let j = (size - (1 << k)).div_ceil(step); // 1..=4
    (8 + (k - 7) * 4 + (j - 1), (1 << k) + j * step)
}

impl Class {
    fn lock(&self) {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }

    fn unlock(&self) {
        self.lock.store(false, Ordering::Release);
    }

    fn pop(&self) -> Option<NonNull<u8>> {
        self.lock();
        let head = self.head.load(Ordering::Relaxed);
        if !head.is_null() {
            // SAFETY: blocks on the list are ours, unused, and start with a `Free`.
            let next = unsafe { (*head).next };
            self.head.store(next, Ordering::Relaxed);
        }
        self.unlock();
        NonNull::new(head.cast())
    }

    /// Pushes the list `first ..= last` (linked through `Free::next`).
    fn push_list(&self, first: *mut Free, last: *mut Free) {
        self.lock();
        // SAFETY: `last` is a block we own, not on any list.
        unsafe { (*last).next = self.head.load(Ordering::Relaxed) };
        self.head.store(first, Ordering::Relaxed);
        self.unlock();
    }
}

/// Where the first arena is asked for (16 TiB: far from the program, the libraries and the
/// top-down mmap area).
const ARENA_HINT: usize = 0x1000_0000_0000;
/// Bytes of address space reserved per arena (less where the address-space limit is near).
const ARENA: usize = 1 << 30;
/// The next free byte of the current arena and its end (0, 0 before the first).
static ARENA_NEXT: AtomicUsize = AtomicUsize::new(0);
static ARENA_END: AtomicUsize = AtomicUsize::new(0);
/// Serializes reserving a new arena.
static GROW: Class = EMPTY;

/// `len` bytes (a multiple of the page size) of zero-filled read-write memory from an arena.
fn chunk(len: usize) -> Option<NonNull<u8>> {
    loop {
        let next = ARENA_NEXT.load(Ordering::Acquire);
        let end = ARENA_END.load(Ordering::Acquire);
        if next != 0 && next + len <= end {
            if ARENA_NEXT
                .compare_exchange(next, next + len, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: `[next, next+len)` lies in our arena reservation and was handed to no
            // one else (the compare-exchange above claimed it).
            unsafe {
                rustix::mm::mprotect(
                    next as *mut _,
                    len,
                    rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE,
                )
            }
            .ok()?;
            MAPPED.fetch_add(len, Ordering::Relaxed);
            return NonNull::new(next as *mut u8);
        }
        GROW.lock();
        // Another thread may have grown it meanwhile.
        if ARENA_END.load(Ordering::Acquire) == end {
            // A smaller arena where address space is scarce (RLIMIT_AS), down to this chunk.
            let mut size = ARENA;
            // A hint far below where the kernel (and virtmem's placement, which walks down
            // from the top) puts mappings, so arenas never sit in the way of the program's
            // allocations: the next arena goes just above the last one. Only a hint: if it
            // is taken (or beyond this machine's address space) the kernel chooses.
            let hint = if end == 0 { ARENA_HINT } else { end };
            let fresh = loop {
                // SAFETY: a fresh inaccessible reservation; without MAP_FIXED the address is
                // only a hint and nothing existing is replaced.
                let r = unsafe {
                    rustix::mm::mmap_anonymous(
                        hint as *mut _,
                        size,
                        rustix::mm::ProtFlags::empty(),
                        rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::NORESERVE,
                    )
                };
                match r {
                    Ok(p) => break Some(p as usize),
                    Err(_) if size / 4 >= len => size /= 4,
                    Err(_) => break None,
                }
            };
            let Some(p) = fresh else {
                GROW.unlock();
                return None;
            };
            ARENA_END.store(0, Ordering::Release);
            ARENA_NEXT.store(p, Ordering::Release);
            ARENA_END.store(p + size, Ordering::Release);
        }
        GROW.unlock();
    }
}

/// Refills class `i` (blocks of `size`) with one chunk; returns one block of it.
fn refill(i: usize, size: usize) -> Option<NonNull<u8>> {
    let len = CHUNK.max(size * 8);
    let base = chunk(len)?.as_ptr();
    let n = len / size;
    // Block 0 goes to the caller; blocks 1..n are linked and pushed at once.
    if n > 1 {
        for k in 1..n - 1 {
            // SAFETY: blocks k and k+1 lie inside the fresh chunk, which nobody else sees.
            unsafe {
                (*base.add(k * size).cast::<Free>()).next = base.add((k + 1) * size).cast();
            }
        }
        let first = base.wrapping_add(size).cast::<Free>();
        let last = base.wrapping_add((n - 1) * size).cast::<Free>();
        CLASS[i].push_list(first, last);
    }
    NonNull::new(base)
}

/// The large class of a request above [`SMALL_MAX`]: its index and block size.
fn large_class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(layout.align()).next_power_of_two();
    let shift = size.trailing_zeros() as usize;
    let i = shift.saturating_sub(LARGE_MIN_SHIFT);
    (i < LARGE_CLASSES).then(|| (i, 1usize << (i + LARGE_MIN_SHIFT)))
}

fn is_small(layout: Layout) -> bool {
    layout.size() <= SMALL_MAX && layout.align() <= SMALL_ALIGN
}

// SAFETY: blocks are handed out once until deallocated, are at least `layout.size()` bytes
// and aligned to `layout.align()` (small blocks: 16 in 16-aligned classes carved from
// page-aligned chunks; large blocks: page-aligned mappings, and larger alignments are
// refused), and stay valid until `deallocate`.
unsafe impl Allocator for Meta {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        #[cfg(feature = "internals")]
        THREAD_ALLOCATIONS.with(|c| c.set(c.get() + 1));
        if is_small(layout) {
            let (i, size) = class_of(layout.size());
            let p = CLASS[i].pop().or_else(|| refill(i, size)).ok_or(AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(p, size));
        }
        if layout.align() > super::sysfacts::page_size() {
            return Err(AllocError);
        }
        let (i, len) = large_class(layout).ok_or(AllocError)?;
        let p = LARGE[i].pop().or_else(|| chunk(len)).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, len))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if is_small(layout) {
            let (i, _) = class_of(layout.size());
            let f = ptr.as_ptr().cast::<Free>();
            CLASS[i].push_list(f, f);
        } else if let Some((i, len)) = large_class(layout) {
            // The memory goes back to the kernel (the range reads as zeros when reused); the
            // first page is touched again at once by the free list's link.
            // SAFETY: a block of `len` bytes of our arena that `allocate` handed out for this
            // layout and the caller no longer uses.
            let _ = unsafe {
                rustix::mm::madvise(ptr.as_ptr().cast(), len, rustix::mm::Advice::LinuxDontNeed)
            };
            let f = ptr.as_ptr().cast::<Free>();
            LARGE[i].push_list(f, f);
        }
    }
}

#[cfg(feature = "internals")]
thread_local! {
    /// Blocks this thread has taken from the metadata heap (virtmem's own tests count them).
    static THREAD_ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many blocks the calling thread has taken from the metadata heap so far (virtmem's own
/// tests: the hot paths must not allocate metadata either).
#[cfg(feature = "internals")]
pub fn thread_allocations() -> usize {
    THREAD_ALLOCATIONS.with(|c| c.get())
}

/// Bytes the metadata heap has mapped (chunks and large blocks).
#[cfg(test)]
pub(crate) fn mapped_bytes() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

/// Takes every class lock (before `fork`: the child must not inherit a held one).
pub(crate) fn lock_all() {
    GROW.lock();
    for c in CLASS.iter().chain(&LARGE) {
        c.lock();
    }
}

/// Releases what [`lock_all`] took (in the parent and in the child after `fork`).
pub(crate) fn unlock_all() {
    for c in CLASS.iter().chain(&LARGE).rev() {
        c.unlock();
    }
    GROW.unlock();
}

/// A reference-counted, shared value on the metadata heap (an `Arc` that never touches the
/// process heap).
pub(crate) struct MetaArc<T> {
    ptr: NonNull<ArcInner<T>>,
}

struct ArcInner<T> {
    count: AtomicUsize,
    value: T,
}

// SAFETY: like `Arc<T>`: shared access to `T` from several threads needs `T: Sync`, moving
// the last reference (and so dropping `T`) to another thread needs `T: Send`.
unsafe impl<T: Send + Sync> Send for MetaArc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for MetaArc<T> {}

impl<T> MetaArc<T> {
    /// Moves `value` to the metadata heap. Aborts if the heap cannot grow (as `Arc::new`).
    pub(crate) fn new(value: T) -> MetaArc<T> {
        let layout = Layout::new::<ArcInner<T>>();
        let Ok(p) = Meta.allocate(layout) else {
            std::alloc::handle_alloc_error(layout)
        };
        let ptr = p.cast::<ArcInner<T>>();
        // SAFETY: fresh, suitably sized and aligned memory.
        unsafe {
            ptr.as_ptr().write(ArcInner {
                count: AtomicUsize::new(1),
                value,
            })
        };
        MetaArc { ptr }
    }

    /// Whether two references point to the same value.
    pub(crate) fn ptr_eq(a: &MetaArc<T>, b: &MetaArc<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The address of the shared value (stable while any reference lives).
    pub(crate) fn as_ptr(this: &MetaArc<T>) -> *const T {
        // SAFETY: `this` keeps the value alive.
        &raw const unsafe { this.ptr.as_ref() }.value
    }

    /// Gives this reference up as a raw pointer (to the shared block, at least 16-aligned);
    /// [`MetaArc::from_raw`] takes it back, [`MetaArc::clone_raw`] makes another reference.
    pub(crate) fn into_raw(this: MetaArc<T>) -> *mut () {
        let p = this.ptr.as_ptr().cast();
        std::mem::forget(this);
        p
    }

    /// Takes back a reference given up by [`MetaArc::into_raw`].
    ///
    /// # Safety
    /// `p` came from `MetaArc::<T>::into_raw`, and each such pointer is taken back once.
    pub(crate) unsafe fn from_raw(p: *mut ()) -> MetaArc<T> {
        MetaArc {
            // SAFETY: `into_raw` gave a non-null pointer to a live block (caller's contract).
            ptr: unsafe { NonNull::new_unchecked(p.cast()) },
        }
    }

    /// The block of this reference as a raw pointer, without giving the reference up.
    pub(crate) fn as_raw(this: &MetaArc<T>) -> *const () {
        this.ptr.as_ptr().cast_const().cast()
    }

    /// The value in the block `p` (from [`MetaArc::as_raw`] or [`MetaArc::into_raw`]).
    ///
    /// # Safety
    /// Some reference to the block must live for `'a`.
    pub(crate) unsafe fn value_of_raw<'a>(p: *const ()) -> &'a T {
        // SAFETY: a live block (caller's contract).
        &unsafe { &*p.cast::<ArcInner<T>>() }.value
    }

    /// The block holding `value`, a reference obtained from a `MetaArc<T>` (its `Deref`).
    pub(crate) fn raw_of_value(value: &T) -> *const () {
        (value as *const T)
            .cast::<u8>()
            .wrapping_sub(std::mem::offset_of!(ArcInner<T>, value))
            .cast()
    }

    /// A new reference to the block `p` (from [`MetaArc::as_raw`]).
    ///
    /// # Safety
    /// Some reference to the block must live during the call (the count is not zero).
    pub(crate) unsafe fn clone_raw(p: *const ()) -> MetaArc<T> {
        // SAFETY: a live block (caller's contract).
        unsafe { &*p.cast::<ArcInner<T>>() }
            .count
            .fetch_add(1, Ordering::Relaxed);
        MetaArc {
            // SAFETY: non-null: a live block.
            ptr: unsafe { NonNull::new_unchecked(p.cast_mut().cast()) },
        }
    }

    /// How many references there are (for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn strong_count(this: &MetaArc<T>) -> usize {
        // SAFETY: `this` keeps the value alive.
        unsafe { this.ptr.as_ref() }.count.load(Ordering::Acquire)
    }
}

impl<T> Clone for MetaArc<T> {
    fn clone(&self) -> MetaArc<T> {
        // SAFETY: `self` keeps the value alive.
        unsafe { self.ptr.as_ref() }
            .count
            .fetch_add(1, Ordering::Relaxed);
        MetaArc { ptr: self.ptr }
    }
}

impl<T> std::ops::Deref for MetaArc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `self` keeps the value alive.
        &unsafe { self.ptr.as_ref() }.value
    }
}

impl<T> Drop for MetaArc<T> {
    fn drop(&mut self) {
        // SAFETY: `self` keeps the value alive until the count reaches zero.
        if unsafe { self.ptr.as_ref() }
            .count
            .fetch_sub(1, Ordering::Release)
            != 1
        {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: the last reference: drop the value and free its block.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            Meta.deallocate(self.ptr.cast(), Layout::new::<ArcInner<T>>());
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for MetaArc<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A vector on the metadata heap.
pub(crate) type MetaVec<T> = allocator_api2::vec::Vec<T, Meta>;

/// A new, empty vector on the metadata heap.
pub(crate) const fn meta_vec<T>() -> MetaVec<T> {
    MetaVec::new_in(Meta)
}

/// `collect()` into a vector on the metadata heap.
pub(crate) trait CollectMeta: Iterator + Sized {
    /// The items, in a [`MetaVec`].
    fn collect_meta(self) -> MetaVec<Self::Item> {
        let mut v = meta_vec();
        v.extend(self);
        v
    }
}

impl<I: Iterator> CollectMeta for I {}

/// What a growable output list needs (std's `Vec` for callers outside the engine, a
/// [`MetaVec`] inside it).
pub(crate) trait VecLike<T> {
    /// Removes every item.
    fn clear(&mut self);
    /// Appends one.
    fn push(&mut self, v: T);
    /// How many there are.
    fn len(&self) -> usize;
    /// Resizes to `n` items, new ones `fill`.
    fn resize(&mut self, n: usize, fill: T)
    where
        T: Clone;
    /// The items.
    fn as_mut_slice(&mut self) -> &mut [T];
}

macro_rules! vec_like {
    ($($t:ty),*) => {$(
        impl<T> VecLike<T> for $t {
            fn clear(&mut self) {
                Self::clear(self)
            }
            fn push(&mut self, v: T) {
                Self::push(self, v)
            }
            fn len(&self) -> usize {
                Self::len(self)
            }
            fn resize(&mut self, n: usize, fill: T)
            where
                T: Clone,
            {
                Self::resize(self, n, fill)
            }
            fn as_mut_slice(&mut self) -> &mut [T] {
                Self::as_mut_slice(self)
            }
        }
    )*};
}
vec_like!(Vec<T>, MetaVec<T>);
/// A box on the metadata heap.
pub(crate) type MetaBox<T> = allocator_api2::boxed::Box<T, Meta>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size() {
        let mut last = 0;
        for size in 1..=SMALL_MAX {
            let (i, s) = class_of(size);
            assert!(i < CLASSES, "{size}");
            assert!(s >= size && s % SMALL_ALIGN == 0, "{size} -> {s}");
            assert!(i >= last, "classes ascend");
            last = i;
            assert!(s - size < s / 4 + 16, "waste at {size}: {s}");
        }
        assert_eq!(class_of(SMALL_MAX).1, SMALL_MAX);
    }

    #[test]
    fn blocks_are_distinct_aligned_and_reused() {
        let l = Layout::from_size_align(40, 8).unwrap();
        let a: Vec<_> = (0..5000).map(|_| Meta.allocate(l).unwrap()).collect();
        let mut addrs: Vec<usize> = a.iter().map(|p| p.cast::<u8>().as_ptr() as usize).collect();
        assert!(addrs.iter().all(|p| p % 16 == 0));
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 5000);
        for p in &a {
            // SAFETY: allocated above with `l`.
            unsafe { Meta.deallocate(p.cast(), l) };
        }
        let again = Meta.allocate(l).unwrap();
        assert!(addrs.contains(&(again.cast::<u8>().as_ptr() as usize)));
        // SAFETY: allocated just above.
        unsafe { Meta.deallocate(again.cast(), l) };
    }

    #[test]
    fn large_blocks_are_reused_zeroed() {
        let l = Layout::from_size_align(100_000, 8).unwrap();
        let p = Meta.allocate(l).unwrap();
        assert_eq!(p.len(), 131_072);
        // SAFETY: writable memory of at least 100,000 bytes.
        unsafe { p.cast::<u8>().as_ptr().add(99_999).write(1) };
        // SAFETY: allocated above with `l`.
        unsafe { Meta.deallocate(p.cast(), l) };
        let q = Meta.allocate(l).unwrap();
        assert_eq!(q.cast::<u8>(), p.cast::<u8>(), "the freed block is reused");
        // SAFETY: the reused block, whose memory was returned to the kernel.
        assert_eq!(unsafe { q.cast::<u8>().as_ptr().add(99_999).read() }, 0);
        // SAFETY: allocated above with `l`.
        unsafe { Meta.deallocate(q.cast(), l) };
    }

    #[test]
    fn threads_share_the_heap() {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut v: MetaVec<MetaArc<usize>> = MetaVec::new_in(Meta);
                    for i in 0..20_000 {
                        v.push(MetaArc::new(i * 4 + t));
                        if i % 3 == 0 {
                            v.swap_remove(i / 7);
                        }
                    }
                    v.iter().map(|x| **x).sum::<usize>()
                })
            })
            .collect();
        for h in hs {
            assert!(h.join().unwrap() > 0);
        }
    }

    #[test]
    fn chunks_come_from_arenas() {
        let before = mapped_bytes();
        let l = Layout::from_size_align(12_000, 16).unwrap();
        let blocks: Vec<_> = (0..64).map(|_| Meta.allocate(l).unwrap()).collect();
        assert!(mapped_bytes() > before, "new chunks were made read-write");
        for b in blocks {
            // SAFETY: allocated above with `l`.
            unsafe { Meta.deallocate(b.cast(), l) };
        }
    }

    #[test]
    fn arc_counts() {
        let a = MetaArc::new(String::from("x"));
        let b = a.clone();
        assert!(MetaArc::ptr_eq(&a, &b));
        drop(a);
        assert_eq!(&*b, "x");
    }
}
