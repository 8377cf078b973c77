//! virtmem's fault-driven features (write watch, guard pages) against the raw mechanisms,
//! measured in the same run (issue 5, item 4).
//!
//! Every criterion group holds one pair, `virtmem` and `raw`, so the report shows both side by
//! side and `scripts/bench-fault-ratios.sh` can print the virtmem/raw ratios from
//! `target/criterion/<group>/<fn>/new/estimates.json`. One iteration is one write, one scan or
//! one guard hit; re-arming happens outside the timed part (`iter_custom`).
//!
//! | group | virtmem | raw | goal |
//! |---|---|---|---|
//! | `ww_write` | a write to a clean, populated page of a MEM_WRITE_WATCH allocation, kernel path | a write to a populated page write-protected by a userfaultfd in `UFFD_FEATURE_WP_ASYNC` mode | ≤ 1.15× |
//! | `ww_scan_reset` | GetWriteWatch(WRITE_WATCH_FLAG_RESET) over 256 MiB, every 100th page dirty, kernel path | one `PAGEMAP_SCAN` with `PM_SCAN_WP_MATCHING \| PM_SCAN_CHECK_WPASYNC` over the same layout, pages listed in an array | ≤ 1.15× |
//! | `ww_signal_write` | `ww_write` on the signal path (`WatchKind::Signal`) | a write to a `PROT_READ` page whose SIGSEGV handler marks it dirty in a bitmap and mprotects it RW | ≤ 1.15× ("the same on the fallback path") |
//! | `ww_signal_scan_reset` | `ww_scan_reset` on the signal path | walk that bitmap, list the dirty pages, clear them, mprotect the listed span `PROT_READ` again | ≤ 1.15× |
//! | `guard_hit` | first touch of a PAGE_READWRITE\|PAGE_GUARD page, with a handler that continues | a SIGSEGV on a `PROT_NONE` page whose handler mprotects it RW and returns | none set (reported) |
//!
//! Re-arming is batched: one whole-range ResetWriteWatch / UFFDIO_WRITEPROTECT / VirtualProtect
//! / mprotect, not timed, then one timed write (or touch) to each of up to `BATCH` distinct pages.
//!
//! The raw signal handlers: virtmem installs its SIGSEGV handler once, at the first guard page
//! or signal-watched allocation, and chains faults that are not its own to the handler that
//! was there before. Installing the raw handler *before* that would make every raw fault pay
//! virtmem's lookup on the way through the chain; so instead each raw signal measurement swaps
//! the raw handler in with `sigaction` (saving whatever is installed, virtmem's handler
//! included), runs, and puts the saved action back, byte for byte. No virtmem-managed page
//! faults while the raw handler is installed, and the raw handler sees only the raw pages.
//! Both handlers are installed with the same flags (`SA_SIGINFO | SA_ONSTACK | SA_NODEFER`).
//!
//! Criterion measures the two sides of a pair one after the other, so a machine whose speed
//! drifts over seconds (a busy host, a small VM) moves its ratio. After each group an
//! interleaved cross-check therefore alternates the two sides ten times and prints
//! `interleaved <group> virtmem <ns> raw <ns> ratio <r>` (median of the per-round ratios;
//! `benches/common/mod.rs`, shared with `ops.rs` and `sections.rs`);
//! `scripts/bench-fault-ratios.sh` shows both ratios, and `--rounds N` takes medians over runs.
//! A filter on the command line skips the other groups' setup and cross-checks too.
//!
//! The kernel-path groups need Linux 6.7+ (PAGEMAP_SCAN) with userfaultfd available (root, or
//! `UFFD_USER_MODE_ONLY`); where virtmem falls back to signals they are skipped with a note.

mod common;

use common::{mmap_anon, mprotect, munmap, release, run_group, selected, PAGE};
use criterion::{criterion_group, criterion_main, Criterion};
use std::ffi::c_void;
use std::mem::{size_of, MaybeUninit};
use std::ptr::{self, null};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use virtmem::win32::{
    GetWriteWatch, ResetWriteWatch, VirtualAlloc, VirtualProtect, MEM_COMMIT, MEM_RESERVE,
    MEM_WRITE_WATCH, PAGE_GUARD, PAGE_READWRITE, TRUE, WRITE_WATCH_FLAG_RESET,
};
use virtmem::WatchKind;

