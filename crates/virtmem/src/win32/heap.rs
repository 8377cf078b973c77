//! The heap functions (`docs/heap-spec.md`): HeapCreate … GetProcessHeaps, with windows-sys
//! 0.61 names and signatures, on the engine's heaps (`engine/heap/`).
//!
//! **HEAP_GENERATE_EXCEPTIONS on Linux** (H16 (our decision)): there is no structured exception
//! handling, so an allocation failure on such a heap or call "raises" STATUS_NO_MEMORY
//! (0xC0000017) like this: the hook installed with [`set_heap_exception_hook`] is called with
//! the status and the requested size; if it returns `true` ("continue execution"), the call
//! returns NULL (last error ERROR_NOT_ENOUGH_MEMORY) as Windows does when a handler continues.
//! Without a hook, or if it returns `false`, the process is aborted (SIGABRT) after writing
//! `virtmem: unhandled exception STATUS_NO_MEMORY (0xC0000017) in <function>` to standard
//! error — like an unhandled SEH exception. Nothing ever unwinds through the caller's frames.
//!
//! **Bad pointers** (H31, H34, H43 (our decision)): a pointer that is not a live block of the heap is
//! refused and changes nothing: FALSE / NULL / `(SIZE_T)-1` with ERROR_INVALID_PARAMETER, or
//! ERROR_NOACCESS if nothing is mapped there. After
//! `HeapSetInformation(NULL, HeapEnableTerminationOnCorruption, NULL, 0)` (H73) such a pointer
//! given to HeapFree / HeapReAlloc / HeapSize aborts the process instead, naming
//! STATUS_HEAP_CORRUPTION.

use super::last_error::{win32_call, SetLastError};
use super::types::{HEAP_OPTIMIZE_RESOURCES_INFORMATION, HEAP_SUMMARY, PROCESS_HEAP_ENTRY};
use crate::engine::{
    FreeStep, HeapWalkEntry, Heaps, ALLOC_GENERAL, ALLOC_LARGE, ALLOC_LOOKASIDE,
    UNSERIALIZED_FREED, UNSERIALIZED_GENERAL,
};
use crate::error::Error;
use crate::vocab::consts::*;
use core::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A HEAP_GENERATE_EXCEPTIONS hook: receives the NTSTATUS (as `u32`) and the requested size;
/// `true` continues (the call returns NULL), `false` lets the process abort.
pub type HeapExceptionHook = fn(status: u32, size: usize) -> bool;

static HOOK: AtomicUsize = AtomicUsize::new(0);
static TERMINATE_ON_CORRUPTION: AtomicBool = AtomicBool::new(false);

/// Installs (or, with `None`, removes) the process's HEAP_GENERATE_EXCEPTIONS hook (see the
/// module documentation). Returns the previous one.
pub fn set_heap_exception_hook(hook: Option<HeapExceptionHook>) -> Option<HeapExceptionHook> {
    let old = HOOK.swap(hook.map_or(0, |f| f as usize), Ordering::AcqRel);
    // SAFETY: only `HeapExceptionHook` values (or 0) are ever stored.
    (old != 0).then(|| unsafe { std::mem::transmute::<usize, HeapExceptionHook>(old) })
}

fn die(what: &str) -> ! {
    // Written with write(2): no allocation, no locks.
    let parts: [&[u8]; 3] = [b"virtmem: ", what.as_bytes(), b"\n"];
    for p in parts {
        // SAFETY: writes a valid buffer to standard error.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
    std::process::abort()
}

/// Raises STATUS_NO_MEMORY for `function` (see the module documentation).
fn raise_no_memory(function: &str, size: usize) {
    let h = HOOK.load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only `HeapExceptionHook` values are stored.
        let f = unsafe { std::mem::transmute::<usize, HeapExceptionHook>(h) };
        if f(STATUS_NO_MEMORY as u32, size) {
            return;
        }
    }
    match function {
        "HeapReAlloc" => die("unhandled exception STATUS_NO_MEMORY (0xC0000017) in HeapReAlloc"),
        _ => die("unhandled exception STATUS_NO_MEMORY (0xC0000017) in HeapAlloc"),
    }
}

/// A refused pointer: terminate if the process asked for it (H73).
fn corruption(e: Error) -> Error {
    if TERMINATE_ON_CORRUPTION.load(Ordering::Relaxed) && matches!(e, Error::InvalidParameter(_)) {
        die("STATUS_HEAP_CORRUPTION (0xC0000374): a heap function was given an invalid block");
    }
    e
}

