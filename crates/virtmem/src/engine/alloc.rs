//! VirtualAlloc: reserve, commit, MEM_RESET and MEM_RESET_UNDO.

use crate::os::linux::metaheap::meta_vec;
use super::{AllocKind, Allocation, Space, WatchKind};
use crate::error::{Error, Result};
use crate::os::{Os, Placement as OsPlacement};
use crate::rules::plan::{
    kernel_prot, plan_commit, prot_spans, reset_candidates, reset_marked, ProtSpan, ProtectPlan,
};
use crate::rules::requests::{validate_alloc, validate_alloc2, AllocFlavor};
use crate::rules::runs::PageState;
use crate::rules::ExtendedParameter;
use crate::rules::{AllocRequest, Placement, Protection};
use crate::vocab::consts::{PAGE_NOACCESS, PAGE_READWRITE};

impl<O: Os> Space<O> {
    /// VirtualAlloc with raw Win32 arguments. Returns the base of the affected pages.
    pub fn virtual_alloc(
        &self,
        addr: usize,
        size: usize,
        alloc_type: u32,
        protect: u32,
        flavor: AllocFlavor,
    ) -> Result<usize> {
        let req = validate_alloc(&self.layout, addr, size, alloc_type, protect, flavor)?;
        self.execute(req)
    }

    /// VirtualAlloc2 with raw Win32 arguments and decoded extended parameters.
    pub fn virtual_alloc2(
        &self,
        addr: usize,
        size: usize,
        alloc_type: u32,
        protect: u32,
        params: &[ExtendedParameter],
        flavor: AllocFlavor,
    ) -> Result<usize> {
        let req = validate_alloc2(
            &self.layout,
            addr,
            size,
            alloc_type,
            protect,
            params,
            flavor,
        )?;
        self.execute(req)
    }

    /// Carries out a validated VirtualAlloc / VirtualAlloc2 request.
    fn execute(&self, req: AllocRequest) -> Result<usize> {
        match req {
            AllocRequest::Reserve {
                placement,
                size,
                commit,
                protection,
                write_watch,
                large_pages,
                physical,
            } => {
                if (protection.guard || write_watch) && !self.faults_work() {
                    // Only a request Windows would carry out is "not supported"; one that
                    // fails by the rules gets the rule's code.
                    if let Placement::Fixed(base) = placement {
                        if !self.range_is_free(base, base + size) {
                            return Err(Error::InvalidAddress("the range is not free"));
                        }
                    }
                    return Err(Error::NotSupported(
                        "PAGE_GUARD / MEM_WRITE_WATCH on this backend",
                    ));
                }
                if large_pages {
                    return self.reserve_large(placement, size, protection);
                }
                if physical {
                    return self.reserve_physical(placement, size);
                }
                self.reserve(placement, size, commit, protection, write_watch)
            }
            AllocRequest::Commit {
                start,
                end,
                protection,
            } => {
                if protection.is_writecopy() && !self.is_view(start) {
                    return Err(Error::InvalidParameter(
                        "copy-on-write protections are not allowed on private memory",
                    ));
                }
                self.commit(start, end, protection).map(|()| start)
            }
            AllocRequest::Reset { start, end } => self.reset(start, end).map(|()| start),
            AllocRequest::ResetUndo { start, end } => self.reset_undo(start, end).map(|()| start),
            AllocRequest::ReservePlaceholder { placement, size } => {
                self.reserve_placeholder(placement, size)
            }
            AllocRequest::ReplacePlaceholder {
                base,
                size,
                commit,
                protection,
                write_watch,
            } => self.replace_placeholder(base, size, commit, protection, write_watch),
        }
    }

