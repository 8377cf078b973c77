//! Global and Local memory against `docs/heap-spec.md` §5 H–K (cases 47–83, cited by number)
//! and G1–G22. The tests share the process heap and its one handle table (case 48 fills it),
//! so each holds `SERIAL` and frees every block it makes.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::Mutex;
use virtmem::win32::*;

static SERIAL: Mutex<()> = Mutex::new(());

type AllocFn = unsafe extern "system" fn(u32, usize) -> HGLOBAL;
type ReAllocFn = unsafe extern "system" fn(HGLOBAL, usize, u32) -> HGLOBAL;
type LockFn = unsafe extern "system" fn(HGLOBAL) -> *mut c_void;
type UnlockFn = unsafe extern "system" fn(HGLOBAL) -> BOOL;
type SizeFn = unsafe extern "system" fn(HGLOBAL) -> usize;
type FlagsFn = unsafe extern "system" fn(HGLOBAL) -> u32;
type HandleFn = unsafe extern "system" fn(*const c_void) -> HGLOBAL;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const PTR: usize = std::mem::size_of::<usize>();
const MARK: u32 = 0xdead_beef;

fn le0() {
    SetLastError(MARK);
}

/// The entry's flags word, just below the handle's slot (G4).
fn word(h: HGLOBAL) -> usize {
    // SAFETY: `h` is (or was) a handle: the table's memory stays committed.
    unsafe { *((h as usize - PTR) as *const usize) }
}

/// The handle's slot: the data pointer (G4).
fn slot(h: HGLOBAL) -> usize {
    // SAFETY: as in `word`.
    unsafe { *(h as *const usize) }
}

fn is_handle(h: HGLOBAL) -> bool {
    h as usize % (2 * PTR) == PTR
}

#[test]
fn case_47_null() {
    let _s = serial();
    unsafe {
        assert!(GlobalFree(null_mut()).is_null());
        assert!(GlobalReAlloc(null_mut(), 10, GMEM_MOVEABLE).is_null());
        assert!(LocalFree(null_mut()).is_null());
        assert!(LocalReAlloc(null_mut(), 10, LMEM_MOVEABLE).is_null());
    }
}

#[test]
fn case_48_handle_table_holds_0x10000() {
    let _s = serial();
    unsafe {
        for (fill_global, name) in [(true, "Global"), (false, "Local")] {
            let mut hs = Vec::new();
            loop {
                let h = if fill_global {
                    GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 0)
                } else {
                    LocalAlloc(LMEM_MOVEABLE | LMEM_DISCARDABLE, 0)
                };
                if h.is_null() {
                    assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
                    break;
                }
                hs.push(h);
                assert!(hs.len() <= 0x10000, "{name}: more than 0x10000 handles");
            }
            assert_eq!(hs.len(), 0x10000, "{name}");
            le0();
            assert!(GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 0).is_null());
            assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            assert!(LocalAlloc(LMEM_MOVEABLE, 0).is_null());
            // Fixed blocks still work.
            let f = GlobalAlloc(GMEM_DISCARDABLE, 0);
            assert!(!f.is_null());
            assert!(GlobalFree(f).is_null());
            for h in hs.drain(..) {
                assert!(GlobalFree(h).is_null());
            }
            // Freed handles are reused.
            let h = GlobalAlloc(GMEM_MOVEABLE, 0);
            assert!(!h.is_null());
            assert!(GlobalFree(h).is_null());
        }
    }
}

#[test]
fn case_49_moveable_without_data() {
    let _s = serial();
    unsafe {
        let ph = GetProcessHeap();
        let m = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 0);
        assert!(is_handle(m));
        assert_eq!(GlobalSize(m), 0);
        assert_eq!(word(m), 0xF);
        assert_eq!(slot(m), 0);
        assert_eq!(
            HeapValidate(ph, 0, (m as usize - PTR) as *const c_void),
            FALSE
        );
        assert_eq!(GlobalFlags(m), GMEM_DISCARDED | GMEM_DISCARDABLE);
        assert!(GlobalFree(m).is_null());
        let m = GlobalAlloc(GMEM_MOVEABLE, 0);
        assert_eq!((word(m), slot(m)), (0xB, 0));
        assert_eq!(GlobalFlags(m), GMEM_DISCARDED);
        assert!(GlobalFree(m).is_null());
    }
}

