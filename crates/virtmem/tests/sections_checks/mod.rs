//! What `tests/sections.rs` and `tests/sections_files.rs` share: test isolation (handle
//! values are reused at once, so tests that use a closed value run alone) and checked calls
//! (the outcome and the last error of each call, against the expected ones).
#![allow(dead_code)]

use core::ffi::c_void;
use std::fmt::Debug;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use virtmem::win32::*;

/// Set as the last error before each checked call: a success must leave it alone.
pub const SENTINEL: u32 = 0xdead_beef;

// Test isolation
// ---------------------------------------------------------------------------------------------

/// Every test holds this: for reading, or for writing when it uses a closed handle value
/// (which another test's new handle would otherwise take).
pub static SHARED: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    SHARED.read().unwrap_or_else(|e| e.into_inner())
}

pub fn alone() -> RwLockWriteGuard<'static, ()> {
    SHARED.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Checked calls
// ---------------------------------------------------------------------------------------------

/// Expected outcome of a call: success, or failure with this last error.
pub type Want = Result<(), u32>;
pub const OK: Want = Ok(());
pub const fn fails(code: u32) -> Want {
    Err(code)
}

/// Runs `f` with the last error pre-set to 0xdeadbeef and checks the outcome: a success returns
/// something other than `fail` and leaves the last error alone; a failure returns `fail` and
/// sets the expected code.
#[track_caller]
pub fn check<T: Copy + PartialEq + Debug>(
    ctx: &str,
    fail: T,
    want: Want,
    f: impl FnOnce() -> T,
) -> T {
    SetLastError(SENTINEL);
    let r = f();
    let le = GetLastError();
    match want {
        Ok(()) => {
            assert!(
                r != fail,
                "{ctx}: expected success, got {r:?} with last error {le}"
            );
            assert_eq!(
                le, SENTINEL,
                "{ctx}: a successful call changed the last error"
            );
        }
        Err(code) => {
            assert!(
                r == fail,
                "{ctx}: expected failure with {code}, got success ({r:x?}), last error {le:#x}"
            );
            assert_eq!(le, code, "{ctx}: wrong last error");
        }
    }
    r
}

/// Like [`check`], but records a mismatch in `errs` instead of panicking, for tables.
pub fn soft<T: Copy + PartialEq + Debug>(
    errs: &mut Vec<String>,
    ctx: &str,
    fail: T,
    want: Want,
    f: impl FnOnce() -> T,
) -> T {
    SetLastError(SENTINEL);
    let r = f();
    let le = GetLastError();
    let got = if r == fail { Err(le) } else { Ok(()) };
    let le_ok = match want {
        Ok(()) => le == SENTINEL,
        Err(code) => le == code,
    };
    if got.is_ok() != want.is_ok() || !le_ok {
        errs.push(format!(
            "{ctx}: expected {want:?}, got {got:?} (returned {r:x?}, last error {le:#x})"
        ));
    }
    r
}

/// Records `what` in `errs` unless `got == want`.
pub fn soft_eq<T: PartialEq + Debug>(errs: &mut Vec<String>, ctx: &str, got: T, want: T) {
    if got != want {
        errs.push(format!("{ctx}: expected {want:x?}, got {got:x?}"));
    }
}

/// Fails with every recorded mismatch.
#[track_caller]
pub fn no_errors(errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// The outcome of a CreateFileMapping* call: `Ok(le)` — a handle, and the last error set to
/// `le` (0 when the section was created, ERROR_ALREADY_EXISTS when the name existed, CF8);
/// `Err(code)` — NULL and that code.
pub type WantCreate = Result<u32, u32>;
pub const CREATED: WantCreate = Ok(0);

/// A view's address as MapViewOfFile* return it and UnmapViewOfFile* take it.
pub fn mva(addr: usize) -> MEMORY_MAPPED_VIEW_ADDRESS {
    MEMORY_MAPPED_VIEW_ADDRESS {
        Value: addr as *mut c_void,
    }
}

const MBI_LEN: usize = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();

/// VirtualQuery's answer, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub base: usize,
    pub ab: usize,
    pub ap: u32,
    pub rs: usize,
    pub st: u32,
    pub pr: u32,
    pub ty: u32,
}

#[track_caller]
pub fn vq(addr: usize) -> Region {
    let mut m: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let n = unsafe { VirtualQuery(addr as *const c_void, &mut m, MBI_LEN) };
    assert_eq!(
        n,
        MBI_LEN,
        "VirtualQuery({addr:#x}) failed: {}",
        GetLastError()
    );
    Region {
        base: m.BaseAddress as usize,
        ab: m.AllocationBase as usize,
        ap: m.AllocationProtect,
        rs: m.RegionSize,
        st: m.State,
        pr: m.Protect,
        ty: m.Type,
    }
}

/// What VirtualQuery reports for a committed region of a view at `ab`.
pub fn mapped(base: usize, ab: usize, ap: u32, rs: usize, pr: u32) -> Region {
    Region {
        base,
        ab,
        ap,
        rs,
        st: MEM_COMMIT,
        pr,
        ty: MEM_MAPPED,
    }
}
