//! The safe Rust face: RAII reservations, typed protections and errors, borrowed views.

use crate::engine::{MemoryInfo, Regions, Space, State};
use crate::error::{Error, Result};
use crate::os::linux::LinuxOs;
use crate::rules::protection::{readable, writable};
use crate::rules::requests::AllocFlavor;
use crate::win32::consts::*;

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
