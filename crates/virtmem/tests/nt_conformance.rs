//! Conformance of the NT layer (`virtmem::win32::nt`) with Windows.
//!
//! * Every `[T-nt]` case of `windows-cases.md` that concerns what virtmem models, as one table
//!   (`t_nt_cases`): each row names its case number and checks the NTSTATUS Windows returns
//!   (and the out parameters the case states). Not in the table, because virtmem does not
//!   model them: case 83 (KUSER_SHARED_DATA, ntdll's image), 85 (MemoryImageInformation),
//!   107 (NtGetWriteWatch), 115 (thread stacks).
//! * In/out parameter write-back, NULL and unreadable pointers, the RtlNtStatusToDosError
//!   round trip of every `Error` variant, sections through the NT calls, the working-set
//!   queries and FlushProcessWriteBuffers.
//!
//! Tests run concurrently in one process and only touch memory they allocated.

#![allow(clippy::missing_safety_doc)]

use core::ffi::c_void;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

/// Tests that assert a released address is free run alone (placement reuses the last released
/// slot, so another test's new allocation could take it); the others share.
static ORDER: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ORDER.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    ORDER.write().unwrap_or_else(|e| e.into_inner())
}

const P: usize = 0x1000;
const G: usize = 0x10000;
const CP: HANDLE = CURRENT_PROCESS;
const RW: u32 = PAGE_READWRITE;
const RC: u32 = MEM_RESERVE | MEM_COMMIT;

fn dos(s: NTSTATUS) -> u32 {
    RtlNtStatusToDosError(s)
}

/// NtAllocateVirtualMemory with ZeroBits: (status, *BaseAddress, *RegionSize).
fn alloc_zb(
    base: usize,
    zero_bits: usize,
    size: usize,
    t: u32,
    p: u32,
) -> (NTSTATUS, usize, usize) {
    let (mut b, mut s) = (base as *mut c_void, size);
    // SAFETY: valid in/out pointers.
    let st = unsafe { NtAllocateVirtualMemory(CP, &mut b, zero_bits, &mut s, t, p) };
    (st, b as usize, s)
}

fn alloc(base: usize, size: usize, t: u32, p: u32) -> (NTSTATUS, usize, usize) {
    alloc_zb(base, 0, size, t, p)
}

/// A fresh allocation (panics on failure).
fn new_alloc(size: usize, t: u32, p: u32) -> usize {
    let (st, b, _) = alloc(0, size, t, p);
    assert_eq!(st, STATUS_SUCCESS, "allocation of {size:#x}");
    b
}

fn free(base: usize, size: usize, t: u32) -> (NTSTATUS, usize, usize) {
    let (mut b, mut s) = (base as *mut c_void, size);
    // SAFETY: valid in/out pointers.
    let st = unsafe { NtFreeVirtualMemory(CP, &mut b, &mut s, t) };
    (st, b as usize, s)
}

fn release(base: usize) {
    let _ = free(base, 0, MEM_RELEASE);
}

/// NtProtectVirtualMemory: (status, *BaseAddress, *Size, *OldProtect).
fn protect(base: usize, size: usize, new: u32) -> (NTSTATUS, usize, usize, u32) {
    let (mut b, mut s, mut old) = (base as *mut c_void, size, 0xdead_beef_u32);
    // SAFETY: valid in/out pointers.
    let st = unsafe { NtProtectVirtualMemory(CP, &mut b, &mut s, new, &mut old) };
    (st, b as usize, s, old)
}

