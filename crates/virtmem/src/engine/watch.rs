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

    /// The pages of `[ps, pe)` (page indices) written now as the kernel (kernel path) or the
    /// runs (signal path) know it, ascending, at most `max`; latched pages are not included.
    /// The caller holds the allocation's operation lock and, on the signal path, has folded
    /// the faults into the runs (`sync`).
    pub(crate) fn written_now(
        &self,
        a: &Allocation,
        ps: usize,
        pe: usize,
        max: usize,
    ) -> Result<Vec<usize>> {
        match a.watch {
            Some(WatchKind::Kernel) => self.kernel_scan(a, ps, pe, false, max),
            Some(WatchKind::Signal) => Ok(a.read(|t| {
                t.runs_in(ps, pe)
                    .filter(|r| r.state.committed && r.state.dirty)
                    .flat_map(|r| r.start..r.end)
                    .take(max)
                    .collect()
            })),
            None => Ok(Vec::new()),
        }
    }

    /// VirtualProtect on a write-watched allocation: the pages of `[ps, pe)` written now are
    /// latched (they stay reported through decommit and recommit until a reset, case 105).
    /// Returns runs `(start, end, ())` of them for `RunTable::with_segments`.
    pub(crate) fn latch_written(
        &self,
        a: &Allocation,
        ps: usize,
        pe: usize,
    ) -> Result<Vec<(usize, usize, ())>> {
        let mut runs: Vec<(usize, usize, ())> = Vec::new();
        for i in self.written_now(a, ps, pe, usize::MAX)? {
            match runs.last_mut() {
                Some(last) if last.1 == i => last.1 = i + 1,
                _ => runs.push((i, i + 1, ())),
            }
        }
        Ok(runs)
    }

    /// GetWriteWatch: up to `max` pages of `[base, base+size)` written since the allocation
    /// was made or last reset, ascending — what is written now, and what a VirtualProtect
    /// latched (case 105). With `reset`, exactly the pages reported become clean again (when
    /// the list is full, later written pages stay written).
    pub fn get_write_watch(
        &self,
        base: usize,
        size: usize,
        reset: bool,
        max: usize,
    ) -> Result<Vec<usize>> {
        self.in_watched(base, size, |a, s, e| {
            let p = self.page();
            let (ps, pe) = ((s - a.base) / p, (e - a.base) / p);
            let latched: Vec<usize> = a.read(|t| {
                t.runs_in(ps, pe)
                    .filter(|r| r.state.latched)
                    .flat_map(|r| r.start..r.end)
                    .take(max)
                    .collect()
            });
            self.sync(a, ps, pe);
            if reset && latched.is_empty() && a.watch == Some(WatchKind::Kernel) {
                // Nothing latched: the list is exactly what the kernel reports, so one scan
                // reports and cleans it (at most `max` pages; later written pages stay
                // written), instead of a scan to find the cut and a second one to clean.
                let fresh = self.kernel_scan(a, ps, pe, true, max)?;
                return Ok(fresh.into_iter().map(|i| a.base + i * p).collect());
            }
            let now = self.written_now(a, ps, pe, max)?;
            let pages = merge_first(&now, &latched, max);
            if !reset || pages.is_empty() {
                return Ok(pages.into_iter().map(|i| a.base + i * p).collect());
            }
            // Every page written or latched below the cut is in the list (both lists are
            // complete up to `max`).
            let cut = if pages.len() < max {
                pe
            } else {
                pages[pages.len() - 1] + 1
            };
            let latched_below = latched.iter().take_while(|&&i| i < cut).count();
            let pages = if a.watch == Some(WatchKind::Kernel) {
                // The kernel keeps tracking while we look: report and clean in one step what
                // is written below the cut now (at most what the list has room for; a page
                // written meanwhile beyond that stays written, reported next time).
                let fresh = self.kernel_scan(a, ps, cut, true, max - latched_below)?;
                self.unlatch(a, ps, cut);
                merge_first(&fresh, &latched[..latched_below], max)
            } else {
                self.unlatch(a, ps, cut);
                self.clean_signal(a, ps, cut)?;
                pages
            };
            Ok(pages.into_iter().map(|i| a.base + i * p).collect())
        })
    }

    /// Kernel path: at most `max` pages (indices) of `[ps, pe)` written now, committed spans
    /// only (only they can have been written, and only they are write-protected); with
    /// `reset`, the pages listed are cleaned in the same step.
    fn kernel_scan(
        &self,
        a: &Allocation,
        ps: usize,
        pe: usize,
        reset: bool,
        max: usize,
    ) -> Result<Vec<usize>> {
        let p = self.page();
        let (mut out, mut part) = (Vec::new(), Vec::new());
        for (rs, re) in committed_spans(a, ps, pe) {
            if out.len() >= max {
                break;
            }
            let (addr, len) = (a.base + rs * p, (re - rs) * p);
            let left = max - out.len();
            if self.os.watch_scan(addr, len, reset, left, &mut part).is_err() {
                // The registration is gone (a child after fork whose fork handler could not
                // carry the parent's state over): take it over. Every present page then reads
                // as written until reset — over-reporting, never under-reporting.
                self.os
                    .watch_adopt(a.base, a.size)
                    .map_err(Error::from_os)?;
                self.os
                    .watch_scan(addr, len, reset, left, &mut part)
                    .map_err(Error::from_os)?;
            }
            out.extend(part.drain(..).map(|x| (x - a.base) / p));
        }
        Ok(out)
    }

    /// Pages `[ps, pe)` are no longer latched.
    fn unlatch(&self, a: &Allocation, ps: usize, pe: usize) {
        if a.read(|t| t.runs_in(ps, pe).any(|r| r.state.latched)) {
            let table = a.read(|t| t.with(ps, pe, |st| PageState { latched: false, ..st }));
            a.publish(table);
        }
    }

    /// ResetWriteWatch: every page of `[base, base+size)` becomes clean.
    pub fn reset_write_watch(&self, base: usize, size: usize) -> Result<()> {
        self.in_watched(base, size, |a, s, e| {
            let p = self.page();
            self.clean(a, (s - a.base) / p, (e - a.base) / p)
        })
    }

    /// Makes pages `[ps, pe)` clean: not written, not latched.
    fn clean(&self, a: &Allocation, ps: usize, pe: usize) -> Result<()> {
        self.unlatch(a, ps, pe);
        match a.watch {
            Some(WatchKind::Kernel) => {
                let p = self.page();
                let (s, len) = (a.base + ps * p, (pe - ps) * p);
                if self.os.watch_clean(s, len).is_err() {
                    self.os
                        .watch_adopt(a.base, a.size)
                        .map_err(Error::from_os)?;
                    self.os.watch_clean(s, len).map_err(Error::from_os)?;
                }
                Ok(())
            }
            _ => {
                self.sync(a, ps, pe);
                self.clean_signal(a, ps, pe)
            }
        }
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

/// The first `max` of two ascending lists merged, without duplicates.
fn merge_first(x: &[usize], y: &[usize], max: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity((x.len() + y.len()).min(max));
    let (mut i, mut j) = (0, 0);
    while out.len() < max {
        let next = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) if a == b => {
                i += 1;
                j += 1;
                a
            }
            (Some(&a), Some(&b)) if a < b => {
                i += 1;
                a
            }
            (Some(&a), None) => {
                i += 1;
                a
            }
            (_, Some(&b)) => {
                j += 1;
                b
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// The maximal spans of committed pages of `[ps, pe)`: only they can have been written (and
/// only they are ever write-protected), so the kernel path scans just these.
fn committed_spans(a: &Allocation, ps: usize, pe: usize) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    a.read(|t| {
        for r in t.runs_in(ps, pe).filter(|r| r.state.committed) {
            match spans.last_mut() {
                Some(last) if last.1 == r.start => last.1 = r.end,
                _ => spans.push((r.start, r.end)),
            }
        }
    });
    spans
}
