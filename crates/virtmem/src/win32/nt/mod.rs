//! The native layer beneath the Win32 functions, as ntdll has it: `Nt*` functions returning
//! NTSTATUS values (`windows-sys` `Wdk::System::Memory`, `Wdk::Storage::FileSystem`, and
//! Microsoft's ntifs/ntddk documentation for the ones windows-sys lacks), and
//! `RtlNtStatusToDosError`, which maps them onto the Win32 errors the Win32 functions give.
//!
//! Conventions, as on Windows:
//! * every function returns an NTSTATUS and never touches the thread's last error (the
//!   psapi functions built here, QueryWorkingSet*, are Win32 functions and do set it);
//! * in/out parameters (`*BaseAddress`, `*RegionSize`, `*ViewSize`) receive the rounded
//!   values on success and are left unchanged on failure;
//! * a NULL pointer argument, or one pointing to memory the call cannot read or write, gives
//!   STATUS_ACCESS_VIOLATION (the pointers are probed without faulting, as Windows' probes
//!   catch the fault);
//! * the process handle is the current process, `NtCurrentProcess()` = `(HANDLE)-1`, or a
//!   handle from OpenProcess to our own pid; NULL gives STATUS_INVALID_HANDLE, a missing
//!   access right STATUS_ACCESS_DENIED, and a handle of another process STATUS_NOT_SUPPORTED —
//!   except for NtReadVirtualMemory / NtWriteVirtualMemory, which reach other processes (every
//!   check goes through the library's one process check, `win32::process::resolve`);
//! * a panic becomes STATUS_INTERNAL_ERROR.
//!
//! The Win32 functions stay thin translations over the engine beside this layer rather than
//! wrappers of it: their checks come before the NT call on Windows too (VirtualFree's size
//! rule, VirtualAlloc2's NULL process, VirtualProtect's output pointer), and turning the
//! engine's typed error into a status and back would add a layer without removing one.

mod memory;
mod process;
mod sections;
mod working_set;

pub use memory::*;
pub use process::*;
pub use sections::*;
pub use working_set::*;

use super::consts::*;
pub(crate) use super::process::Need;
use crate::engine::Space;
use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The result of an NT function's body: a status either way (`Err` for the early returns).
type NtResult = core::result::Result<NTSTATUS, NTSTATUS>;

/// Runs an NT function's body: its status, or STATUS_INTERNAL_ERROR if it panicked.
fn nt_call(f: impl FnOnce() -> NtResult) -> NTSTATUS {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(s)) | Ok(Err(s)) => s,
        Err(_) => STATUS_INTERNAL_ERROR,
    }
}

/// The NT layer's process-handle check, through the library's one check
/// ([`current_only`](super::process::current_only)): the current process (the pseudo-handle,
/// or a handle to our own pid holding `need`'s rights) passes; NULL is STATUS_INVALID_HANDLE
/// (cases 44, 129); a missing right is STATUS_ACCESS_DENIED; another process is
/// STATUS_NOT_SUPPORTED (virtmem cannot change another process's address space).
fn process(h: HANDLE, need: Need) -> core::result::Result<(), NTSTATUS> {
    if h.is_null() {
        return Err(STATUS_INVALID_HANDLE);
    }
    super::process::current_only(h, need).map_err(|e| e.nt_status())
}

/// Probes `len` bytes at `p` for reading (and writing): STATUS_ACCESS_VIOLATION if NULL or
/// not accessible. Never faults.
fn probe<T>(p: *const T, write: bool) -> core::result::Result<(), NTSTATUS> {
    probe_bytes(p as usize, size_of::<T>(), write)
}

/// [`probe`] for a byte range.
fn probe_bytes(p: usize, len: usize, write: bool) -> core::result::Result<(), NTSTATUS> {
    if p == 0 || (len > 0 && Space::native().is_bad_range(p, len, write)) {
        return Err(STATUS_ACCESS_VIOLATION);
    }
    Ok(())
}

/// Reads an in/out parameter after probing it for reading and writing.
///
/// # Safety
///
/// `p` is NULL or a pointer the caller passed for a `T` (probed here).
unsafe fn read_inout<T: Copy>(p: *mut T) -> core::result::Result<T, NTSTATUS> {
    probe(p, true)?;
    // SAFETY: probed readable; unaligned reads are fine for C callers.
    Ok(unsafe { p.read_unaligned() })
}

/// Maps an NTSTATUS onto the Win32 error code Windows gives for it (see `constants.md`):
/// 0 and customer codes unchanged, Win32 codes wrapped in facility 7 unwrapped, the memory
/// statuses per Windows' table, unknown statuses ERROR_MR_MID_NOT_FOUND (317).
#[no_mangle]
pub extern "system" fn RtlNtStatusToDosError(status: NTSTATUS) -> u32 {
    crate::vocab::ntstatus::nt_status_to_dos_error(status)
}

/// A process-wide memory barrier: when it returns, every thread of the process has executed
/// a full memory barrier (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, else
/// `MEMBARRIER_CMD_GLOBAL`, else a TLB-shootdown through `mprotect` of a page of ours).
#[no_mangle]
pub extern "system" fn FlushProcessWriteBuffers() {
    let _ = catch_unwind(crate::os::linux::barrier::flush_process_write_buffers);
}

/// Which mechanism FlushProcessWriteBuffers uses here: "membarrier-private-expedited",
/// "membarrier-global" or "mprotect" (virtmem's own; for tests and diagnostics).
pub fn flush_process_write_buffers_mechanism() -> &'static str {
    crate::os::linux::barrier::mechanism()
}

/// Writes a rounded range back through the in/out `*BaseAddress` and `*RegionSize` (or
/// `*ViewSize`, `*NumberOfBytesToProtect`) of a successful call.
///
/// # Safety
///
/// Both pointers were probed writable.
unsafe fn write_range(base: *mut *mut c_void, size: *mut usize, start: usize, len: usize) {
    // SAFETY: the caller probed both.
    unsafe {
        base.write_unaligned(start as *mut c_void);
        size.write_unaligned(len);
    }
}

/// Writes `n` through an optional out count (NtQueryVirtualMemory's `*ReturnLength`,
/// NtRead/WriteVirtualMemory's byte counts): nothing when NULL, STATUS_ACCESS_VIOLATION when
/// not writable.
///
/// # Safety
///
/// `ret` is NULL or the caller's pointer to a `usize` (probed here).
unsafe fn write_count(ret: *mut usize, n: usize) -> core::result::Result<(), NTSTATUS> {
    if !ret.is_null() {
        probe(ret, true)?;
        // SAFETY: probed writable.
        unsafe { ret.write_unaligned(n) };
    }
    Ok(())
}
