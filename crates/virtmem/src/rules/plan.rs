//! Plans: for a valid request on one allocation, the new page runs and the kernel steps that
//! produce them, plus what undoing those steps needs. Pure functions of a [`RunTable`]; page
//! ranges are page indices within the allocation.

use super::protection::host_prot;
use crate::error::{Error, Result};
use crate::os::HostProt;
use crate::runs::{PageState, RunTable};

/// A span of pages with the kernel protection they must have (or had).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtSpan {
    /// First page index.
    pub start: usize,
    /// End page index.
    pub end: usize,
    /// Kernel protection.
    pub prot: HostProt,
}

/// The kernel protection a page in `state` has.
pub fn kernel_prot(state: PageState) -> HostProt {
    if state.committed {
        host_prot(state.protect)
    } else {
        HostProt::NONE
    }
}

/// A protection change: the new table, the one `mprotect` to make (if any), and the kernel
/// protections to restore, run by run, if it fails.
#[derive(Clone, Debug)]
pub struct ProtectPlan {
    /// The table after the change.
    pub new: RunTable,
    /// The span to change, the hull of the pages whose kernel protection differs.
    pub apply: Option<ProtSpan>,
    /// The old kernel protections of every run inside `apply`.
    pub undo: Vec<ProtSpan>,
    /// The first page's old Win32 protection (VirtualProtect's `*lpflOldProtect`).
    pub old_first: u32,
}

fn protect_plan(table: &RunTable, start: usize, end: usize, new: RunTable) -> ProtectPlan {
    let mut lo = usize::MAX;
    let mut hi = 0;
    let mut target = HostProt::NONE;
    for old in table.runs_in(start, end) {
        let want = kernel_prot(new.run_at(old.start).state);
        if kernel_prot(old.state) != want {
            lo = lo.min(old.start);
            hi = hi.max(old.end);
            target = want;
        }
    }
    let old_first = table.run_at(start).state.protect;
    if lo >= hi {
        return ProtectPlan {
            new,
            apply: None,
            undo: Vec::new(),
            old_first,
        };
    }
    let undo = table
        .runs_in(lo, hi)
        .map(|r| ProtSpan {
            start: r.start,
            end: r.end,
            prot: kernel_prot(r.state),
        })
        .collect();
    ProtectPlan {
        new,
        apply: Some(ProtSpan {
            start: lo,
            end: hi,
            prot: target,
        }),
        undo,
        old_first,
    }
}

/// MEM_COMMIT of pages `[start, end)` with page protection `protect`: committed pages keep
/// their contents and take the new protection; reserved pages become committed (zero).
pub fn plan_commit(table: &RunTable, start: usize, end: usize, protect: u32) -> ProtectPlan {
    let new = table.with(start, end, |s| PageState {
        committed: true,
        protect,
        locked: s.committed && s.locked,
        reset: s.committed && s.reset,
    });
    protect_plan(table, start, end, new)
}

/// VirtualProtect of pages `[start, end)`: every page must be committed (else 487).
pub fn plan_protect(table: &RunTable, start: usize, end: usize, protect: u32) -> Result<ProtectPlan> {
    if table.runs_in(start, end).any(|r| !r.state.committed) {
        return Err(Error::InvalidAddress("the range has pages that are not committed"));
    }
    let new = table.with(start, end, |s| PageState { protect, ..s });
    Ok(protect_plan(table, start, end, new))
}

/// MEM_DECOMMIT of pages `[start, end)`: the new table, and the hull of committed pages to
/// replace with fresh reserved memory (none if nothing is committed).
pub fn plan_decommit(table: &RunTable, start: usize, end: usize) -> (RunTable, Option<(usize, usize)>) {
    let mut lo = usize::MAX;
    let mut hi = 0;
    for r in table.runs_in(start, end).filter(|r| r.state.committed) {
        lo = lo.min(r.start);
        hi = hi.max(r.end);
    }
    let new = table.with(start, end, |_| PageState::RESERVED);
    (new, (lo < hi).then_some((lo, hi)))
}

/// Pages of `[start, end)` that MEM_RESET may lazily free: committed and not locked (the
/// kernel refuses `MADV_FREE` on locked memory; their contents simply stay).
pub fn reset_candidates(table: &RunTable, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for r in table.runs_in(start, end) {
        if r.state.committed && !r.state.locked {
            match out.last_mut() {
                Some(last) if last.1 == r.start => last.1 = r.end,
                _ => out.push((r.start, r.end)),
            }
        }
    }
    out
}

/// Pages of `[start, end)` marked reset, grouped by whether they are writable now.
pub fn reset_marked(table: &RunTable, start: usize, end: usize) -> Vec<(usize, usize, bool)> {
    table
        .runs_in(start, end)
        .filter(|r| r.state.committed && r.state.reset)
        .map(|r| (r.start, r.end, kernel_prot(r.state).write()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::win32::consts::*;

    #[test]
    fn commit_skips_syscall_when_nothing_changes() {
        let t = RunTable::new(16, PageState::committed(PAGE_READWRITE));
        let p = plan_commit(&t, 0, 16, PAGE_READWRITE);
        assert!(p.apply.is_none());
        let p = plan_commit(&t, 2, 4, PAGE_READONLY);
        assert_eq!(p.apply, Some(ProtSpan { start: 2, end: 4, prot: HostProt::READ }));
        assert_eq!(p.new.run_count(), 3);
    }

    #[test]
    fn protect_needs_committed_pages() {
        let t = RunTable::new(16, PageState::RESERVED).with(0, 4, |_| PageState::committed(PAGE_NOACCESS));
        assert_eq!(plan_protect(&t, 0, 5, PAGE_READONLY).unwrap_err().win32_code(), 487);
        let p = plan_protect(&t, 1, 2, PAGE_READONLY).unwrap();
        assert_eq!(p.old_first, PAGE_NOACCESS);
        assert_eq!(p.undo, vec![ProtSpan { start: 1, end: 2, prot: HostProt::NONE }]);
    }

    #[test]
    fn decommit_hull() {
        let t = RunTable::new(16, PageState::RESERVED)
            .with(2, 3, |_| PageState::committed(PAGE_READWRITE))
            .with(9, 10, |_| PageState::committed(PAGE_READONLY));
        let (n, hull) = plan_decommit(&t, 0, 16);
        assert_eq!(hull, Some((2, 10)));
        assert_eq!(n.run_count(), 1);
        assert_eq!(plan_decommit(&t, 3, 9).1, None);
    }
}