fn heaps() -> &'static Heaps<'static, crate::os::linux::LinuxOs> {
    Heaps::native()
}

fn wants_exceptions(h: HANDLE, flags: HEAP_FLAGS) -> bool {
    flags & HEAP_GENERATE_EXCEPTIONS != 0
        || heaps()
            .creation_flags(h as usize)
            .is_ok_and(|f| f & HEAP_GENERATE_EXCEPTIONS != 0)
}

/// Creates a private heap: `dwmaximumsize == 0` makes it growable (H1–H12).
#[no_mangle]
pub unsafe extern "system" fn HeapCreate(
    floptions: HEAP_FLAGS,
    dwinitialsize: usize,
    dwmaximumsize: usize,
) -> HANDLE {
    win32_call(core::ptr::null_mut(), || {
        heaps()
            .create(floptions, dwinitialsize, dwmaximumsize)
            .map(|h| h as HANDLE)
    })
}

/// Destroys a private heap and releases all its memory (H49, H50).
#[no_mangle]
pub unsafe extern "system" fn HeapDestroy(hheap: HANDLE) -> BOOL {
    win32_call(FALSE, || heaps().destroy(hheap as usize).map(|()| TRUE))
}

/// The process heap (H51).
#[no_mangle]
pub unsafe extern "system" fn GetProcessHeap() -> HANDLE {
    win32_call(core::ptr::null_mut(), || {
        heaps().process_heap().map(|h| h as HANDLE)
    })
}

/// Stores up to `numberofheaps` heap handles, the process heap first, and returns the number
/// of heaps (H12, H52).
#[no_mangle]
pub unsafe extern "system" fn GetProcessHeaps(
    numberofheaps: u32,
    processheaps: *mut HANDLE,
) -> u32 {
    win32_call(0, || {
        let all = heaps().handles();
        if !processheaps.is_null() {
            for (k, &h) in all.iter().take(numberofheaps as usize).enumerate() {
                // SAFETY: the caller provides room for `numberofheaps` handles.
                unsafe { *processheaps.add(k) = h as HANDLE };
            }
        }
        Ok(all.len() as u32)
    })
}

/// Allocates a block (H13–H28).
#[no_mangle]
pub unsafe extern "system" fn HeapAlloc(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    dwbytes: usize,
) -> *mut c_void {
    // The front end's fast path (a cached small block); no panic barrier beyond the C ABI's
    // own (a panic cannot unwind out of an `extern "system"` function: the process aborts).
    // Every other path is a tail call, so this function needs no stack frame.
    let Some(hs) = Heaps::native_ready() else {
        return heap_alloc_slow(hheap, dwflags, dwbytes);
    };
    match hs.alloc_front(hheap as usize, dwflags, dwbytes) {
        ALLOC_GENERAL => heap_alloc_slow(hheap, dwflags, dwbytes),
        ALLOC_LOOKASIDE => heap_alloc_lookaside(hheap, dwflags, dwbytes),
        ALLOC_LARGE => heap_alloc_large(hheap, dwflags, dwbytes),
        p => p as *mut c_void,
    }
}

#[inline(never)]
extern "C" fn heap_alloc_large(hheap: HANDLE, dwflags: HEAP_FLAGS, dwbytes: usize) -> *mut c_void {
    match Heaps::native_ready().map_or(0, |hs| {
        hs.alloc_large_front(hheap as usize, dwflags, dwbytes)
    }) {
        0 => heap_alloc_slow(hheap, dwflags, dwbytes),
        p => p as *mut c_void,
    }
}

#[inline(never)]
extern "C" fn heap_alloc_lookaside(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    dwbytes: usize,
) -> *mut c_void {
    match heaps().alloc_lookaside_front(hheap as usize, dwflags, dwbytes) {
        0 => heap_alloc_slow(hheap, dwflags, dwbytes),
        p => p as *mut c_void,
    }
}

