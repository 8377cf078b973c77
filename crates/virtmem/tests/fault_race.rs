//! Faults racing the operations that give pages away: the fault handler must only ever change
//! pages its allocation still owns.
//!
//! Threads write to guard pages and signal-watched pages (and to placeholders and an AWE
//! window) while other threads release, decommit, re-protect, reset write watch, split,
//! replace, preserve and coalesce placeholders, and map and unmap AWE pages on the same
//! allocations, and another thread keeps reserving new memory (so released ranges are reused).
//! After each release the releasing thread maps "canary" pages of its own (libc `mmap`,
//! PROT_NONE and PROT_READ: what an armed guard page and a clean watched page look like) into
//! the freed range. The canaries must keep their protection to the end (checked through
//! `/proc/self/maps`, periodically and at the end), and placeholder pages must stay
//! inaccessible: a handler acting for an allocation that was released while it waited would
//! change them.
//!
//! Writers may hit memory that is gone: they write through a probe (x86-64 inline assembly)
//! that a SIGSEGV/SIGBUS handler installed *before* virtmem's resumes after the faulting
//! instruction, so every fault virtmem passes on ends there. The test passes however the
//! threads interleave; how much it exercises depends on timing. Iterations: a few seconds in
//! debug by default, `VIRTMEM_STRESS_ITERS=n` for more.

#![cfg(target_arch = "x86_64")]

use std::ffi::c_void;
use std::process::Command;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use virtmem::win32::*;
use virtmem::WatchKind;

const P: usize = 4096;
const G: usize = 0x10000;
const CHILD: &str = "VIRTMEM_FAULT_RACE_CHILD";
const MAGIC: u64 = 0x5649_5254_4d45_4d21;

// ----- the recoverable write -----------------------------------------------------------------

/// Writes `v` at `p`; false if the write faulted and nobody (virtmem) made it succeed.
fn probe_write(p: usize, v: u8) -> bool {
    let faulted: u64;
    // SAFETY: the store may fault; `recover` (installed before virtmem's handler, which passes
    // on every fault that is not its own) then resumes at label 2 with rax = 1. r10 marks the
    // probe and is cleared on the way out, r11 holds the resume address.
    unsafe {
        std::arch::asm!(
            "lea r11, [rip + 2f]",
            "mov r10, {magic}",
            "xor eax, eax",
            "mov byte ptr [{p}], {v}",
            "2:",
            "xor r10d, r10d",
            p = in(reg) p,
            v = in(reg_byte) v,
            magic = const MAGIC,
            out("rax") faulted,
            out("r10") _,
            out("r11") _,
            options(nostack),
        );
    }
    faulted == 0
}

static RECOVERED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn recover(sig: i32, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: an SA_SIGINFO handler's third argument is the interrupted ucontext.
    let uc = unsafe { &mut *(ctx as *mut libc::ucontext_t) };
    let g = &mut uc.uc_mcontext.gregs;
    if g[libc::REG_R10 as usize] as u64 == MAGIC {
        g[libc::REG_RIP as usize] = g[libc::REG_R11 as usize];
        g[libc::REG_RAX as usize] = 1;
        g[libc::REG_R10 as usize] = 0;
        RECOVERED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // Not a probe: the default action (the access faults again).
    // SAFETY: resetting a disposition.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, null_mut());
    }
}

fn install_recover() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: installing an SA_SIGINFO handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = recover as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(sig, &sa, null_mut()), 0);
        }
    }
}

/// Whether the page at `p` is readable, asked of the kernel without touching it.
fn readable(p: usize) -> bool {
    let mut b = 0u8;
    let local = libc::iovec {
        iov_base: &mut b as *mut u8 as *mut c_void,
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: p as *mut c_void,
        iov_len: 1,
    };
    unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) == 1 }
}

// ----- canaries --------------------------------------------------------------------------------

/// Pages we mapped ourselves into released ranges, with the protection they must keep.
static CANARIES: Mutex<Vec<(usize, i32)>> = Mutex::new(Vec::new());
const MAX_CANARIES: usize = 20_000;

/// Maps canary pages over the released range `[base, base+len)` (where nobody else took it).
fn plant_canaries(base: usize, len: usize) {
    let mut c = CANARIES.lock().unwrap();
    if c.len() >= MAX_CANARIES {
        return;
    }
    for (i, at) in (base..base + len).step_by(P).enumerate() {
        let prot = if i % 2 == 0 {
            libc::PROT_NONE
        } else {
            libc::PROT_READ
        };
        let m = unsafe {
            libc::mmap(
                at as *mut c_void,
                P,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if m == libc::MAP_FAILED {
            continue; // taken already (a new reservation): fine
        }
        assert_eq!(m as usize, at, "MAP_FIXED_NOREPLACE unsupported?");
        c.push((at, prot));
    }
}

fn maps() -> Vec<(usize, usize, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .filter_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (s, e) = range.split_once('-')?;
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
                rest.split(' ').next()?.to_string(),
            ))
        })
        .collect()
}

