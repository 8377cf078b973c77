//! NtCreateSection, NtMapViewOfSection(Ex), NtUnmapViewOfSection(Ex), NtAreMappedFilesTheSame.

use super::super::consts::*;
use super::super::types::*;
use super::memory::zero_bits_end;
use super::{nt_call, probe, probe_bytes, process, read_inout, write_range, Need, NtResult};
use crate::engine::{MapRequest, SameFile, SectionSource, Space};
use crate::error::Error;
use crate::os::linux::names::parse_name_w;
use crate::rules::sections::{validate_unmap_flags, validate_view_protection};
use core::ffi::c_void;

/// The Win32 form of an NT section name: `\BaseNamedObjects\X` is `Global\X`,
/// `\Sessions\<n>\BaseNamedObjects\X` is `Local\X` (what kernelbase makes of them in the other
/// direction); any other directory does not exist here (STATUS_OBJECT_PATH_NOT_FOUND).
fn win32_name(nt: &[u16]) -> core::result::Result<Vec<u16>, NTSTATUS> {
    let s = String::from_utf16(nt).map_err(|_| STATUS_OBJECT_PATH_NOT_FOUND)?;
    let (prefix, rest) = if let Some(rest) = s.strip_prefix("\\BaseNamedObjects\\") {
        ("Global\\", rest)
    } else if let Some(rest) = s.strip_prefix("\\Sessions\\") {
        let (session, rest) = rest.split_once('\\').ok_or(STATUS_OBJECT_PATH_NOT_FOUND)?;
        if session.is_empty() || !session.bytes().all(|b| b.is_ascii_digit()) {
            return Err(STATUS_OBJECT_PATH_NOT_FOUND);
        }
        let rest = rest
            .strip_prefix("BaseNamedObjects\\")
            .ok_or(STATUS_OBJECT_PATH_NOT_FOUND)?;
        ("Local\\", rest)
    } else {
        return Err(STATUS_OBJECT_PATH_NOT_FOUND);
    };
    Ok(format!("{prefix}{rest}").encode_utf16().collect())
}

/// The status of a failed map: a view past the section's end is STATUS_INVALID_VIEW_SIZE
/// (MV4), an occupied range STATUS_CONFLICTING_ADDRESSES (MV6), the rest as
/// [`Error::nt_status`].
fn map_status(e: Error, past_end: bool) -> NTSTATUS {
    match e {
        Error::AccessDenied(_) if past_end => STATUS_INVALID_VIEW_SIZE,
        e => e.nt_status(),
    }
}

/// Maps a view and writes the base and the page-rounded size back.
///
/// # Safety
///
/// `base` and `size` were probed for writing.
unsafe fn map_and_report(req: MapRequest, base: *mut *mut c_void, size: *mut usize) -> NtResult {
    let space = Space::native();
    let got = space.map_view(req).map_err(|e| {
        // Tell "past the section's end" (5 as STATUS_INVALID_VIEW_SIZE) from "the handle's
        // rights" (5 as STATUS_ACCESS_DENIED): the section's size decides.
        let past = matches!(e, Error::AccessDenied(_))
            && space
                .section_size(req.handle)
                .is_some_and(|s| req.offset >= s || req.offset + req.size as u64 > s);
        map_status(e, past)
    })?;
    let view = space.region_info(got).ok().flatten().map_or(0, |r| r.size);
    // SAFETY: probed by the caller.
    unsafe { write_range(base, size, got, view) };
    Ok(STATUS_SUCCESS)
}

