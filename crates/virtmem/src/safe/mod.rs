//! The safe Rust face: RAII reservations, typed protections and errors, borrowed views.

use crate::engine::{as_owner, MemoryInfo, Space, State, WatchKind};
use crate::error::{Error, Result};
use crate::os::linux::LinuxOs;
use crate::rules::protection::{readable, writable};
use crate::rules::requests::AllocFlavor;
use crate::vocab::consts::*;

// Other processes (the safe face of OpenProcess, ReadProcessMemory, ...).
mod process;
pub use process::Process;
// Heaps (issue 16 item 4).
pub(crate) mod heap;
mod section;
pub use section::{
    GrowableFile, GrowableView, Section, SectionOptions, SectionProtect, UniqueView, View,
    ViewAccess,
};

/// A page protection (the base `PAGE_*` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protect {
    /// PAGE_NOACCESS.
    NoAccess,
    /// PAGE_READONLY.
    ReadOnly,
    /// PAGE_READWRITE.
    ReadWrite,
    /// PAGE_EXECUTE.
    Execute,
    /// PAGE_EXECUTE_READ.
    ExecuteRead,
    /// PAGE_EXECUTE_READWRITE.
    ExecuteReadWrite,
}

impl Protect {
    /// The Win32 value.
    ///
    /// ```
    /// assert_eq!(virtmem::Protect::ReadWrite.win32(), virtmem::win32::PAGE_READWRITE);
    /// ```
    pub const fn win32(self) -> u32 {
        match self {
            Protect::NoAccess => PAGE_NOACCESS,
            Protect::ReadOnly => PAGE_READONLY,
            Protect::ReadWrite => PAGE_READWRITE,
            Protect::Execute => PAGE_EXECUTE,
            Protect::ExecuteRead => PAGE_EXECUTE_READ,
            Protect::ExecuteReadWrite => PAGE_EXECUTE_READWRITE,
        }
    }

    /// The base protection of a Win32 value (modifier bits ignored), if it has one.
    ///
    /// ```
    /// use virtmem::Protect;
    /// assert_eq!(Protect::from_win32(0x204), Some(Protect::ReadWrite)); // RW | NOCACHE
    /// assert_eq!(Protect::from_win32(0), None);
    /// ```
    pub const fn from_win32(v: u32) -> Option<Protect> {
        Some(match v & 0xFF {
            PAGE_NOACCESS => Protect::NoAccess,
            PAGE_READONLY => Protect::ReadOnly,
            PAGE_READWRITE => Protect::ReadWrite,
            PAGE_EXECUTE => Protect::Execute,
            PAGE_EXECUTE_READ => Protect::ExecuteRead,
            PAGE_EXECUTE_READWRITE => Protect::ExecuteReadWrite,
            _ => return None,
        })
    }
}

fn native() -> &'static Space<LinuxOs> {
    Space::native()
}

/// A reservation of address space in this process, released when dropped.
///
/// Offsets are relative to the base; ranges are rounded out to whole pages, as on Windows.
/// Changing page state needs `&mut self`, so no safe call can change pages while a slice
/// borrowed from the reservation is alive. Every call acts only on the allocation this value
/// owns: if its base was released behind its back (through the Win32 face) and reused, the
/// call fails with [`Error::InvalidAddress`] and the new owner's memory is never touched.
///
/// ```
/// use virtmem::{Reservation, Protect, State};
/// let mut r = Reservation::new(64 * 1024)?;
/// assert_eq!(r.query(0)?.state, State::Reserve);
/// r.commit(4096, 4096, Protect::ReadWrite)?;
/// r.as_mut_slice(4096, 4)?.copy_from_slice(b"data");
/// r.decommit(4096, 4096)?;
/// r.commit(4096, 4096, Protect::ReadOnly)?;
/// assert_eq!(r.as_slice(4096, 4)?, &[0, 0, 0, 0]); // decommitted pages come back zeroed
/// # Ok::<(), virtmem::Error>(())
/// ```
#[derive(Debug)]
pub struct Reservation {
    base: usize,
    size: usize,
    id: u64,
    /// AWE frames this window owns (mapped into it by [`Reservation::map_physical`]): freed
    /// with it.
    frames: Vec<usize>,
}

