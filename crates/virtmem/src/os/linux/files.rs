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
