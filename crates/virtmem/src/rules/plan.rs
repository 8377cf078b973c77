//! Plans: for a valid request on one allocation, the new page runs and the kernel steps that
//! produce them, plus what undoing those steps needs. Pure functions of a [`RunTable`]; page
//! ranges are page indices within the allocation.

use crate::os::linux::metaheap::{meta_vec, CollectMeta, MetaVec};

use super::protection::host_prot;
use crate::error::{Error, Result};
use crate::os::HostProt;
use crate::rules::runs::{PageState, RunTable};

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

/// The kernel protection a page in `state` has. Guard pages are inaccessible until touched;
/// with signal-driven write watch (`armed`), a clean writable page lacks write permission so
/// that its first write faults and is recorded.
#[inline]
pub fn kernel_prot(state: PageState, armed: bool) -> HostProt {
    if !state.committed {
        return HostProt::NONE;
    }
    let p = host_prot(state.protect);
    if armed && !state.dirty && p.write() {
        HostProt::new(p.read(), false, p.exec())
    } else {
        p
    }
}

/// A protection change: the new table, the hull of pages whose kernel protection changes, and
/// the first page's old protection. The kernel steps are the maximal spans of equal kernel
/// protection of `new` over the hull ([`prot_spans`]); undoing them sets the old table's.
#[derive(Clone, Debug)]
pub struct ProtectPlan {
    /// The table after the change.
    pub new: RunTable,
    /// Pages `[lo, hi)` whose kernel protection changes (none: no syscall at all).
    pub hull: Option<(usize, usize)>,
    /// The first page's old Win32 protection (VirtualProtect's `*lpflOldProtect`).
    pub old_first: u32,
    /// Signal-driven write watch: clean writable pages lack write permission.
    pub armed: bool,
    /// The one kernel protection of the whole hull, when it is known to be uniform (a plain
    /// VirtualProtect): one `mprotect`, no span walk.
    pub uniform: Option<HostProt>,
}

/// The maximal spans of equal kernel protection of `table` over pages `[lo, hi)`.
pub fn prot_spans(
    table: &RunTable,
    lo: usize,
    hi: usize,
    armed: bool,
) -> impl Iterator<Item = ProtSpan> + '_ {
    let mut runs = table.runs_in(lo, hi).peekable();
    std::iter::from_fn(move || {
        let r = runs.next()?;
        let prot = kernel_prot(r.state, armed);
        let mut end = r.end;
        while let Some(n) = runs.peek() {
            if kernel_prot(n.state, armed) != prot {
                break;
            }
            end = n.end;
            runs.next();
        }
        Some(ProtSpan {
            start: r.start,
            end,
            prot,
        })
    })
}

fn protect_plan(
    table: &RunTable,
    start: usize,
    end: usize,
    new: RunTable,
    armed: bool,
) -> ProtectPlan {
    let mut lo = usize::MAX;
    let mut hi = 0;
    for old in table.runs_in(start, end) {
        // `new` may split `old` (dirty pages keep write access): compare piece by piece.
        for n in new.runs_in(old.start, old.end) {
            if kernel_prot(old.state, armed) != kernel_prot(n.state, armed) {
                lo = lo.min(n.start);
                hi = hi.max(n.end);
            }
        }
    }
    ProtectPlan {
        new,
        hull: (lo < hi).then_some((lo, hi)),
        old_first: table.run_at(start).state.protect,
        armed,
        uniform: None,
    }
}

/// Any change of page state within `[start, end)` (`new` is `table` changed there): the
/// kernel protections that must follow.
pub fn plan_reprotect(
    table: &RunTable,
    new: RunTable,
    start: usize,
    end: usize,
    armed: bool,
) -> ProtectPlan {
    protect_plan(table, start, end, new, armed)
}

/// MEM_COMMIT of pages `[start, end)` with page protection `protect`: committed pages keep
/// their contents and take the new protection; reserved pages become committed (zero).
pub fn plan_commit(
    table: &RunTable,
    start: usize,
    end: usize,
    protect: u32,
    armed: bool,
) -> ProtectPlan {
    let new = table.with(start, end, |s| PageState {
        committed: true,
        protect,
        locked: s.committed && s.locked,
        reset: s.committed && s.reset,
        dirty: s.committed && s.dirty,
        // A latched written page stays so through decommit and a new commit.
        latched: s.latched,
    });
    protect_plan(table, start, end, new, armed)
}

