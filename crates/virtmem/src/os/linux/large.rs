//! MEM_LARGE_PAGES: huge pages from the kernel's hugetlb pool (`MAP_HUGETLB`), committed and
//! resident at once (`MAP_POPULATE`). With `VIRTMEM_LARGE_PAGES=transparent` (opt-in,
//! best effort) ordinary memory aligned to the large-page size is used instead, with
//! `MADV_HUGEPAGE` and populated at once: the kernel then backs it with transparent huge pages
//! when it can, and with small pages when it cannot.

use super::{err, procmaps, prot_flags, LinuxOs};
use crate::os::{HostProt, OsError, OsErrorKind, Placement, Syscall};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags};
use std::ffi::c_void;

/// Whether the opt-in transparent-huge-page mode is on.
pub(crate) fn transparent() -> bool {
    super::sysfacts::env_is(c"VIRTMEM_LARGE_PAGES", &[b"transparent", b"thp"])
}

fn classify(e: Errno) -> OsError {
    let kind = match e {
        Errno::EXIST => OsErrorKind::AddressInUse,
        Errno::PERM | Errno::ACCESS => OsErrorKind::LockQuota,
        // ENOMEM / EINVAL from MAP_HUGETLB: the pool cannot supply the pages.
        _ => OsErrorKind::Other,
    };
    err(Syscall::MapLarge, e, kind)
}

/// One hugetlb mapping at `addr` (`fixed`: MAP_FIXED_NOREPLACE) or anywhere.
fn hugetlb(addr: usize, len: usize, prot: HostProt, fixed: bool) -> Result<usize, Errno> {
    let mut flags = MapFlags::PRIVATE | MapFlags::HUGETLB | MapFlags::POPULATE;
    if fixed {
        flags |= MapFlags::FIXED_NOREPLACE;
    }
    // SAFETY: a new anonymous mapping that replaces nothing (hint or NOREPLACE).
    let p =
        unsafe { mm::mmap_anonymous(addr as *mut c_void, len, prot_flags(prot), flags)? } as usize;
    if fixed && p != addr {
        // SAFETY: our own fresh mapping.
        let _ = unsafe { mm::munmap(p as *mut c_void, len) };
        return Err(Errno::EXIST);
    }
    Ok(p)
}

pub(crate) fn map_large(
    os: &LinuxOs,
    placement: Placement,
    len: usize,
    prot: HostProt,
    page: usize,
) -> Result<usize, OsError> {
    if page == 0 || len % page != 0 {
        return Err(err(Syscall::MapLarge, Errno::INVAL, OsErrorKind::Other));
    }
    if transparent() {
        let base = crate::os::Os::map(os, placement, len, prot)?;
        // SAFETY: advice on the mapping just made.
        unsafe {
            let _ = mm::madvise(base as *mut c_void, len, mm::Advice::LinuxHugepage);
            if prot.write() {
                let _ = mm::madvise(base as *mut c_void, len, mm::Advice::LinuxPopulateWrite);
            }
        }
        return Ok(base);
    }
    match placement {
        Placement::Fixed(addr) => hugetlb(addr, len, prot, true).map_err(classify),
        Placement::Anywhere {
            align,
            lowest,
            highest_end,
        } => {
            // The kernel aligns a hugetlb mapping to the huge-page size only: a larger
            // alignment (MEM_ADDRESS_REQUIREMENTS.Alignment above 2 MiB) is searched for.
            let p = hugetlb(0, len, prot, false).map_err(classify)?;
            if p >= lowest && p + len <= highest_end && p % align.max(page) == 0 {
                return Ok(p);
            }
            // A whole fresh mapping (bounded retries); if the kernel keeps refusing, fail
            // rather than leave it mapped and look elsewhere.
            os.munmap(p, len)
                .map_err(|e| err(Syscall::MapLarge, e, OsErrorKind::MapCountLimit))?;
            search(len, prot, align.max(page), lowest, highest_end, true)
        }
        Placement::TopDown {
            align,
            lowest,
            highest_end,
        } => search(len, prot, align.max(page), lowest, highest_end, true),
        Placement::BottomUp {
            align,
            lowest,
            highest_end,
        } => search(len, prot, align.max(page), lowest, highest_end, false),
    }
}

/// The highest (`top`) or lowest free `align`-aligned range inside `[lowest, highest_end)`,
/// in huge pages. Another thread may map the range between the search and the mmap: search again
/// (bounded, `crate::os::retry`; then out of address space, 8).
fn search(
    len: usize,
    prot: HostProt,
    align: usize,
    lowest: usize,
    highest_end: usize,
    top: bool,
) -> Result<usize, OsError> {
    let none = err(
        Syscall::MapLarge,
        Errno::NOMEM,
        OsErrorKind::OutOfAddressSpace,
    );
    crate::os::retry::bounded(none, || {
        let found = if top {
            procmaps::highest_free_range(len, align, lowest, highest_end)
        } else {
            procmaps::lowest_free_range(len, align, lowest, highest_end)
        };
        let Some(base) = found else {
            return Some(Err(none));
        };
        match hugetlb(base, len, prot, true) {
            Err(Errno::EXIST) => None,
            r => Some(r.map_err(classify)),
        }
    })
}
