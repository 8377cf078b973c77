//! virtmem's Win32 face against the raw Linux syscalls, measured in the same run.
//!
//! Every criterion group holds one pair (`virtmem` and `raw`, or for `threads2` the 1- and
//! 2-thread variants of each), so the report shows both side by side and
//! `scripts/bench-ratios.sh` can print the virtmem/raw ratios from
//! `target/criterion/<group>/<fn>/new/estimates.json`.
//!
//! | group | virtmem | raw | goal |
//! |---|---|---|---|
//! | `alloc64k` | VirtualAlloc 64 KiB RW + touch + VirtualFree | aligned mmap + touch + munmap | ≤ 1.15× |
//! | `query10k` | VirtualQuery, 10,000 live allocations | binary search of a sorted table | ≤ 4× |
//! | `protect_toggle` | VirtualProtect one page RW→R→RW | mprotect RW→R→RW | ≤ 1.10× |
//! | `reserve1t` | VirtualAlloc 1 TiB MEM_RESERVE + VirtualFree | mmap PROT_NONE 1 TiB + munmap | ≤ 2× |
//! | `threads2` | alloc64k cycles on 1 and 2 threads | the same, raw | scaling ratio ≥ 0.9 |
//!
//! The raw 64 KiB mappings are 64 KiB-aligned the way `linux.md` §2.1 measured and virtmem's
//! backend does it: a `MAP_FIXED_NOREPLACE` hint just below the previous mapping, and
//! over-reserve-and-trim on a miss. Like virtmem's, the raw hint is one per process.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::ffi::c_void;
use std::hint::black_box;
use std::ptr::{self, null};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use virtmem::win32::{
    VirtualAlloc, VirtualFree, VirtualProtect, VirtualQuery, MEMORY_BASIC_INFORMATION, MEM_COMMIT,
    MEM_RELEASE, MEM_RESERVE, PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE, TRUE,
};

/// The allocation granularity, and the size of the small allocations.
const K64: usize = 64 << 10;
/// Touch stride: one byte per 4 KiB.
const TOUCH: usize = 4 << 10;
/// One page (the host page size is 4 KiB on the machines these figures are for).
const PAGE: usize = 4 << 10;
/// The big reservation.
const TIB: usize = 1 << 40;
/// Live allocations for `query10k`.
const LIVE: usize = 10_000;
/// Lowest address a hint may use (Windows' and Linux' effective minimum).
const MIN_ADDR: usize = 0x10000;

// ---------------------------------------------------------------------------------------------
// The raw side
// ---------------------------------------------------------------------------------------------

/// Raw 64 KiB-aligned anonymous mappings: hint below the previous mapping with
/// `MAP_FIXED_NOREPLACE`, over-reserve-and-trim on a miss (`linux.md` §2.1).
struct RawMapper {
    /// Base of the previous mapping.
    hint: AtomicUsize,
    /// Mappings made, and how many of them missed the hint.
    maps: AtomicU64,
    misses: AtomicU64,
}

/// One per process, as virtmem's backend has one hint per process.
static RAW: RawMapper = RawMapper {
    hint: AtomicUsize::new(0),
    maps: AtomicU64::new(0),
    misses: AtomicU64::new(0),
};

