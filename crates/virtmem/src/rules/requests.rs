//! Argument validation for every call: a raw Win32 request becomes a typed request, or the
//! exact Win32 error Windows gives (`semantics.md` §2–6). Nothing here looks at page state.

use super::protection::Protection;
use crate::error::{Error, Result};
use crate::vocab::consts::*;
use crate::vocab::layout::Layout;

/// Where a new reservation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// At this granularity-aligned base.
    Fixed(usize),
    /// Anywhere (the system chooses).
    Anywhere,
    /// The highest suitable free range (MEM_TOP_DOWN).
    TopDown,
    /// Anywhere inside `[lowest, highest_end)`, aligned to `align` (VirtualAlloc2's
    /// MEM_ADDRESS_REQUIREMENTS), the highest such range with `top_down`.
    Within {
        /// Lowest acceptable base.
        lowest: usize,
        /// Highest acceptable end (exclusive).
        highest_end: usize,
        /// Alignment of the base (a power of two, at least the granularity).
        align: usize,
        /// MEM_TOP_DOWN.
        top_down: bool,
    },
}

/// A validated VirtualAlloc request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocRequest {
    /// MEM_RESERVE (optionally with MEM_COMMIT): create a new allocation.
    Reserve {
        /// Where.
        placement: Placement,
        /// Size in bytes, a multiple of the page size.
        size: usize,
        /// Whether every page is committed at once.
        commit: bool,
        /// The protection (AllocationProtect, and the pages' protection when committed).
        protection: Protection,
        /// MEM_WRITE_WATCH.
        write_watch: bool,
        /// MEM_LARGE_PAGES.
        large_pages: bool,
        /// MEM_PHYSICAL (an AWE window).
        physical: bool,
    },
    /// MEM_COMMIT of pages `[start, end)` of an existing reservation.
    Commit {
        /// First page.
        start: usize,
        /// End (exclusive, page aligned).
        end: usize,
        /// The new protection of the pages.
        protection: Protection,
    },
    /// MEM_RESET of `[start, end)`.
    Reset {
        /// First page.
        start: usize,
        /// End.
        end: usize,
    },
    /// MEM_RESET_UNDO of `[start, end)`.
    ResetUndo {
        /// First page.
        start: usize,
        /// End.
        end: usize,
    },
    /// VirtualAlloc2 MEM_RESERVE|MEM_RESERVE_PLACEHOLDER: a new placeholder.
    ReservePlaceholder {
        /// Where.
        placement: Placement,
        /// Size in bytes.
        size: usize,
    },
    /// VirtualAlloc2 MEM_REPLACE_PLACEHOLDER: the placeholder at `base` of exactly `size`
    /// bytes becomes an ordinary allocation.
    ReplacePlaceholder {
        /// The placeholder's base.
        base: usize,
        /// Its size.
        size: usize,
        /// MEM_COMMIT too.
        commit: bool,
        /// The new allocation's protection.
        protection: Protection,
        /// MEM_WRITE_WATCH.
        write_watch: bool,
    },
}

/// One extended parameter of VirtualAlloc2, as the Win32 face decoded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtendedParameter {
    /// MemExtendedParameterAddressRequirements: a MEM_ADDRESS_REQUIREMENTS.
    AddressRequirements {
        /// LowestStartingAddress (0: no limit).
        lowest: usize,
        /// HighestEndingAddress (0: no limit).
        highest: usize,
        /// Alignment (0: the granularity).
        alignment: usize,
    },
    /// MemExtendedParameterNumaNode: a preference, accepted and ignored.
    NumaNode(u32),
    /// Any other type (its raw value).
    Other(i32),
}

/// The `Type` field of a MEM_EXTENDED_PARAMETER header: its low 8 bits (`Type : 8`).
pub const EXTENDED_PARAMETER_TYPE_MASK: u64 = 0xFF;

