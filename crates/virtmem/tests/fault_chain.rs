//! The fault handler as a good citizen: faults that are not virtmem's reach the handler that
//! was installed before (with the original siginfo, honouring its flags and mask) or the
//! default action (the process dies of the signal, also for SIGBUS and for signals sent with
//! `kill`/`raise`); a disagreement between bookkeeping and kernel ends in the default action
//! instead of a retry loop; `errno` is the same after a handled fault as before it, with and
//! without PROCMAP_QUERY.
//!
//! Each test runs in a child process (the test binary runs itself with `--exact NAME`), with
//! a time limit: a handler that loops shows as a timeout, not as a hung test run.

use std::ffi::c_void;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::ptr::null;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use virtmem::win32::*;
use virtmem::WatchKind;

const P: usize = 4096;
const CHILD: &str = "VIRTMEM_FAULT_CHAIN_CHILD";

fn in_child(name: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(name)
}

/// Runs test `name` in a child process (with extra environment `env`) and returns how it
/// ended and what it printed. Fails the test if the child runs longer than 60 s.
fn run_child(name: &str, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{name}: the child hung (a fault loop?)\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (status, text)
}

/// A committed guard page: listing it installs virtmem's handler.
fn guard_page() -> *mut u8 {
    let g = unsafe {
        VirtualAlloc(
            null(),
            P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE | PAGE_GUARD,
        )
    } as *mut u8;
    assert!(!g.is_null());
    assert!(virtmem::engine::fault::handler_installed());
    g
}

/// A page mapped directly with libc, at protection `prot`.
fn foreign_page(prot: i32) -> *mut u8 {
    let f = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            P,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(f, libc::MAP_FAILED);
    f as *mut u8
}

fn errno() -> i32 {
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: i32) {
    unsafe { *libc::__errno_location() = v };
}

unsafe fn install(sig: i32, handler: usize, flags: i32, mask: &[i32]) {
    let mut sa: libc::sigaction = std::mem::zeroed();
    sa.sa_sigaction = handler;
    sa.sa_flags = flags;
    libc::sigemptyset(&mut sa.sa_mask);
    for &s in mask {
        libc::sigaddset(&mut sa.sa_mask, s);
    }
    assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
}

// ----- the default action ------------------------------------------------------------------

/// No handler before virtmem's: Rust's runtime installs one for stack overflows (which
/// resets itself to SIG_DFL and returns for other faults); take it away so virtmem's own
/// default-action path is what runs.
fn no_previous_handler() {
    unsafe {
        install(libc::SIGSEGV, libc::SIG_DFL, 0, &[]);
        install(libc::SIGBUS, libc::SIG_DFL, 0, &[]);
    }
}

#[test]
fn an_unrelated_segfault_kills_with_sigsegv() {
    const NAME: &str = "an_unrelated_segfault_kills_with_sigsegv";
    if in_child(NAME) {
        no_previous_handler();
        let _ = guard_page();
        let f = foreign_page(libc::PROT_NONE);
        unsafe { std::ptr::write_volatile(f, 1) };
        unreachable!("the write must end the process");
    }
    let (status, text) = run_child(NAME, &[]);
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}\n{text}");
}

#[test]
fn an_unrelated_sigbus_kills_with_sigbus() {
    const NAME: &str = "an_unrelated_sigbus_kills_with_sigbus";
    if in_child(NAME) {
        no_previous_handler();
        let _ = guard_page();
        // A shared mapping of an empty file: touching it is SIGBUS (BUS_ADRERR).
        let fd = unsafe { libc::memfd_create(c"virtmem-sigbus".as_ptr(), 0) };
        assert!(fd >= 0);
        let m = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                P,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(m, libc::MAP_FAILED);
        unsafe { std::ptr::write_volatile(m as *mut u8, 1) };
        unreachable!("the write must end the process");
    }
    let (status, text) = run_child(NAME, &[]);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}\n{text}");
}

