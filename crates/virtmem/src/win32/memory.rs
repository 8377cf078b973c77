//! The memory functions of `Win32::System::Memory`.
#![allow(non_upper_case_globals)]

use super::consts::*;
use super::last_error::win32_call;
use super::types::*;
use crate::engine::{MemoryInfo, Space, Target};
use crate::error::{Error, Result};
use crate::rules::requests::{extended_parameter_type, AllocFlavor};
use crate::rules::ExtendedParameter;
use core::ffi::c_void;
use std::ptr::null_mut;

use super::process::{current_only, resolve, Need};

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

/// VirtualAlloc in a process: this process (`GetCurrentProcess()`, or a handle to our own pid
/// with PROCESS_VM_OPERATION). Another process → ERROR_NOT_SUPPORTED (see `win32::process`);
/// a handle without PROCESS_VM_OPERATION → ERROR_ACCESS_DENIED; not a process handle →
/// ERROR_INVALID_HANDLE.
#[no_mangle]
pub unsafe extern "system" fn VirtualAllocEx(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    dwsize: usize,
    flallocationtype: VIRTUAL_ALLOCATION_TYPE,
    flprotect: PAGE_PROTECTION_FLAGS,
) -> *mut c_void {
    if let Err(e) = current_only(hprocess, Need::Operation) {
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

/// Decodes `count` MEM_EXTENDED_PARAMETERs (each type at most once) onto the metadata heap
/// (VirtualAlloc2 is a `malloc`'s call).
///
/// # Safety
///
/// `extendedparameters` points to `parametercount` readable parameters (or is NULL).
pub(crate) unsafe fn decode_params(
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> Result<crate::os::linux::metaheap::MetaVec<ExtendedParameter>> {
    if parametercount > 0 && extendedparameters.is_null() {
        return Err(Error::InvalidParameter(
            "extended parameters: count without array",
        ));
    }
    // On the metadata heap: VirtualAlloc2 is a `malloc`'s call.
    let mut params = crate::os::linux::metaheap::MetaVec::with_capacity_in(
        (parametercount as usize).min(MemExtendedParameterMax as usize),
        crate::os::linux::metaheap::Meta,
    );
    let mut seen = 0u64;
    for i in 0..parametercount as usize {
        // SAFETY: the caller passes `parametercount` readable parameters.
        let p = unsafe { extendedparameters.add(i).read_unaligned() };
        let ty = extended_parameter_type(p.Anonymous1._bitfield)?;
        if seen & (1 << ty) != 0 {
            return Err(Error::InvalidParameter(
                "extended parameter type given twice",
            ));
        }
        seen |= 1 << ty;
        params.push(match ty {
            MemExtendedParameterAddressRequirements => {
                // SAFETY: the Pointer member of this type points to the requirements.
                let r = unsafe { p.Anonymous2.Pointer } as *const MEM_ADDRESS_REQUIREMENTS;
                if r.is_null() {
                    return Err(Error::InvalidParameter("NULL MEM_ADDRESS_REQUIREMENTS"));
                }
                // SAFETY: non-NULL, supplied by the caller.
                let r = unsafe { r.read_unaligned() };
                ExtendedParameter::AddressRequirements {
                    lowest: r.LowestStartingAddress as usize,
                    highest: r.HighestEndingAddress as usize,
                    alignment: r.Alignment,
                }
            }
            // SAFETY: the ULong member of a NUMA-node parameter.
            MemExtendedParameterNumaNode => {
                ExtendedParameter::NumaNode(unsafe { p.Anonymous2.ULong })
            }
            other => ExtendedParameter::Other(other),
        });
    }
    Ok(params)
}

/// Decodes VirtualAlloc2's process handle and extended parameters.
#[allow(clippy::too_many_arguments)]
unsafe fn alloc2(
    process: HANDLE,
    baseaddress: *const c_void,
    size: usize,
    allocationtype: u32,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
    from_app: bool,
) -> *mut c_void {
    win32_call(null_mut(), || {
        if !process.is_null() {
            current_only(process, Need::Operation)?; // NULL means the current process.
        }
        // SAFETY: forwarded caller contract.
        let params = unsafe { decode_params(extendedparameters, parametercount) }?;
        Space::native()
            .virtual_alloc2(
                baseaddress as usize,
                size,
                allocationtype,
                pageprotection,
                &params,
                AllocFlavor { from_app },
            )
            .map(|p| p as *mut c_void)
    })
}

/// VirtualAlloc2: VirtualAlloc with a process handle (NULL = current process), placeholders
/// (MEM_RESERVE_PLACEHOLDER, MEM_REPLACE_PLACEHOLDER) and extended parameters (address
/// requirements; a NUMA node is accepted and ignored).
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
    // SAFETY: forwarded caller contract.
    unsafe {
        alloc2(
            process,
            baseaddress,
            size,
            allocationtype,
            pageprotection,
            extendedparameters,
            parametercount,
            false,
        )
    }
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
    // SAFETY: forwarded caller contract.
    unsafe {
        alloc2(
            process,
            baseaddress,
            size,
            allocationtype,
            pageprotection,
            extendedparameters,
            parametercount,
            true,
        )
    }
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

/// VirtualFree in a process: this process only (another one → ERROR_NOT_SUPPORTED, after the
/// PROCESS_VM_OPERATION check).
#[no_mangle]
pub unsafe extern "system" fn VirtualFreeEx(
    hprocess: HANDLE,
    lpaddress: *mut c_void,
    dwsize: usize,
    dwfreetype: VIRTUAL_FREE_TYPE,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::Operation)?;
        Space::native()
            .virtual_free(lpaddress as usize, dwsize, dwfreetype)
            .map(|()| TRUE)
    })
}

