//! Per-page state from the page tables: resident, mapping the shared zero page, swapped out.
//!
//! [`scan`] uses the `PAGEMAP_SCAN` ioctl of `/proc/self/pagemap` (Linux 6.7+), which reports
//! runs of pages with equal flags in one call and, unlike the older interfaces, tells a page
//! that maps the shared zero page (`PAGE_IS_PFNZERO`) from real data even for unprivileged
//! processes (the plain pagemap hides PFNs from them). Without the ioctl it falls back to
//! reading `/proc/self/pagemap` entries (bit 63 present, bit 62 swapped), or to `mincore` when
//! that file cannot be read; the zero page is then invisible ([`can_detect_zero_page`]).
//!
//! The build machines' linux-libc-dev headers predate `PAGEMAP_SCAN`, so its ABI
//! (`include/uapi/linux/fs.h`) is written out here by hand; the unit tests check it against the
//! running kernel.

use std::ffi::c_void;
use std::mem::size_of;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::io::Errno;
use rustix::ioctl::Opcode;

use super::procmaps::{ProcSelfFile, UpdateIoctl};

/// What the page tables say about one page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PageFlags {
    /// A physical page is mapped (possibly the shared zero page).
    pub(crate) present: bool,
    /// The page maps the shared zero page: it was read but never written (or its data was
    /// discarded and it was read since). Always false when [`can_detect_zero_page`] is false.
    pub(crate) pfn_zero: bool,
    /// The page is in swap.
    pub(crate) swapped: bool,
}

// ---------------------------------------------------------------------------------------------
// PAGEMAP_SCAN ABI (include/uapi/linux/fs.h, Linux 6.7+)
// ---------------------------------------------------------------------------------------------

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PmScanArg {
    pub(crate) size: u64,
    pub(crate) flags: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) walk_end: u64,
    pub(crate) vec: u64,
    pub(crate) vec_len: u64,
    pub(crate) max_pages: u64,
    pub(crate) category_inverted: u64,
    pub(crate) category_mask: u64,
    pub(crate) category_anyof_mask: u64,
    pub(crate) return_mask: u64,
}

/// `struct page_region`: the pages `[start, end)` all have the flags `categories`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PageRegion {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) categories: u64,
}

/// `PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg)`.
pub(crate) const PAGEMAP_SCAN: Opcode = 0xC060_6610;
const _: () = assert!(size_of::<PmScanArg>() == 96);
const _: () = assert!(size_of::<PageRegion>() == 24);
const _: () = assert!(PAGEMAP_SCAN == rustix::ioctl::opcode::read_write::<PmScanArg>(b'f', 16));

/// `PAGE_IS_PRESENT`.
const PAGE_IS_PRESENT: u64 = 1 << 3;
/// `PAGE_IS_FILE`: a file-backed (or shared anonymous) page.
const PAGE_IS_FILE: u64 = 1 << 2;
/// `PAGE_IS_SWAPPED`.
const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// `PAGE_IS_PFNZERO`.
const PAGE_IS_PFNZERO: u64 = 1 << 5;

/// Regions per `PAGEMAP_SCAN` call; a range with more runs takes several calls.
const REGIONS_PER_CALL: usize = 256;

/// `/proc/self/pagemap` entry bits.
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;

/// `/proc/self/pagemap`.
pub(crate) static PAGEMAP_FILE: ProcSelfFile = ProcSelfFile::new("/proc/self/pagemap", false);

/// Whether `PAGEMAP_SCAN` works: not yet known, yes, no.
static SCAN_MODE: AtomicU8 = AtomicU8::new(MODE_UNKNOWN);
const MODE_UNKNOWN: u8 = 0;
const MODE_IOCTL: u8 = 1;
const MODE_FALLBACK: u8 = 2;

