//! The Windows vocabulary, below everything else: the `PAGE_*`/`MEM_*`/`SEC_*` values and
//! error codes ([`consts`]) and the shape of an address space ([`layout::Layout`]). It imports
//! nothing from the rest of the crate.

pub mod consts;
pub mod ntstatus;
pub mod layout;
