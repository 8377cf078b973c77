//! Immutable snapshots published through an atomic pointer, readable without locks,
//! allocation or syscalls — so a signal handler can read page state.
//!
//! A small epoch scheme. Readers announce themselves in the counter of the current epoch's
//! parity, load the pointer, read, and leave. Writers (always under the owning allocation's
//! operation lock) swap in a new snapshot and *retire* the old one, tagged with the epoch.
//! The epoch advances from `e` to `e+1` only when no reader of epoch `e-1` remains (their
//! counter shares `e+1`'s parity); so once the epoch is two past a retirement, every reader
//! that could have loaded the old pointer has left, and it is freed. A reader never waits and
//! a writer never waits: under constant reading the epoch still advances, because readers of
//! an old epoch always finish. Readers in signal handlers are safe: they only touch atomics.

use crate::os::linux::metaheap::{Meta, MetaBox, MetaVec};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

/// The current epoch.
static EPOCH: AtomicUsize = AtomicUsize::new(0);
/// Readers active in epochs of each parity.
static READERS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// A reader's registration in an epoch ([`pin`]): while it lives, nothing retired from now
/// on is freed, so pointers loaded from published places stay valid. Only atomics: usable
/// in a signal handler.
pub(crate) struct Pin {
    epoch: usize,
}

/// Registers the calling thread as a reader until the returned [`Pin`] is dropped.
pub(crate) fn pin() -> Pin {
    loop {
        let e = EPOCH.load(SeqCst);
        READERS[e & 1].fetch_add(1, SeqCst);
        if EPOCH.load(SeqCst) == e {
            return Pin { epoch: e };
        }
        READERS[e & 1].fetch_sub(1, SeqCst);
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        READERS[self.epoch & 1].fetch_sub(1, SeqCst);
    }
}

/// The current epoch (what a retirement made now is tagged with).
pub(crate) fn epoch_now() -> usize {
    EPOCH.load(SeqCst)
}

/// Advances the epoch (at most twice) while the readers of the epoch before the current one
/// are gone; returns the epoch then. Lock-free: writers never wait for each other here.
///
/// Advancing from `e` needs no reader left in `e - 1` (its counter is shared with `e + 1`):
/// a reader registering meanwhile sees `e` (or later) when it re-checks, or leaves again. The
/// compare-exchange makes each step happen once, whoever wins.
pub(crate) fn try_advance() -> usize {
    for _ in 0..2 {
        let e = EPOCH.load(SeqCst);
        if READERS[(e + 1) & 1].load(SeqCst) != 0 {
            break;
        }
        let _ = EPOCH.compare_exchange(e, e + 1, SeqCst, SeqCst);
    }
    EPOCH.load(SeqCst)
}

/// Whether no reader is pinned at all right now: then nothing unpublished before this call
/// can still be held by one (a reader pinning later loads what is published now). Two plain
/// loads: the cheap check a writer makes before reusing what it retired itself.
pub(crate) fn quiescent() -> bool {
    READERS[0].load(SeqCst) == 0 && READERS[1].load(SeqCst) == 0
}

/// Whether something retired in epoch `retired` can no longer be seen by any reader.
pub(crate) fn reclaimable(retired: usize, now: usize) -> bool {
    retired + 2 <= now
}

/// How many retired values wait in [`RETIRED`] (kept under its lock; read without it).
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Retired snapshots waiting for a moment without readers (on the metadata heap, like the
/// snapshots themselves: publishing never calls `malloc`).
static RETIRED: Mutex<MetaVec<Retired>> = Mutex::new(MetaVec::new_in(Meta));

struct Retired {
    ptr: *mut (),
    drop_fn: unsafe fn(*mut ()),
    epoch: usize,
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
            ptr: AtomicPtr::new(MetaBox::into_raw(MetaBox::new_in(value, Meta))),
        }
    }

    /// Runs `f` on the current snapshot. Lock-free, allocation-free and async-signal-safe as
    /// long as `f` is.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let _pin = pin();
        let p = self.ptr.load(SeqCst);
        // SAFETY: `p` came from `MetaBox::into_raw` and is freed only two epochs after it was
        // swapped out; we are pinned (registered in the current epoch before loading it), and
        // the epoch cannot pass ours + 1 until we leave.
        f(unsafe { &*p })
    }

    /// Publishes `value`, retiring the previous snapshot.
    pub fn publish(&self, value: T) {
        let old = self
            .ptr
            .swap(MetaBox::into_raw(MetaBox::new_in(value, Meta)), SeqCst);
        retire(old);
    }
}

