//! Windows heaps from safe Rust (issue 16 item 4): [`Heap`] (a private heap destroyed on drop,
//! or the process heap), boxes and vectors that borrow it ([`HeapBox`], [`HeapVec`]: the
//! `allocator-api2` `Box` and `Vec` with `&Heap` as their allocator), and [`HeapAllocator`]
//! for `#[global_allocator]`.
//!
//! What keeps it sound: memory is handed to safe code only inside a `HeapBox` / `HeapVec`
//! that borrows its heap, so the heap cannot be destroyed while one lives, and only the box
//! frees its block; raw blocks ([`Heap::alloc_raw`]) are freed with an `unsafe fn`. Everything
//! else ([`Heap::size`], [`Heap::walk`], [`Heap::compact`], [`Heap::summary`]) reads the heap's
//! own tables, never memory a borrow can see, and pointers passed in are checked against those
//! tables (a foreign or freed pointer is an error, never a read of its memory).
//!
//! ```
//! use virtmem::{Heap, HeapOptions, HeapVec};
//! let heap = Heap::new(HeapOptions::default())?;
//! let mut v = HeapVec::new_in(&heap);
//! v.extend_from_slice(b"arena");
//! assert_eq!(heap.size(v.as_ptr())?, v.capacity());
//! std::mem::forget(v); // an arena: dropping the heap frees everything at once
//! drop(heap);
//! # Ok::<(), virtmem::Error>(())
//! ```

use crate::engine::{HeapWalkEntry, Heaps};
use crate::error::{Error, Result};
use crate::os::linux::LinuxOs;
use crate::vocab::consts::{
    HEAP_CREATE_ENABLE_EXECUTE, HEAP_ZERO_MEMORY, PROCESS_HEAP_ENTRY_BUSY, PROCESS_HEAP_REGION,
    PROCESS_HEAP_UNCOMMITTED_RANGE,
};
use allocator_api2::alloc::{AllocError, Allocator};
use core::alloc::Layout;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A box whose value lives in a [`Heap`] it borrows.
pub type HeapBox<'h, T> = allocator_api2::boxed::Box<T, &'h Heap>;
/// A vector whose buffer lives in a [`Heap`] it borrows.
pub type HeapVec<'h, T> = allocator_api2::vec::Vec<T, &'h Heap>;

/// Blocks of every heap are aligned to this (MEMORY_ALLOCATION_ALIGNMENT); larger alignments
/// are served by over-allocating.
const ALIGN: usize = 16;

fn heaps() -> &'static Heaps<'static, LinuxOs> {
    Heaps::native()
}

/// How [`Heap::new`] / [`Heap::with_maximum`] create a heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapOptions {
    /// Bytes committed at once (HeapCreate's `dwInitialSize`, rounded up to pages).
    pub initial_size: usize,
    /// Executable heap memory (HEAP_CREATE_ENABLE_EXECUTE).
    pub executable: bool,
}

impl HeapOptions {
    fn flags(self) -> u32 {
        if self.executable {
            HEAP_CREATE_ENABLE_EXECUTE
        } else {
            0
        }
    }
}

/// A Windows heap of this process (see the module documentation). Always serialized, so it is
/// `Send` and `Sync`.
#[derive(Debug)]
pub struct Heap {
    handle: usize,
    owned: bool,
}

/// A heap's figures (HeapSummary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapSummary {
    /// Sum of the requested sizes of live blocks.
    pub allocated: usize,
    /// Committed bytes.
    pub committed: usize,
    /// Reserved bytes.
    pub reserved: usize,
    /// The maximum size of a fixed heap; the reserved bytes of a growable one.
    pub max_reserve: usize,
}

/// What a [`HeapEntry`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapEntryKind {
    /// A region (segment or front-end arena): `committed` and `uncommitted` are set.
    Region,
    /// An uncommitted range of a region.
    Uncommitted,
    /// An allocated block.
    Busy,
    /// A free block.
    Free,
}

