//! The working set: GetProcessWorkingSetSize(Ex), SetProcessWorkingSetSize(Ex) and
//! EmptyWorkingSet.
//!
//! **The minimum is the lock quota.** Windows lets a process lock as many pages as its minimum
//! working set holds [doc: VirtualLock]; on Linux the lock quota is `RLIMIT_MEMLOCK`. virtmem
//! keeps one number: the minimum working set *is* the soft `RLIMIT_MEMLOCK` (unlimited: all
//! physical memory). Reading the minimum reads the limit; setting the minimum sets the limit
//! (raising the hard limit too where the process may, i.e. with CAP_SYS_RESOURCE). VirtualLock
//! (`engine/lock.rs`) is held to it by the kernel — and by virtmem itself when the process has
//! CAP_IPC_LOCK, which the kernel exempts. The limit is process-wide and inherited by `fork`
//! and `exec`, like the working-set quota of a Windows process is its own.
//!
//! **The maximum and the flags** have no Linux counterpart (no per-process resident-set cap
//! outside cgroups): they are kept here, validated and reported as Windows does, and not
//! enforced — as Windows' own default (QUOTA_LIMITS_HARDWS_MIN_DISABLE |
//! QUOTA_LIMITS_HARDWS_MAX_DISABLE) does not enforce them either [doc: Windows Internals:
//! "unless you have configured the process to use hard working set limits, these limits are
//! ignored"]. A hard minimum or maximum (the ENABLE flags) is recorded and reported only
//! (our decision).
//!
//! **Trimming** (`EmptyWorkingSet`, or both sizes `(SIZE_T)-1`) asks the kernel to page out
//! the committed pages of virtmem's allocations (`MADV_PAGEOUT`): contents are never lost (the
//! kernel writes them to swap; without swap, anonymous pages simply stay), locked pages stay
//! (the kernel refuses to page out locked mappings, and they are skipped), MEM_RESET pages are
//! skipped (their data may be discarded, which would make a later MEM_RESET_UNDO fail), and
//! write-watch state survives (userfaultfd write-protection is kept in the swap entry —
//! `pte_swp_uffd_wp`; signal-driven watch is page protection, untouched). Memory virtmem did
//! not allocate (the heap, stacks, libraries) is not trimmed (our decision).

use super::{AllocKind, Space};
use crate::error::{Error, Result};
use crate::os::linux::{procstat, sysfacts, LinuxOs};
use crate::os::Os;
use crate::vocab::consts::{
    QUOTA_LIMITS_HARDWS_MAX_DISABLE, QUOTA_LIMITS_HARDWS_MAX_ENABLE,
    QUOTA_LIMITS_HARDWS_MIN_DISABLE, QUOTA_LIMITS_HARDWS_MIN_ENABLE,
};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Windows' default maximum working set: 345 pages [doc: SetProcessWorkingSetSize].
pub const DEFAULT_MAXIMUM_PAGES: usize = 345;
/// The smallest minimum: a smaller non-zero minimum becomes 20 pages (Microsoft's documentation).
pub const MINIMUM_PAGES: usize = 20;
/// The smallest maximum: 13 pages (Microsoft's documentation).
pub const MAXIMUM_PAGES: usize = 13;
/// The system-wide ceiling of the maximum: physical pages minus 512 (Microsoft's documentation).
pub const SYSTEM_RESERVE_PAGES: usize = 512;

/// The maximum set by SetProcessWorkingSetSize (0: never set).
static MAXIMUM: AtomicUsize = AtomicUsize::new(0);
/// The enforcement flags (Windows' default: both soft).
static FLAGS: AtomicU32 =
    AtomicU32::new(QUOTA_LIMITS_HARDWS_MIN_DISABLE | QUOTA_LIMITS_HARDWS_MAX_DISABLE);

/// What GetProcessWorkingSetSizeEx reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingSetLimits {
    /// The minimum working set in bytes: the lock quota (soft `RLIMIT_MEMLOCK`; unlimited
    /// reads as all physical memory).
    pub minimum: usize,
    /// The maximum working set in bytes (recorded, not enforced; at least the minimum).
    pub maximum: usize,
    /// QUOTA_LIMITS_HARDWS_* flags: one MIN and one MAX flag.
    pub flags: u32,
}

