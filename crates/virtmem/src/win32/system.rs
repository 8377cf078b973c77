//! System information and the small functions around the memory API.

use super::consts::*;
use super::last_error::win32_call;
use super::types::*;
use crate::engine::Space;
use crate::error::Error;
use crate::os::Os;
use core::ffi::c_void;

/// The host's processor, as SYSTEM_INFO describes it.
fn processor() -> (PROCESSOR_ARCHITECTURE, u32, u16, u16) {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID leaf 1 exists on every x86-64 processor.
        let r = core::arch::x86_64::__cpuid(1);
        let family = (r.eax >> 8) & 0xF;
        let ext_family = (r.eax >> 20) & 0xFF;
        let model = ((r.eax >> 4) & 0xF) | (((r.eax >> 16) & 0xF) << 4);
        let stepping = r.eax & 0xF;
        let level = if family == 0xF {
            family + ext_family
        } else {
            family
        };
        (
            PROCESSOR_ARCHITECTURE_AMD64,
            PROCESSOR_AMD_X8664,
            level as u16,
            ((model << 8) | stepping) as u16,
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        (PROCESSOR_ARCHITECTURE_ARM64, 0, 0, 0)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        (PROCESSOR_ARCHITECTURE_UNKNOWN, 0, 0, 0)
    }
}

/// The SYSTEM_INFO of an address space with this layout.
pub(crate) fn system_info(layout: &crate::vocab::layout::Layout) -> SYSTEM_INFO {
    let cpus = crate::os::linux::sysfacts::cpu_count();
    let (arch, ptype, level, revision) = processor();
    SYSTEM_INFO {
        Anonymous: SYSTEM_INFO_0 {
            Anonymous: SYSTEM_INFO_0_0 {
                wProcessorArchitecture: arch,
                wReserved: 0,
            },
        },
        dwPageSize: layout.page_size as u32,
        lpMinimumApplicationAddress: layout.min_address as *mut c_void,
        lpMaximumApplicationAddress: layout.max_address as *mut c_void,
        dwActiveProcessorMask: if cpus >= usize::BITS as usize {
            usize::MAX
        } else {
            (1usize << cpus) - 1
        },
        dwNumberOfProcessors: cpus as u32,
        dwProcessorType: ptype,
        dwAllocationGranularity: layout.granularity as u32,
        wProcessorLevel: level,
        wProcessorRevision: revision,
    }
}

/// Reports page size, allocation granularity, user-space limits and the processors.
#[no_mangle]
pub unsafe extern "system" fn GetSystemInfo(lpsysteminfo: *mut SYSTEM_INFO) {
    if lpsysteminfo.is_null() {
        return; // Windows would raise an access violation; there is nothing to fill.
    }
    // The layout alone: no address space is created, nothing is allocated (a malloc built
    // on virtmem calls this first).
    let info = system_info(&crate::vocab::layout::Layout::native());
    // SAFETY: non-NULL; the caller passes a writable SYSTEM_INFO.
    unsafe { lpsysteminfo.write_unaligned(info) };
}

/// The same as GetSystemInfo (virtmem processes are native, never emulated).
#[no_mangle]
pub unsafe extern "system" fn GetNativeSystemInfo(lpsysteminfo: *mut SYSTEM_INFO) {
    // SAFETY: same contract.
    unsafe { GetSystemInfo(lpsysteminfo) }
}

/// The large-page size: the kernel's default huge page size (`Hugepagesize` in
/// /proc/meminfo), or 0 if the kernel has no huge pages.
#[no_mangle]
pub extern "system" fn GetLargePageMinimum() -> usize {
    crate::os::linux::sysfacts::large_page_size()
}

/// The pseudo-handle of the current process, `(HANDLE)-1`.
#[no_mangle]
pub extern "system" fn GetCurrentProcess() -> HANDLE {
    CURRENT_PROCESS
}

