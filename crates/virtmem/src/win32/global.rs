//! Global and Local memory (`docs/heap-spec.md` §4, G1–G22): GlobalAlloc … GlobalFree and the
//! Local* equivalents, with windows-sys 0.61 names and signatures, on the process heap
//! (`engine/global.rs`).
//!
//! A fixed block (GMEM_FIXED / LMEM_FIXED) is a plain process-heap pointer. A moveable block
//! (GMEM_MOVEABLE) is a *handle*: the address of a pointer-sized slot holding the data pointer
//! (`h % 16 == 8` on x64), with the entry's flags word (lock count in bits 16–23) just below
//! it, as on Windows; lock it for the pointer. Up to 0x10000 handles are live at once,
//! Global and Local together.
//!
//! Freed, invalid and garbage values are answered exactly as the Windows-run tests show
//! (GlobalUnlock of a freed handle returns TRUE with ERROR_INVALID_HANDLE; LocalLock of a
//! garbage pointer leaves the last error alone; …) and never crash: every value is checked
//! against the handle table and the process heap's own tables first. Where x64 Windows
//! crashes (GlobalHandle / GlobalFree of a freed handle or fixed pointer) the x86 answers are
//! given (our decision). The data pointer of a moveable block passed to GlobalFree / GlobalReAlloc is
//! refused with ERROR_INVALID_HANDLE (our decision) (freeing it would leave the handle dangling).
//!
//! `GlobalDiscard` / `LocalDiscard` are macros in Windows' headers (and in `virtmem.h`); here
//! they are also Rust functions with the same meaning, not C exports.

use super::last_error::SetLastError;
use crate::engine::Globals;
use crate::rules::global::{Api, LastError, Reply};
use crate::vocab::consts::*;
use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn globals() -> &'static Globals<'static, crate::os::linux::LinuxOs> {
    Globals::native()
}

/// Runs `f`, applies its last-error effect and returns its value; a panic becomes `fail` with
/// ERROR_INTERNAL_ERROR.
fn answer<T>(fail: T, f: impl FnOnce() -> Reply<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => {
            if let LastError::Set(code) = r.last_error {
                SetLastError(code);
            }
            r.value
        }
        Err(_) => {
            SetLastError(ERROR_INTERNAL_ERROR);
            fail
        }
    }
}

fn b(v: bool) -> BOOL {
    if v {
        TRUE
    } else {
        FALSE
    }
}

/// Allocates a fixed block (a pointer) or, with GMEM_MOVEABLE, a moveable one (a handle)
/// (G1–G8). `GlobalAlloc(GMEM_FIXED, 0)` makes a 1-byte block (G3).
#[no_mangle]
pub unsafe extern "system" fn GlobalAlloc(uflags: GLOBAL_ALLOC_FLAGS, dwbytes: usize) -> HGLOBAL {
    answer(core::ptr::null_mut(), || {
        globals()
            .alloc(Api::Global, uflags, dwbytes)
            .map(|v| v as HGLOBAL)
    })
}

/// Resizes a block or, with GMEM_MODIFY, changes its attributes (G19, G21).
#[no_mangle]
pub unsafe extern "system" fn GlobalReAlloc(hmem: HGLOBAL, dwbytes: usize, uflags: u32) -> HGLOBAL {
    answer(core::ptr::null_mut(), || {
        globals()
            .realloc(Api::Global, hmem as usize, dwbytes, uflags)
            .map(|v| v as HGLOBAL)
    })
}

/// Frees a block (locked or not): NULL on success, else `hmem` itself (G14, G18).
#[no_mangle]
pub unsafe extern "system" fn GlobalFree(hmem: HGLOBAL) -> HGLOBAL {
    answer(hmem, || {
        globals()
            .free(Api::Global, hmem as usize)
            .map(|v| v as HGLOBAL)
    })
}

/// The data pointer of a block; a moveable block's lock count goes up (saturating at 255)
/// (G10–G12).
#[no_mangle]
pub unsafe extern "system" fn GlobalLock(hmem: HGLOBAL) -> *mut c_void {
    answer(core::ptr::null_mut(), || {
        globals()
            .lock(Api::Global, hmem as usize)
            .map(|v| v as *mut c_void)
    })
}

/// Decrements a moveable block's lock count: TRUE while still locked, FALSE (last error 0)
/// when it reaches 0 (G13).
#[no_mangle]
pub unsafe extern "system" fn GlobalUnlock(hmem: HGLOBAL) -> BOOL {
    answer(TRUE, || globals().unlock(Api::Global, hmem as usize).map(b))
}

/// The requested size of a block (a handle or a moveable block's data pointer); 0 for a
/// discarded block or a bad value (G16).
#[no_mangle]
pub unsafe extern "system" fn GlobalSize(hmem: HGLOBAL) -> usize {
    answer(0, || globals().size(Api::Global, hmem as usize))
}

