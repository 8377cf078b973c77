//! The Win32 memory functions for a program: the same thin translation as
//! `virtmem::win32` (argument and output-pointer checks, then the engine), on whichever
//! address space the program runs in. Output arguments are written through the program's
//! memory; a bad output pointer fails the call with ERROR_NOACCESS (998), as on Windows.

use super::interp::{Interp, Value};
use super::types::Ty;
use virtmem::win32::consts::*;
use virtmem::{Error, ExtendedParameter, MapRequest};

type Res = Result<u64, u32>;

fn code(e: Error) -> u32 {
    e.win32_code()
}

/// Calls Win32 function `name` with raw arguments. Returns its result and, if it failed,
/// the error for the last-error value.
pub fn call(it: &mut Interp<'_>, name: &str, a: &[u64]) -> (Value, Option<u32>) {
    let ptr = it.ptr;
    let pm = if ptr == 4 { 0xFFFF_FFFFu64 } else { u64::MAX };
    let current = |h: u64| h & pm == pm;
    let handle = |h: u64| -> Result<(), u32> {
        if current(h) {
            Ok(())
        } else {
            Err(ERROR_INVALID_HANDLE)
        }
    };
    let ptr_ty = Ty::void_ptr();
    let boolean = Ty::INT;
    let size_t = Ty::Int {
        size: ptr,
        signed: false,
    };
    let uint = Ty::UINT;
    let m = it.m;
    // (result type, value on failure, the call)
    let (ty, fail, r): (Ty, u64, Res) = match name {
        "VirtualAlloc" | "VirtualAllocFromApp" => (
            ptr_ty,
            0,
            alloc(it, a[0], a[1], a[2], a[3], name.ends_with("FromApp")),
        ),
        "VirtualAllocEx" | "VirtualAllocExNuma" => (
            ptr_ty,
            0,
            handle(a[0]).and_then(|()| alloc(it, a[1], a[2], a[3], a[4], false)),
        ),
        "VirtualAlloc2" | "VirtualAlloc2FromApp" => {
            (ptr_ty, 0, alloc2(it, a, name.ends_with("FromApp")))
        }
        "VirtualFree" => (
            boolean,
            0,
            m.virtual_free(a[0] as usize, a[1] as usize, a[2] as u32)
                .map(|()| 1)
                .map_err(code),
        ),
        "VirtualFreeEx" => (
            boolean,
            0,
            handle(a[0]).and_then(|()| {
                m.virtual_free(a[1] as usize, a[2] as usize, a[3] as u32)
                    .map(|()| 1)
                    .map_err(code)
            }),
        ),
        "VirtualProtect" | "VirtualProtectFromApp" => {
            (boolean, 0, protect(it, a[0], a[1], a[2], a[3]))
        }
        "VirtualProtectEx" => (
            boolean,
            0,
            handle(a[0]).and_then(|()| protect(it, a[1], a[2], a[3], a[4])),
        ),
        "VirtualQuery" => (size_t, 0, query(it, a[0], a[1], a[2])),
        "VirtualQueryEx" => (
            size_t,
            0,
            handle(a[0]).and_then(|()| query(it, a[1], a[2], a[3])),
        ),
        "VirtualLock" => (
            boolean,
            0,
            m.virtual_lock(a[0] as usize, a[1] as usize)
                .map(|()| 1)
                .map_err(code),
        ),
        "VirtualUnlock" => (
            boolean,
            0,
            m.virtual_unlock(a[0] as usize, a[1] as usize)
                .map(|()| 1)
                .map_err(code),
        ),
        "VirtualUnlockEx" => (
            boolean,
            0,
            handle(a[0]).and_then(|()| {
                m.virtual_unlock(a[1] as usize, a[2] as usize)
                    .map(|()| 1)
                    .map_err(code)
            }),
        ),
        "GetWriteWatch" => (uint, u32::MAX as u64, get_write_watch(it, a)),
        "ResetWriteWatch" => (
            uint,
            u32::MAX as u64,
            m.reset_write_watch(a[0] as usize, a[1] as usize)
                .map(|()| 0)
                .map_err(code),
        ),
        "GetSystemInfo" | "GetNativeSystemInfo" => {
            system_info(it, a[0]);
            (Ty::Void, 0, Ok(0))
        }
        "GetLargePageMinimum" => (size_t, 0, Ok(m.layout().large_page_size as u64)),
        "GetLastError" => (uint, 0, Ok(it.last_error as u64)),
        "SetLastError" => {
            it.last_error = a[0] as u32;
            (Ty::Void, 0, Ok(0))
        }
        "GetCurrentProcess" => (ptr_ty, 0, Ok(pm)),
        "FlushInstructionCache" => (boolean, 0, handle(a[0]).map(|()| 1)),
        "DiscardVirtualMemory" | "OfferVirtualMemory" | "ReclaimVirtualMemory" => {
            let undo = name == "ReclaimVirtualMemory";
            let t = if undo { MEM_RESET_UNDO } else { MEM_RESET };
            let r = m.virtual_alloc(a[0] as usize, a[1] as usize, t, PAGE_NOACCESS, false);
            let c = match r {
                Ok(_) => ERROR_SUCCESS,
                Err(Error::ResetDataLost) if undo => 170,
                Err(e) => e.win32_code(),
            };
            // These return the error code instead of setting the last error.
            return (
                Value {
                    ty: uint,
                    bits: c as u64,
                },
                None,
            );
        }
        "PrefetchVirtualMemory" => (
            boolean,
            0,
            handle(a[0]).and_then(|()| {
                if a[1] == 0 || a[2] == 0 || a[3] != 0 {
                    Err(ERROR_INVALID_PARAMETER)
                } else {
                    Ok(1)
                }
            }),
        ),
        "AllocateUserPhysicalPages" | "AllocateUserPhysicalPagesNuma" => (
            boolean,
            0,
            handle(a[0]).and_then(|()| alloc_physical(it, a[1], a[2])),
        ),
        "MapUserPhysicalPages" => (boolean, 0, map_physical(it, a[0], a[1], a[2])),
        "MapUserPhysicalPagesScatter" => (boolean, 0, map_scatter(it, a[0], a[1], a[2])),
        "FreeUserPhysicalPages" => (
            boolean,
            0,
            handle(a[0]).and_then(|()| free_physical(it, a[1], a[2])),
        ),
        "CreateFileMappingA" | "CreateFileMappingW" => {
            (ptr_ty, 0, create_mapping(it, a, name.ends_with('W')))
        }
        "OpenFileMappingA" | "OpenFileMappingW" => {
            (ptr_ty, 0, open_mapping(it, a, name.ends_with('W')))
        }
        "MapViewOfFile" => (
            ptr_ty,
            0,
            map_view(it, a[0], a[1], (a[2] << 32) | (a[3] & 0xFFFF_FFFF), a[4], 0),
        ),
        "MapViewOfFileEx" => (
            ptr_ty,
            0,
            map_view(
                it,
                a[0],
                a[1],
                (a[2] << 32) | (a[3] & 0xFFFF_FFFF),
                a[4],
                a[5],
            ),
        ),
        "MapViewOfFile3" => (
            ptr_ty,
            0,
            if a[1] != 0 && !current(a[1]) {
                Err(ERROR_INVALID_HANDLE)
            } else {
                map_view3(it, a)
            },
        ),
        "UnmapViewOfFile" => (boolean, 0, unmap_view(it, a[0], 0)),
        "UnmapViewOfFileEx" => (boolean, 0, unmap_view(it, a[0], a[1])),
        "UnmapViewOfFile2" => (
            boolean,
            0,
            // U6: NULL is not the current process here.
            handle(a[0]).and_then(|()| unmap_view(it, a[1], a[2])),
        ),
        "FlushViewOfFile" => (
            boolean,
            0,
            m.flush_view(a[0] as usize, a[1] as usize)
                .map(|()| 1)
                .map_err(code),
        ),
        "CloseHandle" => (
            boolean,
            0,
            if current(a[0]) {
                // CloseHandle(GetCurrentProcess()): TRUE, no effect (H1).
                Ok(1)
            } else {
                m.close_handle(a[0] as usize).map(|()| 1).map_err(code)
            },
        ),
        "DuplicateHandle" => (boolean, 0, duplicate(it, a)),
        n if n.starts_with("Heap") || n == "GetProcessHeap" => heap_call(it, n, a),
        n if n.starts_with("Global") || n.starts_with("Local") => {
            let Some(space) = m.sim_space() else {
                return (
                    Value {
                        ty: ptr_ty,
                        bits: 0,
                    },
                    Some(ERROR_CALL_NOT_IMPLEMENTED),
                );
            };
            let local = n.starts_with("Local");
            let op = n.trim_start_matches("Global").trim_start_matches("Local");
            let (v, le) = match op {
                "ReAlloc" => {
                    space.global_call(local, op, a[0] as usize, a[1] as usize, a[2] as u32)
                }
                "Alloc" => space.global_call(local, op, a[0] as usize, a[1] as usize, 0),
                _ => space.global_call(local, op, a[0] as usize, 0, 0),
            };
            let ty = match op {
                "Unlock" => boolean,
                "Size" => size_t,
                "Flags" => uint,
                _ => ptr_ty,
            };
            // These set (or keep) the last error on success too (G13: unlock sets 0).
            return (Value { ty, bits: v as u64 }, le);
        }
        _ => (Ty::Void, 0, Err(ERROR_CALL_NOT_IMPLEMENTED)),
    };
    match r {
        Ok(v) => (Value { ty, bits: v }, None),
        Err(e) => (Value { ty, bits: fail }, Some(e)),
    }
}

