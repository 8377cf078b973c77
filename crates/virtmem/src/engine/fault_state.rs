//! The page state that faults change, derived in one place.
//!
//! The SIGSEGV handler cannot publish new page runs, so when it consumes a guard page or
//! records a write under signal-driven write watch it changes only the page's kernel
//! protection (`engine::fault`). Whoever needs the truth later — the handler itself on the
//! next fault, operations folding the kernel's view into the runs (`engine::sync`), and the
//! VirtualQuery slow path (`engine::query`) — combines the recorded state with the kernel's
//! protection through [`effective_state`].
//!
//! Both functions are pure (no allocation, no lock, no syscall): the handler calls them.

use crate::os::HostProt;
use crate::rules::protection::host_prot;
use crate::rules::runs::PageState;
use crate::vocab::consts::PAGE_GUARD;

/// Whether a fault can change a page recorded as `st` in an allocation that is (`armed`) or
/// is not under signal-driven write watch: committed, and either guarded or clean and
/// writable under signal-driven watch.
pub(crate) const fn fault_changeable(st: PageState, armed: bool) -> bool {
    st.committed
        && (st.protect & PAGE_GUARD != 0 || (armed && !st.dirty && host_prot(st.protect).write()))
}

/// A page's effective state, from its recorded state `st`, whether its allocation is `armed`
/// (signal-driven write watch), and the kernel's current protection `kernel` of it:
///
/// * a page recorded as guarded that the kernel no longer keeps `PROT_NONE` was touched: its
///   guard is gone (`PAGE_GUARD` cleared);
/// * an unguarded page of an armed allocation that its protection lets be written and that
///   the kernel lets be written was written (clean writable pages are kept read-only until
///   their first write): `dirty`.
///
/// Anything else (reserved pages, unarmed allocations' unguarded pages) is returned as
/// recorded. Async-signal-safe.
pub(crate) const fn effective_state(st: PageState, armed: bool, kernel: HostProt) -> PageState {
    let mut st = st;
    if !st.committed {
        return st;
    }
    if st.protect & PAGE_GUARD != 0 && kernel.any() {
        st.protect &= !PAGE_GUARD;
    }
    if armed && st.protect & PAGE_GUARD == 0 && host_prot(st.protect).write() && kernel.write() {
        st.dirty = true;
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::consts::{PAGE_EXECUTE_READ, PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE};

    fn committed(protect: u32, dirty: bool) -> PageState {
        PageState {
            committed: true,
            protect,
            dirty,
            ..PageState::default()
        }
    }

    #[test]
    fn guard_pages() {
        let g = committed(PAGE_READWRITE | PAGE_GUARD, false);
        for armed in [false, true] {
            assert!(fault_changeable(g, armed));
            // Still armed.
            assert_eq!(effective_state(g, armed, HostProt::NONE), g);
        }
        // Touched: the guard is gone (and, unarmed, nothing else changes).
        assert_eq!(
            effective_state(g, false, HostProt::READ_WRITE),
            committed(PAGE_READWRITE, false)
        );
        // Touched in a signal-watched allocation, the kernel lets it be written: the guard is
        // gone and the page counts as written.
        assert_eq!(
            effective_state(g, true, HostProt::READ_WRITE),
            committed(PAGE_READWRITE, true)
        );
        // Touched but still write-protected (a read under write watch): clean.
        assert_eq!(
            effective_state(g, true, HostProt::READ),
            committed(PAGE_READWRITE, false)
        );
        let ro = committed(PAGE_READONLY | PAGE_GUARD, false);
        assert_eq!(
            effective_state(ro, true, HostProt::READ),
            committed(PAGE_READONLY, false)
        );
    }

    #[test]
    fn signal_watched_pages() {
        let clean = committed(PAGE_READWRITE, false);
        assert!(fault_changeable(clean, true));
        assert!(!fault_changeable(clean, false));
        assert!(!fault_changeable(committed(PAGE_READWRITE, true), true));
        assert!(!fault_changeable(committed(PAGE_READONLY, false), true));
        assert!(!fault_changeable(committed(PAGE_EXECUTE_READ, false), true));
        assert_eq!(effective_state(clean, true, HostProt::READ), clean);
        assert_eq!(
            effective_state(clean, true, HostProt::READ_WRITE),
            committed(PAGE_READWRITE, true)
        );
        // Unarmed: the kernel's protection is just the page's own.
        assert_eq!(effective_state(clean, false, HostProt::READ_WRITE), clean);
        let na = committed(PAGE_NOACCESS, false);
        assert_eq!(effective_state(na, true, HostProt::NONE), na);
    }

    #[test]
    fn reserved_pages_never_change() {
        let r = PageState::RESERVED;
        for armed in [false, true] {
            assert!(!fault_changeable(r, armed));
            for k in [HostProt::NONE, HostProt::READ, HostProt::READ_WRITE] {
                assert_eq!(effective_state(r, armed, k), r);
            }
        }
    }
}
