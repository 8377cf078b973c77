//! Simulated memory accesses, for backends without real memory ([`Os::simulated_faults`]).
//!
//! On real memory a load or store is checked by the MMU, and a fault reaches virtmem's
//! signal handler (`crate::engine::fault`), which consumes guard pages and records writes of
//! signal-watched allocations. A simulated backend has no MMU, so [`Space::read`] and
//! [`Space::write`] play both parts:
//!
//! 1. the "MMU": every page the access touches must be mapped by the backend with a
//!    protection that allows it ([`Os::kernel_region`]); if so, the bytes are copied
//!    ([`Os::sim_read`], [`Os::sim_write`], which also records writes for the backend's
//!    write tracking);
//! 2. the "handler", for the first page that does not allow it, decided like the signal
//!    handler does, under the allocation's operation lock:
//!    * an armed guard page: the guard is consumed (the page gets its protection without
//!      PAGE_GUARD, through the backend) and the access fails with a one-shot
//!      [`AccessError::GuardPage`] — like Windows, the access itself is not performed;
//!    * a write to a clean page of a signal-watched allocation: the write is recorded (the
//!      page is made writable) and the access is retried;
//!    * anything else: [`AccessError::AccessViolation`].
//!
//! Unlike the signal handler, this code is not in signal context: it records what it
//! changed in the page runs at once (through the same protection plans the operations use),
//! so the bookkeeping never lags behind the backend.

use super::{Space, WatchKind};
use crate::engine::fault::Access;
use crate::os::sim::SimOs;
use crate::os::{KernelRegion, Os};
use crate::rules::plan::{plan_protect, plan_reprotect};
use crate::rules::protection::host_prot;
use crate::rules::runs::PageState;
use crate::vocab::consts::PAGE_GUARD;
use std::fmt;

/// Why a simulated access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// STATUS_ACCESS_VIOLATION (0xC0000005): the page is free, reserved, PAGE_NOACCESS, or
    /// does not allow this kind of access.
    AccessViolation {
        /// The first byte of the access that faulted.
        address: usize,
        /// Read or write.
        access: Access,
    },
    /// STATUS_GUARD_PAGE_VIOLATION (0x80000001): the first touch of a PAGE_GUARD page. The
    /// guard is gone now: the same access again succeeds (or faults by the page's protection).
    GuardPage {
        /// The first byte of the access that touched the guard page.
        address: usize,
        /// Read or write.
        access: Access,
    },
    /// The backend has real memory: use pointers (the real MMU checks them).
    NotSimulated,
}

impl AccessError {
    /// The Windows exception code (`GetExceptionCode()`), 0 for [`AccessError::NotSimulated`].
    pub const fn exception_code(self) -> u32 {
        match self {
            AccessError::AccessViolation { .. } => 0xC000_0005,
            AccessError::GuardPage { .. } => 0x8000_0001,
            AccessError::NotSimulated => 0,
        }
    }
}

fn access_name(a: Access) -> &'static str {
    match a {
        Access::Read => "read",
        Access::Write => "write",
        Access::Execute => "execute",
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AccessError::AccessViolation { address, access } => {
                write!(
                    f,
                    "access violation at {address:#x} ({})",
                    access_name(access)
                )
            }
            AccessError::GuardPage { address, access } => write!(
                f,
                "guard page violation at {address:#x} ({})",
                access_name(access)
            ),
            AccessError::NotSimulated => {
                write!(
                    f,
                    "this address space has real memory: accesses are not simulated"
                )
            }
        }
    }
}

impl std::error::Error for AccessError {}

/// What the "handler" decided for a fault.
enum Decision {
    Retry,
    Fail(AccessError),
}

impl Space<SimOs> {
    /// A new simulated process with this layout (see [`crate::os::sim`]).
    pub fn simulated(layout: crate::vocab::layout::Layout) -> Space<SimOs> {
        Space::new(layout, SimOs::new(layout))
    }
}

impl<O: Os> Space<O> {
    /// Whether guard pages and write watch can work on this backend: real memory (faults
    /// reach the signal handler) or simulated accesses.
    pub(crate) fn faults_work(&self) -> bool {
        self.os.real_memory() || self.os.simulated_faults()
    }