#[cold]
#[inline(never)]
extern "C" fn heap_alloc_slow(hheap: HANDLE, dwflags: HEAP_FLAGS, dwbytes: usize) -> *mut c_void {
    match heaps().alloc(hheap as usize, dwflags, dwbytes) {
        Ok(p) => p as *mut c_void,
        Err(e) => {
            SetLastError(e.win32_code());
            if matches!(e, Error::NotEnoughMemory(_)) && wants_exceptions(hheap, dwflags) {
                raise_no_memory("HeapAlloc", dwbytes);
            }
            core::ptr::null_mut()
        }
    }
}

/// Resizes a block (H37–H44).
#[no_mangle]
pub unsafe extern "system" fn HeapReAlloc(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    lpmem: *const c_void,
    dwbytes: usize,
) -> *mut c_void {
    let r = win32_call(Err(()), || {
        match heaps().realloc(hheap as usize, dwflags, lpmem as usize, dwbytes) {
            Ok(p) => Ok(Ok(p)),
            Err(e) => Err(corruption(e)),
        }
    });
    match r {
        Ok(p) => p as *mut c_void,
        Err(()) => {
            if super::last_error::GetLastError() == ERROR_NOT_ENOUGH_MEMORY
                && wants_exceptions(hheap, dwflags)
            {
                raise_no_memory("HeapReAlloc", dwbytes);
            }
            core::ptr::null_mut()
        }
    }
}

/// Frees a block; a NULL pointer succeeds, even with a NULL heap (H32–H36).
#[no_mangle]
pub unsafe extern "system" fn HeapFree(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    lpmem: *const c_void,
) -> BOOL {
    if lpmem.is_null() {
        return TRUE;
    }
    // The front end's fast path (a live small block): no panic barrier beyond the C ABI's own
    // (a panic cannot unwind out of an `extern "system"` function: the process aborts), as in
    // HeapAlloc. Every other path is a tail call; refusals end in `win32_call`.
    let Some(hs) = Heaps::native_ready() else {
        return heap_free_slow(hheap, dwflags, lpmem);
    };
    match hs.free_front(hheap as usize, lpmem as usize) {
        FreeStep::Done => TRUE,
        FreeStep::General => heap_free_slow(hheap, dwflags, lpmem),
        FreeStep::Overflow(d) => heap_free_overflow(d, lpmem),
        FreeStep::Large(d) => heap_free_large(hheap, dwflags, lpmem, d),
        FreeStep::Unserialized(d) => heap_free_unserialized(hheap, dwflags, lpmem, d, hs),
    }
}

#[cold]
#[inline(never)]
extern "C" fn heap_free_overflow(d: usize, lpmem: *const c_void) -> BOOL {
    // SAFETY: `d` is what HeapFree's `free_front` returned for this pointer.
    unsafe { heaps().free_overflow(d, lpmem as usize) };
    // Opaque, so the caller's call stays a tail call (a known constant result would be
    // folded into the caller, which would then need a frame to return it).
    std::hint::black_box(TRUE)
}

#[inline(never)]
extern "C" fn heap_free_large(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    lpmem: *const c_void,
    d: usize,
) -> BOOL {
    // SAFETY: `d` is the large-block descriptor of this pointer's granule-map entry, as
    // `free_front` or `free_unserialized` returned it in this call.
    if unsafe { heaps().free_large_front(hheap as usize, dwflags, d, lpmem as usize) } {
        return TRUE;
    }
    heap_free_slow(hheap, dwflags, lpmem)
}

#[inline(never)]
extern "C" fn heap_free_unserialized(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    lpmem: *const c_void,
    d: usize,
    hs: &'static Heaps<'static, crate::os::linux::LinuxOs>,
) -> BOOL {
    // Every path but the look-aside push is a tail call (no frame).
    // SAFETY: `d` is what HeapFree's `free_front` returned for this handle; the heap is
    // HEAP_NO_SERIALIZE, so its caller promises exclusive use for the call.
    match unsafe { hs.free_unserialized(d, lpmem as usize) } {
        UNSERIALIZED_FREED => TRUE,
        UNSERIALIZED_GENERAL => heap_free_slow(hheap, dwflags, lpmem),
        large => heap_free_large(hheap, dwflags, lpmem, large),
    }
}

#[cold]
#[inline(never)]
extern "C" fn heap_free_slow(hheap: HANDLE, dwflags: HEAP_FLAGS, lpmem: *const c_void) -> BOOL {
    win32_call(FALSE, || {
        heaps()
            .free(hheap as usize, dwflags, lpmem as usize)
            .map_err(corruption)
            .map(|()| TRUE)
    })
}