/// Every canary is still mapped with the protection it was given.
fn check_canaries() -> usize {
    let canaries = CANARIES.lock().unwrap().clone();
    let m = maps();
    for &(at, prot) in &canaries {
        let i = m.partition_point(|v| v.1 <= at);
        let perms = m
            .get(i)
            .filter(|v| v.0 <= at)
            .map(|v| v.2.as_str())
            .unwrap_or("unmapped");
        let want = if prot == libc::PROT_NONE {
            "---p"
        } else {
            "r--p"
        };
        assert_eq!(
            perms, want,
            "canary page {at:#x} (mapped into a released range) changed protection"
        );
    }
    canaries.len()
}

// ----- shared allocations ----------------------------------------------------------------------

const GUARD_PAGES: usize = 8;
const SLOTS: usize = 3;

struct Shared {
    stop: AtomicBool,
    /// Bases of the guarded allocations (GUARD_PAGES pages each).
    guard: [AtomicUsize; SLOTS],
    /// Bases of the signal-watched allocations (GUARD_PAGES pages each).
    watch: [AtomicUsize; SLOTS],
    /// Base of the placeholder area (2 * G).
    ph: AtomicUsize,
    /// Base of the AWE window (GUARD_PAGES pages).
    awe: AtomicUsize,
    writes: AtomicU64,
    faults: AtomicU64,
}

fn new_guarded() -> usize {
    let b = unsafe {
        VirtualAlloc(
            null(),
            GUARD_PAGES * P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE | PAGE_GUARD,
        )
    } as usize;
    assert_ne!(b, 0, "{}", GetLastError());
    b
}

fn new_watched() -> usize {
    let b = unsafe {
        VirtualAlloc(
            null(),
            GUARD_PAGES * P,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        )
    } as usize;
    assert_ne!(b, 0, "{}", GetLastError());
    b
}

fn new_placeholder() -> usize {
    let b = unsafe {
        VirtualAlloc2(
            null_mut(),
            null_mut(),
            2 * G,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        )
    } as usize;
    assert_ne!(b, 0, "{}", GetLastError());
    b
}

fn release(base: usize, len: usize) {
    assert_eq!(
        unsafe { VirtualFree(base as _, 0, MEM_RELEASE) },
        TRUE,
        "{}",
        GetLastError()
    );
    plant_canaries(base, len);
}

/// A small xorshift generator (no dependencies, reproducible per thread).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
    fn below(&mut self, n: usize) -> usize {
        self.next() % n
    }
}