#[test]
fn case_50_sizes_locks_and_layout() {
    let _s = serial();
    unsafe {
        let ph = GetProcessHeap();
        for s in [1usize, 0x20, 0x400, 0x8000, 0x100000, 0x2000000] {
            let f = GlobalAlloc(GMEM_FIXED, s);
            assert_eq!(f as usize % 16, 0, "{s:#x}");
            assert_eq!(HeapValidate(ph, 0, f), TRUE);
            assert!(GlobalFree(f).is_null());
            let m = GlobalAlloc(GMEM_MOVEABLE, s);
            assert_eq!(m as usize % 16, 8, "{s:#x}");
            let d = slot(m) as *mut c_void;
            assert_eq!(HeapValidate(ph, 0, d), TRUE);
            assert_eq!(HeapSize(ph, 0, d), s);
            assert_eq!(GlobalHandle(d), m);
            assert_eq!(GlobalLock(m), d);
            assert_ne!(d, m);
            assert_eq!(d as usize % 16, 0);
            for i in 1..255usize {
                assert_eq!(word(m), (i << 16) | 3);
                assert_eq!(GlobalLock(m), d);
            }
            assert_eq!(word(m), 0xFF0003);
            assert_eq!(GlobalLock(m), d, "a saturated lock still succeeds");
            assert_eq!(word(m), 0xFF0003);
            for _ in 0..254 {
                assert_eq!(GlobalUnlock(m), TRUE);
            }
            assert_eq!(GlobalUnlock(m), FALSE);
            assert_eq!(word(m), 3);
            assert!(GlobalFree(m).is_null());
            assert_eq!(slot(m), 0);
            let w = word(m);
            assert!(w != 0 && w % PTR == 0, "freed entry word {w:#x}");
        }
    }
}

#[test]
fn case_51_discardable_and_ddeshare_words() {
    let _s = serial();
    unsafe {
        let m = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 1);
        assert_eq!(word(m), 7);
        assert_ne!(slot(m), 0);
        assert_eq!(GlobalFlags(m), GMEM_DISCARDABLE);
        assert!(GlobalFree(m).is_null());
        let m = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE | GMEM_DDESHARE, 1);
        assert_eq!(word(m), 0x8007);
        assert_eq!(GlobalFlags(m), 0x2100);
        assert_eq!(
            LocalFlags(m),
            LMEM_DISCARDABLE,
            "LocalFlags has no DDESHARE bit"
        );
        assert!(GlobalFree(m).is_null());
    }
}

#[test]
fn case_52_obsolete_flags_and_g1_validation() {
    let _s = serial();
    let all = GMEM_MOVEABLE
        | GMEM_DDESHARE
        | GMEM_DISCARDABLE
        | GMEM_LOWER
        | GMEM_NOCOMPACT
        | GMEM_NODISCARD
        | GMEM_NOT_BANKED
        | GMEM_NOTIFY;
    let rows = [
        (GMEM_FIXED | GMEM_NOTIFY, 0),
        (GMEM_FIXED | GMEM_DISCARDABLE, 0),
        (GMEM_MOVEABLE | GMEM_NOTIFY, 0),
        (GMEM_MOVEABLE | GMEM_DDESHARE, 0x2000),
        (GMEM_MOVEABLE | GMEM_NOT_BANKED, 0),
        (GMEM_MOVEABLE | GMEM_NODISCARD, 0),
        (GMEM_MOVEABLE | GMEM_DISCARDABLE, 0x100),
        (all, 0x2100),
    ];
    unsafe {
        for (f, want) in rows {
            let h = GlobalAlloc(f, 4);
            assert!(!h.is_null(), "{f:#x}");
            assert_eq!(GlobalFlags(h), want, "{f:#x}");
            assert!(GlobalFree(h).is_null());
        }
        for f in [
            LMEM_FIXED,
            LMEM_FIXED | LMEM_DISCARDABLE,
            LMEM_MOVEABLE,
            LMEM_MOVEABLE | LMEM_NODISCARD,
            LMEM_MOVEABLE | LMEM_DISCARDABLE,
            LMEM_MOVEABLE | LMEM_DISCARDABLE | LMEM_NOCOMPACT | LMEM_NODISCARD,
        ] {
            let h = LocalAlloc(f, 4);
            assert!(!h.is_null());
            assert_eq!(LocalFlags(h) & !0xF00, 0, "{f:#x}");
            assert!(LocalFree(h).is_null());
        }
        // G1: GMEM_MODIFY is not an allocation flag; DDESHARE is not a Local flag.
        le0();
        assert!(GlobalAlloc(GMEM_MODIFY, 4).is_null());
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        le0();
        assert!(LocalAlloc(0x2000, 4).is_null());
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
    }
}