/// Decodes the 64-bit header of a MEM_EXTENDED_PARAMETER (`Type : 8`, `Reserved : 56`,
/// `windows-sys-api.md`) into its type. The Reserved bits must be zero (the documentation
/// calls them Reserved; a set bit is a different, unknown header, never read as the type in
/// the low byte): any set → 87. Type 0 (MemExtendedParameterInvalidType) or
/// MemExtendedParameterMax and above → 87 (case 127). RELIABILITY O4.
pub fn extended_parameter_type(header: u64) -> Result<i32> {
    if header & !EXTENDED_PARAMETER_TYPE_MASK != 0 {
        return Err(Error::InvalidParameter(
            "extended parameter: Reserved bits of the header are set",
        ));
    }
    let ty = (header & EXTENDED_PARAMETER_TYPE_MASK) as i32;
    if ty <= MemExtendedParameterInvalidType || ty >= MemExtendedParameterMax {
        return Err(Error::InvalidParameter("invalid extended parameter type"));
    }
    Ok(ty)
}

/// Validates VirtualAlloc2 / VirtualAlloc2FromApp (`windows-cases.md` §L–M): the placeholder
/// flags and extended parameters, then everything VirtualAlloc checks.
pub fn validate_alloc2(
    layout: &Layout,
    addr: usize,
    size: usize,
    alloc_type: u32,
    protect: u32,
    params: &[ExtendedParameter],
    flavor: AllocFlavor,
) -> Result<AllocRequest> {
    let t = alloc_type;
    let reserve_ph = t & MEM_RESERVE_PLACEHOLDER != 0;
    let replace_ph = t & MEM_REPLACE_PLACEHOLDER != 0;
    let mut requirements = None;
    for p in params {
        match *p {
            ExtendedParameter::AddressRequirements { .. } if requirements.is_some() => {
                return Err(Error::InvalidParameter(
                    "extended parameter type given twice",
                ));
            }
            ExtendedParameter::AddressRequirements {
                lowest,
                highest,
                alignment,
            } => requirements = Some((lowest, highest, alignment)),
            ExtendedParameter::NumaNode(_) => {}
            ExtendedParameter::Other(ty) => {
                if ty <= 0 || ty >= MemExtendedParameterMax {
                    return Err(Error::InvalidParameter("invalid extended parameter type"));
                }
                return Err(Error::NotSupported("this VirtualAlloc2 extended parameter"));
            }
        }
    }
    if reserve_ph || replace_ph {
        if t & MEM_RESERVE == 0 {
            // REPLACE_PLACEHOLDER alone or with MEM_COMMIT only (case 138).
            return Err(Error::InvalidParameter(
                "placeholder flags need MEM_RESERVE",
            ));
        }
        if reserve_ph && replace_ph {
            return Err(Error::InvalidParameter(
                "reserve and replace a placeholder at once",
            ));
        }
        if reserve_ph {
            if t & !(MEM_RESERVE | MEM_RESERVE_PLACEHOLDER | MEM_TOP_DOWN) != 0 {
                return Err(Error::InvalidParameter(
                    "a placeholder takes no other flags",
                ));
            }
            if protect != PAGE_NOACCESS {
                return Err(Error::InvalidParameter(
                    "a placeholder must be PAGE_NOACCESS",
                ));
            }
        }
    }
    // Everything VirtualAlloc checks, with the placeholder bits taken out.
    let plain = t & !(MEM_RESERVE_PLACEHOLDER | MEM_REPLACE_PLACEHOLDER);
    let req = validate_alloc(layout, addr, size, plain, protect, flavor)?;
    // "A MEM_ADDRESS_REQUIREMENTS structure with all fields set to 0 is the same as not
    // specifying one at all" (Microsoft's reference; Windows accepts it with an address too).
    // Given twice, it is still 87 (checked above).
    let requirements = requirements.filter(|&r| r != (0, 0, 0));
    if let Some((lowest, highest, alignment)) = requirements {
        let mut placement = requirements_placement(layout, lowest, highest, alignment)?;
        if let Placement::Within { top_down, .. } = &mut placement {
            *top_down = t & MEM_TOP_DOWN != 0;
        }
        if addr != 0 {
            return Err(Error::InvalidParameter(
                "address requirements need a NULL address",
            ));
        }
        if t & MEM_RESERVE == 0 {
            return Err(Error::InvalidParameter(
                "address requirements need MEM_RESERVE",
            ));
        }
        return Ok(match req {
            AllocRequest::Reserve {
                size,
                commit,
                protection,
                write_watch,
                large_pages,
                physical,
                ..
            } if !reserve_ph && !replace_ph => AllocRequest::Reserve {
                placement,
                size,
                commit,
                protection,
                write_watch,
                large_pages,
                physical,
            },
            AllocRequest::Reserve { size, .. } if reserve_ph => {
                AllocRequest::ReservePlaceholder { placement, size }
            }
            _ => {
                return Err(Error::InvalidParameter(
                    "address requirements with this request",
                ))
            }
        });
    }
    Ok(match req {
        AllocRequest::Reserve {
            placement, size, ..
        } if reserve_ph => AllocRequest::ReservePlaceholder { placement, size },
        AllocRequest::Reserve {
            placement: Placement::Fixed(_),
            commit,
            protection,
            write_watch,
            ..
        } if replace_ph => {
            // Placeholders split at page granularity: the base is the page, not the granule.
            let (base, end) = layout.touched_pages(addr, size).expect("validated");
            AllocRequest::ReplacePlaceholder {
                base,
                size: end - base,
                commit,
                protection,
                write_watch,
            }
        }
        _ if replace_ph => {
            return Err(Error::InvalidParameter(
                "MEM_REPLACE_PLACEHOLDER needs an address",
            ));
        }
        other => other,
    })
}

