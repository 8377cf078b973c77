//! `CloseHandle` and `DuplicateHandle`: one handle table for sections and files
//! (`sections.md` §5).

use super::consts::*;
use super::last_error::win32_call;
use super::types::*;
use crate::engine::Space;

/// Closes a section or file handle. The current process's pseudo-handle closes successfully
/// and nothing happens; any other handle that is not open fails with ERROR_INVALID_HANDLE.
#[no_mangle]
pub unsafe extern "system" fn CloseHandle(hobject: HANDLE) -> BOOL {
    if hobject == CURRENT_PROCESS {
        return TRUE;
    }
    win32_call(FALSE, || {
        Space::native().close_handle(hobject as usize).map(|()| TRUE)
    })
}
