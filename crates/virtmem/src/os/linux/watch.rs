//! Kernel write tracking for MEM_WRITE_WATCH: userfaultfd write-protection in asynchronous
//! mode (`UFFD_FEATURE_WP_ASYNC`) plus the `PAGEMAP_SCAN` ioctl (Linux 6.7+).
//!
//! A watched range is registered for write-protection once and write-protected as a whole
//! (until then the kernel counts every page as written). A write to a protected page is
//! resolved by the kernel itself — no signal, no thread reading the descriptor — and the page
//! reads as `PAGE_IS_WRITTEN` in `PAGEMAP_SCAN` until protected again. One scan with
//! `PM_SCAN_WP_MATCHING` lists the written pages and re-protects exactly those it reports.
//! Writes the kernel makes into the range (`read(2)` into it) are tracked too.
//!
//! The registration belongs to the process that made it: after `fork` the child has none, and
//! `fork` drops the write-protect bits of the child's page table entries. The parent's state
//! is therefore read before the fork ([`carry`], no reset) and rebuilt in the child on its own
//! descriptor ([`UffdGuard::child_restore`]).

use super::pagemap::{PageRegion, PmScanArg, PAGEMAP_FILE, PAGEMAP_SCAN};
use super::procmaps::UpdateIoctl;
use rustix::io::Errno;
use rustix::ioctl::Opcode;
use super::metaheap::{meta_vec, MetaVec};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

/// `struct uffdio_api`.
#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_range`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct UffdioRange {
    start: u64,
    len: u64,
}

/// `struct uffdio_register`.
#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

/// `struct uffdio_writeprotect`.
#[repr(C)]
#[derive(Default)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

const UFFD_API: u64 = 0xAA;
const UFFDIO_API: Opcode = 0xC018_AA3F;
const UFFDIO_REGISTER: Opcode = 0xC020_AA00;
const UFFDIO_WRITEPROTECT: Opcode = 0xC018_AA06;
const _: () = assert!(UFFDIO_API == rustix::ioctl::opcode::read_write::<UffdioApi>(0xAA, 0x3F));
const _: () =
    assert!(UFFDIO_REGISTER == rustix::ioctl::opcode::read_write::<UffdioRegister>(0xAA, 0x00));
const _: () = assert!(
    UFFDIO_WRITEPROTECT == rustix::ioctl::opcode::read_write::<UffdioWriteprotect>(0xAA, 0x06)
);
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
const UFFD_USER_MODE_ONLY: u32 = 1;

const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;

/// The process's userfaultfd, with the pid that opened it (a child must open its own).
static UFFD: Mutex<Option<(u32, OwnedFd)>> = Mutex::new(None);