/// MEM_ADDRESS_REQUIREMENTS → a placement (cases 127–131).
fn requirements_placement(
    layout: &Layout,
    lowest: usize,
    highest: usize,
    alignment: usize,
) -> Result<Placement> {
    let g = layout.granularity;
    if highest != 0
        && (highest.wrapping_add(1) % layout.page_size != 0 || highest > layout.max_address)
    {
        return Err(Error::InvalidParameter(
            "HighestEndingAddress must be a page boundary minus 1 inside user space",
        ));
    }
    if lowest % g != 0 || lowest > layout.max_address {
        return Err(Error::InvalidParameter(
            "LowestStartingAddress must be granularity-aligned inside user space",
        ));
    }
    if highest != 0 && lowest > highest {
        return Err(Error::InvalidParameter(
            "LowestStartingAddress above HighestEndingAddress",
        ));
    }
    if alignment != 0 && (!alignment.is_power_of_two() || alignment < g) {
        return Err(Error::InvalidParameter(
            "Alignment must be a power of two at least the granularity",
        ));
    }
    Ok(Placement::Within {
        lowest: lowest.max(layout.min_address),
        highest_end: if highest == 0 {
            layout.allocatable_end()
        } else {
            (highest + 1).min(layout.allocatable_end())
        },
        align: alignment.max(g),
        top_down: false,
    })
}

/// Which VirtualAlloc flavour is asking: the FromApp variants forbid executable protections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AllocFlavor {
    /// VirtualAllocFromApp / VirtualAlloc2FromApp.
    pub from_app: bool,
}

/// The allocation-type bits VirtualAlloc (and NtAllocateVirtualMemory) know; the placeholder
/// bits come only with the 2 / Ex functions.
pub(crate) const KNOWN_ALLOC_BITS: u32 = MEM_COMMIT
    | MEM_RESERVE
    | MEM_RESET
    | MEM_RESET_UNDO
    | MEM_TOP_DOWN
    | MEM_WRITE_WATCH
    | MEM_PHYSICAL
    | MEM_LARGE_PAGES;