/// Pages re-armed at once and then written one by one (64 MiB).
const BATCH: usize = 16 << 10;
/// The scanned region of the scan groups.
const SCAN_LEN: usize = 256 << 20;
const SCAN_PAGES: usize = SCAN_LEN / PAGE;
/// Every `DIRTY_EVERY`-th page is written before each scan (1 %).
const DIRTY_EVERY: usize = 100;
/// Pages dirty per scan: pages 0, 100, 200, …
const DIRTY: usize = SCAN_PAGES.div_ceil(DIRTY_EVERY);

// ---------------------------------------------------------------------------------------------
// Raw building blocks
// ---------------------------------------------------------------------------------------------

/// A read-write anonymous mapping of `len` bytes where the kernel likes.
fn mmap_rw(len: usize) -> usize {
    mmap_anon(0, len, libc::PROT_READ | libc::PROT_WRITE, 0).expect("mmap")
}

/// Writes one byte to each of the first `pages` pages at `base`.
///
/// # Safety
/// The pages must be mapped; writing them must be allowed or resolved by a fault handler.
#[inline(always)]
unsafe fn write_pages(base: usize, pages: usize) {
    for i in 0..pages {
        // SAFETY: inside the range (caller's contract).
        unsafe { ptr::write_volatile((base + i * PAGE) as *mut u8, i as u8) };
    }
}

/// Writes one byte to every `DIRTY_EVERY`-th page of the scan region at `base`.
///
/// # Safety
/// As for [`write_pages`], over `SCAN_LEN` bytes.
unsafe fn dirty_layout(base: usize) {
    for i in (0..SCAN_PAGES).step_by(DIRTY_EVERY) {
        // SAFETY: inside the region (caller's contract).
        unsafe { ptr::write_volatile((base + i * PAGE) as *mut u8, 7) };
    }
}

/// `iter_custom` body for the per-page groups: for `iters` writes, repeatedly re-arm (untimed)
/// up to `BATCH` pages, then time one write to each of them.
fn batched(iters: u64, mut rearm: impl FnMut(usize), mut run: impl FnMut(usize)) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(BATCH);
        rearm(n);
        let t = Instant::now();
        run(n);
        total += t.elapsed();
        left -= n;
    }
    total
}

// ----- userfaultfd (include/uapi/linux/userfaultfd.h) ----------------------------------------

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

const UFFD_API: u64 = 0xAA;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
/// `_IOWR(0xAA, 0x06, struct uffdio_writeprotect)`.
const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xC018_AA06;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
const UFFD_USER_MODE_ONLY: i32 = 1;

/// A userfaultfd of our own, in asynchronous write-protect mode (the same features virtmem
/// asks for). `None` where the kernel or the permissions do not allow it.
struct RawUffd(i32);

impl RawUffd {
    fn open() -> Option<RawUffd> {
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: userfaultfd(2) takes only flags.
        let mut fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as i32;
        if fd < 0 {
            // vm.unprivileged_userfaultfd=0: user-mode faults are all write tracking needs.
            // SAFETY: as above.
            fd =
                unsafe { libc::syscall(libc::SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY) } as i32;
        }
        if fd < 0 {
            return None;
        }
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API takes a `struct uffdio_api`, which UffdioApi reproduces.
        if unsafe { libc::ioctl(fd, UFFDIO_API, &mut api) } != 0 {
            // SAFETY: our descriptor.
            unsafe { libc::close(fd) };
            return None;
        }
        Some(RawUffd(fd))
    }

