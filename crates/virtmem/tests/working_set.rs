//! The working set, the memory resource notifications, DEP and the Rtl* memory routines
//! (issue 15 item 2):
//!
//! * the working-set minimum is the VirtualLock quota — one number, `RLIMIT_MEMLOCK`: lock
//!   more than the minimum allows and VirtualLock fails with ERROR_WORKING_SET_QUOTA (also
//!   with CAP_IPC_LOCK), raise the minimum and it succeeds;
//! * a minimum the process may not lock fails with ERROR_NO_SYSTEM_RESOURCES (child process
//!   without CAP_SYS_RESOURCE under a low hard limit);
//! * EmptyWorkingSet and `(SIZE_T)-1, (SIZE_T)-1` keep contents, locks and write-watch state
//!   (nothing about RSS is asserted: without swap, anonymous pages cannot be paged out);
//! * resource notification states agree with /proc/meminfo by Windows' thresholds;
//! * DEP answers agree with /proc/cpuinfo and the personality.
//!
//! The working-set limits are process-wide: tests touching them take one lock.

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use virtmem::win32::*;

static SERIAL: Mutex<()> = Mutex::new(());
const P: usize = 4096;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn rlimit() -> libc::rlimit {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut l) }, 0);
    l
}

fn limits() -> (usize, usize, u32) {
    let (mut min, mut max, mut flags) = (0usize, 0usize, 0u32);
    let ok =
        unsafe { GetProcessWorkingSetSizeEx(GetCurrentProcess(), &mut min, &mut max, &mut flags) };
    assert_eq!(ok, TRUE, "{}", GetLastError());
    (min, max, flags)
}

fn meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let l = text
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Restores RLIMIT_MEMLOCK when dropped.
struct RestoreLimit(libc::rlimit);
impl Drop for RestoreLimit {
    fn drop(&mut self) {
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &self.0) };
    }
}

#[test]
fn the_minimum_is_the_lock_limit_and_defaults_are_windows() {
    let _g = serial();
    let (min, max, flags) = limits();
    let l = rlimit();
    if l.rlim_cur == libc::RLIM_INFINITY {
        assert_eq!(
            min as u64,
            meminfo("MemTotal"),
            "unlimited: all physical memory"
        );
    } else {
        assert_eq!(min as u64, l.rlim_cur, "minimum = soft RLIMIT_MEMLOCK");
    }
    assert!(max >= min && max >= 345 * P);
    assert_eq!(
        flags & (QUOTA_LIMITS_HARDWS_MIN_ENABLE | QUOTA_LIMITS_HARDWS_MIN_DISABLE),
        QUOTA_LIMITS_HARDWS_MIN_DISABLE
    );
    let (mut a, mut b) = (0, 0);
    assert_eq!(
        unsafe { GetProcessWorkingSetSize(GetCurrentProcess(), &mut a, &mut b) },
        TRUE
    );
    assert_eq!((a, b), (min, max));
    assert_eq!(virtmem::working_set_limits().minimum, min);
}

