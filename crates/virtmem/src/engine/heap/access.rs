//! The one way the heap engine touches heap memory (block headers, zeroing, copying on
//! realloc): on real memory, atomic word loads/stores and `ptr` copies at addresses the engine
//! has checked are committed parts of the heap; on a simulated backend, `Space::read` /
//! `Space::write` (`engine/simulate.rs`). Header words use relaxed atomics, so a HeapWalk or
//! HeapValidate reading a header while another thread's front end writes it is a race on
//! values, never undefined behaviour.

use crate::engine::Space;
use crate::os::Os;
use std::sync::atomic::{AtomicU64, Ordering};

impl<O: Os> Space<O> {
    /// The 8-byte word at `addr` (8-aligned, committed heap memory).
    #[inline]
    pub(crate) fn heap_load(&self, addr: usize) -> u64 {
        if self.os().real_memory() {
            // SAFETY: callers pass an 8-aligned address inside a committed, read-write part
            // of one of their heap's reservations (checked against the heap's own tables).
            unsafe { AtomicU64::from_ptr(addr as *mut u64).load(Ordering::Relaxed) }
        } else {
            let mut b = [0u8; 8];
            let _ = self.read(addr, &mut b);
            u64::from_ne_bytes(b)
        }
    }

    /// Stores the 8-byte word `v` at `addr` (as [`Space::heap_load`]).
    #[inline]
    pub(crate) fn heap_store(&self, addr: usize, v: u64) {
        if self.os().real_memory() {
            // SAFETY: as in `heap_load`.
            unsafe { AtomicU64::from_ptr(addr as *mut u64).store(v, Ordering::Relaxed) }
        } else {
            let _ = self.write(addr, &v.to_ne_bytes());
        }
    }

    /// Zeroes `[addr, addr + len)` of a block the caller owns.
    pub(crate) fn heap_zero(&self, addr: usize, len: usize) {
        if len == 0 {
            return;
        }
        if self.os().real_memory() {
            // SAFETY: the range is a committed, writable part of a block the calling heap
            // operation owns (allocated to the caller, not yet returned).
            unsafe { std::ptr::write_bytes(addr as *mut u8, 0, len) }
        } else {
            let zeros = [0u8; 256];
            let mut at = 0;
            while at < len {
                let n = (len - at).min(zeros.len());
                let _ = self.write(addr + at, &zeros[..n]);
                at += n;
            }
        }
    }

    /// Copies `len` bytes from block `src` to block `dst` (distinct blocks, no overlap).
    pub(crate) fn heap_copy(&self, dst: usize, src: usize, len: usize) {
        if len == 0 {
            return;
        }
        if self.os().real_memory() {
            // SAFETY: both ranges are committed parts of distinct live blocks of one heap.
            unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len) }
        } else {
            let mut buf = [0u8; 256];
            let mut at = 0;
            while at < len {
                let n = (len - at).min(buf.len());
                let _ = self.read(src + at, &mut buf[..n]);
                let _ = self.write(dst + at, &buf[..n]);
                at += n;
            }
        }
    }
}