/// The requested size of a block, or `(SIZE_T)-1` (H29–H31).
#[no_mangle]
pub unsafe extern "system" fn HeapSize(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    lpmem: *const c_void,
) -> usize {
    win32_call(usize::MAX, || {
        heaps()
            .size(hheap as usize, dwflags, lpmem as usize)
            .map_err(corruption)
    })
}

/// Checks one block, or the whole heap with a NULL pointer (H45–H47).
#[no_mangle]
pub unsafe extern "system" fn HeapValidate(
    hheap: HANDLE,
    dwflags: HEAP_FLAGS,
    lpmem: *const c_void,
) -> BOOL {
    win32_call(FALSE, || {
        heaps()
            .validate(hheap as usize, dwflags, lpmem as usize)
            .map(|ok| if ok { TRUE } else { FALSE })
    })
}

/// Gives back what it can and returns the largest committed free block (H48).
#[no_mangle]
pub unsafe extern "system" fn HeapCompact(hheap: HANDLE, dwflags: HEAP_FLAGS) -> usize {
    win32_call(0, || {
        let n = heaps().compact(hheap as usize, dwflags)?;
        if n == 0 {
            SetLastError(NO_ERROR);
        }
        Ok(n)
    })
}

/// Takes the heap's lock (recursive; a no-op on HEAP_NO_SERIALIZE heaps) (H54, H55).
#[no_mangle]
pub unsafe extern "system" fn HeapLock(hheap: HANDLE) -> BOOL {
    win32_call(FALSE, || heaps().lock(hheap as usize).map(|()| TRUE))
}

/// Releases one level of the heap's lock; ERROR_NOT_LOCKED if this thread does not hold it
/// (H57 (our decision)).
#[no_mangle]
pub unsafe extern "system" fn HeapUnlock(hheap: HANDLE) -> BOOL {
    win32_call(FALSE, || heaps().unlock(hheap as usize).map(|()| TRUE))
}

fn entry_from(e: &PROCESS_HEAP_ENTRY) -> HeapWalkEntry {
    HeapWalkEntry {
        data: e.lpData as usize,
        size: e.cbData as usize,
        overhead: e.cbOverhead,
        region_index: e.iRegionIndex,
        flags: e.wFlags,
        ..HeapWalkEntry::default()
    }
}

fn entry_to(w: &HeapWalkEntry) -> PROCESS_HEAP_ENTRY {
    let mut e = PROCESS_HEAP_ENTRY {
        lpData: w.data as *mut c_void,
        cbData: w.size.min(u32::MAX as usize) as u32,
        cbOverhead: w.overhead,
        iRegionIndex: w.region_index,
        wFlags: w.flags,
        ..PROCESS_HEAP_ENTRY::default()
    };
    if w.flags & PROCESS_HEAP_REGION as u16 != 0 {
        e.Anonymous.Region = super::types::PROCESS_HEAP_ENTRY_0_1 {
            dwCommittedSize: w.committed.min(u32::MAX as usize) as u32,
            dwUnCommittedSize: w.uncommitted.min(u32::MAX as usize) as u32,
            lpFirstBlock: w.first_block as *mut c_void,
            lpLastBlock: w.last_block as *mut c_void,
        };
    }
    e
}

/// Enumerates the heap's regions, blocks and uncommitted ranges, one per call (H58–H66).
#[no_mangle]
pub unsafe extern "system" fn HeapWalk(hheap: HANDLE, lpentry: *mut PROCESS_HEAP_ENTRY) -> BOOL {
    win32_call(FALSE, || {
        if lpentry.is_null() {
            return Err(Error::NoAccess("no entry"));
        }
        // SAFETY: the caller passes a valid entry.
        let cur = unsafe { *lpentry };
        let cur = if cur.lpData.is_null() {
            HeapWalkEntry::default()
        } else {
            entry_from(&cur)
        };
        match heaps().walk(hheap as usize, &cur)? {
            Some(next) => {
                // SAFETY: as above.
                unsafe { *lpentry = entry_to(&next) };
                Ok(TRUE)
            }
            None => Err(Error::Code(ERROR_NO_MORE_ITEMS)),
        }
    })
}

