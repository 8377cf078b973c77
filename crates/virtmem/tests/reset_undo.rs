//! MEM_RESET / MEM_RESET_UNDO on real memory: success implies intact data; pages the kernel
//! discarded (forced with MADV_PAGEOUT, which reclaims lazily freed pages without swap) make
//! it fail with ERROR_SWAPERROR, and never report success after a loss.

use std::ffi::c_void;
use virtmem::win32::*;

const P: usize = 4096;

unsafe fn alloc_rw(pages: usize) -> *mut u8 {
    let p = VirtualAlloc(
        std::ptr::null(),
        pages * P,
        MEM_RESERVE | MEM_COMMIT,
        PAGE_READWRITE,
    );
    assert!(!p.is_null());
    p as *mut u8
}

unsafe fn fill(p: *mut u8, pages: usize) {
    for i in 0..pages * P {
        *p.add(i) = (i / P) as u8 ^ (i as u8) | 1;
    }
}

unsafe fn intact(p: *const u8, pages: usize) -> bool {
    (0..pages * P).all(|i| *p.add(i) == (i / P) as u8 ^ (i as u8) | 1)
}

unsafe fn pageout(p: *mut u8, len: usize) -> bool {
    // MADV_PAGEOUT (21): reclaim now. Lazily freed clean pages are dropped.
    libc::madvise(p as *mut c_void, len, 21) == 0
}

#[test]
fn undo_without_pressure_keeps_every_byte() {
    unsafe {
        let p = alloc_rw(16);
        fill(p, 16);
        assert_eq!(
            VirtualAlloc(p as _, 16 * P, MEM_RESET, PAGE_NOACCESS),
            p as _
        );
        assert_eq!(
            VirtualAlloc(p as _, 16 * P, MEM_RESET_UNDO, PAGE_NOACCESS),
            p as _
        );
        assert!(intact(p, 16));
        // The undo cancelled the lazy free: reclaim can no longer drop the data.
        if pageout(p, 16 * P) {
            assert!(intact(p, 16));
        }
        assert_eq!(VirtualFree(p as _, 0, MEM_RELEASE), TRUE);
    }
}

#[test]
fn undo_after_discard_fails_and_never_claims_success() {
    unsafe {
        let p = alloc_rw(8);
        fill(p, 8);
        assert!(!VirtualAlloc(p as _, 8 * P, MEM_RESET, PAGE_NOACCESS).is_null());
        if !pageout(p.add(2 * P), 2 * P) {
            eprintln!("skipped: MADV_PAGEOUT is not available on this kernel");
            return;
        }
        SetLastError(0);
        let r = VirtualAlloc(p as _, 8 * P, MEM_RESET_UNDO, PAGE_NOACCESS);
        assert!(
            r.is_null(),
            "MEM_RESET_UNDO reported success after pages were discarded"
        );
        assert_eq!(GetLastError(), 999);
        // The discarded pages read as zero; the others kept their data.
        assert!((2 * P..4 * P).all(|i| *p.add(i) == 0));
        assert!(intact(p, 2));
        assert!((4 * P..8 * P).all(|i| *p.add(i) == (i / P) as u8 ^ (i as u8) | 1));
        assert_eq!(VirtualFree(p as _, 0, MEM_RELEASE), TRUE);
    }
}

#[test]
fn undo_of_pages_made_read_only_or_noaccess_after_the_reset() {
    unsafe {
        for prot in [PAGE_READONLY, PAGE_NOACCESS] {
            let p = alloc_rw(4);
            fill(p, 4);
            assert!(!VirtualAlloc(p as _, 4 * P, MEM_RESET, PAGE_NOACCESS).is_null());
            let mut old = 0;
            assert_eq!(VirtualProtect(p as _, 4 * P, prot, &mut old), TRUE);
            assert!(!VirtualAlloc(p as _, 4 * P, MEM_RESET_UNDO, PAGE_NOACCESS).is_null());
            pageout(p, 4 * P);
            assert_eq!(
                VirtualProtect(p as _, 4 * P, PAGE_READWRITE, &mut old),
                TRUE
            );
            assert!(intact(p, 4), "protection {prot:#x}");
            assert_eq!(VirtualFree(p as _, 0, MEM_RELEASE), TRUE);
        }
    }
}

#[test]
fn untouched_pages_are_not_losses() {
    unsafe {
        // Pages never written read as zero whatever happens: resetting them loses nothing.
        let p = alloc_rw(8);
        fill(p, 2);
        assert!(!VirtualAlloc(p as _, 8 * P, MEM_RESET, PAGE_NOACCESS).is_null());
        assert!(!VirtualAlloc(p as _, 8 * P, MEM_RESET_UNDO, PAGE_NOACCESS).is_null());
        assert!(intact(p, 2));
        assert!((2 * P..8 * P).all(|i| *p.add(i) == 0));
        assert_eq!(VirtualFree(p as _, 0, MEM_RELEASE), TRUE);
    }
}

#[test]
fn reset_keeps_state_and_protection() {
    unsafe {
        let p = alloc_rw(2);
        let mut mbi = MEMORY_BASIC_INFORMATION::default();
        assert_eq!(VirtualAlloc(p as _, P, MEM_RESET, PAGE_NOACCESS), p as _);
        VirtualQuery(p as _, &mut mbi, size_of_val(&mbi));
        assert_eq!(
            (mbi.State, mbi.Protect, mbi.RegionSize),
            (MEM_COMMIT, PAGE_READWRITE, 2 * P)
        );
        assert_eq!(VirtualFree(p as _, 0, MEM_RELEASE), TRUE);
    }
}
