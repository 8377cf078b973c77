//! The rules of process handles, free of syscalls: what a desired access means
//! (`GENERIC_*`, `MAXIMUM_ALLOWED`, implied rights), which rights need the kernel's permission
//! to trace the process, and which right each operation needs.

use crate::vocab::consts::*;

/// Rights anyone may have on any process (Windows grants them to nearly every caller; on
/// Linux they need nothing but the pid): no memory can be read or changed through them.
pub(crate) const UNPRIVILEGED: u32 = PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE;

/// The pages Windows' copy between address spaces moves at a time (ReadProcessMemory,
/// NtReadVirtualMemory). A copy that stops at an unreadable page reports only the chunks it
/// finished: a two-page read whose second page is no-access reports 0 bytes on Windows
/// (`windows-cases.md` 141), not the one page that could be read.
pub(crate) const COPY_CHUNK_PAGES: usize = 14;

/// The count a partial copy of `done` bytes reports: whole chunks of
/// [`COPY_CHUNK_PAGES`] pages from the copy's start.
pub(crate) const fn partial_copy_count(done: usize, page_size: usize) -> usize {
    let chunk = COPY_CHUNK_PAGES * page_size;
    done - done % chunk
}

/// What `GENERIC_READ` means for a process object.
const PROCESS_GENERIC_READ: u32 = PROCESS_READ_CONTROL | PROCESS_VM_READ | PROCESS_QUERY_INFORMATION;
/// What `GENERIC_WRITE` means for a process object.
const PROCESS_GENERIC_WRITE: u32 = PROCESS_READ_CONTROL
    | PROCESS_CREATE_PROCESS
    | PROCESS_CREATE_THREAD
    | PROCESS_VM_OPERATION
    | PROCESS_VM_WRITE
    | PROCESS_DUP_HANDLE
    | PROCESS_TERMINATE
    | PROCESS_SET_QUOTA
    | PROCESS_SET_INFORMATION
    | PROCESS_SUSPEND_RESUME;
/// What `GENERIC_EXECUTE` means for a process object.
const PROCESS_GENERIC_EXECUTE: u32 =
    PROCESS_READ_CONTROL | PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_TERMINATE;

/// A desired access, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Requested {
    /// The specific and standard rights asked for (generic rights mapped, implied ones added).
    pub rights: u32,
    /// `MAXIMUM_ALLOWED`: grant whatever the caller may have.
    pub maximum: bool,
}

/// Decodes OpenProcess's / DuplicateHandle's `dwDesiredAccess`: generic rights become the
/// process rights they stand for, `PROCESS_QUERY_INFORMATION` implies
/// `PROCESS_QUERY_LIMITED_INFORMATION` (and SET_INFORMATION the limited SET right), as on
/// Windows since Vista. Bits that are no process right are ignored (our decision).
pub(crate) fn requested(desired: u32) -> Requested {
    let mut rights = desired & PROCESS_ALL_ACCESS;
    if desired & GENERIC_READ != 0 {
        rights |= PROCESS_GENERIC_READ;
    }
    if desired & GENERIC_WRITE != 0 {
        rights |= PROCESS_GENERIC_WRITE;
    }
    if desired & GENERIC_EXECUTE != 0 {
        rights |= PROCESS_GENERIC_EXECUTE;
    }
    if desired & GENERIC_ALL != 0 {
        rights |= PROCESS_ALL_ACCESS;
    }
    Requested {
        rights: implied(rights),
        maximum: desired & MAXIMUM_ALLOWED != 0,
    }
}

/// `rights` with the rights they imply.
pub(crate) fn implied(rights: u32) -> u32 {
    let mut r = rights;
    if r & PROCESS_QUERY_INFORMATION != 0 {
        r |= PROCESS_QUERY_LIMITED_INFORMATION;
    }
    if r & PROCESS_SET_INFORMATION != 0 {
        r |= PROCESS_SET_LIMITED_INFORMATION;
    }
    r
}

