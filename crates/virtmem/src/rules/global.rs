//! The Global/Local memory rules (`docs/heap-spec.md` §4, G1–G22), free of memory and
//! syscalls: flag validation (G1), what an allocation is (G2–G8), the moveable entry's flags
//! word (G4), GlobalFlags / LocalFlags (G15), the realloc matrix (G19, G20) and what each call
//! answers for a value that is not a live block (G12, G13, G15–G18). The engine
//! (`engine/global.rs`) classifies the value and carries out the plan.
//!
//! "Last error" is part of these answers because Windows' Global/Local functions are uneven
//! about it: some failures leave it untouched, GlobalUnlock of a count of 1 sets it to 0, and
//! GlobalUnlock of a freed handle returns TRUE *and* sets ERROR_INVALID_HANDLE.

use crate::error::{Error, Result};

/// GMEM_MOVEABLE / LMEM_MOVEABLE.
pub const MOVEABLE: u32 = 0x2;
/// GMEM_ZEROINIT / LMEM_ZEROINIT.
pub const ZEROINIT: u32 = 0x40;
/// GMEM_MODIFY / LMEM_MODIFY.
pub const MODIFY: u32 = 0x80;
/// GMEM_DDESHARE (Global only).
pub const DDESHARE: u32 = 0x2000;
/// GMEM_DISCARDED / LMEM_DISCARDED (GlobalFlags / LocalFlags).
pub const DISCARDED: u32 = 0x4000;
/// GMEM_INVALID_HANDLE / LMEM_INVALID_HANDLE.
pub const INVALID_HANDLE: u32 = 0x8000;

/// Moveable handles that may be live at once in a process, Global and Local together (G6).
pub const MAX_HANDLES: usize = 0x10000;
/// Bytes per handle-table entry: the flags word, then the data-pointer slot (G4).
pub const ENTRY: usize = 2 * core::mem::size_of::<usize>();
/// Offset of the slot (the handle) in its entry: `h % ENTRY == SLOT` (G4).
pub const SLOT: usize = core::mem::size_of::<usize>();

/// Entry flags word (G4): in use.
pub const E_USED: usize = 0x1;
/// Entry flags word: moveable.
pub const E_MOVEABLE: usize = 0x2;
/// Entry flags word: discardable.
pub const E_DISCARDABLE: usize = 0x4;
/// Entry flags word: no data (size 0 or discarded).
pub const E_DISCARDED: usize = 0x8;
/// Entry flags word: DDESHARE.
pub const E_DDESHARE: usize = 0x8000;
/// Entry flags word: shift of the lock count (bits 16–23).
pub const E_LOCK_SHIFT: u32 = 16;

/// ERROR_INVALID_HANDLE.
const INVALID: u32 = 6;
/// ERROR_NOT_ENOUGH_MEMORY.
const NOMEM: u32 = 8;
/// ERROR_INVALID_PARAMETER.
const PARAM: u32 = 87;
/// ERROR_DISCARDED.
const DISCARDED_ERR: u32 = 157;
/// ERROR_NOT_LOCKED.
const NOT_LOCKED: u32 = 158;
/// ERROR_NOACCESS.
const NOACCESS: u32 = 998;

/// Which family a call belongs to: they share one implementation and one handle table, and
/// differ where G20 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// GlobalAlloc, GlobalLock, …
    Global,
    /// LocalAlloc, LocalLock, …
    Local,
}

impl Api {
    /// The bits that mean "discardable" (GMEM_DISCARDABLE 0x100; LMEM_DISCARDABLE 0xF00).
    pub const fn discardable_bits(self) -> u32 {
        match self {
            Api::Global => 0x100,
            Api::Local => 0xF00,
        }
    }

    /// GMEM_VALID_FLAGS / LMEM_VALID_FLAGS (G1).
    pub const fn valid_flags(self) -> u32 {
        match self {
            Api::Global => 0x7F72,
            Api::Local => 0x0F72,
        }
    }
}

/// What the thread's last error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastError {
    /// Left as it was.
    Keep,
    /// Set to this Win32 code (0 included).
    Set(u32),
}