/// VirtualProtect and its variants: the common case first (a plain value on one run of an
/// allocation), in as few instructions as possible and inlined into each exported function,
/// so that the system call sits one frame below it (the kernel refills the return stack
/// buffer on its way back: every return to a frame made before the call mispredicts). It
/// runs outside the panic barrier, as HeapAlloc's fast path does: it has no panicking
/// operation but index checks its own logic keeps in bounds (a panic could not unwind out
/// of an `extern "system"` function anyway: the process would abort). Anything else,
/// errors included, takes [`protect_general`].
#[inline(always)]
fn protect(addr: *const c_void, size: usize, new: u32, old: *mut u32) -> BOOL {
    if !old.is_null() {
        match Space::native().protect_quick(addr as usize, size, new) {
            Some(Ok(prev)) => {
                // SAFETY: checked non-NULL; the caller passes a writable u32.
                unsafe { old.write_unaligned(prev) };
                return TRUE;
            }
            Some(Err(e)) => return protect_failed(old, e),
            None => {}
        }
    }
    protect_general(addr, size, new, old)
}

/// The fast path's `mprotect` failed (and was rolled back): PAGE_NOACCESS in `*old` (case
/// 35) and the error as the last error.
#[cold]
#[inline(never)]
fn protect_failed(old: *mut u32, e: Error) -> BOOL {
    // SAFETY: the caller checked it non-NULL; a writable u32.
    unsafe { old.write_unaligned(PAGE_NOACCESS) };
    win32_call(FALSE, || Err(e))
}