/// One entry of [`Heap::walk`] (PROCESS_HEAP_ENTRY): addresses only, nothing is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapEntry {
    /// What it is.
    pub kind: HeapEntryKind,
    /// lpData: the block, region header or range.
    pub address: usize,
    /// cbData.
    pub size: usize,
    /// cbOverhead.
    pub overhead: u8,
    /// iRegionIndex.
    pub region_index: u8,
    /// A region's committed bytes (0 otherwise).
    pub committed: usize,
    /// A region's uncommitted bytes (0 otherwise).
    pub uncommitted: usize,
}

impl HeapEntry {
    fn of(w: &HeapWalkEntry) -> HeapEntry {
        let f = w.flags as u32;
        let kind = if f & PROCESS_HEAP_REGION != 0 {
            HeapEntryKind::Region
        } else if f & PROCESS_HEAP_UNCOMMITTED_RANGE != 0 {
            HeapEntryKind::Uncommitted
        } else if f & PROCESS_HEAP_ENTRY_BUSY != 0 {
            HeapEntryKind::Busy
        } else {
            HeapEntryKind::Free
        };
        HeapEntry {
            kind,
            address: w.data,
            size: w.size,
            overhead: w.overhead,
            region_index: w.region_index,
            committed: w.committed,
            uncommitted: w.uncommitted,
        }
    }
}

/// The iterator of [`Heap::walk`] (HeapWalk, one entry per step). Stops at the end or at the
/// first error (a heap changed under it is walked as HeapWalk would, H66).
pub struct HeapWalk<'h> {
    heap: &'h Heap,
    cur: HeapWalkEntry,
    done: bool,
}

impl Iterator for HeapWalk<'_> {
    type Item = HeapEntry;

    fn next(&mut self) -> Option<HeapEntry> {
        if self.done {
            return None;
        }
        match heaps().walk(self.heap.handle, &self.cur) {
            Ok(Some(e)) => {
                self.cur = e;
                Some(HeapEntry::of(&e))
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

static PROCESS: OnceLock<Heap> = OnceLock::new();

impl Heap {
    /// A new growable private heap (HeapCreate with maximum 0).
    ///
    /// ```
    /// let heap = virtmem::Heap::new(Default::default())?;
    /// let b = heap.boxed([7u64; 4])?;
    /// assert_eq!(b[3], 7);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn new(options: HeapOptions) -> Result<Heap> {
        let handle = heaps().create(options.flags(), options.initial_size, 0)?;
        Ok(Heap {
            handle,
            owned: true,
        })
    }

    /// A fixed-size private heap of at most `maximum` bytes (rounded as HeapCreate rounds;
    /// requests at or above the large-block threshold fail). `maximum` 0 is
    /// ERROR_INVALID_PARAMETER (HeapCreate would make a growable heap: use [`Heap::new`]).
    pub fn with_maximum(options: HeapOptions, maximum: usize) -> Result<Heap> {
        if maximum == 0 {
            return Err(Error::InvalidParameter("a fixed heap needs a maximum size"));
        }
        let handle = heaps().create(options.flags(), options.initial_size, maximum)?;
        Ok(Heap {
            handle,
            owned: true,
        })
    }

    /// The process heap (GetProcessHeap): shared with the Win32 face and never destroyed.
    pub fn process() -> Result<&'static Heap> {
        if let Some(h) = PROCESS.get() {
            return Ok(h);
        }
        let handle = heaps().process_heap()?;
        Ok(PROCESS.get_or_init(|| Heap {
            handle,
            owned: false,
        }))
    }

    /// The heap's HANDLE value, for the Win32 functions.
    pub fn handle(&self) -> usize {
        self.handle
    }

    /// `size` zeroed bytes in a box that borrows the heap.
    pub fn alloc_zeroed(&self, size: usize) -> Result<HeapBox<'_, [u8]>> {
        let layout = Layout::array::<u8>(size)
            .map_err(|_| Error::NotEnoughMemory("the request is too large"))?;
        let p = allocate_in(self.handle, layout, HEAP_ZERO_MEMORY)
            .ok_or(Error::NotEnoughMemory("the heap cannot hold the block"))?;
        let raw = core::ptr::slice_from_raw_parts_mut(p.as_ptr(), size);
        // SAFETY: `p` is what `Allocator::allocate_zeroed` would give for `layout` (zeroed,
        // `size` bytes), so the box's drop frees it through `Allocator::deallocate`.
        Ok(unsafe { HeapBox::from_raw_in(raw, self) })
    }

    /// `value` in a box that borrows the heap (any alignment).
    pub fn boxed<T>(&self, value: T) -> Result<HeapBox<'_, T>> {
        HeapBox::try_new_in(value, self)
            .map_err(|_| Error::NotEnoughMemory("the heap cannot hold the value"))
    }

    /// A raw block of `size` bytes (contents unspecified); free it with [`Heap::free_raw`] or
    /// let the heap's destruction free it.
    pub fn alloc_raw(&self, size: usize) -> Result<NonNull<u8>> {
        let p = heaps().alloc(self.handle, 0, size)?;
        NonNull::new(p as *mut u8).ok_or(Error::NotEnoughMemory("no block"))
    }

    /// Frees a block of this heap (HeapFree). A pointer that is not a live block of this heap
    /// is refused with an error and changes nothing.
    ///
    /// # Safety
    ///
    /// No reference to the block's memory may be used afterwards; the block must not be one a
    /// [`HeapBox`] or [`HeapVec`] owns.
    pub unsafe fn free_raw(&self, p: NonNull<u8>) -> Result<()> {
        heaps().free(self.handle, 0, p.as_ptr() as usize)
    }

    /// The requested size of a live block of this heap (HeapSize); an error for any other
    /// pointer. Reads only the heap's own tables and the block's header.
    pub fn size(&self, p: *const u8) -> Result<usize> {
        heaps().size(self.handle, 0, p as usize)
    }

    /// Whether every block of the heap is intact (HeapValidate with NULL).
    pub fn validate(&self) -> bool {
        heaps().validate(self.handle, 0, 0).unwrap_or(false)
    }

    /// Gives back what it can (HeapCompact); the largest committed free block.
    pub fn compact(&self) -> Result<usize> {
        heaps().compact(self.handle, 0)
    }

    /// Allocated, committed and reserved bytes (HeapSummary).
    pub fn summary(&self) -> Result<HeapSummary> {
        let s = heaps().summary(self.handle, 0)?;
        Ok(HeapSummary {
            allocated: s.allocated,
            committed: s.committed,
            reserved: s.reserved,
            max_reserve: s.max_reserve,
        })
    }

    /// The heap's regions, blocks and uncommitted ranges (HeapWalk).
    pub fn walk(&self) -> HeapWalk<'_> {
        HeapWalk {
            heap: self,
            cur: HeapWalkEntry::default(),
            done: false,
        }
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        if self.owned {
            let _ = heaps().destroy(self.handle);
        }
    }
}

