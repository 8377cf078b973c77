//! VirtualProtect's fast path (a plain protection on one run of an ordinary allocation, taken
//! under the handler lock alone) against the general operations running beside it on the same
//! allocation: several threads toggle protections of their own pages while another commits
//! and decommits its own pages and another queries everything. Afterwards every page's
//! recorded state is exactly what its owner last set, the kernel's protections agree with it
//! (`/proc/self/maps`), and the data written while pages were writable is intact.

use std::ffi::c_void;
use std::ptr::null;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use virtmem::win32::*;

const P: usize = 0x1000;
const TOGGLERS: usize = 3;
/// Pages per toggling thread (page `t + TOGGLERS * k` belongs to thread `t`).
const EACH: usize = 8;
/// Pages after the toggled ones, committed and decommitted by one thread.
const CHURN: usize = 8;
const PAGES: usize = TOGGLERS * EACH + CHURN;
const OPS: usize = 3000;

fn query(addr: usize) -> MEMORY_BASIC_INFORMATION {
    // SAFETY: a plain struct; VirtualQuery writes it.
    let mut m: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: `m` is writable and sized as passed.
    let n = unsafe { VirtualQuery(addr as *const c_void, &mut m, std::mem::size_of_val(&m)) };
    assert_ne!(n, 0, "VirtualQuery({addr:#x})");
    m
}

/// The kernel's `rwx` letters for each page of `[base, base + PAGES * P)`.
fn kernel_prots(base: usize) -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    (0..PAGES)
        .map(|i| {
            let a = base + i * P;
            maps.lines()
                .find_map(|l| {
                    let (range, rest) = l.split_once(' ')?;
                    let (s, e) = range.split_once('-')?;
                    let (s, e) = (
                        usize::from_str_radix(s, 16).ok()?,
                        usize::from_str_radix(e, 16).ok()?,
                    );
                    (s <= a && a < e).then(|| rest[..3].to_string())
                })
                .unwrap_or_else(|| panic!("page {a:#x} is not mapped"))
        })
        .collect()
}

fn letters(protect: u32) -> &'static str {
    match protect {
        PAGE_NOACCESS => "---",
        PAGE_READONLY => "r--",
        PAGE_READWRITE => "rw-",
        PAGE_EXECUTE => "--x",
        PAGE_EXECUTE_READ => "r-x",
        PAGE_EXECUTE_READWRITE => "rwx",
        other => panic!("unexpected protection {other:#x}"),
    }
}

