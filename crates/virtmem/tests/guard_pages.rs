//! PAGE_GUARD (`windows-cases.md` §I, and case 108 with write watch): accepted, reported,
//! enforced as a one-shot violation; handlers; the unhandled case; chaining to the handlers
//! installed before virtmem's.

use std::ffi::c_void;
use std::process::Command;
use std::ptr::null;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use virtmem::win32::*;
use virtmem::{Access, GuardViolation};

const P: usize = 4096;

static HITS: AtomicUsize = AtomicUsize::new(0);
static LAST_ADDR: AtomicUsize = AtomicUsize::new(0);
static LAST_ACCESS: AtomicUsize = AtomicUsize::new(99);
/// Tests share the process-wide handler and the counters.
static SERIAL: Mutex<()> = Mutex::new(());

fn counting_handler() {
    // SAFETY: the handler only uses atomics and memory it owns.
    unsafe {
        virtmem::set_guard_page_handler(Some(Box::new(|v: &GuardViolation| {
            HITS.fetch_add(1, Ordering::SeqCst);
            LAST_ADDR.store(v.address, Ordering::SeqCst);
            LAST_ACCESS.store(v.access.win32() as usize, Ordering::SeqCst);
            true
        })))
    };
}

fn vq(p: *const u8) -> MEMORY_BASIC_INFORMATION {
    let mut mbi = MEMORY_BASIC_INFORMATION::default();
    assert_ne!(
        unsafe { VirtualQuery(p as _, &mut mbi, size_of_val(&mbi)) },
        0
    );
    mbi
}

