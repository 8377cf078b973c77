//! Hostile input through the Win32 face: addresses of our own stack, code, heap, read-only
//! data and libraries passed to every call; sizes that overflow when rounded; NULL and
//! misaligned out-pointers; every flag bit alone and in pairs; the FromApp no-execute rule on
//! every path; recommitted memory always zero; memory virtmem did not allocate never changed;
//! and no panic across the API (no call ever reports ERROR_INTERNAL_ERROR).

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

const P: usize = 0x1000;
const G: usize = 0x10000;

/// The codes a failing call may leave (never 1359, a panic inside).
const KNOWN: [u32; 14] = [
    87,
    487,
    998,
    6,
    8,
    1455,
    158,
    1453,
    24,
    50,
    999,
    0x8000_0001,
    1314,
    1450,
];

fn fails_with(ok: bool, what: &str) -> u32 {
    let e = GetLastError();
    assert!(!ok, "{what}: succeeded");
    assert!(KNOWN.contains(&e), "{what}: unexpected last error {e}");
    e
}

/// Memory virtmem did not allocate, with a copy of its bytes to compare later.
struct Foreign {
    name: &'static str,
    addr: usize,
    len: usize,
    bytes: Vec<u8>,
    perms: String,
}

fn perms_at(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for l in maps.lines() {
        let mut it = l.split_whitespace();
        let (r, p) = (it.next().unwrap(), it.next().unwrap());
        let (s, e) = r.split_once('-').unwrap();
        let (s, e) = (
            usize::from_str_radix(s, 16).unwrap(),
            usize::from_str_radix(e, 16).unwrap(),
        );
        if addr >= s && addr < e {
            return p.to_string();
        }
    }
    String::new()
}

static RODATA: [u8; 256] = [0xA5; 256];

fn code_marker() -> u32 {
    std::hint::black_box(7)
}

impl Foreign {
    fn new(name: &'static str, addr: usize, len: usize) -> Foreign {
        let mut f = Foreign {
            name,
            addr,
            len,
            bytes: Vec::new(),
            perms: perms_at(addr),
        };
        f.bytes = f.read();
        f
    }
    fn read(&self) -> Vec<u8> {
        // SAFETY: mapped readable memory of this process (checked by the caller's choice).
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }.to_vec()
    }
    fn check(&self, what: &str) {
        assert_eq!(
            perms_at(self.addr),
            self.perms,
            "{what}: {} protection changed",
            self.name
        );
        assert!(
            self.read() == self.bytes,
            "{what}: {} contents changed",
            self.name
        );
    }
}

