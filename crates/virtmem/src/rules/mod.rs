//! The Windows rules, free of syscalls: validation of every request and the plans that turn a
//! valid request into page-state changes. Each rule names its source (`semantics.md` tags:
//! untagged = observed on Windows, `(Microsoft's documentation)`, `[I]`, `(our decision)`). Every backend obeys these.

pub mod global;
pub mod heap;
pub mod plan;
pub(crate) mod process;
pub mod protection;
pub mod requests;
pub mod runs;
pub mod sections;

pub use protection::Protection;
pub use requests::{AllocRequest, ExtendedParameter, FreeRequest, Placement};
