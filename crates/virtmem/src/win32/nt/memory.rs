//! NtAllocateVirtualMemory(Ex), NtFreeVirtualMemory, NtProtectVirtualMemory,
//! NtQueryVirtualMemory, NtLockVirtualMemory, NtUnlockVirtualMemory.
#![allow(non_upper_case_globals)]

use super::super::consts::*;
use super::super::types::*;
use super::{nt_call, probe, probe_bytes, process, read_inout, write_range, Need, NtResult};
use crate::engine::{MappedName, Space, State};
use crate::error::Error;
use crate::rules::requests::{validate_alloc2, validate_range, AllocFlavor, KNOWN_ALLOC_BITS};
use crate::rules::{AllocRequest, ExtendedParameter, Protection};
use core::ffi::c_void;

/// The exclusive end `ZeroBits` allows (case 126): 0 → no limit; 1–21 → the address must
/// fit in `32 − ZeroBits` bits; 22–31 → STATUS_INVALID_PARAMETER_3; from 32 on (64-bit) the
/// value is a mask whose leading zeros are the zero bits of a 64-bit address.
pub(super) fn zero_bits_end(zero_bits: usize) -> core::result::Result<Option<usize>, NTSTATUS> {
    match zero_bits {
        0 => Ok(None),
        1..=21 => Ok(Some(1usize << (32 - zero_bits))),
        22..=31 => Err(STATUS_INVALID_PARAMETER_3),
        mask => {
            let bits = usize::BITS - mask.leading_zeros();
            Ok(Some(if bits >= usize::BITS {
                usize::MAX
            } else {
                1usize << bits
            }))
        }
    }
}

/// The bytes a validated request covers (what `*RegionSize` receives).
fn request_size(req: &AllocRequest) -> usize {
    match *req {
        AllocRequest::Reserve { size, .. }
        | AllocRequest::ReservePlaceholder { size, .. }
        | AllocRequest::ReplacePlaceholder { size, .. } => size,
        AllocRequest::Commit { start, end, .. }
        | AllocRequest::Reset { start, end }
        | AllocRequest::ResetUndo { start, end } => end - start,
    }
}

/// The status of a failed allocation: a commit into a file view is STATUS_ALREADY_COMMITTED
/// (VA1), the rest as [`Error::nt_status`].
fn alloc_status(e: Error) -> NTSTATUS {
    match e {
        Error::AccessDenied(_) => STATUS_ALREADY_COMMITTED,
        e => e.nt_status(),
    }
}

/// NtAllocateVirtualMemory and NtAllocateVirtualMemoryEx after their own checks.
///
/// # Safety
///
/// `base` and `size` are the caller's in/out pointers (probed here).
#[allow(clippy::too_many_arguments)]
unsafe fn allocate(
    h: HANDLE,
    base: *mut *mut c_void,
    size: *mut usize,
    alloc_type: u32,
    protect: u32,
    params: &mut crate::os::linux::metaheap::MetaVec<ExtendedParameter>,
    limit_end: Option<usize>,
    type_status: NTSTATUS,
    placeholders: bool,
) -> NtResult {
    let known = KNOWN_ALLOC_BITS
        | if placeholders {
            MEM_RESERVE_PLACEHOLDER | MEM_REPLACE_PLACEHOLDER
        } else {
            0
        };
    if alloc_type & !known != 0
        || alloc_type & (MEM_RESERVE | MEM_COMMIT | MEM_RESET | MEM_RESET_UNDO) == 0
    {
        return Err(type_status); // case 12 (AT_ROUND_TO_PAGE), case 132 (placeholder flags)
    }
    if Protection::parse_for_views(protect, false).is_err() {
        return Err(STATUS_INVALID_PAGE_PROTECTION);
    }
    // SAFETY: the caller's pointers, probed by read_inout.
    let addr = unsafe { read_inout(base) }? as usize;
    // SAFETY: as above.
    let len = unsafe { read_inout(size) }?;
    process(h, Need::Operation)?;
    if len == 0 {
        return Err(STATUS_INVALID_PARAMETER); // case 1
    }
    let space = Space::native();
    let mut t = alloc_type;
    if let Some(end) = limit_end {
        if addr != 0 {
            if addr.checked_add(len).is_none_or(|e| e > end) {
                return Err(STATUS_INVALID_PARAMETER_3);
            }
        } else {
            if t & MEM_COMMIT != 0 {
                t |= MEM_RESERVE; // a NULL address reserves and commits
            }
            let highest = (end - 1).min(space.layout().max_address);
            params.push(ExtendedParameter::AddressRequirements {
                lowest: 0,
                highest,
                alignment: 0,
            });
        }
    }
    let req = validate_alloc2(
        space.layout(),
        addr,
        len,
        t,
        protect,
        params,
        AllocFlavor::default(),
    )
    .map_err(alloc_status)?;
    let got = space
        .virtual_alloc2(addr, len, t, protect, params, AllocFlavor::default())
        .map_err(alloc_status)?;
    // SAFETY: probed for writing above.
    unsafe { write_range(base, size, got, request_size(&req)) };
    Ok(STATUS_SUCCESS)
}

