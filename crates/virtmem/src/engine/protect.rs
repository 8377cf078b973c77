//! VirtualProtect, on virtmem's allocations and on memory virtmem did not allocate.

use super::{AllocKind, Space};
use crate::error::{Error, Result};
use crate::os::{HostProt, KernelRegion, Os};
use crate::rules::plan::plan_protect;
use crate::rules::protection::{host_prot, win32_from_host};
use crate::rules::requests::validate_range;
use crate::rules::Protection;

impl<O: Os> Space<O> {
    /// VirtualProtect: gives every page touched by `[addr, addr+size)` the protection
    /// `new_protect` and returns the first page's previous protection.
    pub fn virtual_protect(&self, addr: usize, size: usize, new_protect: u32) -> Result<u32> {
        let protection = Protection::parse(new_protect, false)?;
        let (start, end) = validate_range(&self.layout, addr, size)?;
        // An allocation released while we waited for its lock: look again (bounded,
        // `crate::os::retry`; if it keeps changing, 487 as for a range leaving its allocation).
        crate::os::retry::bounded(
            Error::InvalidAddress("the allocation kept being released"),
            || {
                let Some(a) = self.find(start) else {
                    return Some(self.protect_foreign(start, end, protection));
                };
                let _guard = a.begin()?;
                Some(self.protect_held(&a, start, end, protection))
            },
        )
    }

    /// VirtualProtect of `[start, end)` starting in `a`, whose operation lock is held.
    fn protect_held(
        &self,
        a: &crate::os::linux::metaheap::MetaArc<super::Allocation>,
        start: usize,
        end: usize,
        protection: Protection,
    ) -> Result<u32> {
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
        // PAGE_NOCACHE / PAGE_WRITECOMBINE belong to the allocation: the request's modifiers
        // are ignored, the allocation's stay.
        let plan = a.read(|t| plan_protect(t, s, e, protection.page_value(), a.armed()))?;
        if protection.guard {
            if !self.faults_work() {
                return Err(Error::NotSupported("PAGE_GUARD on this backend"));
            }
            self.make_fault_driven(a);
        }
        let old = plan.old_first | a.modifiers;
        self.apply_protect_plan(a, plan)?;
        Ok(old)
    }

    /// VirtualProtect on memory virtmem did not allocate (executable, libraries, heap,
    /// stacks): every page must be mapped and none may belong to an allocation of ours.
    fn protect_foreign(&self, start: usize, end: usize, protection: Protection) -> Result<u32> {
        if !self.overlapping(start, end).is_empty() {
            return Err(Error::InvalidAddress("the range leaves its allocation"));
        }
        let mut spans: Vec<(usize, usize, HostProt)> = Vec::new();
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
            for &(s, e, prot) in &spans {
                let _ = self.os.protect(s, e - s, prot);
            }
            return Err(match e.kind {
                crate::os::OsErrorKind::Other => {
                    Error::InvalidParameter("the kernel refused this protection for this mapping")
                }
                _ => Error::from_os(e),
            });
        }
        Ok(old)
    }
}