/// What a SetProcessWorkingSetSizeEx call asks for, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// Both sizes `(SIZE_T)-1`: trim the working set.
    Trim,
    /// New limits (page-rounded) and flags.
    Set {
        minimum: usize,
        maximum: usize,
        flags: u32,
    },
}

/// Validates SetProcessWorkingSetSizeEx's arguments (no system call): flags first (unknown
/// bits, or ENABLE with DISABLE of the same limit → 87), then `(-1, -1)` (trim), then the sizes:
/// zero, minimum above maximum, maximum below 13 pages → 87; a minimum below 20 pages becomes
/// 20 pages (and the maximum at least that) (Microsoft's documentation); sizes are rounded up to pages.
fn validate(minimum: usize, maximum: usize, flags: u32, page: usize) -> Result<Request> {
    let known = QUOTA_LIMITS_HARDWS_MIN_ENABLE
        | QUOTA_LIMITS_HARDWS_MIN_DISABLE
        | QUOTA_LIMITS_HARDWS_MAX_ENABLE
        | QUOTA_LIMITS_HARDWS_MAX_DISABLE;
    let both = |a: u32, b: u32| flags & (a | b) == a | b;
    if flags & !known != 0
        || both(QUOTA_LIMITS_HARDWS_MIN_ENABLE, QUOTA_LIMITS_HARDWS_MIN_DISABLE)
        || both(QUOTA_LIMITS_HARDWS_MAX_ENABLE, QUOTA_LIMITS_HARDWS_MAX_DISABLE)
    {
        return Err(Error::InvalidParameter("invalid working-set flags"));
    }
    if minimum == usize::MAX && maximum == usize::MAX {
        return Ok(Request::Trim);
    }
    if minimum == 0 || maximum == 0 {
        return Err(Error::InvalidParameter("a working-set size of zero"));
    }
    if minimum > maximum {
        return Err(Error::InvalidParameter(
            "the minimum working set exceeds the maximum",
        ));
    }
    let round = |v: usize| v.checked_next_multiple_of(page).unwrap_or(usize::MAX & !(page - 1));
    let maximum = round(maximum);
    if maximum < MAXIMUM_PAGES * page {
        return Err(Error::InvalidParameter(
            "the maximum working set is below 13 pages",
        ));
    }
    let minimum = round(minimum).max(MINIMUM_PAGES * page);
    Ok(Request::Set {
        minimum,
        maximum: maximum.max(minimum),
        flags,
    })
}

impl Space<LinuxOs> {
    /// GetProcessWorkingSetSizeEx's figures, now.
    pub fn working_set_limits(&self) -> WorkingSetLimits {
        let (soft, _) = procstat::memlock_limit();
        // Unlimited: the process may lock all physical memory.
        let minimum = usize::try_from(soft.unwrap_or_else(sysfacts::physical_memory))
            .unwrap_or(usize::MAX);
        let page = self.page();
        let set = MAXIMUM.load(Ordering::Relaxed);
        let maximum = if set == 0 {
            DEFAULT_MAXIMUM_PAGES * page
        } else {
            set
        };
        WorkingSetLimits {
            minimum,
            maximum: maximum.max(minimum),
            flags: FLAGS.load(Ordering::Relaxed),
        }
    }

