//! Model-based and adversarial tests of the heap functions (issue 16, item 5): random
//! alloc / realloc / free / size / validate / walk sequences checked against a reference model
//! of the live blocks (pointer → requested size and contents), on one and on several threads;
//! hostile pointers; VirtualQuery of heap memory; HeapDestroy's releases; locking; fork; the
//! HEAP_GENERATE_EXCEPTIONS hook; and that HeapAlloc/HeapFree take nothing from the process
//! heap after warm-up.

use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use virtmem::win32::*;

/// Tests that assert a released address is free run alone (placement reuses the last released
/// slot, so another test's new allocation could take it); the others share.
static ORDER: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ORDER.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    ORDER.write().unwrap_or_else(|e| e.into_inner())
}

struct Counting;
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<usize> = const { Cell::new(0) };
}
// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            CALLS.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.with(Cell::get) {
            CALLS.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

/// The model: live blocks by address → (requested size, pattern seed).
type Model = BTreeMap<usize, (usize, u8)>;

fn fill(p: usize, n: usize, seed: u8) {
    // SAFETY: `[p, p+n)` is a live block of the test's heap.
    let b = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) };
    for (i, x) in b.iter_mut().enumerate() {
        *x = seed.wrapping_add(i as u8);
    }
}

fn check(p: usize, n: usize, seed: u8) {
    // SAFETY: `[p, p+n)` is a live block of the test's heap.
    let b = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
    for (i, &x) in b.iter().enumerate() {
        assert_eq!(x, seed.wrapping_add(i as u8), "block {p:#x}+{i} of {n}");
    }
}

/// HeapSummary of `h` (which must succeed).
fn summary(h: HANDLE) -> HEAP_SUMMARY {
    let mut s = HEAP_SUMMARY {
        cb: std::mem::size_of::<HEAP_SUMMARY>() as u32,
        ..Default::default()
    };
    // SAFETY: a valid heap handle and summary.
    assert_eq!(unsafe { HeapSummary(h, 0, &mut s) }, TRUE);
    s
}

fn walk_busy(h: HANDLE) -> BTreeMap<usize, usize> {
    let mut out = BTreeMap::new();
    // SAFETY: a zeroed entry filled by HeapWalk.
    let mut e: PROCESS_HEAP_ENTRY = unsafe { std::mem::zeroed() };
    unsafe {
        while HeapWalk(h, &mut e) == TRUE {
            if e.wFlags as u32 & PROCESS_HEAP_ENTRY_BUSY != 0 {
                assert!(
                    out.insert(e.lpData as usize, e.cbData as usize).is_none(),
                    "twice"
                );
            }
        }
        assert_eq!(GetLastError(), ERROR_NO_MORE_ITEMS);
    }
    out
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize, bool),
    Realloc(usize, usize, u32),
    Free(usize),
    Size(usize),
    Validate,
    Walk,
    Compact,
    /// `count` blocks of one size, then all but every `keep`-th freed at once (more than a
    /// look-aside list, a thread cache or a class batch holds: spills and batches).
    Burst(usize, usize, usize),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..64,
        6 => 0usize..1100,
        2 => 1000usize..70_000,
        1 => 0xF0000usize..0x110000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        Just(0u32),
        Just(HEAP_ZERO_MEMORY),
        Just(HEAP_REALLOC_IN_PLACE_ONLY)
    ];
    prop_oneof![
        6 => (size(), any::<bool>()).prop_map(|(n, z)| Op::Alloc(n, z)),
        3 => (any::<usize>(), size(), flags).prop_map(|(i, n, f)| Op::Realloc(i, n, f)),
        5 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::Size),
        1 => Just(Op::Validate),
        1 => Just(Op::Walk),
        1 => Just(Op::Compact),
        1 => (prop_oneof![3 => 0usize..1100, 1 => 1000usize..17_000], 32usize..160, 2usize..9)
            .prop_map(|(n, c, k)| Op::Burst(n, c, k)),
    ]
}

/// How `run` shares its heap: `None`, the caller is the heap's only user (its model holds every
/// live block: HeapWalk must list exactly those); `Some(gate)`, other threads use the heap at
/// the same time, each through the same gate.
///
/// The gate exists for the double-free probe (a second HeapFree of a block just freed must be
/// refused). On a shared heap the freed block is at once free for *every* thread: a back-end
/// block goes back to the free ranges, a large block's reservation is kept for the next large
/// block, and another thread's HeapAlloc / HeapReAlloc may be handed exactly that address
/// before the probe runs. The probe then frees the other thread's live block — rightly
/// accepted, but the other thread later finds its block freed ("realloc failed" / HeapFree
/// FALSE with ERROR_INVALID_PARAMETER), handed out twice, or overwritten
/// (`a_freed_block_may_go_to_another_thread_at_once`). So every call that can hand out a block
/// holds the gate shared, and a free that is probed holds it exclusively from the free to the
/// probe: nothing can be handed out in between, and a probe accepted is a real double free.
/// Frees that are not probed (every other one) and everything else stay fully concurrent.
type Gate = std::sync::RwLock<()>;

