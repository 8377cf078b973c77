//! One allocation: what a single reserving call created.

use crate::runs::{PageState, RunTable};
use crate::snapshot::SnapshotCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// One allocation ("region" in Microsoft's words). Its identity (base, size,
/// AllocationProtect) never changes; its pages change only under [`Allocation::begin`], and
/// readers see them through a lock-free snapshot.
pub(crate) struct Allocation {
    /// Base address (a multiple of the granularity).
    pub base: usize,
    /// Size in bytes (a multiple of the page size).
    pub size: usize,
    /// AllocationProtect: the protection given at reservation, modifiers included.
    pub alloc_protect: u32,
    /// The allocation-wide modifiers (PAGE_NOCACHE / PAGE_WRITECOMBINE bits).
    pub modifiers: u32,
    /// A process-unique number; the Rust face uses it to tell a reused base from its own.
    pub id: u64,
    /// Serializes the operations that change this allocation (held across their syscalls).
    op: Mutex<()>,
    /// The page runs, published as immutable snapshots.
    runs: SnapshotCell<RunTable>,
    /// False once released.
    live: AtomicBool,
}

impl Allocation {
    pub(crate) fn new(
        base: usize,
        size: usize,
        page_size: usize,
        alloc_protect: u32,
        modifiers: u32,
        id: u64,
        initial: PageState,
    ) -> Allocation {
        Allocation {
            base,
            size,
            alloc_protect,
            modifiers,
            id,
            op: Mutex::new(()),
            runs: SnapshotCell::new(RunTable::new(size / page_size, initial)),
            live: AtomicBool::new(true),
        }
    }

    /// One past the last byte.
    pub(crate) fn end(&self) -> usize {
        self.base + self.size
    }

    /// Starts a change: takes the operation lock. Returns `None` if the allocation was
    /// released meanwhile (the caller looks the address up again).
    pub(crate) fn begin(&self) -> Option<MutexGuard<'_, ()>> {
        let g = self.op.lock().unwrap_or_else(|e| e.into_inner());
        self.live.load(Ordering::Acquire).then_some(g)
    }

    /// Reads the current page runs (lock-free).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&RunTable) -> R) -> R {
        self.runs.read(f)
    }

    /// Publishes new page runs. Call only while holding [`Allocation::begin`]'s guard.
    pub(crate) fn publish(&self, table: RunTable) {
        self.runs.publish(table);
    }

    /// Marks the allocation released (or live again after a failed release).
    pub(crate) fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
    }
}