    fn register(&self, addr: usize, len: usize) {
        let mut r = UffdioRegister {
            range: UffdioRange {
                start: addr as u64,
                len: len as u64,
            },
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER takes a `struct uffdio_register`.
        let rc = unsafe { libc::ioctl(self.0, UFFDIO_REGISTER, &mut r) };
        assert_eq!(rc, 0, "UFFDIO_REGISTER");
    }

    /// Write-protects `[addr, addr+len)`: every page becomes "not written".
    fn protect(&self, addr: usize, len: usize) {
        let mut w = UffdioWriteprotect {
            range: UffdioRange {
                start: addr as u64,
                len: len as u64,
            },
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        // SAFETY: UFFDIO_WRITEPROTECT takes a `struct uffdio_writeprotect`.
        let rc = unsafe { libc::ioctl(self.0, UFFDIO_WRITEPROTECT, &mut w) };
        assert_eq!(rc, 0, "UFFDIO_WRITEPROTECT");
    }
}

impl Drop for RawUffd {
    fn drop(&mut self) {
        // SAFETY: our descriptor; closing it drops its registrations.
        unsafe { libc::close(self.0) };
    }
}

// ----- PAGEMAP_SCAN (include/uapi/linux/fs.h) -------------------------------------------------

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// Regions per raw scan call: enough for this layout's 656 one-page runs in one call.
const RAW_REGIONS: usize = 1024;

/// A raw GetWriteWatch(RESET) on the kernel path: `PAGEMAP_SCAN` of `/proc/self/pagemap`.
struct RawScanner {
    pagemap: i32,
    regions: Vec<PageRegion>,
}

impl RawScanner {
    fn new() -> RawScanner {
        // SAFETY: opening a procfs file; closed on drop.
        let fd = unsafe {
            libc::open(
                c"/proc/self/pagemap".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0, "open /proc/self/pagemap");
        RawScanner {
            pagemap: fd,
            regions: vec![PageRegion::default(); RAW_REGIONS],
        }
    }

    /// Lists into `out` (up to its length) the written pages of `[addr, addr+len)` and
    /// write-protects exactly those again; returns how many were listed.
    fn scan_reset(&mut self, addr: usize, len: usize, out: &mut [usize]) -> usize {
        let end = addr + len;
        let mut cur = addr;
        let mut n = 0;
        while cur < end && n < out.len() {
            let mut arg = PmScanArg {
                size: size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: cur as u64,
                end: end as u64,
                vec: self.regions.as_mut_ptr() as u64,
                vec_len: self.regions.len() as u64,
                max_pages: (out.len() - n) as u64,
                category_mask: PAGE_IS_WRITTEN,
                return_mask: PAGE_IS_WRITTEN,
                ..PmScanArg::default()
            };
            // SAFETY: PAGEMAP_SCAN takes a `struct pm_scan_arg`; its vector is `regions`.
            let got = unsafe { libc::ioctl(self.pagemap, PAGEMAP_SCAN, &mut arg) };
            assert!(got >= 0, "PAGEMAP_SCAN");
            for r in &self.regions[..got as usize] {
                for p in (r.start as usize..r.end as usize).step_by(PAGE) {
                    out[n] = p;
                    n += 1;
                }
            }
            if arg.walk_end as usize <= cur {
                break;
            }
            cur = arg.walk_end as usize;
        }
        n
    }
}

impl Drop for RawScanner {
    fn drop(&mut self) {
        // SAFETY: our descriptor.
        unsafe { libc::close(self.pagemap) };
    }
}

// ----- mprotect + SIGSEGV ----------------------------------------------------------------------

/// The raw signal-tracked region: `[RAW_BASE, RAW_BASE + RAW_LEN)`.
static RAW_BASE: AtomicUsize = AtomicUsize::new(0);
static RAW_LEN: AtomicUsize = AtomicUsize::new(0);
/// The raw tracker's dirty bitmap, one bit per page of the region (up to `SCAN_PAGES`).
static RAW_DIRTY: [AtomicU64; SCAN_PAGES / 64] = [const { AtomicU64::new(0) }; SCAN_PAGES / 64];

/// The address of a fault inside the raw region, page-aligned; else restores the default
/// action (the access faults again and the process dies as it would without a handler).
fn raw_fault_page(info: *mut libc::siginfo_t) -> Option<usize> {
    // SAFETY: the kernel passes a valid siginfo_t for SIGSEGV.
    let addr = unsafe { (*info).si_addr() } as usize;
    let base = RAW_BASE.load(Ordering::Relaxed);
    if addr.wrapping_sub(base) < RAW_LEN.load(Ordering::Relaxed) {
        return Some(addr & !(PAGE - 1));
    }
    // SAFETY: resetting a signal disposition is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGSEGV, &sa, ptr::null_mut());
    }
    None
}

/// The bare signal round trip: make the page read-write and retry.
extern "C" fn bare_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    if let Some(page) = raw_fault_page(info) {
        // SAFETY: a page of the raw region, which only this benchmark uses.
        unsafe {
            libc::mprotect(
                page as *mut c_void,
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
    }
}

/// Signal-driven write tracking: record the page in the bitmap, make it writable, retry.
extern "C" fn tracking_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    if let Some(page) = raw_fault_page(info) {
        let i = (page - RAW_BASE.load(Ordering::Relaxed)) / PAGE;
        RAW_DIRTY[i / 64].fetch_or(1 << (i % 64), Ordering::Relaxed);
        // SAFETY: a page of the raw region, which only this benchmark uses.
        unsafe {
            libc::mprotect(
                page as *mut c_void,
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
    }
}

type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void);

/// Runs `f` with `handler` as the SIGSEGV handler for faults in `[base, base+len)`, then puts
/// back whatever was installed before (virtmem's handler, if it is installed by then).
fn with_raw_handler<R>(handler: Handler, base: usize, len: usize, f: impl FnOnce() -> R) -> R {
    RAW_BASE.store(base, Ordering::SeqCst);
    RAW_LEN.store(len, Ordering::SeqCst);
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a zeroed sigaction is a valid value to fill in; `handler` has the SA_SIGINFO
    // signature; `old` receives the current action and is restored as it was.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &sa, old.as_mut_ptr()), 0);
    }
    let r = f();
    // SAFETY: restoring the action saved above.
    unsafe {
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, old.as_ptr(), ptr::null_mut()),
            0
        )
    };
    RAW_LEN.store(0, Ordering::SeqCst);
    r
}

