//! VirtualAlloc2 placeholders (`windows-cases.md` §M): reserve, replace, split
//! (MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER), coalesce (MEM_RELEASE|MEM_COALESCE_PLACEHOLDERS).
//!
//! A placeholder is reserved address space held by fresh `PROT_NONE` memory. Splitting and
//! coalescing change only the bookkeeping (one kernel mapping may back several placeholders);
//! replacing turns a placeholder into an ordinary allocation at the same place, and
//! preserving turns such an allocation back into a placeholder with fresh memory (its
//! contents are gone, case 137).

use super::{AllocKind, Allocation, Space, WatchKind};
use crate::error::{Error, Result};
use crate::os::Os;
use crate::rules::plan::kernel_prot;
use crate::rules::runs::PageState;
use crate::rules::{Placement, Protection};
use crate::vocab::consts::PAGE_NOACCESS;
use crate::os::linux::metaheap::{meta_vec, MetaArc as Arc, MetaVec};

impl<O: Os> Space<O> {
    /// MEM_RESERVE|MEM_RESERVE_PLACEHOLDER.
    pub(crate) fn reserve_placeholder(&self, placement: Placement, size: usize) -> Result<usize> {
        let base = self.map_new(
            placement,
            size,
            crate::os::HostProt::NONE,
            self.layout.granularity,
        )?;
        self.insert(self.placeholder(base, size));
        Ok(base)
    }

    pub(crate) fn placeholder(&self, base: usize, size: usize) -> Allocation {
        Allocation::new(
            base,
            size,
            self.layout.page_size,
            PAGE_NOACCESS,
            0,
            self.new_id(),
            None,
            PageState::RESERVED,
        )
        .of_kind(AllocKind::Placeholder, false)
    }

    /// Swaps `old` (locked by the caller) for `new` in the index, atomically for lookups.
    pub(crate) fn swap_in(
        &self,
        old: &[Arc<Allocation>],
        new: impl IntoIterator<Item = Allocation>,
    ) -> MetaVec<Arc<Allocation>> {
        let mut out = meta_vec();
        for a in new {
            let charge = self.charges_commit(&a);
            out.push(Arc::new(a.charged(charge)));
        }
        let mut bases = meta_vec::<usize>();
        let mut index = self.index.write();
        for a in old {
            a.set_live(false);
            bases.push(a.base);
        }
        index.replace(&bases, &out);
        out
    }

    /// MEM_REPLACE_PLACEHOLDER: the placeholder based at `base`, exactly `size` bytes long,
    /// becomes an ordinary allocation (zero-filled).
    ///
    /// Kernel calls: `mprotect` to the new protection (when it is not PROT_NONE), then, with
    /// kernel write watch, the write-tracking registration. If either fails, the range is put
    /// back as the placeholder it was — fresh `PROT_NONE` memory, no registration (see
    /// [`Space::quarantine`]) — before the error is returned: a half-applied `mprotect` or a
    /// registration never outlives a failed call.
    pub(crate) fn replace_placeholder(
        &self,
        base: usize,
        size: usize,
        commit: bool,
        protection: Protection,
        write_watch: bool,
    ) -> Result<usize> {
        let not_ph = Error::InvalidAddress("not a placeholder of that address and size");
        self.with_allocation(base, not_ph, |a| {
            if a.kind != AllocKind::Placeholder || a.base != base || a.size != size {
                return Err(not_ph);
            }
            let watch = write_watch.then(|| self.write_watch_mode());
            let initial = if commit {
                PageState::committed(protection.page_value())
            } else {
                PageState::RESERVED
            };
            let host = kernel_prot(initial, watch == Some(WatchKind::Signal));
            // The placeholder stops owning its pages before the kernel range changes (under
            // its handler lock, which `with_allocation` holds): a fault handled meanwhile
            // touches nothing. A failure puts the placeholder back, owner again.
            a.set_live(false);
            if host.any() {
                if let Err(e) = self.os.protect(base, size, host) {
                    // mprotect works VMA by VMA: part of the range may have changed.
                    self.quarantine(base, size);
                    a.set_live(true);
                    return Err(Error::from_os(e));
                }
            }
            if watch == Some(WatchKind::Kernel) {
                if let Err(e) = self.start_kernel_watch(base, size, commit) {
                    self.quarantine(base, size);
                    a.set_live(true);
                    return Err(e);
                }
            }
            let new = Allocation::new(
                base,
                size,
                self.layout.page_size,
                protection.value(),
                protection.modifiers(),
                self.new_id(),
                watch,
                initial,
            )
            .of_kind(AllocKind::Normal, true);
            let new = self.swap_in(std::slice::from_ref(a), [new]);
            if new[0].fault_driven() && self.os.real_memory() {
                crate::engine::fault::add(&new[0]);
            }
            Ok(base)
        })
    }