/// Runs `ops` on heap `h` with the model `m` (blocks this caller owns); `shared`: see [`Gate`].
fn run(h: HANDLE, ops: &[Op], m: &mut Model, seed: &mut u8, shared: Option<&Gate>) {
    let exact_walk = shared.is_none();
    let hand_out = || shared.map(|g| g.read().unwrap_or_else(|e| e.into_inner()));
    unsafe {
        for o in ops {
            match *o {
                Op::Alloc(n, zero) => {
                    let _g = hand_out();
                    let p = HeapAlloc(h, if zero { HEAP_ZERO_MEMORY } else { 0 }, n) as usize;
                    assert_ne!(p, 0);
                    assert_eq!(p % 16, 0);
                    if zero {
                        check_zero(p, n);
                    }
                    *seed = seed.wrapping_add(1);
                    fill(p, n, *seed);
                    assert!(
                        m.insert(p, (n, *seed)).is_none(),
                        "pointer handed out twice"
                    );
                }
                Op::Realloc(i, n, f) if !m.is_empty() => {
                    let (&p, &(old, s)) = m.iter().nth(i % m.len()).unwrap();
                    let _g = hand_out();
                    let q = HeapReAlloc(h, f, p as *const c_void, n) as usize;
                    if q == 0 {
                        assert_ne!(f & HEAP_REALLOC_IN_PLACE_ONLY, 0, "realloc failed");
                        assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
                        assert_eq!(HeapSize(h, 0, p as *const c_void), old);
                        check(p, old, s);
                        continue;
                    }
                    if f & HEAP_REALLOC_IN_PLACE_ONLY != 0 {
                        assert_eq!(q, p);
                    }
                    check(q, old.min(n), s);
                    if f & HEAP_ZERO_MEMORY != 0 && n > old {
                        check_zero(q + old, n - old);
                    }
                    m.remove(&p);
                    *seed = seed.wrapping_add(1);
                    fill(q, n, *seed);
                    assert!(m.insert(q, (n, *seed)).is_none());
                }
                Op::Free(i) if !m.is_empty() => {
                    let p = *m.keys().nth(i % m.len()).unwrap();
                    let (n, s) = m.remove(&p).unwrap();
                    check(p, n, s);
                    // Every other free on a shared heap is probed (see `Gate`).
                    let probe = shared.is_none() || i % 2 == 0;
                    let _g = match shared {
                        Some(g) if probe => Some(g.write().unwrap_or_else(|e| e.into_inner())),
                        _ => None,
                    };
                    assert_eq!(HeapFree(h, 0, p as *const c_void), TRUE);
                    if probe {
                        SetLastError(0xdeadbeef);
                        // Freed: refused, nothing changes.
                        if HeapFree(h, 0, p as *const c_void) == FALSE {
                            assert!(matches!(
                                GetLastError(),
                                ERROR_INVALID_PARAMETER | ERROR_NOACCESS
                            ));
                        } else {
                            panic!("double free accepted");
                        }
                    }
                }
                Op::Burst(n, count, keep) => {
                    let ps: Vec<usize> = {
                        let _g = hand_out();
                        (0..count).map(|_| HeapAlloc(h, 0, n) as usize).collect()
                    };
                    let mut sorted = ps.clone();
                    sorted.sort_unstable();
                    for w in sorted.windows(2) {
                        assert!(
                            w[1] >= w[0] + n.max(1),
                            "burst blocks overlap at {:#x}",
                            w[1]
                        );
                    }
                    assert!(
                        ps.iter().all(|p| !m.contains_key(p)),
                        "a live block handed out again"
                    );
                    for (k, &p) in ps.iter().enumerate() {
                        assert_ne!(p, 0);
                        *seed = seed.wrapping_add(1);
                        fill(p, n, *seed);
                        if k % keep == 0 {
                            assert!(
                                m.insert(p, (n, *seed)).is_none(),
                                "pointer handed out twice"
                            );
                        }
                    }
                    for (k, &p) in ps.iter().enumerate().rev() {
                        if k % keep != 0 {
                            assert_eq!(HeapFree(h, 0, p as *const c_void), TRUE);
                        }
                    }
                }
                Op::Size(i) if !m.is_empty() => {
                    let (&p, &(n, _)) = m.iter().nth(i % m.len()).unwrap();
                    assert_eq!(HeapSize(h, 0, p as *const c_void), n);
                }
                Op::Validate => assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE),
                Op::Compact => {
                    HeapCompact(h, 0);
                    if exact_walk {
                        assert_compacted(h);
                    }
                }
                Op::Walk if exact_walk => {
                    let w = walk_busy(h);
                    let want: BTreeMap<usize, usize> =
                        m.iter().map(|(&p, &(n, _))| (p, n)).collect();
                    assert_eq!(w, want);
                }
                _ => {}
            }
            // No two live blocks overlap.
            let mut end = 0;
            for (&p, &(n, _)) in m.iter() {
                assert!(p >= end, "overlap at {p:#x}");
                end = p + n.max(1);
            }
        }
        for (&p, &(n, s)) in m.iter() {
            check(p, n, s);
        }
    }
}