/// A raw GetWriteWatch(RESET) on the signal path: lists the pages the bitmap marks dirty into
/// `out` (up to its length), clears their bits, and takes write access away from them again.
/// Pages between the listed ones are clean (read-only) already, so one mprotect over the span
/// from the first to the last listed page re-arms them all. Returns how many were listed.
fn raw_signal_scan_reset(base: usize, pages: usize, out: &mut [usize]) -> usize {
    let mut n = 0;
    'words: for (w, word) in RAW_DIRTY[..pages.div_ceil(64)].iter().enumerate() {
        let mut bits = word.load(Ordering::Relaxed);
        while bits != 0 {
            if n == out.len() {
                break 'words;
            }
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            word.fetch_and(!(1 << b), Ordering::Relaxed);
            out[n] = base + (w * 64 + b) * PAGE;
            n += 1;
        }
    }
    if n > 0 {
        mprotect(out[0], out[n - 1] + PAGE - out[0], libc::PROT_READ);
    }
    n
}

// ----- virtmem side ----------------------------------------------------------------------------

/// A committed, populated, clean MEM_WRITE_WATCH allocation tracked by `kind`, or `None` if
/// virtmem would track it some other way here.
fn virtmem_watched(len: usize, kind: WatchKind) -> Option<usize> {
    virtmem::set_write_watch_mode(kind);
    if virtmem::write_watch_mode() != kind {
        return None;
    }
    // SAFETY: a plain allocation, released by the caller.
    let p = unsafe {
        VirtualAlloc(
            null(),
            len,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        )
    } as usize;
    assert_ne!(p, 0, "VirtualAlloc MEM_WRITE_WATCH");
    // SAFETY: committed read-write; on the signal path each first write faults and is recorded.
    unsafe { write_pages(p, len / PAGE) };
    reset_ww(p, len);
    Some(p)
}

fn reset_ww(p: usize, len: usize) {
    // SAFETY: a range of a write-watched allocation.
    assert_eq!(unsafe { ResetWriteWatch(p as *const c_void, len) }, 0);
}