/// Whether a handle with `rights` to another process needs the kernel's permission to trace
/// that process (Linux's `PTRACE_MODE_ATTACH_REALCREDS`, what `process_vm_readv` checks).
pub(crate) fn needs_attach(rights: u32) -> bool {
    rights & !UNPRIVILEGED != 0
}

/// What an operation needs on a process handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// ReadProcessMemory: PROCESS_VM_READ.
    Read,
    /// WriteProcessMemory: PROCESS_VM_WRITE and PROCESS_VM_OPERATION.
    Write,
    /// VirtualAllocEx, VirtualFreeEx, VirtualProtectEx, VirtualUnlockEx, views, AWE:
    /// PROCESS_VM_OPERATION.
    Operation,
    /// VirtualQueryEx: PROCESS_QUERY_INFORMATION.
    Query,
    /// GetProcessId: PROCESS_QUERY_LIMITED_INFORMATION (which QUERY_INFORMATION implies).
    QueryLimited,
    /// DuplicateHandle's process handles: PROCESS_DUP_HANDLE.
    DupHandle,
    /// GetProcessMemoryInfo, QueryWorkingSet(Ex): PROCESS_QUERY_LIMITED_INFORMATION and
    /// PROCESS_VM_READ.
    QueryRead,
    /// SetProcessWorkingSetSize(Ex), EmptyWorkingSet: PROCESS_SET_QUOTA.
    SetQuota,
    /// Nothing (FlushInstructionCache, PrefetchVirtualMemory: Windows documents no right).
    Nothing,
}

impl Need {
    /// The rights a handle must hold (all of them).
    pub(crate) const fn rights(self) -> u32 {
        match self {
            Need::Read => PROCESS_VM_READ,
            Need::Write => PROCESS_VM_WRITE | PROCESS_VM_OPERATION,
            Need::Operation => PROCESS_VM_OPERATION,
            Need::Query => PROCESS_QUERY_INFORMATION,
            Need::QueryLimited => PROCESS_QUERY_LIMITED_INFORMATION,
            Need::DupHandle => PROCESS_DUP_HANDLE,
            Need::QueryRead => PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ,
            Need::SetQuota => PROCESS_SET_QUOTA,
            Need::Nothing => 0,
        }
    }

    /// Whether a handle with access `granted` may do this.
    pub(crate) const fn allowed(self, granted: u32) -> bool {
        granted & self.rights() == self.rights()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_copy_counts_whole_chunks() {
        let p = 4096;
        assert_eq!(partial_copy_count(p, p), 0, "case 141: one page of two");
        assert_eq!(partial_copy_count(14 * p - 1, p), 0);
        assert_eq!(partial_copy_count(14 * p, p), 14 * p);
        assert_eq!(partial_copy_count(30 * p + 5, p), 28 * p);
    }

    #[test]
    fn generic_rights_map_to_process_rights() {
        let r = requested(GENERIC_READ);
        assert!(Need::Read.allowed(r.rights) && Need::Query.allowed(r.rights));
        assert!(!Need::Write.allowed(r.rights));
        let w = requested(GENERIC_WRITE);
        assert!(Need::Write.allowed(w.rights) && !Need::Read.allowed(w.rights));
        assert_eq!(requested(GENERIC_ALL).rights, PROCESS_ALL_ACCESS);
        assert!(requested(MAXIMUM_ALLOWED).maximum);
    }

    #[test]
    fn query_information_implies_the_limited_right() {
        let r = requested(PROCESS_QUERY_INFORMATION);
        assert!(Need::QueryLimited.allowed(r.rights));
        assert!(!Need::Query.allowed(requested(PROCESS_QUERY_LIMITED_INFORMATION).rights));
    }

    #[test]
    fn only_unprivileged_rights_skip_the_trace_check() {
        assert!(!needs_attach(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE));
        assert!(!needs_attach(0));
        assert!(needs_attach(PROCESS_VM_READ));
        assert!(needs_attach(PROCESS_TERMINATE));
    }
}