fn mmap_anon(addr: usize, len: usize, prot: i32, extra: i32) -> Option<usize> {
    // SAFETY: an anonymous private mapping, never MAP_FIXED: no existing memory is replaced.
    let p = unsafe {
        libc::mmap(
            addr as *mut c_void,
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

fn munmap(addr: usize, len: usize) {
    // SAFETY: only mappings this file created, which nothing else references.
    let r = unsafe { libc::munmap(addr as *mut c_void, len) };
    assert_eq!(r, 0, "munmap");
}

impl RawMapper {
    /// An `align`-aligned anonymous mapping of `len` bytes with protection `prot`.
    fn map(&self, len: usize, prot: i32, align: usize) -> usize {
        self.maps.fetch_add(1, Ordering::Relaxed);
        let h = self.hint.load(Ordering::Relaxed);
        if h > len {
            let cand = (h - len) & !(align - 1);
            if cand >= MIN_ADDR {
                if let Some(p) = mmap_anon(cand, len, prot, libc::MAP_FIXED_NOREPLACE) {
                    if p == cand {
                        self.hint.store(p, Ordering::Relaxed);
                        return p;
                    }
                    // A kernel before 4.17 takes MAP_FIXED_NOREPLACE as a hint.
                    munmap(p, len);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let over = len + align - PAGE;
        let raw = mmap_anon(0, over, prot, 0).expect("mmap (over-reserve)");
        let base = (raw + align - 1) & !(align - 1);
        if base > raw {
            munmap(raw, base - raw);
        }
        if raw + over > base + len {
            munmap(base + len, raw + over - (base + len));
        }
        self.hint.store(base, Ordering::Relaxed);
        base
    }
}

fn mprotect(addr: usize, len: usize, prot: i32) {
    // SAFETY: changes the protection of a page this file mapped and nothing else uses.
    let r = unsafe { libc::mprotect(addr as *mut c_void, len, prot) };
    assert_eq!(r, 0, "mprotect");
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// Writes one byte per 4 KiB of `[p, p+len)`.
///
/// # Safety
/// The range must be mapped writable.
unsafe fn touch(p: *mut u8, len: usize) {
    for off in (0..len).step_by(TOUCH) {
        // SAFETY: inside the writable range (caller's contract).
        unsafe { ptr::write_volatile(p.add(off), 1) };
    }
}

/// One virtmem alloc64k cycle: reserve+commit 64 KiB RW, touch every page, release.
fn virtmem_cycle() {
    // SAFETY: plain Win32 calls; the memory is used only between VirtualAlloc and VirtualFree.
    unsafe {
        let p = VirtualAlloc(null(), K64, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as *mut u8;
        assert!(!p.is_null(), "VirtualAlloc");
        touch(p, K64);
        assert_eq!(VirtualFree(p.cast(), 0, MEM_RELEASE), TRUE, "VirtualFree");
    }
}

/// One raw alloc64k cycle: 64 KiB-aligned mmap RW, touch every page, munmap.
fn raw_cycle() {
    let p = RAW.map(K64, libc::PROT_READ | libc::PROT_WRITE, K64);
    // SAFETY: just mapped read-write, 64 KiB long.
    unsafe { touch(p as *mut u8, K64) };
    munmap(p, K64);
}

/// A small deterministic PRNG (xorshift64*), so both sides of a pair see the same addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// 1. alloc64k
// ---------------------------------------------------------------------------------------------

fn alloc64k(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc64k");
    g.bench_function("virtmem", |b| b.iter(virtmem_cycle));
    g.bench_function("raw", |b| b.iter(raw_cycle));
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. query10k
// ---------------------------------------------------------------------------------------------

/// The bare lookup virtmem's query is measured against: the entry containing `addr`.
fn table_lookup(table: &[(usize, usize)], addr: usize) -> Option<(usize, usize)> {
    let i = table.partition_point(|&(base, _)| base <= addr);
    let &(base, size) = table.get(i.checked_sub(1)?)?;
    (addr < base + size).then_some((base, size))
}

fn query10k(c: &mut Criterion) {
    // 10,000 live 64 KiB reservations, and the same bases in a sorted table.
    let mut table: Vec<(usize, usize)> = (0..LIVE)
        .map(|_| {
            // SAFETY: a plain reservation, released at the end of this function.
            let p = unsafe { VirtualAlloc(null(), K64, MEM_RESERVE, PAGE_NOACCESS) };
            assert!(!p.is_null(), "VirtualAlloc (reserve)");
            (p as usize, K64)
        })
        .collect();
    table.sort_unstable();

    // Random interior addresses of random live allocations (a power-of-two count to cycle).
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let addrs: Vec<usize> = (0..4096)
        .map(|_| {
            let (base, size) = table[rng.below(LIVE)];
            base + rng.below(size)
        })
        .collect();
    let mask = addrs.len() - 1;

    // Both sides must find the same allocation.
    for &a in &addrs {
        let mut mbi = std::mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
        let n = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
        // SAFETY: a writable buffer of the right size.
        assert_eq!(
            unsafe { VirtualQuery(a as *const c_void, mbi.as_mut_ptr(), n) },
            n
        );
        // SAFETY: VirtualQuery filled it.
        let mbi = unsafe { mbi.assume_init() };
        assert_eq!(
            Some(mbi.AllocationBase as usize),
            table_lookup(&table, a).map(|e| e.0)
        );
        assert_eq!(mbi.State, MEM_RESERVE);
    }

    let mut g = c.benchmark_group("query10k");
    g.bench_function("virtmem", |b| {
        // SAFETY: MEMORY_BASIC_INFORMATION is plain data; all zeroes is a valid value.
        let mut mbi: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        let n = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
        let mut i = 0usize;
        b.iter(|| {
            let a = addrs[i & mask];
            i = i.wrapping_add(1);
            // SAFETY: a writable buffer of the right size.
            let r = unsafe { VirtualQuery(black_box(a) as *const c_void, &mut mbi, n) };
            black_box((r, mbi.AllocationBase, mbi.RegionSize));
        })
    });
    g.bench_function("raw", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let a = addrs[i & mask];
            i = i.wrapping_add(1);
            black_box(table_lookup(black_box(&table), black_box(a)))
        })
    });
    g.finish();

    for &(base, _) in &table {
        // SAFETY: releases a reservation made above.
        assert_eq!(
            unsafe { VirtualFree(base as *mut c_void, 0, MEM_RELEASE) },
            TRUE
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. protect_toggle
// ---------------------------------------------------------------------------------------------

fn protect_toggle(c: &mut Criterion) {
    // A page in the middle of a committed, populated 64 KiB allocation, on both sides. The
    // middle, so that both sides split their mapping into the same three VMAs whatever their
    // neighbours are: the first page of a 64 KiB mapping that the kernel merged with an
    // adjacent one (virtmem's and the raw mapping often end up side by side) would split
    // three ways on one side and two ways on the other.
    // SAFETY: a plain allocation, touched while RW and released at the end.
    let v = unsafe { VirtualAlloc(null(), K64, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) };
    assert!(!v.is_null(), "VirtualAlloc");
    // SAFETY: committed read-write.
    unsafe { touch(v as *mut u8, K64) };
    let r = RAW.map(K64, libc::PROT_READ | libc::PROT_WRITE, K64);
    // SAFETY: mapped read-write.
    unsafe { touch(r as *mut u8, K64) };
    let (vp, rp) = (v as usize + K64 / 2, r + K64 / 2);

    let mut g = c.benchmark_group("protect_toggle");
    g.bench_function("virtmem", |b| {
        let mut old = 0u32;
        b.iter(|| {
            let p = black_box(vp) as *const c_void;
            // SAFETY: the page is committed; `old` is writable.
            unsafe {
                assert_eq!(VirtualProtect(p, PAGE, PAGE_READONLY, &mut old), TRUE);
                assert_eq!(VirtualProtect(p, PAGE, PAGE_READWRITE, &mut old), TRUE);
            }
            black_box(old)
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            mprotect(black_box(rp), PAGE, libc::PROT_READ);
            mprotect(black_box(rp), PAGE, libc::PROT_READ | libc::PROT_WRITE);
        })
    });
    g.finish();

    // SAFETY: releases the allocation made above.
    assert_eq!(unsafe { VirtualFree(v, 0, MEM_RELEASE) }, TRUE);
    munmap(r, K64);
}

// ---------------------------------------------------------------------------------------------
// 4. reserve1t
// ---------------------------------------------------------------------------------------------

fn reserve1t(c: &mut Criterion) {
    let mut g = c.benchmark_group("reserve1t");
    g.bench_function("virtmem", |b| {
        b.iter(|| {
            // SAFETY: a reservation, released at once.
            unsafe {
                let p = VirtualAlloc(null(), TIB, MEM_RESERVE, PAGE_NOACCESS);
                assert!(!p.is_null(), "VirtualAlloc 1 TiB");
                assert_eq!(VirtualFree(black_box(p), 0, MEM_RELEASE), TRUE);
            }
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            let p = mmap_anon(0, TIB, libc::PROT_NONE, 0).expect("mmap 1 TiB");
            munmap(black_box(p), TIB);
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 5. threads2
// ---------------------------------------------------------------------------------------------

/// Runs `cycle` `iters` times on each of `threads` threads at once (each on its own
/// allocations) and returns the wall time from the first thread's start to the last one's end.
fn run_threads(threads: usize, iters: u64, cycle: fn()) -> Duration {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    cycle();
                }
                (start, Instant::now())
            })
        })
        .collect();
    let spans: Vec<(Instant, Instant)> = handles
        .into_iter()
        .map(|h| h.join().expect("benchmark thread"))
        .collect();
    let start = spans.iter().map(|s| s.0).min().expect("a thread");
    let end = spans.iter().map(|s| s.1).max().expect("a thread");
    end - start
}

fn threads2(c: &mut Criterion) {
    // One criterion iteration = one cycle on *each* thread; the throughput annotation makes
    // the report show cycles per second. scaling = 2 × t(1 thread) / t(2 threads).
    let mut g = c.benchmark_group("threads2");
    for (name, cycle) in [
        ("virtmem", virtmem_cycle as fn()),
        ("raw", raw_cycle as fn()),
    ] {
        for threads in [1usize, 2] {
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_function(format!("{name}_{threads}t"), |b| {
                b.iter_custom(|iters| run_threads(threads, iters, cycle))
            });
        }
    }
    g.finish();
}

/// How often the raw side's alignment hint missed (each miss costs 2–3 extra syscalls).
fn raw_hint_report(_c: &mut Criterion) {
    let maps = RAW.maps.load(Ordering::Relaxed);
    let misses = RAW.misses.load(Ordering::Relaxed);
    if maps > 0 {
        eprintln!(
            "raw 64 KiB-aligned mappings: {maps}, hint misses: {misses} ({:.3} %)",
            misses as f64 * 100.0 / maps as f64
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    targets = alloc64k, query10k, protect_toggle, reserve1t, threads2, raw_hint_report
}
criterion_main!(benches);