    /// The kernel placement for a rule placement, with at least `align` alignment.
    fn os_placement(&self, placement: Placement, align: usize) -> OsPlacement {
        let l = &self.layout;
        match placement {
            Placement::Fixed(base) => OsPlacement::Fixed(base),
            Placement::Anywhere => OsPlacement::Anywhere {
                align,
                lowest: l.min_address,
                highest_end: l.allocatable_end(),
            },
            Placement::TopDown => OsPlacement::TopDown {
                align,
                lowest: l.min_address,
                highest_end: l.allocatable_end(),
            },
            Placement::Within {
                lowest,
                highest_end,
                align: a,
                top_down,
            } => {
                let align = a.max(align);
                if top_down {
                    OsPlacement::TopDown {
                        align,
                        lowest,
                        highest_end,
                    }
                } else {
                    // Inside an address window Windows fills from the bottom unless asked
                    // for MEM_TOP_DOWN (issue 15).
                    OsPlacement::BottomUp {
                        align,
                        lowest,
                        highest_end,
                    }
                }
            }
        }
    }

    /// Maps fresh memory for a new allocation; a taken fixed range is 487.
    pub(crate) fn map_new(
        &self,
        placement: Placement,
        size: usize,
        host: crate::os::HostProt,
        align: usize,
    ) -> Result<usize> {
        self.os
            .map(self.os_placement(placement, align), size, host)
            .map_err(|e| self.map_error(placement, e))
    }

    fn map_error(&self, placement: Placement, e: crate::os::OsError) -> Error {
        if matches!(placement, Placement::Fixed(_))
            && e.kind == crate::os::OsErrorKind::AddressInUse
        {
            Error::InvalidAddress("the range is not free")
        } else {
            Error::from_os(e)
        }
    }

    /// MEM_RESERVE|MEM_COMMIT|MEM_LARGE_PAGES: committed at once, in huge pages; never
    /// silently in small pages.
    fn reserve_large(
        &self,
        placement: Placement,
        size: usize,
        protection: Protection,
    ) -> Result<usize> {
        let lp = self.layout.large_page_size;
        let page_prot = protection.page_value();
        let host = kernel_prot(PageState::committed(page_prot), false);
        let base = self
            .os
            .map_large(
                self.os_placement(placement, lp.max(self.layout.granularity)),
                size,
                host,
                lp,
            )
            .map_err(|e| match e.kind {
                crate::os::OsErrorKind::AddressInUse
                    if matches!(placement, Placement::Fixed(_)) =>
                {
                    Error::InvalidAddress("the range is not free")
                }
                crate::os::OsErrorKind::LockQuota => {
                    Error::PrivilegeNotHeld("large pages: no permission to use the huge page pool")
                }
                crate::os::OsErrorKind::CommitLimit => Error::CommitmentLimit,
                crate::os::OsErrorKind::OutOfAddressSpace
                | crate::os::OsErrorKind::MapCountLimit => Error::from_os(e),
                _ => Error::NoSystemResources("not enough free large pages (vm.nr_hugepages)"),
            })?;
        if let Placement::Within {
            lowest,
            highest_end,
            align,
            ..
        } = placement
        {
            // MEM_ADDRESS_REQUIREMENTS hold for large pages too, an Alignment above the
            // large-page size included: a base that misses them is never handed out (8, as
            // when no range meets the requirements, case 130).
            if base % align != 0 || base < lowest || base.saturating_add(size) > highest_end {
                self.unmap_fresh(base, size, protection);
                return Err(Error::NotEnoughMemory(
                    "no large-page range meets the address requirements",
                ));
            }
        }
        let a = Allocation::new(
            base,
            size,
            self.layout.page_size,
            protection.value(),
            protection.modifiers(),
            self.new_id(),
            None,
            PageState::committed(page_prot),
        )
        .of_kind(AllocKind::LargePages, false);
        self.insert(a);
        Ok(base)
    }

    /// MEM_RESERVE|MEM_PHYSICAL: an AWE window, PAGE_READWRITE, with no page mapped yet
    /// (unmapped window pages read as committed PAGE_NOACCESS, as Windows reports them).
    fn reserve_physical(&self, placement: Placement, size: usize) -> Result<usize> {
        let base = self.map_new(
            placement,
            size,
            crate::os::HostProt::NONE,
            self.layout.granularity,
        )?;
        let a = Allocation::new(
            base,
            size,
            self.layout.page_size,
            PAGE_READWRITE,
            0,
            self.new_id(),
            None,
            PageState::committed(PAGE_NOACCESS),
        )
        .of_kind(AllocKind::Physical, false);
        self.insert(a);
        Ok(base)
    }

