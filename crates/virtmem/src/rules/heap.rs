//! The heap rules (`docs/heap-spec.md` §3), free of memory and syscalls: HeapCreate's sizes and
//! rounding (H3–H6), the segment growth sequence (H7), the large-block threshold (H22, H23),
//! block geometry (H27), the front end's size classes (§6), flag composition (H9, H13) and the
//! low-fragmentation-heap state rules (H71, H72). The engine (`engine/heap/`) obeys these.

use crate::error::{Error, Result};

/// HEAP_NO_SERIALIZE.
pub const NO_SERIALIZE: u32 = 0x1;
/// HEAP_GROWABLE.
pub const GROWABLE: u32 = 0x2;
/// HEAP_GENERATE_EXCEPTIONS.
pub const GENERATE_EXCEPTIONS: u32 = 0x4;
/// HEAP_ZERO_MEMORY.
pub const ZERO_MEMORY: u32 = 0x8;
/// HEAP_REALLOC_IN_PLACE_ONLY.
pub const REALLOC_IN_PLACE_ONLY: u32 = 0x10;
/// HEAP_CREATE_ENABLE_EXECUTE.
pub const CREATE_ENABLE_EXECUTE: u32 = 0x40000;
/// Windows' internal "private heap" mark, recorded on every created heap (H9).
pub const PRIVATE: u32 = 0x1000;

/// Size of a block's in-band header (H27: 8 bytes on x64 and x86).
pub const BLOCK_HEADER: usize = 8;
/// Block granularity and pointer alignment (MEMORY_ALLOCATION_ALIGNMENT, H26).
pub const GRANULE: usize = 16;
/// Bytes at the start of every back-end segment before the first block's header: the
/// "heap header" a walk reports as the region's `cbData` (H60: ≤ 0x1000). Chosen so that a
/// fixed `HeapCreate(0, A, A)` fits a block of `A − 0xC00` but not `A − 0x600` (H24).
pub const SEGMENT_HEADER: usize = 0x800;
/// Large-block threshold on 64-bit: a request at or above it gets its own reservation in a
/// growable heap and fails in a fixed one (H22, H23): `0x20000 * ptr − 0x1000`.
pub const LARGE_THRESHOLD: usize = 0x20000 * core::mem::size_of::<usize>() - 0x1000;
/// Offset of a large block's pointer from its reservation base (H26, H76: 64-aligned, not
/// 128-aligned).
pub const LARGE_OFFSET: usize = 0x40;
/// Initial commit of a heap created with `dwInitialSize == 0` (H5: `0x400 * ptr`).
pub const MIN_COMMIT: usize = 0x400 * core::mem::size_of::<usize>();
/// Rounding of a fixed heap's maximum (H3: `0x400 * ptr`).
pub const FIXED_ROUND: usize = 0x400 * core::mem::size_of::<usize>();
/// Extra reservation of a growable heap's first segment (H4).
pub const GROWABLE_EXTRA: usize = 0x10000;
/// The second segment of a growable heap (H7); each later one doubles up to [`SEGMENT_CAP`].
pub const SECOND_SEGMENT: usize = 0x10_0000;
/// Largest size the segment sequence reaches (H7).
pub const SEGMENT_CAP: usize = 0xFD_0000;
/// Allocations of one size class after which the front end takes that class over (H71).
pub const LFH_ACTIVATION: u32 = 0x12;
/// Largest slot of the front end (header included); larger requests use the back end.
pub const LFH_MAX_SLOT: usize = 1024;
/// Number of front-end size classes (16-byte steps up to [`LFH_MAX_SLOT`]).
pub const LFH_CLASSES: usize = LFH_MAX_SLOT / GRANULE;
/// Largest request the front end serves.
pub const LFH_MAX_REQUEST: usize = LFH_MAX_SLOT - BLOCK_HEADER;

/// What HeapCreate reserves and commits for its first segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatePlan {
    /// Creation flags kept (H9): NO_SERIALIZE, GENERATE_EXCEPTIONS, CREATE_ENABLE_EXECUTE,
    /// plus PRIVATE and, for growable heaps, GROWABLE.
    pub flags: u32,
    /// Bytes reserved for the first segment (the heap's handle is its base).
    pub reserve: usize,
    /// Bytes committed at once from the base.
    pub commit: usize,
    /// Whether the heap may add segments (`dwMaximumSize == 0`).
    pub growable: bool,
}

