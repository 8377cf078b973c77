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

    // Handles change no memory: safe. (Views keep their section alive, so closing a handle
    // never takes memory away from under a view.)

    /// CreateFileMapping: a new section — pagefile-backed ([`SectionSource::Pagefile`](crate::SectionSource))
    /// or of a file handle's file — of `size` bytes (0 for a file: its size) with
    /// `fl_protect` (a `PAGE_*` protection and `SEC_*` attributes), named or not. A name in
    /// use gives a new handle to that section and `existed` (ERROR_ALREADY_EXISTS).
    pub fn create_section(
        &self,
        source: crate::SectionSource,
        fl_protect: u32,
        size: u64,
        name: Option<&str>,
    ) -> crate::Result<crate::Created> {
        let name = crate::spaces::section_name(name);
        self.space.create_section(source, fl_protect, size, name)
    }

    /// OpenFileMapping: a handle with `access` to the section of that name
    /// (ERROR_FILE_NOT_FOUND if none; a `None` name is ERROR_INVALID_PARAMETER).
    pub fn open_section(&self, access: u32, name: Option<&str>) -> crate::Result<usize> {
        let name = crate::spaces::section_name(name);
        self.space.open_section(access, name)
    }

    /// CloseHandle of a section or file handle: the section lives on while other handles or
    /// views refer to it; a name goes with its last handle.
    pub fn close_handle(&self, handle: usize) -> crate::Result<()> {
        self.space.close_handle(handle)
    }

    /// DuplicateHandle within this process: a new handle to the same object with `access`
    /// (or the source's, with `same_access`); `close_source` closes the source.
    pub fn duplicate_handle(
        &self,
        handle: usize,
        access: u32,
        same_access: bool,
        close_source: bool,
    ) -> crate::Result<usize> {
        self.space
            .duplicate_handle(handle, access, same_access, close_source)
    }
}

impl std::fmt::Debug for NativeSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeSpace").finish_non_exhaustive()
    }
}
