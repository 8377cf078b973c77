//! An allocation's published page runs: a [`RunTable`] readers see without locks, and that
//! writers replace without locks or allocation in the common cases.
//!
//! The cell is one 64-bit word. A table of **one run** (most allocations: a reservation, a
//! whole commit) is packed into the word itself — its state's bits, tagged by bit 0 — so it
//! costs no memory block, publishing it allocates nothing, and reading it needs no epoch.
//! A table of several runs is a block on the metadata heap, and the word points to it;
//! replacing it retires the old block through the epoch scheme of [`super::snapshot`].
//!
//! The last retired block is kept as the cell's **spare**: once no reader can see it (two
//! epochs later, usually at once when nobody is reading), the next multi-run publication
//! writes its table into that block instead of allocating one. A VirtualProtect toggling one
//! page (one run ↔ three runs) therefore never allocates, frees or takes a lock after its
//! first call. Everything here is atomics: async-signal-safe.

use super::snapshot::{epoch_now, pin, quiescent, reclaimable, retire_raw, try_advance};
use crate::os::linux::metaheap::{Meta, MetaBox};
use crate::rules::runs::{PageState, RunTable};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::Release, Ordering::SeqCst};

/// Bit 0 of the word: the word holds one run's state, not a pointer.
const PACKED: u64 = 1;

/// Packs the state of a one-run table.
fn pack(s: PageState) -> u64 {
    PACKED
        | u64::from(s.committed) << 1
        | u64::from(s.locked) << 2
        | u64::from(s.reset) << 3
        | u64::from(s.dirty) << 4
        | u64::from(s.latched) << 5
        | u64::from(s.protect) << 32
}

/// The state packed by [`pack`].
fn unpack(w: u64) -> PageState {
    PageState {
        committed: w & 1 << 1 != 0,
        locked: w & 1 << 2 != 0,
        reset: w & 1 << 3 != 0,
        dirty: w & 1 << 4 != 0,
        latched: w & 1 << 5 != 0,
        protect: (w >> 32) as u32,
    }
}

/// The published page runs of one allocation of `pages` pages (the page count is the
/// allocation's and is passed in by the reader: a packed word does not hold it).
pub(crate) struct RunsCell {
    /// A packed one-run state, or a `MetaBox<RunTable>` pointer.
    word: AtomicU64,
    /// A retired table block kept for reuse (null if none).
    spare: AtomicPtr<RunTable>,
    /// The epoch when the spare was retired.
    spare_epoch: AtomicUsize,
}

// The packing needs 64-bit pointers with bit 0 clear (metadata blocks are 16-aligned).
const _: () = assert!(usize::BITS == 64);

impl RunsCell {
    /// A cell holding `table`.
    pub(crate) fn new(table: RunTable) -> RunsCell {
        RunsCell {
            word: AtomicU64::new(Self::word_for(table, None)),
            spare: AtomicPtr::new(std::ptr::null_mut()),
            spare_epoch: AtomicUsize::new(0),
        }
    }

    /// The word publishing `table`: packed for one run, else a block (`reuse`, if given, or
    /// a new one).
    fn word_for(table: RunTable, reuse: Option<*mut RunTable>) -> u64 {
        if table.run_count() == 1 {
            return pack(table.run_at(0).state);
        }
        let p = match reuse {
            Some(p) => {
                // SAFETY: `p` is a block of ours no reader can see any more (the caller took
                // it from the spare slot once reclaimable); it holds a valid table, which this
                // assignment drops.
                unsafe { *p = table };
                p
            }
            None => MetaBox::into_raw(MetaBox::new_in(table, Meta)),
        };
        p as u64
    }

    /// The state of every page if the table is one run (a single load: no epoch, no table).
    #[inline]
    pub(crate) fn single(&self) -> Option<PageState> {
        let w = self.word.load(SeqCst);
        (w & PACKED != 0).then(|| unpack(w))
    }

    /// Runs `f` on the current table of `pages` pages. Lock-free, allocation-free and
    /// async-signal-safe as long as `f` is.
    pub(crate) fn read<R>(&self, pages: usize, f: impl FnOnce(&RunTable) -> R) -> R {
        if let Some(s) = self.single() {
            return f(&RunTable::new(pages, s));
        }
        let _pin = pin();
        // SAFETY: a published block is retired (never freed at once) when replaced, and we
        // are pinned since before loading it (inside `read_exclusive`): it outlives this read.
        unsafe { self.read_exclusive(pages, f) }
    }

    /// Runs `f` on the current table without pinning an epoch.
    ///
    /// # Safety
    /// The current block must outlive `f`: no other thread publishes to this cell meanwhile
    /// (the caller holds the lock that serializes the cell's writers), or the caller is pinned.
    pub(crate) unsafe fn read_exclusive<R>(
        &self,
        pages: usize,
        f: impl FnOnce(&RunTable) -> R,
    ) -> R {
        let w = self.word.load(SeqCst);
        if w & PACKED != 0 {
            return f(&RunTable::new(pages, unpack(w)));
        }
        // SAFETY: the block is current when loaded and, by the caller's contract, stays alive
        // during `f`.
        f(unsafe { &*(w as *const RunTable) })
    }