#[test]
fn cases_53_54_sizes_and_zeroing() {
    let _s = serial();
    unsafe {
        let g = GlobalAlloc(GMEM_FIXED, 0);
        assert_eq!(GlobalSize(g), 1);
        assert!(GlobalFree(g).is_null());
        let l = LocalAlloc(LMEM_FIXED, 0);
        assert!(!l.is_null());
        assert_eq!(LocalSize(l), 0);
        assert!(LocalFree(l).is_null());
        let g = GlobalAlloc(0, 100000);
        assert!(GlobalSize(g) >= 100000);
        assert!(GlobalFree(g).is_null());
        for local in [false, true] {
            let g = if local {
                LocalAlloc(LMEM_ZEROINIT, 100000)
            } else {
                GlobalAlloc(GMEM_ZEROINIT, 100000)
            };
            let p = if local { LocalLock(g) } else { GlobalLock(g) };
            assert_eq!(p, g);
            let s = std::slice::from_raw_parts(p as *const u8, 100000);
            assert!(s.iter().all(|&b| b == 0));
            assert!(GlobalFree(g).is_null());
        }
    }
}

#[test]
fn cases_55_56_handle_and_size_of_pointers() {
    let _s = serial();
    unsafe {
        let ph = GetProcessHeap();
        let p = HeapAlloc(ph, 0, 16);
        le0();
        assert_eq!(GlobalHandle(p), p);
        assert_eq!(GetLastError(), MARK);
        assert_eq!(LocalHandle(p), p);
        assert_eq!(HeapFree(ph, 0, p), TRUE);
        let m = GlobalAlloc(GMEM_MOVEABLE, 0x123);
        let d = GlobalLock(m);
        assert_ne!(d, m);
        assert_eq!(GlobalSize(m), 0x123);
        assert_eq!(GlobalSize(d), 0x123);
        assert_eq!(GlobalHandle(m), m, "a live handle is its own handle");
        assert_eq!(GlobalUnlock(m), FALSE);
        assert!(GlobalFree(m).is_null());
        let f = GlobalAlloc(GMEM_FIXED, 0x123);
        assert_eq!(GlobalLock(f), f);
        assert_eq!(GlobalSize(f), 0x123);
        assert!(GlobalFree(f).is_null());
        le0();
        assert_eq!(GlobalSize(0xdeadbee0usize as HGLOBAL), 0);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
}

#[test]
fn case_57_lock_unlock_sequence() {
    let _s = serial();
    unsafe {
        for local in [false, true] {
            let (alloc, lock, unlock, flags, handle): (
                AllocFn,
                LockFn,
                UnlockFn,
                FlagsFn,
                HandleFn,
            ) = if local {
                (LocalAlloc, LocalLock, LocalUnlock, LocalFlags, LocalHandle)
            } else {
                (
                    GlobalAlloc,
                    GlobalLock,
                    GlobalUnlock,
                    GlobalFlags,
                    GlobalHandle,
                )
            };
            let m = alloc(GMEM_MOVEABLE, 256);
            let d = lock(m);
            assert_ne!(d, m);
            assert_eq!(handle(d), m);
            assert_eq!(flags(m), 1);
            assert_eq!(lock(m), d);
            assert_eq!(flags(m), 2);
            le0();
            assert_eq!(unlock(m), TRUE);
            assert_eq!(GetLastError(), MARK);
            assert_eq!(flags(m), 1);
            assert_eq!(unlock(m), FALSE);
            assert_eq!(GetLastError(), 0, "the last unlock sets ERROR_SUCCESS");
            assert_eq!(flags(m), 0);
            assert_eq!(unlock(m), FALSE);
            assert_eq!(GetLastError(), ERROR_NOT_LOCKED);
            assert!(GlobalFree(m).is_null());
        }
    }
}

#[test]
fn cases_58_59_discarded_lock_and_fixed_unlock() {
    let _s = serial();
    unsafe {
        let m = GlobalAlloc(GMEM_MOVEABLE | GMEM_ZEROINIT, 0);
        le0();
        assert!(GlobalLock(m).is_null());
        assert_eq!(GetLastError(), ERROR_DISCARDED);
        le0();
        assert!(LocalLock(m).is_null());
        assert_eq!(GetLastError(), ERROR_DISCARDED);
        assert!(GlobalFree(m).is_null());
        let f = GlobalAlloc(GMEM_DDESHARE, 100);
        assert_eq!(GlobalUnlock(f), TRUE);
        assert_eq!(GlobalUnlock(f), TRUE);
        assert!(GlobalFree(f).is_null());
        let f = GlobalAlloc(GMEM_FIXED, 100);
        le0();
        assert_eq!(GlobalUnlock(f), TRUE);
        assert_eq!(GetLastError(), MARK);
        assert_eq!(GlobalHandle(f), f);
        assert!(GlobalFree(f).is_null());
        let f = LocalAlloc(LMEM_FIXED, 100);
        le0();
        assert_eq!(LocalUnlock(f), FALSE);
        assert_eq!(GetLastError(), ERROR_NOT_LOCKED);
        assert_eq!(LocalHandle(f), f);
        assert!(LocalFree(f).is_null());
    }
}

/// One row of cases 60–64: what a call returns and the last error after it (`MARK`:
/// untouched).
fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T, le: u32) {
    assert_eq!(got, want, "{what}");
    assert_eq!(GetLastError(), le, "{what}: last error");
}