    /// Creates a new allocation of `size` bytes; with `commit`, every page is committed.
    pub(crate) fn reserve(
        &self,
        placement: Placement,
        size: usize,
        commit: bool,
        protection: Protection,
        write_watch: bool,
    ) -> Result<usize> {
        let l = &self.layout;
        let page_prot = protection.page_value();
        let watch = write_watch.then(|| self.write_watch_mode());
        let initial = if commit {
            PageState::committed(page_prot)
        } else {
            PageState::RESERVED
        };
        let host = kernel_prot(initial, watch == Some(WatchKind::Signal));
        let base = self.map_new(placement, size, host, l.granularity)?;
        if watch == Some(WatchKind::Kernel) {
            if let Err(e) = self.start_kernel_watch(base, size, commit) {
                self.unmap_fresh(base, size, protection);
                return Err(e);
            }
        }
        let a = self.insert(Allocation::new(
            base,
            size,
            l.page_size,
            protection.value(),
            protection.modifiers(),
            self.new_id(),
            watch,
            initial,
        ));
        if a.fault_driven() && self.os.real_memory() {
            crate::engine::fault::add(&a);
        }
        Ok(base)
    }

    /// Rollback of a reservation that is not handed out: gives back `[base, base+size)`, a
    /// mapping this call just made and nobody else knows. `munmap` is tried again a bounded
    /// number of times (`crate::os::retry`). If the kernel keeps refusing, the range is never
    /// left mapped and unlisted (address space nobody could give back, possibly committed or
    /// registered for write tracking): it is made reserved and inaccessible — fresh
    /// `PROT_NONE` memory, no hole ([`Space::quarantine`]) — and listed as an ordinary
    /// reserved allocation, so VirtualQuery reports it, nothing is mapped over it, and
    /// MEM_RELEASE of its base gives it back. The caller returns its own error either way.
    pub(crate) fn unmap_fresh(&self, base: usize, size: usize, protection: Protection) {
        let unmapped = crate::os::retry::bounded((), || self.os.unmap(base, size).ok().map(Ok));
        if unmapped.is_ok() {
            return;
        }
        self.quarantine(base, size);
        self.insert(Allocation::new(
            base,
            size,
            self.layout.page_size,
            protection.value(),
            protection.modifiers(),
            self.new_id(),
            None,
            PageState::RESERVED,
        ));
    }

    /// Starts kernel write tracking of a new allocation. Write-protecting a range builds its
    /// page tables, so only committed pages are cleaned now (reserved ones cannot be written,
    /// and are cleaned when committed): a huge watched reservation costs nothing up front.
    pub(crate) fn start_kernel_watch(
        &self,
        base: usize,
        size: usize,
        committed: bool,
    ) -> Result<()> {
        if committed {
            self.os.watch_register(base, size)
        } else {
            self.os.watch_adopt(base, size)
        }
        .map_err(Error::from_os)
    }

    /// Whether nothing at all (ours or foreign) is mapped in `[start, end)`.
    pub fn range_is_free(&self, start: usize, end: usize) -> bool {
        if !self.overlapping(start, end).is_empty() {
            return false;
        }
        let mut at = start;
        while at < end {
            match self.os.kernel_region(at) {
                crate::os::KernelRegion::Free { end: e, .. } if e > at => at = e,
                _ => return false,
            }
        }
        true
    }

    /// The allocation holding all of `[start, end)`, locked, or 487.
    fn in_one_allocation<R>(
        &self,
        start: usize,
        end: usize,
        f: impl FnOnce(&crate::os::linux::metaheap::MetaArc<Allocation>) -> Result<R>,
    ) -> Result<R> {
        self.with_allocation(
            start,
            Error::InvalidAddress("the address is not in an allocation"),
            |a| {
                if end > a.end() {
                    return Err(Error::InvalidAddress("the range leaves its allocation"));
                }
                f(a)
            },
        )
    }

