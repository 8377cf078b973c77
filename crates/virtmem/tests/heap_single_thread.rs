//! The heap lock's single-thread shortcut (`engine/heap/lock.rs`, `single_threaded`): while
//! the process has one thread, back-end and large-block calls skip the heap lock; once a
//! second thread exists, HeapLock excludes them again (H54). `harness = false`: the test
//! starts on the process's only thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use virtmem::win32::*;

fn cycle(h: HANDLE) {
    // SAFETY: a valid heap; blocks written within their sizes and freed once.
    unsafe {
        for n in [1usize << 20, 3000, 100] {
            let p = HeapAlloc(h, 0, n) as *mut u8;
            assert!(!p.is_null());
            p.write(1);
            assert_eq!(HeapSize(h, 0, p.cast()), n);
            assert_eq!(HeapFree(h, 0, p.cast()), TRUE);
            assert_eq!(HeapFree(h, 0, p.cast()), FALSE);
        }
    }
}

fn main() {
    // SAFETY: plain heap calls on valid handles.
    unsafe {
        let ph = GetProcessHeap();
        let h = HeapCreate(0, 0, 0);
        // One thread: the shortcut; HeapLock by this thread still nests.
        cycle(ph);
        cycle(h);
        assert_eq!(HeapLock(h), TRUE);
        cycle(h);
        assert_eq!(HeapUnlock(h), TRUE);
        assert_eq!(HeapUnlock(h), FALSE);
        // A second thread: HeapLock held here keeps its large-block work waiting (H54).
        assert_eq!(HeapLock(h), TRUE);
        let done = Arc::new(AtomicBool::new(false));
        let (d, hh) = (done.clone(), h as usize);
        let t = std::thread::spawn(move || {
            cycle(hh as HANDLE);
            d.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !done.load(Ordering::SeqCst),
            "HeapLock did not exclude the other thread"
        );
        assert_eq!(HeapUnlock(h), TRUE);
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
        cycle(h);
        assert_eq!(HeapDestroy(h), TRUE);
    }
    println!("heap_single_thread: ok");
}
