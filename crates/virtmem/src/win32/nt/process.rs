//! NtReadVirtualMemory and NtWriteVirtualMemory: copies between this process and a process
//! handle's address space (this one or another), with the NT layer's conventions (`mod.rs`).

use super::super::consts::*;
use super::super::process::resolve;
use super::{nt_call, Need, NtResult};
use crate::engine::{Space, Target};
use crate::error::Error;
use crate::rules::process::partial_copy_count;
use core::ffi::c_void;

/// The target of a copy: NULL → STATUS_INVALID_HANDLE; else the library's one process check
/// (`win32::process::resolve`), its error as a status (a missing right → STATUS_ACCESS_DENIED).
fn target(h: HANDLE, need: Need) -> core::result::Result<Target, NTSTATUS> {
    if h.is_null() {
        return Err(STATUS_INVALID_HANDLE);
    }
    resolve(h, need).map_err(|e| e.nt_status())
}

/// The status and count of a copy's outcome: success; STATUS_PARTIAL_COPY (a warning) with
/// the whole 14-page chunks done, as Windows counts them (`windows-cases.md` 141); another
/// error's status with nothing counted.
fn outcome(done: usize, r: crate::error::Result<()>) -> (NTSTATUS, usize) {
    match r {
        Ok(()) => (STATUS_SUCCESS, done),
        Err(Error::PartialCopy) => (
            STATUS_PARTIAL_COPY,
            partial_copy_count(done, Space::native().page()),
        ),
        Err(e) => (e.nt_status(), 0),
    }
}

/// Copies `numberofbytestoread` bytes at `baseaddress` in the process (PROCESS_VM_READ) into
/// `buffer`. STATUS_PARTIAL_COPY when a page cannot be read, counting whole 14-page chunks;
/// a `buffer` this process cannot write → STATUS_ACCESS_VIOLATION; NULL handle →
/// STATUS_INVALID_HANDLE. `*numberofbytesread` (optional) gets the count.
///
/// # Safety
///
/// `buffer` is `numberofbytestoread` bytes the call may write (an unwritable buffer is
/// reported, never written); `numberofbytesread` is NULL or a `SIZE_T` the call may write.
#[no_mangle]
pub unsafe extern "system" fn NtReadVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *const c_void,
    buffer: *mut c_void,
    numberofbytestoread: usize,
    numberofbytesread: *mut usize,
) -> NTSTATUS {
    nt_call(|| -> NtResult {
        let t = target(processhandle, Need::Read)?;
        // SAFETY: the caller's contract for `buffer` (checked writable by the engine).
        let (done, r) = unsafe {
            Space::native().read_process(
                &t,
                baseaddress as usize,
                buffer.cast(),
                numberofbytestoread,
            )
        };
        let (status, n) = outcome(done, r);
        // SAFETY: the caller's contract for the count pointer.
        unsafe { super::write_count(numberofbytesread, n)? };
        Ok(status)
    })
}

/// Writes `numberofbytestowrite` bytes from `buffer` at `baseaddress` in the process
/// (PROCESS_VM_WRITE and PROCESS_VM_OPERATION). Unlike WriteProcessMemory, no protection is
/// changed: the copy stops at the first page that is not committed and writable, with
/// STATUS_PARTIAL_COPY (counting whole 14-page chunks). A `buffer` this process cannot read →
/// STATUS_ACCESS_VIOLATION.
///
/// # Safety
///
/// `buffer` is `numberofbytestowrite` readable bytes; for this process, writing the target
/// range must not break what the program relies on; `numberofbyteswritten` is NULL or a
/// `SIZE_T` the call may write.
#[no_mangle]
pub unsafe extern "system" fn NtWriteVirtualMemory(
    processhandle: HANDLE,
    baseaddress: *mut c_void,
    buffer: *const c_void,
    numberofbytestowrite: usize,
    numberofbyteswritten: *mut usize,
) -> NTSTATUS {
    nt_call(|| -> NtResult {
        let t = target(processhandle, Need::Write)?;
        // SAFETY: the caller's contract.
        let (done, r) = unsafe {
            Space::native().write_process_plain(
                &t,
                baseaddress as usize,
                buffer.cast(),
                numberofbytestowrite,
            )
        };
        let (status, n) = outcome(done, r);
        // SAFETY: the caller's contract for the count pointer.
        unsafe { super::write_count(numberofbyteswritten, n)? };
        Ok(status)
    })
}