    /// SetProcessWorkingSetSizeEx: new limits, or `(usize::MAX, usize::MAX)` to trim.
    ///
    /// Errors: ERROR_INVALID_PARAMETER for the argument rules of [`validate`];
    /// ERROR_NO_SYSTEM_RESOURCES (1450) for a maximum at or above the system ceiling
    /// (physical pages minus 512 (Microsoft's documentation)), or a minimum above what the process may lock (above
    /// the hard `RLIMIT_MEMLOCK` without CAP_SYS_RESOURCE) — Windows' answer when it cannot
    /// grant a working set [ours: the code follows NT's STATUS_INSUFFICIENT_RESOURCES]. Nothing
    /// changes on failure.
    pub fn set_working_set_limits(&self, minimum: usize, maximum: usize, flags: u32) -> Result<()> {
        let page = self.page();
        let (minimum, maximum, flags) = match validate(minimum, maximum, flags, page)? {
            Request::Trim => return self.empty_working_set(),
            Request::Set {
                minimum,
                maximum,
                flags,
            } => (minimum, maximum, flags),
        };
        let phys = usize::try_from(sysfacts::physical_memory()).unwrap_or(usize::MAX);
        if phys != 0 && maximum >= phys.saturating_sub(SYSTEM_RESERVE_PAGES * page) {
            return Err(Error::NoSystemResources(
                "the maximum working set reaches the system-wide ceiling",
            ));
        }
        let (_, hard) = procstat::memlock_limit();
        let want = minimum as u64;
        let hard = match hard {
            Some(h) if h < want => Some(want), // needs CAP_SYS_RESOURCE
            h => h,
        };
        procstat::set_memlock_limit(Some(want), hard).map_err(|_| {
            Error::NoSystemResources("the minimum working set exceeds what the process may lock")
        })?;
        MAXIMUM.store(maximum, Ordering::Relaxed);
        // Flags 0 leave the enforcement as it was; a MIN or MAX flag replaces its half.
        let mut keep = FLAGS.load(Ordering::Relaxed);
        let min_bits = QUOTA_LIMITS_HARDWS_MIN_ENABLE | QUOTA_LIMITS_HARDWS_MIN_DISABLE;
        let max_bits = QUOTA_LIMITS_HARDWS_MAX_ENABLE | QUOTA_LIMITS_HARDWS_MAX_DISABLE;
        if flags & min_bits != 0 {
            keep = (keep & !min_bits) | (flags & min_bits);
        }
        if flags & max_bits != 0 {
            keep = (keep & !max_bits) | (flags & max_bits);
        }
        FLAGS.store(keep, Ordering::Relaxed);
        Ok(())
    }

    /// EmptyWorkingSet: pages out the committed, unlocked, not-reset pages of every private
    /// allocation and view (see the module documentation). Best effort: a range the kernel
    /// refuses to page out stays resident, and the call still succeeds, as Windows'
    /// EmptyWorkingSet does for pages it cannot remove.
    pub fn empty_working_set(&self) -> Result<()> {
        let l = self.layout;
        let p = self.page();
        for a in self
            .overlapping(l.min_address, l.max_address + 1)
            .iter()
        {
            if !matches!(a.kind, AllocKind::Normal | AllocKind::View) {
                continue; // placeholders hold nothing; large and AWE pages are never paged
            }
            let Some(_guard) = a.begin() else {
                continue; // released meanwhile
            };
            let mut spans = crate::os::linux::metaheap::meta_vec::<(usize, usize)>();
            a.read(|t| {
                for r in t.runs().filter(|r| {
                    r.state.committed && !r.state.locked && !r.state.reset
                }) {
                    let (s, e) = (a.base + r.start * p, a.base + r.end * p);
                    match spans.last_mut() {
                        Some(last) if last.1 == s => last.1 = e,
                        _ => spans.push((s, e)),
                    }
                }
            });
            for &(s, e) in spans.iter() {
                // Best effort (see above): the kernel keeps what it cannot page out.
                let _ = self.os.page_out(s, e - s);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const P: usize = 4096;

    #[test]
    fn validation_follows_the_documented_rules() {
        let inv = |r: Result<Request>| matches!(r, Err(Error::InvalidParameter(_)));
        assert_eq!(validate(usize::MAX, usize::MAX, 0, P), Ok(Request::Trim));
        assert!(inv(validate(0, 100 * P, 0, P)));
        assert!(inv(validate(50 * P, 0, 0, P)));
        assert!(inv(validate(60 * P, 50 * P, 0, P)));
        assert!(inv(validate(P, 12 * P, 0, P)));
        assert!(inv(validate(50 * P, 100 * P, 0x10, P)));
        assert!(inv(validate(50 * P, 100 * P, 3, P)));
        assert!(inv(validate(50 * P, 100 * P, 12, P)));
        assert!(inv(validate(usize::MAX, usize::MAX, 3, P)));
        assert_eq!(
            validate(1, 13 * P, 0, P),
            Ok(Request::Set {
                minimum: 20 * P,
                maximum: 20 * P,
                flags: 0
            })
        );
        assert_eq!(
            validate(50 * P + 1, 345 * P, 5, P),
            Ok(Request::Set {
                minimum: 51 * P,
                maximum: 345 * P,
                flags: 5
            })
        );
    }
}