unsafe fn drop_box<T>(p: *mut ()) {
    // SAFETY: the caller passes a pointer obtained from `MetaBox::<T>::into_raw`, once.
    drop(unsafe { MetaBox::from_raw_in(p as *mut T, Meta) });
}

fn retire<T: Send + Sync + 'static>(old: *mut T) {
    // SAFETY: `old` came from `MetaBox::<T>::into_raw` and is no longer published.
    unsafe { retire_raw(old as *mut (), drop_box::<T>) };
}

/// Retires `ptr`: `drop_fn(ptr)` runs once no reader pinned before now can still hold it.
///
/// # Safety
/// `ptr` must no longer be reachable from anything a reader can load from now on, and
/// `drop_fn(ptr)` must be sound to call once, from any thread, later.
pub(crate) unsafe fn retire_raw(ptr: *mut (), drop_fn: unsafe fn(*mut ())) {
    // No reader pinned at all, and nothing waiting: free at once, without the list's lock.
    // The fence orders the caller's unpublishing store before the counter loads (a reader
    // pinning after them loads what is published now, not `ptr`).
    std::sync::atomic::fence(SeqCst);
    if quiescent() && PENDING.load(SeqCst) == 0 {
        // SAFETY: unpublished (the caller's contract) and no reader could have loaded it.
        unsafe { drop_fn(ptr) };
        return;
    }
    let mut first = Some(Retired {
        ptr,
        drop_fn,
        epoch: EPOCH.load(SeqCst),
    });
    loop {
        // What is ready, taken out under the lock in batches on the stack (no allocation),
        // freed outside it: dropping a snapshot may drop cells that retire in turn.
        let mut ready: [Option<Retired>; 16] = Default::default();
        let mut n = 0;
        let more = {
            let mut list = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = first.take() {
                list.push(r);
            }
            let now = try_advance();
            let mut i = 0;
            while i < list.len() && n < ready.len() {
                if reclaimable(list[i].epoch, now) {
                    ready[n] = Some(list.swap_remove(i));
                    n += 1;
                } else {
                    i += 1;
                }
            }
            PENDING.store(list.len(), SeqCst);
            n == ready.len()
        };
        for r in ready.iter_mut().filter_map(Option::take) {
            // SAFETY: retired two epochs ago: no reader can still hold it.
            unsafe { (r.drop_fn)(r.ptr) };
        }
        if !more {
            return;
        }
    }
}

/// The retire list's lock, held across `fork` (`engine/fork.rs`): the innermost lock.
pub(crate) struct RetireGuard(#[allow(dead_code)] std::sync::MutexGuard<'static, MetaVec<Retired>>);

/// Takes the retire list's lock for `fork`.
pub(crate) fn fork_lock() -> RetireGuard {
    RetireGuard(RETIRED.lock().unwrap_or_else(|e| e.into_inner()))
}

/// In a forked child (one thread, outside any read): readers that were active in other
/// threads of the parent do not exist here, so the reader counters start again from zero
/// (else the epoch could never advance and retired snapshots would never be freed). Only
/// atomics: async-signal-safe.
pub(crate) fn fork_child_reset() {
    READERS[0].store(0, SeqCst);
    READERS[1].store(0, SeqCst);
}

/// Number of retired snapshots not yet freed (for tests).
#[cfg(any(test, feature = "internals"))]
pub fn retired_count() -> usize {
    RETIRED.lock().unwrap_or_else(|e| e.into_inner()).len()
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

    #[test]
    fn constant_readers_do_not_stop_reclamation() {
        let c = Arc::new(SnapshotCell::new(0u64));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (c, stop) = (c.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(SeqCst) {
                        c.read(|v| std::hint::black_box(*v));
                    }
                })
            })
            .collect();
        for i in 0..50_000 {
            c.publish(i);
        }
        let left = retired_count();
        stop.store(true, SeqCst);
        for r in readers {
            r.join().unwrap();
        }
        // Other tests publish concurrently; what matters is that it did not keep 50,000.
        assert!(left < 1000, "{left} retired snapshots were never freed");
    }
}
