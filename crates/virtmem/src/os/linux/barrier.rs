//! A process-wide memory barrier (FlushProcessWriteBuffers): every thread of the process
//! executes a full barrier before the call returns.
//!
//! In order of preference:
//! 1. `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (Linux 4.14+), after registering the
//!    process once (`MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`): an IPI to the CPUs running
//!    this process's threads;
//! 2. `membarrier(MEMBARRIER_CMD_GLOBAL)` (Linux 4.3+): waits for every CPU to pass a
//!    scheduler barrier (slower: an RCU grace period);
//! 3. without `membarrier` (seccomp filters, very old kernels): the page-protection trick
//!    .NET and others use — a page of our own, made writable, written (so it is present in the
//!    page tables), then made inaccessible: removing a present page's permissions forces the
//!    kernel to shoot down its TLB entry on every CPU that runs a thread of this address
//!    space, an inter-processor interrupt that serializes those CPUs. A mutex keeps the
//!    sequence whole; a failing `mprotect` falls back to a local fence (never a panic).

use rustix::mm::{mmap_anonymous, mprotect, MapFlags, MprotectFlags, ProtFlags};
use rustix::thread::{membarrier, MembarrierCommand};
use std::sync::atomic::{fence, AtomicU8, Ordering};
use std::sync::Mutex;

/// Which barrier works: not yet known, private expedited, global, the mprotect trick.
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const PRIVATE: u8 = 1;
const GLOBAL: u8 = 2;
const MPROTECT: u8 = 3;

/// The page of the mprotect trick (its address; 0 before the first use) and its lock.
static TRICK_PAGE: Mutex<usize> = Mutex::new(0);

/// Which mechanism [`flush_process_write_buffers`] uses (for tests and diagnostics):
/// "membarrier-private-expedited", "membarrier-global" or "mprotect".
pub(crate) fn mechanism() -> &'static str {
    if MODE.load(Ordering::Relaxed) == UNKNOWN {
        flush_process_write_buffers();
    }
    match MODE.load(Ordering::Relaxed) {
        PRIVATE => "membarrier-private-expedited",
        GLOBAL => "membarrier-global",
        _ => "mprotect",
    }
}

/// Makes every thread of the process execute a full memory barrier.
pub(crate) fn flush_process_write_buffers() {
    fence(Ordering::SeqCst);
    let mode = MODE.load(Ordering::Acquire);
    if mode == PRIVATE || mode == UNKNOWN {
        if mode == UNKNOWN {
            // Registering twice is harmless, so racing first calls need no lock.
            let _ = membarrier(MembarrierCommand::RegisterPrivateExpedited);
        }
        if membarrier(MembarrierCommand::PrivateExpedited).is_ok() {
            MODE.store(PRIVATE, Ordering::Release);
            return;
        }
    }
    if mode != MPROTECT && membarrier(MembarrierCommand::Global).is_ok() {
        MODE.store(GLOBAL, Ordering::Release);
        return;
    }
    MODE.store(MPROTECT, Ordering::Release);
    mprotect_trick();
}

/// The fallback: write a page of ours, then revoke its permissions (a TLB shootdown IPI to
/// every CPU using this address space).
fn mprotect_trick() {
    let mut page = TRICK_PAGE.lock().unwrap_or_else(|e| e.into_inner());
    let ps = rustix::param::page_size();
    if *page == 0 {
        // SAFETY: a fresh private anonymous mapping the kernel places: it replaces nothing.
        match unsafe {
            mmap_anonymous(
                core::ptr::null_mut(),
                ps,
                ProtFlags::empty(),
                MapFlags::PRIVATE,
            )
        } {
            Ok(p) => *page = p as usize,
            Err(_) => {
                fence(Ordering::SeqCst);
                return;
            }
        }
    }
    let p = *page as *mut core::ffi::c_void;
    // SAFETY: `p` is our own page (mapped above, never unmapped, used only under this lock):
    // changing its protection and writing one byte of it affects nothing else.
    unsafe {
        if mprotect(p, ps, MprotectFlags::READ | MprotectFlags::WRITE).is_ok() {
            // Present and dirty, so revoking the permission must flush every CPU's TLB.
            core::ptr::write_volatile(p as *mut u8, 1);
            let _ = mprotect(p, ps, MprotectFlags::empty());
        }
    }
    fence(Ordering::SeqCst);
}
