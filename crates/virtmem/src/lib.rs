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
//! * a safe Rust API ([`Reservation`], [`query`], [`regions`]; sections and views:
//!   [`Section`], [`View`], [`UniqueView`], [`GrowableView`], [`GrowableFile`]) with typed
//!   [`Error`]s, and
//!   [`NativeSpace`], the same operations on raw addresses (`unsafe` where they change memory);
//! * [`sim`]: a simulated address space (any page size, granularity and limits), safe because
//!   it maps nothing.
//!
//! All faces share one process-wide address space, so memory reserved through one can be
//! queried or freed through another. The engine, the OS backends and the rules are private:
//! safe code cannot reach anything that unmaps or re-protects memory a borrow can see.
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

// Layers, bottom up (ARCHITECTURE.md): vocabulary, OS seam, rules, engine, faces. The lower
// layers are private; the `internals` feature (virtmem's own test suite only) makes them
// visible, and even then every way to real memory goes through an `unsafe fn`.
macro_rules! internal_mods {
    ($($m:ident),*) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $m;
        #[cfg(not(feature = "internals"))]
        mod $m;
    )*};
}
internal_mods!(vocab, os, rules, engine);
mod error;
mod native;
mod safe;
pub mod sim;
mod spaces;
pub mod win32;

pub use engine::fault::{set_guard_page_handler, Access, GuardHandler, GuardViolation};
pub use engine::{
    Created, MapRequest, MappedName, MemoryInfo, MemoryStatus, RegionInfo, RegionType, SameFile,
    SectionSource, State, WatchKind, WorkingSetPage,
};
// This process's memory status, working set and DEP (issue 15 item 2).
pub use engine::process_status::{
    DepStatus, MemoryCondition, MemoryResourceState, ProcessCounters,
};
pub use engine::working_set::WorkingSetLimits;
pub use error::{Error, Result};
pub use native::NativeSpace;
pub use rules::requests::ExtendedParameter;
pub use safe::heap::{
    Heap, HeapAllocator, HeapBox, HeapEntry, HeapEntryKind, HeapOptions, HeapSummary, HeapVec,
    HeapWalk,
};
pub use safe::{
    allocations, memory_status, query, regions, set_write_watch_mode, system_info,
    write_watch_mode, GrowableFile, GrowableView, PhysicalPages, Process, Protect, Reservation,
    Section, SectionOptions, SectionProtect, SystemInfo, UniqueView, View, ViewAccess,
};
pub use safe::{
    dep_status, empty_working_set, memory_resource_state, process_memory_counters,
    set_working_set_limits, working_set_limits,
};
pub use vocab::layout::Layout;