/// Makes newly written code visible to instruction fetch. Returns TRUE. For another process
/// there is nothing to do: the only way virtmem writes into one (WriteProcessMemory, through
/// the kernel's `/proc/<pid>/mem`) keeps its instruction cache coherent already.
#[no_mangle]
pub unsafe extern "system" fn FlushInstructionCache(
    hprocess: HANDLE,
    lpbaseaddress: *const c_void,
    dwsize: usize,
) -> BOOL {
    win32_call(FALSE, || {
        let target = super::process::resolve(hprocess, super::process::Need::Nothing)?;
        if let crate::engine::Target::Current = target {
            Space::native()
                .os()
                .flush_instruction_cache(lpbaseaddress as usize, dwsize);
        }
        Ok(TRUE)
    })
}

/// The machine's memory: physical (from the kernel), the commit limit and what is left of it
/// (`vm.overcommit_memory` = 2: the kernel's `CommitLimit`; else physical memory plus swap),
/// and the process's address space. `dwLength` must be `size_of::<MEMORYSTATUSEX>()` (else
/// ERROR_INVALID_PARAMETER).
#[no_mangle]
pub unsafe extern "system" fn GlobalMemoryStatusEx(lpbuffer: *mut MEMORYSTATUSEX) -> BOOL {
    win32_call(FALSE, || {
        if lpbuffer.is_null() {
            return Err(Error::NoAccess("lpBuffer is NULL"));
        }
        // SAFETY: non-NULL; the caller passes a MEMORYSTATUSEX (its length is read first).
        let len = unsafe { std::ptr::addr_of!((*lpbuffer).dwLength).read_unaligned() };
        if len as usize != std::mem::size_of::<MEMORYSTATUSEX>() {
            return Err(Error::InvalidParameter(
                "dwLength is not sizeof(MEMORYSTATUSEX)",
            ));
        }
        let s = crate::engine::Space::native().memory_status()?;
        let out = MEMORYSTATUSEX {
            dwLength: len,
            dwMemoryLoad: s.load,
            ullTotalPhys: s.total_phys,
            ullAvailPhys: s.avail_phys,
            ullTotalPageFile: s.total_page_file,
            ullAvailPageFile: s.avail_page_file,
            ullTotalVirtual: s.total_virtual,
            ullAvailVirtual: s.avail_virtual,
            ullAvailExtendedVirtual: 0,
        };
        // SAFETY: as above; the caller's buffer is writable.
        unsafe { lpbuffer.write_unaligned(out) };
        Ok(TRUE)
    })
}

/// GlobalMemoryStatusEx in the legacy form (sets `dwLength` itself; figures clamp to
/// `usize::MAX`, which on 64-bit targets never happens).
#[no_mangle]
pub unsafe extern "system" fn GlobalMemoryStatus(lpbuffer: *mut MEMORYSTATUS) {
    if lpbuffer.is_null() {
        return; // Windows would raise an access violation; there is nothing to fill.
    }
    let Ok(s) = crate::engine::Space::native().memory_status() else {
        return;
    };
    let z = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let out = MEMORYSTATUS {
        dwLength: std::mem::size_of::<MEMORYSTATUS>() as u32,
        dwMemoryLoad: s.load,
        dwTotalPhys: z(s.total_phys),
        dwAvailPhys: z(s.avail_phys),
        dwTotalPageFile: z(s.total_page_file),
        dwAvailPageFile: z(s.avail_page_file),
        dwTotalVirtual: z(s.total_virtual),
        dwAvailVirtual: z(s.avail_virtual),
    };
    // SAFETY: non-NULL; the caller passes a writable MEMORYSTATUS.
    unsafe { lpbuffer.write_unaligned(out) };
}

/// The machine's memory in KiB (what the kernel manages: Linux gives unprivileged programs
/// no access to the firmware's list of memory modules). NULL → ERROR_INVALID_PARAMETER.
#[no_mangle]
pub unsafe extern "system" fn GetPhysicallyInstalledSystemMemory(
    totalmemoryinkilobytes: *mut u64,
) -> BOOL {
    win32_call(FALSE, || {
        if totalmemoryinkilobytes.is_null() {
            return Err(Error::InvalidParameter("TotalMemoryInKilobytes is NULL"));
        }
        let kib = crate::engine::Space::native().installed_memory_kib()?;
        // SAFETY: non-NULL; the caller passes a writable u64.
        unsafe { totalmemoryinkilobytes.write_unaligned(kib) };
        Ok(TRUE)
    })
}