    /// MEM_COMMIT of `[start, end)` inside one reservation.
    pub(crate) fn commit(&self, start: usize, end: usize, protection: Protection) -> Result<()> {
        // A commit through a view of a SEC_RESERVE section reaches the section's other views
        // after this view's lock is released (operations take one allocation's lock at a
        // time, or several in address order: never another view's while holding this one).
        let spread = self.in_one_allocation(start, end, |a| {
            match a.kind {
                AllocKind::Placeholder => {
                    return Err(Error::InvalidAddress("a placeholder cannot be committed"))
                }
                AllocKind::Physical => {
                    return Err(Error::InvalidAddress("an AWE window cannot be committed"))
                }
                AllocKind::LargePages => {
                    // Always committed; only the protection it has is acceptable.
                    let same = a.read(|t| {
                        t.runs_in(0, t.pages())
                            .all(|r| r.state.protect == protection.page_value())
                    });
                    return if same {
                        Ok(None)
                    } else {
                        Err(Error::InvalidAddress("large pages keep their protection"))
                    };
                }
                AllocKind::View => {
                    self.view_commit(a, start, end, protection)?;
                    let v = a.view.as_ref().expect("a view");
                    return Ok(v.section.is_reserve().then(|| (a.id, v.section.clone())));
                }
                AllocKind::Normal => {}
            }
            if protection.is_writecopy() {
                return Err(Error::InvalidParameter(
                    "copy-on-write protections are not allowed on private memory",
                ));
            }
            if protection.guard && !self.faults_work() {
                return Err(Error::NotSupported("PAGE_GUARD on this backend"));
            }
            let (s, e) = self.pages_of(a, start, end);
            self.sync(a, s, e);
            if protection.guard {
                self.make_fault_driven(a);
            }
            let plan = a.read(|t| plan_commit(t, s, e, protection.page_value(), a.armed()));
            // Kernel write tracking: pages committed now start clean.
            let mut newly = meta_vec::<(usize, usize)>();
            if a.watch == Some(WatchKind::Kernel) {
                a.read(|t| {
                    newly.extend(
                        t.runs_in(s, e)
                            .filter(|r| !r.state.committed)
                            .map(|r| (r.start, r.end)),
                    )
                });
            }
            self.apply_protect_plan(a, plan)?;
            let p = self.page();
            for &(ns, ne) in &newly {
                // Best effort, by design (listed in the fault sweep's ALLOWED): the commit has
                // happened and its pages are fresh zeros; a failed clean only makes
                // GetWriteWatch report them as written until the next reset (over-reporting,
                // never a missed write).
                let _ = self.os.watch_clean(a.base + ns * p, (ne - ns) * p);
            }
            Ok(None)
        })?;
        if let Some((id, section)) = spread {
            self.spread_commit(id, &section);
        }
        Ok(())
    }

    /// Page indices of `[start, end)` within `a`.
    pub(crate) fn pages_of(&self, a: &Allocation, start: usize, end: usize) -> (usize, usize) {
        // The page size is a power of two: shifts, not divisions (this is on every path).
        let shift = self.page().trailing_zeros();
        ((start - a.base) >> shift, (end - a.base) >> shift)
    }

    /// Lists `a` for the fault handler: its page state may now change by faults.
    pub(crate) fn make_fault_driven(&self, a: &crate::os::linux::metaheap::MetaArc<Allocation>) {
        if !a.fault_driven() {
            a.set_fault_driven();
            if self.os.real_memory() {
                crate::engine::fault::add(a);
            }
        }
    }

    /// Applies a protection plan (commit or VirtualProtect) with rollback, then records it.
    pub(crate) fn apply_protect_plan(&self, a: &Allocation, plan: ProtectPlan) -> Result<()> {
        if let Some((lo, hi)) = plan.hull {
            let shift = self.page().trailing_zeros();
            let r = match plan.uniform {
                Some(prot) => self.os.protect(a.base + (lo << shift), (hi - lo) << shift, prot),
                None => prot_spans(&plan.new, lo, hi, plan.armed).try_for_each(|span| {
                    let addr = a.base + (span.start << shift);
                    self.os.protect(addr, (span.end - span.start) << shift, span.prot)
                }),
            };
            if let Err(e) = r {
                return Err(self.undo_protect(a, lo, hi, plan.armed, e));
            }
        }
        a.publish(plan.new);
        Ok(())
    }