/// Validates VirtualAlloc's arguments by the full Windows rules. Valid requests for features
/// virtmem does not implement yet (write watch, large pages, AWE, guard pages) come back as
/// ERROR_NOT_SUPPORTED only after every other check has passed.
pub fn validate_alloc(
    layout: &Layout,
    addr: usize,
    size: usize,
    alloc_type: u32,
    protect: u32,
    flavor: AllocFlavor,
) -> Result<AllocRequest> {
    let t = alloc_type;
    if size == 0 {
        return Err(Error::InvalidParameter("dwSize is 0"));
    }
    if t & !KNOWN_ALLOC_BITS != 0 {
        return Err(Error::InvalidParameter("unknown allocation type bits"));
    }
    if t & (MEM_RESERVE | MEM_COMMIT | MEM_RESET | MEM_RESET_UNDO) == 0 {
        return Err(Error::InvalidParameter(
            "the allocation type needs MEM_RESERVE, MEM_COMMIT, MEM_RESET or MEM_RESET_UNDO",
        ));
    }
    if t & MEM_RESET != 0 && t != MEM_RESET {
        return Err(Error::InvalidParameter(
            "MEM_RESET cannot be combined with other flags",
        ));
    }
    if t & MEM_RESET_UNDO != 0 && t != MEM_RESET_UNDO {
        return Err(Error::InvalidParameter(
            "MEM_RESET_UNDO cannot be combined with other flags",
        ));
    }
    if t & MEM_WRITE_WATCH != 0 && t & MEM_RESERVE == 0 {
        return Err(Error::InvalidParameter("MEM_WRITE_WATCH needs MEM_RESERVE"));
    }
    if t & MEM_LARGE_PAGES != 0 {
        if t & (MEM_RESERVE | MEM_COMMIT) != (MEM_RESERVE | MEM_COMMIT) {
            return Err(Error::InvalidParameter(
                "MEM_LARGE_PAGES needs MEM_RESERVE|MEM_COMMIT",
            ));
        }
        if t & (MEM_WRITE_WATCH | MEM_PHYSICAL) != 0 {
            return Err(Error::InvalidParameter(
                "MEM_LARGE_PAGES cannot be combined with MEM_WRITE_WATCH or MEM_PHYSICAL",
            ));
        }
    }
    if t & MEM_PHYSICAL != 0 {
        if t & MEM_RESERVE == 0 || t & !(MEM_RESERVE | MEM_PHYSICAL | MEM_TOP_DOWN) != 0 {
            return Err(Error::InvalidParameter(
                "MEM_PHYSICAL needs MEM_RESERVE and allows only MEM_TOP_DOWN besides",
            ));
        }
        if protect != PAGE_READWRITE {
            return Err(Error::InvalidParameter(
                "MEM_PHYSICAL needs exactly PAGE_READWRITE",
            ));
        }
    }
    // The protection must be valid even where it is ignored (MEM_RESET) [doc].
    // Copy-on-write protections pass only for a plain commit, which may be of a view.
    let commit_only = addr != 0
        && t & (MEM_RESERVE
            | MEM_RESET
            | MEM_RESET_UNDO
            | MEM_LARGE_PAGES
            | MEM_PHYSICAL
            | MEM_WRITE_WATCH
            | MEM_TOP_DOWN)
            == 0;
    let protection = if commit_only {
        Protection::parse_for_views(protect, flavor.from_app)?
    } else {
        Protection::parse(protect, flavor.from_app)?
    };
    if t & MEM_LARGE_PAGES != 0 && protection.guard {
        // [ours] A guard cannot be one-shot on a huge page, and large pages never change
        // protection: refused (it used to be accepted, and the first touch killed the process).
        return Err(Error::InvalidParameter(
            "MEM_LARGE_PAGES cannot be PAGE_GUARD",
        ));
    }

    let reset = t & (MEM_RESET | MEM_RESET_UNDO) != 0;
    if addr == 0 && reset {
        return Err(Error::InvalidParameter("MEM_RESET needs an address")); // [ours]
    }
    if addr != 0 {
        if addr < layout.min_address {
            return Err(Error::InvalidParameter(
                "address below the user-space minimum",
            ));
        }
        let end = addr
            .checked_add(size)
            .ok_or(Error::InvalidParameter("the range wraps around"))?;
        if end - 1 > layout.max_address {
            return Err(Error::InvalidParameter("the range runs beyond user space"));
        }
        if end > layout.allocatable_end() {
            // The top granule below the limit is never allocatable [I: ReactOS].
            return Err(Error::InvalidParameter(
                "the range reaches the reserved top granule",
            ));
        }
    } else if size > layout.allocatable_end() - layout.min_address {
        return Err(Error::InvalidParameter("the size exceeds user space"));
    }

    if t & MEM_LARGE_PAGES != 0 {
        // Size and address multiples of the large-page minimum [doc; 87 is ours].
        let lp = layout.large_page_size;
        if lp == 0 {
            return Err(Error::NotSupported("this system has no large pages"));
        }
        if size % lp != 0 || addr % lp != 0 {
            return Err(Error::InvalidParameter(
                "MEM_LARGE_PAGES needs size and address multiples of GetLargePageMinimum()",
            ));
        }
    }

    if t & MEM_RESET != 0 {
        let (start, end) = layout.touched_pages(addr, size).expect("checked above");
        return Ok(AllocRequest::Reset { start, end });
    }
    if t & MEM_RESET_UNDO != 0 {
        let (start, end) = layout.touched_pages(addr, size).expect("checked above");
        return Ok(AllocRequest::ResetUndo { start, end });
    }
    if t & MEM_RESERVE != 0 || addr == 0 {
        // MEM_COMMIT with a NULL address reserves and commits.
        let commit = t & MEM_COMMIT != 0;
        let (placement, size) = if addr == 0 {
            let size = layout.page_ceil(size).expect("checked above");
            let placement = if t & MEM_TOP_DOWN != 0 {
                Placement::TopDown
            } else {
                Placement::Anywhere
            };
            (placement, size)
        } else {
            let base = layout.granule_floor(addr);
            let end = layout.page_ceil(addr + size).expect("checked above");
            (Placement::Fixed(base), end - base)
        };
        return Ok(AllocRequest::Reserve {
            placement,
            size,
            commit,
            protection,
            write_watch: t & MEM_WRITE_WATCH != 0,
            large_pages: t & MEM_LARGE_PAGES != 0,
            physical: t & MEM_PHYSICAL != 0,
        });
    }
    let (start, end) = layout.touched_pages(addr, size).expect("checked above");
    Ok(AllocRequest::Commit {
        start,
        end,
        protection,
    })
}

