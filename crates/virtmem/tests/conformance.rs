//! Conformance of `virtmem::win32` with the Windows rules.
//!
//! * Every in-scope case of `windows-cases.md` §A–G, J and K: each test or table row names its
//!   case number ("case 19", "19/20/…" in test names).
//! * Every rule of `semantics.md` §1–6, §11 and §12 that no case covers (tests named
//!   `rule_<section>_…`).
//! * The later features (MEM_WRITE_WATCH, PAGE_GUARD, MEM_LARGE_PAGES, MEM_PHYSICAL,
//!   placeholders, VirtualAlloc2 extended parameters): a valid request fails with
//!   ERROR_NOT_SUPPORTED (50), an invalid one with the code the rules give.
//!
//! Conventions. Before every checked call the last error is set to 0xdeadbeef: a success must
//! leave it untouched, a failure must set exactly the expected code. Tests run concurrently in
//! one process, so they only use addresses they own: memory they allocated, the unused tail of
//! the 64 KiB granule of their own small allocations (which no other reservation may take:
//! the granule rule), addresses below 0x10000 or above user space, and fixed addresses found by
//! reserving with NULL and releasing, retried when another thread takes them in between.
//! The expected values are Rust data here: nothing is read from the spec at run time.
//! Page access (reserved pages fault, READONLY pages refuse writes, ...) is checked in forked
//! children that touch one byte and exit. Tests that check several independent rules at once
//! (`soft`) list every mismatch before failing.

#![allow(clippy::missing_safety_doc, clippy::identity_op)]

use core::ffi::c_void;
use std::fmt::Debug;
use std::mem::size_of;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

// ---------------------------------------------------------------------------------------------
// Constants (constants.md)
// ---------------------------------------------------------------------------------------------

const P: usize = 0x1000;
const G: usize = 0x10000;
const SENTINEL: u32 = 0xdead_beef;
const MBI_LEN: usize = size_of::<MEMORY_BASIC_INFORMATION>();
/// lpMaximumApplicationAddress on x64.
const MAX_ADDR: usize = 0x7FFF_FFFE_FFFF;
/// The top 64 KiB below the user-space limit, never allocatable.
const TOP_GRANULE: usize = 0x7FFF_FFFE_0000;
const LARGE: usize = 0x20_0000;

const E_HANDLE: u32 = ERROR_INVALID_HANDLE; // 6
const E_LEN: u32 = ERROR_BAD_LENGTH; // 24
#[allow(dead_code)]
const E_NS: u32 = ERROR_NOT_SUPPORTED; // 50
const E_PARAM: u32 = ERROR_INVALID_PARAMETER; // 87
const E_NOTLOCKED: u32 = ERROR_NOT_LOCKED; // 158
const E_ADDR: u32 = ERROR_INVALID_ADDRESS; // 487
const E_NOACCESS: u32 = ERROR_NOACCESS; // 998

const RO: u32 = PAGE_READONLY;
const RW: u32 = PAGE_READWRITE;
const NA: u32 = PAGE_NOACCESS;
const RES: u32 = MEM_RESERVE;
const COM: u32 = MEM_COMMIT;
const RC: u32 = MEM_RESERVE | MEM_COMMIT;

/// The six valid base protections.
const BASES: [u32; 6] = [
    PAGE_NOACCESS,
    PAGE_READONLY,
    PAGE_READWRITE,
    PAGE_EXECUTE,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_READWRITE,
];
const EXECUTES: [u32; 4] = [
    PAGE_EXECUTE,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_READWRITE,
    PAGE_EXECUTE_WRITECOPY,
];

/// Expected outcome of a call: success, or failure with this last error.
type Want = Result<(), u32>;
const OK: Want = Ok(());
const fn fails(code: u32) -> Want {
    Err(code)
}

// ---------------------------------------------------------------------------------------------
// Checked calls
// ---------------------------------------------------------------------------------------------

/// Runs `f` with the last error pre-set to 0xdeadbeef and checks the outcome: a success returns
/// something other than `fail` and leaves the last error alone; a failure returns `fail` and
/// sets the expected code.
#[track_caller]
fn check<T: Copy + PartialEq + Debug>(ctx: &str, fail: T, want: Want, f: impl FnOnce() -> T) -> T {
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

/// Like [`check`], but records a mismatch in `errs` instead of panicking, for tests that list
/// several independent discrepancies at once.
fn soft<T: Copy + PartialEq + Debug>(
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
            "{ctx}: expected {want:?}, got {got:?} (returned {r:x?})"
        ));
    }
    r
}

/// Fails with every recorded mismatch.
#[track_caller]
fn no_errors(errs: Vec<String>) {
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

fn va_soft(
    errs: &mut Vec<String>,
    ctx: &str,
    addr: usize,
    size: usize,
    ty: u32,
    prot: u32,
    want: Want,
) {
    let r = soft(errs, ctx, 0usize, want, || unsafe {
        VirtualAlloc(addr as *const c_void, size, ty, prot) as usize
    });
    if r != 0 && want.is_err() {
        unsafe { VirtualFree(r as *mut c_void, 0, MEM_RELEASE) };
    }
}

#[track_caller]
fn va(ctx: &str, addr: usize, size: usize, ty: u32, prot: u32, want: Want) -> usize {
    check(ctx, 0usize, want, || unsafe {
        VirtualAlloc(addr as *const c_void, size, ty, prot) as usize
    })
}

#[track_caller]
fn vf(ctx: &str, addr: usize, size: usize, ty: u32, want: Want) {
    check(ctx, FALSE, want, || unsafe {
        VirtualFree(addr as *mut c_void, size, ty)
    });
}

/// VirtualProtect with a real `lpflOldProtect` (pre-set to 0xdeadbeef); returns `*old`. On a
/// 487 failure `*old` must be PAGE_NOACCESS (case 35).
#[track_caller]
fn vp(ctx: &str, addr: usize, size: usize, new: u32, want: Want) -> u32 {
    let mut old = SENTINEL;
    check(ctx, FALSE, want, || unsafe {
        VirtualProtect(addr as *const c_void, size, new, &mut old)
    });
    if want == fails(E_ADDR) {
        assert_eq!(
            old, PAGE_NOACCESS,
            "{ctx}: *lpflOldProtect after a 487 failure"
        );
    }
    old
}

#[track_caller]
fn vlock(ctx: &str, addr: usize, size: usize, want: Want) {
    check(ctx, FALSE, want, || unsafe {
        VirtualLock(addr as *const c_void, size)
    });
}

#[track_caller]
fn vunlock(ctx: &str, addr: usize, size: usize, want: Want) {
    check(ctx, FALSE, want, || unsafe {
        VirtualUnlock(addr as *const c_void, size)
    });
}

/// The fields of MEMORY_BASIC_INFORMATION the cases talk about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Q {
    base: usize,
    ab: usize,
    ap: u32,
    rs: usize,
    st: u32,
    pr: u32,
    ty: u32,
}

fn to_q(m: &MEMORY_BASIC_INFORMATION) -> Q {
    Q {
        base: m.BaseAddress as usize,
        ab: m.AllocationBase as usize,
        ap: m.AllocationProtect,
        rs: m.RegionSize,
        st: m.State,
        pr: m.Protect,
        ty: m.Type,
    }
}

/// A successful VirtualQuery: returns sizeof(MEMORY_BASIC_INFORMATION), last error untouched.
#[track_caller]
fn vq(ctx: &str, addr: usize) -> Q {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    SetLastError(SENTINEL);
    let n = unsafe { VirtualQuery(addr as *const c_void, &mut m, MBI_LEN) };
    let le = GetLastError();
    assert_eq!(
        n, MBI_LEN,
        "{ctx}: VirtualQuery({addr:#x}) returned {n}, last error {le}"
    );
    assert_eq!(
        le, SENTINEL,
        "{ctx}: a successful VirtualQuery changed the last error"
    );
    to_q(&m)
}

/// `vq_is!(ctx, addr, { field: value, ... })`: queries `addr` and checks the listed fields.
macro_rules! vq_is {
    ($ctx:expr, $addr:expr, { $($f:ident : $v:expr),* $(,)? }) => {{
        let ctx: &str = &$ctx;
        let addr: usize = $addr;
        let q = vq(ctx, addr);
        $(
            assert_eq!(
                q.$f as u64, ($v) as u64,
                "{}: VirtualQuery({:#x}).{} (whole result {:x?})", ctx, addr, stringify!($f), q
            );
        )*
        q
    }};
}

fn rd(addr: usize) -> u8 {
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}
fn wr(addr: usize, v: u8) {
    unsafe { std::ptr::write_volatile(addr as *mut u8, v) }
}
fn rd32(addr: usize) -> u32 {
    unsafe { std::ptr::read_volatile(addr as *const u32) }
}
fn fill(addr: usize, len: usize, v: u8) {
    unsafe { std::ptr::write_bytes(addr as *mut u8, v, len) }
}
fn all_eq(addr: usize, len: usize, v: u8) -> bool {
    unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
        .iter()
        .all(|&b| b == v)
}
const fn round_up(x: usize, to: usize) -> usize {
    (x + to - 1) & !(to - 1)
}

// ---------------------------------------------------------------------------------------------
// Owned memory
// ---------------------------------------------------------------------------------------------

/// An allocation this test owns; released on drop (also when the test panics).
struct Mem {
    base: usize,
}

impl Mem {
    #[track_caller]
    fn new(size: usize, ty: u32, prot: u32) -> Mem {
        Mem {
            base: va("setup: VirtualAlloc(NULL)", 0, size, ty, prot, OK),
        }
    }
    /// A reservation of `size` bytes, nothing committed.
    #[track_caller]
    fn reserve(size: usize) -> Mem {
        Mem::new(size, RES, NA)
    }
    /// `size` bytes reserved and committed PAGE_READWRITE.
    #[track_caller]
    fn rw(size: usize) -> Mem {
        Mem::new(size, RC, RW)
    }
    fn at(&self, off: usize) -> usize {
        self.base + off
    }
    /// Releases it, checking the call.
    #[track_caller]
    fn release(self) {
        vf("release", self.base, 0, MEM_RELEASE, OK);
        std::mem::forget(self);
    }
    /// Gives up ownership (the test releases it itself).
    fn into_base(self) -> usize {
        let b = self.base;
        std::mem::forget(self);
        b
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        unsafe { VirtualFree(self.base as *mut c_void, 0, MEM_RELEASE) };
    }
}

/// A G-aligned range of `span` bytes that was free a moment ago (reserved with NULL, then
/// released).
fn hole(span: usize) -> usize {
    Mem::reserve(span).into_base_released()
}

impl Mem {
    fn into_base_released(self) -> usize {
        let b = self.base;
        self.release();
        b
    }
}

/// VirtualAlloc at a fixed address in a range found free; `None` if another thread took part
/// of it meanwhile (487). Any other failure, or a wrong base, fails the test.
#[track_caller]
fn try_at(addr: usize, size: usize, ty: u32, prot: u32) -> Option<Mem> {
    SetLastError(SENTINEL);
    let r = unsafe { VirtualAlloc(addr as *const c_void, size, ty, prot) } as usize;
    let le = GetLastError();
    if r == 0 {
        assert_eq!(
            le, E_ADDR,
            "fixed VirtualAlloc({addr:#x}, {size:#x}) failed unexpectedly"
        );
        return None;
    }
    assert_eq!(le, SENTINEL, "fixed VirtualAlloc changed the last error");
    assert_eq!(
        r,
        addr & !(G - 1),
        "fixed VirtualAlloc({addr:#x}) returned {r:#x}"
    );
    Some(Mem { base: r })
}

/// Runs `f` on free ranges of `span` bytes until it succeeds (`f` returns `None` when another
/// thread took the range between the probe and its fixed-address call).
#[track_caller]
fn retry<R>(span: usize, mut f: impl FnMut(usize) -> Option<R>) -> R {
    for _ in 0..200 {
        if let Some(r) = f(hole(span)) {
            return r;
        }
    }
    panic!("could not keep a free range of {span:#x} bytes for 200 attempts");
}

/// Two adjacent allocations: `size_a` bytes at a G-aligned `h` and `size_b` bytes at `h + off`.
#[track_caller]
fn pair(size_a: usize, off: usize, size_b: usize, ty: u32, prot: u32) -> (Mem, Mem) {
    retry(off + round_up(size_b, G), |h| {
        let a = try_at(h, size_a, ty, prot)?;
        let b = try_at(h + off, size_b, ty, prot)?;
        Some((a, b))
    })
}

/// An allocation protection used only to recognise our own allocations after a release: if
/// VirtualQuery still shows an allocation with this AllocationProtect at the same base, the
/// release did not happen (another thread's allocation there would have another protection).
const MARK: u32 = PAGE_EXECUTE | PAGE_WRITECOMBINE; // 0x410, valid and unusual

#[track_caller]
fn assert_released(ctx: &str, base: usize) {
    let q = vq(ctx, base);
    assert!(
        q.st == MEM_FREE || !(q.ab == base && q.ap == MARK),
        "{ctx}: the allocation at {base:#x} is still there after its release: {q:x?}"
    );
}

/// Memory this test mapped with libc, unmapped on drop.
struct Foreign {
    base: usize,
    len: usize,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.base as *mut c_void, self.len) };
    }
}

