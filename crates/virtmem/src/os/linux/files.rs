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