    /// Reads `buf.len()` bytes at `addr` of a simulated address space, as a load by the
    /// program would: faults as described in the module documentation.
    pub fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.access(addr, buf.len(), Access::Read, |os| os.sim_read(addr, buf))
    }

    /// Writes `bytes` at `addr` of a simulated address space, as a store by the program
    /// would: faults as described in the module documentation.
    pub fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), AccessError> {
        self.access(addr, bytes.len(), Access::Write, |os| {
            os.sim_write(addr, bytes)
        })
    }

    fn access(
        &self,
        addr: usize,
        len: usize,
        access: Access,
        mut copy: impl FnMut(&O) -> bool,
    ) -> Result<(), AccessError> {
        if !self.os.simulated_faults() {
            return Err(AccessError::NotSimulated);
        }
        if len == 0 {
            return Ok(());
        }
        let violation = |address| AccessError::AccessViolation { address, access };
        let end = addr.checked_add(len).ok_or(violation(addr))?;
        let p = self.page();
        // A page's fault can be handled at most a few times (guard, then write watch); the
        // bound only protects against a backend that does not keep its protections.
        for _ in 0..(2 * len.div_ceil(p) + 4) {
            let mut fault = None;
            let mut page = addr & !(p - 1);
            while page < end {
                let ok = match self.os.kernel_region(page) {
                    KernelRegion::Mapped(m) => match access {
                        Access::Read => m.prot.read(),
                        Access::Write => m.prot.write(),
                        Access::Execute => m.prot.exec(),
                    },
                    KernelRegion::Free { .. } => false,
                };
                if !ok {
                    fault = Some(page.max(addr));
                    break;
                }
                page = match page.checked_add(p) {
                    Some(x) => x,
                    None => break,
                };
            }
            let Some(at) = fault else {
                return if copy(&self.os) {
                    Ok(())
                } else {
                    Err(violation(addr))
                };
            };
            match self.handle_fault(at, access) {
                Decision::Retry => continue,
                Decision::Fail(e) => return Err(e),
            }
        }
        Err(violation(addr))
    }

    /// The simulated fault handler for an access at `at` (see the module documentation).
    fn handle_fault(&self, at: usize, access: Access) -> Decision {
        let violation = Decision::Fail(AccessError::AccessViolation {
            address: at,
            access,
        });
        let Some(a) = self.find(at) else {
            return violation;
        };
        let Some(_guard) = a.begin() else {
            return violation; // released meanwhile
        };
        let p = self.page();
        let page = at & !(p - 1);
        let idx = (page - a.base) / p;
        let st: PageState = a.read(|t| t.run_at(idx).state);
        let now = match self.os.kernel_region(page) {
            KernelRegion::Mapped(m) => m.prot,
            KernelRegion::Free { .. } => return violation,
        };
        let allowed = match access {
            Access::Read => now.read(),
            Access::Write => now.write(),
            Access::Execute => now.exec(),
        };
        if allowed {
            // Another thread handled it meanwhile.
            return Decision::Retry;
        }
        if !st.committed {
            // A view of a SEC_RESERVE section: the page may have been committed through
            // another view or process since (VA3). Fold that in, as the signal handler does
            // on real memory, and retry.
            if a.view.as_ref().is_some_and(|v| v.section.is_reserve()) {
                self.sync_view(&a);
                if a.read(|t| t.run_at(idx).state.committed) {
                    return Decision::Retry;
                }
            }
            return violation;
        }
        if st.protect & PAGE_GUARD != 0 && !now.any() {
            // One shot: the page keeps its protection without the guard.
            let plan =
                a.read(|t| plan_protect(t, idx, idx + 1, st.protect & !PAGE_GUARD, a.armed()));
            return match plan.map(|plan| self.apply_protect_plan(&a, plan)) {
                Ok(Ok(())) => Decision::Fail(AccessError::GuardPage {
                    address: at,
                    access,
                }),
                _ => violation,
            };
        }
        if access == Access::Write
            && a.watch == Some(WatchKind::Signal)
            && !st.dirty
            && host_prot(st.protect).write()
        {
            // Signal-driven write watch: the first write to a clean page is recorded.
            let plan = a.read(|t| {
                let new = t.with(idx, idx + 1, |s| PageState { dirty: true, ..s });
                plan_reprotect(t, new, idx, idx + 1, true)
            });
            return match self.apply_protect_plan(&a, plan) {
                Ok(()) => Decision::Retry,
                Err(_) => violation,
            };
        }
        violation
    }
}
