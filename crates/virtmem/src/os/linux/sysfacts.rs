//! System facts read once into fixed storage, without the heap and without locks: the page
//! size, the large-page size and the number of usable processors.
//!
//! A `malloc` built on virtmem calls `GetSystemInfo` while it initialises itself, so nothing
//! here may allocate or take a lock that such a `malloc` could need. Each fact is computed by
//! plain system calls into stack buffers and cached in an atomic; two threads racing to
//! compute it the first time both get the same answer.

use crate::vocab::layout::Layout;
use std::sync::atomic::{AtomicUsize, Ordering};

/// "Not read yet".
const UNKNOWN: usize = usize::MAX;

static LARGE_PAGE: AtomicUsize = AtomicUsize::new(UNKNOWN);
static CPUS: AtomicUsize = AtomicUsize::new(UNKNOWN);
static PHYS_PAGES: AtomicUsize = AtomicUsize::new(UNKNOWN);

fn cached(cell: &AtomicUsize, compute: fn() -> usize) -> usize {
    match cell.load(Ordering::Relaxed) {
        UNKNOWN => {
            let v = compute();
            cell.store(v, Ordering::Relaxed);
            v
        }
        v => v,
    }
}

// The native layout is a fact of this host: it lives with the other facts, in the OS layer.
impl Layout {
    /// The layout of this process: the host page size (at least 4 KiB), 64 KiB granularity,
    /// and the x64 Windows limits.
    pub fn native() -> Layout {
        let page = page_size();
        Layout {
            page_size: page,
            granularity: 0x10000usize.max(page),
            large_page_size: large_page_size(),
            ..Layout::WIN64
        }
    }

}

/// The host page size (at least 4 KiB, as Windows' page).
pub(crate) fn page_size() -> usize {
    rustix::param::page_size().max(0x1000)
}

/// The kernel's default huge-page size (`Hugepagesize` in /proc/meminfo), 0 without huge pages.
pub(crate) fn large_page_size() -> usize {
    cached(&LARGE_PAGE, read_large_page_size)
}

/// The machine's physical memory in bytes (0 if unknown).
pub(crate) fn physical_memory() -> u64 {
    cached(&PHYS_PAGES, read_phys_pages) as u64 * page_size() as u64
}

fn read_phys_pages() -> usize {
    // SAFETY: sysconf only reads system information.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    usize::try_from(pages).unwrap_or(0)
}

/// The processors this process may run on (its affinity mask), at least 1.
pub(crate) fn cpu_count() -> usize {
    cached(&CPUS, read_cpu_count)
}

/// Whether environment variable `name` equals one of `values`, read without the heap
/// (`getenv` returns a pointer into the environment block).
pub(crate) fn env_is(name: &std::ffi::CStr, values: &[&[u8]]) -> bool {
    // SAFETY: getenv reads the environment; the returned pointer, if not NULL, is a
    // NUL-terminated string that stays valid while nobody calls setenv (virtmem never does).
    unsafe {
        let v = libc::getenv(name.as_ptr());
        !v.is_null() && values.contains(&std::ffi::CStr::from_ptr(v).to_bytes())
    }
}

fn read_large_page_size() -> usize {
    let mut buf = [0u8; 8192];
    let n = read_small_file(c"/proc/meminfo", &mut buf);
    hugepagesize_kb(&buf[..n]).map_or(0, |kb| kb * 1024)
}

/// Reads at most `buf.len()` bytes of a procfs file into `buf`; 0 on any error.
pub(super) fn read_small_file(path: &std::ffi::CStr, buf: &mut [u8]) -> usize {
    use rustix::fs::{Mode, OFlags};
    let Ok(fd) = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return 0;
    };
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    len
}

/// The value of the `Hugepagesize:` line of /proc/meminfo, in kB.
fn hugepagesize_kb(meminfo: &[u8]) -> Option<usize> {
    meminfo_kb(meminfo, b"Hugepagesize:")
}

/// The value of line `key` (e.g. `b"MemTotal:"`) of /proc/meminfo, in kB.
pub(super) fn meminfo_kb(meminfo: &[u8], key: &[u8]) -> Option<usize> {
    let line = meminfo
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(key))?;
    let digits = line.iter().skip_while(|b| b.is_ascii_whitespace());
    let mut v: usize = 0;
    let mut any = false;
    for &b in digits.take_while(|b| b.is_ascii_digit()) {
        v = v.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

fn read_cpu_count() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it for the
    // calling thread (pid 0) and reads nothing else.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            return (libc::CPU_COUNT(&set) as usize).max(1);
        }
    }
    // SAFETY: sysconf has no memory arguments.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hugepagesize() {
        assert_eq!(
            hugepagesize_kb(b"MemTotal: 1 kB\nHugepagesize:       2048 kB\n"),
            Some(2048)
        );
        assert_eq!(hugepagesize_kb(b"MemTotal: 1 kB\n"), None);
        assert_eq!(hugepagesize_kb(b"Hugepagesize: kB\n"), None);
    }

    #[test]
    fn facts_are_stable() {
        assert_eq!(large_page_size(), large_page_size());
        assert!(cpu_count() >= 1);
        assert!(page_size() >= 0x1000);
    }
}

/// The kernel's memory figures (/proc/meminfo, now), in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemInfo {
    /// `MemTotal`: usable physical memory.
    pub total: u64,
    /// `MemAvailable`: what can be given to programs without swapping.
    pub available: u64,
    /// `SwapTotal` and `SwapFree`.
    pub swap_total: u64,
    pub swap_free: u64,
    /// `CommitLimit`: the commit charge the kernel allows under strict accounting.
    pub commit_limit: u64,
    /// `Committed_AS`: the commit charge of every process.
    pub committed: u64,
    /// Whether the kernel enforces `CommitLimit` (`vm.overcommit_memory` = 2).
    pub strict: bool,
}

/// Reads [`MemInfo`] (no heap). `None` if /proc/meminfo cannot be read.
pub(crate) fn meminfo() -> Option<MemInfo> {
    let mut buf = [0u8; 8192];
    let n = read_small_file(c"/proc/meminfo", &mut buf);
    let m = &buf[..n];
    let kb = |key: &[u8]| meminfo_kb(m, key).map(|v| v as u64 * 1024);
    let mut policy = [0u8; 8];
    let p = read_small_file(c"/proc/sys/vm/overcommit_memory", &mut policy);
    Some(MemInfo {
        total: kb(b"MemTotal:")?,
        available: kb(b"MemAvailable:").or(kb(b"MemFree:"))?,
        swap_total: kb(b"SwapTotal:").unwrap_or(0),
        swap_free: kb(b"SwapFree:").unwrap_or(0),
        commit_limit: kb(b"CommitLimit:").unwrap_or(0),
        committed: kb(b"Committed_AS:").unwrap_or(0),
        strict: policy[..p].first() == Some(&b'2'),
    })
}

/// Bytes of this process's address space mapped inside `[lo, hi)` (from /proc/self/maps).
pub(crate) fn mapped_bytes(lo: u64, hi: u64) -> u64 {
    let mut total = 0u64;
    super::procmaps::for_each_line(c"/proc/self/maps", &mut |line| {
        let range = line.split(|&b| b == b' ').next().unwrap_or(&[]);
        let mut parts = range.split(|&b| b == b'-');
        let hex = |s: Option<&[u8]>| {
            s.and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| u64::from_str_radix(s, 16).ok())
        };
        if let (Some(a), Some(b)) = (hex(parts.next()), hex(parts.next())) {
            total += b.min(hi).saturating_sub(a.max(lo));
        }
    });
    total
}