/// After HeapCompact (the caller alone on the heap): the walk is in address order within
/// each region, and no whole page inside a back-end free block is committed beyond a
/// segment's first MIN_COMMIT bytes (the "committed ≤ live + one granularity": what
/// stays committed is what live blocks and headers touch). Every uncommitted range the walk
/// reports is reserved memory, as VirtualQuery says.
fn assert_compacted(h: HANDLE) {
    const MIN_COMMIT: usize = 0x2000;
    let page = 4096;
    let state = |a: usize| {
        // SAFETY: a query fills the struct.
        let mut m: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer.
        unsafe { VirtualQuery(a as *const c_void, &mut m, std::mem::size_of_val(&m)) };
        m.State
    };
    // SAFETY: a zeroed entry filled by HeapWalk.
    let mut e: PROCESS_HEAP_ENTRY = unsafe { std::mem::zeroed() };
    let (mut segment_base, mut last) = (None, 0usize);
    // SAFETY: walking a live heap.
    while unsafe { HeapWalk(h, &mut e) } == TRUE {
        let (d, n, o) = (e.lpData as usize, e.cbData as usize, e.cbOverhead as usize);
        let f = e.wFlags as u32;
        if f & PROCESS_HEAP_REGION != 0 {
            // Back-end segments report their header as cbData; arenas 0. An arena's first
            // entry may start at its base (its first page, emptied and decommitted: an
            // uncommitted range), a segment's only past its header.
            segment_base = (n != 0).then_some(d);
            last = d - 1;
            continue;
        }
        if e.iRegionIndex == 64 {
            continue;
        }
        assert!(d > last, "walk out of order: {d:#x} after {last:#x}");
        last = d;
        let Some(base) = segment_base else { continue };
        if f & PROCESS_HEAP_UNCOMMITTED_RANGE != 0 {
            for a in (d..d + n).step_by(page) {
                assert_eq!(
                    state(a),
                    MEM_RESERVE,
                    "uncommitted range {d:#x}+{n:#x} at {a:#x}"
                );
            }
        } else if f == 0 {
            let (s, t) = (d - 16, d + n + 2 * o);
            let from = s.max(base + MIN_COMMIT).div_ceil(page) * page;
            let mut a = from;
            while a + page <= t {
                assert_eq!(
                    state(a),
                    MEM_RESERVE,
                    "free block {d:#x}+{n:#x}: page {a:#x} committed"
                );
                a += page;
            }
        }
    }
    // SAFETY: no arguments.
    assert_eq!(GetLastError(), ERROR_NO_MORE_ITEMS);
}

fn check_zero(p: usize, n: usize) {
    // SAFETY: `[p, p+n)` is a live block.
    let b = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
    assert!(b.iter().all(|&x| x == 0), "not zeroed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn one_heap_matches_the_model(ops in proptest::collection::vec(op(), 1..160), ns in any::<bool>()) {
        let _order = shared();
        unsafe {
            let h = HeapCreate(if ns { HEAP_NO_SERIALIZE } else { 0 }, 0, 0);
            let mut m = Model::new();
            let mut seed = 0;
            run(h, &ops, &mut m, &mut seed, None);
            let mut s = HEAP_SUMMARY { cb: std::mem::size_of::<HEAP_SUMMARY>() as u32, ..Default::default() };
            prop_assert_eq!(HeapSummary(h, 0, &mut s), TRUE);
            prop_assert_eq!(s.cbAllocated, m.values().map(|v| v.0).sum::<usize>());
            prop_assert_eq!(HeapDestroy(h), TRUE);
        }
    }

    #[test]
    fn threads_share_a_heap(ops in proptest::collection::vec(proptest::collection::vec(op(), 1..120), 2..4)) {
        let _order = shared();
        unsafe {
            let h = HeapCreate(0, 0, 0) as usize;
            // Make a few classes hot so the front end and its caches are in play.
            for n in [0usize, 24, 40, 100] {
                let ps: Vec<_> = (0..0x12).map(|_| HeapAlloc(h as HANDLE, 0, n)).collect();
                for p in ps { HeapFree(h as HANDLE, 0, p); }
            }
            let (tx, rx) = std::sync::mpsc::channel::<Model>();
            let rx = Arc::new(std::sync::Mutex::new(rx));
            let gate = Arc::new(Gate::new(()));
            let ts: Vec<_> = ops.into_iter().enumerate().map(|(k, ops)| {
                let (tx, rx, gate) = (tx.clone(), rx.clone(), gate.clone());
                std::thread::spawn(move || {
                    let mut m = Model::new();
                    let mut seed = (k as u8) * 61;
                    run(h as HANDLE, &ops, &mut m, &mut seed, Some(&gate));
                    // Hand the blocks to another thread, which checks and frees them.
                    tx.send(m).unwrap();
                    let theirs = rx.lock().unwrap().recv().unwrap();
                    for (&p, &(n, s)) in theirs.iter() {
                        check(p, n, s);
                        assert_eq!(HeapFree(h as HANDLE, 0, p as *const c_void), TRUE);
                    }
                })
            }).collect();
            for t in ts { t.join().unwrap(); }
            prop_assert_eq!(HeapValidate(h as HANDLE, 0, std::ptr::null()), TRUE);
            prop_assert!(walk_busy(h as HANDLE).is_empty());
            prop_assert_eq!(HeapDestroy(h as HANDLE), TRUE);
        }
    }
}

