//! What the benchmark files (`ops.rs`, `sections.rs`, `fault.rs`) share: running a group of
//! sides with criterion and then the interleaved cross-check, reading the command line, and the
//! raw building blocks they all use (anonymous mmap, munmap, mprotect, touching pages).
//!
//! Criterion measures the sides of a group one after the other, so a machine whose speed
//! drifts over seconds (a busy host, a small VM) moves their ratio. After each group the
//! interleaved cross-check therefore alternates each side with the reference
//! `INTERLEAVED_ROUNDS` times and prints
//!
//! `interleaved <group> <side> <ns> <reference> <ns> ratio <r>`
//!
//! (median of the per-round ratios), which `scripts/bench-ratios.sh` and
//! `scripts/bench-fault-ratios.sh` read.
#![allow(dead_code)] // each benchmark file uses its own part of this

use criterion::Criterion;
use std::ffi::c_void;
use std::ptr;
use std::time::{Duration, Instant};
use virtmem::win32::{VirtualFree, MEM_RELEASE, TRUE};

/// One page (the host page size is 4 KiB on the machines these figures are for), and the
/// touch stride: one byte per 4 KiB.
pub const PAGE: usize = 4 << 10;
/// The allocation granularity, and the size of the small allocations and views.
pub const K64: usize = 64 << 10;

/// Alternating rounds of the interleaved cross-check.
pub const INTERLEAVED_ROUNDS: usize = 10;

/// One side of a group: runs `iters` operations (any preparation untimed) and returns the
/// time they took.
pub type Side<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// Times `iters` calls of `f`.
pub fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed()
}

/// The command line's positional filter, and whether criterion really measures (`--bench`,
/// what `cargo bench` passes, without a one-shot mode such as `--test`, `--list` or
/// `--profile-time`). Criterion's own parser is not public; this only needs the filter and
/// those modes.
pub fn cli() -> (Option<String>, bool) {
    // Criterion options followed by a value, which is then not a filter.
    const TAKES_VALUE: [&str; 14] = [
        "--baseline",
        "--color",
        "--confidence-level",
        "--load-baseline",
        "--measurement-time",
        "--noise-threshold",
        "--nresamples",
        "--output-format",
        "--plotting-backend",
        "--profile-time",
        "--sample-size",
        "--save-baseline",
        "--significance-level",
        "--warm-up-time",
    ];
    let (mut filter, mut bench, mut once) = (None, false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if TAKES_VALUE.contains(&a.as_str()) {
            once |= a == "--profile-time";
            let _ = args.next();
        } else if a == "--bench" {
            bench = true;
        } else if matches!(a.as_str(), "--test" | "--list") || a.starts_with("--profile-time=") {
            once = true;
        } else if !a.starts_with('-') && filter.is_none() {
            filter = Some(a);
        }
    }
    (filter, bench && !once)
}

/// Whether criterion really measures (see [`cli`]): the cross-checks and one-off timings
/// are only worth their time then.
pub fn measuring() -> bool {
    cli().1
}

/// Whether a group can match the filter (a substring either way round, which covers `group`,
/// `group/side` and prefixes; criterion applies the exact filter itself, this only skips the
/// setup and cross-checks of groups that cannot match).
pub fn selected(group: &str) -> bool {
    cli()
        .0
        .is_none_or(|f| group.contains(f.as_str()) || f.contains(group))
}

/// The median of `x` (not empty).
pub fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    let n = x.len();
    (x[(n - 1) / 2] + x[n / 2]) / 2.0
}

/// Measures the sides of `group` with criterion; the last side is the reference, the
/// denominator of every ratio. Then, when criterion really measures, alternates each other
/// side with the reference `INTERLEAVED_ROUNDS` times (`per_round` operations each, after one
/// untimed round each, the order flipping every round) and prints the median of the
/// per-round ratios:
///
/// `interleaved <group> <side> <ns> <reference> <ns> ratio <r>`
pub fn run_group(c: &mut Criterion, group: &str, per_round: u64, mut sides: Vec<(&str, Side<'_>)>) {
    let mut g = c.benchmark_group(group);
    for (name, side) in sides.iter_mut() {
        g.bench_function(*name, |b| b.iter_custom(&mut *side));
    }
    g.finish();
    if !measuring() {
        return;
    }
    let ns = |d: Duration| d.as_nanos() as f64 / per_round as f64;
    let (reference, others) = sides.split_last_mut().expect("a pair");
    for (name, side) in others {
        let (mut ts, mut tr, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        // One untimed round each: caches and page tables as in the timed rounds.
        side(per_round);
        (reference.1)(per_round);
        for round in 0..INTERLEAVED_ROUNDS {
            let (a, b) = if round % 2 == 0 {
                let a = ns(side(per_round));
                (a, ns((reference.1)(per_round)))
            } else {
                let b = ns((reference.1)(per_round));
                (ns(side(per_round)), b)
            };
            ts.push(a);
            tr.push(b);
            ratios.push(a / b);
        }
        println!(
            "interleaved {group} {name} {:.1} {} {:.1} ratio {:.3}",
            median(ts),
            reference.0,
            median(tr),
            median(ratios)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Raw building blocks
// ---------------------------------------------------------------------------------------------

/// An anonymous private mapping of `len` bytes with protection `prot` at the hint `addr` (0:
/// where the kernel likes), with `extra` flags; `None` if the kernel refuses.
pub fn mmap_anon(addr: usize, len: usize, prot: i32, extra: i32) -> Option<usize> {
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

pub fn munmap(addr: usize, len: usize) {
    // SAFETY: only mappings the benchmark created, which nothing references any more.
    let r = unsafe { libc::munmap(addr as *mut c_void, len) };
    assert_eq!(r, 0, "munmap");
}

pub fn mprotect(addr: usize, len: usize, prot: i32) {
    // SAFETY: changes the protection of pages the benchmark mapped and nothing else uses.
    let r = unsafe { libc::mprotect(addr as *mut c_void, len, prot) };
    assert_eq!(r, 0, "mprotect");
}

/// Writes one byte per 4 KiB of `[p, p+len)`.
///
/// # Safety
/// The range must be mapped writable.
pub unsafe fn touch(p: *mut u8, len: usize) {
    for off in (0..len).step_by(PAGE) {
        // SAFETY: inside the writable range (caller's contract).
        unsafe { ptr::write_volatile(p.add(off), 1) };
    }
}

/// VirtualFree(MEM_RELEASE) of the allocation at `p`.
pub fn release(p: usize) {
    // SAFETY: releases an allocation the benchmark made and nothing references any more.
    let r = unsafe { VirtualFree(p as *mut c_void, 0, MEM_RELEASE) };
    assert_eq!(r, TRUE, "VirtualFree");
}
