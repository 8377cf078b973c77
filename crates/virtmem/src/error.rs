//! Typed errors, each mapping one-to-one onto a Win32 error code.

use crate::os::{OsError, OsErrorKind};

/// Why a virtmem operation failed. Every variant has exactly one Win32 error code
/// ([`Error::win32_code`]); the string says which rule refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// ERROR_INVALID_PARAMETER (87): a flag, protection, size or address the rules reject.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
    /// ERROR_INVALID_ADDRESS (487): the pages are not in the state the operation needs
    /// (free memory, a range leaving its allocation, an occupied address...).
    #[error("invalid address: {0}")]
    InvalidAddress(&'static str),
    /// ERROR_NOACCESS (998): a pointer argument is NULL, or the pages cannot be accessed.
    #[error("invalid access to memory location: {0}")]
    NoAccess(&'static str),
    /// ERROR_INVALID_HANDLE (6): a process handle other than the current process.
    #[error("invalid handle")]
    InvalidHandle,
    /// ERROR_NOT_ENOUGH_MEMORY (8): no address range that fits, or the kernel's mapping-count
    /// limit (`vm.max_map_count`) was reached.
    #[error("not enough memory: {0}")]
    NotEnoughMemory(&'static str),
    /// ERROR_COMMITMENT_LIMIT (1455): the kernel's commit accounting refused the commit.
    #[error("the commit limit was reached")]
    CommitmentLimit,
    /// ERROR_NOT_LOCKED (158): VirtualUnlock on pages that are not locked.
    #[error("the pages are not locked")]
    NotLocked,
    /// ERROR_WORKING_SET_QUOTA (1453): the lock quota (`RLIMIT_MEMLOCK`) was exceeded.
    #[error("the working-set (lock) quota was exceeded")]
    WorkingSetQuota,
    /// ERROR_BAD_LENGTH (24): an output buffer is too small.
    #[error("buffer too small")]
    BadLength,
    /// ERROR_NOT_SUPPORTED (50): a valid request for a feature virtmem does not implement yet.
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// ERROR_SWAPERROR (999): MEM_RESET_UNDO found that some data of the range was discarded
    /// (the code is a virtmem decision: Windows documents none).
    #[error("MEM_RESET_UNDO: some pages of the range were discarded and read as zero")]
    ResetDataLost,
    /// STATUS_GUARD_PAGE_VIOLATION (0x80000001) as a last error: VirtualLock met a guard page.
    #[error("guard page violation")]
    GuardPageViolation,
    /// ERROR_PRIVILEGE_NOT_HELD (1314).
    #[error("a required privilege is not held: {0}")]
    PrivilegeNotHeld(&'static str),
    /// ERROR_NO_SYSTEM_RESOURCES (1450).
    #[error("insufficient system resources: {0}")]
    NoSystemResources(&'static str),
    /// ERROR_FILE_NOT_FOUND (2): no file, or no section, of that name.
    #[error("not found: {0}")]
    FileNotFound(&'static str),
    /// ERROR_PATH_NOT_FOUND (3): a directory of the path (or a `\\` in an object name).
    #[error("path not found: {0}")]
    PathNotFound(&'static str),
    /// ERROR_ACCESS_DENIED (5): the handle's or the file's access does not allow it.
    #[error("access denied: {0}")]
    AccessDenied(&'static str),
    /// ERROR_SHARING_VIOLATION (32): another handle's share mode forbids this access.
    #[error("sharing violation")]
    SharingViolation,
    /// ERROR_FILE_EXISTS (80): CREATE_NEW of an existing file.
    #[error("the file exists")]
    FileExists,
    /// ERROR_DISK_FULL (112): the file cannot grow.
    #[error("the disk is full")]
    DiskFull,
    /// ERROR_NEGATIVE_SEEK (131): a file position before the start.
    #[error("negative seek")]
    NegativeSeek,
    /// ERROR_BAD_EXE_FORMAT (193): SEC_IMAGE without a PE image.
    #[error("not a valid executable image")]
    BadExeFormat,
    /// ERROR_FILENAME_EXCED_RANGE (206): a name too long.
    #[error("the name is too long")]
    FilenameTooLong,
    /// ERROR_FILE_INVALID (1006): mapping an empty file with size 0.
    #[error("the file is empty")]
    FileInvalid,
    /// ERROR_MAPPED_ALIGNMENT (1132): a view's offset or base address is misaligned.
    #[error("misaligned view: {0}")]
    MappedAlignment(&'static str),
    /// ERROR_USER_MAPPED_FILE (1224): the file has a section (shrinking it, MEM_RESET on a
    /// file view).
    #[error("the file is mapped: {0}")]
    UserMappedFile(&'static str),
    /// ERROR_INSUFFICIENT_BUFFER (122): an output structure's declared size is too small
    /// (GetProcessMemoryInfo's `cb`).
    #[error("the data area passed is too small")]
    InsufficientBuffer,
    /// Another Win32 code, for file-system errors with no variant of their own (the errno
    /// mapped by `os::linux::files`).
    #[error("system error {0}")]
    Code(u32),
    // ---- Other processes (ReadProcessMemory / WriteProcessMemory) ----
    /// ERROR_PARTIAL_COPY (299): only part of a ReadProcessMemory / WriteProcessMemory
    /// request was done (a page of the other process's range cannot be read or written).
    #[error("only part of the memory could be copied")]
    PartialCopy,
}

/// Result alias used throughout virtmem.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Win32 error code `GetLastError()` reports for this error.
    pub const fn win32_code(self) -> u32 {
        match self {
            Error::InvalidParameter(_) => 87,
            Error::InvalidAddress(_) => 487,
            Error::NoAccess(_) => 998,
            Error::InvalidHandle => 6,
            Error::NotEnoughMemory(_) => 8,
            Error::CommitmentLimit => 1455,
            Error::NotLocked => 158,
            Error::WorkingSetQuota => 1453,
            Error::BadLength => 24,
            Error::NotSupported(_) => 50,
            Error::ResetDataLost => 999,
            Error::GuardPageViolation => 0x8000_0001,
            Error::PrivilegeNotHeld(_) => 1314,
            Error::NoSystemResources(_) => 1450,
            Error::FileNotFound(_) => 2,
            Error::PathNotFound(_) => 3,
            Error::AccessDenied(_) => 5,
            Error::SharingViolation => 32,
            Error::FileExists => 80,
            Error::DiskFull => 112,
            Error::NegativeSeek => 131,
            Error::BadExeFormat => 193,
            Error::FilenameTooLong => 206,
            Error::FileInvalid => 1006,
            Error::MappedAlignment(_) => 1132,
            Error::UserMappedFile(_) => 1224,
            Error::InsufficientBuffer => 122,
            Error::Code(c) => c,
            Error::PartialCopy => 299,
        }
    }

    /// Maps a kernel refusal onto the Win32 error Windows gives for the same condition
    /// (`semantics.md` §11).
    pub(crate) fn from_os(e: OsError) -> Error {
        match e.kind {
            OsErrorKind::OutOfAddressSpace => Error::NotEnoughMemory("no free address range"),
            OsErrorKind::MapCountLimit => {
                Error::NotEnoughMemory("the kernel's mapping count limit (vm.max_map_count)")
            }
            OsErrorKind::CommitLimit => Error::CommitmentLimit,
            OsErrorKind::LockQuota => Error::WorkingSetQuota,
            OsErrorKind::AddressInUse => Error::InvalidAddress("the range is not free"),
            OsErrorKind::NotMapped => Error::InvalidAddress("the range is not mapped"),
            OsErrorKind::Unsupported => Error::NotSupported("this backend has no sections"),
            OsErrorKind::NoSpace => Error::DiskFull,
            OsErrorKind::Other => Error::NotEnoughMemory("the kernel refused the request"),
        }
    }
}

// ---- The NT layer: each error's NTSTATUS (RtlNtStatusToDosError(nt_status) == win32_code) ----
impl Error {
    /// The NTSTATUS an NT function (`win32::nt`) returns for this error when its context
    /// gives no more exact status: `RtlNtStatusToDosError(e.nt_status()) == e.win32_code()`
    /// for every variant (for `Code(c)`, for every `c` up to 0xFFFF). Errors without a
    /// status of their own (ERROR_FILE_EXISTS, ERROR_NEGATIVE_SEEK, `Code`) travel as the
    /// Win32 code wrapped in facility 7, which RtlNtStatusToDosError unwraps.
    pub const fn nt_status(self) -> i32 {
        use crate::vocab::consts::*;
        use crate::vocab::ntstatus::status_from_win32;
        match self {
            Error::InvalidParameter(_) => STATUS_INVALID_PARAMETER,
            Error::InvalidAddress(_) => STATUS_CONFLICTING_ADDRESSES,
            Error::NoAccess(_) => STATUS_ACCESS_VIOLATION,
            Error::InvalidHandle => STATUS_INVALID_HANDLE,
            Error::NotEnoughMemory(_) => STATUS_NO_MEMORY,
            Error::CommitmentLimit => STATUS_COMMITMENT_LIMIT,
            Error::NotLocked => STATUS_NOT_LOCKED,
            Error::WorkingSetQuota => STATUS_WORKING_SET_QUOTA,
            Error::BadLength => STATUS_INFO_LENGTH_MISMATCH,
            Error::NotSupported(_) => STATUS_NOT_SUPPORTED,
            Error::ResetDataLost => STATUS_IN_PAGE_ERROR,
            Error::GuardPageViolation => STATUS_GUARD_PAGE_VIOLATION,
            Error::PrivilegeNotHeld(_) => STATUS_PRIVILEGE_NOT_HELD,
            Error::NoSystemResources(_) => STATUS_INSUFFICIENT_RESOURCES,
            Error::FileNotFound(_) => STATUS_OBJECT_NAME_NOT_FOUND,
            Error::PathNotFound(_) => STATUS_OBJECT_PATH_NOT_FOUND,
            Error::AccessDenied(_) => STATUS_ACCESS_DENIED,
            Error::SharingViolation => STATUS_SHARING_VIOLATION,
            Error::FileExists => status_from_win32(ERROR_FILE_EXISTS),
            Error::DiskFull => STATUS_DISK_FULL,
            Error::NegativeSeek => status_from_win32(ERROR_NEGATIVE_SEEK),
            Error::BadExeFormat => STATUS_INVALID_IMAGE_FORMAT,
            Error::FilenameTooLong => STATUS_NAME_TOO_LONG,
            Error::FileInvalid => STATUS_MAPPED_FILE_SIZE_ZERO,
            Error::MappedAlignment(_) => STATUS_MAPPED_ALIGNMENT,
            Error::UserMappedFile(_) => STATUS_USER_MAPPED_FILE,
            Error::InsufficientBuffer => STATUS_BUFFER_TOO_SMALL,
            Error::PartialCopy => STATUS_PARTIAL_COPY,
            Error::Code(c) if c <= 0xFFFF => status_from_win32(c),
            // No NTSTATUS carries a wider code: the generic failure.
            Error::Code(_) => STATUS_UNSUCCESSFUL,
        }
    }
}
// ---- end of the NT layer's block ----

impl From<Error> for u32 {
    fn from(e: Error) -> u32 {
        e.win32_code()
    }
}

impl From<crate::os::linux::names::NameError> for Error {
    fn from(e: crate::os::linux::names::NameError) -> Error {
        use crate::os::linux::names::NameError as N;
        let code = e.win32_code();
        let r = match e {
            N::FileNotFound(w) => Error::FileNotFound(w),
            N::PathNotFound(w) => Error::PathNotFound(w),
            N::AccessDenied(w) => Error::AccessDenied(w),
            N::NotEnoughMemory(w) => Error::NotEnoughMemory(w),
            N::NotSupported(w) => Error::NotSupported(w),
            N::FilenameTooLong => Error::FilenameTooLong,
            N::NoSystemResources(w) => Error::NoSystemResources(w),
        };
        debug_assert_eq!(r.win32_code(), code, "one code per error");
        r
    }
}
