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
//! The registration belongs to the process that made it: after `fork` the child has none
//! (see [`UffdGuard::child_reset`]).

use super::pagemap::{PageRegion, PmScanArg, PAGEMAP_FILE, PAGEMAP_SCAN};
use super::procmaps::UpdateIoctl;
use rustix::io::Errno;
use rustix::ioctl::Opcode;
use std::os::fd::{AsFd, OwnedFd};
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
    /// the descriptor; no ioctl is ever issued on it here). The child opens its own on first
    /// use, and re-registers kernel-watched allocations when a scan finds them unregistered
    /// (`engine/watch.rs`). Async-signal-safe (`close`).
    pub(crate) fn child_reset(&mut self) {
        *self.0 = None;
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
    with_uffd(|fd| {
        let mut r = UffdioRegister {
            range: UffdioRange {
                start: addr as u64,
                len: len as u64,
            },
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER takes a pointer to `struct uffdio_register`.
        unsafe { rustix::ioctl::ioctl(fd.as_fd(), UpdateIoctl::<UFFDIO_REGISTER, _>::new(&mut r)) }
            .map(|_| ())
    })
}

/// Write-protects `[addr, addr+len)`: every page becomes "not written".
pub(crate) fn protect(addr: usize, len: usize) -> Result<(), Errno> {
    with_uffd(|fd| {
        let mut w = UffdioWriteprotect {
            range: UffdioRange {
                start: addr as u64,
                len: len as u64,
            },
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        // SAFETY: UFFDIO_WRITEPROTECT takes a pointer to `struct uffdio_writeprotect`.
        unsafe {
            rustix::ioctl::ioctl(
                fd.as_fd(),
                UpdateIoctl::<UFFDIO_WRITEPROTECT, _>::new(&mut w),
            )
        }
        .map(|_| ())
    })
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
}
