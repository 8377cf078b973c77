//! This process's real address space through the engine's typed API (the Rust face of the
//! same calls `virtmem::win32` exports), for tools that need typed errors rather than
//! `GetLastError`. Queries are safe; everything that can change memory is `unsafe`.

use crate::engine::Space;
use crate::os::linux::LinuxOs;

/// This process's address space, shared with every other face of virtmem.
///
/// # Safety of the `unsafe` methods
///
/// Each state-changing method may unmap, decommit, re-protect or replace memory. The caller
/// must make sure the range touches no memory that live Rust references (or any code that
/// assumes it stays accessible) can see: only memory that the caller itself allocated through
/// virtmem and has not lent out. A range virtmem did not allocate is refused only by the
/// reserve/commit/free rules; `virtual_protect` and `virtual_lock` act on any committed memory,
/// as on Windows.
///
/// ```
/// use virtmem::{NativeSpace, win32::*};
/// let s = NativeSpace::get();
/// // SAFETY: the range is new memory this example owns.
/// let p = unsafe { s.virtual_alloc(0, 4096, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, false)? };
/// assert_eq!(s.query(p)?.state, virtmem::State::Commit);
/// // SAFETY: released once, by its owner, with no reference into it.
/// unsafe { s.virtual_free(p, 0, MEM_RELEASE)? };
/// # Ok::<(), virtmem::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct NativeSpace {
    space: &'static Space<LinuxOs>,
}

impl NativeSpace {
    /// The process's address space.
    pub fn get() -> NativeSpace {
        NativeSpace {
            space: Space::native(),
        }
    }

    crate::spaces::forward_ops!(space, unsafe);
}

impl std::fmt::Debug for NativeSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeSpace").finish_non_exhaustive()
    }
}
