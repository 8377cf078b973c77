//! GetProcessMemoryInfo / K32GetProcessMemoryInfo and `virtmem::process_memory_counters()`
//! (issue 15 item 2): PrivateUsage is virtmem's private commit, exactly; its peak stays; the
//! working set and faults are the kernel's; `cb` and handle errors as Windows gives them.
//!
//! The commit figures are process-wide, so the tests that commit take one lock.

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use virtmem::win32::*;

static SERIAL: Mutex<()> = Mutex::new(());
const P: usize = 4096;

fn counters() -> PROCESS_MEMORY_COUNTERS_EX {
    let mut c = PROCESS_MEMORY_COUNTERS_EX::default();
    let ok = unsafe {
        GetProcessMemoryInfo(
            GetCurrentProcess(),
            (&raw mut c).cast(),
            size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32,
        )
    };
    assert_eq!(ok, TRUE, "GetProcessMemoryInfo: {}", GetLastError());
    c
}

fn status_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with(key)).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn private_usage_follows_commit_and_decommit_exactly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = counters();
    assert_eq!(base.PagefileUsage, base.PrivateUsage);
    unsafe {
        // Reserving charges nothing.
        let r = VirtualAlloc(null(), 1 << 20, MEM_RESERVE, PAGE_READWRITE);
        assert!(!r.is_null());
        assert_eq!(counters().PrivateUsage, base.PrivateUsage, "reserve");
        // Committing charges exactly the pages committed (touched or not).
        assert!(!VirtualAlloc(r, 64 * P, MEM_COMMIT, PAGE_READWRITE).is_null());
        assert_eq!(
            counters().PrivateUsage,
            base.PrivateUsage + 64 * P,
            "commit"
        );
        // Recommitting committed pages (another protection) charges nothing more.
        assert!(!VirtualAlloc(r, 64 * P, MEM_COMMIT, PAGE_READONLY).is_null());
        assert_eq!(
            counters().PrivateUsage,
            base.PrivateUsage + 64 * P,
            "recommit"
        );
        // Protection changes are no commit change.
        let mut old = 0;
        assert_eq!(VirtualProtect(r, 16 * P, PAGE_NOACCESS, &mut old), TRUE);
        assert_eq!(
            counters().PrivateUsage,
            base.PrivateUsage + 64 * P,
            "protect"
        );
        // Decommitting part gives exactly that back.
        assert_eq!(
            VirtualFree(r.cast::<u8>().add(48 * P).cast(), 16 * P, MEM_DECOMMIT),
            TRUE
        );
        let c = counters();
        assert_eq!(c.PrivateUsage, base.PrivateUsage + 48 * P, "decommit");
        assert!(
            c.PeakPagefileUsage >= base.PrivateUsage + 64 * P,
            "peak kept"
        );
        // Reserve + commit in one call.
        let b = VirtualAlloc(null(), 40 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!b.is_null());
        assert_eq!(
            counters().PrivateUsage,
            base.PrivateUsage + 88 * P,
            "reserve|commit"
        );
        // A failed commit (into free memory) charges nothing.
        assert!(VirtualAlloc(
            r.cast::<u8>().add(1 << 20).cast(),
            P,
            MEM_COMMIT,
            PAGE_READWRITE
        )
        .is_null());
        assert_eq!(
            counters().PrivateUsage,
            base.PrivateUsage + 88 * P,
            "failed commit"
        );
        // Releasing gives the whole allocation's commit back; the peak stays.
        assert_eq!(VirtualFree(r, 0, MEM_RELEASE), TRUE);
        assert_eq!(VirtualFree(b, 0, MEM_RELEASE), TRUE);
        let c = counters();
        assert_eq!(c.PrivateUsage, base.PrivateUsage, "release");
        assert!(
            c.PeakPagefileUsage >= base.PrivateUsage + 88 * P,
            "peak after release"
        );
        assert!(c.PeakPagefileUsage >= c.PagefileUsage);
    }
    // The safe face reports the same figures.
    let s = virtmem::process_memory_counters().unwrap();
    assert_eq!(s.private_usage as usize, base.PrivateUsage);
    assert!(s.peak_private_usage as usize >= base.PrivateUsage + 88 * P);
}

