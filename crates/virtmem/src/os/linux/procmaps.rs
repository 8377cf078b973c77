//! The kernel's view of this process's address space.
//!
//! [`kernel_region`] answers "what does the kernel have at this address" for addresses virtmem
//! does not manage. It asks the `PROCMAP_QUERY` ioctl of `/proc/self/maps` (Linux 6.11+), which
//! costs well under a microsecond whatever the number of mappings, and falls back to parsing
//! `/proc/self/maps` (tens of microseconds to tens of milliseconds) when the kernel lacks the
//! ioctl. [`mappings`] parses the whole file; tests and the `MEM_TOP_DOWN` search
//! ([`highest_free_range`]) use it.
//!
//! The build machines' linux-libc-dev headers predate `PROCMAP_QUERY`, so its ABI
//! (`include/uapi/linux/fs.h`) is written out here by hand; the unit tests check it against the
//! running kernel.
//!
//! This module also holds two small helpers shared with its siblings `pagemap` and
//! `reset_undo`: [`ProcSelfFile`] (a `/proc/self` file kept open, safe across `fork`) and
//! [`UpdateIoctl`] (a pointer `ioctl` that returns the kernel's result).

use std::ffi::c_void;
use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::os::fd::AsRawFd;


use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::process::getpid;

use crate::os::{Backing, ForeignMapping, HostProt, KernelRegion};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// A file under `/proc/self`, opened once (with `O_CLOEXEC`) and kept open.
///
/// A `/proc/self` file is bound to the address space of the process that opened it: after
/// `fork` the child inherits the descriptor, and it still describes (and, for
/// `/proc/self/mem`, writes!) the *parent*. [`ProcSelfFile::get`] therefore hands out the cached
/// descriptor only inside the process that opened it, and opens a fresh one anywhere else.
pub(crate) struct ProcSelfFile {
    /// The path, e.g. `/proc/self/maps`.
    path: &'static str,
    /// Whether to open it read-write (else read-only).
    write: bool,
    /// The process that opened the cached descriptor (high 32 bits) and the descriptor (low
    /// 32 bits); 0 before the first open. One atomic, set by compare-and-swap: no lock, so a
    /// `fork` at any instant leaves the child nothing half-initialized to wait for.
    cached: AtomicU64,
}

/// A descriptor handed out by [`ProcSelfFile::get`]: the cached one, or a fresh one owned by
/// the caller (in a forked child).
pub(crate) enum ProcFd<'a> {
    /// The process-wide descriptor.
    Cached(BorrowedFd<'a>),
    /// A descriptor opened for this call only.
    Fresh(OwnedFd),
}

impl AsFd for ProcFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            ProcFd::Cached(fd) => *fd,
            ProcFd::Fresh(fd) => fd.as_fd(),
        }
    }
}

impl ProcSelfFile {
    /// Describes a file to open on first use; `write` selects `O_RDWR` over `O_RDONLY`.
    pub(crate) const fn new(path: &'static str, write: bool) -> ProcSelfFile {
        ProcSelfFile {
            path,
            write,
            cached: AtomicU64::new(0),
        }
    }

    fn open(&self) -> rustix::io::Result<OwnedFd> {
        let access = if self.write {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        };
        rustix::fs::open(self.path, access | OFlags::CLOEXEC, Mode::empty())
    }

    /// A descriptor of the file that describes the calling process. A failed open is not
    /// cached: the next call tries again.
    pub(crate) fn get(&self) -> rustix::io::Result<ProcFd<'_>> {
        let me = getpid().as_raw_nonzero().get() as u32;
        let mut packed = self.cached.load(Ordering::Acquire);
        if packed == 0 {
            let fd = self.open()?;
            let mine = (u64::from(me) << 32) | u64::from(fd.as_raw_fd() as u32);
            match self
                .cached
                .compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // Kept open for the process's lifetime.
                    std::mem::forget(fd);
                    packed = mine;
                }
                // Another thread won the race: ours is closed when `fd` drops.
                Err(theirs) => packed = theirs,
            }
        }
        if (packed >> 32) as u32 == me {
            // SAFETY: the cached descriptor is never closed (it was forgotten above, in this
            // process), so it stays valid for as long as `self` is borrowed.
            Ok(ProcFd::Cached(unsafe {
                BorrowedFd::borrow_raw(packed as u32 as i32)
            }))
        } else {
            // A forked child: the cached descriptor describes the parent.
            self.open().map(ProcFd::Fresh)
        }
    }
}

/// An `ioctl` that passes a pointer to a `T`, lets the kernel read and update it, and returns
/// the call's (non-negative) result, which rustix's own `Updater` discards.
pub(crate) struct UpdateIoctl<'a, const OPCODE: Opcode, T> {
    value: *mut T,
    _borrow: PhantomData<&'a mut T>,
}

impl<'a, const OPCODE: Opcode, T> UpdateIoctl<'a, OPCODE, T> {
    /// Wraps `value` as the argument of the `ioctl` `OPCODE`.
    ///
    /// # Safety
    ///
    /// `OPCODE` must be an `ioctl` whose argument is a pointer to exactly the C layout of `T`,
    /// and every pointer that `T` carries to the kernel (output buffers) must be valid for the
    /// lengths it states, for the duration of the call.
    pub(crate) unsafe fn new(value: &'a mut T) -> Self {
        UpdateIoctl {
            value,
            _borrow: PhantomData,
        }
    }
}

// SAFETY: the contract of `UpdateIoctl::new` makes the opcode and the argument layout match;
// the kernel may write the argument (IS_MUTATING is true), and the output is only the plain
// return value, so `output_from_ptr` dereferences nothing.
unsafe impl<const OPCODE: Opcode, T> Ioctl for UpdateIoctl<'_, OPCODE, T> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.value.cast()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// PROCMAP_QUERY ABI (include/uapi/linux/fs.h, Linux 6.11+)
// ---------------------------------------------------------------------------------------------

/// `struct procmap_query`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ProcmapQuery {
    pub(crate) size: u64,
    pub(crate) query_flags: u64,
    pub(crate) query_addr: u64,
    pub(crate) vma_start: u64,
    pub(crate) vma_end: u64,
    pub(crate) vma_flags: u64,
    pub(crate) vma_page_size: u64,
    pub(crate) vma_offset: u64,
    pub(crate) inode: u64,
    pub(crate) dev_major: u32,
    pub(crate) dev_minor: u32,
    pub(crate) vma_name_size: u32,
    pub(crate) build_id_size: u32,
    pub(crate) vma_name_addr: u64,
    pub(crate) build_id_addr: u64,
}

