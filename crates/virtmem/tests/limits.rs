//! Limits, each in its own child process (the test binary runs itself with `--exact NAME`):
//! `vm.max_map_count` exhaustion, RLIMIT_MEMLOCK with CAP_IPC_LOCK dropped, RLIMIT_AS, a
//! 64 TiB reservation, 100,000 live allocations, and (host-wide, only with
//! `VIRTMEM_HOST_TESTS=1` as root, restored even on failure) a small commit limit with
//! `vm.overcommit_memory=2`. Each gives the documented error or works, and the process stays
//! healthy: the failing call changed nothing, and afterwards allocating, committing, writing,
//! querying and releasing work and the bookkeeping matches `/proc/self/maps`.
//!
//! Host tests are named `host_*`; CI runs them in a separate serial step
//! (`VIRTMEM_HOST_TESTS=1 cargo test --workspace -- --test-threads=1 host_`).

mod common;
use common::{host_tests, Sysctl};

use std::ffi::c_void;
use std::process::Command;
use std::ptr::null;
use virtmem::win32::*;

const P: usize = 0x1000;
const G: usize = 0x10000;
const CHILD: &str = "VIRTMEM_LIMITS_CHILD";

/// In the parent: runs this test alone in a child process and checks it reported success.
/// In the child: returns true (the caller then does the work and prints CHILD-OK).
fn child(name: &str) -> bool {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.starts_with("limits:"))
    {
        eprintln!("{l}");
    }
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{name} in a child: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    false
}

fn maps() -> Vec<(usize, usize, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (r, p) = (it.next()?, it.next()?);
            let (s, e) = r.split_once('-')?;
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
                p.to_string(),
            ))
        })
        .collect()
}

fn mbi(a: usize) -> MEMORY_BASIC_INFORMATION {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: valid out-pointer.
    assert_ne!(unsafe { VirtualQuery(a as _, &mut m, size_of_val(&m)) }, 0);
    m
}

fn perms(m: &MEMORY_BASIC_INFORMATION) -> &'static str {
    if m.State != MEM_COMMIT || m.Protect & PAGE_GUARD != 0 {
        return "---p";
    }
    match m.Protect & 0xFF {
        PAGE_READONLY => "r--p",
        PAGE_READWRITE => "rw-p",
        PAGE_EXECUTE => "--xp",
        PAGE_EXECUTE_READ => "r-xp",
        PAGE_EXECUTE_READWRITE => "rwxp",
        _ => "---p",
    }
}

/// Every region of every allocation is mapped with the permissions its state implies.
fn bookkeeping_matches_kernel() {
    let m = maps();
    for (base, size, _) in virtmem::allocations() {
        let mut at = base;
        while at < base + size {
            let r = mbi(at);
            let want = perms(&r);
            let end = at + r.RegionSize;
            let mut x = at;
            while x < end {
                let i = m.partition_point(|v| v.1 <= x);
                let v = m
                    .get(i)
                    .filter(|v| v.0 <= x)
                    .unwrap_or_else(|| panic!("{x:#x} of an allocation is not mapped"));
                assert_eq!(
                    v.2, want,
                    "{x:#x}: kernel {} vs VirtualQuery {:#x}",
                    v.2, r.Protect
                );
                x = v.1.min(end);
            }
            at = end;
        }
    }
}

/// The process is healthy: a fresh allocation can be committed, written, queried, changed,
/// decommitted and released, and the bookkeeping matches the kernel.
fn healthy() {
    // SAFETY: our own allocation.
    unsafe {
        let p = VirtualAlloc(null(), 4 * G, MEM_RESERVE, PAGE_READWRITE);
        assert!(!p.is_null(), "reserve after the limit: {}", GetLastError());
        assert!(!VirtualAlloc(p, 2 * P, MEM_COMMIT, PAGE_READWRITE).is_null());
        (p as *mut u64).write_volatile(42);
        let mut old = 0;
        assert_ne!(VirtualProtect(p, P, PAGE_READONLY, &mut old), 0);
        assert_eq!((p as *const u64).read_volatile(), 42);
        assert_eq!(mbi(p as usize).Protect, PAGE_READONLY);
        assert_ne!(VirtualFree(p, 2 * P, MEM_DECOMMIT), 0);
        assert_ne!(VirtualFree(p, 0, MEM_RELEASE), 0);
    }
    bookkeeping_matches_kernel();
}

fn snapshot_of(base: usize, size: usize) -> Vec<(usize, usize, u32, u32)> {
    let mut v = Vec::new();
    let mut at = base;
    while at < base + size {
        let m = mbi(at);
        v.push((at, m.RegionSize, m.State, m.Protect));
        at += m.RegionSize;
    }
    v
}