/// Why `threads_share_a_heap` gates its double-free probe (`Gate`): on a shared heap, a block
/// one thread frees may be handed to another thread by its very next HeapAlloc (a back-end
/// block from the coalesced free ranges, a large block from the kept reservation), and a
/// second HeapFree of the old pointer by the first thread then frees the *other* thread's live
/// block — correctly accepted. An ungated probe turns this into "double free accepted" on one
/// thread and a freed / reused / overwritten block on the other. Deterministic: run in order,
/// with the threads' calls strictly one after another, many times.
#[test]
fn a_freed_block_may_go_to_another_thread_at_once() {
    let _order = shared();
    for _ in 0..50 {
        // SAFETY: a heap of our own; every pointer passed is one it handed out.
        unsafe {
            let h = HeapCreate(0, 0, 0) as usize;
            for n in [46usize, 1081, 3000, 0x10_0000] {
                let p = HeapAlloc(h as HANDLE, 0, n) as usize;
                assert_ne!(p, 0);
                assert_eq!(HeapFree(h as HANDLE, 0, p as *const c_void), TRUE);
                let q = std::thread::spawn(move || HeapAlloc(h as HANDLE, 0, n) as usize)
                    .join()
                    .unwrap();
                assert_eq!(q, p, "{n}: the freed block goes to the other thread");
                // The "double free" of p is the other thread's block: accepted, and freed.
                assert_eq!(HeapFree(h as HANDLE, 0, p as *const c_void), TRUE);
                assert_eq!(HeapFree(h as HANDLE, 0, q as *const c_void), FALSE);
            }
            assert_eq!(HeapValidate(h as HANDLE, 0, std::ptr::null()), TRUE);
            assert!(walk_busy(h as HANDLE).is_empty());
            assert_eq!(HeapDestroy(h as HANDLE), TRUE);
        }
    }
}

#[test]
fn hostile_pointers_are_refused_and_change_nothing() {
    let _order = shared();
    unsafe {
        let ph = GetProcessHeap();
        for h in [
            HeapCreate(0, 0, 0),
            HeapCreate(HEAP_NO_SERIALIZE, 0, 0x100000),
            ph,
        ] {
            let other = HeapCreate(0, 0, 0);
            // Make the 64-byte class hot on h (front end) and keep live blocks of each kind.
            let hot: Vec<_> = (0..0x14).map(|_| HeapAlloc(h, 0, 64)).collect();
            let keep = [
                HeapAlloc(h, 0, 64),
                HeapAlloc(h, 0, 3000),
                HeapAlloc(h, 0, 0x10_0000),
            ];
            for (k, &p) in keep.iter().enumerate() {
                if !p.is_null() {
                    fill(p as usize, 64, k as u8);
                }
            }
            let freed = HeapAlloc(h, 0, 64);
            HeapFree(h, 0, freed);
            let freed_back = HeapAlloc(h, 0, 5000);
            HeapFree(h, 0, freed_back);
            let foreign = HeapAlloc(other, 0, 64);
            let mal = libc::malloc(64);
            let stat = Box::leak(Box::new([0u8; 256])).as_mut_ptr().add(64);
            let bad: Vec<(*mut c_void, u32)> = vec![
                (freed, ERROR_INVALID_PARAMETER),
                (freed_back, ERROR_INVALID_PARAMETER),
                (foreign, ERROR_INVALID_PARAMETER),
                (mal, ERROR_INVALID_PARAMETER),
                (stat.cast(), ERROR_INVALID_PARAMETER),
                (
                    (keep[1] as usize + 16) as *mut c_void,
                    ERROR_INVALID_PARAMETER,
                ),
                (
                    (keep[0] as usize + 8) as *mut c_void,
                    ERROR_INVALID_PARAMETER,
                ),
                (
                    (keep[0] as usize + 1) as *mut c_void,
                    ERROR_INVALID_PARAMETER,
                ),
                (0xdeadbe00usize as *mut c_void, ERROR_NOACCESS),
            ];
            for &(p, code) in &bad {
                SetLastError(0);
                assert_eq!(HeapFree(h, 0, p), FALSE, "{p:?}");
                assert_eq!(GetLastError(), code, "{p:?}");
                assert_eq!(HeapSize(h, 0, p), usize::MAX);
                assert!(HeapReAlloc(h, 0, p, 10).is_null());
                SetLastError(0xdeadbeef);
                assert_eq!(HeapValidate(h, 0, p), FALSE);
            }
            assert_eq!(HeapFree(h, 0, std::ptr::null()), TRUE);
            assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE);
            for (k, &p) in keep.iter().enumerate() {
                if !p.is_null() {
                    check(p as usize, 64, k as u8);
                    assert_eq!(HeapFree(h, 0, p), TRUE);
                }
            }
            for p in hot {
                assert_eq!(HeapFree(h, 0, p), TRUE);
            }
            assert_eq!(HeapFree(other, 0, foreign), TRUE);
            libc::free(mal);
            HeapDestroy(other);
            if h != ph {
                HeapDestroy(h);
            }
        }
        // Handles that are not heaps (H50).
        for bogus in [0usize, 1, 0x10000, stat_addr()] {
            SetLastError(0);
            assert!(HeapAlloc(bogus as HANDLE, 0, 1).is_null());
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        }
    }
}

fn stat_addr() -> usize {
    static X: [u8; 0x20000] = [0; 0x20000];
    (X.as_ptr() as usize + 0xFFFF) & !0xFFFF
}