/// Whether [`scan`] can tell pages that map the shared zero page (`PAGEMAP_SCAN` works). Probes
/// the kernel on the first call.
pub(crate) fn can_detect_zero_page() -> bool {
    match SCAN_MODE.load(Ordering::Relaxed) {
        MODE_IOCTL => true,
        MODE_FALLBACK => false,
        _ => {
            // Scan one page of this thread's stack: any result settles the mode.
            let probe = 0u64;
            let addr = std::hint::black_box(&probe) as *const u64 as usize;
            let mut out = crate::os::linux::metaheap::meta_vec();
            let _ = scan(addr, 1, &mut out);
            SCAN_MODE.load(Ordering::Relaxed) == MODE_IOCTL
        }
    }
}

/// Fills `out` (cleared first) with one entry per page of `[addr, addr+len)`, the range
/// widened to whole pages. Pages that nothing maps read as all false. Errors are `errno`
/// values: `EINVAL` for a range that wraps around, otherwise what the kernel said.
pub(crate) fn scan(
    addr: usize,
    len: usize,
    out: &mut impl crate::os::linux::metaheap::VecLike<PageFlags>,
) -> Result<(), i32> {
    out.clear();
    let ps = rustix::param::page_size();
    let start = addr & !(ps - 1);
    let end = addr
        .checked_add(len)
        .and_then(|e| e.checked_add(ps - 1))
        .map(|e| e & !(ps - 1))
        .ok_or(libc::EINVAL)?;
    let pages = (end - start) / ps;
    if pages == 0 {
        return Ok(());
    }
    out.resize(pages, PageFlags::default());
    let out = out.as_mut_slice();

    // Once PAGEMAP_SCAN has worked, a failure is an error, never a silent fallback: callers
    // trust `pfn_zero` whenever `can_detect_zero_page()` says so.
    let mode = SCAN_MODE.load(Ordering::Relaxed);
    if mode != MODE_FALLBACK {
        let unsupported =
            |e: Errno| mode == MODE_UNKNOWN && (e == Errno::NOTTY || e == Errno::INVAL);
        let no_procfs = |e: Errno| {
            mode == MODE_UNKNOWN && (e == Errno::NOENT || e == Errno::ACCESS || e == Errno::PERM)
        };
        match PAGEMAP_FILE.get() {
            Ok(fd) => match scan_ioctl(fd.as_fd(), start, end, ps, out) {
                Ok(()) => {
                    if mode == MODE_UNKNOWN {
                        SCAN_MODE.store(MODE_IOCTL, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(e) if unsupported(e) => SCAN_MODE.store(MODE_FALLBACK, Ordering::Relaxed),
                Err(e) => return Err(e.raw_os_error()),
            },
            Err(e) if no_procfs(e) => SCAN_MODE.store(MODE_FALLBACK, Ordering::Relaxed),
            Err(e) => return Err(e.raw_os_error()),
        }
    }
    // Without PAGEMAP_SCAN: pagemap entries, or mincore without procfs.
    out.fill(PageFlags::default());
    if let Ok(fd) = PAGEMAP_FILE.get() {
        if scan_pagemap_entries(fd.as_fd(), start, ps, out).is_ok() {
            return Ok(());
        }
        out.fill(PageFlags::default());
    }
    scan_mincore(start, end - start, out).map_err(|e| e.raw_os_error())
}

/// `PAGEMAP_SCAN` over `[start, end)` (page aligned), repeated while the output vector fills.
fn scan_ioctl(
    fd: BorrowedFd<'_>,
    start: usize,
    end: usize,
    ps: usize,
    out: &mut [PageFlags],
) -> rustix::io::Result<()> {
    let mut regions = [PageRegion::default(); REGIONS_PER_CALL];
    let mut cur = start;
    while cur < end {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            start: cur as u64,
            end: end as u64,
            vec: regions.as_mut_ptr() as u64,
            vec_len: REGIONS_PER_CALL as u64,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO,
            ..PmScanArg::default()
        };
        // SAFETY: PAGEMAP_SCAN takes a pointer to a `struct pm_scan_arg`, which `PmScanArg`
        // reproduces field for field (sizes checked at compile time, layout by the tests). Its
        // only output buffer is `regions`, valid for `vec_len` `struct page_region`s (layout
        // likewise reproduced by `PageRegion`). No flags: it only reads the page tables.
        let n = unsafe { rustix::ioctl::ioctl(fd, UpdateIoctl::<PAGEMAP_SCAN, _>::new(&mut arg)) }?;
        let n = usize::try_from(n).unwrap_or(0).min(REGIONS_PER_CALL);
        for r in &regions[..n] {
            let r_start = (r.start as usize).max(cur);
            let r_end = (r.end as usize).min(end);
            let flags = PageFlags {
                present: r.categories & PAGE_IS_PRESENT != 0,
                pfn_zero: r.categories & PAGE_IS_PFNZERO != 0,
                swapped: r.categories & PAGE_IS_SWAPPED != 0,
            };
            let mut page = r_start;
            while page < r_end {
                out[(page - start) / ps] = flags;
                page += ps;
            }
        }
        let walk_end = arg.walk_end as usize;
        if walk_end <= cur {
            // No progress: never loop forever on a kernel that misreports.
            return Err(Errno::IO);
        }
        cur = walk_end;
    }
    Ok(())
}

/// Fallback: the 64-bit entries of `/proc/self/pagemap` for the pages of `out`.
fn scan_pagemap_entries(
    fd: BorrowedFd<'_>,
    start: usize,
    ps: usize,
    out: &mut [PageFlags],
) -> rustix::io::Result<()> {
    const CHUNK: usize = 512;
    let mut buf = [0u8; CHUNK * 8];
    let first = (start / ps) as u64;
    let mut done = 0;
    while done < out.len() {
        let want = (out.len() - done).min(CHUNK) * 8;
        let offset = (first + done as u64) * 8;
        let got = rustix::io::pread(fd, &mut buf[..want], offset)?;
        let entries = got / 8;
        if entries == 0 {
            // Past the end of user space: nothing is mapped there.
            break;
        }
        for (i, raw) in buf[..entries * 8].chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(raw);
            let e = u64::from_ne_bytes(word);
            out[done + i] = PageFlags {
                present: e & PM_PRESENT != 0,
                pfn_zero: false,
                swapped: e & PM_SWAPPED != 0,
            };
        }
        done += entries;
    }
    Ok(())
}

/// Last resort: `mincore` says which pages are resident (and fails with `ENOMEM` where nothing
/// is mapped).
fn scan_mincore(start: usize, len: usize, out: &mut [PageFlags]) -> rustix::io::Result<()> {
    // A stack buffer, one byte per page, a chunk at a time: no heap.
    let ps = rustix::param::page_size();
    let mut buf = [0u8; 4096];
    let mut done = 0;
    while done < out.len() {
        let n = (out.len() - done).min(buf.len());
        let at = start + done * ps;
        let bytes = (n * ps).min(start + len - at);
        // SAFETY: mincore only inspects the page tables of [at, at+bytes) and writes one byte
        // per page into `buf`, which holds at least that many.
        let rc = unsafe { libc::mincore(at as *mut c_void, bytes, buf.as_mut_ptr()) };
        if rc != 0 {
            return Err(
                Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL)
            );
        }
        for (flags, v) in out[done..done + n].iter_mut().zip(buf) {
            *flags = PageFlags {
                present: v & 1 != 0,
                pfn_zero: false,
                swapped: false,
            };
        }
        done += n;
    }
    Ok(())
}

