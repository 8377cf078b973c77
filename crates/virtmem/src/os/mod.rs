//! The operating-system seam: everything virtmem asks of the kernel goes through [`Os`].
//!
//! The engine (`crate::engine`) decides *what* must happen by the Windows rules; an [`Os`]
//! implementation only does it. Three implementations live here:
//!
//! * [`linux::LinuxOs`]: real memory, through `rustix` (and `libc` for what rustix lacks).
//! * [`failing::FailingOs`]: wraps another backend and fails a chosen syscall, so tests can
//!   prove that every operation rolls back.
//! * [`sim::SimOs`]: a simulated address space (no real memory, deterministic).

#[cfg(any(test, feature = "internals"))]
pub mod failing;
pub mod linux;
pub(crate) mod retry;
pub mod sim;

use std::fmt;

/// A protection as the host kernel understands it (the `PROT_*` bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HostProt(u8);

impl HostProt {
    /// No access (`PROT_NONE`).
    pub const NONE: HostProt = HostProt(0);
    /// Readable.
    pub const READ: HostProt = HostProt(1);
    /// Writable.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub const WRITE: HostProt = HostProt(2);
    /// Executable.
    pub const EXEC: HostProt = HostProt(4);
    /// Read and write.
    pub const READ_WRITE: HostProt = HostProt(3);

    /// Builds a protection from its three permissions.
    pub const fn new(read: bool, write: bool, exec: bool) -> HostProt {
        HostProt((read as u8) | ((write as u8) << 1) | ((exec as u8) << 2))
    }
    /// Whether reading is allowed.
    pub const fn read(self) -> bool {
        self.0 & 1 != 0
    }
    /// Whether writing is allowed.
    pub const fn write(self) -> bool {
        self.0 & 2 != 0
    }
    /// Whether executing is allowed.
    pub const fn exec(self) -> bool {
        self.0 & 4 != 0
    }
    /// Whether the page can be touched at all.
    pub const fn any(self) -> bool {
        self.0 != 0
    }
}

impl fmt::Debug for HostProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.read() { 'r' } else { '-' };
        let w = if self.write() { 'w' } else { '-' };
        let x = if self.exec() { 'x' } else { '-' };
        write!(f, "{r}{w}{x}")
    }
}

/// Where a new anonymous mapping goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere the system likes, aligned to `align`, inside `[lowest, highest_end)`.
    Anywhere {
        /// Required alignment of the base (a power of two).
        align: usize,
        /// Lowest acceptable base.
        lowest: usize,
        /// Highest acceptable end (exclusive).
        highest_end: usize,
    },
    /// The lowest free range that fits, aligned to `align`, inside `[lowest, highest_end)`
    /// (Windows' own order inside an address window without MEM_TOP_DOWN).
    BottomUp {
        /// Required alignment of the base (a power of two).
        align: usize,
        /// Lowest acceptable base.
        lowest: usize,
        /// Highest acceptable end (exclusive).
        highest_end: usize,
    },
    /// The highest free range that fits, aligned to `align`, inside `[lowest, highest_end)`.
    TopDown {
        /// Required alignment of the base (a power of two).
        align: usize,
        /// Lowest acceptable base.
        lowest: usize,
        /// Highest acceptable end (exclusive).
        highest_end: usize,
    },
    /// Exactly here, and only if nothing is mapped there (never replaces a mapping).
    Fixed(usize),
}

/// Which kind of kernel call failed: used by the fault-injection backend and in error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syscall {
    /// A new anonymous mapping (`mmap` without `MAP_FIXED`, or with `MAP_FIXED_NOREPLACE`).
    Map,
    /// `munmap`.
    Unmap,
    /// `mprotect`.
    Protect,
    /// Fresh memory mapped over owned memory (`mmap(MAP_FIXED)`), as decommit does.
    Replace,
    /// `madvise(MADV_FREE)` / `MADV_DONTNEED`.
    LazyFree,
    /// `mlock`.
    Lock,
    /// `munlock`.
    Unlock,
    /// The residency / page-table queries and touches of MEM_RESET_UNDO.
    ResetUndo,
    /// Kernel write tracking (userfaultfd registration, write-protection, PAGEMAP_SCAN).
    Watch,
    /// Large pages (`MAP_HUGETLB`).
    MapLarge,
    /// The physical-page store of AWE (memfd size, mapping, discarding).
    Physical,
    /// A section's backing object or a view of it (memfd / file: size, allocation, mapping,
    /// flushing).
    Section,
    /// `process_vm_readv` on this process (a read that cannot fault).
    ReadOwn,
}