#[test]
fn virtual_query_shows_segments_and_destroy_releases_everything() {
    // Asserts that a released address is free: alone, or another test may allocate there.
    let _order = alone();
    unsafe {
        for (flags, prot) in [
            (0, PAGE_READWRITE),
            (HEAP_CREATE_ENABLE_EXECUTE, PAGE_EXECUTE_READWRITE),
        ] {
            let h = HeapCreate(flags, 0, 0);
            let mut m: MEMORY_BASIC_INFORMATION = std::mem::zeroed();
            VirtualQuery(h, &mut m, std::mem::size_of_val(&m));
            assert_eq!(m.AllocationBase, h);
            assert_eq!(m.Type, MEM_PRIVATE);
            assert_eq!(m.State, MEM_COMMIT);
            assert_eq!(m.Protect, prot);
            assert_eq!(m.RegionSize, 0x2000);
            VirtualQuery(
                (h as usize + 0x2000) as *const c_void,
                &mut m,
                std::mem::size_of_val(&m),
            );
            assert_eq!(m.State, MEM_RESERVE);
            assert_eq!(m.Protect, 0);
            // Blocks of every kind, then destroy: every reservation is free.
            let ps: Vec<_> = (0..40).map(|_| HeapAlloc(h, 0, 32)).collect();
            let big = HeapAlloc(h, 0, 0x20_0000);
            let mid: Vec<_> = (0..20).map(|_| HeapAlloc(h, 0, 0x60000)).collect();
            let mut bases = vec![h as usize];
            for p in ps.iter().chain(mid.iter()).chain([&big]) {
                VirtualQuery(*p, &mut m, std::mem::size_of_val(&m));
                assert_eq!(m.Type, MEM_PRIVATE);
                assert_eq!(m.Protect, prot);
                bases.push(m.AllocationBase as usize);
            }
            assert_eq!(HeapDestroy(h), TRUE);
            for b in bases {
                VirtualQuery(b as *const c_void, &mut m, std::mem::size_of_val(&m));
                assert_eq!(m.State, MEM_FREE, "{b:#x}");
            }
        }
    }
}

#[test]
fn compact_gives_memory_back() {
    let _order = shared();
    unsafe {
        let h = HeapCreate(0, 0, 0);
        let ps: Vec<_> = (0..200)
            .map(|i| HeapAlloc(h, 0, 100 + (i % 7) * 300))
            .collect();
        let mut s = HEAP_SUMMARY {
            cb: std::mem::size_of::<HEAP_SUMMARY>() as u32,
            ..Default::default()
        };
        HeapSummary(h, 0, &mut s);
        let before = s.cbCommitted;
        for p in ps {
            HeapFree(h, 0, p);
        }
        let largest = HeapCompact(h, 0);
        assert!(largest > 0);
        HeapSummary(h, 0, &mut s);
        assert_eq!(s.cbAllocated, 0);
        assert!(s.cbCommitted < before);
        assert!(s.cbCommitted <= 0x10000, "{:#x}", s.cbCommitted);
        HeapDestroy(h);
    }
}

/// HeapCompact decommits the whole pages of free blocks between live ones (holes, as Windows'
/// uncommitted ranges inside a segment), not only a segment's free tail: committed bytes then
/// exceed the live bytes by at most the pages live blocks touch and each segment's first
/// MIN_COMMIT bytes. The live blocks keep their contents, the walk shows the holes, and
/// blocks placed over holes later are committed again.
#[test]
fn compact_decommits_holes_between_live_blocks() {
    let _order = shared();
    unsafe {
        // HEAP_NO_SERIALIZE: no front end, every block on the back end.
        let h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
        let ps: Vec<usize> = (0..400).map(|_| HeapAlloc(h, 0, 5000) as usize).collect();
        let mut seed = 0u8;
        let mut live = Model::new();
        for (k, &p) in ps.iter().enumerate() {
            assert_ne!(p, 0);
            if k % 8 == 0 {
                seed = seed.wrapping_add(1);
                fill(p, 5000, seed);
                live.insert(p, (5000, seed));
            } else {
                assert_eq!(HeapFree(h, 0, p as *const c_void), TRUE);
            }
        }
        let mut s = HEAP_SUMMARY {
            cb: std::mem::size_of::<HEAP_SUMMARY>() as u32,
            ..Default::default()
        };
        assert_eq!(HeapSummary(h, 0, &mut s), TRUE);
        let before = s.cbCommitted;
        let largest = HeapCompact(h, 0);
        assert!(largest > 0 && largest < 8 * 5024, "{largest:#x}");
        assert_eq!(HeapSummary(h, 0, &mut s), TRUE);
        let segments = {
            let mut e: PROCESS_HEAP_ENTRY = std::mem::zeroed();
            let mut n = 0;
            while HeapWalk(h, &mut e) == TRUE {
                n += (e.wFlags as u32 & PROCESS_HEAP_REGION != 0) as usize;
            }
            n
        };
        let bound = s.cbAllocated + live.len() * 2 * 4096 + segments * 0x2000;
        assert!(
            s.cbCommitted <= bound,
            "committed {:#x} > bound {bound:#x} (before {before:#x})",
            s.cbCommitted
        );
        assert!(
            s.cbCommitted * 3 < before,
            "{:#x} vs {before:#x}",
            s.cbCommitted
        );
        assert_compacted(h);
        assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE);
        for (&p, &(n, sd)) in live.iter() {
            check(p, n, sd);
        }
        // A second compaction changes nothing.
        assert_eq!(HeapCompact(h, 0), largest);
        // New blocks land in the holes (first fit) and are fully usable.
        let qs: Vec<usize> = (0..300).map(|_| HeapAlloc(h, 0, 5000) as usize).collect();
        for &q in &qs {
            assert_ne!(q, 0);
            seed = seed.wrapping_add(1);
            fill(q, 5000, seed);
            live.insert(q, (5000, seed));
        }
        assert!(
            qs.iter().any(|&q| q < *ps.iter().max().unwrap()),
            "holes reused"
        );
        assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE);
        for (&p, &(n, sd)) in live.iter() {
            check(p, n, sd);
        }
        let w = walk_busy(h);
        assert_eq!(w.len(), live.len());
        // Grow in place into a hole (the block after the first live one is free).
        let p0 = ps[0];
        let q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p0 as *const c_void, 5000 * 3);
        if !q.is_null() {
            assert_eq!(q as usize, p0);
            std::ptr::write_bytes(q as *mut u8, 7, 5000 * 3);
        }
        assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE);
        assert_eq!(HeapDestroy(h), TRUE);
    }
}

