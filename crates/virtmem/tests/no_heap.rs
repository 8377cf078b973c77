//! Issue 12, item 7: the calls a `malloc` implementation makes — VirtualAlloc / VirtualAlloc2
//! (reserve, commit, top-down, at an address, MEM_RESET / MEM_RESET_UNDO, write watch,
//! placeholders, address requirements), VirtualFree (decommit, release, placeholder split),
//! VirtualProtect (guard pages too), VirtualQuery (ours, foreign, free), GetSystemInfo,
//! GetLargePageMinimum, GetLastError, and their safe Rust equivalents — never use the heap,
//! cold (the first call in the process) or warm. A global allocator counts every allocation
//! this thread makes; `VIRTMEM_TRACE_ALLOC=1` prints where each one came from.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};
use virtmem::win32::*;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
            if TRACE.load(Ordering::Relaxed) {
                COUNTING.with(|c| c.set(false));
                eprintln!("{}", std::backtrace::Backtrace::force_capture());
                COUNTING.with(|c| c.set(true));
            }
        }
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Heap allocations and frees `f` makes on this thread.
fn heap_use(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::SeqCst) - before
}

const P: usize = 4096;

/// Every call a malloc may make, once; records in `failed` (with room reserved: pushing
/// must not allocate) what failed (the calls must succeed too).
fn calls(failed: &mut Vec<&'static str>) {
    let mut check = |ok: bool, what: &'static str| {
        if !ok {
            failed.push(what);
        }
    };
    // SAFETY: every range below is memory this function allocates and releases; the output
    // pointers are locals.
    unsafe {
        let mut si = std::mem::MaybeUninit::<SYSTEM_INFO>::zeroed();
        GetSystemInfo(si.as_mut_ptr());
        check(si.assume_init().dwPageSize as usize == P, "GetSystemInfo");
        check(GetLargePageMinimum() % P == 0, "GetLargePageMinimum");
        SetLastError(7);
        check(GetLastError() == 7, "GetLastError");

        let r = VirtualAlloc(std::ptr::null(), 1 << 20, MEM_RESERVE, PAGE_NOACCESS);
        check(!r.is_null(), "reserve");
        check(
            !VirtualAlloc(r, 16 * P, MEM_COMMIT, PAGE_READWRITE).is_null(),
            "commit",
        );
        (r as *mut u8).write(1);
        let mut old = 0;
        check(
            VirtualProtect(r, P, PAGE_READONLY, &mut old) != 0,
            "protect",
        );
        check(
            VirtualProtect(r, P, PAGE_READWRITE | PAGE_GUARD, &mut old) != 0,
            "guard",
        );
        check(
            VirtualProtect(r, P, PAGE_READWRITE, &mut old) != 0,
            "unguard",
        );
        let mut mbi = std::mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
        let n = size_of::<MEMORY_BASIC_INFORMATION>();
        check(VirtualQuery(r, mbi.as_mut_ptr(), n) == n, "query ours");
        check(
            VirtualQuery(&old as *const u32 as *const c_void, mbi.as_mut_ptr(), n) == n,
            "query foreign",
        );
        check(
            VirtualQuery(0x10000 as *const c_void, mbi.as_mut_ptr(), n) == n,
            "query free",
        );
        check(
            !VirtualAlloc(r, 4 * P, MEM_RESET, PAGE_NOACCESS).is_null(),
            "MEM_RESET",
        );
        let _ = VirtualAlloc(r, 4 * P, MEM_RESET_UNDO, PAGE_NOACCESS);
        check(
            VirtualFree(r.cast::<u8>().add(8 * P).cast(), 8 * P, MEM_DECOMMIT) != 0,
            "decommit",
        );
        check(VirtualFree(r, 0, MEM_RELEASE) != 0, "release");

        let t = VirtualAlloc(
            std::ptr::null(),
            1 << 16,
            MEM_RESERVE | MEM_COMMIT | MEM_TOP_DOWN,
            PAGE_READWRITE,
        );
        check(!t.is_null(), "top-down");
        check(VirtualFree(t, 0, MEM_RELEASE) != 0, "release top-down");
        let w = VirtualAlloc(
            std::ptr::null(),
            1 << 16,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        );
        check(!w.is_null(), "write watch");
        check(VirtualFree(w, 0, MEM_RELEASE) != 0, "release write watch");

        let ph = VirtualAlloc2(
            null_mut(),
            std::ptr::null(),
            1 << 17,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        );
        check(!ph.is_null(), "placeholder");
        check(
            VirtualFree(ph, 1 << 16, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) != 0,
            "split",
        );
        let v = VirtualAlloc2(
            null_mut(),
            ph,
            1 << 16,
            MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE,
            null_mut(),
            0,
        );
        check(v == ph, "replace");
        check(VirtualFree(ph, 0, MEM_RELEASE) != 0, "release replaced");
        check(
            VirtualFree(ph.cast::<u8>().add(1 << 16).cast(), 0, MEM_RELEASE) != 0,
            "release rest",
        );
        let mut req = MEM_ADDRESS_REQUIREMENTS {
            LowestStartingAddress: null_mut(),
            HighestEndingAddress: null_mut(),
            Alignment: 1 << 20,
        };
        let mut param = std::mem::zeroed::<MEM_EXTENDED_PARAMETER>();
        param.Anonymous1._bitfield = MemExtendedParameterAddressRequirements as u64;
        param.Anonymous2.Pointer = (&mut req as *mut MEM_ADDRESS_REQUIREMENTS).cast();
        let a = VirtualAlloc2(
            null_mut(),
            std::ptr::null(),
            1 << 16,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
            &mut param,
            1,
        );
        check(
            !a.is_null() && a as usize % (1 << 20) == 0,
            "address requirements",
        );
        check(VirtualFree(a, 0, MEM_RELEASE) != 0, "release aligned");
    }
    // The same through the safe Rust face.
    check(virtmem::system_info().page_size == P, "system_info");
    match virtmem::Reservation::new(1 << 20) {
        Ok(mut r) => {
            check(
                r.commit(0, 4 * P, virtmem::Protect::ReadWrite).is_ok(),
                "Reservation::commit",
            );
            check(
                r.protect(0, P, virtmem::Protect::ReadOnly).is_ok(),
                "Reservation::protect",
            );
            check(r.query(0).is_ok(), "Reservation::query");
            check(virtmem::query(r.base() as usize).is_ok(), "query");
            check(r.decommit(0, P).is_ok(), "Reservation::decommit");
            check(r.release().is_ok(), "Reservation::release");
        }
        Err(_) => check(false, "Reservation::new"),
    }
}

#[test]
fn the_calls_a_malloc_makes_use_no_heap_cold_or_warm() {
    // One test in this binary, so the first round is the process's first use of virtmem.
    TRACE.store(
        std::env::var_os("VIRTMEM_TRACE_ALLOC").is_some(),
        Ordering::Relaxed,
    );
    let mut failed = Vec::with_capacity(64);
    let cold = heap_use(|| calls(&mut failed));
    assert!(failed.is_empty(), "calls failed: {failed:?}");
    let warm = heap_use(|| calls(&mut failed));
    assert!(failed.is_empty(), "calls failed: {failed:?}");
    assert_eq!((cold, warm), (0, 0), "heap allocations (cold, warm)");
}
