//! The memory functions of `Win32::System::Memory`.

use super::consts::*;
use super::last_error::win32_call;
use super::types::*;
use crate::engine::{MemoryInfo, Space};
use crate::error::{Error, Result};
use crate::rules::requests::AllocFlavor;
use core::ffi::c_void;
use std::ptr::null_mut;

/// The process handle check of every `...Ex` function: only the current process (the
/// pseudo-handle `GetCurrentProcess()` returns) is reachable.
fn check_process(h: HANDLE) -> Result<()> {
    if h == CURRENT_PROCESS {
        Ok(())
    } else {
        Err(Error::InvalidHandle)
    }
}

fn alloc(
    addr: *const c_void,
    size: usize,
    alloc_type: u32,
    protect: u32,
    from_app: bool,
) -> *mut c_void {
    win32_call(null_mut(), || {
        Space::native()
            .virtual_alloc(
                addr as usize,
                size,
                alloc_type,
                protect,
                AllocFlavor { from_app },
            )
            .map(|p| p as *mut c_void)
    })
}

/// Reserves, commits, resets or un-resets pages of this process (see `semantics.md` §2).
#[no_mangle]
pub unsafe extern "system" fn VirtualAlloc(
    lpaddress: *const c_void,
    dwsize: usize,
    flallocationtype: VIRTUAL_ALLOCATION_TYPE,
    flprotect: PAGE_PROTECTION_FLAGS,
) -> *mut c_void {
    alloc(lpaddress, dwsize, flallocationtype, flprotect, false)
}

/// VirtualAlloc in a process: only the current process (`GetCurrentProcess()`) is supported;
/// any other handle fails with ERROR_INVALID_HANDLE.
#[no_mangle]
pub unsafe extern "system" fn VirtualAllocEx(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    dwsize: usize,
    flallocationtype: VIRTUAL_ALLOCATION_TYPE,
    flprotect: PAGE_PROTECTION_FLAGS,
) -> *mut c_void {
    if let Err(e) = check_process(hprocess) {
        return win32_call(null_mut(), || Err(e));
    }
    alloc(lpaddress, dwsize, flallocationtype, flprotect, false)
}

/// VirtualAllocEx with a preferred NUMA node (the node is a preference; it is ignored).
#[no_mangle]
pub unsafe extern "system" fn VirtualAllocExNuma(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    dwsize: usize,
    flallocationtype: VIRTUAL_ALLOCATION_TYPE,
    flprotect: u32,
    _nndpreferred: u32,
) -> *mut c_void {
    // SAFETY: same contract as VirtualAllocEx.
    unsafe { VirtualAllocEx(hprocess, lpaddress, dwsize, flallocationtype, flprotect) }
}

/// VirtualAlloc for apps: any PAGE_EXECUTE* protection fails with ERROR_INVALID_PARAMETER.
#[no_mangle]
pub unsafe extern "system" fn VirtualAllocFromApp(
    baseaddress: *const c_void,
    size: usize,
    allocationtype: VIRTUAL_ALLOCATION_TYPE,
    protection: u32,
) -> *mut c_void {
    alloc(baseaddress, size, allocationtype, protection, true)
}