#[test]
fn locking_excludes_back_end_but_not_the_front_end() {
    let _order = shared();
    unsafe {
        let h = HeapCreate(0, 0, 0) as usize;
        SetLastError(0);
        assert_eq!(HeapUnlock(h as HANDLE), FALSE);
        assert_eq!(GetLastError(), ERROR_NOT_LOCKED);
        assert_eq!(HeapLock(h as HANDLE), TRUE);
        assert_eq!(HeapLock(h as HANDLE), TRUE); // recursive
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t = std::thread::spawn(move || {
            let p = HeapAlloc(h as HANDLE, 0, 5000); // back end: waits (case 45)
            HeapFree(h as HANDLE, 0, p);
            d.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!done.load(Ordering::SeqCst));
        // HEAP_NO_SERIALIZE per call bypasses the lock (case 45).
        let q = std::thread::spawn(move || {
            let p = HeapAlloc(h as HANDLE, HEAP_NO_SERIALIZE, 10);
            HeapFree(h as HANDLE, HEAP_NO_SERIALIZE, p)
        })
        .join()
        .unwrap();
        assert_eq!(q, TRUE);
        assert_eq!(HeapUnlock(h as HANDLE), TRUE);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!done.load(Ordering::SeqCst));
        assert_eq!(HeapUnlock(h as HANDLE), TRUE);
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
        // Case 46: after the front end took class 0 over, its blocks come and go while the
        // lock is held.
        let ps: Vec<_> = (0..0x12).map(|_| HeapAlloc(h as HANDLE, 0, 0)).collect();
        for p in ps {
            HeapFree(h as HANDLE, 0, p);
        }
        assert_eq!(HeapLock(h as HANDLE), TRUE);
        let r = std::thread::spawn(move || {
            let p = HeapAlloc(h as HANDLE, 0, 0);
            HeapFree(h as HANDLE, 0, p)
        })
        .join()
        .unwrap();
        assert_eq!(r, TRUE);
        assert_eq!(HeapUnlock(h as HANDLE), TRUE);
        // Case 44: a HEAP_NO_SERIALIZE heap locks nothing.
        let n = HeapCreate(HEAP_NO_SERIALIZE, 0, 0) as usize;
        assert_eq!(HeapLock(n as HANDLE), TRUE);
        let r = std::thread::spawn(move || {
            HeapLock(n as HANDLE);
            let p = HeapAlloc(n as HANDLE, 0, 0);
            HeapFree(n as HANDLE, 0, p);
            HeapUnlock(n as HANDLE)
        })
        .join()
        .unwrap();
        assert_eq!(r, TRUE);
        assert_eq!(HeapUnlock(n as HANDLE), TRUE);
        HeapDestroy(n as HANDLE);
        HeapDestroy(h as HANDLE);
    }
}

static HOOKED: AtomicU32 = AtomicU32::new(0);

#[test]
fn generate_exceptions_calls_the_hook() {
    let _order = shared();
    fn hook(status: u32, size: usize) -> bool {
        assert_eq!(size, 0x20000);
        HOOKED.store(status, Ordering::SeqCst);
        true
    }
    unsafe {
        let old = set_heap_exception_hook(Some(hook));
        let h = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0x10000, 0x10000);
        assert!(HeapAlloc(h, 0, 0x20000).is_null());
        assert_eq!(HOOKED.load(Ordering::SeqCst), 0xC0000017);
        assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
        set_heap_exception_hook(old);
        HeapDestroy(h);
    }
}

#[test]
fn unhandled_exception_aborts_naming_the_status() {
    let _order = shared();
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            // Child: no hook; stderr into /dev/null is not needed: the parent only checks the
            // signal.
            let h = HeapCreate(0, 0x10000, 0x10000);
            HeapAlloc(h, HEAP_GENERATE_EXCEPTIONS, 0x20000);
            libc::_exit(0);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        assert!(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGABRT,
            "status {st:#x}"
        );
    }
}

#[test]
fn the_process_heap_survives_fork() {
    let _order = shared();
    unsafe {
        let ph = GetProcessHeap();
        let ps: Vec<_> = (0..0x20).map(|_| HeapAlloc(ph, 0, 48)).collect();
        for (k, &p) in ps.iter().enumerate() {
            fill(p as usize, 48, k as u8);
        }
        // Another thread keeps allocating while we fork.
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let busy = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let p = HeapAlloc(GetProcessHeap(), 0, 3000);
                HeapFree(GetProcessHeap(), 0, p);
            }
        });
        for _ in 0..5 {
            let pid = libc::fork();
            if pid == 0 {
                let mut ok = GetProcessHeap() == ph;
                for (k, &p) in ps.iter().enumerate() {
                    let b = std::slice::from_raw_parts(p as *const u8, 48);
                    ok &= b
                        .iter()
                        .enumerate()
                        .all(|(i, &x)| x == (k as u8).wrapping_add(i as u8));
                    ok &= HeapFree(ph, 0, p) == TRUE;
                }
                for n in [16usize, 48, 3000, 0x10_0000] {
                    let p = HeapAlloc(ph, 0, n);
                    ok &= !p.is_null() && HeapFree(ph, 0, p) == TRUE;
                }
                ok &= HeapValidate(ph, 0, std::ptr::null()) == TRUE;
                let h = HeapCreate(0, 0, 0);
                ok &= !h.is_null() && HeapDestroy(h) == TRUE;
                libc::_exit(if ok { 0 } else { 1 });
            }
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
            assert!(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                "child failed: {st:#x}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        for p in ps {
            assert_eq!(HeapFree(ph, 0, p), TRUE);
        }
    }
}

