//! VirtualProtect, on virtmem's allocations and on memory virtmem did not allocate.

use super::{AllocKind, Space};
use crate::error::{Error, Result};
use crate::os::{HostProt, KernelRegion, Os};
use crate::rules::plan::{kernel_prot, plan_protect};
use crate::rules::protection::{host_prot, win32_from_host};
use crate::rules::requests::validate_range;
use crate::rules::runs::PageState;
use crate::rules::Protection;

impl<O: Os> Space<O> {
    /// VirtualProtect: gives every page touched by `[addr, addr+size)` the protection
    /// `new_protect` and returns the first page's previous protection.
    pub fn virtual_protect(&self, addr: usize, size: usize, new_protect: u32) -> Result<u32> {
        self.virtual_protect_with(addr, size, new_protect, true)
    }

    /// [`Space::virtual_protect`] for a caller whose own fast path ([`Space::protect_quick`])
    /// has declined already: the same checks and answers, without trying it again.
    pub(crate) fn virtual_protect_general(&self, addr: usize, size: usize, new_protect: u32) -> Result<u32> {
        self.virtual_protect_with(addr, size, new_protect, false)
    }

    fn virtual_protect_with(
        &self,
        addr: usize,
        size: usize,
        new_protect: u32,
        try_fast: bool,
    ) -> Result<u32> {
        let protection = Protection::parse_for_views(new_protect, false)?;
        let (start, end) = validate_range(&self.layout, addr, size)?;
        if protection.is_writecopy() && !self.is_view(start) {
            return Err(Error::InvalidParameter(
                "copy-on-write protections are not allowed on private memory",
            ));
        }
        if try_fast && !protection.guard && !protection.is_writecopy() {
            if let Some(r) = self.protect_fast(start, end, protection.page_value()) {
                return r;
            }
        }
        // An allocation released while we waited for its lock: look again (bounded,
        // `crate::os::retry`; if it keeps changing, 487 as for a range leaving its allocation).
        crate::os::retry::bounded(
            Error::InvalidAddress("the allocation kept being released"),
            || match self.begin_at(start) {
                super::BeginAt::Held(held) => Some(self.protect_held(&held, start, end, protection)),
                super::BeginAt::Nothing => Some(self.protect_foreign(start, end, protection)),
                super::BeginAt::Lost => None,
            },
        )
    }

    /// VirtualProtect's common case for the Win32 face, before any other check: `new` is a
    /// plain protection value (no modifier, no PAGE_GUARD, not copy-on-write), the range is
    /// valid and lies in one run of an ordinary allocation (see [`Space::protect_fast`]).
    /// `None`: anything else, to be decided by the general path, which gives every error.
    #[inline(always)]
    pub(crate) fn protect_quick(&self, addr: usize, size: usize, new: u32) -> Option<Result<u32>> {
        use crate::vocab::consts::{
            PAGE_EXECUTE, PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE, PAGE_NOACCESS, PAGE_READONLY,
            PAGE_READWRITE,
        };
        const PLAIN: u32 = PAGE_NOACCESS
            | PAGE_READONLY
            | PAGE_READWRITE
            | PAGE_EXECUTE
            | PAGE_EXECUTE_READ
            | PAGE_EXECUTE_READWRITE;
        if new & PLAIN != new || !new.is_power_of_two() {
            return None;
        }
        let (start, end) = validate_range(&self.layout, addr, size).ok()?;
        self.protect_fast(start, end, new)
    }

