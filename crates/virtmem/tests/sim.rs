//! The simulated backend: the same engine rules on a simulated address space, with
//! simulated loads and stores (zeros after commit, contents lost on decommit, access
//! violations, one-shot guard pages, write watch).

use virtmem::engine::AccessError;
use virtmem::engine::Space;
use virtmem::os::sim::{self, SimOs};
use virtmem::os::Os;
use virtmem::rules::requests::AllocFlavor;
use virtmem::win32::*;
use virtmem::{Access, Layout, State, WatchKind};

fn win32() -> Space<SimOs> {
    Space::simulated(Layout::WIN32)
}

fn alloc(s: &Space<SimOs>, addr: usize, size: usize, t: u32, p: u32) -> Result<usize, u32> {
    s.virtual_alloc(addr, size, t, p, AllocFlavor::default())
        .map_err(|e| e.win32_code())
}

fn av(address: usize, access: Access) -> AccessError {
    AccessError::AccessViolation { address, access }
}

#[test]
fn seed_exercises() {
    let s = win32();
    assert_eq!(
        alloc(&s, 0x4000_0000, 8 * 4096, MEM_RESERVE, PAGE_READWRITE),
        Ok(0x4000_0000)
    );
    let i = s.query(0x4000_0000).unwrap();
    assert_eq!(
        (i.state, i.region_size, i.protect),
        (State::Reserve, 0x8000, 0)
    );
    assert_eq!(i.allocation_protect, PAGE_READWRITE);
    let s = win32();
    let p = alloc(&s, 0x0100_0000, 4 * 4096, MEM_RESERVE, PAGE_READWRITE).unwrap();
    assert_eq!(p, 0x0100_0000);
    s.virtual_free(p, 0, MEM_RELEASE).unwrap();
    assert_eq!(s.query(p).unwrap().state, State::Free);
    assert!(s.os().mappings().is_empty());
}

#[test]
fn regions_cover_the_layout() {
    let s = win32();
    alloc(&s, 0x4000_0000, 0x8000, MEM_RESERVE, PAGE_READWRITE).unwrap();
    let r: Vec<_> = s.regions(s.layout().min_address).collect();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].base_address, 0x10000);
    assert_eq!(r[0].region_size, 0x4000_0000 - 0x10000);
    assert_eq!(r[2].base_address + r[2].region_size, 0x7FFF_0000);
}

#[test]
fn presets_and_placement() {
    for name in sim::PRESETS {
        let l = sim::preset(name).unwrap();
        sim::check_layout(&l).unwrap();
        let s = Space::simulated(l);
        // Bottom-up first fit from the minimum, top-down from the top.
        assert_eq!(
            alloc(&s, 0, 0x3000, MEM_RESERVE, PAGE_READWRITE),
            Ok(0x10000)
        );
        assert_eq!(
            alloc(&s, 0, 0x1000, MEM_RESERVE, PAGE_READWRITE),
            Ok(0x20000)
        );
        let top = alloc(&s, 0, 0x1000, MEM_RESERVE | MEM_TOP_DOWN, PAGE_READWRITE).unwrap();
        assert_eq!(top, l.allocatable_end() - 0x10000, "{name}");
    }
    assert_eq!(sim::WIN32_3GB.max_address, 0xBFFE_FFFF);
    let bad = Layout {
        granularity: 0x3000,
        ..Layout::WIN32
    };
    assert!(sim::check_layout(&bad).is_err());
    let custom = Layout {
        page_size: 0x4000,
        granularity: 0x40000,
        min_address: 0x40000,
        max_address: 0xFFFF_FFFF,
        large_page_size: 0,
    };
    sim::check_layout(&custom).unwrap();
    let s = Space::simulated(custom);
    assert_eq!(
        alloc(&s, 0, 1, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE),
        Ok(0x40000)
    );
    assert_eq!(s.query(0x40000).unwrap().region_size, 0x4000);
}