#[test]
fn a_raised_sigsegv_kills() {
    const NAME: &str = "a_raised_sigsegv_kills";
    if in_child(NAME) {
        no_previous_handler();
        let _ = guard_page();
        // Returning from the handler would not send it again: it must be re-raised.
        unsafe { libc::raise(libc::SIGSEGV) };
        println!("SURVIVED");
        std::process::exit(0);
    }
    let (status, text) = run_child(NAME, &[]);
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}\n{text}");
    assert!(!text.contains("SURVIVED"));
}

#[test]
fn a_sigbus_sent_with_kill_kills() {
    const NAME: &str = "a_sigbus_sent_with_kill_kills";
    if in_child(NAME) {
        no_previous_handler();
        let _ = guard_page();
        unsafe { libc::kill(libc::getpid(), libc::SIGBUS) };
        // Delivery to this process may land on another thread: give it a moment.
        std::thread::sleep(Duration::from_secs(5));
        println!("SURVIVED");
        std::process::exit(0);
    }
    let (status, text) = run_child(NAME, &[]);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}\n{text}");
}

#[test]
fn a_sent_sigsegv_stays_ignored_when_it_was_ignored() {
    const NAME: &str = "a_sent_sigsegv_stays_ignored_when_it_was_ignored";
    if in_child(NAME) {
        unsafe { install(libc::SIGSEGV, libc::SIG_IGN, 0, &[]) };
        let _ = guard_page();
        unsafe { libc::raise(libc::SIGSEGV) };
        println!("IGNORED-OK");
        return;
    }
    let (status, text) = run_child(NAME, &[]);
    assert!(
        status.success() && text.contains("IGNORED-OK"),
        "{status:?}\n{text}"
    );
}

// ----- chaining ------------------------------------------------------------------------------

static SEEN_ADDR: AtomicUsize = AtomicUsize::new(0);
static SEEN_CODE: AtomicI32 = AtomicI32::new(0);
static SEEN_CTX: AtomicUsize = AtomicUsize::new(0);
static SEEN_CALLS: AtomicUsize = AtomicUsize::new(0);
static SEEN_MASKED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn siginfo_handler(_sig: i32, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    SEEN_CALLS.fetch_add(1, Ordering::SeqCst);
    let addr = unsafe { (*info).si_addr() } as usize;
    SEEN_ADDR.store(addr, Ordering::SeqCst);
    SEEN_CODE.store(unsafe { (*info).si_code }, Ordering::SeqCst);
    SEEN_CTX.store(ctx as usize, Ordering::SeqCst);
    // Which of SIGUSR1 (in its sa_mask) and SIGSEGV (no SA_NODEFER) are blocked now.
    let mut cur: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) };
    let masked = unsafe {
        usize::from(libc::sigismember(&cur, libc::SIGUSR1) == 1)
            | usize::from(libc::sigismember(&cur, libc::SIGSEGV) == 1) << 1
    };
    SEEN_MASKED.store(masked, Ordering::SeqCst);
    unsafe {
        libc::mprotect(
            (addr & !(P - 1)) as *mut c_void,
            P,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
}

#[test]
fn a_previous_siginfo_handler_receives_the_original_siginfo() {
    const NAME: &str = "a_previous_siginfo_handler_receives_the_original_siginfo";
    if in_child(NAME) {
        unsafe {
            install(
                libc::SIGSEGV,
                siginfo_handler as *const () as usize,
                libc::SA_SIGINFO,
                &[libc::SIGUSR1],
            )
        };
        // SAFETY: the handler does nothing but continue.
        unsafe { virtmem::set_guard_page_handler(Some(Box::new(|_| true))) };
        let g = guard_page();
        let f = foreign_page(libc::PROT_NONE);
        let target = unsafe { f.add(123) };
        unsafe { std::ptr::write_volatile(target, 7) };
        assert_eq!(SEEN_CALLS.load(Ordering::SeqCst), 1);
        assert_eq!(SEEN_ADDR.load(Ordering::SeqCst), target as usize);
        assert_eq!(SEEN_CODE.load(Ordering::SeqCst), 2, "SEGV_ACCERR");
        assert_ne!(
            SEEN_CTX.load(Ordering::SeqCst),
            0,
            "the context is passed on"
        );
        assert_eq!(
            SEEN_MASKED.load(Ordering::SeqCst),
            0b11,
            "sa_mask and the signal"
        );
        // After the call the mask is ours again.
        let mut cur: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) };
        assert_eq!(unsafe { libc::sigismember(&cur, libc::SIGUSR1) }, 0);
        // Our own guard page is still ours.
        unsafe { std::ptr::write_volatile(g, 1) };
        assert_eq!(SEEN_CALLS.load(Ordering::SeqCst), 1);
        println!("CHAIN-OK");
        return;
    }
    let (status, text) = run_child(NAME, &[]);
    assert!(
        status.success() && text.contains("CHAIN-OK"),
        "{status:?}\n{text}"
    );
}