/// For pages `[start, end)` of a view: whether the first page is a private copy (present or
/// swapped, and not a page of the file), and where the run of pages with the same answer
/// ends. One or a few `PAGEMAP_SCAN` calls that skip unpopulated page tables: a large view
/// costs no more than its touched parts. `None` where the kernel lacks `PAGEMAP_SCAN`.
pub(crate) fn copied_run(start: usize, end: usize) -> Option<(bool, usize)> {
    if SCAN_MODE.load(Ordering::Relaxed) == MODE_FALLBACK {
        return None;
    }
    let file = PAGEMAP_FILE.get().ok()?;
    let mut regions = [PageRegion::default(); 8];
    let mut cur = start;
    // The copied pages after `start`, region by region, until the answer changes.
    let mut first: Option<bool> = None;
    let mut run_end = start;
    while cur < end {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            start: cur as u64,
            end: end as u64,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            category_inverted: PAGE_IS_FILE,
            category_mask: PAGE_IS_FILE,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE,
            ..PmScanArg::default()
        };
        // SAFETY: as in `scan_ioctl`: a `struct pm_scan_arg` and `regions` for `vec_len`
        // `struct page_region`s; no flags, so it only reads the page tables.
        let n = unsafe {
            rustix::ioctl::ioctl(file.as_fd(), UpdateIoctl::<PAGEMAP_SCAN, _>::new(&mut arg))
        }
        .ok()?;
        let n = usize::try_from(n).unwrap_or(0).min(regions.len());
        for r in &regions[..n] {
            let (rs, re) = ((r.start as usize).max(cur), (r.end as usize).min(end));
            if rs >= re {
                continue;
            }
            match first {
                None if rs == start => {
                    first = Some(true);
                    run_end = re;
                }
                // The first page is not copied: the run ends at the first copied page.
                None => return Some((false, rs)),
                Some(true) if rs == run_end => run_end = re,
                // A gap after the copied run: it ends there.
                Some(_) => return Some((true, run_end)),
            }
        }
        let walk_end = (arg.walk_end as usize).min(end);
        if walk_end <= cur {
            return None;
        }
        if first == Some(true) && run_end < walk_end {
            return Some((true, run_end));
        }
        cur = walk_end;
    }
    Some(match first {
        Some(true) => (true, run_end),
        _ => (false, end),
    })
}