/// `PROCMAP_QUERY = _IOWR('f', 17, struct procmap_query)`.
pub(crate) const PROCMAP_QUERY: Opcode = 0xC068_6611;
const _: () = assert!(size_of::<ProcmapQuery>() == 104);
const _: () = assert!(PROCMAP_QUERY == rustix::ioctl::opcode::read_write::<ProcmapQuery>(b'f', 17));

/// `PROCMAP_QUERY_VMA_READABLE` (in `vma_flags`).
const PROCMAP_QUERY_VMA_READABLE: u64 = 0x01;
/// `PROCMAP_QUERY_VMA_WRITABLE`.
const PROCMAP_QUERY_VMA_WRITABLE: u64 = 0x02;
/// `PROCMAP_QUERY_VMA_EXECUTABLE`.
const PROCMAP_QUERY_VMA_EXECUTABLE: u64 = 0x04;
/// `PROCMAP_QUERY_VMA_SHARED`.
const PROCMAP_QUERY_VMA_SHARED: u64 = 0x08;
/// `PROCMAP_QUERY_COVERING_OR_NEXT_VMA` (in `query_flags`): the VMA covering the address, or
/// else the first one above it.
const PROCMAP_QUERY_COVERING_OR_NEXT_VMA: u64 = 0x10;

/// The kernel's stack guard gap (`stack_guard_gap`, 256 pages by default): nothing may be
/// placed this close below a stack that grows down.
const STACK_GUARD_GAP: usize = 1 << 20;

/// How many neighbouring VMAs of the same file [`kernel_region`] visits in each direction when
/// it decides whether a file mapping is part of a loaded image. Real images have a handful; the
/// cap only bounds the cost for a file mapped as thousands of adjacent pieces.
const IMAGE_WALK_LIMIT: usize = 1024;

/// Addresses from here up are the kernel's (the `[vsyscall]` line of `/proc/self/maps` lives
/// there but is not a VMA).
const KERNEL_HALF: usize = 1 << 63;

/// One VMA, as either source reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Vma {
    start: usize,
    end: usize,
    prot: HostProt,
    shared: bool,
    dev: (u32, u32),
    inode: u64,
}

impl Vma {
    fn from_query(q: &ProcmapQuery) -> Vma {
        let f = q.vma_flags;
        Vma {
            start: q.vma_start as usize,
            end: q.vma_end as usize,
            prot: HostProt::new(
                f & PROCMAP_QUERY_VMA_READABLE != 0,
                f & PROCMAP_QUERY_VMA_WRITABLE != 0,
                f & PROCMAP_QUERY_VMA_EXECUTABLE != 0,
            ),
            shared: f & PROCMAP_QUERY_VMA_SHARED != 0,
            dev: (q.dev_major, q.dev_minor),
            inode: q.inode,
        }
    }

    fn from_entry(e: &MapsEntry) -> Vma {
        Vma {
            start: e.start,
            end: e.end,
            prot: e.prot,
            shared: e.shared,
            dev: e.dev,
            inode: e.inode,
        }
    }

    fn same_file(&self, other: &Vma) -> bool {
        self.inode == other.inode && self.dev == other.dev
    }