fn alloc(it: &Interp<'_>, addr: u64, size: u64, t: u64, p: u64, from_app: bool) -> Res {
    it.m.virtual_alloc(addr as usize, size as usize, t as u32, p as u32, from_app)
        .map(|v| v as u64)
        .map_err(code)
}

fn alloc2(it: &mut Interp<'_>, a: &[u64], from_app: bool) -> Res {
    let (process, base, size, t, p, params, count) = (a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    let pm = if it.ptr == 4 {
        0xFFFF_FFFFu64
    } else {
        u64::MAX
    };
    if process != 0 && process & pm != pm {
        return Err(ERROR_INVALID_HANDLE);
    }
    let decoded = decode_params(it, params, count)?;
    it.m.virtual_alloc2(
        base as usize,
        size as usize,
        t as u32,
        p as u32,
        &decoded,
        from_app,
    )
    .map(|v| v as u64)
    .map_err(code)
}

/// Reads `count` MEM_EXTENDED_PARAMETERs at `params` (VirtualAlloc2, MapViewOfFile3).
fn decode_params(
    it: &mut Interp<'_>,
    params: u64,
    count: u64,
) -> Result<Vec<ExtendedParameter>, u32> {
    let pm = if it.ptr == 4 {
        0xFFFF_FFFFu64
    } else {
        u64::MAX
    };
    let count = count as u32;
    if count > 0 && params == 0 {
        return Err(ERROR_INVALID_PARAMETER);
    }
    let mut decoded = Vec::new();
    let mut seen = 0u64;
    for i in 0..count as u64 {
        let at = params + 16 * i;
        let mut b = [0u8; 16];
        if !it.inp(at, &mut b) {
            return Err(ERROR_NOACCESS);
        }
        let ty = (b[0]) as i32;
        let payload = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        if ty <= MemExtendedParameterInvalidType || ty >= MemExtendedParameterMax {
            return Err(ERROR_INVALID_PARAMETER);
        }
        if seen & (1 << ty) != 0 {
            return Err(ERROR_INVALID_PARAMETER);
        }
        seen |= 1 << ty;
        decoded.push(match ty {
            t if t == MemExtendedParameterAddressRequirements => {
                let r = payload & pm;
                if r == 0 {
                    return Err(ERROR_INVALID_PARAMETER);
                }
                let n = it.ptr as u64;
                let (Some(lo), Some(hi), Some(al)) =
                    (it.inp_ptr(r), it.inp_ptr(r + n), it.inp_ptr(r + 2 * n))
                else {
                    return Err(ERROR_NOACCESS);
                };
                ExtendedParameter::AddressRequirements {
                    lowest: lo as usize,
                    highest: hi as usize,
                    alignment: al as usize,
                }
            }
            t if t == MemExtendedParameterNumaNode => ExtendedParameter::NumaNode(payload as u32),
            other => ExtendedParameter::Other(other),
        });
    }
    Ok(decoded)
}

// ---- Sections ------------------------------------------------------------------------------

/// A NUL-terminated name of the program's: bytes (A) or UTF-16 units (W), as UTF-8. NULL and
/// the empty string are no name; an unreadable one is ERROR_NOACCESS.
fn read_name(it: &mut Interp<'_>, at: u64, wide: bool) -> Result<Option<String>, u32> {
    if at == 0 {
        return Ok(None);
    }
    let unit = if wide { 2 } else { 1 };
    let mut units: Vec<u16> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    for i in 0..(1u64 << 16) {
        let mut b = [0u8; 2];
        if !it.inp(at + i * unit, &mut b[..unit as usize]) {
            return Err(ERROR_NOACCESS);
        }
        let v = u16::from_le_bytes(b);
        if v == 0 {
            let s = if wide {
                String::from_utf16_lossy(&units)
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            };
            return Ok((!s.is_empty()).then_some(s));
        }
        units.push(v);
        bytes.push(b[0]);
    }
    Err(ERROR_INVALID_PARAMETER)
}

/// CreateFileMappingA/W(hFile, lpAttributes, flProtect, dwMaximumSizeHigh,
/// dwMaximumSizeLow, lpName): sets the last error on success too (0, or
/// ERROR_ALREADY_EXISTS for a name in use, CF8).
fn create_mapping(it: &mut Interp<'_>, a: &[u64], wide: bool) -> Res {
    let pm = if it.ptr == 4 {
        0xFFFF_FFFFu64
    } else {
        u64::MAX
    };
    let file = (a[0] != 0 && a[0] & pm != pm).then_some(a[0] as usize);
    let size = ((a[3] & 0xFFFF_FFFF) << 32) | (a[4] & 0xFFFF_FFFF);
    let name = read_name(it, a[5], wide)?;
    let c =
        it.m.create_section(file, a[2] as u32, size, name.as_deref())
            .map_err(code)?;
    it.last_error = if c.existed {
        ERROR_ALREADY_EXISTS
    } else {
        ERROR_SUCCESS
    };
    Ok(c.handle as u64)
}

/// OpenFileMappingA/W(dwDesiredAccess, bInheritHandle, lpName).
fn open_mapping(it: &mut Interp<'_>, a: &[u64], wide: bool) -> Res {
    let name = read_name(it, a[2], wide)?;
    it.m.open_section(a[0] as u32, name.as_deref())
        .map(|h| h as u64)
        .map_err(code)
}

/// MapViewOfFile / MapViewOfFileEx: the protection from the desired access (MV1).
fn map_view(it: &mut Interp<'_>, h: u64, access: u64, offset: u64, size: u64, base: u64) -> Res {
    it.m.map_view(MapRequest {
        handle: h as usize,
        protect: virtmem::sim::view_protection(access as u32),
        offset,
        size: size as usize,
        base: (base != 0).then_some(base as usize),
        replace_placeholder: false,
        highest_end: None,
    })
    .map(|v| v as u64)
    .map_err(code)
}

/// MapViewOfFile3(FileMapping, Process, BaseAddress, Offset, ViewSize, AllocationType,
/// PageProtection, ExtendedParameters, ParameterCount) (M3-*), the process checked.
fn map_view3(it: &mut Interp<'_>, a: &[u64]) -> Res {
    let (h, base, offset, size, t, p) = (a[0], a[2], a[3], a[4], a[5] as u32, a[6] as u32);
    let params = decode_params(it, a[7], a[8])?;
    let l = it.m.layout();
    let mut highest_end = None;
    for prm in &params {
        match *prm {
            ExtendedParameter::AddressRequirements {
                highest, alignment, ..
            } => {
                if alignment != 0 {
                    return Err(ERROR_INVALID_PARAMETER);
                }
                if highest != 0 {
                    if (highest + 1) % l.page_size != 0 || highest > l.max_address || base != 0 {
                        return Err(ERROR_INVALID_PARAMETER);
                    }
                    highest_end = Some(highest);
                }
            }
            ExtendedParameter::NumaNode(_) => {}
            ExtendedParameter::Other(_) => return Err(ERROR_INVALID_PARAMETER),
        }
    }
    if t & !(MEM_REPLACE_PLACEHOLDER | MEM_LARGE_PAGES | MEM_RESERVE) != 0 {
        return Err(ERROR_INVALID_PARAMETER);
    }
    if t & MEM_RESERVE != 0 {
        return Err(ERROR_NOT_SUPPORTED);
    }
    let protect = virtmem::sim::check_view_protection(p).map_err(code)?;
    it.m.map_view(MapRequest {
        handle: h as usize,
        protect,
        offset,
        size: size as usize,
        base: (base != 0).then_some(base as usize),
        replace_placeholder: t & MEM_REPLACE_PLACEHOLDER != 0,
        highest_end,
    })
    .map(|v| v as u64)
    .map_err(code)
}

/// UnmapViewOfFile* with UnmapFlags (U5).
fn unmap_view(it: &mut Interp<'_>, addr: u64, flags: u64) -> Res {
    let preserve = virtmem::sim::check_unmap_flags(flags as u32).map_err(code)?;
    it.m.unmap_view(addr as usize, preserve)
        .map(|()| 1)
        .map_err(code)
}

/// DuplicateHandle(hSourceProcess, hSource, hTargetProcess, lpTargetHandle, dwDesiredAccess,
/// bInheritHandle, dwOptions) within the current process (H2).
fn duplicate(it: &mut Interp<'_>, a: &[u64]) -> Res {
    let pm = if it.ptr == 4 {
        0xFFFF_FFFFu64
    } else {
        u64::MAX
    };
    if a[0] & pm != pm || a[2] & pm != pm {
        return Err(ERROR_INVALID_HANDLE);
    }
    let options = a[6] as u32;
    let n = it.ptr as usize;
    if a[3] == 0 {
        // The source is closed "regardless of any error status returned" [doc].
        if options & DUPLICATE_CLOSE_SOURCE != 0 && a[1] & pm != pm {
            let _ = it.m.close_handle(a[1] as usize);
        }
        return Err(ERROR_INVALID_PARAMETER);
    }
    if a[1] & pm == pm {
        // GetCurrentProcess() duplicates to itself.
        return if it.out(a[3], &pm.to_le_bytes()[..n]) {
            Ok(1)
        } else {
            Err(ERROR_NOACCESS)
        };
    }
    let new =
        it.m.duplicate_handle(
            a[1] as usize,
            a[4] as u32,
            options & DUPLICATE_SAME_ACCESS != 0,
            options & DUPLICATE_CLOSE_SOURCE != 0,
        )
        .map_err(code)?;
    if !it.out(a[3], &(new as u64).to_le_bytes()[..n]) {
        return Err(ERROR_NOACCESS);
    }
    Ok(1)
}

fn protect(it: &mut Interp<'_>, addr: u64, size: u64, new: u64, old: u64) -> Res {
    // Check order [I: ReactOS]: the protection value, then the output pointer, then pages.
    virtmem::sim::check_protection(new as u32, false).map_err(code)?;
    if old == 0 {
        return Err(ERROR_NOACCESS);
    }
    // On the native space a range the program did not allocate fails here with 487.
    let r =
        it.m.virtual_protect(addr as usize, size as usize, new as u32);
    match r {
        Ok(prev) => {
            if !it.out(old, &prev.to_le_bytes()) {
                return Err(ERROR_NOACCESS);
            }
            Ok(1)
        }
        Err(e) => {
            // Windows reports PAGE_NOACCESS on failure (case 35).
            it.out(old, &PAGE_NOACCESS.to_le_bytes());
            Err(code(e))
        }
    }
}

/// MEMORY_BASIC_INFORMATION as the program sees it (28 bytes in a 32-bit process, 48 in a
/// 64-bit one).
pub fn mbi_bytes(ptr: u8, i: &virtmem::MemoryInfo) -> Vec<u8> {
    let mut b = Vec::new();
    let p = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_le_bytes()[..ptr as usize]);
    let d = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
    p(&mut b, i.base_address as u64);
    p(&mut b, i.allocation_base as u64);
    d(&mut b, i.allocation_protect);
    if ptr == 8 {
        b.extend_from_slice(&[0, 0, 0, 0]); // PartitionId and padding
    }
    p(&mut b, i.region_size as u64);
    d(&mut b, i.state.win32());
    d(&mut b, i.protect);
    d(&mut b, i.kind.win32());
    if ptr == 8 {
        d(&mut b, 0);
    }
    b
}

