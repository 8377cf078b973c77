//! GlobalMemoryStatusEx and GetPhysicallyInstalledSystemMemory: the machine's memory as a
//! Windows program sizing its caches expects to see it, from the kernel's figures.

use super::Space;
use crate::error::{Error, Result};
use crate::os::linux::{sysfacts, LinuxOs};

/// What GlobalMemoryStatusEx reports (bytes, and the load in percent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStatus {
    /// Percent of physical memory in use (0–100).
    pub load: u32,
    /// Usable physical memory (`MemTotal`).
    pub total_phys: u64,
    /// Physical memory available without swapping (`MemAvailable`).
    pub avail_phys: u64,
    /// The commit limit: `CommitLimit` where the kernel enforces it (`vm.overcommit_memory`
    /// = 2), else physical memory plus swap.
    pub total_page_file: u64,
    /// What can still be committed: `CommitLimit - Committed_AS` under strict accounting,
    /// else available physical memory plus free swap.
    pub avail_page_file: u64,
    /// The user address space (`lpMaximumApplicationAddress + 1 - lpMinimumApplicationAddress`).
    pub total_virtual: u64,
    /// The part of it nothing is mapped in (reserved counts as used, as on Windows).
    pub avail_virtual: u64,
}

impl Space<LinuxOs> {
    /// GlobalMemoryStatusEx's figures, now.
    pub fn memory_status(&self) -> Result<MemoryStatus> {
        let m = sysfacts::meminfo().ok_or(Error::NotSupported("/proc/meminfo is unreadable"))?;
        let (lo, hi) = (
            self.layout.min_address as u64,
            self.layout.max_address as u64 + 1,
        );
        let total_virtual = hi - lo;
        let (total_page_file, avail_page_file) = if m.strict {
            (m.commit_limit, m.commit_limit.saturating_sub(m.committed))
        } else {
            (m.total + m.swap_total, m.available + m.swap_free)
        };
        let used = m.total.saturating_sub(m.available);
        Ok(MemoryStatus {
            load: used
                .saturating_mul(100)
                .checked_div(m.total)
                .map_or(0, |l| l.min(100) as u32),
            total_phys: m.total,
            avail_phys: m.available.min(m.total),
            total_page_file,
            avail_page_file: avail_page_file.min(total_page_file),
            total_virtual,
            avail_virtual: total_virtual.saturating_sub(sysfacts::mapped_bytes(lo, hi)),
        })
    }

    /// GetPhysicallyInstalledSystemMemory: the machine's memory in KiB (what the kernel
    /// manages; Linux gives no unprivileged access to the firmware's table of modules).
    pub fn installed_memory_kib(&self) -> Result<u64> {
        let m = sysfacts::meminfo().ok_or(Error::NotSupported("/proc/meminfo is unreadable"))?;
        Ok(m.total / 1024)
    }
}
