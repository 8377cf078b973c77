//! Folding what faults changed into the bookkeeping.
//!
//! A signal handler cannot allocate, so it cannot publish new page runs. When it consumes a
//! guard page or records a write (signal-driven write watch) it only changes the page's kernel
//! protection — the kernel is the record. Operations on such an allocation first read the
//! kernel's protections over their range (one PROCMAP_QUERY per kernel mapping) and fold them
//! into the runs, under the allocation's handler lock, so plans and rollbacks start from the
//! truth:
//!
//! * a page the runs call guarded whose kernel protection is not `PROT_NONE` was touched:
//!   its guard is gone;
//! * a clean page of a signal-watched allocation that the kernel lets be written was written.
//!
//! (Both derived by `engine::fault_state`, which the handler and VirtualQuery use too.)

use super::fault_state::{effective_state, fault_changeable};
use super::{Allocation, Space};
use crate::os::{KernelRegion, Os};

impl<O: Os> Space<O> {
    /// Folds the kernel's protections over pages `[s, e)` of `a` into its runs. Call with the
    /// allocation's operation guard held.
    pub(crate) fn sync(&self, a: &Allocation, s: usize, e: usize) {
        if !a.fault_driven() || !self.os.real_memory() {
            return;
        }
        let p = self.page();
        let armed = a.armed();
        let old = a.read(|t| t.clone());
        // Only runs that faults can change need the kernel's view: one PROCMAP_QUERY per
        // kernel mapping over them, then one pass over the runs.
        let mut segments =
            crate::os::linux::metaheap::meta_vec::<(usize, usize, crate::os::HostProt)>();
        for r in old
            .runs_in(s, e)
            .filter(|r| fault_changeable(r.state, armed))
        {
            let mut at = a.base + r.start * p;
            let end = a.base + r.end * p;
            while at < end {
                let KernelRegion::Mapped(m) = self.os.kernel_region(at) else {
                    break;
                };
                let seg_end = m.end.min(end).max(at + p);
                segments.push(((at - a.base) / p, (seg_end - a.base) / p, m.prot));
                at = seg_end;
            }
        }
        if segments.is_empty() {
            return;
        }
        let table = old.with_segments(&segments, |st, kp| effective_state(st, armed, kp));
        if table != old {
            a.publish(table);
        }
    }
}