fn ok() {
    println!("CHILD-OK");
}

// ------------------------------------------------------------------------------------------

#[test]
fn max_map_count_exhaustion() {
    if !child("max_map_count_exhaustion") {
        return;
    }
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let count = || maps().len();
    // Fill the mapping table with pages of alternating protection (plain mmap/mprotect:
    // fast; each isolated PROT_NONE page adds two mappings), leaving room for virtmem.
    let room = 400;
    let splits = limit.saturating_sub(count() + room) / 2;
    let pages = 2 * splits + 2;
    // SAFETY: the child's own fresh mapping.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages * P,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    } as usize;
    assert_ne!(raw as *mut c_void, libc::MAP_FAILED);
    for i in 0..splits {
        // SAFETY: inside our own mapping.
        let r =
            unsafe { libc::mprotect((raw + (2 * i + 1) * P) as *mut c_void, P, libc::PROT_NONE) };
        assert_eq!(r, 0, "filling the mapping table");
    }
    let filled = count();
    assert!(
        filled + room + 10 >= limit && filled < limit,
        "{filled} mappings of {limit}"
    );
    // Now virtmem: alternate the protection of a reservation's pages until the kernel says no.
    // SAFETY: our own allocation.
    unsafe {
        let n = 4 * room;
        let b = VirtualAlloc(null(), n * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as usize;
        assert_ne!(b, 0, "reserve: {}", GetLastError());
        let mut failed = None;
        let mut old = 0;
        for k in (0..n).step_by(2) {
            let before = snapshot_of(b, n * P);
            SetLastError(0);
            if VirtualProtect((b + k * P) as _, P, PAGE_READONLY, &mut old) == 0 {
                let e = GetLastError();
                assert_eq!(
                    e, ERROR_NOT_ENOUGH_MEMORY,
                    "VirtualProtect at the map count limit"
                );
                assert_eq!(
                    snapshot_of(b, n * P),
                    before,
                    "the failing call changed the regions"
                );
                failed = Some(k);
                break;
            }
        }
        let k = failed.expect("vm.max_map_count was never reached");
        bookkeeping_matches_kernel();
        // A new reservation and a commit that splits a mapping fail cleanly too, or work.
        let before = virtmem::allocations();
        let p = VirtualAlloc(null(), G, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY);
        if p.is_null() {
            assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            assert_eq!(virtmem::allocations(), before);
        } else {
            assert_ne!(VirtualFree(p, 0, MEM_RELEASE), 0);
        }
        eprintln!(
            "limits: max_map_count {limit}: VirtualProtect refused with 8 after {} pages",
            k / 2
        );
        // Give the table back: everything works again.
        libc::munmap(raw as *mut c_void, pages * P);
        assert_ne!(
            VirtualProtect((b + k * P) as _, P, PAGE_READONLY, &mut old),
            0
        );
        assert_ne!(VirtualFree(b as _, 0, MEM_RELEASE), 0);
    }
    healthy();
    ok();
}

/// Drops CAP_IPC_LOCK from this (child) process: root then obeys RLIMIT_MEMLOCK.
fn drop_cap_ipc_lock() {
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
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
        let bit = 1u32 << 14; // CAP_IPC_LOCK
        d[0].effective &= !bit;
        d[0].permitted &= !bit;
        d[0].inheritable &= !bit;
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()),
            0,
            "capset"
        );
    }
}

#[test]
fn rlimit_memlock_without_cap_ipc_lock() {
    if !child("rlimit_memlock_without_cap_ipc_lock") {
        return;
    }
    drop_cap_ipc_lock();
    let lim = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: 64 * 1024,
    };
    // SAFETY: lowering our own limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) }, 0);
    // SAFETY: our own allocation.
    unsafe {
        let b = VirtualAlloc(null(), 64 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!b.is_null());
        let before = snapshot_of(b as usize, 64 * P);
        SetLastError(0);
        assert_eq!(
            VirtualLock(b, 64 * P),
            FALSE,
            "locking 256 KiB under a 64 KiB limit"
        );
        assert_eq!(GetLastError(), ERROR_WORKING_SET_QUOTA);
        assert_eq!(snapshot_of(b as usize, 64 * P), before);
        // Nothing is locked: VirtualUnlock says so, the kernel too.
        assert_eq!(VirtualUnlock(b, P), FALSE);
        assert_eq!(GetLastError(), ERROR_NOT_LOCKED);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let locked = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
        assert!(locked.split_whitespace().nth(1) == Some("0"), "{locked}");
        // Within the quota it works.
        assert_ne!(
            VirtualLock(b, 4 * P),
            FALSE,
            "a small lock: {}",
            GetLastError()
        );
        assert_ne!(VirtualUnlock(b, 4 * P), FALSE);
        assert_ne!(VirtualFree(b, 0, MEM_RELEASE), 0);
    }
    eprintln!("limits: RLIMIT_MEMLOCK 64 KiB without CAP_IPC_LOCK: VirtualLock 256 KiB -> 1453");
    healthy();
    ok();
}

