//! VirtualAlloc2: placeholders (`windows-cases.md` §M, cases 132–139) and address requirements
//! (§L, cases 127–131).

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

const G: usize = 0x10000;
const S: usize = 0x40000;

fn le() -> u32 {
    GetLastError()
}

unsafe fn va2(base: usize, size: usize, ty: u32, prot: u32) -> *mut c_void {
    SetLastError(0);
    VirtualAlloc2(null_mut(), base as _, size, ty, prot, null_mut(), 0)
}

unsafe fn vf(base: usize, size: usize, ty: u32) -> (i32, u32) {
    SetLastError(0);
    (VirtualFree(base as _, size, ty), le())
}

fn vq(p: usize) -> MEMORY_BASIC_INFORMATION {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    assert_ne!(unsafe { VirtualQuery(p as _, &mut m, size_of_val(&m)) }, 0);
    m
}

fn placeholder(size: usize) -> usize {
    let p = unsafe {
        va2(
            0,
            size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
        )
    } as usize;
    assert_ne!(p, 0, "placeholder: {}", le());
    p
}

#[test]
fn case_132_reserve_a_placeholder() {
    unsafe {
        let ph = placeholder(S);
        let m = vq(ph);
        assert_eq!(
            (m.AllocationProtect, m.State, m.Type, m.RegionSize),
            (PAGE_NOACCESS, MEM_RESERVE, MEM_PRIVATE, S)
        );
        assert!(va2(0, S, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_READWRITE).is_null());
        assert_eq!(le(), 87);
        // VirtualAlloc does not know the flag.
        SetLastError(0);
        assert!(VirtualAlloc(
            null(),
            S,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS
        )
        .is_null());
        assert_eq!(le(), 87);
        assert_eq!(vf(ph, 0, MEM_RELEASE).0, TRUE);
    }
}