/// Creates a section (CreateFileMapping's native call): pagefile-backed when `filehandle` is
/// NULL. `*maximumsize` NULL or 0 means the file's size. `allocationattributes` needs
/// SEC_COMMIT, SEC_RESERVE or SEC_IMAGE (else STATUS_INVALID_PARAMETER_6). The new handle has
/// exactly `desiredaccess`. A name (`\BaseNamedObjects\X` or
/// `\Sessions\<n>\BaseNamedObjects\X`) in use gives STATUS_OBJECT_NAME_COLLISION, or with
/// OBJ_OPENIF a handle to that section and STATUS_OBJECT_NAME_EXISTS; names relative to a
/// root directory are not supported.
#[no_mangle]
pub unsafe extern "system" fn NtCreateSection(
    sectionhandle: *mut HANDLE,
    desiredaccess: u32,
    objectattributes: *const OBJECT_ATTRIBUTES,
    maximumsize: *const i64,
    sectionpageprotection: u32,
    allocationattributes: u32,
    filehandle: HANDLE,
) -> NTSTATUS {
    nt_call(|| {
        probe(sectionhandle, true)?;
        let size = if maximumsize.is_null() {
            0
        } else {
            probe(maximumsize, false)?;
            // SAFETY: probed readable.
            let s = unsafe { maximumsize.read_unaligned() };
            u64::try_from(s).map_err(|_| STATUS_INVALID_PARAMETER_4)?
        };
        if allocationattributes & (SEC_COMMIT | SEC_RESERVE | SEC_IMAGE) == 0 {
            return Err(STATUS_INVALID_PARAMETER_6);
        }
        let mut open_if = false;
        let name = if objectattributes.is_null() {
            None
        } else {
            probe(objectattributes, false)?;
            // SAFETY: probed readable.
            let oa = unsafe { objectattributes.read_unaligned() };
            open_if = oa.Attributes & OBJ_OPENIF != 0;
            if oa.ObjectName.is_null() {
                None
            } else {
                if !oa.RootDirectory.is_null() {
                    return Err(STATUS_NOT_SUPPORTED);
                }
                probe(oa.ObjectName, false)?;
                // SAFETY: probed readable.
                let us = unsafe { oa.ObjectName.read_unaligned() };
                let n = usize::from(us.Length / 2);
                probe_bytes(us.Buffer as usize, n * 2, false)?;
                // SAFETY: `n` units probed readable.
                let units = unsafe { std::slice::from_raw_parts(us.Buffer, n) };
                if units.is_empty() {
                    None
                } else {
                    Some(win32_name(units)?)
                }
            }
        };
        let name = match &name {
            Some(units) => parse_name_w(units).map_err(Error::from),
            None => Ok(None),
        };
        let source = if filehandle.is_null() {
            SectionSource::Pagefile
        } else {
            SectionSource::File(filehandle as usize)
        };
        let file_backed = !filehandle.is_null();
        let space = Space::native();
        let c = space
            .create_section(
                source,
                sectionpageprotection | allocationattributes,
                size,
                name,
            )
            .map_err(|e| match e {
                // CF6: a read-only file section larger than its file.
                Error::NotEnoughMemory(_) if file_backed => STATUS_SECTION_TOO_BIG,
                e => e.nt_status(),
            })?;
        if c.existed && !open_if {
            let _ = space.close_handle(c.handle);
            return Err(STATUS_OBJECT_NAME_COLLISION);
        }
        let h = space
            .duplicate_handle(c.handle, desiredaccess, false, true)
            .map_err(|e| e.nt_status())?;
        // SAFETY: probed writable.
        unsafe { sectionhandle.write_unaligned(h as HANDLE) };
        Ok(if c.existed {
            STATUS_OBJECT_NAME_EXISTS
        } else {
            STATUS_SUCCESS
        })
    })
}

/// Maps a view of a section (MapViewOfFile's native call). `*BaseAddress` (NULL: the system
/// chooses, below the `ZeroBits` limit) and `*ViewSize` (0: to the section's end) receive the
/// view's base and page-rounded size; `*SectionOffset` (NULL: 0) must be a multiple of 64 KiB
/// (STATUS_MAPPED_ALIGNMENT). `InheritDisposition` is ViewShare or ViewUnmap (no effect: no
/// child inherits views here); `CommitSize` is a hint.
#[no_mangle]
pub unsafe extern "system" fn NtMapViewOfSection(
    sectionhandle: HANDLE,
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    zerobits: usize,
    _commitsize: usize,
    sectionoffset: *mut i64,
    viewsize: *mut usize,
    inheritdisposition: SECTION_INHERIT,
    allocationtype: u32,
    win32protect: u32,
) -> NTSTATUS {
    nt_call(|| {
        let limit = zero_bits_end(zerobits)?;
        // SAFETY: the caller's pointers, probed by read_inout.
        let base = unsafe { read_inout(baseaddress) }? as usize;
        // SAFETY: as above.
        let size = unsafe { read_inout(viewsize) }?;
        let offset = if sectionoffset.is_null() {
            0
        } else {
            // SAFETY: as above.
            let o = unsafe { read_inout(sectionoffset) }?;
            u64::try_from(o).map_err(|_| STATUS_INVALID_PARAMETER_6)?
        };
        if inheritdisposition != ViewShare && inheritdisposition != ViewUnmap {
            return Err(STATUS_INVALID_PARAMETER_8);
        }
        if allocationtype & !(MEM_TOP_DOWN | MEM_RESERVE | MEM_LARGE_PAGES) != 0 {
            return Err(STATUS_INVALID_PARAMETER_9);
        }
        if allocationtype & MEM_RESERVE != 0 {
            return Err(STATUS_NOT_SUPPORTED);
        }
        let protect =
            validate_view_protection(win32protect).map_err(|_| STATUS_INVALID_PAGE_PROTECTION)?;
        process(processhandle, Need::Operation)?;
        let req = MapRequest {
            handle: sectionhandle as usize,
            protect,
            offset,
            size,
            base: (base != 0).then_some(base),
            replace_placeholder: false,
            highest_end: if base == 0 {
                limit.map(|e| e - 1)
            } else {
                None
            },
        };
        if let (Some(end), true) = (limit, base != 0) {
            if base.checked_add(size).is_none_or(|e| e > end) {
                return Err(STATUS_INVALID_PARAMETER_4);
            }
        }
        // SAFETY: both probed for writing by read_inout.
        unsafe { map_and_report(req, baseaddress, viewsize) }
    })
}