    /// VirtualProtect of pages `[start, end)` to the plain value `page`, when they lie in one
    /// run of an ordinary allocation without write watch or guard pages (so with one kernel
    /// protection) whose table is small, and are committed: one `mprotect` and a new table
    /// built directly, under the handler lock alone ([`super::Allocation::begin_quick`]). The
    /// code a protection toggle runs between its system calls is what it costs beside
    /// `mprotect`, so this path is kept short. `None`: not that case (or the allocation is
    /// busy or went away); the general path decides.
    #[inline(always)]
    fn protect_fast(&self, start: usize, end: usize, page: u32) -> Option<Result<u32>> {
        // The allocation this thread changed last, if `start` is in it (no lookup, no pin);
        // else the index's, remembered for next time.
        // SAFETY: this call remembers no other allocation after this point.
        let a = match unsafe { super::recent::find(self.uid, start) } {
            Some(a) if a.is_live() => a,
            _ => self.remember_at(start)?,
        };
        // Only ordinary allocations without write watch are remembered (`remember_at`).
        debug_assert!(a.kind == AllocKind::Normal && a.watch.is_none());
        if end > a.end() || !super::owner::admits(a.id) {
            return None;
        }
        // Live while its guard is held: in the index, covering `[a.base, a.end())`.
        let guard = a.begin_quick()?;
        // Guard pages may have been set since the check above: read under the guard.
        if a.fault_driven() {
            return None;
        }
        let (s, e) = self.pages_of(a, start, end);
        let set = |st: PageState| st.committed.then_some(PageState { protect: page, ..st });
        let (was, table) = a.read_held(&guard, |t| t.with_in_run(s, e, set))?;
        let old = was.protect | a.modifiers;
        let Some(table) = table else {
            // The pages have this protection already: nothing to publish.
            return Some(Ok(old));
        };
        let now = PageState { protect: page, ..was };
        if kernel_prot(was, false) != kernel_prot(now, false) {
            if let Err(err) = self.os.protect(start, end - start, host_prot(page)) {
                // The rollback takes only leaf locks: allowed under the quick guard.
                return Some(Err(self.undo_protect(a, s, e, false, err)));
            }
        }
        // A protection change leaves the committed pages as they are: no commit accounting.
        a.publish_protections(table);
        Some(Ok(old))
    }

    /// The ordinary allocation containing `addr`, looked up in the index and made this
    /// thread's remembered one (`recent.rs`); the reference is valid until the thread
    /// remembers another.
    #[inline(never)]
    fn remember_at(&self, addr: usize) -> Option<&super::Allocation> {
        let pin = super::snapshot::pin();
        let super::directory::Lookup::In(a) = self.index.lookup(&pin, addr) else {
            return None;
        };
        if a.kind != AllocKind::Normal || a.watch.is_some() {
            return None;
        }
        super::recent::remember(self.uid, self.index.counted(&pin, a));
        drop(pin);
        // SAFETY: the entry just made holds a reference; the caller uses the result only
        // until the thread remembers another allocation.
        unsafe { super::recent::find(self.uid, addr) }
    }

    /// VirtualProtect of `[start, end)` starting in `a`, whose operation lock is held.
    fn protect_held(
        &self,
        held: &super::Held<'_>,
        start: usize,
        end: usize,
        protection: Protection,
    ) -> Result<u32> {
        let (a, guard) = (held.a(), held.guard());
        if end > a.end() {
            return Err(Error::InvalidAddress("the range leaves its allocation"));
        }
        match a.kind {
            AllocKind::LargePages => {
                // Large pages keep one protection: asking for it again succeeds, anything else
                // is STATUS_CONFLICTING_ADDRESSES (as Windows' own code answers).
                let cur = a.read(|t| t.run_at(0).state.protect);
                return if protection.page_value() == cur {
                    Ok(cur | a.modifiers)
                } else {
                    Err(Error::InvalidAddress("large pages keep their protection"))
                };
            }
            AllocKind::View => return self.view_protect(&held.counted(), start, end, protection),
            AllocKind::Physical => {
                if protection.guard || protection.modifiers() != 0 {
                    return Err(Error::InvalidAddress("AWE windows take no modifiers"));
                }
                return self.protect_window(a, start, protection.base);
            }
            _ => {}
        }
        let (s, e) = self.pages_of(a, start, end);
        self.sync(a, s, e);
        // Write watch: the pages written now are latched (reported through decommit and
        // recommit until a reset, case 105). Nothing to do elsewhere.
        let latch = if a.watch.is_some() {
            self.latch_written(a, s, e)?
        } else {
            Vec::new()
        };
        // PAGE_NOCACHE / PAGE_WRITECOMBINE belong to the allocation: the request's modifiers
        // are ignored, the allocation's stay.
        let plan = a.read_held(guard, |t| {
            let page = protection.page_value();
            if latch.is_empty() {
                plan_protect(t, s, e, page, a.armed())
            } else {
                let marked = t.with_segments(&latch, |st, ()| PageState { latched: true, ..st });
                plan_protect(&marked, s, e, page, a.armed())
            }
        })?;
        if protection.guard {
            if !self.faults_work() {
                return Err(Error::NotSupported("PAGE_GUARD on this backend"));
            }
            self.make_fault_driven(&held.counted());
        }
        let old = plan.old_first | a.modifiers;
        if plan.hull.is_none() && a.read_held(guard, |t| *t == plan.new) {
            // Nothing changes (the pages have this protection already): publish nothing.
            return Ok(old);
        }
        self.apply_protect_plan(a, plan)?;
        Ok(old)
    }