/// HeapCreate's sizes (H3–H6, H9). `page` is the page size. Fails (ERROR_NOT_ENOUGH_MEMORY,
/// H8) only when the sizes overflow.
pub fn create_plan(options: u32, initial: usize, maximum: usize, page: usize) -> Result<CreatePlan> {
    let overflow = Error::NotEnoughMemory("heap size overflows");
    let kept = options & (NO_SERIALIZE | GENERATE_EXCEPTIONS | CREATE_ENABLE_EXECUTE);
    let init = round_up(initial, page).ok_or(overflow)?;
    if maximum == 0 {
        // H4: init + 64 KiB; H5: commit the initial size, at least the minimum.
        let reserve = init.checked_add(GROWABLE_EXTRA).ok_or(overflow)?;
        let commit = init.max(MIN_COMMIT).min(reserve);
        return Ok(CreatePlan {
            flags: kept | PRIVATE | GROWABLE,
            reserve,
            commit,
            growable: true,
        });
    }
    // H6: the maximum is raised to the initial size; H3: rounded to 0x400 * ptr.
    let max = maximum.max(init);
    let reserve = round_up(max, FIXED_ROUND.max(page)).ok_or(overflow)?;
    let commit = init.max(MIN_COMMIT).min(reserve);
    Ok(CreatePlan {
        flags: kept | PRIVATE,
        reserve,
        commit,
        growable: false,
    })
}

/// The size of the next segment of a growable heap after one of `previous` bytes, large
/// enough for a block of `need` bytes (header included) (H7).
pub fn next_segment(previous: usize, need: usize, page: usize) -> Option<usize> {
    let seq = if previous < SECOND_SEGMENT {
        SECOND_SEGMENT
    } else {
        previous.saturating_mul(2).min(SEGMENT_CAP)
    };
    let fit = round_up(need.checked_add(SEGMENT_HEADER + GRANULE)?, 0x10000.max(page))?;
    Some(seq.max(fit))
}

/// `v` rounded up to a multiple of the power of two `to`.
pub const fn round_up(v: usize, to: usize) -> Option<usize> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x & !(to - 1)),
        None => None,
    }
}

/// Back-end granules (16 bytes) a block of `req` requested bytes occupies (H27: consecutive
/// blocks are `align16(max(size, 16) + 8)` apart). `None` if it overflows.
pub const fn granules(req: usize) -> Option<usize> {
    let r = if req < GRANULE { GRANULE } else { req };
    match r.checked_add(BLOCK_HEADER + GRANULE - 1) {
        Some(x) => Some(x / GRANULE),
        None => None,
    }
}

/// The front-end size class of a request (slot = 16 · (class + 1) bytes, header included), or
/// `None` above [`LFH_MAX_REQUEST`].
#[inline]
pub const fn class_of(req: usize) -> Option<usize> {
    if req > LFH_MAX_REQUEST {
        return None;
    }
    // The smallest slot holding the header and the request, minus one granule:
    // `ceil((max(req, 8) + 8) / 16) - 1`, which is `(req + 7) / 16` for every request (for
    // `req < 8` both are 0): one addition and a shift on HeapAlloc's fast path.
    Some((req + BLOCK_HEADER - 1) / GRANULE)
}

/// Slot size in bytes of a front-end class.
#[inline]
pub const fn slot_size(class: usize) -> usize {
    (class + 1) * GRANULE
}

/// The requests of a front-end class: `(lowest, highest)` with `class_of(r) == Some(class)`
/// exactly for `lowest <= r <= highest`.
pub const fn class_range(class: usize) -> (usize, usize) {
    let hi = slot_size(class) - BLOCK_HEADER;
    let lo = if class == 0 { 0 } else { hi - GRANULE + 1 };
    (lo, hi)
}

/// An exact divisibility test by `d` (> 0) without a division: `(inverse, shift, limit)` such
/// that `n % d == 0` exactly when `n.wrapping_mul(inverse).rotate_right(shift) <= limit`
/// (Granlund and Montgomery: `d = 2^shift · m` with `m` odd, `inverse = m⁻¹ mod 2^64`).
pub const fn divisibility(d: u64) -> (u64, u32, u64) {
    let shift = d.trailing_zeros();
    let m = d >> shift;
    // Newton's iteration doubles the correct low bits each step: 3 → 6 → … → 96 ≥ 64.
    let mut x = m;
    let mut k = 0;
    while k < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(x)));
        k += 1;
    }
    (x, shift, u64::MAX / d)
}

/// The flags that apply to one call (H13): the heap's creation flags or the call's, for the
/// four that matter per call.
#[inline]
pub const fn effective_flags(heap: u32, call: u32) -> u32 {
    (heap | call) & (NO_SERIALIZE | GENERATE_EXCEPTIONS | ZERO_MEMORY | REALLOC_IN_PLACE_ONLY)
}

/// Whether a heap may run the low-fragmentation front end: serialized and growable (H11, H72;
/// fixed heaps (our decision)).
pub const fn lfh_eligible(flags: u32) -> bool {
    flags & NO_SERIALIZE == 0 && flags & GROWABLE != 0
}

