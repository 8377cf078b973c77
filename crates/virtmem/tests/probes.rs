//! The pointer probes (issue 15 item 3; `windows-cases.md` case 143): IsBadReadPtr,
//! IsBadWritePtr, IsBadHugeReadPtr, IsBadHugeWritePtr, IsBadCodePtr, IsBadStringPtrA/W, on
//! NULL, zero sizes, free, reserved, read-only, no-access and guard pages, ranges that wrap,
//! views, write-watched pages and memory virtmem did not allocate. None may crash.

use std::ffi::c_void;
use std::ptr::null;
use virtmem::win32::*;

const P: usize = 4096;
const G: usize = 0x10000;

/// IsBadReadPtr; where no guard page is involved, IsBadHugeReadPtr must agree.
fn bad_read(p: usize, n: usize) -> bool {
    unsafe { IsBadReadPtr(p as *const c_void, n) != 0 }
}

fn bad_write(p: usize, n: usize) -> bool {
    unsafe { IsBadWritePtr(p as *const c_void, n) != 0 }
}

/// Both spellings, on memory without guard pages (a probe takes a guard away).
fn bad_both(p: usize, n: usize) -> (bool, bool) {
    let huge = unsafe {
        (
            IsBadHugeReadPtr(p as *const c_void, n) != 0,
            IsBadHugeWritePtr(p as *const c_void, n) != 0,
        )
    };
    assert_eq!(huge, (bad_read(p, n), bad_write(p, n)));
    huge
}

fn alloc(size: usize, ty: u32, prot: u32) -> usize {
    let p = unsafe { VirtualAlloc(null(), size, ty, prot) } as usize;
    assert_ne!(p, 0, "VirtualAlloc: {}", GetLastError());
    p
}

fn protect(p: usize, size: usize, prot: u32) {
    let mut old = 0;
    assert_eq!(
        unsafe { VirtualProtect(p as _, size, prot, &mut old) },
        TRUE
    );
}

fn query(p: usize) -> MEMORY_BASIC_INFORMATION {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    assert_ne!(unsafe { VirtualQuery(p as _, &mut m, size_of_val(&m)) }, 0);
    m
}

