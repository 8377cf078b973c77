//! # virtmem — the Windows virtual-memory model on Linux
//!
//! Windows gives a process an address space in which every page is **free**, **reserved** or
//! **committed**. `VirtualAlloc` reserves address ranges (at 64 KiB granularity) and commits
//! pages inside them, `VirtualFree` decommits or releases them, `VirtualProtect` changes page
//! protections and `VirtualQuery` describes any address. virtmem implements exactly those
//! rules on Linux, on real memory, and offers them three ways:
//!
//! * [`win32`]: the Win32 functions with `windows-sys` names and types, exported as C symbols
//!   (so C programs and unchanged `windows-sys` code link against them);
//! * a safe Rust API ([`Reservation`], [`query`], [`regions`]) with typed [`Error`]s;
//! * the [`Space`] engine itself, for other layouts and backends.
//!
//! All faces share one process-wide [`Space::native`], so memory reserved through one can be
//! queried or freed through another.
//!
//! ```
//! use virtmem::{Reservation, Protect};
//! let mut r = Reservation::new(1 << 20)?;          // 1 MiB of address space, nothing committed
//! r.commit(0, 8192, Protect::ReadWrite)?;           // two pages of zeroed memory
//! r.as_mut_slice(0, 8192)?[0] = 7;
//! assert_eq!(r.as_slice(0, 1)?[0], 7);
//! # Ok::<(), virtmem::Error>(())
//! ```

#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod os;
pub mod rules;
mod safe;
pub mod vocab;
pub mod win32;

pub use engine::WatchKind;
pub use engine::{MemoryInfo, RegionType, Space, State};
pub use error::{Error, Result};
pub use engine::fault::{set_guard_page_handler, Access, GuardViolation};
pub use vocab::layout::Layout;
pub use safe::{query, regions, system_info, PhysicalPages, Protect, Reservation, SystemInfo};