static PLAIN_PAGE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn plain_handler(sig: i32) {
    assert_eq!(sig, libc::SIGSEGV);
    SEEN_CALLS.fetch_add(1, Ordering::SeqCst);
    let p = PLAIN_PAGE.load(Ordering::SeqCst);
    unsafe { libc::mprotect(p as *mut c_void, P, libc::PROT_READ | libc::PROT_WRITE) };
}

#[test]
fn a_previous_plain_handler_with_sa_resethand_runs_once() {
    const NAME: &str = "a_previous_plain_handler_with_sa_resethand_runs_once";
    if in_child(NAME) {
        unsafe {
            install(
                libc::SIGSEGV,
                plain_handler as *const () as usize,
                libc::SA_RESETHAND,
                &[],
            )
        };
        let _ = guard_page();
        let f = foreign_page(libc::PROT_NONE);
        PLAIN_PAGE.store(f as usize, Ordering::SeqCst);
        unsafe { std::ptr::write_volatile(f, 1) };
        assert_eq!(SEEN_CALLS.load(Ordering::SeqCst), 1);
        println!("FIRST-OK");
        // The handler was reset by its first delivery: the second fault is the default.
        let f2 = foreign_page(libc::PROT_NONE);
        PLAIN_PAGE.store(f2 as usize, Ordering::SeqCst);
        unsafe { std::ptr::write_volatile(f2, 1) };
        println!("SURVIVED");
        std::process::exit(0);
    }
    let (status, text) = run_child(NAME, &[]);
    assert!(text.contains("FIRST-OK"), "{status:?}\n{text}");
    assert!(!text.contains("SURVIVED"), "{text}");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}\n{text}");
}

// ----- bookkeeping and kernel disagree: no retry loop ----------------------------------------

/// Two pages: page 0 guarded (the allocation is then listed for the handler), page 1 plain
/// read-write in the bookkeeping, but given `prot` behind virtmem's back.
fn disagreeing_page(prot: i32) -> *mut u8 {
    let b =
        unsafe { VirtualAlloc(null(), 2 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) } as *mut u8;
    assert!(!b.is_null());
    let mut old = 0;
    assert_eq!(
        unsafe { VirtualProtect(b as _, P, PAGE_READWRITE | PAGE_GUARD, &mut old) },
        TRUE
    );
    assert!(virtmem::engine::fault::handler_installed());
    let p1 = unsafe { b.add(P) };
    assert_eq!(unsafe { libc::mprotect(p1 as _, P, prot) }, 0);
    p1
}

#[test]
fn a_page_the_kernel_refuses_is_not_retried_forever() {
    const NAME: &str = "a_page_the_kernel_refuses_is_not_retried_forever";
    if in_child(NAME) {
        let p = disagreeing_page(libc::PROT_NONE);
        unsafe { std::ptr::write_volatile(p, 1) };
        println!("SURVIVED");
        std::process::exit(0);
    }
    // PROCMAP_QUERY sees PROT_NONE: no retry at all. The fallback probe sees it unreadable.
    for env in [&[][..], &[("VIRTMEM_NO_PROCMAP_QUERY", "1")][..]] {
        let (status, text) = run_child(NAME, env);
        assert_eq!(
            status.signal(),
            Some(libc::SIGSEGV),
            "{env:?} {status:?}\n{text}"
        );
    }
}

