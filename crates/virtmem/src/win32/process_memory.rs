//! The process's memory status: GetProcessMemoryInfo, the working-set calls, EmptyWorkingSet,
//! the memory resource notifications and the DEP calls (issue 15 item 2).
//!
//! Process handles go through [`current_only`](super::process::current_only), the one check of
//! a process handle: another process's counters are not available (ERROR_NOT_SUPPORTED, after
//! the handle's access right was checked).

use super::consts::*;
use super::last_error::win32_call;
use super::process::{current_only, Need};
use super::types::*;
use crate::engine::process_status::{dep_status, MemoryCondition};
use crate::engine::Space;
use crate::error::Error;

/// Fills a PROCESS_MEMORY_COUNTERS (`cb` at least 72) or, when `cb` is large enough, a
/// PROCESS_MEMORY_COUNTERS_EX (80); `cb` receives the size written. A smaller `cb` fails
/// with ERROR_INSUFFICIENT_BUFFER, checked after the handle (a bad handle → 6) [Windows-run
/// psapi tests]; NULL counters → ERROR_NOACCESS.
///
/// The figures: PageFaultCount = minor + major faults (`getrusage`, saturating at
/// `u32::MAX`); WorkingSetSize / PeakWorkingSetSize = `VmRSS` / `VmHWM`; the paged pool is
/// 0 (Linux charges processes no pageable kernel memory); the non-paged pool is the page
/// tables (`VmPTE`), its peak the largest seen by any call; PagefileUsage = PrivateUsage =
/// virtmem's private commit, PeakPagefileUsage its peak (`engine/commit.rs`).
#[no_mangle]
pub unsafe extern "system" fn K32GetProcessMemoryInfo(
    process: HANDLE,
    ppsmemcounters: *mut PROCESS_MEMORY_COUNTERS,
    cb: u32,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(process, Need::QueryRead)?;
        if (cb as usize) < size_of::<PROCESS_MEMORY_COUNTERS>() {
            return Err(Error::InsufficientBuffer);
        }
        if ppsmemcounters.is_null() {
            return Err(Error::NoAccess("ppsmemCounters is NULL"));
        }
        let c = Space::native().process_counters()?;
        let z = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let ex = PROCESS_MEMORY_COUNTERS_EX {
            cb: size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32,
            PageFaultCount: u32::try_from(c.page_faults).unwrap_or(u32::MAX),
            PeakWorkingSetSize: z(c.peak_working_set),
            WorkingSetSize: z(c.working_set),
            QuotaPeakPagedPoolUsage: z(c.peak_paged_pool),
            QuotaPagedPoolUsage: z(c.paged_pool),
            QuotaPeakNonPagedPoolUsage: z(c.peak_nonpaged_pool),
            QuotaNonPagedPoolUsage: z(c.nonpaged_pool),
            PagefileUsage: z(c.private_usage),
            PeakPagefileUsage: z(c.peak_private_usage),
            PrivateUsage: z(c.private_usage),
        };
        if (cb as usize) >= size_of::<PROCESS_MEMORY_COUNTERS_EX>() {
            // SAFETY: non-NULL; the caller says `cb` writable bytes are there.
            unsafe {
                ppsmemcounters
                    .cast::<PROCESS_MEMORY_COUNTERS_EX>()
                    .write_unaligned(ex)
            };
        } else {
            let basic = PROCESS_MEMORY_COUNTERS {
                cb: size_of::<PROCESS_MEMORY_COUNTERS>() as u32,
                PageFaultCount: ex.PageFaultCount,
                PeakWorkingSetSize: ex.PeakWorkingSetSize,
                WorkingSetSize: ex.WorkingSetSize,
                QuotaPeakPagedPoolUsage: ex.QuotaPeakPagedPoolUsage,
                QuotaPagedPoolUsage: ex.QuotaPagedPoolUsage,
                QuotaPeakNonPagedPoolUsage: ex.QuotaPeakNonPagedPoolUsage,
                QuotaNonPagedPoolUsage: ex.QuotaNonPagedPoolUsage,
                PagefileUsage: ex.PagefileUsage,
                PeakPagefileUsage: ex.PeakPagefileUsage,
            };
            // SAFETY: as above, `cb` ≥ size_of::<PROCESS_MEMORY_COUNTERS>().
            unsafe { ppsmemcounters.write_unaligned(basic) };
        }
        Ok(TRUE)
    })
}

