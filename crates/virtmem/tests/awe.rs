//! AWE: MEM_PHYSICAL windows and AllocateUserPhysicalPages / MapUserPhysicalPages(Scatter) /
//! FreeUserPhysicalPages (`semantics.md` §9).

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

const P: usize = 4096;

fn vq(p: usize) -> MEMORY_BASIC_INFORMATION {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    assert_ne!(unsafe { VirtualQuery(p as _, &mut m, size_of_val(&m)) }, 0);
    m
}

fn window(pages: usize) -> usize {
    let w = unsafe {
        VirtualAlloc(
            null(),
            pages * P,
            MEM_RESERVE | MEM_PHYSICAL,
            PAGE_READWRITE,
        )
    } as usize;
    assert_ne!(w, 0, "{}", GetLastError());
    w
}

fn alloc_pages(n: usize) -> Vec<usize> {
    let mut count = n;
    let mut pfns = vec![0usize; n];
    assert_eq!(
        unsafe { AllocateUserPhysicalPages(GetCurrentProcess(), &mut count, pfns.as_mut_ptr()) },
        TRUE
    );
    assert_eq!(count, n);
    pfns
}

fn err(ok: i32) -> u32 {
    assert_eq!(ok, FALSE);
    GetLastError()
}

#[test]
fn pages_keep_their_contents_as_they_move_between_addresses() {
    let w = window(16);
    let m = vq(w);
    assert_eq!(
        (
            m.AllocationProtect,
            m.State,
            m.Protect,
            m.Type,
            m.RegionSize
        ),
        (
            PAGE_READWRITE,
            MEM_COMMIT,
            PAGE_NOACCESS,
            MEM_PRIVATE,
            16 * P
        ),
        "an empty window"
    );
    let pfns = alloc_pages(4);
    unsafe {
        assert_eq!(MapUserPhysicalPages(w as _, 4, pfns.as_ptr()), TRUE);
        for (i, _) in pfns.iter().enumerate() {
            assert_eq!(
                *((w + i * P) as *const u8),
                0,
                "fresh physical pages read zero"
            );
            *((w + i * P) as *mut u64) = 0x1111 * (i as u64 + 1);
        }
        let m = vq(w);
        assert_eq!((m.Protect, m.RegionSize), (PAGE_READWRITE, 4 * P));
        assert_eq!(vq(w + 4 * P).Protect, PAGE_NOACCESS);
        // Unmap, then map the pages in reverse order further up.
        assert_eq!(MapUserPhysicalPages(w as _, 4, null()), TRUE);
        assert_eq!(vq(w).Protect, PAGE_NOACCESS);
        let rev: Vec<usize> = pfns.iter().rev().copied().collect();
        assert_eq!(
            MapUserPhysicalPages((w + 8 * P) as _, 4, rev.as_ptr()),
            TRUE
        );
        for i in 0..4 {
            assert_eq!(*((w + (8 + i) * P) as *const u64), 0x1111 * (4 - i as u64));
        }
        // Scatter: page 0 to slot 1, page 3 to slot 15 (each frame at one address at a time:
        // unmap first).
        assert_eq!(MapUserPhysicalPages((w + 8 * P) as _, 4, null()), TRUE);
        let addrs = [(w + P) as *const c_void, (w + 15 * P) as *const c_void];
        let two = [pfns[0], pfns[3]];
        assert_eq!(
            MapUserPhysicalPagesScatter(addrs.as_ptr(), 2, two.as_ptr()),
            TRUE
        );
        assert_eq!(*((w + P) as *const u64), 0x1111);
        assert_eq!(*((w + 15 * P) as *const u64), 0x4444);
        // Freeing mapped pages unmaps them.
        let mut n = 4usize;
        assert_eq!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut n, pfns.as_ptr()),
            TRUE
        );
        assert_eq!(n, 4);
        assert_eq!(vq(w + P).Protect, PAGE_NOACCESS);
        assert_eq!(VirtualFree(w as _, 0, MEM_RELEASE), TRUE);
    }
}