/// A validated VirtualFree request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeRequest {
    /// MEM_RELEASE of the allocation based at this (page-rounded) address.
    Release {
        /// Must be an allocation base.
        base: usize,
    },
    /// MEM_DECOMMIT with size 0: the whole allocation based here.
    DecommitAll {
        /// Must be an allocation base.
        base: usize,
    },
    /// MEM_DECOMMIT of the pages touched by a range.
    Decommit {
        /// First page.
        start: usize,
        /// End.
        end: usize,
    },
    /// MEM_RELEASE with MEM_PRESERVE_PLACEHOLDER (split a placeholder) or
    /// MEM_COALESCE_PLACEHOLDERS (merge placeholders) over the pages of a range.
    Placeholder {
        /// First page.
        start: usize,
        /// End.
        end: usize,
        /// MEM_COALESCE_PLACEHOLDERS (else MEM_PRESERVE_PLACEHOLDER).
        coalesce: bool,
    },
}

/// Validates VirtualFree's arguments (`semantics.md` §3).
pub fn validate_free(
    layout: &Layout,
    addr: usize,
    size: usize,
    free_type: u32,
) -> Result<FreeRequest> {
    let placeholder = free_type == MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER
        || free_type == MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS;
    if free_type != MEM_DECOMMIT && free_type != MEM_RELEASE && !placeholder {
        return Err(Error::InvalidParameter(
            "dwFreeType must be MEM_DECOMMIT or MEM_RELEASE",
        ));
    }
    if placeholder && size == 0 {
        // Cases 135 and 139.
        return Err(Error::InvalidParameter(
            "placeholder operations need a size",
        ));
    }
    if free_type == MEM_RELEASE && size != 0 {
        // Checked by kernelbase before anything else.
        return Err(Error::InvalidParameter("MEM_RELEASE needs dwSize 0"));
    }
    if addr > layout.max_address {
        return Err(Error::InvalidParameter("address above user space"));
    }
    match addr.checked_add(size) {
        Some(end) if size == 0 || end - 1 <= layout.max_address => {}
        _ => return Err(Error::InvalidParameter("the range runs beyond user space")),
    }
    let base = layout.page_floor(addr);
    Ok(match (free_type, size) {
        _ if placeholder => {
            let (start, end) = layout.touched_pages(addr, size).expect("checked above");
            FreeRequest::Placeholder {
                start,
                end,
                coalesce: free_type & MEM_COALESCE_PLACEHOLDERS != 0,
            }
        }
        (MEM_RELEASE, _) => FreeRequest::Release { base },
        (_, 0) => FreeRequest::DecommitAll { base },
        _ => {
            let (start, end) = layout.touched_pages(addr, size).expect("checked above");
            FreeRequest::Decommit { start, end }
        }
    })
}