/// Opens and configures a userfaultfd for asynchronous write-protection.
fn open() -> Result<OwnedFd, Errno> {
    use rustix::mm::{userfaultfd, UserfaultfdFlags};
    let base = UserfaultfdFlags::CLOEXEC | UserfaultfdFlags::NONBLOCK;
    // SAFETY: creating a userfaultfd has no memory-safety preconditions.
    let fd = match unsafe { userfaultfd(base) } {
        Ok(fd) => fd,
        // Unprivileged users (vm.unprivileged_userfaultfd=0) may still track user-mode faults,
        // which is all write watching needs.
        Err(Errno::PERM) => unsafe {
            // SAFETY: as above.
            userfaultfd(base | UserfaultfdFlags::from_bits_retain(UFFD_USER_MODE_ONLY))?
        },
        Err(e) => return Err(e),
    };
    let mut api = UffdioApi {
        api: UFFD_API,
        features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API takes a pointer to `struct uffdio_api`, which UffdioApi reproduces.
    unsafe { rustix::ioctl::ioctl(&fd, UpdateIoctl::<UFFDIO_API, _>::new(&mut api)) }?;
    Ok(fd)
}

/// Runs `f` with this process's userfaultfd, opening it on first use (and again in a child
/// after `fork`).
fn with_uffd<R>(f: impl FnOnce(&OwnedFd) -> Result<R, Errno>) -> Result<R, Errno> {
    let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let mut g = UFFD.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref().is_none_or(|(pid, _)| *pid != me) {
        *g = Some((me, open()?));
    }
    f(&g.as_ref().expect("just set").1)
}

/// The userfaultfd's lock, held across `fork` (`engine/fork.rs`).
pub(crate) struct UffdGuard(std::sync::MutexGuard<'static, Option<(u32, OwnedFd)>>);

/// Takes the userfaultfd's lock for `fork`.
pub(crate) fn fork_lock() -> UffdGuard {
    UffdGuard(UFFD.lock().unwrap_or_else(|e| e.into_inner()))
}

impl UffdGuard {
    /// In a forked child: forgets the parent's userfaultfd (closing only the child's copy of
    /// the descriptor; no ioctl is ever issued on it here). Async-signal-safe (`close`).
    pub(crate) fn child_reset(&mut self) {
        *self.0 = None;
    }

    /// In a forked child, after [`UffdGuard::child_reset`]: rebuilds the parent's write-watch
    /// state on a userfaultfd of the child's own. `fork` drops the write-protect bits of the
    /// child's page table entries (its ranges are not registered), so every page present in
    /// memory would read as written; instead each carried allocation is registered again and
    /// exactly its pages the parent had not written are write-protected. The written ones
    /// are left alone: a page that is registered and not write-protected reads as written.
    ///
    /// Failure never under-reports: if the descriptor cannot be opened, the ranges stay
    /// unregistered and the first GetWriteWatch/ResetWriteWatch takes them over
    /// (`engine/watch.rs`: every present page reads as written until reset); if a
    /// registration fails, that allocation is left to the same fallback; if a write-protect
    /// fails, the pages not yet protected read as written. System calls only (`getpid`,
    /// `userfaultfd`, `ioctl`): no allocation, no lock.
    pub(crate) fn child_restore(&mut self, carried: &[Carried]) {
        if carried.is_empty() {
            return;
        }
        let Ok(fd) = open() else {
            return;
        };
        for c in carried {
            if register_on(fd.as_fd(), c.base, c.size).is_err() {
                continue;
            }
            for &(s, e) in &c.clean {
                if protect_on(fd.as_fd(), s, e - s).is_err() {
                    break;
                }
            }
        }
        let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
        *self.0 = Some((me, fd));
    }
}

/// Whether this kernel (and this user) can track writes without signals: asynchronous
/// userfaultfd write-protection and `PAGEMAP_SCAN` with `PAGE_IS_WRITTEN`.
pub(crate) fn supported() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        if with_uffd(|_| Ok(())).is_err() {
            return false;
        }
        // Prove it end to end on a scratch page: register, protect, write, scan.
        let page = rustix::param::page_size();
        // SAFETY: a fresh private mapping that nothing else knows about.
        let Ok(p) = (unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                page,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE,
            )
        }) else {
            return false;
        };
        let a = p as usize;
        let ok = register(a, page).is_ok() && protect(a, page).is_ok() && {
            let mut out = crate::os::linux::metaheap::meta_vec();
            let clean =
                scan_written(a, page, false, usize::MAX, &mut out).is_ok() && out.is_empty();
            // SAFETY: the page is ours and writable.
            unsafe { (p as *mut u8).write_volatile(1) };
            clean && scan_written(a, page, true, usize::MAX, &mut out).is_ok() && out[..] == [a]
        };
        // SAFETY: unmapping the scratch page made above.
        let _ = unsafe { rustix::mm::munmap(p, page) };
        ok
    })
}

/// Registers `[addr, addr+len)` for write-protect tracking.
pub(crate) fn register(addr: usize, len: usize) -> Result<(), Errno> {
    with_uffd(|fd| register_on(fd.as_fd(), addr, len))
}

/// Write-protects `[addr, addr+len)`: every page becomes "not written".
pub(crate) fn protect(addr: usize, len: usize) -> Result<(), Errno> {
    with_uffd(|fd| protect_on(fd.as_fd(), addr, len))
}