fn query(it: &mut Interp<'_>, addr: u64, buf: u64, len: u64) -> Res {
    let size = if it.ptr == 8 { 48 } else { 28 };
    if len < size {
        return Err(ERROR_BAD_LENGTH);
    }
    if buf == 0 {
        return Err(ERROR_NOACCESS);
    }
    let info = it.m.query(addr as usize).map_err(code)?;
    let bytes = mbi_bytes(it.ptr, &info);
    if !it.out(buf, &bytes) {
        return Err(ERROR_NOACCESS);
    }
    Ok(size)
}

fn get_write_watch(it: &mut Interp<'_>, a: &[u64]) -> Res {
    let (flags, base, size, addrs, count, gran) = (a[0] as u32, a[1], a[2], a[3], a[4], a[5]);
    if flags & !WRITE_WATCH_FLAG_RESET != 0 || size == 0 {
        return Err(ERROR_INVALID_PARAMETER);
    }
    if count == 0 || gran == 0 {
        return Err(ERROR_NOACCESS);
    }
    let max = it.inp_ptr(count).ok_or(ERROR_NOACCESS)?;
    if max == 0 {
        return Err(ERROR_INVALID_PARAMETER);
    }
    if addrs == 0 {
        return Err(ERROR_NOACCESS);
    }
    let reset = flags & WRITE_WATCH_FLAG_RESET != 0;
    let pages =
        it.m.get_write_watch(base as usize, size as usize, reset, max as usize)
            .map_err(code)?;
    let n = it.ptr as u64;
    for (i, &p) in pages.iter().enumerate() {
        if !it.out(
            addrs + i as u64 * n,
            &(p as u64).to_le_bytes()[..n as usize],
        ) {
            return Err(ERROR_NOACCESS);
        }
    }
    let page = it.m.layout().page_size as u32;
    if !it.out(count, &(pages.len() as u64).to_le_bytes()[..n as usize])
        || !it.out(gran, &page.to_le_bytes())
    {
        return Err(ERROR_NOACCESS);
    }
    Ok(0)
}

