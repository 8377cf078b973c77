//! Sections (file mapping objects): what CreateFileMapping creates and views map.

use crate::os::BackingId;

/// One section. Its identity never changes; it lives while a handle or a view refers to it.
pub(crate) struct Section {
    /// A process-unique number.
    pub id: u64,
    /// Size in bytes: to the byte for file-backed sections, page-rounded otherwise.
    pub size: u64,
    /// The page protection given at creation (one of the six of CF2).
    pub protect: u32,
    /// SEC_* attributes as NtQuerySection reports them (O1).
    pub attributes: u32,
    /// The backing object.
    pub backing: BackingId,
    /// Where the section's data starts in the backing object (a named object's header page).
    pub data_offset: u64,
}

impl<O: crate::os::Os> super::Space<O> {
    /// A handle to `s` was closed.
    pub(crate) fn section_handle_closed(&self, _s: &std::sync::Arc<Section>) {}
}
