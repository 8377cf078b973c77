//! Heap benchmarks (issue 16, item 3): each group pits a virtmem heap operation against glibc
//! `malloc`/`free` in the same run (the last side is the reference), and prints the
//! interleaved cross-check ratio (`benches/common/mod.rs`):
//!
//! * `heap16`, `heap64`, `heap256`: HeapAlloc + HeapFree on the process heap (goal ≤ 1.0×);
//! * `heap64_2t`: the same on two threads at once (scaling against malloc's);
//! * `heap1m`: 1 MiB blocks (large blocks: own reservation; goal ≤ 1.2×);
//! * `heap64_fixed`: a fixed-size HEAP_NO_SERIALIZE private heap (goal < 1.0×);
//! * `heap_batch_proc`, `heap_batch_fixed`, `heap_batch_mid`: batches — 10,000 blocks
//!   allocated, written, then freed in a random order, one batch per iteration: 1–256 bytes on
//!   the process heap and on a fixed HEAP_NO_SERIALIZE heap, 1–4,000 bytes on the process heap
//!   (no stated goal: what a real program's many live blocks cost, beside the alternating
//!   alloc/free of the groups above, which never leaves the fast paths);
//! * `heap_fragmented`: a 20,000-byte block in a HEAP_NO_SERIALIZE heap whose back end holds
//!   10^5 small free ranges (first fit is a tree descent, not a scan), against malloc after
//!   the same pattern (no goal: reported to catch a cost that grows with fragmentation).
//!
//! Every cycle writes one byte of the block, so neither side can skip the allocation.
mod common;

use common::{run_group, selected, timed, Side};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use virtmem::win32::*;

fn heap_cycle(h: HANDLE, flags: u32, n: usize) {
    // SAFETY: a valid heap; the block is written within its size and freed once.
    unsafe {
        let p = HeapAlloc(h, flags, n) as *mut u8;
        assert!(!p.is_null());
        p.write_volatile(1);
        HeapFree(h, flags, black_box(p).cast());
    }
}

fn malloc_cycle(n: usize) {
    // SAFETY: malloc/free of a block written within its size.
    unsafe {
        let p = libc::malloc(n) as *mut u8;
        assert!(!p.is_null());
        p.write_volatile(1);
        libc::free(black_box(p).cast());
    }
}

fn ph() -> HANDLE {
    // SAFETY: no arguments.
    unsafe { GetProcessHeap() }
}

fn small(c: &mut Criterion) {
    for n in [16usize, 64, 256] {
        let group = format!("heap{n}");
        if !selected(&group) {
            continue;
        }
        let h = ph();
        let hh = h as usize;
        let sides: Vec<(&str, Side<'_>)> = vec![
            (
                "virtmem",
                Box::new(move |iters| timed(iters, || heap_cycle(hh as HANDLE, 0, n))),
            ),
            (
                "malloc",
                Box::new(move |iters| timed(iters, || malloc_cycle(n))),
            ),
        ];
        run_group(c, &group, 200_000, sides);
    }
}

fn on_threads(threads: usize, iters: u64, cycle: Arc<dyn Fn() + Send + Sync>) -> Duration {
    let barrier = Arc::new(Barrier::new(threads));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (b, cycle) = (barrier.clone(), cycle.clone());
            std::thread::spawn(move || {
                b.wait();
                let s = Instant::now();
                for _ in 0..iters {
                    cycle();
                }
                (s, Instant::now())
            })
        })
        .collect();
    let spans: Vec<_> = hs.into_iter().map(|h| h.join().expect("thread")).collect();
    let s = spans.iter().map(|x| x.0).min().expect("a thread");
    let e = spans.iter().map(|x| x.1).max().expect("a thread");
    e - s
}

fn two_threads(c: &mut Criterion) {
    if !selected("heap64_2t") {
        return;
    }
    let hh = ph() as usize;
    let v: Arc<dyn Fn() + Send + Sync> = Arc::new(move || heap_cycle(hh as HANDLE, 0, 64));
    let m: Arc<dyn Fn() + Send + Sync> = Arc::new(|| malloc_cycle(64));
    // One iteration = one cycle on each of two threads; compare with the 1-thread figures of
    // heap64 for scaling.
    let (v2, m2) = (v.clone(), m.clone());
    let sides: Vec<(&str, Side<'_>)> = vec![
        (
            "virtmem",
            Box::new(move |iters| on_threads(2, iters, v2.clone())),
        ),
        (
            "malloc",
            Box::new(move |iters| on_threads(2, iters, m2.clone())),
        ),
    ];
    run_group(c, "heap64_2t", 200_000, sides);
}

fn large(c: &mut Criterion) {
    if !selected("heap1m") {
        return;
    }
    let hh = ph() as usize;
    let sides: Vec<(&str, Side<'_>)> = vec![
        (
            "virtmem",
            Box::new(move |iters| timed(iters, || heap_cycle(hh as HANDLE, 0, 1 << 20))),
        ),
        (
            "malloc",
            Box::new(|iters| timed(iters, || malloc_cycle(1 << 20))),
        ),
    ];
    run_group(c, "heap1m", 20_000, sides);
}

fn fixed(c: &mut Criterion) {
    if !selected("heap64_fixed") {
        return;
    }
    // SAFETY: creates a private heap used by this thread only.
    let h = unsafe { HeapCreate(HEAP_NO_SERIALIZE, 0, 1 << 20) } as usize;
    let sides: Vec<(&str, Side<'_>)> = vec![
        (
            "virtmem",
            Box::new(move |iters| timed(iters, || heap_cycle(h as HANDLE, 0, 64))),
        ),
        (
            "malloc",
            Box::new(|iters| timed(iters, || malloc_cycle(64))),
        ),
    ];
    run_group(c, "heap64_fixed", 200_000, sides);
}

