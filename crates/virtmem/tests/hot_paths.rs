//! Issue 14, item 2: after warm-up, the hot calls allocate nothing.
//!
//! * `VirtualProtect` changing one run (a page in the middle of an allocation, and back),
//!   and `VirtualQuery` (of a one-run and of a three-run allocation, and of free memory),
//!   take nothing from the process heap **and nothing from virtmem's metadata heap** (no
//!   snapshot block is allocated or freed: one-run tables are packed in a word, multi-run
//!   ones reuse the allocation's spare block).
//! * A reserve + commit + release cycle of a size seen before takes nothing from the process
//!   heap (its metadata — the allocation's block — comes from a metadata size class whose
//!   free list the previous release refilled).
//!
//! A counting global allocator counts this thread's heap calls; the metadata heap counts its
//! own per thread (`internals`). Nothing here is timed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::null;
use virtmem::os::linux::metaheap_thread_allocations;
use virtmem::win32::*;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static HEAP: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            HEAP.with(|h| h.set(h.get() + 1));
        }
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.with(Cell::get) {
            HEAP.with(|h| h.set(h.get() + 1));
        }
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const P: usize = 4096;
const K64: usize = 64 << 10;

/// (process-heap calls, metadata-heap blocks) that `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> (usize, usize) {
    let (h0, m0) = (HEAP.with(Cell::get), metaheap_thread_allocations());
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    (
        HEAP.with(Cell::get) - h0,
        metaheap_thread_allocations() - m0,
    )
}

fn protect(p: usize, prot: u32) {
    let mut old = 0;
    // SAFETY: `p` is a committed page of an allocation of this test.
    assert_eq!(
        unsafe { VirtualProtect(p as *const c_void, P, prot, &mut old) },
        TRUE
    );
}

fn query(p: usize) -> MEMORY_BASIC_INFORMATION {
    // SAFETY: plain data; all zeroes is a valid value.
    let mut mbi: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let n = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
    // SAFETY: a writable buffer of the right size.
    assert_eq!(unsafe { VirtualQuery(p as *const c_void, &mut mbi, n) }, n);
    mbi
}

fn cycle() {
    // SAFETY: memory of this function only, released before it returns.
    unsafe {
        let p = VirtualAlloc(null(), K64, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!p.is_null());
        (p as *mut u8).write_volatile(1);
        assert_eq!(VirtualFree(p, 0, MEM_RELEASE), TRUE);
    }
}

/// One test function, so no other test thread pins epochs or allocates meanwhile (a reader
/// pinned at the wrong moment only delays reuse, but this test counts exactly).
#[test]
fn hot_paths_allocate_nothing() {
    protect_and_query_allocate_nothing_after_warm_up();
    a_cycle_of_a_known_size_takes_nothing_from_the_process_heap();
    the_counters_see_allocations();
}

fn protect_and_query_allocate_nothing_after_warm_up() {
    // SAFETY: a fresh allocation, released at the end.
    let base = unsafe { VirtualAlloc(null(), K64, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) };
    assert!(!base.is_null());
    let base = base as usize;
    let mid = base + K64 / 2;
    // Warm-up: the first multi-run table is a new block; later ones reuse it.
    for _ in 0..4 {
        protect(mid, PAGE_READONLY);
        protect(mid, PAGE_READWRITE);
    }
    let (heap, meta) = allocations(|| {
        for _ in 0..1000 {
            protect(mid, PAGE_READONLY);
            protect(mid, PAGE_READWRITE);
        }
    });
    assert_eq!((heap, meta), (0, 0), "VirtualProtect toggling one page");
    assert_eq!(query(mid).Protect, PAGE_READWRITE);

    protect(mid, PAGE_READONLY);
    let (heap, meta) = allocations(|| {
        for _ in 0..1000 {
            assert_eq!(query(base).RegionSize, K64 / 2);
            assert_eq!(query(mid).Protect, PAGE_READONLY);
            assert_eq!(query(mid + P).RegionSize, K64 / 2 - P);
        }
    });
    assert_eq!(
        (heap, meta),
        (0, 0),
        "VirtualQuery of a three-run allocation"
    );
    protect(mid, PAGE_READWRITE);
    let (heap, meta) = allocations(|| {
        for _ in 0..1000 {
            assert_eq!(query(mid).RegionSize, K64 / 2);
        }
    });
    assert_eq!((heap, meta), (0, 0), "VirtualQuery of a one-run allocation");
    // SAFETY: the allocation made above.
    assert_eq!(
        unsafe { VirtualFree(base as *mut c_void, 0, MEM_RELEASE) },
        TRUE
    );
    let (heap, meta) = allocations(|| {
        for _ in 0..1000 {
            assert_eq!(query(base).State, MEM_FREE);
        }
    });
    assert_eq!((heap, meta), (0, 0), "VirtualQuery of free memory");
}

fn a_cycle_of_a_known_size_takes_nothing_from_the_process_heap() {
    for _ in 0..16 {
        cycle();
    }
    let (heap, _) = allocations(|| {
        for _ in 0..1000 {
            cycle();
        }
    });
    assert_eq!(heap, 0, "reserve + commit + release of 64 KiB");
}

/// The counters count: a `Vec` allocates on the process heap, a reservation takes metadata.
fn the_counters_see_allocations() {
    let (heap, _) = allocations(|| drop(std::hint::black_box(vec![1u8; 100])));
    assert!(heap >= 1);
    let (_, meta) = allocations(cycle);
    assert!(meta >= 1);
}