/// Validates VirtualAlloc2's extra arguments; `Ok` means "behave like VirtualAlloc".
unsafe fn alloc2_checks(
    process: HANDLE,
    baseaddress: usize,
    size: usize,
    allocationtype: u32,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> Result<()> {
    if !process.is_null() {
        check_process(process)?; // NULL means the current process.
    }
    if parametercount > 0 {
        if extendedparameters.is_null() {
            return Err(Error::InvalidParameter(
                "extended parameters: count without array",
            ));
        }
        let mut seen = 0u64;
        for i in 0..parametercount as usize {
            // SAFETY: the caller passes `parametercount` readable parameters.
            let p = unsafe { &*extendedparameters.add(i) };
            let ty = (p.Anonymous1._bitfield & 0xFF) as i32;
            if ty <= MemExtendedParameterInvalidType || ty >= MemExtendedParameterMax {
                return Err(Error::InvalidParameter("invalid extended parameter type"));
            }
            if seen & (1 << ty) != 0 {
                return Err(Error::InvalidParameter(
                    "extended parameter type given twice",
                ));
            }
            seen |= 1 << ty;
        }
    }
    let placeholder = allocationtype & (MEM_RESERVE_PLACEHOLDER | MEM_REPLACE_PLACEHOLDER);
    if placeholder != 0 {
        if allocationtype & MEM_RESERVE == 0 {
            return Err(Error::InvalidParameter(
                "placeholder flags need MEM_RESERVE",
            ));
        }
        if allocationtype & MEM_RESERVE_PLACEHOLDER != 0 && pageprotection != PAGE_NOACCESS {
            return Err(Error::InvalidParameter(
                "a placeholder must be PAGE_NOACCESS",
            ));
        }
        if allocationtype & MEM_REPLACE_PLACEHOLDER != 0 {
            // virtmem creates no placeholders, so whatever is there is not one.
            return Err(Error::InvalidAddress("the range is not a placeholder"));
        }
        let s = Space::native();
        let l = s.layout();
        if baseaddress != 0 {
            let start = l.granule_floor(baseaddress);
            let end = baseaddress.saturating_add(size);
            if !s.range_is_free(start, end) {
                return Err(Error::InvalidAddress("the range is not free"));
            }
        }
        return Err(Error::NotSupported("placeholders (VirtualAlloc2)"));
    }
    if parametercount > 0 {
        return Err(Error::NotSupported("VirtualAlloc2 extended parameters"));
    }
    Ok(())
}

/// VirtualAlloc2: VirtualAlloc with a process handle (NULL = current process) and extended
/// parameters. Placeholders and extended parameters are not supported yet (ERROR_NOT_SUPPORTED).
#[no_mangle]
pub unsafe extern "system" fn VirtualAlloc2(
    process: HANDLE,
    baseaddress: *const c_void,
    size: usize,
    allocationtype: VIRTUAL_ALLOCATION_TYPE,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> *mut c_void {
    win32_call(null_mut(), || {
        // SAFETY: forwarded caller contract.
        unsafe {
            alloc2_checks(
                process,
                baseaddress as usize,
                size,
                allocationtype,
                pageprotection,
                extendedparameters,
                parametercount,
            )
        }?;
        Space::native()
            .virtual_alloc(
                baseaddress as usize,
                size,
                allocationtype,
                pageprotection,
                AllocFlavor::default(),
            )
            .map(|p| p as *mut c_void)
    })
}

/// VirtualAlloc2 for apps: like VirtualAlloc2, without executable protections.
#[no_mangle]
pub unsafe extern "system" fn VirtualAlloc2FromApp(
    process: HANDLE,
    baseaddress: *const c_void,
    size: usize,
    allocationtype: VIRTUAL_ALLOCATION_TYPE,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> *mut c_void {
    win32_call(null_mut(), || {
        crate::rules::Protection::parse(pageprotection, true)?;
        // SAFETY: forwarded caller contract.
        unsafe {
            alloc2_checks(
                process,
                baseaddress as usize,
                size,
                allocationtype,
                pageprotection,
                extendedparameters,
                parametercount,
            )
        }?;
        Space::native()
            .virtual_alloc(
                baseaddress as usize,
                size,
                allocationtype,
                pageprotection,
                AllocFlavor { from_app: true },
            )
            .map(|p| p as *mut c_void)
    })
}

/// Decommits or releases pages (see `semantics.md` §3).
#[no_mangle]
pub unsafe extern "system" fn VirtualFree(
    lpaddress: *mut c_void,
    dwsize: usize,
    dwfreetype: VIRTUAL_FREE_TYPE,
) -> BOOL {
    win32_call(FALSE, || {
        Space::native()
            .virtual_free(lpaddress as usize, dwsize, dwfreetype)
            .map(|()| TRUE)
    })
}

/// VirtualFree in a process (current process only).
#[no_mangle]
pub unsafe extern "system" fn VirtualFreeEx(
    hprocess: HANDLE,
    lpaddress: *mut c_void,
    dwsize: usize,
    dwfreetype: VIRTUAL_FREE_TYPE,
) -> BOOL {
    win32_call(FALSE, || {
        check_process(hprocess)?;
        Space::native()
            .virtual_free(lpaddress as usize, dwsize, dwfreetype)
            .map(|()| TRUE)
    })
}

fn protect(addr: *const c_void, size: usize, new: u32, old: *mut u32) -> BOOL {
    win32_call(FALSE, || {
        // Check order [I: ReactOS]: the protection value, then the output pointer, then pages.
        crate::rules::Protection::parse(new, false)?;
        if old.is_null() {
            return Err(Error::NoAccess("lpflOldProtect is NULL"));
        }
        match Space::native().virtual_protect(addr as usize, size, new) {
            Ok(prev) => {
                // SAFETY: checked non-NULL; the caller passes a writable u32.
                unsafe { old.write(prev) };
                Ok(TRUE)
            }
            Err(e) => {
                // SAFETY: as above. Windows reports PAGE_NOACCESS on failure (case 35).
                unsafe { old.write(PAGE_NOACCESS) };
                Err(e)
            }
        }
    })
}

/// Changes the protection of committed pages and reports the first page's old protection.
#[no_mangle]
pub unsafe extern "system" fn VirtualProtect(
    lpaddress: *const c_void,
    dwsize: usize,
    flnewprotect: PAGE_PROTECTION_FLAGS,
    lpfloldprotect: *mut PAGE_PROTECTION_FLAGS,
) -> BOOL {
    protect(lpaddress, dwsize, flnewprotect, lpfloldprotect)
}

/// VirtualProtect in a process (current process only).
#[no_mangle]
pub unsafe extern "system" fn VirtualProtectEx(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    dwsize: usize,
    flnewprotect: PAGE_PROTECTION_FLAGS,
    lpfloldprotect: *mut PAGE_PROTECTION_FLAGS,
) -> BOOL {
    if let Err(e) = check_process(hprocess) {
        return win32_call(FALSE, || Err(e));
    }
    protect(lpaddress, dwsize, flnewprotect, lpfloldprotect)
}

/// VirtualProtect for apps (desktop Windows accepts every protection VirtualProtect does).
#[no_mangle]
pub unsafe extern "system" fn VirtualProtectFromApp(
    address: *const c_void,
    size: usize,
    newprotection: u32,
    oldprotection: *mut u32,
) -> BOOL {
    protect(address, size, newprotection, oldprotection)
}

/// Fills a MEMORY_BASIC_INFORMATION from engine information.
pub(crate) fn to_mbi(i: &MemoryInfo) -> MEMORY_BASIC_INFORMATION {
    MEMORY_BASIC_INFORMATION {
        BaseAddress: i.base_address as *mut c_void,
        AllocationBase: i.allocation_base as *mut c_void,
        AllocationProtect: i.allocation_protect,
        #[cfg(target_pointer_width = "64")]
        PartitionId: 0,
        RegionSize: i.region_size,
        State: i.state.win32(),
        Protect: i.protect,
        Type: i.kind.win32(),
    }
}

fn query(addr: *const c_void, buf: *mut MEMORY_BASIC_INFORMATION, len: usize) -> usize {
    win32_call(0, || {
        if len < size_of::<MEMORY_BASIC_INFORMATION>() {
            return Err(Error::BadLength);
        }
        if buf.is_null() {
            return Err(Error::NoAccess("lpBuffer is NULL"));
        }
        let info = Space::native().query(addr as usize)?;
        // SAFETY: checked non-NULL and at least one structure long.
        unsafe { buf.write_unaligned(to_mbi(&info)) };
        Ok(size_of::<MEMORY_BASIC_INFORMATION>())
    })
}

/// Describes the region containing an address; returns the bytes written (0 on failure).
#[no_mangle]
pub unsafe extern "system" fn VirtualQuery(
    lpaddress: *const c_void,
    lpbuffer: *mut MEMORY_BASIC_INFORMATION,
    dwlength: usize,
) -> usize {
    query(lpaddress, lpbuffer, dwlength)
}

/// VirtualQuery in a process (current process only).
#[no_mangle]
pub unsafe extern "system" fn VirtualQueryEx(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    lpbuffer: *mut MEMORY_BASIC_INFORMATION,
    dwlength: usize,
) -> usize {
    if let Err(e) = check_process(hprocess) {
        return win32_call(0, || Err(e));
    }
    query(lpaddress, lpbuffer, dwlength)
}

/// Locks committed, accessible pages in memory (see `semantics.md` §6).
#[no_mangle]
pub unsafe extern "system" fn VirtualLock(lpaddress: *const c_void, dwsize: usize) -> BOOL {
    win32_call(FALSE, || {
        Space::native()
            .virtual_lock(lpaddress as usize, dwsize)
            .map(|()| TRUE)
    })
}

/// Unlocks pages; fails with ERROR_NOT_LOCKED if any page of the range is not locked.
#[no_mangle]
pub unsafe extern "system" fn VirtualUnlock(lpaddress: *const c_void, dwsize: usize) -> BOOL {
    win32_call(FALSE, || {
        Space::native()
            .virtual_unlock(lpaddress as usize, dwsize)
            .map(|()| TRUE)
    })
}

/// VirtualUnlock in a process (current process only).
#[no_mangle]
pub unsafe extern "system" fn VirtualUnlockEx(
    process: HANDLE,
    address: *const c_void,
    size: usize,
) -> BOOL {
    win32_call(FALSE, || {
        check_process(process)?;
        Space::native()
            .virtual_unlock(address as usize, size)
            .map(|()| TRUE)
    })
}

/// Lists the pages of a MEM_WRITE_WATCH region written since it was made or last reset
/// (see `semantics.md` §7). Returns 0 on success, `(UINT)-1` on failure.
#[no_mangle]
pub unsafe extern "system" fn GetWriteWatch(
    dwflags: u32,
    lpbaseaddress: *const c_void,
    dwregionsize: usize,
    lpaddresses: *mut *mut c_void,
    lpdwcount: *mut usize,
    lpdwgranularity: *mut u32,
) -> u32 {
    win32_call(u32::MAX, || {
        if dwflags & !WRITE_WATCH_FLAG_RESET != 0 {
            return Err(Error::InvalidParameter("unknown GetWriteWatch flags"));
        }
        if dwregionsize == 0 {
            return Err(Error::InvalidParameter("dwRegionSize is 0"));
        }
        if lpdwcount.is_null() || lpdwgranularity.is_null() {
            return Err(Error::NoAccess("lpdwCount or lpdwGranularity is NULL"));
        }
        // SAFETY: checked non-NULL; the caller passes a readable count.
        let max = unsafe { lpdwcount.read_unaligned() };
        if max == 0 {
            return Err(Error::InvalidParameter("*lpdwCount is 0"));
        }
        if lpaddresses.is_null() {
            return Err(Error::NoAccess("lpAddresses is NULL"));
        }
        let space = Space::native();
        let pages = space.get_write_watch(
            lpbaseaddress as usize,
            dwregionsize,
            dwflags & WRITE_WATCH_FLAG_RESET != 0,
            max,
        )?;
        // The outputs are written after every lock is released: writing them may itself
        // fault (a watched or guarded output buffer) and must find virtmem idle.
        for (i, &p) in pages.iter().enumerate() {
            // SAFETY: the caller passes an array of at least `max` entries; i < max.
            unsafe { lpaddresses.add(i).write_unaligned(p as *mut c_void) };
        }
        // SAFETY: both checked non-NULL above.
        unsafe {
            lpdwcount.write_unaligned(pages.len());
            lpdwgranularity.write_unaligned(space.layout().page_size as u32);
        }
        Ok(0)
    })
}

/// Makes every page of a MEM_WRITE_WATCH region clean. Returns 0, or `(UINT)-1` on failure.
#[no_mangle]
pub unsafe extern "system" fn ResetWriteWatch(
    lpbaseaddress: *const c_void,
    dwregionsize: usize,
) -> u32 {
    win32_call(u32::MAX, || {
        Space::native()
            .reset_write_watch(lpbaseaddress as usize, dwregionsize)
            .map(|()| 0)
    })
}

/// Sets the process-wide guard-page handler for C programs (NULL: unhandled violations print
/// "guard page violation at 0x…" and abort). The handler gets the faulting address and the
/// access (0 read, 1 write, 8 execute) and returns non-zero to continue (the access is
/// retried and succeeds) or 0 to treat the violation as unhandled. It runs in signal context.
#[no_mangle]
pub extern "C" fn virtmem_set_guard_page_handler(
    handler: Option<unsafe extern "C" fn(address: *mut c_void, access: u32) -> i32>,
) {
    crate::fault::set_guard_page_handler(handler.map(|h| {
        Box::new(move |v: &crate::fault::GuardViolation| {
            // SAFETY: the caller registered a function with this signature.
            unsafe { h(v.address as *mut c_void, v.access.win32()) != 0 }
        }) as Box<crate::fault::GuardHandler>
    }));
}

/// MEM_RESET as a function that returns a Win32 error code (ERROR_SUCCESS on success).
#[no_mangle]
pub unsafe extern "system" fn DiscardVirtualMemory(
    virtualaddress: *mut c_void,
    size: usize,
) -> u32 {
    match Space::native().virtual_alloc(
        virtualaddress as usize,
        size,
        MEM_RESET,
        PAGE_NOACCESS,
        AllocFlavor::default(),
    ) {
        Ok(_) => ERROR_SUCCESS,
        Err(e) => e.win32_code(),
    }
}

/// A prefetch hint: validated, then accepted (Linux reads memory in on demand anyway).
#[no_mangle]
pub unsafe extern "system" fn PrefetchVirtualMemory(
    hprocess: HANDLE,
    numberofentries: usize,
    virtualaddresses: *const WIN32_MEMORY_RANGE_ENTRY,
    flags: u32,
) -> BOOL {
    win32_call(FALSE, || {
        check_process(hprocess)?;
        if numberofentries == 0 || virtualaddresses.is_null() || flags != 0 {
            return Err(Error::InvalidParameter("PrefetchVirtualMemory arguments"));
        }
        Ok(TRUE)
    })
}

/// AWE: not supported yet (ERROR_NOT_SUPPORTED after the handle and pointer checks).
#[no_mangle]
pub unsafe extern "system" fn AllocateUserPhysicalPages(
    hprocess: HANDLE,
    numberofpages: *mut usize,
    pagearray: *mut usize,
) -> BOOL {
    win32_call(FALSE, || {
        check_process(hprocess)?;
        if numberofpages.is_null() || pagearray.is_null() {
            return Err(Error::NoAccess("NULL argument"));
        }
        Err(Error::NotSupported("AWE physical pages"))
    })
}

/// AWE: not supported yet (ERROR_NOT_SUPPORTED).
#[no_mangle]
pub unsafe extern "system" fn MapUserPhysicalPages(
    _virtualaddress: *const c_void,
    _numberofpages: usize,
    _pagearray: *const usize,
) -> BOOL {
    win32_call(FALSE, || Err(Error::NotSupported("AWE physical pages")))
}

/// AWE: not supported yet (ERROR_NOT_SUPPORTED).
#[no_mangle]
pub unsafe extern "system" fn MapUserPhysicalPagesScatter(
    _virtualaddresses: *const *const c_void,
    _numberofpages: usize,
    _pagearray: *const usize,
) -> BOOL {
    win32_call(FALSE, || Err(Error::NotSupported("AWE physical pages")))
}

/// AWE: not supported yet (ERROR_NOT_SUPPORTED after the handle check).
#[no_mangle]
pub unsafe extern "system" fn FreeUserPhysicalPages(
    hprocess: HANDLE,
    _numberofpages: *mut usize,
    _pagearray: *const usize,
) -> BOOL {
    win32_call(FALSE, || {
        check_process(hprocess)?;
        Err(Error::NotSupported("AWE physical pages"))
    })
}
