//! The safe heap face (issue 16 item 4): `Heap` (RAII destroy, the process heap),
//! `HeapBox` / `HeapVec` borrowing their heap, alignments above 16, the walk, summary and
//! compaction, an `allocator_api2` arena freed at once by dropping the heap.

use allocator_api2::alloc::{Allocator, Layout};
use virtmem::win32::*;
use virtmem::{Heap, HeapEntryKind, HeapOptions, HeapVec};

#[test]
fn boxes_vectors_and_sizes() {
    let heap = Heap::new(HeapOptions::default()).unwrap();
    let z = heap.alloc_zeroed(1000).unwrap();
    assert!(z.iter().all(|&b| b == 0));
    assert_eq!(heap.size(z.as_ptr()).unwrap(), 1000);
    let mut b = heap.boxed([3u32; 8]).unwrap();
    b[7] = 9;
    assert_eq!(b.iter().sum::<u32>(), 7 * 3 + 9);
    let mut v: HeapVec<'_, u64> = HeapVec::new_in(&heap);
    for i in 0..10_000 {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), 10_000 * 9_999 / 2);
    assert_eq!(heap.size(v.as_ptr().cast()).unwrap(), v.capacity() * 8);
    // A pointer that is not a block of this heap is refused, never read.
    assert!(heap.size(b.as_ptr().cast::<u8>().wrapping_add(4)).is_err());
    assert!(heap.size(0xdead_bee0usize as *const u8).is_err());
    let busy = heap
        .walk()
        .filter(|e| e.kind == HeapEntryKind::Busy)
        .count();
    assert_eq!(busy, 3, "{:?}", heap.walk().collect::<Vec<_>>());
    assert!(heap
        .walk()
        .any(|e| e.kind == HeapEntryKind::Region && e.committed > 0));
    let s = heap.summary().unwrap();
    assert_eq!(s.allocated, 1000 + 32 + v.capacity() * 8);
    assert!(s.committed >= s.allocated && s.reserved >= s.committed);
    assert!(heap.validate());
    drop((z, b, v));
    heap.compact().unwrap();
    assert_eq!(heap.summary().unwrap().allocated, 0);
}

#[repr(C, align(64))]
struct Line([u8; 64]);

#[repr(C, align(4096))]
struct Page([u8; 100]);

#[test]
fn alignments_above_16_are_honoured() {
    let heap = Heap::new(HeapOptions::default()).unwrap();
    let mut keep = Vec::new();
    for i in 0..50u8 {
        let l = heap.boxed(Line([i; 64])).unwrap();
        assert_eq!(&*l as *const Line as usize % 64, 0);
        assert_eq!(l.0[63], i);
        keep.push(l);
    }
    let p = heap.boxed(Page([5; 100])).unwrap();
    assert_eq!(&*p as *const Page as usize % 4096, 0);
    assert_eq!(p.0[99], 5);
    for align in [32usize, 128, 1 << 16] {
        let layout = Layout::from_size_align(24, align).unwrap();
        let blk = heap.allocate_zeroed(layout).unwrap();
        assert_eq!(blk.as_ptr().cast::<u8>() as usize % align, 0);
        // SAFETY: just allocated with this layout.
        unsafe { heap.deallocate(blk.cast(), layout) };
    }
    drop(keep);
    drop(p);
    assert_eq!(
        heap.summary().unwrap().allocated,
        0,
        "the over-allocated blocks were freed"
    );
}

#[test]
fn an_arena_is_freed_at_once_by_dropping_the_heap() {
    let heap = Heap::with_maximum(HeapOptions::default(), 1 << 20).unwrap();
    let h = heap.handle() as HANDLE;
    let first;
    {
        let mut v = allocator_api2::vec::Vec::new_in(&heap);
        for i in 0..1000u32 {
            v.push(i);
        }
        first = v.as_ptr() as usize;
        let mut words = allocator_api2::vec::Vec::new_in(&heap);
        words.extend_from_slice(&[1u8; 300]);
        // Never freed one by one: the heap takes them all.
        std::mem::forget(v);
        std::mem::forget(words);
    }
    // SAFETY: queries only.
    unsafe {
        assert_eq!(HeapValidate(h, 0, first as *const _), TRUE);
        drop(heap);
        assert_eq!(HeapValidate(h, 0, first as *const _), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
    // A fixed heap runs out where its maximum says.
    let small = Heap::with_maximum(HeapOptions::default(), 0x10000).unwrap();
    assert!(small.alloc_zeroed(0x20000).is_err());
    assert!(Heap::with_maximum(HeapOptions::default(), 0).is_err());
}

#[test]
fn the_process_heap_is_shared_and_never_destroyed() {
    let p = Heap::process().unwrap();
    // SAFETY: query only.
    assert_eq!(p.handle(), unsafe { GetProcessHeap() } as usize);
    assert!(std::ptr::eq(p, Heap::process().unwrap()));
    let b = p.boxed(42u64).unwrap();
    // SAFETY: query only.
    assert_eq!(
        unsafe { HeapSize(GetProcessHeap(), 0, &*b as *const u64 as *const _) },
        8
    );
    // Raw blocks: freed by an unsafe call, refused twice.
    let r = p.alloc_raw(10).unwrap();
    // SAFETY: `r` is ours and unused afterwards.
    unsafe {
        p.free_raw(r).unwrap();
        assert!(p.free_raw(r).is_err());
    }
}