/// UFFDIO_REGISTER of `[addr, addr+len)` in write-protect mode on `fd`.
fn register_on(fd: BorrowedFd<'_>, addr: usize, len: usize) -> Result<(), Errno> {
    let mut r = UffdioRegister {
        range: UffdioRange {
            start: addr as u64,
            len: len as u64,
        },
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER takes a pointer to `struct uffdio_register`.
    unsafe { rustix::ioctl::ioctl(fd, UpdateIoctl::<UFFDIO_REGISTER, _>::new(&mut r)) }.map(|_| ())
}

/// UFFDIO_WRITEPROTECT (mode WP) of `[addr, addr+len)` on `fd`.
fn protect_on(fd: BorrowedFd<'_>, addr: usize, len: usize) -> Result<(), Errno> {
    let mut w = UffdioWriteprotect {
        range: UffdioRange {
            start: addr as u64,
            len: len as u64,
        },
        mode: UFFDIO_WRITEPROTECT_MODE_WP,
    };
    // SAFETY: UFFDIO_WRITEPROTECT takes a pointer to `struct uffdio_writeprotect`.
    unsafe { rustix::ioctl::ioctl(fd, UpdateIoctl::<UFFDIO_WRITEPROTECT, _>::new(&mut w)) }
        .map(|_| ())
}

/// One kernel-watched allocation's write-watch state, read by the parent in the `fork`
/// prepare handler (every allocation lock held: nothing changes it) so that the child can
/// rebuild it on its own userfaultfd ([`UffdGuard::child_restore`]).
pub(crate) struct Carried {
    /// The allocation (the range registered in the child).
    base: usize,
    size: usize,
    /// The committed page ranges the parent has *not* written since their last reset, as
    /// `(start, end)` addresses, ascending: the child write-protects exactly these.
    clean: MetaVec<(usize, usize)>,
}

/// Reads, without changing anything (no reset), which pages of the committed `spans`
/// (`(start, end)` addresses, ascending, inside `[base, base+size)`) are written, and keeps
/// the complement. `None` if the scan fails (e.g. this process never registered the range:
/// a child that has not yet taken it over); the child then keeps the conservative fallback.
/// Allocates only from the metadata heap.
pub(crate) fn carry(base: usize, size: usize, spans: &[(usize, usize)]) -> Option<Carried> {
    let mut clean = meta_vec();
    let mut written = meta_vec::<(usize, usize)>();
    for &(s, e) in spans {
        written_runs(s, e - s, &mut written).ok()?;
        let mut at = s;
        for &(ws, we) in &written {
            if ws > at {
                clean.push((at, ws));
            }
            at = at.max(we);
        }
        if at < e {
            clean.push((at, e));
        }
    }
    Some(Carried { base, size, clean })
}

/// The written pages of `[addr, addr+len)` as maximal `(start, end)` address runs, ascending,
/// into `out` (cleared first). Changes nothing (no `PM_SCAN_WP_MATCHING`).
fn written_runs(addr: usize, len: usize, out: &mut MetaVec<(usize, usize)>) -> Result<(), Errno> {
    out.clear();
    let fd = PAGEMAP_FILE.get()?;
    let end = addr + len;
    let mut regions = [PageRegion::default(); 64];
    let mut cur = addr;
    while cur < end {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            flags: PM_SCAN_CHECK_WPASYNC,
            start: cur as u64,
            end: end as u64,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            category_mask: PAGE_IS_WRITTEN,
            return_mask: PAGE_IS_WRITTEN,
            ..PmScanArg::default()
        };
        // SAFETY: PAGEMAP_SCAN takes `struct pm_scan_arg` (PmScanArg); its output buffer is
        // `regions`, valid for `vec_len` entries.
        let n = unsafe {
            rustix::ioctl::ioctl(fd.as_fd(), UpdateIoctl::<PAGEMAP_SCAN, _>::new(&mut arg))
        }?;
        for r in &regions[..usize::try_from(n).unwrap_or(0).min(regions.len())] {
            let (s, e) = (r.start as usize, r.end as usize);
            match out.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => out.push((s, e)),
            }
        }
        let walk_end = arg.walk_end as usize;
        if walk_end <= cur {
            break;
        }
        cur = walk_end;
    }
    Ok(())
}

/// Lists, in ascending order, up to `max` written pages of `[addr, addr+len)` into `out`
/// (cleared first). With `reset`, the pages reported — and only those — are write-protected
/// again in the same walk. Returns where the walk stopped.
pub(crate) fn scan_written(
    addr: usize,
    len: usize,
    reset: bool,
    max: usize,
    out: &mut impl crate::os::linux::metaheap::VecLike<usize>,
) -> Result<usize, Errno> {
    out.clear();
    let page = rustix::param::page_size();
    let fd = PAGEMAP_FILE.get()?;
    let end = addr + len;
    let mut regions = [PageRegion::default(); 64];
    let mut cur = addr;
    while cur < end && out.len() < max {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            flags: PM_SCAN_CHECK_WPASYNC | if reset { PM_SCAN_WP_MATCHING } else { 0 },
            start: cur as u64,
            end: end as u64,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            max_pages: (max - out.len()) as u64,
            category_mask: PAGE_IS_WRITTEN,
            return_mask: PAGE_IS_WRITTEN,
            ..PmScanArg::default()
        };
        // SAFETY: PAGEMAP_SCAN takes `struct pm_scan_arg` (PmScanArg); its output buffer is
        // `regions`, valid for `vec_len` entries.
        let n = unsafe {
            rustix::ioctl::ioctl(fd.as_fd(), UpdateIoctl::<PAGEMAP_SCAN, _>::new(&mut arg))
        }?;
        for r in &regions[..usize::try_from(n).unwrap_or(0).min(regions.len())] {
            let mut p = r.start as usize;
            while p < r.end as usize && out.len() < max {
                out.push(p);
                p += page;
            }
        }
        let walk_end = arg.walk_end as usize;
        if walk_end <= cur {
            break;
        }
        cur = walk_end;
    }
    Ok(cur.min(end))
}