    /// MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER over pages `[start, end)`: splits a placeholder
    /// (the range becomes a placeholder of its own; bookkeeping only, no kernel call), or
    /// turns an allocation that replaced a placeholder back into one (one kernel call: fresh
    /// memory over it).
    pub(crate) fn preserve_placeholder(&self, start: usize, end: usize) -> Result<()> {
        let not_ph = Error::InvalidAddress("the range is not a placeholder");
        self.with_allocation(start, not_ph, |a| {
            if end > a.end() {
                return Err(not_ph);
            }
            match a.kind {
                AllocKind::Placeholder => {
                    if start == a.base && end == a.end() {
                        return Err(Error::InvalidAddress(
                            "the whole placeholder: nothing to split",
                        ));
                    }
                    let mut parts = meta_vec();
                    for (s, e) in [(a.base, start), (start, end), (end, a.end())] {
                        if e > s {
                            parts.push(self.placeholder(s, e - s));
                        }
                    }
                    self.swap_in(std::slice::from_ref(a), parts);
                    Ok(())
                }
                AllocKind::Normal if a.from_placeholder && start == a.base && end == a.end() => {
                    // Fresh memory: the contents go, and with them locks and write tracking. The
                    // allocation stops owning its pages (and leaves the fault table) before
                    // the kernel range is replaced, under its handler lock.
                    let listed = a.fault_driven() && self.os.real_memory();
                    a.set_live(false);
                    if listed {
                        crate::engine::fault::remove(a.base);
                    }
                    let mut result = Ok(());
                    if let Err(e) = self.os.replace_with_reserved(a.base, a.size) {
                        if self.os.is_mapped(a.base, a.size) {
                            // The kernel kept the old mapping: nothing changed.
                            if listed {
                                crate::engine::fault::add(a);
                            }
                            a.set_live(true);
                            return Err(Error::from_os(e));
                        }
                        // MAP_FIXED left a hole: part of the contents is gone already, so the
                        // call cannot undo itself. Finish it (the range becomes the placeholder
                        // asked for, holes filled, nothing foreign touched) and report the
                        // failure, as a decommit leaving a hole does.
                        self.refill_hole(a.base, a.size);
                        result = Err(Error::from_os(e));
                    }
                    self.swap_in(
                        std::slice::from_ref(a),
                        [self.placeholder(a.base, a.size)],
                    );
                    result
                }
                _ => Err(not_ph),
            }
        })
    }

    /// MEM_RELEASE|MEM_COALESCE_PLACEHOLDERS over pages `[start, end)`: two or more adjacent
    /// placeholders spanning exactly the range become one. Bookkeeping only. A part released
    /// or replaced while we waited for its lock makes us look again (bounded, `crate::os::retry`;
    /// if the parts keep changing, 487 like any range that is not a run of placeholders).
    pub(crate) fn coalesce_placeholders(&self, start: usize, end: usize) -> Result<()> {
        let bad = Error::InvalidAddress("the range is not exactly a run of placeholders");
        crate::os::retry::bounded(bad, || {
            let parts = self.overlapping(start, end);
            let mut _guards = meta_vec();
            for a in parts.iter() {
                _guards.push(a.begin()?);
            }
            let contiguous = parts.windows(2).all(|w| w[0].end() == w[1].base);
            if parts.len() < 2
                || !contiguous
                || parts[0].base != start
                || parts[parts.len() - 1].end() != end
                || parts.iter().any(|a| a.kind != AllocKind::Placeholder)
            {
                return Some(Err(bad));
            }
            self.swap_in(&parts, [self.placeholder(start, end - start)]);
            Some(Ok(()))
        })
    }
}
