//! Concurrency stress on the process's native space through the Win32 face: 8 threads run a
//! fixed number of mixed operations each, on allocations of their own (where every result is
//! predictable and checked exactly, data included) and on allocations shared by all threads
//! (commit / protect / decommit / reset / query, plus calls that must fail). Afterwards: every
//! base a successful VirtualAlloc returned was released exactly once, none was handed out
//! twice while live, the space lists none of them, and the kernel maps none of their ranges.
//! A watchdog aborts the process if the threads do not finish (deadlock).

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::ptr::null;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use virtmem::win32::*;

const P: usize = 0x1000;
const THREADS: usize = 8;
const OPS: usize = 2000;
const SHARED: usize = 4;
const SHARED_PAGES: usize = 64;

/// Every live allocation the test made: base → size. A base returned while it is still here
/// was handed out twice.
static LIVE: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn prot(&mut self) -> u32 {
        [
            PAGE_READWRITE,
            PAGE_READONLY,
            PAGE_NOACCESS,
            PAGE_EXECUTE_READ,
        ][self.below(4)]
    }
    /// A sub-range `[start, end)` of `0..pages`, at most 8 pages long.
    fn range(&mut self, pages: usize) -> (usize, usize) {
        let s = self.below(pages);
        let e = s + 1 + self.below((pages - s).min(8));
        (s, e)
    }
}

fn last_error() -> u32 {
    GetLastError()
}