/// Validates the range of VirtualProtect / VirtualLock / VirtualUnlock: size 0 or a range
/// above user space is 87. Returns the touched pages.
pub fn validate_range(layout: &Layout, addr: usize, size: usize) -> Result<(usize, usize)> {
    if size == 0 {
        return Err(Error::InvalidParameter("dwSize is 0"));
    }
    match addr.checked_add(size) {
        Some(end) if end - 1 <= layout.max_address => {
            Ok(layout.touched_pages(addr, size).expect("no overflow"))
        }
        _ => Err(Error::InvalidParameter("the range runs beyond user space")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Layout = Layout::WIN64;

    fn code(r: Result<AllocRequest>) -> u32 {
        r.map(|_| 0).unwrap_or_else(|e| e.win32_code())
    }

    #[test]
    fn alloc_type_rules() {
        let rw = PAGE_READWRITE;
        let f = AllocFlavor::default();
        assert_eq!(code(validate_alloc(&L, 0, 0, MEM_RESERVE, rw, f)), 87);
        assert_eq!(code(validate_alloc(&L, 0, 0x1000, MEM_TOP_DOWN, rw, f)), 87);
        assert_eq!(
            code(validate_alloc(&L, 0, 0x1000, MEM_WRITE_WATCH, rw, f)),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0,
                0x1000,
                MEM_RESERVE | 0x40000000,
                rw,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0x10000,
                0x1000,
                MEM_RESET | MEM_COMMIT,
                rw,
                f
            )),
            87
        );
        assert_eq!(code(validate_alloc(&L, 0, 0x1000, MEM_RESET, rw, f)), 87);
        assert_eq!(
            code(validate_alloc(&L, 0x10000, 0x1000, MEM_RESET, 0, f)),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0x10000,
                0x1000,
                MEM_RESET_UNDO | MEM_TOP_DOWN,
                rw,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0,
                0x1000,
                MEM_LARGE_PAGES | MEM_RESERVE,
                rw,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0,
                0x1000,
                MEM_PHYSICAL | MEM_RESERVE,
                PAGE_READONLY,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0,
                0x1000,
                MEM_PHYSICAL | MEM_RESERVE | MEM_COMMIT,
                rw,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0,
                0x1000,
                MEM_RESERVE | MEM_WRITE_WATCH,
                rw,
                f
            )),
            0
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0,
                0x1000,
                MEM_RESERVE | MEM_PHYSICAL | MEM_TOP_DOWN,
                rw,
                f
            )),
            0
        );
        let lp = MEM_LARGE_PAGES | MEM_RESERVE | MEM_COMMIT;
        assert_eq!(code(validate_alloc(&L, 0, 0x1000, lp, rw, f)), 87);
        assert_eq!(
            code(validate_alloc(&L, 0x10_0000, 0x20_0000, lp, rw, f)),
            87
        );
        assert_eq!(code(validate_alloc(&L, 0, 0x40_0000, lp, rw, f)), 0);
    }

    #[test]
    fn addresses() {
        let f = AllocFlavor::default();
        let rw = PAGE_READWRITE;
        assert_eq!(
            code(validate_alloc(&L, 0xFFFF, 0x1000, MEM_RESERVE, rw, f)),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                usize::MAX - 0xFFF,
                0x2000,
                MEM_RESERVE,
                rw,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0x7FFF_FFFE_0000,
                0x1000,
                MEM_RESERVE,
                rw,
                f
            )),
            87
        );
        assert_eq!(
            code(validate_alloc(
                &L,
                0x7FFF_FFFD_0000,
                0x10000,
                MEM_RESERVE,
                rw,
                f
            )),
            0
        );
        assert_eq!(
            validate_alloc(&L, 0x4000_1234, 0x2000, MEM_RESERVE, rw, f).unwrap(),
            AllocRequest::Reserve {
                placement: Placement::Fixed(0x4000_0000),
                size: 0x4000,
                commit: false,
                protection: Protection::parse(rw, false).unwrap(),
                write_watch: false,
                large_pages: false,
                physical: false,
            }
        );
        assert_eq!(
            validate_alloc(&L, 0x4000_1FFF, 2, MEM_COMMIT, rw, f).unwrap(),
            AllocRequest::Commit {
                start: 0x4000_1000,
                end: 0x4000_3000,
                protection: Protection::parse(rw, false).unwrap()
            }
        );
    }

    #[test]
    fn extended_parameter_header() {
        assert_eq!(extended_parameter_type(1), Ok(1));
        assert_eq!(extended_parameter_type(2), Ok(2));
        for bad in [
            0,
            MemExtendedParameterMax as u64,
            0xFF,
            0x101,
            0x102,
            1 << 63 | 1,
            0x100,
        ] {
            assert_eq!(
                extended_parameter_type(bad).map_err(|e| e.win32_code()),
                Err(87),
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn free_rules() {
        let c = |a, s, t| {
            validate_free(&L, a, s, t)
                .map(|_| 0)
                .unwrap_or_else(|e| e.win32_code())
        };
        assert_eq!(c(0x10000, 0x10000, 0), 87);
        assert_eq!(c(0x10000, 0, MEM_FREE), 87);
        assert_eq!(c(0x10000, 1, MEM_RELEASE), 87);
        assert_eq!(c(0x10000, 0, MEM_RELEASE | MEM_DECOMMIT), 87);
        assert_eq!(c(0x8000_0000_0000, 0, MEM_RELEASE), 87);
        assert_eq!(c(0x10000, 0, MEM_RELEASE), 0);
        assert_eq!(c(0x10000, 0, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER), 87);
        assert_eq!(
            c(0x10000, 0x1000, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            0
        );
        assert_eq!(
            c(0x10000, 0x1000, MEM_DECOMMIT | MEM_PRESERVE_PLACEHOLDER),
            87
        );
        assert_eq!(
            validate_free(&L, 0x1_1FFF, 2, MEM_DECOMMIT).unwrap(),
            FreeRequest::Decommit {
                start: 0x1_1000,
                end: 0x1_3000
            }
        );
    }
}