/// The psapi name of [`K32GetProcessMemoryInfo`].
#[no_mangle]
pub unsafe extern "system" fn GetProcessMemoryInfo(
    process: HANDLE,
    ppsmemcounters: *mut PROCESS_MEMORY_COUNTERS,
    cb: u32,
) -> BOOL {
    // SAFETY: same contract.
    unsafe { K32GetProcessMemoryInfo(process, ppsmemcounters, cb) }
}

/// The minimum and maximum working set and the enforcement flags. The minimum is the lock
/// quota VirtualLock enforces (`RLIMIT_MEMLOCK`; see `engine/working_set.rs`). NULL
/// pointers → ERROR_NOACCESS.
#[no_mangle]
pub unsafe extern "system" fn GetProcessWorkingSetSizeEx(
    hprocess: HANDLE,
    lpminimumworkingsetsize: *mut usize,
    lpmaximumworkingsetsize: *mut usize,
    flags: *mut u32,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::QueryLimited)?;
        if lpminimumworkingsetsize.is_null() || lpmaximumworkingsetsize.is_null() || flags.is_null()
        {
            return Err(Error::NoAccess("an output pointer is NULL"));
        }
        let l = Space::native().working_set_limits();
        // SAFETY: non-NULL; the caller's writable SIZE_T and DWORD.
        unsafe {
            lpminimumworkingsetsize.write_unaligned(l.minimum);
            lpmaximumworkingsetsize.write_unaligned(l.maximum);
            flags.write_unaligned(l.flags);
        }
        Ok(TRUE)
    })
}

/// GetProcessWorkingSetSizeEx without the flags.
#[no_mangle]
pub unsafe extern "system" fn GetProcessWorkingSetSize(
    hprocess: HANDLE,
    lpminimumworkingsetsize: *mut usize,
    lpmaximumworkingsetsize: *mut usize,
) -> BOOL {
    let mut f = 0u32;
    // SAFETY: forwarded contract; `f` is ours.
    unsafe {
        GetProcessWorkingSetSizeEx(
            hprocess,
            lpminimumworkingsetsize,
            lpmaximumworkingsetsize,
            &mut f,
        )
    }
}

/// Sets the working-set limits, or trims the working set when both sizes are `(SIZE_T)-1`.
/// Raising the minimum raises the lock quota VirtualLock enforces (one number). Errors:
/// ERROR_INVALID_PARAMETER (zero sizes, minimum above maximum, maximum below 13 pages,
/// conflicting or unknown flags); ERROR_NO_SYSTEM_RESOURCES (a minimum the process may not
/// lock — above the hard `RLIMIT_MEMLOCK` without CAP_SYS_RESOURCE — or a maximum at the
/// system ceiling). See `engine/working_set.rs`.
#[no_mangle]
pub unsafe extern "system" fn SetProcessWorkingSetSizeEx(
    hprocess: HANDLE,
    dwminimumworkingsetsize: usize,
    dwmaximumworkingsetsize: usize,
    flags: SETPROCESSWORKINGSETSIZEEX_FLAGS,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::SetQuota)?;
        Space::native()
            .set_working_set_limits(dwminimumworkingsetsize, dwmaximumworkingsetsize, flags)
            .map(|()| TRUE)
    })
}

/// SetProcessWorkingSetSizeEx with flags 0 (the enforcement flags stay as they are).
#[no_mangle]
pub unsafe extern "system" fn SetProcessWorkingSetSize(
    hprocess: HANDLE,
    dwminimumworkingsetsize: usize,
    dwmaximumworkingsetsize: usize,
) -> BOOL {
    // SAFETY: forwarded contract.
    unsafe {
        SetProcessWorkingSetSizeEx(
            hprocess,
            dwminimumworkingsetsize,
            dwmaximumworkingsetsize,
            0,
        )
    }
}

/// Removes as many pages as possible from the working set without losing data: the
/// committed, unlocked pages of virtmem's allocations are paged out (`MADV_PAGEOUT`); where
/// the kernel has no swap, anonymous pages stay resident. Write-watch state and contents are
/// kept.
#[no_mangle]
pub unsafe extern "system" fn K32EmptyWorkingSet(hprocess: HANDLE) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::SetQuota)?;
        Space::native().empty_working_set().map(|()| TRUE)
    })
}

/// The psapi name of [`K32EmptyWorkingSet`].
#[no_mangle]
pub unsafe extern "system" fn EmptyWorkingSet(hprocess: HANDLE) -> BOOL {
    // SAFETY: same contract.
    unsafe { K32EmptyWorkingSet(hprocess) }
}