/// GetWriteWatch(RESET) into `out`; returns the count.
fn get_ww_reset(p: usize, len: usize, out: &mut [*mut c_void]) -> usize {
    let mut count = out.len();
    let mut gran = 0u32;
    // SAFETY: `out` holds `count` entries; count and granularity are writable.
    let r = unsafe {
        GetWriteWatch(
            WRITE_WATCH_FLAG_RESET,
            p as *const c_void,
            len,
            out.as_mut_ptr(),
            &mut count,
            &mut gran,
        )
    };
    assert_eq!(r, 0, "GetWriteWatch");
    count
}

fn skipped(group: &str) {
    eprintln!(
        "{group}: skipped (no asynchronous userfaultfd write-protection + PAGEMAP_SCAN here)"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. ww_write
// ---------------------------------------------------------------------------------------------

fn ww_write(c: &mut Criterion) {
    if !selected("ww_write") {
        return;
    }
    let len = BATCH * PAGE;
    let Some(v) = virtmem_watched(len, WatchKind::Kernel) else {
        return skipped("ww_write");
    };
    let Some(uffd) = RawUffd::open() else {
        release(v);
        return skipped("ww_write");
    };
    let r = mmap_rw(len);
    // SAFETY: mapped read-write.
    unsafe { write_pages(r, BATCH) };
    uffd.register(r, len);
    uffd.protect(r, len);

    // Both sides track: a batch of writes shows up as that many written pages.
    let mut out = vec![ptr::null_mut(); BATCH];
    // SAFETY: watched (kernel path) and uffd-protected pages: writes succeed and are recorded.
    unsafe { write_pages(v, 100) };
    assert_eq!(get_ww_reset(v, len, &mut out), 100);
    // SAFETY: as above.
    unsafe { write_pages(r, 100) };
    let mut raw_out = vec![0usize; BATCH];
    assert_eq!(RawScanner::new().scan_reset(r, len, &mut raw_out), 100);

    run_group(
        c,
        "ww_write",
        BATCH as u64,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    batched(
                        iters,
                        |n| reset_ww(v, n * PAGE),
                        // SAFETY: watched pages, writable on the kernel path.
                        |n| unsafe { write_pages(v, n) },
                    )
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    batched(
                        iters,
                        |n| uffd.protect(r, n * PAGE),
                        // SAFETY: our mapping; async uffd-wp resolves the faults in the kernel.
                        |n| unsafe { write_pages(r, n) },
                    )
                }),
            ),
        ],
    );

    release(v);
    drop(uffd);
    munmap(r, len);
}

// ---------------------------------------------------------------------------------------------
// 2. ww_scan_reset
// ---------------------------------------------------------------------------------------------

fn ww_scan_reset(c: &mut Criterion) {
    if !selected("ww_scan_reset") {
        return;
    }
    let Some(v) = virtmem_watched(SCAN_LEN, WatchKind::Kernel) else {
        return skipped("ww_scan_reset");
    };
    let Some(uffd) = RawUffd::open() else {
        release(v);
        return skipped("ww_scan_reset");
    };
    let r = mmap_rw(SCAN_LEN);
    // SAFETY: mapped read-write.
    unsafe { write_pages(r, SCAN_PAGES) };
    uffd.register(r, SCAN_LEN);
    uffd.protect(r, SCAN_LEN);
    let mut scanner = RawScanner::new();

    let mut out = vec![ptr::null_mut(); SCAN_PAGES];
    let mut raw_out = vec![0usize; SCAN_PAGES];
    // Both sides see the layout, and a reset leaves nothing behind.
    // SAFETY: watched (kernel path) / uffd-protected: writes succeed and are recorded.
    unsafe { dirty_layout(v) };
    assert_eq!(get_ww_reset(v, SCAN_LEN, &mut out), DIRTY);
    assert_eq!(get_ww_reset(v, SCAN_LEN, &mut out), 0);
    // SAFETY: as above.
    unsafe { dirty_layout(r) };
    assert_eq!(scanner.scan_reset(r, SCAN_LEN, &mut raw_out), DIRTY);
    assert_eq!(scanner.scan_reset(r, SCAN_LEN, &mut raw_out), 0);

    run_group(
        c,
        "ww_scan_reset",
        50,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // SAFETY: as above.
                        unsafe { dirty_layout(v) };
                        let t = Instant::now();
                        let n = get_ww_reset(v, SCAN_LEN, &mut out);
                        total += t.elapsed();
                        assert_eq!(n, DIRTY);
                    }
                    total
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // SAFETY: as above.
                        unsafe { dirty_layout(r) };
                        let t = Instant::now();
                        let n = scanner.scan_reset(r, SCAN_LEN, &mut raw_out);
                        total += t.elapsed();
                        assert_eq!(n, DIRTY);
                    }
                    total
                }),
            ),
        ],
    );

    release(v);
    drop(uffd);
    munmap(r, SCAN_LEN);
}

