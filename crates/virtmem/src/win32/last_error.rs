//! The per-thread last error, and the panic barrier every exported function goes through.

use super::consts::WIN32_ERROR;
use crate::error::Error;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static LAST_ERROR: Cell<u32> = const { Cell::new(0) };
}

use super::consts::ERROR_INTERNAL_ERROR;

/// Returns the calling thread's last error code.
#[no_mangle]
pub extern "system" fn GetLastError() -> WIN32_ERROR {
    LAST_ERROR.with(|c| c.get())
}

/// Sets the calling thread's last error code.
#[no_mangle]
pub extern "system" fn SetLastError(dwerrcode: WIN32_ERROR) {
    LAST_ERROR.with(|c| c.set(dwerrcode));
}

/// Runs `f`; on `Err` sets the last error and returns `fail`. A panic also becomes `fail`.
///
/// Always inlined: each caller has its own instance anyway (its own closure), and a return
/// fewer after the system call matters on the fast paths (the kernel refills the return
/// stack buffer on the way back: every return to a frame made before it mispredicts).
#[inline(always)]
pub(crate) fn win32_call<T: Copy>(fail: T, f: impl FnOnce() -> Result<T, Error>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            SetLastError(e.win32_code());
            fail
        }
        Err(_) => {
            SetLastError(ERROR_INTERNAL_ERROR);
            fail
        }
    }
}
