//! What the benchmark files (`ops.rs`, `sections.rs`, `fault.rs`) share: running a group of
//! sides with criterion and then the interleaved cross-check, and reading the command line.
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
use std::time::{Duration, Instant};

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