/// Reserves and/or commits pages (VirtualAlloc's native call). `*BaseAddress` (NULL: the
/// system chooses) and `*RegionSize` receive the rounded range. `ZeroBits` limits the
/// address: 1–21 high zero bits of a 32-bit address, 22–31 invalid, larger values a mask.
#[no_mangle]
pub unsafe extern "system" fn NtAllocateVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    zerobits: usize,
    regionsize: *mut usize,
    allocationtype: u32,
    protect: u32,
) -> NTSTATUS {
    nt_call(|| {
        let limit = zero_bits_end(zerobits)?;
        let mut params =
            crate::os::linux::metaheap::MetaVec::new_in(crate::os::linux::metaheap::Meta);
        // SAFETY: forwarded caller contract.
        unsafe {
            allocate(
                processhandle,
                baseaddress,
                regionsize,
                allocationtype,
                protect,
                &mut params,
                limit,
                STATUS_INVALID_PARAMETER_5,
                false,
            )
        }
    })
}

/// NtAllocateVirtualMemory with placeholders and extended parameters (VirtualAlloc2's native
/// call); unlike VirtualAlloc2, a NULL process handle is STATUS_INVALID_HANDLE (case 129).
#[no_mangle]
pub unsafe extern "system" fn NtAllocateVirtualMemoryEx(
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    regionsize: *mut usize,
    allocationtype: u32,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    extendedparametercount: u32,
) -> NTSTATUS {
    nt_call(|| {
        if extendedparametercount > 0 {
            probe_bytes(
                extendedparameters as usize,
                (extendedparametercount as usize)
                    .saturating_mul(size_of::<MEM_EXTENDED_PARAMETER>()),
                false,
            )
            .map_err(|_| STATUS_INVALID_PARAMETER)?;
        }
        // SAFETY: probed: `extendedparametercount` readable parameters.
        let mut params = unsafe {
            super::super::memory::decode_params(extendedparameters, extendedparametercount)
        }
        .map_err(|e| e.nt_status())?;
        // SAFETY: forwarded caller contract.
        unsafe {
            allocate(
                processhandle,
                baseaddress,
                regionsize,
                allocationtype,
                pageprotection,
                &mut params,
                None,
                STATUS_INVALID_PARAMETER_4,
                true,
            )
        }
    })
}