impl Reservation {
    /// Reserves `size` bytes (rounded up to pages) wherever the system chooses (64 KiB
    /// aligned). Nothing is committed; the AllocationProtect is PAGE_NOACCESS.
    ///
    /// ```
    /// let r = virtmem::Reservation::new(1 << 40)?; // 1 TiB of address space costs nothing
    /// assert_eq!(r.base() as usize % 65536, 0);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn new(size: usize) -> Result<Reservation> {
        Self::make(0, size, MEM_RESERVE, Protect::NoAccess)
    }

    /// Reserves `size` bytes at `addr` (rounded down to 64 KiB), failing with
    /// [`Error::InvalidAddress`] if any of the range is in use.
    ///
    /// ```
    /// let r = virtmem::Reservation::new(1 << 20)?;
    /// let at = r.base() as usize;
    /// assert!(virtmem::Reservation::at(at, 4096).is_err()); // already reserved
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn at(addr: usize, size: usize) -> Result<Reservation> {
        if addr == 0 {
            return Err(Error::InvalidParameter("address 0"));
        }
        Self::make(addr, size, MEM_RESERVE, Protect::NoAccess)
    }

    /// Reserves at the highest free address that fits (MEM_TOP_DOWN).
    ///
    /// ```
    /// let r = virtmem::Reservation::top_down(65536)?;
    /// assert!(r.base() as usize > 0x7000_0000_0000);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn top_down(size: usize) -> Result<Reservation> {
        Self::make(0, size, MEM_RESERVE | MEM_TOP_DOWN, Protect::NoAccess)
    }

    /// Reserves and commits `size` bytes with `protect` in one step.
    ///
    /// ```
    /// use virtmem::{Reservation, Protect};
    /// let mut r = Reservation::committed(8192, Protect::ReadWrite)?;
    /// assert!(r.as_mut_slice(0, 8192)?.iter().all(|&b| b == 0));
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn committed(size: usize, protect: Protect) -> Result<Reservation> {
        Self::make(0, size, MEM_RESERVE | MEM_COMMIT, protect)
    }

    /// Reserves `size` bytes with MEM_WRITE_WATCH: the pages written since the reservation
    /// (or the last reset) can be listed with [`Reservation::written_pages`].
    ///
    /// ```
    /// use virtmem::{Reservation, Protect};
    /// let mut r = Reservation::write_watched(16 * 4096)?;
    /// r.commit(0, 16 * 4096, Protect::ReadWrite)?;
    /// r.as_mut_slice(5 * 4096, 1)?[0] = 1;
    /// assert_eq!(r.written_pages(0, 16 * 4096, true)?, [5 * 4096]);
    /// assert!(r.written_pages(0, 16 * 4096, false)?.is_empty());
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn write_watched(size: usize) -> Result<Reservation> {
        Self::make(0, size, MEM_RESERVE | MEM_WRITE_WATCH, Protect::NoAccess)
    }

    /// Reserves and commits `size` bytes of large pages (MEM_LARGE_PAGES): `size` must be a
    /// multiple of [`SystemInfo::large_page_minimum`]. Fails with
    /// [`Error::NoSystemResources`] when the kernel's huge-page pool cannot supply them.
    ///
    /// ```
    /// use virtmem::{Reservation, Protect, Error};
    /// let lp = virtmem::system_info().large_page_minimum;
    /// match Reservation::large_pages(lp, Protect::ReadWrite) {
    ///     Ok(mut r) => r.as_mut_slice(0, 1)?[0] = 1,
    ///     Err(Error::NoSystemResources(_)) => {} // no huge pages configured (vm.nr_hugepages)
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn large_pages(size: usize, protect: Protect) -> Result<Reservation> {
        Self::make(0, size, MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES, protect)
    }

    /// Reserves an AWE window of `size` bytes (MEM_PHYSICAL) into which
    /// [`PhysicalPages`] are mapped with [`Reservation::map_physical`].
    ///
    /// ```
    /// use virtmem::{Reservation, PhysicalPages};
    /// let mut w = Reservation::awe_window(4 * 4096)?;
    /// let mut pages = PhysicalPages::allocate(2)?;
    /// w.map_physical(0, &mut pages)?; // the window owns the frames now
    /// w.as_mut_slice(0, 1)?[0] = 42;
    /// let mut pages = w.unmap_physical(0, 2)?;
    /// w.map_physical(2 * 4096, &mut pages)?; // the same pages, elsewhere
    /// assert_eq!(w.as_slice(2 * 4096, 1)?[0], 42);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn awe_window(size: usize) -> Result<Reservation> {
        Self::make(0, size, MEM_RESERVE | MEM_PHYSICAL, Protect::ReadWrite)
    }

    /// Reserves a placeholder of `size` bytes (VirtualAlloc2 MEM_RESERVE_PLACEHOLDER), to
    /// split with [`Reservation::split_placeholder`] and fill with
    /// [`Reservation::replace_placeholder`].
    ///
    /// ```
    /// use virtmem::{Reservation, Protect};
    /// let mut ph = Reservation::placeholder(2 * 65536)?;
    /// let second = ph.split_placeholder(65536)?; // two placeholders of 64 KiB
    /// ph.replace_placeholder(Some(Protect::ReadWrite))?;
    /// ph.as_mut_slice(0, 1)?[0] = 1;
    /// assert_eq!(second.len(), 65536);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn placeholder(size: usize) -> Result<Reservation> {
        let s = native();
        let base = s.virtual_alloc2(
            0,
            size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            &[],
            AllocFlavor::default(),
        )?;
        Self::adopt(base)
    }

    /// Reserves `size` bytes inside `[lowest, highest]` aligned to `alignment` (VirtualAlloc2
    /// MEM_ADDRESS_REQUIREMENTS; 0 means no constraint).
    ///
    /// ```
    /// let r = virtmem::Reservation::within(65536, 0x2000_0000, 0x2FFF_FFFF, 0x10_0000)?;
    /// let b = r.base() as usize;
    /// assert!(b >= 0x2000_0000 && b + 65536 <= 0x3000_0000 && b % 0x10_0000 == 0);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn within(
        size: usize,
        lowest: usize,
        highest: usize,
        alignment: usize,
    ) -> Result<Reservation> {
        let s = native();
        let base = s.virtual_alloc2(
            0,
            size,
            MEM_RESERVE,
            PAGE_NOACCESS,
            &[crate::rules::ExtendedParameter::AddressRequirements {
                lowest,
                highest,
                alignment,
            }],
            AllocFlavor::default(),
        )?;
        Self::adopt(base)
    }

    /// Splits the first `len` bytes off this placeholder: `self` keeps them, the rest is
    /// returned as a placeholder of its own.
    pub fn split_placeholder(&mut self, len: usize) -> Result<Reservation> {
        self.range(0, len)?;
        if len >= self.size {
            return Err(Error::InvalidParameter("nothing left to split off"));
        }
        let base = self.base;
        self.owned(|s| s.virtual_free(base, len, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER))?;
        let rest = Self::adopt(base + len)?;
        let me = Self::adopt(base)?;
        self.adopted(me);
        Ok(rest)
    }

    /// Replaces this placeholder by ordinary memory in place (zero-filled; committed with
    /// `commit`, else reserved with PAGE_NOACCESS as AllocationProtect). On failure it stays
    /// a placeholder.
    pub fn replace_placeholder(&mut self, commit: Option<Protect>) -> Result<()> {
        let (ty, prot) = match commit {
            Some(p) => (
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                p.win32(),
            ),
            None => (MEM_RESERVE | MEM_REPLACE_PLACEHOLDER, PAGE_NOACCESS),
        };
        let (base, size) = (self.base, self.size);
        let base =
            self.owned(|s| s.virtual_alloc2(base, size, ty, prot, &[], AllocFlavor::default()))?;
        let me = Self::adopt(base)?;
        self.adopted(me);
        Ok(())
    }

    /// Maps `pages` into this AWE window at `offset` (MapUserPhysicalPages): the window takes
    /// the frames over (`pages` is left empty) and frees them when it is released. The pages
    /// of the window they go to must hold no frame yet (else [`Error::InvalidParameter`]:
    /// unmap first), so no frame is ever visible at two addresses. On failure `pages` keeps
    /// its frames.
    ///
    /// ```
    /// use virtmem::{Reservation, PhysicalPages};
    /// let mut w = Reservation::awe_window(4 * 4096)?;
    /// let mut pages = PhysicalPages::allocate(2)?;
    /// w.map_physical(0, &mut pages)?;
    /// w.as_mut_slice(0, 1)?[0] = 42;
    /// let mut pages = w.unmap_physical(0, 2)?; // the window gives the frames back
    /// w.map_physical(2 * 4096, &mut pages)?; // the same pages, elsewhere
    /// assert_eq!(w.as_slice(2 * 4096, 1)?[0], 42);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn map_physical(&mut self, offset: usize, pages: &mut PhysicalPages) -> Result<()> {
        let n = pages.frames.len();
        let p = native().layout().page_size;
        let at = self.range(offset, n.max(1) * p)?;
        if n == 0 {
            return Ok(());
        }
        if native().window_frames(at, n).iter().any(Option::is_some) {
            return Err(Error::InvalidParameter(
                "a page of the target range already holds a physical page",
            ));
        }
        self.owned(|s| s.map_physical_pages(at, n, Some(&pages.frames)))?;
        self.frames.append(&mut pages.frames);
        Ok(())
    }

    /// Unmaps `pages` pages of this AWE window at `offset` and gives back the frames that were
    /// mapped there, in address order.
    pub fn unmap_physical(&mut self, offset: usize, pages: usize) -> Result<PhysicalPages> {
        let at = self.range(offset, pages.max(1) * native().layout().page_size)?;
        let frames: Vec<usize> = native()
            .window_frames(at, pages)
            .into_iter()
            .flatten()
            .collect();
        self.owned(|s| s.map_physical_pages(at, pages, None))?;
        self.frames.retain(|f| !frames.contains(f));
        Ok(PhysicalPages { frames })
    }

    /// Takes ownership of the live allocation based at `base`.
    fn adopt(base: usize) -> Result<Reservation> {
        let s = native();
        let a = s
            .find(base)
            .filter(|a| a.base == base)
            .ok_or(Error::InvalidAddress("released concurrently"))?;
        Ok(Reservation {
            base,
            size: a.size,
            id: a.id,
            frames: Vec::new(),
        })
    }

    fn make(addr: usize, size: usize, ty: u32, protect: Protect) -> Result<Reservation> {
        let s = native();
        let base = s.virtual_alloc(addr, size, ty, protect.win32(), AllocFlavor::default())?;
        let id = s
            .allocation_id(base)
            .ok_or(Error::InvalidAddress("released concurrently"))?;
        let size = s.find(base).map_or(0, |a| a.size);
        Ok(Reservation {
            base,
            size,
            id,
            frames: Vec::new(),
        })
    }

    /// The base address.
    pub fn base(&self) -> *mut u8 {
        self.base as *mut u8
    }

    /// The size in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.size
    }

    /// Always false: a reservation has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether this reservation is still the allocation at its base (it may have been
    /// released through the Win32 face).
    ///
    /// ```
    /// let r = virtmem::Reservation::new(4096)?;
    /// assert!(r.is_live());
    /// unsafe { virtmem::win32::VirtualFree(r.base().cast(), 0, virtmem::win32::MEM_RELEASE) };
    /// assert!(!r.is_live()); // dropping it now does nothing
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn is_live(&self) -> bool {
        native().allocation_id(self.base) == Some(self.id)
    }

    /// Runs an engine operation that may only touch this reservation's own allocation.
    fn owned<R>(&self, f: impl FnOnce(&'static Space<LinuxOs>) -> Result<R>) -> Result<R> {
        as_owner(self.id, || f(native())).map_err(|e| {
            if self.is_live() {
                e
            } else {
                Error::InvalidAddress("the reservation was released")
            }
        })
    }

    /// Becomes `new` (the same range after a placeholder operation gave it a new identity).
    fn adopted(&mut self, new: Reservation) {
        self.id = new.id;
        self.size = new.size;
        // `new` (fresh from `adopt`, owning no frames) must not release what is now ours.
        std::mem::forget(new);
    }

    /// The absolute range of `[offset, offset+len)`, checked against this reservation.
    fn range(&self, offset: usize, len: usize) -> Result<usize> {
        if !self.is_live() {
            return Err(Error::InvalidAddress("the reservation was released"));
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.size && len > 0 => Ok(self.base + offset),
            _ => Err(Error::InvalidParameter("range outside the reservation")),
        }
    }

    /// Commits the pages touched by `[offset, offset+len)` with `protect` (MEM_COMMIT).
    /// Already committed pages keep their contents; new ones read as zero.
    pub fn commit(&mut self, offset: usize, len: usize, protect: Protect) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| {
            s.virtual_alloc(at, len, MEM_COMMIT, protect.win32(), AllocFlavor::default())
        })
        .map(|_| ())
    }

    /// Decommits the pages touched by `[offset, offset+len)`; their contents are lost.
    pub fn decommit(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.virtual_free(at, len, MEM_DECOMMIT))
    }

    /// Changes the protection of committed pages; returns the first page's old protection
    /// (the full Win32 value).
    ///
    /// ```
    /// use virtmem::{Reservation, Protect, win32::PAGE_READWRITE};
    /// let mut r = Reservation::committed(4096, Protect::ReadWrite)?;
    /// assert_eq!(r.protect(0, 4096, Protect::ReadOnly)?, PAGE_READWRITE);
    /// assert!(r.as_mut_slice(0, 1).is_err()); // no longer writable
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn protect(&mut self, offset: usize, len: usize, protect: Protect) -> Result<u32> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.virtual_protect(at, len, protect.win32()))
    }

    /// Makes the committed pages of the range guard pages with base protection `protect`
    /// (PAGE_GUARD): the first touch of each raises a one-shot guard-page violation (see
    /// [`crate::set_guard_page_handler`]). Returns the first page's old protection.
    pub fn guard(&mut self, offset: usize, len: usize, protect: Protect) -> Result<u32> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.virtual_protect(at, len, protect.win32() | PAGE_GUARD))
    }

    /// GetWriteWatch: the offsets of the pages of the range written since the reservation or
    /// the last reset, ascending; with `reset`, they become clean again.
    pub fn written_pages(&mut self, offset: usize, len: usize, reset: bool) -> Result<Vec<usize>> {
        let at = self.range(offset, len)?;
        let pages = self.owned(|s| s.get_write_watch(at, len, reset, usize::MAX))?;
        Ok(pages.into_iter().map(|p| p - self.base).collect())
    }

    /// ResetWriteWatch: every page of the range becomes clean.
    pub fn reset_write_watch(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.reset_write_watch(at, len))
    }

    /// MEM_RESET: the contents of the committed pages are no longer needed (the kernel may
    /// replace them by zeros at any moment). Until [`Reservation::reset_undo`] (or a decommit)
    /// the pages cannot be borrowed: [`Reservation::as_slice`] and
    /// [`Reservation::as_mut_slice`] fail with [`Error::NoAccess`], since bytes that change
    /// under a borrow would be undefined behaviour.
    ///
    /// ```
    /// use virtmem::{Reservation, Protect};
    /// let mut r = Reservation::committed(4096, Protect::ReadWrite)?;
    /// r.as_mut_slice(0, 1)?[0] = 1; // resident now: MEM_RESET has something to discard
    /// r.reset(0, 4096)?;
    /// assert!(r.as_slice(0, 1).is_err());
    /// let _ = r.reset_undo(0, 4096); // intact or not, the pages are stable again
    /// assert!(r.as_slice(0, 1).is_ok());
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn reset(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.virtual_alloc(at, len, MEM_RESET, PAGE_NOACCESS, AllocFlavor::default()))
            .map(|_| ())
    }

    /// MEM_RESET_UNDO: succeeds only if every byte reset earlier is intact; otherwise
    /// [`Error::ResetDataLost`] (some pages now read as zero).
    ///
    /// ```
    /// use virtmem::{Reservation, Protect};
    /// let mut r = Reservation::committed(4096, Protect::ReadWrite)?;
    /// r.as_mut_slice(0, 4)?.copy_from_slice(b"keep");
    /// r.reset(0, 4096)?;
    /// if r.reset_undo(0, 4096).is_ok() {
    ///     assert_eq!(r.as_slice(0, 4)?, b"keep");
    /// }
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn reset_undo(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| {
            s.virtual_alloc(
                at,
                len,
                MEM_RESET_UNDO,
                PAGE_NOACCESS,
                AllocFlavor::default(),
            )
        })
        .map(|_| ())
    }

    /// VirtualLock: keeps committed, accessible pages resident.
    pub fn lock(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.virtual_lock(at, len))
    }

    /// VirtualUnlock: fails with [`Error::NotLocked`] if any page is not locked.
    pub fn unlock(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        self.owned(|s| s.virtual_unlock(at, len))
    }

    /// VirtualQuery of the page at `offset`.
    pub fn query(&self, offset: usize) -> Result<MemoryInfo> {
        let at = self.range(offset, 1)?;
        native().query(at)
    }

    /// Checks that every page of the range belongs to this reservation, is committed, is no
    /// guard page, was not reset, and passes `ok` on its protection.
    fn check_pages(&self, offset: usize, len: usize, ok: fn(u32) -> bool) -> Result<usize> {
        let at = self.range(offset, len)?;
        let end = at + len;
        as_owner(self.id, || {
            let mut p = at;
            while p < end {
                let i = native().query(p)?;
                if !i.managed
                    || i.allocation_base != self.base
                    || i.state != State::Commit
                    || i.protect & PAGE_GUARD != 0
                    || !ok(i.protect)
                {
                    return Err(Error::NoAccess(
                        "the range has pages that are not accessible",
                    ));
                }
                p = i.base_address + i.region_size;
            }
            if !self.is_live() {
                return Err(Error::InvalidAddress("the reservation was released"));
            }
            if native().has_reset_pages(at, end) {
                return Err(Error::NoAccess(
                    "the range has pages reset by MEM_RESET (undo or decommit them first)",
                ));
            }
            Ok(at)
        })
    }

    /// The bytes of `[offset, offset+len)`, which must all be committed and readable.
    pub fn as_slice(&self, offset: usize, len: usize) -> Result<&[u8]> {
        let at = self.check_pages(offset, len, readable)?;
        // SAFETY: every page is committed and readable, and stays so while `self` is borrowed
        // (changing it needs `&mut self`).
        Ok(unsafe { std::slice::from_raw_parts(at as *const u8, len) })
    }

    /// The bytes of `[offset, offset+len)`, which must all be committed and writable.
    pub fn as_mut_slice(&mut self, offset: usize, len: usize) -> Result<&mut [u8]> {
        let at = self.check_pages(offset, len, writable)?;
        // SAFETY: every page is committed and writable; `&mut self` excludes every other view
        // and every state change for the slice's lifetime.
        Ok(unsafe { std::slice::from_raw_parts_mut(at as *mut u8, len) })
    }

    /// Releases the reservation now (MEM_RELEASE), reporting errors that `drop` would hide.
    pub fn release(mut self) -> Result<()> {
        self.release_now()
    }

    /// Releases the allocation if it is still ours, then frees the AWE frames it owned.
    fn release_now(&mut self) -> Result<()> {
        let base = self.base;
        let r = match self.owned(|s| s.virtual_free(base, 0, MEM_RELEASE)) {
            Err(_) if !self.is_live() => Ok(()),
            r => r,
        };
        if r.is_ok() {
            let frames = std::mem::take(&mut self.frames);
            if !frames.is_empty() {
                let _ = native().free_physical_pages(&frames);
            }
        }
        r
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Release only our own allocation: if the base was released through the Win32 face
        // and reused, the id differs and someone else's memory is left alone.
        let _ = self.release_now();
    }
}

