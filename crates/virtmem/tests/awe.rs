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

/// RELIABILITY O3: each `Space` has its own physical-page store. Two spaces hand out the same
/// frame numbers, but a frame of one is not a frame of the other: writes through one space's
/// window never show in the other's, and freeing a frame in one leaves the other's intact.
#[test]
fn two_spaces_have_separate_physical_pages() {
    use virtmem::engine::Space;
    use virtmem::os::linux::LinuxOs;
    use virtmem::rules::requests::AllocFlavor;
    use virtmem::Layout;
    // SAFETY: the test acts only on memory these spaces allocate.
    let spaces = unsafe {
        [
            Space::new(Layout::native(), LinuxOs::new()),
            Space::new(Layout::native(), LinuxOs::new()),
        ]
    };
    let mut windows = Vec::new();
    for (i, s) in spaces.iter().enumerate() {
        let w = s
            .virtual_alloc(
                0,
                4 * P,
                MEM_RESERVE | MEM_PHYSICAL,
                PAGE_READWRITE,
                AllocFlavor::default(),
            )
            .unwrap();
        let pfns = s.allocate_physical_pages(2).unwrap();
        // The numbering is per space: both start at the same frame numbers.
        windows.push((w, pfns.clone()));
        s.map_physical_pages(w, 2, Some(&pfns)).unwrap();
        // SAFETY: two mapped, writable pages of the window.
        unsafe {
            ((w) as *mut u8).write_volatile(0x10 + i as u8);
            ((w + P) as *mut u8).write_volatile(0x20 + i as u8);
        }
    }
    assert_eq!(windows[0].1, windows[1].1, "frame numbers are per space");
    for (i, (w, _)) in windows.iter().enumerate() {
        // SAFETY: mapped pages.
        unsafe {
            assert_eq!((*w as *const u8).read_volatile(), 0x10 + i as u8);
            assert_eq!(((w + P) as *const u8).read_volatile(), 0x20 + i as u8);
        }
    }
    // Freeing (and so discarding) space 0's frames leaves space 1's contents.
    let (n, r) = spaces[0].free_physical_pages(&windows[0].1);
    assert_eq!((n, r.is_ok()), (2, true));
    let (w1, pfns1) = &windows[1];
    // SAFETY: still mapped in space 1.
    unsafe {
        assert_eq!((*w1 as *const u8).read_volatile(), 0x11);
        assert_eq!(((w1 + P) as *const u8).read_volatile(), 0x21);
    }
    // Frames move within a space, keeping contents, and space 0 gets zeroed fresh frames.
    spaces[1]
        .map_physical_pages(w1 + 2 * P, 2, Some(pfns1))
        .unwrap_err();
    spaces[1].map_physical_pages(*w1, 2, None).unwrap();
    spaces[1]
        .map_physical_pages(w1 + 2 * P, 2, Some(pfns1))
        .unwrap();
    let again = spaces[0].allocate_physical_pages(2).unwrap();
    spaces[0]
        .map_physical_pages(windows[0].0, 2, Some(&again))
        .unwrap();
    // SAFETY: mapped pages of both windows.
    unsafe {
        assert_eq!(((w1 + 2 * P) as *const u8).read_volatile(), 0x11);
        assert_eq!(((w1 + 3 * P) as *const u8).read_volatile(), 0x21);
        assert_eq!((windows[0].0 as *const u8).read_volatile(), 0);
        assert_eq!(((windows[0].0 + P) as *const u8).read_volatile(), 0);
    }
    for (s, (w, _)) in spaces.iter().zip(&windows) {
        s.virtual_free(*w, 0, MEM_RELEASE).unwrap();
    }
}

/// RELIABILITY O5: a window released by one thread while another thread makes a window at
/// the same address and maps frames into it. The release used to clean the AWE table after
/// the range was unmapped, so it could drop the new window's records (and a forked child
/// then shared that frame with its parent). The new window's frames stay recorded: a
/// second map call rebuilds the window's pages from the table, and the first page must still
/// read as mapped. The second thread takes each address the moment it is released.
#[test]
fn a_released_window_never_takes_a_new_windows_frames() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let stop = AtomicBool::new(false);
    let last = AtomicUsize::new(0);
    // Stops the releasing thread however the checking loop ends (a failed assertion too).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    std::thread::scope(|s| {
        let _stop = Stop(&stop);
        s.spawn(|| {
            while !stop.load(SeqCst) {
                let w = window(2);
                last.store(w, SeqCst);
                // SAFETY: our window.
                assert_eq!(unsafe { VirtualFree(w as _, 0, MEM_RELEASE) }, TRUE);
            }
        });
        let mut taken = 0;
        for round in 0..3000 {
            // The address the other thread is releasing (or just released), else anywhere.
            let x = last.load(SeqCst);
            let w = (0..200)
                .find_map(|_| {
                    // SAFETY: a new window at `x` if it is free.
                    let p = unsafe {
                        VirtualAlloc(x as _, 2 * P, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE)
                    } as usize;
                    (p != 0).then_some(p)
                })
                .inspect(|_| taken += 1)
                .unwrap_or_else(|| window(2));
            let f = alloc_pages(2);
            // SAFETY: our window and frames.
            unsafe {
                assert_ne!(MapUserPhysicalPages(w as _, 1, f.as_ptr()), 0);
                assert_ne!(MapUserPhysicalPages((w + P) as _, 1, f[1..].as_ptr()), 0);
            }
            let m = vq(w);
            assert_eq!(
                (m.State, m.Protect),
                (MEM_COMMIT, PAGE_READWRITE),
                "round {round}: the first frame's record was lost"
            );
            // SAFETY: our window and frames.
            unsafe {
                assert_ne!(MapUserPhysicalPages(w as _, 2, null()), 0);
                let mut n = f.len();
                assert_ne!(
                    FreeUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_ptr()),
                    0
                );
                assert_eq!(VirtualFree(w as _, 0, MEM_RELEASE), TRUE);
            }
        }
        eprintln!("{taken} of 3000 windows took an address just released");
    });
}