#[test]
fn bad_arguments_fail_as_windows_documents() {
    let _g = serial();
    let before = (limits(), rlimit().rlim_cur);
    let h = GetCurrentProcess();
    let cases: &[(usize, usize, u32, u32)] = &[
        (0, 100 * P, 0, ERROR_INVALID_PARAMETER),
        (50 * P, 0, 0, ERROR_INVALID_PARAMETER),
        (100 * P, 50 * P, 0, ERROR_INVALID_PARAMETER),
        (P, 12 * P, 0, ERROR_INVALID_PARAMETER),
        (50 * P, 400 * P, 0x10, ERROR_INVALID_PARAMETER),
        (
            50 * P,
            400 * P,
            QUOTA_LIMITS_HARDWS_MIN_ENABLE | QUOTA_LIMITS_HARDWS_MIN_DISABLE,
            ERROR_INVALID_PARAMETER,
        ),
        (
            50 * P,
            400 * P,
            QUOTA_LIMITS_HARDWS_MAX_ENABLE | QUOTA_LIMITS_HARDWS_MAX_DISABLE,
            ERROR_INVALID_PARAMETER,
        ),
        // A maximum at the system ceiling (all physical memory).
        (50 * P, usize::MAX - P, 0, ERROR_NO_SYSTEM_RESOURCES),
    ];
    for &(min, max, flags, err) in cases {
        SetLastError(0);
        let ok = unsafe { SetProcessWorkingSetSizeEx(h, min, max, flags) };
        assert_eq!(
            (ok, GetLastError()),
            (FALSE, err),
            "({min:#x}, {max:#x}, {flags:#x})"
        );
    }
    // Bad handles and NULL outputs.
    unsafe {
        assert_eq!(SetProcessWorkingSetSize(null_mut(), 50 * P, 400 * P), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        let mut v = 0;
        assert_eq!(
            GetProcessWorkingSetSize(0x40 as HANDLE, &mut v, &mut v),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(
            GetProcessWorkingSetSize(GetCurrentProcess(), null_mut(), &mut v),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOACCESS);
        assert_eq!(EmptyWorkingSet(null_mut()), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
    assert_eq!(
        (limits(), rlimit().rlim_cur),
        before,
        "failures change nothing"
    );
}

#[test]
fn virtual_lock_is_held_to_the_minimum_and_raising_it_lets_the_lock_through() {
    let _g = serial();
    let _restore = RestoreLimit(rlimit());
    let h = GetCurrentProcess();
    unsafe {
        let m = VirtualAlloc(null(), 256 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!m.is_null());
        // Minimum 64 pages: the lock quota is 256 KiB (small minimums round up to 20 pages).
        assert_eq!(
            SetProcessWorkingSetSizeEx(h, 64 * P, 512 * P, 0),
            TRUE,
            "{}",
            GetLastError()
        );
        assert_eq!(limits().0, 64 * P);
        assert_eq!(
            rlimit().rlim_cur,
            64 * P as u64,
            "one number: RLIMIT_MEMLOCK"
        );
        // 128 pages is more than the minimum allows.
        SetLastError(0);
        assert_eq!(VirtualLock(m, 128 * P), FALSE);
        assert_eq!(GetLastError(), ERROR_WORKING_SET_QUOTA);
        // Nothing stayed locked.
        assert_eq!(VirtualUnlock(m, P), FALSE);
        assert_eq!(GetLastError(), ERROR_NOT_LOCKED);
        // Within the minimum it works.
        assert_eq!(VirtualLock(m, 32 * P), TRUE, "{}", GetLastError());
        assert_eq!(VirtualUnlock(m, 32 * P), TRUE);
        // Raise the minimum (the usual Windows pattern after 1453): the lock goes through.
        assert_eq!(
            SetProcessWorkingSetSize(h, 192 * P, 1024 * P),
            TRUE,
            "{}",
            GetLastError()
        );
        assert_eq!(limits(), (192 * P, 1024 * P, limits().2));
        assert_eq!(VirtualLock(m, 128 * P), TRUE, "{}", GetLastError());
        // Flags are recorded and reported (not enforced).
        assert_eq!(
            SetProcessWorkingSetSizeEx(h, 192 * P, 1024 * P, QUOTA_LIMITS_HARDWS_MIN_ENABLE),
            TRUE
        );
        assert_eq!(
            limits().2,
            QUOTA_LIMITS_HARDWS_MIN_ENABLE | QUOTA_LIMITS_HARDWS_MAX_DISABLE
        );
        assert_eq!(
            SetProcessWorkingSetSizeEx(h, 192 * P, 1024 * P, QUOTA_LIMITS_HARDWS_MIN_DISABLE),
            TRUE
        );
        assert_eq!(VirtualUnlock(m, 128 * P), TRUE);
        assert_eq!(VirtualFree(m, 0, MEM_RELEASE), TRUE);
    }
}

/// Drops CAP_SYS_RESOURCE (so the hard RLIMIT_MEMLOCK binds) in this (child) process.
fn drop_cap_sys_resource() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) != 0 {
            return false;
        }
        let bit = 1u32 << 24; // CAP_SYS_RESOURCE
        d[0].effective &= !bit;
        d[0].permitted &= !bit;
        d[0].inheritable &= !bit;
        libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) == 0
    }
}

#[test]
fn a_minimum_the_process_may_not_lock_is_no_system_resources() {
    let _g = serial();
    // In a child: lower the hard limit to 1 MiB, lose CAP_SYS_RESOURCE, ask for 2 MiB.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| unsafe {
            let lim = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 || !drop_cap_sys_resource() {
                return 2;
            }
            if SetProcessWorkingSetSize(GetCurrentProcess(), 2 << 20, 4 << 20) != FALSE {
                return 3;
            }
            if GetLastError() != ERROR_NO_SYSTEM_RESOURCES {
                return 4;
            }
            let mut l = lim;
            libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut l);
            if l.rlim_cur != 1 << 20 {
                return 5; // nothing changed
            }
            // Up to the hard limit it works.
            if SetProcessWorkingSetSize(GetCurrentProcess(), 1 << 20, 4 << 20) != TRUE {
                return 6;
            }
            0
        })();
        unsafe { libc::_exit(code) };
    }
    let mut st = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(libc::WIFEXITED(st), "child status {st:#x}");
    assert_eq!(libc::WEXITSTATUS(st), 0, "child step that failed");
}