    /// A protection change of pages `[lo, hi)` failed with `e`: the old table is still the
    /// published one, so its protections are put back.
    #[cold]
    #[inline(never)]
    pub(crate) fn undo_protect(
        &self,
        a: &Allocation,
        lo: usize,
        hi: usize,
        armed: bool,
        e: crate::os::OsError,
    ) -> Error {
        use crate::os::linux::metaheap::{CollectMeta, MetaVec};
        let undo: MetaVec<ProtSpan> = a.read(|t| prot_spans(t, lo, hi, armed).collect_meta());
        self.restore_protections(a, &undo);
        Error::from_os(e)
    }

    /// Puts back the kernel protections of `undo`. A run whose protection cannot be restored
    /// is replaced by fresh reserved memory and recorded as reserved: never unknown state.
    fn restore_protections(&self, a: &Allocation, undo: &[ProtSpan]) {
        let p = self.page();
        let mut quarantined = Vec::new();
        for s in undo {
            let (addr, len) = (a.base + s.start * p, (s.end - s.start) * p);
            if self.os.protect(addr, len, s.prot).is_err() {
                self.quarantine(addr, len);
                quarantined.push((s.start, s.end));
            }
        }
        if !quarantined.is_empty() {
            let table = a.read(|t| {
                quarantined.iter().fold(t.clone(), |t, &(s, e)| {
                    t.with(s, e, |_| PageState::RESERVED)
                })
            });
            a.publish(table);
        }
    }

    /// Last resort after a failed rollback: make `[addr, addr+len)` — memory of ours, every
    /// page mapped (the caller holds the allocation's operation lock) — reserved and
    /// inaccessible: fresh memory if possible, else at least PROT_NONE, and no hole left.
    ///
    /// Never changes a mapping that is not ours: once a replacement has failed and left the
    /// range unmapped, whatever is mapped there may be another thread's, so only the holes
    /// are filled ([`Space::refill_hole`]).
    pub(crate) fn quarantine(&self, addr: usize, len: usize) {
        if self.os.replace_with_reserved(addr, len).is_ok() {
            return;
        }
        if self.os.is_mapped(addr, len) {
            // The kernel kept the old mapping: it is still ours.
            let _ = self.os.protect(addr, len, crate::os::HostProt::NONE);
            return;
        }
        self.refill_hole(addr, len);
    }

    /// After `replace_with_reserved` of `[addr, addr+len)` failed and left it not fully
    /// mapped: a failed `MAP_FIXED` unmaps the whole range before it fails (the kernel
    /// unmaps first, then maps; see [`crate::os::Os::replace_with_reserved`]), so nothing
    /// of ours is left there and anything mapped there now was mapped by another thread
    /// since. Only the holes are filled with fresh `PROT_NONE` memory
    /// (`MAP_FIXED_NOREPLACE`, [`crate::os::Os::fill_holes`]) so no later mapping lands
    /// inside our allocation; nothing mapped is replaced or re-protected.
    pub(crate) fn refill_hole(&self, addr: usize, len: usize) {
        let _ = self.os.fill_holes(addr, len);
    }

