//! libFuzzer target: bytes → a sequence of Win32 virtual-memory calls with hostile arguments
//! on the native backend, every invariant checked after every call. The decoding and the
//! checks live in `crates/virtmem/tests/fuzz_harness/mod.rs`, shared with the stable test
//! `tests/fuzz_replay.rs` that replays `fuzz/corpus/virtual_calls/`. The heap and
//! Global/Local calls (`tests/fuzz_harness/heap.rs`) are reached through selector 19 of any
//! input and, most of the time, in inputs that start with `HEAP` (the corpus's `heap-*` seeds).
//!
//! `cargo +nightly fuzz run virtual_calls -s none -- -runs=1000000` (see RELIABILITY.md).

#![no_main]

#[path = "../../crates/virtmem/tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_harness::run_input(data);
});