    /// VirtualProtect on memory virtmem did not allocate (executable, libraries, heap,
    /// stacks): every page must be mapped and none may belong to an allocation of ours.
    fn protect_foreign(&self, start: usize, end: usize, protection: Protection) -> Result<u32> {
        if !self.overlapping(start, end).is_empty() {
            return Err(Error::InvalidAddress("the range leaves its allocation"));
        }
        let mut spans: crate::os::linux::metaheap::MetaVec<(usize, usize, HostProt)> =
            crate::os::linux::metaheap::meta_vec();
        let mut at = start;
        while at < end {
            match self.os.kernel_region(at) {
                KernelRegion::Mapped(m) => {
                    let e = m.end.min(end);
                    spans.push((at, e, m.prot));
                    at = e;
                }
                KernelRegion::Free { .. } => {
                    return Err(Error::InvalidAddress("the range includes free memory"));
                }
            }
        }
        if protection.guard {
            return Err(Error::NotSupported(
                "PAGE_GUARD on memory virtmem did not allocate",
            ));
        }
        let old = win32_from_host(spans[0].2);
        let target = host_prot(protection.page_value());
        if let Err(e) = self.os.protect(start, end - start, target) {
            // mprotect works VMA by VMA and may have changed part of the range: put back each
            // mapping's protection. This is someone else's memory, so there is no quarantine
            // (replacing it would destroy its contents): each restore is retried a bounded
            // number of times (`crate::os::retry`), and if the kernel still refuses, the call
            // fails with the Win32 code the rules give for the first failure (87 for a
            // protection the kernel refuses for this mapping, else as `Error::from_os`),
            // its message saying that part of the range may keep the new protection.
            let mut restored = true;
            for &(s, e, prot) in &spans {
                restored &= crate::os::retry::until_ok(|| self.os.protect(s, e - s, prot)).is_ok();
            }
            return Err(match (e.kind, restored) {
                (crate::os::OsErrorKind::Other, true) => {
                    Error::InvalidParameter("the kernel refused this protection for this mapping")
                }
                (crate::os::OsErrorKind::Other, false) => Error::InvalidParameter(
                    "the kernel refused this protection for this mapping, and the old \
                     protection of part of the range could not be restored",
                ),
                (_, true) => Error::from_os(e),
                (_, false) => match Error::from_os(e) {
                    Error::NotEnoughMemory(_) => Error::NotEnoughMemory(
                        "the kernel refused the change, and the old protection of part of \
                         the range could not be restored",
                    ),
                    Error::InvalidAddress(_) => Error::InvalidAddress(
                        "the kernel refused the change, and the old protection of part of \
                         the range could not be restored",
                    ),
                    // 1455 / 1453 carry no message: the code stays the rules' one.
                    other => other,
                },
            });
        }
        Ok(old)
    }
}