#[test]
fn fast_toggles_beside_general_operations_stay_exact() {
    // SAFETY: a fresh allocation of our own, released at the end.
    let base = unsafe { VirtualAlloc(null(), PAGES * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) }
        as usize;
    assert_ne!(base, 0);
    let start = Arc::new(Barrier::new(TOGGLERS + 2));
    let stop = Arc::new(AtomicBool::new(false));
    let togglers: Vec<_> = (0..TOGGLERS)
        .map(|t| {
            let start = start.clone();
            std::thread::spawn(move || {
                const CYCLE: [u32; 6] = [
                    PAGE_READONLY,
                    PAGE_NOACCESS,
                    PAGE_EXECUTE_READ,
                    PAGE_READWRITE,
                    PAGE_EXECUTE_READWRITE,
                    PAGE_EXECUTE,
                ];
                let mut last = [PAGE_READWRITE; EACH];
                let mut stamp = [0u8; EACH];
                start.wait();
                for i in 0..OPS {
                    let k = (i * 7 + t) % EACH;
                    let page = base + (t + TOGGLERS * k) * P;
                    let new = CYCLE[(i / EACH + t) % CYCLE.len()];
                    let mut old = 0;
                    // SAFETY: this thread's own committed page.
                    let ok = unsafe { VirtualProtect(page as *const c_void, P, new, &mut old) };
                    assert_eq!(ok, TRUE, "VirtualProtect {page:#x} -> {new:#x}");
                    assert_eq!(old, last[k], "old protection of {page:#x}");
                    last[k] = new;
                    if new & (PAGE_READWRITE | PAGE_EXECUTE_READWRITE) != 0 {
                        // SAFETY: writable now, and only this thread touches this page.
                        unsafe {
                            assert_eq!(*(page as *const u8), stamp[k], "data of {page:#x}");
                            stamp[k] = stamp[k].wrapping_add(1);
                            *(page as *mut u8) = stamp[k];
                        }
                    }
                    let m = query(page);
                    assert_eq!((m.State, m.Protect), (MEM_COMMIT, new), "{page:#x}");
                }
                (last, stamp)
            })
        })
        .collect();
    let churn = {
        let start = start.clone();
        std::thread::spawn(move || {
            let first = base + TOGGLERS * EACH * P;
            start.wait();
            let mut committed = true;
            for i in 0..OPS / 2 {
                let (a, n) = (first + (i % CHURN) * P, 1 + i % 3);
                let n = n.min(CHURN - i % CHURN);
                // SAFETY: this thread's own pages.
                let ok = unsafe {
                    if committed {
                        VirtualFree(a as *mut c_void, n * P, MEM_DECOMMIT)
                    } else {
                        i32::from(
                            !VirtualAlloc(a as *const c_void, n * P, MEM_COMMIT, PAGE_READONLY)
                                .is_null(),
                        )
                    }
                };
                assert_eq!(ok, TRUE);
                committed = !committed;
            }
            // Leave them all committed read-only.
            // SAFETY: as above.
            let p = unsafe {
                VirtualAlloc(first as *const c_void, CHURN * P, MEM_COMMIT, PAGE_READONLY)
            };
            assert!(!p.is_null());
            let mut old = 0;
            // SAFETY: as above.
            assert_eq!(
                unsafe {
                    VirtualProtect(first as *const c_void, CHURN * P, PAGE_READONLY, &mut old)
                },
                TRUE
            );
        })
    };
    let querier = {
        let (start, stop) = (start.clone(), stop.clone());
        std::thread::spawn(move || {
            start.wait();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for i in 0..PAGES {
                    let m = query(base + i * P);
                    assert_eq!(m.AllocationBase as usize, base);
                    assert!(m.State == MEM_COMMIT || m.State == MEM_RESERVE);
                    n += 1;
                }
            }
            n
        })
    };
    let results: Vec<_> = togglers.into_iter().map(|h| h.join().unwrap()).collect();
    churn.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(querier.join().unwrap() > 0);

    let kernel = kernel_prots(base);
    for (t, (last, stamp)) in results.iter().enumerate() {
        for k in 0..EACH {
            let i = t + TOGGLERS * k;
            let page = base + i * P;
            let m = query(page);
            assert_eq!((m.State, m.Protect), (MEM_COMMIT, last[k]), "page {i}");
            assert_eq!(kernel[i], letters(last[k]), "kernel protection of page {i}");
            let mut old = 0;
            // SAFETY: our page; made readable to check its last stamp.
            assert_eq!(
                unsafe { VirtualProtect(page as *const c_void, P, PAGE_READONLY, &mut old) },
                TRUE
            );
            assert_eq!(old, last[k]);
            // SAFETY: readable now.
            assert_eq!(
                unsafe { *(page as *const u8) },
                stamp[k],
                "data of page {i}"
            );
        }
    }
    for (i, k) in kernel.iter().enumerate().skip(TOGGLERS * EACH) {
        let m = query(base + i * P);
        assert_eq!(
            (m.State, m.Protect),
            (MEM_COMMIT, PAGE_READONLY),
            "page {i}"
        );
        assert_eq!(k, "r--", "kernel protection of page {i}");
    }
    // SAFETY: our allocation.
    assert_eq!(
        unsafe { VirtualFree(base as *mut c_void, 0, MEM_RELEASE) },
        TRUE
    );
}

