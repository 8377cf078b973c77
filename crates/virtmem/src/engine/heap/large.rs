//! Large blocks (H22): requests at or above the large-block threshold in a growable heap get a
//! reservation of their own; the block pointer is `base + 0x40` (64-aligned, never
//! 128-aligned: H26, H76). Shrinking in place decommits the pages past the new end, so growing
//! back in place then fails (H40).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A large block's descriptor (pooled, never freed). Written under the owning heap's lock.
///
/// Its fields sit 128 bytes into a 256-aligned block: never at the 4 KiB offset of a large
/// block's header (`base + 0x38`) or first bytes (`base + 0x40`), which HeapAlloc and the
/// caller have just written when HeapFree reads the descriptor (a load at the same 4 KiB
/// offset as a pending store waits for it).
#[repr(C, align(256))]
pub(crate) struct Large {
    _pad: [u8; 128],
    /// The owning heap's descriptor address (0: unassigned).
    pub owner: AtomicUsize,
    /// Its generation when assigned.
    pub gen: AtomicU64,
    /// The reservation's base.
    pub base: AtomicUsize,
    /// Bytes reserved.
    pub size: AtomicUsize,
    /// Bytes committed from the base.
    pub commit: AtomicUsize,
    /// Requested size.
    pub req: AtomicUsize,
}

impl Large {
    /// An unassigned descriptor.
    pub(crate) fn new() -> Large {
        Large {
            _pad: [0; 128],
            owner: AtomicUsize::new(0),
            gen: AtomicU64::new(0),
            base: AtomicUsize::new(0),
            size: AtomicUsize::new(0),
            commit: AtomicUsize::new(0),
            req: AtomicUsize::new(0),
        }
    }

    /// Sets the descriptor up for a fresh, fully committed reservation.
    pub(crate) fn assign(&self, owner: usize, gen: u64, base: usize, size: usize, req: usize) {
        self.base.store(base, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
        self.commit.store(size, Ordering::Relaxed);
        self.req.store(req, Ordering::Relaxed);
        self.gen.store(gen, Ordering::Relaxed);
        self.owner.store(owner, Ordering::Release);
    }

    /// The block pointer.
    pub(crate) fn ptr(&self) -> usize {
        self.base.load(Ordering::Relaxed) + crate::rules::heap::LARGE_OFFSET
    }
}