/// Decommits or releases pages (VirtualFree's native call). `*BaseAddress` / `*RegionSize`
/// receive the rounded range. Unlike VirtualFree, MEM_RELEASE with a size releases just those
/// pages (cases 60, 61); size 0 releases the allocation based at the address
/// (STATUS_FREE_VM_NOT_AT_BASE elsewhere, case 63). A range leaving its allocation is
/// STATUS_UNABLE_TO_FREE_VM (cases 67, 68).
#[no_mangle]
pub unsafe extern "system" fn NtFreeVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    regionsize: *mut usize,
    freetype: u32,
) -> NTSTATUS {
    nt_call(|| {
        // SAFETY: the caller's pointers, probed by read_inout.
        let addr = unsafe { read_inout(baseaddress) }? as usize;
        // SAFETY: as above.
        let len = unsafe { read_inout(regionsize) }?;
        let placeholder = freetype == MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER
            || freetype == MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS;
        if freetype != MEM_DECOMMIT && freetype != MEM_RELEASE && !placeholder {
            return Err(STATUS_INVALID_PARAMETER_4); // case 139
        }
        process(processhandle, Need::Operation)?;
        let space = Space::native();
        let layout = *space.layout();
        if addr > layout.max_address
            || addr
                .checked_add(len)
                .is_none_or(|e| e - 1 > layout.max_address && len > 0)
        {
            return Err(STATUS_INVALID_PARAMETER_2);
        }
        if space.is_view(addr) {
            // VF1, VF2: only NtUnmapViewOfSection frees views.
            return Err(STATUS_UNABLE_TO_DELETE_SECTION);
        }
        // What the first page is, to tell the address statuses apart.
        let free_here = || space.query(addr).map_or(true, |i| i.state == State::Free);
        let at_base_status = || {
            if free_here() {
                STATUS_MEMORY_NOT_ALLOCATED
            } else {
                STATUS_FREE_VM_NOT_AT_BASE
            }
        };
        let (out_base, out_size) = if len == 0 && !placeholder {
            let info = space
                .region_info(addr)
                .map_err(|e| e.nt_status())?
                .ok_or(STATUS_MEMORY_NOT_ALLOCATED)?;
            if info.allocation_base != layout.page_floor(addr) {
                return Err(STATUS_FREE_VM_NOT_AT_BASE); // case 63, outputs unchanged
            }
            (info.allocation_base, info.size)
        } else if len == 0 {
            return Err(STATUS_INVALID_PARAMETER_3); // case 135
        } else {
            let (s, e) = layout
                .touched_pages(addr, len)
                .ok_or(STATUS_INVALID_PARAMETER_2)?;
            (s, e - s)
        };
        let r = match freetype {
            MEM_RELEASE if len > 0 => space.release_part(out_base, out_base + out_size),
            _ => space.virtual_free(
                addr,
                if freetype == MEM_RELEASE { 0 } else { len },
                freetype,
            ),
        };
        r.map_err(|e| match e {
            Error::InvalidParameter(_) if !placeholder => STATUS_UNABLE_TO_FREE_VM,
            Error::InvalidAddress(_) if placeholder => STATUS_CONFLICTING_ADDRESSES,
            Error::InvalidAddress(_) => at_base_status(),
            e => e.nt_status(),
        })?;
        // SAFETY: probed for writing above.
        unsafe { write_range(baseaddress, regionsize, out_base, out_size) };
        Ok(STATUS_SUCCESS)
    })
}

/// Changes the protection of committed pages (VirtualProtect's native call): `*BaseAddress`
/// and `*RegionSize` receive the rounded range (case 46), `*OldProtect` the first page's old
/// protection — PAGE_NOACCESS when the call fails on the pages (cases 35, 45).
#[no_mangle]
pub unsafe extern "system" fn NtProtectVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    numberofbytestoprotect: *mut usize,
    newaccessprotection: u32,
    oldaccessprotection: *mut u32,
) -> NTSTATUS {
    nt_call(|| {
        // SAFETY: the caller's pointers, probed by read_inout / probe.
        let addr = unsafe { read_inout(baseaddress) }? as usize;
        // SAFETY: as above.
        let len = unsafe { read_inout(numberofbytestoprotect) }?;
        probe(oldaccessprotection, true)?;
        process(processhandle, Need::Operation)?;
        let p = Protection::parse_for_views(newaccessprotection, false)
            .map_err(|_| STATUS_INVALID_PAGE_PROTECTION)?; // case 39
        let space = Space::native();
        if p.is_writecopy() && !space.is_view(addr) {
            return Err(STATUS_INVALID_PAGE_PROTECTION);
        }
        let (s, e) = validate_range(space.layout(), addr, len).map_err(|e| e.nt_status())?;
        match space.virtual_protect(addr, len, newaccessprotection) {
            Ok(old) => {
                // SAFETY: all three probed for writing.
                unsafe {
                    oldaccessprotection.write_unaligned(old);
                    write_range(baseaddress, numberofbytestoprotect, s, e - s);
                }
                Ok(STATUS_SUCCESS)
            }
            Err(err) => {
                // SAFETY: probed for writing.
                unsafe { oldaccessprotection.write_unaligned(PAGE_NOACCESS) };
                Err(match err {
                    Error::InvalidAddress(_) => {
                        // Free memory: 64-bit Windows says STATUS_CONFLICTING_ADDRESSES
                        // (case 45); reserved pages STATUS_NOT_COMMITTED (case 35).
                        if space.query(s).map_or(true, |i| i.state == State::Free) {
                            STATUS_CONFLICTING_ADDRESSES
                        } else {
                            STATUS_NOT_COMMITTED
                        }
                    }
                    e => e.nt_status(),
                })
            }
        }
    })
}