fn system_info(it: &mut Interp<'_>, out: u64) {
    if out == 0 {
        return;
    }
    let l = it.m.layout();
    let ptr = it.ptr;
    // A simulated process has one deterministic processor; the native one reports the host.
    let (arch, ptype, level, rev, mask, cpus): (u16, u32, u16, u16, u64, u32) = if it.m.is_native()
    {
        // SAFETY: a zeroed SYSTEM_INFO is a valid output buffer.
        let mut si: virtmem::win32::SYSTEM_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `si` is writable.
        unsafe { virtmem::win32::GetSystemInfo(&mut si) };
        // SAFETY: reading the plain-data union member.
        let arch = unsafe { si.Anonymous.Anonymous.wProcessorArchitecture };
        (
            arch,
            si.dwProcessorType,
            si.wProcessorLevel,
            si.wProcessorRevision,
            si.dwActiveProcessorMask as u64,
            si.dwNumberOfProcessors,
        )
    } else if ptr == 4 {
        (
            PROCESSOR_ARCHITECTURE_INTEL,
            PROCESSOR_INTEL_PENTIUM,
            6,
            0,
            1,
            1,
        )
    } else {
        (
            PROCESSOR_ARCHITECTURE_AMD64,
            PROCESSOR_AMD_X8664,
            6,
            0,
            1,
            1,
        )
    };
    let mut b = Vec::new();
    let p = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_le_bytes()[..ptr as usize]);
    b.extend_from_slice(&arch.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(l.page_size as u32).to_le_bytes());
    p(&mut b, l.min_address as u64);
    p(&mut b, l.max_address as u64);
    p(&mut b, mask);
    b.extend_from_slice(&cpus.to_le_bytes());
    b.extend_from_slice(&ptype.to_le_bytes());
    b.extend_from_slice(&(l.granularity as u32).to_le_bytes());
    b.extend_from_slice(&level.to_le_bytes());
    b.extend_from_slice(&rev.to_le_bytes());
    // Windows would raise an access violation for a bad pointer; there is nothing to report.
    it.out(out, &b);
}