/// AWE physical pages (AllocateUserPhysicalPages), freed when dropped. Mapping them into a
/// window ([`Reservation::map_physical`]) hands them over to the window, so a frame that a
/// borrowed slice can see is never freed or mapped a second time.
#[derive(Debug)]
pub struct PhysicalPages {
    frames: Vec<usize>,
}

impl PhysicalPages {
    /// Allocates `n` physical pages (zero-filled).
    pub fn allocate(n: usize) -> Result<PhysicalPages> {
        Ok(PhysicalPages {
            frames: native().allocate_physical_pages(n)?,
        })
    }

    /// Their frame numbers (what `AllocateUserPhysicalPages` returns).
    pub fn frames(&self) -> &[usize] {
        &self.frames
    }

    /// How many pages these are.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are none (all were mapped into windows).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl Drop for PhysicalPages {
    fn drop(&mut self) {
        if !self.frames.is_empty() {
            let _ = native().free_physical_pages(&self.frames);
        }
    }
}

/// VirtualQuery of any address of this process.
///
/// ```
/// let x = 5u32;
/// let info = virtmem::query(&x as *const u32 as usize)?;
/// assert_eq!(info.state, virtmem::State::Commit); // the stack is committed memory
/// # Ok::<(), virtmem::Error>(())
/// ```
pub fn query(addr: usize) -> Result<MemoryInfo> {
    native().query(addr)
}