/// A call's answer: the return value and what happens to the last error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<T> {
    /// The return value.
    pub value: T,
    /// The last-error effect.
    pub last_error: LastError,
}

impl<T> Reply<T> {
    /// The same reply with its value converted (the last-error effect kept).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        Reply {
            value: f(self.value),
            last_error: self.last_error,
        }
    }

    /// `value`, last error untouched.
    pub const fn ok(value: T) -> Reply<T> {
        Reply {
            value,
            last_error: LastError::Keep,
        }
    }

    /// `value`, last error set to `code`.
    pub const fn set(value: T, code: u32) -> Reply<T> {
        Reply {
            value,
            last_error: LastError::Set(code),
        }
    }
}

/// What GlobalAlloc / LocalAlloc makes (G1–G8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocPlan {
    /// A moveable block (a handle) rather than a fixed pointer.
    pub moveable: bool,
    /// Zeroed data.
    pub zero: bool,
    /// Discardable (moveable blocks only; no visible effect on fixed ones, G2).
    pub discardable: bool,
    /// DDESHARE (Global, moveable only: shows in GlobalFlags and the entry word).
    pub ddeshare: bool,
    /// Bytes of the heap block: GlobalAlloc(GMEM_FIXED, 0) makes a 1-byte block (G3).
    pub size: usize,
}

/// GlobalAlloc / LocalAlloc's flags and size (G1, G3).
pub fn alloc_plan(api: Api, flags: u32, size: usize) -> Result<AllocPlan> {
    if flags & !api.valid_flags() != 0 {
        return Err(Error::InvalidParameter("flags outside GMEM_VALID_FLAGS / LMEM_VALID_FLAGS"));
    }
    let moveable = flags & MOVEABLE != 0;
    Ok(AllocPlan {
        moveable,
        zero: flags & ZEROINIT != 0,
        discardable: moveable && flags & api.discardable_bits() != 0,
        ddeshare: moveable && api == Api::Global && flags & DDESHARE != 0,
        size: if !moveable && size == 0 && api == Api::Global {
            1
        } else {
            size
        },
    })
}

/// A moveable entry's attributes (the table's own record; the visible flags word is derived).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// Marked discardable.
    pub discardable: bool,
    /// Allocated with GMEM_DDESHARE.
    pub ddeshare: bool,
    /// Lock count (saturates at 255, G10).
    pub lock: u8,
    /// Whether the entry has data (false: size 0 or discarded).
    pub has_data: bool,
}

impl Attr {
    /// The visible flags word below the slot (G4).
    pub const fn word(self) -> usize {
        E_USED
            | E_MOVEABLE
            | if self.discardable { E_DISCARDABLE } else { 0 }
            | if self.has_data { 0 } else { E_DISCARDED }
            | if self.ddeshare { E_DDESHARE } else { 0 }
            | (self.lock as usize) << E_LOCK_SHIFT
    }

    /// GlobalFlags / LocalFlags of a live moveable block (G15).
    pub const fn flags(self, api: Api) -> u32 {
        self.lock as u32
            | if self.discardable {
                api.discardable_bits()
            } else {
                0
            }
            | if self.has_data { 0 } else { DISCARDED }
            | if self.ddeshare && matches!(api, Api::Global) {
                DDESHARE
            } else {
                0
            }
    }
}

/// Whether a value has the shape of a handle: the slot of a table entry (G4).
pub const fn handle_shaped(v: usize) -> bool {
    v % ENTRY == SLOT
}

/// What a value passed as `hMem` (or `pMem`) is, as the engine found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// NULL.
    Null,
    /// A live moveable handle.
    Handle(Attr),
    /// Handle-shaped, but no live entry (freed, or never made).
    DeadHandle,
    /// A live block of the process heap that is not a moveable block's data; `front_end`
    /// when it lies in a low-fragmentation page (such a block never resizes in place, G19).
    Fixed {
        /// Whether the block is a front-end slot.
        front_end: bool,
    },
    /// The data pointer of a live moveable block.
    Data,
    /// Mapped memory that is not a live block (a freed fixed pointer, an interior pointer).
    Stale,
    /// Nothing is mapped there.
    Garbage,
}

