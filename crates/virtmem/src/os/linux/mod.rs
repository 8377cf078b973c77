//! The Linux backend: real memory through `rustix` (`libc` only for `mincore`).
//!
//! | request | kernel call |
//! |---|---|
//! | reserve | `mmap(PROT_NONE, MAP_PRIVATE\|MAP_ANONYMOUS)` without `MAP_NORESERVE`, so commit charge follows Windows |
//! | fixed reserve | the same with `MAP_FIXED_NOREPLACE` (never `MAP_FIXED` over memory we do not own) |
//! | system-chosen 64 KiB alignment | a hint below the previous reservation (one syscall, almost always right), else over-reserve and trim |
//! | commit / protect | `mprotect` |
//! | decommit | `mmap(MAP_FIXED, PROT_NONE)` of fresh memory over the range: zeros on recommit, charge returned |
//! | release | `munmap` |
//! | MEM_RESET | `MADV_FREE` (`MADV_DONTNEED` where missing) |
//! | lock | `mlock` / `munlock` |

mod large;
pub(crate) mod pagemap;
pub(crate) mod barrier;
pub(crate) mod files;
pub(crate) mod metaheap;
#[cfg(feature = "internals")]
pub use metaheap::thread_allocations as metaheap_thread_allocations;
pub(crate) mod names;
pub(crate) mod physical;
pub(crate) mod procmaps;
pub(crate) mod procstat;
// Other processes (OpenProcess, ReadProcessMemory, ...).
pub(crate) mod process;
pub(crate) mod reset_undo;
pub(crate) mod sections;
pub(crate) mod sysfacts;
pub(crate) mod watch;

