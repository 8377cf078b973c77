//! VirtualFree: decommit and release.

use super::Space;
use crate::error::{Error, Result};
use crate::os::Os;
use crate::rules::plan::plan_decommit;
use crate::rules::requests::validate_free;
use crate::rules::runs::PageState;
use crate::rules::FreeRequest;

impl<O: Os> Space<O> {
    /// VirtualFree with raw Win32 arguments.
    pub fn virtual_free(&self, addr: usize, size: usize, free_type: u32) -> Result<()> {
        let req = validate_free(&self.layout, addr, size, free_type)?;
        if self.is_view(addr) {
            // VF1, VF2: views are neither decommitted nor released (UnmapViewOfFile frees them).
            return Err(Error::InvalidParameter(
                "a view cannot be decommitted or released: use UnmapViewOfFile",
            ));
        }
        match req {
            FreeRequest::Release { base } => self.release(base),
            FreeRequest::DecommitAll { base } => {
                let a = self
                    .find(base)
                    .filter(|a| a.base == base)
                    .ok_or(Error::InvalidAddress("not the base of an allocation"))?;
                self.decommit(base, a.end())
            }
            FreeRequest::Decommit { start, end } => self.decommit(start, end),
            FreeRequest::Placeholder {
                start,
                end,
                coalesce: false,
            } => self.preserve_placeholder(start, end),
            FreeRequest::Placeholder {
                start,
                end,
                coalesce: true,
            } => self.coalesce_placeholders(start, end),
        }
    }

    /// MEM_RELEASE of the allocation based at `base`.
    pub(crate) fn release(&self, base: usize) -> Result<()> {
        let missing = Error::InvalidAddress("not the base of an allocation");
        self.with_allocation(base, missing, |a| {
            if a.base != base {
                return Err(missing);
            }
            // Leave the index first: once the kernel range is free, another thread may map
            // there and must not find us in its way.
            a.set_live(false);
            self.remove(a.base);
            if a.fault_driven() && self.os.real_memory() {
                crate::engine::fault::remove(a.base);
            }
            // An AWE window's mappings leave the table under its lock, taken before the range
            // is unmapped: a window made at the same address once it is free waits for that,
            // and its frames are never taken for ours (lock order: window, then table).
            let mut awe = (a.kind == super::AllocKind::Physical).then(|| self.awe());
            if let Err(e) = self.os.unmap(a.base, a.size) {
                drop(awe);
                if a.fault_driven() && self.os.real_memory() {
                    crate::engine::fault::add(a);
                }
                a.set_live(true);
                let mut index = self.index.write();
                index.insert(a.clone());
                return Err(Error::from_os(e));
            }
            if let Some(awe) = awe.as_mut() {
                Self::awe_window_released(awe, a);
            }
            Ok(())
        })
    }

    /// MEM_DECOMMIT of the pages `[start, end)`: the first page decides (free → 487), and the
    /// range must stay inside that page's allocation (else 87).
    pub(crate) fn decommit(&self, start: usize, end: usize) -> Result<()> {
        self.with_allocation(
            start,
            Error::InvalidAddress("the first page is free"),
            |a| {
                if end > a.end() {
                    return Err(Error::InvalidParameter("the range leaves its allocation"));
                }
                if matches!(
                    a.kind,
                    super::AllocKind::LargePages | super::AllocKind::Physical
                ) {
                    // [I: ReactOS]: large pages and AWE windows cannot be decommitted.
                    return Err(Error::InvalidAddress(
                        "large-page and AWE memory cannot be decommitted",
                    ));
                }
                let p = self.page();
                let (s, e) = self.pages_of(a, start, end);
                let (new, hull) = a.read(|t| plan_decommit(t, s, e));
                let Some((hs, he)) = hull else {
                    a.publish(new);
                    return Ok(());
                };
                let (addr, len) = (a.base + hs * p, (he - hs) * p);
                if let Err(err) = self.os.replace_with_reserved(addr, len) {
                    if self.os.is_mapped(addr, len) {
                        // The kernel kept the old mapping: nothing changed.
                        return Err(Error::from_os(err));
                    }
                    // The old kernels' MAP_FIXED could leave a hole: fill it so no other
                    // mapping can land there (never touching one that already did), and
                    // record the range as reserved.
                    self.refill_hole(addr, len);
                    a.publish(a.read(|t| {
                        t.with(hs, he, |st| PageState {
                            latched: st.latched,
                            ..PageState::RESERVED
                        })
                    }));
                    return Err(Error::from_os(err));
                }
                if a.watch == Some(super::WatchKind::Kernel) {
                    // Fresh memory is not registered for write tracking: register it again.
                    // The pages are reserved now (never reported) and are cleaned when
                    // committed again (decommitting clears the written state, case 104).
                    let _ = self.os.watch_adopt(addr, len);
                }
                a.publish(new);
                Ok(())
            },
        )
    }
}