fn mbi(addr: usize) -> MEMORY_BASIC_INFORMATION {
    // SAFETY: all-zero bits are a valid MEMORY_BASIC_INFORMATION (pointers and integers).
    let mut m: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer and length.
    let n = unsafe {
        VirtualQuery(
            addr as *const c_void,
            &mut m,
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    assert_eq!(
        n,
        std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        "VirtualQuery({addr:#x}) failed with {}",
        last_error()
    );
    m
}

fn register(base: usize, size: usize) {
    let mut live = LIVE.lock().unwrap();
    if let Some((&b, &s)) = live.range(..base + size).next_back() {
        assert!(
            b + s <= base,
            "VirtualAlloc returned {base:#x}+{size:#x}, overlapping the live allocation {b:#x}+{s:#x}"
        );
    }
    live.insert(base, size);
}

fn unregister(base: usize) -> usize {
    LIVE.lock()
        .unwrap()
        .remove(&base)
        .unwrap_or_else(|| panic!("releasing {base:#x}, which is not live"))
}

/// Reserves (and maybe commits) through VirtualAlloc(NULL, ...); records the base.
fn alloc(size: usize, ty: u32, prot: u32, events: &mut Vec<(usize, usize, i32)>) -> usize {
    // SAFETY: a NULL-address reservation touches no existing memory.
    let p = unsafe { VirtualAlloc(null(), size, ty, prot) } as usize;
    assert_ne!(
        p,
        0,
        "VirtualAlloc(NULL, {size:#x}) failed with {}",
        last_error()
    );
    let size = (size + P - 1) & !(P - 1);
    register(p, size);
    events.push((p, size, 1));
    p
}

/// Releases an allocation the caller owns (taken off the live list first, so another thread
/// may legitimately receive the same base right after the kernel frees it).
fn release(base: usize, events: &mut Vec<(usize, usize, i32)>) {
    let size = unregister(base);
    // SAFETY: the caller owns the allocation and nobody touches it any more.
    let ok = unsafe { VirtualFree(base as *mut c_void, 0, MEM_RELEASE) };
    assert_eq!(
        ok,
        TRUE,
        "VirtualFree({base:#x}, RELEASE) failed with {}",
        last_error()
    );
    events.push((base, size, -1));
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct PageModel {
    committed: bool,
    prot: u32,
    /// The value at offsets 0 and P-8 (0 = zero page).
    data: u64,
    locked: bool,
}

struct Own {
    base: usize,
    pages: Vec<PageModel>,
}

const FRESH: PageModel = PageModel {
    committed: false,
    prot: 0,
    data: 0,
    locked: false,
};

fn readable(p: u32) -> bool {
    matches!(p, PAGE_READWRITE | PAGE_READONLY | PAGE_EXECUTE_READ)
}

fn worker(t: usize, shared: Arc<Vec<usize>>, start: Arc<Barrier>) -> Vec<(usize, usize, i32)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678_9ABC_DEF1));
    // Allocate before the start (the thread's malloc arena is mapped now, not over a range
    // another thread frees later).
    let mut events = Vec::with_capacity(2 * OPS);
    start.wait();
    let mut own: Vec<Own> = Vec::new();
    let mut stamp = (t as u64) << 48;
    for i in 0..OPS {
        let op = rng.below(16);
        let ctx = |what: &str| format!("thread {t}, op {i}: {what}");
        match op {
            // --- own allocations ---
            0 if own.len() < 6 => {
                let pages = 1 + rng.below(32);
                let commit = rng.below(2) == 0;
                let ty = if commit {
                    MEM_RESERVE | MEM_COMMIT
                } else {
                    MEM_RESERVE
                };
                let base = alloc(pages * P - rng.below(P), ty, PAGE_READWRITE, &mut events);
                let st = if commit {
                    PageModel {
                        committed: true,
                        prot: PAGE_READWRITE,
                        ..FRESH
                    }
                } else {
                    FRESH
                };
                own.push(Own {
                    base,
                    pages: vec![st; pages],
                });
            }
            0 | 1 if !own.is_empty() => {
                let j = rng.below(own.len());
                let o = &mut own[j];
                let (s, e) = rng.range(o.pages.len());
                let prot = rng.prot();
                let addr = o.base + s * P + rng.below(P);
                let len = o.base + e * P - addr;
                // SAFETY: our own allocation.
                let p = unsafe { VirtualAlloc(addr as *const c_void, len, MEM_COMMIT, prot) };
                assert_eq!(
                    p as usize,
                    o.base + s * P,
                    "{} ({})",
                    ctx("commit own"),
                    last_error()
                );
                for pg in &mut o.pages[s..e] {
                    if !pg.committed {
                        *pg = FRESH;
                    }
                    pg.committed = true;
                    pg.prot = prot;
                }
            }
            2 if !own.is_empty() => {
                let j = rng.below(own.len());
                let o = &mut own[j];
                let (s, e) = rng.range(o.pages.len());
                let prot = rng.prot();
                let mut old = 0xDEAD;
                // SAFETY: our own allocation; `old` is a valid out-pointer.
                let ok = unsafe {
                    VirtualProtect(
                        (o.base + s * P) as *const c_void,
                        (e - s) * P,
                        prot,
                        &mut old,
                    )
                };
                if o.pages[s..e].iter().all(|p| p.committed) {
                    assert_eq!(ok, TRUE, "{} ({})", ctx("protect own"), last_error());
                    assert_eq!(
                        old,
                        o.pages[s].prot,
                        "{}",
                        ctx("protect own: old protection")
                    );
                    for pg in &mut o.pages[s..e] {
                        pg.prot = prot;
                    }
                } else {
                    assert_eq!(ok, FALSE, "{}", ctx("protect own with reserved pages"));
                    assert_eq!(
                        last_error(),
                        487,
                        "{}",
                        ctx("protect own with reserved pages")
                    );
                }
            }
            3 if !own.is_empty() => {
                let j = rng.below(own.len());
                let o = &mut own[j];
                let (s, e) = rng.range(o.pages.len());
                // SAFETY: our own allocation.
                let ok = unsafe {
                    VirtualFree((o.base + s * P) as *mut c_void, (e - s) * P, MEM_DECOMMIT)
                };
                assert_eq!(ok, TRUE, "{} ({})", ctx("decommit own"), last_error());
                for pg in &mut o.pages[s..e] {
                    *pg = FRESH;
                }
            }
            4 | 5 if !own.is_empty() => {
                let j = rng.below(own.len());
                let o = &mut own[j];
                let k = rng.below(o.pages.len());
                let pg = o.pages[k];
                let addr = o.base + k * P;
                if op == 4 && pg.committed && pg.prot == PAGE_READWRITE {
                    stamp += 1;
                    // SAFETY: committed read-write, and only this thread uses it.
                    unsafe {
                        (addr as *mut u64).write_volatile(stamp);
                        ((addr + P - 8) as *mut u64).write_volatile(!stamp);
                    }
                    o.pages[k].data = stamp;
                } else if pg.committed && readable(pg.prot) {
                    // SAFETY: committed and readable, and only this thread changes it.
                    let (a, b) = unsafe {
                        (
                            (addr as *const u64).read_volatile(),
                            ((addr + P - 8) as *const u64).read_volatile(),
                        )
                    };
                    let want = if pg.data == 0 {
                        (0, 0)
                    } else {
                        (pg.data, !pg.data)
                    };
                    assert_eq!(
                        (a, b),
                        want,
                        "{}",
                        ctx(&format!("data of own page {addr:#x}"))
                    );
                }
            }
            6 if !own.is_empty() => {
                let o = &own[rng.below(own.len())];
                let k = rng.below(o.pages.len());
                let m = mbi(o.base + k * P + rng.below(P));
                let pg = o.pages[k];
                assert_eq!(m.AllocationBase as usize, o.base, "{}", ctx("query own"));
                assert_eq!(
                    m.BaseAddress as usize,
                    o.base + k * P,
                    "{}",
                    ctx("query own")
                );
                assert_eq!(m.AllocationProtect, PAGE_READWRITE, "{}", ctx("query own"));
                assert_eq!(m.Type, MEM_PRIVATE, "{}", ctx("query own"));
                let (state, prot) = if pg.committed {
                    (MEM_COMMIT, pg.prot)
                } else {
                    (MEM_RESERVE, 0)
                };
                assert_eq!((m.State, m.Protect), (state, prot), "{}", ctx("query own"));
                let run = o.pages[k..]
                    .iter()
                    .take_while(|p| {
                        p.committed == pg.committed && (!pg.committed || p.prot == pg.prot)
                    })
                    .count();
                assert_eq!(m.RegionSize, run * P, "{}", ctx("query own: RegionSize"));
            }
            7 if !own.is_empty() => {
                let locked: usize = own
                    .iter()
                    .map(|o| o.pages.iter().filter(|p| p.locked).count())
                    .sum();
                let j = rng.below(own.len());
                let o = &mut own[j];
                let (s, e) = rng.range(o.pages.len());
                let e = e.min(s + 2);
                let addr = (o.base + s * P) as *const c_void;
                if rng.below(2) == 0 && locked < 16 {
                    // SAFETY: our own allocation.
                    let ok = unsafe { VirtualLock(addr, (e - s) * P) };
                    if o.pages[s..e]
                        .iter()
                        .all(|p| p.committed && p.prot != PAGE_NOACCESS)
                    {
                        assert_eq!(ok, TRUE, "{} ({})", ctx("lock own"), last_error());
                        o.pages[s..e].iter_mut().for_each(|p| p.locked = true);
                    } else {
                        assert_eq!((ok, last_error()), (FALSE, 998), "{}", ctx("lock own"));
                    }
                } else {
                    // SAFETY: our own allocation.
                    let ok = unsafe { VirtualUnlock(addr, (e - s) * P) };
                    if o.pages[s..e].iter().all(|p| p.locked) {
                        assert_eq!(ok, TRUE, "{} ({})", ctx("unlock own"), last_error());
                        o.pages[s..e].iter_mut().for_each(|p| p.locked = false);
                    } else {
                        assert_eq!((ok, last_error()), (FALSE, 158), "{}", ctx("unlock own"));
                    }
                }
            }
            8 if !own.is_empty() => {
                let o = own.swap_remove(rng.below(own.len()));
                release(o.base, &mut events);
            }
            // --- shared allocations ---
            9 => {
                let b = shared[rng.below(SHARED)];
                let (s, e) = rng.range(SHARED_PAGES);
                // SAFETY: inside a shared allocation; nobody reads or writes its pages.
                let p = unsafe {
                    VirtualAlloc(
                        (b + s * P) as *const c_void,
                        (e - s) * P,
                        MEM_COMMIT,
                        rng.prot(),
                    )
                };
                assert_eq!(
                    p as usize,
                    b + s * P,
                    "{} ({})",
                    ctx("commit shared"),
                    last_error()
                );
            }
            10 => {
                let b = shared[rng.below(SHARED)];
                let (s, e) = rng.range(SHARED_PAGES);
                let mut old = 0;
                // SAFETY: as above.
                let ok = unsafe {
                    VirtualProtect(
                        (b + s * P) as *const c_void,
                        (e - s) * P,
                        rng.prot(),
                        &mut old,
                    )
                };
                if ok == FALSE {
                    assert_eq!(last_error(), 487, "{}", ctx("protect shared"));
                } else {
                    assert!(
                        readable(old) || old == PAGE_NOACCESS,
                        "{}: old {old:#x}",
                        ctx("protect shared")
                    );
                }
            }
            11 => {
                let b = shared[rng.below(SHARED)];
                let (s, e) = rng.range(SHARED_PAGES);
                // SAFETY: as above.
                let ok =
                    unsafe { VirtualFree((b + s * P) as *mut c_void, (e - s) * P, MEM_DECOMMIT) };
                assert_eq!(ok, TRUE, "{} ({})", ctx("decommit shared"), last_error());
            }
            12 => {
                let b = shared[rng.below(SHARED)];
                let k = rng.below(SHARED_PAGES);
                let m = mbi(b + k * P);
                assert_eq!(m.AllocationBase as usize, b, "{}", ctx("query shared"));
                assert_eq!(m.BaseAddress as usize, b + k * P, "{}", ctx("query shared"));
                assert_eq!(m.Type, MEM_PRIVATE, "{}", ctx("query shared"));
                assert!(
                    m.RegionSize >= P && b + k * P + m.RegionSize <= b + SHARED_PAGES * P,
                    "{}: RegionSize {:#x}",
                    ctx("query shared"),
                    m.RegionSize
                );
                match m.State {
                    MEM_RESERVE => assert_eq!(m.Protect, 0, "{}", ctx("query shared")),
                    MEM_COMMIT => assert!(
                        readable(m.Protect) || m.Protect == PAGE_NOACCESS,
                        "{}: Protect {:#x}",
                        ctx("query shared"),
                        m.Protect
                    ),
                    s => panic!("{}: state {s:#x}", ctx("query shared")),
                }
            }
            13 => {
                let b = shared[rng.below(SHARED)];
                let (s, e) = rng.range(SHARED_PAGES);
                // SAFETY: as above.
                let p = unsafe {
                    VirtualAlloc(
                        (b + s * P) as *const c_void,
                        (e - s) * P,
                        MEM_RESET,
                        PAGE_READWRITE,
                    )
                };
                assert_ne!(p as usize, 0, "{} ({})", ctx("reset shared"), last_error());
            }
            14 => {
                // Calls that must fail: releasing at a non-base, reserving over a live range.
                let b = shared[rng.below(SHARED)];
                // SAFETY: must fail without touching anything.
                let ok = unsafe { VirtualFree((b + P) as *mut c_void, 0, MEM_RELEASE) };
                assert_eq!(
                    (ok, last_error()),
                    (FALSE, 487),
                    "{}",
                    ctx("release shared at base+P")
                );
                // SAFETY: must fail without touching anything.
                let p = unsafe { VirtualAlloc(b as *const c_void, P, MEM_RESERVE, PAGE_READWRITE) };
                assert_eq!(
                    (p as usize, last_error()),
                    (0, 487),
                    "{}",
                    ctx("reserve over shared")
                );
            }
            _ => {
                // Query a random own or shared page's neighbourhood through the region walk.
                let b = shared[rng.below(SHARED)];
                let m = mbi(b + SHARED_PAGES * P - 1);
                assert_eq!(
                    m.AllocationBase as usize,
                    b,
                    "{}",
                    ctx("query last shared page")
                );
            }
        }
    }
    for o in own.drain(..) {
        release(o.base, &mut events);
    }
    events
}

