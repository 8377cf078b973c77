//! What the kernel knows about this process's memory, for GetProcessMemoryInfo, the working
//! set calls, the memory resource notifications and the DEP calls: `/proc/self/status`
//! figures, page-fault counts (`getrusage`), the lock limit (`RLIMIT_MEMLOCK`) and whether the
//! kernel enforces it (`CAP_IPC_LOCK`), memory pressure (`/proc/pressure/memory`), the NX
//! flag and the `READ_IMPLIES_EXEC` personality. Stack buffers only, no heap, no locks.

use super::sysfacts::{meminfo_kb, read_small_file};
use crate::os::{OsError, OsErrorKind, Syscall};

/// This process's memory as `/proc/self/status` reports it (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcStatus {
    /// `VmRSS`: resident pages now (the working set).
    pub rss: u64,
    /// `VmHWM`: the most ever resident (peak working set).
    pub rss_peak: u64,
    /// `VmLck`: locked memory (what `RLIMIT_MEMLOCK` counts).
    pub locked: u64,
    /// `VmPTE`: the page tables of the process (kernel memory its mappings cost).
    pub page_tables: u64,
    /// `VmSwap`: anonymous pages swapped out.
    pub swapped: u64,
    /// `CapEff` has CAP_IPC_LOCK: the kernel lets the process lock beyond `RLIMIT_MEMLOCK`.
    pub cap_ipc_lock: bool,
}

/// Reads [`ProcStatus`]; `None` if `/proc/self/status` cannot be read.
pub(crate) fn status() -> Option<ProcStatus> {
    let mut buf = [0u8; 8192];
    let n = read_small_file(c"/proc/self/status", &mut buf);
    let s = &buf[..n];
    let kb = |key: &[u8]| meminfo_kb(s, key).map(|v| v as u64 * 1024);
    let cap_eff = s
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"CapEff:"))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    Some(ProcStatus {
        rss: kb(b"VmRSS:")?,
        rss_peak: kb(b"VmHWM:").unwrap_or(0),
        locked: kb(b"VmLck:").unwrap_or(0),
        page_tables: kb(b"VmPTE:").unwrap_or(0),
        swapped: kb(b"VmSwap:").unwrap_or(0),
        cap_ipc_lock: cap_eff & (1 << CAP_IPC_LOCK) != 0,
    })
}

/// The capability number of CAP_IPC_LOCK.
const CAP_IPC_LOCK: u32 = 14;

/// Whether the calling process has CAP_IPC_LOCK in its effective set (`capget`, one system
/// call: cheaper than reading `/proc/self/status`).
pub(crate) fn has_cap_ipc_lock() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3: two data words
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget reads the header and writes two data words, both ours and sized for
    // version 3.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    r == 0 && d[0].effective & (1 << CAP_IPC_LOCK) != 0
}

/// Page faults of the process so far (minor + major, `getrusage(RUSAGE_SELF)`).
pub(crate) fn page_faults() -> u64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0;
    }
    (u.ru_minflt as u64).saturating_add(u.ru_majflt as u64)
}

/// `RLIMIT_MEMLOCK` as (soft, hard); `None` is unlimited.
pub(crate) fn memlock_limit() -> (Option<u64>, Option<u64>) {
    let l = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    (l.current, l.maximum)
}

/// Sets `RLIMIT_MEMLOCK` to (soft, hard) (`None`: unlimited). Raising the hard limit needs
/// CAP_SYS_RESOURCE: without it the kernel refuses (`EPERM`).
pub(crate) fn set_memlock_limit(soft: Option<u64>, hard: Option<u64>) -> Result<(), OsError> {
    rustix::process::setrlimit(
        rustix::process::Resource::Memlock,
        rustix::process::Rlimit {
            current: soft,
            maximum: hard,
        },
    )
    .map_err(|e| super::err(Syscall::Lock, e, OsErrorKind::LockQuota))
}

/// The `full avg10` figure of `/proc/pressure/memory` (percent of the last 10 s during
/// which every non-idle task was stalled waiting for memory), or `None` where the kernel has
/// no PSI.
pub(crate) fn memory_pressure_full_avg10() -> Option<f32> {
    let mut buf = [0u8; 512];
    let n = read_small_file(c"/proc/pressure/memory", &mut buf);
    let line = buf[..n]
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"full "))?;
    let v = line
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(b"avg10="))?;
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Whether the processor enforces no-execute pages: the `nx` flag of `/proc/cpuinfo` on
/// x86 (every x86-64 processor has it); other 64-bit architectures always have a no-execute
/// permission.
pub(crate) fn cpu_has_nx() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        let mut found = false;
        super::procmaps::for_each_line(c"/proc/cpuinfo", &mut |line| {
            if !found && line.starts_with(b"flags") {
                found = line.split(|&b| b == b' ' || b == b'\t').any(|w| w == b"nx");
            }
        });
        found
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        true
    }
}

/// The `READ_IMPLIES_EXEC` bit of the process personality.
pub(crate) const READ_IMPLIES_EXEC: u32 = 0x0040_0000;

/// The process personality (`personality(0xffffffff)` reads it without changing it).
pub(crate) fn personality() -> u32 {
    // SAFETY: 0xffffffff only queries.
    let p = unsafe { libc::personality(0xffff_ffff) };
    p as u32
}

/// `madvise(MADV_PAGEOUT)`: asks the kernel to reclaim the range's pages now (written to
/// swap where there is swap; data is never lost). Locked and huge-page mappings are refused
/// by the kernel (`EINVAL`).
pub(crate) fn page_out(addr: usize, len: usize) -> Result<(), OsError> {
    // SAFETY: MADV_PAGEOUT never changes contents: pages are written out before they are
    // dropped, and read back on the next access.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
    if r == 0 {
        Ok(())
    } else {
        let e = rustix::io::Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        Err(super::err(Syscall::LazyFree, e, OsErrorKind::Other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_status() {
        let s = status().expect("/proc/self/status");
        assert!(s.rss > 0 && s.rss_peak >= s.rss);
        assert!(page_faults() > 0);
    }
}