/// Why the kernel refused, classified for the Win32 error mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsErrorKind {
    /// No free address range of that size (or `RLIMIT_AS`).
    OutOfAddressSpace,
    /// The process would exceed the kernel's mapping count (`vm.max_map_count`).
    MapCountLimit,
    /// The kernel's commit accounting refused the charge.
    CommitLimit,
    /// `RLIMIT_MEMLOCK` (or no privilege to lock at all).
    LockQuota,
    /// Something is already mapped where a fixed mapping was asked for.
    AddressInUse,
    /// Part of the range is not mapped.
    NotMapped,
    /// The backend does not offer this at all (sections on a test backend, file-backed
    /// sections in the simulator).
    Unsupported,
    /// No space left to allocate a section's pages or grow its file (`ENOSPC`, `EFBIG`).
    NoSpace,
    /// Anything else (an argument the kernel refused, an unexpected errno).
    Other,
}

/// A failed kernel call: which call, the errno, and what it means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OsError {
    /// The call that failed.
    pub call: Syscall,
    /// The raw `errno` value.
    pub errno: i32,
    /// The classification used for the Win32 error code.
    pub kind: OsErrorKind,
}

impl fmt::Debug for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} failed with errno {} ({:?})",
            self.call, self.errno, self.kind
        )
    }
}

/// What the kernel has at an address virtmem does not manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelRegion {
    /// Nothing is mapped in `[start, end)`; `end` is the next mapping's start (or the top).
    Free {
        /// First free byte (page aligned).
        start: usize,
        /// First byte after the free gap.
        end: usize,
    },
    /// A kernel mapping (VMA) covers `[start, end)`.
    Mapped(ForeignMapping),
}

/// One kernel mapping that virtmem did not create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignMapping {
    /// Start of the mapping.
    pub start: usize,
    /// End of the mapping (exclusive).
    pub end: usize,
    /// Its protection.
    pub prot: HostProt,
    /// Whether it is a shared mapping.
    pub shared: bool,
    /// What backs it.
    pub backing: Backing,
}

/// What backs a foreign mapping; decides the Windows `Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous memory (heap, stacks, anonymous `mmap`): `MEM_PRIVATE`.
    Anonymous,
    /// A file mapped as part of a loaded executable or library: `MEM_IMAGE`.
    Image,
    /// Any other file mapping: `MEM_MAPPED`.
    File,
}

/// What MEM_RESET_UNDO found for one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UndoReport {
    /// Pages whose data is known intact (the lazy free is cancelled).
    pub intact: usize,
    /// Pages whose data was discarded (or could not be proven intact).
    pub lost: usize,
}

/// A section's backing object as the backend names it: a file descriptor the backend owns
/// (real memory) or a number (the simulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackingId(pub u64);

/// How a view maps (part of) a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewMap {
    /// The section's backing object.
    pub backing: BackingId,
    /// Byte offset in the backing object of the first mapped byte (page aligned).
    pub offset: u64,
    /// The kernel protection of the mapped pages.
    pub prot: HostProt,
    /// Copy-on-write (`MAP_PRIVATE`): writes make private copies, never reach the backing.
    pub private: bool,
}

fn no_sections() -> OsError {
    OsError {
        call: Syscall::Section,
        errno: 95, // EOPNOTSUPP
        kind: OsErrorKind::Unsupported,
    }
}

/// [`Os::copied_run`] from [`Os::copied`], a chunk of pages at a time (stops at the first
/// change).
pub(crate) fn copied_run_by_pages<O: Os + ?Sized>(
    os: &O,
    addr: usize,
    len: usize,
) -> Result<(bool, usize), OsError> {
    let p = os.page_size();
    let mut buf = [false; 512];
    let mut done = 0;
    let mut first = None;
    while done < len {
        let n = ((len - done) / p).min(buf.len());
        os.copied(addr + done, n * p, &mut buf[..n])?;
        let f = *first.get_or_insert(buf[0]);
        if let Some(k) = buf[..n].iter().position(|&c| c != f) {
            return Ok((f, done + k * p));
        }
        done += n * p;
    }
    Ok((first.unwrap_or(false), len))
}

