//! Registering many allocations whose page state faults change scales (issue 12, item 5):
//! 100,000 guarded allocations and 100,000 signal-watched allocations are made, some of their
//! pages are touched through the SIGSEGV handler, and all are freed. The handler's table of
//! such allocations used to be a vector copied on every change (O(n²) in total); it is now a
//! persistent tree (`engine/fault_table.rs`).
//!
//! Nothing here is timed (the durations are printed, with the `scale:` prefix, for reports).
//! `VIRTMEM_SCALE_COUNT=N` makes N allocations of each kind instead of 100,000 (for
//! measurements).
//!
//! Every one-page allocation is its own kernel mapping, so `vm.max_map_count` (65530 by
//! default) bounds how many can be live. If it is too low for 100,000: with
//! `VIRTMEM_HOST_TESTS=1` as root the test raises it for its duration (and puts the old value
//! back, even on failure); otherwise it uses as many as the limit allows minus a margin and
//! says so.

mod common;
use common::{host_tests, Sysctl};

use std::ptr::null;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use virtmem::win32::*;
use virtmem::WatchKind;

const P: usize = 0x1000;
const WANTED: usize = 100_000;
/// Mappings left for everything else the process (and the test harness) needs.
const MARGIN: usize = 4096;
/// Every `TOUCH`-th allocation has its page touched.
const TOUCH: usize = 97;
const _: () = assert!(TOUCH % 2 == 1);

static HITS: AtomicUsize = AtomicUsize::new(0);

const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

fn mappings_now() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// How many one-page allocations to make (and, if it was raised, the guard restoring
/// `vm.max_map_count`).
fn how_many() -> (usize, Option<Sysctl>) {
    let wanted = std::env::var("VIRTMEM_SCALE_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(WANTED);
    let limit: usize = std::fs::read_to_string(MAX_MAP_COUNT)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let needed = wanted + mappings_now() + MARGIN;
    if limit >= needed {
        return (wanted, None);
    }
    match host_tests() {
        Ok(()) => {
            eprintln!("scale: raising vm.max_map_count from {limit} to {needed} for this test");
            (
                wanted,
                Some(Sysctl::set(MAX_MAP_COUNT, &needed.to_string())),
            )
        }
        Err(why) => {
            let n = limit.saturating_sub(mappings_now() + MARGIN);
            eprintln!(
                "scale: vm.max_map_count is {limit}: using {n} allocations instead of \
                 {wanted} ({why})"
            );
            (n, None)
        }
    }
}

fn mbi(a: usize) -> MEMORY_BASIC_INFORMATION {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: a valid out-pointer of the size given.
    assert_ne!(unsafe { VirtualQuery(a as _, &mut m, size_of_val(&m)) }, 0);
    m
}

/// Makes `n` allocations with `make(i) -> base`; touches every `TOUCH`-th with
/// `touch(i, base)` and checks others with `untouched(i, base)`; frees every other one; does
/// the same on the survivors (the handler's table has lost half its entries); frees the rest.
fn scenario(
    n: usize,
    what: &str,
    make: impl Fn(usize) -> usize,
    touch: impl Fn(usize, usize),
    untouched: impl Fn(usize, usize),
) {
    let before = virtmem::allocations().len();
    let t0 = Instant::now();
    let bases: Vec<usize> = (0..n).map(&make).collect();
    let made = t0.elapsed();
    assert_eq!(virtmem::allocations().len(), before + n);
    let free = |keep_odd: bool| {
        for (_, &b) in bases
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 2 == 1) == keep_odd)
        {
            // SAFETY: our own allocation, released once.
            assert_ne!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, 0);
        }
    };
    let mut touched = 0;
    let t1 = Instant::now();
    for (i, &b) in bases.iter().enumerate().step_by(TOUCH) {
        touch(i, b);
        touched += 1;
    }
    for (i, &b) in bases.iter().enumerate().skip(TOUCH / 2).step_by(TOUCH) {
        untouched(i, b);
    }
    let mut used = t1.elapsed();
    let t2 = Instant::now();
    free(false);
    let mut freed = t2.elapsed();
    assert_eq!(virtmem::allocations().len(), before + n / 2);
    // Odd indices only (odd starts, an even step; TOUCH is odd), not touched before.
    let t3 = Instant::now();
    for (i, &b) in bases.iter().enumerate().skip(1).step_by(2 * TOUCH) {
        touch(i, b);
        touched += 1;
    }
    for (i, &b) in bases
        .iter()
        .enumerate()
        .skip(TOUCH / 2 + TOUCH)
        .step_by(2 * TOUCH)
    {
        untouched(i, b);
    }
    used += t3.elapsed();
    let t4 = Instant::now();
    free(true);
    freed += t4.elapsed();
    assert_eq!(virtmem::allocations().len(), before);
    eprintln!(
        "scale: {n} {what} allocations: made in {:.3} s, {touched} touched in {:.3} s, freed \
         in {:.3} s",
        made.as_secs_f64(),
        used.as_secs_f64(),
        freed.as_secs_f64()
    );
}