#[test]
fn working_set_and_faults_are_the_kernels() {
    let before = counters();
    assert!(before.WorkingSetSize > 0);
    assert!(before.PeakWorkingSetSize >= before.WorkingSetSize);
    // Touch 256 fresh pages: at least one fault more, and the working set holds them.
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    unsafe {
        let p = VirtualAlloc(null(), 256 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!p.is_null());
        for i in 0..256 {
            p.cast::<u8>().add(i * P).write_volatile(1);
        }
        let after = counters();
        assert!(after.PageFaultCount > before.PageFaultCount);
        // VmRSS read right after: the same order of magnitude (other threads run too).
        let rss = status_kb("VmRSS:") * 1024;
        assert!(after.WorkingSetSize as u64 <= rss + (64 << 20));
        assert!(after.PeakWorkingSetSize as u64 <= status_kb("VmHWM:") * 1024 + (64 << 20));
        assert!(after.PeakWorkingSetSize >= after.WorkingSetSize);
        assert_eq!(VirtualFree(p, 0, MEM_RELEASE), TRUE);
    }
    // Pools: no paged pool; the non-paged pool is the page tables (VmPTE), its peak kept.
    let c = counters();
    assert_eq!((c.QuotaPagedPoolUsage, c.QuotaPeakPagedPoolUsage), (0, 0));
    assert!(c.QuotaNonPagedPoolUsage > 0);
    assert!(c.QuotaPeakNonPagedPoolUsage >= c.QuotaNonPagedPoolUsage);
}

#[test]
fn cb_selects_the_structure_and_bad_arguments_fail_as_on_windows() {
    unsafe {
        let mut buf = [0xAAu8; 96];
        let out = buf.as_mut_ptr().cast::<PROCESS_MEMORY_COUNTERS>();
        // cb too small: ERROR_INSUFFICIENT_BUFFER, nothing written.
        SetLastError(0);
        assert_eq!(K32GetProcessMemoryInfo(GetCurrentProcess(), out, 71), FALSE);
        assert_eq!(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
        assert!(buf.iter().all(|&b| b == 0xAA));
        // A bad handle is checked first (6), NULL handle too.
        assert_eq!(GetProcessMemoryInfo(null_mut(), out, 72), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(GetProcessMemoryInfo(0x1234 as HANDLE, out, 0), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        // NULL counters with a valid size: ERROR_NOACCESS.
        assert_eq!(
            GetProcessMemoryInfo(GetCurrentProcess(), null_mut(), 72),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOACCESS);
        // cb 72..79: the basic structure, cb = 72, nothing past it.
        assert_eq!(GetProcessMemoryInfo(GetCurrentProcess(), out, 79), TRUE);
        assert_eq!((*out).cb, 72);
        assert!(buf[72..].iter().all(|&b| b == 0xAA));
        // cb >= 80: the _EX structure, cb = 80, PrivateUsage = PagefileUsage.
        assert_eq!(GetProcessMemoryInfo(GetCurrentProcess(), out, 96), TRUE);
        let ex = buf
            .as_ptr()
            .cast::<PROCESS_MEMORY_COUNTERS_EX>()
            .read_unaligned();
        assert_eq!(ex.cb, 80);
        assert!(buf[80..].iter().all(|&b| b == 0xAA));
        assert!(ex.WorkingSetSize > 0);
    }
    assert_eq!(size_of::<PROCESS_MEMORY_COUNTERS>(), 72);
    assert_eq!(size_of::<PROCESS_MEMORY_COUNTERS_EX>(), 80);
    let _: *const c_void = null();
}