fn vm_size() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    l.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 1024
}

#[test]
fn rlimit_as() {
    if !child("rlimit_as") {
        return;
    }
    let cap = vm_size() + (512 << 20);
    let lim = libc::rlimit {
        rlim_cur: cap as u64,
        rlim_max: cap as u64,
    };
    // SAFETY: lowering our own limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    // SAFETY: our own allocations.
    unsafe {
        let before = virtmem::allocations();
        for t in [
            MEM_RESERVE,
            MEM_RESERVE | MEM_COMMIT,
            MEM_RESERVE | MEM_TOP_DOWN,
        ] {
            SetLastError(0);
            assert!(
                VirtualAlloc(null(), 1 << 30, t, PAGE_READWRITE).is_null(),
                "{t:#x}"
            );
            assert_eq!(
                GetLastError(),
                ERROR_NOT_ENOUGH_MEMORY,
                "1 GiB under RLIMIT_AS, {t:#x}"
            );
            assert_eq!(virtmem::allocations(), before);
        }
        let p = VirtualAlloc(null(), 16 << 20, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!p.is_null(), "16 MiB under RLIMIT_AS: {}", GetLastError());
        assert_ne!(VirtualFree(p, 0, MEM_RELEASE), 0);
    }
    eprintln!("limits: RLIMIT_AS VmSize+512 MiB: a 1 GiB reservation -> 8");
    healthy();
    ok();
}

#[test]
fn reservation_of_64_tib() {
    if !child("reservation_of_64_tib") {
        return;
    }
    let size = 64usize << 40;
    // SAFETY: our own allocation.
    unsafe {
        let p = VirtualAlloc(null(), size, MEM_RESERVE, PAGE_READWRITE) as usize;
        if p == 0 {
            // Not enough address space here (47-bit user space holds 128 TiB): a clear code.
            assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
            eprintln!("limits: 64 TiB reservation: 8 (no room)");
        } else {
            let m = mbi(p);
            assert_eq!((m.State, m.RegionSize), (MEM_RESERVE, size));
            assert_eq!(virtmem::NativeSpace::get().run_count(p), Some(1));
            // Commit and write at both ends, query the middle.
            for at in [p, p + size - G] {
                assert!(!VirtualAlloc(at as _, G, MEM_COMMIT, PAGE_READWRITE).is_null());
                (at as *mut u64).write_volatile(7);
            }
            let mid = mbi(p + size / 2);
            assert_eq!((mid.State, mid.RegionSize), (MEM_RESERVE, size / 2 - G));
            bookkeeping_matches_kernel();
            assert_ne!(VirtualFree(p as _, 0, MEM_RELEASE), 0);
            assert!(
                maps().iter().all(|v| v.1 <= p || v.0 >= p + size),
                "64 TiB not unmapped"
            );
            eprintln!(
                "limits: 64 TiB reservation works (one run), committed at both ends, released"
            );
        }
        // Committing 64 TiB of writable memory is refused by the commit charge, cleanly.
        let before = virtmem::allocations();
        SetLastError(0);
        let q = VirtualAlloc(null(), size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(q.is_null());
        assert!(
            [ERROR_COMMITMENT_LIMIT, ERROR_NOT_ENOUGH_MEMORY].contains(&GetLastError()),
            "64 TiB committed: {}",
            GetLastError()
        );
        assert_eq!(virtmem::allocations(), before);
    }
    healthy();
    ok();
}

#[test]
fn one_hundred_thousand_live_allocations() {
    if !child("one_hundred_thousand_live_allocations") {
        return;
    }
    const N: usize = 100_000;
    let t0 = std::time::Instant::now();
    let mut bases = Vec::with_capacity(N);
    // SAFETY: our own allocations.
    unsafe {
        // 100,000 allocations of one granule each (every seventh committed).
        for i in 0..N {
            let t = if i % 7 == 0 {
                MEM_RESERVE | MEM_COMMIT
            } else {
                MEM_RESERVE
            };
            let p = VirtualAlloc(null(), G, t, PAGE_READWRITE) as usize;
            assert_ne!(p, 0, "allocation {i}: {}", GetLastError());
            bases.push(p);
        }
        let made = t0.elapsed();
        let mut sorted = bases.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), N, "a base was handed out twice");
        assert!(
            sorted.windows(2).all(|w| w[1] - w[0] >= G),
            "allocations overlap"
        );
        assert!(virtmem::allocations().len() >= N);
        for (i, &b) in bases.iter().enumerate().step_by(997) {
            let m = mbi(b);
            assert_eq!(m.AllocationBase as usize, b);
            assert_eq!(m.RegionSize, G);
            assert_eq!(m.State, if i % 7 == 0 { MEM_COMMIT } else { MEM_RESERVE });
        }
        bookkeeping_matches_kernel();
        let t1 = std::time::Instant::now();
        for &b in &bases {
            assert_ne!(VirtualFree(b as _, 0, MEM_RELEASE), 0);
        }
        assert!(virtmem::allocations().is_empty());
        eprintln!(
            "limits: 100,000 live allocations of 64 KiB: made in {:.2} s, released in {:.2} s",
            made.as_secs_f64(),
            t1.elapsed().as_secs_f64()
        );
        // One page each: every allocation is its own kernel mapping (the rest of its granule
        // stays free), so vm.max_map_count ends it early with a clean 8 (README).
        bases.clear();
        let mut stopped = None;
        for i in 0..N {
            let p = VirtualAlloc(null(), P, MEM_RESERVE, PAGE_READWRITE) as usize;
            if p == 0 {
                assert_eq!(GetLastError(), ERROR_NOT_ENOUGH_MEMORY, "allocation {i}");
                stopped = Some(i);
                break;
            }
            bases.push(p);
        }
        bookkeeping_matches_kernel();
        for &b in &bases {
            assert_ne!(VirtualFree(b as _, 0, MEM_RELEASE), 0);
        }
        match stopped {
            Some(i) => {
                eprintln!("limits: allocations of one page: {i} live, then 8 (vm.max_map_count)")
            }
            None => eprintln!("limits: 100,000 live allocations of one page"),
        }
    }
    healthy();
    ok();
}