fn read_ptrs(it: &mut Interp<'_>, at: u64, n: u64) -> Result<Vec<usize>, u32> {
    if n > 1 << 24 {
        return Err(ERROR_INVALID_PARAMETER);
    }
    (0..n)
        .map(|i| {
            it.inp_ptr(at + i * it.ptr as u64)
                .map(|v| v as usize)
                .ok_or(ERROR_NOACCESS)
        })
        .collect()
}

fn alloc_physical(it: &mut Interp<'_>, count: u64, array: u64) -> Res {
    if count == 0 || array == 0 {
        return Err(ERROR_NOACCESS);
    }
    let n = it.inp_ptr(count).ok_or(ERROR_NOACCESS)?;
    let pfns = it.m.allocate_physical_pages(n as usize).map_err(code)?;
    let w = it.ptr as u64;
    for (i, &f) in pfns.iter().enumerate() {
        if !it.out(
            array + i as u64 * w,
            &(f as u64).to_le_bytes()[..w as usize],
        ) {
            return Err(ERROR_NOACCESS);
        }
    }
    if !it.out(count, &(pfns.len() as u64).to_le_bytes()[..w as usize]) {
        return Err(ERROR_NOACCESS);
    }
    Ok(1)
}

fn map_physical(it: &mut Interp<'_>, addr: u64, n: u64, array: u64) -> Res {
    let pfns = if array == 0 {
        None
    } else {
        Some(read_ptrs(it, array, n)?)
    };
    it.m.map_physical_pages(addr as usize, n as usize, pfns.as_deref())
        .map(|()| 1)
        .map_err(code)
}