// ---------------------------------------------------------------------------------------------
// 3. ww_signal_write, ww_signal_scan_reset
// ---------------------------------------------------------------------------------------------

fn ww_signal_write(c: &mut Criterion) {
    if !selected("ww_signal_write") {
        return;
    }
    let len = BATCH * PAGE;
    let v = virtmem_watched(len, WatchKind::Signal).expect("the signal path is always there");
    let r = mmap_rw(len);
    // SAFETY: mapped read-write.
    unsafe { write_pages(r, BATCH) };
    mprotect(r, len, libc::PROT_READ);

    let mut out = vec![ptr::null_mut(); BATCH];
    // SAFETY: watched on the signal path: virtmem's handler records and allows the writes.
    unsafe { write_pages(v, 100) };
    assert_eq!(get_ww_reset(v, len, &mut out), 100);
    with_raw_handler(tracking_handler, r, len, || {
        let mut raw_out = vec![0usize; BATCH];
        // SAFETY: read-only pages of the raw region: the tracking handler makes them writable.
        unsafe { write_pages(r, 100) };
        assert_eq!(raw_signal_scan_reset(r, BATCH, &mut raw_out), 100);
    });

    run_group(
        c,
        "ww_signal_write",
        BATCH as u64,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    batched(
                        iters,
                        |n| reset_ww(v, n * PAGE),
                        // SAFETY: as above.
                        |n| unsafe { write_pages(v, n) },
                    )
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    with_raw_handler(tracking_handler, r, len, || {
                        batched(
                            iters,
                            |n| {
                                // Re-arm as raw_signal_scan_reset does: clear the bits, take write away.
                                for w in &RAW_DIRTY[..n.div_ceil(64)] {
                                    w.store(0, Ordering::Relaxed);
                                }
                                mprotect(r, n * PAGE, libc::PROT_READ);
                            },
                            // SAFETY: read-only pages of the raw region: the handler makes them writable.
                            |n| unsafe { write_pages(r, n) },
                        )
                    })
                }),
            ),
        ],
    );

    release(v);
    munmap(r, len);
}