#[test]
fn cases_109_111_one_shot_violation_and_what_virtualquery_shows() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    counting_handler();
    let b = unsafe {
        VirtualAlloc(
            null(),
            P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE | PAGE_GUARD,
        )
    } as *mut u8;
    assert!(!b.is_null());
    let m = vq(b);
    assert_eq!(
        (
            m.AllocationProtect,
            m.RegionSize,
            m.State,
            m.Protect,
            m.Type
        ),
        (0x104, P, MEM_COMMIT, 0x104, MEM_PRIVATE),
        "case 109"
    );
    let before = HITS.load(Ordering::SeqCst);
    // A read: one violation, then the access is retried and succeeds.
    let v = unsafe { std::ptr::read_volatile(b.add(16)) };
    assert_eq!(v, 0);
    assert_eq!(HITS.load(Ordering::SeqCst), before + 1);
    assert_eq!(LAST_ADDR.load(Ordering::SeqCst), b as usize + 16);
    assert_eq!(
        LAST_ACCESS.load(Ordering::SeqCst),
        Access::Read.win32() as usize
    );
    // One shot: no more violations.
    unsafe { std::ptr::write_volatile(b, 5) };
    assert_eq!(HITS.load(Ordering::SeqCst), before + 1);
    let m = vq(b);
    assert_eq!(
        (m.Protect, m.AllocationProtect),
        (PAGE_READWRITE, 0x104),
        "case 111"
    );
    // Re-arm with VirtualProtect: old = RW; a write raises it, as a write.
    let mut old = 0;
    assert_eq!(
        unsafe { VirtualProtect(b as _, P, PAGE_READWRITE | PAGE_GUARD, &mut old) },
        TRUE
    );
    assert_eq!(old, PAGE_READWRITE);
    assert_eq!(vq(b).Protect, 0x104);
    unsafe { std::ptr::write_volatile(b.add(8), 9) };
    assert_eq!(HITS.load(Ordering::SeqCst), before + 2);
    assert_eq!(
        LAST_ACCESS.load(Ordering::SeqCst),
        Access::Write.win32() as usize
    );
    assert_eq!(unsafe { *b.add(8) }, 9);
    // VirtualProtect reports the guard gone after it fired.
    assert_eq!(
        unsafe { VirtualProtect(b as _, P, PAGE_READONLY, &mut old) },
        TRUE
    );
    assert_eq!(old, PAGE_READWRITE);
    assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn guard_runs_split_as_pages_fire() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    counting_handler();
    let b = unsafe {
        VirtualAlloc(
            null(),
            8 * P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READONLY | PAGE_GUARD,
        )
    } as *mut u8;
    let _ = unsafe { std::ptr::read_volatile(b.add(3 * P)) };
    let m = vq(b);
    assert_eq!((m.RegionSize, m.Protect), (3 * P, 0x102));
    let m = vq(unsafe { b.add(3 * P) });
    assert_eq!((m.RegionSize, m.Protect), (P, PAGE_READONLY));
    let m = vq(unsafe { b.add(4 * P) });
    assert_eq!((m.RegionSize, m.Protect), (4 * P, 0x102));
    // Decommit and recommit without the guard: plain pages.
    assert_eq!(unsafe { VirtualFree(b as _, 8 * P, MEM_DECOMMIT) }, TRUE);
    assert!(!unsafe { VirtualAlloc(b as _, 8 * P, MEM_COMMIT, PAGE_READWRITE) }.is_null());
    let m = vq(b);
    assert_eq!(
        (m.RegionSize, m.Protect, m.AllocationProtect),
        (8 * P, PAGE_READWRITE, 0x102)
    );
    assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn cases_113_114_virtuallock_on_a_guard_page() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    counting_handler();
    let b = unsafe {
        VirtualAlloc(
            null(),
            P,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE | PAGE_GUARD,
        )
    } as *mut u8;
    assert!(!b.is_null());
    let hits = HITS.load(Ordering::SeqCst);
    unsafe {
        SetLastError(0);
        assert_eq!(VirtualLock(b as _, P), FALSE);
        assert_eq!(GetLastError(), 0x8000_0001, "case 113");
    }
    assert_eq!(
        HITS.load(Ordering::SeqCst),
        hits,
        "VirtualLock does not raise the violation"
    );
    assert_eq!(
        vq(b).Protect,
        PAGE_READWRITE,
        "the failing lock removed the guard"
    );
    let mut arr = [std::ptr::null_mut::<c_void>(); 4];
    let (mut cnt, mut gran) = (4usize, 0u32);
    assert_eq!(
        unsafe { GetWriteWatch(0, b as _, P, arr.as_mut_ptr(), &mut cnt, &mut gran) },
        0
    );
    assert_eq!(cnt, 0, "case 114: the failing lock is not a write");
    assert_eq!(unsafe { VirtualLock(b as _, P) }, TRUE);
    cnt = 4;
    assert_eq!(
        unsafe {
            GetWriteWatch(
                WRITE_WATCH_FLAG_RESET,
                b as _,
                P,
                arr.as_mut_ptr(),
                &mut cnt,
                &mut gran,
            )
        },
        0
    );
    assert_eq!(
        (cnt, arr[0] as usize),
        (1, b as usize),
        "case 114: the successful lock is"
    );
    assert_eq!(unsafe { VirtualUnlock(b as _, P) }, TRUE);
    assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn case_108_guard_with_write_watch() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    counting_handler();
    for kind in [virtmem::WatchKind::Signal, virtmem::WatchKind::Kernel] {
        virtmem::set_write_watch_mode(kind);
        let b = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
                PAGE_READWRITE | PAGE_GUARD,
            )
        } as *mut u8;
        let m = vq(b);
        assert_eq!(
            (m.AllocationProtect, m.Protect, m.RegionSize),
            (0x104, 0x104, P)
        );
        let mut arr = [std::ptr::null_mut::<c_void>(); 4];
        let (mut cnt, mut gran) = (4usize, 0u32);
        assert_eq!(
            unsafe { GetWriteWatch(0, b as _, P, arr.as_mut_ptr(), &mut cnt, &mut gran) },
            0
        );
        assert_eq!(cnt, 0);
        let hits = HITS.load(Ordering::SeqCst);
        unsafe {
            std::ptr::write_volatile(b, 1);
            std::ptr::write_volatile(b.add(1), 2);
        }
        assert_eq!(
            HITS.load(Ordering::SeqCst),
            hits + 1,
            "{kind:?}: two writes, one violation"
        );
        cnt = 4;
        assert_eq!(
            unsafe {
                GetWriteWatch(
                    WRITE_WATCH_FLAG_RESET,
                    b as _,
                    P,
                    arr.as_mut_ptr(),
                    &mut cnt,
                    &mut gran,
                )
            },
            0
        );
        assert_eq!((cnt, arr[0] as usize), (1, b as usize), "{kind:?}");
        // Re-guard; a read that hits the guard does not mark the page written.
        let mut old = 0;
        assert_eq!(
            unsafe { VirtualProtect(b as _, P, PAGE_READWRITE | PAGE_GUARD, &mut old) },
            TRUE
        );
        let _ = unsafe { std::ptr::read_volatile(b) };
        assert_eq!(HITS.load(Ordering::SeqCst), hits + 2);
        cnt = 4;
        assert_eq!(
            unsafe { GetWriteWatch(0, b as _, P, arr.as_mut_ptr(), &mut cnt, &mut gran) },
            0
        );
        assert_eq!(cnt, 0, "{kind:?}: a read is not a write");
        assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
    }
    virtmem::set_write_watch_mode(virtmem::WatchKind::Kernel);
}

