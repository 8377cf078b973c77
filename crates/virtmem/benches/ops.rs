//! virtmem's Win32 face against the raw Linux syscalls, measured in the same run.
//!
//! Every criterion group holds one pair (`virtmem` and `raw`, or for `threads2` the 1- and
//! 2-thread variants of each), so the report shows both side by side and
//! `scripts/bench-ratios.sh` can print the virtmem/raw ratios from
//! `target/criterion/<group>/<fn>/new/estimates.json`.
//!
//! | group | virtmem | raw | goal |
//! |---|---|---|---|
//! | `alloc64k` | VirtualAlloc 64 KiB RW + touch + VirtualFree | aligned mmap + touch + munmap | ≤ 1.10× |
//! | `query10k` | VirtualQuery, 10,000 live allocations | binary search of a sorted table | ≤ 2× |
//! | `query1m` | VirtualQuery, 1,000,000 live allocations, 2^16 random addresses | binary search of a sorted table of the 10^6 | ≤ 1.0× |
//! | `protect_toggle` | VirtualProtect one page RW→R→RW | mprotect RW→R→RW | ≤ 1.05× |
//! | `reserve1t` | VirtualAlloc 1 TiB MEM_RESERVE + VirtualFree | mmap PROT_NONE 1 TiB + munmap | ≤ 2× |
//! | `threads2` | alloc64k cycles on 1 and 2 threads | the same, raw | scaling ratio ≥ 0.9 |
//!
//! Except `threads2`, each group is followed by the interleaved cross-check of
//! `benches/common/mod.rs` (the two sides alternated ten times):
//! `interleaved <group> virtmem <ns> raw <ns> ratio <r>`.
//!
//! `query1m` also times its setup and teardown once, against their raw counterparts (10^6
//! 64 KiB-aligned `PROT_NONE` mappings placed as below, then `munmap` of each), and measures
//! virtmem's bookkeeping per reservation as the growth of the resident anonymous memory
//! (`RssAnon`) while the 10^6 reservations are made (goal ≤ 256 bytes):
//!
//! ```text
//! reserve1m virtmem <s> s raw <s> s ratio <r>
//! release1m virtmem <s> s raw <s> s ratio <r>
//! meta_per_alloc <bytes> B
//! ```
//!
//! The 10^6 reservations fit under `vm.max_map_count` only because the kernel merges adjacent
//! `PROT_NONE` mappings; where a reservation fails anyway the group prints
//! `query1m: skipped (...)` and is left out.
//!
//! The raw 64 KiB mappings are 64 KiB-aligned the way `linux.md` §2.1 measured and virtmem's
//! backend does it: a `MAP_FIXED_NOREPLACE` hint just below the previous mapping, and
//! over-reserve-and-trim on a miss. Like virtmem's, the raw hint is one per process.

mod common;

use common::{mmap_anon, mprotect, munmap, release, run_group, selected, timed, touch, K64, PAGE};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::ffi::c_void;
use std::hint::black_box;
use std::ptr::null;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use virtmem::win32::{
    GetLastError, VirtualAlloc, VirtualFree, VirtualProtect, VirtualQuery,
    MEMORY_BASIC_INFORMATION, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_NOACCESS, PAGE_READONLY,
    PAGE_READWRITE, TRUE,
};

/// The big reservation.
const TIB: usize = 1 << 40;
/// Live allocations for `query10k`.
const LIVE: usize = 10_000;
/// Live allocations for `query1m`.
const LIVE1M: usize = 1_000_000;
/// Random addresses `query1m` cycles through: far more than any cache keeps warm.
const ADDRS1M: usize = 1 << 16;
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

impl RawMapper {
    /// An `align`-aligned anonymous mapping of `len` bytes with protection `prot`.
    fn map(&self, len: usize, prot: i32, align: usize) -> usize {
        self.try_map(len, prot, align).expect("mmap (over-reserve)")
    }