// ---------------------------------------------------------------------------------------------
// The NT layer's working-set queries: the present pages of a range, with sharing facts
// ---------------------------------------------------------------------------------------------

/// `PAGE_IS_HUGE`: the page is part of a huge page (THP or hugetlb).
const PAGE_IS_HUGE: u64 = 1 << 6;
/// `/proc/self/pagemap` bit 61: the page is a file page or shared anonymous memory.
const PM_FILE_OR_SHARED: u64 = 1 << 61;
/// `/proc/self/pagemap` bit 56: the page is mapped exactly once.
const PM_EXCLUSIVE: u64 = 1 << 56;
/// `/proc/self/pagemap` bits 0–54: the page frame number (zero for unprivileged readers).
const PM_PFN: u64 = (1 << 55) - 1;
/// `/proc/kpageflags` bits (Documentation/admin-guide/mm/pagemap.rst).
const KPF_HUGE: u64 = 1 << 17;
const KPF_HWPOISON: u64 = 1 << 19;
const KPF_THP: u64 = 1 << 22;

/// Pages handled per batch (one `pread` of pagemap entries, one `move_pages`).
const BATCH: usize = 256;

/// Calls `f(page, facts)` for every present page of `[start, end)` (page aligned), in address
/// order. Reads the page tables only (`PAGEMAP_SCAN` to skip absent ranges where the kernel
/// has it, `/proc/self/pagemap` entries, `/proc/kpageflags` and `/proc/kpagecount` when the
/// process may read frame numbers, `move_pages` for the node): no page is faulted in.
pub(crate) fn present_pages(
    start: usize,
    end: usize,
    f: &mut dyn FnMut(usize, crate::os::PresentPage),
) -> Result<(), i32> {
    let ps = rustix::param::page_size();
    if start >= end {
        return Ok(());
    }
    let pagemap = PAGEMAP_FILE.get().map_err(|e| e.raw_os_error())?;
    let kpageflags = std::fs::File::open("/proc/kpageflags").ok();
    let kpagecount = std::fs::File::open("/proc/kpagecount").ok();
    let mut ctx = Batcher {
        pagemap: pagemap.as_fd(),
        kpageflags,
        kpagecount,
        ps,
    };
    if can_detect_zero_page() {
        let mut regions = [PageRegion::default(); REGIONS_PER_CALL];
        let mut cur = start;
        let mut ioctl_ok = true;
        while cur < end {
            let mut arg = PmScanArg {
                size: size_of::<PmScanArg>() as u64,
                start: cur as u64,
                end: end as u64,
                vec: regions.as_mut_ptr() as u64,
                vec_len: REGIONS_PER_CALL as u64,
                category_mask: PAGE_IS_PRESENT,
                return_mask: PAGE_IS_PRESENT | PAGE_IS_HUGE,
                ..PmScanArg::default()
            };
            // SAFETY: as in `scan_ioctl`: `arg` reproduces `struct pm_scan_arg`, `regions` is
            // valid for `vec_len` `struct page_region`s, and without flags the call only
            // reads the page tables.
            let r = unsafe {
                rustix::ioctl::ioctl(pagemap.as_fd(), UpdateIoctl::<PAGEMAP_SCAN, _>::new(&mut arg))
            };
            let Ok(n) = r else {
                ioctl_ok = false;
                break;
            };
            let n = usize::try_from(n).unwrap_or(0).min(REGIONS_PER_CALL);
            for r in &regions[..n] {
                let (s, e) = ((r.start as usize).max(cur), (r.end as usize).min(end));
                ctx.run(s, e, r.categories & PAGE_IS_HUGE != 0, f)?;
            }
            let walk_end = arg.walk_end as usize;
            if walk_end <= cur {
                return Err(libc::EIO);
            }
            cur = walk_end;
        }
        if ioctl_ok {
            return Ok(());
        }
    }
    // Without PAGEMAP_SCAN: every entry of the range, the present bit deciding.
    ctx.run(start, end, false, f)
}

