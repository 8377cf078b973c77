//! A fault-injection backend: wraps another backend and fails a chosen syscall.
//!
//! Tests use it to prove that every operation is all-or-nothing: arm it to fail the n-th call
//! of one [`Syscall`] kind with a given errno, run an operation, and check that neither the
//! bookkeeping nor the kernel changed. It also counts calls, so a test can enumerate every
//! syscall an operation makes.
//!
//! Every fallible method of [`Os`] is forwarded and can be failed, the section methods
//! (`backing_*`, `map_view`, `remap_view`, `copied`, `flush_view`) as [`Syscall::Section`];
//! the only methods that are never failed are those that cannot fail (`backing_close`) or that
//! only repair or observe (`is_mapped`, `fill_holes`, `resident`, `kernel_region`).

use super::{
    BackingId, HostProt, KernelRegion, Os, OsError, OsErrorKind, Placement, Syscall, UndoReport,
    ViewMap,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// Which call to fail, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind of call.
    pub call: Syscall,
    /// How many calls of that kind succeed before the failing one.
    pub after: usize,
    /// The errno reported.
    pub errno: i32,
    /// Its classification (what the real backend would have concluded).
    pub kind: OsErrorKind,
    /// Fail only this one call (true) or every later call of the kind too (false).
    pub once: bool,
}

/// A backend that delegates to `O` except for the armed [`Fault`].
#[derive(Debug, Default)]
pub struct FailingOs<O: Os> {
    inner: O,
    fault: Mutex<Option<Fault>>,
    counts: Mutex<HashMap<Syscall, usize>>,
}

