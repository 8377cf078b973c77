//! A whole test program (the test harness, its threads, formatting, collections) running on
//! `virtmem::HeapAllocator` as `#[global_allocator]`: the heap calls never recurse into the
//! Rust allocator, and every block they hand out is a block of the allocator's heap.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use virtmem::win32::*;

#[global_allocator]
static ALLOC: virtmem::HeapAllocator = virtmem::HeapAllocator::new();

#[test]
fn everything_comes_from_the_heap() {
    let h = ALLOC.heap_handle().expect("the heap exists") as HANDLE;
    let v = vec![7u8; 1000];
    let s = format!("{}-{}", "virtmem", v.len());
    // SAFETY: queries only.
    unsafe {
        assert_eq!(HeapSize(h, 0, v.as_ptr().cast()), 1000);
        assert_eq!(HeapSize(h, 0, s.as_ptr().cast()), s.capacity());
        assert_ne!(GetProcessHeap(), h, "a private heap");
    }
    let mut m = HashMap::new();
    for i in 0..10_000u32 {
        m.insert(i, i.to_string());
    }
    assert_eq!(m[&9999], "9999");
    // SAFETY: query only.
    unsafe { assert_eq!(HeapValidate(h, 0, std::ptr::null()), TRUE) };
}

#[test]
fn threads_and_large_alignments() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut v: Vec<Box<[u64]>> = Vec::new();
                for i in 0..2000 {
                    v.push(vec![t as u64; i % 64 + 1].into_boxed_slice());
                }
                v.iter().map(|b| b.len()).sum::<usize>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap() > 0);
    }
    for align in [32usize, 4096, 1 << 16] {
        let l = Layout::from_size_align(100, align).unwrap();
        // SAFETY: a non-zero layout; freed below with it.
        unsafe {
            let p = ALLOC.alloc_zeroed(l);
            assert!(!p.is_null() && p as usize % align == 0);
            assert!(std::slice::from_raw_parts(p, 100).iter().all(|&b| b == 0));
            let q = ALLOC.realloc(p, l, 5000);
            assert!(!q.is_null() && q as usize % align == 0);
            ALLOC.dealloc(q, Layout::from_size_align(5000, align).unwrap());
        }
    }
}
