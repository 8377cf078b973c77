//! Immutable snapshots published through an atomic pointer, readable without locks,
//! allocation or syscalls — so a signal handler can read page state.
//!
//! Readers announce themselves in a global counter, load the pointer, read, and leave.
//! Writers (always under the owning allocation's operation lock) swap in a new snapshot and
//! *retire* the old one; retired snapshots are freed only at a moment when no reader is
//! active. A reader that could still see an old snapshot started before the swap, so once the
//! counter has been observed at zero after the swap, nobody can hold it. A reader never
//! waits; a writer never waits either (it leaves freeing to a later writer if readers are
//! active). Readers in signal handlers are safe because they never block and never free.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

/// Threads (and signal handlers) currently reading any snapshot.
static READERS: AtomicUsize = AtomicUsize::new(0);

/// Retired snapshots waiting for a moment without readers.
static RETIRED: Mutex<Vec<Retired>> = Mutex::new(Vec::new());

struct Retired {
    ptr: *mut (),
    drop_fn: unsafe fn(*mut ()),
}

// SAFETY: a retired pointer is owned exclusively by the retire list; it is only dropped, and
// the snapshot types stored in cells are `Send + Sync`.
unsafe impl Send for Retired {}

/// A published, immutable value of type `T`, replaced as a whole.
pub struct SnapshotCell<T: Send + Sync + 'static> {
    ptr: AtomicPtr<T>,
}

impl<T: Send + Sync + 'static> SnapshotCell<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Self {
        SnapshotCell {
            ptr: AtomicPtr::new(Box::into_raw(Box::new(value))),
        }
    }

    /// Runs `f` on the current snapshot. Lock-free, allocation-free and async-signal-safe as
    /// long as `f` is.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        READERS.fetch_add(1, SeqCst);
        let p = self.ptr.load(SeqCst);
        // SAFETY: `p` came from `Box::into_raw` and is freed only after it has been swapped
        // out *and* READERS was seen at zero afterwards; we incremented READERS before loading
        // it, so it stays valid until we decrement.
        let r = f(unsafe { &*p });
        READERS.fetch_sub(1, SeqCst);
        r
    }

    /// Publishes `value`, retiring the previous snapshot.
    pub fn publish(&self, value: T) {
        let old = self.ptr.swap(Box::into_raw(Box::new(value)), SeqCst);
        retire(old);
    }
}

unsafe fn drop_box<T>(p: *mut ()) {
    // SAFETY: the caller passes a pointer obtained from `Box::<T>::into_raw`, once.
    drop(unsafe { Box::from_raw(p as *mut T) });
}

fn retire<T: Send + Sync + 'static>(old: *mut T) {
    let mut list = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
    list.push(Retired {
        ptr: old as *mut (),
        drop_fn: drop_box::<T>,
    });
    if READERS.load(SeqCst) == 0 {
        for r in list.drain(..) {
            // SAFETY: swapped out before READERS was observed at zero: unreachable now.
            unsafe { (r.drop_fn)(r.ptr) };
        }
    }
}

impl<T: Send + Sync + 'static> Drop for SnapshotCell<T> {
    fn drop(&mut self) {
        // Readers may still hold the last snapshot (they found the cell through a shared
        // owner that is going away concurrently): retire rather than free.
        retire(*self.ptr.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn publish_and_read() {
        let c = SnapshotCell::new(vec![1, 2, 3]);
        assert_eq!(c.read(|v| v.len()), 3);
        c.publish(vec![4]);
        assert_eq!(c.read(|v| v[0]), 4);
    }

    #[test]
    fn concurrent_readers_see_whole_snapshots() {
        let c = Arc::new(SnapshotCell::new((0u64, 0u64)));
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 1..20_000u64 {
                    c.publish((i, i * 2));
                }
            })
        };
        for _ in 0..20_000 {
            c.read(|&(a, b)| assert_eq!(b, a * 2));
        }
        writer.join().unwrap();
    }
}
