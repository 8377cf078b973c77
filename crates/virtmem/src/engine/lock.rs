//! VirtualLock / VirtualUnlock (`semantics.md` §6).

use super::{Allocation, Space};
use crate::error::{Error, Result};
use crate::os::{KernelRegion, Os};
use crate::rules::plan::plan_protect;
use crate::rules::protection::host_prot;
use crate::rules::requests::validate_range;
use crate::rules::runs::PageState;
use crate::vocab::consts::PAGE_GUARD;
use crate::os::linux::metaheap::MetaArc as Arc;

/// A piece of a lock/unlock range: inside one of our allocations, or foreign memory.
enum Segment {
    Ours {
        alloc: usize,
        start: usize,
        end: usize,
    },
    Foreign {
        start: usize,
        end: usize,
    },
}

impl<O: Os> Space<O> {
    /// Splits `[start, end)` into segments; every byte must be mapped, or `free_err`.
    fn segments(
        &self,
        allocs: &[Arc<Allocation>],
        start: usize,
        end: usize,
        free_err: Error,
    ) -> Result<Vec<Segment>> {
        let mut out = Vec::new();
        let mut at = start;
        let mut i = 0;
        while at < end {
            if let Some(a) = allocs.get(i).filter(|a| a.base <= at) {
                let e = a.end().min(end);
                out.push(Segment::Ours {
                    alloc: i,
                    start: at,
                    end: e,
                });
                at = e;
                i += 1;
                continue;
            }
            let limit = allocs.get(i).map_or(end, |a| a.base.min(end));
            match self.os.kernel_region(at) {
                KernelRegion::Mapped(m) => {
                    let e = m.end.min(limit);
                    if !m.prot.any() {
                        return Err(Error::NoAccess("the range has inaccessible pages"));
                    }
                    out.push(Segment::Foreign { start: at, end: e });
                    at = e;
                }
                KernelRegion::Free { .. } => return Err(free_err),
            }
        }
        Ok(out)
    }

    /// VirtualLock: every page must be committed and accessible (else 998).
    pub fn virtual_lock(&self, addr: usize, size: usize) -> Result<()> {
        let (start, end) = validate_range(&self.layout, addr, size)?;
        // Take every overlapping allocation's operation lock, in address order (so two
        // multi-allocation calls cannot deadlock); if one was released meanwhile, start over
        // (bounded, `crate::os::retry`: allocations that keep being released leave free pages in
        // the range, 998 as for any free page).
        crate::os::retry::bounded(Error::NoAccess("the range kept being released"), || {
            let allocs = self.overlapping(start, end);
            let guards: Option<Vec<_>> = allocs.iter().map(|a| a.begin()).collect();
            let _guards = guards?;
            Some(self.lock_held(&allocs, start, end))
        })
    }

    /// VirtualLock of `[start, end)` with the operation locks of `allocs` held.
    fn lock_held(&self, allocs: &[Arc<Allocation>], start: usize, end: usize) -> Result<()> {
        if allocs.iter().any(|a| {
            matches!(
                a.kind,
                super::AllocKind::LargePages | super::AllocKind::Physical
            )
        }) {
            // Large pages and AWE pages are never paged anyway (semantics §6).
            return Err(Error::InvalidParameter(
                "VirtualLock on large-page or AWE memory",
            ));
        }
        let segs = self.segments(
            allocs,
            start,
            end,
            Error::NoAccess("the range has free pages"),
        )?;
        // Check every page before touching anything.
        for s in &segs {
            if let Segment::Ours { alloc, start, end } = *s {
                let a = &allocs[alloc];
                let (ps, pe) = self.pages_of(a, start, end);
                self.sync(a, ps, pe);
                let ok = a.read(|t| {
                    t.runs_in(ps, pe).all(|r| {
                        r.state.committed && host_prot(r.state.protect & !PAGE_GUARD).any()
                    })
                });
                if !ok {
                    return Err(Error::NoAccess(
                        "the range has pages that are not accessible",
                    ));
                }
            }
        }
        // Windows touches each page: the first guard page stops the call with
        // STATUS_GUARD_PAGE_VIOLATION and loses its guard (case 113), nothing is locked.
        for s in &segs {
            if let Segment::Ours { alloc, start, end } = *s {
                let a = &allocs[alloc];
                let (ps, pe) = self.pages_of(a, start, end);
                let guard = a.read(|t| {
                    t.runs_in(ps, pe)
                        .find(|r| r.state.protect & PAGE_GUARD != 0)
                        .map(|r| (r.start, r.state))
                });
                if let Some((g, st)) = guard {
                    let plan =
                        a.read(|t| plan_protect(t, g, g + 1, st.protect & !PAGE_GUARD, a.armed()))?;
                    self.apply_protect_plan(a, plan)?;
                    return Err(Error::GuardPageViolation);
                }
            }
        }
        if let Err(e) = self.os.lock(start, end - start) {
            self.undo_lock(allocs, &segs);
            return Err(Error::from_os(e));
        }
        // Locking touches the pages for writing where they are writable, which write watch
        // sees as a write (case 114): with signal-driven watch, record it as such — only now
        // that the lock held (RELIABILITY O2: recording first left the pages reported as
        // written when mlock then failed). Until this point the clean pages stayed
        // write-protected, so a write by another thread meanwhile was caught by the handler.
        for s in &segs {
            if let Segment::Ours { alloc, start, end } = *s {
                let a = &allocs[alloc];
                if a.armed() {
                    let (ps, pe) = self.pages_of(a, start, end);
                    let plan = a.read(|t| {
                        let new = t.with(ps, pe, |st| PageState {
                            dirty: st.dirty || host_prot(st.protect).write(),
                            ..st
                        });
                        crate::rules::plan::plan_reprotect(t, new, ps, pe, true)
                    });
                    if let Err(e) = self.apply_protect_plan(a, plan) {
                        // The protections are back as they were (apply_protect_plan): take
                        // the lock back too.
                        self.undo_lock(allocs, &segs);
                        return Err(e);
                    }
                }
            }
        }
        for s in &segs {
            match *s {
                Segment::Ours { alloc, start, end } => {
                    let a = &allocs[alloc];
                    let (ps, pe) = self.pages_of(a, start, end);
                    a.publish(a.read(|t| t.with(ps, pe, |st| PageState { locked: true, ..st })));
                }
                Segment::Foreign { start, end } => {
                    let mut locks = self.foreign_locks.lock().unwrap_or_else(|e| e.into_inner());
                    locks.insert(start, end);
                }
            }
        }
        Ok(())
    }

