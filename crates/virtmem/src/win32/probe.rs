//! The pointer probes (`Win32::System::Memory` and `Win32::System::WindowsProgramming`):
//! IsBadReadPtr, IsBadWritePtr, IsBadHugeReadPtr, IsBadHugeWritePtr, IsBadCodePtr,
//! IsBadStringPtrA/W. Obsolete on Windows, still called by ported code. Answered from page
//! state, never by touching the memory, so a probe cannot crash (`engine/probe.rs`); as on
//! Windows, a guard page met reports bad and loses its guard. The answer may be stale the
//! moment it is given (another thread may change the memory), exactly as on Windows.

use super::last_error::win32_call;
use crate::engine::Space;
use crate::vocab::consts::*;
use std::ffi::c_void;

fn answer(bad: impl FnOnce(&Space) -> bool) -> BOOL {
    win32_call(TRUE, || Ok(BOOL::from(bad(Space::native()))))
}

/// Whether the calling process cannot read every byte of `[lp, lp+ucb)`: nonzero if it
/// cannot (NULL with a size, free, reserved, PAGE_NOACCESS or guard pages, a range that
/// wraps); zero for `ucb` 0.
#[no_mangle]
pub unsafe extern "system" fn IsBadReadPtr(lp: *const c_void, ucb: usize) -> BOOL {
    answer(|s| s.is_bad_range(lp as usize, ucb, false))
}

/// Whether the calling process cannot write every byte of `[lp, lp+ucb)` (read-only and
/// execute-read pages are bad too; copy-on-write pages are writable).
#[no_mangle]
pub unsafe extern "system" fn IsBadWritePtr(lp: *const c_void, ucb: usize) -> BOOL {
    answer(|s| s.is_bad_range(lp as usize, ucb, true))
}

/// IsBadReadPtr (the 16-bit "huge" distinction is gone).
#[no_mangle]
pub unsafe extern "system" fn IsBadHugeReadPtr(lp: *const c_void, ucb: usize) -> BOOL {
    answer(|s| s.is_bad_range(lp as usize, ucb, false))
}

/// IsBadWritePtr (the 16-bit "huge" distinction is gone).
#[no_mangle]
pub unsafe extern "system" fn IsBadHugeWritePtr(lp: *const c_void, ucb: usize) -> BOOL {
    answer(|s| s.is_bad_range(lp as usize, ucb, true))
}

/// Whether the calling process cannot read the byte at `lpfn` (NULL is bad).
#[no_mangle]
pub unsafe extern "system" fn IsBadCodePtr(lpfn: FARPROC) -> BOOL {
    let addr = lpfn.map_or(0, |f| f as usize);
    answer(|s| s.is_bad_range(addr, 1, false))
}

/// Whether the calling process cannot read the 8-bit string at `lpsz` up to its terminating
/// zero or `ucchmax` characters, whichever comes first (zero for `ucchmax` 0).
#[no_mangle]
pub unsafe extern "system" fn IsBadStringPtrA(lpsz: PCSTR, ucchmax: usize) -> BOOL {
    answer(|s| s.is_bad_string(lpsz as usize, ucchmax, 1))
}

/// IsBadStringPtrA for a UTF-16 string (`ucchmax` in 16-bit units).
#[no_mangle]
pub unsafe extern "system" fn IsBadStringPtrW(lpsz: PCWSTR, ucchmax: usize) -> BOOL {
    answer(|s| s.is_bad_string(lpsz as usize, ucchmax, 2))
}