/// Allocates `layout` in heap `h`: 16-byte alignment directly, larger alignments by
/// over-allocating and keeping the block's own pointer in the word below the aligned one.
fn allocate_in(h: usize, layout: Layout, flags: u32) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        // No block: a dangling, aligned pointer (what zero-sized boxes and vectors hold).
        return NonNull::new(layout.align() as *mut u8);
    }
    if layout.align() <= ALIGN {
        let p = heaps().alloc(h, flags, layout.size()).ok()?;
        return NonNull::new(p as *mut u8);
    }
    let total = layout.size().checked_add(layout.align())?;
    let p = heaps().alloc(h, flags, total).ok()?;
    // The first multiple of the alignment above `p`: at least 16 bytes above it (p is
    // 16-aligned, the alignment at least 32), at most `align` above, so `size` bytes fit.
    let a = (p | (layout.align() - 1)) + 1;
    // SAFETY: `a - 8` lies inside the block just allocated (a − 8 ≥ p + 8), 8-aligned.
    unsafe { ((a - 8) as *mut usize).write(p) };
    NonNull::new(a as *mut u8)
}

/// Frees what [`allocate_in`] gave for `layout`.
///
/// # Safety
///
/// `p` came from `allocate_in(h, layout, _)` and was not freed.
unsafe fn deallocate_in(h: usize, p: NonNull<u8>, layout: Layout) {
    if layout.size() == 0 {
        return;
    }
    let block = if layout.align() <= ALIGN {
        p.as_ptr() as usize
    } else {
        // SAFETY: `allocate_in` stored the block's pointer in the word below `p`.
        unsafe { ((p.as_ptr() as usize - 8) as *const usize).read() }
    };
    let _ = heaps().free(h, 0, block);
}

