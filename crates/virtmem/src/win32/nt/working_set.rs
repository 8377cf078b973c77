//! Working sets: NtQueryVirtualMemory's MemoryWorkingSetInformation and
//! MemoryWorkingSetExInformation, and the psapi functions on top of them (QueryWorkingSet,
//! QueryWorkingSetEx and their K32 names), all from one engine function
//! (`Space::working_set`): the kernel's page tables (present, mapped once or shared, huge,
//! poisoned, node) and virtmem's page state (protection, locked, large pages). No page is
//! touched by a query.

use super::super::consts::*;
use super::super::last_error::win32_call;
use super::super::types::*;
use super::{probe_bytes, process, Need, NtResult};
use crate::engine::{Space, WorkingSetPage};
use crate::error::Error;
use crate::vocab::ntstatus::nt_status_to_dos_error;
use core::ffi::c_void;

/// PSAPI_WORKING_SET_BLOCK's 5-bit `Protection`: the NT protection index (1 read-only,
/// 2 execute, 3 execute-read, 4 read/write, 5 copy-on-write, 6 execute-read/write,
/// 7 execute-copy-on-write; +8 non-cacheable, +16 guard; PAGE_NOACCESS is 24, one of the
/// "not accessed" values).
pub fn working_set_protection(protect: u32) -> usize {
    let base = match protect & 0xFF {
        PAGE_READONLY => 1,
        PAGE_EXECUTE => 2,
        PAGE_EXECUTE_READ => 3,
        PAGE_READWRITE => 4,
        PAGE_WRITECOPY => 5,
        PAGE_EXECUTE_READWRITE => 6,
        PAGE_EXECUTE_WRITECOPY => 7,
        _ => return 24,
    };
    base + if protect & PAGE_NOCACHE != 0 { 8 } else { 0 }
        + if protect & PAGE_GUARD != 0 { 16 } else { 0 }
}

/// The PSAPI_WORKING_SET_BLOCK word of a working-set page.
fn block(w: &WorkingSetPage) -> usize {
    (w.address & !0xFFF)
        | working_set_protection(w.protect)
        | (w.share_count.min(7) as usize) << 5
        | usize::from(w.shared) << 8
}

/// The PSAPI_WORKING_SET_EX_BLOCK word of a page (valid or not).
fn ex_block(w: &WorkingSetPage) -> usize {
    let bad = usize::from(w.bad) << 31;
    let shared = usize::from(w.shared) << 15;
    if !w.valid {
        return shared | bad;
    }
    1 | (w.share_count.min(7) as usize) << 1
        | ((w.protect & 0x7FF) as usize) << 4
        | shared
        | ((w.node & 0x3F) as usize) << 16
        | usize::from(w.locked) << 22
        | usize::from(w.large_page) << 23
        | bad
}

/// MemoryWorkingSetInformation: a `usize` count, then one block per page of the process's
/// working set. A buffer without room for every block gets the count only, with
/// STATUS_INFO_LENGTH_MISMATCH (QueryWorkingSet: ERROR_BAD_LENGTH, `NumberOfEntries` set).
///
/// # Safety
///
/// `buf` is the caller's buffer of `len` bytes (probed here); `ret` NULL or writable.
pub(super) unsafe fn query_working_set(buf: usize, len: usize, ret: *mut usize) -> NtResult {
    let word = size_of::<usize>();
    if len < word {
        return Err(STATUS_INFO_LENGTH_MISMATCH);
    }
    probe_bytes(buf, word, true)?;
    let space = Space::native();
    let mut pages = Vec::new();
    space
        .working_set(0, space.layout().max_address + 1, &mut |w| {
            pages.push(block(&w))
        })
        .map_err(|e| e.nt_status())?;
    let need = word * (1 + pages.len());
    // SAFETY: the count word was probed writable.
    unsafe { (buf as *mut usize).write_unaligned(pages.len()) };
    if len < need {
        // SAFETY: forwarded caller contract.
        unsafe { super::write_count(ret, need)? };
        return Err(STATUS_INFO_LENGTH_MISMATCH);
    }
    probe_bytes(buf, need, true)?;
    // SAFETY: `need` bytes probed writable: the count and one word per page.
    unsafe {
        core::ptr::copy_nonoverlapping(pages.as_ptr(), (buf as *mut usize).add(1), pages.len());
        super::write_count(ret, need)?;
    }
    Ok(STATUS_SUCCESS)
}