/// The kernel operations the engine needs. Every method is one logical kernel request; a
/// failed request must leave the kernel as it was, except where a method says otherwise.
///
/// # Safety
///
/// The engine trusts an implementation's answers (what is mapped, with which protection,
/// which pages were written) when it hands out memory and decides what a fault may change:
/// an implementation must report the kernel's state truthfully and change only the ranges it
/// is asked to change.
pub unsafe trait Os: Send + Sync + 'static {
    /// The host page size in bytes.
    fn page_size(&self) -> usize;

    /// Maps fresh, zero-filled, private anonymous memory with protection `prot`. Writable memory
    /// is charged against the commit limit; `PROT_NONE` memory is not, and becomes charged when
    /// later made writable (never `MAP_NORESERVE`). Returns the base.
    fn map(&self, placement: Placement, len: usize, prot: HostProt) -> Result<usize, OsError>;

    /// Unmaps `[addr, addr+len)`.
    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Changes the protection of `[addr, addr+len)`. On failure part of the range may have
    /// changed (the kernel works VMA by VMA): the caller rolls back.
    fn protect(&self, addr: usize, len: usize, prot: HostProt) -> Result<(), OsError>;

    /// Replaces `[addr, addr+len)`, memory the caller owns, with fresh `PROT_NONE` memory:
    /// contents are discarded, the commit charge and any lock are dropped. On failure either
    /// nothing changed (the range is still fully mapped), or — older kernels' `MAP_FIXED`
    /// unmaps the whole range before mapping — the whole range was unmapped: nothing of the
    /// caller's is left in it, and anything mapped there afterwards is someone else's. The
    /// caller checks [`Os::is_mapped`] and then only fills the holes with
    /// [`Os::fill_holes`], never replacing or re-protecting what is mapped there.
    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Whether every page of `[addr, addr+len)` is mapped.
    fn is_mapped(&self, addr: usize, len: usize) -> bool;

    /// Maps fresh `PROT_NONE` memory into every unmapped page of `[addr, addr+len)`, never
    /// replacing anything (a page mapped meanwhile by someone else is left as it is). Used
    /// only to repair a failed replacement.
    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Marks `[addr, addr+len)` as "contents no longer needed" (`MADV_FREE`, or
    /// `MADV_DONTNEED` where the kernel lacks it).
    fn lazy_free(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Fills `out` (one entry per page of `[addr, addr+len)`) with whether each page is
    /// resident.
    fn resident(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError>;

    /// For each page of `[addr, addr+len)` that was lazily freed, proves its data intact and
    /// cancels the lazy free, or counts it lost. `writable` says whether the pages may be
    /// written by ordinary stores (else the backend must use another way to touch them).
    fn undo_lazy_free(
        &self,
        addr: usize,
        len: usize,
        writable: bool,
    ) -> Result<UndoReport, OsError>;

    /// Locks `[addr, addr+len)` in memory (`mlock`).
    fn lock(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Locks `[addr, addr+len)` in memory without writing to it: pages come in by read
    /// faults (so copy-on-write pages of a view stay shared until written), and pages
    /// faulted in later are locked too. Default: [`Os::lock`].
    fn lock_reading(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.lock(addr, len)
    }

    /// Unlocks `[addr, addr+len)` (`munlock`).
    fn unlock(&self, addr: usize, len: usize) -> Result<(), OsError>;

    // --- The working set (engine/working_set.rs): EmptyWorkingSet and the lock quota. ---

    /// Asks the kernel to take `[addr, addr+len)` out of the resident set now, without losing
    /// data (written to swap where there is swap). Default: nothing to do.
    fn page_out(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let _ = (addr, len);
        Ok(())
    }

    /// Whether the process now has more memory locked than its lock quota (the working-set
    /// minimum) where the kernel does not enforce that quota itself. Default: never.
    fn lock_quota_exceeded(&self) -> bool {
        false
    }

    /// What the kernel has at `addr` (used only for addresses virtmem does not manage).
    fn kernel_region(&self, addr: usize) -> KernelRegion;

    /// Copies `out.len()` bytes of this process's memory at `addr` into `out` without ever
    /// faulting: an unreadable byte fails the call (IsBadStringPtr reads strings this way).
    fn read_own(&self, addr: usize, out: &mut [u8]) -> Result<(), OsError> {
        let _ = (addr, out);
        Err(OsError {
            call: Syscall::ReadOwn,
            errno: 95, // EOPNOTSUPP
            kind: OsErrorKind::Unsupported,
        })
    }

    /// Makes instruction fetches see data written to `[addr, addr+len)`.
    fn flush_instruction_cache(&self, addr: usize, len: usize);

    /// Whether this is real memory of this process, whose faults reach its signal handlers
    /// (guard pages and signal-driven write watch rely on that).
    fn real_memory(&self) -> bool;

    /// Whether this backend simulates memory accesses itself (no real memory): accesses go
    /// through `Space::read` / `Space::write`, which raise guard-page and write-watch faults
    /// the way the signal handler does on real memory. Default: no.
    fn simulated_faults(&self) -> bool {
        false
    }

    /// Simulated backends only: copies the contents of `[addr, addr+buf.len())` into `buf`,
    /// without any protection check (the caller checked). Returns false if unsupported or
    /// not mapped.
    fn sim_read(&self, _addr: usize, _buf: &mut [u8]) -> bool {
        false
    }

    /// Simulated backends only: stores `bytes` at `addr` without any protection check (the
    /// caller checked), recording the write for kernel write tracking. Returns false if
    /// unsupported or not mapped.
    fn sim_write(&self, _addr: usize, _bytes: &[u8]) -> bool {
        false
    }

    /// Whether the kernel can track writes itself (see [`Os::watch_register`]).
    fn watch_supported(&self) -> bool;

    /// Starts kernel write tracking of `[addr, addr+len)`, with every page clean.
    fn watch_register(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Takes over tracking of `[addr, addr+len)` in this process after the registration was
    /// lost (a child after `fork`): every page then reads as written until cleaned.
    fn watch_adopt(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Lists, ascending, up to `max` pages of `[addr, addr+len)` written since they were last
    /// cleaned; with `reset`, cleans exactly the pages listed.
    fn watch_scan(
        &self,
        addr: usize,
        len: usize,
        reset: bool,
        max: usize,
        out: &mut Vec<usize>,
    ) -> Result<(), OsError>;

    /// Cleans every page of `[addr, addr+len)`.
    fn watch_clean(&self, addr: usize, len: usize) -> Result<(), OsError>;

    /// Maps `len` bytes of large pages of `page` bytes, committed and resident at once.
    /// Fails (never falls back to small pages silently) when none can be had: an error of
    /// kind `Other` means the pool had too few free pages, `LockQuota` no permission.
    fn map_large(
        &self,
        placement: Placement,
        len: usize,
        prot: HostProt,
        page: usize,
    ) -> Result<usize, OsError>;

    /// Makes sure the physical-page store (AWE) holds at least `pages` pages.
    fn phys_reserve(&self, pages: usize) -> Result<(), OsError>;

    /// Maps `count` consecutive physical pages starting at page `first` of the store at
    /// `addr`, replacing what is there (memory of an AWE window the caller owns).
    fn phys_map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: HostProt,
    ) -> Result<(), OsError>;

    /// Gives back the memory of `count` physical pages from `first` (they read as zero when
    /// handed out again).
    fn phys_discard(&self, first: usize, count: usize) -> Result<(), OsError>;
    // ---- Sections (file mappings). Backends without them keep these defaults. ----

    /// Creates a zero-filled, shared backing object of `size` bytes (a page multiple) for a
    /// pagefile-backed section; with `large_page`, of huge pages of that size. `charge` asks
    /// for the whole size to be charged against the commit limit now (SEC_COMMIT).
    fn backing_new(
        &self,
        _size: u64,
        _large_page: Option<usize>,
        _charge: bool,
    ) -> Result<BackingId, OsError> {
        Err(no_sections())
    }

    /// Takes ownership of descriptor `fd` (a file, or a named shared-memory object) as a
    /// backing object.
    fn backing_adopt_fd(&self, _fd: i32) -> Result<BackingId, OsError> {
        Err(no_sections())
    }

    /// Closes a backing object (views already mapped keep their pages).
    fn backing_close(&self, _b: BackingId) {}

    /// The backing object's current size in bytes.
    fn backing_size(&self, _b: BackingId) -> Result<u64, OsError> {
        Err(no_sections())
    }

    /// Grows (or sets) the backing object's size (`ftruncate`).
    fn backing_set_size(&self, _b: BackingId, _size: u64) -> Result<(), OsError> {
        Err(no_sections())
    }

    /// Allocates `[offset, offset+len)` of the backing object (`fallocate`): the pages then
    /// exist, and [`Os::backing_allocated`] reports them — the commit of a SEC_RESERVE
    /// section, visible to every process that maps it.
    fn backing_allocate(&self, _b: BackingId, _offset: u64, _len: u64) -> Result<(), OsError> {
        Err(no_sections())
    }

    /// Whether byte `offset` of the backing object is allocated, and where the run of equal
    /// answers that starts there ends (`lseek` `SEEK_DATA` / `SEEK_HOLE`; the end may lie past
    /// the object's size). Async-signal-safe on real memory.
    fn backing_allocated(&self, _b: BackingId, _offset: u64) -> Result<(bool, u64), OsError> {
        Err(no_sections())
    }

    /// Maps a view of `len` bytes at a fresh address chosen by `placement` (a fixed placement
    /// never replaces anything). Returns the base.
    fn map_view(&self, _placement: Placement, _len: usize, _m: ViewMap) -> Result<usize, OsError> {
        Err(no_sections())
    }

    /// Maps `[addr, addr+len)`, memory the caller owns, anew from a backing object
    /// (`MAP_FIXED`): a placeholder becoming a view, or pages of a view switching between
    /// shared and copy-on-write. Failure semantics as [`Os::replace_with_reserved`].
    fn remap_view(&self, _addr: usize, _len: usize, _m: ViewMap) -> Result<(), OsError> {
        Err(no_sections())
    }

    /// Unmaps a whole view (`munmap`). A backend may remember the range for the next view of
    /// the same size (a slot whose page tables the kernel can keep).
    fn unmap_view(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.unmap(addr, len)
    }

    /// For each page of `[addr, addr+len)` (a view), whether it is a private copy (a
    /// copy-on-write page that was written).
    fn copied(&self, _addr: usize, _len: usize, _out: &mut [bool]) -> Result<(), OsError> {
        Err(no_sections())
    }

    /// For pages `[addr, addr+len)` of a view: whether the first is a private copy, and the
    /// length in bytes of the run of pages with the same answer. Default: [`Os::copied`] a
    /// chunk at a time.
    fn copied_run(&self, addr: usize, len: usize) -> Result<(bool, usize), OsError> {
        copied_run_by_pages(self, addr, len)
    }


    /// Writes the modified pages of `[addr, addr+len)` (a view) to its backing object and
    /// waits for them (`msync(MS_SYNC)`).
    fn flush_view(&self, _addr: usize, _len: usize) -> Result<(), OsError> {
        Err(no_sections())
    }

    // ---- The NT layer's requests: working sets, mapped files ----

    /// Calls `f(page, facts)` for every page of `[addr, addr+len)` (page aligned) that is
    /// present in memory, in address order, without touching (faulting in) any page.
    /// Default: [`Os::resident`] a chunk at a time, with no sharing facts.
    fn present_pages(
        &self,
        addr: usize,
        len: usize,
        f: &mut dyn FnMut(usize, PresentPage),
    ) -> Result<(), OsError> {
        let page = self.page_size();
        let mut buf = [false; 512];
        let mut at = addr;
        let end = addr + len;
        while at < end {
            let n = ((end - at) / page).min(buf.len());
            self.resident(at, n * page, &mut buf[..n])?;
            for (i, &r) in buf[..n].iter().enumerate() {
                if r {
                    f(at + i * page, PresentPage::default());
                }
            }
            at += n * page;
        }
        Ok(())
    }

    /// The file mapped at `addr` (a kernel file mapping), if the backend can tell.
    fn mapped_file(&self, _addr: usize) -> Option<MappedFile> {
        None
    }
}

/// What the page tables say about one present page (the NT layer's working-set queries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PresentPage {
    /// A page of a file or of shared memory (it can be shared with other mappings).
    pub shared: bool,
    /// How many mappings map the page: exact when the kernel tells (privileged), else 1 when
    /// only this mapping maps it and 2 ("at least two") otherwise.
    pub map_count: u32,
    /// Part of a huge page.
    pub huge: bool,
    /// The page is hardware-poisoned (only known where the kernel's page flags are readable).
    pub bad: bool,
    /// The NUMA node holding the page.
    pub node: u32,
}

/// A file a kernel mapping maps: its path and identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    /// The path as the kernel names it.
    pub path: String,
    /// Device and inode: two mappings map the same file exactly when these are equal.
    pub id: (u64, u64),
}
// ---- end of the NT layer's block ----