#[test]
fn zero_after_commit_and_lost_on_decommit() {
    let s = win32();
    let p = alloc(&s, 0, 0x10000, MEM_RESERVE, PAGE_READWRITE).unwrap();
    let mut b = [0u8; 4];
    assert_eq!(s.read(p, &mut b), Err(av(p, Access::Read)));
    assert_eq!(s.write(p + 8, &[1]), Err(av(p + 8, Access::Write)));
    alloc(&s, p, 0x2000, MEM_COMMIT, PAGE_READWRITE).unwrap();
    s.read(p, &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    s.write(p + 0xFFE, &[1, 2, 3, 4]).unwrap(); // spans two pages
    s.read(p + 0xFFE, &mut b).unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    // Re-committing keeps the contents.
    alloc(&s, p, 0x2000, MEM_COMMIT, PAGE_READWRITE).unwrap();
    s.read(p + 0xFFE, &mut b).unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    // An access crossing into a reserved page faults as a whole, at the first bad page.
    assert_eq!(
        s.write(p + 0x1FFE, &[9; 4]),
        Err(av(p + 0x2000, Access::Write))
    );
    s.read(p + 0x1FFE, &mut b[..2]).unwrap();
    assert_eq!(&b[..2], &[0, 0]);
    s.virtual_free(p, 0x1000, MEM_DECOMMIT).unwrap();
    alloc(&s, p, 0x1000, MEM_COMMIT, PAGE_READWRITE).unwrap();
    s.read(p + 0xFFE, &mut b).unwrap();
    assert_eq!(b, [0, 0, 3, 4]);
    s.virtual_free(p, 0, MEM_RELEASE).unwrap();
    assert_eq!(
        s.read(p + 0x1000, &mut b),
        Err(av(p + 0x1000, Access::Read))
    );
    assert_eq!(s.os().stored_pages(), 0);
}

#[test]
fn protections_are_enforced() {
    let s = win32();
    let p = alloc(&s, 0, 0x3000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE).unwrap();
    s.write(p, &[7]).unwrap();
    let mut old = 0;
    old = s.virtual_protect(p, 0x1000, PAGE_READONLY).unwrap_or(old);
    assert_eq!(old, PAGE_READWRITE);
    let mut b = [0u8];
    s.read(p, &mut b).unwrap();
    assert_eq!(b[0], 7);
    assert_eq!(s.write(p, &[8]), Err(av(p, Access::Write)));
    s.virtual_protect(p, 0x1000, PAGE_NOACCESS).unwrap();
    assert_eq!(s.read(p, &mut b), Err(av(p, Access::Read)));
    s.virtual_protect(p, 0x1000, PAGE_READWRITE).unwrap();
    s.read(p, &mut b).unwrap();
    assert_eq!(b[0], 7, "a protection change keeps the contents");
    assert_eq!(
        format!("{}", s.write(0x10, &[1]).unwrap_err()),
        "access violation at 0x10 (write)"
    );
}

#[test]
fn guard_pages_are_one_shot() {
    let s = win32();
    let p = alloc(
        &s,
        0,
        0x2000,
        MEM_RESERVE | MEM_COMMIT,
        PAGE_READWRITE | PAGE_GUARD,
    )
    .unwrap();
    assert_eq!(s.query(p).unwrap().protect, PAGE_READWRITE | PAGE_GUARD);
    let mut b = [0u8; 2];
    let e = s.read(p + 4, &mut b).unwrap_err();
    assert_eq!(
        e,
        AccessError::GuardPage {
            address: p + 4,
            access: Access::Read
        }
    );
    assert_eq!(e.exception_code(), 0x8000_0001);
    assert_eq!(
        format!("{e}"),
        format!("guard page violation at {:#x} (read)", p + 4)
    );
    // Gone from the first page only.
    let i = s.query(p).unwrap();
    assert_eq!((i.protect, i.region_size), (PAGE_READWRITE, 0x1000));
    s.read(p + 4, &mut b).unwrap();
    s.write(p + 4, &[1, 2]).unwrap();
    // A write crossing into the second page meets its guard.
    assert!(matches!(
        s.write(p + 0xFFF, &[1, 2]),
        Err(AccessError::GuardPage { address, access: Access::Write }) if address == p + 0x1000
    ));
    s.write(p + 0xFFF, &[1, 2]).unwrap();
    // VirtualProtect sets guards again; a read-only guard page: guard first, then AV on write.
    s.virtual_protect(p, 0x1000, PAGE_READONLY | PAGE_GUARD)
        .unwrap();
    assert!(matches!(
        s.write(p, &[1]),
        Err(AccessError::GuardPage { .. })
    ));
    assert_eq!(s.write(p, &[1]), Err(av(p, Access::Write)));
    // VirtualLock meets a guard page: 0x80000001, and the guard is gone.
    s.virtual_protect(p + 0x1000, 0x1000, PAGE_READWRITE | PAGE_GUARD)
        .unwrap();
    assert_eq!(
        s.virtual_lock(p + 0x1000, 0x1000).unwrap_err().win32_code(),
        0x8000_0001
    );
    s.read(p + 0x1000, &mut b).unwrap();
}

#[test]
fn write_watch_both_ways() {
    for kind in [WatchKind::Kernel, WatchKind::Signal] {
        let s = win32();
        s.set_write_watch_mode(kind);
        let p = alloc(
            &s,
            0,
            0x4000,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        )
        .unwrap();
        assert!(s.get_write_watch(p, 0x4000, false, 16).unwrap().is_empty());
        s.write(p + 0x1000, &[1]).unwrap();
        s.write(p + 0x3008, &[1, 2, 3]).unwrap();
        let mut b = [0u8; 4];
        s.read(p + 0x3008, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 0], "{kind:?}");
        assert_eq!(
            s.get_write_watch(p, 0x4000, true, 16).unwrap(),
            vec![p + 0x1000, p + 0x3000],
            "{kind:?}"
        );
        assert!(s.get_write_watch(p, 0x4000, false, 16).unwrap().is_empty());
        s.write(p, &[1]).unwrap();
        s.reset_write_watch(p, 0x4000).unwrap();
        assert!(s.get_write_watch(p, 0x4000, false, 16).unwrap().is_empty());
        s.virtual_free(p, 0, MEM_RELEASE).unwrap();
    }
}