#[test]
fn cases_60_to_65_freed_invalid_and_garbage_values() {
    let _s = serial();
    unsafe {
        let freed = GlobalAlloc(GMEM_MOVEABLE, 256);
        assert!(GlobalFree(freed).is_null());
        let inv = (0xdeadbee0usize + PTR) as HGLOBAL;
        let bad = 0xdeadbee0usize as HGLOBAL;
        let n: HGLOBAL = null_mut();
        for (name, v) in [("freed", freed), ("inv", inv)] {
            // Cases 60, 61 (Global) and 63 (Local).
            le0();
            check(name, GlobalFree(v), v, 6);
            le0();
            check(name, GlobalFlags(v), 0x8000, 6);
            le0();
            check(name, GlobalSize(v), 0, 6);
            le0();
            check(name, GlobalLock(v), n, 6);
            le0();
            check(name, GlobalUnlock(v), TRUE, 6);
            le0();
            check(name, GlobalReAlloc(v, 0, GMEM_MOVEABLE), n, 6);
            le0();
            check(name, GlobalHandle(v), n, 6);
            le0();
            check(name, LocalFree(v), v, 6);
            le0();
            check(name, LocalFlags(v), 0x8000, 6);
            le0();
            check(name, LocalSize(v), 0, 6);
            le0();
            check(name, LocalLock(v), n, 6);
            le0();
            check(name, LocalUnlock(v), FALSE, 6);
            le0();
            check(name, LocalReAlloc(v, 0, LMEM_MOVEABLE), n, 6);
            le0();
            check(name, LocalHandle(v), n, 6);
        }
        // Case 62.
        le0();
        check("bad", GlobalFree(bad), bad, 998);
        le0();
        check("bad", GlobalFlags(bad), 0x8000, 6);
        le0();
        check("bad", GlobalSize(bad), 0, 6);
        le0();
        check("bad", GlobalLock(bad), n, 6);
        le0();
        check("bad", GlobalUnlock(bad), TRUE, MARK);
        le0();
        check("bad", GlobalReAlloc(bad, 0, GMEM_MOVEABLE), n, 998);
        le0();
        check("bad", GlobalHandle(bad), n, 6);
        // Case 64.
        le0();
        check("bad", LocalFree(bad), bad, 998);
        le0();
        check("bad", LocalFlags(bad), 0x8000, 998);
        le0();
        check("bad", LocalSize(bad), 0, 6);
        le0();
        check("bad", LocalLock(bad), n, MARK);
        le0();
        check("bad", LocalUnlock(bad), FALSE, ERROR_NOT_LOCKED);
        le0();
        check("bad", LocalReAlloc(bad, 0, LMEM_MOVEABLE), n, 998);
        le0();
        check("bad", LocalHandle(bad), n, 998);
        // Case 65 ([ours] on x64: the x86 answers) and a freed fixed pointer everywhere.
        let f = GlobalAlloc(GMEM_DDESHARE, 100);
        assert!(GlobalFree(f).is_null());
        le0();
        check("freed fixed", GlobalFree(f), f, 6);
        le0();
        check("freed fixed", GlobalSize(f), 0, 6);
        le0();
        check("freed fixed", GlobalReAlloc(f, 10, GMEM_MOVEABLE), n, 6);
        le0();
        check("0xc042", GlobalSize(0xc042usize as HGLOBAL), 0, 6);
        // The process heap is intact after all of it.
        assert_eq!(HeapValidate(GetProcessHeap(), 0, std::ptr::null()), TRUE);
    }
}