fn query(addr: usize) -> MEMORY_BASIC_INFORMATION {
    let mut mbi = MEMORY_BASIC_INFORMATION::default();
    let mut ret = 0usize;
    // SAFETY: a buffer of one structure.
    let st = unsafe {
        NtQueryVirtualMemory(
            CP,
            addr as *const c_void,
            MemoryBasicInformation,
            (&mut mbi as *mut MEMORY_BASIC_INFORMATION).cast(),
            size_of::<MEMORY_BASIC_INFORMATION>(),
            &mut ret,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(ret, size_of::<MEMORY_BASIC_INFORMATION>());
    mbi
}

fn region(addr: usize, len: usize) -> (NTSTATUS, WIN32_MEMORY_REGION_INFORMATION, usize) {
    let mut info = WIN32_MEMORY_REGION_INFORMATION {
        AllocationBase: 0x1234 as *mut c_void,
        ..Default::default()
    };
    let mut ret = 0usize;
    // SAFETY: a buffer of `len` <= size_of bytes.
    let st = unsafe {
        NtQueryVirtualMemory(
            CP,
            addr as *const c_void,
            MemoryRegionInformation,
            (&mut info as *mut WIN32_MEMORY_REGION_INFORMATION).cast(),
            len,
            &mut ret,
        )
    };
    (st, info, ret)
}

/// NtAllocateVirtualMemoryEx with one MEM_ADDRESS_REQUIREMENTS (or none).
fn alloc_ex(
    h: HANDLE,
    base: usize,
    size: usize,
    t: u32,
    p: u32,
    req: Option<(usize, usize, usize)>,
) -> (NTSTATUS, usize, usize) {
    let mut r = MEM_ADDRESS_REQUIREMENTS::default();
    let mut param = MEM_EXTENDED_PARAMETER::default();
    let count = if let Some((lo, hi, al)) = req {
        r.LowestStartingAddress = lo as *mut c_void;
        r.HighestEndingAddress = hi as *mut c_void;
        r.Alignment = al;
        param.Anonymous1._bitfield = MemExtendedParameterAddressRequirements as u64;
        param.Anonymous2.Pointer = (&mut r as *mut MEM_ADDRESS_REQUIREMENTS).cast();
        1
    } else {
        0
    };
    let (mut b, mut s) = (base as *mut c_void, size);
    // SAFETY: valid pointers; `count` parameters.
    let st = unsafe { NtAllocateVirtualMemoryEx(h, &mut b, &mut s, t, p, &mut param, count) };
    (st, b as usize, s)
}

/// Ex with raw parameters.
fn alloc_ex_params(
    params: &mut [MEM_EXTENDED_PARAMETER],
    count: u32,
    null_array: bool,
) -> NTSTATUS {
    let (mut b, mut s) = (null_mut(), 0x10000usize);
    let arr = if null_array {
        null_mut()
    } else {
        params.as_mut_ptr()
    };
    // SAFETY: valid pointers; the array holds `count` parameters (or is NULL).
    let st = unsafe { NtAllocateVirtualMemoryEx(CP, &mut b, &mut s, MEM_RESERVE, RW, arr, count) };
    if st == STATUS_SUCCESS {
        release(b as usize);
    }
    st
}

/// One row of the case table: the case number, what it checks, and the check (Err: why not).
type Row = (u32, &'static str, fn() -> Result<(), String>);

macro_rules! want {
    ($got:expr, $want:expr) => {{
        let (g, w) = ($got, $want);
        if g != w {
            return Err(format!(
                "{} = {:#x?}, want {:#x?} (line {})",
                stringify!($got),
                g,
                w,
                line!()
            ));
        }
    }};
}

fn case_1() -> Result<(), String> {
    want!(alloc(0, 0, MEM_RESERVE, RW).0, STATUS_INVALID_PARAMETER);
    Ok(())
}

fn case_12() -> Result<(), String> {
    let a = new_alloc(G, MEM_RESERVE, RW);
    let st = alloc(a, P, RC | AT_ROUND_TO_PAGE, PAGE_EXECUTE_READWRITE).0;
    release(a);
    if st != STATUS_INVALID_PARAMETER_5 && st != STATUS_INVALID_PARAMETER {
        return Err(format!("status {st:#x}"));
    }
    Ok(())
}

/// Cases 34, 60, 61, 68: NT partial release and what it leaves.
fn case_34_60_61_68() -> Result<(), String> {
    let base = new_alloc(G, RC, RW);
    // Case 60.
    want!(
        free(base + 0x1001, 0xFFF, MEM_RELEASE),
        (STATUS_SUCCESS, base + P, P)
    );
    // SAFETY: the pages left are committed read-write.
    unsafe {
        *(base as *mut u8) = 1;
        *((base + 2 * P) as *mut u8) = 2;
    }
    want!(query(base + P).State, MEM_FREE);
    want!(
        free(base + 1, 0xFFF, MEM_RELEASE),
        (STATUS_SUCCESS, base, P)
    );
    // Case 34 / 61: the hole's start is free again, although the granule holds the rest.
    want!(alloc(base, P, RC, RW), (STATUS_SUCCESS, base, P));
    let right = query(base + 2 * P);
    want!(right.AllocationBase as usize, base + 2 * P);
    want!(right.State, MEM_COMMIT);
    // Case 68: a range covering a hole and two allocations.
    want!(free(base, G, MEM_DECOMMIT).0, STATUS_UNABLE_TO_FREE_VM);
    want!(free(base, G, MEM_RELEASE).0, STATUS_UNABLE_TO_FREE_VM);
    want!(dos(STATUS_UNABLE_TO_FREE_VM), ERROR_INVALID_PARAMETER);
    // Case 61: the rest is an allocation of its own.
    want!(
        free(base + 2 * P, 0, MEM_RELEASE),
        (STATUS_SUCCESS, base + 2 * P, G - 2 * P)
    );
    want!(free(base, 0, MEM_RELEASE), (STATUS_SUCCESS, base, P));
    Ok(())
}

fn case_35() -> Result<(), String> {
    let p = new_alloc(G, MEM_RESERVE, PAGE_NOACCESS);
    let (st, b, s, old) = protect(p, 0xFFFC, PAGE_READONLY);
    release(p);
    want!(st, STATUS_NOT_COMMITTED);
    want!(old, PAGE_NOACCESS);
    want!((b, s), (p, 0xFFFC)); // out parameters unchanged on failure
    Ok(())
}

fn case_39() -> Result<(), String> {
    let p = new_alloc(P, RC, RW);
    let st = protect(p, P, 0).0;
    release(p);
    want!(st, STATUS_INVALID_PAGE_PROTECTION);
    want!(dos(st), ERROR_INVALID_PARAMETER);
    Ok(())
}

fn case_44() -> Result<(), String> {
    let p = new_alloc(P, RC, RW);
    let (mut b, mut s, mut old) = (p as *mut c_void, P, 0u32);
    // SAFETY: valid pointers.
    let st = unsafe { NtProtectVirtualMemory(null_mut(), &mut b, &mut s, PAGE_READONLY, &mut old) };
    release(p);
    want!(st, STATUS_INVALID_HANDLE);
    want!(dos(st), ERROR_INVALID_HANDLE);
    Ok(())
}

fn case_45() -> Result<(), String> {
    let (st, _, _, old) = protect(0, P, PAGE_READONLY);
    want!(st, STATUS_CONFLICTING_ADDRESSES); // 64-bit Windows (Wine: INVALID_PARAMETER)
    want!(old, PAGE_NOACCESS);
    Ok(())
}

fn case_46() -> Result<(), String> {
    let p = new_alloc(P, RC, RW);
    let r = protect(p + 1, 1, PAGE_READONLY);
    release(p);
    want!(r, (STATUS_SUCCESS, p, P, RW));
    Ok(())
}

fn case_55() -> Result<(), String> {
    let base = new_alloc(G, RC, RW);
    let r = free(base + 0x1FFF, 2, MEM_DECOMMIT);
    let st = query(base + P).State;
    release(base);
    want!(r, (STATUS_SUCCESS, base + P, 2 * P));
    want!(st, MEM_RESERVE);
    Ok(())
}

fn case_63() -> Result<(), String> {
    let base = new_alloc(G, RC, RW);
    let r = free(base + P, 0, MEM_RELEASE);
    release(base);
    want!(r, (STATUS_FREE_VM_NOT_AT_BASE, base + P, 0));
    want!(dos(STATUS_FREE_VM_NOT_AT_BASE), ERROR_INVALID_ADDRESS);
    Ok(())
}

fn case_67() -> Result<(), String> {
    let base = new_alloc(G, RC, RW);
    let a = free(base, 0x11000, MEM_RELEASE);
    let b = free(base + 0x1001, 0xFFFF, MEM_RELEASE);
    release(base);
    want!(a, (STATUS_UNABLE_TO_FREE_VM, base, 0x11000));
    want!(b, (STATUS_UNABLE_TO_FREE_VM, base + 0x1001, 0xFFFF));
    Ok(())
}

fn case_70() -> Result<(), String> {
    let p = new_alloc(P, RC, RW);
    let (mut b, mut s) = (p as *mut c_void, 0);
    // SAFETY: valid pointers.
    let st = unsafe { NtFreeVirtualMemory(null_mut(), &mut b, &mut s, MEM_RELEASE) };
    release(p);
    want!(st, STATUS_INVALID_HANDLE);
    Ok(())
}

fn case_84() -> Result<(), String> {
    let full = size_of::<WIN32_MEMORY_REGION_INFORMATION>();
    let base = new_alloc(G, MEM_RESERVE, RW);
    let (st, i, ret) = region(base, full);
    want!(st, STATUS_SUCCESS);
    want!(ret, full);
    want!(
        (
            i.AllocationBase as usize,
            i.AllocationProtect,
            i.RegionSize,
            i.CommitSize
        ),
        (base, RW, G, 0)
    );
    // SAFETY: the union's integer member.
    want!(unsafe { i.Anonymous.Flags }, 0);
    want!(alloc(base, G, MEM_COMMIT, RW).0, STATUS_SUCCESS);
    want!(region(base, full).1.CommitSize, G);
    want!(protect(base + P, P, PAGE_NOACCESS).0, STATUS_SUCCESS);
    for at in [base, base + P] {
        let (st, i, _) = region(at, full);
        want!((st, i.RegionSize, i.CommitSize), (STATUS_SUCCESS, G, G));
    }
    // x64: a length up to CommitSize is accepted, up to RegionSize is not.
    want!(
        region(
            base,
            core::mem::offset_of!(WIN32_MEMORY_REGION_INFORMATION, CommitSize)
        )
        .0,
        STATUS_SUCCESS
    );
    want!(
        region(
            base,
            core::mem::offset_of!(WIN32_MEMORY_REGION_INFORMATION, RegionSize)
        )
        .0,
        STATUS_INFO_LENGTH_MISMATCH
    );
    release(base);
    let (st, i, _) = region(base, full);
    want!(st, STATUS_INVALID_ADDRESS);
    want!(i.AllocationBase as usize, 0x1234); // untouched
    want!(dos(STATUS_INVALID_ADDRESS), ERROR_UNEXP_NET_ERR);
    Ok(())
}

fn case_126() -> Result<(), String> {
    for zb in 1..=20usize {
        let (st, b, s) = alloc_zb(0, zb, G, RC | MEM_TOP_DOWN, RW);
        if st == STATUS_SUCCESS {
            release(b);
            if b + s > 1usize << (32 - zb) {
                return Err(format!("zero bits {zb}: {b:#x}+{s:#x}"));
            }
        } else if st != STATUS_NO_MEMORY {
            return Err(format!("zero bits {zb}: status {st:#x}"));
        }
    }
    let st = alloc_zb(0, 21, G, RC | MEM_TOP_DOWN, RW).0;
    if st != STATUS_NO_MEMORY && st != STATUS_INVALID_PARAMETER {
        return Err(format!("zero bits 21: {st:#x}"));
    }
    want!(alloc_zb(0, 22, G, RC, RW).0, STATUS_INVALID_PARAMETER_3);
    want!(alloc_zb(0, 31, G, RC, RW).0, STATUS_INVALID_PARAMETER_3);
    // Above 31: a mask; only its leading zeros count.
    for mask in [0x7FFF_FFFFusize, 0x4000_0000, 0x3FF_FFFF_FFFF] {
        let (st, b, s) = alloc_zb(0, mask, G, RC, RW);
        if st == STATUS_SUCCESS {
            release(b);
            let limit = 1usize << (usize::BITS - mask.leading_zeros());
            if b + s > limit {
                return Err(format!("mask {mask:#x}: {b:#x}"));
            }
        } else if st != STATUS_NO_MEMORY {
            return Err(format!("mask {mask:#x}: status {st:#x}"));
        }
    }
    Ok(())
}

fn case_127() -> Result<(), String> {
    let mut p = [MEM_EXTENDED_PARAMETER::default(); 2];
    want!(
        dos(alloc_ex_params(&mut p, 1, false)),
        ERROR_INVALID_PARAMETER
    ); // type 0
    p[0].Anonymous1._bitfield = MemExtendedParameterMax as u64;
    want!(
        dos(alloc_ex_params(&mut p, 1, false)),
        ERROR_INVALID_PARAMETER
    );
    let mut r = MEM_ADDRESS_REQUIREMENTS::default();
    for q in p.iter_mut() {
        q.Anonymous1._bitfield = MemExtendedParameterAddressRequirements as u64;
        q.Anonymous2.Pointer = (&mut r as *mut MEM_ADDRESS_REQUIREMENTS).cast();
    }
    want!(
        dos(alloc_ex_params(&mut p, 2, false)),
        ERROR_INVALID_PARAMETER
    ); // twice
    want!(
        dos(alloc_ex_params(&mut p, 1, true)),
        ERROR_INVALID_PARAMETER
    ); // NULL array
    want!(alloc_ex_params(&mut p, 1, false), STATUS_SUCCESS); // all zero
    Ok(())
}

fn case_128() -> Result<(), String> {
    let max = 0x7FFF_FFFE_FFFFusize;
    for hi in [0x2000_1001usize, 0x2000_0FFE, 0x2000_07FF, max + 0x1000] {
        want!(
            dos(alloc_ex(CP, 0, 0x40000, MEM_RESERVE, RW, Some((0, hi, 0))).0),
            ERROR_INVALID_PARAMETER
        );
    }
    let (st, b, s) = alloc_ex(CP, 0, 0x40000, MEM_RESERVE, RW, Some((0, 0x2000_0FFF, 0)));
    want!(st, STATUS_SUCCESS);
    release(b);
    want!(b % G, 0);
    if b + s > 0x2000_1000 {
        return Err(format!("{b:#x}+{s:#x} above the limit"));
    }
    let (st, b, _) = alloc_ex(CP, 0, 0x40000, MEM_RESERVE, RW, Some((0, max, 0)));
    want!(st, STATUS_SUCCESS);
    release(b);
    Ok(())
}

fn case_129() -> Result<(), String> {
    let req = Some((0, 0x7FFF_FFFF, 0));
    want!(
        dos(alloc_ex(CP, 0, G, MEM_COMMIT, RW, req).0),
        ERROR_INVALID_PARAMETER
    );
    let a = new_alloc(G, MEM_RESERVE, RW);
    let st = alloc_ex(CP, a, G, MEM_RESERVE, RW, req).0;
    release(a);
    want!(dos(st), ERROR_INVALID_PARAMETER);
    want!(
        alloc_ex(null_mut(), 0, G, MEM_RESERVE, RW, req).0,
        STATUS_INVALID_HANDLE
    );
    Ok(())
}

fn case_130() -> Result<(), String> {
    for al in [0x10000usize, 0x40000] {
        let (st, b, _) = alloc_ex(CP, 0, G, MEM_RESERVE, RW, Some((0, 0, al)));
        want!(st, STATUS_SUCCESS);
        release(b);
        want!(b % al, 0);
    }
    for al in [0x8000usize, 0x30000] {
        want!(
            dos(alloc_ex(CP, 0, G, MEM_RESERVE, RW, Some((0, 0, al))).0),
            ERROR_INVALID_PARAMETER
        );
    }
    let st = alloc_ex(
        CP,
        0,
        G,
        MEM_RESERVE,
        RW,
        Some((0, 0x2000_0FFF, 0x2000_0000)),
    )
    .0;
    want!(st, STATUS_NO_MEMORY);
    want!(dos(st), ERROR_NOT_ENOUGH_MEMORY);
    Ok(())
}

fn case_131() -> Result<(), String> {
    let max = 0x7FFF_FFFE_FFFFusize;
    for lo in [0x2000_1000usize, 0x2000_0FFF, 0x2000_1001, max + 1] {
        want!(
            dos(alloc_ex(CP, 0, G, MEM_RESERVE, RW, Some((lo, 0, 0))).0),
            ERROR_INVALID_PARAMETER
        );
    }
    want!(
        dos(alloc_ex(
            CP,
            0,
            G,
            MEM_RESERVE,
            RW,
            Some((0x3000_0000, 0x2FFF_FFFF, 0))
        )
        .0),
        ERROR_INVALID_PARAMETER
    );
    let (st, b, _) = alloc_ex(CP, 0, G, MEM_RESERVE, RW, Some((0x2000_0000, 0, 0)));
    want!(st, STATUS_SUCCESS);
    release(b);
    if b < 0x2000_0000 {
        return Err(format!("{b:#x} below LowestStartingAddress"));
    }
    let (st, b, _) = alloc_ex(
        CP,
        0,
        G,
        MEM_RESERVE,
        RW,
        Some((0x2000_0000, 0x2FFF_FFFF, 0)),
    );
    want!(st, STATUS_SUCCESS);
    release(b);
    if !(0x2000_0000..0x3000_0000).contains(&b) {
        return Err(format!("{b:#x} outside the window"));
    }
    Ok(())
}

const PH: u32 = MEM_RESERVE | MEM_RESERVE_PLACEHOLDER;

fn case_132_134_135() -> Result<(), String> {
    let s = 2 * G;
    let (st, ph, _) = alloc_ex(CP, 0, 2 * s, PH, PAGE_NOACCESS, None);
    want!(st, STATUS_SUCCESS);
    let q = query(ph);
    want!(
        (q.AllocationProtect, q.State, q.Type, q.RegionSize),
        (PAGE_NOACCESS, MEM_RESERVE, MEM_PRIVATE, 2 * s)
    );
    want!(
        dos(alloc_ex(CP, 0, s, PH, RW, None).0),
        ERROR_INVALID_PARAMETER
    );
    want!(
        dos(alloc(0, s, PH, PAGE_NOACCESS).0),
        ERROR_INVALID_PARAMETER
    ); // non-Ex
       // Case 135.
    want!(
        free(ph, 0, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0,
        STATUS_INVALID_PARAMETER_3
    );
    // Case 134: split.
    want!(
        free(ph, s, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
        (STATUS_SUCCESS, ph, s)
    );
    for at in [ph, ph + s] {
        let q = query(at);
        want!(
            (q.AllocationBase as usize, q.RegionSize, q.State),
            (at, s, MEM_RESERVE)
        );
    }
    // Case 135: preserving the whole of one placeholder.
    want!(
        dos(free(ph, s, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0),
        ERROR_INVALID_ADDRESS
    );
    release(ph);
    release(ph + s);
    Ok(())
}

fn case_137_138() -> Result<(), String> {
    let s = G;
    let (st, ph, _) = alloc_ex(CP, 0, s, PH, PAGE_NOACCESS, None);
    want!(st, STATUS_SUCCESS);
    // Case 138.
    want!(
        dos(alloc_ex(CP, ph, s, PH, PAGE_NOACCESS, None).0),
        ERROR_INVALID_ADDRESS
    );
    want!(
        dos(alloc_ex(CP, ph, s, MEM_RESERVE, RW, None).0),
        ERROR_INVALID_ADDRESS
    );
    want!(
        dos(alloc_ex(
            CP,
            ph,
            s - P,
            MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
            RW,
            None
        )
        .0),
        ERROR_INVALID_ADDRESS
    );
    want!(
        dos(alloc_ex(CP, ph, s, MEM_COMMIT, RW, None).0),
        ERROR_INVALID_ADDRESS
    );
    want!(
        dos(alloc_ex(CP, ph, s, MEM_REPLACE_PLACEHOLDER, RW, None).0),
        ERROR_INVALID_PARAMETER
    );
    want!(
        dos(alloc_ex(CP, ph, s, MEM_COMMIT | MEM_REPLACE_PLACEHOLDER, RW, None).0),
        ERROR_INVALID_PARAMETER
    );
    // Case 137.
    let rep = MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER;
    want!(alloc_ex(CP, ph, s, rep, RW, None), (STATUS_SUCCESS, ph, s));
    // SAFETY: committed read-write.
    unsafe { std::ptr::write_bytes(ph as *mut u8, 0x5A, s) };
    want!(
        free(ph, s, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0,
        STATUS_SUCCESS
    );
    let q = query(ph);
    want!(
        (q.AllocationProtect, q.State, q.Type, q.RegionSize),
        (PAGE_NOACCESS, MEM_RESERVE, MEM_PRIVATE, s)
    );
    want!(
        alloc_ex(CP, ph, s, rep, PAGE_READONLY, None).0,
        STATUS_SUCCESS
    );
    // SAFETY: committed read-only.
    let zero = unsafe { std::slice::from_raw_parts(ph as *const u8, s) }
        .iter()
        .all(|&b| b == 0);
    want!(zero, true);
    release(ph);
    Ok(())
}

fn case_139() -> Result<(), String> {
    let s = G;
    let (st, ph, _) = alloc_ex(CP, 0, 3 * s, PH, PAGE_NOACCESS, None);
    want!(st, STATUS_SUCCESS);
    let co = MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS;
    want!(dos(free(ph, 3 * s, co).0), ERROR_INVALID_ADDRESS); // one placeholder
    want!(
        free(ph, s, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER).0,
        STATUS_SUCCESS
    );
    want!(
        free(ph, 3 * s, MEM_COALESCE_PLACEHOLDERS).0,
        STATUS_INVALID_PARAMETER_4
    );
    want!(dos(free(ph, 3 * s + P, co).0), ERROR_INVALID_ADDRESS);
    want!(dos(free(ph, 3 * s - P, co).0), ERROR_INVALID_ADDRESS);
    want!(dos(free(ph, 0, co).0), ERROR_INVALID_PARAMETER);
    want!(dos(free(ph, 3 * s, MEM_RELEASE).0), ERROR_INVALID_PARAMETER); // UNABLE_TO_FREE_VM
    want!(free(ph, 3 * s, co), (STATUS_SUCCESS, ph, 3 * s));
    want!(query(ph).RegionSize, 3 * s);
    release(ph);
    Ok(())
}

/// Every `[T-nt]` case virtmem models.
const T_NT_CASES: &[Row] = &[
    (1, "NtAllocateVirtualMemory size 0", case_1),
    (
        12,
        "AT_ROUND_TO_PAGE is an invalid allocation type",
        case_12,
    ),
    (
        34,
        "NT partial release, reuse of the hole, the rest",
        case_34_60_61_68,
    ),
    (
        35,
        "NtProtect of reserved pages: NOT_COMMITTED, old NOACCESS",
        case_35,
    ),
    (39, "NtProtect with protection 0", case_39),
    (44, "NtProtect with a NULL handle", case_44),
    (
        45,
        "NtProtect of free memory: CONFLICTING_ADDRESSES",
        case_45,
    ),
    (
        46,
        "NtProtect of one unaligned byte covers its page",
        case_46,
    ),
    (55, "NtFree decommit rounding", case_55),
    (63, "release not at the base: FREE_VM_NOT_AT_BASE", case_63),
    (
        67,
        "release beyond the allocation: UNABLE_TO_FREE_VM",
        case_67,
    ),
    (70, "NtFree with a NULL handle", case_70),
    (84, "MemoryRegionInformation", case_84),
    (126, "ZeroBits", case_126),
    (127, "extended parameters", case_127),
    (128, "HighestEndingAddress", case_128),
    (
        129,
        "address requirements: commit, base, NULL handle",
        case_129,
    ),
    (130, "Alignment", case_130),
    (131, "LowestStartingAddress", case_131),
    (
        132,
        "placeholders: reserve, split, preserve",
        case_132_134_135,
    ),
    (
        137,
        "replace and preserve placeholders; operations on one",
        case_137_138,
    ),
    (139, "coalescing placeholders", case_139),
];

#[test]
fn t_nt_cases() {
    // Case 60 asserts that a released page is free: alone, or another test may allocate there.
    let _order = alone();
    let mut failed = Vec::new();
    for (case, what, check) in T_NT_CASES {
        if let Err(e) = check() {
            failed.push(format!("case {case} ({what}): {e}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn out_parameters_are_written_back_rounded() {
    let _order = shared();
    // Reserve at an unaligned address: the base rounds down to 64 KiB, the size up to pages.
    let probe = new_alloc(4 * G, MEM_RESERVE, RW);
    release(probe);
    let (st, b, s) = alloc(probe + 0x1234, 0x2000, MEM_RESERVE, RW);
    if st == STATUS_CONFLICTING_ADDRESSES {
        return; // another test took the range meanwhile
    }
    assert_eq!((st, b, s), (STATUS_SUCCESS, probe, 0x4000));
    // Commit: the touched pages.
    assert_eq!(
        alloc(b + 0x1FFF, 2, MEM_COMMIT, RW),
        (STATUS_SUCCESS, b + P, 2 * P)
    );
    // Release with size 0: the address rounds down to its page, which must be the base.
    assert_eq!(free(b + P, 0, MEM_RELEASE).0, STATUS_FREE_VM_NOT_AT_BASE);
    assert_eq!(free(b + 1, 0, MEM_RELEASE), (STATUS_SUCCESS, b, 0x4000));
}

#[test]
fn bad_pointers_are_access_violations() {
    let _order = shared();
    let mut s = P;
    let mut b: *mut c_void = null_mut();
    // SAFETY: NULL pointers are what is tested; the functions probe them.
    unsafe {
        assert_eq!(
            NtAllocateVirtualMemory(CP, null_mut(), 0, &mut s, RC, RW),
            STATUS_ACCESS_VIOLATION
        );
        assert_eq!(
            NtAllocateVirtualMemory(CP, &mut b, 0, null_mut(), RC, RW),
            STATUS_ACCESS_VIOLATION
        );
        assert_eq!(
            NtFreeVirtualMemory(CP, null_mut(), &mut s, MEM_RELEASE),
            STATUS_ACCESS_VIOLATION
        );
        let p = new_alloc(P, RC, RW);
        let mut pb = p as *mut c_void;
        let mut ps = P;
        assert_eq!(
            NtProtectVirtualMemory(CP, &mut pb, &mut ps, PAGE_READONLY, null_mut()),
            STATUS_ACCESS_VIOLATION
        );
        // An out pointer into a read-only page: not written, no fault.
        let ro = new_alloc(P, RC, PAGE_READONLY);
        assert_eq!(
            NtAllocateVirtualMemory(CP, ro as *mut *mut c_void, 0, &mut s, RC, RW),
            STATUS_ACCESS_VIOLATION
        );
        assert_eq!(
            NtQueryVirtualMemory(
                CP,
                p as *const c_void,
                MemoryBasicInformation,
                ro as *mut c_void,
                48,
                null_mut()
            ),
            STATUS_ACCESS_VIOLATION
        );
        assert_eq!(
            NtQueryVirtualMemory(
                CP,
                p as *const c_void,
                MemoryBasicInformation,
                null_mut(),
                48,
                null_mut()
            ),
            STATUS_ACCESS_VIOLATION
        );
        let mut mbi = MEMORY_BASIC_INFORMATION::default();
        assert_eq!(
            NtQueryVirtualMemory(
                CP,
                p as *const c_void,
                MemoryBasicInformation,
                (&mut mbi as *mut MEMORY_BASIC_INFORMATION).cast(),
                47,
                null_mut()
            ),
            STATUS_INFO_LENGTH_MISMATCH
        );
        assert_eq!(
            NtQueryVirtualMemory(
                CP,
                p as *const c_void,
                99,
                (&mut mbi as *mut MEMORY_BASIC_INFORMATION).cast(),
                48,
                null_mut()
            ),
            STATUS_INVALID_INFO_CLASS
        );
        release(p);
        release(ro);
    }
    assert_eq!(dos(STATUS_ACCESS_VIOLATION), ERROR_NOACCESS);
}

#[test]
fn nt_functions_leave_the_last_error_alone() {
    let _order = shared();
    SetLastError(0xdead_beef);
    assert_eq!(alloc(0, 0, MEM_RESERVE, RW).0, STATUS_INVALID_PARAMETER);
    assert_eq!(protect(0, P, 0).0, STATUS_INVALID_PAGE_PROTECTION);
    assert_eq!(GetLastError(), 0xdead_beef);
}

#[test]
fn other_process_handles_are_not_supported_and_null_is_invalid() {
    let _order = shared();
    let mut mbi = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: a valid buffer.
    let mut st = |h: HANDLE| unsafe {
        NtQueryVirtualMemory(
            h,
            null(),
            MemoryBasicInformation,
            (&mut mbi as *mut MEMORY_BASIC_INFORMATION).cast(),
            48,
            null_mut(),
        )
    };
    assert_eq!(st(null_mut()), STATUS_INVALID_HANDLE);
    assert_eq!(st(CP), STATUS_SUCCESS);
    let other = st(0x1234 as HANDLE);
    assert!(
        other == STATUS_INVALID_HANDLE || other == STATUS_NOT_SUPPORTED,
        "{other:#x}"
    );
}

#[test]
fn rtl_nt_status_to_dos_error_rules() {
    let _order = shared();
    assert_eq!(RtlNtStatusToDosError(STATUS_SUCCESS), 0);
    assert_eq!(
        RtlNtStatusToDosError(STATUS_GUARD_PAGE_VIOLATION),
        0x8000_0001
    );
    assert_eq!(RtlNtStatusToDosError(STATUS_INVALID_PARAMETER_2), 87);
    assert_eq!(RtlNtStatusToDosError(STATUS_NOT_COMMITTED), 487);
    assert_eq!(RtlNtStatusToDosError(STATUS_ALREADY_COMMITTED), 5);
    assert_eq!(RtlNtStatusToDosError(STATUS_INFO_LENGTH_MISMATCH), 24);
    assert_eq!(RtlNtStatusToDosError(STATUS_NOT_LOCKED), 158);
    assert_eq!(RtlNtStatusToDosError(STATUS_WORKING_SET_QUOTA), 1453);
    assert_eq!(RtlNtStatusToDosError(STATUS_COMMITMENT_LIMIT), 1455);
    assert_eq!(RtlNtStatusToDosError(STATUS_MAPPED_ALIGNMENT), 1132);
    assert_eq!(
        RtlNtStatusToDosError(STATUS_NOT_SAME_DEVICE),
        ERROR_NOT_SAME_DEVICE
    );
    assert_eq!(RtlNtStatusToDosError(STATUS_WAS_LOCKED), ERROR_WAS_LOCKED);
    // Customer codes unchanged; 0xD… as 0xC…; facility 7 unwrapped; unknown → 317.
    assert_eq!(RtlNtStatusToDosError(0xE000_1234_u32 as i32), 0xE000_1234);
    assert_eq!(
        RtlNtStatusToDosError(0xD000_000D_u32 as i32),
        ERROR_INVALID_PARAMETER
    );
    assert_eq!(RtlNtStatusToDosError(0xC007_0050_u32 as i32), 80);
    assert_eq!(
        RtlNtStatusToDosError(0xC0FF_FFF0_u32 as i32),
        ERROR_MR_MID_NOT_FOUND
    );
}

#[test]
fn every_error_round_trips_through_its_status() {
    let _order = shared();
    use virtmem::Error as E;
    let all = [
        E::InvalidParameter(""),
        E::InvalidAddress(""),
        E::NoAccess(""),
        E::InvalidHandle,
        E::NotEnoughMemory(""),
        E::CommitmentLimit,
        E::NotLocked,
        E::WorkingSetQuota,
        E::BadLength,
        E::NotSupported(""),
        E::ResetDataLost,
        E::GuardPageViolation,
        E::PrivilegeNotHeld(""),
        E::NoSystemResources(""),
        E::FileNotFound(""),
        E::PathNotFound(""),
        E::AccessDenied(""),
        E::SharingViolation,
        E::FileExists,
        E::DiskFull,
        E::NegativeSeek,
        E::BadExeFormat,
        E::FilenameTooLong,
        E::FileInvalid,
        E::MappedAlignment(""),
        E::UserMappedFile(""),
        E::InsufficientBuffer,
        E::PartialCopy,
        E::Code(ERROR_GEN_FAILURE),
        E::Code(ERROR_WRITE_PROTECT),
        E::Code(ERROR_LOCK_VIOLATION),
    ];
    for e in all {
        // A new variant without a row here fails to compile (exhaustive match).
        match e {
            E::InvalidParameter(_)
            | E::InvalidAddress(_)
            | E::NoAccess(_)
            | E::InvalidHandle
            | E::NotEnoughMemory(_)
            | E::CommitmentLimit
            | E::NotLocked
            | E::WorkingSetQuota
            | E::BadLength
            | E::NotSupported(_)
            | E::ResetDataLost
            | E::GuardPageViolation
            | E::PrivilegeNotHeld(_)
            | E::NoSystemResources(_)
            | E::FileNotFound(_)
            | E::PathNotFound(_)
            | E::AccessDenied(_)
            | E::SharingViolation
            | E::FileExists
            | E::DiskFull
            | E::NegativeSeek
            | E::BadExeFormat
            | E::FilenameTooLong
            | E::FileInvalid
            | E::MappedAlignment(_)
            | E::UserMappedFile(_)
            | E::InsufficientBuffer
            | E::PartialCopy
            | E::Code(_) => {}
        }
        assert_eq!(
            RtlNtStatusToDosError(e.nt_status()),
            e.win32_code(),
            "{e:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------------

fn lock(
    f: unsafe extern "system" fn(HANDLE, *mut *mut c_void, *mut usize, u32) -> NTSTATUS,
    base: usize,
    size: usize,
    t: u32,
) -> (NTSTATUS, usize, usize) {
    let (mut b, mut s) = (base as *mut c_void, size);
    // SAFETY: valid in/out pointers.
    let st = unsafe { f(CP, &mut b, &mut s, t) };
    (st, b as usize, s)
}

#[test]
fn lock_and_unlock() {
    let _order = shared();
    let p = new_alloc(4 * P, RC, RW);
    assert_eq!(
        lock(NtUnlockVirtualMemory, p, P, MAP_PROCESS).0,
        STATUS_NOT_LOCKED
    );
    assert_eq!(
        lock(NtLockVirtualMemory, p, P, 0).0,
        STATUS_INVALID_PARAMETER_4
    );
    assert_eq!(
        lock(NtLockVirtualMemory, p, P, 4).0,
        STATUS_INVALID_PARAMETER_4
    );
    assert_eq!(
        lock(NtLockVirtualMemory, p, P, MAP_SYSTEM).0,
        STATUS_PRIVILEGE_NOT_HELD
    );
    let r = lock(NtLockVirtualMemory, p + 1, P, MAP_PROCESS);
    if r.0 == STATUS_WORKING_SET_QUOTA {
        release(p);
        return; // RLIMIT_MEMLOCK too small here
    }
    assert_eq!(r, (STATUS_SUCCESS, p, 2 * P));
    assert_eq!(
        lock(NtLockVirtualMemory, p, P, MAP_PROCESS).0,
        STATUS_WAS_LOCKED
    );
    assert_eq!(dos(STATUS_WAS_LOCKED), ERROR_WAS_LOCKED);
    assert_eq!(
        lock(NtUnlockVirtualMemory, p, 3 * P, MAP_PROCESS).0,
        STATUS_NOT_LOCKED
    );
    assert_eq!(
        lock(NtUnlockVirtualMemory, p, 2 * P, MAP_PROCESS),
        (STATUS_SUCCESS, p, 2 * P)
    );
    assert_eq!(
        lock(NtUnlockVirtualMemory, p, P, MAP_PROCESS).0,
        STATUS_NOT_LOCKED
    );
    release(p);
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

fn create_section(size: i64, file: HANDLE, prot: u32) -> (NTSTATUS, HANDLE) {
    let mut h = null_mut();
    // SAFETY: valid pointers.
    let st = unsafe {
        NtCreateSection(
            &mut h,
            SECTION_ALL_ACCESS,
            null(),
            &size,
            prot,
            SEC_COMMIT,
            file,
        )
    };
    (st, h)
}

fn map(h: HANDLE, offset: i64, size: usize, prot: u32) -> (NTSTATUS, usize, usize) {
    let (mut b, mut s, mut o) = (null_mut(), size, offset);
    // SAFETY: valid pointers.
    let st = unsafe { NtMapViewOfSection(h, CP, &mut b, 0, 0, &mut o, &mut s, ViewUnmap, 0, prot) };
    (st, b as usize, s)
}

fn unmap(b: usize) -> NTSTATUS {
    // SAFETY: any address may be passed.
    unsafe { NtUnmapViewOfSection(CP, b as *const c_void) }
}

fn same(a: usize, b: usize) -> NTSTATUS {
    // SAFETY: any addresses may be passed.
    unsafe { NtAreMappedFilesTheSame(a as *const c_void, b as *const c_void) }
}

fn temp_file(name: &str, len: usize) -> (std::path::PathBuf, HANDLE) {
    let path = std::env::temp_dir().join(format!("virtmem-nt-{}-{name}", std::process::id()));
    std::fs::write(&path, vec![7u8; len]).unwrap();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    let h = unsafe {
        CreateFileA(
            c.as_ptr().cast(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            null(),
            OPEN_EXISTING,
            0,
            null_mut(),
        )
    };
    assert_ne!(h, INVALID_HANDLE_VALUE);
    (path, h)
}

#[test]
fn sections_through_the_nt_calls() {
    let _order = shared();
    let (st, h) = create_section(0x3000, null_mut(), RW);
    assert_eq!(st, STATUS_SUCCESS);
    let (st, v, s) = map(h, 0, 0, RW);
    assert_eq!((st, s), (STATUS_SUCCESS, 0x3000));
    assert_eq!(v % G, 0);
    let q = query(v + P);
    assert_eq!((q.Type, q.AllocationBase as usize), (MEM_MAPPED, v));
    // Misaligned offset, view past the end, bad protection, bad inherit.
    assert_eq!(map(h, 0x1000, 0, RW).0, STATUS_MAPPED_ALIGNMENT);
    assert_eq!(map(h, 0, 0x4000, RW).0, STATUS_INVALID_VIEW_SIZE);
    assert_eq!(map(h, 0, 0, 0x3).0, STATUS_INVALID_PAGE_PROTECTION);
    let (mut b, mut sz) = (null_mut(), 0usize);
    // SAFETY: valid pointers.
    let st = unsafe { NtMapViewOfSection(h, CP, &mut b, 0, 0, null_mut(), &mut sz, 3, 0, RW) };
    assert_eq!(st, STATUS_INVALID_PARAMETER_8);
    // A second view at an occupied address.
    let (mut b2, mut s2) = (v as *mut c_void, 0usize);
    // SAFETY: valid pointers.
    let st =
        unsafe { NtMapViewOfSection(h, CP, &mut b2, 0, 0, null_mut(), &mut s2, ViewShare, 0, RW) };
    assert_eq!(st, STATUS_CONFLICTING_ADDRESSES);
    // Filename of a pagefile view: no file.
    let mut buf = [0u8; 512];
    let mut ret = 0usize;
    // SAFETY: a 512-byte buffer.
    let st = unsafe {
        NtQueryVirtualMemory(
            CP,
            v as *const c_void,
            MemoryMappedFilenameInformation,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut ret,
        )
    };
    assert_eq!(st, STATUS_FILE_INVALID);
    // NtFreeVirtualMemory does not free views.
    assert_eq!(free(v, 0, MEM_RELEASE).0, STATUS_UNABLE_TO_DELETE_SECTION);
    // Ex: MapViewOfFile3's rules.
    let (mut bx, mut sx, mut ox) = (null_mut(), 0usize, 0i64);
    // SAFETY: valid pointers, no parameters.
    let st = unsafe {
        NtMapViewOfSectionEx(
            h,
            CP,
            &mut bx,
            &mut ox,
            &mut sx,
            0,
            PAGE_READONLY,
            null_mut(),
            0,
        )
    };
    assert_eq!((st, sx), (STATUS_SUCCESS, 0x3000));
    assert_eq!(query(bx as usize).Protect, PAGE_READONLY);
    assert_eq!(unmap(bx as usize), STATUS_SUCCESS);
    // Unmap: any address in the view; then it is not a view.
    assert_eq!(unmap(v + 0x1064), STATUS_SUCCESS);
    assert_eq!(unmap(v), STATUS_NOT_MAPPED_VIEW);
    // SAFETY: the preserve flag on a view that replaced no placeholder.
    let (st2, v2, _) = map(h, 0, 0, RW);
    assert_eq!(st2, STATUS_SUCCESS);
    assert_eq!(
        unsafe { NtUnmapViewOfSectionEx(CP, v2 as *const c_void, 8) },
        STATUS_INVALID_PARAMETER_3
    );
    assert_eq!(
        unsafe { NtUnmapViewOfSectionEx(CP, v2 as *const c_void, MEM_PRESERVE_PLACEHOLDER) },
        STATUS_CONFLICTING_ADDRESSES
    );
    assert_eq!(
        unsafe { NtUnmapViewOfSectionEx(null_mut(), v2 as *const c_void, 0) },
        STATUS_INVALID_HANDLE
    );
    assert_eq!(unmap(v2), STATUS_SUCCESS);
    // SAFETY: our handle.
    unsafe { CloseHandle(h) };
}

#[test]
fn named_sections_and_open_if() {
    let _order = shared();
    let name: Vec<u16> = format!("\\BaseNamedObjects\\virtmem-nt-{}", std::process::id())
        .encode_utf16()
        .collect();
    let us = UNICODE_STRING {
        Length: (name.len() * 2) as u16,
        MaximumLength: (name.len() * 2) as u16,
        Buffer: name.as_ptr() as *mut u16,
    };
    let mut oa = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        ObjectName: &us,
        ..Default::default()
    };
    let size = 0x1000i64;
    let (mut h1, mut h2, mut h3) = (null_mut(), null_mut(), null_mut());
    // SAFETY: valid pointers.
    unsafe {
        assert_eq!(
            NtCreateSection(
                &mut h1,
                SECTION_ALL_ACCESS,
                &oa,
                &size,
                RW,
                SEC_COMMIT,
                null_mut()
            ),
            STATUS_SUCCESS
        );
        assert_eq!(
            NtCreateSection(
                &mut h2,
                SECTION_ALL_ACCESS,
                &oa,
                &size,
                RW,
                SEC_COMMIT,
                null_mut()
            ),
            STATUS_OBJECT_NAME_COLLISION
        );
        oa.Attributes = OBJ_OPENIF;
        assert_eq!(
            NtCreateSection(
                &mut h3,
                SECTION_ALL_ACCESS,
                &oa,
                &size,
                RW,
                SEC_COMMIT,
                null_mut()
            ),
            STATUS_OBJECT_NAME_EXISTS
        );
        assert_eq!(
            NtCreateSection(
                &mut h2,
                SECTION_ALL_ACCESS,
                null(),
                &size,
                RW,
                0,
                null_mut()
            ),
            STATUS_INVALID_PARAMETER_6
        );
        let (st, a, _) = map(h1, 0, 0, RW);
        let (st2, b, _) = map(h3, 0, 0, RW);
        assert_eq!((st, st2), (STATUS_SUCCESS, STATUS_SUCCESS));
        *(a as *mut u8) = 9;
        assert_eq!(*(b as *const u8), 9, "one section behind both names");
        unmap(a);
        unmap(b);
        CloseHandle(h1);
        CloseHandle(h3);
    }
}

#[test]
fn are_mapped_files_the_same() {
    let _order = shared();
    let (path1, f1) = temp_file("a", 0x2000);
    let (path2, f2) = temp_file("b", 0x2000);
    let (st, s1) = create_section(0, f1, RW);
    assert_eq!(st, STATUS_SUCCESS);
    let (_, s1b) = create_section(0, f1, PAGE_READONLY);
    let (_, s2) = create_section(0, f2, PAGE_READONLY);
    let (_, v1, _) = map(s1, 0, 0, RW);
    let (_, v1b, _) = map(s1b, 0, 0, PAGE_READONLY);
    let (_, v2, _) = map(s2, 0, 0, PAGE_READONLY);
    // Windows (k32 test_NtAreMappedFilesTheSame): one view → same; two views of one data
    // file, or of different files → not the same; private memory → conflicting; free → invalid.
    assert_eq!(same(v1, v1), STATUS_SUCCESS);
    assert_eq!(same(v1, v1 + 30), STATUS_SUCCESS);
    assert_eq!(same(v1, v1b), STATUS_NOT_SAME_DEVICE);
    assert_eq!(same(v1, v2), STATUS_NOT_SAME_DEVICE);
    let private = new_alloc(G, RC, RW);
    assert_eq!(same(v1, private), STATUS_CONFLICTING_ADDRESSES);
    assert_eq!(same(v1, 0), STATUS_INVALID_ADDRESS);
    assert_eq!(same(0, 0), STATUS_INVALID_ADDRESS);
    // An image (this test's own executable) and another address of the same image file.
    let code = are_mapped_files_the_same as fn() as usize;
    let q = query(code);
    assert_eq!(q.Type, MEM_IMAGE);
    assert_eq!(same(code, code + 1), STATUS_SUCCESS);
    assert_eq!(same(code, v1), STATUS_NOT_SAME_DEVICE);
    // The file name of a file view.
    let mut buf = vec![0u8; 4096];
    let mut ret = 0usize;
    // SAFETY: a 4096-byte buffer.
    let st = unsafe {
        NtQueryVirtualMemory(
            CP,
            v2 as *const c_void,
            MemoryMappedFilenameInformation,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut ret,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    // SAFETY: the buffer starts with the UNICODE_STRING just written.
    let us = unsafe { (buf.as_ptr() as *const UNICODE_STRING).read_unaligned() };
    // SAFETY: its text, inside the buffer.
    let text = unsafe { std::slice::from_raw_parts(us.Buffer, usize::from(us.Length) / 2) };
    assert_eq!(String::from_utf16_lossy(text), path2.to_str().unwrap());
    assert_eq!(
        ret,
        size_of::<UNICODE_STRING>() + usize::from(us.MaximumLength)
    );
    // Too small: the length needed comes back.
    let mut small = [0u8; 20];
    let mut need = 0usize;
    // SAFETY: a 20-byte buffer.
    let st = unsafe {
        NtQueryVirtualMemory(
            CP,
            v2 as *const c_void,
            MemoryMappedFilenameInformation,
            small.as_mut_ptr().cast(),
            small.len(),
            &mut need,
        )
    };
    assert_eq!((st, need), (STATUS_BUFFER_OVERFLOW, ret));
    // Private memory has no file name.
    // SAFETY: as above.
    let st = unsafe {
        NtQueryVirtualMemory(
            CP,
            private as *const c_void,
            MemoryMappedFilenameInformation,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut ret,
        )
    };
    assert_eq!(st, STATUS_INVALID_ADDRESS);
    release(private);
    for v in [v1, v1b, v2] {
        unmap(v);
    }
    // SAFETY: our handles.
    unsafe {
        for h in [s1, s1b, s2, f1, f2] {
            CloseHandle(h);
        }
    }
    let _ = std::fs::remove_file(path1);
    let _ = std::fs::remove_file(path2);
}

// ---------------------------------------------------------------------------------------------
// Working sets
// ---------------------------------------------------------------------------------------------

fn ws_ex(addrs: &[usize]) -> Vec<usize> {
    let mut info: Vec<PSAPI_WORKING_SET_EX_INFORMATION> = addrs
        .iter()
        .map(|&a| PSAPI_WORKING_SET_EX_INFORMATION {
            VirtualAddress: a as *mut c_void,
            ..Default::default()
        })
        .collect();
    let cb = (info.len() * size_of::<PSAPI_WORKING_SET_EX_INFORMATION>()) as u32;
    // SAFETY: `cb` bytes of entries.
    assert_eq!(
        unsafe { QueryWorkingSetEx(CP, info.as_mut_ptr().cast(), cb) },
        TRUE
    );
    // SAFETY: the union's integer member.
    info.iter()
        .map(|i| unsafe { i.VirtualAttributes.Flags })
        .collect()
}

const VALID: usize = 1;
const SHARED: usize = 1 << 15;
const LOCKED: usize = 1 << 22;

fn share_count(f: usize) -> usize {
    (f >> 1) & 7
}

#[test]
fn working_set_ex_bits() {
    let _order = shared();
    let p = new_alloc(4 * P, RC, RW);
    // SAFETY: committed read-write; page 1 is touched, page 2 is not.
    unsafe { std::ptr::write_volatile((p + P) as *mut u8, 1) };
    let f = ws_ex(&[p + P, p + 2 * P]);
    assert_eq!(f[0] & VALID, VALID, "a touched page is valid");
    assert_eq!((f[0] >> 4) & 0x7FF, RW as usize, "Win32Protection");
    assert_eq!(f[0] & SHARED, 0, "private memory is not shared");
    assert_eq!(f[1] & VALID, 0, "an untouched committed page is not valid");
    // The query itself did not fault the untouched page in.
    assert_eq!(ws_ex(&[p + 2 * P])[0] & VALID, 0);
    // A locked page.
    let (mut b, mut s) = (p as *mut c_void, P);
    // SAFETY: valid pointers.
    let st = unsafe { NtLockVirtualMemory(CP, &mut b, &mut s, MAP_PROCESS) };
    if st == STATUS_SUCCESS {
        let f = ws_ex(&[p])[0];
        assert_eq!(f & (VALID | LOCKED), VALID | LOCKED, "{f:#x}");
        lock(NtUnlockVirtualMemory, p, P, MAP_PROCESS);
    }
    release(p);
    // A shared view page, mapped twice: Shared, and a share count of at least two.
    let (st, h) = create_section(0x1000, null_mut(), RW);
    assert_eq!(st, STATUS_SUCCESS);
    let (_, a, _) = map(h, 0, 0, RW);
    let (_, b, _) = map(h, 0, 0, RW);
    // SAFETY: both views are read-write.
    unsafe {
        std::ptr::write_volatile(a as *mut u8, 1);
        std::ptr::read_volatile(b as *const u8);
    }
    let f = ws_ex(&[a, b]);
    for x in &f {
        assert_eq!(x & (VALID | SHARED), VALID | SHARED, "{x:#x}");
        assert!(share_count(*x) >= 2, "{x:#x}");
    }
    unmap(a);
    unmap(b);
    // SAFETY: our handle.
    unsafe { CloseHandle(h) };
    // Free memory: not valid, not shared.
    assert_eq!(ws_ex(&[0x10000])[0], 0);
}

#[test]
fn query_working_set_lists_valid_pages_and_reports_bad_length() {
    let _order = shared();
    let p = new_alloc(2 * P, RC, RW);
    // SAFETY: committed read-write.
    unsafe { std::ptr::write_volatile(p as *mut u8, 1) };
    let mut small = PSAPI_WORKING_SET_INFORMATION::default();
    SetLastError(0);
    // SAFETY: a buffer of one structure.
    let ok = unsafe {
        QueryWorkingSet(
            CP,
            (&mut small as *mut PSAPI_WORKING_SET_INFORMATION).cast(),
            size_of::<PSAPI_WORKING_SET_INFORMATION>() as u32,
        )
    };
    assert_eq!(ok, FALSE);
    assert_eq!(GetLastError(), ERROR_BAD_LENGTH);
    let n = small.NumberOfEntries;
    assert!(n > 1, "NumberOfEntries is set: {n}");
    let mut buf = vec![0usize; n + 4096];
    // SAFETY: a buffer of that many words.
    let ok = unsafe { K32QueryWorkingSet(CP, buf.as_mut_ptr().cast(), (buf.len() * 8) as u32) };
    assert_eq!(ok, TRUE);
    let count = buf[0];
    let pages: Vec<usize> = buf[1..=count].to_vec();
    let mine = pages
        .iter()
        .find(|&&w| w & !0xFFF == p)
        .expect("the touched page is listed");
    assert_eq!(mine & 0x1F, 4, "Protection: read/write");
    assert!(
        !pages.iter().any(|&w| w & !0xFFF == p + P),
        "the untouched page is not"
    );
    // SAFETY: NULL handle: ERROR_INVALID_HANDLE.
    assert_eq!(
        unsafe { QueryWorkingSet(null_mut(), buf.as_mut_ptr().cast(), 64) },
        FALSE
    );
    assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    release(p);
}

// ---------------------------------------------------------------------------------------------
// FlushProcessWriteBuffers
// ---------------------------------------------------------------------------------------------

#[test]
fn flush_process_write_buffers_with_threads() {
    let _order = shared();
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, counter) = (stop.clone(), counter.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for _ in 0..200 {
        FlushProcessWriteBuffers();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let m = virtmem::win32::nt::flush_process_write_buffers_mechanism();
    assert!(
        [
            "membarrier-private-expedited",
            "membarrier-global",
            "mprotect"
        ]
        .contains(&m),
        "{m}"
    );
}