#[test]
fn emptying_the_working_set_keeps_data_locks_and_write_watch() {
    let _g = serial();
    unsafe {
        let n = 512;
        let a = VirtualAlloc(null(), n * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE).cast::<u8>();
        assert!(!a.is_null());
        for i in 0..n * P {
            a.add(i).write((i % 251) as u8);
        }
        let w = VirtualAlloc(
            null(),
            16 * P,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        )
        .cast::<u8>();
        assert!(!w.is_null());
        for i in [1usize, 5, 9] {
            w.add(i * P + 7).write(0x5A);
        }
        assert_eq!(VirtualLock(a.cast(), 4 * P), TRUE, "{}", GetLastError());

        assert_eq!(
            EmptyWorkingSet(GetCurrentProcess()),
            TRUE,
            "{}",
            GetLastError()
        );
        assert_eq!(K32EmptyWorkingSet(GetCurrentProcess()), TRUE);
        assert_eq!(
            SetProcessWorkingSetSize(GetCurrentProcess(), usize::MAX, usize::MAX),
            TRUE
        );

        for i in 0..n * P {
            assert_eq!(a.add(i).read(), (i % 251) as u8, "byte {i:#x}");
        }
        let mut addrs = [null_mut::<c_void>(); 16];
        let (mut count, mut gran) = (16usize, 0u32);
        assert_eq!(
            GetWriteWatch(
                0,
                w.cast(),
                16 * P,
                addrs.as_mut_ptr(),
                &mut count,
                &mut gran
            ),
            0
        );
        let want: Vec<*mut c_void> = [1usize, 5, 9]
            .iter()
            .map(|&i| w.add(i * P).cast())
            .collect();
        assert_eq!(&addrs[..count], &want[..], "write watch survives");
        assert_eq!(w.add(5 * P + 7).read(), 0x5A);
        // The lock stayed: one unlock of exactly those pages succeeds.
        assert_eq!(VirtualUnlock(a.cast(), 4 * P), TRUE);
        assert_eq!(VirtualFree(a.cast(), 0, MEM_RELEASE), TRUE);
        assert_eq!(VirtualFree(w.cast(), 0, MEM_RELEASE), TRUE);
    }
    virtmem::empty_working_set().unwrap();
}

#[test]
fn memory_resource_notifications_agree_with_meminfo() {
    unsafe {
        SetLastError(0);
        assert!(CreateMemoryResourceNotification(2).is_null());
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        assert!(CreateMemoryResourceNotification(-1).is_null());
        let low = CreateMemoryResourceNotification(LowMemoryResourceNotification);
        let high = CreateMemoryResourceNotification(HighMemoryResourceNotification);
        assert!(!low.is_null() && !high.is_null() && low != high);
        let (mut l, mut h) = (-1, -1);
        assert_eq!(
            QueryMemoryResourceNotification(low, &mut l),
            TRUE,
            "{}",
            GetLastError()
        );
        assert_eq!(QueryMemoryResourceNotification(high, &mut h), TRUE);
        assert!(l == 0 || l == 1);
        assert!(!(l == TRUE && h == TRUE), "never both");
        // Windows' thresholds from /proc/meminfo, read here (allowing for drift meanwhile).
        let total = meminfo("MemTotal");
        let avail = meminfo("MemAvailable");
        let low_t = (total / 128).min(64 << 20);
        let s = virtmem::memory_resource_state().unwrap();
        assert_eq!(s.low_threshold, low_t);
        assert_eq!(s.high_threshold, 3 * low_t);
        let thrashing = s.full_pressure.is_some_and(|p| p >= 10.0);
        if avail > 6 * low_t && !thrashing {
            assert_eq!((l, h), (FALSE, TRUE), "plenty available: high");
        }
        if avail < low_t / 2 {
            assert_eq!((l, h), (TRUE, FALSE), "little available: low");
        }
        // NULL state → 998; another object's handle and closed handles → 6.
        assert_eq!(QueryMemoryResourceNotification(low, null_mut()), FALSE);
        assert_eq!(GetLastError(), ERROR_NOACCESS);
        let section = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x1000,
            null(),
        );
        assert!(!section.is_null());
        assert_eq!(QueryMemoryResourceNotification(section, &mut l), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(CloseHandle(section), TRUE);
        assert_eq!(CloseHandle(low), TRUE);
        assert_eq!(QueryMemoryResourceNotification(low, &mut l), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(CloseHandle(low), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(QueryMemoryResourceNotification(null_mut(), &mut l), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(CloseHandle(high), TRUE);
    }
}

fn cpu_has_nx() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|w| w == "nx"))
}