/// Every region of this process's address space from `start` upwards.
///
/// ```
/// let n = virtmem::regions(0).take_while(|r| r.base_address < 0x1_0000_0000).count();
/// assert!(n >= 1);
/// ```
pub fn regions(start: usize) -> impl Iterator<Item = MemoryInfo> {
    native().regions(start)
}

/// Every allocation virtmem holds in this process, as `(base, size, id)` ascending, at one
/// instant (a diagnostic: ids tell a reused base from the allocation that was there before).
///
/// ```
/// let r = virtmem::Reservation::new(65536)?;
/// assert!(virtmem::allocations().iter().any(|a| a.0 == r.base() as usize));
/// # Ok::<(), virtmem::Error>(())
/// ```
pub fn allocations() -> Vec<(usize, usize, u64)> {
    native().allocations()
}

/// Chooses how new MEM_WRITE_WATCH allocations of this process track writes (existing ones
/// keep theirs). The default is [`WatchKind::Kernel`] where the kernel supports it, unless the
/// environment variable `VIRTMEM_WRITE_WATCH=signal` says otherwise.
pub fn set_write_watch_mode(kind: WatchKind) {
    native().set_write_watch_mode(kind)
}

/// The kind new MEM_WRITE_WATCH allocations get (the preferred one, or signals where the
/// kernel cannot track writes).
pub fn write_watch_mode() -> WatchKind {
    native().write_watch_mode()
}