/// GlobalLock / LocalLock on anything but a live handle or block (G11, G12): the failure.
pub const fn lock_failure(api: Api, t: Target) -> Reply<()> {
    match (t, api) {
        (Target::Handle(_), _) => Reply::set((), DISCARDED_ERR),
        (Target::DeadHandle, _) | (_, Api::Global) => Reply::set((), INVALID),
        (_, Api::Local) => Reply::ok(()),
    }
}

/// GlobalLock / LocalLock: the new lock count, or `None` with a discarded block (G10, G12).
pub const fn lock_count_after_lock(a: Attr) -> Option<u8> {
    if !a.has_data {
        return None;
    }
    Some(a.lock.saturating_add(1))
}

/// GlobalUnlock / LocalUnlock (G13): the return value, the last error, and the new lock count
/// of a live handle.
pub const fn unlock(api: Api, t: Target) -> (Reply<bool>, Option<u8>) {
    match t {
        Target::Handle(a) => match a.lock {
            0 => (Reply::set(false, NOT_LOCKED), None),
            1 => (Reply::set(false, 0), Some(0)),
            n => (Reply::ok(true), Some(n - 1)),
        },
        Target::DeadHandle => match api {
            Api::Global => (Reply::set(true, INVALID), None),
            Api::Local => (Reply::set(false, INVALID), None),
        },
        _ => match api {
            Api::Global => (Reply::ok(true), None),
            Api::Local => (Reply::set(false, NOT_LOCKED), None),
        },
    }
}

/// GlobalFlags / LocalFlags on anything but a live handle (G15): 0 for a block, else
/// GMEM_INVALID_HANDLE with the error.
pub const fn flags_other(api: Api, t: Target) -> Reply<u32> {
    match (t, api) {
        (Target::Fixed { .. } | Target::Data, _) => Reply::ok(0),
        (Target::Garbage | Target::Null, Api::Local) => Reply::set(INVALID_HANDLE, NOACCESS),
        _ => Reply::set(INVALID_HANDLE, INVALID),
    }
}

/// GlobalHandle / LocalHandle on anything but a block or handle (G17): NULL and the error.
pub const fn handle_failure(api: Api, t: Target) -> Reply<()> {
    match (t, api) {
        (Target::Garbage | Target::Null, Api::Local) => Reply::set((), NOACCESS),
        _ => Reply::set((), INVALID),
    }
}

/// GlobalFree / LocalFree on anything but NULL, a live handle or a fixed block (G18): the
/// error (the call returns the value itself). A moveable block's *data* pointer is refused
/// (our decision): freeing it would leave its handle pointing at freed memory.
pub const fn free_failure(t: Target) -> u32 {
    match t {
        Target::Garbage => NOACCESS,
        _ => INVALID,
    }
}

/// GlobalSize / LocalSize on anything but a live block or handle (G16).
pub const SIZE_FAILURE: u32 = INVALID;

/// What GlobalReAlloc / LocalReAlloc does (G19, G20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReallocPlan {
    /// Return NULL with this error.
    Fail(u32),
    /// Return the value unchanged (a MODIFY that changes nothing).
    Same,
    /// MODIFY|DISCARDABLE on a moveable block: mark it discardable, return the handle.
    MarkDiscardable,
    /// Global MODIFY|MOVEABLE on a fixed block: copy it into a new moveable block, return its
    /// handle (discardable if asked).
    Convert {
        /// Whether the new block is discardable.
        discardable: bool,
    },
    /// Resize the data to `n` bytes.
    Resize {
        /// The block must not move (a fixed block without MOVEABLE, a locked moveable block
        /// without MOVEABLE): failure is ERROR_NOT_ENOUGH_MEMORY.
        in_place_only: bool,
        /// Copy into a new block even if it could stay (a front-end fixed block, G19).
        force_move: bool,
    },
    /// Free the data of an unlocked moveable block and keep the handle (discarded).
    Discard,
    /// Give a moveable block without data new data of `n` bytes.
    Refill,
}