/// A cheap pointer cast helper for tests.
#[cfg(test)]
fn byte(p: usize) -> *mut u8 {
    p as *mut u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};

    #[test]
    fn tracks_writes_and_resets_exactly() {
        if !supported() {
            eprintln!("skipped: no asynchronous userfaultfd write-protection here");
            return;
        }
        let ps = rustix::param::page_size();
        // SAFETY: fresh private mapping.
        let p = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                16 * ps,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .unwrap() as usize;
        register(p, 16 * ps).unwrap();
        protect(p, 16 * ps).unwrap();
        let mut out = Vec::new();
        scan_written(p, 16 * ps, false, 64, &mut out).unwrap();
        assert!(out.is_empty());
        for i in [1, 3, 5, 7] {
            // SAFETY: inside the mapping.
            unsafe { byte(p + i * ps).write_volatile(9) };
        }
        // Reading does not count.
        // SAFETY: inside the mapping.
        let _ = unsafe { byte(p + 9 * ps).read_volatile() };
        // A full array: only the reported pages are re-armed.
        scan_written(p, 16 * ps, true, 2, &mut out).unwrap();
        assert_eq!(out, [p + ps, p + 3 * ps]);
        scan_written(p, 16 * ps, false, 64, &mut out).unwrap();
        assert_eq!(out, [p + 5 * ps, p + 7 * ps]);
        // The kernel's own writes count: read(2) into page 11.
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&w, b"abc").unwrap();
        // SAFETY: page 11 is inside the mapping and writable.
        let buf = unsafe { std::slice::from_raw_parts_mut(byte(p + 11 * ps), 3) };
        assert_eq!(rustix::io::read(&r, buf).unwrap(), 3);
        scan_written(p, 16 * ps, true, 64, &mut out).unwrap();
        assert_eq!(out, [p + 5 * ps, p + 7 * ps, p + 11 * ps]);
        // SAFETY: our mapping.
        unsafe { munmap(p as *mut std::ffi::c_void, 16 * ps) }.unwrap();
    }

    /// What `fork` relies on: [`carry`] keeps exactly the unwritten committed pages and
    /// changes nothing; a registered page that is not write-protected reads as written (as
    /// does one un-protected with UFFDIO_WRITEPROTECT mode 0).
    #[test]
    fn carry_reads_without_reset_and_unprotected_pages_read_written() {
        if !supported() {
            eprintln!("skipped: no asynchronous userfaultfd write-protection here");
            return;
        }
        let ps = rustix::param::page_size();
        // SAFETY: fresh private mapping.
        let p = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                8 * ps,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .unwrap() as usize;
        register(p, 8 * ps).unwrap();
        protect(p, 8 * ps).unwrap();
        for i in [1, 2, 5] {
            // SAFETY: inside the mapping.
            unsafe { byte(p + i * ps).write_volatile(1) };
        }
        // SAFETY: inside the mapping (a read: not a write).
        let _ = unsafe { byte(p + 6 * ps).read_volatile() };
        let c = carry(p, 8 * ps, &[(p, p + 7 * ps)]).unwrap();
        assert_eq!(
            c.clean[..],
            [(p, p + ps), (p + 3 * ps, p + 5 * ps), (p + 6 * ps, p + 7 * ps)]
        );
        let mut out = Vec::new();
        scan_written(p, 8 * ps, false, 64, &mut out).unwrap();
        assert_eq!(out, [p + ps, p + 2 * ps, p + 5 * ps], "carry changed nothing");
        // Un-protecting a present page (mode 0) makes it read as written.
        let mut w = UffdioWriteprotect {
            range: UffdioRange {
                start: (p + 6 * ps) as u64,
                len: ps as u64,
            },
            mode: 0,
        };
        with_uffd(|fd| {
            // SAFETY: UFFDIO_WRITEPROTECT takes a pointer to `struct uffdio_writeprotect`.
            unsafe {
                rustix::ioctl::ioctl(fd, UpdateIoctl::<UFFDIO_WRITEPROTECT, _>::new(&mut w))
            }
        })
        .unwrap();
        scan_written(p, 8 * ps, false, 64, &mut out).unwrap();
        assert_eq!(out, [p + ps, p + 2 * ps, p + 5 * ps, p + 6 * ps]);
        // SAFETY: our mapping.
        unsafe { munmap(p as *mut std::ffi::c_void, 8 * ps) }.unwrap();
    }
}
