//! Sections and views (`sections.md`): CreateFileMapping*, OpenFileMapping*,
//! MapViewOfFile*, UnmapViewOfFile*, FlushViewOfFile.

use super::consts::*;
use super::last_error::{win32_call, SetLastError};
use super::memory::decode_params;
use super::types::*;
use crate::engine::{MapRequest, SectionSource, Space};
use crate::error::{Error, Result};
use crate::os::linux::names::{parse_name_a, parse_name_w, ObjectName};
use crate::rules::sections::{validate_unmap_flags, validate_view_protection, view_protection};
use crate::rules::ExtendedParameter;
use core::ffi::c_void;
use std::ptr::null_mut;

/// The bytes of a NUL-terminated A string (NULL: none).
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn a_name(p: PCSTR) -> Result<Option<ObjectName>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's NUL-terminated string.
    let bytes = unsafe { std::ffi::CStr::from_ptr(p.cast()) }.to_bytes();
    parse_name_a(bytes).map_err(Error::from)
}

/// The units of a NUL-terminated W string (NULL: none).
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated UTF-16 string.
unsafe fn w_name(p: PCWSTR) -> Result<Option<ObjectName>> {
    if p.is_null() {
        return Ok(None);
    }
    let mut n = 0;
    // SAFETY: the caller's NUL-terminated string: every unit up to the NUL is readable.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: `n` units were just read.
    parse_name_w(unsafe { std::slice::from_raw_parts(p, n) }).map_err(Error::from)
}

/// The section source named by CreateFileMapping's file handle (CF3).
fn source(hfile: HANDLE) -> SectionSource {
    if hfile.is_null() || hfile == INVALID_HANDLE_VALUE {
        SectionSource::Pagefile
    } else {
        SectionSource::File(hfile as usize)
    }
}

/// CreateFileMapping's common path: on success the last error is ERROR_ALREADY_EXISTS when
/// the name was in use, else 0 (CF8).
fn create(hfile: HANDLE, flprotect: u32, size: u64, name: Result<Option<ObjectName>>) -> HANDLE {
    let r = win32_call(None, || {
        Space::native()
            .create_section(source(hfile), flprotect, size, name)
            .map(Some)
    });
    match r {
        Some(c) => {
            SetLastError(if c.existed { ERROR_ALREADY_EXISTS } else { 0 });
            c.handle as HANDLE
        }
        None => null_mut(),
    }
}

/// Creates (or opens, by name) a section: pagefile-backed when `hfile` is
/// INVALID_HANDLE_VALUE, else of that file. Sets the last error on success too.
#[no_mangle]
pub unsafe extern "system" fn CreateFileMappingA(
    hfile: HANDLE,
    _lpfilemappingattributes: *const SECURITY_ATTRIBUTES,
    flprotect: PAGE_PROTECTION_FLAGS,
    dwmaximumsizehigh: u32,
    dwmaximumsizelow: u32,
    lpname: PCSTR,
) -> HANDLE {
    let size = (u64::from(dwmaximumsizehigh) << 32) | u64::from(dwmaximumsizelow);
    // SAFETY: the caller's name string.
    create(hfile, flprotect, size, unsafe { a_name(lpname) })
}

/// CreateFileMappingA with a UTF-16 name.
#[no_mangle]
pub unsafe extern "system" fn CreateFileMappingW(
    hfile: HANDLE,
    _lpfilemappingattributes: *const SECURITY_ATTRIBUTES,
    flprotect: PAGE_PROTECTION_FLAGS,
    dwmaximumsizehigh: u32,
    dwmaximumsizelow: u32,
    lpname: PCWSTR,
) -> HANDLE {
    let size = (u64::from(dwmaximumsizehigh) << 32) | u64::from(dwmaximumsizelow);
    // SAFETY: the caller's name string.
    create(hfile, flprotect, size, unsafe { w_name(lpname) })
}