/// Leaves every other of `2n` small blocks live (sizes 32, 48, 64 in turn): `n` free gaps.
fn fragment(n: usize, alloc: impl Fn(usize) -> usize, free: impl Fn(usize)) -> Vec<usize> {
    let ps: Vec<usize> = (0..2 * n).map(|k| alloc(32 + (k % 3) * 16)).collect();
    let mut live = vec![];
    for (k, &p) in ps.iter().enumerate() {
        if k % 2 == 1 {
            free(p);
        } else {
            live.push(p);
        }
    }
    live
}

fn fragmented(c: &mut Criterion) {
    if !selected("heap_fragmented") {
        return;
    }
    const N: usize = 100_000;
    // SAFETY: a private heap used by this thread only; every block is freed once.
    let h = unsafe { HeapCreate(HEAP_NO_SERIALIZE, 0, 0) } as usize;
    let live_h = fragment(
        N,
        // SAFETY: as above.
        |n| unsafe { HeapAlloc(h as HANDLE, 0, n) } as usize,
        // SAFETY: as above.
        |p| {
            // SAFETY: as above.
            unsafe { HeapFree(h as HANDLE, 0, p as *const _) };
        },
    );
    // HeapValidate(NULL) gives the look-aside's blocks back to the free ranges.
    // SAFETY: as above.
    assert_eq!(
        unsafe { HeapValidate(h as HANDLE, 0, std::ptr::null()) },
        TRUE
    );
    let live_m = fragment(
        N,
        // SAFETY: malloc/free of blocks freed once.
        |n| unsafe { libc::malloc(n) } as usize,
        // SAFETY: as above.
        |p| unsafe { libc::free(p as *mut _) },
    );
    let sides: Vec<(&str, Side<'_>)> = vec![
        (
            "virtmem",
            Box::new(move |iters| timed(iters, || heap_cycle(h as HANDLE, 0, 20_000))),
        ),
        (
            "malloc",
            Box::new(|iters| timed(iters, || malloc_cycle(20_000))),
        ),
    ];
    run_group(c, "heap_fragmented", 20_000, sides);
    for p in live_m {
        // SAFETY: each block once.
        unsafe { libc::free(p as *mut _) };
    }
    drop(live_h);
    // SAFETY: nothing uses the heap any more.
    unsafe { HeapDestroy(h as HANDLE) };
}

/// 10,000 request sizes in `1..=max` and a free order (a fixed pseudo-random sequence).
fn batch_plan(max: usize) -> (Vec<usize>, Vec<usize>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move |k: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % k as u64) as usize
    };
    let sizes: Vec<usize> = (0..10_000).map(|_| 1 + rnd(max)).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rnd(i + 1));
    }
    (sizes, order)
}

/// One batch: every size allocated and written, then every block freed in `order`.
fn batch(
    sizes: &[usize],
    order: &[usize],
    slots: &mut [usize],
    alloc: impl Fn(usize) -> usize,
    free: impl Fn(usize),
) {
    for (slot, &n) in slots.iter_mut().zip(sizes) {
        let p = alloc(n);
        assert_ne!(p, 0);
        // SAFETY: a fresh block of at least one byte.
        unsafe { (p as *mut u8).write_volatile(1) };
        *slot = p;
    }
    for &k in order {
        free(slots[k]);
    }
}

/// One side of a batch group: each iteration is one [`batch`].
fn batch_side<'a>(
    sizes: Vec<usize>,
    order: Vec<usize>,
    alloc: impl Fn(usize) -> usize + 'a,
    free: impl Fn(usize) + 'a,
) -> Side<'a> {
    Box::new(move |iters| {
        let mut slots = vec![0; sizes.len()];
        timed(iters, || batch(&sizes, &order, &mut slots, &alloc, &free))
    })
}

fn batches(c: &mut Criterion) {
    // SAFETY: a private heap used by this thread only (destroyed below).
    let fixed = unsafe { HeapCreate(HEAP_NO_SERIALIZE, 0, 16 << 20) } as usize;
    for (group, h, max) in [
        ("heap_batch_proc", ph() as usize, 256),
        ("heap_batch_fixed", fixed, 256),
        ("heap_batch_mid", ph() as usize, 4000),
    ] {
        if !selected(group) {
            continue;
        }
        let (sizes, order) = batch_plan(max);
        let sides: Vec<(&str, Side<'_>)> = vec![
            (
                "virtmem",
                batch_side(
                    sizes.clone(),
                    order.clone(),
                    // SAFETY: a valid heap; each block is freed once.
                    move |n| unsafe { HeapAlloc(h as HANDLE, 0, n) } as usize,
                    // SAFETY: as above.
                    move |p| unsafe {
                        HeapFree(h as HANDLE, 0, p as *const _);
                    },
                ),
            ),
            (
                "malloc",
                batch_side(
                    sizes,
                    order,
                    // SAFETY: malloc/free of blocks freed once.
                    |n| unsafe { libc::malloc(n) } as usize,
                    // SAFETY: as above.
                    |p| unsafe { libc::free(p as *mut _) },
                ),
            ),
        ];
        run_group(c, group, 40, sides);
    }
    // SAFETY: nothing uses the heap any more.
    unsafe { HeapDestroy(fixed as HANDLE) };
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    targets = small, two_threads, large, fixed, batches, fragmented
}
criterion_main!(benches);