/// Every Win32 call that takes an address, on `addr` with `size`; all must fail (memory not
/// ours: 487 / 87 / 998) except VirtualQuery, and nothing may change.
fn every_call_fails_on(addr: usize, size: usize, what: &str) {
    // SAFETY: every call is made with hostile values on purpose; virtmem must refuse them.
    unsafe {
        let a = addr as *mut c_void;
        for t in [
            MEM_RESERVE,
            MEM_COMMIT,
            MEM_RESERVE | MEM_COMMIT,
            MEM_RESET,
            MEM_RESET_UNDO,
            MEM_RESERVE | MEM_WRITE_WATCH,
            MEM_RESERVE | MEM_PHYSICAL,
        ] {
            SetLastError(0);
            let p = VirtualAlloc(a, size, t, PAGE_READWRITE);
            fails_with(!p.is_null(), &format!("{what}: VirtualAlloc({t:#x})"));
            let p = VirtualAlloc2(null_mut(), a, size, t, PAGE_READWRITE, null_mut(), 0);
            fails_with(!p.is_null(), &format!("{what}: VirtualAlloc2({t:#x})"));
        }
        let p = VirtualAlloc2(
            null_mut(),
            a,
            size,
            MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE,
            null_mut(),
            0,
        );
        fails_with(!p.is_null(), &format!("{what}: replace placeholder"));
        for t in [
            MEM_DECOMMIT,
            MEM_RELEASE,
            MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
            MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS,
        ] {
            let s = if t == MEM_RELEASE { 0 } else { size };
            fails_with(
                VirtualFree(a, s, t) != 0,
                &format!("{what}: VirtualFree({t:#x})"),
            );
        }
        // VirtualProtect works on foreign memory (as on Windows): only no-op and invalid
        // requests here; PAGE_GUARD is refused on memory virtmem did not allocate.
        let mut old = 0u32;
        fails_with(
            VirtualProtect(a, size, PAGE_READWRITE | PAGE_GUARD, &mut old) != 0,
            &format!("{what}: VirtualProtect(GUARD)"),
        );
        fails_with(
            VirtualProtect(a, size, PAGE_WRITECOPY, &mut old) != 0,
            &format!("{what}: VirtualProtect(WRITECOPY)"),
        );
        fails_with(
            VirtualProtect(a, size, PAGE_READONLY, null_mut()) != 0,
            &format!("{what}: VirtualProtect(NULL old)"),
        );
        let mut count = 16usize;
        let mut gran = 0u32;
        let mut arr = [null_mut::<c_void>(); 16];
        fails_with(
            GetWriteWatch(0, a, size, arr.as_mut_ptr(), &mut count, &mut gran) == 0,
            &format!("{what}: GetWriteWatch"),
        );
        fails_with(
            ResetWriteWatch(a, size) == 0,
            &format!("{what}: ResetWriteWatch"),
        );
        let frames = [1usize, 2];
        fails_with(
            MapUserPhysicalPages(a, 1, frames.as_ptr()) != 0,
            &format!("{what}: MapUserPhysicalPages"),
        );
        let addrs = [a as *const c_void];
        fails_with(
            MapUserPhysicalPagesScatter(addrs.as_ptr(), 1, null()) != 0,
            &format!("{what}: MapUserPhysicalPagesScatter"),
        );
        let r = DiscardVirtualMemory(a, size);
        assert!(
            r != 0 && KNOWN.contains(&r),
            "{what}: DiscardVirtualMemory -> {r}"
        );
        let r = ReclaimVirtualMemory(a, size);
        assert!(r != 0 && r != 1359, "{what}: ReclaimVirtualMemory -> {r}");
        fails_with(
            VirtualUnlock(a, size) != 0,
            &format!("{what}: VirtualUnlock"),
        );
        let mut m = MEMORY_BASIC_INFORMATION::default();
        let n = VirtualQuery(a, &mut m, size_of_val(&m));
        if n == 0 {
            fails_with(false, &format!("{what}: VirtualQuery"));
        }
    }
}

#[test]
fn our_stack_code_heap_and_libraries_are_refused_and_untouched() {
    let stack_buf = [0x3Cu8; 512];
    let heap = vec![0x5Au8; 3 * P];
    let libc_fn = libc::getpid as *const () as usize;
    let foreign = [
        Foreign::new("stack", stack_buf.as_ptr() as usize, stack_buf.len()),
        Foreign::new("code", code_marker as *const () as usize, 64),
        Foreign::new("rodata", RODATA.as_ptr() as usize, RODATA.len()),
        Foreign::new("heap", heap.as_ptr() as usize, heap.len()),
        Foreign::new("libc", libc_fn, 64),
    ];
    for f in &foreign {
        for (addr, size) in [
            (f.addr, 1),
            (f.addr & !(P - 1), P),
            (f.addr & !(G - 1), G),
            (f.addr, f.len),
            (f.addr + 1, 2 * P - 1),
        ] {
            every_call_fails_on(addr, size, &format!("{} {addr:#x}+{size:#x}", f.name));
            for g in &foreign {
                g.check(&format!("after calls on {} {addr:#x}", f.name));
            }
        }
        // VirtualProtect with the protection it already has: allowed, changes nothing.
        let mut m = MEMORY_BASIC_INFORMATION::default();
        let mut old = 0u32;
        // SAFETY: the same protection as now, on one page of our own memory.
        unsafe {
            assert_ne!(VirtualQuery(f.addr as _, &mut m, size_of_val(&m)), 0);
            assert_eq!(m.State, MEM_COMMIT, "{}", f.name);
            let ok = VirtualProtect(f.addr as _, 1, m.Protect, &mut old);
            if ok != 0 {
                assert_eq!(old, m.Protect, "{}", f.name);
            } else {
                fails_with(false, &format!("{}: VirtualProtect same", f.name));
            }
            // Locking our own memory works and unlocks again.
            if VirtualLock(f.addr as _, 1) != 0 {
                assert_ne!(VirtualUnlock(f.addr as _, 1), 0, "{}: unlock", f.name);
            } else {
                fails_with(false, &format!("{}: VirtualLock", f.name));
            }
        }
        for g in &foreign {
            g.check(&format!("after protect/lock on {}", f.name));
        }
    }
    std::hint::black_box((&stack_buf, &heap));
}