#[test]
fn hot_path_takes_nothing_from_the_process_heap() {
    let _order = shared();
    unsafe {
        let ph = GetProcessHeap();
        let h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0x100000);
        // Warm-up: activates the front end for these classes, fills this thread's cache.
        for _ in 0..100 {
            for n in [16usize, 64, 256, 3000] {
                HeapFree(ph, 0, HeapAlloc(ph, 0, n));
                HeapFree(h, 0, HeapAlloc(h, 0, n));
            }
        }
        let c0 = CALLS.with(Cell::get);
        COUNTING.with(|c| c.set(true));
        for _ in 0..1000 {
            for n in [16usize, 64, 256, 3000] {
                HeapFree(ph, 0, HeapAlloc(ph, 0, n));
                HeapFree(h, 0, HeapAlloc(h, 0, n));
            }
        }
        COUNTING.with(|c| c.set(false));
        assert_eq!(CALLS.with(Cell::get) - c0, 0);
        HeapDestroy(h);
        let _ = null_mut::<u8>();
    }
}

/// HeapCompact's holes on a simulated process with 16 KiB pages: holes are whole simulated
/// pages inside free blocks, VirtualQuery shows them reserved inside the segment, the walk
/// reports them as uncommitted ranges (in address order), and blocks placed over them later
/// are committed again and keep what is written.
#[test]
fn simulated_holes_follow_the_page_size() {
    use virtmem::sim::{HeapWalkEntry, SimSpace};
    let layout = virtmem::Layout {
        page_size: 0x4000,
        ..virtmem::Layout::WIN64
    };
    let s = SimSpace::new(layout);
    let h = s.heap_create(HEAP_NO_SERIALIZE, 0, 0).unwrap();
    let ps: Vec<usize> = (0..60).map(|_| s.heap_alloc(h, 0, 9000).unwrap()).collect();
    for (k, &p) in ps.iter().enumerate() {
        if k % 6 != 0 {
            s.heap_free(h, 0, p).unwrap();
        } else {
            s.write(p, &[k as u8; 9000]).unwrap();
        }
    }
    let before = s.heap_summary(h).unwrap();
    assert!(s.heap_compact(h, 0).unwrap() > 0);
    let after = s.heap_summary(h).unwrap();
    assert!(
        after.committed < before.committed / 2,
        "{after:?} vs {before:?}"
    );
    assert_eq!(after.committed % 0x4000, 0);
    // The walk: address order, holes 16 KiB-aligned and reserved.
    let (mut cur, mut last, mut holes) = (HeapWalkEntry::default(), 0, 0);
    while let Some(e) = s.heap_walk(h, &cur).unwrap() {
        if e.flags & 0x1 == 0 && e.region_index != 64 {
            assert!(e.data > last, "{:#x} after {last:#x}", e.data);
            last = e.data;
        }
        if e.flags == 0x2 && e.data < ps[ps.len() - 1] {
            let q = s.query(e.data).unwrap();
            assert_eq!(q.state, virtmem::State::Reserve);
            let segs = s.heap_reservations(h).unwrap();
            let &(b, n) = segs.iter().find(|&&(b, _)| b == q.allocation_base).unwrap();
            assert_eq!(e.data % 0x4000, 0);
            // A segment's uncommitted tail is reported less its last 4 KiB (H60); a hole
            // inside the committed part is whole pages.
            if e.data + e.size + 0x1000 != b + n {
                holes += 1;
                assert_eq!(e.size % 0x4000, 0);
                assert_eq!(q.region_size, e.size);
            }
        }
        cur = e;
    }
    assert!(holes >= 5, "{holes} holes");
    assert!(s.heap_validate(h, 0, 0).unwrap());
    for (k, &p) in ps.iter().enumerate().filter(|(k, _)| k % 6 == 0) {
        let mut b = vec![0u8; 9000];
        s.read(p, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == k as u8));
    }
    // Blocks over the holes: committed again, writable.
    let qs: Vec<usize> = (0..40).map(|_| s.heap_alloc(h, 0, 9000).unwrap()).collect();
    for &q in &qs {
        s.write(q, &[0x5A; 9000]).unwrap();
    }
    assert!(qs.iter().any(|&q| q < ps[ps.len() - 1]));
    assert!(s.heap_validate(h, 0, 0).unwrap());
    s.heap_destroy(h).unwrap();
}