impl<O: Os> FailingOs<O> {
    /// Wraps `inner`, with nothing armed.
    pub fn new(inner: O) -> FailingOs<O> {
        FailingOs {
            inner,
            fault: Mutex::new(None),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Arms a fault (replacing any previous one).
    pub fn arm(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(fault);
    }

    /// Disarms.
    pub fn disarm(&self) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Calls made per kind since the last [`FailingOs::reset_counts`].
    pub fn counts(&self) -> HashMap<Syscall, usize> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Zeroes the call counters.
    pub fn reset_counts(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// Counts a call of kind `call` and decides whether it fails.
    fn check(&self, call: Syscall) -> Result<(), OsError> {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(call)
            .or_default() += 1;
        let mut f = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        let Some(fault) = f.as_mut() else {
            return Ok(());
        };
        if fault.call != call {
            return Ok(());
        }
        if fault.after > 0 {
            fault.after -= 1;
            return Ok(());
        }
        let e = OsError {
            call,
            errno: fault.errno,
            kind: fault.kind,
        };
        if fault.once {
            *f = None;
        }
        Err(e)
    }
}

// SAFETY: forwards to `O` (or fails a call before making it), reporting what `O` reports.
unsafe impl<O: Os> Os for FailingOs<O> {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }
    fn map(&self, placement: Placement, len: usize, prot: HostProt) -> Result<usize, OsError> {
        self.check(Syscall::Map)?;
        self.inner.map(placement, len, prot)
    }
    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Unmap)?;
        self.inner.unmap(addr, len)
    }
    fn unmap_view(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Unmap)?;
        self.inner.unmap_view(addr, len)
    }
    fn protect(&self, addr: usize, len: usize, prot: HostProt) -> Result<(), OsError> {
        self.check(Syscall::Protect)?;
        self.inner.protect(addr, len, prot)
    }
    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Replace)?;
        self.inner.replace_with_reserved(addr, len)
    }
    fn is_mapped(&self, addr: usize, len: usize) -> bool {
        self.inner.is_mapped(addr, len)
    }
    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.inner.fill_holes(addr, len)
    }
    fn lazy_free(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::LazyFree)?;
        self.inner.lazy_free(addr, len)
    }
    fn resident(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        self.inner.resident(addr, len, out)
    }
    fn undo_lazy_free(
        &self,
        addr: usize,
        len: usize,
        writable: bool,
    ) -> Result<UndoReport, OsError> {
        self.check(Syscall::ResetUndo)?;
        self.inner.undo_lazy_free(addr, len, writable)
    }
    fn lock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Lock)?;
        self.inner.lock(addr, len)
    }
    fn lock_reading(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Lock)?;
        self.inner.lock_reading(addr, len)
    }
    fn unlock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Unlock)?;
        self.inner.unlock(addr, len)
    }
    fn kernel_region(&self, addr: usize) -> KernelRegion {
        self.inner.kernel_region(addr)
    }
    fn flush_instruction_cache(&self, addr: usize, len: usize) {
        self.inner.flush_instruction_cache(addr, len)
    }
    fn real_memory(&self) -> bool {
        self.inner.real_memory()
    }
    fn watch_supported(&self) -> bool {
        self.inner.watch_supported()
    }
    fn watch_register(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Watch)?;
        self.inner.watch_register(addr, len)
    }
    fn watch_adopt(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Watch)?;
        self.inner.watch_adopt(addr, len)
    }
    fn watch_scan(
        &self,
        addr: usize,
        len: usize,
        reset: bool,
        max: usize,
        out: &mut Vec<usize>,
    ) -> Result<(), OsError> {
        self.check(Syscall::Watch)?;
        self.inner.watch_scan(addr, len, reset, max, out)
    }
    fn watch_clean(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Watch)?;
        self.inner.watch_clean(addr, len)
    }
    fn map_large(
        &self,
        placement: Placement,
        len: usize,
        prot: HostProt,
        page: usize,
    ) -> Result<usize, OsError> {
        self.check(Syscall::MapLarge)?;
        self.inner.map_large(placement, len, prot, page)
    }
    fn phys_reserve(&self, pages: usize) -> Result<(), OsError> {
        self.check(Syscall::Physical)?;
        self.inner.phys_reserve(pages)
    }
    fn phys_map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: HostProt,
    ) -> Result<(), OsError> {
        self.check(Syscall::Physical)?;
        self.inner.phys_map(addr, first, count, prot)
    }
    fn phys_discard(&self, first: usize, count: usize) -> Result<(), OsError> {
        self.check(Syscall::Physical)?;
        self.inner.phys_discard(first, count)
    }
    fn backing_new(
        &self,
        size: u64,
        large_page: Option<usize>,
        charge: bool,
    ) -> Result<BackingId, OsError> {
        self.check(Syscall::Section)?;
        self.inner.backing_new(size, large_page, charge)
    }
    fn backing_adopt_fd(&self, fd: i32) -> Result<BackingId, OsError> {
        if let Err(e) = self.check(Syscall::Section) {
            // The backend takes ownership of the descriptor, also when it fails: close it, as
            // a backend that owned it would.
            // SAFETY: the caller handed `fd` over to the backend; nobody else closes it.
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            return Err(e);
        }
        self.inner.backing_adopt_fd(fd)
    }
    fn backing_close(&self, b: BackingId) {
        // Cannot fail: always forwarded, not counted.
        self.inner.backing_close(b)
    }
    fn backing_size(&self, b: BackingId) -> Result<u64, OsError> {
        self.check(Syscall::Section)?;
        self.inner.backing_size(b)
    }
    fn backing_set_size(&self, b: BackingId, size: u64) -> Result<(), OsError> {
        self.check(Syscall::Section)?;
        self.inner.backing_set_size(b, size)
    }
    fn backing_allocate(&self, b: BackingId, offset: u64, len: u64) -> Result<(), OsError> {
        self.check(Syscall::Section)?;
        self.inner.backing_allocate(b, offset, len)
    }
    fn backing_allocated(&self, b: BackingId, offset: u64) -> Result<(bool, u64), OsError> {
        self.check(Syscall::Section)?;
        self.inner.backing_allocated(b, offset)
    }
    fn map_view(&self, placement: Placement, len: usize, m: ViewMap) -> Result<usize, OsError> {
        self.check(Syscall::Section)?;
        self.inner.map_view(placement, len, m)
    }
    fn remap_view(&self, addr: usize, len: usize, m: ViewMap) -> Result<(), OsError> {
        self.check(Syscall::Section)?;
        self.inner.remap_view(addr, len, m)
    }
    fn copied_run(&self, addr: usize, len: usize) -> Result<(bool, usize), OsError> {
        self.check(Syscall::Section)?;
        self.inner.copied_run(addr, len)
    }
    fn copied(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        self.check(Syscall::Section)?;
        self.inner.copied(addr, len, out)
    }
    fn flush_view(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Syscall::Section)?;
        self.inner.flush_view(addr, len)
    }
}
