//! `CloseHandle` and `DuplicateHandle`: one handle table for sections, files and processes
//! (`sections.md` §5).

use super::consts::*;
use super::last_error::win32_call;
use crate::engine::Space;

/// Closes a section, file or process handle. The current process's pseudo-handle closes successfully
/// and nothing happens; any other handle that is not open fails with ERROR_INVALID_HANDLE.
#[no_mangle]
pub unsafe extern "system" fn CloseHandle(hobject: HANDLE) -> BOOL {
    if hobject == CURRENT_PROCESS {
        return TRUE;
    }
    win32_call(FALSE, || {
        Space::native()
            .close_handle(hobject as usize)
            .map(|()| TRUE)
    })
}

/// Duplicates a section, file or process handle within the current process (H2): both
/// process handles must name this process (GetCurrentProcess(), or a handle to our pid with
/// PROCESS_DUP_HANDLE; another process → ERROR_NOT_SUPPORTED, not a process handle →
/// ERROR_INVALID_HANDLE); DUPLICATE_SAME_ACCESS copies the source's access,
/// DUPLICATE_CLOSE_SOURCE closes the source. Duplicating GetCurrentProcess() itself gives a
/// real process handle; a process handle's new access is granted as OpenProcess grants it.
#[no_mangle]
pub unsafe extern "system" fn DuplicateHandle(
    hsourceprocesshandle: HANDLE,
    hsourcehandle: HANDLE,
    htargetprocesshandle: HANDLE,
    lptargethandle: *mut HANDLE,
    dwdesiredaccess: u32,
    _binherithandle: BOOL,
    dwoptions: DUPLICATE_HANDLE_OPTIONS,
) -> BOOL {
    win32_call(FALSE, || {
        // Both process handles must name this process (the pseudo-handle, or a handle to
        // our own pid with PROCESS_DUP_HANDLE); another process → ERROR_NOT_SUPPORTED.
        super::process::current_only(hsourceprocesshandle, super::process::Need::DupHandle)?;
        super::process::current_only(htargetprocesshandle, super::process::Need::DupHandle)?;
        if lptargethandle.is_null() {
            // The source is closed "regardless of any error status returned" [doc].
            if dwoptions & DUPLICATE_CLOSE_SOURCE != 0 && hsourcehandle != CURRENT_PROCESS {
                let _ = Space::native().close_handle(hsourcehandle as usize);
            }
            return Err(crate::error::Error::InvalidParameter(
                "no target handle pointer",
            ));
        }
        if hsourcehandle == CURRENT_PROCESS {
            // Duplicating the pseudo-handle gives a real handle to this process [doc].
            let access = if dwoptions & DUPLICATE_SAME_ACCESS != 0 {
                PROCESS_ALL_ACCESS
            } else {
                dwdesiredaccess
            };
            let h = Space::native().open_process(access, std::process::id())?;
            // SAFETY: checked non-NULL; the caller's writable HANDLE.
            unsafe { lptargethandle.write(h as HANDLE) };
            return Ok(TRUE);
        }
        let h = Space::native().duplicate_handle(
            hsourcehandle as usize,
            dwdesiredaccess,
            dwoptions & DUPLICATE_SAME_ACCESS != 0,
            dwoptions & DUPLICATE_CLOSE_SOURCE != 0,
        )?;
        // SAFETY: checked non-NULL; the caller's writable HANDLE.
        unsafe { lptargethandle.write(h as HANDLE) };
        Ok(TRUE)
    })
}