/// CreateFileMappingA with a preferred NUMA node (ignored).
#[no_mangle]
pub unsafe extern "system" fn CreateFileMappingNumaA(
    hfile: HANDLE,
    lpfilemappingattributes: *const SECURITY_ATTRIBUTES,
    flprotect: PAGE_PROTECTION_FLAGS,
    dwmaximumsizehigh: u32,
    dwmaximumsizelow: u32,
    lpname: PCSTR,
    _nndpreferred: u32,
) -> HANDLE {
    // SAFETY: forwarded caller contract.
    unsafe {
        CreateFileMappingA(
            hfile,
            lpfilemappingattributes,
            flprotect,
            dwmaximumsizehigh,
            dwmaximumsizelow,
            lpname,
        )
    }
}

/// CreateFileMappingW with a preferred NUMA node (ignored).
#[no_mangle]
pub unsafe extern "system" fn CreateFileMappingNumaW(
    hfile: HANDLE,
    lpfilemappingattributes: *const SECURITY_ATTRIBUTES,
    flprotect: PAGE_PROTECTION_FLAGS,
    dwmaximumsizehigh: u32,
    dwmaximumsizelow: u32,
    lpname: PCWSTR,
    _nndpreferred: u32,
) -> HANDLE {
    // SAFETY: forwarded caller contract.
    unsafe {
        CreateFileMappingW(
            hfile,
            lpfilemappingattributes,
            flprotect,
            dwmaximumsizehigh,
            dwmaximumsizelow,
            lpname,
        )
    }
}

/// CreateFileMappingW with a 64-bit size (C2-3); executable protections are allowed.
#[no_mangle]
pub unsafe extern "system" fn CreateFileMappingFromApp(
    hfile: HANDLE,
    _securityattributes: *const SECURITY_ATTRIBUTES,
    pageprotection: PAGE_PROTECTION_FLAGS,
    maximumsize: u64,
    name: PCWSTR,
) -> HANDLE {
    // SAFETY: the caller's name string.
    create(hfile, pageprotection, maximumsize, unsafe { w_name(name) })
}