#[test]
fn documented_and_chosen_errors() {
    let w = window(8);
    let pfns = alloc_pages(2);
    let other = alloc_pages(1);
    unsafe {
        SetLastError(0);
        assert_eq!(
            err(MapUserPhysicalPages((w + 1) as _, 1, pfns.as_ptr())),
            87,
            "unaligned"
        );
        assert_eq!(
            err(MapUserPhysicalPages((w + 7 * P) as _, 2, pfns.as_ptr())),
            87,
            "past the window"
        );
        let plain = VirtualAlloc(null(), P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert_eq!(
            err(MapUserPhysicalPages(plain, 1, pfns.as_ptr())),
            87,
            "not a window"
        );
        VirtualFree(plain, 0, MEM_RELEASE);
        assert_eq!(
            err(MapUserPhysicalPages(w as _, 0, pfns.as_ptr())),
            87,
            "count 0"
        );
        let bogus = [0xdead_beefusize];
        assert_eq!(
            err(MapUserPhysicalPages(w as _, 1, bogus.as_ptr())),
            87,
            "not owned"
        );
        let twice = [pfns[0], pfns[0]];
        assert_eq!(
            err(MapUserPhysicalPages(w as _, 2, twice.as_ptr())),
            87,
            "twice"
        );
        assert_eq!(MapUserPhysicalPages(w as _, 1, pfns.as_ptr()), TRUE);
        assert_eq!(
            err(MapUserPhysicalPages((w + P) as _, 1, pfns.as_ptr())),
            87,
            "mapped elsewhere"
        );
        // A failing call changed nothing: page 0 still mapped at w, page 1 not mapped.
        assert_eq!(vq(w).Protect, PAGE_READWRITE);
        assert_eq!(vq(w + P).Protect, PAGE_NOACCESS);
        // Mapping over a mapped address replaces it.
        assert_eq!(MapUserPhysicalPages(w as _, 1, other.as_ptr()), TRUE);
        assert_eq!(MapUserPhysicalPages((w + P) as _, 1, pfns.as_ptr()), TRUE);
        // Windows refuse decommit (487), VirtualLock (87), and other protections (487).
        SetLastError(0);
        assert_eq!(err(VirtualFree(w as _, P, MEM_DECOMMIT)), 487);
        assert_eq!(err(VirtualLock(w as _, P)), 87);
        let mut old = 0;
        assert_eq!(
            err(VirtualProtect(w as _, P, PAGE_EXECUTE_READ, &mut old)),
            487
        );
        // NOACCESS / READONLY / READWRITE apply to the window's mapped pages (as on Windows).
        let mut old = 0;
        assert_eq!(VirtualProtect(w as _, P, PAGE_READONLY, &mut old), TRUE);
        assert_eq!(old, PAGE_READWRITE);
        assert_eq!(vq(w).Protect, PAGE_READONLY);
        assert_eq!(
            vq(w + 2 * P).Protect,
            PAGE_NOACCESS,
            "unmapped pages stay NOACCESS"
        );
        assert_eq!(VirtualProtect(w as _, P, PAGE_READWRITE, &mut old), TRUE);
        assert_eq!(old, PAGE_READONLY);
        // Handles and pointers.
        let mut n = 1usize;
        let mut out = [0usize; 1];
        assert_eq!(
            err(AllocateUserPhysicalPages(
                null_mut(),
                &mut n,
                out.as_mut_ptr()
            )),
            6
        );
        assert_eq!(
            err(AllocateUserPhysicalPages(
                GetCurrentProcess(),
                null_mut(),
                out.as_mut_ptr()
            )),
            998
        );
        // Freeing an unknown frame stops there and says how many were freed.
        let mixed = [pfns[0], 0xdead_beef, pfns[1]];
        let mut n = 3usize;
        assert_eq!(
            err(FreeUserPhysicalPages(
                GetCurrentProcess(),
                &mut n,
                mixed.as_ptr()
            )),
            87
        );
        assert_eq!(n, 1);
        // Releasing the window unmaps whatever is mapped; the pages stay allocated.
        assert_eq!(VirtualFree(w as _, 0, MEM_RELEASE), TRUE);
        let rest = [pfns[1], other[0]];
        let mut n = 2usize;
        assert_eq!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut n, rest.as_ptr()),
            TRUE
        );
        assert_eq!(n, 2);
    }
}

#[test]
fn window_rules() {
    unsafe {
        SetLastError(0);
        assert!(VirtualAlloc(null(), P, MEM_RESERVE | MEM_PHYSICAL, PAGE_READONLY).is_null());
        assert_eq!(GetLastError(), 87);
        assert!(VirtualAlloc(
            null(),
            P,
            MEM_RESERVE | MEM_COMMIT | MEM_PHYSICAL,
            PAGE_READWRITE
        )
        .is_null());
        assert_eq!(GetLastError(), 87);
        let w = window(1);
        assert!(VirtualAlloc(w as _, P, MEM_COMMIT, PAGE_READWRITE).is_null());
        assert_eq!(GetLastError(), 487);
        VirtualFree(w as _, 0, MEM_RELEASE);
    }
}