/// MemoryWorkingSetExInformation: for each PSAPI_WORKING_SET_EX_INFORMATION of the buffer
/// (as many as fit), the attributes of the page at its `VirtualAddress`.
///
/// # Safety
///
/// As [`query_working_set`].
pub(super) unsafe fn query_working_set_ex(buf: usize, len: usize, ret: *mut usize) -> NtResult {
    let entry = size_of::<PSAPI_WORKING_SET_EX_INFORMATION>();
    if len < entry {
        return Err(STATUS_INFO_LENGTH_MISMATCH);
    }
    let n = len / entry;
    probe_bytes(buf, n * entry, true)?;
    let space = Space::native();
    let entries = buf as *mut PSAPI_WORKING_SET_EX_INFORMATION;
    for i in 0..n {
        // SAFETY: `n` entries probed readable and writable.
        let e = unsafe { entries.add(i) };
        // SAFETY: as above.
        let addr = unsafe { core::ptr::addr_of!((*e).VirtualAddress).read_unaligned() } as usize;
        let w = space.working_set_page(addr).map_err(|e| e.nt_status())?;
        // SAFETY: as above.
        unsafe {
            core::ptr::addr_of_mut!((*e).VirtualAttributes).write_unaligned(
                PSAPI_WORKING_SET_EX_BLOCK {
                    Flags: ex_block(&w),
                },
            )
        };
    }
    // SAFETY: forwarded caller contract.
    unsafe { super::write_count(ret, n * entry)? };
    Ok(STATUS_SUCCESS)
}

/// The psapi functions: the NT query through the process check, its status as the last
/// error on failure.
fn psapi(h: HANDLE, query: impl FnOnce() -> NtResult) -> BOOL {
    win32_call(FALSE, || {
        process(h, Need::QueryRead).map_err(|s| Error::Code(nt_status_to_dos_error(s)))?;
        match query() {
            Ok(_) => Ok(TRUE),
            Err(s) => Err(Error::Code(nt_status_to_dos_error(s))),
        }
    })
}

/// Every page of the process's working set (`pv`: a PSAPI_WORKING_SET_INFORMATION of `cb`
/// bytes). Too small a buffer fails with ERROR_BAD_LENGTH and `NumberOfEntries` set to the
/// number of pages.
#[no_mangle]
pub unsafe extern "system" fn QueryWorkingSet(hprocess: HANDLE, pv: *mut c_void, cb: u32) -> BOOL {
    // SAFETY: forwarded caller contract.
    psapi(hprocess, || unsafe {
        query_working_set(pv as usize, cb as usize, core::ptr::null_mut())
    })
}

/// QueryWorkingSet under its kernel32 name.
#[no_mangle]
pub unsafe extern "system" fn K32QueryWorkingSet(
    hprocess: HANDLE,
    pv: *mut c_void,
    cb: u32,
) -> BOOL {
    // SAFETY: same contract.
    unsafe { QueryWorkingSet(hprocess, pv, cb) }
}

/// Per-page working-set attributes (`pv`: PSAPI_WORKING_SET_EX_INFORMATION entries whose
/// `VirtualAddress` the caller set; `cb` bytes).
#[no_mangle]
pub unsafe extern "system" fn QueryWorkingSetEx(
    hprocess: HANDLE,
    pv: *mut c_void,
    cb: u32,
) -> BOOL {
    // SAFETY: forwarded caller contract.
    psapi(hprocess, || unsafe {
        query_working_set_ex(pv as usize, cb as usize, core::ptr::null_mut())
    })
}

/// QueryWorkingSetEx under its kernel32 name.
#[no_mangle]
pub unsafe extern "system" fn K32QueryWorkingSetEx(
    hprocess: HANDLE,
    pv: *mut c_void,
    cb: u32,
) -> BOOL {
    // SAFETY: same contract.
    unsafe { QueryWorkingSetEx(hprocess, pv, cb) }
}