    /// Publishes `table`.
    ///
    /// # Safety
    /// Publications to one cell must not overlap (the allocation's operation guard
    /// serializes them, or the cell is not shared yet): the spare slot and the word are
    /// updated with plain loads and stores, not read-modify-writes.
    pub(crate) unsafe fn publish(&self, table: RunTable) {
        let reuse = if table.run_count() > 1 {
            self.take_spare()
        } else {
            None
        };
        let new = Self::word_for(table, reuse);
        let old = self.word.load(Relaxed);
        if old & PACKED != 0 {
            // Nothing to retire: readers only need to see the new word whole.
            self.word.store(new, Release);
        } else {
            // The block is retired after this swap; the swap (a full barrier) orders it before
            // the epoch and reader-counter loads that decide when the block is free.
            self.word.swap(new, SeqCst);
            self.stash(old as *mut RunTable);
        }
    }

    /// The spare block, if no reader can see it any more.
    fn take_spare(&self) -> Option<*mut RunTable> {
        let p = self.spare.load(Relaxed);
        if p.is_null() {
            return None;
        }
        // Usually nobody is reading at all: two loads. Else the epochs decide.
        if !quiescent() && !reclaimable(self.spare_epoch.load(Relaxed), try_advance()) {
            return None;
        }
        self.spare.store(std::ptr::null_mut(), Relaxed);
        Some(p)
    }

    /// Keeps the just-unpublished block `old` as the spare; a spare already there goes to the
    /// global retire list.
    fn stash(&self, old: *mut RunTable) {
        let prev = self.spare.load(Relaxed);
        self.spare_epoch.store(epoch_now(), Relaxed);
        self.spare.store(old, Relaxed);
        if !prev.is_null() {
            // SAFETY: `prev` was unpublished before it became the spare, and is no longer
            // the spare: nothing else holds it.
            unsafe { retire_raw(prev.cast(), drop_table) };
        }
    }
}

/// Frees a retired table block.
///
/// # Safety
/// `p` is a `MetaBox<RunTable>` pointer no reader can see, passed once.
unsafe fn drop_table(p: *mut ()) {
    // SAFETY: the caller's contract.
    drop(unsafe { MetaBox::from_raw_in(p.cast::<RunTable>(), Meta) });
}

impl Drop for RunsCell {
    fn drop(&mut self) {
        // A reader may have found the cell through an owner going away concurrently and still
        // hold the current block: retire rather than free it.
        let w = *self.word.get_mut();
        if w & PACKED == 0 {
            // SAFETY: the cell is going away: nothing can load the block from it any more.
            unsafe { retire_raw(w as *mut (), drop_table) };
        }
        let s = *self.spare.get_mut();
        if !s.is_null() {
            // SAFETY: the spare is unpublished; retired with the epoch of now, which is at or
            // after its own.
            unsafe { retire_raw(s.cast(), drop_table) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        for s in [
            PageState::RESERVED,
            PageState::committed(0x04),
            PageState {
                committed: true,
                protect: 0x104,
                locked: true,
                reset: true,
                dirty: true,
                latched: true,
            },
        ] {
            assert_eq!(unpack(pack(s)), s);
        }
    }

    #[test]
    fn one_run_is_packed_and_several_runs_reuse_a_block() {
        let c = RunsCell::new(RunTable::new(16, PageState::RESERVED));
        assert_ne!(c.word.load(SeqCst) & PACKED, 0);
        let three = RunTable::new(16, PageState::committed(4)).with(5, 6, |_| {
            PageState::committed(2)
        });
        // SAFETY: this test's only writer.
        unsafe { c.publish(three.clone()) };
        assert_eq!(c.word.load(SeqCst) & PACKED, 0);
        let first = c.word.load(SeqCst);
        c.read(16, |t| assert_eq!(*t, three));
        // SAFETY: this test's only writer.
        unsafe { c.publish(RunTable::new(16, PageState::committed(4))) };
        c.read(16, |t| assert_eq!(t.run_count(), 1));
        assert!(!c.spare.load(SeqCst).is_null());
        // SAFETY: this test's only writer.
        unsafe { c.publish(three.clone()) };
        c.read(16, |t| assert_eq!(*t, three));
        // Other tests pin concurrently: the spare is reused whenever its epoch has passed.
        let reused = c.word.load(SeqCst) == first;
        let spare_left = !c.spare.load(SeqCst).is_null();
        assert!(reused || spare_left);
    }

    #[test]
    fn concurrent_readers_see_whole_tables() {
        let c = std::sync::Arc::new(RunsCell::new(RunTable::new(8, PageState::RESERVED)));
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 1..20_000u32 {
                    let s = PageState::committed(i);
                    let t = RunTable::new(8, s).with(2, 3, |_| PageState::committed(i + 1));
                    // SAFETY: this test's only writer.
                    unsafe { c.publish(t) };
                    // SAFETY: this test's only writer.
                    unsafe { c.publish(RunTable::new(8, s)) };
                }
            })
        };
        for _ in 0..20_000 {
            c.read(8, |t| {
                let first = t.run_at(0).state.protect;
                assert!(t.run_count() == 1 || t.run_at(2).state.protect == first + 1);
            });
        }
        writer.join().unwrap();
    }
}