/// Describes memory (VirtualQuery's native call), by information class:
/// MemoryBasicInformation (0, a MEMORY_BASIC_INFORMATION), MemoryWorkingSetInformation (1,
/// every page of the working set), MemoryMappedFilenameInformation (2, a UNICODE_STRING
/// followed by its text; STATUS_INVALID_ADDRESS for memory that is not a view,
/// STATUS_FILE_INVALID for a view without a file), MemoryRegionInformation (3, the whole
/// allocation; STATUS_INVALID_ADDRESS for free memory, case 84), MemoryWorkingSetExInformation
/// (4, per-page attributes for the addresses in the buffer). A buffer too small is
/// STATUS_INFO_LENGTH_MISMATCH (STATUS_BUFFER_OVERFLOW for a name, with the length needed).
/// MemoryBasicInformation also describes another process (PROCESS_QUERY_INFORMATION), as
/// VirtualQueryEx does; the other classes of another process → STATUS_NOT_SUPPORTED.
#[no_mangle]
pub unsafe extern "system" fn NtQueryVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *const c_void,
    memoryinformationclass: MEMORY_INFORMATION_CLASS,
    memoryinformation: *mut c_void,
    memoryinformationlength: usize,
    returnlength: *mut usize,
) -> NTSTATUS {
    nt_call(|| {
        // MemoryBasicInformation reaches another process too (as VirtualQueryEx does); the
        // other classes describe this process only.
        if processhandle.is_null() {
            return Err(STATUS_INVALID_HANDLE);
        }
        let target = super::super::process::resolve(processhandle, Need::Query)
            .map_err(|e| e.nt_status())?;
        if memoryinformationclass != MemoryBasicInformation {
            process(processhandle, Need::Query)?;
        }
        let space = Space::native();
        let addr = baseaddress as usize;
        let buf = memoryinformation as usize;
        let len = memoryinformationlength;
        match memoryinformationclass {
            MemoryBasicInformation => {
                let n = size_of::<MEMORY_BASIC_INFORMATION>();
                if len < n {
                    return Err(STATUS_INFO_LENGTH_MISMATCH);
                }
                probe_bytes(buf, n, true)?;
                let info = space
                    .query_process(&target, addr)
                    .map_err(|e| e.nt_status())?;
                // SAFETY: probed writable for one structure.
                unsafe {
                    (buf as *mut MEMORY_BASIC_INFORMATION)
                        .write_unaligned(super::super::memory::to_mbi(&info));
                    super::write_count(returnlength, n)?;
                }
                Ok(STATUS_SUCCESS)
            }
            MemoryWorkingSetInformation => {
                // SAFETY: forwarded caller contract.
                unsafe { super::working_set::query_working_set(buf, len, returnlength) }
            }
            MemoryWorkingSetExInformation => {
                // SAFETY: forwarded caller contract.
                unsafe { super::working_set::query_working_set_ex(buf, len, returnlength) }
            }
            MemoryRegionInformation => {
                use core::mem::offset_of;
                let full = size_of::<WIN32_MEMORY_REGION_INFORMATION>();
                // Case 84: up to CommitSize is enough; less is a length mismatch.
                let min = offset_of!(WIN32_MEMORY_REGION_INFORMATION, CommitSize);
                if len < min {
                    return Err(STATUS_INFO_LENGTH_MISMATCH);
                }
                let n = len.min(full);
                probe_bytes(buf, n, true)?;
                let Some(r) = space.region_info(addr).map_err(|e| e.nt_status())? else {
                    return Err(STATUS_INVALID_ADDRESS); // the buffer is left untouched
                };
                // Case 84: private memory has no type bit set.
                let flags = match r.kind {
                    crate::engine::RegionType::Mapped if r.file_backed => 1 << 1,
                    crate::engine::RegionType::Mapped => 1 << 3,
                    crate::engine::RegionType::Image => 1 << 2,
                    _ => 0,
                };
                let info = WIN32_MEMORY_REGION_INFORMATION {
                    AllocationBase: r.allocation_base as *mut c_void,
                    AllocationProtect: r.allocation_protect,
                    Anonymous: WIN32_MEMORY_REGION_INFORMATION_0 { Flags: flags },
                    RegionSize: r.size,
                    CommitSize: r.commit_size,
                };
                // SAFETY: `info` is a plain structure of `full` bytes; `n` <= `full` bytes of
                // it go to the probed buffer.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        (&info as *const WIN32_MEMORY_REGION_INFORMATION).cast::<u8>(),
                        buf as *mut u8,
                        n,
                    );
                    super::write_count(returnlength, n)?;
                }
                Ok(STATUS_SUCCESS)
            }
            MemoryMappedFilenameInformation => {
                let name = match space.mapped_file_name(addr).map_err(|e| e.nt_status())? {
                    MappedName::Path(p) => p,
                    MappedName::NoFile => return Err(STATUS_FILE_INVALID),
                    MappedName::NotMapped => return Err(STATUS_INVALID_ADDRESS),
                };
                let text: Vec<u16> = name.encode_utf16().collect();
                let head = size_of::<UNICODE_STRING>();
                let bytes = text.len() * 2;
                let need = head + bytes + 2;
                if bytes + 2 > u16::MAX as usize {
                    return Err(STATUS_NAME_TOO_LONG);
                }
                if len < head {
                    // SAFETY: forwarded caller contract.
                    unsafe { super::write_count(returnlength, need)? };
                    return Err(STATUS_INFO_LENGTH_MISMATCH);
                }
                if len < need {
                    // SAFETY: forwarded caller contract.
                    unsafe { super::write_count(returnlength, need)? };
                    return Err(STATUS_BUFFER_OVERFLOW);
                }
                probe_bytes(buf, need, true)?;
                let text_at = buf + head;
                // SAFETY: `need` bytes at `buf` probed writable: the header, the text and
                // its NUL.
                unsafe {
                    core::ptr::copy_nonoverlapping(text.as_ptr(), text_at as *mut u16, text.len());
                    (text_at as *mut u16).add(text.len()).write_unaligned(0);
                    (buf as *mut UNICODE_STRING).write_unaligned(UNICODE_STRING {
                        Length: bytes as u16,
                        MaximumLength: (bytes + 2) as u16,
                        Buffer: text_at as *mut u16,
                    });
                    super::write_count(returnlength, need)?;
                }
                Ok(STATUS_SUCCESS)
            }
            _ => Err(STATUS_INVALID_INFO_CLASS),
        }
    })
}