// ------------------------------------------------------------------------------------------
// Host-wide settings: only with VIRTMEM_HOST_TESTS=1 as root
// ------------------------------------------------------------------------------------------

fn meminfo_kb(key: &str) -> usize {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    let l = m.lines().find(|l| l.starts_with(key)).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn host_commit_limit_with_overcommit_never() {
    if std::env::var(CHILD).as_deref() == Ok("host_commit_limit_with_overcommit_never") {
        // The child: at most ~256 MiB may still be committed.
        // SAFETY: our own allocations.
        unsafe {
            let r = VirtualAlloc(null(), 2 << 30, MEM_RESERVE, PAGE_READWRITE);
            assert!(
                !r.is_null(),
                "a reservation is not charged: {}",
                GetLastError()
            );
            let before = snapshot_of(r as usize, 2 << 30);
            SetLastError(0);
            assert!(VirtualAlloc(r, 1 << 30, MEM_COMMIT, PAGE_READWRITE).is_null());
            assert_eq!(GetLastError(), ERROR_COMMITMENT_LIMIT, "commit 1 GiB");
            assert_eq!(snapshot_of(r as usize, 2 << 30), before);
            SetLastError(0);
            let allocs = virtmem::allocations();
            assert!(
                VirtualAlloc(null(), 1 << 30, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE).is_null()
            );
            assert_eq!(
                GetLastError(),
                ERROR_COMMITMENT_LIMIT,
                "reserve+commit 1 GiB"
            );
            assert_eq!(virtmem::allocations(), allocs);
            assert!(
                !VirtualAlloc(r, 4 << 20, MEM_COMMIT, PAGE_READWRITE).is_null(),
                "4 MiB"
            );
            assert_ne!(VirtualFree(r, 0, MEM_RELEASE), 0);
        }
        eprintln!("limits: overcommit_memory=2, ~256 MiB headroom: committing 1 GiB -> 1455");
        healthy();
        ok();
        return;
    }
    if let Err(why) = host_tests() {
        eprintln!("skipped host_commit_limit_with_overcommit_never: {why} (it sets vm.overcommit_memory=2)");
        return;
    }
    let committed = meminfo_kb("Committed_AS:");
    let swap = meminfo_kb("SwapTotal:");
    // Restored in reverse order when the guards drop, whatever happens: the mode first, then
    // overcommit_kbytes, then overcommit_ratio (writing one of those two zeroes the other).
    let _ratio = Sysctl::set(
        "/proc/sys/vm/overcommit_ratio",
        std::fs::read_to_string("/proc/sys/vm/overcommit_ratio")
            .unwrap()
            .trim(),
    );
    let _kbytes = Sysctl::set(
        "/proc/sys/vm/overcommit_kbytes",
        &(committed + (256 << 10)).saturating_sub(swap).to_string(),
    );
    let _mode = Sysctl::set("/proc/sys/vm/overcommit_memory", "2");
    let _ = child("host_commit_limit_with_overcommit_never");
}