/// VirtualProtect past its fast path: every check, in Windows' order.
#[inline(never)]
fn protect_general(addr: *const c_void, size: usize, new: u32, old: *mut u32) -> BOOL {
    win32_call(FALSE, || {
        // Check order [I: ReactOS]: the protection value, then the output pointer, then pages.
        let p = crate::rules::Protection::parse_for_views(new, false)?;
        if p.is_writecopy() && !Space::native().is_view(addr as usize) {
            return Err(Error::InvalidParameter(
                "copy-on-write protections are not allowed on private memory",
            ));
        }
        if old.is_null() {
            return Err(Error::NoAccess("lpflOldProtect is NULL"));
        }
        match Space::native().virtual_protect_general(addr as usize, size, new) {
            Ok(prev) => {
                // SAFETY: checked non-NULL; the caller passes a writable u32.
                unsafe { old.write_unaligned(prev) };
                Ok(TRUE)
            }
            Err(e) => {
                // SAFETY: as above. Windows reports PAGE_NOACCESS on failure (case 35).
                unsafe { old.write_unaligned(PAGE_NOACCESS) };
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

/// VirtualProtect in a process: this process only (another one → ERROR_NOT_SUPPORTED, after
/// the PROCESS_VM_OPERATION check).
#[no_mangle]
pub unsafe extern "system" fn VirtualProtectEx(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    dwsize: usize,
    flnewprotect: PAGE_PROTECTION_FLAGS,
    lpfloldprotect: *mut PAGE_PROTECTION_FLAGS,
) -> BOOL {
    if let Err(e) = current_only(hprocess, Need::Operation) {
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

/// VirtualQuery in a process (PROCESS_QUERY_INFORMATION needed): this process as VirtualQuery
/// describes it; another one as its kernel knows it — mappings committed with their
/// protections, MEM_PRIVATE / MEM_MAPPED / MEM_IMAGE, free gaps — classified as VirtualQuery
/// classifies memory virtmem did not allocate. An exited process → ERROR_ACCESS_DENIED.
#[no_mangle]
pub unsafe extern "system" fn VirtualQueryEx(
    hprocess: HANDLE,
    lpaddress: *const c_void,
    lpbuffer: *mut MEMORY_BASIC_INFORMATION,
    dwlength: usize,
) -> usize {
    let target = match resolve(hprocess, Need::Query) {
        Ok(t) => t,
        Err(e) => return win32_call(0, || Err(e)),
    };
    match target {
        Target::Current => query(lpaddress, lpbuffer, dwlength),
        Target::Other(_) => win32_call(0, || {
            if dwlength < size_of::<MEMORY_BASIC_INFORMATION>() {
                return Err(Error::BadLength);
            }
            if lpbuffer.is_null() {
                return Err(Error::NoAccess("lpBuffer is NULL"));
            }
            let info = Space::native().query_process(&target, lpaddress as usize)?;
            // SAFETY: checked non-NULL and at least one structure long.
            unsafe { lpbuffer.write_unaligned(to_mbi(&info)) };
            Ok(size_of::<MEMORY_BASIC_INFORMATION>())
        }),
    }
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

/// VirtualUnlock in a process: this process only (another one → ERROR_NOT_SUPPORTED, after
/// the PROCESS_VM_OPERATION check).
#[no_mangle]
pub unsafe extern "system" fn VirtualUnlockEx(
    process: HANDLE,
    address: *const c_void,
    size: usize,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(process, Need::Operation)?;
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
/// retried and succeeds) or 0 to treat the violation as unhandled. It runs in signal context:
/// the caller promises it is async-signal-safe (see [`crate::set_guard_page_handler`]).
#[no_mangle]
pub unsafe extern "C" fn virtmem_set_guard_page_handler(
    handler: Option<unsafe extern "C" fn(address: *mut c_void, access: u32) -> i32>,
) {
    let handler = handler.map(|h| {
        Box::new(move |v: &crate::engine::fault::GuardViolation| {
            // SAFETY: the caller registered a function with this signature.
            unsafe { h(v.address as *mut c_void, v.access.win32()) != 0 }
        }) as Box<crate::engine::fault::GuardHandler>
    });
    // SAFETY: the caller's promise is this function's own contract.
    unsafe { crate::engine::fault::set_guard_page_handler(handler) };
}

/// Runs `f`, which returns a Win32 error code, turning a panic into ERROR_INTERNAL_ERROR.
fn code_call(f: impl FnOnce() -> u32) -> u32 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(ERROR_INTERNAL_ERROR)
}

/// MEM_RESET as a function that returns a Win32 error code (ERROR_SUCCESS on success).
#[no_mangle]
pub unsafe extern "system" fn DiscardVirtualMemory(
    virtualaddress: *mut c_void,
    size: usize,
) -> u32 {
    code_call(|| {
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
    })
}

/// Offers memory back to the system: MEM_RESET of the range (the priority is a hint).
/// Returns a Win32 error code.
#[no_mangle]
pub unsafe extern "system" fn OfferVirtualMemory(
    virtualaddress: *mut c_void,
    size: usize,
    _priority: i32,
) -> u32 {
    // SAFETY: same contract as DiscardVirtualMemory.
    unsafe { DiscardVirtualMemory(virtualaddress, size) }
}

/// Reclaims offered memory: MEM_RESET_UNDO of the range. Returns ERROR_SUCCESS if every byte
/// is intact, ERROR_BUSY (170) if some contents were discarded (as Windows documents), or the
/// error code of an invalid request.
#[no_mangle]
pub unsafe extern "system" fn ReclaimVirtualMemory(
    virtualaddress: *const c_void,
    size: usize,
) -> u32 {
    code_call(|| {
        match Space::native().virtual_alloc(
            virtualaddress as usize,
            size,
            MEM_RESET_UNDO,
            PAGE_NOACCESS,
            AllocFlavor::default(),
        ) {
            Ok(_) => ERROR_SUCCESS,
            Err(Error::ResetDataLost) => 170,
            Err(e) => e.win32_code(),
        }
    })
}

/// A prefetch hint: validated, then accepted (Linux reads memory in on demand anyway), for
/// this process or another one (a hint; Windows documents no access right for it).
#[no_mangle]
pub unsafe extern "system" fn PrefetchVirtualMemory(
    hprocess: HANDLE,
    numberofentries: usize,
    virtualaddresses: *const WIN32_MEMORY_RANGE_ENTRY,
    flags: u32,
) -> BOOL {
    win32_call(FALSE, || {
        resolve(hprocess, Need::Nothing)?;
        if numberofentries == 0 || virtualaddresses.is_null() || flags != 0 {
            return Err(Error::InvalidParameter("PrefetchVirtualMemory arguments"));
        }
        Ok(TRUE)
    })
}

/// AWE: allocates physical pages; `*numberofpages` gets how many were allocated and
/// `pagearray` their frame numbers.
#[no_mangle]
pub unsafe extern "system" fn AllocateUserPhysicalPages(
    hprocess: HANDLE,
    numberofpages: *mut usize,
    pagearray: *mut usize,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::Operation)?;
        if numberofpages.is_null() || pagearray.is_null() {
            return Err(Error::NoAccess("NULL argument"));
        }
        // SAFETY: checked non-NULL.
        let n = unsafe { numberofpages.read_unaligned() };
        let pfns = Space::native().allocate_physical_pages(n)?;
        for (i, &f) in pfns.iter().enumerate() {
            // SAFETY: the caller passes an array of at least `n` entries.
            unsafe { pagearray.add(i).write_unaligned(f) };
        }
        // SAFETY: checked non-NULL.
        unsafe { numberofpages.write_unaligned(pfns.len()) };
        Ok(TRUE)
    })
}

/// AWE: AllocateUserPhysicalPages with a preferred NUMA node (ignored).
#[no_mangle]
pub unsafe extern "system" fn AllocateUserPhysicalPagesNuma(
    hprocess: HANDLE,
    numberofpages: *mut usize,
    pagearray: *mut usize,
    _nndpreferred: u32,
) -> BOOL {
    // SAFETY: same contract.
    unsafe { AllocateUserPhysicalPages(hprocess, numberofpages, pagearray) }
}

/// An array of `n` elements of `T` must fit in the address space (else 87, not an abort).
fn check_array_len<T>(n: usize) -> Result<()> {
    match n.checked_mul(size_of::<T>()) {
        Some(b) if b <= isize::MAX as usize => Ok(()),
        _ => Err(Error::InvalidParameter("NumberOfPages is too large")),
    }
}

/// AWE: maps physical pages into a MEM_PHYSICAL window at `virtualaddress` (a NULL array
/// unmaps the range).
#[no_mangle]
pub unsafe extern "system" fn MapUserPhysicalPages(
    virtualaddress: *const c_void,
    numberofpages: usize,
    pagearray: *const usize,
) -> BOOL {
    win32_call(FALSE, || {
        let pfns = if pagearray.is_null() {
            None
        } else {
            check_array_len::<usize>(numberofpages)?;
            // SAFETY: the caller passes `numberofpages` frame numbers.
            Some(unsafe { std::slice::from_raw_parts(pagearray, numberofpages) })
        };
        Space::native()
            .map_physical_pages(virtualaddress as usize, numberofpages, pfns)
            .map(|()| TRUE)
    })
}

/// AWE: maps physical pages at scattered window addresses (a NULL array, or a 0 frame,
/// unmaps).
#[no_mangle]
pub unsafe extern "system" fn MapUserPhysicalPagesScatter(
    virtualaddresses: *const *const c_void,
    numberofpages: usize,
    pagearray: *const usize,
) -> BOOL {
    win32_call(FALSE, || {
        if virtualaddresses.is_null() {
            return Err(Error::NoAccess("VirtualAddresses is NULL"));
        }
        check_array_len::<usize>(numberofpages)?;
        // SAFETY: the caller passes `numberofpages` addresses.
        let addrs: Vec<usize> =
            unsafe { std::slice::from_raw_parts(virtualaddresses, numberofpages) }
                .iter()
                .map(|&a| a as usize)
                .collect();
        let pfns = if pagearray.is_null() {
            None
        } else {
            // SAFETY: and as many frame numbers.
            Some(unsafe { std::slice::from_raw_parts(pagearray, numberofpages) })
        };
        Space::native()
            .map_physical_pages_scatter(&addrs, pfns)
            .map(|()| TRUE)
    })
}

/// AWE: frees physical pages (unmapping them first); `*numberofpages` gets how many were
/// freed.
#[no_mangle]
pub unsafe extern "system" fn FreeUserPhysicalPages(
    hprocess: HANDLE,
    numberofpages: *mut usize,
    pagearray: *const usize,
) -> BOOL {
    win32_call(FALSE, || {
        current_only(hprocess, Need::Operation)?;
        if numberofpages.is_null() || pagearray.is_null() {
            return Err(Error::NoAccess("NULL argument"));
        }
        // SAFETY: checked non-NULL; the caller passes that many frame numbers.
        let n = unsafe { numberofpages.read_unaligned() };
        check_array_len::<usize>(n)?;
        // SAFETY: as above.
        let pfns = unsafe { std::slice::from_raw_parts(pagearray, n) };
        let (freed, r) = Space::native().free_physical_pages(pfns);
        // SAFETY: checked non-NULL.
        unsafe { numberofpages.write_unaligned(freed) };
        r.map(|()| TRUE)
    })
}