/// HeapSetInformation(HeapCompatibilityInformation, value) on a heap whose current value is
/// `current` (H72): the new value, or the error.
pub fn set_compatibility(current: u32, value: u32, flags: u32) -> Result<u32> {
    if current == 2 {
        return if value == 2 {
            Ok(2)
        } else {
            Err(Error::Code(31))
        };
    }
    match value {
        2 if lfh_eligible(flags) => Ok(2),
        2 => Err(Error::InvalidParameter("the heap cannot have a low-fragmentation heap")),
        _ => Err(Error::Code(31)),
    }
}

/// The largest single request a heap accepts before looking for room: fixed heaps refuse any
/// request at or above the large-block threshold (H23); every heap refuses sizes whose block
/// would overflow (H20).
pub fn request_fits(req: usize, growable: bool) -> Result<()> {
    if granules(req).is_none() || req > isize::MAX as usize - 0x10000 {
        return Err(Error::NotEnoughMemory("the request is too large"));
    }
    if !growable && req >= LARGE_THRESHOLD {
        return Err(Error::NotEnoughMemory(
            "a fixed-size heap cannot hold a block this large",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_heaps_round_to_two_pages() {
        for n in (0x100..=0xFF00).step_by(0x100) {
            let p = create_plan(0, n, n, 0x1000).unwrap();
            assert_eq!(p.reserve, n.div_ceil(0x2000) * 0x2000);
            assert!(!p.growable);
        }
    }

    #[test]
    fn growable_heaps_reserve_init_plus_64k() {
        for init in [0, 0x80000, 0x150000] {
            let p = create_plan(1, init, 0, 0x1000).unwrap();
            assert_eq!(p.reserve, init + 0x10000);
            assert_eq!(p.flags, NO_SERIALIZE | GROWABLE | PRIVATE);
        }
        assert_eq!(create_plan(0, 0, 0, 0x1000).unwrap().commit, 0x2000);
        assert_eq!(create_plan(0x20 | 0x40, 0, 0, 0x1000).unwrap().flags, GROWABLE | PRIVATE);
    }

    #[test]
    fn segments_double_to_the_cap() {
        let mut s = 0x10000;
        let mut seen = vec![];
        for _ in 0..8 {
            s = next_segment(s, 0x60008, 0x1000).unwrap();
            seen.push(s);
        }
        assert_eq!(&seen[..6], &[0x100000, 0x200000, 0x400000, 0x800000, 0xFD0000, 0xFD0000]);
    }

    #[test]
    fn geometry() {
        assert_eq!(granules(0), Some(2));
        assert_eq!(granules(123), Some(9));
        assert_eq!(granules(usize::MAX), None);
        assert_eq!(class_of(0), Some(0));
        assert_eq!(class_of(8), Some(0));
        assert_eq!(class_of(9), Some(1));
        assert_eq!(class_of(LFH_MAX_REQUEST), Some(LFH_CLASSES - 1));
        assert_eq!(class_of(LFH_MAX_REQUEST + 1), None);
        for r in 0..=LFH_MAX_REQUEST {
            let s = slot_size(class_of(r).unwrap());
            assert!(s >= r + BLOCK_HEADER && s - r - BLOCK_HEADER < GRANULE + 8);
            // The smallest slot that holds the header and at least 8 bytes.
            assert!(s - GRANULE < r.max(BLOCK_HEADER) + BLOCK_HEADER, "request {r}");
        }
    }

    #[test]
    fn class_ranges_and_divisibility() {
        for c in 0..LFH_CLASSES {
            let (lo, hi) = class_range(c);
            assert!(lo == 0 || class_of(lo - 1) == Some(c - 1));
            assert_eq!(class_of(lo), Some(c));
            assert_eq!(class_of(hi), Some(c));
            assert_ne!(class_of(hi + 1), Some(c));
            let s = slot_size(c) as u64;
            let (inv, sh, lim) = divisibility(s);
            for n in 0..70_000u64 {
                assert_eq!(n % s == 0, n.wrapping_mul(inv).rotate_right(sh) <= lim, "{n} {s}");
            }
            for n in [u64::MAX, u64::MAX - s + 1, 1 << 63] {
                assert_eq!(n % s == 0, n.wrapping_mul(inv).rotate_right(sh) <= lim);
            }
        }
    }

    #[test]
    fn compatibility_rules() {
        assert_eq!(set_compatibility(0, 2, GROWABLE), Ok(2));
        assert_eq!(set_compatibility(2, 0, GROWABLE), Err(Error::Code(31)));
        assert_eq!(set_compatibility(2, 1, GROWABLE), Err(Error::Code(31)));
        assert!(matches!(
            set_compatibility(0, 2, GROWABLE | NO_SERIALIZE),
            Err(Error::InvalidParameter(_))
        ));
        assert_eq!(set_compatibility(0, 1, GROWABLE), Err(Error::Code(31)));
    }
}