// SAFETY: blocks are live until deallocated (or the heap is destroyed, which needs the heap by
// value, so no `&Heap` allocator — and so no box or vector using one — can be alive); they are
// aligned to `layout.align()` and at least `layout.size()` long; the heap is `Sync` (every call
// takes its lock), and moving the `&Heap` does not invalidate blocks.
unsafe impl Allocator for Heap {
    fn allocate(&self, layout: Layout) -> core::result::Result<NonNull<[u8]>, AllocError> {
        let p = allocate_in(self.handle, layout, 0).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    fn allocate_zeroed(&self, layout: Layout) -> core::result::Result<NonNull<[u8]>, AllocError> {
        let p = allocate_in(self.handle, layout, HEAP_ZERO_MEMORY).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller passes a block this allocator gave with `layout`.
        unsafe { deallocate_in(self.handle, ptr, layout) }
    }
}

/// A `#[global_allocator]` on a private growable virtmem heap, made on first use:
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: virtmem::HeapAllocator = virtmem::HeapAllocator::new();
/// fn main() {
///     let v = vec![1u8; 100]; // a HeapAlloc block
///     assert_eq!(v[99], 1);
/// }
/// ```
///
/// The heap calls never allocate through the Rust allocator (their bookkeeping lives on
/// virtmem's metadata heap), so this never recurses into itself; `tests/heap_safe.rs` runs
/// a program under it. Alignments above 16 are served by over-allocating.
#[derive(Debug)]
pub struct HeapAllocator {
    /// 0: not made; 1: being made; else the heap's handle.
    state: AtomicUsize,
    /// The thread making it (to refuse, rather than deadlock on, a recursive first call).
    maker: AtomicI32,
}

impl Default for HeapAllocator {
    fn default() -> HeapAllocator {
        HeapAllocator::new()
    }
}

impl HeapAllocator {
    /// An allocator whose heap is made on first use.
    pub const fn new() -> HeapAllocator {
        HeapAllocator {
            state: AtomicUsize::new(0),
            maker: AtomicI32::new(0),
        }
    }

    /// The heap's handle, made now if needed; `None` if it cannot be made (or on a recursive
    /// first call from the thread making it).
    pub fn heap_handle(&self) -> Option<usize> {
        loop {
            match self.state.load(Ordering::Acquire) {
                0 => {
                    if self
                        .state
                        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        // SAFETY: gettid has no preconditions.
                        self.maker
                            .store(unsafe { libc::gettid() }, Ordering::Relaxed);
                        match heaps().create(0, 0, 0) {
                            Ok(h) => {
                                self.state.store(h, Ordering::Release);
                                return Some(h);
                            }
                            Err(_) => {
                                self.state.store(0, Ordering::Release);
                                return None;
                            }
                        }
                    }
                }
                1 => {
                    // SAFETY: gettid has no preconditions.
                    if self.maker.load(Ordering::Relaxed) == unsafe { libc::gettid() } {
                        return None;
                    }
                    std::thread::yield_now();
                }
                h => return Some(h),
            }
        }
    }
}

// SAFETY: blocks come from a heap that is never destroyed, aligned and sized per the layout
// (`allocate_in`); `dealloc` frees only what `alloc` gave (the caller's contract). Failure is a
// null pointer, never a panic.
unsafe impl std::alloc::GlobalAlloc for HeapAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.heap_handle()
            .and_then(|h| allocate_in(h, layout, 0))
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.heap_handle()
            .and_then(|h| allocate_in(h, layout, HEAP_ZERO_MEMORY))
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let h = self.state.load(Ordering::Acquire);
        if let (Some(p), true) = (NonNull::new(ptr), h > 1) {
            // SAFETY: `ptr` came from `alloc` with `layout` on this heap.
            unsafe { deallocate_in(h, p, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let h = self.state.load(Ordering::Acquire);
        if layout.align() <= ALIGN && h > 1 {
            return heaps()
                .realloc(h, 0, ptr as usize, new_size)
                .map_or(core::ptr::null_mut(), |p| p as *mut u8);
        }
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: the caller's contract, passed on.
        unsafe {
            let q = self.alloc(new);
            if !q.is_null() {
                core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            q
        }
    }
}
