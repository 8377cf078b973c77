//! Files for file-backed sections: the small file API of `sections.md` §17 on Linux paths.

use std::os::fd::{AsRawFd, OwnedFd};

/// An open file (what a file handle refers to).
#[derive(Debug)]
pub(crate) struct HostFile {
    fd: OwnedFd,
}

impl HostFile {
    /// The descriptor.
    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl HostFile {
    /// The access mask given at CreateFile.
    pub(crate) fn access(&self) -> u32 {
        0
    }

    /// The same file opened anew for a section, with an OFD read lock.
    pub(crate) fn reopen_for_section(&self, _writable: bool) -> crate::error::Result<OwnedFd> {
        Err(crate::error::Error::NotSupported("files"))
    }

    /// (device, inode).
    pub(crate) fn identity(&self) -> (u64, u64) {
        (0, 0)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> crate::error::Result<std::path::PathBuf> {
        Err(crate::error::Error::NotSupported("files"))
    }
}

// ---- Added for the safe face (safe/section.rs: Section::from_file, GrowableFile) ----------
// A file object for a `std::fs::File` the safe face was given. When the real file module
// replaces this placeholder, `from_std` must build a full `HostFile` the same way: `fd` from
// the file, `access` stored (GENERIC_* rights, mapped), dev/ino from fstat, the path from
// /proc/self/fd, and an entry in the share table sharing read, write and delete (std files
// take no part in share modes).
impl HostFile {
    /// A file object owning `file`'s descriptor; `access` is the GENERIC_* mask its open mode
    /// allows (GENERIC_READ 0x8000_0000, GENERIC_WRITE 0x4000_0000, GENERIC_EXECUTE
    /// 0x2000_0000).
    pub(crate) fn from_std(file: std::fs::File, _access: u32) -> HostFile {
        HostFile { fd: file.into() }
    }
}
// ---- end of the safe face's addition --------------------------------------------------------
