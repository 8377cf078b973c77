//! The process's memory as GetProcessMemoryInfo reports it, the memory resource notification
//! states (Create/QueryMemoryResourceNotification) and what DEP the process really gets.

use super::Space;
use crate::error::{Error, Result};
use crate::os::linux::{procstat, sysfacts, LinuxOs};
use std::sync::atomic::{AtomicU64, Ordering};

/// PROCESS_MEMORY_COUNTERS_EX's figures (bytes, and the fault count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessCounters {
    /// Page faults so far: minor + major (`getrusage`).
    pub page_faults: u64,
    /// Resident memory now (`VmRSS`): the working set.
    pub working_set: u64,
    /// The most ever resident (`VmHWM`).
    pub peak_working_set: u64,
    /// Paged pool charged to the process: Linux charges none that can be paged (0).
    pub paged_pool: u64,
    /// Its peak (0).
    pub peak_paged_pool: u64,
    /// Non-paged pool charged to the process: its page tables (`VmPTE`), kernel memory that
    /// is never paged and grows with the process's mappings.
    pub nonpaged_pool: u64,
    /// The largest page-table size any call has seen (the kernel keeps no peak of its own).
    pub peak_nonpaged_pool: u64,
    /// virtmem's private commit (`engine/commit.rs`): PagefileUsage and PrivateUsage.
    pub private_usage: u64,
    /// Its peak: PeakPagefileUsage.
    pub peak_private_usage: u64,
}

/// The largest `VmPTE` seen.
static PEAK_PTE: AtomicU64 = AtomicU64::new(0);

/// Which condition a memory resource notification object watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryCondition {
    /// LowMemoryResourceNotification: available memory is low.
    Low,
    /// HighMemoryResourceNotification: available memory is high.
    High,
}

/// What the memory resource notifications see now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryResourceState {
    /// Available physical memory (`MemAvailable`), bytes.
    pub available: u64,
    /// The low threshold: about 32 MiB per 4 GiB of physical memory, at most 64 MiB (Microsoft's documentation).
    pub low_threshold: u64,
    /// The high threshold: three times the low one (Microsoft's documentation).
    pub high_threshold: u64,
    /// The `full avg10` of `/proc/pressure/memory` (percent), where the kernel has PSI.
    pub full_pressure: Option<f32>,
    /// Low memory is signalled.
    pub low: bool,
    /// High memory is signalled.
    pub high: bool,
}

impl MemoryResourceState {
    /// Whether a notification object watching `condition` is signalled.
    pub fn signalled(&self, condition: MemoryCondition) -> bool {
        match condition {
            MemoryCondition::Low => self.low,
            MemoryCondition::High => self.high,
        }
    }
}

/// PSI `full avg10` (percent of the last 10 s during which every runnable task was stalled
/// on memory) from which memory counts as low whatever MemAvailable says (our decision).
pub const THRASHING_FULL_AVG10: f32 = 10.0;

/// Windows' rule [doc: CreateMemoryResourceNotification]: low below about 32 MiB per 4 GiB of
/// physical memory (at most 64 MiB), high above three times that; neither in between. virtmem
/// adds PSI where the kernel has it (our decision): when every task stalled on memory for
/// [`THRASHING_FULL_AVG10`] % of the last ten seconds, memory is low (and not high).
pub fn memory_resource_state(
    total: u64,
    available: u64,
    full_pressure: Option<f32>,
) -> MemoryResourceState {
    let low_threshold = (total / 128).min(64 << 20);
    let high_threshold = low_threshold * 3;
    let thrashing = full_pressure.is_some_and(|p| p >= THRASHING_FULL_AVG10);
    let low = available < low_threshold || thrashing;
    MemoryResourceState {
        available,
        low_threshold,
        high_threshold,
        full_pressure,
        low,
        high: !low && available > high_threshold,
    }
}

/// What DEP the process gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepStatus {
    /// The processor enforces no-execute pages (`nx` in /proc/cpuinfo on x86).
    pub nx: bool,
    /// The `READ_IMPLIES_EXEC` personality: readable mappings are executable too.
    pub read_implies_exec: bool,
}

impl DepStatus {
    /// Data pages are not executable in this process.
    pub fn enforced(&self) -> bool {
        self.nx && !self.read_implies_exec
    }
}

/// The DEP status of this process, now.
pub fn dep_status() -> DepStatus {
    DepStatus {
        nx: procstat::cpu_has_nx(),
        read_implies_exec: procstat::personality() & procstat::READ_IMPLIES_EXEC != 0,
    }
}

impl Space<LinuxOs> {
    /// GetProcessMemoryInfo's figures, now.
    pub fn process_counters(&self) -> Result<ProcessCounters> {
        let s = procstat::status().ok_or(Error::NotSupported("/proc/self/status is unreadable"))?;
        let peak_pte = PEAK_PTE.fetch_max(s.page_tables, Ordering::Relaxed).max(s.page_tables);
        let (private, peak) = super::commit::private_commit();
        Ok(ProcessCounters {
            page_faults: procstat::page_faults(),
            working_set: s.rss,
            peak_working_set: s.rss_peak.max(s.rss),
            paged_pool: 0,
            peak_paged_pool: 0,
            nonpaged_pool: s.page_tables,
            peak_nonpaged_pool: peak_pte,
            private_usage: private as u64,
            peak_private_usage: peak as u64,
        })
    }

    /// CreateMemoryResourceNotification: a handle (in the one handle table) to an object
    /// watching `condition`.
    pub fn create_memory_notification(&self, condition: MemoryCondition) -> usize {
        self.handles().insert(super::handles::Entry {
            object: super::handles::Object::MemoryNotification(condition),
            access: 0,
        })
    }

    /// The condition a memory resource notification handle watches; ERROR_INVALID_HANDLE for
    /// a closed handle or another kind of object.
    pub fn memory_notification(&self, h: usize) -> Result<MemoryCondition> {
        self.handles()
            .with(h, super::handles::Entry::memory_notification)?
    }

    /// The memory resource notification state, now.
    pub fn memory_resource_state(&self) -> Result<MemoryResourceState> {
        let m = sysfacts::meminfo().ok_or(Error::NotSupported("/proc/meminfo is unreadable"))?;
        Ok(memory_resource_state(
            m.total,
            m.available,
            procstat::memory_pressure_full_avg10(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn thresholds_follow_windows() {
        // 4 GiB: low below 32 MiB, high above 96 MiB.
        let s = memory_resource_state(4 * GIB, 20 * MIB, None);
        assert_eq!((s.low_threshold, s.high_threshold), (32 * MIB, 96 * MIB));
        assert!(s.low && !s.high);
        let s = memory_resource_state(4 * GIB, 50 * MIB, None);
        assert!(!s.low && !s.high, "between the thresholds: neither");
        let s = memory_resource_state(4 * GIB, 97 * MIB, None);
        assert!(!s.low && s.high);
        // 24 GiB: capped at 64 MiB / 192 MiB.
        let s = memory_resource_state(24 * GIB, GIB, None);
        assert_eq!((s.low_threshold, s.high_threshold), (64 * MIB, 192 * MIB));
        assert!(s.high);
        // Thrashing is low, never high.
        let s = memory_resource_state(24 * GIB, GIB, Some(50.0));
        assert!(s.low && !s.high);
        let s = memory_resource_state(24 * GIB, GIB, Some(1.0));
        assert!(!s.low && s.high);
    }
}
