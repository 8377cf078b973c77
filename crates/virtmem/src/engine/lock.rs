//! VirtualLock / VirtualUnlock (`semantics.md` §6).

use super::{Allocation, Space};
use crate::error::{Error, Result};
use crate::os::linux::metaheap::meta_vec;
use crate::os::retry::until_ok;
use crate::os::{KernelRegion, Os, OsError};
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
        // A view's copy-on-write pages must not be written by the lock (a write fault would
        // make them private copies): ranges with views are locked without writing.
        let views = segs.iter().any(|s| {
            matches!(*s, Segment::Ours { alloc, .. } if allocs[alloc].kind == super::AllocKind::View)
        });
        let locked = if views {
            self.os.lock_reading(start, end - start)
        } else {
            self.os.lock(start, end - start)
        };
        if let Err(e) = locked {
            self.undo_lock(allocs, &segs);
            return Err(Error::from_os(e));
        }
        // The lock quota is the working-set minimum (`engine/working_set.rs`: one number,
        // RLIMIT_MEMLOCK's soft limit). The kernel enforces it itself (mlock fails above), except
        // for a process with CAP_IPC_LOCK: then we check after the fact and take the lock back
        // (never more than the quota stays locked; two threads locking at once near the quota
        // may both be refused).
        if self.os.lock_quota_exceeded() {
            self.undo_lock(allocs, &segs);
            return Err(Error::WorkingSetQuota);
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
    ///
    /// Each `munlock` is retried a bounded number of times (`crate::os::retry`). If the
    /// kernel keeps refusing (munlock works mapping by mapping and can stop half-way, e.g.
    /// at `vm.max_map_count`), the pages may be partly locked: they are then locked again
    /// completely where the kernel allows it, and recorded as locked either way — the record
    /// never says "not locked" for a page the kernel may hold locked, so VirtualUnlock can
    /// always release them (munlock of a page that is not locked is harmless). The caller
    /// returns its own error.
    fn undo_lock(&self, allocs: &[Arc<Allocation>], segs: &[Segment]) {
        let p = self.page();
        for s in segs {
            match *s {
                Segment::Ours { alloc, start, end } => {
                    let a = &allocs[alloc];
                    let (ps, pe) = self.pages_of(a, start, end);
                    let mut runs = meta_vec();
                    a.read(|t| runs.extend(t.runs_in(ps, pe).filter(|r| !r.state.locked)));
                    let mut stuck = meta_vec();
                    for r in &runs {
                        let (rs, rl) = (a.base + r.start * p, (r.end - r.start) * p);
                        if self.undo_unlock(rs, rl).is_err() {
                            stuck.push((r.start, r.end));
                        }
                    }
                    if !stuck.is_empty() {
                        let table = a.read(|t| {
                            stuck.iter().fold(t.clone(), |t, &(s, e)| {
                                t.with(s, e, |st| PageState { locked: true, ..st })
                            })
                        });
                        a.publish(table);
                    }
                }
                Segment::Foreign { start, end } => {
                    let mut locks = self.foreign_locks.lock().unwrap_or_else(|e| e.into_inner());
                    if !locks.contains(start, end) && self.undo_unlock(start, end - start).is_err()
                    {
                        locks.insert(start, end);
                    }
                }
            }
        }
    }

    /// Unlocks `[addr, addr+len)` again after a failed VirtualLock, retrying (bounded). If
    /// that keeps failing, locks the range completely (bounded) so the kernel matches the
    /// record the caller then writes ("locked"), and returns the error.
    fn undo_unlock(&self, addr: usize, len: usize) -> std::result::Result<(), OsError> {
        let e = match until_ok(|| self.os.unlock(addr, len)) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Best effort: if this fails too, part of the range may be unlocked while recorded
        // as locked (the upper bound VirtualUnlock can always clear).
        let _ = until_ok(|| self.os.lock(addr, len));
        Err(e)
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
            // (every page was locked before), retrying (bounded). If the kernel keeps
            // refusing, the range is partly unlocked: finish the unlock (bounded) and record
            // the range as not locked, which is then exact; if even that fails, the record
            // keeps "locked" (an upper bound: a later VirtualUnlock releases whatever is
            // left). The call fails with munlock's error either way.
            if until_ok(|| self.os.lock(start, end - start)).is_err()
                && until_ok(|| self.os.unlock(start, end - start)).is_ok()
            {
                self.record_unlocked(allocs, &segs);
            }
            return Err(Error::from_os(e));
        }
        self.record_unlocked(allocs, &segs);
        Ok(())
    }

    /// Records every page of `segs` as not locked.
    fn record_unlocked(&self, allocs: &[Arc<Allocation>], segs: &[Segment]) {
        for s in segs {
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
    }
}