/// The checks NtLockVirtualMemory and NtUnlockVirtualMemory share: the pointers, the lock
/// type (MAP_PROCESS and/or MAP_SYSTEM, else STATUS_INVALID_PARAMETER_4), the process, and
/// MAP_SYSTEM, which needs SeLockMemoryPrivilege (STATUS_PRIVILEGE_NOT_HELD: virtmem grants
/// no privileges). Returns the address, the size and the touched pages.
///
/// # Safety
///
/// `base` and `size` are the caller's in/out pointers (probed here).
unsafe fn lock_args(
    h: HANDLE,
    base: *mut *mut c_void,
    size: *mut usize,
    maptype: u32,
) -> core::result::Result<(usize, usize, usize, usize), NTSTATUS> {
    // SAFETY: forwarded caller contract.
    let addr = unsafe { read_inout(base) }? as usize;
    // SAFETY: as above.
    let len = unsafe { read_inout(size) }?;
    if maptype == 0 || maptype & !(MAP_PROCESS | MAP_SYSTEM) != 0 {
        return Err(STATUS_INVALID_PARAMETER_4);
    }
    process(h, Need::Operation)?;
    if maptype & MAP_SYSTEM != 0 {
        return Err(STATUS_PRIVILEGE_NOT_HELD);
    }
    let (s, e) = validate_range(Space::native().layout(), addr, len).map_err(|e| e.nt_status())?;
    Ok((addr, len, s, e))
}

/// Locks pages in the working set (VirtualLock's native call; MAP_PROCESS). STATUS_SUCCESS,
/// or STATUS_WAS_LOCKED (a success) when every page was locked already.
#[no_mangle]
pub unsafe extern "system" fn NtLockVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    regionsize: *mut usize,
    maptype: u32,
) -> NTSTATUS {
    nt_call(|| {
        // SAFETY: forwarded caller contract.
        let (addr, len, s, e) =
            unsafe { lock_args(processhandle, baseaddress, regionsize, maptype) }?;
        let space = Space::native();
        let was = space.all_locked(s, e);
        space.virtual_lock(addr, len).map_err(|e| e.nt_status())?;
        // SAFETY: probed for writing by lock_args.
        unsafe { write_range(baseaddress, regionsize, s, e - s) };
        Ok(if was {
            STATUS_WAS_LOCKED
        } else {
            STATUS_SUCCESS
        })
    })
}

/// Unlocks pages (VirtualUnlock's native call): STATUS_NOT_LOCKED if any page is not locked
/// (and nothing is unlocked).
#[no_mangle]
pub unsafe extern "system" fn NtUnlockVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    regionsize: *mut usize,
    maptype: u32,
) -> NTSTATUS {
    nt_call(|| {
        // SAFETY: forwarded caller contract.
        let (addr, len, s, e) =
            unsafe { lock_args(processhandle, baseaddress, regionsize, maptype) }?;
        Space::native()
            .virtual_unlock(addr, len)
            .map_err(|e| e.nt_status())?;
        // SAFETY: probed for writing by lock_args.
        unsafe { write_range(baseaddress, regionsize, s, e - s) };
        Ok(STATUS_SUCCESS)
    })
}