/// Lock count | GMEM_DISCARDABLE | GMEM_DISCARDED | GMEM_DDESHARE; GMEM_INVALID_HANDLE for
/// a bad value (G15).
#[no_mangle]
pub unsafe extern "system" fn GlobalFlags(hmem: HGLOBAL) -> u32 {
    answer(GMEM_INVALID_HANDLE, || {
        globals().flags(Api::Global, hmem as usize)
    })
}

/// The handle of a moveable block's data pointer; a fixed pointer itself (G17).
#[no_mangle]
pub unsafe extern "system" fn GlobalHandle(pmem: *const c_void) -> HGLOBAL {
    answer(core::ptr::null_mut(), || {
        globals()
            .handle(Api::Global, pmem as usize)
            .map(|v| v as HGLOBAL)
    })
}

/// Allocates a fixed or moveable block (G1–G8, G20: `LocalAlloc(LMEM_FIXED, 0)` has size 0).
#[no_mangle]
pub unsafe extern "system" fn LocalAlloc(uflags: LOCAL_ALLOC_FLAGS, ubytes: usize) -> HLOCAL {
    answer(core::ptr::null_mut(), || {
        globals()
            .alloc(Api::Local, uflags, ubytes)
            .map(|v| v as HLOCAL)
    })
}

/// Resizes a block or changes its attributes; LMEM_MODIFY|LMEM_MOVEABLE does not make a
/// fixed block moveable (G19, G20).
#[no_mangle]
pub unsafe extern "system" fn LocalReAlloc(hmem: HLOCAL, ubytes: usize, uflags: u32) -> HLOCAL {
    answer(core::ptr::null_mut(), || {
        globals()
            .realloc(Api::Local, hmem as usize, ubytes, uflags)
            .map(|v| v as HLOCAL)
    })
}

/// Frees a block: NULL on success, else `hmem` itself (G18).
#[no_mangle]
pub unsafe extern "system" fn LocalFree(hmem: HLOCAL) -> HLOCAL {
    answer(hmem, || {
        globals()
            .free(Api::Local, hmem as usize)
            .map(|v| v as HLOCAL)
    })
}

/// The data pointer of a block, locking a moveable one (G10–G12).
#[no_mangle]
pub unsafe extern "system" fn LocalLock(hmem: HLOCAL) -> *mut c_void {
    answer(core::ptr::null_mut(), || {
        globals()
            .lock(Api::Local, hmem as usize)
            .map(|v| v as *mut c_void)
    })
}

/// Decrements a moveable block's lock count; FALSE with ERROR_NOT_LOCKED for a fixed block
/// (G13, G20).
#[no_mangle]
pub unsafe extern "system" fn LocalUnlock(hmem: HLOCAL) -> BOOL {
    answer(FALSE, || globals().unlock(Api::Local, hmem as usize).map(b))
}

/// The requested size of a block (G16).
#[no_mangle]
pub unsafe extern "system" fn LocalSize(hmem: HLOCAL) -> usize {
    answer(0, || globals().size(Api::Local, hmem as usize))
}

/// Lock count | LMEM_DISCARDABLE (0x0F00) | LMEM_DISCARDED (G15).
#[no_mangle]
pub unsafe extern "system" fn LocalFlags(hmem: HLOCAL) -> u32 {
    answer(LMEM_INVALID_HANDLE, || {
        globals().flags(Api::Local, hmem as usize)
    })
}

/// The handle of a moveable block's data pointer; a fixed pointer itself (G17).
#[no_mangle]
pub unsafe extern "system" fn LocalHandle(pmem: *const c_void) -> HLOCAL {
    answer(core::ptr::null_mut(), || {
        globals()
            .handle(Api::Local, pmem as usize)
            .map(|v| v as HLOCAL)
    })
}

/// `GlobalReAlloc(hmem, 0, GMEM_MOVEABLE)`, the SDK's `GlobalDiscard` macro (G21): discards an
/// unlocked moveable block and returns its handle; NULL for a locked one.
///
/// # Safety
///
/// As [`GlobalReAlloc`]: pointers previously obtained from GlobalLock of `hmem` are invalid
/// afterwards.
pub unsafe fn GlobalDiscard(hmem: HGLOBAL) -> HGLOBAL {
    // SAFETY: the caller's contract is GlobalReAlloc's.
    unsafe { GlobalReAlloc(hmem, 0, GMEM_MOVEABLE) }
}

/// `LocalReAlloc(hmem, 0, LMEM_MOVEABLE)`, the SDK's `LocalDiscard` macro (G21); on a fixed
/// block a move-allowed resize to 0.
///
/// # Safety
///
/// As [`LocalReAlloc`].
pub unsafe fn LocalDiscard(hmem: HLOCAL) -> HLOCAL {
    // SAFETY: the caller's contract is LocalReAlloc's.
    unsafe { LocalReAlloc(hmem, 0, LMEM_MOVEABLE) }
}