/// CreateFileMapping with the handle's access, protection and attributes apart, a 64-bit
/// size, and extended parameters (only a NUMA node, ignored) (C2-1, C2-2). The handle gets
/// exactly `desiredaccess`.
#[no_mangle]
pub unsafe extern "system" fn CreateFileMapping2(
    file: HANDLE,
    _securityattributes: *const SECURITY_ATTRIBUTES,
    desiredaccess: u32,
    pageprotection: PAGE_PROTECTION_FLAGS,
    allocationattributes: u32,
    maximumsize: u64,
    name: PCWSTR,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> HANDLE {
    let r = win32_call(None, || {
        // SAFETY: the caller's parameter array.
        let params = unsafe { decode_params(extendedparameters, parametercount) }?;
        if params
            .iter()
            .any(|p| !matches!(p, ExtendedParameter::NumaNode(_)))
        {
            return Err(Error::InvalidParameter(
                "CreateFileMapping2 takes only a NUMA-node parameter",
            ));
        }
        if pageprotection & 0xFFFF_FF00 != 0 || allocationattributes & 0xFF != 0 {
            return Err(Error::InvalidParameter(
                "protection and attributes are apart",
            ));
        }
        let attrs = if allocationattributes == 0 {
            SEC_COMMIT
        } else {
            allocationattributes
        };
        // SAFETY: the caller's name string.
        let name = unsafe { w_name(name) };
        let space = Space::native();
        let c = space.create_section(source(file), pageprotection | attrs, maximumsize, name)?;
        // The handle gets exactly the access asked for.
        let h = space.duplicate_handle(c.handle, desiredaccess, false, true)?;
        Ok(Some((h, c.existed)))
    });
    match r {
        Some((h, existed)) => {
            SetLastError(if existed { ERROR_ALREADY_EXISTS } else { 0 });
            h as HANDLE
        }
        None => null_mut(),
    }
}

fn open(access: u32, name: Result<Option<ObjectName>>) -> HANDLE {
    win32_call(null_mut(), || {
        Space::native()
            .open_section(access, name)
            .map(|h| h as HANDLE)
    })
}

/// Opens the section of that name with `dwdesiredaccess` (2 if none has the name).
#[no_mangle]
pub unsafe extern "system" fn OpenFileMappingA(
    dwdesiredaccess: u32,
    _binherithandle: BOOL,
    lpname: PCSTR,
) -> HANDLE {
    if lpname.is_null() {
        return win32_call(null_mut(), || {
            Err(Error::InvalidParameter("OpenFileMapping needs a name"))
        });
    }
    // SAFETY: the caller's name string.
    open(dwdesiredaccess, unsafe { a_name(lpname) })
}

/// OpenFileMappingA with a UTF-16 name.
#[no_mangle]
pub unsafe extern "system" fn OpenFileMappingW(
    dwdesiredaccess: u32,
    _binherithandle: BOOL,
    lpname: PCWSTR,
) -> HANDLE {
    if lpname.is_null() {
        return win32_call(null_mut(), || {
            Err(Error::InvalidParameter("OpenFileMapping needs a name"))
        });
    }
    // SAFETY: the caller's name string.
    open(dwdesiredaccess, unsafe { w_name(lpname) })
}

fn map(req: MapRequest) -> MEMORY_MAPPED_VIEW_ADDRESS {
    let v = win32_call(null_mut(), || {
        Space::native().map_view(req).map(|b| b as *mut c_void)
    });
    MEMORY_MAPPED_VIEW_ADDRESS { Value: v }
}

fn map_access(
    h: HANDLE,
    access: u32,
    offset: u64,
    size: usize,
    base: Option<usize>,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    map(MapRequest {
        handle: h as usize,
        protect: view_protection(access),
        offset,
        size,
        base,
        replace_placeholder: false,
        highest_end: None,
    })
}

/// Maps a view of a section (MV1–MV8); the system picks a 64 KiB-aligned address.
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFile(
    hfilemappingobject: HANDLE,
    dwdesiredaccess: FILE_MAP,
    dwfileoffsethigh: u32,
    dwfileoffsetlow: u32,
    dwnumberofbytestomap: usize,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    let offset = (u64::from(dwfileoffsethigh) << 32) | u64::from(dwfileoffsetlow);
    map_access(
        hfilemappingobject,
        dwdesiredaccess,
        offset,
        dwnumberofbytestomap,
        None,
    )
}

/// MapViewOfFile at `lpbaseaddress` (NULL: anywhere) (MV6).
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFileEx(
    hfilemappingobject: HANDLE,
    dwdesiredaccess: FILE_MAP,
    dwfileoffsethigh: u32,
    dwfileoffsetlow: u32,
    dwnumberofbytestomap: usize,
    lpbaseaddress: *const c_void,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    let offset = (u64::from(dwfileoffsethigh) << 32) | u64::from(dwfileoffsetlow);
    let base = (!lpbaseaddress.is_null()).then_some(lpbaseaddress as usize);
    map_access(
        hfilemappingobject,
        dwdesiredaccess,
        offset,
        dwnumberofbytestomap,
        base,
    )
}

/// MapViewOfFileEx with a preferred NUMA node (ignored).
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFileExNuma(
    hfilemappingobject: HANDLE,
    dwdesiredaccess: FILE_MAP,
    dwfileoffsethigh: u32,
    dwfileoffsetlow: u32,
    dwnumberofbytestomap: usize,
    lpbaseaddress: *const c_void,
    _nndpreferred: u32,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    // SAFETY: forwarded caller contract.
    unsafe {
        MapViewOfFileEx(
            hfilemappingobject,
            dwdesiredaccess,
            dwfileoffsethigh,
            dwfileoffsetlow,
            dwnumberofbytestomap,
            lpbaseaddress,
        )
    }
}

/// MapViewOfFile with a 64-bit offset (MV9).
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFileFromApp(
    hfilemappingobject: HANDLE,
    desiredaccess: FILE_MAP,
    fileoffset: u64,
    numberofbytestomap: usize,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    map_access(
        hfilemappingobject,
        desiredaccess,
        fileoffset,
        numberofbytestomap,
        None,
    )
}

/// MapViewOfFile3's checks after the process (M3-2 … M3-7): the request to map, or the
/// error. Shared with NtMapViewOfSectionEx.
///
/// # Safety
///
/// `extendedparameters` points to `parametercount` readable parameters (or is NULL).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn map3_request(
    filemapping: HANDLE,
    baseaddress: *const c_void,
    offset: u64,
    viewsize: usize,
    allocationtype: u32,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> Result<MapRequest> {
    // SAFETY: forwarded caller contract.
    let params = unsafe { decode_params(extendedparameters, parametercount) }?;
    let mut highest_end = None;
    for p in params.iter() {
        match *p {
            ExtendedParameter::AddressRequirements {
                lowest: _,
                highest,
                alignment,
            } => {
                if alignment != 0 {
                    return Err(Error::InvalidParameter(
                        "views take no alignment requirement",
                    ));
                }
                if highest != 0 {
                    let space = Space::native();
                    if highest
                        .checked_add(1)
                        .is_none_or(|h| h % space.layout().page_size != 0)
                        || highest > space.layout().max_address
                        || !baseaddress.is_null()
                    {
                        return Err(Error::InvalidParameter("invalid HighestEndingAddress"));
                    }
                    highest_end = Some(highest);
                }
            }
            ExtendedParameter::NumaNode(_) => {}
            ExtendedParameter::Other(_) => {
                return Err(Error::InvalidParameter("unknown extended parameter"))
            }
        }
    }
    if allocationtype & !(MEM_REPLACE_PLACEHOLDER | MEM_LARGE_PAGES | MEM_RESERVE) != 0 {
        return Err(Error::InvalidParameter("unknown allocation type"));
    }
    if allocationtype & MEM_RESERVE != 0 {
        return Err(Error::NotSupported("reserved views (MEM_RESERVE)"));
    }
    let protect = validate_view_protection(pageprotection)?;
    let replace = allocationtype & MEM_REPLACE_PLACEHOLDER != 0;
    let base = (!baseaddress.is_null()).then_some(baseaddress as usize);
    Ok(MapRequest {
        handle: filemapping as usize,
        protect,
        offset,
        size: viewsize,
        base,
        replace_placeholder: replace,
        highest_end,
    })
}

/// MapViewOfFile3's checks and mapping (M3-1 … M3-7).
///
/// # Safety
///
/// `extendedparameters` points to `parametercount` readable parameters (or is NULL).
#[allow(clippy::too_many_arguments)]
unsafe fn map3(
    filemapping: HANDLE,
    process: HANDLE,
    baseaddress: *const c_void,
    offset: u64,
    viewsize: usize,
    allocationtype: u32,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    let v = win32_call(null_mut(), || {
        if !process.is_null() {
            super::process::current_only(process, super::process::Need::Operation)?;
        }
        // SAFETY: forwarded caller contract.
        let req = unsafe {
            map3_request(
                filemapping,
                baseaddress,
                offset,
                viewsize,
                allocationtype,
                pageprotection,
                extendedparameters,
                parametercount,
            )
        }?;
        Space::native().map_view(req).map(|b| b as *mut c_void)
    });
    MEMORY_MAPPED_VIEW_ADDRESS { Value: v }
}

/// Maps a view with an explicit protection, into a placeholder with MEM_REPLACE_PLACEHOLDER
/// (M3-*, PH1). MEM_RESERVE views are not supported (ERROR_NOT_SUPPORTED).
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFile3(
    filemapping: HANDLE,
    process: HANDLE,
    baseaddress: *const c_void,
    offset: u64,
    viewsize: usize,
    allocationtype: VIRTUAL_ALLOCATION_TYPE,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    // SAFETY: forwarded caller contract.
    unsafe {
        map3(
            filemapping,
            process,
            baseaddress,
            offset,
            viewsize,
            allocationtype,
            pageprotection,
            extendedparameters,
            parametercount,
        )
    }
}

/// MapViewOfFile3 for apps (M3-8): the same rules.
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFile3FromApp(
    filemapping: HANDLE,
    process: HANDLE,
    baseaddress: *const c_void,
    offset: u64,
    viewsize: usize,
    allocationtype: VIRTUAL_ALLOCATION_TYPE,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    parametercount: u32,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    // SAFETY: forwarded caller contract.
    unsafe {
        map3(
            filemapping,
            process,
            baseaddress,
            offset,
            viewsize,
            allocationtype,
            pageprotection,
            extendedparameters,
            parametercount,
        )
    }
}

/// MapViewOfFile3 with the offset before the address and a NUMA node (M3-9).
#[no_mangle]
pub unsafe extern "system" fn MapViewOfFileNuma2(
    filemappinghandle: HANDLE,
    processhandle: HANDLE,
    offset: u64,
    baseaddress: *const c_void,
    viewsize: usize,
    allocationtype: u32,
    pageprotection: u32,
    _preferrednode: u32,
) -> MEMORY_MAPPED_VIEW_ADDRESS {
    // SAFETY: no extended parameters.
    unsafe {
        map3(
            filemappinghandle,
            processhandle,
            baseaddress,
            offset,
            viewsize,
            allocationtype,
            pageprotection,
            null_mut(),
            0,
        )
    }
}

fn unmap(addr: *const c_void, flags: u32) -> BOOL {
    win32_call(FALSE, || {
        let preserve = validate_unmap_flags(flags)?;
        Space::native()
            .unmap_view(addr as usize, preserve)
            .map(|()| TRUE)
    })
}

/// Unmaps the whole view containing the address (U1–U4).
#[no_mangle]
pub unsafe extern "system" fn UnmapViewOfFile(lpbaseaddress: MEMORY_MAPPED_VIEW_ADDRESS) -> BOOL {
    unmap(lpbaseaddress.Value, 0)
}

/// UnmapViewOfFile with flags (U5, U7).
#[no_mangle]
pub unsafe extern "system" fn UnmapViewOfFileEx(
    baseaddress: MEMORY_MAPPED_VIEW_ADDRESS,
    unmapflags: UNMAP_VIEW_OF_FILE_FLAGS,
) -> BOOL {
    unmap(baseaddress.Value, unmapflags)
}

/// UnmapViewOfFileEx in a process: this process only (NULL is 6, U6; another process →
/// ERROR_NOT_SUPPORTED after the PROCESS_VM_OPERATION check).
#[no_mangle]
pub unsafe extern "system" fn UnmapViewOfFile2(
    process: HANDLE,
    baseaddress: MEMORY_MAPPED_VIEW_ADDRESS,
    unmapflags: UNMAP_VIEW_OF_FILE_FLAGS,
) -> BOOL {
    if let Err(e) = super::process::current_only(process, super::process::Need::Operation) {
        return win32_call(FALSE, || Err(e));
    }
    unmap(baseaddress.Value, unmapflags)
}

/// Writes a file view's modified pages to the file (FV1, FV2).
#[no_mangle]
pub unsafe extern "system" fn FlushViewOfFile(
    lpbaseaddress: *const c_void,
    dwnumberofbytestoflush: usize,
) -> BOOL {
    win32_call(FALSE, || {
        Space::native()
            .flush_view(lpbaseaddress as usize, dwnumberofbytestoflush)
            .map(|()| TRUE)
    })
}

/// CreateFileMapping (`hfile` INVALID_HANDLE_VALUE or a file handle, an A name or none) on
/// any space, for virtmem's own tests of other backends (fault injection): the parsed name
/// is an internal type, so a test cannot call `Space::create_section` itself.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub fn create_section_in<O: crate::os::Os>(
    space: &Space<O>,
    hfile: HANDLE,
    flprotect: u32,
    size: u64,
    name: Option<&[u8]>,
) -> Result<crate::engine::Created> {
    let name = name.map_or(Ok(None), |n| parse_name_a(n).map_err(Error::from));
    space.create_section(source(hfile), flprotect, size, name)
}