struct Batcher<'a> {
    pagemap: BorrowedFd<'a>,
    kpageflags: Option<std::fs::File>,
    kpagecount: Option<std::fs::File>,
    ps: usize,
}

impl Batcher<'_> {
    /// Reports the present pages of `[s, e)` (`huge`: the scan said they are huge).
    fn run(
        &mut self,
        s: usize,
        e: usize,
        huge: bool,
        f: &mut dyn FnMut(usize, crate::os::PresentPage),
    ) -> Result<(), i32> {
        use std::os::unix::fs::FileExt;
        let ps = self.ps;
        let mut at = s;
        let mut raw = [0u8; BATCH * 8];
        while at < e {
            let n = ((e - at) / ps).min(BATCH);
            let want = n * 8;
            let got = rustix::io::pread(self.pagemap, &mut raw[..want], (at / ps) as u64 * 8)
                .map_err(|e| e.raw_os_error())?;
            let entries = got / 8;
            if entries == 0 {
                break;
            }
            let mut pages = [0usize; BATCH];
            let mut facts = [crate::os::PresentPage::default(); BATCH];
            let mut k = 0;
            for i in 0..entries {
                let mut w = [0u8; 8];
                w.copy_from_slice(&raw[i * 8..i * 8 + 8]);
                let v = u64::from_ne_bytes(w);
                if v & PM_PRESENT == 0 {
                    continue;
                }
                let pfn = v & PM_PFN;
                let mut fact = crate::os::PresentPage {
                    shared: v & PM_FILE_OR_SHARED != 0,
                    map_count: if v & PM_EXCLUSIVE != 0 { 1 } else { 2 },
                    huge,
                    bad: false,
                    node: 0,
                };
                if pfn != 0 {
                    let mut b = [0u8; 8];
                    if let Some(kf) = &self.kpageflags {
                        if kf.read_exact_at(&mut b, pfn * 8).is_ok() {
                            let flags = u64::from_ne_bytes(b);
                            fact.huge |= flags & (KPF_HUGE | KPF_THP) != 0;
                            fact.bad = flags & KPF_HWPOISON != 0;
                        }
                    }
                    if let Some(kc) = &self.kpagecount {
                        if kc.read_exact_at(&mut b, pfn * 8).is_ok() {
                            let c = u64::from_ne_bytes(b);
                            if c > 0 {
                                fact.map_count = u32::try_from(c).unwrap_or(u32::MAX);
                            }
                        }
                    }
                }
                pages[k] = at + i * ps;
                facts[k] = fact;
                k += 1;
            }
            if k > 0 {
                let mut ptrs = [core::ptr::null_mut::<c_void>(); BATCH];
                for (p, &a) in ptrs.iter_mut().zip(&pages[..k]) {
                    *p = a as *mut c_void;
                }
                let mut status = [0i32; BATCH];
                // SAFETY: move_pages(2) with a NULL node array only reports, for each of the
                // `k` addresses in `ptrs`, the node of its page into `status` (k entries); it
                // moves nothing and does not fault pages in. pid 0 is this process.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_move_pages,
                        0,
                        k as libc::c_ulong,
                        ptrs.as_mut_ptr(),
                        core::ptr::null::<i32>(),
                        status.as_mut_ptr(),
                        0,
                    )
                };
                for i in 0..k {
                    if rc == 0 && status[i] >= 0 {
                        facts[i].node = status[i] as u32;
                    }
                    f(pages[i], facts[i]);
                }
            }
            at += entries * ps;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustix::mm::{Advice, MapFlags, ProtFlags};
    use std::ptr::null_mut;

    /// Keeps the current thread on the CPU it runs on, until dropped.
    ///
    /// `MADV_FREE` hands pages to reclaim through a per-CPU batch; `MADV_PAGEOUT` drains only
    /// its own CPU's batch, so if the thread migrated in between, the pages would not be
    /// lazily freed yet and would survive the forced reclaim. Tests that use MADV_PAGEOUT to
    /// stand in for memory pressure pin themselves with this.
    pub(crate) struct PinToCpu {
        old: Option<libc::cpu_set_t>,
    }

    impl PinToCpu {
        pub(crate) fn new() -> PinToCpu {
            // SAFETY: cpu_set_t is plain data, for which all zeros is the empty set.
            let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: passes a cpu_set_t of the stated size for the kernel to fill.
            let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut old) };
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            if rc != 0 || cpu < 0 {
                return PinToCpu { old: None };
            }
            // SAFETY: as above; CPU_SET stays within the set (cpu is a valid CPU number).
            let rc = unsafe {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu as usize, &mut one);
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one)
            };
            PinToCpu {
                old: (rc == 0).then_some(old),
            }
        }
    }

    impl Drop for PinToCpu {
        fn drop(&mut self) {
            if let Some(old) = &self.old {
                // SAFETY: restores the set read in `new`.
                unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), old) };
            }
        }
    }

    fn ps() -> usize {
        rustix::param::page_size()
    }

    /// A private anonymous read-write mapping, unmapped on drop.
    pub(crate) struct Anon {
        pub(crate) base: usize,
        pub(crate) len: usize,
    }

    impl Anon {
        pub(crate) fn new(pages: usize) -> Anon {
            let len = pages * ps();
            // SAFETY: a fresh mapping that only this test uses.
            let p = unsafe {
                rustix::mm::mmap_anonymous(
                    null_mut(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )
            }
            .expect("mmap");
            Anon {
                base: p as usize,
                len,
            }
        }

        pub(crate) fn page(&self, i: usize) -> *mut u8 {
            (self.base + i * ps()) as *mut u8
        }

        pub(crate) fn advise(&self, first: usize, pages: usize, advice: Advice) {
            // SAFETY: inside our own mapping.
            unsafe { rustix::mm::madvise(self.page(first).cast(), pages * ps(), advice) }
                .expect("madvise");
        }
    }

    impl Drop for Anon {
        fn drop(&mut self) {
            // SAFETY: our own mapping.
            let _ = unsafe { rustix::mm::munmap(self.base as *mut c_void, self.len) };
        }
    }

    fn flags(a: &Anon) -> Vec<PageFlags> {
        let mut out = Vec::new();
        scan(a.base, a.len, &mut out).expect("scan");
        assert_eq!(out.len(), a.len / ps());
        out
    }

    fn fallback(a: &Anon) -> Vec<PageFlags> {
        let fd = PAGEMAP_FILE.get().unwrap();
        let mut out = vec![PageFlags::default(); a.len / ps()];
        scan_pagemap_entries(fd.as_fd(), a.base, ps(), &mut out).expect("pagemap read");
        out
    }

    const NONE: PageFlags = PageFlags {
        present: false,
        pfn_zero: false,
        swapped: false,
    };
    const DATA: PageFlags = PageFlags {
        present: true,
        pfn_zero: false,
        swapped: false,
    };
    const ZERO: PageFlags = PageFlags {
        present: true,
        pfn_zero: true,
        swapped: false,
    };

    #[test]
    fn pagemap_scan_works_here() {
        assert!(
            can_detect_zero_page(),
            "PAGEMAP_SCAN is expected on this kernel (6.7+)"
        );
        assert_eq!(SCAN_MODE.load(Ordering::Relaxed), MODE_IOCTL);
    }

    #[test]
    fn page_states() {
        let _pin = PinToCpu::new();
        let a = Anon::new(4);
        assert_eq!(flags(&a), vec![NONE; 4]);
        // SAFETY: writes and reads inside our own read-write mapping.
        unsafe {
            a.page(0).write_volatile(1);
            std::hint::black_box(a.page(1).read_volatile());
            a.page(2).write_volatile(2);
        }
        assert_eq!(flags(&a), vec![DATA, ZERO, DATA, NONE]);
        let fb = fallback(&a);
        assert_eq!(
            fb,
            vec![DATA, DATA, DATA, NONE],
            "pagemap entries cannot see the zero page"
        );
        let mut mc = vec![PageFlags::default(); 4];
        scan_mincore(a.base, a.len, &mut mc).unwrap();
        assert_eq!(mc, fb);

        // Lazily freed and then reclaimed: gone.
        a.advise(0, 3, Advice::LinuxFree);
        assert_eq!(
            flags(&a),
            vec![DATA, ZERO, DATA, NONE],
            "MADV_FREE alone keeps the pages"
        );
        a.advise(0, 3, Advice::LinuxPageOut);
        let after = flags(&a);
        assert!(!after[0].present && !after[2].present, "{after:?}");
        assert_eq!(after[3], NONE);
        assert_eq!(fallback(&a)[0], NONE);
        // Reading a discarded page maps the zero page.
        // SAFETY: inside our own mapping.
        assert_eq!(unsafe { a.page(0).read_volatile() }, 0);
        assert_eq!(flags(&a)[0], ZERO);
    }

    #[test]
    fn many_runs_need_several_calls() {
        // Alternating pages make one region per page: more than one output vector's worth.
        let pages = 3 * REGIONS_PER_CALL + 17;
        let a = Anon::new(pages);
        for i in (0..pages).step_by(2) {
            // SAFETY: inside our own mapping.
            unsafe { a.page(i).write_volatile(9) };
        }
        for i in (1..pages).step_by(4) {
            // SAFETY: inside our own mapping.
            std::hint::black_box(unsafe { a.page(i).read_volatile() });
        }
        let got = flags(&a);
        for (i, f) in got.iter().enumerate() {
            let expect = if i % 2 == 0 {
                DATA
            } else if i % 4 == 1 {
                ZERO
            } else {
                NONE
            };
            assert_eq!(*f, expect, "page {i}");
        }
        assert_eq!(
            fallback(&a).iter().filter(|f| f.present).count(),
            got.iter().filter(|f| f.present).count()
        );
    }

    #[test]
    fn odd_ranges() {
        let ps = ps();
        let a = Anon::new(3);
        // SAFETY: inside our own mapping.
        unsafe { a.page(1).write_volatile(1) };
        let mut out = vec![DATA; 9];
        // Unaligned start and length: widened to whole pages.
        scan(a.base + ps + 100, 10, &mut out).unwrap();
        assert_eq!(out, vec![DATA]);
        scan(a.base + ps - 1, 2, &mut out).unwrap();
        assert_eq!(out, vec![NONE, DATA]);
        scan(a.base, 0, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(scan(usize::MAX - ps, 2 * ps, &mut out), Err(libc::EINVAL));
        // A range that spills past the mapping is fine: unmapped pages read as nothing (unless
        // something else happens to be mapped right above, so only the length is checked).
        scan(a.base, 4 * ps, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[1], DATA);
    }
}
