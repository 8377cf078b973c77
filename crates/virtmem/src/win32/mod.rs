//! The Win32 face: the Windows functions with the names, parameter types and structs of the
//! `windows-sys` 0.61 crate, exported as C symbols.
//!
//! Every function is `#[no_mangle] pub unsafe extern "system"`, so the same code serves Rust
//! callers (`virtmem::win32::VirtualAlloc(...)`), C programs linking `libvirtmem`, and
//! unchanged `windows-sys` code (whose `extern` declarations resolve to these symbols once the
//! program says `use virtmem as _;`). Failures return NULL / FALSE / 0 and set the thread's
//! last error; successes leave it untouched, as on Windows. No panic crosses these functions:
//! one becomes a failure with ERROR_INTERNAL_ERROR (1359).
//!
//! ```
//! use virtmem::win32::*;
//! unsafe {
//!     let p = VirtualAlloc(std::ptr::null(), 8 * 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
//!     assert!(!p.is_null());
//!     *(p as *mut u8) = 42;
//!     assert_eq!(VirtualFree(p, 0, MEM_RELEASE), TRUE);
//! }
//! ```
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub use crate::vocab::consts;
mod files;
mod handles;
// Heaps (issue 16).
mod heap;
pub use heap::*;
// Global and Local memory (issue 16 item 2).
mod global;
pub use global::*;
mod last_error;
mod memory;
// The native layer (Nt* functions, RtlNtStatusToDosError, working sets).
pub mod nt;
mod probe;
// Process memory status, working set, resource notifications, DEP, Rtl* memory (issue 15 item 2).
mod process_memory;
mod rtl_memory;
// Processes (OpenProcess, ReadProcessMemory, ...) and the one process-handle check.
pub(crate) mod process;
mod sections;
mod system;
pub mod types;

pub use consts::*;
pub use files::*;
pub use handles::*;
pub use last_error::{GetLastError, SetLastError};
pub use memory::*;
pub use nt::*;
pub use probe::*;
pub use process::{
    GetCurrentProcessId, GetProcessId, OpenProcess, ReadProcessMemory, WriteProcessMemory,
};
pub use process_memory::*;
pub use rtl_memory::*;
pub use sections::*;
pub use system::*;
pub use types::*;
