//! virtmem's private commit charge: what GetProcessMemoryInfo reports as `PagefileUsage` /
//! `PrivateUsage`, and its peak (`PeakPagefileUsage`).
//!
//! The charge is the committed bytes of the native space's private allocations (kinds
//! `Normal` and `LargePages`; views are section memory and AWE windows hold physical pages,
//! neither is private commit). Each charged [`Allocation`](super::Allocation) caches its own
//! committed page count; whenever it publishes a new run table, changes hands (`set_live`) or
//! is dropped while still owning its pages, the difference goes into one process-wide atomic,
//! and an atomic max records the peak. No lock, no allocation: the publish path stays as it was
//! (`tests/hot_paths.rs`).
//!
//! Only [`Space::native`](super::Space::native) charges: other spaces (the simulator, test
//! spaces over their own backends) are not this process's Win32 address space.

use crate::rules::runs::RunTable;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Committed bytes of the native space's private allocations.
static COMMITTED: AtomicUsize = AtomicUsize::new(0);
/// The largest value [`COMMITTED`] has had.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Committed pages of `table`: O(runs).
pub(crate) fn committed_pages(table: &RunTable) -> usize {
    table
        .runs()
        .filter(|r| r.state.committed)
        .map(|r| r.end - r.start)
        .sum()
}

/// Adds `bytes` to the charge (and raises the peak).
pub(crate) fn add(bytes: usize) {
    if bytes == 0 {
        return;
    }
    let now = COMMITTED.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Takes `bytes` off the charge (they were added before: the total never goes below zero).
pub(crate) fn sub(bytes: usize) {
    if bytes != 0 {
        COMMITTED.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// (current, peak) private commit in bytes.
pub(crate) fn private_commit() -> (usize, usize) {
    let now = COMMITTED.load(Ordering::Relaxed);
    (now, PEAK.load(Ordering::Relaxed).max(now))
}

impl<O: crate::os::Os> super::Space<O> {
    /// Whether `a`'s committed pages count towards the process's private commit: private
    /// memory (not a view, not an AWE window) of the native space.
    pub(super) fn charges_commit(&self, a: &super::Allocation) -> bool {
        use super::AllocKind::*;
        matches!(a.kind, Normal | LargePages | Placeholder)
            && super::NATIVE
                .get()
                .is_some_and(|n| std::ptr::eq(std::ptr::from_ref(n).cast::<u8>(), std::ptr::from_ref(self).cast::<u8>()))
    }
}
