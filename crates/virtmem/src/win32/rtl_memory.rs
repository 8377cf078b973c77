//! The memory routines behind Windows' `ZeroMemory`, `FillMemory`, `CopyMemory`,
//! `MoveMemory` and `SecureZeroMemory` macros (the C headers map the macros onto these, as
//! Windows' headers do), exported under their kernel32/ntdll names, and `RtlCompareMemory`.
//!
//! Every function is `unsafe`: the caller promises the ranges it passes are valid for the
//! access (as with `memset`/`memmove`); a length of 0 touches nothing and accepts any pointer.

use core::ffi::c_void;

/// Fills `length` bytes at `destination` with zeros.
///
/// # Safety
/// `[destination, destination + length)` must be writable memory.
#[no_mangle]
pub unsafe extern "system" fn RtlZeroMemory(destination: *mut c_void, length: usize) {
    if length != 0 {
        // SAFETY: the caller's contract.
        unsafe { destination.cast::<u8>().write_bytes(0, length) };
    }
}

/// Fills `length` bytes at `destination` with `fill`.
///
/// # Safety
/// `[destination, destination + length)` must be writable memory.
#[no_mangle]
pub unsafe extern "system" fn RtlFillMemory(destination: *mut c_void, length: usize, fill: u8) {
    if length != 0 {
        // SAFETY: the caller's contract.
        unsafe { destination.cast::<u8>().write_bytes(fill, length) };
    }
}

/// Copies `length` bytes from `source` to `destination`; the ranges may overlap (the result
/// is as if the source were first copied to a temporary buffer).
///
/// # Safety
/// `[source, source + length)` must be readable and `[destination, destination + length)`
/// writable.
#[no_mangle]
pub unsafe extern "system" fn RtlMoveMemory(
    destination: *mut c_void,
    source: *const c_void,
    length: usize,
) {
    if length != 0 {
        // SAFETY: the caller's contract; `copy` allows overlap.
        unsafe { core::ptr::copy(source.cast::<u8>(), destination.cast::<u8>(), length) };
    }
}

/// Copies `length` bytes from `source` to `destination`. Windows requires the ranges not to
/// overlap; virtmem's copy tolerates overlap anyway (it is [`RtlMoveMemory`]), so a caller
/// breaking that rule gets MoveMemory's result, never undefined behaviour.
///
/// # Safety
/// As [`RtlMoveMemory`].
#[no_mangle]
pub unsafe extern "system" fn RtlCopyMemory(
    destination: *mut c_void,
    source: *const c_void,
    length: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { RtlMoveMemory(destination, source, length) }
}

/// Fills `cnt` bytes at `ptr` with zeros with volatile writes, which the compiler may not
/// remove even when the memory is never read again (for erasing secrets). Returns `ptr`.
///
/// # Safety
/// `[ptr, ptr + cnt)` must be writable memory.
#[no_mangle]
pub unsafe extern "system" fn RtlSecureZeroMemory(ptr: *mut c_void, cnt: usize) -> *mut c_void {
    let p = ptr.cast::<u8>();
    for i in 0..cnt {
        // SAFETY: the caller's contract; each byte is in the range.
        unsafe { p.add(i).write_volatile(0) };
    }
    // No later access may be moved before the zeroing.
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    ptr
}

/// The number of leading bytes that are equal in the two blocks (`length` when all are).
///
/// # Safety
/// Both `[source1, source1 + length)` and `[source2, source2 + length)` must be readable.
#[no_mangle]
pub unsafe extern "system" fn RtlCompareMemory(
    source1: *const c_void,
    source2: *const c_void,
    length: usize,
) -> usize {
    if length == 0 {
        return 0;
    }
    // SAFETY: the caller's contract: both ranges are readable for `length` bytes.
    let (a, b) = unsafe {
        (
            core::slice::from_raw_parts(source1.cast::<u8>(), length),
            core::slice::from_raw_parts(source2.cast::<u8>(), length),
        )
    };
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(length)
}
