//! GetWriteWatch / ResetWriteWatch (`semantics.md` §7).

use super::{Allocation, Space, WatchKind};
use crate::error::{Error, Result};
use crate::os::Os;
use crate::rules::plan::plan_reprotect;
use crate::rules::runs::PageState;
use crate::os::linux::metaheap::MetaArc as Arc;

impl<O: Os> Space<O> {
    /// The write-watched allocation holding all of `[base, base+size)`, locked; else 87.
    fn in_watched<R>(
        &self,
        base: usize,
        size: usize,
        f: impl FnOnce(&Arc<Allocation>, usize, usize) -> Result<R>,
    ) -> Result<R> {
        let bad = Error::InvalidParameter("the range is not inside one write-watched allocation");
        if size == 0 {
            return Err(Error::InvalidParameter("dwRegionSize is 0"));
        }
        let end = base.checked_add(size).ok_or(bad)?;
        self.with_allocation(base, bad, |a| {
            if a.watch.is_none() || end > a.end() {
                return Err(bad);
            }
            let (s, e) = (
                self.layout.page_floor(base),
                self.layout.page_ceil(end).ok_or(bad)?,
            );
            f(a, s, e)
        })
    }

    /// GetWriteWatch: up to `max` pages of `[base, base+size)` written since the allocation
    /// was made or last reset, ascending. With `reset`, exactly the pages reported become
    /// clean again (when the list is full, later written pages stay written).
    pub fn get_write_watch(
        &self,
        base: usize,
        size: usize,
        reset: bool,
        max: usize,
    ) -> Result<Vec<usize>> {
        self.in_watched(base, size, |a, s, e| {
            let mut out = Vec::new();
            match a.watch {
                Some(WatchKind::Kernel) => {
                    // Only committed pages can have been written (and only they are ever
                    // write-protected): scan the committed spans.
                    let p = self.page();
                    let (ps, pe) = ((s - a.base) / p, (e - a.base) / p);
                    let mut spans: Vec<(usize, usize)> = Vec::new();
                    a.read(|t| {
                        for r in t.runs_in(ps, pe).filter(|r| r.state.committed) {
                            match spans.last_mut() {
                                Some(last) if last.1 == r.start => last.1 = r.end,
                                _ => spans.push((r.start, r.end)),
                            }
                        }
                    });
                    let mut part = Vec::new();
                    for (rs, re) in spans {
                        if out.len() >= max {
                            break;
                        }
                        let (addr, len) = (a.base + rs * p, (re - rs) * p);
                        let left = max - out.len();
                        if self
                            .os
                            .watch_scan(addr, len, reset, left, &mut part)
                            .is_err()
                        {
                            // The registration is gone (a child after fork whose fork handler
                            // could not carry the parent's state over): take it over. Every
                            // present page then reads as written until reset — over-reporting,
                            // never under-reporting.
                            self.os
                                .watch_adopt(a.base, a.size)
                                .map_err(Error::from_os)?;
                            self.os
                                .watch_scan(addr, len, reset, left, &mut part)
                                .map_err(Error::from_os)?;
                        }
                        out.append(&mut part);
                    }
                }
                _ => {
                    let p = self.page();
                    let (ps, pe) = ((s - a.base) / p, (e - a.base) / p);
                    self.sync(a, ps, pe);
                    let dirty: Vec<(usize, usize)> = a.read(|t| {
                        t.runs_in(ps, pe)
                            .filter(|r| r.state.committed && r.state.dirty)
                            .map(|r| (r.start, r.end))
                            .collect()
                    });
                    let mut last = ps;
                    'outer: for (rs, re) in dirty {
                        for i in rs..re {
                            if out.len() >= max {
                                break 'outer;
                            }
                            out.push(a.base + i * p);
                            last = i + 1;
                        }
                    }
                    if reset && !out.is_empty() {
                        self.clean_signal(a, ps, last)?;
                    }
                }
            }
            Ok(out)
        })
    }

    /// ResetWriteWatch: every page of `[base, base+size)` becomes clean.
    pub fn reset_write_watch(&self, base: usize, size: usize) -> Result<()> {
        self.in_watched(base, size, |a, s, e| match a.watch {
            Some(WatchKind::Kernel) => {
                if self.os.watch_clean(s, e - s).is_err() {
                    self.os
                        .watch_adopt(a.base, a.size)
                        .map_err(Error::from_os)?;
                    self.os.watch_clean(s, e - s).map_err(Error::from_os)?;
                }
                Ok(())
            }
            _ => {
                let p = self.page();
                let (ps, pe) = ((s - a.base) / p, (e - a.base) / p);
                self.sync(a, ps, pe);
                self.clean_signal(a, ps, pe)
            }
        })
    }

    /// Signal-driven watch: marks pages `[ps, pe)` clean and takes write access away from the
    /// clean writable ones again.
    fn clean_signal(&self, a: &Allocation, ps: usize, pe: usize) -> Result<()> {
        let plan = a.read(|t| {
            let new = t.with(ps, pe, |st| PageState { dirty: false, ..st });
            plan_reprotect(t, new, ps, pe, true)
        });
        self.apply_protect_plan(a, plan)
    }
}