fn dep_flags() -> (BOOL, u32, BOOL) {
    let (mut f, mut p) = (0xFFu32, -1);
    let ok = unsafe { GetProcessDEPPolicy(GetCurrentProcess(), &mut f, &mut p) };
    (ok, f, p)
}

#[test]
fn dep_answers_agree_with_the_processor_and_the_personality() {
    let nx = cpu_has_nx();
    assert_eq!(
        GetSystemDEPPolicy(),
        if nx {
            DEPPolicyOptOut
        } else {
            DEPPolicyAlwaysOff
        }
    );
    let rie = unsafe { libc::personality(0xffff_ffff) } as u32 & 0x0040_0000 != 0;
    let want = if nx && !rie {
        PROCESS_DEP_ENABLE | PROCESS_DEP_DISABLE_ATL_THUNK_EMULATION
    } else {
        0
    };
    assert_eq!(dep_flags(), (TRUE, want, TRUE));
    assert_eq!(virtmem::dep_status().enforced(), want != 0);
    unsafe {
        SetLastError(0);
        assert_eq!(SetProcessDEPPolicy(PROCESS_DEP_ENABLE), FALSE);
        assert_eq!(GetLastError(), ERROR_NOT_SUPPORTED);
        let mut f = 0;
        assert_eq!(
            GetProcessDEPPolicy(GetCurrentProcess(), &mut f, null_mut()),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOACCESS);
        assert_eq!(GetProcessDEPPolicy(null_mut(), &mut f, &mut 0), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
    // A child with READ_IMPLIES_EXEC has no DEP.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let cur = unsafe { libc::personality(0xffff_ffff) } as u32;
        unsafe { libc::personality((cur | 0x0040_0000) as libc::c_ulong) };
        let code = if dep_flags() == (TRUE, 0, TRUE) { 0 } else { 1 };
        unsafe { libc::_exit(code) };
    }
    let mut st = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st:#x}");
}

#[test]
fn rtl_memory_routines() {
    unsafe {
        let mut b: Vec<u8> = (0..64).collect();
        RtlZeroMemory(b.as_mut_ptr().add(4).cast(), 8);
        assert_eq!(&b[3..13], &[3, 0, 0, 0, 0, 0, 0, 0, 0, 12]);
        RtlFillMemory(b.as_mut_ptr().cast(), 3, 0xEE);
        assert_eq!(&b[..5], &[0xEE, 0xEE, 0xEE, 3, 0]);
        // Overlapping moves, both directions.
        let mut m: Vec<u8> = (0..32).collect();
        RtlMoveMemory(m.as_mut_ptr().add(4).cast(), m.as_ptr().cast(), 16);
        assert_eq!(&m[4..20], &(0..16).collect::<Vec<u8>>()[..]);
        let mut m: Vec<u8> = (0..32).collect();
        RtlMoveMemory(m.as_mut_ptr().cast(), m.as_ptr().add(4).cast(), 16);
        assert_eq!(&m[..16], &(4..20).collect::<Vec<u8>>()[..]);
        let src = [9u8; 10];
        let mut dst = [0u8; 10];
        RtlCopyMemory(dst.as_mut_ptr().cast(), src.as_ptr().cast(), 10);
        assert_eq!(dst, src);
        let mut secret = [0x42u8; 33];
        let r = RtlSecureZeroMemory(secret.as_mut_ptr().cast(), secret.len());
        assert_eq!(r, secret.as_mut_ptr().cast());
        assert!(secret.iter().all(|&x| x == 0));
        let (x, mut y) = ([1u8, 2, 3, 4, 5], [1u8, 2, 3, 4, 5]);
        assert_eq!(RtlCompareMemory(x.as_ptr().cast(), y.as_ptr().cast(), 5), 5);
        y[3] = 0;
        assert_eq!(RtlCompareMemory(x.as_ptr().cast(), y.as_ptr().cast(), 5), 3);
        assert_eq!(RtlCompareMemory(x.as_ptr().cast(), y.as_ptr().cast(), 0), 0);
        // Length 0 touches nothing, whatever the pointers.
        RtlZeroMemory(null_mut(), 0);
        RtlMoveMemory(null_mut(), null(), 0);
        RtlFillMemory(null_mut(), 0, 1);
    }
}