    /// [`RawMapper::map`], or `None` if the kernel refuses the mapping.
    fn try_map(&self, len: usize, prot: i32, align: usize) -> Option<usize> {
        self.maps.fetch_add(1, Ordering::Relaxed);
        let h = self.hint.load(Ordering::Relaxed);
        if h > len {
            let cand = (h - len) & !(align - 1);
            if cand >= MIN_ADDR {
                if let Some(p) = mmap_anon(cand, len, prot, libc::MAP_FIXED_NOREPLACE) {
                    if p == cand {
                        self.hint.store(p, Ordering::Relaxed);
                        return Some(p);
                    }
                    // A kernel before 4.17 takes MAP_FIXED_NOREPLACE as a hint.
                    munmap(p, len);
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let over = len + align - PAGE;
        let raw = mmap_anon(0, over, prot, 0)?;
        let base = (raw + align - 1) & !(align - 1);
        if base > raw {
            munmap(raw, base - raw);
        }
        if raw + over > base + len {
            munmap(base + len, raw + over - (base + len));
        }
        self.hint.store(base, Ordering::Relaxed);
        Some(base)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

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
    if !selected("alloc64k") {
        return;
    }
    run_group(
        c,
        "alloc64k",
        2000,
        vec![
            ("virtmem", Box::new(|iters| timed(iters, virtmem_cycle))),
            ("raw", Box::new(|iters| timed(iters, raw_cycle))),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 2. query10k, query1m
// ---------------------------------------------------------------------------------------------

/// The bare lookup virtmem's query is measured against: the entry containing `addr`.
fn table_lookup(table: &[(usize, usize)], addr: usize) -> Option<(usize, usize)> {
    let i = table.partition_point(|&(base, _)| base <= addr);
    let &(base, size) = table.get(i.checked_sub(1)?)?;
    (addr < base + size).then_some((base, size))
}

/// `n` (a power of two, to cycle through with a mask) random interior addresses of random
/// entries of `table`, the same on every run.
fn random_addrs(table: &[(usize, usize)], n: usize) -> Vec<usize> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            let (base, size) = table[rng.below(table.len())];
            base + rng.below(size)
        })
        .collect()
}

/// The query pair over live MEM_RESERVE allocations: VirtualQuery (`virtmem`) against
/// [`table_lookup`] in `table` (`raw`), both at `addrs` in turn. Both sides must find the same
/// allocation at every address first.
fn query_group(c: &mut Criterion, group: &str, table: &[(usize, usize)], addrs: &[usize]) {
    assert!(addrs.len().is_power_of_two());
    for &a in addrs {
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
            table_lookup(table, a).map(|e| e.0)
        );
        assert_eq!(mbi.State, MEM_RESERVE);
    }

    let mask = addrs.len() - 1;
    let (mut iv, mut ir) = (0usize, 0usize);
    // SAFETY: MEMORY_BASIC_INFORMATION is plain data; all zeroes is a valid value.
    let mut mbi: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let n = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
    // At least 2^16 queries per cross-check round, several passes over a short address list.
    run_group(
        c,
        group,
        addrs.len().max(1 << 16) as u64,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    timed(iters, || {
                        let a = addrs[iv & mask];
                        iv = iv.wrapping_add(1);
                        // SAFETY: a writable buffer of the right size.
                        let r = unsafe { VirtualQuery(black_box(a) as *const c_void, &mut mbi, n) };
                        black_box((r, mbi.AllocationBase, mbi.RegionSize));
                    })
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    timed(iters, || {
                        let a = addrs[ir & mask];
                        ir = ir.wrapping_add(1);
                        black_box(table_lookup(black_box(table), black_box(a)));
                    })
                }),
            ),
        ],
    );
}

/// `count` live 64 KiB MEM_RESERVE allocations, or `None` (none left) if VirtualAlloc fails.
fn reserve_many(count: usize) -> Option<Vec<usize>> {
    let mut bases = Vec::with_capacity(count);
    for _ in 0..count {
        // SAFETY: a plain reservation, released by the caller.
        let p = unsafe { VirtualAlloc(null(), K64, MEM_RESERVE, PAGE_NOACCESS) };
        if p.is_null() {
            release_all(&bases);
            return None;
        }
        bases.push(p as usize);
    }
    Some(bases)
}

fn release_all(bases: &[usize]) {
    for &base in bases {
        release(base);
    }
}

/// A sorted table of 64 KiB entries at `bases`.
fn table_of(bases: &[usize]) -> Vec<(usize, usize)> {
    let mut table: Vec<(usize, usize)> = bases.iter().map(|&b| (b, K64)).collect();
    table.sort_unstable();
    table
}

fn query10k(c: &mut Criterion) {
    if !selected("query10k") {
        return;
    }
    // 10,000 live 64 KiB reservations, and the same bases in a sorted table.
    let bases = reserve_many(LIVE).expect("VirtualAlloc (reserve)");
    let table = table_of(&bases);
    // Random interior addresses of random live allocations.
    let addrs = random_addrs(&table, 4096);
    query_group(c, "query10k", &table, &addrs);
    release_all(&bases);
}

/// Resident anonymous bytes of the process (`RssAnon` of /proc/self/status; `VmRSS` on a
/// kernel without it), or `None` if neither is there.
fn rss_anon() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let kib: usize = l
                .strip_prefix(name)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()?;
            Some(kib << 10)
        })
    };
    field("RssAnon:").or_else(|| field("VmRSS:"))
}

/// Prints `<what> virtmem <s> s raw <s> s ratio <r>` for a one-off timing of both sides.
fn print_once(what: &str, v: Duration, r: Duration) {
    println!(
        "{what} virtmem {:.6} s raw {:.6} s ratio {:.3}",
        v.as_secs_f64(),
        r.as_secs_f64(),
        v.as_secs_f64() / r.as_secs_f64()
    );
}