/// An anonymous private mapping of `pages` RW pages (returned as `(mapping, start)`) with a
/// PROT_NONE page on each side, so the kernel cannot merge it with a neighbour and its kernel
/// mapping starts exactly at `start`.
fn foreign_anon(pages: usize) -> (Foreign, usize) {
    let len = (pages + 2) * P;
    let p = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let start = p as usize + P;
    let r = unsafe {
        libc::mprotect(
            start as *mut c_void,
            pages * P,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    assert_eq!(r, 0);
    (
        Foreign {
            base: p as usize,
            len,
        },
        start,
    )
}

#[inline(never)]
fn a_function_in_this_executable(x: u32) -> u32 {
    std::hint::black_box(x).wrapping_mul(3)
}

// =============================================================================================
// A. VirtualAlloc: argument validation
// =============================================================================================

/// Where a table row's call points.
#[derive(Clone, Copy, Debug)]
enum At {
    /// NULL.
    Null,
    /// An absolute address that no allocation can occupy (below 0x10000 or above user space).
    Abs(usize),
    /// An offset into a fresh 0x10000 reservation (PAGE_READWRITE, first page committed).
    Res(usize),
}

struct AllocRow {
    case: &'static str,
    at: At,
    size: usize,
    ty: u32,
    prot: u32,
    want: Want,
}

const fn row(case: &'static str, at: At, size: usize, ty: u32, prot: u32, want: Want) -> AllocRow {
    AllocRow {
        case,
        at,
        size,
        ty,
        prot,
        want,
    }
}

/// VirtualAlloc argument checks: cases 1–4, 6, 7, 11, 12, 31 and the validation rules of §2
/// (including the later features: valid → 50, invalid → 87).
#[rustfmt::skip]
const ALLOC_ROWS: &[AllocRow] = &[
    row("case 1", At::Null, 0, RES, NA, fails(E_PARAM)),
    row("case 1 (commit)", At::Null, 0, RC, RW, fails(E_PARAM)),
    row("case 2", At::Null, 0x1000, RES, 0, fails(E_PARAM)),
    row("case 3", At::Null, 0x1000, COM, 0, fails(E_PARAM)),
    row("case 4", At::Res(0), 0x1000, COM, RO | PAGE_EXECUTE, fails(E_PARAM)),
    row("case 6", At::Null, P, COM, PAGE_WRITECOPY, fails(E_PARAM)),
    row("case 7", At::Null, P, COM, PAGE_EXECUTE_WRITECOPY, fails(E_PARAM)),
    row("case 11", At::Null, 0x10000, MEM_WRITE_WATCH, RW, fails(E_PARAM)),
    row("case 12", At::Res(0), 0x1000, RC | AT_ROUND_TO_PAGE, PAGE_EXECUTE_READWRITE, fails(E_PARAM)),
    // Case 31: below 0x10000, wrapping, above the user limit.
    row("case 31 (0x1000)", At::Abs(0x1000), P, RES, RW, fails(E_PARAM)),
    row("case 31 (0xF000 commit)", At::Abs(0xF000), P, COM, RW, fails(E_PARAM)),
    row("case 31 (0xFFFF)", At::Abs(0xFFFF), 2, RES, RW, fails(E_PARAM)),
    row("case 31 (0x8000 rc)", At::Abs(0x8000), G, RC, RW, fails(E_PARAM)),
    row("case 31 (wrap)", At::Abs(usize::MAX & !0xFFFF), 0x20000, RES, RW, fails(E_PARAM)),
    row("case 31 (wrap commit)", At::Abs(0x7FFF_0000_0000), usize::MAX, COM, RW, fails(E_PARAM)),
    row("case 31 (above)", At::Abs(0x7FFF_FFFF_0000), P, RES, RW, fails(E_PARAM)),
    row("case 31 (far above)", At::Abs(0x8000_0000_0000), P, RES, RW, fails(E_PARAM)),
    row("case 31 (across the limit)", At::Abs(0x7FFF_FFFE_F000), 0x2000, RES, RW, fails(E_PARAM)),
    row("case 31 (huge from a real page)", At::Res(0), usize::MAX - 0xFFFF_FFFF, COM, RW, fails(E_PARAM)),
    // §2: the top granule below the limit is never allocatable [I: ReactOS].
    row("§2 top granule", At::Abs(TOP_GRANULE), P, RES, RW, fails(E_PARAM)),
    row("§2 top granule, last page", At::Abs(MAX_ADDR & !0xFFF), P, RES, RW, fails(E_PARAM)),
    row("§2 into the top granule", At::Abs(TOP_GRANULE - G), G + P, RES, RW, fails(E_PARAM)),
    // §2: allocation type validation.
    row("§2 MEM_TOP_DOWN alone", At::Null, P, MEM_TOP_DOWN, RW, fails(E_PARAM)),
    row("§2 type 0", At::Null, P, 0, RW, fails(E_PARAM)),
    row("§2 unknown bit 0x1", At::Null, P, RES | 0x1, RW, fails(E_PARAM)),
    row("§2 unknown bit 0x10", At::Null, P, RES | 0x10, RW, fails(E_PARAM)),
    row("§2 unknown bit 0x800", At::Null, P, RES | 0x800, RW, fails(E_PARAM)),
    row("§2 MEM_FREE as a type", At::Null, P, RES | MEM_FREE, RW, fails(E_PARAM)),
    row("§2 MEM_4MB_PAGES", At::Null, P, RES | MEM_4MB_PAGES, RW, fails(E_PARAM)),
    row("§2 unknown bit 0x08000000", At::Null, P, RES | 0x0800_0000, RW, fails(E_PARAM)),
    row("§2 unknown bit 0x10000000", At::Null, P, RES | 0x1000_0000, RW, fails(E_PARAM)),
    row("case 132 (placeholder flag in VirtualAlloc)", At::Null, G, RES | MEM_RESERVE_PLACEHOLDER, NA, fails(E_PARAM)),
    row("§2 RESET|COMMIT", At::Res(0), P, MEM_RESET | COM, RW, fails(E_PARAM)),
    row("§2 RESET|RESERVE", At::Res(0), P, MEM_RESET | RES, RW, fails(E_PARAM)),
    row("§2 RESET|TOP_DOWN", At::Res(0), P, MEM_RESET | MEM_TOP_DOWN, RW, fails(E_PARAM)),
    row("§2 RESET|RESET_UNDO", At::Res(0), P, MEM_RESET | MEM_RESET_UNDO, RW, fails(E_PARAM)),
    row("§2 RESET_UNDO|COMMIT", At::Res(0), P, MEM_RESET_UNDO | COM, RW, fails(E_PARAM)),
    row("§2 RESET_UNDO|TOP_DOWN", At::Res(0), P, MEM_RESET_UNDO | MEM_TOP_DOWN, RW, fails(E_PARAM)),
    row("§2 RESET with NULL", At::Null, P, MEM_RESET, RW, fails(E_PARAM)),
    row("§2 RESET_UNDO with NULL", At::Null, P, MEM_RESET_UNDO, RW, fails(E_PARAM)),
    row("§2 RESET, size 0", At::Res(0), 0, MEM_RESET, RW, fails(E_PARAM)),
    row("§2 RESET, protection 0", At::Res(0), P, MEM_RESET, 0, fails(E_PARAM)),
    row("§2 RESET, WRITECOPY", At::Res(0), P, MEM_RESET, PAGE_WRITECOPY, fails(E_PARAM)),
    row("§2 RESET, two bases", At::Res(0), P, MEM_RESET, RO | RW, fails(E_PARAM)),
    row("§2 RESET below 0x10000", At::Abs(0x1000), P, MEM_RESET, RW, fails(E_PARAM)),
    row("§2 RESET above user space", At::Abs(0x7FFF_FFFF_0000), P, MEM_RESET, RW, fails(E_PARAM)),
    row("§2 WRITE_WATCH|COMMIT", At::Null, G, MEM_WRITE_WATCH | COM, RW, fails(E_PARAM)),
    row("§2 LARGE_PAGES|RESERVE", At::Null, LARGE, MEM_LARGE_PAGES | RES, RW, fails(E_PARAM)),
    row("§2 LARGE_PAGES|COMMIT", At::Null, LARGE, MEM_LARGE_PAGES | COM, RW, fails(E_PARAM)),
    row("§2 LARGE_PAGES alone", At::Null, LARGE, MEM_LARGE_PAGES, RW, fails(E_PARAM)),
    row("§2 LARGE_PAGES|WRITE_WATCH", At::Null, LARGE, MEM_LARGE_PAGES | RC | MEM_WRITE_WATCH, RW, fails(E_PARAM)),
    row("§2 LARGE_PAGES|PHYSICAL", At::Null, LARGE, MEM_LARGE_PAGES | RC | MEM_PHYSICAL, RW, fails(E_PARAM)),
    row("§2 PHYSICAL alone", At::Null, G, MEM_PHYSICAL, RW, fails(E_PARAM)),
    row("§2 PHYSICAL|COMMIT", At::Null, G, MEM_PHYSICAL | COM, RW, fails(E_PARAM)),
    row("§2 PHYSICAL|RESERVE|COMMIT", At::Null, G, MEM_PHYSICAL | RC, RW, fails(E_PARAM)),
    row("§2 PHYSICAL|WRITE_WATCH", At::Null, G, MEM_PHYSICAL | RES | MEM_WRITE_WATCH, RW, fails(E_PARAM)),
    row("§2 PHYSICAL, READONLY", At::Null, G, MEM_PHYSICAL | RES, RO, fails(E_PARAM)),
    row("§2 PHYSICAL, NOACCESS", At::Null, G, MEM_PHYSICAL | RES, NA, fails(E_PARAM)),
    row("§2 PHYSICAL, RW|NOCACHE", At::Null, G, MEM_PHYSICAL | RES, RW | PAGE_NOCACHE, fails(E_PARAM)),
    // Later features, valid requests → ERROR_NOT_SUPPORTED.
    row("case 24 (write watch)", At::Null, G, RC | MEM_WRITE_WATCH, RW, OK),
    row("case 100 (write watch)", At::Null, G, RES | MEM_WRITE_WATCH, RW, OK),
    row("case 109 (guard)", At::Null, P, RC, RW | PAGE_GUARD, OK),
    row("§2 guard commit", At::Res(P), P, COM, RO | PAGE_GUARD, OK),
    row("§2 physical", At::Null, G, RES | MEM_PHYSICAL, RW, OK),
    row("§2 physical|top-down", At::Null, G, RES | MEM_PHYSICAL | MEM_TOP_DOWN, RW, OK),
    // §2: protections that are valid.
    row("§2 READONLY|WRITECOMBINE", At::Null, P, RC, RO | PAGE_WRITECOMBINE, OK),
    row("§2 EXECUTE_READ|TARGETS_INVALID", At::Null, P, RC, PAGE_EXECUTE_READ | PAGE_TARGETS_INVALID, OK),
    row("§2 EXECUTE_READWRITE|TARGETS_INVALID reserve", At::Null, P, RES, PAGE_EXECUTE_READWRITE | PAGE_TARGETS_INVALID, OK),
    row("§2 commit of a reserved page", At::Res(P), P, COM, RO, OK),
    row("§2 commit of a committed page", At::Res(0), P, COM, RW, OK),
    row("§2 reserve|commit|top-down", At::Null, P, RC | MEM_TOP_DOWN, RW, OK),
    row("§2 MEM_COMMIT|TOP_DOWN with NULL", At::Null, P, COM | MEM_TOP_DOWN, RW, OK),
];

#[test]
fn case_001_to_012_031_alloc_argument_table() {
    for r in ALLOC_ROWS {
        let res = Mem::reserve(G);
        va("setup", res.base, P, COM, RW, OK);
        let addr = match r.at {
            At::Null => 0,
            At::Abs(a) => a,
            At::Res(off) => res.at(off),
        };
        let ctx = format!(
            "{}: VirtualAlloc({addr:#x}, {:#x}, {:#x}, {:#x})",
            r.case, r.size, r.ty, r.prot
        );
        let got = va(&ctx, addr, r.size, r.ty, r.prot, r.want);
        if got != 0 && matches!(r.at, At::Null | At::Abs(_)) {
            vf(&ctx, got, 0, MEM_RELEASE, OK);
        }
    }
}

/// Protections that are invalid for VirtualAlloc and VirtualProtect alike (→ 87).
fn invalid_protections() -> Vec<(String, u32)> {
    let mut v = vec![("case 8: 0".to_string(), 0u32)];
    // Case 8: two or more of {0x01,0x02,0x04,0x08}, two or more of {0x10,0x20,0x40,0x80}.
    for x in 1u32..16 {
        if x.count_ones() >= 2 {
            v.push((format!("case 8: {x:#x}"), x));
            v.push((format!("case 8: {:#x}", x << 4), x << 4));
        }
    }
    // §2: one value from each group is two base values too (case 4 is 0x12).
    for lo in [1u32, 2, 4, 8] {
        for hi in [0x10u32, 0x20, 0x40, 0x80] {
            v.push((format!("§2 two bases {:#x}", lo | hi), lo | hi));
        }
    }
    v.push(("case 6: WRITECOPY".into(), PAGE_WRITECOPY));
    v.push(("case 7: EXECUTE_WRITECOPY".into(), PAGE_EXECUTE_WRITECOPY));
    v.push((
        "case 38: RW|EXECUTE_WRITECOPY".into(),
        RW | PAGE_EXECUTE_WRITECOPY,
    ));
    // Case 125 / §2 invalid modifier mixes.
    v.push(("case 125: GUARD|NOACCESS".into(), PAGE_GUARD | NA));
    v.push((
        "case 125: NOCACHE|GUARD".into(),
        PAGE_NOCACHE | PAGE_GUARD | RW,
    ));
    v.push(("case 125: NOCACHE|NOACCESS".into(), PAGE_NOCACHE | NA));
    v.push((
        "case 125: NOCACHE|WRITECOMBINE".into(),
        PAGE_NOCACHE | PAGE_WRITECOMBINE | RW,
    ));
    v.push(("§2 WRITECOMBINE|NOACCESS".into(), PAGE_WRITECOMBINE | NA));
    v.push((
        "§2 WRITECOMBINE|GUARD".into(),
        PAGE_WRITECOMBINE | PAGE_GUARD | RW,
    ));
    v.push(("case 50 / §2 GUARD alone".into(), PAGE_GUARD));
    v.push(("§2 NOCACHE alone".into(), PAGE_NOCACHE));
    v.push(("§2 WRITECOMBINE alone".into(), PAGE_WRITECOMBINE));
    v.push(("§2 GUARD|WRITECOPY".into(), PAGE_GUARD | PAGE_WRITECOPY));
    v.push((
        "§2 NOCACHE|EXECUTE_WRITECOPY".into(),
        PAGE_NOCACHE | PAGE_EXECUTE_WRITECOPY,
    ));
    v.push(("§2 unknown bit 0x800".into(), RW | 0x800));
    v.push(("§2 unknown bit 0x1000".into(), RW | 0x1000));
    v
}

#[test]
fn case_002_006_007_008_125_invalid_protections_in_virtualalloc() {
    let res = Mem::reserve(G);
    for (name, prot) in invalid_protections() {
        for (how, addr, ty) in [
            ("reserve NULL", 0, RES),
            ("commit NULL", 0, COM),
            ("reserve|commit NULL", 0, RC),
            ("commit reserved", res.base, COM),
        ] {
            let ctx = format!("{name} ({how}, prot {prot:#x})");
            va(&ctx, addr, P, ty, prot, fails(E_PARAM));
        }
    }
    // Nothing was committed by the failed calls.
    vq_is!("case 8 (nothing committed)", res.base, { st: MEM_RESERVE, rs: G, pr: 0 });
}

#[test]
fn case_005_commit_with_null_address_reserves_and_commits() {
    for x in BASES {
        let ctx = format!("case 5 (X = {x:#x})");
        let b = va(&ctx, 0, P, COM, x, OK);
        let m = Mem { base: b };
        assert_eq!(b % G, 0, "{ctx}: the base is a multiple of 64K");
        vq_is!(ctx, b, { base: b, ab: b, ap: x, rs: 0x1000, st: MEM_COMMIT, pr: x, ty: MEM_PRIVATE });
        if x != NA && x != PAGE_EXECUTE {
            assert!(all_eq(b, P, 0), "{ctx}: a fresh commit reads as zero");
        }
        m.release();
    }
}

#[test]
fn case_013_virtualallocex_null_handle() {
    let r = check("case 13", null_mut(), fails(E_HANDLE), || unsafe {
        VirtualAllocEx(null_mut(), null(), 0x8000, COM, PAGE_EXECUTE_READWRITE)
    });
    assert!(r.is_null());
}

#[test]
fn case_014_015_virtualallocfromapp() {
    let p = check("case 14", null_mut(), OK, || unsafe {
        VirtualAllocFromApp(null(), 0x1000, RES, RW)
    }) as usize;
    let m = Mem { base: p };
    vq_is!("case 14", p, { ab: p, ap: RW, rs: P, st: MEM_RESERVE, pr: 0, ty: MEM_PRIVATE });
    // §2: the FromApp rule applies to a commit inside it as well.
    for x in EXECUTES {
        let ctx = format!("case 15 (X = {x:#x})");
        check(&ctx, null_mut(), fails(E_PARAM), || unsafe {
            VirtualAllocFromApp(null(), 0x1000, RES, x)
        });
        check(
            &format!("{ctx}, commit"),
            null_mut(),
            fails(E_PARAM),
            || unsafe { VirtualAllocFromApp(p as *const c_void, 0x1000, COM, x) },
        );
    }
    // Non-executable protections are all accepted.
    for x in [NA, RO, RW, RW | PAGE_NOCACHE] {
        let ctx = format!("§2 VirtualAllocFromApp (X = {x:#x})");
        let q = check(&ctx, null_mut(), OK, || unsafe {
            VirtualAllocFromApp(null(), 0x1000, RC, x)
        }) as usize;
        vq_is!(ctx, q, { ap: x, pr: x, st: MEM_COMMIT });
        vf(&ctx, q, 0, MEM_RELEASE, OK);
    }
    m.release();
}

#[test]
fn case_016_virtualalloc2fromapp() {
    let p = check("case 16", null_mut(), OK, || unsafe {
        VirtualAlloc2FromApp(null_mut(), null(), 0x1000, COM, RW, null_mut(), 0)
    }) as usize;
    vq_is!("case 16", p, { ab: p, ap: RW, rs: P, st: MEM_COMMIT, pr: RW, ty: MEM_PRIVATE });
    vf("case 16", p, 0, MEM_RELEASE, OK);
    for x in EXECUTES {
        check(
            &format!("case 16 (X = {x:#x})"),
            null_mut(),
            fails(E_PARAM),
            || unsafe { VirtualAlloc2FromApp(null_mut(), null(), 0x1000, COM, x, null_mut(), 0) },
        );
    }
}

#[test]
fn case_017_virtualalloc2_null_process_is_the_current_one() {
    let p = check("case 17", null_mut(), OK, || unsafe {
        VirtualAlloc2(
            null_mut(),
            null(),
            0x80000,
            COM,
            PAGE_EXECUTE_READWRITE,
            null_mut(),
            0,
        )
    }) as usize;
    vq_is!("case 17", p, {
        base: p, ab: p, ap: PAGE_EXECUTE_READWRITE, rs: 0x80000, st: MEM_COMMIT,
        pr: PAGE_EXECUTE_READWRITE, ty: MEM_PRIVATE
    });
    vf("case 17", p, 0, MEM_RELEASE, OK);
    // §2: GetCurrentProcess() works too, and VirtualAlloc2 follows VirtualAlloc's rules.
    let q = check(
        "§2 VirtualAlloc2(GetCurrentProcess())",
        null_mut(),
        OK,
        || unsafe { VirtualAlloc2(GetCurrentProcess(), null(), 0xFFFC, RES, RW, null_mut(), 0) },
    ) as usize;
    vq_is!("§2 VirtualAlloc2 rounding", q, { rs: G, st: MEM_RESERVE, ap: RW, pr: 0 });
    check("§2 VirtualAlloc2 commit", null_mut(), OK, || unsafe {
        VirtualAlloc2(
            null_mut(),
            (q + 0x1FFF) as *const c_void,
            2,
            COM,
            RO,
            null_mut(),
            0,
        )
    });
    vq_is!("§2 VirtualAlloc2 commit rounding", q + P, { rs: 2 * P, st: MEM_COMMIT, pr: RO });
    check(
        "§2 VirtualAlloc2 size 0",
        null_mut(),
        fails(E_PARAM),
        || unsafe { VirtualAlloc2(null_mut(), null(), 0, RES, RW, null_mut(), 0) },
    );
    check(
        "§2 VirtualAlloc2 WRITECOPY",
        null_mut(),
        fails(E_PARAM),
        || unsafe { VirtualAlloc2(null_mut(), null(), P, RES, PAGE_WRITECOPY, null_mut(), 0) },
    );
    vf("§2 VirtualAlloc2", q, 0, MEM_RELEASE, OK);
}

// =============================================================================================
// B. Reserve / commit state and VirtualQuery
// =============================================================================================

/// Cases 19, 35, 4, 20, 37, 25, 38, 39, 74, 21, 54, 56, 58, 59 in the order of Wine's
/// k32 test_VirtualAlloc.
#[test]
fn case_019_020_021_035_037_038_039_074_054_056_058_059_virtualalloc_sequence() {
    let p = va("case 19", 0, 0xFFFC, RES, NA, OK);
    let _guard = Mem { base: p };
    let q19 = vq_is!("case 19", p, {
        base: p, ab: p, ap: NA, rs: 0x10000, st: MEM_RESERVE, pr: 0, ty: MEM_PRIVATE
    });
    // VirtualQueryEx on the current process gives the same.
    let mut m = MEMORY_BASIC_INFORMATION::default();
    let n = check("case 19 (VirtualQueryEx)", 0usize, OK, || unsafe {
        VirtualQueryEx(GetCurrentProcess(), p as *const c_void, &mut m, MBI_LEN)
    });
    assert_eq!(n, MBI_LEN);
    assert_eq!(to_q(&m), q19, "case 19: VirtualQueryEx");

    vp("case 35", p, 0xFFFC, RO, fails(E_ADDR));
    va("case 4", p, 0x1000, COM, RO | PAGE_EXECUTE, fails(E_PARAM));

    let r = va("case 20", p, 0x1000, COM, NA, OK);
    assert_eq!(r, p, "case 20: the commit returns p");
    vq_is!("case 20", p, {
        base: p, ab: p, ap: NA, rs: 0x1000, st: MEM_COMMIT, pr: NA, ty: MEM_PRIVATE
    });

    assert_eq!(vp("case 37", p, 0x1000, RO, OK), NA, "case 37: old");
    assert_eq!(vp("case 37", p, 0x1000, RW, OK), RO, "case 37: old");
    vq_is!("case 37 / 25", p, { rs: 0x1000, st: MEM_COMMIT, pr: RW, ap: NA });

    vp(
        "case 38",
        p,
        0x1000,
        RW | PAGE_EXECUTE_WRITECOPY,
        fails(E_PARAM),
    );
    vp("case 39", p, 0x1000, 0, fails(E_PARAM));
    vq_is!("case 38/39 change nothing", p, { pr: RW });

    fill(p, P, 0x55);
    let r = va("case 74", p, 0x1000, MEM_RESET, NA, OK);
    assert_eq!(r, p, "case 74: returns p");
    let d = rd32(p);
    assert!(d == 0x5555_5555 || d == 0, "case 74: first DWORD is {d:#x}");
    vq_is!("case 74", p, { rs: 0x1000, st: MEM_COMMIT, pr: RW, ap: NA });

    vq_is!("case 21", p + 0x1000, { rs: 0xF000, st: MEM_RESERVE, pr: 0, ab: p, ap: NA });

    vf("case 54", p, 0x10000, 0, fails(E_PARAM));
    vf("case 56", p, 0, MEM_FREE, fails(E_PARAM));
    vf("case 58", p, 1, MEM_RELEASE, fails(E_PARAM));
    vq_is!("case 54/56/58 change nothing", p, { st: MEM_COMMIT, pr: RW });
    std::mem::forget(_guard);
    vf("case 59", p, 0, MEM_RELEASE, OK);
}

#[test]
fn case_025_allocation_protect_never_changes() {
    let m = Mem::new(G, RES, NA);
    va("case 25", m.base, 4 * P, COM, RW, OK);
    vq_is!("case 25 (after commit RW)", m.base, { ap: NA, pr: RW });
    vp("case 25", m.base, P, PAGE_EXECUTE_READ, OK);
    vq_is!("case 25 (after VP)", m.base, { ap: NA, pr: PAGE_EXECUTE_READ });
    vf("case 25", m.base, P, MEM_DECOMMIT, OK);
    vq_is!("case 25 (after decommit)", m.base, { ap: NA, st: MEM_RESERVE, pr: 0 });
    vq_is!("case 25 (other page)", m.at(P), { ap: NA, pr: RW });
}

#[test]
fn case_026_top_down_takes_the_highest_free_range() {
    let normal = Mem::reserve(G);
    let top = Mem::new(G, RES | MEM_TOP_DOWN, NA);
    vq_is!("case 26", top.base, { ab: top.base, rs: G, st: MEM_RESERVE });
    assert_eq!(top.base % G, 0);
    assert!(
        top.base > normal.base,
        "case 26: top-down {:#x} below {:#x}",
        top.base,
        normal.base
    );
    assert!(
        top.base + G <= TOP_GRANULE,
        "case 26: in the allocatable range"
    );
    // No free 64K-aligned granule is left above it.
    let mut at = top.base + G;
    while at < TOP_GRANULE {
        let q = vq("case 26 (walk)", at);
        let end = (q.base + q.rs).min(TOP_GRANULE);
        if q.st == MEM_FREE {
            let start = round_up(q.base, G);
            assert!(
                start + G > end,
                "case 26: free granule at {start:#x} above {:#x}",
                top.base
            );
        }
        assert!(end > at);
        at = end;
    }
}

// =============================================================================================
// C. Rounding, alignment and conflicts
// =============================================================================================

#[test]
fn case_028_reserve_rounds_the_base_down_and_the_end_up() {
    // [h+0x5234, h+0x7234) reserves [h, h+0x8000).
    let (h, m) = retry(G, |h| try_at(h + 0x5234, 0x2000, RES, RW).map(|m| (h, m)));
    assert_eq!(m.base, h);
    vq_is!("case 28", h, { base: h, ab: h, ap: RW, rs: 0x8000, st: MEM_RESERVE, pr: 0, ty: MEM_PRIVATE });
    vq_is!("case 28 (last page)", h + 0x7FFF, { base: h + 0x7000, ab: h, rs: 0x1000, st: MEM_RESERVE });
    vq_is!("case 28 (after the end)", h + 0x8000, { st: MEM_FREE, ab: 0 });
    m.release();
    // [h+0xFFF, h+0x1001) reserves [h, h+0x2000), committed.
    let (h, m) = retry(G, |h| try_at(h + 0xFFF, 2, RC, RW).map(|m| (h, m)));
    vq_is!("case 28 (commit)", h, { ab: h, rs: 0x2000, st: MEM_COMMIT, pr: RW });
    m.release();
}

#[test]
fn case_029_commit_covers_every_touched_page() {
    let m = Mem::reserve(G);
    let r = va("case 29", m.at(0x1FFF), 2, COM, RW, OK);
    assert_eq!(
        r,
        m.at(0x1000),
        "case 29: returns the address rounded down to a page"
    );
    vq_is!("case 29 (before)", m.base, { rs: 0x1000, st: MEM_RESERVE, pr: 0 });
    vq_is!("case 29", m.at(0x1000), { base: m.at(0x1000), rs: 0x2000, st: MEM_COMMIT, pr: RW });
    vq_is!("case 29 (after)", m.at(0x3000), { rs: G - 0x3000, st: MEM_RESERVE });
    // A 1-byte commit in the middle of a page.
    let r = va("case 29 (1 byte)", m.at(0x8800), 1, COM, RO, OK);
    assert_eq!(r, m.at(0x8000));
    vq_is!("case 29 (1 byte)", m.at(0x8000), { rs: 0x1000, st: MEM_COMMIT, pr: RO });
}

#[test]
fn case_030_null_address_size_rounding() {
    for (size, rs) in [
        (1usize, P),
        (0xFFC, P),
        (0x1001, 2 * P),
        (0xFFFC, G),
        (0x10001, G + P),
    ] {
        let ctx = format!("case 30 (size {size:#x})");
        let p = va(&ctx, 0, size, RES, RW, OK);
        vq_is!(ctx, p, { rs: rs, st: MEM_RESERVE });
        vf(&ctx, p, 0, MEM_RELEASE, OK);
    }
}

#[test]
fn case_032_commit_of_free_memory() {
    // The tail of the granule of a 1-page allocation is free and no reservation can take it.
    let m = Mem::new(P, RC, RW);
    va("case 32", m.at(P), P, COM, RW, fails(E_ADDR));
    va(
        "case 32 (end of granule)",
        m.at(G - P),
        P,
        COM,
        RO,
        fails(E_ADDR),
    );
    // Below 0x10000 is 87 (case 31), far free memory at a valid address is 487.
    va(
        "case 32 (low free memory)",
        m.at(2 * P),
        0x2000,
        COM,
        RW,
        fails(E_ADDR),
    );
    vq_is!("case 32 (unchanged)", m.base, { rs: P, st: MEM_COMMIT, pr: RW });
}

#[test]
fn case_033_commit_must_stay_inside_one_allocation() {
    // Running past the end.
    let m = Mem::reserve(P);
    va(
        "case 33 (past the end)",
        m.base,
        2 * P,
        COM,
        RW,
        fails(E_ADDR),
    );
    vq_is!("case 33 (all or nothing)", m.base, { st: MEM_RESERVE, pr: 0 });
    let big = Mem::reserve(G);
    va(
        "case 33 (past the end, big)",
        big.at(G - P),
        2 * P,
        COM,
        RW,
        fails(E_ADDR),
    );
    vq_is!("case 33 (all or nothing, big)", big.at(G - P), { st: MEM_RESERVE, pr: 0 });
    // Spanning two adjacent allocations.
    let (a, b) = pair(G, G, G, RES, RW);
    va(
        "case 33 (two allocations)",
        a.at(G - P),
        2 * P,
        COM,
        RW,
        fails(E_ADDR),
    );
    va(
        "case 33 (two whole allocations)",
        a.base,
        2 * G,
        COM,
        RW,
        fails(E_ADDR),
    );
    vq_is!("case 33 (first unchanged)", a.base, { st: MEM_RESERVE, rs: G });
    vq_is!("case 33 (second unchanged)", b.base, { st: MEM_RESERVE, rs: G });
}

// =============================================================================================
// D. VirtualProtect / VirtualProtectFromApp
// =============================================================================================

#[test]
fn case_035_protect_of_reserved_pages() {
    let m = Mem::reserve(G);
    vp("case 35", m.base, 0xFFFC, RO, fails(E_ADDR));
    vp("case 35 (one page)", m.at(P), 1, RW, fails(E_ADDR));
}

#[test]
fn case_041_protect_from_noaccess() {
    for x in BASES {
        let ctx = format!("case 41 (X = {x:#x})");
        let m = Mem::new(P, COM, NA);
        let b = m.base;
        assert_eq!(vp(&ctx, b, P, x, OK), NA, "{ctx}: old");
        vq_is!(ctx, b, { base: b, rs: P, pr: x, ab: b, ap: NA, st: MEM_COMMIT, ty: MEM_PRIVATE });
        m.release();
    }
}

#[test]
fn case_039_125_invalid_protections_in_virtualprotect() {
    let m = Mem::rw(P);
    for (name, prot) in invalid_protections() {
        let ctx = format!("{name} (VirtualProtect {prot:#x})");
        vp(&ctx, m.base, P, prot, fails(E_PARAM));
        // The check comes before the pointer check and the page check (§4).
        check(
            &format!("{ctx}, NULL old"),
            FALSE,
            fails(E_PARAM),
            || unsafe { VirtualProtect(m.base as *const c_void, P, prot, null_mut()) },
        );
    }
    vq_is!("case 39 (nothing changed)", m.base, { pr: RW });
}

#[test]
fn case_044_070_ex_functions_with_a_null_handle() {
    let m = Mem::rw(P);
    let mut old = SENTINEL;
    check(
        "case 44 (VirtualProtectEx NULL)",
        FALSE,
        fails(E_HANDLE),
        || unsafe { VirtualProtectEx(null_mut(), m.base as *const c_void, P, RO, &mut old) },
    );
    check(
        "case 70 (VirtualFreeEx NULL)",
        FALSE,
        fails(E_HANDLE),
        || unsafe { VirtualFreeEx(null_mut(), m.base as *mut c_void, 0, MEM_RELEASE) },
    );
    let mut mbi = MEMORY_BASIC_INFORMATION::default();
    check(
        "§2 VirtualQueryEx NULL",
        0usize,
        fails(E_HANDLE),
        || unsafe { VirtualQueryEx(null_mut(), m.base as *const c_void, &mut mbi, MBI_LEN) },
    );
    check(
        "case 13 (VirtualAllocEx NULL, commit)",
        null_mut(),
        fails(E_HANDLE),
        || unsafe { VirtualAllocEx(null_mut(), m.base as *const c_void, P, COM, RO) },
    );
    vq_is!("NULL handles change nothing", m.base, { st: MEM_COMMIT, pr: RW });
}

#[test]
fn case_045_protect_of_free_memory_at_null() {
    for addr in [0usize, 0x1000, 0xF000] {
        vp(&format!("case 45 ({addr:#x})"), addr, P, RO, fails(E_ADDR));
    }
}

#[test]
fn case_046_protect_covers_every_touched_page() {
    // Win32 form of the NT case: a 1-byte range at p+1 covers the whole page.
    let m = Mem::new(G, RC, RW);
    assert_eq!(vp("case 46", m.at(1), 1, RO, OK), RW);
    vq_is!("case 46", m.base, { base: m.base, rs: P, pr: RO });
    vq_is!("case 46 (next page)", m.at(P), { pr: RW });
    // (base+0x1FFF, 2) touches two pages.
    assert_eq!(
        vp(
            "case 46 (two pages)",
            m.at(0x1FFF),
            2,
            PAGE_EXECUTE_READ,
            OK
        ),
        RW
    );
    vq_is!("case 46 (two pages)", m.at(P), { rs: 2 * P, pr: PAGE_EXECUTE_READ });
    vq_is!("case 46 (after)", m.at(3 * P), { pr: RW });
}

#[test]
fn case_047_048_049_050_051_virtualprotectfromapp() {
    let m = Mem::rw(P);
    let p = m.base as *const c_void;
    let mut old = SENTINEL;
    check("case 47", FALSE, OK, || unsafe {
        VirtualProtectFromApp(p, 0x1000, RO, &mut old)
    });
    assert_eq!(old, RW, "case 47: old");
    old = SENTINEL;
    check("case 48", FALSE, fails(E_ADDR), || unsafe {
        VirtualProtectFromApp(p, 0x100000, RW, &mut old)
    });
    assert_eq!(old, NA, "case 48: old");
    check("case 49", FALSE, fails(E_NOACCESS), || unsafe {
        VirtualProtectFromApp(p, 0x1000, PAGE_EXECUTE_READ, null_mut())
    });
    check("case 50", FALSE, fails(E_PARAM), || unsafe {
        VirtualProtectFromApp(p, 0x1000, PAGE_GUARD, &mut old)
    });
    vq_is!("case 48-50 change nothing", m.base, { pr: RO });
    old = SENTINEL;
    check("case 51", FALSE, OK, || unsafe {
        VirtualProtectFromApp(p, 0x1000, PAGE_EXECUTE_READWRITE, &mut old)
    });
    assert_eq!(old, RO, "case 51: old");
    vq_is!("case 51", m.base, { pr: PAGE_EXECUTE_READWRITE, ap: RW });
}

// =============================================================================================
// E. VirtualFree
// =============================================================================================

#[test]
fn case_054_056_058_free_type_and_size_table() {
    let m = Mem::rw(2 * P);
    #[rustfmt::skip]
    let rows: &[(&str, usize, usize, u32, Want)] = &[
        ("case 54: type 0", 0, 0x10000, 0, fails(E_PARAM)),
        ("case 56: MEM_FREE", 0, 0, MEM_FREE, fails(E_PARAM)),
        ("case 58: RELEASE, size 1", 0, 1, MEM_RELEASE, fails(E_PARAM)),
        ("case 58: RELEASE, size 0x10000", 0, 0x10000, MEM_RELEASE, fails(E_PARAM)),
        ("§3 [I] DECOMMIT|RELEASE", 0, 0, MEM_DECOMMIT | MEM_RELEASE, fails(E_PARAM)),
        ("§3 unknown bit 0x10", 0, 0, MEM_RELEASE | 0x10, fails(E_PARAM)),
        ("§3 unknown bit alone 0x10", 0, P, 0x10, fails(E_PARAM)),
        ("§3 DECOMMIT|0x80000000", 0, P, MEM_DECOMMIT | 0x8000_0000, fails(E_PARAM)),
        ("§3 MEM_COMMIT as free type", 0, P, MEM_COMMIT, fails(E_PARAM)),
        ("§3 MEM_RESERVE as free type", 0, P, MEM_RESERVE, fails(E_PARAM)),
        ("§3 COALESCE alone", 0, 0, MEM_COALESCE_PLACEHOLDERS, fails(E_PARAM)),
        ("§3 PRESERVE alone", 0, 0, MEM_PRESERVE_PLACEHOLDER, fails(E_PARAM)),
        ("§3 DECOMMIT|PRESERVE", 0, P, MEM_DECOMMIT | MEM_PRESERVE_PLACEHOLDER, fails(E_PARAM)),
    ];
    for &(name, off, size, ty, want) in rows {
        vf(name, m.at(off), size, ty, want);
    }
    vq_is!("case 54-58 change nothing", m.base, { st: MEM_COMMIT, rs: 2 * P, pr: RW });
}

#[test]
fn case_055_decommit_covers_every_touched_page() {
    let m = Mem::new(G, RC, RW);
    vf("case 55", m.at(0x1FFF), 2, MEM_DECOMMIT, OK);
    vq_is!("case 55 (before)", m.base, { rs: P, st: MEM_COMMIT });
    vq_is!("case 55", m.at(P), { rs: 2 * P, st: MEM_RESERVE, pr: 0 });
    vq_is!("case 55 (after)", m.at(3 * P), { st: MEM_COMMIT, rs: G - 3 * P });
}

#[test]
fn case_059_063_release() {
    let m = Mem::new(G, RC, MARK);
    vf("case 63", m.at(0x1000), 0, MEM_RELEASE, fails(E_ADDR));
    vf("case 63 (end)", m.at(G - P), 0, MEM_RELEASE, fails(E_ADDR));
    vq_is!("case 63 (unchanged)", m.base, { st: MEM_COMMIT, rs: G });
    let b = m.into_base();
    vf("case 59", b, 0, MEM_RELEASE, OK);
    assert_released("case 59", b);
}

#[test]
fn case_068_decommit_leaving_the_allocation() {
    // Into a hole: a 1-page allocation, range of the whole granule.
    let m = Mem::rw(P);
    wr(m.base, 7);
    vf(
        "case 68 (into a hole)",
        m.base,
        0x10000,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vf(
        "case 68 (one page past)",
        m.base,
        2 * P,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vq_is!("case 68 (nothing decommitted)", m.base, { st: MEM_COMMIT, pr: RW });
    assert_eq!(rd(m.base), 7);
    // Into another allocation.
    let (a, b) = pair(G, G, G, RC, RW);
    wr(a.at(G - P), 9);
    vf(
        "case 68 (two allocations)",
        a.at(G - P),
        2 * P,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vf(
        "case 68 (both whole)",
        a.base,
        2 * G,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vq_is!("case 68 (a unchanged)", a.base, { st: MEM_COMMIT, rs: G });
    vq_is!("case 68 (b unchanged)", b.base, { st: MEM_COMMIT, rs: G });
    assert_eq!(rd(a.at(G - P)), 9);
    // RELEASE over several allocations cannot be asked through VirtualFree (size must be 0).
    vf(
        "case 68 (release with a size)",
        a.base,
        2 * G,
        MEM_RELEASE,
        fails(E_PARAM),
    );
}

#[test]
fn case_e_extra_free_of_null() {
    // [I] Wine gives 87 for VF(NULL, 0, MEM_RELEASE); semantics.md §3 [I: ReactOS]: NULL and
    // other low addresses are ordinary free memory → 487.
    vf("§3 VF(NULL, 0, RELEASE)", 0, 0, MEM_RELEASE, fails(E_ADDR));
    vf(
        "§3 VF(NULL, 0, DECOMMIT)",
        0,
        0,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vf(
        "§3 VF(0x1000, P, DECOMMIT)",
        0x1000,
        P,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vf(
        "§3 VF(0xFFFF, 0, RELEASE)",
        0xFFFF,
        0,
        MEM_RELEASE,
        fails(E_ADDR),
    );
    // The size check of RELEASE comes first (case 58), even on free memory.
    vf("case 58 (NULL, size 1)", 0, 1, MEM_RELEASE, fails(E_PARAM));
}

// =============================================================================================
// F. MEM_RESET / MEM_RESET_UNDO / DiscardVirtualMemory
// =============================================================================================

#[test]
fn case_074_reset_keeps_state_and_ignores_protection() {
    let m = Mem::reserve(G);
    va("case 74", m.base, P, COM, RW, OK);
    fill(m.base, P, 0x55);
    for prot in [NA, RO, PAGE_EXECUTE_READWRITE, RW | PAGE_NOCACHE] {
        let ctx = format!("case 74 (protection {prot:#x} ignored)");
        assert_eq!(va(&ctx, m.base, P, MEM_RESET, prot, OK), m.base);
        let d = rd32(m.base);
        assert!(d == 0x5555_5555 || d == 0, "{ctx}: first DWORD {d:#x}");
        vq_is!(ctx, m.base, { rs: P, st: MEM_COMMIT, pr: RW, ap: NA });
    }
    // Reserved pages in the range are allowed and stay reserved.
    assert_eq!(
        va("§2 reset over reserved pages", m.base, G, MEM_RESET, RW, OK),
        m.base
    );
    vq_is!("§2 reset over reserved pages", m.at(P), { st: MEM_RESERVE, rs: G - P, pr: 0 });
    assert_eq!(
        va(
            "§2 reset of reserved pages only",
            m.at(P),
            4 * P,
            MEM_RESET,
            RW,
            OK
        ),
        m.at(P)
    );
    vq_is!("§2 reset of reserved pages only", m.at(P), { st: MEM_RESERVE, pr: 0 });
    // The pages can be written and read afterwards.
    fill(m.base, P, 0x66);
    assert!(all_eq(m.base, P, 0x66));
}

#[test]
fn case_074_reset_range_rules() {
    let m = Mem::rw(G);
    va(
        "§2 reset past the end",
        m.at(G - P),
        2 * P,
        MEM_RESET,
        RW,
        fails(E_ADDR),
    );
    let small = Mem::rw(P);
    va(
        "§2 reset of free memory",
        small.at(P),
        P,
        MEM_RESET,
        RW,
        fails(E_ADDR),
    );
    va(
        "§2 reset past the end (1 page)",
        small.base,
        2 * P,
        MEM_RESET,
        RW,
        fails(E_ADDR),
    );
    let (a, _b) = pair(G, G, G, RC, RW);
    va(
        "§2 reset across two allocations",
        a.at(G - P),
        2 * P,
        MEM_RESET,
        RW,
        fails(E_ADDR),
    );
    // The protection is validated even though it is ignored.
    va(
        "§2 reset, protection 0",
        m.base,
        P,
        MEM_RESET,
        0,
        fails(E_PARAM),
    );
    va(
        "§2 reset, WRITECOPY",
        m.base,
        P,
        MEM_RESET,
        PAGE_WRITECOPY,
        fails(E_PARAM),
    );
    va("§2 reset, 0x12", m.base, P, MEM_RESET, 0x12, fails(E_PARAM));
    va(
        "§2 reset, NOCACHE|NOACCESS",
        m.base,
        P,
        MEM_RESET,
        NA | PAGE_NOCACHE,
        fails(E_PARAM),
    );
    // The protection does not matter for the state: still committed RW.
    vq_is!("§2 reset rules change nothing", m.base, { st: MEM_COMMIT, pr: RW, rs: G });
    // Unaligned: every touched page.
    assert_eq!(
        va("§2 reset unaligned", m.at(0x1FFF), 2, MEM_RESET, RW, OK),
        m.at(P)
    );
}

#[test]
fn case_077_reset_undo() {
    let m = Mem::new(G, RES, RW);
    va("case 77", m.base, 4 * P, COM, RW, OK);
    fill(m.base, 4 * P, 0x77);
    assert_eq!(
        va("case 77 (reset)", m.base, 4 * P, MEM_RESET, NA, OK),
        m.base
    );
    // MEM_RESET_UNDO cannot be combined with anything.
    for extra in [
        COM,
        RES,
        MEM_TOP_DOWN,
        MEM_RESET,
        MEM_WRITE_WATCH,
        MEM_LARGE_PAGES,
    ] {
        va(
            &format!("case 77 (RESET_UNDO|{extra:#x})"),
            m.base,
            4 * P,
            MEM_RESET_UNDO | extra,
            RW,
            fails(E_PARAM),
        );
    }
    va(
        "case 77 (NULL)",
        0,
        4 * P,
        MEM_RESET_UNDO,
        RW,
        fails(E_PARAM),
    );
    va(
        "case 77 (past the end)",
        m.at(G - P),
        2 * P,
        MEM_RESET_UNDO,
        RW,
        fails(E_ADDR),
    );
    let small = Mem::rw(P);
    va(
        "case 77 (free memory)",
        small.at(P),
        P,
        MEM_RESET_UNDO,
        RW,
        fails(E_ADDR),
    );
    // Success means every byte is intact; failure (999, ours) means some page reads zero.
    SetLastError(SENTINEL);
    let r = unsafe { VirtualAlloc(m.base as *const c_void, 4 * P, MEM_RESET_UNDO, RW) } as usize;
    let le = GetLastError();
    if r != 0 {
        assert_eq!(r, m.base, "case 77: returns the base");
        assert_eq!(le, SENTINEL, "case 77: success changed the last error");
        assert!(all_eq(m.base, 4 * P, 0x77), "case 77: success after a loss");
    } else {
        assert_eq!(le, ERROR_SWAPERROR, "case 77: the documented failure code");
        assert!(
            (0..4).any(|i| all_eq(m.at(i * P), P, 0)),
            "case 77: failed, but no page reads as zero"
        );
    }
    vq_is!("case 77 (state)", m.base, { st: MEM_COMMIT, pr: RW, rs: 4 * P });
}

#[test]
fn case_078_discardvirtualmemory() {
    let m = Mem::rw(2 * P);
    fill(m.base, 2 * P, 0x42);
    SetLastError(SENTINEL);
    let r = unsafe { DiscardVirtualMemory(m.base as *mut c_void, 2 * P) };
    assert_eq!(r, ERROR_SUCCESS, "case 78: returns ERROR_SUCCESS");
    assert_eq!(
        GetLastError(),
        SENTINEL,
        "case 78: success changed the last error"
    );
    vq_is!("case 78", m.base, { st: MEM_COMMIT, pr: RW, rs: 2 * P });
    let r = unsafe { DiscardVirtualMemory(m.at(G / 2) as *mut c_void, P) };
    assert_eq!(r, E_ADDR, "case 78: free memory → 487 as the return value");
    let r = unsafe { DiscardVirtualMemory(m.base as *mut c_void, 3 * P) };
    assert_eq!(r, E_ADDR, "case 78: past the end → 487");
    let r = unsafe { DiscardVirtualMemory(m.base as *mut c_void, 0) };
    assert_eq!(r, E_PARAM, "case 78: size 0 → 87");
}

// =============================================================================================
// G. VirtualQuery edge cases
// =============================================================================================

#[test]
fn case_079_free_memory() {
    // Right after a release.
    let q = retry(G, |_| {
        let m = Mem::new(2 * P, RC, MARK);
        let b = m.into_base();
        vf("case 79 (release)", b, 0, MEM_RELEASE, OK);
        let q = vq("case 79", b + 1);
        if q.st != MEM_FREE {
            assert!(
                !(q.ab == b && q.ap == MARK),
                "case 79: still allocated: {q:x?}"
            );
            return None; // another thread took it
        }
        Some((b, q))
    });
    let (b, q) = q;
    assert_eq!(
        (q.base, q.ab, q.ap, q.st, q.pr, q.ty),
        (b, 0, 0, MEM_FREE, NA, 0),
        "case 79: {q:x?}"
    );
    assert!(
        q.rs >= P && q.rs % P == 0,
        "case 79: RegionSize {:#x}",
        q.rs
    );
    // In the tail of a granule.
    let m = Mem::rw(P);
    let q = vq_is!("case 79 (granule tail)", m.at(P + 5), {
        base: m.at(P), ab: 0, ap: 0, st: MEM_FREE, pr: NA, ty: 0
    });
    assert!(q.rs >= P && q.rs % P == 0);
}

#[test]
fn case_082_region_size_rules() {
    let m = Mem::reserve(G);
    va("case 82", m.base, 4 * P, COM, RW, OK);
    vp("case 82", m.at(P), P, RO, OK);
    vq_is!("case 82 (run 1)", m.base, { rs: P, pr: RW });
    vq_is!("case 82 (run 2)", m.at(P), { rs: P, pr: RO });
    vq_is!("case 82 (run 3)", m.at(2 * P + 0x123), { base: m.at(2 * P), rs: 2 * P, pr: RW });
    vq_is!("case 82 (reserved)", m.at(4 * P), { rs: G - 4 * P, st: MEM_RESERVE, pr: 0 });
    vq_is!("case 82 (last page)", m.at(G - 1), { base: m.at(G - P), rs: P, st: MEM_RESERVE });
    // Never past the allocation's end, even into an identical neighbour.
    let (a, b) = pair(G, G, G, RC, RW);
    vq_is!("case 82 (two allocations)", a.base, { rs: G, ab: a.base });
    vq_is!("case 82 (two allocations)", a.at(G - P), { rs: P, ab: a.base });
    vq_is!("case 82 (second)", b.base, { rs: G, ab: b.base });
    let (c, d) = pair(P, G, G, RES, RW);
    vq_is!("case 82 (reserved)", c.base, { rs: P, st: MEM_RESERVE });
    // §5: free memory: RegionSize up to the next allocated page.
    vq_is!("§5 free region size", c.at(P), { rs: G - P, st: MEM_FREE, pr: NA, ab: 0 });
    vq_is!("§5 free region size (mid)", c.at(3 * P), { base: c.at(3 * P), rs: G - 3 * P, st: MEM_FREE });
    vq_is!("§5 next allocation", d.base, { ab: d.base, st: MEM_RESERVE });
}

#[test]
fn case_083_code_address() {
    let f = a_function_in_this_executable as *const () as usize;
    assert_eq!(a_function_in_this_executable(2), 6);
    let q = vq_is!("case 83 (code)", f, {
        base: f & !(P - 1), st: MEM_COMMIT, pr: PAGE_EXECUTE_READ, ty: MEM_IMAGE
    });
    assert!(
        q.ab <= q.base && q.ab != 0,
        "case 83: AllocationBase {:#x}",
        q.ab
    );
    assert!(
        q.base + q.rs > f,
        "case 83: the region contains the address"
    );
}

// =============================================================================================
// J. VirtualLock / VirtualUnlock
// =============================================================================================

#[test]
fn case_117_lock_then_unlock() {
    let m = Mem::rw(4 * P);
    wr(m.base, 1);
    vlock("case 117", m.base, 4 * P, OK);
    vunlock("case 117", m.base, 4 * P, OK);
    assert_eq!(rd(m.base), 1);
    // §6: unaligned ranges cover every touched page.
    vlock("§6 unaligned", m.at(0xFFF), 2, OK);
    vunlock("§6 unaligned (page 0)", m.base, P, OK);
    vunlock("§6 unaligned (page 1)", m.at(P), 1, OK);
    vunlock(
        "§6 unaligned (all unlocked)",
        m.at(P),
        1,
        fails(E_NOTLOCKED),
    );
}

/// §5: lock state and MEM_RESET state do not show: RegionSize runs on while State and Protect
/// stay the same.
#[test]
fn rule_5_lock_and_reset_state_do_not_show() {
    let mut e = Vec::new();
    let m = Mem::rw(4 * P);
    fill(m.base, 4 * P, 0x31);
    vlock("§5", m.base, P, OK);
    let q = vq("§5 lock not shown", m.base);
    if q.rs != 4 * P {
        e.push(format!("§5 lock not shown: VQ(base) after VirtualLock(base, P): RegionSize {:#x}, expected {:#x}", q.rs, 4 * P));
    }
    let q = vq("§5 lock not shown", m.at(P));
    if q.rs != 3 * P {
        e.push(format!(
            "§5 lock not shown: VQ(base+P): RegionSize {:#x}, expected {:#x}",
            q.rs,
            3 * P
        ));
    }
    vunlock("§5", m.base, P, OK);
    let n = Mem::rw(4 * P);
    fill(n.base, 4 * P, 0x32);
    va("§5", n.at(P), P, MEM_RESET, RW, OK);
    let q = vq("§5 reset not shown", n.base);
    if q.rs != 4 * P {
        e.push(format!("§5 reset not shown: VQ(base) after MEM_RESET(base+P, P): RegionSize {:#x}, expected {:#x}", q.rs, 4 * P));
    }
    no_errors(e);
}

#[test]
fn case_118_unlock_of_unlocked_pages() {
    let m = Mem::new(G, RES, RW);
    va("case 118", m.base, 2 * P, COM, RW, OK);
    vunlock("case 118 (never locked)", m.base, P, fails(E_NOTLOCKED));
    vlock("case 118", m.base, P, OK);
    vunlock(
        "case 118 (one page not locked)",
        m.base,
        2 * P,
        fails(E_NOTLOCKED),
    );
    // Nothing was unlocked by the failure.
    vunlock("case 118 (still locked)", m.base, P, OK);
    vunlock("case 118 (now unlocked)", m.base, P, fails(E_NOTLOCKED));
    // §6: reserved and free pages are never locked.
    vunlock("§6 unlock reserved", m.at(2 * P), P, fails(E_NOTLOCKED));
    let small = Mem::rw(P);
    vunlock("§6 unlock free", small.at(P), P, fails(E_NOTLOCKED));
    vunlock("§6 unlock free (NULL)", 0, P, fails(E_NOTLOCKED));
    vlock("§6", small.base, P, OK);
    vunlock(
        "§6 unlock locked + free",
        small.base,
        2 * P,
        fails(E_NOTLOCKED),
    );
    vunlock("§6 (still locked)", small.base, P, OK);
}

#[test]
fn case_119_lock_needs_committed_accessible_pages() {
    let m = Mem::reserve(G);
    vlock("case 119 (reserved)", m.base, P, fails(E_NOACCESS));
    va("case 119", m.base, P, COM, NA, OK);
    vlock("case 119 (NOACCESS)", m.base, P, fails(E_NOACCESS));
    vp("case 119", m.base, P, RW, OK);
    va("case 119", m.at(P), P, COM, RO, OK);
    vlock("case 119 (RW + RO)", m.base, 2 * P, OK);
    vunlock("case 119", m.base, 2 * P, OK);
    // Committed + reserved: fails, and nothing is locked.
    vlock(
        "case 119 (committed + reserved)",
        m.base,
        3 * P,
        fails(E_NOACCESS),
    );
    vunlock("case 119 (nothing locked)", m.base, P, fails(E_NOTLOCKED));
    // Free memory → 998.
    let small = Mem::rw(P);
    vlock("§6 lock free", small.at(P), P, fails(E_NOACCESS));
    vlock(
        "§6 lock committed + free",
        small.base,
        2 * P,
        fails(E_NOACCESS),
    );
    vunlock("§6 (nothing locked)", small.base, P, fails(E_NOTLOCKED));
    vlock("§6 lock NULL", 0, P, fails(E_NOACCESS));
    // Size 0 or above user space → 87.
    vlock("§6 size 0", small.base, 0, fails(E_PARAM));
    vlock("§6 above user space", 0x7FFF_FFFF_0000, P, fails(E_PARAM));
    vlock(
        "§6 across the limit",
        0x7FFF_FFFE_F000,
        0x2000,
        fails(E_PARAM),
    );
}

#[test]
fn case_120_no_lock_count() {
    let m = Mem::rw(2 * P);
    vlock("case 120 (1)", m.base, 2 * P, OK);
    vlock("case 120 (2)", m.base, 2 * P, OK);
    vlock("case 120 (3, part)", m.base, P, OK);
    vunlock("case 120", m.base, 2 * P, OK);
    vunlock(
        "case 120 (one unlock undid all)",
        m.base,
        P,
        fails(E_NOTLOCKED),
    );
}

#[test]
fn case_120_lock_quota() {
    // Only meaningful without CAP_IPC_LOCK (root ignores RLIMIT_MEMLOCK).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << 14) != 0 {
        // CAP_IPC_LOCK
        eprintln!("case 120 (quota): skipped, the process has CAP_IPC_LOCK");
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) },
        0
    );
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur > (1 << 30) {
        eprintln!("case 120 (quota): skipped, RLIMIT_MEMLOCK is unlimited or huge");
        return;
    }
    let size = round_up(lim.rlim_cur as usize + (1 << 20), G);
    let m = Mem::rw(size);
    vlock(
        "case 120 / §6 quota",
        m.base,
        size,
        fails(ERROR_WORKING_SET_QUOTA),
    );
    vunlock("§6 quota (nothing locked)", m.base, P, fails(E_NOTLOCKED));
}

#[test]
fn rule_6_lock_spanning_two_allocations() {
    let (a, b) = pair(G, G, G, RC, RW);
    vlock("§6 two allocations", a.at(G - P), 2 * P, OK);
    vunlock("§6 two allocations", a.at(G - P), 2 * P, OK);
    vlock("§6 two whole allocations", a.base, 2 * G, OK);
    vunlock("§6 (first)", a.base, G, OK);
    vunlock("§6 (second)", b.base, G, OK);
    // A hole between two allocations: free → 998, nothing locked.
    let (c, _d) = pair(P, G, G, RC, RW);
    vlock("§6 across a hole", c.base, G + P, fails(E_NOACCESS));
    vunlock(
        "§6 across a hole (nothing locked)",
        c.base,
        P,
        fails(E_NOTLOCKED),
    );
}

#[test]
fn rule_6_lock_foreign_memory() {
    let b = Box::new([1u8; 256]);
    let a = b.as_ptr() as usize;
    vlock("§6 heap", a, 256, OK);
    vunlock("§6 heap", a, 256, OK);
    let (_f, start) = foreign_anon(2);
    vlock("§6 anonymous mmap", start, 2 * P, OK);
    vunlock("§6 anonymous mmap", start, 2 * P, OK);
    vunlock(
        "§6 anonymous mmap (not locked)",
        start,
        P,
        fails(E_NOTLOCKED),
    );
    assert_eq!(b[255], 1);
}

// =============================================================================================
// K. PAGE_NOCACHE / PAGE_WRITECOMBINE
// =============================================================================================

#[test]
fn case_121_nocache_allocation() {
    let p = va("case 121", 0, 0x2000, COM, RW | PAGE_NOCACHE, OK);
    let _m = Mem { base: p };
    vq_is!("case 121", p, {
        base: p, ab: p, ap: 0x204, rs: 0x2000, st: MEM_COMMIT, pr: 0x204, ty: MEM_PRIVATE
    });
    // §4: the modifier belongs to the allocation.
    assert_eq!(
        vp("§4 NOCACHE", p, P, RO, OK),
        0x204,
        "§4: old of a NOCACHE page"
    );
    vq_is!("§4 NOCACHE after VP(READONLY)", p, { pr: 0x202, ap: 0x204, rs: P });
    vq_is!("§4 NOCACHE other page", p + P, { pr: 0x204 });
    assert_eq!(vp("§4 NOCACHE", p, P, RW, OK), 0x202);
    vq_is!("§4 NOCACHE after VP(READWRITE)", p, { pr: 0x204, rs: 0x2000 });
    // Asking for another modifier changes nothing about the modifiers.
    vp(
        "§4 NOCACHE + WRITECOMBINE request",
        p,
        P,
        RO | PAGE_WRITECOMBINE,
        OK,
    );
    vq_is!("§4 NOCACHE + WRITECOMBINE request", p, { pr: 0x202 });
    vp(
        "§4 NOCACHE + NOCACHE request",
        p,
        P,
        PAGE_EXECUTE_READ | PAGE_NOCACHE,
        OK,
    );
    vq_is!("§4 NOCACHE + NOCACHE request", p, { pr: 0x220 });
    // Decommit and recommit: reserved pages show 0; committed pages keep the allocation's modifier.
    vf("§4 NOCACHE decommit", p + P, P, MEM_DECOMMIT, OK);
    vq_is!("§4 NOCACHE reserved page", p + P, { pr: 0, st: MEM_RESERVE, ap: 0x204 });
}

#[test]
fn rule_4_writecombine_allocation() {
    let m = Mem::new(P, RC, RO | PAGE_WRITECOMBINE);
    vq_is!("§2 READONLY|WRITECOMBINE", m.base, { ap: 0x402, pr: 0x402 });
    assert_eq!(vp("§4 WRITECOMBINE", m.base, P, RW, OK), 0x402);
    vq_is!("§4 WRITECOMBINE after VP(RW)", m.base, { pr: 0x404, ap: 0x402 });
}

#[test]
fn rule_4_nocache_request_on_a_plain_allocation_is_ignored() {
    let m = Mem::rw(P);
    assert_eq!(
        vp("§4 plain + NOCACHE", m.base, P, RW | PAGE_NOCACHE, OK),
        RW
    );
    vq_is!("§4 plain + NOCACHE", m.base, { pr: RW, ap: RW });
    assert_eq!(
        vp(
            "§4 plain + WRITECOMBINE",
            m.base,
            P,
            RO | PAGE_WRITECOMBINE,
            OK
        ),
        RW
    );
    vq_is!("§4 plain + WRITECOMBINE", m.base, { pr: RO, ap: RW });
    assert_eq!(vp("§4 plain", m.base, P, RW, OK), RO);
}

// =============================================================================================
// §1 The address space
// =============================================================================================

#[test]
fn rule_1_getsysteminfo() {
    let mut si = SYSTEM_INFO::default();
    unsafe { GetSystemInfo(&mut si) };
    assert_eq!(si.dwPageSize, 4096, "§1 page size");
    assert_eq!(si.dwAllocationGranularity, 65536, "§1 granularity");
    assert_eq!(
        si.lpMinimumApplicationAddress as usize, 0x10000,
        "case 145: minimum"
    );
    assert_eq!(
        si.lpMaximumApplicationAddress as usize, MAX_ADDR,
        "case 145: maximum"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        si.dwNumberOfProcessors as usize, cpus,
        "§1 processors from the host"
    );
    assert_eq!(
        si.dwActiveProcessorMask.count_ones() as usize,
        cpus.min(usize::BITS as usize)
    );
    let arch = unsafe { si.Anonymous.Anonymous.wProcessorArchitecture };
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(arch, PROCESSOR_ARCHITECTURE_AMD64, "§1 architecture");
        assert_eq!(si.dwProcessorType, PROCESSOR_AMD_X8664, "§1 processor type");
    }
    #[cfg(target_arch = "aarch64")]
    assert_eq!(arch, PROCESSOR_ARCHITECTURE_ARM64, "§1 architecture");
    let _ = arch;
    assert_eq!(MBI_LEN, 48, "§5 sizeof(MEMORY_BASIC_INFORMATION)");
}

#[test]
fn rule_1_granule_rule() {
    let m = Mem::new(P, RES, RW);
    for (addr, size) in [
        (m.at(P), P),
        (m.at(0x8000), 0x1000),
        (m.at(G - P), 0x2000),
        (m.at(G - 1), 1),
    ] {
        va(
            &format!("§1 granule rule ({addr:#x}, {size:#x})"),
            addr,
            size,
            RES,
            RW,
            fails(E_ADDR),
        );
        va(
            &format!("§1 granule rule rc ({addr:#x}, {size:#x})"),
            addr,
            size,
            RC,
            RW,
            fails(E_ADDR),
        );
    }
    vq_is!("§1 granule rule (unchanged)", m.base, { rs: P, st: MEM_RESERVE, ap: RW });
}

#[test]
fn rule_2_reserve_over_allocated_memory() {
    let m = Mem::reserve(G);
    va(
        "§2 reserve at an allocation's base",
        m.base,
        P,
        RES,
        RW,
        fails(E_ADDR),
    );
    va(
        "§2 reserve inside an allocation",
        m.at(0x8000),
        P,
        RC,
        RW,
        fails(E_ADDR),
    );
    // A range that starts free and runs into an allocation.
    let (h, b) = retry(2 * G, |h| try_at(h + G, G, RES, RW).map(|b| (h, b)));
    va(
        "§2 reserve running into an allocation",
        h,
        2 * G,
        RES,
        RW,
        fails(E_ADDR),
    );
    va(
        "§2 reserve running into an allocation (rc)",
        h + 0x1000,
        G + 0x1000,
        RC,
        RW,
        fails(E_ADDR),
    );
    vq_is!("§2 (unchanged)", b.base, { ab: b.base, rs: G, st: MEM_RESERVE });
}

#[test]
fn rule_2_fresh_commits_read_zero_and_keep_writes() {
    let m = Mem::rw(4 * P);
    assert!(all_eq(m.base, 4 * P, 0), "§2 fresh commit reads zero");
    fill(m.base, 4 * P, 0xA5);
    assert!(all_eq(m.base, 4 * P, 0xA5));
    let r = Mem::reserve(G);
    va("§2 commit", r.at(3 * P), 2 * P, COM, RW, OK);
    assert!(
        all_eq(r.at(3 * P), 2 * P, 0),
        "§2 commit of reserved pages reads zero"
    );
}

#[test]
fn rule_2_recommit_keeps_contents_and_sets_protection() {
    let m = Mem::reserve(G);
    va("§2", m.base, 3 * P, COM, RW, OK);
    fill(m.base, 3 * P, 0xAB);
    let r = va("§2 recommit READONLY", m.base, 2 * P, COM, RO, OK);
    assert_eq!(r, m.base);
    assert!(
        all_eq(m.base, 3 * P, 0xAB),
        "§2 committing committed pages keeps their contents"
    );
    vq_is!("§2 recommit READONLY", m.base, { rs: 2 * P, pr: RO, st: MEM_COMMIT });
    vq_is!("§2 recommit READONLY (third page)", m.at(2 * P), { rs: P, pr: RW });
    // A commit over committed and reserved pages.
    va(
        "§2 commit committed + reserved",
        m.at(2 * P),
        2 * P,
        COM,
        RW,
        OK,
    );
    assert!(all_eq(m.at(2 * P), P, 0xAB), "§2 contents kept");
    assert!(all_eq(m.at(3 * P), P, 0), "§2 new page zero");
    // Decommit then recommit reads zero (case 146).
    vf("§3 decommit", m.at(2 * P), 2 * P, MEM_DECOMMIT, OK);
    vq_is!("§3 decommitted", m.at(2 * P), { st: MEM_RESERVE, pr: 0, rs: G - 2 * P });
    va("§2 recommit", m.at(2 * P), 2 * P, COM, RW, OK);
    assert!(
        all_eq(m.at(2 * P), 2 * P, 0),
        "case 146 / §3: recommitted pages read zero"
    );
    assert!(
        all_eq(m.base, 2 * P, 0xAB),
        "§3: the other pages keep their contents"
    );
}

#[test]
fn rule_2_out_of_address_space() {
    // A size that fits user space but no free range: ERROR_NOT_ENOUGH_MEMORY (§11).
    va(
        "§11 no room",
        0,
        0x7000_0000_0000,
        RES,
        NA,
        fails(ERROR_NOT_ENOUGH_MEMORY),
    );
    // A NULL-address request larger than user space → 87 (README [ours]).
    va(
        "§2 larger than user space",
        0,
        0x7FFF_FFFF_0000,
        RES,
        NA,
        fails(E_PARAM),
    );
    va(
        "§2 size wraps when rounded",
        0,
        usize::MAX,
        RES,
        NA,
        fails(E_PARAM),
    );
}

/// §11: a commit the kernel's commit accounting refuses → ERROR_COMMITMENT_LIMIT (1455), and
/// nothing changes. Only meaningful when the kernel does account (vm.overcommit_memory != 1).
#[test]
fn rule_11_commit_limit() {
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if mode.trim() == "1" {
        eprintln!("§11 commit limit: skipped, vm.overcommit_memory = 1 never refuses");
        return;
    }
    const HUGE: usize = 16 << 40; // 16 TiB: more than any RAM + swap here
    va(
        "§11 reserve|commit beyond the commit limit",
        0,
        HUGE,
        RC,
        RW,
        fails(ERROR_COMMITMENT_LIMIT),
    );
    let m = Mem::reserve(HUGE);
    va(
        "§11 commit beyond the commit limit",
        m.base,
        HUGE,
        COM,
        RW,
        fails(ERROR_COMMITMENT_LIMIT),
    );
    vq_is!("§11 nothing changed", m.base, { st: MEM_RESERVE, rs: HUGE, pr: 0 });
    // A small commit works afterwards.
    va(
        "§11 small commit afterwards",
        m.at(HUGE / 2),
        4 * P,
        COM,
        RW,
        OK,
    );
    fill(m.at(HUGE / 2), 4 * P, 3);
    vq_is!("§11 small commit afterwards", m.at(HUGE / 2), { st: MEM_COMMIT, rs: 4 * P, pr: RW });
}

#[test]
fn rule_2_large_pages_size_rules() {
    let lp = GetLargePageMinimum();
    if lp == 0 {
        return;
    }
    let mut e = Vec::new();
    let lpr = RC | MEM_LARGE_PAGES;
    // [ours] size and address multiples of GetLargePageMinimum(), else 87, checked before the
    // privilege/support answer.
    va_soft(
        &mut e,
        "§2 large pages, size P",
        0,
        P,
        lpr,
        RW,
        fails(E_PARAM),
    );
    va_soft(
        &mut e,
        "§2 large pages, size lp+P",
        0,
        lp + P,
        lpr,
        RW,
        fails(E_PARAM),
    );
    va_soft(
        &mut e,
        "§2 large pages, size lp/2",
        0,
        lp / 2,
        lpr,
        RW,
        fails(E_PARAM),
    );
    let a = round_up(hole(2 * lp), lp) + G;
    va_soft(
        &mut e,
        "§2 large pages, unaligned address",
        a,
        lp,
        lpr,
        RW,
        fails(E_PARAM),
    );
    // The flag and protection checks come first.
    va_soft(
        &mut e,
        "§2 large pages, WRITECOPY",
        0,
        lp,
        lpr,
        PAGE_WRITECOPY,
        fails(E_PARAM),
    );
    va_soft(
        &mut e,
        "§2 large pages, RESERVE only",
        0,
        lp,
        RES | MEM_LARGE_PAGES,
        RW,
        fails(E_PARAM),
    );
    // A valid request succeeds or fails for want of large pages: tests/large_pages.rs.
    no_errors(e);
}

/// Whether touching `addr` (a read, or a write when `write`) kills a forked child with SIGSEGV
/// or SIGBUS. The child only touches the byte and exits (async-signal-safe); its write, to
/// private memory, never reaches this process.
fn faults(addr: usize, write: bool) -> bool {
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            if write {
                std::ptr::write_volatile(addr as *mut u8, 1);
            } else {
                std::ptr::read_volatile(addr as *const u8);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        assert_eq!(libc::WEXITSTATUS(status), 0);
        return false;
    }
    assert!(libc::WIFSIGNALED(status), "child status {status:#x}");
    let sig = libc::WTERMSIG(status);
    assert!(
        sig == libc::SIGSEGV || sig == libc::SIGBUS,
        "child killed by signal {sig}"
    );
    true
}

#[track_caller]
fn access_is(ctx: &str, addr: usize, read: bool, write: bool) {
    assert_eq!(
        !faults(addr, false),
        read,
        "{ctx}: read access at {addr:#x}"
    );
    assert_eq!(
        !faults(addr, true),
        write,
        "{ctx}: write access at {addr:#x}"
    );
}

/// §2: reserved pages cannot be touched; committed pages behave as their protection says
/// (checked in forked children).
#[test]
fn rule_2_page_access_follows_state_and_protection() {
    let m = Mem::reserve(G);
    access_is("§2 reserved page", m.base, false, false);
    va("§2", m.base, 6 * P, COM, RW, OK);
    access_is("§2 committed RW", m.at(P), true, true);
    vp("§4", m.at(P), P, RO, OK);
    access_is("§4 READONLY", m.at(P), true, false);
    vp("§4", m.at(2 * P), P, NA, OK);
    access_is("§4 NOACCESS", m.at(2 * P), false, false);
    vp("§4", m.at(3 * P), P, PAGE_EXECUTE_READ, OK);
    access_is("§4 EXECUTE_READ", m.at(3 * P), true, false);
    vp("§4", m.at(4 * P), P, PAGE_EXECUTE_READWRITE, OK);
    access_is("§4 EXECUTE_READWRITE", m.at(4 * P), true, true);
    vp("§4 back to RW", m.at(P), P, RW, OK);
    access_is("§4 back to RW", m.at(P), true, true);
    vf("§3", m.at(5 * P), P, MEM_DECOMMIT, OK);
    access_is("§3 decommitted page", m.at(5 * P), false, false);
    access_is(
        "§2 reserved page after the commits",
        m.at(6 * P),
        false,
        false,
    );
    va("§2 commit NOACCESS", m.at(7 * P), P, COM, NA, OK);
    access_is("§2 committed NOACCESS", m.at(7 * P), false, false);
    va(
        "§2 commit READONLY over NOACCESS",
        m.at(7 * P),
        P,
        COM,
        RO,
        OK,
    );
    access_is("§2 recommitted READONLY", m.at(7 * P), true, false);
    va("§2 reset", m.base, P, MEM_RESET, NA, OK);
    access_is("§2 after MEM_RESET", m.base, true, true);
    let n = Mem::new(P, RC, RO | PAGE_NOCACHE);
    access_is("§2 READONLY|NOCACHE", n.base, true, false);
}

// =============================================================================================
// §1 Memory virtmem did not allocate
// =============================================================================================

/// Checks the §1 [ours] rules on foreign memory at `addr`: reserving over it, committing it and
/// freeing it fail with 487 and leave its VirtualQuery and contents unchanged.
#[track_caller]
fn foreign_is_untouchable(what: &str, addr: usize) {
    let page = addr & !(P - 1);
    let before = vq(what, addr);
    let byte = rd(addr);
    va(
        &format!("{what}: reserve over it"),
        page,
        P,
        RES,
        RW,
        fails(E_ADDR),
    );
    va(
        &format!("{what}: reserve|commit over it"),
        page,
        P,
        RC,
        RW,
        fails(E_ADDR),
    );
    va(
        &format!("{what}: commit it"),
        page,
        P,
        COM,
        RW,
        fails(E_ADDR),
    );
    va(
        &format!("{what}: commit it READONLY"),
        page,
        P,
        COM,
        RO,
        fails(E_ADDR),
    );
    va(
        &format!("{what}: reset it"),
        page,
        P,
        MEM_RESET,
        RW,
        fails(E_ADDR),
    );
    vf(
        &format!("{what}: release it"),
        page,
        0,
        MEM_RELEASE,
        fails(E_ADDR),
    );
    vf(
        &format!("{what}: release at its allocation base"),
        before.ab,
        0,
        MEM_RELEASE,
        fails(E_ADDR),
    );
    vf(
        &format!("{what}: decommit it"),
        page,
        P,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vf(
        &format!("{what}: decommit it (size 0)"),
        page,
        0,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    let after = vq(what, addr);
    assert_eq!(
        (after.st, after.pr, after.ty, after.ab),
        (before.st, before.pr, before.ty, before.ab),
        "{what}: changed"
    );
    assert_eq!(rd(addr), byte, "{what}: contents changed");
}

#[test]
fn rule_1_foreign_stack() {
    let x = std::hint::black_box([0x5Au8; 64]);
    let a = x.as_ptr() as usize;
    let q = vq_is!("§1 stack", a, { base: a & !(P - 1), st: MEM_COMMIT, pr: RW, ty: MEM_PRIVATE });
    assert!(
        q.ab != 0 && q.ab <= q.base && q.base + q.rs > a,
        "§1 stack: {q:x?}"
    );
    foreign_is_untouchable("§1 stack", a);
    assert_eq!(x[0], 0x5A);
}

#[test]
fn rule_1_foreign_code() {
    let f = a_function_in_this_executable as *const () as usize;
    let q = vq_is!("§1 code", f, { st: MEM_COMMIT, pr: PAGE_EXECUTE_READ, ty: MEM_IMAGE });
    assert!(q.ab != 0 && q.ab <= q.base);
    foreign_is_untouchable("§1 code", f);
    assert_eq!(a_function_in_this_executable(5), 15);
}

#[test]
fn rule_1_foreign_heap() {
    let b = Box::new([0x3Cu8; 100]);
    let a = b.as_ptr() as usize;
    let q = vq_is!("§1 heap", a, { base: a & !(P - 1), st: MEM_COMMIT, pr: RW, ty: MEM_PRIVATE });
    assert!(q.ab != 0 && q.ab <= q.base && q.base + q.rs > a);
    foreign_is_untouchable("§1 heap", a);
    assert!(b.iter().all(|&v| v == 0x3C));
}

#[test]
fn rule_1_foreign_anonymous_mmap() {
    let (_f, start) = foreign_anon(3);
    fill(start, 3 * P, 0x11);
    vq_is!("§1 anonymous mmap", start + P + 8, {
        base: start + P, ab: start, rs: 2 * P, st: MEM_COMMIT, pr: RW, ty: MEM_PRIVATE
    });
    foreign_is_untouchable("§1 anonymous mmap", start + P);
    vf(
        "§1 anonymous mmap: release at its start",
        start,
        0,
        MEM_RELEASE,
        fails(E_ADDR),
    );
    // VirtualProtect works on it and reports the old protection.
    assert_eq!(
        vp("§1 VP foreign", start + P, P, RO, OK),
        RW,
        "§1 VP foreign: old"
    );
    vq_is!("§1 VP foreign", start + P, { pr: RO, st: MEM_COMMIT, ty: MEM_PRIVATE, rs: P });
    vq_is!("§1 VP foreign (first page)", start, { pr: RW, rs: P });
    assert_eq!(rd(start + P), 0x11);
    assert_eq!(
        vp("§1 VP foreign back", start + P, P, RW, OK),
        RO,
        "§1 VP foreign: old"
    );
    wr(start + P, 0x22);
    assert_eq!(
        vp(
            "§1 VP foreign, two pages",
            start,
            2 * P,
            PAGE_EXECUTE_READ,
            OK
        ),
        RW
    );
    vq_is!("§1 VP foreign, two pages", start, { pr: PAGE_EXECUTE_READ, rs: 2 * P });
    vp("§1 VP foreign, NOACCESS", start, 3 * P, NA, OK);
    vq_is!("§1 VP foreign, NOACCESS", start, { pr: NA, st: MEM_COMMIT });
    vp("§1 VP foreign, back", start, 3 * P, RW, OK);
    assert_eq!(rd(start + P), 0x22);
    // Protection rules and the NULL pointer still apply.
    vp(
        "§1 VP foreign, WRITECOPY",
        start,
        P,
        PAGE_WRITECOPY,
        fails(E_PARAM),
    );
    check(
        "§1 VP foreign, NULL old",
        FALSE,
        fails(E_NOACCESS),
        || unsafe { VirtualProtect(start as *const c_void, P, RO, null_mut()) },
    );
    // The PROT_NONE page next to it is foreign committed memory with PAGE_NOACCESS.
    vq_is!("§1 guard page", start - P, { st: MEM_COMMIT, pr: NA, ty: MEM_PRIVATE });
}

#[test]
fn rule_1_foreign_file_mapping() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "virtmem-conformance-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("temp file");
    file.write_all(&[0x99u8; 2 * 4096]).unwrap();
    let p = unsafe {
        libc::mmap(
            null_mut(),
            2 * P,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let _m = Foreign {
        base: p as usize,
        len: 2 * P,
    };
    drop(file);
    let _ = std::fs::remove_file(&path);
    let a = p as usize;
    vq_is!("§1 file mapping", a + 10, { base: a, ab: a, st: MEM_COMMIT, pr: RO, ty: MEM_MAPPED });
    foreign_is_untouchable("§1 file mapping", a);
    assert_eq!(rd(a + P), 0x99);
}

// =============================================================================================
// §2 rules not covered by a case
// =============================================================================================

#[test]
fn rule_2_ex_functions_with_the_current_process() {
    let h = GetCurrentProcess();
    assert_eq!(
        h as isize, -1,
        "GetCurrentProcess() is the pseudo-handle -1"
    );
    let p = check("§2 VirtualAllocEx(current)", null_mut(), OK, || unsafe {
        VirtualAllocEx(h, null(), 0xFFFC, RES, RW)
    }) as usize;
    check(
        "§2 VirtualAllocEx(current) commit",
        null_mut(),
        OK,
        || unsafe { VirtualAllocEx(h, p as *const c_void, P, COM, RW) },
    );
    let mut mbi = MEMORY_BASIC_INFORMATION::default();
    check("§5 VirtualQueryEx(current)", 0usize, OK, || unsafe {
        VirtualQueryEx(h, p as *const c_void, &mut mbi, MBI_LEN)
    });
    assert_eq!(
        to_q(&mbi),
        Q {
            base: p,
            ab: p,
            ap: RW,
            rs: P,
            st: MEM_COMMIT,
            pr: RW,
            ty: MEM_PRIVATE
        }
    );
    let mut old = SENTINEL;
    check("§4 VirtualProtectEx(current)", FALSE, OK, || unsafe {
        VirtualProtectEx(h, p as *const c_void, P, RO, &mut old)
    });
    assert_eq!(old, RW);
    check(
        "§4 VirtualProtectEx(current), NULL old",
        FALSE,
        fails(E_NOACCESS),
        || unsafe { VirtualProtectEx(h, p as *const c_void, P, RO, null_mut()) },
    );
    check(
        "§2 VirtualAllocEx(current), size 0",
        null_mut(),
        fails(E_PARAM),
        || unsafe { VirtualAllocEx(h, null(), 0, RES, RW) },
    );
    check(
        "§3 VirtualFreeEx(current), not at base",
        FALSE,
        fails(E_ADDR),
        || unsafe { VirtualFreeEx(h, (p + P) as *mut c_void, 0, MEM_RELEASE) },
    );
    check("§3 VirtualFreeEx(current)", FALSE, OK, || unsafe {
        VirtualFreeEx(h, p as *mut c_void, 0, MEM_RELEASE)
    });
}

// =============================================================================================
// §3 VirtualFree rules
// =============================================================================================

#[test]
fn rule_3_release_rounds_the_address_down_to_a_page() {
    let m = Mem::new(G, RES, MARK);
    va("§3", m.base, P, COM, RW, OK);
    let b = m.into_base();
    vf("§3 release at base+1", b + 1, 0, MEM_RELEASE, OK);
    assert_released("§3 release at base+1", b);
    let m = Mem::new(G, RC, MARK);
    let b = m.into_base();
    vf("§3 release at base+0xFFF", b + 0xFFF, 0, MEM_RELEASE, OK);
    assert_released("§3 release at base+0xFFF", b);
}

#[test]
fn rule_3_release_frees_committed_and_reserved_pages() {
    let m = Mem::new(4 * G, RES, MARK);
    va("§3", m.at(G), 3 * P, COM, RW, OK);
    let b = m.into_base();
    vf("§3 release", b, 0, MEM_RELEASE, OK);
    for off in [0, G, G + P, 3 * G] {
        assert_released(&format!("§3 release (+{off:#x})"), b + off);
    }
}

#[test]
fn rule_3_address_limits() {
    vf(
        "§3 above user space",
        0x7FFF_FFFF_0000,
        0,
        MEM_RELEASE,
        fails(E_PARAM),
    );
    vf(
        "§3 far above",
        0x8000_0000_0000,
        0,
        MEM_RELEASE,
        fails(E_PARAM),
    );
    vf(
        "§3 above, decommit",
        0x7FFF_FFFF_0000,
        P,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vf(
        "§3 above, decommit size 0",
        usize::MAX & !0xFFF,
        0,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vf(
        "§3 range beyond the limit",
        0x7FFF_FFFE_F000,
        0x2000,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    let m = Mem::rw(P);
    vf(
        "§3 range wrapping",
        m.base,
        usize::MAX - P,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vq_is!("§3 (unchanged)", m.base, { st: MEM_COMMIT });
    // The top granule below the limit is free memory inside user space: 487.
    vf("§3 top granule", TOP_GRANULE, 0, MEM_RELEASE, fails(E_ADDR));
    vf(
        "§3 last page",
        MAX_ADDR & !0xFFF,
        P,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
}

#[test]
fn rule_3_decommit_with_size_0() {
    let m = Mem::new(G, RES, RW);
    va("§3", m.base, 4 * P, COM, RW, OK);
    fill(m.base, 4 * P, 1);
    vf(
        "§3 decommit size 0 not at base",
        m.at(P),
        0,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vf(
        "§3 decommit size 0 at the end",
        m.at(G - P),
        0,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vq_is!("§3 (unchanged)", m.base, { st: MEM_COMMIT, rs: 4 * P });
    vf(
        "§3 decommit size 0 at base+0x10 (rounded to base)",
        m.at(0x10),
        0,
        MEM_DECOMMIT,
        OK,
    );
    vq_is!("§3 decommit all", m.base, { st: MEM_RESERVE, rs: G, pr: 0, ab: m.base, ap: RW });
    va("§3 recommit", m.base, 4 * P, COM, RW, OK);
    assert!(
        all_eq(m.base, 4 * P, 0),
        "§3 decommitted pages lost their contents"
    );
    vf("§3 decommit size 0 at base", m.base, 0, MEM_DECOMMIT, OK);
    vq_is!("§3 decommit all again", m.base, { st: MEM_RESERVE, rs: G });
    // Decommitting an all-reserved allocation is fine, and it stays allocated.
    vf(
        "§3 decommit all of a reserved allocation",
        m.base,
        0,
        MEM_DECOMMIT,
        OK,
    );
    vq_is!("§3 still allocated", m.base, { st: MEM_RESERVE, ab: m.base });
    // Size 0 on free memory.
    let small = Mem::rw(P);
    vf(
        "§3 decommit size 0 on free memory",
        small.at(P),
        0,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
}

#[test]
fn rule_3_decommit_first_page_rules() {
    // First page free → 487, even when the range reaches into an allocation.
    let (a, b) = pair(P, G, G, RC, RW);
    vf(
        "§3 first page free",
        a.at(P),
        P,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vf(
        "§3 first page free, into an allocation",
        b.at(0) - P,
        2 * P,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vf(
        "§3 first page free, over an allocation",
        a.at(P),
        2 * G,
        MEM_DECOMMIT,
        fails(E_ADDR),
    );
    vq_is!("§3 (b unchanged)", b.base, { st: MEM_COMMIT, rs: G });
    // First page ours, range leaving the allocation → 87.
    vf(
        "§3 leaving into free memory",
        a.base,
        2 * P,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vf(
        "§3 leaving into another allocation",
        a.base,
        G + P,
        MEM_DECOMMIT,
        fails(E_PARAM),
    );
    vq_is!("§3 (a unchanged)", a.base, { st: MEM_COMMIT, rs: P });
    // Decommitting reserved pages is not an error.
    let r = Mem::reserve(G);
    vf(
        "§3 decommit reserved pages",
        r.at(P),
        3 * P,
        MEM_DECOMMIT,
        OK,
    );
    vf(
        "§3 decommit the whole reservation",
        r.base,
        G,
        MEM_DECOMMIT,
        OK,
    );
    vq_is!("§3 still reserved", r.base, { st: MEM_RESERVE, rs: G });
    // Mixed committed/reserved range.
    va("§3", r.at(2 * P), P, COM, RW, OK);
    vf("§3 decommit mixed", r.base, 4 * P, MEM_DECOMMIT, OK);
    vq_is!("§3 mixed", r.base, { st: MEM_RESERVE, rs: G });
}

// =============================================================================================
// §4 VirtualProtect rules
// =============================================================================================

#[test]
fn rule_4_check_order() {
    let m = Mem::reserve(G);
    va("§4", m.base, P, COM, RW, OK);
    // Bad protection first (87), even with a NULL pointer on reserved pages.
    check(
        "§4 order: protection first",
        FALSE,
        fails(E_PARAM),
        || unsafe { VirtualProtect(m.at(P) as *const c_void, P, 0, null_mut()) },
    );
    check(
        "§4 order: protection before free memory",
        FALSE,
        fails(E_PARAM),
        || unsafe { VirtualProtect(0x1000 as *const c_void, P, PAGE_WRITECOPY, null_mut()) },
    );
    // Then the NULL pointer (998) before the pages (487).
    check(
        "§4 order: NULL old before the pages",
        FALSE,
        fails(E_NOACCESS),
        || unsafe { VirtualProtect(m.at(P) as *const c_void, P, RW, null_mut()) },
    );
    check(
        "§4 order: NULL old on free memory",
        FALSE,
        fails(E_NOACCESS),
        || unsafe { VirtualProtect(0x1000 as *const c_void, P, RW, null_mut()) },
    );
    // NULL old on good pages: 998 and nothing changes.
    check("§4 NULL old", FALSE, fails(E_NOACCESS), || unsafe {
        VirtualProtect(m.base as *const c_void, P, RO, null_mut())
    });
    vq_is!("§4 NULL old changes nothing", m.base, { pr: RW });
    // Then the pages.
    vp("§4 order: pages", m.at(P), P, RW, fails(E_ADDR));
}

#[test]
fn rule_4_range_rules() {
    let m = Mem::reserve(G);
    va("§4", m.base, 2 * P, COM, RW, OK);
    vp("§4 size 0", m.base, 0, RO, fails(E_PARAM));
    vp("§4 committed + reserved", m.base, 3 * P, RO, fails(E_ADDR));
    vp("§4 past the end", m.at(G - P), 2 * P, RO, fails(E_ADDR));
    vq_is!("§4 all or nothing", m.base, { pr: RW, rs: 2 * P });
    vp(
        "§4 above user space",
        0x7FFF_FFFF_0000,
        P,
        RO,
        fails(E_PARAM),
    );
    vp("§4 far above", 0x8000_0000_0000, P, RO, fails(E_PARAM));
    vp(
        "§4 across the limit",
        0x7FFF_FFFE_F000,
        0x2000,
        RO,
        fails(E_PARAM),
    );
    vp("§4 wrapping", m.base, usize::MAX - P, RO, fails(E_PARAM));
    vp("§4 below 0x10000", 0xF000, P, RO, fails(E_ADDR));
    vp("§4 top granule (free)", TOP_GRANULE, P, RO, fails(E_ADDR));
    // Free memory next to an allocation.
    let small = Mem::rw(P);
    vp("§4 free", small.at(P), P, RO, fails(E_ADDR));
    vp("§4 committed + free", small.base, 2 * P, RO, fails(E_ADDR));
    vq_is!("§4 (unchanged)", small.base, { pr: RW });
    // Two allocations.
    let (a, b) = pair(G, G, G, RC, RW);
    vp("§4 two allocations", a.at(G - P), 2 * P, RO, fails(E_ADDR));
    vq_is!("§4 (a unchanged)", a.at(G - P), { pr: RW });
    vq_is!("§4 (b unchanged)", b.base, { pr: RW, rs: G });
}

#[test]
fn rule_4_old_protection_is_the_first_pages() {
    let m = Mem::rw(4 * P);
    vp("§4", m.at(P), P, RO, OK);
    vp("§4", m.at(2 * P), P, PAGE_EXECUTE_READ, OK);
    assert_eq!(vp("§4 mixed (first RW)", m.base, 4 * P, NA, OK), RW);
    vq_is!("§4 mixed", m.base, { pr: NA, rs: 4 * P });
    vp("§4", m.at(P), P, PAGE_EXECUTE, OK);
    assert_eq!(
        vp("§4 mixed (first EXECUTE)", m.at(P), 3 * P, RW, OK),
        PAGE_EXECUTE
    );
    assert_eq!(vp("§4 (first NOACCESS)", m.base, 2 * P, RO, OK), NA);
    // Same protection again: still reports it.
    assert_eq!(vp("§4 same again", m.base, 2 * P, RO, OK), RO);
}

#[test]
fn rule_4_targets_flags_with_execute() {
    let m = Mem::rw(P);
    vp(
        "§2 TARGETS_NO_UPDATE with EXECUTE_READ",
        m.base,
        P,
        PAGE_EXECUTE_READ | PAGE_TARGETS_NO_UPDATE,
        OK,
    );
    vq_is!("§2 TARGETS_NO_UPDATE", m.base, { st: MEM_COMMIT });
}

// =============================================================================================
// §5 VirtualQuery rules
// =============================================================================================

#[test]
fn rule_5_lengths_and_limits() {
    let m = Mem::rw(P);
    let mut buf = [MEMORY_BASIC_INFORMATION::default(); 2];
    for len in [0usize, 1, 28, MBI_LEN - 1] {
        check(
            &format!("§5 dwLength {len}"),
            0usize,
            fails(E_LEN),
            || unsafe { VirtualQuery(m.base as *const c_void, buf.as_mut_ptr(), len) },
        );
    }
    let n = check("§5 dwLength larger", 0usize, OK, || unsafe {
        VirtualQuery(m.base as *const c_void, buf.as_mut_ptr(), 2 * MBI_LEN)
    });
    assert_eq!(n, MBI_LEN, "§5 returns the bytes written");
    for addr in [MAX_ADDR + 1, 0x8000_0000_0000, usize::MAX] {
        check(
            &format!("§5 above the maximum ({addr:#x})"),
            0usize,
            fails(E_PARAM),
            || unsafe { VirtualQuery(addr as *const c_void, buf.as_mut_ptr(), MBI_LEN) },
        );
    }
    // The maximum itself can be queried (case 80), and the region stops at the limit.
    let q = vq_is!("§5 the maximum", MAX_ADDR, { base: MAX_ADDR & !(P - 1) });
    assert!(
        q.base + q.rs <= MAX_ADDR + 1,
        "§5 region past the limit: {q:x?}"
    );
    let q = vq_is!("§5 top granule", TOP_GRANULE, { base: TOP_GRANULE });
    assert!(q.base + q.rs <= MAX_ADDR + 1);
}

#[test]
fn rule_5_low_addresses_are_free() {
    for addr in [0usize, 1, 0x1234, 0xFFFF] {
        let q = vq_is!(format!("§5 low address {addr:#x}"), addr, {
            base: addr & !(P - 1), ab: 0, ap: 0, st: MEM_FREE, pr: NA, ty: 0
        });
        assert!(q.base + q.rs >= 0x10000, "§5 low region {q:x?}");
    }
}

#[test]
fn rule_5_fields_inside_an_allocation() {
    let m = Mem::new(G, RES, PAGE_EXECUTE_READWRITE);
    va("§5", m.at(2 * P), P, COM, RO, OK);
    vq_is!("§5 base rounding", m.at(0x1234), {
        base: m.at(P), ab: m.base, ap: PAGE_EXECUTE_READWRITE, rs: P, st: MEM_RESERVE, pr: 0,
        ty: MEM_PRIVATE
    });
    vq_is!("§5 committed", m.at(2 * P + 0xFFF), {
        base: m.at(2 * P), ab: m.base, ap: PAGE_EXECUTE_READWRITE, rs: P, st: MEM_COMMIT, pr: RO,
        ty: MEM_PRIVATE
    });
    vq_is!("§5 rest", m.at(3 * P), { rs: G - 3 * P, st: MEM_RESERVE, pr: 0 });
}

// =============================================================================================
// §12 Other calls
// =============================================================================================

#[test]
fn rule_12_getlargepageminimum() {
    let lp = GetLargePageMinimum();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if meminfo.contains("Hugepagesize:") {
        assert!(
            lp.is_power_of_two() && lp >= G,
            "§12 GetLargePageMinimum = {lp:#x}"
        );
        #[cfg(target_arch = "x86_64")]
        if meminfo.contains("Hugepagesize:       2048 kB") {
            assert_eq!(lp, 0x20_0000, "§12 2 MiB on x86-64");
        }
    } else {
        assert_eq!(lp, 0, "§12 no large pages");
    }
}

#[test]
fn rule_12_flushinstructioncache() {
    let m = Mem::new(P, RC, PAGE_EXECUTE_READWRITE);
    check("§12 FlushInstructionCache", FALSE, OK, || unsafe {
        FlushInstructionCache(GetCurrentProcess(), m.base as *const c_void, P)
    });
    check("§12 FlushInstructionCache(NULL, 0)", FALSE, OK, || unsafe {
        FlushInstructionCache(GetCurrentProcess(), null(), 0)
    });
}

#[test]
fn rule_12_last_error_is_per_thread() {
    SetLastError(1234);
    let t = std::thread::spawn(|| {
        let fresh = GetLastError();
        SetLastError(5678);
        va("§12 other thread", 0, 0, RES, RW, fails(E_PARAM));
        SetLastError(42);
        (fresh, GetLastError())
    });
    let (fresh, mine) = t.join().unwrap();
    assert_eq!(fresh, 0, "§12 a new thread starts with 0");
    assert_eq!(mine, 42);
    assert_eq!(
        GetLastError(),
        1234,
        "§12 another thread's errors do not show here"
    );
    // Successes leave it; failures set it.
    let m = Mem::rw(P);
    SetLastError(777);
    let mut mbi = MEMORY_BASIC_INFORMATION::default();
    unsafe { VirtualQuery(m.base as *const c_void, &mut mbi, MBI_LEN) };
    assert_eq!(GetLastError(), 777);
}

// =============================================================================================
// Later features: valid → 50, invalid → the rules' code
// =============================================================================================

#[test]
fn later_guard_in_virtualprotect() {
    let m = Mem::rw(P);
    vp("§4 PAGE_GUARD", m.base, P, RW | PAGE_GUARD, OK);
    vp("§4 PAGE_GUARD|READONLY", m.base, P, RO | PAGE_GUARD, OK);
    vq_is!("§4 PAGE_GUARD shows", m.base, { pr: RO | PAGE_GUARD });
    vp("§4 guard removed", m.base, P, RW, OK);
    vp(
        "case 125 GUARD|NOACCESS in VP",
        m.base,
        P,
        NA | PAGE_GUARD,
        fails(E_PARAM),
    );
    vp(
        "§4 GUARD, size 0",
        m.base,
        0,
        RW | PAGE_GUARD,
        fails(E_PARAM),
    );
}

#[test]
fn later_virtualalloc2_extended_parameters_and_placeholders() {
    let mut params = [MEM_EXTENDED_PARAMETER::default(); 2];
    let mut req = MEM_ADDRESS_REQUIREMENTS::default();
    params[0].Anonymous1._bitfield = MemExtendedParameterAddressRequirements as u64;
    params[0].Anonymous2.Pointer = &mut req as *mut _ as *mut c_void;
    let va2 = |ty: u32, prot: u32, p: *mut MEM_EXTENDED_PARAMETER, n: u32| unsafe {
        VirtualAlloc2(null_mut(), null(), G, ty, prot, p, n)
    };
    check(
        "case 127 count > 0, NULL array",
        null_mut(),
        fails(E_PARAM),
        || va2(RES, RW, null_mut(), 1),
    );
    check("case 127 all-zero requirements", null_mut(), OK, || {
        va2(RES, RW, params.as_mut_ptr(), 1)
    });
    params[1] = params[0];
    check(
        "case 127 same type twice",
        null_mut(),
        fails(E_PARAM),
        || va2(RES, RW, params.as_mut_ptr(), 2),
    );
    let mut bad = [MEM_EXTENDED_PARAMETER::default()];
    check("case 127 type 0", null_mut(), fails(E_PARAM), || {
        va2(RES, RW, bad.as_mut_ptr(), 1)
    });
    bad[0].Anonymous1._bitfield = MemExtendedParameterMax as u64;
    check("case 127 type Max", null_mut(), fails(E_PARAM), || {
        va2(RES, RW, bad.as_mut_ptr(), 1)
    });
    // O4: the header is `Type : 8` then `Reserved : 56`; a Reserved bit set is refused (87),
    // never read as the type in the low byte.
    let mut reserved_set = [MEM_EXTENDED_PARAMETER::default()];
    reserved_set[0].Anonymous2.Pointer = &mut req as *mut _ as *mut c_void;
    for header in [
        0x100 | MemExtendedParameterAddressRequirements as u64,
        1 << 63 | MemExtendedParameterAddressRequirements as u64,
        0x100 | MemExtendedParameterNumaNode as u64,
        0x100,
    ] {
        reserved_set[0].Anonymous1._bitfield = header;
        check(
            &format!("O4 Reserved bits set in the header ({header:#x})"),
            null_mut(),
            fails(E_PARAM),
            || va2(RES, RW, reserved_set.as_mut_ptr(), 1),
        );
    }
    check("case 132 placeholder", null_mut(), OK, || {
        va2(RES | MEM_RESERVE_PLACEHOLDER, NA, null_mut(), 0)
    });
    check(
        "case 132 placeholder with RW",
        null_mut(),
        fails(E_PARAM),
        || va2(RES | MEM_RESERVE_PLACEHOLDER, RW, null_mut(), 0),
    );
    check(
        "case 138 REPLACE_PLACEHOLDER alone",
        null_mut(),
        fails(E_PARAM),
        || va2(MEM_REPLACE_PLACEHOLDER, RW, null_mut(), 0),
    );
    check(
        "case 138 COMMIT|REPLACE_PLACEHOLDER",
        null_mut(),
        fails(E_PARAM),
        || va2(COM | MEM_REPLACE_PLACEHOLDER, RW, null_mut(), 0),
    );
    check("§2 VirtualAlloc2 write watch", null_mut(), OK, || {
        va2(RES | MEM_WRITE_WATCH, RW, null_mut(), 0)
    });
    check(
        "case 11 in VirtualAlloc2",
        null_mut(),
        fails(E_PARAM),
        || va2(MEM_WRITE_WATCH, RW, null_mut(), 0),
    );
}

#[test]
fn later_write_watch_argument_checks() {
    let m = Mem::rw(G);
    let mut results = [null_mut::<c_void>(); 64];
    let mut gran = 0u32;
    let gww = |flags: u32,
               base: usize,
               size: usize,
               res: *mut *mut c_void,
               cnt: *mut usize,
               g: *mut u32| unsafe {
        GetWriteWatch(flags, base as *const c_void, size, res, cnt, g)
    };
    let fail = u32::MAX;
    let mut cnt = 64usize;
    check("case 86 NULL base", fail, fails(E_PARAM), || {
        gww(0, 0, G, results.as_mut_ptr(), &mut cnt, &mut gran)
    });
    let code = a_function_in_this_executable as *const () as usize & !(G - 1);
    check(
        "case 87 image, not write-watch",
        fail,
        fails(E_PARAM),
        || gww(0, code, G, results.as_mut_ptr(), &mut cnt, &mut gran),
    );
    check(
        "case 99 (not a write-watch region)",
        fail,
        fails(E_PARAM),
        || gww(0, m.base, G, results.as_mut_ptr(), &mut cnt, &mut gran),
    );
    cnt = 0;
    check("case 99a count 0", fail, fails(E_PARAM), || {
        gww(0, m.base, G, results.as_mut_ptr(), &mut cnt, &mut gran)
    });
    check("case 99e NULL array, count 0", fail, fails(E_PARAM), || {
        gww(0, m.base, G, null_mut(), &mut cnt, &mut gran)
    });
    cnt = 64;
    check("case 99f flags", fail, fails(E_PARAM), || {
        gww(
            0xdeadbeef,
            m.base,
            G,
            results.as_mut_ptr(),
            &mut cnt,
            &mut gran,
        )
    });
    check("case 99g size 0", fail, fails(E_PARAM), || {
        gww(0, m.base, 0, results.as_mut_ptr(), &mut cnt, &mut gran)
    });
    check("case 99j RWW size 0", fail, fails(E_PARAM), || unsafe {
        ResetWriteWatch(m.base as *const c_void, 0)
    });
    check("case 99k RWW image", fail, fails(E_PARAM), || unsafe {
        ResetWriteWatch(code as *const c_void, G)
    });
}

/// Later features whose request is well-formed but whose pages are in the wrong state: the
/// state rule's code (487), not ERROR_NOT_SUPPORTED. (semantics.md §2 and §4: "valid request"
/// = one Windows would carry out.)
#[test]
fn later_features_on_pages_in_the_wrong_state() {
    let mut e = Vec::new();
    let small = Mem::rw(P);
    let r = Mem::reserve(G);
    va_soft(
        &mut e,
        "§2 guard commit of free memory",
        small.at(P),
        P,
        COM,
        RW | PAGE_GUARD,
        fails(E_ADDR),
    );
    va_soft(
        &mut e,
        "§2 guard commit past the end",
        small.base,
        2 * P,
        COM,
        RW | PAGE_GUARD,
        fails(E_ADDR),
    );
    va_soft(
        &mut e,
        "§2 guard reserve over an allocation",
        small.at(P),
        P,
        RC,
        RW | PAGE_GUARD,
        fails(E_ADDR),
    );
    va_soft(
        &mut e,
        "§2 write-watch reserve over an allocation",
        small.base,
        G,
        RES | MEM_WRITE_WATCH,
        RW,
        fails(E_ADDR),
    );
    va_soft(
        &mut e,
        "§2 physical reserve over an allocation",
        r.base,
        G,
        RES | MEM_PHYSICAL,
        RW,
        fails(E_ADDR),
    );
    let mut old = SENTINEL;
    soft(
        &mut e,
        "§4 guard on reserved pages",
        FALSE,
        fails(E_ADDR),
        || unsafe { VirtualProtect(r.base as *const c_void, P, RW | PAGE_GUARD, &mut old) },
    );
    soft(
        &mut e,
        "§4 guard on free memory",
        FALSE,
        fails(E_ADDR),
        || unsafe { VirtualProtect(small.at(P) as *const c_void, P, RW | PAGE_GUARD, &mut old) },
    );
    soft(
        &mut e,
        "§4 guard past the end",
        FALSE,
        fails(E_ADDR),
        || unsafe {
            VirtualProtect(
                small.base as *const c_void,
                2 * P,
                RW | PAGE_GUARD,
                &mut old,
            )
        },
    );
    soft(
        &mut e,
        "§4 guard with NULL old",
        FALSE,
        fails(E_NOACCESS),
        || unsafe { VirtualProtect(small.base as *const c_void, P, RW | PAGE_GUARD, null_mut()) },
    );
    // Case 133 (§M, Windows-tested): preserving a placeholder of an ordinary reservation is
    // 487, and the size check of case 58 does not apply.
    soft(
        &mut e,
        "case 133 RELEASE|PRESERVE_PLACEHOLDER on a reservation",
        FALSE,
        fails(E_ADDR),
        || unsafe {
            VirtualFree(
                r.base as *mut c_void,
                G,
                MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
            )
        },
    );
    no_errors(e);
}
