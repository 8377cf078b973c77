//! Processes: OpenProcess, GetCurrentProcessId, GetProcessId, ReadProcessMemory,
//! WriteProcessMemory, and [`resolve`], the one check of a process handle that every function
//! taking one goes through.
//!
//! A process is named by its Linux pid. Another process's memory can be read, written and
//! queried (VirtualQueryEx); changing its address space (VirtualAllocEx, VirtualFreeEx,
//! VirtualProtectEx, VirtualUnlockEx, views, AWE) needs code running inside it, which Linux
//! offers only through ptrace: those calls fail with ERROR_NOT_SUPPORTED (50) after the
//! handle's access right was checked (ERROR_ACCESS_DENIED first), never with a wrong success.

use super::consts::*;
use super::last_error::win32_call;
use crate::engine::{Space, Target};
use crate::error::{Error, Result};
use crate::rules::process::partial_copy_count;
pub(crate) use crate::rules::process::Need;
use core::ffi::c_void;
use std::ptr::null_mut;

/// The one check of a process handle: GetCurrentProcess()'s pseudo-handle, or an open process
/// handle (OpenProcess, DuplicateHandle) whose access includes what `need` asks for. A handle
/// to our own pid resolves to [`Target::Current`]. NULL, a closed handle, a section or a file
/// → ERROR_INVALID_HANDLE; a missing right → ERROR_ACCESS_DENIED.
pub(crate) fn resolve(h: HANDLE, need: Need) -> Result<Target> {
    Space::native().resolve_process(h as usize, need)
}

/// [`resolve`] for the calls that change an address space: this process, or
/// ERROR_NOT_SUPPORTED for another one (after its access right was checked).
pub(crate) fn current_only(h: HANDLE, need: Need) -> Result<()> {
    match resolve(h, need)? {
        Target::Current => Ok(()),
        Target::Other(_) => Err(Error::NotSupported(
            "changing another process's address space (Linux has no such call)",
        )),
    }
}

/// Opens a process by its id (a Linux pid) with the access `dwdesiredaccess` asks for
/// (`PROCESS_*`, `GENERIC_*`, `MAXIMUM_ALLOWED`). Pid 0, an unknown pid or a thread id →
/// NULL, ERROR_INVALID_PARAMETER; a process whose memory this one may not access (the kernel's
/// ptrace attach check) → ERROR_ACCESS_DENIED, unless only PROCESS_QUERY_LIMITED_INFORMATION /
/// SYNCHRONIZE are asked for. `binherithandle` is accepted and has no effect (virtmem creates
/// no processes; a `fork` child inherits every handle).
#[no_mangle]
pub unsafe extern "system" fn OpenProcess(
    dwdesiredaccess: PROCESS_ACCESS_RIGHTS,
    _binherithandle: BOOL,
    dwprocessid: u32,
) -> HANDLE {
    win32_call(null_mut(), || {
        Space::native()
            .open_process(dwdesiredaccess, dwprocessid)
            .map(|h| h as HANDLE)
    })
}

/// This process's id (its Linux pid).
#[no_mangle]
pub extern "system" fn GetCurrentProcessId() -> u32 {
    std::process::id()
}

/// The id of the process a handle names (PROCESS_QUERY_LIMITED_INFORMATION needed); 0 with
/// ERROR_INVALID_HANDLE for a handle that is not a process handle.
#[no_mangle]
pub unsafe extern "system" fn GetProcessId(process: HANDLE) -> u32 {
    win32_call(0, || resolve(process, Need::QueryLimited).map(|t| t.pid()))
}

/// Copies `nsize` bytes at `lpbaseaddress` in a process (PROCESS_VM_READ needed) into
/// `lpbuffer`. `*lpnumberofbytesread` (may be NULL) gets the bytes copied, also on failure:
/// a page that cannot be read ends the copy with ERROR_PARTIAL_COPY (299), counting, as
/// Windows does, only the whole 14-page chunks copied before it (a two-page read whose second
/// page is no-access counts 0: `windows-cases.md` 141); a buffer that cannot take the bytes → ERROR_NOACCESS (998), 0 bytes.
/// An exited process → ERROR_ACCESS_DENIED.
#[no_mangle]
pub unsafe extern "system" fn ReadProcessMemory(
    hprocess: HANDLE,
    lpbaseaddress: *const c_void,
    lpbuffer: *mut c_void,
    nsize: usize,
    lpnumberofbytesread: *mut usize,
) -> BOOL {
    win32_call(FALSE, || {
        let target = resolve(hprocess, Need::Read)?;
        // SAFETY: the caller passes `nsize` bytes at `lpbuffer` for the call to write (an
        // unwritable one is reported, never written).
        let (done, r) = unsafe {
            Space::native().read_process(&target, lpbaseaddress as usize, lpbuffer.cast(), nsize)
        };
        // A partial copy counts only the whole chunks Windows' copy finished (case 141).
        let done = match r {
            Err(Error::PartialCopy) => partial_copy_count(done, Space::native().page()),
            _ => done,
        };
        if !lpnumberofbytesread.is_null() {
            // SAFETY: non-NULL; the caller's writable SIZE_T.
            unsafe { lpnumberofbytesread.write_unaligned(done) };
        }
        r.map(|()| TRUE)
    })
}

/// Writes `nsize` bytes from `lpbuffer` at `lpbaseaddress` in a process (PROCESS_VM_WRITE and
/// PROCESS_VM_OPERATION needed). PAGE_EXECUTE / PAGE_EXECUTE_READ pages are made writable for
/// the copy (in this process through VirtualProtect, restored after, with the instruction
/// cache flushed); a read-only, no-access, guard, reserved or free page anywhere in the range
/// → ERROR_NOACCESS (998), nothing written and `*lpnumberofbyteswritten` untouched. A page
/// refused during the copy → ERROR_PARTIAL_COPY (299) with the bytes written; a buffer that
/// cannot be read → ERROR_NOACCESS with 0 bytes. `lpnumberofbyteswritten` may be NULL.
#[no_mangle]
pub unsafe extern "system" fn WriteProcessMemory(
    hprocess: HANDLE,
    lpbaseaddress: *const c_void,
    lpbuffer: *const c_void,
    nsize: usize,
    lpnumberofbyteswritten: *mut usize,
) -> BOOL {
    win32_call(FALSE, || {
        let target = resolve(hprocess, Need::Write)?;
        // SAFETY: the caller passes `nsize` readable bytes at `lpbuffer` and owns the
        // destination (this function's contract, as on Windows).
        let (done, r) = unsafe {
            Space::native().write_process(&target, lpbaseaddress as usize, lpbuffer.cast(), nsize)
        };
        if let (Some(done), false) = (done, lpnumberofbyteswritten.is_null()) {
            // SAFETY: non-NULL; the caller's writable SIZE_T.
            unsafe { lpnumberofbyteswritten.write_unaligned(done) };
        }
        r.map(|()| TRUE)
    })
}