#[test]
fn sizes_that_overflow_when_rounded() {
    // SAFETY: hostile sizes on our own allocation.
    unsafe {
        let b = VirtualAlloc(null(), G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as usize;
        assert_ne!(b, 0);
        let top = virtmem::Layout::native().max_address;
        for (addr, size) in [
            (b, usize::MAX),
            (b, usize::MAX - b + 1),
            (b, usize::MAX - b),
            (b + 1, usize::MAX - b - 1),
            (b, usize::MAX - P + 2),
            (b, (top + 2).wrapping_sub(b)),
            (b, isize::MAX as usize),
            (usize::MAX - P + 1, P),
            (usize::MAX, 1),
            (usize::MAX - 1, 2),
            (top, 2),
            (top - P + 2, P),
            (0, usize::MAX),
            (0, usize::MAX - P + 2),
            (0, top + 1),
        ] {
            let what = format!("{addr:#x}+{size:#x}");
            let a = addr as *mut c_void;
            for t in [
                MEM_RESERVE,
                MEM_COMMIT,
                MEM_RESERVE | MEM_COMMIT,
                MEM_RESET,
                MEM_RESET_UNDO,
            ] {
                SetLastError(0);
                let p = VirtualAlloc(a, size, t, PAGE_READWRITE);
                let e = fails_with(!p.is_null(), &format!("VirtualAlloc({t:#x}) {what}"));
                assert!(
                    [87, 487, 8].contains(&e),
                    "VirtualAlloc({t:#x}) {what}: {e}"
                );
            }
            let mut old = 0;
            fails_with(
                VirtualProtect(a, size, PAGE_READONLY, &mut old) != 0,
                &format!("protect {what}"),
            );
            fails_with(
                VirtualFree(a, size, MEM_DECOMMIT) != 0,
                &format!("decommit {what}"),
            );
            fails_with(VirtualLock(a, size) != 0, &format!("lock {what}"));
            fails_with(VirtualUnlock(a, size) != 0, &format!("unlock {what}"));
            fails_with(
                ResetWriteWatch(a, size) == 0,
                &format!("reset watch {what}"),
            );
            let mut count = 4usize;
            let mut gran = 0u32;
            let mut arr = [null_mut::<c_void>(); 4];
            fails_with(
                GetWriteWatch(0, a, size, arr.as_mut_ptr(), &mut count, &mut gran) == 0,
                &format!("GetWriteWatch {what}"),
            );
            let r = DiscardVirtualMemory(a, size);
            assert!(KNOWN.contains(&r), "discard {what}: {r}");
            fails_with(
                VirtualFree(a, size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) != 0,
                &format!("preserve {what}"),
            );
        }
        // The allocation is untouched.
        let mut m = MEMORY_BASIC_INFORMATION::default();
        VirtualQuery(b as _, &mut m, size_of_val(&m));
        assert_eq!(
            (m.State, m.Protect, m.RegionSize),
            (MEM_COMMIT, PAGE_READWRITE, G)
        );
        assert_ne!(VirtualFree(b as _, 0, MEM_RELEASE), 0);
        // Huge counts of the AWE and VirtualAlloc2 arrays are refused, never an abort.
        let one = [0usize; 1];
        for n in [usize::MAX, usize::MAX / 4, 1usize << 61] {
            SetLastError(0);
            fails_with(
                MapUserPhysicalPages(b as _, n, one.as_ptr()) != 0,
                &format!("map {n:#x}"),
            );
            let addrs = [b as *const c_void];
            fails_with(
                MapUserPhysicalPagesScatter(addrs.as_ptr(), n, one.as_ptr()) != 0,
                &format!("scatter {n:#x}"),
            );
            let mut k = n;
            fails_with(
                FreeUserPhysicalPages(GetCurrentProcess(), &mut k, one.as_ptr()) != 0,
                &format!("free {n:#x}"),
            );
            let mut k = n;
            let mut arr = [0usize; 1];
            fails_with(
                AllocateUserPhysicalPages(GetCurrentProcess(), &mut k, arr.as_mut_ptr()) != 0,
                &format!("allocate {n:#x}"),
            );
        }
        let w = VirtualAlloc(null(), G, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
        assert!(!w.is_null());
        fails_with(
            MapUserPhysicalPages(w, 1 << 40, one.as_ptr()) != 0,
            "map 2^40 pages",
        );
        let mut k = 1usize << 40;
        let mut arr = [0usize; 1];
        fails_with(
            AllocateUserPhysicalPages(GetCurrentProcess(), &mut k, arr.as_mut_ptr()) != 0,
            "allocate 2^40 pages",
        );
        assert_ne!(VirtualFree(w, 0, MEM_RELEASE), 0);
        let mut p = MEM_EXTENDED_PARAMETER::default();
        p.Anonymous1._bitfield = 0xFF;
        let r = VirtualAlloc2(
            null_mut(),
            null(),
            G,
            MEM_RESERVE,
            PAGE_READWRITE,
            &mut p,
            u32::MAX,
        );
        assert_eq!(fails_with(!r.is_null(), "VirtualAlloc2 count u32::MAX"), 87);
        let mut req = MEM_ADDRESS_REQUIREMENTS {
            LowestStartingAddress: null_mut(),
            HighestEndingAddress: usize::MAX as *mut c_void,
            Alignment: 0,
        };
        p.Anonymous1._bitfield = 1;
        p.Anonymous2.Pointer = &mut req as *mut _ as *mut c_void;
        let r = VirtualAlloc2(
            null_mut(),
            null(),
            G,
            MEM_RESERVE,
            PAGE_READWRITE,
            &mut p,
            1,
        );
        assert_eq!(
            fails_with(!r.is_null(), "HighestEndingAddress usize::MAX"),
            87
        );
    }
}

#[test]
fn null_and_misaligned_out_pointers() {
    // SAFETY: out-pointers into our own buffers, some misaligned, some NULL.
    unsafe {
        let b = VirtualAlloc(null(), G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert!(!b.is_null());
        let mut buf = vec![0u64; 64];
        let base = buf.as_mut_ptr() as usize;
        // VirtualProtect: NULL → 998 and nothing changes; misaligned works (x86 Windows
        // writes a misaligned DWORD).
        SetLastError(0);
        assert_eq!(VirtualProtect(b, P, PAGE_READONLY, null_mut()), FALSE);
        assert_eq!(GetLastError(), 998);
        let mut m = MEMORY_BASIC_INFORMATION::default();
        VirtualQuery(b, &mut m, size_of_val(&m));
        assert_eq!(
            m.Protect, PAGE_READWRITE,
            "NULL lpflOldProtect changed the protection"
        );
        for off in 1..4 {
            let old = (base + off) as *mut u32;
            assert_ne!(VirtualProtect(b, P, PAGE_READONLY, old), FALSE);
            assert_eq!(old.read_unaligned(), PAGE_READWRITE);
            assert_ne!(VirtualProtect(b, P, PAGE_READWRITE, old), FALSE);
            assert_eq!(old.read_unaligned(), PAGE_READONLY);
            // On failure PAGE_NOACCESS is written (case 35), misaligned too.
            old.write_unaligned(0xFFFF);
            assert_eq!(VirtualProtect(0x10 as _, P, PAGE_READWRITE, old), FALSE);
            assert_eq!(old.read_unaligned(), PAGE_NOACCESS);
        }
        // VirtualQuery: NULL buffer → 998; a short length → 24; misaligned works.
        assert_eq!(
            VirtualQuery(b, null_mut(), size_of::<MEMORY_BASIC_INFORMATION>()),
            0
        );
        assert_eq!(GetLastError(), 998);
        assert_eq!(VirtualQuery(b, &mut m, size_of_val(&m) - 1), 0);
        assert_eq!(GetLastError(), 24);
        let mis = (base + 3) as *mut MEMORY_BASIC_INFORMATION;
        assert_eq!(
            VirtualQuery(b, mis, size_of::<MEMORY_BASIC_INFORMATION>()),
            size_of::<MEMORY_BASIC_INFORMATION>()
        );
        assert_eq!(mis.read_unaligned().BaseAddress, b);
        // GetWriteWatch: each NULL → 998 (87 for the count's value 0); misaligned works.
        let w = VirtualAlloc(
            null(),
            G,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        );
        assert!(!w.is_null());
        (w as *mut u8).write_volatile(1);
        let mut count = 16usize;
        let mut gran = 0u32;
        let mut arr = [null_mut::<c_void>(); 16];
        assert_eq!(
            GetWriteWatch(0, w, G, null_mut(), &mut count, &mut gran),
            u32::MAX
        );
        assert_eq!(GetLastError(), 998);
        assert_eq!(
            GetWriteWatch(0, w, G, arr.as_mut_ptr(), null_mut(), &mut gran),
            u32::MAX
        );
        assert_eq!(GetLastError(), 998);
        assert_eq!(
            GetWriteWatch(0, w, G, arr.as_mut_ptr(), &mut count, null_mut()),
            u32::MAX
        );
        assert_eq!(GetLastError(), 998);
        let arr_mis = (base + 4) as *mut *mut c_void;
        let count_mis = (base + 8 * 40 + 1) as *mut usize;
        let gran_mis = (base + 8 * 50 + 3) as *mut u32;
        count_mis.write_unaligned(16);
        assert_eq!(GetWriteWatch(0, w, G, arr_mis, count_mis, gran_mis), 0);
        assert_eq!(count_mis.read_unaligned(), 1);
        assert_eq!(arr_mis.read_unaligned(), w);
        assert_eq!(gran_mis.read_unaligned() as usize, P);
        // AWE: NULL arguments → 998; misaligned arrays work.
        let mut n = 2usize;
        assert_eq!(
            AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, null_mut()),
            FALSE
        );
        assert_eq!(GetLastError(), 998);
        assert_eq!(
            AllocateUserPhysicalPages(
                GetCurrentProcess(),
                null_mut(),
                buf.as_mut_ptr() as *mut usize
            ),
            FALSE
        );
        assert_eq!(GetLastError(), 998);
        let n_mis = (base + 8 * 60 + 1) as *mut usize;
        let frames_mis = (base + 8 * 20 + 5) as *mut usize;
        n_mis.write_unaligned(2);
        assert_ne!(
            AllocateUserPhysicalPages(GetCurrentProcess(), n_mis, frames_mis),
            FALSE
        );
        assert_eq!(n_mis.read_unaligned(), 2);
        let mut frames = [
            frames_mis.read_unaligned(),
            frames_mis.add(1).read_unaligned(),
        ];
        let mut k = 2usize;
        assert_eq!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut k, null()),
            FALSE
        );
        assert_eq!(GetLastError(), 998);
        assert_ne!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut k, frames.as_mut_ptr()),
            FALSE
        );
        assert_eq!(MapUserPhysicalPagesScatter(null(), 1, null()), FALSE);
        assert_eq!(GetLastError(), 998);
        // GetSystemInfo into a misaligned buffer.
        GetSystemInfo((base + 1) as *mut SYSTEM_INFO);
        assert_ne!(VirtualFree(b, 0, MEM_RELEASE), 0);
        assert_ne!(VirtualFree(w, 0, MEM_RELEASE), 0);
    }
}

