//! The safe Rust face: RAII reservations, typed protections and errors, borrowed views.

use crate::engine::{MemoryInfo, Regions, Space, State};
use crate::error::{Error, Result};
use crate::os::linux::LinuxOs;
use crate::rules::protection::{readable, writable};
use crate::rules::requests::AllocFlavor;
use crate::vocab::consts::*;

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
/// borrowed from the reservation is alive.
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
    /// let pages = PhysicalPages::allocate(2)?;
    /// w.map_physical(0, pages.frames())?;
    /// w.as_mut_slice(0, 1)?[0] = 42;
    /// w.unmap_physical(0, 2)?;
    /// w.map_physical(2 * 4096, pages.frames())?; // the same pages, elsewhere
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
        let s = native();
        s.virtual_free(self.base, len, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)?;
        let rest = Self::adopt(self.base + len)?;
        *self = Self::adopt(self.base)?;
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
        let base =
            native().virtual_alloc2(self.base, self.size, ty, prot, &[], AllocFlavor::default())?;
        *self = Self::adopt(base)?;
        Ok(())
    }

    /// Maps physical pages (frame numbers from [`PhysicalPages::frames`]) into this AWE
    /// window at `offset` (MapUserPhysicalPages).
    pub fn map_physical(&mut self, offset: usize, frames: &[usize]) -> Result<()> {
        let at = self.range(offset, frames.len().max(1) * native().layout().page_size)?;
        native().map_physical_pages(at, frames.len(), Some(frames))
    }

    /// Unmaps `pages` pages of this AWE window at `offset`.
    pub fn unmap_physical(&mut self, offset: usize, pages: usize) -> Result<()> {
        let at = self.range(offset, pages.max(1) * native().layout().page_size)?;
        native().map_physical_pages(at, pages, None)
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
        })
    }

    fn make(addr: usize, size: usize, ty: u32, protect: Protect) -> Result<Reservation> {
        let s = native();
        let base = s.virtual_alloc(addr, size, ty, protect.win32(), AllocFlavor::default())?;
        let id = s
            .allocation_id(base)
            .ok_or(Error::InvalidAddress("released concurrently"))?;
        let size = s.find(base).map_or(0, |a| a.size);
        Ok(Reservation { base, size, id })
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
        native()
            .virtual_alloc(at, len, MEM_COMMIT, protect.win32(), AllocFlavor::default())
            .map(|_| ())
    }

    /// Decommits the pages touched by `[offset, offset+len)`; their contents are lost.
    pub fn decommit(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        native().virtual_free(at, len, MEM_DECOMMIT)
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
        native().virtual_protect(at, len, protect.win32())
    }

    /// Makes the committed pages of the range guard pages with base protection `protect`
    /// (PAGE_GUARD): the first touch of each raises a one-shot guard-page violation (see
    /// [`crate::set_guard_page_handler`]). Returns the first page's old protection.
    pub fn guard(&mut self, offset: usize, len: usize, protect: Protect) -> Result<u32> {
        let at = self.range(offset, len)?;
        native().virtual_protect(at, len, protect.win32() | PAGE_GUARD)
    }

    /// GetWriteWatch: the offsets of the pages of the range written since the reservation or
    /// the last reset, ascending; with `reset`, they become clean again.
    pub fn written_pages(&mut self, offset: usize, len: usize, reset: bool) -> Result<Vec<usize>> {
        let at = self.range(offset, len)?;
        let pages = native().get_write_watch(at, len, reset, usize::MAX)?;
        Ok(pages.into_iter().map(|p| p - self.base).collect())
    }

    /// ResetWriteWatch: every page of the range becomes clean.
    pub fn reset_write_watch(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        native().reset_write_watch(at, len)
    }

    /// MEM_RESET: the contents of the committed pages are no longer needed (they may read
    /// as before or as zero until written).
    pub fn reset(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        native()
            .virtual_alloc(at, len, MEM_RESET, PAGE_NOACCESS, AllocFlavor::default())
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
        native()
            .virtual_alloc(
                at,
                len,
                MEM_RESET_UNDO,
                PAGE_NOACCESS,
                AllocFlavor::default(),
            )
            .map(|_| ())
    }

    /// VirtualLock: keeps committed, accessible pages resident.
    pub fn lock(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        native().virtual_lock(at, len)
    }

    /// VirtualUnlock: fails with [`Error::NotLocked`] if any page is not locked.
    pub fn unlock(&mut self, offset: usize, len: usize) -> Result<()> {
        let at = self.range(offset, len)?;
        native().virtual_unlock(at, len)
    }

    /// VirtualQuery of the page at `offset`.
    pub fn query(&self, offset: usize) -> Result<MemoryInfo> {
        let at = self.range(offset, 1)?;
        native().query(at)
    }

    /// Checks that every page of the range is committed and passes `ok` on its protection.
    fn check_pages(&self, offset: usize, len: usize, ok: fn(u32) -> bool) -> Result<usize> {
        let at = self.range(offset, len)?;
        let end = at + len;
        let mut p = at;
        while p < end {
            let i = native().query(p)?;
            if i.state != State::Commit || !ok(i.protect) {
                return Err(Error::NoAccess(
                    "the range has pages that are not accessible",
                ));
            }
            p = i.base_address + i.region_size;
        }
        Ok(at)
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
    pub fn release(self) -> Result<()> {
        let r = if self.is_live() {
            native().virtual_free(self.base, 0, MEM_RELEASE)
        } else {
            Ok(())
        };
        std::mem::forget(self);
        r
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Release only our own allocation: if the base was released through the Win32 face
        // and reused, the id differs and someone else's memory is left alone.
        if self.is_live() {
            let _ = native().virtual_free(self.base, 0, MEM_RELEASE);
        }
    }
}

/// AWE physical pages (AllocateUserPhysicalPages), freed when dropped.
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

    /// Their frame numbers, to pass to [`Reservation::map_physical`].
    pub fn frames(&self) -> &[usize] {
        &self.frames
    }
}

impl Drop for PhysicalPages {
    fn drop(&mut self) {
        let _ = native().free_physical_pages(&self.frames);
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
pub fn regions(start: usize) -> Regions<'static, LinuxOs> {
    native().regions(start)
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
        large_page_minimum: crate::win32::GetLargePageMinimum(),
    }
}