/// GlobalReAlloc / LocalReAlloc of `t` to `n` bytes with `flags` (G19, G20). The error codes
/// of refusals nobody measured are (our decision): ERROR_INVALID_PARAMETER for DISCARDABLE without
/// MODIFY, for a size-0 resize without MOVEABLE of a moveable block and for discarding a
/// locked block.
pub const fn realloc_plan(api: Api, t: Target, n: usize, flags: u32) -> ReallocPlan {
    let fixed_fe = match t {
        Target::Null | Target::DeadHandle | Target::Stale | Target::Data => {
            return ReallocPlan::Fail(INVALID)
        }
        Target::Garbage => return ReallocPlan::Fail(NOACCESS),
        Target::Fixed { front_end } => Some(front_end),
        Target::Handle(_) => None,
    };
    let moveable = flags & MOVEABLE != 0;
    let discardable = flags & api.discardable_bits() != 0;
    if flags & MODIFY != 0 {
        return match (t, fixed_fe) {
            (Target::Handle(_), _) if discardable => ReallocPlan::MarkDiscardable,
            (Target::Handle(_), _) => ReallocPlan::Same,
            _ if moveable && matches!(api, Api::Global) => ReallocPlan::Convert { discardable },
            _ => ReallocPlan::Same,
        };
    }
    if discardable {
        return ReallocPlan::Fail(PARAM);
    }
    match (t, fixed_fe) {
        (_, Some(true)) if !moveable => ReallocPlan::Fail(NOMEM),
        (_, Some(fe)) => ReallocPlan::Resize {
            in_place_only: !moveable,
            force_move: fe,
        },
        (Target::Handle(a), _) => {
            if n == 0 {
                if a.lock > 0 || !moveable {
                    ReallocPlan::Fail(PARAM)
                } else {
                    ReallocPlan::Discard
                }
            } else if !a.has_data {
                ReallocPlan::Refill
            } else {
                ReallocPlan::Resize {
                    in_place_only: a.lock > 0 && !moveable,
                    force_move: false,
                }
            }
        }
        _ => ReallocPlan::Fail(INVALID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Api = Api::Global;
    const L: Api = Api::Local;

    #[test]
    fn flags_are_validated_per_family() {
        assert!(alloc_plan(G, 0x80, 4).is_err()); // GMEM_MODIFY is not an allocation flag
        assert!(alloc_plan(G, 0x7F72, 4).is_ok());
        assert!(alloc_plan(L, 0x2000, 4).is_err());
        assert_eq!(alloc_plan(G, 0, 0).unwrap().size, 1);
        assert_eq!(alloc_plan(L, 0, 0).unwrap().size, 0);
        let p = alloc_plan(G, 0x100, 4).unwrap();
        assert!(!p.discardable && !p.moveable, "fixed blocks ignore DISCARDABLE");
        assert!(alloc_plan(L, 0x0202, 4).unwrap().discardable);
    }

    #[test]
    fn entry_words_match_g4() {
        let a = |discardable, ddeshare, lock, has_data| Attr {
            discardable,
            ddeshare,
            lock,
            has_data,
        };
        assert_eq!(a(false, false, 0, false).word(), 0xB);
        assert_eq!(a(true, false, 0, false).word(), 0xF);
        assert_eq!(a(true, false, 0, true).word(), 0x7);
        assert_eq!(a(true, true, 0, true).word(), 0x8007);
        assert_eq!(a(false, false, 5, true).word(), (5 << 16) | 3);
        assert_eq!(a(true, false, 0, false).flags(G), 0x4100);
        assert_eq!(a(true, true, 0, true).flags(G), 0x2100);
        assert_eq!(a(true, true, 2, true).flags(L), 0xF02);
    }

    #[test]
    fn unlock_matrix() {
        let h = |lock| Target::Handle(Attr {
            lock,
            has_data: true,
            ..Attr::default()
        });
        assert_eq!(unlock(G, h(2)), (Reply::ok(true), Some(1)));
        assert_eq!(unlock(L, h(1)), (Reply::set(false, 0), Some(0)));
        assert_eq!(unlock(G, h(0)), (Reply::set(false, 158), None));
        assert_eq!(unlock(G, Target::Fixed { front_end: false }).0, Reply::ok(true));
        assert_eq!(unlock(L, Target::Fixed { front_end: false }).0, Reply::set(false, 158));
        assert_eq!(unlock(G, Target::DeadHandle).0, Reply::set(true, 6));
        assert_eq!(unlock(L, Target::DeadHandle).0, Reply::set(false, 6));
        assert_eq!(unlock(G, Target::Garbage).0, Reply::ok(true));
        assert_eq!(unlock(L, Target::Garbage).0, Reply::set(false, 158));
    }

    #[test]
    fn realloc_matrix_rows() {
        use ReallocPlan::*;
        let f12 = Target::Fixed { front_end: true };
        let f128 = Target::Fixed { front_end: false };
        let m = |lock, has_data| Target::Handle(Attr {
            lock,
            has_data,
            ..Attr::default()
        });
        let (md, mm, mmd) = (MOVEABLE | 0x100, MOVEABLE | MODIFY, MOVEABLE | MODIFY | 0x100);
        // Case 66.
        assert_eq!(realloc_plan(G, f12, 512, 0), Fail(8));
        assert_eq!(realloc_plan(G, f12, 512, MODIFY), Same);
        assert_eq!(realloc_plan(G, f12, 512, MOVEABLE), Resize { in_place_only: false, force_move: true });
        assert_eq!(realloc_plan(G, f12, 512, mm), Convert { discardable: false });
        assert_eq!(realloc_plan(G, f12, 512, mmd), Convert { discardable: true });
        assert_eq!(realloc_plan(L, f12, 512, mm), Same);
        assert_eq!(realloc_plan(G, f12, 512, md), Fail(87));
        // Case 67.
        assert_eq!(realloc_plan(G, f128, 0x20200, 0), Resize { in_place_only: true, force_move: false });
        // Cases 72–74, 78.
        assert_eq!(realloc_plan(G, m(1, true), 512, MOVEABLE), Resize { in_place_only: false, force_move: false });
        assert_eq!(realloc_plan(G, m(1, true), 512, 0), Resize { in_place_only: true, force_move: false });
        assert_eq!(realloc_plan(G, m(1, true), 0, MOVEABLE), Fail(87));
        assert_eq!(realloc_plan(G, m(1, true), 0, mmd), MarkDiscardable);
        assert_eq!(realloc_plan(G, m(0, true), 0, MOVEABLE), Discard);
        assert_eq!(realloc_plan(G, m(0, true), 0, 0), Fail(87));
        assert_eq!(realloc_plan(G, m(0, false), 10, MOVEABLE), Refill);
        // G19's refusals.
        assert_eq!(realloc_plan(G, Target::Null, 10, MOVEABLE), Fail(6));
        assert_eq!(realloc_plan(L, Target::Garbage, 0, MOVEABLE), Fail(998));
        assert_eq!(realloc_plan(G, Target::DeadHandle, 0, MOVEABLE), Fail(6));
    }

    #[test]
    fn refusals() {
        assert_eq!(lock_failure(L, Target::Garbage), Reply::ok(()));
        assert_eq!(lock_failure(G, Target::Garbage), Reply::set((), 6));
        assert_eq!(flags_other(L, Target::Garbage), Reply::set(0x8000, 998));
        assert_eq!(flags_other(G, Target::Garbage), Reply::set(0x8000, 6));
        assert_eq!(handle_failure(L, Target::Garbage), Reply::set((), 998));
        assert_eq!(free_failure(Target::Garbage), 998);
        assert_eq!(free_failure(Target::DeadHandle), 6);
        assert!(handle_shaped(0xdeadbee8) && !handle_shaped(0xdeadbee0));
    }
}