/// NtMapViewOfSection with MapViewOfFile3's allocation types (MEM_REPLACE_PLACEHOLDER),
/// protection and extended parameters.
#[no_mangle]
pub unsafe extern "system" fn NtMapViewOfSectionEx(
    sectionhandle: HANDLE,
    processhandle: HANDLE,
    baseaddress: *mut *mut c_void,
    sectionoffset: *mut i64,
    viewsize: *mut usize,
    allocationtype: u32,
    pageprotection: u32,
    extendedparameters: *mut MEM_EXTENDED_PARAMETER,
    extendedparametercount: u32,
) -> NTSTATUS {
    nt_call(|| {
        // SAFETY: the caller's pointers, probed by read_inout.
        let base = unsafe { read_inout(baseaddress) }? as usize;
        // SAFETY: as above.
        let size = unsafe { read_inout(viewsize) }?;
        let offset = if sectionoffset.is_null() {
            0
        } else {
            // SAFETY: as above.
            let o = unsafe { read_inout(sectionoffset) }?;
            u64::try_from(o).map_err(|_| STATUS_INVALID_PARAMETER_4)?
        };
        process(processhandle, Need::Operation)?;
        if extendedparametercount > 0 {
            probe_bytes(
                extendedparameters as usize,
                (extendedparametercount as usize)
                    .saturating_mul(size_of::<MEM_EXTENDED_PARAMETER>()),
                false,
            )
            .map_err(|_| STATUS_INVALID_PARAMETER)?;
        }
        // SAFETY: the parameters were probed readable.
        let req = unsafe {
            super::super::sections::map3_request(
                sectionhandle,
                base as *const c_void,
                offset,
                size,
                allocationtype,
                pageprotection,
                extendedparameters,
                extendedparametercount,
            )
        }
        .map_err(|e| match e {
            Error::InvalidParameter(_) if validate_view_protection(pageprotection).is_err() => {
                STATUS_INVALID_PAGE_PROTECTION
            }
            e => e.nt_status(),
        })?;
        // SAFETY: both probed for writing by read_inout.
        unsafe { map_and_report(req, baseaddress, viewsize) }
    })
}

/// Unmaps the view containing `baseaddress` (UnmapViewOfFile's native call):
/// STATUS_NOT_MAPPED_VIEW if it is not in a view (U2).
#[no_mangle]
pub unsafe extern "system" fn NtUnmapViewOfSection(
    processhandle: HANDLE,
    baseaddress: *const c_void,
) -> NTSTATUS {
    // SAFETY: same contract, no flags.
    unsafe { NtUnmapViewOfSectionEx(processhandle, baseaddress, 0) }
}

/// NtUnmapViewOfSection with flags (MEM_UNMAP_WITH_TRANSIENT_BOOST, MEM_PRESERVE_PLACEHOLDER;
/// others STATUS_INVALID_PARAMETER_3). Preserving a view that did not replace a placeholder
/// is STATUS_CONFLICTING_ADDRESSES (U7).
#[no_mangle]
pub unsafe extern "system" fn NtUnmapViewOfSectionEx(
    processhandle: HANDLE,
    baseaddress: *const c_void,
    unmapflags: u32,
) -> NTSTATUS {
    nt_call(|| {
        process(processhandle, Need::Operation)?;
        let preserve = validate_unmap_flags(unmapflags).map_err(|_| STATUS_INVALID_PARAMETER_3)?;
        let space = Space::native();
        let addr = baseaddress as usize;
        if !space.is_view(addr) {
            return Err(STATUS_NOT_MAPPED_VIEW);
        }
        space.unmap_view(addr, preserve).map_err(|e| match e {
            Error::InvalidAddress(_) if preserve => STATUS_CONFLICTING_ADDRESSES,
            Error::InvalidAddress(_) => STATUS_NOT_MAPPED_VIEW,
            e => e.nt_status(),
        })?;
        Ok(STATUS_SUCCESS)
    })
}

/// Whether two addresses map the same file (k32 test_NtAreMappedFilesTheSame, run on
/// Windows): STATUS_SUCCESS for two addresses of one view, or an image and a view of the
/// image's file; STATUS_NOT_SAME_DEVICE otherwise — also for two different views of one data
/// file; STATUS_CONFLICTING_ADDRESSES when an address is private memory; STATUS_INVALID_ADDRESS
/// when one is free.
#[no_mangle]
pub unsafe extern "system" fn NtAreMappedFilesTheSame(
    file1mappedasanimage: *const c_void,
    file2mappedasfile: *const c_void,
) -> NTSTATUS {
    nt_call(|| {
        Ok(
            match Space::native()
                .same_mapped_file(file1mappedasanimage as usize, file2mappedasfile as usize)
            {
                SameFile::Same => STATUS_SUCCESS,
                SameFile::NotSame => STATUS_NOT_SAME_DEVICE,
                SameFile::Private => STATUS_CONFLICTING_ADDRESSES,
                SameFile::Free => STATUS_INVALID_ADDRESS,
            },
        )
    })
}
