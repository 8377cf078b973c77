//! The fuzz target's harness as an ordinary test on the stable toolchain: replays the saved
//! corpus (`fuzz/corpus/virtual_calls/`) and a fixed number of inputs from a seeded generator.
//! Bounded by count, never by time. See `tests/fuzz_harness/mod.rs` for what is checked.
//!
//! Knobs (environment): `VIRTMEM_FUZZ_INPUTS` (generated inputs, default 400),
//! `VIRTMEM_FUZZ_HEAP_INPUTS` (generated inputs in heap mode — prefixed with `HEAP_MAGIC`, so
//! most calls are heap and Global/Local calls — default 120; each costs several full HeapWalks per step),
//! `VIRTMEM_FUZZ_CORPUS` (another corpus directory, or one input file to replay),
//! `VIRTMEM_FUZZ_TRACE=1` (print every call),
//! `VIRTMEM_FUZZ_SEED` (default fixed), `VIRTMEM_FUZZ_SAVE=DIR` (also write the generated
//! inputs there, to seed a corpus), `VIRTMEM_FUZZ_KNOWN=1` (also make the requests that meet
//! KNOWN engine bugs, left out by default: see the `known_*` tests of `tests/sections_model.rs`).
//! A long run:
//! `VIRTMEM_FUZZ_INPUTS=200000 cargo test --release -p virtmem --test fuzz_replay -- --nocapture`.

mod fuzz_harness;

use fuzz_harness::{run_input, Rng, Stats, HEAP_MAGIC};
use std::path::PathBuf;
use std::time::Instant;

/// The saved corpus, or `VIRTMEM_FUZZ_CORPUS` (a directory or one file, e.g. a crash).
fn corpus_dir() -> PathBuf {
    std::env::var_os("VIRTMEM_FUZZ_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/virtual_calls"),
        PathBuf::from,
    )
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One test (the harness changes process-wide settings: it must not run beside itself).
#[test]
fn corpus_and_generated_inputs_keep_every_invariant() {
    let t0 = Instant::now();
    let mut total = Stats::default();

    // The saved corpus.
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = if dir.is_file() {
        vec![dir.clone()]
    } else {
        std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", corpus_dir().display());
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(|| run_input(&data));
        match r {
            Ok(s) => total += s,
            Err(e) => {
                eprintln!("corpus input {} broke an invariant", f.display());
                std::panic::resume_unwind(e);
            }
        }
    }
    let corpus = total;

    // Generated inputs.
    let n = env_num("VIRTMEM_FUZZ_INPUTS", 400);
    let heap_n = env_num("VIRTMEM_FUZZ_HEAP_INPUTS", 120);
    let seed = env_num("VIRTMEM_FUZZ_SEED", 0x0005_EED7);
    let save = std::env::var_os("VIRTMEM_FUZZ_SAVE").map(PathBuf::from);
    let mut rng = Rng(seed);
    let mut heap_rng = Rng(seed ^ 0x4EA9);
    for i in 0..n + heap_n {
        let data = if i < n {
            let len = 64 + (rng.next() % 640) as usize;
            rng.input(len)
        } else {
            let len = 64 + (heap_rng.next() % 640) as usize;
            let mut d = HEAP_MAGIC.to_vec();
            d.extend(heap_rng.input(len));
            d
        };
        if let Some(dir) = &save {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("gen-{seed:x}-{i:05}")), &data).unwrap();
        }
        let r = std::panic::catch_unwind(|| run_input(&data));
        match r {
            Ok(s) => total += s,
            Err(e) => {
                let path = std::env::temp_dir().join(format!("virtmem-fuzz-crash-{seed:x}-{i}"));
                let _ = std::fs::write(&path, &data);
                eprintln!(
                    "generated input {i} (seed {seed:#x}) broke an invariant; saved to {}",
                    path.display()
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    eprintln!(
        "fuzz replay: {} corpus inputs ({} calls), {} generated inputs (+{} in heap mode); {} calls in all ({} succeeded, {} failed as they should; {} section calls and view accesses succeeded, {} views in placeholders), {:.1} s",
        files.len(),
        corpus.calls,
        n,
        heap_n,
        total.calls,
        total.successes,
        total.failed_calls,
        total.section_successes,
        total.placeholder_views,
        t0.elapsed().as_secs_f64()
    );
}