    /// MEM_RESET: the committed pages' contents are no longer needed.
    pub(crate) fn reset(&self, start: usize, end: usize) -> Result<()> {
        self.in_one_allocation(start, end, |a| {
            let p = self.page();
            let (s, e) = self.pages_of(a, start, end);
            if matches!(a.kind, AllocKind::LargePages | AllocKind::Physical) {
                // Huge and AWE pages are never paged: there is nothing to discard.
                return Ok(());
            }
            if a.kind == AllocKind::View {
                return self.view_reset(a);
            }
            let candidates = a.read(|t| reset_candidates(t, s, e));
            // Scratch lists on the metadata heap (MEM_RESET is a `malloc`'s call).
            let mut resident = meta_vec();
            let mut freed = meta_vec::<(usize, usize)>();
            let mut result = Ok(());
            'outer: for (cs, ce) in candidates {
                // Only resident pages are lazily freed: a page that is not resident is either
                // untouched (zero either way) or swapped out, and freeing a swapped page would
                // lose it at once; leaving it alone keeps MEM_RESET_UNDO exact.
                resident.clear();
                resident.resize(ce - cs, false);
                if let Err(e) = self
                    .os
                    .resident(a.base + cs * p, (ce - cs) * p, &mut resident)
                {
                    result = Err(Error::from_os(e));
                    break;
                }
                let mut i = 0;
                while i < resident.len() {
                    if !resident[i] {
                        i += 1;
                        continue;
                    }
                    let j = (i..resident.len())
                        .find(|&j| !resident[j])
                        .unwrap_or(resident.len());
                    let (fs, fe) = (cs + i, cs + j);
                    if let Err(e) = self.os.lazy_free(a.base + fs * p, (fe - fs) * p) {
                        // The kernel may have freed part of the span before failing: record
                        // it all as reset so MEM_RESET_UNDO checks every page of it.
                        freed.push((fs, fe));
                        result = Err(Error::from_os(e));
                        break 'outer;
                    }
                    freed.push((fs, fe));
                    i = j;
                }
            }
            // Record what was done even on failure: those pages really are lazily freed.
            if !freed.is_empty() {
                let table = a.read(|t| {
                    freed.iter().fold(t.clone(), |t, &(s, e)| {
                        t.with(s, e, |st| PageState { reset: true, ..st })
                    })
                });
                a.publish(table);
            }
            result
        })
    }

    /// MEM_RESET_UNDO: succeeds only if every byte of the range's reset pages is intact.
    pub(crate) fn reset_undo(&self, start: usize, end: usize) -> Result<()> {
        self.in_one_allocation(start, end, |a| {
            if a.kind == AllocKind::View {
                return self.view_reset(a);
            }
            let p = self.page();
            let (s, e) = self.pages_of(a, start, end);
            self.sync(a, s, e);
            let marked = a.read(|t| reset_marked(t, s, e, a.armed()));
            // Cancelling a lazy free writes to the page; with kernel write tracking that
            // would count as the program's write. Remember which pages were clean and clean
            // them again afterwards.
            let mut clean_before = meta_vec();
            if a.watch == Some(WatchKind::Kernel) && !marked.is_empty() {
                let mut written = Vec::new();
                let (lo, hi) = (a.base + s * p, a.base + e * p);
                self.os
                    .watch_scan(lo, hi - lo, false, usize::MAX, &mut written)
                    .map_err(Error::from_os)?;
                let mut at = lo;
                for w in written.into_iter().chain(std::iter::once(hi)) {
                    if w > at {
                        clean_before.push((at, w));
                    }
                    at = w + p;
                }
            }
            let mut lost = 0;
            let mut done = meta_vec::<(usize, usize)>();
            let mut result = Ok(());
            for (ms, me, writable) in marked {
                match self
                    .os
                    .undo_lazy_free(a.base + ms * p, (me - ms) * p, writable)
                {
                    Ok(r) => {
                        lost += r.lost;
                        done.push((ms, me));
                    }
                    Err(e) => {
                        result = Err(Error::from_os(e));
                        break;
                    }
                }
            }
            if !done.is_empty() {
                let table = a.read(|t| {
                    done.iter().fold(t.clone(), |t, &(s, e)| {
                        t.with(s, e, |st| PageState { reset: false, ..st })
                    })
                });
                a.publish(table);
            }
            for (cs, ce) in clean_before {
                let _ = self.os.watch_clean(cs, ce - cs);
            }
            result?;
            if lost > 0 {
                return Err(Error::ResetDataLost);
            }
            Ok(())
        })
    }
}