/// Heaps without a front end keep every freed small block in their look-asides (a full list
/// moves to a chunk of its own), so freeing and reallocating many blocks of one size is O(1)
/// per call — but waiting blocks never make the heap commit more: before the back end
/// commits, it gives them back (they coalesce) and looks again. A fixed heap still runs out
/// exactly where its maximum says.
#[test]
fn many_waiting_blocks_come_back_and_never_grow_the_commit() {
    let _order = shared();
    unsafe {
        for (flags, max) in [
            (HEAP_NO_SERIALIZE, 0),
            (HEAP_NO_SERIALIZE, 0x10_0000),
            (0, 0x10_0000),
        ] {
            let h = HeapCreate(flags, 0, max);
            // 5,000 blocks of 64 bytes, all freed: they wait (far more than one list holds).
            let mut live = Model::new();
            let ps: Vec<usize> = (0..5000).map(|_| HeapAlloc(h, 0, 64) as usize).collect();
            for (k, &p) in ps.iter().enumerate() {
                assert_ne!(p, 0);
                fill(p, 64, k as u8);
            }
            let committed = summary(h).cbCommitted;
            for &p in ps.iter().rev() {
                assert_eq!(HeapFree(h, 0, p as *const c_void), TRUE);
                // A waiting block is refused as freed.
                assert_eq!(HeapSize(h, 0, p as *const c_void), usize::MAX);
            }
            assert_eq!(
                HeapFree(h, 0, ps[17] as *const c_void),
                FALSE,
                "double free"
            );
            // Reallocated LIFO: the same blocks, none lost or handed out twice.
            let qs: Vec<usize> = (0..5000).map(|_| HeapAlloc(h, 0, 64) as usize).collect();
            let mut a = ps.clone();
            let mut b = qs.clone();
            a.sort();
            b.sort();
            assert_eq!(a, b);
            for &q in &qs {
                HeapFree(h, 0, q as *const c_void);
            }
            // Blocks of another size: served from the coalesced waiting blocks, not new commit.
            for k in 0..3000usize {
                let p = HeapAlloc(h, 0, 80 + k % 3 * 16) as usize;
                assert_ne!(p, 0);
                fill(p, 80, k as u8);
                live.insert(p, (80, k as u8));
            }
            let s = summary(h);
            assert!(
                s.cbCommitted <= committed + 0x10000,
                "{:#x} committed, {committed:#x} before",
                s.cbCommitted
            );
            assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE);
            assert_eq!(walk_busy(h).len(), live.len());
            for (&p, &(n, sd)) in live.iter() {
                check(p, n, sd);
                HeapFree(h, 0, p as *const c_void);
            }
            if max != 0 {
                // Everything freed (and waiting again): a block of most of the fixed heap
                // fits only if the waiting blocks coalesce.
                let big = HeapAlloc(h, 0, max - 0x10000);
                assert!(!big.is_null(), "look-asides drained for a large block");
                assert!(HeapAlloc(h, 0, 0x10000).is_null(), "the fixed heap is full");
                assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            }
            assert_eq!(HeapDestroy(h), TRUE);
        }
    }
}

/// Front-end slots freed in bulk travel between thread caches and their class in whole
/// batches (`lfh.rs`): another thread's allocations get them back, each once, and HeapCompact
/// returns them to their pages first, so emptied pages are still given back.
#[test]
fn bulk_frees_come_back_through_batches_and_compact_empties_pages() {
    let _order = shared();
    unsafe {
        let h = HeapCreate(0, 0, 0) as usize;
        let base = summary(h as HANDLE).cbCommitted;
        let ps: Vec<usize> = (0..6000)
            .map(|k| HeapAlloc(h as HANDLE, 0, 40 + k % 2 * 16) as usize)
            .collect();
        for (k, &p) in ps.iter().enumerate() {
            assert_ne!(p, 0);
            fill(p, 40, k as u8);
        }
        // Freed on another thread: its cache overflows into the classes' batches.
        let theirs = ps.clone();
        std::thread::spawn(move || {
            for &p in &theirs {
                assert_eq!(HeapFree(h as HANDLE, 0, p as *const c_void), TRUE);
            }
        })
        .join()
        .unwrap();
        assert_eq!(
            HeapFree(h as HANDLE, 0, ps[100] as *const c_void),
            FALSE,
            "double free"
        );
        // Allocated again here: every block once, all of them the freed ones.
        let mut qs: Vec<usize> = (0..6000)
            .map(|k| HeapAlloc(h as HANDLE, 0, 40 + k % 2 * 16) as usize)
            .collect();
        for (k, &q) in qs.iter().enumerate() {
            fill(q, 40, !(k as u8));
        }
        for (k, &q) in qs.iter().enumerate() {
            check(q, 40, !(k as u8));
        }
        assert_eq!(walk_busy(h as HANDLE).len(), 6000);
        assert_eq!(HeapValidate(h as HANDLE, 0, std::ptr::null()), TRUE);
        qs.sort();
        qs.dedup();
        assert!(qs.len() == 6000, "every block handed out once");
        // All freed on this thread (batches again), then compacted: the pages go back.
        for &q in &qs {
            assert_eq!(HeapFree(h as HANDLE, 0, q as *const c_void), TRUE);
        }
        let before = summary(h as HANDLE).cbCommitted;
        HeapCompact(h as HANDLE, 0);
        let after = summary(h as HANDLE).cbCommitted;
        assert!(
            after <= base + 0x10000 && after < before,
            "{after:#x} committed after HeapCompact, {before:#x} before, {base:#x} at creation"
        );
        assert_eq!(HeapDestroy(h as HANDLE), TRUE);
    }
}
