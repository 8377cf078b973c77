//! NTSTATUS → Win32 error codes: what `RtlNtStatusToDosError` answers for every status
//! virtmem's NT layer returns (and the general rules for the rest).
//!
//! The pairs are facts about Windows' mapping: Microsoft's documentation of the statuses and
//! Win32 codes ("the Win32 error is the NTSTATUS mapped through the table"), the pairs
//! `constants.md` lists (most checked on Windows by Wine's `ntdll/tests/error.c`), and the
//! Win32 codes named after their statuses (ERROR_WAS_LOCKED for STATUS_WAS_LOCKED, ...). The
//! general rules (`constants.md`): 0 and customer codes come back unchanged, a 0xDxxxxxxx
//! status is read as 0xCxxxxxxx, statuses of facility 0xC001 / 0x8007 / 0xC007 (a Win32 code
//! wrapped as an NTSTATUS) give their low word, and an unknown status gives
//! ERROR_MR_MID_NOT_FOUND (317).

use super::consts::*;

/// The Win32 error code Windows gives for `status` (RtlNtStatusToDosError).
pub const fn nt_status_to_dos_error(status: NTSTATUS) -> u32 {
    let s = status as u32;
    if s == 0 || s & 0x2000_0000 != 0 {
        return s; // success, or a customer-defined code: unchanged
    }
    // 0xD... is the customer-bit-free form of 0xC... for these purposes.
    let s = if s & 0xF000_0000 == 0xD000_0000 {
        s & !0x1000_0000
    } else {
        s
    };
    match s >> 16 {
        0xC001 | 0x8007 | 0xC007 => return s & 0xFFFF,
        _ => {}
    }
    match s as NTSTATUS {
        STATUS_WORKING_SET_LIMIT_RANGE => ERROR_INVALID_PARAMETER,
        STATUS_OBJECT_NAME_EXISTS => ERROR_ALREADY_EXISTS,
        STATUS_WAS_UNLOCKED => ERROR_WAS_UNLOCKED,
        STATUS_WAS_LOCKED => ERROR_WAS_LOCKED,
        // Case 113: VirtualLock reports the raw status as its last error.
        STATUS_GUARD_PAGE_VIOLATION => STATUS_GUARD_PAGE_VIOLATION as u32,
        STATUS_BUFFER_OVERFLOW => ERROR_MORE_DATA,
        STATUS_PARTIAL_COPY => ERROR_PARTIAL_COPY,
        STATUS_UNSUCCESSFUL => ERROR_GEN_FAILURE,
        STATUS_NOT_IMPLEMENTED => ERROR_INVALID_FUNCTION,
        STATUS_INVALID_INFO_CLASS => ERROR_INVALID_PARAMETER,
        STATUS_INFO_LENGTH_MISMATCH => ERROR_BAD_LENGTH,
        STATUS_ACCESS_VIOLATION => ERROR_NOACCESS,
        STATUS_IN_PAGE_ERROR => ERROR_SWAPERROR,
        STATUS_INVALID_HANDLE | STATUS_OBJECT_TYPE_MISMATCH => ERROR_INVALID_HANDLE,
        STATUS_INVALID_PARAMETER
        | STATUS_UNABLE_TO_FREE_VM
        | STATUS_UNABLE_TO_DELETE_SECTION
        | STATUS_INVALID_PAGE_PROTECTION
        | STATUS_INCOMPATIBLE_FILE_MAP => ERROR_INVALID_PARAMETER,
        STATUS_NO_MEMORY | STATUS_SECTION_TOO_BIG => ERROR_NOT_ENOUGH_MEMORY,
        STATUS_CONFLICTING_ADDRESSES
        | STATUS_NOT_MAPPED_VIEW
        | STATUS_UNABLE_TO_DECOMMIT_VM
        | STATUS_NOT_COMMITTED
        | STATUS_FREE_VM_NOT_AT_BASE
        | STATUS_MEMORY_NOT_ALLOCATED => ERROR_INVALID_ADDRESS,
        STATUS_INVALID_VIEW_SIZE | STATUS_ALREADY_COMMITTED | STATUS_ACCESS_DENIED => {
            ERROR_ACCESS_DENIED
        }
        STATUS_BUFFER_TOO_SMALL => ERROR_INSUFFICIENT_BUFFER,
        STATUS_NOT_LOCKED | STATUS_RANGE_NOT_LOCKED => ERROR_NOT_LOCKED,
        STATUS_OBJECT_NAME_NOT_FOUND => ERROR_FILE_NOT_FOUND,
        STATUS_OBJECT_NAME_COLLISION => ERROR_ALREADY_EXISTS,
        STATUS_OBJECT_PATH_NOT_FOUND => ERROR_PATH_NOT_FOUND,
        STATUS_SHARING_VIOLATION => ERROR_SHARING_VIOLATION,
        STATUS_PRIVILEGE_NOT_HELD => ERROR_PRIVILEGE_NOT_HELD,
        STATUS_INVALID_IMAGE_FORMAT => ERROR_BAD_EXE_FORMAT,
        STATUS_DISK_FULL => ERROR_DISK_FULL,
        STATUS_FILE_INVALID | STATUS_MAPPED_FILE_SIZE_ZERO => ERROR_FILE_INVALID,
        STATUS_INSUFFICIENT_RESOURCES => ERROR_NO_SYSTEM_RESOURCES,
        STATUS_WORKING_SET_QUOTA => ERROR_WORKING_SET_QUOTA,
        STATUS_NOT_SUPPORTED => ERROR_NOT_SUPPORTED,
        STATUS_NOT_SAME_DEVICE => ERROR_NOT_SAME_DEVICE,
        STATUS_INTERNAL_ERROR => ERROR_INTERNAL_ERROR,
        STATUS_INVALID_PARAMETER_1
        | STATUS_INVALID_PARAMETER_2
        | STATUS_INVALID_PARAMETER_3
        | STATUS_INVALID_PARAMETER_4
        | STATUS_INVALID_PARAMETER_5
        | STATUS_INVALID_PARAMETER_6
        | STATUS_INVALID_PARAMETER_7
        | STATUS_INVALID_PARAMETER_8
        | STATUS_INVALID_PARAMETER_9
        | STATUS_INVALID_PARAMETER_10
        | STATUS_INVALID_PARAMETER_11
        | STATUS_INVALID_PARAMETER_12 => ERROR_INVALID_PARAMETER,
        STATUS_STACK_OVERFLOW => ERROR_STACK_OVERFLOW,
        STATUS_NAME_TOO_LONG => ERROR_FILENAME_EXCED_RANGE,
        STATUS_COMMITMENT_LIMIT => ERROR_COMMITMENT_LIMIT,
        // Not 487: only the NtQueryVirtualMemory region classes return it.
        STATUS_INVALID_ADDRESS => ERROR_UNEXP_NET_ERR,
        STATUS_MAPPED_ALIGNMENT => ERROR_MAPPED_ALIGNMENT,
        STATUS_USER_MAPPED_FILE => ERROR_USER_MAPPED_FILE,
        _ => ERROR_MR_MID_NOT_FOUND,
    }
}

/// A Win32 error code wrapped as an NTSTATUS (facility 7, error severity), which
/// [`nt_status_to_dos_error`] unwraps: the status of an error that has no status of its own.
pub const fn status_from_win32(code: u32) -> NTSTATUS {
    (0xC007_0000 | (code & 0xFFFF)) as NTSTATUS
}