fn map_scatter(it: &mut Interp<'_>, addrs: u64, n: u64, array: u64) -> Res {
    if addrs == 0 {
        return Err(ERROR_NOACCESS);
    }
    let a = read_ptrs(it, addrs, n)?;
    let pfns = if array == 0 {
        None
    } else {
        Some(read_ptrs(it, array, n)?)
    };
    it.m.map_physical_pages_scatter(&a, pfns.as_deref())
        .map(|()| 1)
        .map_err(code)
}

fn free_physical(it: &mut Interp<'_>, count: u64, array: u64) -> Res {
    if count == 0 || array == 0 {
        return Err(ERROR_NOACCESS);
    }
    let n = it.inp_ptr(count).ok_or(ERROR_NOACCESS)?;
    let pfns = read_ptrs(it, array, n)?;
    let (freed, r) = it.m.free_physical_pages(&pfns);
    let w = it.ptr as usize;
    it.out(count, &(freed as u64).to_le_bytes()[..w]);
    r.map(|()| 1).map_err(code)
}

// ---- Heaps (issue 16; simulated processes) --------------------------------------------------

/// The heap functions on a simulated process's heaps; on real memory they are not available
/// to programs (ERROR_CALL_NOT_IMPLEMENTED): the tool's own heap would be reachable.
fn heap_call(it: &mut Interp<'_>, name: &str, a: &[u64]) -> (Ty, u64, Res) {
    let ptr_ty = Ty::void_ptr();
    let size_t = Ty::Int {
        size: it.ptr,
        signed: false,
    };
    let m = it.m;
    let Some(s) = m.sim_space() else {
        return (ptr_ty, 0, Err(ERROR_CALL_NOT_IMPLEMENTED));
    };
    let u = |v: u64| v as usize;
    let bool_of = |r: virtmem::Result<()>| r.map(|()| 1).map_err(code);
    match name {
        "GetProcessHeap" => (ptr_ty, 0, s.process_heap().map(|h| h as u64).map_err(code)),
        "HeapCreate" => (
            ptr_ty,
            0,
            s.heap_create(a[0] as u32, u(a[1]), u(a[2]))
                .map(|h| h as u64)
                .map_err(code),
        ),
        "HeapDestroy" => (Ty::INT, 0, bool_of(s.heap_destroy(u(a[0])))),
        "HeapAlloc" => (
            ptr_ty,
            0,
            s.heap_alloc(u(a[0]), a[1] as u32, u(a[2]))
                .map(|p| p as u64)
                .map_err(code),
        ),
        "HeapReAlloc" => (
            ptr_ty,
            0,
            s.heap_realloc(u(a[0]), a[1] as u32, u(a[2]), u(a[3]))
                .map(|p| p as u64)
                .map_err(code),
        ),
        "HeapFree" => (
            Ty::INT,
            0,
            bool_of(s.heap_free(u(a[0]), a[1] as u32, u(a[2]))),
        ),
        "HeapSize" => (
            size_t,
            if it.ptr == 4 { 0xFFFF_FFFF } else { u64::MAX },
            s.heap_size(u(a[0]), a[1] as u32, u(a[2]))
                .map(|n| n as u64)
                .map_err(code),
        ),
        "HeapValidate" => (
            Ty::INT,
            0,
            s.heap_validate(u(a[0]), a[1] as u32, u(a[2]))
                .map(u64::from)
                .map_err(code),
        ),
        "HeapCompact" => (
            size_t,
            0,
            s.heap_compact(u(a[0]), a[1] as u32)
                .map(|n| n as u64)
                .map_err(code),
        ),
        "HeapWalk" => (Ty::INT, 0, heap_walk(it, u(a[0]), a[1])),
        _ => (ptr_ty, 0, Err(ERROR_CALL_NOT_IMPLEMENTED)),
    }
}

