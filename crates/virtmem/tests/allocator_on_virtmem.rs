//! Issue 12, item 7: an allocator can be built on virtmem. This test binary's global
//! allocator gets all its memory from `VirtualAlloc` / `VirtualFree` (and sizes itself with
//! `GetSystemInfo`), and aborts loudly if virtmem calls back into it (a heap allocation from
//! inside a virtmem call): everything the test harness and the workload allocate, on every
//! thread, goes through virtmem.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use virtmem::win32::*;

/// Blocks of one size class, at most this big; larger requests get their own allocation.
const MAX_SMALL: usize = 4096;
/// Bytes reserved and committed at a time for small blocks.
const SLAB: usize = 1 << 20;
const CLASSES: usize = MAX_SMALL / 16;

struct OnVirtmem {
    lock: AtomicBool,
    /// Free list heads, one per 16-byte size class.
    free: [AtomicPtr<u8>; CLASSES],
    /// The current slab's next byte and end.
    next: AtomicUsize,
    end: AtomicUsize,
}

thread_local! {
    /// Set while this thread is inside a virtmem call made by the allocator.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

fn reentered() -> ! {
    let msg = b"allocator_on_virtmem: virtmem called the heap from inside a virtmem call\n";
    // SAFETY: writing a static buffer to stderr, then aborting.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}

/// Runs a virtmem call, aborting if it re-enters the allocator.
fn virtmem<R>(f: impl FnOnce() -> R) -> R {
    INSIDE.with(|i| i.set(true));
    CALLS.fetch_add(1, Ordering::Relaxed);
    let r = f();
    INSIDE.with(|i| i.set(false));
    r
}

impl OnVirtmem {
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
}

#[allow(clippy::declare_interior_mutable_const)]
const NULL: AtomicPtr<u8> = AtomicPtr::new(null_mut());

// SAFETY: small blocks are distinct 16-byte-aligned pieces of committed slabs, handed out
// once until freed; large ones are whole virtmem allocations (64 KiB aligned).
unsafe impl GlobalAlloc for OnVirtmem {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if INSIDE.with(Cell::get) {
            reentered();
        }
        let size = l.size().max(l.align()).max(1);
        if size > MAX_SMALL || l.align() > 16 {
            // SAFETY: a fresh allocation at an address of virtmem's choosing.
            return virtmem(|| unsafe {
                VirtualAlloc(null(), size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE)
            })
            .cast();
        }
        let c = size.div_ceil(16) - 1;
        self.lock();
        let head = self.free[c].load(Ordering::Relaxed);
        if !head.is_null() {
            // SAFETY: a freed block of this class; its first word links to the next.
            let next = unsafe { *(head as *mut *mut u8) };
            self.free[c].store(next, Ordering::Relaxed);
            self.unlock();
            return head;
        }
        let bytes = (c + 1) * 16;
        let mut at = self.next.load(Ordering::Relaxed);
        if at == 0 || at + bytes > self.end.load(Ordering::Relaxed) {
            // The lock is held across the virtmem call: a re-entry would deadlock, so it is
            // caught before (INSIDE) and reported.
            // SAFETY: a fresh allocation at an address of virtmem's choosing.
            let slab = virtmem(|| unsafe {
                VirtualAlloc(null(), SLAB, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE)
            });
            if slab.is_null() {
                self.unlock();
                return null_mut();
            }
            at = slab as usize;
            self.end.store(at + SLAB, Ordering::Relaxed);
        }
        self.next.store(at + bytes, Ordering::Relaxed);
        self.unlock();
        at as *mut u8
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if INSIDE.with(Cell::get) {
            reentered();
        }
        let size = l.size().max(l.align()).max(1);
        if size > MAX_SMALL || l.align() > 16 {
            // SAFETY: `p` is the base of an allocation `alloc` made for this layout.
            let ok = virtmem(|| unsafe { VirtualFree(p.cast(), 0, MEM_RELEASE) });
            assert_ne!(ok, 0, "VirtualFree of a large block");
            return;
        }
        let c = size.div_ceil(16) - 1;
        self.lock();
        // SAFETY: the block is ours again; its first word becomes the link.
        unsafe { *(p as *mut *mut u8) = self.free[c].load(Ordering::Relaxed) };
        self.free[c].store(p, Ordering::Relaxed);
        self.unlock();
    }
}

#[global_allocator]
static HEAP: OnVirtmem = OnVirtmem {
    lock: AtomicBool::new(false),
    free: [NULL; CLASSES],
    next: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
};

#[test]
fn a_multithreaded_workload_on_an_allocator_built_on_virtmem() {
    // The allocator's own set-up questions, through the same layer.
    let mut si = std::mem::MaybeUninit::<SYSTEM_INFO>::zeroed();
    // SAFETY: a writable SYSTEM_INFO.
    virtmem(|| unsafe { GetSystemInfo(si.as_mut_ptr()) });
    // SAFETY: filled just above.
    assert_eq!(unsafe { si.assume_init() }.dwAllocationGranularity, 65536);
    assert!(virtmem(|| GetLargePageMinimum()) % 4096 == 0);

    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut keep: Vec<Box<[u8]>> = Vec::new();
                let mut map = std::collections::HashMap::new();
                for i in 0..4000usize {
                    let n = (i * 37 + t * 11) % 3000 + 1;
                    keep.push(vec![t as u8; n].into_boxed_slice());
                    map.insert(i, format!("{t}-{i}"));
                    if i % 3 == 0 {
                        keep.swap_remove((i * 7) % keep.len());
                    }
                    if i % 500 == 0 {
                        // A large block: its own reservation, released when dropped.
                        let big = vec![1u8; 200_000];
                        assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 200_000);
                        // Query and protect through virtmem while its allocations are live.
                        let mut mbi = std::mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
                        // SAFETY: a query into a local buffer.
                        let n = virtmem(|| unsafe {
                            VirtualQuery(
                                big.as_ptr().cast(),
                                mbi.as_mut_ptr(),
                                size_of::<MEMORY_BASIC_INFORMATION>(),
                            )
                        });
                        assert_ne!(n, 0);
                    }
                }
                assert!(keep.iter().all(|b| b.iter().all(|&x| x == t as u8)));
                assert_eq!(map.len(), 4000);
                map.len()
            })
        })
        .collect();
    for h in threads {
        assert_eq!(h.join().unwrap(), 4000);
    }
    // VirtualProtect on a page of our own, too.
    // SAFETY: a fresh page, protected and released by this test.
    unsafe {
        let p = virtmem(|| VirtualAlloc(null(), 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE));
        let mut old = 0;
        assert_ne!(
            virtmem(|| VirtualProtect(p, 4096, PAGE_READONLY, &mut old)),
            0
        );
        assert_ne!(virtmem(|| VirtualFree(p, 0, MEM_RELEASE)), 0);
    }
    assert!(CALLS.load(Ordering::Relaxed) > 10);
}