/// Case K's setup: the 12-byte size class made hot in the front end.
unsafe fn hot_12() {
    let mut v = Vec::new();
    for _ in 0..0x12 {
        v.push(GlobalAlloc(GMEM_FIXED, 12));
    }
    for p in v {
        assert!(GlobalFree(p).is_null());
    }
}

const MOD: u32 = GMEM_MODIFY;
const MOV: u32 = GMEM_MOVEABLE;
const MM: u32 = GMEM_MOVEABLE | GMEM_MODIFY;
const MD: u32 = GMEM_MOVEABLE | GMEM_DISCARDABLE;
const MMD: u32 = GMEM_MOVEABLE | GMEM_MODIFY | GMEM_DISCARDABLE;

/// What a realloc row expects.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// NULL, the block unchanged at this size.
    Null(usize),
    /// The same value back, with this size.
    Same(usize),
    /// A different fixed pointer of this size.
    Moved(usize),
    /// A new handle (entry flags & 0x7FFF = 3, or 7 with `disc`) of this size.
    Conv(usize, bool),
}

unsafe fn fixed_row(local: bool, size0: usize, n: usize, f: u32, want: Want) {
    hot_12();
    let alloc = if local { LocalAlloc } else { GlobalAlloc };
    let realloc = if local { LocalReAlloc } else { GlobalReAlloc };
    let (size, lock) = if local {
        (LocalSize as SizeFn, LocalLock as LockFn)
    } else {
        (GlobalSize as SizeFn, GlobalLock as LockFn)
    };
    let p = alloc(0, size0);
    let f = if local && f & GMEM_DISCARDABLE != 0 {
        (f & !GMEM_DISCARDABLE) | LMEM_DISCARDABLE
    } else {
        f
    };
    let what = format!("local {local} {size0:#x} → {n:#x} flags {f:#x}: {want:?}");
    let r = realloc(p, n, f);
    let live = match want {
        Want::Null(s) => {
            assert!(r.is_null(), "{what}");
            assert_eq!(size(p), s, "{what}");
            p
        }
        Want::Same(s) => {
            assert_eq!(r, p, "{what}");
            assert_eq!(size(p), s, "{what}");
            p
        }
        Want::Moved(s) => {
            assert!(!r.is_null() && r != p && !is_handle(r), "{what}");
            assert_eq!(lock(r), r, "{what}");
            assert_eq!(size(r), s, "{what}");
            r
        }
        Want::Conv(s, disc) => {
            assert!(is_handle(r), "{what}: {r:?}");
            assert_eq!(word(r) & 0x7FFF, if disc { 7 } else { 3 }, "{what}");
            assert_eq!(size(r), s, "{what}");
            assert_ne!(slot(r), p as usize, "{what}: the data moved");
            r
        }
    };
    assert!(GlobalFree(live).is_null(), "{what}");
}

#[test]
fn cases_66_to_71_realloc_matrix_fixed() {
    let _s = serial();
    const F12: usize = 12;
    const F128K: usize = 0x20000;
    unsafe {
        for local in [false, true] {
            let conv = |s, d| {
                if local {
                    Want::Same(s)
                } else {
                    Want::Conv(s, d)
                }
            };
            // Case 66.
            for (f, w) in [
                (0, Want::Null(12)),
                (MOD, Want::Same(12)),
                (MOV, Want::Moved(512)),
                (MM, conv(12, false)),
                (MMD, conv(12, true)),
                (MD, Want::Null(12)),
            ] {
                fixed_row(local, F12, 512, f, w);
            }
            // Cases 68, 70: a front-end block never resizes in place.
            for n in [10, 0] {
                for (f, w) in [
                    (0, Want::Null(12)),
                    (MOD, Want::Same(12)),
                    (MOV, Want::Moved(n)),
                    (MM, conv(12, false)),
                    (MD, Want::Null(12)),
                ] {
                    fixed_row(local, F12, n, f, w);
                }
            }
            // Cases 67, 69, 71: a back-end block resizes in place.
            for n in [0x20200, 10, 0] {
                for (f, w) in [
                    (MOD, Want::Same(F128K)),
                    (MM, conv(F128K, false)),
                    (MMD, conv(F128K, true)),
                    (MD, Want::Null(F128K)),
                ] {
                    fixed_row(local, F128K, n, f, w);
                }
            }
            for n in [10, 0] {
                fixed_row(local, F128K, n, 0, Want::Same(n));
                fixed_row(local, F128K, n, MOV, Want::Same(n));
            }
        }
    }
}

