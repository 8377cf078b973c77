//! IsBadReadPtr / IsBadWritePtr / IsBadCodePtr / IsBadStringPtr: whether this process may
//! read (or write) a range, answered from page state — virtmem's runs for its allocations,
//! the kernel's mappings for other memory — never by touching the memory, so a probe cannot
//! crash. Windows probes by touching: a guard page met therefore reports bad *and* loses its
//! guard (the probe consumed the one-shot violation); virtmem does the same.

use super::{BeginAt, Space};
use crate::os::{KernelRegion, Os};
use crate::rules::plan::plan_protect;
use crate::rules::protection::host_prot;
use crate::vocab::consts::PAGE_GUARD;

impl<O: Os> Space<O> {
    /// IsBadReadPtr (`write` false) / IsBadWritePtr: whether some byte of `[addr, addr+size)`
    /// cannot be read (written). Zero bytes are never bad; a range that wraps always is.
    pub fn is_bad_range(&self, addr: usize, size: usize, write: bool) -> bool {
        if size == 0 {
            return false;
        }
        let Some(end) = addr.checked_add(size) else {
            return true;
        };
        let mut at = self.layout.page_floor(addr);
        while at < end {
            // An allocation released while we looked is looked up again (bounded: then the
            // range counts as bad, which it nearly is).
            let step = crate::os::retry::bounded((), || match self.probe_at(at, end, write) {
                Probe::Lost => None,
                p => Some(Ok(p)),
            });
            match step {
                Ok(Probe::Good(next)) => at = next,
                _ => return true,
            }
        }
        false
    }

    /// IsBadStringPtrA (`unit` 1) / IsBadStringPtrW (`unit` 2): whether the string at `addr`
    /// cannot be read up to its terminating zero or `max` units, whichever comes first. A
    /// `max` of zero is never bad (Microsoft's reference); NULL otherwise is.
    pub fn is_bad_string(&self, addr: usize, max: usize, unit: usize) -> bool {
        if max == 0 {
            return false;
        }
        if addr == 0 {
            return true;
        }
        let page = self.page();
        let mut buf = [0u8; 4096 + 8];
        let mut at = addr;
        let mut left = max;
        while left > 0 {
            // Up to the end of this page, plus the rest of a unit straddling it; never more
            // than the units still to read.
            let to_page = self.layout.page_floor(at) + page - at;
            let chunk = to_page
                .next_multiple_of(unit)
                .min(left.saturating_mul(unit))
                .min(buf.len() / unit * unit);
            if self.is_bad_range(at, chunk, false)
                || self.os.read_own(at, &mut buf[..chunk]).is_err()
            {
                return true;
            }
            for u in buf[..chunk].chunks_exact(unit) {
                if u.iter().all(|&b| b == 0) {
                    return false;
                }
                left -= 1;
            }
            let Some(next) = at.checked_add(chunk) else {
                return true;
            };
            at = next;
        }
        false
    }

    /// Probes from page `at` (below `end`): where the next probe starts, or why it stops.
    fn probe_at(&self, at: usize, end: usize, write: bool) -> Probe {
        match self.begin_at(at) {
            BeginAt::Held(held) => {
                let (a, guard) = (held.a(), held.guard());
                let stop = end.min(a.end());
                let (ps, pe) = self.pages_of(a, at, self.layout.page_ceil(stop).unwrap_or(stop));
                self.sync(a, ps, pe);
                let first_bad = a.read_held(guard, |t| {
                    t.runs_in(ps, pe)
                        .find(|r| {
                            let base = host_prot(r.state.protect & !PAGE_GUARD);
                            !r.state.committed
                                || r.state.protect & PAGE_GUARD != 0
                                || !allows(base, write)
                        })
                        .map(|r| (r.start, r.state))
                });
                match first_bad {
                    None => Probe::Good(stop),
                    Some((g, st)) if st.committed && st.protect & PAGE_GUARD != 0 => {
                        // The probe touches the guard page: it loses its guard (Windows'
                        // one-shot violation, taken by the probe) and the range is bad.
                        let plan = a.read_held(guard, |t| {
                            plan_protect(t, g, g + 1, st.protect & !PAGE_GUARD, a.armed())
                        });
                        if let Ok(plan) = plan {
                            let _ = self.apply_protect_plan(a, plan);
                        }
                        Probe::Bad
                    }
                    Some(_) => Probe::Bad,
                }
            }
            BeginAt::Lost => Probe::Lost,
            BeginAt::Nothing => match self.os.kernel_region(at) {
                KernelRegion::Mapped(m) if allows(m.prot, write) => Probe::Good(m.end.min(end)),
                KernelRegion::Mapped(_) => Probe::Bad,
                KernelRegion::Free { .. } => Probe::Bad,
            },
        }
    }
}

/// Whether protection `p` lets a probe read (`write` false) or write. Executable pages count
/// as readable: a reading probe succeeds on them on x64 hardware.
fn allows(p: crate::os::HostProt, write: bool) -> bool {
    if write {
        p.write()
    } else {
        p.read() || p.exec()
    }
}

/// What one probe step found.
enum Probe {
    /// Everything up to this address is accessible.
    Good(usize),
    /// A byte is not.
    Bad,
    /// The allocation went away while we looked: look again.
    Lost,
}