fn iterations() -> usize {
    std::env::var("VIRTMEM_STRESS_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 80 } else { 400 })
}

// ----- the threads -----------------------------------------------------------------------------

fn writer(s: &Shared, seed: u64) {
    let mut r = Rng(seed);
    while !s.stop.load(Ordering::Relaxed) {
        let (base, len) = match r.below(4) {
            0 => (
                s.guard[r.below(SLOTS)].load(Ordering::Acquire),
                GUARD_PAGES * P,
            ),
            1 => (
                s.watch[r.below(SLOTS)].load(Ordering::Acquire),
                GUARD_PAGES * P,
            ),
            2 => (s.ph.load(Ordering::Acquire), 2 * G),
            _ => (s.awe.load(Ordering::Acquire), GUARD_PAGES * P),
        };
        if base == 0 {
            continue;
        }
        let at = base + r.below(len / P) * P + r.below(P);
        if probe_write(at, 0x5a) {
            s.writes.fetch_add(1, Ordering::Relaxed);
        } else {
            s.faults.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn guard_mutator(s: &Shared, seed: u64, iters: usize) {
    let mut r = Rng(seed);
    for _ in 0..iters {
        let slot = &s.guard[r.below(SLOTS)];
        let base = slot.load(Ordering::Acquire);
        let page = base + r.below(GUARD_PAGES) * P;
        let mut old = 0;
        match r.below(4) {
            0 => {
                // Re-arm a page.
                let ok =
                    unsafe { VirtualProtect(page as _, P, PAGE_READWRITE | PAGE_GUARD, &mut old) };
                assert_eq!(ok, TRUE, "{}", GetLastError());
            }
            1 => {
                // Decommit a page, then commit it again (guarded).
                assert_eq!(
                    unsafe { VirtualFree(page as _, P, MEM_DECOMMIT) },
                    TRUE,
                    "{}",
                    GetLastError()
                );
                std::thread::yield_now();
                let c =
                    unsafe { VirtualAlloc(page as _, P, MEM_COMMIT, PAGE_READWRITE | PAGE_GUARD) };
                assert!(!c.is_null(), "{}", GetLastError());
            }
            _ => {
                // Release and replace: the writers' next writes land on canaries.
                let new = new_guarded();
                slot.store(new, Ordering::Release);
                release(base, GUARD_PAGES * P);
            }
        }
    }
}

fn watch_mutator(s: &Shared, seed: u64, iters: usize) {
    let mut r = Rng(seed);
    for _ in 0..iters {
        let slot = &s.watch[r.below(SLOTS)];
        let base = slot.load(Ordering::Acquire);
        match r.below(4) {
            0 => {
                assert_eq!(
                    unsafe { ResetWriteWatch(base as _, GUARD_PAGES * P) },
                    0,
                    "{}",
                    GetLastError()
                );
            }
            1 => {
                let mut addrs = [null_mut::<c_void>(); GUARD_PAGES];
                let mut n = GUARD_PAGES;
                let mut gran = 0;
                let rc = unsafe {
                    GetWriteWatch(
                        WRITE_WATCH_FLAG_RESET,
                        base as _,
                        GUARD_PAGES * P,
                        addrs.as_mut_ptr(),
                        &mut n,
                        &mut gran,
                    )
                };
                assert_eq!(rc, 0, "{}", GetLastError());
            }
            2 => {
                // Read-only and back: clean pages keep faulting on writes.
                let page = base + r.below(GUARD_PAGES) * P;
                let mut old = 0;
                assert_eq!(
                    unsafe { VirtualProtect(page as _, P, PAGE_READONLY, &mut old) },
                    TRUE
                );
                std::thread::yield_now();
                assert_eq!(
                    unsafe { VirtualProtect(page as _, P, PAGE_READWRITE, &mut old) },
                    TRUE
                );
            }
            _ => {
                let new = new_watched();
                slot.store(new, Ordering::Release);
                release(base, GUARD_PAGES * P);
            }
        }
    }
}

/// Split, replace (guarded / watched), preserve, coalesce; now and then release the whole
/// area. Between cycles every placeholder page must be inaccessible.
fn placeholder_mutator(s: &Shared, seed: u64, iters: usize) {
    let mut r = Rng(seed);
    for _ in 0..iters {
        let ph = s.ph.load(Ordering::Acquire);
        let vf = |a: usize, n: usize, t: u32| unsafe { VirtualFree(a as _, n, t) };
        assert_eq!(
            vf(ph, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            TRUE,
            "split: {}",
            GetLastError()
        );
        let replace = |a: usize, ty: u32, prot: u32| unsafe {
            VirtualAlloc2(
                null_mut(),
                a as _,
                G,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER | ty,
                prot,
                null_mut(),
                0,
            )
        } as usize;
        assert_eq!(
            replace(ph, 0, PAGE_READWRITE | PAGE_GUARD),
            ph,
            "replace: {}",
            GetLastError()
        );
        assert_eq!(
            replace(ph + G, MEM_WRITE_WATCH, PAGE_READWRITE),
            ph + G,
            "replace: {}",
            GetLastError()
        );
        std::thread::yield_now();
        assert_eq!(
            vf(ph, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            TRUE,
            "preserve: {}",
            GetLastError()
        );
        assert_eq!(
            vf(ph + G, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            TRUE,
            "preserve: {}",
            GetLastError()
        );
        assert_eq!(
            vf(ph, 2 * G, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS),
            TRUE,
            "coalesce: {}",
            GetLastError()
        );
        // A handler that acted for a swapped-out allocation would have opened a page here.
        for page in (ph..ph + 2 * G).step_by(P) {
            assert!(
                !readable(page),
                "placeholder page {page:#x} became accessible"
            );
        }
        if r.below(4) == 0 {
            let new = new_placeholder();
            s.ph.store(new, Ordering::Release);
            release(ph, 2 * G);
        }
    }
}

fn awe_mutator(s: &Shared, iters: usize) {
    let w = s.awe.load(Ordering::Acquire);
    let mut n = GUARD_PAGES;
    let mut pfns = vec![0usize; n];
    assert_eq!(
        unsafe { AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, pfns.as_mut_ptr()) },
        TRUE,
        "{}",
        GetLastError()
    );
    for i in 0..iters * 4 {
        let map = i % 2 == 0;
        let ptr = if map { pfns.as_ptr() } else { null() };
        assert_eq!(
            unsafe { MapUserPhysicalPages(w as _, GUARD_PAGES, ptr) },
            TRUE,
            "{}",
            GetLastError()
        );
        std::thread::yield_now();
    }
}

/// Reserves memory (now and then guarded and committed) and releases it again, so released
/// ranges are taken by new allocations.
fn reserver(s: &Shared, seed: u64) {
    let mut r = Rng(seed);
    let mut held: Vec<usize> = Vec::new();
    while !s.stop.load(Ordering::Relaxed) {
        let size = (1 + r.below(4)) * GUARD_PAGES * P;
        let b = if r.below(2) == 0 {
            unsafe { VirtualAlloc(null(), size, MEM_RESERVE, PAGE_READWRITE) }
        } else {
            unsafe {
                VirtualAlloc(
                    null(),
                    size,
                    MEM_RESERVE | MEM_COMMIT,
                    PAGE_READWRITE | PAGE_GUARD,
                )
            }
        } as usize;
        assert_ne!(b, 0);
        held.push(b);
        if held.len() > 8 {
            let b = held.remove(r.below(held.len()));
            assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
        }
    }
    for b in held {
        assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
    }
}

fn run_race() {
    install_recover();
    // SAFETY: the handler does nothing but continue.
    unsafe { virtmem::set_guard_page_handler(Some(Box::new(|_| true))) };
    virtmem::set_write_watch_mode(WatchKind::Signal);
    let iters = iterations();
    let awe = unsafe {
        VirtualAlloc(
            null(),
            GUARD_PAGES * P,
            MEM_RESERVE | MEM_PHYSICAL,
            PAGE_READWRITE,
        )
    } as usize;
    assert_ne!(awe, 0, "{}", GetLastError());
    let s = Arc::new(Shared {
        stop: AtomicBool::new(false),
        guard: std::array::from_fn(|_| AtomicUsize::new(new_guarded())),
        watch: std::array::from_fn(|_| AtomicUsize::new(new_watched())),
        ph: AtomicUsize::new(new_placeholder()),
        awe: AtomicUsize::new(awe),
        writes: AtomicU64::new(0),
        faults: AtomicU64::new(0),
    });
    // Every thread starts (stack, signal stack, malloc arena) before anything is released,
    // so nothing of ours but canaries and reservations lands in released ranges.
    let started = Arc::new(std::sync::Barrier::new(10));
    let mut background = Vec::new();
    for i in 0..4u64 {
        let (s, started) = (s.clone(), started.clone());
        background.push(std::thread::spawn(move || {
            started.wait();
            writer(&s, 0x1234_5678 + i * 7919)
        }));
    }
    {
        let (s, started) = (s.clone(), started.clone());
        background.push(std::thread::spawn(move || {
            started.wait();
            reserver(&s, 99)
        }));
    }
    let mut mutators = Vec::new();
    type Job = fn(&Shared, u64, usize);
    let jobs: [(Job, u64); 3] = [
        (guard_mutator, 1),
        (watch_mutator, 2),
        (placeholder_mutator, 3),
    ];
    for (job, seed) in jobs {
        let (s, started) = (s.clone(), started.clone());
        mutators.push(std::thread::spawn(move || {
            started.wait();
            job(&s, seed, iters)
        }));
    }
    {
        let (s, started) = (s.clone(), started.clone());
        mutators.push(std::thread::spawn(move || {
            started.wait();
            awe_mutator(&s, iters)
        }));
    }
    started.wait();
    let mut checks = 0;
    while !mutators.iter().all(|m| m.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        check_canaries();
        checks += 1;
    }
    for m in mutators {
        m.join().unwrap();
    }
    s.stop.store(true, Ordering::Relaxed);
    for b in background {
        b.join().unwrap();
    }
    let n = check_canaries();
    println!(
        "fault_race: {iters} iterations, {} writes, {} faults passed on ({} recovered), \
         {n} canary pages, {checks} periodic checks",
        s.writes.load(Ordering::Relaxed),
        s.faults.load(Ordering::Relaxed),
        RECOVERED.load(Ordering::Relaxed),
    );
    assert!(s.writes.load(Ordering::Relaxed) > 0);
    println!("RACE-OK");
}

#[test]
fn faults_racing_release_and_reuse_touch_only_owned_pages() {
    const NAME: &str = "faults_racing_release_and_reuse_touch_only_owned_pages";
    if std::env::var(CHILD).as_deref() == Ok(NAME) {
        // Large allocations of ours must not come from mmap: they could land in a released
        // range and be hit by a stale write.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) };
        run_race();
        return;
    }
    // A child process: its SIGSEGV handler chain is ours alone.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, NAME)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("RACE-OK"),
        "{:?}\n{text}",
        out.status
    );
    for l in text.lines().filter(|l| l.contains("fault_race:")) {
        println!("{l}");
    }
}