/// Guarded allocations: the first touch of a page raises the violation (the handler
/// continues) and consumes the guard; VirtualQuery tells touched from untouched pages.
fn guarded(n: usize) {
    // SAFETY: the handler only increments an atomic.
    unsafe {
        virtmem::set_guard_page_handler(Some(Box::new(|_| {
            HITS.fetch_add(1, Ordering::SeqCst);
            true
        })))
    };
    let make = |i: usize| {
        // SAFETY: plain allocation and protection calls; `old` is a valid out-pointer.
        unsafe {
            let p = VirtualAlloc(null(), P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as usize;
            assert_ne!(p, 0, "guarded allocation {i}: {}", GetLastError());
            let mut old = 0;
            assert_ne!(
                VirtualProtect(p as _, P, PAGE_READWRITE | PAGE_GUARD, &mut old),
                0,
                "guarding allocation {i}: {}",
                GetLastError()
            );
            p
        }
    };
    let touch = |i: usize, b: usize| {
        let hits = HITS.load(Ordering::SeqCst);
        // SAFETY: a committed read-write page of ours (guarded: the handler continues).
        unsafe {
            assert_eq!(std::ptr::read_volatile((b + 8) as *const u64), 0, "{i}");
            // The guard is gone: no second violation.
            std::ptr::write_volatile((b + 16) as *mut u64, i as u64);
        }
        assert_eq!(HITS.load(Ordering::SeqCst), hits + 1, "allocation {i}");
        assert_eq!(
            mbi(b).Protect,
            PAGE_READWRITE,
            "allocation {i} after its touch"
        );
    };
    let untouched = |i: usize, b: usize| {
        let m = mbi(b);
        assert_eq!(m.State, MEM_COMMIT);
        let want = PAGE_READWRITE | PAGE_GUARD;
        assert_eq!(m.Protect, want, "untouched allocation {i}");
    };
    scenario(n, "guarded", make, touch, untouched);
}

/// Signal-watched allocations: the first write to a page is recorded by the handler;
/// GetWriteWatch tells written from unwritten pages.
fn signal_watched(n: usize) {
    virtmem::set_write_watch_mode(WatchKind::Signal);
    assert_eq!(virtmem::write_watch_mode(), WatchKind::Signal);
    let written = |b: usize| -> usize {
        let mut out = [std::ptr::null_mut(); 2];
        let mut count = out.len();
        let mut gran = 0;
        // SAFETY: valid out-pointers; `count` is the array's length.
        let r = unsafe { GetWriteWatch(0, b as _, P, out.as_mut_ptr(), &mut count, &mut gran) };
        assert_eq!(r, 0, "GetWriteWatch: {}", GetLastError());
        count
    };
    let make = |i: usize| {
        let t = MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH;
        // SAFETY: a plain allocation call.
        let p = unsafe { VirtualAlloc(null(), P, t, PAGE_READWRITE) } as usize;
        assert_ne!(p, 0, "watched allocation {i}: {}", GetLastError());
        p
    };
    let touch = |i: usize, b: usize| {
        // SAFETY: a committed read-write page of ours.
        unsafe {
            std::ptr::write_volatile((b + 24) as *mut u64, i as u64 + 1);
            assert_eq!(written(b), 1, "allocation {i} after its write");
            let v = std::ptr::read_volatile((b + 24) as *const u64);
            assert_eq!(v, i as u64 + 1);
        }
    };
    let untouched = |i: usize, b: usize| assert_eq!(written(b), 0, "unwritten allocation {i}");
    scenario(n, "signal-watched", make, touch, untouched);
}

/// One test: the host-wide limit is raised (if at all) once, and the watch mode and guard
/// handler are process-wide.
#[test]
fn many_guarded_and_signal_watched_allocations() {
    if host_tests().is_ok() {
        eprintln!("scale: VIRTMEM_HOST_TESTS=1: host_hundred_thousand_each runs the full count");
        return;
    }
    let (n, _restore) = how_many();
    assert!(n > 100, "too few mappings left to test with: {n}");
    guarded(n);
    signal_watched(n);
}

/// The full 100,000 of each kind, where the host-wide mapping limit may be raised (CI's host
/// pass: `VIRTMEM_HOST_TESTS=1`, root).
#[test]
fn host_hundred_thousand_each() {
    if let Err(why) = host_tests() {
        eprintln!("scale: skipped: {why}");
        return;
    }
    let (n, _restore) = how_many();
    assert!(n > 100, "too few mappings left to test with: {n}");
    guarded(n);
    signal_watched(n);
}
