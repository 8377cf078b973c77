//! Views of sections (`sections.md` §6–§12, §16): MapViewOfFile*, UnmapViewOfFile*,
//! FlushViewOfFile, and what VirtualAlloc(MEM_COMMIT), VirtualProtect and VirtualQuery do on
//! views.
//!
//! A view is an allocation of kind `View`: the index, the page runs, the operation lock and
//! the fault handler treat it like any allocation. Its pages are mapped from the section's
//! backing object: `MAP_SHARED`, except copy-on-write pages (PAGE_WRITECOPY /
//! PAGE_EXECUTE_WRITECOPY, and pages already copied), which are `MAP_PRIVATE` of the same
//! object — so a page is privately mapped exactly when its protection is copy-on-write or
//! the kernel says it is a private copy. A SEC_RESERVE section keeps its commit state in its
//! backing object (allocated ranges), which every view in every process reads.

use super::section::Section;
use super::{AllocKind, Allocation, Space};
use crate::error::{Error, Result};
use crate::os::linux::metaheap::MetaArc;
use crate::os::{HostProt, Os, Placement as OsPlacement, ViewMap};
use crate::rules::plan::{kernel_prot, plan_protect};
use crate::rules::protection::host_prot;
use crate::rules::runs::{PageState, RunTable};
use crate::rules::sections::{after_copy, compatible, is_writecopy, may_map};
use crate::rules::Protection;
use std::sync::Arc;

/// A validated-by-type MapViewOfFile* request; the engine checks the rest (MV7's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// The section handle.
    pub handle: usize,
    /// The view's protection (MV1 from the desired access, or MapViewOfFile3's).
    pub protect: u32,
    /// Offset in the section.
    pub offset: u64,
    /// Bytes to map; 0 = to the section's end.
    pub size: usize,
    /// The address asked for (MapViewOfFileEx / MapViewOfFile3), if any.
    pub base: Option<usize>,
    /// MEM_REPLACE_PLACEHOLDER: `base` and `size` name exactly one placeholder.
    pub replace_placeholder: bool,
    /// The highest end address the view may have (MapViewOfFile3's address requirements).
    pub highest_end: Option<usize>,
}

impl<O: Os> Space<O> {
    /// MapViewOfFile* (MV1–MV8, M3-*): maps a view and returns its base.
    pub fn map_view(&self, req: MapRequest) -> Result<usize> {
        // A reference of our own, taken while the handle is certainly open: a CloseHandle
        // racing this call cannot close the backing object under us.
        let (section, access) = self.handles().with(req.handle, |e| {
            e.section().map(|s| {
                self.section_ref(s);
                (s.clone(), e.access)
            })
        })??;
        let r = self.map_view_of(&section, access, req);
        self.section_unref(&section);
        r
    }