/// What GetSystemInfo reports, in Rust types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemInfo {
    /// Page size.
    pub page_size: usize,
    /// Allocation granularity.
    pub allocation_granularity: usize,
    /// Lowest usable address.
    pub min_address: usize,
    /// Highest usable address.
    pub max_address: usize,
    /// Large-page size (0 if unsupported).
    pub large_page_minimum: usize,
}

/// The machine's memory (GlobalMemoryStatusEx): physical memory, the commit limit and what
/// is left of it, and this process's unmapped address space.
///
/// ```
/// let m = virtmem::memory_status()?;
/// assert!(m.avail_phys <= m.total_phys && m.load <= 100);
/// # Ok::<(), virtmem::Error>(())
/// ```
pub fn memory_status() -> Result<crate::engine::MemoryStatus> {
    native().memory_status()
}

// --- This process's memory (issue 15 item 2). ---

/// This process's memory counters (GetProcessMemoryInfo): faults, working set and peak,
/// pools, and virtmem's private commit and its peak.
///
/// ```
/// let c = virtmem::process_memory_counters()?;
/// assert!(c.working_set > 0 && c.peak_working_set >= c.working_set);
/// assert!(c.peak_private_usage >= c.private_usage);
/// # Ok::<(), virtmem::Error>(())
/// ```
pub fn process_memory_counters() -> Result<crate::engine::process_status::ProcessCounters> {
    native().process_counters()
}