fn maps() -> Vec<(usize, usize, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .filter_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (s, e) = range.split_once('-')?;
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
                rest.to_string(),
            ))
        })
        .collect()
}

#[test]
fn eight_threads_mixed_operations() {
    let done = Arc::new(AtomicBool::new(false));
    // The watchdog. Wait until it runs: a starting thread maps its signal stack, which must
    // not land on a range the workers free (the final maps check would see it).
    let started = Arc::new(Barrier::new(2));
    {
        let done = done.clone();
        let started = started.clone();
        std::thread::spawn(move || {
            started.wait();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(300) {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("stress: not finished after 300 s: deadlock suspected");
            std::process::abort();
        });
    }
    started.wait();
    // Keep malloc off fresh mmaps (it would put large blocks wherever the kernel likes,
    // including ranges the threads freed, and the final maps check would see them).
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
    let t0 = Instant::now();
    let mut main_events = Vec::new();
    let shared: Arc<Vec<usize>> = Arc::new(
        (0..SHARED)
            .map(|_| {
                alloc(
                    SHARED_PAGES * P,
                    MEM_RESERVE,
                    PAGE_READWRITE,
                    &mut main_events,
                )
            })
            .collect(),
    );
    // Every thread exists (stack mapped) before any allocation is released, so no stack can
    // land on a freed range.
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let shared = shared.clone();
            let start = start.clone();
            std::thread::Builder::new()
                .name(format!("stress-{t}"))
                .spawn(move || worker(t, shared, start))
                .unwrap()
        })
        .collect();
    let mut results = Vec::with_capacity(THREADS);
    for h in handles {
        results.push(h.join());
    }
    for &b in shared.iter() {
        release(b, &mut main_events);
    }
    // The kernel's view right away, before this thread allocates anything large.
    let kernel = maps();
    done.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed();
    let mut events = main_events;
    for (t, r) in results.into_iter().enumerate() {
        match r {
            Ok(e) => events.extend(e),
            Err(e) => std::panic::resume_unwind(Box::new(format!(
                "thread {t} failed: {}",
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ))),
        }
    }

    // Every base returned was released exactly once per time it was returned.
    let mut balance: HashMap<usize, i32> = HashMap::new();
    let mut ranges: BTreeMap<usize, usize> = BTreeMap::new();
    let mut allocs = 0;
    for &(b, s, d) in &events {
        *balance.entry(b).or_default() += d;
        if d > 0 {
            allocs += 1;
            let r = ranges.entry(b).or_default();
            *r = (*r).max(s);
        }
    }
    let unbalanced: Vec<_> = balance.iter().filter(|(_, &v)| v != 0).collect();
    assert!(
        unbalanced.is_empty(),
        "bases not released exactly once: {unbalanced:x?}"
    );
    assert!(LIVE.lock().unwrap().is_empty());

    // The space has none of them left.
    let left: Vec<_> = virtmem::allocations()
        .into_iter()
        .filter(|(b, s, _)| ranges.iter().any(|(&rb, &rs)| *b < rb + rs && rb < b + s))
        .collect();
    assert!(
        left.is_empty(),
        "allocations still listed after release: {left:x?}"
    );

    // The kernel maps none of the freed ranges.
    let mut problems = Vec::new();
    for (&b, &s) in &ranges {
        for (ms, me, rest) in kernel.iter().filter(|(ms, me, _)| *ms < b + s && b < *me) {
            let based_here: Vec<_> = events
                .iter()
                .filter(|(eb, _, _)| eb >= ms && eb < me)
                .map(|&(eb, es, d)| (eb, es, d))
                .collect();
            problems.push(format!(
                "freed range {b:#x}+{s:#x} is mapped: {ms:#x}-{me:#x} {rest}; \
                 test allocations based in that mapping: {based_here:x?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "stress: {THREADS} threads x {OPS} ops, {allocs} allocations ({} distinct bases), {:?}",
        ranges.len(),
        elapsed
    );
}