    /// After a failed VirtualLock: unlocks whatever was not locked before (the recorded
    /// lock state of our pages, the foreign-lock set for other memory).
    fn undo_lock(&self, allocs: &[Arc<Allocation>], segs: &[Segment]) {
        let p = self.page();
        for s in segs {
            match *s {
                Segment::Ours { alloc, start, end } => {
                    let a = &allocs[alloc];
                    let (ps, pe) = self.pages_of(a, start, end);
                    let runs: Vec<_> = a.read(|t| t.runs_in(ps, pe).collect());
                    for r in runs.iter().filter(|r| !r.state.locked) {
                        let _ = self.os.unlock(a.base + r.start * p, (r.end - r.start) * p);
                    }
                }
                Segment::Foreign { start, end } => {
                    let locks = self.foreign_locks.lock().unwrap_or_else(|e| e.into_inner());
                    if !locks.contains(start, end) {
                        let _ = self.os.unlock(start, end - start);
                    }
                }
            }
        }
    }

    /// VirtualUnlock: every page must be locked (else 158, and nothing is unlocked).
    pub fn virtual_unlock(&self, addr: usize, size: usize) -> Result<()> {
        let (start, end) = validate_range(&self.layout, addr, size)?;
        // As VirtualLock; allocations that keep being released leave pages that are not
        // locked: 158.
        crate::os::retry::bounded(Error::NotLocked, || {
            let allocs = self.overlapping(start, end);
            let guards: Option<Vec<_>> = allocs.iter().map(|a| a.begin()).collect();
            let _guards = guards?;
            Some(self.unlock_held(&allocs, start, end))
        })
    }

    /// VirtualUnlock of `[start, end)` with the operation locks of `allocs` held.
    fn unlock_held(&self, allocs: &[Arc<Allocation>], start: usize, end: usize) -> Result<()> {
        let segs = self
            .segments(allocs, start, end, Error::NotLocked)
            .map_err(|_| Error::NotLocked)?;
        for s in &segs {
            let locked = match *s {
                Segment::Ours { alloc, start, end } => {
                    let a = &allocs[alloc];
                    let (ps, pe) = self.pages_of(a, start, end);
                    a.read(|t| t.runs_in(ps, pe).all(|r| r.state.locked))
                }
                Segment::Foreign { start, end } => self
                    .foreign_locks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(start, end),
            };
            if !locked {
                return Err(Error::NotLocked);
            }
        }
        if let Err(e) = self.os.unlock(start, end - start) {
            // munlock works mapping by mapping and may stop half-way: lock the range again
            // (every page was locked before).
            let _ = self.os.lock(start, end - start);
            return Err(Error::from_os(e));
        }
        for s in &segs {
            match *s {
                Segment::Ours { alloc, start, end } => {
                    let a = &allocs[alloc];
                    let (ps, pe) = self.pages_of(a, start, end);
                    a.publish(a.read(|t| {
                        t.with(ps, pe, |st| PageState {
                            locked: false,
                            ..st
                        })
                    }));
                }
                Segment::Foreign { start, end } => {
                    let mut locks = self.foreign_locks.lock().unwrap_or_else(|e| e.into_inner());
                    locks.remove(start, end);
                }
            }
        }
        Ok(())
    }
}