#[test]
fn reset_and_undo() {
    let s = win32();
    let p = alloc(&s, 0, 0x2000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE).unwrap();
    s.write(p, &[5]).unwrap();
    alloc(&s, p, 0x2000, MEM_RESET, PAGE_NOACCESS).unwrap();
    alloc(&s, p, 0x2000, MEM_RESET_UNDO, PAGE_NOACCESS).unwrap();
    let mut b = [0u8];
    s.read(p, &mut b).unwrap();
    assert_eq!(b[0], 5, "no memory pressure: the data stays");
    s.os().set_discard_on_reset(true);
    alloc(&s, p, 0x2000, MEM_RESET, PAGE_NOACCESS).unwrap();
    assert_eq!(
        alloc(&s, p, 0x2000, MEM_RESET_UNDO, PAGE_NOACCESS),
        Err(999)
    );
    s.read(p, &mut b).unwrap();
    assert_eq!(b[0], 0);
}

#[test]
fn rules_are_the_engines() {
    let s = win32();
    assert_eq!(
        alloc(&s, 0x4000_0000, 0, MEM_RESERVE, PAGE_READWRITE),
        Err(87)
    );
    alloc(&s, 0x4000_0000, 0x1000, MEM_RESERVE, PAGE_READWRITE).unwrap();
    assert_eq!(
        alloc(&s, 0x4000_0000, 0x1000, MEM_RESERVE, PAGE_READWRITE),
        Err(487)
    );
    assert_eq!(
        s.virtual_free(0x4000_0000, 0x1000, MEM_RELEASE)
            .unwrap_err()
            .win32_code(),
        87
    );
    assert_eq!(
        s.virtual_protect(0x4000_0000, 0x1000, PAGE_READONLY)
            .unwrap_err()
            .win32_code(),
        487
    );
    // Beyond the 32-bit user space.
    assert_eq!(
        alloc(&s, 0x8000_0000, 0x1000, MEM_RESERVE, PAGE_READWRITE),
        Err(87)
    );
    assert_eq!(s.query(0x8000_0000).unwrap_err().win32_code(), 87);
    // Large pages and AWE windows are simulated too (or refused by the rules).
    assert!(!s.os().real_memory());
    assert!(s.os().simulated_faults());
}

#[test]
fn native_accesses_are_not_simulated() {
    // SAFETY: only reads are attempted (and refused).
    let s = unsafe { Space::process() };
    assert_eq!(
        s.read(0x1000, &mut [0u8; 1]),
        Err(AccessError::NotSimulated)
    );
}

/// A simulated allocation at the same address as a real guarded one must not disturb the
/// real one's fault handling.
#[test]
fn simulated_guards_stay_out_of_the_real_fault_table() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: the handler only uses atomics and memory it owns.
    unsafe {
        virtmem::set_guard_page_handler(Some(Box::new(|_| {
            HITS.fetch_add(1, Ordering::SeqCst);
            true
        })))
    };
    // SAFETY: this test owns the allocation it makes and releases.
    let native = unsafe { Space::process() };
    let p = native
        .virtual_alloc(
            0,
            0x10000,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE | PAGE_GUARD,
            AllocFlavor::default(),
        )
        .unwrap();
    let s = Layout::WIN64;
    let sim = Space::simulated(s);
    assert_eq!(
        alloc(
            &sim,
            p,
            0x10000,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE | PAGE_GUARD
        ),
        Ok(p)
    );
    sim.virtual_free(p, 0, MEM_RELEASE).unwrap();
    // SAFETY: p is committed, readable memory (after its one-shot guard).
    let v = unsafe { std::ptr::read_volatile(p as *const u8) };
    assert_eq!(v, 0);
    assert_eq!(HITS.load(Ordering::SeqCst), 1);
    native.virtual_free(p, 0, MEM_RELEASE).unwrap();
    // SAFETY: the handler only uses atomics and memory it owns.
    unsafe { virtmem::set_guard_page_handler(None) };
}