#[test]
fn case_133_135_preserve_on_the_wrong_things() {
    unsafe {
        let r = VirtualAlloc(null(), S, MEM_RESERVE, PAGE_READWRITE) as usize;
        assert_eq!(
            vf(r, S, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            (FALSE, 487),
            "case 133"
        );
        assert_eq!(vf(r, 0, MEM_RELEASE), (TRUE, 0));
        let ph = placeholder(S);
        assert_eq!(
            vf(ph, 0, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            (FALSE, 87),
            "case 135"
        );
        assert_eq!(
            vf(ph, S, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            (FALSE, 487),
            "case 135 whole"
        );
        assert_eq!(vf(ph, 0, MEM_RELEASE).0, TRUE);
    }
}

#[test]
fn cases_134_136_split_and_release_parts() {
    unsafe {
        let ph = placeholder(2 * S);
        assert_eq!(
            vf(ph, S, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0,
            TRUE,
            "case 134"
        );
        for base in [ph, ph + S] {
            let m = vq(base);
            assert_eq!(
                (m.AllocationBase as usize, m.State, m.RegionSize),
                (base, MEM_RESERVE, S)
            );
        }
        // Case 136: free the middle quarter of the second half.
        let q = S / 4;
        assert_eq!(
            vf(ph + S + q, q, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0,
            TRUE
        );
        assert_eq!(vq(ph + S).RegionSize, q);
        assert_eq!(vq(ph + S + q).RegionSize, q);
        assert_eq!(vq(ph + S + 2 * q).RegionSize, 2 * q);
        for base in [ph, ph + S, ph + S + q, ph + S + 2 * q] {
            assert_eq!(vf(base, 0, MEM_RELEASE).0, TRUE, "release part {base:#x}");
        }
        assert_eq!(vq(ph).State, MEM_FREE);
    }
}

#[test]
fn case_137_replace_fill_preserve_replace_reads_zero() {
    unsafe {
        let ph = placeholder(S);
        let p = va2(
            ph,
            S,
            MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE,
        ) as usize;
        assert_eq!(p, ph, "replace: {}", le());
        let m = vq(ph);
        assert_eq!(
            (m.AllocationProtect, m.State, m.Protect),
            (PAGE_READWRITE, MEM_COMMIT, PAGE_READWRITE)
        );
        std::ptr::write_bytes(ph as *mut u8, 0xAB, S);
        assert_eq!(vf(ph, S, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0, TRUE);
        let m = vq(ph);
        assert_eq!(
            (m.AllocationProtect, m.State, m.RegionSize),
            (PAGE_NOACCESS, MEM_RESERVE, S)
        );
        let p = va2(
            ph,
            S,
            MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            PAGE_READONLY,
        ) as usize;
        assert_eq!(p, ph);
        assert!(
            (0..S).all(|i| *((ph + i) as *const u8) == 0),
            "replaced memory reads as zero"
        );
        let m = vq(ph);
        assert_eq!((m.AllocationProtect, m.State), (PAGE_READONLY, MEM_COMMIT));
        assert_eq!(vf(ph, 0, MEM_RELEASE).0, TRUE);
    }
}

#[test]
fn case_138_operations_on_a_placeholder() {
    unsafe {
        let ph = placeholder(S);
        assert!(va2(ph, S, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS).is_null());
        assert_eq!(le(), 487);
        assert!(va2(ph, S, MEM_RESERVE, PAGE_READWRITE).is_null());
        assert_eq!(le(), 487);
        assert!(va2(
            ph,
            S / 2,
            MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE
        )
        .is_null());
        assert_eq!(le(), 487);
        assert!(va2(ph, S, MEM_COMMIT, PAGE_READWRITE).is_null());
        assert_eq!(le(), 487);
        assert!(va2(ph, S, MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE).is_null());
        assert_eq!(le(), 87);
        assert!(va2(ph, S, MEM_COMMIT | MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE).is_null());
        assert_eq!(le(), 87);
        assert_eq!(vf(ph, 0, MEM_RELEASE).0, TRUE);
    }
}

#[test]
fn case_139_coalescing() {
    unsafe {
        let ph = placeholder(2 * S);
        assert_eq!(
            vf(ph, 2 * S, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS),
            (FALSE, 487),
            "one placeholder"
        );
        assert_eq!(vf(ph, S, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0, TRUE);
        assert_eq!(
            vf(ph, 2 * S, MEM_COALESCE_PLACEHOLDERS),
            (FALSE, 87),
            "without RELEASE"
        );
        assert_eq!(
            vf(ph, 2 * S + 0x1000, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS),
            (FALSE, 487)
        );
        assert_eq!(
            vf(ph, 2 * S - 0x1000, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS),
            (FALSE, 487)
        );
        assert_eq!(
            vf(
                ph + 0x1000,
                2 * S - 0x1000,
                MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS
            ),
            (FALSE, 487)
        );
        assert_eq!(
            vf(ph, 0, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS),
            (FALSE, 87)
        );
        assert_eq!(
            vf(ph, 2 * S, MEM_RELEASE),
            (FALSE, 87),
            "plain release over several"
        );
        assert_eq!(
            vf(ph, 2 * S, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS).0,
            TRUE
        );
        let m = vq(ph);
        assert_eq!((m.AllocationBase as usize, m.RegionSize), (ph, 2 * S));
        // A span including a replaced allocation cannot be coalesced.
        assert_eq!(vf(ph, S, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0, TRUE);
        assert_eq!(
            va2(ph, S, MEM_RESERVE | MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE) as usize,
            ph
        );
        assert_eq!(
            vf(ph, 2 * S, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS),
            (FALSE, 487)
        );
        assert_eq!(vf(ph, 0, MEM_RELEASE).0, TRUE);
        assert_eq!(vf(ph + S, 0, MEM_RELEASE).0, TRUE);
    }
}

#[test]
fn case_107_write_watch_on_a_replaced_placeholder() {
    unsafe {
        let ph = placeholder(G);
        let p = va2(
            ph,
            G,
            MEM_RESERVE | MEM_WRITE_WATCH | MEM_REPLACE_PLACEHOLDER,
            PAGE_READONLY,
        ) as usize;
        assert_eq!(p, ph, "{}", le());
        assert!(!VirtualAlloc(ph as _, G, MEM_COMMIT, PAGE_READWRITE).is_null());
        let m = vq(ph);
        assert_eq!(
            (m.AllocationProtect, m.State, m.RegionSize),
            (PAGE_READONLY, MEM_COMMIT, G)
        );
        let mut arr = [null_mut::<c_void>(); 16];
        let (mut n, mut g) = (16usize, 0u32);
        assert_eq!(
            GetWriteWatch(
                WRITE_WATCH_FLAG_RESET,
                ph as _,
                G,
                arr.as_mut_ptr(),
                &mut n,
                &mut g
            ),
            0
        );
        assert_eq!(n, 0);
        *((ph + 0x1000) as *mut u8) = 1;
        n = 16;
        assert_eq!(
            GetWriteWatch(0, ph as _, G, arr.as_mut_ptr(), &mut n, &mut g),
            0
        );
        assert_eq!((n, arr[0] as usize), (1, ph + 0x1000));
        assert_eq!(vf(ph, 0, MEM_RELEASE).0, TRUE);
    }
}

fn requirements(lowest: usize, highest: usize, alignment: usize) -> MEM_ADDRESS_REQUIREMENTS {
    MEM_ADDRESS_REQUIREMENTS {
        LowestStartingAddress: lowest as _,
        HighestEndingAddress: highest as _,
        Alignment: alignment,
    }
}

unsafe fn va2_req(
    size: usize,
    ty: u32,
    base: usize,
    r: &mut MEM_ADDRESS_REQUIREMENTS,
) -> *mut c_void {
    let mut p = MEM_EXTENDED_PARAMETER::default();
    p.Anonymous1._bitfield = MemExtendedParameterAddressRequirements as u64;
    p.Anonymous2.Pointer = r as *mut _ as *mut c_void;
    SetLastError(0);
    VirtualAlloc2(null_mut(), base as _, size, ty, PAGE_READWRITE, &mut p, 1)
}

#[test]
fn cases_127_to_131_address_requirements() {
    unsafe {
        let rc = MEM_RESERVE | MEM_COMMIT;
        // Case 127: all zero is fine.
        let p = va2_req(G, rc, 0, &mut requirements(0, 0, 0));
        assert!(!p.is_null());
        VirtualFree(p, 0, MEM_RELEASE);
        // Case 128: HighestEndingAddress.
        for bad in [
            0x2000_1001usize,
            0x2000_0FFE,
            0x2000_07FF,
            0x7FFF_FFFE_FFFF + 0x1000,
        ] {
            assert!(
                va2_req(0x40000, rc, 0, &mut requirements(0, bad, 0)).is_null(),
                "{bad:#x}"
            );
            assert_eq!(le(), 87);
        }
        let top = 0x7FFF_FFFE_FFFF;
        let p = va2_req(G, rc, 0, &mut requirements(0, top, 0)) as usize;
        assert_ne!(p, 0, "highest = max: {}", le());
        VirtualFree(p as _, 0, MEM_RELEASE);
        // Case 129: MEM_COMMIT without MEM_RESERVE, with requirements (Windows' test gives an
        // alignment) → 87. An all-zero structure is no requirement at all: the call is the
        // plain one.
        assert!(va2_req(G, MEM_COMMIT, 0, &mut requirements(0, 0, 0x40000)).is_null());
        assert_eq!(le(), 87);
        let plain = va2(0, G, MEM_COMMIT, PAGE_READWRITE) as usize;
        let zero = va2_req(G, MEM_COMMIT, 0, &mut requirements(0, 0, 0)) as usize;
        assert_eq!(
            zero == 0,
            plain == 0,
            "an all-zero structure changes nothing"
        );
        for p in [plain, zero] {
            if p != 0 {
                VirtualFree(p as _, 0, MEM_RELEASE);
            }
        }
        // A non-NULL BaseAddress with requirements → 87; with an all-zero structure, which
        // "is the same as not specifying one at all" (Microsoft's reference), the address is
        // used as given: Windows' own test accepts it (or answers CONFLICTING_ADDRESSES where
        // the range is taken). Issue 15: virtmem returned 87 here.
        let free = va2_req(G, rc, 0, &mut requirements(0, 0, 0)) as usize;
        assert_ne!(free, 0);
        VirtualFree(free as _, 0, MEM_RELEASE);
        for r in [
            requirements(0, 0x7FFF_FFFE_FFFF, 0),
            requirements(0, 0, 0x40000),
            requirements(0x1_0000, 0, 0),
        ] {
            let mut r = r;
            assert!(va2_req(G, rc, free, &mut r).is_null());
            assert_eq!(le(), 87);
        }
        let p = va2_req(G, rc, free, &mut requirements(0, 0, 0)) as usize;
        assert_eq!(p, free, "all-zero requirements with an address: {}", le());
        // The same address again: taken → 487, as without the structure.
        assert!(va2_req(G, rc, free, &mut requirements(0, 0, 0)).is_null());
        assert_eq!(le(), 487);
        VirtualFree(p as _, 0, MEM_RELEASE);
        // Case 130: alignment.
        let p = va2_req(G, rc, 0, &mut requirements(0, 0, 0x40000)) as usize;
        assert!(p != 0 && p % 0x40000 == 0, "{p:#x}");
        VirtualFree(p as _, 0, MEM_RELEASE);
        for bad in [0x8000usize, 0x30000] {
            assert!(va2_req(G, rc, 0, &mut requirements(0, 0, bad)).is_null());
            assert_eq!(le(), 87);
        }
        assert!(va2_req(G, rc, 0, &mut requirements(0, 0x2000_0FFF, 0x2000_0000)).is_null());
        assert_eq!(le(), 8);
        // Case 131: LowestStartingAddress.
        for bad in [0x2000_1000usize, 0x2000_0FFF, 0x2000_1001] {
            assert!(va2_req(G, rc, 0, &mut requirements(bad, 0, 0)).is_null());
            assert_eq!(le(), 87);
        }
        assert!(va2_req(G, rc, 0, &mut requirements(0x3000_0000, 0x2FFF_FFFF, 0)).is_null());
        assert_eq!(le(), 87);
        assert!(va2_req(G, rc, 0, &mut requirements(top + 1, 0, 0)).is_null());
        assert_eq!(le(), 87);
        let p = va2_req(G, rc, 0, &mut requirements(0x2000_0000, 0, 0)) as usize;
        assert!(p >= 0x2000_0000, "{p:#x}");
        VirtualFree(p as _, 0, MEM_RELEASE);
        let p = va2_req(G, rc, 0, &mut requirements(0x2000_0000, 0x2FFF_FFFF, 0)) as usize;
        assert!((0x2000_0000..0x3000_0000).contains(&p), "{p:#x} {}", le());
        VirtualFree(p as _, 0, MEM_RELEASE);
        // Case 128: 0x20000FFF with size 0x40000 → ok, 64K aligned, ending ≤ 0x20001000.
        let p = va2_req(0x40000, rc, 0, &mut requirements(0, 0x2000_0FFF, 0)) as usize;
        assert!(
            p != 0 && p % G == 0 && p + 0x40000 <= 0x2000_1000,
            "{p:#x} {}",
            le()
        );
        VirtualFree(p as _, 0, MEM_RELEASE);
    }
}

/// The lowest (or, `top`, highest) `G`-aligned base of `size` free bytes in `[lo, hi]`, as
/// VirtualQuery sees the address space now.
fn free_base(lo: usize, hi: usize, size: usize, top: bool) -> Option<usize> {
    let mut fits = Vec::new();
    let mut at = lo;
    while at <= hi {
        let m = vq(at);
        let (start, end) = (
            m.BaseAddress as usize,
            m.BaseAddress as usize + m.RegionSize,
        );
        if m.State == MEM_FREE {
            let first = start.max(lo).next_multiple_of(G);
            let last_end = end.min(hi + 1);
            if first + size <= last_end {
                fits.push((first, (last_end - size) / G * G));
            }
        }
        at = end;
    }
    if top {
        fits.last().map(|f| f.1)
    } else {
        fits.first().map(|f| f.0)
    }
}

/// Issue 15: inside a window given by MEM_ADDRESS_REQUIREMENTS, Windows places bottom-up
/// unless MEM_TOP_DOWN asks for the top (its default order everywhere); virtmem filled such
/// a window from the top.
#[test]
fn a_window_is_filled_from_the_bottom_unless_top_down() {
    unsafe {
        // A window no other test of this binary uses (they run in parallel).
        let (lo, hi) = (0x5000_0000usize, 0x5FFF_FFFF);
        let rc = MEM_RESERVE | MEM_COMMIT;
        let mut taken = Vec::new();
        for _ in 0..3 {
            let want = free_base(lo, hi, G, false).expect("a free range in the window");
            let p = va2_req(G, rc, 0, &mut requirements(lo, hi, 0)) as usize;
            assert_eq!(p, want, "bottom-up: {}", le());
            taken.push(p);
        }
        let want = free_base(lo, hi, G, true).expect("a free range in the window");
        let p = va2_req(G, rc | MEM_TOP_DOWN, 0, &mut requirements(lo, hi, 0)) as usize;
        assert_eq!(p, want, "top-down: {}", le());
        taken.push(p);
        // An alignment inside the window: the lowest aligned free base.
        let want = {
            let mut b = lo.next_multiple_of(0x40_0000);
            while free_base(b, b + G - 1, G, false) != Some(b) {
                b += 0x40_0000;
            }
            b
        };
        let p = va2_req(G, rc, 0, &mut requirements(lo, hi, 0x40_0000)) as usize;
        assert_eq!(p, want, "bottom-up aligned: {}", le());
        taken.push(p);
        for p in taken {
            assert_eq!(VirtualFree(p as _, 0, MEM_RELEASE), TRUE);
        }
    }
}