/// A memory resource notification object for low or high available memory, in the same
/// handle table as sections and files (closed by CloseHandle). Any other type →
/// ERROR_INVALID_PARAMETER.
#[no_mangle]
pub extern "system" fn CreateMemoryResourceNotification(
    notificationtype: MEMORY_RESOURCE_NOTIFICATION_TYPE,
) -> HANDLE {
    win32_call(std::ptr::null_mut(), || {
        let condition = if notificationtype == LowMemoryResourceNotification {
            MemoryCondition::Low
        } else if notificationtype == HighMemoryResourceNotification {
            MemoryCondition::High
        } else {
            return Err(Error::InvalidParameter("unknown notification type"));
        };
        Ok(Space::native().create_memory_notification(condition) as HANDLE)
    })
}

/// Whether the object's condition holds now: low memory below about 32 MiB per 4 GiB of
/// physical memory (at most 64 MiB) of `MemAvailable`, high above three times that (plus PSI
/// thrashing counting as low; see `engine/process_status.rs`). A handle that is not a memory
/// resource notification → ERROR_INVALID_HANDLE; NULL `ResourceState` → ERROR_NOACCESS.
#[no_mangle]
pub unsafe extern "system" fn QueryMemoryResourceNotification(
    resourcenotificationhandle: HANDLE,
    resourcestate: *mut BOOL,
) -> BOOL {
    win32_call(FALSE, || {
        let s = Space::native();
        let condition = s.memory_notification(resourcenotificationhandle as usize)?;
        if resourcestate.is_null() {
            return Err(Error::NoAccess("ResourceState is NULL"));
        }
        let on = s.memory_resource_state()?.signalled(condition);
        // SAFETY: non-NULL; the caller's writable BOOL.
        unsafe { resourcestate.write_unaligned(BOOL::from(on)) };
        Ok(TRUE)
    })
}

/// The system's DEP policy: DEPPolicyOptOut where the processor has no-execute pages (every
/// process gets DEP unless it opts out with the `READ_IMPLIES_EXEC` personality, e.g.
/// `setarch -X`), DEPPolicyAlwaysOff without [ours: Linux's closest reading of Windows'
/// policies].
#[no_mangle]
pub extern "system" fn GetSystemDEPPolicy() -> DEP_SYSTEM_POLICY_TYPE {
    if dep_status().nx {
        DEPPolicyOptOut
    } else {
        DEPPolicyAlwaysOff
    }
}

/// What DEP this process gets: `*lpFlags` = PROCESS_DEP_ENABLE |
/// PROCESS_DEP_DISABLE_ATL_THUNK_EMULATION (there is no thunk emulation) when data pages
/// are not executable (no-execute pages and no `READ_IMPLIES_EXEC` personality), else 0;
/// `*lpPermanent` = TRUE (SetProcessDEPPolicy cannot change it). Windows documents this call
/// as failing with ERROR_NOT_SUPPORTED in 64-bit processes, whose DEP is always on and
/// permanent; on Linux DEP can really be off, so virtmem answers instead (our decision). NULL
/// pointers → ERROR_NOACCESS.
#[no_mangle]
pub unsafe extern "system" fn GetProcessDEPPolicy(
    hprocess: HANDLE,
    lpflags: *mut u32,
    lppermanent: *mut BOOL,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::QueryLimited)?;
        if lpflags.is_null() || lppermanent.is_null() {
            return Err(Error::NoAccess("an output pointer is NULL"));
        }
        let flags = if dep_status().enforced() {
            PROCESS_DEP_ENABLE | PROCESS_DEP_DISABLE_ATL_THUNK_EMULATION
        } else {
            PROCESS_DEP_NONE
        };
        // SAFETY: non-NULL; the caller's writable DWORD and BOOL.
        unsafe {
            lpflags.write_unaligned(flags);
            lppermanent.write_unaligned(TRUE);
        }
        Ok(TRUE)
    })
}

/// Always fails with ERROR_NOT_SUPPORTED, as on Windows in a 64-bit process (Microsoft's documentation).
#[no_mangle]
pub extern "system" fn SetProcessDEPPolicy(_dwflags: PROCESS_DEP_FLAGS) -> BOOL {
    win32_call(FALSE, || {
        Err(Error::NotSupported(
            "SetProcessDEPPolicy is supported for 32-bit processes only",
        ))
    })
}
