//! A simulated address space: the Windows rules on bookkeeping alone, with any page size,
//! granularity and address limits (a 32-bit process, say), and sparse simulated contents. It
//! maps no real memory, so every operation is safe; the `virtmem` command's teaching mode and
//! the model tests run on it.
//!
//! ```
//! use virtmem::sim::SimSpace;
//! use virtmem::win32::*;
//! let s = SimSpace::new(virtmem::Layout::WIN32);
//! let p = s.virtual_alloc(0, 0x3000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, false)?;
//! s.write(p, b"hi").unwrap();
//! let mut b = [0u8; 2];
//! s.read(p, &mut b).unwrap();
//! assert_eq!(&b, b"hi");
//! assert!(p < 0x8000_0000); // a 32-bit process
//! # Ok::<(), virtmem::Error>(())
//! ```

use crate::engine::Space;
use crate::os::sim::SimOs;
use crate::vocab::layout::Layout;

pub use crate::engine::AccessError;
pub use crate::os::sim::{check_layout, preset, PRESETS, WIN32_3GB};

/// Checks a `PAGE_*` value (with its modifiers) the way VirtualProtect and VirtualAlloc do
/// before anything else: 87 for an unknown or contradictory value, or an executable one with
/// `from_app` (the *FromApp variants). For tools that must report errors in Windows' order.
///
/// ```
/// use virtmem::win32::*;
/// assert!(virtmem::sim::check_protection(PAGE_READWRITE, false).is_ok());
/// assert!(virtmem::sim::check_protection(PAGE_NOACCESS | PAGE_GUARD, false).is_err());
/// assert!(virtmem::sim::check_protection(PAGE_EXECUTE_READ, true).is_err());
/// ```
pub fn check_protection(protect: u32, from_app: bool) -> crate::Result<()> {
    crate::rules::Protection::parse(protect, from_app).map(|_| ())
}

/// A simulated process's address space (see the module documentation).
pub struct SimSpace {
    space: Space<SimOs>,
}

impl SimSpace {
    /// A new, empty simulated address space with this layout (see [`check_layout`]).
    pub fn new(layout: Layout) -> SimSpace {
        SimSpace {
            space: Space::simulated(layout),
        }
    }

    crate::spaces::forward_ops!(space,);

    /// A load by the simulated program: access violations and guard pages as on Windows.
    pub fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.space.read(addr, buf)
    }

    /// A store by the simulated program (recorded by write watch).
    pub fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), AccessError> {
        self.space.write(addr, bytes)
    }

    /// Chooses whether MEM_RESET really discards contents (they then read as zero).
    pub fn set_discard_on_reset(&self, discard: bool) {
        self.space.os().set_discard_on_reset(discard)
    }

    /// How many simulated pages hold contents (the simulation's memory cost).
    pub fn stored_pages(&self) -> usize {
        self.space.os().stored_pages()
    }

    /// The simulated kernel's mappings `(start, len, readable, writable, executable)`.
    pub fn mappings(&self) -> Vec<(usize, usize, bool, bool, bool)> {
        self.space
            .os()
            .mappings()
            .into_iter()
            .map(|(s, l, p)| (s, l, p.read(), p.write(), p.exec()))
            .collect()
    }
}