fn release(p: usize) {
    assert_eq!(unsafe { VirtualFree(p as _, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn case_143_null_zero_sizes_free_memory_and_the_stack() {
    assert!(!bad_read(0, 0));
    assert!(bad_read(0, 1));
    assert!(!bad_write(0, 0));
    assert!(bad_write(0, 1));
    let far = 0xdead_beef;
    assert_eq!(query(far).State, MEM_FREE, "the test needs 0xdeadbeef free");
    assert!(!bad_read(far, 0));
    assert!(bad_read(far, 1));
    assert!(bad_write(far, 1));
    let local = [0u8; 64];
    let at = local.as_ptr() as usize;
    assert!(!bad_read(at, local.len()));
    assert!(!bad_write(at, local.len()));
    std::hint::black_box(&local);
    // A range that wraps around the address space.
    assert!(bad_read(usize::MAX - 2, 4));
    assert!(bad_write(at, usize::MAX));
}

#[test]
fn code_pointers() {
    assert_ne!(unsafe { IsBadCodePtr(None) }, 0);
    extern "system" fn f() -> isize {
        7
    }
    let code: unsafe extern "system" fn() -> isize = f;
    assert_eq!(unsafe { IsBadCodePtr(Some(code)) }, 0);
    // Code is not writable.
    assert!(bad_write(code as usize, 1));
    // SAFETY: a function pointer type with the value 0xdeadbeef, only compared, never called.
    let far: unsafe extern "system" fn() -> isize =
        unsafe { std::mem::transmute(0xdead_beefusize) };
    assert_ne!(unsafe { IsBadCodePtr(Some(far)) }, 0);
}

#[test]
fn reserved_committed_read_only_and_no_access_pages() {
    let b = alloc(4 * G, MEM_RESERVE, PAGE_NOACCESS);
    assert!(bad_read(b, 1), "reserved");
    unsafe { assert!(!VirtualAlloc(b as _, 4 * P, MEM_COMMIT, PAGE_READWRITE).is_null()) };
    assert!(!bad_read(b, 4 * P));
    assert!(!bad_write(b, 4 * P));
    // One byte past the committed pages is reserved.
    assert!(bad_read(b, 4 * P + 1));
    assert!(bad_read(b + 4 * P - 1, 2));
    protect(b + P, P, PAGE_READONLY);
    assert_eq!(bad_both(b, 4 * P), (false, true));
    assert_eq!(bad_both(b, P), (false, false));
    assert_eq!(bad_both(b + 4 * P, P), (true, true));
    protect(b + 2 * P, P, PAGE_NOACCESS);
    assert!(bad_read(b, 4 * P));
    assert!(!bad_read(b, 2 * P));
    protect(b + 2 * P, P, PAGE_EXECUTE_READ);
    assert!(!bad_read(b + 2 * P, P));
    assert!(bad_write(b + 2 * P, P));
    release(b);
    assert!(bad_read(b, 1), "released");
}

#[test]
fn a_guard_page_is_bad_once_and_loses_its_guard() {
    let b = alloc(G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    protect(b + P, P, PAGE_READWRITE | PAGE_GUARD);
    assert_eq!(query(b + P).Protect, PAGE_READWRITE | PAGE_GUARD);
    // The pages before the guard page are fine.
    assert!(!bad_read(b, P));
    assert!(bad_read(b, 2 * P));
    assert_eq!(
        query(b + P).Protect,
        PAGE_READWRITE,
        "the probe took the guard"
    );
    assert!(!bad_read(b, 2 * P));
    protect(b + 3 * P, P, PAGE_READONLY | PAGE_GUARD);
    assert!(bad_write(b + 3 * P, 1));
    assert_eq!(query(b + 3 * P).Protect, PAGE_READONLY);
    assert!(bad_write(b + 3 * P, 1), "read-only stays unwritable");
    release(b);
}

#[test]
fn two_adjacent_allocations_and_foreign_neighbours() {
    // Two reservations side by side (the second placed just past the first).
    let a = alloc(G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    let b =
        unsafe { VirtualAlloc((a + G) as _, G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) } as usize;
    if b == a + G {
        assert!(!bad_read(a, 2 * G));
        assert!(!bad_write(a + G - 8, 16));
        protect(b, P, PAGE_READONLY);
        assert!(bad_write(a + G - 8, 16));
        release(b);
    } else if b != 0 {
        release(b);
    }
    // Past the end of `a`: free (or someone else's memory, never ours).
    if query(a + G).State == MEM_FREE {
        assert!(bad_read(a + G - 8, 16));
    }
    release(a);
}

#[test]
fn write_watched_and_view_pages() {
    // Signal-driven write watch keeps clean pages write-protected in the kernel: they are
    // still writable as Windows sees them.
    virtmem::set_write_watch_mode(virtmem::WatchKind::Signal);
    let w = alloc(
        G,
        MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
        PAGE_READWRITE,
    );
    assert!(!bad_write(w, G));
    release(w);
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            G as u32,
            null(),
        );
        assert!(!h.is_null());
        let cow = MapViewOfFile(h, FILE_MAP_COPY, 0, 0, G).Value as usize;
        let ro = MapViewOfFile(h, FILE_MAP_READ, 0, 0, G).Value as usize;
        assert!(cow != 0 && ro != 0);
        assert!(!bad_write(cow, G), "copy-on-write pages are writable");
        assert!(!bad_read(ro, G));
        assert!(bad_write(ro, 1));
        for v in [cow, ro] {
            assert_eq!(
                UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v as _ }),
                TRUE
            );
        }
        assert_eq!(CloseHandle(h), TRUE);
    }
}

#[test]
fn strings_up_to_their_zero_or_the_limit() {
    unsafe {
        assert_eq!(IsBadStringPtrA(c"hello".as_ptr().cast(), usize::MAX), 0);
        assert_ne!(IsBadStringPtrA(std::ptr::null(), 5), 0);
        assert_eq!(
            IsBadStringPtrA(std::ptr::null(), 0),
            0,
            "a zero limit is never bad"
        );
        let wide: Vec<u16> = "wide\0".encode_utf16().collect();
        assert_eq!(IsBadStringPtrW(wide.as_ptr(), usize::MAX), 0);
        assert_ne!(IsBadStringPtrW(0xdead_beef as *const u16, 1), 0);
    }
    // A string that runs to the end of its page, before a no-access page.
    let b = alloc(G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    protect(b + P, P, PAGE_NOACCESS);
    let s = (b + P - 10) as *mut u8;
    unsafe {
        std::ptr::write_bytes(s, b'x', 10);
        assert_ne!(
            IsBadStringPtrA(s, usize::MAX),
            0,
            "no zero before the no-access page"
        );
        assert_eq!(IsBadStringPtrA(s, 10), 0, "the limit stops before the page");
        assert_ne!(IsBadStringPtrA(s, 11), 0);
        *s.add(9) = 0;
        assert_eq!(
            IsBadStringPtrA(s, usize::MAX),
            0,
            "the zero is the page's last byte"
        );
        // UTF-16, a unit straddling the page boundary: the string starts at an odd address.
        let w = (b + P - 7) as *mut u8;
        std::ptr::write_bytes(w, 1, 7);
        assert_ne!(IsBadStringPtrW(w.cast(), usize::MAX), 0);
        assert_eq!(IsBadStringPtrW(w.cast(), 3), 0);
        protect(b + P, P, PAGE_READWRITE);
        *(b as *mut u8).add(P) = 0; // completes the straddling unit with a zero high byte...
        *(b as *mut u8).add(P + 1) = 0; // ...and the next one is zero
        assert_eq!(IsBadStringPtrW(w.cast(), usize::MAX), 0);
    }
    release(b);
}

#[test]
fn random_addresses_never_crash() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = x as usize & 0x7FFF_FFFF_FFFF;
        let n = (x >> 47) as usize & 0xFFFF;
        let _ = bad_read(p, n);
        let _ = bad_write(p, n);
        let _ = unsafe { IsBadStringPtrA(p as *const u8, n) };
        let _ = unsafe { IsBadStringPtrW(p as *const u16, n) };
    }
}