use super::{
    BackingId, HostProt, KernelRegion, Os, OsError, OsErrorKind, Placement, Syscall, UndoReport,
    ViewMap,
};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MprotectFlags, ProtFlags};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The real-memory backend: a placement hint and the AWE page store (each instance has its
/// own, so two spaces never share physical pages).
#[derive(Debug)]
pub struct LinuxOs {
    /// Where the last system-chosen reservation went: the next one is tried just below it.
    hint: AtomicUsize,
    /// Whether `MADV_FREE` was found missing (kernels before 4.5).
    no_madv_free: AtomicBool,
    /// The AWE physical-page store of this backend (so of its `Space`).
    phys: physical::Store,
    /// Tests only: the next this many `munmap`s of the backend's own fresh mappings fail
    /// (ENOMEM, as at `vm.max_map_count`) before the kernel sees them.
    #[cfg(test)]
    fail_munmaps: AtomicUsize,
    /// Tests only: this many `munmap`s go through before `fail_munmaps` applies.
    #[cfg(test)]
    pass_munmaps: AtomicUsize,
    /// Tests only: the ranges whose `munmap` was failed.
    #[cfg(test)]
    refused: std::sync::Mutex<Vec<(usize, usize)>>,
}

/// The `PROT_*` flags of a protection.
pub(crate) fn prot_flags(p: HostProt) -> ProtFlags {
    let mut f = ProtFlags::empty();
    if p.read() {
        f |= ProtFlags::READ;
    }
    if p.write() {
        f |= ProtFlags::WRITE;
    }
    if p.exec() {
        f |= ProtFlags::EXEC;
    }
    f
}

fn mprotect_flags(p: HostProt) -> MprotectFlags {
    MprotectFlags::from_bits_retain(prot_flags(p).bits())
}

/// Whether the process is (nearly) at `vm.max_map_count`.
fn near_map_limit() -> bool {
    procmaps::map_count() + 3 >= procmaps::max_map_count()
}

pub(crate) fn err(call: Syscall, e: Errno, kind: OsErrorKind) -> OsError {
    OsError {
        call,
        errno: e.raw_os_error(),
        kind,
    }
}

impl LinuxOs {
    /// A new backend on this process's real memory.
    ///
    /// # Safety
    ///
    /// Its [`Os`] methods (and those of a `Space` built on it) unmap, replace and re-protect
    /// any address they are given. The caller must use it only on memory that no live Rust
    /// reference, and no code that relies on it staying mapped, can see.
    pub unsafe fn new() -> LinuxOs {
        LinuxOs {
            hint: AtomicUsize::new(0),
            no_madv_free: AtomicBool::new(false),
            phys: physical::Store::default(),
            #[cfg(test)]
            fail_munmaps: AtomicUsize::new(0),
            #[cfg(test)]
            pass_munmaps: AtomicUsize::new(0),
            #[cfg(test)]
            refused: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The AWE physical-page store (for the fork machinery).
    pub(crate) fn phys_store(&self) -> &physical::Store {
        &self.phys
    }

    /// One `mmap` of anonymous private memory; `fixed` = `MAP_FIXED_NOREPLACE`.
    pub(crate) fn mmap(
        &self,
        addr: usize,
        len: usize,
        prot: HostProt,
        fixed: bool,
    ) -> Result<usize, Errno> {
        let mut flags = MapFlags::PRIVATE;
        if fixed {
            flags |= MapFlags::FIXED_NOREPLACE;
        }
        // SAFETY: an anonymous mapping without MAP_FIXED never replaces existing memory (a
        // hint or MAP_FIXED_NOREPLACE), so no live Rust object is affected.
        let p = unsafe { mm::mmap_anonymous(addr as *mut c_void, len, prot_flags(prot), flags)? };
        let p = p as usize;
        if fixed && p != addr {
            // A kernel older than 4.17 treats MAP_FIXED_NOREPLACE as a hint. (If the mapping
            // cannot be given back even after retries, it stays mapped and unlisted: the
            // only residue; munmap of a whole fresh mapping needs no new VMA.)
            let _ = self.munmap(p, len);
            return Err(Errno::EXIST);
        }
        Ok(p)
    }

    /// Unmaps (part of) a mapping this backend just created and nobody else knows,
    /// retrying a bounded number of times (`crate::os::retry`): `munmap` of a piece in the
    /// middle of a VMA (our fresh mapping may have merged with a neighbour) needs a new VMA
    /// and fails at `vm.max_map_count` until another mapping goes away.
    pub(crate) fn munmap(&self, addr: usize, len: usize) -> Result<(), Errno> {
        crate::os::retry::until_ok(|| {
            #[cfg(test)]
            if self
                .pass_munmaps
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
                && self
                    .fail_munmaps
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                let mut r = self.refused.lock().unwrap_or_else(|e| e.into_inner());
                if !r.contains(&(addr, len)) {
                    r.push((addr, len));
                }
                return Err(Errno::NOMEM);
            }
            // SAFETY: only called on a mapping this backend just created and nobody else
            // knows.
            unsafe { mm::munmap(addr as *mut c_void, len) }
        })
    }

    /// Classifies ENOMEM from a mapping request of `len` bytes with `prot`.
    fn classify_map_enomem(&self, len: usize, prot: HostProt) -> OsErrorKind {
        if near_map_limit() {
            return OsErrorKind::MapCountLimit;
        }
        if prot.write() {
            // Would the same range fit without a commit charge? Then the charge was refused.
            if let Ok(p) = self.mmap(0, len, HostProt::NONE, false) {
                // A whole fresh mapping: unmapping it needs no new VMA.
                let _ = self.munmap(p, len);
                return OsErrorKind::CommitLimit;
            }
        }
        OsErrorKind::OutOfAddressSpace
    }

    fn map_error(&self, e: Errno, len: usize, prot: HostProt) -> OsError {
        let kind = match e {
            Errno::NOMEM => self.classify_map_enomem(len, prot),
            Errno::EXIST => OsErrorKind::AddressInUse,
            _ => OsErrorKind::Other,
        };
        err(Syscall::Map, e, kind)
    }

    /// A system-chosen, `align`-aligned base inside `[lowest, highest_end)`.
    fn map_anywhere(
        &self,
        len: usize,
        prot: HostProt,
        align: usize,
        lowest: usize,
        highest_end: usize,
    ) -> Result<usize, OsError> {
        let fits = |p: usize| p >= lowest && p.checked_add(len).is_some_and(|e| e <= highest_end);
        // Common path: just below the previous reservation, where the kernel's top-down
        // allocator would put it anyway; one syscall.
        let h = self.hint.load(Ordering::Relaxed);
        if h > len {
            let cand = (h - len) & !(align - 1);
            if fits(cand) {
                if let Ok(p) = self.mmap(cand, len, prot, true) {
                    self.hint.store(p, Ordering::Relaxed);
                    return Ok(p);
                }
            }
        }
        // Over-reserve by the alignment and trim.
        let page = self.page_size();
        let over = len.checked_add(align - page).ok_or(err(
            Syscall::Map,
            Errno::NOMEM,
            OsErrorKind::OutOfAddressSpace,
        ))?;
        let raw = self
            .mmap(0, over, prot, false)
            .map_err(|e| self.map_error(e, len, prot))?;
        let base = (raw + align - 1) & !(align - 1);
        // Trim the slack on both sides. A trim the kernel keeps refusing (the fresh mapping
        // merged with a neighbour, so the slack is a middle piece of a VMA, at
        // `vm.max_map_count`) must not leave the slack mapped and unlisted (it cannot be
        // part of the result, whose base is aligned and whose length the caller records):
        // the whole over-sized mapping is given back (bounded retries) and the request fails
        // with the map-count limit (ERROR_NOT_ENOUGH_MEMORY, 8).
        let head = if base > raw {
            self.munmap(raw, base - raw)
        } else {
            Ok(())
        };
        let tail = if head.is_ok() && raw + over > base + len {
            self.munmap(base + len, raw + over - base - len)
        } else {
            Ok(())
        };
        if let Err(e) = head {
            // Give back the whole mapping (nothing of it was trimmed). If even this fails, the
            // range stays mapped: the one residue, possible only when the fresh mapping merged
            // with neighbours on both sides.
            let _ = self.munmap(raw, over);
            return Err(err(Syscall::Map, e, OsErrorKind::MapCountLimit));
        }
        if let Err(e) = tail {
            // The head slack is already given back (another thread may have mapped there
            // since): give back only what is still ours, [base, raw+over).
            let _ = self.munmap(base, raw + over - base);
            return Err(err(Syscall::Map, e, OsErrorKind::MapCountLimit));
        }
        if fits(base) {
            self.hint.store(base, Ordering::Relaxed);
            return Ok(base);
        }
        if let Err(e) = self.munmap(base, len) {
            return Err(err(Syscall::Map, e, OsErrorKind::MapCountLimit));
        }
        self.map_top_down(len, prot, align, lowest, highest_end)
    }

    /// The lowest free `align`-aligned range inside `[lowest, highest_end)`.
    fn map_bottom_up(
        &self,
        len: usize,
        prot: HostProt,
        align: usize,
        lowest: usize,
        highest_end: usize,
    ) -> Result<usize, OsError> {
        self.map_searched(len, prot, || {
            procmaps::lowest_free_range(len, align, lowest, highest_end)
        })
    }

    /// The highest free `align`-aligned range inside `[lowest, highest_end)`.
    fn map_top_down(
        &self,
        len: usize,
        prot: HostProt,
        align: usize,
        lowest: usize,
        highest_end: usize,
    ) -> Result<usize, OsError> {
        self.map_searched(len, prot, || {
            procmaps::highest_free_range(len, align, lowest, highest_end)
        })
    }

    /// Maps `len` bytes at the free range `search` finds. Another thread may take the range
    /// between the search and the mmap: search again (bounded, `crate::os::retry`; then out of
    /// address space, 8).
    fn map_searched(
        &self,
        len: usize,
        prot: HostProt,
        search: impl Fn() -> Option<usize>,
    ) -> Result<usize, OsError> {
        let none = err(Syscall::Map, Errno::NOMEM, OsErrorKind::OutOfAddressSpace);
        crate::os::retry::bounded(none, || {
            let Some(base) = search() else {
                return Some(Err(none));
            };
            match self.mmap(base, len, prot, true) {
                Ok(p) => Some(Ok(p)),
                Err(Errno::EXIST) => None,
                Err(e) => Some(Err(self.map_error(e, len, prot))),
            }
        })
    }

    /// Calls `f` with chunks of at most 64 Ki pages of `[addr, addr+len)` and a residency
    /// vector for each.
    fn mincore_chunks(
        &self,
        addr: usize,
        len: usize,
        mut f: impl FnMut(usize, &[u8]),
    ) -> Result<(), Errno> {
        // A stack buffer, one byte per page: no heap (MEM_RESET is a `malloc`'s call).
        let page = self.page_size();
        let mut buf = [0u8; 4096];
        let chunk = buf.len() * page;
        let mut at = addr;
        while at < addr + len {
            let n = (addr + len - at).min(chunk);
            let v = &mut buf[..n.div_ceil(page)];
            // SAFETY: `v` has one byte per page of [at, at+n), as mincore requires.
            let r = unsafe { libc::mincore(at as *mut c_void, n, v.as_mut_ptr()) };
            if r != 0 {
                return Err(Errno::from_raw_os_error(
                    std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                ));
            }
            f(at, v);
            at += n;
        }
        Ok(())
    }
}

// SAFETY: every method is the kernel call it names, on the range it is given.
unsafe impl Os for LinuxOs {
    fn page_size(&self) -> usize {
        rustix::param::page_size()
    }

    fn map(&self, placement: Placement, len: usize, prot: HostProt) -> Result<usize, OsError> {
        match placement {
            Placement::Fixed(addr) => self
                .mmap(addr, len, prot, true)
                .map_err(|e| self.map_error(e, len, prot)),
            Placement::Anywhere {
                align,
                lowest,
                highest_end,
            } => self.map_anywhere(len, prot, align, lowest, highest_end),
            Placement::TopDown {
                align,
                lowest,
                highest_end,
            } => self.map_top_down(len, prot, align, lowest, highest_end),
            Placement::BottomUp {
                align,
                lowest,
                highest_end,
            } => self.map_bottom_up(len, prot, align, lowest, highest_end),
        }
    }

    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError> {
        // SAFETY: the engine unmaps only allocations it owns, after removing them from its
        // index; the memory is the caller's to give back.
        unsafe { mm::munmap(addr as *mut c_void, len) }.map_err(|e| {
            let kind = if e == Errno::NOMEM {
                OsErrorKind::MapCountLimit
            } else {
                OsErrorKind::Other
            };
            err(Syscall::Unmap, e, kind)
        })
    }

    #[inline(always)]
    fn protect(&self, addr: usize, len: usize, prot: HostProt) -> Result<(), OsError> {
        // SAFETY: changes protections only; the engine calls it on its own allocations or, for
        // VirtualProtect on foreign memory, on the range the caller named (as Windows does).
        unsafe { mm::mprotect(addr as *mut c_void, len, mprotect_flags(prot)) }.map_err(|e| {
            let kind = match e {
                Errno::NOMEM if near_map_limit() => OsErrorKind::MapCountLimit,
                Errno::NOMEM if prot.write() => OsErrorKind::CommitLimit,
                Errno::NOMEM => OsErrorKind::NotMapped,
                _ => OsErrorKind::Other,
            };
            err(Syscall::Protect, e, kind)
        })
    }

    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let flags = MapFlags::PRIVATE | MapFlags::FIXED;
        // SAFETY: MAP_FIXED replaces [addr, addr+len), which the engine owns (it holds the
        // allocation's operation lock); discarding its contents is the point of decommit.
        let r = unsafe { mm::mmap_anonymous(addr as *mut c_void, len, ProtFlags::empty(), flags) };
        match r {
            Ok(p) if p as usize == addr => Ok(()),
            Ok(_) => Err(err(Syscall::Replace, Errno::INVAL, OsErrorKind::Other)),
            Err(e) => {
                let kind = match e {
                    Errno::NOMEM if near_map_limit() => OsErrorKind::MapCountLimit,
                    Errno::NOMEM => OsErrorKind::OutOfAddressSpace,
                    _ => OsErrorKind::Other,
                };
                Err(err(Syscall::Replace, e, kind))
            }
        }
    }

    fn is_mapped(&self, addr: usize, len: usize) -> bool {
        self.mincore_chunks(addr, len, |_, _| {}).is_ok()
    }

    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let end = addr + len;
        // A gap taken by another thread between reading the maps and MAP_FIXED_NOREPLACE
        // (EEXIST) is left to it: read the maps again and fill what is still free (bounded).
        let exhausted = err(Syscall::Map, Errno::EXIST, OsErrorKind::AddressInUse);
        crate::os::retry::bounded(exhausted, || {
            let maps = match procmaps::mappings() {
                Ok(m) => m,
                Err(_) => return Some(Err(err(Syscall::Map, Errno::IO, OsErrorKind::Other))),
            };
            let mut gaps = Vec::new();
            let mut at = addr;
            for m in maps.iter().filter(|m| m.end > addr && m.start < end) {
                if m.start > at {
                    gaps.push((at, m.start));
                }
                at = at.max(m.end);
            }
            if at < end {
                gaps.push((at, end));
            }
            for (s, e) in gaps {
                match self.mmap(s, e - s, HostProt::NONE, true) {
                    Ok(_) => {}
                    Err(Errno::EXIST) => return None,
                    Err(x) => return Some(Err(self.map_error(x, e - s, HostProt::NONE))),
                }
            }
            Some(Ok(()))
        })
    }

    fn lazy_free(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let advise = |a| {
            // SAFETY: advice on the engine's own committed pages; MADV_FREE/DONTNEED may
            // discard their contents, which MEM_RESET allows.
            unsafe { mm::madvise(addr as *mut c_void, len, a) }
        };
        if !self.no_madv_free.load(Ordering::Relaxed) {
            match advise(mm::Advice::LinuxFree) {
                Ok(()) => return Ok(()),
                Err(Errno::INVAL) => self.no_madv_free.store(true, Ordering::Relaxed),
                Err(e) => return Err(err(Syscall::LazyFree, e, OsErrorKind::Other)),
            }
        }
        advise(mm::Advice::LinuxDontNeed).map_err(|e| err(Syscall::LazyFree, e, OsErrorKind::Other))
    }

    fn resident(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        let page = self.page_size();
        self.mincore_chunks(addr, len, |at, v| {
            let first = (at - addr) / page;
            for (o, b) in out[first..].iter_mut().zip(v) {
                *o = b & 1 != 0;
            }
        })
        .map_err(|e| err(Syscall::ResetUndo, e, OsErrorKind::NotMapped))
    }

    fn undo_lazy_free(
        &self,
        addr: usize,
        len: usize,
        writable: bool,
    ) -> Result<UndoReport, OsError> {
        reset_undo::undo_lazy_free(addr, len, writable)
    }

    fn lock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        // SAFETY: mlock only pins pages; it does not change their contents.
        unsafe { mm::mlock(addr as *mut c_void, len) }.map_err(|e| {
            let kind = match e {
                Errno::NOMEM | Errno::PERM | Errno::AGAIN => OsErrorKind::LockQuota,
                _ => OsErrorKind::Other,
            };
            err(Syscall::Lock, e, kind)
        })
    }

    fn lock_reading(&self, addr: usize, len: usize) -> Result<(), OsError> {
        // SAFETY: mlock2 only pins pages (MLOCK_ONFAULT: as they are faulted in).
        unsafe { mm::mlock_with(addr as *mut c_void, len, mm::MlockFlags::ONFAULT) }.map_err(
            |e| {
                let kind = match e {
                    Errno::NOMEM | Errno::PERM | Errno::AGAIN => OsErrorKind::LockQuota,
                    _ => OsErrorKind::Other,
                };
                err(Syscall::Lock, e, kind)
            },
        )?;
        // Bring the pages in by reading (best effort: pages that cannot be read, PROT_NONE
        // ones, come in — locked — when they are first touched).
        // SAFETY: the advice only faults pages in for reading; contents do not change.
        let _ = unsafe { mm::madvise(addr as *mut c_void, len, mm::Advice::LinuxPopulateRead) };
        Ok(())
    }

    fn unlock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        // SAFETY: munlock only unpins pages.
        unsafe { mm::munlock(addr as *mut c_void, len) }
            .map_err(|e| err(Syscall::Unlock, e, OsErrorKind::Other))
    }

    // --- The working set (engine/working_set.rs). ---

    fn page_out(&self, addr: usize, len: usize) -> Result<(), OsError> {
        procstat::page_out(addr, len)
    }

    fn lock_quota_exceeded(&self) -> bool {
        // Without CAP_IPC_LOCK the kernel enforces RLIMIT_MEMLOCK itself (mlock fails).
        if !procstat::has_cap_ipc_lock() {
            return false;
        }
        match (procstat::memlock_limit().0, procstat::status()) {
            (Some(limit), Some(s)) => s.locked > limit,
            _ => false,
        }
    }

    fn kernel_region(&self, addr: usize) -> KernelRegion {
        procmaps::kernel_region(addr, crate::vocab::layout::Layout::native().max_address + 1)
    }

    fn flush_instruction_cache(&self, _addr: usize, _len: usize) {
        // x86 keeps instruction and data caches coherent; a fence orders the writes.
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    fn real_memory(&self) -> bool {
        true
    }

    fn watch_supported(&self) -> bool {
        watch::supported()
    }

    fn watch_register(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let werr = |e: Errno| err(Syscall::Watch, e, OsErrorKind::Other);
        // Keep dirty reports at page granularity: no transparent huge pages here.
        // SAFETY: advice on memory the engine owns; it does not change contents.
        let _ = unsafe { mm::madvise(addr as *mut c_void, len, mm::Advice::LinuxNoHugepage) };
        watch::register(addr, len).map_err(werr)?;
        watch::protect(addr, len).map_err(werr)
    }

    fn watch_adopt(&self, addr: usize, len: usize) -> Result<(), OsError> {
        watch::register(addr, len).map_err(|e| err(Syscall::Watch, e, OsErrorKind::Other))
    }

    fn watch_scan(
        &self,
        addr: usize,
        len: usize,
        reset: bool,
        max: usize,
        out: &mut Vec<usize>,
    ) -> Result<(), OsError> {
        watch::scan_written(addr, len, reset, max, out)
            .map(|_| ())
            .map_err(|e| err(Syscall::Watch, e, OsErrorKind::Other))
    }

    fn watch_clean(&self, addr: usize, len: usize) -> Result<(), OsError> {
        watch::protect(addr, len).map_err(|e| err(Syscall::Watch, e, OsErrorKind::Other))
    }

    fn map_large(
        &self,
        placement: Placement,
        len: usize,
        prot: HostProt,
        page: usize,
    ) -> Result<usize, OsError> {
        large::map_large(self, placement, len, prot, page)
    }

    fn phys_reserve(&self, pages: usize) -> Result<(), OsError> {
        self.phys.reserve(pages, self.page_size())
    }

    fn phys_map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: HostProt,
    ) -> Result<(), OsError> {
        self.phys
            .map(addr, first, count, prot_flags(prot), self.page_size())
    }

    fn phys_discard(&self, first: usize, count: usize) -> Result<(), OsError> {
        self.phys.discard(first, count, self.page_size())
    }

    fn backing_new(
        &self,
        size: u64,
        large_page: Option<usize>,
        charge: bool,
    ) -> Result<BackingId, OsError> {
        sections::backing_new(self, size, large_page, charge)
    }

    fn backing_adopt_fd(&self, fd: i32) -> Result<BackingId, OsError> {
        Ok(sections::backing_adopt_fd(fd))
    }

    fn backing_close(&self, b: BackingId) {
        sections::backing_close(b)
    }

    fn backing_size(&self, b: BackingId) -> Result<u64, OsError> {
        sections::backing_size(b)
    }

    fn backing_set_size(&self, b: BackingId, size: u64) -> Result<(), OsError> {
        sections::backing_set_size(b, size)
    }

    fn backing_allocate(&self, b: BackingId, offset: u64, len: u64) -> Result<(), OsError> {
        sections::backing_allocate(b, offset, len)
    }

    fn backing_allocated(&self, b: BackingId, offset: u64) -> Result<(bool, u64), OsError> {
        sections::backing_allocated(b, offset)
    }

    fn map_view(&self, placement: Placement, len: usize, m: ViewMap) -> Result<usize, OsError> {
        sections::map_view(self, placement, len, m)
    }

    fn remap_view(&self, addr: usize, len: usize, m: ViewMap) -> Result<(), OsError> {
        sections::remap_view(self, addr, len, m)
    }

    fn unmap_view(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.unmap(addr, len)?;
        // The next view of this size tries this slot first (the hint path): the kernel keeps
        // the page tables of a range it just used and that neighbours live mappings.
        let _ = self.hint.compare_exchange(
            addr,
            addr + len,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        Ok(())
    }

    fn copied_run(&self, addr: usize, len: usize) -> Result<(bool, usize), OsError> {
        match pagemap::copied_run(addr, addr + len) {
            Some((c, end)) => Ok((c, end - addr)),
            // Without PAGEMAP_SCAN: the page map's entries, a chunk at a time.
            None => super::copied_run_by_pages(self, addr, len),
        }
    }

    fn copied(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        sections::copied(self.page_size(), addr, len, out)
    }

    fn flush_view(&self, addr: usize, len: usize) -> Result<(), OsError> {
        sections::flush_view(addr, len)
    }

    // ---- The NT layer's requests ----

    fn present_pages(
        &self,
        addr: usize,
        len: usize,
        f: &mut dyn FnMut(usize, crate::os::PresentPage),
    ) -> Result<(), OsError> {
        pagemap::present_pages(addr, addr + len, f)
            .map_err(|e| err(Syscall::ReadOwn, Errno::from_raw_os_error(e), OsErrorKind::Other))
    }

    fn mapped_file(&self, addr: usize) -> Option<crate::os::MappedFile> {
        let KernelRegion::Mapped(m) = self.kernel_region(addr) else {
            return None;
        };
        // The kernel names every file mapping of this process here (readable by the process
        // itself since Linux 4.3): the link's target is the path, `stat` through it the file.
        let link = format!("/proc/self/map_files/{:x}-{:x}", m.start, m.end);
        let path = rustix::fs::readlink(link.as_str(), Vec::new()).ok()?;
        let st = rustix::fs::stat(link.as_str()).ok()?;
        Some(crate::os::MappedFile {
            path: path.to_string_lossy().into_owned(),
            id: (st.st_dev as u64, st.st_ino as u64),
        })
    }

    fn read_own(&self, addr: usize, out: &mut [u8]) -> Result<(), OsError> {
        let local = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: out.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut c_void,
            iov_len: out.len(),
        };
        // SAFETY: the kernel copies from our own address space into `out` (ours, writable, of
        // the length given) and reports an unreadable source instead of faulting (libc: the
        // call is not among rustix's).
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        if n == out.len() as isize {
            Ok(())
        } else {
            let errno = if n < 0 {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EFAULT)
            } else {
                libc::EFAULT
            };
            Err(err(Syscall::ReadOwn, Errno::from_raw_os_error(errno), OsErrorKind::NotMapped))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::retry::MAX_ATTEMPTS;

    const G: usize = 0x10000;

    /// Whether any page of `[addr, addr+len)` is mapped.
    fn any_mapped(os: &LinuxOs, addr: usize, len: usize) -> bool {
        let p = os.page_size();
        (addr..addr + len).step_by(p).any(|a| os.is_mapped(a, p))
    }

    fn anywhere() -> Placement {
        Placement::Anywhere {
            align: G,
            lowest: G,
            highest_end: usize::MAX / 2,
        }
    }

    /// A trim `munmap` of the over-sized mapping that fails a few times is retried: the map
    /// succeeds, aligned, and no slack stays mapped.
    #[test]
    fn a_trim_refused_a_few_times_is_retried() {
        // SAFETY: the test maps and unmaps only fresh memory of its own.
        let os = unsafe { LinuxOs::new() };
        os.fail_munmaps.store(3, Ordering::Relaxed);
        let len = 3 * G;
        let b = os.map(anywhere(), len, HostProt::NONE).expect("map");
        assert_eq!(b % G, 0);
        assert!(os.is_mapped(b, len));
        let refused = std::mem::take(&mut *os.refused.lock().unwrap());
        for (a, l) in refused {
            assert!(a + l <= b || a >= b + len, "the result was trimmed");
            assert!(!any_mapped(&os, a, l), "slack {a:#x}+{l:#x} left mapped");
        }
        os.unmap(b, len).expect("unmap");
    }

    /// Issue 12 item 4: a trim the kernel keeps refusing (`vm.max_map_count`) never leaves
    /// the slack mapped and unlisted: the whole mapping is given back and the map fails with
    /// the map-count limit (ERROR_NOT_ENOUGH_MEMORY). Head trim refused, then (where there
    /// is a head) the tail trim refused after the head went.
    #[test]
    fn a_trim_the_kernel_keeps_refusing_fails_the_map_and_unmaps_everything() {
        for pass in [0, 1] {
            // SAFETY: the test maps and unmaps only fresh memory of its own.
            let os = unsafe { LinuxOs::new() };
            os.pass_munmaps.store(pass, Ordering::Relaxed);
            os.fail_munmaps.store(MAX_ATTEMPTS, Ordering::Relaxed);
            let len = 3 * G;
            let r = os.map(anywhere(), len, HostProt::NONE);
            let refused = std::mem::take(&mut *os.refused.lock().unwrap());
            let Err(e) = r else {
                // Only possible when the first mapping happened to be aligned (no head) and
                // the one trim (the tail) passed.
                assert_eq!(pass, 1, "the map succeeded although every trim failed");
                assert!(refused.is_empty());
                os.unmap(r.unwrap(), len).expect("unmap");
                continue;
            };
            assert_eq!(e.kind, OsErrorKind::MapCountLimit, "pass {pass}: {e:?}");
            // (MapCountLimit is ERROR_NOT_ENOUGH_MEMORY, 8: `Error::from_os`, a layer above.)
            assert_eq!(refused.len(), 1, "pass {pass}: one trim refused");
            let (a, l) = refused[0];
            // The over-sized mapping: len + align - page, starting at the head or ending at
            // the tail that was refused (a tail starts at an aligned end of the result; a
            // head, where there is one, starts unaligned).
            let over = len + G - os.page_size();
            let (lo, hi) = if a % G == 0 {
                (a + l - over, a + l)
            } else {
                assert_eq!(pass, 0, "the head passed");
                (a, a + over)
            };
            assert!(
                !any_mapped(&os, lo, hi - lo),
                "pass {pass}: part of {lo:#x}..{hi:#x} left mapped"
            );
            assert_eq!(os.fail_munmaps.load(Ordering::Relaxed), 0);
        }
    }
}