    fn foreign(&self, backing: Backing) -> ForeignMapping {
        ForeignMapping {
            start: self.start,
            end: self.end,
            prot: self.prot,
            shared: self.shared,
            backing,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kernel_region
// ---------------------------------------------------------------------------------------------

/// `/proc/self/maps`, for `PROCMAP_QUERY`.
static MAPS_FILE: ProcSelfFile = ProcSelfFile::new("/proc/self/maps", false);

/// Whether `PROCMAP_QUERY` works: not yet known, yes, or no (use the text of the file).
static QUERY_MODE: AtomicU8 = AtomicU8::new(MODE_UNKNOWN);
const MODE_UNKNOWN: u8 = 0;
const MODE_IOCTL: u8 = 1;
const MODE_TEXT: u8 = 2;

/// What the kernel has at `addr` (rounded down to a page).
///
/// * A VMA covers it: [`KernelRegion::Mapped`] with that VMA's bounds, protection, sharing and
///   backing. Anonymous memory (no file, inode 0, including `[heap]`, `[stack]`, `[vdso]`,
///   `[vvar]`) is [`Backing::Anonymous`]; a file mapping is [`Backing::Image`] when it, or a
///   VMA of the same file reached through adjacent VMAs of that file without a gap, is
///   executable, and [`Backing::File`] otherwise.
/// * Nothing covers it: [`KernelRegion::Free`] from the end of the previous VMA (or 0) to the
///   start of the next one, clipped to `top` (the caller's highest user address + 1). The free
///   range always contains the page of `addr`, so for `addr >= top` it ends one page above it.
///
/// With `PROCMAP_QUERY` the previous VMA's end is found without reading the whole map: a
/// search that probes downwards at doubling distances until a probe's "covering or next" VMA
/// lies below `addr`, then bisects; about 2·log2(gap / page) lookups of ~0.4 µs, still far below
/// one read of `/proc/self/maps`. Without the ioctl, `/proc/self/maps` is parsed. If neither
/// works (no procfs), `mincore` on the one page decides between a one-page free region and a
/// one-page anonymous `PROT_NONE` mapping.
///
/// The answer is a snapshot: another thread may change the mappings while it is computed.
pub(crate) fn kernel_region(addr: usize, top: usize) -> KernelRegion {
    let ps = rustix::param::page_size();
    let page = addr & !(ps - 1);
    let mode = QUERY_MODE.load(Ordering::Relaxed);
    if mode != MODE_TEXT {
        if let Ok(fd) = MAPS_FILE.get() {
            match region_by_query(fd.as_fd(), page, top, ps) {
                Ok(region) => {
                    if mode == MODE_UNKNOWN {
                        QUERY_MODE.store(MODE_IOCTL, Ordering::Relaxed);
                    }
                    return region;
                }
                Err(e) if mode == MODE_UNKNOWN && (e == Errno::NOTTY || e == Errno::INVAL) => {
                    QUERY_MODE.store(MODE_TEXT, Ordering::Relaxed);
                }
                Err(_) => {}
            }
        }
    }
    match mappings() {
        Ok(list) => region_from_list(&list, page, top, ps),
        Err(_) => region_by_probe(page, top, ps),
    }
}

/// [`kernel_region`] for another process: `maps` is its `/proc/<pid>/maps`, opened once and
/// kept (it stays bound to that process). The same classification as for this process; the
/// text of the file (read from its start) where the kernel lacks `PROCMAP_QUERY`. `ESRCH`
/// once the process's address space is gone.
pub(crate) fn kernel_region_in(
    maps: BorrowedFd<'_>,
    addr: usize,
    top: usize,
) -> rustix::io::Result<KernelRegion> {
    let ps = rustix::param::page_size();
    let page = addr & !(ps - 1);
    if QUERY_MODE.load(Ordering::Relaxed) != MODE_TEXT {
        match region_by_query(maps, page, top, ps) {
            Ok(region) => return Ok(region),
            Err(e) if e == Errno::NOTTY || e == Errno::INVAL => {}
            Err(e) => return Err(e),
        }
    }
    let mut text = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match rustix::io::pread(maps, &mut chunk[..], text.len() as u64) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    let list = parse_maps(&text).map_err(|_| Errno::INVAL)?;
    Ok(region_from_list(&list, page, top, ps))
}

/// One `PROCMAP_QUERY` with `COVERING_OR_NEXT`: the VMA covering `addr`, or else the first
/// one above it, or `None` when there is nothing at or above `addr`.
fn query(fd: BorrowedFd<'_>, addr: usize) -> rustix::io::Result<Option<Vma>> {
    let mut q = ProcmapQuery {
        size: size_of::<ProcmapQuery>() as u64,
        query_flags: PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
        query_addr: addr as u64,
        ..ProcmapQuery::default()
    };
    // SAFETY: PROCMAP_QUERY takes a pointer to a `struct procmap_query`, which `ProcmapQuery`
    // reproduces field for field (its size is checked at compile time, the layout by the
    // tests). The name and build-id buffers are disabled (sizes and addresses 0), so the kernel
    // writes nothing but `q`.
    let result = unsafe { rustix::ioctl::ioctl(fd, UpdateIoctl::<PROCMAP_QUERY, _>::new(&mut q)) };
    match result {
        Ok(_) => Ok(Some(Vma::from_query(&q))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The free region around `page`: from `prev_end` to `next_start`, clipped to `top` but always
/// containing `page`.
fn free_region(
    prev_end: usize,
    page: usize,
    next_start: usize,
    top: usize,
    ps: usize,
) -> KernelRegion {
    KernelRegion::Free {
        start: prev_end.min(page),
        end: next_start.min(top.max(page.saturating_add(ps))),
    }
}

fn region_by_query(
    fd: BorrowedFd<'_>,
    page: usize,
    top: usize,
    ps: usize,
) -> rustix::io::Result<KernelRegion> {
    match query(fd, page)? {
        Some(v) if v.start <= page => {
            let backing = backing_by_query(fd, &v, ps)?;
            Ok(KernelRegion::Mapped(v.foreign(backing)))
        }
        next => {
            let next_start = next.map_or(usize::MAX, |v| v.start);
            let prev_end = prev_end_by_query(fd, page, ps)?;
            Ok(free_region(prev_end, page, next_start, top, ps))
        }
    }
}

/// The end of the last VMA that ends at or below `page` (0 if none); `page` is not covered.
fn prev_end_by_query(fd: BorrowedFd<'_>, page: usize, ps: usize) -> rustix::io::Result<usize> {
    // "Some VMA intersects [x, page)" is true for small x and false from the answer up; a probe
    // at x that finds such a VMA also yields its end, a lower bound of the answer.
    let below = |x: usize| -> rustix::io::Result<Option<usize>> {
        Ok(match query(fd, x)? {
            Some(v) if v.start < page => Some(v.end.min(page)),
            _ => None,
        })
    };
    // Invariant: lo <= answer <= hi, and lo is 0 or a VMA's end.
    let mut hi = page;
    let mut lo;
    let mut dist = ps;
    loop {
        let x = page.saturating_sub(dist);
        if let Some(end) = below(x)? {
            lo = end;
            break;
        }
        hi = x;
        if x == 0 {
            return Ok(0);
        }
        dist = dist.saturating_mul(2);
    }
    // Each round either raises lo past the probe or lowers hi to it, halving the interval.
    for _ in 0..(2 * usize::BITS) {
        if lo >= hi {
            break;
        }
        let mid = lo + (((hi - lo) / 2) & !(ps - 1));
        match below(mid)? {
            Some(end) => lo = end.max(lo),
            None => hi = mid,
        }
    }
    Ok(lo.min(page))
}

fn backing_by_query(fd: BorrowedFd<'_>, v: &Vma, ps: usize) -> rustix::io::Result<Backing> {
    if v.inode == 0 {
        return Ok(Backing::Anonymous);
    }
    if v.prot.exec() {
        return Ok(Backing::Image);
    }
    let mut cur = *v;
    for _ in 0..IMAGE_WALK_LIMIT {
        match query(fd, cur.end)? {
            Some(w) if w.start == cur.end && w.same_file(v) => {
                if w.prot.exec() {
                    return Ok(Backing::Image);
                }
                cur = w;
            }
            _ => break,
        }
    }
    let mut cur = *v;
    for _ in 0..IMAGE_WALK_LIMIT {
        if cur.start < ps {
            break;
        }
        match query(fd, cur.start - ps)? {
            Some(w) if w.end == cur.start && w.same_file(v) => {
                if w.prot.exec() {
                    return Ok(Backing::Image);
                }
                cur = w;
            }
            _ => break,
        }
    }
    Ok(Backing::File)
}

/// [`kernel_region`] from a parsed `/proc/self/maps` (the fallback).
fn region_from_list(list: &[MapsEntry], page: usize, top: usize, ps: usize) -> KernelRegion {
    let vmas: Vec<Vma> = list
        .iter()
        .filter(|e| e.start < KERNEL_HALF)
        .map(Vma::from_entry)
        .collect();
    if let Some(i) = vmas.iter().position(|v| v.start <= page && page < v.end) {
        let v = &vmas[i];
        let backing = if v.inode == 0 {
            Backing::Anonymous
        } else if image_in_list(&vmas, i) {
            Backing::Image
        } else {
            Backing::File
        };
        return KernelRegion::Mapped(v.foreign(backing));
    }
    let prev_end = vmas
        .iter()
        .map(|v| v.end)
        .filter(|&e| e <= page)
        .max()
        .unwrap_or(0);
    let next_start = vmas
        .iter()
        .map(|v| v.start)
        .filter(|&s| s > page)
        .min()
        .unwrap_or(usize::MAX);
    free_region(prev_end, page, next_start, top, ps)
}

/// Whether `vmas[i]` or an adjacent run of VMAs of the same file around it is executable.
fn image_in_list(vmas: &[Vma], i: usize) -> bool {
    let v = &vmas[i];
    if v.prot.exec() {
        return true;
    }
    let mut j = i;
    while j + 1 < vmas.len() && vmas[j + 1].start == vmas[j].end && vmas[j + 1].same_file(v) {
        j += 1;
        if vmas[j].prot.exec() {
            return true;
        }
    }
    let mut j = i;
    while j > 0 && vmas[j - 1].end == vmas[j].start && vmas[j - 1].same_file(v) {
        j -= 1;
        if vmas[j].prot.exec() {
            return true;
        }
    }
    false
}

/// Last resort without procfs: `mincore` tells whether the page is mapped at all.
fn region_by_probe(page: usize, top: usize, ps: usize) -> KernelRegion {
    let mut vec = [0u8; 1];
    // SAFETY: mincore only reads the page tables of [page, page+ps) and writes one byte into
    // `vec`, which has room for exactly one page's entry.
    let rc = unsafe { libc::mincore(page as *mut c_void, ps, vec.as_mut_ptr()) };
    if rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOMEM) {
        free_region(page, page, page.saturating_add(ps), top, ps)
    } else {
        KernelRegion::Mapped(ForeignMapping {
            start: page,
            end: page.saturating_add(ps),
            prot: HostProt::NONE,
            shared: false,
            backing: Backing::Anonymous,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/self/maps text
// ---------------------------------------------------------------------------------------------

/// One line of `/proc/self/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MapsEntry {
    /// First address.
    pub(crate) start: usize,
    /// End address (exclusive).
    pub(crate) end: usize,
    /// Protection.
    pub(crate) prot: HostProt,
    /// `s` (shared) rather than `p` (private).
    pub(crate) shared: bool,
    /// Offset into the file.
    pub(crate) offset: u64,
    /// Device of the file: (major, minor); (0, 0) for anonymous memory.
    pub(crate) dev: (u32, u32),
    /// Inode of the file; 0 for anonymous memory.
    pub(crate) inode: u64,
    /// The path or pseudo-name (`[heap]`, `[stack]`, `[vdso]`, `[anon:NAME]`,
    /// `/path (deleted)`), `None` when the line has none.
    pub(crate) path: Option<String>,
}

/// Every line of `/proc/self/maps`, in address order.
///
/// The kernel produces the file in pieces, so a concurrent change of the mappings can make the
/// list inconsistent (an old and a new VMA for the same range); callers treat it as a hint.
pub(crate) fn mappings() -> io::Result<Vec<MapsEntry>> {
    let text = std::fs::read("/proc/self/maps")?;
    parse_maps(&text)
}

/// Parses the text of a `/proc/PID/maps` file.
pub(crate) fn parse_maps(text: &[u8]) -> io::Result<Vec<MapsEntry>> {
    text.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            parse_line(line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "unexpected /proc/self/maps line: {}",
                        String::from_utf8_lossy(line)
                    ),
                )
            })
        })
        .collect()
}

/// Takes the next space-separated field off the front of `rest`.
fn next_field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let skip = rest.iter().position(|&b| b != b' ')?;
    let tail = &rest[skip..];
    let len = tail.iter().position(|&b| b == b' ').unwrap_or(tail.len());
    *rest = &tail[len..];
    Some(&tail[..len])
}

fn hex(field: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()
}

/// Parses `start-end perms offset major:minor inode [path]`.
fn parse_line(line: &[u8]) -> Option<MapsEntry> {
    let mut rest = line;
    let range = next_field(&mut rest)?;
    let perms = next_field(&mut rest)?;
    let offset = next_field(&mut rest)?;
    let dev = next_field(&mut rest)?;
    let inode = next_field(&mut rest)?;
    // The path follows padding; it may itself contain spaces, so it is the rest of the line.
    let path = rest
        .iter()
        .position(|&b| b != b' ')
        .map(|i| String::from_utf8_lossy(&rest[i..]).into_owned());

    let dash = range.iter().position(|&b| b == b'-')?;
    let start = usize::try_from(hex(&range[..dash])?).ok()?;
    let end = usize::try_from(hex(&range[dash + 1..])?).ok()?;
    let &[r, w, x, s] = perms else { return None };
    let colon = dev.iter().position(|&b| b == b':')?;
    let major = u32::try_from(hex(&dev[..colon])?).ok()?;
    let minor = u32::try_from(hex(&dev[colon + 1..])?).ok()?;
    let inode = std::str::from_utf8(inode).ok()?.parse::<u64>().ok()?;
    if start > end {
        return None;
    }
    Some(MapsEntry {
        start,
        end,
        prot: HostProt::new(r == b'r', w == b'w', x == b'x'),
        shared: s == b's',
        offset: hex(offset)?,
        dev: (major, minor),
        inode,
        path,
    })
}

// ---------------------------------------------------------------------------------------------
// Placement and limits
// ---------------------------------------------------------------------------------------------

/// The highest base, a multiple of `align` (and of the page size), such that
/// `[base, base+len)` is free, `base >= lowest` and `base + len <= highest_end`; `None` if no
/// free range fits (or `len` is 0, or `align` and the page size have no common multiple among
/// them). A range never comes closer than 1 MiB below the `[stack]` mapping: the kernel keeps
/// that guard gap free so the stack can grow.
///
/// This reads `/proc/self/maps`: the answer may be stale by the time the caller maps it, so the
/// caller maps with `MAP_FIXED_NOREPLACE` and searches again if it lost the race.
pub(crate) fn highest_free_range(
    len: usize,
    align: usize,
    lowest: usize,
    highest_end: usize,
) -> Option<usize> {
    free_range(len, align, lowest, highest_end, true)
}

/// The lowest `align`-aligned base of a free range of `len` bytes inside
/// `[lowest, highest_end)` (the same rules as [`highest_free_range`]).
pub(crate) fn lowest_free_range(
    len: usize,
    align: usize,
    lowest: usize,
    highest_end: usize,
) -> Option<usize> {
    free_range(len, align, lowest, highest_end, false)
}

/// [`highest_free_range`] (`top`) or [`lowest_free_range`].
fn free_range(len: usize, align: usize, lowest: usize, highest_end: usize, top: bool) -> Option<usize> {
    let ps = rustix::param::page_size();
    let align = align.max(1);
    let align = if ps % align == 0 {
        ps
    } else if align % ps == 0 {
        align
    } else {
        return None;
    };
    if len == 0 {
        return None;
    }
    let ok = std::cell::Cell::new(true);
    let found = free_in(
        |f| {
            if !for_each_mapping(&mut |start, end, stack| f(start, end, stack)) {
                ok.set(false);
            }
        },
        len,
        align,
        lowest,
        highest_end,
        top,
    );
    found.filter(|_| ok.get())
}

/// Calls `f(start, end, is_stack)` for every line of `/proc/self/maps`, in address order,
/// reading it in pieces through a stack buffer: no heap, so a `malloc` built on virtmem can
/// reserve memory at the top of the address space. False if the file could not be read.
fn for_each_mapping(f: &mut dyn FnMut(usize, usize, bool)) -> bool {
    for_each_line(c"/proc/self/maps", &mut |line| {
        let mut rest = line;
        let Some(range) = next_field(&mut rest) else { return };
        for _ in 0..4 {
            let _ = next_field(&mut rest);
        }
        let path = rest.iter().position(|&b| b != b' ').map_or(&[][..], |i| &rest[i..]);
        let Some(dash) = range.iter().position(|&b| b == b'-') else { return };
        if let (Some(start), Some(end)) = (hex(&range[..dash]), hex(&range[dash + 1..])) {
            f(start as usize, end as usize, path == b"[stack]");
        }
    })
}

/// Calls `f` on every line (without its newline) of a procfs file, read through a stack
/// buffer (lines longer than the buffer are skipped). False if the file could not be opened.
pub(crate) fn for_each_line(path: &std::ffi::CStr, f: &mut dyn FnMut(&[u8])) -> bool {
    use rustix::fs::{Mode, OFlags};
    let Ok(fd) = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let mut buf = [0u8; 8192];
    let mut have = 0;
    let mut skipping = false;
    loop {
        let n = match rustix::io::read(&fd, &mut buf[have..]) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        };
        let eof = n == 0;
        have += n;
        let mut at = 0;
        while let Some(nl) = buf[at..have].iter().position(|&b| b == b'\n') {
            if !skipping {
                f(&buf[at..at + nl]);
            }
            skipping = false;
            at += nl + 1;
        }
        if eof {
            if at < have && !skipping {
                f(&buf[at..have]);
            }
            return true;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if have == buf.len() {
            // A line longer than the buffer: drop it.
            have = 0;
            skipping = true;
        }
    }
}

/// The highest (`top`) or lowest fitting base among the gaps between the mappings `each`
/// lists (called twice: `each(f)` must call `f(start, end, is_stack)` for every mapping in
/// ascending order).
fn free_in(
    each: impl Fn(&mut dyn FnMut(usize, usize, bool)),
    len: usize,
    align: usize,
    lowest: usize,
    highest_end: usize,
    top: bool,
) -> Option<usize> {
    // First pass: where the stack starts (the 1 MiB below it stays free).
    let mut guard = None;
    each(&mut |start, _, stack| {
        if stack {
            guard = Some(start.saturating_sub(STACK_GUARD_GAP)..start);
        }
    });
    // Second pass: the gaps from the bottom up; top-down, a higher fitting gap replaces a
    // lower one; bottom-up, the first fitting gap stays.
    let mut best = None;
    let mut cur_end = 0usize;
    let mut consider = |lo: usize, hi: usize| {
        if !top && best.is_some() {
            return;
        }
        let lo = lo.max(lowest);
        let hi = hi.min(highest_end);
        if hi >= lo && hi - lo >= len {
            let base = if top {
                Some((hi - len) / align * align)
            } else {
                lo.checked_next_multiple_of(align)
            };
            if let Some(base) = base.filter(|&b| b >= lo && b.checked_add(len).is_some_and(|e| e <= hi)) {
                best = Some(base);
            }
        }
    };
    let mut busy = |s: usize, e: usize, cur_end: &mut usize| {
        if s > *cur_end {
            consider(*cur_end, s);
        }
        *cur_end = (*cur_end).max(e);
    };
    let mut pending_guard = guard.clone();
    each(&mut |start, end, _| {
        if let Some(g) = pending_guard.clone().filter(|g| g.start <= start) {
            busy(g.start, g.end, &mut cur_end);
            pending_guard = None;
        }
        busy(start, end, &mut cur_end);
    });
    if let Some(g) = pending_guard {
        busy(g.start, g.end, &mut cur_end);
    }
    consider(cur_end, usize::MAX);
    best
}

/// How many lines `/proc/self/maps` has: the process's mapping count (plus the `[vsyscall]`
/// line, which makes it one too many and so on the safe side), 0 if the file cannot be read.
/// Counted through a stack buffer (no heap: it runs when `mmap` fails for lack of memory).
pub(crate) fn map_count() -> usize {
    let mut n = 0;
    for_each_line(c"/proc/self/maps", &mut |_| n += 1);
    n
}

/// `vm.max_map_count`, the most mappings a process may have; 65530 (the kernel default) if
/// `/proc/sys/vm/max_map_count` cannot be read.
pub(crate) fn max_map_count() -> usize {
    let mut v = None;
    for_each_line(c"/proc/sys/vm/max_map_count", &mut |line| {
        v = std::str::from_utf8(line).ok().and_then(|s| s.trim().parse().ok());
    });
    v.unwrap_or(65530)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::mm::{MapFlags, ProtFlags};
    use std::io::Write;
    use std::ptr::null_mut;

    fn ps() -> usize {
        rustix::param::page_size()
    }

    const TOP: usize = 1 << 47;

    /// The `mappings()` entry covering `addr`.
    fn entry_at(addr: usize) -> MapsEntry {
        let list = mappings().expect("read maps");
        list.into_iter()
            .find(|e| e.start <= addr && addr < e.end)
            .expect("mapped in /proc/self/maps")
    }

    fn mapped(addr: usize) -> ForeignMapping {
        match kernel_region(addr, TOP) {
            KernelRegion::Mapped(m) => m,
            other => panic!("{addr:#x} reported {other:?}"),
        }
    }

    /// An anonymous mapping at a fixed, otherwise unused address (far below the mmap area, so
    /// other test threads' mappings do not land next to it).
    struct Fixed {
        base: usize,
        len: usize,
    }

    impl Fixed {
        fn new(hint: usize, len: usize, prot: ProtFlags) -> Fixed {
            let mut addr = hint;
            for _ in 0..64 {
                // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
                let r = unsafe {
                    rustix::mm::mmap_anonymous(
                        addr as *mut c_void,
                        len,
                        prot,
                        MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE,
                    )
                };
                match r {
                    Ok(p) if p as usize == addr => return Fixed { base: addr, len },
                    Ok(p) => {
                        // Kernels before 4.17 ignore the flag: give it back and try elsewhere.
                        // SAFETY: `p` is the fresh mapping just made.
                        unsafe { rustix::mm::munmap(p, len).expect("munmap") };
                    }
                    Err(_) => {}
                }
                addr += 1 << 32;
            }
            panic!("no free fixed address near {hint:#x}");
        }
    }

    impl Drop for Fixed {
        fn drop(&mut self) {
            // SAFETY: the test owns this range (parts may already be unmapped, which is fine).
            let _ = unsafe { rustix::mm::munmap(self.base as *mut c_void, self.len) };
        }
    }

    #[test]
    fn query_abi_matches_kernel() {
        let fd = MAPS_FILE.get().expect("open maps");
        let here = query_abi_matches_kernel as fn() as usize;
        let v = query(fd.as_fd(), here)
            .expect("PROCMAP_QUERY works on this kernel")
            .expect("vma");
        let e = entry_at(here);
        assert_eq!(v.start, e.start);
        assert_eq!(v.end, e.end);
        assert_eq!(v.prot, e.prot);
        assert_eq!(v.shared, e.shared);
        assert_eq!(v.dev, e.dev);
        assert_eq!(v.inode, e.inode);
        // Offset and page size land in the right fields too.
        let mut q = ProcmapQuery {
            size: size_of::<ProcmapQuery>() as u64,
            query_flags: PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
            query_addr: here as u64,
            ..ProcmapQuery::default()
        };
        // SAFETY: as in `query`.
        unsafe { rustix::ioctl::ioctl(fd.as_fd(), UpdateIoctl::<PROCMAP_QUERY, _>::new(&mut q)) }
            .expect("ioctl");
        assert_eq!(q.vma_offset, e.offset);
        assert_eq!(q.vma_page_size, ps() as u64);
        // Nothing at or above the top of user space.
        assert_eq!(
            query(fd.as_fd(), usize::MAX & !(ps() - 1)).expect("ioctl"),
            None
        );
        assert_ne!(QUERY_MODE.load(Ordering::Relaxed), MODE_TEXT);
    }

    /// `kernel_region(addr)` as a mapping, checked against the `/proc/self/maps` line covering
    /// `addr`. Other test threads map and unmap concurrently (thread stacks can merge with
    /// neighbours), so a mismatch is retried before it counts.
    fn mapped_as_listed(addr: usize) -> ForeignMapping {
        let mut last = None;
        for _ in 0..10 {
            let m = mapped(addr);
            let e = entry_at(addr);
            if (m.start, m.end, m.prot, m.shared) == (e.start, e.end, e.prot, e.shared) {
                return m;
            }
            last = Some((m, e));
        }
        panic!("kernel_region and /proc/self/maps disagree: {last:?}");
    }

    #[test]
    fn stack_is_anonymous() {
        let list = mappings().unwrap();
        let stack = list
            .iter()
            .find(|e| e.path.as_deref() == Some("[stack]"))
            .expect("[stack]");
        let m = mapped(stack.end - 1);
        assert_eq!(m.end, stack.end);
        assert!(m.start <= stack.start, "the stack only grows down");
        assert_eq!(m.backing, Backing::Anonymous);
        assert_eq!(m.prot, HostProt::READ_WRITE);
        // The current thread's stack (a plain anonymous mapping in test threads).
        let local = 0u8;
        let addr = std::hint::black_box(&local) as *const u8 as usize;
        assert_eq!(mapped_as_listed(addr).backing, Backing::Anonymous);
    }

    #[test]
    fn executable_is_image() {
        let text = kernel_region as fn(usize, usize) -> KernelRegion as usize;
        let m = mapped_as_listed(text);
        assert!(m.prot.exec());
        assert_eq!(m.backing, Backing::Image);
        // Read-only data of the same executable: not executable itself, but part of the image.
        static DATA: [u8; 4] = [1, 2, 3, 4];
        let data = std::hint::black_box(&DATA) as *const _ as usize;
        let m = mapped_as_listed(data);
        assert!(!m.prot.exec());
        assert_eq!(m.backing, Backing::Image);
        // The C library too.
        let libc_fn = libc::getpid as unsafe extern "C" fn() -> libc::pid_t as usize;
        assert_eq!(mapped(libc_fn).backing, Backing::Image);
    }

    #[test]
    fn anonymous_mapping() {
        let ps = ps();
        let f = Fixed::new(0x1300_0000_0000, 4 * ps, ProtFlags::READ | ProtFlags::WRITE);
        // Make the second page distinct so the VMA boundaries are known exactly.
        // SAFETY: inside the test's own mapping.
        unsafe {
            rustix::mm::mprotect(
                (f.base + ps) as *mut c_void,
                ps,
                rustix::mm::MprotectFlags::READ,
            )
        }
        .unwrap();
        let m = mapped_as_listed(f.base + ps + 5);
        assert_eq!(
            m,
            ForeignMapping {
                start: f.base + ps,
                end: f.base + 2 * ps,
                prot: HostProt::READ,
                shared: false,
                backing: Backing::Anonymous
            }
        );
        let m = mapped(f.base + 3 * ps);
        assert_eq!(
            (m.start, m.end, m.prot),
            (f.base + 2 * ps, f.base + 4 * ps, HostProt::READ_WRITE)
        );
        // A shared anonymous mapping is backed by a shmem file: MEM_MAPPED.
        // SAFETY: a fresh mapping, unmapped below.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                null_mut(),
                ps,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }
        .unwrap();
        let m = mapped(p as usize);
        assert!(m.shared);
        assert_eq!(m.backing, Backing::File);
        // SAFETY: our mapping.
        unsafe { rustix::mm::munmap(p, ps) }.unwrap();
    }

    struct TempFile(std::path::PathBuf, std::fs::File);

    impl TempFile {
        fn new(tag: &str, pages: usize) -> TempFile {
            let path =
                std::env::temp_dir().join(format!("virtmem-procmaps-{}-{tag}", std::process::id()));
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            file.write_all(&vec![7u8; pages * ps()]).unwrap();
            TempFile(path, file)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn file_mapping() {
        let ps = ps();
        let file = TempFile::new("file", 3);
        // SAFETY: a fresh private read-only mapping of our own file.
        let p = unsafe {
            rustix::mm::mmap(
                null_mut(),
                3 * ps,
                ProtFlags::READ,
                MapFlags::PRIVATE,
                &file.1,
                0,
            )
        }
        .unwrap();
        let base = p as usize;
        let m = mapped(base + ps);
        assert_eq!(
            (m.start, m.end, m.prot, m.shared),
            (base, base + 3 * ps, HostProt::READ, false)
        );
        assert_eq!(m.backing, Backing::File);
        let e = entry_at(base);
        assert!(
            e.path.as_deref().unwrap_or("").contains("virtmem-procmaps"),
            "{e:?}"
        );
        assert_ne!(e.inode, 0);
        // Make the last page executable: now the whole contiguous run is an image. (Skipped
        // where the temp directory is mounted noexec.)
        // SAFETY: our own mapping.
        let exec = unsafe {
            rustix::mm::mprotect(
                (base + 2 * ps) as *mut c_void,
                ps,
                rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::EXEC,
            )
        };
        if exec.is_ok() {
            let m = mapped(base);
            assert_eq!(
                (m.start, m.end, m.backing),
                (base, base + 2 * ps, Backing::Image)
            );
            let list = mappings().unwrap();
            assert_eq!(
                region_from_list(&list, base, TOP, ps),
                KernelRegion::Mapped(m)
            );
        }
        // SAFETY: our own mapping.
        unsafe { rustix::mm::munmap(p, 3 * ps) }.unwrap();
    }

    #[test]
    fn free_gaps() {
        let ps = ps();
        // [b, b+64p) with holes [b+5p, b+50p) and [b+52p, b+53p).
        let f = Fixed::new(0x1200_0000_0000, 64 * ps, ProtFlags::empty());
        let b = f.base;
        // SAFETY: parts of our own mapping.
        unsafe {
            rustix::mm::munmap((b + 5 * ps) as *mut c_void, 45 * ps).unwrap();
            rustix::mm::munmap((b + 52 * ps) as *mut c_void, ps).unwrap();
        }
        let list = mappings().unwrap();
        for page in [5, 6, 17, 32, 48, 49] {
            let expect = KernelRegion::Free {
                start: b + 5 * ps,
                end: b + 50 * ps,
            };
            assert_eq!(
                kernel_region(b + page * ps + 123, TOP),
                expect,
                "page {page}"
            );
            assert_eq!(
                region_from_list(&list, b + page * ps, TOP, ps),
                expect,
                "page {page}"
            );
        }
        assert_eq!(
            kernel_region(b + 52 * ps, TOP),
            KernelRegion::Free {
                start: b + 52 * ps,
                end: b + 53 * ps
            }
        );
        // `top` clips the end, but the page itself stays inside.
        assert_eq!(
            kernel_region(b + 6 * ps, b + 20 * ps),
            KernelRegion::Free {
                start: b + 5 * ps,
                end: b + 20 * ps
            }
        );
        assert_eq!(
            kernel_region(b + 30 * ps, b + 20 * ps),
            KernelRegion::Free {
                start: b + 5 * ps,
                end: b + 31 * ps
            }
        );

        // A 1 GiB hole: the search for its start spans 2^18 pages.
        let big = 1usize << 30;
        let g = Fixed::new(0x1400_0000_0000, big + 2 * ps, ProtFlags::empty());
        // SAFETY: the middle of our own mapping.
        unsafe { rustix::mm::munmap((g.base + ps) as *mut c_void, big) }.unwrap();
        let expect = KernelRegion::Free {
            start: g.base + ps,
            end: g.base + ps + big,
        };
        for off in [ps, ps + 4096 * ps, big / 2, big] {
            assert_eq!(kernel_region(g.base + off, TOP), expect, "offset {off:#x}");
        }

        // Above the top of user space nothing is mapped; the region holds the page itself.
        let high = TOP + 16 * ps;
        match kernel_region(high, TOP) {
            KernelRegion::Free { start, end } => assert!(start <= high && end == high + ps),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ioctl_and_text_agree() {
        // Every boundary of every mapping, and points inside, give the same answer either way.
        // Other test threads change the map concurrently, so compare only answers that hold
        // still across a second ioctl lookup.
        let ps = ps();
        let list = mappings().unwrap();
        let mut checked = 0;
        for e in list.iter().filter(|e| e.start < KERNEL_HALF) {
            for addr in [e.start, e.end - ps, e.start.saturating_sub(ps), e.end] {
                let a = kernel_region(addr, TOP);
                let fresh = mappings().unwrap();
                let b = region_from_list(&fresh, addr & !(ps - 1), TOP, ps);
                if a != b && kernel_region(addr, TOP) == a && mappings().unwrap() == fresh {
                    panic!("{addr:#x}: ioctl {a:?} vs text {b:?}");
                }
                checked += 1;
            }
        }
        assert!(checked > 20);
    }

    #[test]
    fn parser_handles_every_kind_of_line() {
        let text = b"\
561359d48000-561359d4a000 r--p 00000000 fe:00 247030                     /usr/bin/cat
561365d3c000-561365d5d000 rw-p 00000000 00:00 0                          [heap]
7fddb264a000-7fddb266c000 rw-p 00000000 00:00 0 
7fddb28b2000-7fddb28b9000 r--s 0001a000 fe:01 325745                     /tmp/a file (deleted)
7fddb28c2000-7fddb28c4000 r-xp 00000000 00:00 0                          [vdso]
7ffe1fb4d000-7ffe1fb6e000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        let list = parse_maps(text).unwrap();
        assert_eq!(list.len(), 7);
        assert_eq!(
            list[0],
            MapsEntry {
                start: 0x5613_59d4_8000,
                end: 0x5613_59d4_a000,
                prot: HostProt::READ,
                shared: false,
                offset: 0,
                dev: (0xfe, 0),
                inode: 247030,
                path: Some("/usr/bin/cat".into()),
            }
        );
        assert_eq!(list[1].path.as_deref(), Some("[heap]"));
        assert_eq!(list[2].path, None);
        assert_eq!(list[2].prot, HostProt::READ_WRITE);
        assert!(list[3].shared);
        assert_eq!(list[3].offset, 0x1a000);
        assert_eq!(list[3].dev, (0xfe, 1));
        assert_eq!(list[3].path.as_deref(), Some("/tmp/a file (deleted)"));
        assert_eq!(list[4].prot, HostProt::new(true, false, true));
        assert_eq!(list[6].start, 0xffff_ffff_ff60_0000);
        assert!(parse_maps(b"garbage\n").is_err());
        assert!(parse_maps(b"1000-2000 rw 0 00:00 0\n").is_err());

        // The fallback over this list.
        let ps = 0x1000;
        let region = |a| region_from_list(&list, a, TOP, ps);
        match region(0x5613_59d4_9000) {
            KernelRegion::Mapped(m) => assert_eq!(m.backing, Backing::File),
            other => panic!("{other:?}"),
        }
        match region(0x7fdd_b28c_3000) {
            KernelRegion::Mapped(m) => {
                assert_eq!((m.backing, m.prot.exec()), (Backing::Anonymous, true))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            region(0x1000),
            KernelRegion::Free {
                start: 0,
                end: 0x5613_59d4_8000
            }
        );
        assert_eq!(
            region(0x5613_59d4_a000),
            KernelRegion::Free {
                start: 0x5613_59d4_a000,
                end: 0x5613_65d3_c000
            }
        );
        assert_eq!(
            region(0x7ffe_1fb6_e000),
            KernelRegion::Free {
                start: 0x7ffe_1fb6_e000,
                end: TOP
            }
        );
        // [vsyscall] is not a VMA.
        assert_eq!(
            region(0xffff_ffff_ff60_0000),
            KernelRegion::Free {
                start: 0x7ffe_1fb6_e000,
                end: 0xffff_ffff_ff60_1000
            }
        );

        // Image detection walks adjacent pieces of the same file.
        let img = parse_maps(
            b"\
10000-11000 r--p 00000000 08:01 5 /lib/x.so
11000-12000 r-xp 00001000 08:01 5 /lib/x.so
12000-13000 r--p 00002000 08:01 5 /lib/x.so
13000-14000 rw-p 00003000 08:01 5 /lib/x.so
14000-15000 rw-p 00000000 00:00 0
15000-16000 r--p 00000000 08:01 5 /lib/x.so
20000-21000 r--p 00000000 08:01 6 /data
21000-22000 rw-p 00001000 08:01 6 /data
",
        )
        .unwrap();
        let backing = |a| match region_from_list(&img, a, TOP, ps) {
            KernelRegion::Mapped(m) => m.backing,
            other => panic!("{other:?}"),
        };
        assert_eq!(backing(0x10000), Backing::Image);
        assert_eq!(backing(0x13000), Backing::Image);
        assert_eq!(backing(0x14000), Backing::Anonymous);
        // Same file, but cut off from the executable part by anonymous memory.
        assert_eq!(backing(0x15000), Backing::File);
        assert_eq!(backing(0x21000), Backing::File);
    }

    #[test]
    fn highest_free_range_is_free() {
        let ps = ps();
        let len = 16 * ps;
        let align = 1 << 16;
        // x86-64 user space ends one page below 2^47.
        let user_top = TOP - ps;
        let base = highest_free_range(len, align, 0x10000, user_top).expect("a free range");
        assert_eq!(base % align, 0);
        assert!(base + len <= user_top);
        // It really is free, and it is the highest: nothing between it and the top fits.
        // SAFETY: MAP_FIXED_NOREPLACE never replaces anything.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                base as *mut c_void,
                len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE,
            )
        }
        .expect("the range is free");
        assert_eq!(p as usize, base);
        // SAFETY: our mapping.
        unsafe { rustix::mm::munmap(p, len) }.unwrap();

        // Below the stack, the guard gap is left free.
        let list = mappings().unwrap();
        let stack = list
            .iter()
            .find(|e| e.path.as_deref() == Some("[stack]"))
            .unwrap();
        if let Some(b) = highest_free_range(len, align, 0x10000, stack.start) {
            assert!(b + len + STACK_GUARD_GAP <= stack.start);
        }
        // Constraints that cannot be met.
        assert_eq!(highest_free_range(len, align, stack.start, stack.end), None);
        assert_eq!(highest_free_range(0, align, 0, TOP), None);
        assert_eq!(highest_free_range(len, 3 * ps + 1, 0, TOP), None);
    }

    #[test]
    fn highest_free_in_list() {
        let e = |start: usize, end: usize, path: Option<&str>| MapsEntry {
            start,
            end,
            prot: HostProt::READ,
            shared: false,
            offset: 0,
            dev: (0, 0),
            inode: 0,
            path: path.map(String::from),
        };
        let list = vec![
            e(0x10_0000, 0x20_0000, None),
            e(0x40_0000, 0x50_0000, Some("[stack]")),
            e(0x90_0000, 0xa0_0000, None),
        ];
        let each = |f: &mut dyn FnMut(usize, usize, bool)| {
            for m in &list {
                f(m.start, m.end, m.path.as_deref() == Some("[stack]"));
            }
        };
        let f = |len, align, lo, hi| free_in(each, len, align, lo, hi, true);
        let low = |len, align, lo, hi| free_in(each, len, align, lo, hi, false);
        // Bottom-up: the first gap that fits, at its lowest aligned base.
        assert_eq!(low(0x1000, 0x1000, 0, usize::MAX), Some(0));
        assert_eq!(low(0x1000, 0x1000, 0x10_0000, usize::MAX), Some(0x20_0000));
        assert_eq!(low(0x10_0000, 0x10_0000, 0x10_0000, usize::MAX), Some(0x20_0000));
        // [0x20_0000, 0x30_0000) is too small for 0x10_1000: past the stack's gap.
        assert_eq!(low(0x10_1000, 0x1000, 0x10_0000, usize::MAX), Some(0x50_0000));
        assert_eq!(low(0x1000, 0x4_0000, 0x20_0001, 0x30_0000), Some(0x24_0000));
        assert_eq!(low(0x10_1000, 0x1000, 0x10_0000, 0x90_0000), Some(0x50_0000));
        assert_eq!(low(0x50_0000, 0x1000, 0x10_0000, 0x90_0000), None);
        assert_eq!(f(0x1000, 0x1000, 0, usize::MAX), Some(usize::MAX - 0x1fff));
        assert_eq!(f(0x1000, 0x1000, 0, 0xb0_0000), Some(0xaf_f000));
        assert_eq!(f(0x1000, 0x1000, 0, 0xa0_0000), Some(0x8f_f000));
        // Below the stack, 1 MiB stays free: [0x20_0000, 0x30_0000) is all that is usable.
        assert_eq!(f(0x1000, 0x1000, 0, 0x90_0000), Some(0x8f_f000));
        assert_eq!(f(0x1000, 0x1000, 0, 0x80_0000), Some(0x7f_f000));
        assert_eq!(f(0x1000, 0x1000, 0, 0x50_0000), Some(0x2f_f000));
        assert_eq!(f(0x10_0000, 0x10_0000, 0, 0x50_0000), Some(0x20_0000));
        assert_eq!(f(0x10_1000, 0x1000, 0x11_0000, 0x50_0000), None);
        assert_eq!(f(0x10_0000, 0x1000, 0, 0x10_0000), Some(0));
        assert_eq!(f(0x1000, 0x1000, 0x20_0000, 0x20_1000), Some(0x20_0000));
        assert_eq!(f(0x1000, 0x1000, 0x20_0001, 0x20_2000), Some(0x20_1000));
        assert_eq!(f(0x1000, 0x1000, 0x20_1001, 0x20_2000), None);
    }

    #[test]
    fn counts() {
        let n = map_count();
        assert!(n >= 5, "{n}");
        assert!(max_map_count() >= 1000);
        let expect: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(max_map_count(), expect);
    }

    #[test]
    fn proc_self_file_reuses_its_descriptor() {
        let a = MAPS_FILE.get().unwrap();
        let b = MAPS_FILE.get().unwrap();
        assert!(matches!(a, ProcFd::Cached(_)));
        assert_eq!(
            std::os::fd::AsRawFd::as_raw_fd(&a.as_fd()),
            std::os::fd::AsRawFd::as_raw_fd(&b.as_fd())
        );
    }
}