#[test]
fn retries_the_probe_cannot_rule_out_are_bounded() {
    const NAME: &str = "retries_the_probe_cannot_rule_out_are_bounded";
    if in_child(NAME) {
        // Readable but not writable: the fallback probe cannot tell whether a write may pass,
        // so the handler retries, a bounded number of times.
        let p = disagreeing_page(libc::PROT_READ);
        unsafe { std::ptr::write_volatile(p, 1) };
        println!("SURVIVED");
        std::process::exit(0);
    }
    for env in [&[][..], &[("VIRTMEM_NO_PROCMAP_QUERY", "1")][..]] {
        let (status, text) = run_child(NAME, env);
        assert_eq!(
            status.signal(),
            Some(libc::SIGSEGV),
            "{env:?} {status:?}\n{text}"
        );
    }
}

// ----- errno ---------------------------------------------------------------------------------

const SENTINEL: i32 = 4242;

extern "C" fn errno_clobbering_handler(_sig: i32, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    SEEN_CALLS.fetch_add(1, Ordering::SeqCst);
    let addr = unsafe { (*info).si_addr() } as usize;
    unsafe {
        libc::mprotect(
            (addr & !(P - 1)) as *mut c_void,
            P,
            libc::PROT_READ | libc::PROT_WRITE,
        );
        libc::close(-1);
    }
}

#[test]
fn errno_is_unchanged_by_handled_faults() {
    const NAME: &str = "errno_is_unchanged_by_handled_faults";
    if in_child(NAME) {
        // The handler installed before virtmem's changes errno (a failing system call).
        unsafe {
            install(
                libc::SIGSEGV,
                errno_clobbering_handler as *const () as usize,
                libc::SA_SIGINFO,
                &[],
            )
        };
        // So does the guard callback.
        // SAFETY: close(-1) is async-signal-safe (it only sets errno).
        unsafe {
            virtmem::set_guard_page_handler(Some(Box::new(|_| {
                libc::close(-1);
                true
            })))
        };
        virtmem::set_write_watch_mode(WatchKind::Signal);
        let g = guard_page() as usize;
        let w = unsafe {
            VirtualAlloc(
                null(),
                4 * P,
                MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
                PAGE_READWRITE,
            )
        } as usize;
        assert_ne!(w, 0);
        let f = foreign_page(libc::PROT_NONE) as usize;
        std::thread::spawn(move || {
            set_errno(SENTINEL - 1);
            unsafe { std::ptr::write_volatile(f as *mut u8, 1) };
            assert_eq!(SEEN_CALLS.load(Ordering::SeqCst), 1);
            assert_eq!(
                errno(),
                SENTINEL - 1,
                "a fault passed to the previous handler"
            );
            set_errno(SENTINEL);
            unsafe { std::ptr::write_volatile(g as *mut u8, 1) };
            assert_eq!(errno(), SENTINEL, "guard page");
            for i in 0..4 {
                set_errno(SENTINEL + i as i32);
                unsafe { std::ptr::write_volatile((w + i * P) as *mut u8, 1) };
                assert_eq!(errno(), SENTINEL + i as i32, "write-watched page {i}");
            }
            let mut addrs = [0usize; 8];
            let mut n = addrs.len();
            let mut gran = 0u32;
            let r = unsafe {
                GetWriteWatch(
                    WRITE_WATCH_FLAG_RESET,
                    w as _,
                    4 * P,
                    addrs.as_mut_ptr() as _,
                    &mut n,
                    &mut gran,
                )
            };
            assert_eq!((r, n), (0, 4), "every write was recorded");
            set_errno(SENTINEL);
            unsafe { std::ptr::write_volatile((w + P) as *mut u8, 2) };
            assert_eq!(errno(), SENTINEL, "write-watched page after reset");
        })
        .join()
        .unwrap();
        println!("ERRNO-OK");
        return;
    }
    for env in [&[][..], &[("VIRTMEM_NO_PROCMAP_QUERY", "1")][..]] {
        let (status, text) = run_child(NAME, env);
        assert!(
            status.success() && text.contains("ERRNO-OK"),
            "{env:?} {status:?}\n{text}"
        );
    }
}