fn query1m(c: &mut Criterion) {
    if !selected("query1m") {
        return;
    }
    let skip = |why: &str| {
        println!(
            "query1m: skipped ({why}; vm.max_map_count = {})",
            max_map_count()
        );
    };
    // Written through at once (not zeroes, which the allocator would map lazily), so that
    // filling it in changes no figure.
    let mut bases = vec![usize::MAX; LIVE1M];

    // The raw counterparts of setup and teardown: 10^6 64 KiB-aligned PROT_NONE mappings the
    // way the raw side places them (RawMapper), then munmap of each in the same order.
    let misses0 = RAW.misses.load(Ordering::Relaxed);
    let t = Instant::now();
    for i in 0..LIVE1M {
        match RAW.try_map(K64, libc::PROT_NONE, K64) {
            Some(p) => bases[i] = p,
            None => {
                let e = std::io::Error::last_os_error();
                bases[..i].iter().for_each(|&p| munmap(p, K64));
                return skip(&format!("raw mmap failed after {i} mappings: {e}"));
            }
        }
    }
    let raw_reserve = t.elapsed();
    let raw_misses = RAW.misses.load(Ordering::Relaxed) - misses0;
    let t = Instant::now();
    for &p in &bases {
        munmap(p, K64);
    }
    let raw_release = t.elapsed();

    // virtmem's: 10^6 VirtualAlloc MEM_RESERVE of 64 KiB, then VirtualFree of each in the same
    // order. One allocation first, so that what virtmem sets up once is not counted.
    if let Some(b) = reserve_many(1) {
        release_all(&b);
    }
    let rss0 = rss_anon();
    let t = Instant::now();
    for i in 0..LIVE1M {
        // SAFETY: a plain reservation, released below.
        let p = unsafe { VirtualAlloc(null(), K64, MEM_RESERVE, PAGE_NOACCESS) };
        if p.is_null() {
            let e = GetLastError();
            release_all(&bases[..i]);
            return skip(&format!(
                "VirtualAlloc failed after {i} reservations, GetLastError {e}"
            ));
        }
        bases[i] = p as usize;
    }
    let reserve = t.elapsed();
    let rss1 = rss_anon();

    let table = table_of(&bases);
    let addrs = random_addrs(&table, ADDRS1M);
    query_group(c, "query1m", &table, &addrs);
    drop((table, addrs));

    let t = Instant::now();
    release_all(&bases);
    let release = t.elapsed();

    print_once("reserve1m", reserve, raw_reserve);
    print_once("release1m", release, raw_release);
    if raw_misses > 0 {
        eprintln!("reserve1m: the raw hint missed {raw_misses} times of {LIVE1M}");
    }
    // Virtmem's bookkeeping (its metadata heap and the process heap) as the growth of the
    // resident anonymous memory while the reservations were made: an upper bound, unless
    // virtmem reused heap memory freed earlier in this process.
    if let (Some(a), Some(b)) = (rss0, rss1) {
        println!(
            "meta_per_alloc {:.1} B",
            b.saturating_sub(a) as f64 / LIVE1M as f64
        );
    }
}

/// `vm.max_map_count`, for the skip note (`?` if unreadable).
fn max_map_count() -> String {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// 3. protect_toggle
// ---------------------------------------------------------------------------------------------

fn protect_toggle(c: &mut Criterion) {
    if !selected("protect_toggle") {
        return;
    }
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

    let mut old = 0u32;
    run_group(
        c,
        "protect_toggle",
        5000,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    timed(iters, || {
                        let p = black_box(vp) as *const c_void;
                        // SAFETY: the page is committed; `old` is writable.
                        unsafe {
                            assert_eq!(VirtualProtect(p, PAGE, PAGE_READONLY, &mut old), TRUE);
                            assert_eq!(VirtualProtect(p, PAGE, PAGE_READWRITE, &mut old), TRUE);
                        }
                        black_box(old);
                    })
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    timed(iters, || {
                        mprotect(black_box(rp), PAGE, libc::PROT_READ);
                        mprotect(black_box(rp), PAGE, libc::PROT_READ | libc::PROT_WRITE);
                    })
                }),
            ),
        ],
    );

    release(v as usize);
    munmap(r, K64);
}

// ---------------------------------------------------------------------------------------------
// 4. reserve1t
// ---------------------------------------------------------------------------------------------

fn reserve1t(c: &mut Criterion) {
    if !selected("reserve1t") {
        return;
    }
    run_group(
        c,
        "reserve1t",
        5000,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    timed(iters, || {
                        // SAFETY: a reservation, released at once.
                        unsafe {
                            let p = VirtualAlloc(null(), TIB, MEM_RESERVE, PAGE_NOACCESS);
                            assert!(!p.is_null(), "VirtualAlloc 1 TiB");
                            assert_eq!(VirtualFree(black_box(p), 0, MEM_RELEASE), TRUE);
                        }
                    })
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    timed(iters, || {
                        let p = mmap_anon(0, TIB, libc::PROT_NONE, 0).expect("mmap 1 TiB");
                        munmap(black_box(p), TIB);
                    })
                }),
            ),
        ],
    );
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
    targets = alloc64k, query10k, query1m, protect_toggle, reserve1t, threads2, raw_hint_report
}
criterion_main!(benches);