#[test]
fn case_116_executing_a_guard_page() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    counting_handler();
    let b = unsafe { VirtualAlloc(null(), P, MEM_RESERVE | MEM_COMMIT, PAGE_EXECUTE_READWRITE) }
        as *mut u8;
    // x86-64: `ret`.
    unsafe { *b = 0xC3 };
    let mut old = 0;
    assert_eq!(
        unsafe { VirtualProtect(b as _, P, PAGE_EXECUTE_READ | PAGE_GUARD, &mut old) },
        TRUE
    );
    let hits = HITS.load(Ordering::SeqCst);
    let f: extern "C" fn() = unsafe { std::mem::transmute(b) };
    f();
    assert_eq!(HITS.load(Ordering::SeqCst), hits + 1);
    assert_eq!(
        LAST_ACCESS.load(Ordering::SeqCst),
        Access::Execute.win32() as usize
    );
    assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn guard_modifier_rules() {
    unsafe {
        SetLastError(0);
        assert!(VirtualAlloc(
            null(),
            P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_NOACCESS | PAGE_GUARD
        )
        .is_null());
        assert_eq!(GetLastError(), 87);
        let b = VirtualAlloc(null(), P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        let mut old = 0;
        SetLastError(0);
        assert_eq!(
            VirtualProtectFromApp(b, P, PAGE_GUARD, &mut old),
            FALSE,
            "case 50"
        );
        assert_eq!(GetLastError(), 87);
        // Reserve-only with a guard protection: AllocationProtect keeps it, pages are reserved.
        let r = VirtualAlloc(null(), 0x10000, MEM_RESERVE, PAGE_READWRITE | PAGE_GUARD);
        let m = vq(r as _);
        assert_eq!(
            (m.AllocationProtect, m.State, m.Protect),
            (0x104, MEM_RESERVE, 0)
        );
        VirtualFree(r, 0, MEM_RELEASE);
        VirtualFree(b, 0, MEM_RELEASE);
    }
}

// ----- tests that need a fresh process ------------------------------------------------------

/// Runs this test binary again with only `test` and `VIRTMEM_GUARD_CHILD=1`.
fn child(test: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("VIRTMEM_GUARD_CHILD", "1")
        .output()
        .unwrap()
}

fn in_child() -> bool {
    std::env::var_os("VIRTMEM_GUARD_CHILD").is_some()
}

#[test]
fn unhandled_violation_prints_and_aborts() {
    if in_child() {
        // SAFETY: the handler only uses atomics and memory it owns.
        unsafe { virtmem::set_guard_page_handler(None) };
        let b = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        } as *mut u8;
        unsafe { std::ptr::write_volatile(b, 1) };
        unreachable!("the violation must end the process");
    }
    let out = child("unhandled_violation_prints_and_aborts");
    let err = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{err}");
    assert!(err.contains("guard page violation at 0x"), "{err}");
}