/// HeapWalk through the program's PROCESS_HEAP_ENTRY (40 bytes on x64, 28 on x86).
fn heap_walk(it: &mut Interp<'_>, heap: usize, at: u64) -> Res {
    let p = it.ptr as usize;
    let size = if p == 8 { 40 } else { 28 };
    let mut b = vec![0u8; size];
    if at == 0 || !it.inp(at, &mut b) {
        return Err(ERROR_NOACCESS);
    }
    let word = |b: &[u8], o: usize| {
        let mut w = [0u8; 8];
        w[..p].copy_from_slice(&b[o..o + p]);
        u64::from_le_bytes(w) as usize
    };
    let u32_at =
        |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4")) as usize;
    let cur = virtmem::sim::HeapWalkEntry {
        data: word(&b, 0),
        size: u32_at(&b, p),
        overhead: b[p + 4],
        region_index: b[p + 5],
        flags: u16::from_le_bytes([b[p + 6], b[p + 7]]),
        ..Default::default()
    };
    let cur = if cur.data == 0 {
        virtmem::sim::HeapWalkEntry::default()
    } else {
        cur
    };
    let Some(s) = it.m.sim_space() else {
        return Err(ERROR_CALL_NOT_IMPLEMENTED);
    };
    let next = s
        .heap_walk(heap, &cur)
        .map_err(code)?
        .ok_or(ERROR_NO_MORE_ITEMS)?;
    let mut o = vec![0u8; size];
    o[..p].copy_from_slice(&(next.data as u64).to_le_bytes()[..p]);
    o[p..p + 4].copy_from_slice(&(next.size.min(u32::MAX as usize) as u32).to_le_bytes());
    o[p + 4] = next.overhead;
    o[p + 5] = next.region_index;
    o[p + 6..p + 8].copy_from_slice(&next.flags.to_le_bytes());
    if next.flags as u32 & PROCESS_HEAP_REGION != 0 {
        let u = p + 8;
        o[u..u + 4].copy_from_slice(&(next.committed.min(u32::MAX as usize) as u32).to_le_bytes());
        o[u + 4..u + 8]
            .copy_from_slice(&(next.uncommitted.min(u32::MAX as usize) as u32).to_le_bytes());
        o[u + 8..u + 8 + p].copy_from_slice(&(next.first_block as u64).to_le_bytes()[..p]);
        o[u + 8 + p..u + 8 + 2 * p].copy_from_slice(&(next.last_block as u64).to_le_bytes()[..p]);
    }
    if !it.out(at, &o) {
        return Err(ERROR_NOACCESS);
    }
    Ok(1)
}