    fn map_view_of(&self, section: &Arc<Section>, access: u32, req: MapRequest) -> Result<usize> {
        if !may_map(access, req.protect) {
            return Err(Error::AccessDenied(
                "the handle's access does not allow a view of this protection",
            ));
        }
        // A handle opened or duplicated with more access than the section's protection gives
        // still maps only what the section allows (a write view of a PAGE_READONLY section,
        // an executable view of a section without PAGE_EXECUTE_*).
        if !compatible(req.protect, section.protect) {
            return Err(Error::AccessDenied(
                "the section's protection does not allow a view of this protection",
            ));
        }
        let p = self.page();
        let g = self.layout.granularity;
        let align = if req.replace_placeholder { p } else { g };
        if req.offset % align as u64 != 0 {
            return Err(Error::MappedAlignment("the offset is not a multiple of the granularity"));
        }
        if let Some(b) = req.base {
            if b % align != 0 {
                return Err(Error::MappedAlignment("the address is not a multiple of the granularity"));
            }
        }
        if req.offset >= section.size {
            return Err(Error::AccessDenied("the offset is past the section's end"));
        }
        let size = if req.size == 0 {
            section.size - req.offset
        } else {
            if req.offset.checked_add(req.size as u64).is_none_or(|e| e > section.size) {
                return Err(Error::AccessDenied("the view runs past the section's end"));
            }
            req.size as u64
        };
        let len = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_next_multiple_of(p))
            .ok_or(Error::NotEnoughMemory("the view is larger than the address space"))?;
        if section.large_page != 0 {
            let lp = section.large_page;
            if req.offset % lp as u64 != 0 || len % lp != 0 || req.base.is_some_and(|b| b % lp != 0) {
                return Err(Error::InvalidParameter(
                    "a large-page view needs offset, size and address multiples of the large-page size",
                ));
            }
        }
        let initial = self.initial_runs(section, req.offset, len, req.protect)?;
        if req.replace_placeholder {
            let base = req.base.ok_or(Error::InvalidAddress("no placeholder named"))?;
            return self.map_into_placeholder(section, base, len, req.offset, req.protect, initial);
        }
        let placement = match (req.base, req.highest_end) {
            (Some(b), _) => OsPlacement::Fixed(b),
            (None, h) => OsPlacement::Anywhere {
                align: g.max(section.large_page),
                lowest: self.layout.min_address,
                highest_end: h.map_or(self.layout.allocatable_end(), |h| {
                    h.saturating_add(1).min(self.layout.allocatable_end())
                }),
            },
        };
        if let OsPlacement::Fixed(b) = placement {
            if b.checked_add(len).is_none_or(|e| e > self.layout.allocatable_end())
                || b < self.layout.min_address
            {
                return Err(Error::InvalidAddress("the range is not free"));
            }
        }
        let all_committed = initial.runs_in(0, initial.pages()).all(|r| r.state.committed);
        let first = ViewMap {
            backing: section.backing,
            offset: section.data_offset + req.offset,
            prot: if all_committed {
                host_prot(req.protect)
            } else {
                HostProt::NONE
            },
            private: is_writecopy(req.protect),
        };
        let base = self.os.map_view(placement, len, first).map_err(|e| {
            if matches!(placement, OsPlacement::Fixed(_))
                && e.kind == crate::os::OsErrorKind::AddressInUse
            {
                Error::InvalidAddress("the range is not free")
            } else {
                Error::from_os(e)
            }
        })?;
        if !all_committed {
            for r in initial.runs_in(0, initial.pages()).filter(|r| r.state.committed) {
                let at = base + r.start * p;
                if let Err(e) = self.os.protect(at, (r.end - r.start) * p, host_prot(req.protect)) {
                    let _ = self.os.unmap(base, len);
                    return Err(Error::from_os(e));
                }
            }
        }
        let v = self.insert_view(section, base, len, req.offset, req.protect, initial, false);
        if section.is_reserve() {
            // Commits made through other views or processes reach this one by its fault
            // handler path (`engine::fault`).
            self.make_fault_driven(&v);
        }
        Ok(base)
    }

    /// The page runs a new view starts with: committed with its protection, except the
    /// not-yet-committed pages of a SEC_RESERVE section (VQ2).
    fn initial_runs(&self, s: &Section, offset: u64, len: usize, protect: u32) -> Result<RunTable> {
        let p = self.page();
        let pages = len / p;
        if !s.is_reserve() {
            return Ok(RunTable::new(pages, PageState::committed(protect)));
        }
        let mut t = RunTable::new(pages, PageState::RESERVED);
        let start = s.data_offset + offset;
        let mut at = start;
        let end = start + len as u64;
        while at < end {
            let (allocated, run_end) = self
                .os
                .backing_allocated(s.backing, at)
                .map_err(Error::from_os)?;
            let run_end = run_end.min(end).max(at + p as u64);
            if allocated {
                let a = ((at - start) / p as u64) as usize;
                let b = ((run_end - start) as usize).div_ceil(p);
                t = t.with(a, b, |_| PageState::committed(protect));
            }
            at = run_end;
        }
        Ok(t)
    }

    /// Lists a mapped view in the index.
    #[allow(clippy::too_many_arguments)]
    fn insert_view(
        &self,
        section: &Arc<Section>,
        base: usize,
        len: usize,
        offset: u64,
        protect: u32,
        initial: RunTable,
        from_placeholder: bool,
    ) -> MetaArc<Allocation> {
        self.section_ref(section);
        let a = Allocation::new(
            base,
            len,
            self.page(),
            protect | section.modifiers,
            section.modifiers,
            self.new_id(),
            None,
            PageState::RESERVED,
        )
        
.into_view(section.clone(), offset, from_placeholder);
        a.publish(initial);
        self.insert(a)
    }

    /// M3-5, PH1: a view replacing the placeholder `[base, base+len)`.
    fn map_into_placeholder(
        &self,
        section: &Arc<Section>,
        base: usize,
        len: usize,
        offset: u64,
        protect: u32,
        initial: RunTable,
    ) -> Result<usize> {
        let not_ph = Error::InvalidAddress("not a placeholder of that address and size");
        let p = self.page();
        self.with_allocation(base, not_ph, |a| {
            if a.kind != AllocKind::Placeholder || a.base != base || a.size != len {
                return Err(not_ph);
            }
            a.set_live(false);
            let m = ViewMap {
                backing: section.backing,
                offset: section.data_offset + offset,
                prot: HostProt::NONE,
                private: is_writecopy(protect),
            };
            let mut r = self.os.remap_view(base, len, m).map_err(Error::from_os);
            if r.is_ok() {
                for run in initial.runs_in(0, initial.pages()).filter(|r| r.state.committed) {
                    if let Err(e) =
                        self.os
                            .protect(base + run.start * p, (run.end - run.start) * p, host_prot(protect))
                    {
                        r = Err(Error::from_os(e));
                        break;
                    }
                }
            }
            if let Err(e) = r {
                // Back to the placeholder it was: fresh PROT_NONE memory.
                self.quarantine(base, len);
                a.set_live(true);
                return Err(e);
            }
            self.section_ref(section);
            let v = Allocation::new(
                base,
                len,
                p,
                protect | section.modifiers,
                section.modifiers,
                self.new_id(),
                None,
                PageState::RESERVED,
            )
            
.into_view(section.clone(), offset, true);
            v.publish(initial);
            let new = self.swap_in(std::slice::from_ref(a), [v]);
            if section.is_reserve() {
                self.make_fault_driven(&new[0]);
            }
            Ok(base)
        })
    }

    /// UnmapViewOfFile*: unmaps the whole view containing `addr` (U1–U7); with `preserve`,
    /// a view that replaced a placeholder becomes that placeholder again.
    pub fn unmap_view(&self, addr: usize, preserve: bool) -> Result<()> {
        let not_view = Error::InvalidAddress("not a view");
        let section = self.with_allocation(addr, not_view, |a| {
            if a.kind != AllocKind::View {
                return Err(not_view);
            }
            if preserve && !a.from_placeholder {
                return Err(Error::InvalidAddress("the view did not replace a placeholder"));
            }
            let section = a.view.as_ref().expect("a view").section.clone();
            let listed = a.fault_driven() && self.os.real_memory();
            a.set_live(false);
            if listed {
                crate::engine::fault::remove(a.base);
            }
            let restore = |e| {
                if listed {
                    crate::engine::fault::add(a);
                }
                a.set_live(true);
                Err(Error::from_os(e))
            };
            if preserve {
                if let Err(e) = self.os.replace_with_reserved(a.base, a.size) {
                    if self.os.is_mapped(a.base, a.size) {
                        return restore(e);
                    }
                    self.refill_hole(a.base, a.size);
                }
                self.swap_in(std::slice::from_ref(a), [self.placeholder(a.base, a.size)]);
            } else {
                self.remove(a.base);
                if let Err(e) = self.os.unmap_view(a.base, a.size) {
                    let mut index = self.index.write();
                    index.insert(a.clone());
                    drop(index);
                    return restore(e);
                }
            }
            Ok(section)
        })?;
        self.section_unref(&section);
        Ok(())
    }

    /// FlushViewOfFile (FV1, FV2).
    pub fn flush_view(&self, addr: usize, size: usize) -> Result<()> {
        let p = self.page();
        let start = self.layout.page_floor(addr);
        let Some(a) = self.find(start) else {
            return Err(Error::InvalidAddress("not a view"));
        };
        let end = if size == 0 {
            a.end()
        } else {
            addr.checked_add(size)
                .and_then(|e| e.checked_next_multiple_of(p))
                .ok_or(Error::InvalidParameter("the range wraps around"))?
        };
        if end > a.end() {
            return Err(Error::InvalidParameter("the range runs past the view"));
        }
        match &a.view {
            Some(v) if v.section.file_backed => {
                self.os.flush_view(start, end - start).map_err(Error::from_os)
            }
            _ => Ok(()),
        }
    }

    /// VirtualAlloc(MEM_COMMIT) on a view (VA1–VA4, SR1), with `a`'s operation lock held.
    pub(crate) fn view_commit(
        &self,
        a: &MetaArc<Allocation>,
        start: usize,
        end: usize,
        protection: Protection,
    ) -> Result<()> {
        let v = a.view.as_ref().expect("a view");
        if v.section.file_backed {
            return Err(Error::AccessDenied("pages of a file view are always committed"));
        }
        if !compatible(protection.base, a.alloc_protect) {
            return Err(Error::InvalidParameter(
                "the protection is not compatible with the view's",
            ));
        }
        let p = self.page();
        let (s, e) = self.pages_of(a, start, end);
        self.sync_view(a);
        let old = a.read(|t| t.clone());
        let new = old.with(s, e, |st| PageState {
            committed: true,
            protect: protection.page_value(),
            ..st
        });
        // The view first, the section's commit last: a failure of either leaves both as they
        // were (the view's mappings are put back; a commit that failed committed nothing the
        // section reports).
        self.apply_view_table(a, &old, new.clone(), s, e)?;
        if v.section.is_reserve() {
            let off = v.section.data_offset + v.offset + (s * p) as u64;
            if let Err(err) = self
                .os
                .backing_allocate(v.section.backing, off, ((e - s) * p) as u64)
            {
                let _ = self.apply_view_table(a, &new, old, s, e);
                return Err(Error::from_os(err));
            }
        }
        if protection.guard {
            self.make_fault_driven(a);
        }
        Ok(())
    }

    /// MEM_RESET / MEM_RESET_UNDO on a view (RS1, RS2): a pagefile-backed view accepts them
    /// (shared pages are kept: "undefined contents" may be the old ones, and an undo finds
    /// them intact); a file view refuses them with ERROR_USER_MAPPED_FILE.
    pub(crate) fn view_reset(&self, a: &Allocation) -> Result<()> {
        match &a.view {
            Some(v) if v.section.file_backed => Err(Error::UserMappedFile(
                "MEM_RESET on a view of a file",
            )),
            _ => Ok(()),
        }
    }

    /// VirtualProtect on a view (VP1–VP3), with `a`'s operation lock held.
    pub(crate) fn view_protect(
        &self,
        a: &MetaArc<Allocation>,
        start: usize,
        end: usize,
        protection: Protection,
    ) -> Result<u32> {
        if !compatible(protection.base, a.alloc_protect) {
            return Err(Error::InvalidParameter(
                "the protection is not compatible with the view's",
            ));
        }
        let (s, e) = self.pages_of(a, start, end);
        self.sync_view(a);
        self.sync(a, s, e);
        let plan = a.read(|t| plan_protect(t, s, e, protection.page_value(), false))?;
        if protection.guard {
            if !self.faults_work() {
                return Err(Error::NotSupported("PAGE_GUARD on this backend"));
            }
            self.make_fault_driven(a);
        }
        // The first page's old protection, as a copied page reports it.
        let mut copied = [false];
        if is_writecopy(plan.old_first) {
            self.os
                .copied(a.base + s * self.page(), self.page(), &mut copied)
                .map_err(Error::from_os)?;
        }
        let old_first = if copied[0] {
            after_copy(plan.old_first)
        } else {
            plan.old_first
        };
        let old = a.read(|t| t.clone());
        self.apply_view_table(a, &old, plan.new, s, e)?;
        Ok(old_first | a.modifiers)
    }

    /// Applies a view's new page table over pages `[s, e)`: `mprotect` where only the
    /// protection changes, a new mapping of the section where a page switches between shared
    /// and copy-on-write. On failure the old table's mappings are put back.
    fn apply_view_table(
        &self,
        a: &MetaArc<Allocation>,
        old: &RunTable,
        new: RunTable,
        s: usize,
        e: usize,
    ) -> Result<()> {
        let p = self.page();
        let v = a.view.as_ref().expect("a view");
        let mut copied = vec![false; e - s];
        // Whether a page is a private copy matters where it switches between shared and
        // copy-on-write: a copied page stays private (its data is the view's own), whatever
        // protection it had in between.
        if old.runs_in(s, e).any(|r| is_writecopy(r.state.protect))
            || new.runs_in(s, e).any(|r| is_writecopy(r.state.protect))
        {
            self.os
                .copied(a.base + s * p, (e - s) * p, &mut copied)
                .map_err(Error::from_os)?;
        }
        // Spans of equal (kernel protection, private, remap).
        let step = |i: usize, t: &RunTable| -> (HostProt, bool) {
            let st = t.run_at(i).state;
            (kernel_prot(st, false), is_writecopy(st.protect) || copied[i - s])
        };
        let mut done: Vec<(usize, usize)> = Vec::new();
        let mut i = s;
        let apply = |from: usize, to: usize, t: &RunTable, other: &RunTable| -> Result<()> {
            let (prot, private) = step(from, t);
            let (_, was_private) = step(from, other);
            let at = a.base + from * p;
            let len = (to - from) * p;
            if private != was_private {
                let m = ViewMap {
                    backing: v.section.backing,
                    offset: v.section.data_offset + v.offset + (from * p) as u64,
                    prot,
                    private,
                };
                self.os.remap_view(at, len, m).map_err(Error::from_os)
            } else {
                self.os.protect(at, len, prot).map_err(Error::from_os)
            }
        };
        while i < e {
            let key = (step(i, &new), step(i, old));
            let mut j = i + 1;
            while j < e && (step(j, &new), step(j, old)) == key {
                j += 1;
            }
            if key.0 != key.1 {
                if let Err(err) = apply(i, j, &new, old) {
                    for &(f, t) in done.iter().rev() {
                        let _ = apply(f, t, old, &new);
                    }
                    return Err(err);
                }
                done.push((i, j));
            }
            i = j;
        }
        a.publish(new);
        Ok(())
    }

    /// Folds commits other views (or other processes) made in a SEC_RESERVE section into
    /// `a`'s pages: newly committed pages get the view's own protection (VA3). Call with
    /// `a`'s operation lock held.
    pub(crate) fn sync_view(&self, a: &MetaArc<Allocation>) {
        let Some(v) = &a.view else { return };
        if !v.section.is_reserve() {
            return;
        }
        let old = a.read(|t| t.clone());
        if old.runs_in(0, old.pages()).all(|r| r.state.committed) {
            return;
        }
        let Ok(now) = self.initial_runs(&v.section, v.offset, a.size, a.alloc_protect & 0xFF)
        else {
            return;
        };
        let mut new = old.clone();
        let mut changed = false;
        for r in now.runs_in(0, now.pages()).filter(|r| r.state.committed) {
            for o in old.runs_in(r.start, r.end).filter(|o| !o.state.committed) {
                let ap = a.alloc_protect & 0xFF;
                new = new.with(o.start, o.end, |_| PageState::committed(ap));
                changed = true;
            }
        }
        if changed {
            let _ = self.apply_view_table(a, &old, new, 0, old.pages());
        }
    }

    /// After a commit through the view `id` (whose lock the caller no longer holds): the
    /// other views of the section in this space see it now, each under its own lock, one at a
    /// time.
    pub(crate) fn spread_commit(&self, id: u64, section: &Arc<Section>) {
        let others: Vec<MetaArc<Allocation>> = {
            let index = self.index.read();
            index
                .from(0)
                .filter(|(_, x)| {
                    x.id != id
                        && x.view.as_ref().is_some_and(|v| Arc::ptr_eq(&v.section, section))
                })
                .map(|(_, x)| x.clone())
                .collect()
        };
        for o in others {
            if let Some(_g) = o.begin() {
                self.sync_view(&o);
            }
        }
    }

    /// For VirtualQuery of a view: the state pages `[idx, ...)` report, and where the run of
    /// pages reporting the same State and Protect ends. A written copy-on-write page reports
    /// PAGE_(EXECUTE_)READWRITE (CW1), and so joins neighbours that report the same.
    pub(crate) fn view_region(&self, a: &Allocation, idx: usize) -> (PageState, usize) {
        let p = self.page();
        let pages = a.size / p;
        let mut first: Option<PageState> = None;
        let mut at = idx;
        while at < pages {
            let r = a.read(|t| t.run_at(at));
            let st = r.state;
            // What the pages [at, n) report.
            let (shown, n) = if st.committed && is_writecopy(st.protect) {
                match self.os.copied_run(a.base + at * p, (r.end - at) * p) {
                    Ok((true, len)) => (after_copy(st.protect), at + len / p),
                    Ok((false, len)) => (st.protect, at + len / p),
                    // Unknown (the page map could not be read): as recorded.
                    Err(_) => (st.protect, r.end),
                }
            } else {
                (st.protect, r.end)
            };
            let shown = PageState {
                committed: st.committed,
                protect: if st.committed { shown } else { 0 },
                ..PageState::default()
            };
            match first {
                None => first = Some(shown),
                Some(f) if f == shown => {}
                Some(_) => break,
            }
            at = n.max(at + 1);
        }
        (first.unwrap_or(PageState::RESERVED), at.max(idx + 1))
    }

}