/// VirtualProtect of pages `[start, end)`: every page must be committed (else 487).
pub fn plan_protect(
    table: &RunTable,
    start: usize,
    end: usize,
    protect: u32,
    armed: bool,
) -> Result<ProtectPlan> {
    // One pass over the old runs: every page must be committed, and the hull is where the
    // kernel protection changes (each old piece becomes the same state with `protect`).
    let mut lo = usize::MAX;
    let mut hi = 0;
    for r in table.runs_in(start, end) {
        if !r.state.committed {
            return Err(Error::InvalidAddress(
                "the range has pages that are not committed",
            ));
        }
        let new = PageState { protect, ..r.state };
        if kernel_prot(r.state, armed) != kernel_prot(new, armed) {
            lo = lo.min(r.start);
            hi = hi.max(r.end);
        }
    }
    Ok(ProtectPlan {
        new: table.with(start, end, |s| PageState { protect, ..s }),
        hull: (lo < hi).then_some((lo, hi)),
        old_first: table.run_at(start).state.protect,
        armed,
        // Every page of the hull is committed and gets `protect`; only write watch's clean
        // pages would differ.
        uniform: (!armed).then(|| host_prot(protect)),
    })
}

/// MEM_DECOMMIT of pages `[start, end)`: the new table, and the hull of committed pages to
/// replace with fresh reserved memory (none if nothing is committed).
pub fn plan_decommit(
    table: &RunTable,
    start: usize,
    end: usize,
) -> (RunTable, Option<(usize, usize)>) {
    let mut lo = usize::MAX;
    let mut hi = 0;
    for r in table.runs_in(start, end).filter(|r| r.state.committed) {
        lo = lo.min(r.start);
        hi = hi.max(r.end);
    }
    // A written page a VirtualProtect latched stays reported as written (case 105).
    let new = table.with(start, end, |s| PageState {
        latched: s.latched,
        ..PageState::RESERVED
    });
    (new, (lo < hi).then_some((lo, hi)))
}

/// Pages of `[start, end)` that MEM_RESET may lazily free: committed and not locked (the
/// kernel refuses `MADV_FREE` on locked memory; their contents simply stay).
pub(crate) fn reset_candidates(table: &RunTable, start: usize, end: usize) -> MetaVec<(usize, usize)> {
    let mut out = meta_vec::<(usize, usize)>();
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

/// Pages of `[start, end)` marked reset, with whether the kernel lets them be written now.
pub(crate) fn reset_marked(
    table: &RunTable,
    start: usize,
    end: usize,
    armed: bool,
) -> MetaVec<(usize, usize, bool)> {
    table
        .runs_in(start, end)
        .filter(|r| r.state.committed && r.state.reset)
        .map(|r| (r.start, r.end, kernel_prot(r.state, armed).write()))
        .collect_meta()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::consts::*;

    #[test]
    fn commit_skips_syscall_when_nothing_changes() {
        let t = RunTable::new(16, PageState::committed(PAGE_READWRITE));
        let p = plan_commit(&t, 0, 16, PAGE_READWRITE, false);
        assert!(p.hull.is_none());
        let p = plan_commit(&t, 2, 4, PAGE_READONLY, false);
        assert_eq!(p.hull, Some((2, 4)));
        let spans: Vec<_> = prot_spans(&p.new, 2, 4, false).collect();
        assert_eq!(
            spans,
            vec![ProtSpan {
                start: 2,
                end: 4,
                prot: HostProt::READ
            }]
        );
        assert_eq!(p.new.run_count(), 3);
    }

    #[test]
    fn protect_needs_committed_pages() {
        let t = RunTable::new(16, PageState::RESERVED)
            .with(0, 4, |_| PageState::committed(PAGE_NOACCESS));
        assert_eq!(
            plan_protect(&t, 0, 5, PAGE_READONLY, false)
                .unwrap_err()
                .win32_code(),
            487
        );
        let p = plan_protect(&t, 1, 2, PAGE_READONLY, false).unwrap();
        assert_eq!(p.old_first, PAGE_NOACCESS);
        let undo: Vec<_> = prot_spans(&t, 1, 2, false).collect();
        assert_eq!(
            undo,
            vec![ProtSpan {
                start: 1,
                end: 2,
                prot: HostProt::NONE
            }]
        );
    }

    #[test]
    fn decommit_hull() {
        let t = RunTable::new(16, PageState::RESERVED)
            .with(2, 3, |_| PageState::committed(PAGE_READWRITE))
            .with(9, 10, |_| PageState::committed(PAGE_READONLY));
        let (n, hull) = plan_decommit(&t, 0, 16);
        // Signal-driven write watch: clean writable pages are committed without write access.
        let w = plan_commit(
            &RunTable::new(4, PageState::RESERVED),
            0,
            4,
            PAGE_READWRITE,
            true,
        );
        let spans: Vec<_> = prot_spans(&w.new, 0, 4, true).collect();
        assert_eq!(
            spans,
            vec![ProtSpan {
                start: 0,
                end: 4,
                prot: HostProt::READ
            }]
        );
        assert_eq!(hull, Some((2, 10)));
        assert_eq!(n.run_count(), 1);
        assert_eq!(plan_decommit(&t, 3, 9).1, None);
    }
}
