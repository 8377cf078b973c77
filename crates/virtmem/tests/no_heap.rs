//! Issue 12, item 7 (the part that is done): the system facts a `malloc` built on virtmem
//! asks for first — GetSystemInfo, GetNativeSystemInfo, GetLargePageMinimum, GetLastError /
//! SetLastError, `virtmem::system_info` — never use the heap, cold (the first call in the
//! process) or warm. A global allocator counts every allocation this thread makes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Heap allocations `f` makes on this thread.
fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::SeqCst) - before
}

fn system_calls() {
    use virtmem::win32::*;
    let mut si = std::mem::MaybeUninit::<SYSTEM_INFO>::zeroed();
    // SAFETY: a writable SYSTEM_INFO.
    unsafe { GetSystemInfo(si.as_mut_ptr()) };
    // SAFETY: the same.
    unsafe { GetNativeSystemInfo(si.as_mut_ptr()) };
    std::hint::black_box(GetLargePageMinimum());
    SetLastError(5);
    assert_eq!(GetLastError(), 5);
    std::hint::black_box(virtmem::system_info());
}

#[test]
fn system_facts_use_no_heap_cold_or_warm() {
    // One test in this binary, so the first round is the process's first use of virtmem.
    assert_eq!(allocations_of(system_calls), 0, "cold");
    assert_eq!(allocations_of(system_calls), 0, "warm");
    // The answers are right too.
    let s = virtmem::system_info();
    assert!(s.page_size >= 4096 && s.allocation_granularity == 65536);
}