fn ww_signal_scan_reset(c: &mut Criterion) {
    if !selected("ww_signal_scan_reset") {
        return;
    }
    let v = virtmem_watched(SCAN_LEN, WatchKind::Signal).expect("the signal path is always there");
    let r = mmap_rw(SCAN_LEN);
    // SAFETY: mapped read-write.
    unsafe { write_pages(r, SCAN_PAGES) };
    mprotect(r, SCAN_LEN, libc::PROT_READ);
    for w in &RAW_DIRTY {
        w.store(0, Ordering::Relaxed);
    }

    let mut out = vec![ptr::null_mut(); SCAN_PAGES];
    let mut raw_out = vec![0usize; SCAN_PAGES];
    // SAFETY: watched on the signal path: virtmem's handler records and allows the writes.
    unsafe { dirty_layout(v) };
    assert_eq!(get_ww_reset(v, SCAN_LEN, &mut out), DIRTY);
    assert_eq!(get_ww_reset(v, SCAN_LEN, &mut out), 0);
    with_raw_handler(tracking_handler, r, SCAN_LEN, || {
        // SAFETY: read-only pages of the raw region: the tracking handler makes them writable.
        unsafe { dirty_layout(r) };
        assert_eq!(raw_signal_scan_reset(r, SCAN_PAGES, &mut raw_out), DIRTY);
        assert_eq!(raw_signal_scan_reset(r, SCAN_PAGES, &mut raw_out), 0);
    });

    run_group(
        c,
        "ww_signal_scan_reset",
        5,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // SAFETY: as above.
                        unsafe { dirty_layout(v) };
                        let t = Instant::now();
                        let n = get_ww_reset(v, SCAN_LEN, &mut out);
                        total += t.elapsed();
                        assert_eq!(n, DIRTY);
                    }
                    total
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    with_raw_handler(tracking_handler, r, SCAN_LEN, || {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            // SAFETY: as above.
                            unsafe { dirty_layout(r) };
                            let t = Instant::now();
                            let n = raw_signal_scan_reset(r, SCAN_PAGES, &mut raw_out);
                            total += t.elapsed();
                            assert_eq!(n, DIRTY);
                        }
                        total
                    })
                }),
            ),
        ],
    );

    release(v);
    munmap(r, SCAN_LEN);
}

// ---------------------------------------------------------------------------------------------
// 4. guard_hit
// ---------------------------------------------------------------------------------------------

/// Guard-page violations the benchmark's handler has seen.
static GUARD_HITS: AtomicUsize = AtomicUsize::new(0);

fn guard_hit(c: &mut Criterion) {
    if !selected("guard_hit") {
        return;
    }
    let len = BATCH * PAGE;
    // SAFETY: the handler only uses atomics and memory it owns.
    unsafe {
        virtmem::set_guard_page_handler(Some(Box::new(|_| {
            GUARD_HITS.fetch_add(1, Ordering::Relaxed);
            true
        })))
    };
    // SAFETY: a plain allocation, released below.
    let v = unsafe { VirtualAlloc(null(), len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) } as usize;
    assert_ne!(v, 0, "VirtualAlloc");
    // SAFETY: committed read-write.
    unsafe { write_pages(v, BATCH) };
    let arm = |n: usize| {
        let mut old = 0u32;
        // SAFETY: committed pages of our allocation; `old` is writable.
        let ok = unsafe {
            VirtualProtect(
                v as *const c_void,
                n * PAGE,
                PAGE_READWRITE | PAGE_GUARD,
                &mut old,
            )
        };
        assert_eq!(ok, TRUE, "VirtualProtect PAGE_GUARD");
    };
    let r = mmap_rw(len);
    // SAFETY: mapped read-write.
    unsafe { write_pages(r, BATCH) };

    // One violation per page, and then the pages are plain read-write.
    arm(100);
    let before = GUARD_HITS.load(Ordering::Relaxed);
    // SAFETY: guard pages of our allocation; the handler continues.
    unsafe { write_pages(v, 100) };
    assert_eq!(GUARD_HITS.load(Ordering::Relaxed) - before, 100);
    // SAFETY: the guards are gone: no more violations.
    unsafe { write_pages(v, 100) };
    assert_eq!(GUARD_HITS.load(Ordering::Relaxed) - before, 100);

    run_group(
        c,
        "guard_hit",
        BATCH as u64,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    batched(
                        iters,
                        arm,
                        // SAFETY: guard pages of our allocation; the handler continues.
                        |n| unsafe { write_pages(v, n) },
                    )
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    with_raw_handler(bare_handler, r, len, || {
                        batched(
                            iters,
                            |n| mprotect(r, n * PAGE, libc::PROT_NONE),
                            // SAFETY: PROT_NONE pages of the raw region: the handler makes them RW.
                            |n| unsafe { write_pages(r, n) },
                        )
                    })
                }),
            ),
        ],
    );

    release(v);
    munmap(r, len);
    // SAFETY: the handler only uses atomics and memory it owns.
    unsafe { virtmem::set_guard_page_handler(None) };
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    targets = ww_write, ww_scan_reset, ww_signal_write, ww_signal_scan_reset, guard_hit
}
criterion_main!(benches);