/// The heap's allocated, committed and reserved bytes (H67, H68).
#[no_mangle]
pub unsafe extern "system" fn HeapSummary(
    hheap: HANDLE,
    dwflags: u32,
    lpsummary: *mut HEAP_SUMMARY,
) -> BOOL {
    win32_call(FALSE, || {
        if lpsummary.is_null() {
            return Err(Error::NoAccess("no summary"));
        }
        // SAFETY: the caller passes a valid summary.
        let s = unsafe { &mut *lpsummary };
        if s.cb as usize != core::mem::size_of::<HEAP_SUMMARY>() {
            return Err(Error::InvalidParameter("cb is not sizeof(HEAP_SUMMARY)"));
        }
        let sum = heaps().summary(hheap as usize, dwflags)?;
        s.cbAllocated = sum.allocated;
        s.cbCommitted = sum.committed;
        s.cbReserved = sum.reserved;
        s.cbMaxReserve = sum.max_reserve;
        Ok(TRUE)
    })
}

/// HeapCompatibilityInformation: 0, or 2 once the low-fragmentation heap is on (H69–H71).
#[no_mangle]
pub unsafe extern "system" fn HeapQueryInformation(
    heaphandle: HANDLE,
    heapinformationclass: HEAP_INFORMATION_CLASS,
    heapinformation: *mut c_void,
    heapinformationlength: usize,
    returnlength: *mut usize,
) -> BOOL {
    win32_call(FALSE, || {
        if heaphandle.is_null() {
            return Err(Error::NoAccess("the heap handle is NULL"));
        }
        if heapinformationclass != HeapCompatibilityInformation {
            return Err(Error::InvalidParameter("unknown heap information class"));
        }
        let v = heaps().compatibility(heaphandle as usize)?;
        if !returnlength.is_null() {
            // SAFETY: the caller passes a valid length pointer or NULL.
            unsafe { *returnlength = 4 };
        }
        if heapinformation.is_null() || heapinformationlength < 4 {
            return Err(Error::Code(ERROR_INSUFFICIENT_BUFFER));
        }
        // SAFETY: the caller's buffer holds at least 4 bytes.
        unsafe { (heapinformation as *mut u32).write_unaligned(v) };
        Ok(TRUE)
    })
}

/// HeapCompatibilityInformation (2 only), HeapEnableTerminationOnCorruption,
/// HeapOptimizeResources (H72–H75).
#[no_mangle]
pub unsafe extern "system" fn HeapSetInformation(
    heaphandle: HANDLE,
    heapinformationclass: HEAP_INFORMATION_CLASS,
    heapinformation: *const c_void,
    heapinformationlength: usize,
) -> BOOL {
    win32_call(FALSE, || {
        let hs = heaps();
        #[allow(non_upper_case_globals)]
        match heapinformationclass {
            HeapEnableTerminationOnCorruption => {
                TERMINATE_ON_CORRUPTION.store(true, Ordering::Relaxed);
                Ok(TRUE)
            }
            HeapCompatibilityInformation => {
                if heaphandle.is_null() {
                    return Err(Error::NoAccess("the heap handle is NULL"));
                }
                if heapinformation.is_null() || heapinformationlength < 4 {
                    return Err(Error::Code(ERROR_INSUFFICIENT_BUFFER));
                }
                // SAFETY: at least 4 readable bytes.
                let v = unsafe { (heapinformation as *const u32).read_unaligned() };
                hs.set_compatibility(heaphandle as usize, v).map(|()| TRUE)
            }
            HeapOptimizeResources => {
                if heapinformation.is_null()
                    || heapinformationlength
                        != core::mem::size_of::<HEAP_OPTIMIZE_RESOURCES_INFORMATION>()
                {
                    return Err(Error::InvalidParameter(
                        "bad HEAP_OPTIMIZE_RESOURCES_INFORMATION",
                    ));
                }
                // SAFETY: the caller's buffer holds the structure.
                let info = unsafe {
                    (heapinformation as *const HEAP_OPTIMIZE_RESOURCES_INFORMATION).read_unaligned()
                };
                if info.Version != HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION || info.Flags != 0 {
                    return Err(Error::InvalidParameter("unknown version"));
                }
                if heaphandle.is_null() {
                    for &h in hs.handles().iter() {
                        let _ = hs.compact(h, 0);
                    }
                } else {
                    hs.compact(heaphandle as usize, 0)?;
                }
                Ok(TRUE)
            }
            _ => Err(Error::InvalidParameter("unknown heap information class")),
        }
    })
}