/// The fast path declines what it does not handle, and the general path then answers exactly:
/// a range over two runs, uncommitted pages (487 and PAGE_NOACCESS reported), a PAGE_GUARD
/// request, and any page of an allocation once it has guard pages.
#[test]
fn what_the_fast_path_declines_is_still_answered() {
    // SAFETY: fresh allocations of our own, released at the end.
    let a = unsafe { VirtualAlloc(null(), 16 * P, MEM_RESERVE, PAGE_READWRITE) } as usize;
    assert_ne!(a, 0);
    // SAFETY: inside `a`.
    assert!(
        !unsafe { VirtualAlloc(a as *const c_void, 8 * P, MEM_COMMIT, PAGE_READWRITE) }.is_null()
    );
    let mut old = 0;
    // Two runs (RW then RO), one call: one protection over both.
    // SAFETY: committed pages of ours.
    unsafe {
        assert_eq!(
            VirtualProtect((a + 2 * P) as *const c_void, P, PAGE_READONLY, &mut old),
            TRUE
        );
        assert_eq!(old, PAGE_READWRITE);
        assert_eq!(
            VirtualProtect((a + P) as *const c_void, 3 * P, PAGE_EXECUTE_READ, &mut old),
            TRUE
        );
        assert_eq!(old, PAGE_READWRITE);
    }
    let m = query(a + P);
    assert_eq!((m.RegionSize, m.Protect), (3 * P, PAGE_EXECUTE_READ));
    // Uncommitted pages: 487, and *old is PAGE_NOACCESS.
    old = 0x1234;
    // SAFETY: reserved pages of ours (the call fails).
    let ok = unsafe { VirtualProtect((a + 8 * P) as *const c_void, P, PAGE_READONLY, &mut old) };
    assert_eq!(
        (ok, GetLastError(), old),
        (FALSE, ERROR_INVALID_ADDRESS, PAGE_NOACCESS)
    );
    // A range from committed into reserved pages: 487 too, nothing changed.
    // SAFETY: as above.
    let ok =
        unsafe { VirtualProtect((a + 7 * P) as *const c_void, 2 * P, PAGE_READONLY, &mut old) };
    assert_eq!(ok, FALSE);
    assert_eq!(query(a + 7 * P).Protect, PAGE_READWRITE);
    // PAGE_GUARD, then a plain toggle elsewhere in the same allocation.
    // SAFETY: committed pages of ours.
    unsafe {
        assert_eq!(
            VirtualProtect(a as *const c_void, P, PAGE_READWRITE | PAGE_GUARD, &mut old),
            TRUE
        );
        assert_eq!(
            VirtualProtect((a + 5 * P) as *const c_void, P, PAGE_READONLY, &mut old),
            TRUE
        );
        assert_eq!(old, PAGE_READWRITE);
    }
    assert_eq!(query(a).Protect, PAGE_READWRITE | PAGE_GUARD);
    assert_eq!(query(a + 5 * P).Protect, PAGE_READONLY);
    // SAFETY: our allocation.
    assert_eq!(
        unsafe { VirtualFree(a as *mut c_void, 0, MEM_RELEASE) },
        TRUE
    );
}

/// The fast path remembers the allocation a thread changed last: once that allocation is
/// released, the address is free (487, nothing changed), and a new allocation made there is
/// the one changed; a remembered allocation of a dropped simulated space never answers for
/// another space.
#[test]
fn a_remembered_allocation_never_outlives_its_place() {
    // SAFETY: allocations of our own, released here.
    unsafe {
        let a = VirtualAlloc(null(), 4 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as usize;
        assert_ne!(a, 0);
        let mut old = 0;
        assert_eq!(
            VirtualProtect(a as *const c_void, P, PAGE_READONLY, &mut old),
            TRUE
        );
        assert_eq!(VirtualFree(a as *mut c_void, 0, MEM_RELEASE), TRUE);
        old = 0x77;
        assert_eq!(
            VirtualProtect(a as *const c_void, P, PAGE_READWRITE, &mut old),
            FALSE
        );
        assert_eq!(
            (GetLastError(), old),
            (ERROR_INVALID_ADDRESS, PAGE_NOACCESS)
        );
        let b = VirtualAlloc(
            a as *const c_void,
            4 * P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_EXECUTE_READ,
        ) as usize;
        assert_eq!(b, a, "the same place again");
        assert_eq!(
            VirtualProtect(b as *const c_void, P, PAGE_READWRITE, &mut old),
            TRUE
        );
        assert_eq!(old, PAGE_EXECUTE_READ, "the new allocation's protection");
        assert_eq!(query(b).Protect, PAGE_READWRITE);
        assert_eq!(query(b + P).Protect, PAGE_EXECUTE_READ);
        // Released by another thread while this one remembers it.
        let addr = b;
        std::thread::spawn(move || {
            assert_eq!(VirtualFree(addr as *mut c_void, 0, MEM_RELEASE), TRUE);
        })
        .join()
        .unwrap();
        assert_eq!(
            VirtualProtect(b as *const c_void, P, PAGE_READONLY, &mut old),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_INVALID_ADDRESS);
    }
    // Simulated spaces: the same layout gives the same addresses.
    let first = {
        let s = virtmem::sim::SimSpace::new(virtmem::Layout::WIN64);
        let a = s
            .virtual_alloc(0, 4 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, false)
            .unwrap();
        assert_eq!(
            s.virtual_protect(a, P, PAGE_READONLY).unwrap(),
            PAGE_READWRITE
        );
        a
    };
    let s = virtmem::sim::SimSpace::new(virtmem::Layout::WIN64);
    let a = s
        .virtual_alloc(0, 4 * P, MEM_RESERVE | MEM_COMMIT, PAGE_EXECUTE, false)
        .unwrap();
    assert_eq!(a, first);
    assert_eq!(
        s.virtual_protect(a, P, PAGE_READONLY).unwrap(),
        PAGE_EXECUTE
    );
}
