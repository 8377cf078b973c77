//! VirtualLock / VirtualUnlock (`semantics.md` §6).

use super::{Allocation, Space};
use crate::error::{Error, Result};
use crate::os::{KernelRegion, Os};
use crate::rules::plan::kernel_prot;
use crate::rules::requests::validate_range;
use crate::runs::PageState;
use std::sync::Arc;

/// A piece of a lock/unlock range: inside one of our allocations, or foreign memory.
enum Segment {
    Ours { alloc: usize, start: usize, end: usize },
    Foreign { start: usize, end: usize },
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
                out.push(Segment::Ours { alloc: i, start: at, end: e });
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
        // multi-allocation calls cannot deadlock); if one was released meanwhile, start over.
        let allocs = self.overlapping(start, end);
        let guards: Option<Vec<_>> = allocs.iter().map(|a| a.begin()).collect();
        let Some(_guards) = guards else {
            return self.virtual_lock(addr, size);
        };
        let segs = self.segments(&allocs, start, end, Error::NoAccess("the range has free pages"))?;
        let p = self.page();
        // Check every page before touching anything.
        for s in &segs {
            if let Segment::Ours { alloc, start, end } = *s {
                let a = &allocs[alloc];
                let (ps, pe) = self.pages_of(a, start, end);
                let ok = a.read(|t| {
                    t.runs_in(ps, pe)
                        .all(|r| r.state.committed && kernel_prot(r.state).any())
                });
                if !ok {
                    return Err(Error::NoAccess("the range has pages that are not accessible"));
                }
            }
        }
        if let Err(e) = self.os.lock(start, end - start) {
            // Put back: unlock whatever was not locked before.
            for s in &segs {
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
            return Err(Error::from_os(e));
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

    /// VirtualUnlock: every page must be locked (else 158, and nothing is unlocked).
    pub fn virtual_unlock(&self, addr: usize, size: usize) -> Result<()> {
        let (start, end) = validate_range(&self.layout, addr, size)?;
        let allocs = self.overlapping(start, end);
        let guards: Option<Vec<_>> = allocs.iter().map(|a| a.begin()).collect();
        let Some(_guards) = guards else {
            return self.virtual_unlock(addr, size);
        };
        let segs = self.segments(&allocs, start, end, Error::NotLocked)
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
        self.os.unlock(start, end - start).map_err(Error::from_os)?;
        for s in &segs {
            match *s {
                Segment::Ours { alloc, start, end } => {
                    let a = &allocs[alloc];
                    let (ps, pe) = self.pages_of(a, start, end);
                    a.publish(a.read(|t| t.with(ps, pe, |st| PageState { locked: false, ..st })));
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