/// Every allocation-type bit alone and in pairs, with every protection bit alone, on NULL and
/// on a live reservation; every free-type bit alone and in pairs; every protection bit alone
/// and in pairs for VirtualProtect. No panic, only documented codes, and whatever succeeds is
/// real (and released again).
#[test]
fn every_flag_bit_alone_and_in_pairs() {
    // SAFETY: hostile flags on our own allocation.
    unsafe {
        let r = VirtualAlloc(null(), 4 * G, MEM_RESERVE, PAGE_READWRITE) as usize;
        assert_ne!(r, 0);
        let mut types = Vec::new();
        for i in 0..32 {
            types.push(1u32 << i);
            for j in i + 1..32 {
                types.push((1u32 << i) | (1u32 << j));
            }
        }
        let prots: Vec<u32> = (0..32).map(|i| 1u32 << i).chain([PAGE_READWRITE]).collect();
        let mut ok = 0;
        let mut refused = 0;
        for &t in &types {
            for &p in &prots {
                for addr in [0usize, r + G] {
                    SetLastError(0);
                    let got = VirtualAlloc(addr as _, P, t, p) as usize;
                    if got == 0 {
                        fails_with(false, &format!("VirtualAlloc({addr:#x}, {t:#x}, {p:#x})"));
                        refused += 1;
                        continue;
                    }
                    ok += 1;
                    let mut m = MEMORY_BASIC_INFORMATION::default();
                    assert_ne!(VirtualQuery(got as _, &mut m, size_of_val(&m)), 0);
                    if m.AllocationBase as usize != r {
                        // A new allocation: release it.
                        assert_eq!(m.AllocationBase as usize, got, "{t:#x} {p:#x}");
                        assert_ne!(VirtualFree(got as _, 0, MEM_RELEASE), 0);
                    } else if t & MEM_COMMIT != 0 {
                        assert_eq!(m.State, MEM_COMMIT, "{t:#x} {p:#x}");
                        assert_ne!(VirtualFree(got as _, P, MEM_DECOMMIT), 0);
                    }
                }
            }
        }
        for &t in &types {
            for size in [0usize, P] {
                SetLastError(0);
                let ok = VirtualFree((r + 2 * G) as _, size, t) != 0;
                if ok {
                    // Only a decommit of reserved pages can succeed here.
                    assert_eq!(t, MEM_DECOMMIT, "VirtualFree({t:#x}, {size}) succeeded");
                } else {
                    fails_with(false, &format!("VirtualFree({t:#x}, {size})"));
                }
            }
        }
        let b = VirtualAlloc((r + 3 * G) as _, P, MEM_COMMIT, PAGE_READWRITE);
        assert!(!b.is_null());
        let mut pairs: Vec<u32> = Vec::new();
        for i in 0..32 {
            for j in i..32 {
                pairs.push((1u32 << i) | (1u32 << j));
            }
        }
        for &p in &pairs {
            let mut old = 0;
            SetLastError(0);
            if VirtualProtect(b, P, p, &mut old) == 0 {
                fails_with(false, &format!("VirtualProtect({p:#x})"));
            } else {
                let mut m = MEMORY_BASIC_INFORMATION::default();
                VirtualQuery(b, &mut m, size_of_val(&m));
                assert_eq!(m.Protect & 0xFF, p & 0xFF, "{p:#x}");
                assert_ne!(VirtualProtect(b, P, PAGE_READWRITE, &mut old), 0);
            }
        }
        assert_ne!(VirtualFree(r as _, 0, MEM_RELEASE), 0);
        assert!(ok > 0 && refused > 0);
    }
}

