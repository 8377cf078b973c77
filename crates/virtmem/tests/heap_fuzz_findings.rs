//! Heap bugs the fuzz harness (`tests/fuzz_harness/heap.rs`) found, each reduced to a plain
//! sequence of calls; each failed before its fix.

use std::sync::Mutex;
use virtmem::win32::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// H49 / H57: HeapDestroy of a heap the calling thread holds locked (HeapLock) must not leave
/// that lock held in a heap created afterwards: a fresh heap is not locked, so HeapUnlock on it
/// fails with ERROR_NOT_LOCKED, and another thread can use it.
///
/// Found by `fuzz_replay` (a heap-mode input holding HeapLock on a heap it then destroyed; a
/// later input's HeapUnlock on its own fresh heap returned TRUE). Cause (fixed): `Heaps::destroy`
/// (`engine/heap/mod.rs`) recycles the heap descriptor with its recursive lock still owned by
/// the caller at the caller's HeapLock depth; HeapCreate reuses the descriptor, so the new heap
/// starts locked by that thread (another thread's HeapLock on it would wait forever).
#[test]
fn destroying_a_locked_heap_leaves_no_lock_behind() {
    let _g = serial();
    for _ in 0..4 {
        // SAFETY: plain heap calls on heaps this test creates.
        unsafe {
            let h = HeapCreate(0, 0, 0);
            assert!(!h.is_null());
            assert_ne!(HeapLock(h), 0);
            assert_ne!(HeapDestroy(h), 0);
            let fresh = HeapCreate(0, 0, 0);
            assert!(!fresh.is_null());
            SetLastError(0xdead_beef);
            let r = HeapUnlock(fresh);
            let code = GetLastError();
            assert_eq!(
                (r, code),
                (0, 158),
                "HeapUnlock of a fresh heap succeeded: the destroyed heap's lock came back with it"
            );
            assert_ne!(HeapDestroy(fresh), 0);
        }
    }
}