#[test]
fn cases_72_to_78_realloc_matrix_moveable() {
    let _s = serial();
    unsafe {
        for local in [false, true] {
            let (alloc, realloc, lock, unlock, size): (
                AllocFn,
                ReAllocFn,
                LockFn,
                UnlockFn,
                SizeFn,
            ) = if local {
                (LocalAlloc, LocalReAlloc, LocalLock, LocalUnlock, LocalSize)
            } else {
                (
                    GlobalAlloc,
                    GlobalReAlloc,
                    GlobalLock,
                    GlobalUnlock,
                    GlobalSize,
                )
            };
            let d_bits = if local {
                LMEM_DISCARDABLE
            } else {
                GMEM_DISCARDABLE
            };
            let fl = |f: u32| {
                if f & GMEM_DISCARDABLE != 0 {
                    (f & !GMEM_DISCARDABLE) | d_bits
                } else {
                    f
                }
            };
            for locked in [true, false] {
                for n in [512usize, 10, 0] {
                    for f in [0, MOD, MOV, MM, MD, MMD] {
                        hot_12();
                        let m = alloc(GMEM_MOVEABLE, 12);
                        let d = slot(m);
                        if locked {
                            assert_eq!(lock(m) as usize, d);
                        }
                        let w0 = word(m);
                        let what = format!("local {local} locked {locked} 12 → {n} flags {f:#x}");
                        let r = realloc(m, n, fl(f));
                        let modify = f & GMEM_MODIFY != 0;
                        if modify {
                            assert_eq!(r, m, "{what}");
                            let extra = if f & GMEM_DISCARDABLE != 0 { 4 } else { 0 };
                            assert_eq!(word(m), w0 | extra, "{what}");
                            assert_eq!((slot(m), size(m)), (d, 12), "{what}");
                        } else if f == MD || (n == 0 && (locked || f == 0)) {
                            assert!(r.is_null(), "{what}");
                            assert_eq!((slot(m), size(m), word(m)), (d, 12, w0), "{what}");
                        } else if n == 0 {
                            // Case 78: discarded.
                            assert_eq!(r, m, "{what}");
                            assert_eq!((slot(m), size(m), word(m)), (0, 0, w0 | 8), "{what}");
                            assert_eq!(GlobalFlags(m) & GMEM_DISCARDED, GMEM_DISCARDED);
                        } else if n == 512 && locked && f == 0 {
                            // Case 72: a locked block moves only with MOVEABLE.
                            assert!(r.is_null(), "{what}");
                            assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
                            assert_eq!((slot(m), size(m)), (d, 12), "{what}");
                        } else {
                            assert_eq!(r, m, "{what}");
                            assert_eq!(size(m), n, "{what}");
                            assert_eq!(word(m), w0, "{what}: lock count and flags kept");
                            if n == 512 {
                                assert_ne!(slot(m), d, "{what}: grown out of its class");
                            } else {
                                assert_eq!(slot(m), d, "{what}: shrunk in place");
                            }
                            assert_eq!(GlobalHandle(slot(m) as *const c_void), m, "{what}");
                        }
                        if locked && slot(m) != 0 {
                            assert_eq!(unlock(m), FALSE, "{what}: count was 1");
                        }
                        assert!(GlobalFree(m).is_null(), "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn case_75_local_locked_back_end_block_grows_in_place() {
    let _s = serial();
    unsafe {
        let m = LocalAlloc(LMEM_MOVEABLE, 0x20000);
        let d = LocalLock(m);
        let r = LocalReAlloc(m, 0x20200, 0);
        if r.is_null() {
            // Only if something follows the block: then it must be untouched.
            assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            assert_eq!(LocalSize(m), 0x20000);
        } else {
            assert_eq!(r, m);
            assert_eq!(slot(m), d as usize);
            assert_eq!(LocalSize(m), 0x20200);
        }
        assert_eq!(LocalReAlloc(m, 10, 0), m);
        assert_eq!(slot(m), d as usize);
        assert_eq!(LocalSize(m), 10);
        assert!(
            LocalReAlloc(m, 0, LMEM_MOVEABLE).is_null(),
            "a locked block is not discarded"
        );
        assert_eq!(LocalUnlock(m), FALSE);
        assert!(LocalFree(m).is_null());
    }
}

#[test]
fn cases_79_to_81_refill_and_fixed_resizes() {
    let _s = serial();
    unsafe {
        for local in [false, true] {
            let (alloc, realloc, size, lock): (AllocFn, ReAllocFn, SizeFn, LockFn) = if local {
                (LocalAlloc, LocalReAlloc, LocalSize, LocalLock)
            } else {
                (GlobalAlloc, GlobalReAlloc, GlobalSize, GlobalLock)
            };
            // Case 79.
            let m = alloc(GMEM_MOVEABLE, 0);
            let m = realloc(m, 10, GMEM_MOVEABLE);
            assert!(!m.is_null());
            assert_eq!(size(m), 10);
            assert!(!realloc(m, 0, GMEM_MOVEABLE).is_null());
            assert_eq!(size(m), 0);
            assert!(!realloc(m, 10, GMEM_MOVEABLE).is_null());
            assert_eq!(size(m), 10);
            assert!(GlobalFree(m).is_null());
            le0();
            assert_eq!(size(m), 0);
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
            // Case 80.
            hot_12();
            let f = alloc(0, 12);
            assert_eq!(realloc(f, 11, GMEM_MODIFY), f);
            assert_eq!(size(f), 12);
            le0();
            assert!(realloc(f, 12, 0).is_null());
            assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            assert_eq!(realloc(f, 1 << 20, GMEM_MODIFY), f);
            assert_eq!(size(f), 12);
            // Case 81.
            let r = realloc(f, 13, GMEM_MOVEABLE);
            assert!(!r.is_null() && r != f);
            assert_eq!(lock(r), r);
            assert!(GlobalFree(r).is_null());
        }
    }
}

#[test]
fn case_82_global_convert_grow_zero_discard() {
    let _s = serial();
    unsafe {
        let g = GlobalAlloc(GMEM_ZEROINIT, 100000);
        let m = GlobalReAlloc(g, 0, GMEM_MODIFY | GMEM_MOVEABLE);
        assert!(is_handle(m) && m != g);
        assert_eq!(GlobalSize(m), 100000);
        let d = GlobalLock(m);
        assert_ne!(d, m);
        assert!(GlobalUnlock(m) == FALSE && GetLastError() == 0);
        let m2 = GlobalReAlloc(m, 200000, GMEM_MOVEABLE | GMEM_ZEROINIT);
        assert_eq!(m2, m);
        assert!(GlobalSize(m2) >= 200000);
        let d = GlobalLock(m2);
        let s = std::slice::from_raw_parts(d as *const u8, 200000);
        assert!(s.iter().all(|&b| b == 0), "both halves zero");
        assert_eq!(GlobalHandle(d), m2);
        assert!(GlobalDiscard(m2).is_null(), "locked");
        assert!(GlobalUnlock(m2) == FALSE && GetLastError() == 0);
        assert_eq!(GlobalDiscard(m2), m2);
        assert_eq!(GlobalSize(m2), 0);
        assert!(GlobalFree(m2).is_null());
    }
}

#[test]
fn case_83_local_does_not_convert() {
    let _s = serial();
    unsafe {
        let g = LocalAlloc(LMEM_ZEROINIT, 100000);
        assert_eq!(LocalReAlloc(g, 0, LMEM_MODIFY | LMEM_MOVEABLE), g);
        assert_eq!(LocalSize(g), 100000);
        assert_eq!(LocalLock(g), g);
        le0();
        assert_eq!(LocalUnlock(g), FALSE);
        assert_eq!(GetLastError(), ERROR_NOT_LOCKED);
        let g2 = LocalReAlloc(g, 200000, LMEM_MOVEABLE | LMEM_ZEROINIT);
        assert!(!g2.is_null() && !is_handle(g2));
        let s = std::slice::from_raw_parts(g2 as *const u8, 200000);
        assert!(s.iter().all(|&b| b == 0));
        assert_eq!(LocalLock(g2), g2);
        assert_eq!(LocalHandle(g2), g2);
        let d = LocalDiscard(g2);
        assert!(!d.is_null() && !is_handle(d));
        assert_eq!(LocalSize(d), 0);
        assert_eq!(LocalDiscard(d), d, "a second discard returns it again");
        assert!(LocalFree(d).is_null());
    }
}

#[test]
fn g5_g9_moveable_data_is_a_plain_heap_block() {
    let _s = serial();
    unsafe {
        let ph = GetProcessHeap();
        let m = GlobalAlloc(GMEM_MOVEABLE | GMEM_DDESHARE, 100);
        let d = GlobalLock(m);
        // SAFETY: a zeroed entry filled by HeapWalk.
        let mut e: PROCESS_HEAP_ENTRY = std::mem::zeroed();
        let mut seen = false;
        HeapLock(ph);
        while HeapWalk(ph, &mut e) == TRUE {
            assert_eq!(
                e.wFlags as u32 & (PROCESS_HEAP_ENTRY_MOVEABLE | PROCESS_HEAP_ENTRY_DDESHARE),
                0
            );
            seen |= e.lpData == d;
        }
        HeapUnlock(ph);
        assert!(seen, "the data block is walked as a busy block");
        // [ours] Its data pointer is not freed behind the handle's back.
        le0();
        assert_eq!(GlobalFree(d), d);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert!(GlobalReAlloc(d, 10, GMEM_MOVEABLE).is_null());
        assert_eq!(GlobalUnlock(m), FALSE);
        assert!(GlobalFree(m).is_null());
        assert_eq!(HeapValidate(ph, 0, d), FALSE, "freed with its handle");
    }
}

#[test]
fn g22_heap_lock_holds_other_threads_off() {
    let _s = serial();
    unsafe {
        let ph = GetProcessHeap();
        assert_eq!(HeapLock(ph), TRUE);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let t = std::thread::spawn(move || {
            let h = GlobalAlloc(GMEM_MOVEABLE, 8) as usize;
            d2.store(true, std::sync::atomic::Ordering::SeqCst);
            h
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !done.load(std::sync::atomic::Ordering::SeqCst),
            "GlobalAlloc ran under HeapLock"
        );
        // The locking thread itself may still call them (the lock is recursive).
        let own = GlobalAlloc(GMEM_MOVEABLE, 8);
        assert!(!own.is_null());
        assert_eq!(HeapUnlock(ph), TRUE);
        let h = t.join().unwrap() as HGLOBAL;
        assert!(GlobalFree(h).is_null());
        assert!(GlobalFree(own).is_null());
    }
}

#[test]
fn scribbled_entry_words_change_nothing() {
    let _s = serial();
    unsafe {
        let ph = GetProcessHeap();
        let m = GlobalAlloc(GMEM_MOVEABLE, 32);
        let d = slot(m);
        // A program overwrites the visible words: the table's own record decides.
        *(m as *mut usize) = 0xdeadbee0;
        *((m as usize - PTR) as *mut usize) = 0;
        assert_eq!(GlobalSize(m), 32);
        assert_eq!(GlobalLock(m) as usize, d);
        assert_eq!(slot(m), d, "the visible words are rewritten");
        assert_eq!(GlobalUnlock(m), FALSE);
        assert!(GlobalFree(m).is_null());
        assert_eq!(HeapValidate(ph, 0, std::ptr::null()), TRUE);
    }
}

/// The same engine on a simulated process (issue 16 item 6): heap blocks and the handle
/// table's words live in simulated memory.
#[test]
fn simulated_process_heaps_and_handles() {
    let s = virtmem::sim::SimSpace::new(virtmem::Layout::WIN32);
    assert!(!s.heaps_started());
    let ph = s.process_heap().unwrap();
    let p = s.heap_alloc(ph, HEAP_ZERO_MEMORY, 100).unwrap();
    assert_eq!(s.heap_size(ph, 0, p).unwrap(), 100);
    assert!(
        s.heap_free(ph, 0, p + 8).is_err(),
        "an interior pointer is refused"
    );
    let (m, le) = s.global_call(false, "Alloc", GMEM_MOVEABLE as usize, 64, 0);
    assert_eq!((m % 16, le), (8, None));
    let (d, _) = s.global_call(false, "Lock", m, 0, 0);
    let mut w = [0u8; 16];
    s.read(m - 8, &mut w).unwrap();
    assert_eq!(
        u64::from_le_bytes(w[..8].try_into().unwrap()),
        (1 << 16) | 3
    );
    assert_eq!(u64::from_le_bytes(w[8..].try_into().unwrap()), d as u64);
    assert_eq!(s.global_call(false, "Unlock", m, 0, 0), (0, Some(0)));
    assert_eq!(
        s.global_call(true, "Unlock", 0xdeadbee0, 0, 0),
        (0, Some(ERROR_NOT_LOCKED))
    );
    assert_eq!(s.global_call(false, "Free", m, 0, 0), (0, None));
    assert_eq!(
        s.global_call(false, "Free", m, 0, 0),
        (m, Some(ERROR_INVALID_HANDLE))
    );
    assert!(s.heap_validate(ph, 0, 0).unwrap());
    let (base, size) = s.global_handle_table().unwrap();
    assert!(m > base && m < base + size);
}