/// The working-set limits (GetProcessWorkingSetSizeEx). The minimum is the VirtualLock
/// quota (`RLIMIT_MEMLOCK`).
///
/// ```
/// let w = virtmem::working_set_limits();
/// assert!(w.minimum <= w.maximum);
/// ```
pub fn working_set_limits() -> crate::engine::working_set::WorkingSetLimits {
    native().working_set_limits()
}

/// Sets the working-set limits (SetProcessWorkingSetSizeEx; `flags` are
/// QUOTA_LIMITS_HARDWS_* values, 0 to keep them). Raising the minimum raises the VirtualLock
/// quota. Errors as the Win32 call.
pub fn set_working_set_limits(minimum: usize, maximum: usize, flags: u32) -> Result<()> {
    native().set_working_set_limits(minimum, maximum, flags)
}

/// Pages out what can be paged out of virtmem's memory without losing data
/// (EmptyWorkingSet).
pub fn empty_working_set() -> Result<()> {
    native().empty_working_set()
}

/// Whether available memory is low or high now, by Windows' thresholds
/// (QueryMemoryResourceNotification's answer).
pub fn memory_resource_state() -> Result<crate::engine::process_status::MemoryResourceState> {
    native().memory_resource_state()
}

/// What data-execution prevention this process gets (no-execute pages, `READ_IMPLIES_EXEC`).
///
/// ```
/// let d = virtmem::dep_status();
/// assert_eq!(d.enforced(), d.nx && !d.read_implies_exec);
/// ```
pub fn dep_status() -> crate::engine::process_status::DepStatus {
    crate::engine::process_status::dep_status()
}

/// The page size, granularity and limits of this process.
///
/// ```
/// let s = virtmem::system_info();
/// assert_eq!(s.allocation_granularity, 65536);
/// ```
pub fn system_info() -> SystemInfo {
    let l = native().layout();
    SystemInfo {
        page_size: l.page_size,
        allocation_granularity: l.granularity,
        min_address: l.min_address,
        max_address: l.max_address,
        large_page_minimum: l.large_page_size,
    }
}