const EXEC: [u32; 8] = [
    PAGE_EXECUTE,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_READWRITE,
    PAGE_EXECUTE_WRITECOPY,
    PAGE_EXECUTE_READ | PAGE_GUARD,
    PAGE_EXECUTE_READWRITE | PAGE_NOCACHE,
    PAGE_EXECUTE_READ | PAGE_TARGETS_INVALID,
    PAGE_EXECUTE | PAGE_WRITECOMBINE,
];

#[test]
fn from_app_never_gives_executable_memory() {
    // SAFETY: executable protections through the FromApp functions must all be refused.
    unsafe {
        let r = VirtualAlloc(null(), 2 * G, MEM_RESERVE, PAGE_READWRITE) as usize;
        let ph = VirtualAlloc2(
            null_mut(),
            null(),
            2 * G,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        ) as usize;
        assert!(r != 0 && ph != 0);
        assert_ne!(
            VirtualFree(ph as _, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            0
        );
        let before = (query(r), query(ph), query(ph + G));
        for &p in &EXEC {
            for t in [
                MEM_RESERVE,
                MEM_RESERVE | MEM_COMMIT,
                MEM_COMMIT,
                MEM_RESERVE | MEM_TOP_DOWN,
            ] {
                SetLastError(0);
                assert!(VirtualAllocFromApp(null(), G, t, p).is_null());
                assert_eq!(GetLastError(), 87, "FromApp NULL {t:#x} {p:#x}");
                assert!(VirtualAlloc2FromApp(null_mut(), null(), G, t, p, null_mut(), 0).is_null());
                assert_eq!(GetLastError(), 87, "2FromApp NULL {t:#x} {p:#x}");
            }
            // Commit inside an existing reservation.
            assert!(VirtualAllocFromApp(r as _, P, MEM_COMMIT, p).is_null());
            assert_eq!(GetLastError(), 87, "FromApp commit {p:#x}");
            assert!(
                VirtualAlloc2FromApp(null_mut(), r as _, P, MEM_COMMIT, p, null_mut(), 0).is_null()
            );
            assert_eq!(GetLastError(), 87, "2FromApp commit {p:#x}");
            // Replacing a placeholder.
            for t in [
                MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            ] {
                assert!(
                    VirtualAlloc2FromApp(null_mut(), ph as _, G, t, p, null_mut(), 0).is_null()
                );
                assert_eq!(GetLastError(), 87, "2FromApp replace {t:#x} {p:#x}");
            }
            // Fixed address reservation.
            let free = r + 2 * G;
            assert!(VirtualAllocFromApp(free as _, G, MEM_RESERVE | MEM_COMMIT, p).is_null());
            assert_eq!(GetLastError(), 87);
        }
        assert_eq!(
            (query(r), query(ph), query(ph + G)),
            before,
            "a refused FromApp call changed something"
        );
        // Non-executable protections go through every path.
        assert!(!VirtualAllocFromApp(r as _, P, MEM_COMMIT, PAGE_READWRITE).is_null());
        assert!(!VirtualAlloc2FromApp(
            null_mut(),
            ph as _,
            G,
            MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            PAGE_READONLY,
            null_mut(),
            0
        )
        .is_null());
        // VirtualProtect(FromApp) on FromApp memory is not restricted on desktop Windows.
        assert_ne!(VirtualFree(r as _, 0, MEM_RELEASE), 0);
        assert_ne!(VirtualFree(ph as _, 0, MEM_RELEASE), 0);
        assert_ne!(VirtualFree((ph + G) as _, 0, MEM_RELEASE), 0);
    }
}

fn query(a: usize) -> (usize, u32, u32, usize) {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: valid out-pointer.
    unsafe { VirtualQuery(a as _, &mut m, size_of_val(&m)) };
    (m.AllocationBase as usize, m.State, m.Protect, m.RegionSize)
}

fn nonzero_words(a: usize, len: usize) -> usize {
    // SAFETY: committed readable memory.
    (0..len / 8)
        .filter(|i| unsafe { ((a + i * 8) as *const u64).read_volatile() } != 0)
        .count()
}

fn scribble(a: usize, len: usize) {
    for i in 0..len / 8 {
        // SAFETY: committed writable memory.
        unsafe { ((a + i * 8) as *mut u64).write_volatile(0xDEAD_BEEF_0000_0000 | i as u64) };
    }
}

#[test]
fn recommitted_memory_is_always_zero() {
    // SAFETY: our own allocations.
    unsafe {
        for t in [0, MEM_WRITE_WATCH] {
            let b =
                VirtualAlloc(null(), 4 * G, MEM_RESERVE | MEM_COMMIT | t, PAGE_READWRITE) as usize;
            assert_ne!(b, 0);
            for round in 0..4 {
                scribble(b, 4 * G);
                // Decommit in several shapes: a page, a run across a protection change, all.
                let mut old = 0;
                assert_ne!(
                    VirtualProtect((b + 2 * P) as _, P, PAGE_READONLY, &mut old),
                    0
                );
                let (s, l) = match round {
                    0 => (b + P, P),
                    1 => (b, 4 * P),
                    2 => (b + 3, 2 * G),
                    _ => (b, 0),
                };
                assert_ne!(VirtualFree(s as _, l, MEM_DECOMMIT), 0);
                assert!(!VirtualAlloc(b as _, 4 * G, MEM_COMMIT, PAGE_READWRITE).is_null());
                let (zs, zl) = match round {
                    0 => (b + P, P),
                    1 => (b, 4 * P),
                    2 => (b, 2 * G + P),
                    _ => (b, 4 * G),
                };
                assert_eq!(
                    nonzero_words(zs, zl),
                    0,
                    "round {round} watch {t:#x}: recommitted not zero"
                );
            }
            assert_ne!(VirtualFree(b as _, 0, MEM_RELEASE), 0);
            // Released and reserved again at the same address: zero.
            let again =
                VirtualAlloc(b as _, 4 * G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as usize;
            if again != 0 {
                assert_eq!(nonzero_words(again, 4 * G), 0);
                assert_ne!(VirtualFree(again as _, 0, MEM_RELEASE), 0);
            }
        }
        // A placeholder replaced, written, preserved, replaced again: zero.
        let ph = VirtualAlloc2(
            null_mut(),
            null(),
            2 * G,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        ) as usize;
        assert_ne!(ph, 0);
        assert_ne!(
            VirtualFree(ph as _, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            0
        );
        for _ in 0..2 {
            let p = VirtualAlloc2(
                null_mut(),
                ph as _,
                G,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                PAGE_READWRITE,
                null_mut(),
                0,
            ) as usize;
            assert_eq!(p, ph);
            assert_eq!(nonzero_words(p, G), 0, "replaced placeholder not zero");
            scribble(p, G);
            assert_ne!(
                VirtualFree(p as _, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
                0
            );
        }
        assert_ne!(VirtualFree(ph as _, 0, MEM_RELEASE), 0);
        assert_ne!(VirtualFree((ph + G) as _, 0, MEM_RELEASE), 0);
        // AWE: a freed frame handed out again reads zero.
        let w = VirtualAlloc(null(), G, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
        let mut n = 1usize;
        let mut f = [0usize; 1];
        assert_ne!(
            AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_mut_ptr()),
            0
        );
        assert_ne!(MapUserPhysicalPages(w, 1, f.as_ptr()), 0);
        scribble(w as usize, P);
        assert_ne!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_ptr()),
            0
        );
        let mut n = 1usize;
        assert_ne!(
            AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_mut_ptr()),
            0
        );
        assert_ne!(MapUserPhysicalPages(w, 1, f.as_ptr()), 0);
        assert_eq!(
            nonzero_words(w as usize, P),
            0,
            "reused physical page not zero"
        );
        assert_ne!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_ptr()),
            0
        );
        assert_ne!(VirtualFree(w, 0, MEM_RELEASE), 0);
    }
}
