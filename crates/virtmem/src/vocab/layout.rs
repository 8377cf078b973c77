//! The shape of an address space: page size, allocation granularity and user-space limits.

/// The parameters every rule depends on. The native space uses the host's values; a simulated
/// space may use any consistent set (e.g. a 32-bit process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Page size P (a power of two).
    pub page_size: usize,
    /// Allocation granularity G (a power of two, a multiple of P).
    pub granularity: usize,
    /// `lpMinimumApplicationAddress`: the lowest usable address.
    pub min_address: usize,
    /// `lpMaximumApplicationAddress`: the highest usable address (inclusive).
    pub max_address: usize,
    /// `GetLargePageMinimum()`: the large-page size, 0 where large pages are unsupported.
    pub large_page_size: usize,
}

impl Layout {
    /// x64 Windows: 4 KiB pages, 64 KiB granularity, `[0x10000, 0x7FFFFFFEFFFF]`.
    pub const WIN64: Layout = Layout {
        page_size: 0x1000,
        granularity: 0x10000,
        min_address: 0x10000,
        max_address: 0x7FFF_FFFE_FFFF,
        large_page_size: 0x20_0000,
    };
    /// A 32-bit process without /LARGEADDRESSAWARE: `[0x10000, 0x7FFEFFFF]`.
    pub const WIN32: Layout = Layout {
        page_size: 0x1000,
        granularity: 0x10000,
        min_address: 0x10000,
        max_address: 0x7FFE_FFFF,
        large_page_size: 0x20_0000,
    };

    /// One past the highest address any allocation may cover: the top granule below the
    /// user-space limit is never allocatable (`semantics.md` §2, [I: ReactOS]).
    pub const fn allocatable_end(&self) -> usize {
        (self.max_address + 1) - self.granularity
    }

    /// `addr` rounded down to a page boundary.
    pub const fn page_floor(&self, addr: usize) -> usize {
        addr & !(self.page_size - 1)
    }

    /// `addr` rounded down to a granularity boundary.
    pub const fn granule_floor(&self, addr: usize) -> usize {
        addr & !(self.granularity - 1)
    }

    /// `addr` rounded up to a page boundary, or `None` on overflow.
    pub const fn page_ceil(&self, addr: usize) -> Option<usize> {
        match addr.checked_add(self.page_size - 1) {
            Some(v) => Some(v & !(self.page_size - 1)),
            None => None,
        }
    }

    /// The pages touched by `[addr, addr+size)`: `(first page, end)` rounded outwards, or
    /// `None` if the range wraps.
    pub const fn touched_pages(&self, addr: usize, size: usize) -> Option<(usize, usize)> {
        match addr.checked_add(size) {
            Some(end) => match self.page_ceil(end) {
                Some(end) => Some((self.page_floor(addr), end)),
                None => None,
            },
            None => None,
        }
    }
}