#[test]
fn a_handler_that_declines_ends_the_process() {
    if in_child() {
        // SAFETY: the handler only uses atomics and memory it owns.
        unsafe { virtmem::set_guard_page_handler(Some(Box::new(|_| false))) };
        let b = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        } as *mut u8;
        let _ = unsafe { std::ptr::read_volatile(b) };
        unreachable!();
    }
    let out = child("a_handler_that_declines_ends_the_process");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
}

static FOREIGN_HITS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn foreign_handler(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    FOREIGN_HITS.fetch_add(1, Ordering::SeqCst);
    let addr = unsafe { (*info).si_addr() } as usize & !(P - 1);
    unsafe { libc::mprotect(addr as _, P, libc::PROT_READ | libc::PROT_WRITE) };
}

#[test]
fn faults_that_are_not_ours_reach_the_previous_handler() {
    if in_child() {
        // Installed before virtmem's handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = foreign_handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
        }
        counting_handler();
        let g = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        } as *mut u8;
        assert!(virtmem::engine::fault::handler_installed());
        // A foreign PROT_NONE page: the fault goes to the foreign handler.
        let f = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                P,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        } as *mut u8;
        unsafe { std::ptr::write_volatile(f, 1) };
        assert_eq!(FOREIGN_HITS.load(Ordering::SeqCst), 1);
        // Our guard page still goes to ours.
        unsafe { std::ptr::write_volatile(g, 1) };
        assert_eq!(HITS.load(Ordering::SeqCst), 1);
        assert_eq!(FOREIGN_HITS.load(Ordering::SeqCst), 1);
        println!("CHAIN-OK");
        return;
    }
    let out = child("faults_that_are_not_ours_reach_the_previous_handler");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("CHAIN-OK"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rust_stack_overflow_reports_still_work() {
    if in_child() {
        let b = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        };
        assert!(!b.is_null() && virtmem::engine::fault::handler_installed());
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                #[allow(unconditional_recursion)]
                fn recurse(n: u64) -> u64 {
                    let buf = std::hint::black_box([n; 64]);
                    recurse(n + buf[3]) + 1
                }
                recurse(1)
            })
            .unwrap()
            .join()
            .ok();
        unreachable!();
    }
    let out = child("rust_stack_overflow_reports_still_work");
    let err = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert!(err.contains("has overflowed its stack"), "{err}");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
}

#[test]
fn a_plain_segfault_still_kills_the_process() {
    if in_child() {
        let b = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        };
        assert!(!b.is_null());
        let r = unsafe { VirtualAlloc(null(), P, MEM_RESERVE, PAGE_READWRITE) } as *mut u8;
        // A reserved page: Windows raises an access violation; here the process dies of SIGSEGV.
        unsafe { std::ptr::write_volatile(r, 1) };
        unreachable!();
    }
    let out = child("a_plain_segfault_still_kills_the_process");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV));
}

#[test]
fn threads_hitting_one_guard_page_raise_one_violation() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    counting_handler();
    for _ in 0..20 {
        let b = unsafe {
            VirtualAlloc(
                null(),
                P,
                MEM_RESERVE | MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        } as usize;
        let before = HITS.load(Ordering::SeqCst);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(move || unsafe { std::ptr::read_volatile(b as *const u8) });
            }
        });
        assert_eq!(HITS.load(Ordering::SeqCst), before + 1);
        unsafe { VirtualFree(b as _, 0, MEM_RELEASE) };
    }
}
