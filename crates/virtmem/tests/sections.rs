//! Conformance of sections and views (`sections.md`) through the Win32 face.
//!
//! One test function per rule (or small group of rules) of `sections.md`, named after the rule
//! ids (`cf4_…`, `mv1_…`); table-driven where the spec or Wine's conformance tests have a
//! table.
//! Every assertion message starts with its rule id. The expected values are Rust data written
//! from the spec and from what Wine's tests observe on Windows (dlls/kernel32/tests/virtual.c,
//! dlls/kernelbase/tests/process.c, dlls/ntdll/tests/virtual.c); nothing is read from the
//! spec at run time.
//!
//! Conventions (as `conformance.rs`). Before a checked call the last error is set to
//! 0xdeadbeef: a success must leave it untouched — except CreateFileMapping*, which sets 0 on
//! creating and ERROR_ALREADY_EXISTS on opening (CF8) — and a failure must set exactly the
//! expected code. Tests run concurrently in one process, so they use only memory they
//! allocated and fixed addresses found free a moment before (retried when another thread
//! takes them). Handle values are reused as soon as they are closed, so the tests that use a
//! closed handle run alone: every test holds [`SHARED`] for reading, those hold it for
//! writing. Named sections get names unique to the process and test. Page access (a reserved
//! page faults, ...) is checked in forked children that touch one byte and exit. Behaviour
//! across processes (NS1, NS2) is checked in a second process: this test binary run again with
//! `VIRTMEM_SECTIONS_CHILD` naming the job ([`child_process_entry`]), and in forked children.
//!
//! File-backed sections are in `sections_files.rs`.

#![allow(clippy::missing_safety_doc, clippy::identity_op)]

use core::ffi::c_void;
use std::mem::size_of;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const P: usize = 0x1000;
const G: usize = 0x10000;
const MBI_LEN: usize = size_of::<MEMORY_BASIC_INFORMATION>();

const E_NOTFOUND: u32 = 2; // ERROR_FILE_NOT_FOUND
const E_PATH: u32 = 3; // ERROR_PATH_NOT_FOUND
const E_DENIED: u32 = 5; // ERROR_ACCESS_DENIED
const E_HANDLE: u32 = 6; // ERROR_INVALID_HANDLE
const E_NS: u32 = 50; // ERROR_NOT_SUPPORTED
const E_PARAM: u32 = 87; // ERROR_INVALID_PARAMETER
const E_EXISTS: u32 = 183; // ERROR_ALREADY_EXISTS
const E_BADEXE: u32 = 193; // ERROR_BAD_EXE_FORMAT
const E_RANGE: u32 = 206; // ERROR_FILENAME_EXCED_RANGE
const E_ADDR: u32 = 487; // ERROR_INVALID_ADDRESS
const E_ALIGN: u32 = 1132; // ERROR_MAPPED_ALIGNMENT
const E_PRIV: u32 = 1314; // ERROR_PRIVILEGE_NOT_HELD
const E_NORES: u32 = 1450; // ERROR_NO_SYSTEM_RESOURCES

const NA: u32 = PAGE_NOACCESS;
const RO: u32 = PAGE_READONLY;
const RW: u32 = PAGE_READWRITE;
const WC: u32 = PAGE_WRITECOPY;
const X: u32 = PAGE_EXECUTE;
const XR: u32 = PAGE_EXECUTE_READ;
const XRW: u32 = PAGE_EXECUTE_READWRITE;
const XWC: u32 = PAGE_EXECUTE_WRITECOPY;

/// The eight page protections of Wine's test_mapping, in its order.
const PAGE_PROTS: [u32; 8] = [NA, RO, RW, WC, X, XR, XRW, XWC];
/// The six protections a section may have (CF2).
const SECTION_PROTS: [u32; 6] = [RO, RW, WC, XR, XRW, XWC];
/// The seven protections MapViewOfFile3 takes (M3-2).
const VIEW_PROTS: [u32; 7] = [NA, RO, RW, WC, XR, XRW, XWC];

const COPY: u32 = FILE_MAP_COPY; // 0x01
const WRITE: u32 = FILE_MAP_WRITE; // 0x02
const READ: u32 = FILE_MAP_READ; // 0x04
const SX: u32 = SECTION_MAP_EXECUTE; // 0x08
const FX: u32 = FILE_MAP_EXECUTE; // 0x20

/// A handle value that is never a handle (handles are multiples of 4, O5).
const BOGUS: HANDLE = 0x1235 as HANDLE;

/// The environment variable that makes [`child_process_entry`] run a job.
const CHILD_ENV: &str = "VIRTMEM_SECTIONS_CHILD";

// Test isolation and checked calls: tests/sections_checks/mod.rs.
mod sections_checks;
use sections_checks::*;
const EXISTED: WantCreate = Ok(E_EXISTS);

/// Checks a CreateFileMapping* call (see [`WantCreate`]).
#[track_caller]
fn check_create(ctx: &str, want: WantCreate, f: impl FnOnce() -> HANDLE) -> Option<Section> {
    let mut errs = Vec::new();
    let s = soft_create(&mut errs, ctx, want, f);
    no_errors(errs);
    s
}

/// [`check_create`] recording mismatches in `errs`.
fn soft_create(
    errs: &mut Vec<String>,
    ctx: &str,
    want: WantCreate,
    f: impl FnOnce() -> HANDLE,
) -> Option<Section> {
    SetLastError(SENTINEL);
    let h = f();
    let le = GetLastError();
    let got = if h.is_null() { Err(le) } else { Ok(le) };
    if got != want {
        errs.push(format!(
            "{ctx}: expected {want:?}, got {got:?} (handle {h:?})"
        ));
    }
    (!h.is_null()).then_some(Section(h))
}

// ---------------------------------------------------------------------------------------------
// Sections, views, memory
// ---------------------------------------------------------------------------------------------

/// A section handle, closed on drop.
struct Section(HANDLE);

impl Section {
    fn h(&self) -> HANDLE {
        self.0
    }
    /// Gives up ownership (the test closes it itself).
    fn into_raw(self) -> HANDLE {
        let h = self.0;
        std::mem::forget(self);
        h
    }
    /// Closes it, checking the call.
    #[track_caller]
    fn close(self, ctx: &str) {
        let h = self.into_raw();
        check(ctx, FALSE, OK, || unsafe { CloseHandle(h) });
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        unsafe { CloseHandle(self.0) };
    }
}

/// A mapped view, unmapped on drop.
struct View(usize);

impl View {
    fn at(&self, off: usize) -> usize {
        self.0 + off
    }
    fn byte(&self, off: usize) -> *mut u8 {
        (self.0 + off) as *mut u8
    }
    fn read(&self, off: usize) -> u8 {
        unsafe { std::ptr::read_volatile(self.byte(off)) }
    }
    fn write(&self, off: usize, v: u8) {
        unsafe { std::ptr::write_volatile(self.byte(off), v) }
    }
    fn read_u32(&self, off: usize) -> u32 {
        unsafe { std::ptr::read_volatile((self.0 + off) as *const u32) }
    }
    fn write_u32(&self, off: usize, v: u32) {
        unsafe { std::ptr::write_volatile((self.0 + off) as *mut u32, v) }
    }
    /// Gives up ownership (the test unmaps it itself).
    fn into_raw(self) -> usize {
        let b = self.0;
        std::mem::forget(self);
        b
    }
    /// Unmaps it, checking the call.
    #[track_caller]
    fn unmap(self, ctx: &str) {
        let b = self.into_raw();
        check(ctx, FALSE, OK, || unsafe { UnmapViewOfFile(mva(b)) });
    }
}

impl Drop for View {
    fn drop(&mut self) {
        unsafe { UnmapViewOfFile(mva(self.0)) };
    }
}

/// Private memory (or placeholders), released on drop.
struct Mem(usize);

impl Drop for Mem {
    fn drop(&mut self) {
        unsafe { VirtualFree(self.0 as *mut c_void, 0, MEM_RELEASE) };
    }
}

/// A pagefile-backed section (CreateFileMappingW(INVALID_HANDLE_VALUE), unnamed).
#[track_caller]
fn pagefile(ctx: &str, flprotect: u32, size: u64) -> Section {
    check_create(ctx, CREATED, || unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            flprotect,
            (size >> 32) as u32,
            size as u32,
            null(),
        )
    })
    .expect("checked")
}

/// CreateFileMappingA of a pagefile-backed section with a name.
fn create_a(flprotect: u32, size: u32, name: &str) -> HANDLE {
    let n = a_str(name);
    unsafe { CreateFileMappingA(INVALID_HANDLE_VALUE, null(), flprotect, 0, size, n.as_ptr()) }
}

/// CreateFileMappingW of a pagefile-backed section with a name.
fn create_w(flprotect: u32, size: u32, name: &str) -> HANDLE {
    let n = w_str(name);
    unsafe { CreateFileMappingW(INVALID_HANDLE_VALUE, null(), flprotect, 0, size, n.as_ptr()) }
}

fn open_a(access: u32, name: &str) -> HANDLE {
    let n = a_str(name);
    unsafe { OpenFileMappingA(access, FALSE, n.as_ptr()) }
}

fn open_w(access: u32, name: &str) -> HANDLE {
    let n = w_str(name);
    unsafe { OpenFileMappingW(access, FALSE, n.as_ptr()) }
}

/// A NUL-terminated A string.
fn a_str(s: &str) -> Vec<u8> {
    s.bytes().chain([0]).collect()
}

/// A NUL-terminated W string.
fn w_str(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// A section name unique to this process and `tag`.
fn unique(tag: &str) -> String {
    format!("Local\\virtmem-sections-{}-{tag}", std::process::id())
}

/// MapViewOfFile, checked.
#[track_caller]
fn map(ctx: &str, h: HANDLE, access: u32, offset: u64, size: usize, want: Want) -> Option<View> {
    let r = check(ctx, 0usize, want, || unsafe {
        MapViewOfFile(h, access, (offset >> 32) as u32, offset as u32, size).Value as usize
    });
    (r != 0).then_some(View(r))
}

/// MapViewOfFile recording mismatches in `errs`.
fn soft_map(
    errs: &mut Vec<String>,
    ctx: &str,
    h: HANDLE,
    access: u32,
    offset: u64,
    size: usize,
    want: Want,
) -> Option<View> {
    let r = soft(errs, ctx, 0usize, want, || unsafe {
        MapViewOfFile(h, access, (offset >> 32) as u32, offset as u32, size).Value as usize
    });
    (r != 0).then_some(View(r))
}

/// MapViewOfFileEx at `base`, checked.
#[track_caller]
fn map_ex(
    ctx: &str,
    h: HANDLE,
    access: u32,
    offset: u64,
    size: usize,
    base: usize,
    want: Want,
) -> Option<View> {
    let r = check(ctx, 0usize, want, || unsafe {
        MapViewOfFileEx(
            h,
            access,
            (offset >> 32) as u32,
            offset as u32,
            size,
            base as *const c_void,
        )
        .Value as usize
    });
    (r != 0).then_some(View(r))
}

/// MapViewOfFileEx at `base` where `base` was free a moment ago: `None` if another thread took
/// it meanwhile (487); any other outcome but success fails the test.
#[track_caller]
fn try_map_at(
    ctx: &str,
    h: HANDLE,
    access: u32,
    offset: u64,
    size: usize,
    base: usize,
) -> Option<View> {
    SetLastError(SENTINEL);
    let r = unsafe {
        MapViewOfFileEx(
            h,
            access,
            (offset >> 32) as u32,
            offset as u32,
            size,
            base as *const c_void,
        )
        .Value as usize
    };
    let le = GetLastError();
    if r == 0 {
        assert_eq!(
            le, E_ADDR,
            "{ctx}: MapViewOfFileEx({base:#x}) failed unexpectedly"
        );
        return None;
    }
    assert_eq!(
        le, SENTINEL,
        "{ctx}: a successful call changed the last error"
    );
    assert_eq!(r, base, "{ctx}: a free, aligned address is used as is");
    Some(View(r))
}

/// MapViewOfFile3 with these extended parameters, checked.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn map3(
    ctx: &str,
    h: HANDLE,
    process: HANDLE,
    base: usize,
    offset: u64,
    size: usize,
    ty: u32,
    prot: u32,
    params: &mut [MEM_EXTENDED_PARAMETER],
    want: Want,
) -> Option<View> {
    let (pp, n) = if params.is_empty() {
        (null_mut(), 0)
    } else {
        (params.as_mut_ptr(), params.len() as u32)
    };
    let r = check(ctx, 0usize, want, || unsafe {
        MapViewOfFile3(
            h,
            process,
            base as *const c_void,
            offset,
            size,
            ty,
            prot,
            pp,
            n,
        )
        .Value as usize
    });
    (r != 0).then_some(View(r))
}

/// What VirtualQuery reports for a reserved region of a view at `ab`.
fn mapped_reserved(base: usize, ab: usize, ap: u32, rs: usize) -> Region {
    Region {
        base,
        ab,
        ap,
        rs,
        st: MEM_RESERVE,
        pr: 0,
        ty: MEM_MAPPED,
    }
}

/// What VirtualQuery reports at a free address (U3).
fn free_at(addr: usize) -> (usize, usize, u32, u32, u32, u32) {
    let r = vq(addr);
    (r.base, r.ab, r.ap, r.st, r.pr, r.ty)
}

#[track_caller]
fn assert_free(ctx: &str, addr: usize) {
    assert_eq!(
        free_at(addr),
        (addr, 0, 0, MEM_FREE, PAGE_NOACCESS, 0),
        "{ctx}: VirtualQuery (base, AB, AP, St, Pr, Ty) of {addr:#x}"
    );
}

#[track_caller]
fn va(ctx: &str, addr: usize, size: usize, ty: u32, prot: u32, want: Want) -> usize {
    check(ctx, 0usize, want, || unsafe {
        VirtualAlloc(addr as *const c_void, size, ty, prot) as usize
    })
}

#[track_caller]
fn vf(ctx: &str, addr: usize, size: usize, ty: u32, want: Want) {
    check(ctx, FALSE, want, || unsafe {
        VirtualFree(addr as *mut c_void, size, ty)
    });
}

/// VirtualProtect; returns `*lpflOldProtect`.
#[track_caller]
fn vp(ctx: &str, addr: usize, size: usize, new: u32, want: Want) -> u32 {
    let mut old = SENTINEL;
    check(ctx, FALSE, want, || unsafe {
        VirtualProtect(addr as *const c_void, size, new, &mut old)
    });
    old
}

/// A placeholder of `size` bytes (VirtualAlloc2 MEM_RESERVE | MEM_RESERVE_PLACEHOLDER).
#[track_caller]
fn placeholder(ctx: &str, size: usize) -> usize {
    check(ctx, 0usize, OK, || unsafe {
        VirtualAlloc2(
            null_mut(),
            null(),
            size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        ) as usize
    })
}

/// Splits `[addr, addr+size)` off the placeholder it lies in.
#[track_caller]
fn split(ctx: &str, addr: usize, size: usize) {
    vf(ctx, addr, size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER, OK);
}

/// A G-aligned range of `span` bytes that was free a moment ago.
fn hole(span: usize) -> usize {
    let p = unsafe { VirtualAlloc(null(), span, MEM_RESERVE, PAGE_NOACCESS) } as usize;
    assert_ne!(p, 0, "setup: VirtualAlloc(NULL, {span:#x})");
    assert_eq!(
        unsafe { VirtualFree(p as *mut c_void, 0, MEM_RELEASE) },
        TRUE
    );
    p
}

/// Runs `f` on free ranges of `span` bytes until it succeeds (`f` returns `None` when another
/// thread took the range between the probe and the fixed-address call).
#[track_caller]
fn retry<R>(span: usize, mut f: impl FnMut(usize) -> Option<R>) -> R {
    for _ in 0..200 {
        if let Some(r) = f(hole(span)) {
            return r;
        }
    }
    panic!("could not keep a free range of {span:#x} bytes for 200 attempts");
}

/// VirtualAlloc at a fixed address in a range found free; `None` if another thread took it.
fn try_alloc_at(addr: usize, size: usize, ty: u32, prot: u32) -> Option<Mem> {
    let r = unsafe { VirtualAlloc(addr as *const c_void, size, ty, prot) } as usize;
    if r == 0 {
        assert_eq!(
            GetLastError(),
            E_ADDR,
            "setup: fixed VirtualAlloc({addr:#x})"
        );
        return None;
    }
    Some(Mem(r))
}

/// The protections' access classes (AC): (read, write, execute).
fn class(prot: u32) -> (bool, bool, bool) {
    match prot & 0xFF {
        PAGE_READONLY | PAGE_WRITECOPY => (true, false, false),
        PAGE_READWRITE => (true, true, false),
        PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => (true, false, true),
        PAGE_EXECUTE_READWRITE => (true, true, true),
        _ => (false, false, false),
    }
}

/// AC: a protection is compatible with a view when its class is a subset of the view's.
fn compatible(view: u32, prot: u32) -> bool {
    let (r, w, x) = class(prot);
    let (vr, vw, vx) = class(view);
    (!r || vr) && (!w || vw) && (!x || vx)
}

/// What a written copy-on-write page reports (CW1).
fn written(prot: u32) -> u32 {
    match prot {
        WC => RW,
        XWC => XRW,
        p => p,
    }
}

/// Whether touching `addr` (a read, or a write when `write`) kills a forked child with SIGSEGV
/// or SIGBUS. The child only touches the byte and exits.
fn faults(addr: usize, write: bool) -> bool {
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            if write {
                std::ptr::write_volatile(addr as *mut u8, 1);
            } else {
                std::ptr::read_volatile(addr as *const u8);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        assert_eq!(libc::WEXITSTATUS(status), 0);
        return false;
    }
    assert!(libc::WIFSIGNALED(status), "child status {status:#x}");
    let sig = libc::WTERMSIG(status);
    assert!(
        sig == libc::SIGSEGV || sig == libc::SIGBUS,
        "child killed by signal {sig}"
    );
    true
}

/// Forks a child that runs `body` and exits 0 (a panic: 101); returns whether it succeeded.
fn in_forked_child(body: impl FnOnce()) -> bool {
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        unsafe { libc::_exit(if r.is_ok() { 0 } else { 101 }) };
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Runs `job` in a new process (this test binary, [`child_process_entry`]) and fails with its
/// output unless it succeeds.
#[track_caller]
fn in_new_process(ctx: &str, job: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, job)
        .output()
        .expect("run the child process");
    assert!(
        out.status.success(),
        "{ctx}: the child process failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A MEM_EXTENDED_PARAMETER of `ty` with a 64-bit value.
fn ext(ty: i32, value: u64) -> MEM_EXTENDED_PARAMETER {
    let mut p = MEM_EXTENDED_PARAMETER::default();
    p.Anonymous1._bitfield = ty as u8 as u64;
    p.Anonymous2.ULong64 = value;
    p
}

/// A MemExtendedParameterAddressRequirements parameter pointing at `a`.
fn ext_address(a: &mut MEM_ADDRESS_REQUIREMENTS) -> MEM_EXTENDED_PARAMETER {
    let mut p = MEM_EXTENDED_PARAMETER::default();
    p.Anonymous1._bitfield = MemExtendedParameterAddressRequirements as u8 as u64;
    p.Anonymous2.Pointer = a as *mut MEM_ADDRESS_REQUIREMENTS as *mut c_void;
    p
}

fn requirements(lowest: usize, highest: usize, alignment: usize) -> MEM_ADDRESS_REQUIREMENTS {
    MEM_ADDRESS_REQUIREMENTS {
        LowestStartingAddress: lowest as *mut c_void,
        HighestEndingAddress: highest as *mut c_void,
        Alignment: alignment,
    }
}

fn max_app_address() -> usize {
    let mut si: SYSTEM_INFO = unsafe { std::mem::zeroed() };
    unsafe { GetSystemInfo(&mut si) };
    si.lpMaximumApplicationAddress as usize
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// MV1: the 32 combinations of FILE_MAP_COPY / WRITE / READ, SECTION_MAP_EXECUTE and
/// FILE_MAP_EXECUTE, and the view protection each gives (K:4160-4186).
const ACCESS_TABLE: [(u32, u32); 32] = [
    (0, NA),
    (COPY, WC),
    (WRITE, RW),
    (WRITE | COPY, RW),
    (READ, RO),
    (READ | COPY, RO),
    (READ | WRITE, RW),
    (READ | WRITE | COPY, RW),
    (SX, NA),
    (SX | COPY, NA),
    (SX | WRITE, RW),
    (SX | WRITE | COPY, RW),
    (SX | READ, RO),
    (SX | READ | COPY, RO),
    (SX | READ | WRITE, RW),
    (SX | READ | WRITE | COPY, RW),
    (FX, NA),
    (FX | COPY, XWC),
    (FX | WRITE, XRW),
    (FX | WRITE | COPY, XRW),
    (FX | READ, XR),
    (FX | READ | COPY, XR),
    (FX | READ | WRITE, XRW),
    (FX | READ | WRITE | COPY, XRW),
    (FX | SX, NA),
    (FX | SX | COPY, NA),
    (FX | SX | WRITE, XRW),
    (FX | SX | WRITE | COPY, XRW),
    (FX | SX | READ, XR),
    (FX | SX | READ | COPY, XR),
    (FX | SX | READ | WRITE, XRW),
    (FX | SX | READ | WRITE | COPY, XRW),
];

/// CF10: the SECTION_MAP_* rights a CreateFileMapping handle gets for a section protection.
const GRANTED: [(u32, u32); 6] = [
    (RO, SECTION_MAP_READ),
    (RW, SECTION_MAP_READ | SECTION_MAP_WRITE),
    (WC, SECTION_MAP_READ),
    (XR, SECTION_MAP_READ | SECTION_MAP_EXECUTE),
    (
        XRW,
        SECTION_MAP_READ | SECTION_MAP_WRITE | SECTION_MAP_EXECUTE,
    ),
    (XWC, SECTION_MAP_READ | SECTION_MAP_EXECUTE),
];

/// MV2: the rights a view of each protection needs in the handle.
const NEEDED: [(u32, u32); 7] = [
    (NA, SECTION_MAP_READ),
    (RO, SECTION_MAP_READ),
    (WC, SECTION_MAP_READ),
    (RW, SECTION_MAP_WRITE),
    (XR, SECTION_MAP_READ | SECTION_MAP_EXECUTE),
    (XWC, SECTION_MAP_READ | SECTION_MAP_EXECUTE),
    (XRW, SECTION_MAP_WRITE | SECTION_MAP_EXECUTE),
];

fn lookup(table: &[(u32, u32)], key: u32) -> u32 {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{key:#x} is not in the table"))
}

/// MV2: whether a handle with `granted` rights may map a view of protection `view`.
fn may_map(granted: u32, view: u32) -> bool {
    let need = lookup(&NEEDED, view);
    granted & need == need
}

/// The sections of Wine's test_mapping: the six protections, plus a PAGE_READONLY section
/// whose handle was duplicated with access 0 (K: "a trick to create a not accessible
/// mapping"), which maps no view at all. Each: (label, handle, granted rights).
fn mapping_sections(size: u64) -> Vec<(String, Section, u32)> {
    let mut v: Vec<(String, Section, u32)> = SECTION_PROTS
        .iter()
        .map(|&p| {
            (
                format!("section {p:#x}"),
                pagefile("setup", p, size),
                lookup(&GRANTED, p),
            )
        })
        .collect();
    let ro = pagefile("setup", RO, size);
    let mut dup = null_mut();
    check("setup: DuplicateHandle(access 0)", FALSE, OK, || unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            ro.h(),
            GetCurrentProcess(),
            &mut dup,
            0,
            FALSE,
            0,
        )
    });
    v.push(("handle with access 0".to_string(), Section(dup), 0));
    v
}

// ---------------------------------------------------------------------------------------------
// O5, CF1–CF11: CreateFileMapping
// ---------------------------------------------------------------------------------------------

/// O5: handles are never NULL or -1 and are multiples of 4; a made-up, NULL or
/// INVALID_HANDLE_VALUE handle fails with ERROR_INVALID_HANDLE.
#[test]
fn o5_handles() {
    let _t = shared();
    let secs: Vec<Section> = (0..8).map(|_| pagefile("O5", RW, P as u64)).collect();
    for s in &secs {
        let h = s.h() as usize;
        assert!(
            h != 0 && h != usize::MAX && h % 4 == 0,
            "O5: handle {h:#x} is NULL, -1 or not a multiple of 4"
        );
    }
    for (what, h) in [
        ("a made-up handle", BOGUS),
        ("NULL", null_mut()),
        ("INVALID_HANDLE_VALUE", INVALID_HANDLE_VALUE),
    ] {
        map(
            &format!("O5: MapViewOfFile of {what}"),
            h,
            READ,
            0,
            0,
            fails(E_HANDLE),
        );
    }
}

/// O5, H1: a closed handle fails with ERROR_INVALID_HANDLE.
#[test]
fn o5_h1_closed_handles() {
    let _t = alone();
    let s = pagefile("O5", RW, P as u64);
    let h = s.h();
    s.close("H1: CloseHandle");
    map(
        "O5: MapViewOfFile of a closed handle",
        h,
        READ,
        0,
        0,
        fails(E_HANDLE),
    );
    check("H1: CloseHandle twice", FALSE, fails(E_HANDLE), || unsafe {
        CloseHandle(h)
    });
    let mut dup = null_mut();
    check(
        "H2: DuplicateHandle of a closed handle",
        FALSE,
        fails(E_HANDLE),
        || unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                h,
                GetCurrentProcess(),
                &mut dup,
                0,
                FALSE,
                2,
            )
        },
    );
}

/// CF1: no SEC_* bit means SEC_COMMIT: the views start committed (VQ2).
#[test]
fn cf1_no_sec_bits_means_sec_commit() {
    let _t = shared();
    for (ctx, flags) in [("CF1: no SEC_* bit", 0), ("CF1: SEC_COMMIT", SEC_COMMIT)] {
        let s = pagefile(ctx, RW | flags, 2 * P as u64);
        let v = map(ctx, s.h(), WRITE, 0, 0, OK).unwrap();
        assert_eq!(
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), RW, 2 * P, RW),
            "{ctx}"
        );
    }
    let s = pagefile("CF1: SEC_RESERVE", RW | SEC_RESERVE, 2 * P as u64);
    let v = map("CF1: SEC_RESERVE", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped_reserved(v.at(0), v.at(0), RW, 2 * P),
        "CF1: SEC_RESERVE views start reserved"
    );
}

/// CF2: the section protection is one of six; every other value of the low byte (K:3656-3688
/// table) and the PAGE_GUARD / PAGE_NOCACHE / PAGE_WRITECOMBINE modifiers fail with 87.
#[test]
fn cf2_section_protections() {
    let _t = shared();
    let mut prots: Vec<u32> = (0..0x10).collect();
    prots.extend((1..0x10).map(|i| i << 4));
    prots.extend([
        RW | PAGE_GUARD,
        RW | PAGE_NOCACHE,
        RW | PAGE_WRITECOMBINE,
        RO | PAGE_GUARD,
    ]);
    let mut errs = Vec::new();
    for prot in prots {
        let want = if SECTION_PROTS.contains(&prot) {
            CREATED
        } else {
            Err(E_PARAM)
        };
        for commit in [0, SEC_COMMIT] {
            let s = soft_create(
                &mut errs,
                &format!("CF2: CreateFileMappingW({:#x})", prot | commit),
                want,
                || unsafe {
                    CreateFileMappingW(
                        INVALID_HANDLE_VALUE,
                        null(),
                        prot | commit,
                        0,
                        P as u32,
                        null(),
                    )
                },
            );
            if let Some(s) = s {
                // Every section maps a FILE_MAP_READ view (K:3694-3704).
                if let Some(v) =
                    soft_map(&mut errs, "CF2: FILE_MAP_READ view", s.h(), READ, 0, 0, OK)
                {
                    soft_eq(
                        &mut errs,
                        &format!(
                            "CF2: VirtualQuery of a FILE_MAP_READ view of a {prot:#x} section"
                        ),
                        vq(v.at(0)),
                        mapped(v.at(0), v.at(0), RO, P, RO),
                    );
                }
            }
        }
    }
    no_errors(errs);
}

/// CF3: INVALID_HANDLE_VALUE and NULL both ask for a pagefile-backed section; its size must
/// not be 0.
#[test]
fn cf3_pagefile_sections_need_a_size() {
    let _t = shared();
    check_create("CF3: pagefile section of size 0", Err(E_PARAM), || unsafe {
        CreateFileMappingW(INVALID_HANDLE_VALUE, null(), RW, 0, 0, null())
    });
    check_create("CF3: NULL hFile, size 0", Err(E_PARAM), || unsafe {
        CreateFileMappingA(null_mut(), null(), RW, 0, 0, null())
    });
    let s = check_create(
        "CF3: NULL hFile is the paging file (KB:148)",
        CREATED,
        || unsafe { CreateFileMappingA(null_mut(), null(), RW, 0, 0x10000, null()) },
    )
    .unwrap();
    let v = map("CF3", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)).rs,
        0x10000,
        "CF3: the NULL-hFile section's size"
    );
}

/// CF4: the SEC_* combinations for pagefile-backed sections (K:1488-1536, every pagefile row,
/// and the spec's table). The created sections' attributes show through their views: SEC_RESERVE
/// views start reserved, SEC_NOCACHE / SEC_WRITECOMBINE add PAGE_NOCACHE / PAGE_WRITECOMBINE
/// (VQ3).
#[test]
fn cf4_sec_combinations_pagefile() {
    let _t = shared();
    // (SEC_* bits, outcome, the view's (State, AllocationProtect) if created)
    let rows: [(u32, WantCreate, u32, u32); 21] = [
        (0, CREATED, MEM_COMMIT, RW),
        (SEC_COMMIT, CREATED, MEM_COMMIT, RW),
        (SEC_RESERVE, CREATED, MEM_RESERVE, RW),
        (
            SEC_RESERVE | SEC_NOCACHE,
            CREATED,
            MEM_RESERVE,
            RW | PAGE_NOCACHE,
        ),
        (
            SEC_RESERVE | SEC_WRITECOMBINE,
            CREATED,
            MEM_RESERVE,
            RW | PAGE_WRITECOMBINE,
        ),
        (
            SEC_COMMIT | SEC_NOCACHE,
            CREATED,
            MEM_COMMIT,
            RW | PAGE_NOCACHE,
        ),
        (
            SEC_COMMIT | SEC_WRITECOMBINE,
            CREATED,
            MEM_COMMIT,
            RW | PAGE_WRITECOMBINE,
        ),
        (SEC_RESERVE | SEC_LARGE_PAGES, Err(E_PARAM), 0, 0),
        (SEC_RESERVE | SEC_COMMIT, Err(E_PARAM), 0, 0),
        (SEC_IMAGE, Err(E_BADEXE), 0, 0),
        (SEC_IMAGE | SEC_RESERVE, Err(E_PARAM), 0, 0),
        (SEC_IMAGE | SEC_COMMIT, Err(E_PARAM), 0, 0),
        (SEC_NOCACHE, Err(E_PARAM), 0, 0),
        (SEC_LARGE_PAGES, Err(E_PARAM), 0, 0),
        (SEC_WRITECOMBINE, Err(E_PARAM), 0, 0),
        (SEC_FILE, Err(E_PARAM), 0, 0),
        (SEC_FILE | SEC_RESERVE, Err(E_PARAM), 0, 0),
        (SEC_FILE | SEC_COMMIT, Err(E_PARAM), 0, 0),
        (SEC_NOCACHE | SEC_WRITECOMBINE, Err(E_PARAM), 0, 0),
        (SEC_LARGE_PAGES | SEC_NOCACHE, Err(E_PARAM), 0, 0),
        (SEC_LARGE_PAGES | SEC_WRITECOMBINE, Err(E_PARAM), 0, 0),
    ];
    let mut errs = Vec::new();
    for (flags, want, st, ap) in rows {
        let ctx = format!("CF4: pagefile RW | {flags:#x}");
        for (how, s) in [
            (
                "A",
                soft_create(&mut errs, &format!("{ctx} (A)"), want, || unsafe {
                    CreateFileMappingA(INVALID_HANDLE_VALUE, null(), flags | RW, 0, 0x1000, null())
                }),
            ),
            (
                "W",
                soft_create(&mut errs, &format!("{ctx} (W)"), want, || unsafe {
                    CreateFileMappingW(INVALID_HANDLE_VALUE, null(), flags | RW, 0, 0x1000, null())
                }),
            ),
        ] {
            let Some(s) = s else { continue };
            if let Some(v) = soft_map(
                &mut errs,
                &format!("{ctx} ({how}): view"),
                s.h(),
                WRITE,
                0,
                0,
                OK,
            ) {
                let r = vq(v.at(0));
                soft_eq(
                    &mut errs,
                    &format!("{ctx} ({how}): the view's (State, AllocationProtect)"),
                    (r.st, r.ap),
                    (st, ap),
                );
            }
        }
    }
    no_errors(errs);
}

/// CF5 (the part without files): a handle that is not a file handle — a section handle, a
/// made-up value — fails with ERROR_INVALID_HANDLE.
#[test]
fn cf5_a_non_file_handle_is_not_a_file() {
    let _t = shared();
    let s = pagefile("CF5", RW, P as u64);
    for (what, h) in [("a section handle", s.h()), ("a made-up handle", BOGUS)] {
        check_create(
            &format!("CF5: CreateFileMapping of {what}"),
            Err(E_HANDLE),
            || unsafe { CreateFileMappingW(h, null(), RW, 0, P as u32, null()) },
        );
        check_create(
            &format!("CF5: CreateFileMapping of {what}, size 0"),
            Err(E_HANDLE),
            || unsafe { CreateFileMappingW(h, null(), RO, 0, 0, null()) },
        );
        // CF11: protection and SEC_* bits, then the name's syntax, then the file handle.
        check_create(
            &format!("CF11: the protection before the handle ({what})"),
            Err(E_PARAM),
            || unsafe { CreateFileMappingW(h, null(), PAGE_NOACCESS, 0, P as u32, null()) },
        );
        check_create(
            &format!("CF11: SEC_* bits before the handle ({what})"),
            Err(E_PARAM),
            || unsafe {
                CreateFileMappingW(
                    h,
                    null(),
                    RW | SEC_COMMIT | SEC_RESERVE,
                    0,
                    P as u32,
                    null(),
                )
            },
        );
        let bad = a_str(&format!("Local\\virtmem-{}\\cf11", std::process::id()));
        check_create(
            &format!("CF11: the name's syntax before the handle ({what})"),
            Err(E_PATH),
            || unsafe { CreateFileMappingA(h, null(), RW, 0, P as u32, bad.as_ptr()) },
        );
    }
}

/// CF7: pagefile sizes are rounded up to whole pages (0x3457 → 0x4000, K:1292-1301); the
/// memory starts zero-filled.
#[test]
fn cf7_pagefile_size_rounded_to_pages() {
    let _t = shared();
    let s = pagefile("CF7", RW, 0x3457);
    let v = map("CF7: size 0 maps the whole section", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)).rs,
        0x4000,
        "CF7: a 0x3457-byte section is 0x4000 bytes"
    );
    assert!(
        (0..0x4000).all(|i| v.read(i) == 0),
        "CF7: the memory starts zero-filled"
    );
    map(
        "CF7: a 0x4000-byte view of the 0x3457-byte section",
        s.h(),
        READ,
        0,
        0x4000,
        OK,
    );
    map(
        "CF7: a 0x4001-byte view",
        s.h(),
        READ,
        0,
        0x4001,
        fails(E_DENIED),
    );
}

/// CF8: name syntax. After the `Local\` / `Global\` prefix a `\` fails with 3; an A name longer
/// than MAX_PATH-1 characters with 206. CF11: the size is checked before the name.
#[test]
fn cf8_name_syntax() {
    let _t = shared();
    let pid = std::process::id();
    let mut errs = Vec::new();
    for name in [
        format!("virtmem-{pid}\\a"),
        format!("Local\\virtmem-{pid}\\a"),
        format!("Global\\virtmem-{pid}\\a"),
        format!("\\virtmem-{pid}"),
    ] {
        soft_create(
            &mut errs,
            &format!("CF8: CreateFileMappingA({name:?})"),
            Err(E_PATH),
            || create_a(RW, P as u32, &name),
        );
        soft_create(
            &mut errs,
            &format!("CF8: CreateFileMappingW({name:?})"),
            Err(E_PATH),
            || create_w(RW, P as u32, &name),
        );
        soft(
            &mut errs,
            &format!("OF1: OpenFileMappingA({name:?})"),
            null_mut(),
            fails(E_PATH),
            || open_a(READ, &name),
        );
        soft(
            &mut errs,
            &format!("OF1: OpenFileMappingW({name:?})"),
            null_mut(),
            fails(E_PATH),
            || open_w(READ, &name),
        );
        soft_create(
            &mut errs,
            &format!("CF11: size 0 is checked before the name {name:?}"),
            Err(E_PARAM),
            || create_a(RW, 0, &name),
        );
        soft_create(
            &mut errs,
            &format!("CF11: the protection is checked before the name {name:?}"),
            Err(E_PARAM),
            || create_a(PAGE_NOACCESS, P as u32, &name),
        );
    }
    let long = format!("Local\\{}", "n".repeat(254)); // 260 characters
    assert_eq!(long.len(), 260);
    soft_create(
        &mut errs,
        "CF8: an A name of 260 characters",
        Err(E_RANGE),
        || create_a(RW, P as u32, &long),
    );
    soft(
        &mut errs,
        "OF1/CF8: OpenFileMappingA of a 260-character name",
        null_mut(),
        fails(E_RANGE),
        || open_a(READ, &long),
    );
    no_errors(errs);
}

/// CF8: creating a name sets the last error to 0, creating it again returns a new handle to
/// the same section with ERROR_ALREADY_EXISTS (K:1541-1551); names are case-sensitive
/// (K:1553-1563); the A and W forms and the `Local\` prefix name the same object; a 259-character
/// A name is accepted.
#[test]
fn cf8_names_create_and_open() {
    let _t = shared();
    let name = unique("cf8");
    let h1 = check_create("CF8: a new name", CREATED, || {
        create_a(RW | SEC_COMMIT, 0x1000, &name)
    })
    .unwrap();
    let h2 = check_create("CF8: the same name again", EXISTED, || {
        create_a(RW | SEC_COMMIT, 0x1000, &name)
    })
    .unwrap();
    assert_ne!(h1.h(), h2.h(), "CF8: the second call returns a new handle");
    let v1 = map("CF8", h1.h(), WRITE, 0, 0, OK).unwrap();
    v1.write_u32(0, 0x1a2b_3c4d);
    let v2 = map("CF8", h2.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(
        v2.read_u32(0),
        0x1a2b_3c4d,
        "CF8: the second handle refers to the existing section"
    );
    let h3 = check_create("CF8: the W form of the same name", EXISTED, || {
        create_w(RW, 0x1000, &name)
    })
    .unwrap();
    // The existing section keeps its size whatever the second call asks.
    let h4 = check_create("CF8: the same name with another size", EXISTED, || {
        create_a(RW, 0x3000, &name)
    })
    .unwrap();
    let v4 = map("CF8", h4.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v4.at(0)).rs,
        0x1000,
        "CF8: the existing section keeps its size"
    );
    assert_eq!(v4.read_u32(0), 0x1a2b_3c4d);
    // Case matters.
    let upper = name.to_uppercase().replace("LOCAL\\", "Local\\");
    check(
        "CF8: OpenFileMapping of the name in capitals",
        null_mut(),
        fails(E_NOTFOUND),
        || open_a(FILE_MAP_ALL_ACCESS, &upper),
    );
    let h5 = check_create("CF8: the name in capitals is another name", CREATED, || {
        create_a(RW, 0x1000, &upper)
    })
    .unwrap();
    // No prefix is Local\.
    let bare = name.trim_start_matches("Local\\").to_string();
    let h6 = check_create(
        "CF8: the name without Local\\ is the same object",
        EXISTED,
        || create_a(RW, 0x1000, &bare),
    )
    .unwrap();
    let g = unique("cf8-global").replace("Local\\", "Global\\");
    let h7 = check_create("CF8: a Global\\ name", CREATED, || create_a(RW, 0x1000, &g)).unwrap();
    check_create("CF8: the Global\\ name again", EXISTED, || {
        create_w(RW, 0x1000, &g)
    });
    let global_of_local = name.replace("Local\\", "Global\\");
    check_create(
        "NS4: Global\\ and Local\\ are different namespaces",
        CREATED,
        || create_a(RW, 0x1000, &global_of_local),
    );
    let long = format!("Local\\{}-{}", std::process::id(), "n".repeat(300))[..259].to_string();
    let h8 = check_create("CF8: an A name of 259 characters", CREATED, || {
        create_a(RW, 0x1000, &long)
    })
    .unwrap();
    drop((h3, h5, h6, h7, h8, v1, v2, v4, h1, h2, h4));
}

/// CF8: an unnamed section sets the last error to 0 too (every creation in this file checks it
/// through `check_create`); CF9: security attributes are accepted and ignored.
#[test]
fn cf8_cf9_unnamed_last_error_and_security_attributes() {
    let _t = shared();
    let sa = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: null_mut(),
        bInheritHandle: TRUE,
    };
    let s = check_create("CF9: bInheritHandle TRUE", CREATED, || unsafe {
        CreateFileMappingA(INVALID_HANDLE_VALUE, &sa, RW, 0, 0x2000, null())
    })
    .unwrap();
    map("CF9", s.h(), WRITE, 0, 0, OK);
    check_create(
        "CF8: CreateFileMappingNumaW sets 0 too",
        CREATED,
        || unsafe { CreateFileMappingNumaW(INVALID_HANDLE_VALUE, &sa, RW, 0, 0x2000, null(), 0) },
    );
    check_create(
        "CF8: CreateFileMappingNumaA sets 0 too",
        CREATED,
        || unsafe {
            CreateFileMappingNumaA(
                INVALID_HANDLE_VALUE,
                null(),
                RW,
                0,
                0x2000,
                null(),
                NUMA_NO_PREFERRED_NODE,
            )
        },
    );
}

// ---------------------------------------------------------------------------------------------
// C2-1 … C2-3: CreateFileMapping2, CreateFileMappingFromApp
// ---------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn create2(
    access: u32,
    prot: u32,
    attrs: u32,
    size: u64,
    name: Option<&str>,
    params: &mut [MEM_EXTENDED_PARAMETER],
) -> HANDLE {
    let n = name.map(w_str);
    let (pp, count) = if params.is_empty() {
        (null_mut(), 0)
    } else {
        (params.as_mut_ptr(), params.len() as u32)
    };
    unsafe {
        CreateFileMapping2(
            INVALID_HANDLE_VALUE,
            null(),
            access,
            prot,
            attrs,
            size,
            n.as_ref().map_or(null(), |n| n.as_ptr()),
            pp,
            count,
        )
    }
}

/// C2-1: CreateFileMapping2's handle gets exactly DesiredAccess; AllocationAttributes 0 is
/// SEC_COMMIT; the last error is set as by CreateFileMapping (0).
#[test]
fn c2_1_create_file_mapping2_desired_access() {
    let _t = shared();
    let s = check_create("C2-1: FILE_MAP_READ handle", CREATED, || {
        create2(READ, RW, 0, 0x2000, None, &mut [])
    })
    .unwrap();
    let v = map(
        "C2-1: a FILE_MAP_READ view through a FILE_MAP_READ handle",
        s.h(),
        READ,
        0,
        0,
        OK,
    )
    .unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RO, 0x2000, RO),
        "C2-1: attributes 0 = SEC_COMMIT"
    );
    map(
        "C2-1: no FILE_MAP_WRITE view through a FILE_MAP_READ handle",
        s.h(),
        WRITE,
        0,
        0,
        fails(E_DENIED),
    );
    map(
        "C2-1: a FILE_MAP_COPY view needs only read",
        s.h(),
        COPY,
        0,
        0,
        OK,
    );

    let s = check_create("C2-1: FILE_MAP_WRITE handle", CREATED, || {
        create2(WRITE, RW, SEC_COMMIT, 0x2000, None, &mut [])
    })
    .unwrap();
    map(
        "C2-1: a FILE_MAP_WRITE view through a FILE_MAP_WRITE handle",
        s.h(),
        WRITE,
        0,
        0,
        OK,
    );
    map(
        "C2-1: no FILE_MAP_READ view without SECTION_MAP_READ",
        s.h(),
        READ,
        0,
        0,
        fails(E_DENIED),
    );

    let s = check_create("C2-1: access 0", CREATED, || {
        create2(0, RW, 0, 0x2000, None, &mut [])
    })
    .unwrap();
    map(
        "C2-1: a handle with access 0 maps nothing",
        s.h(),
        0,
        0,
        0,
        fails(E_DENIED),
    );
    map(
        "C2-1: a handle with access 0 maps nothing",
        s.h(),
        READ,
        0,
        0,
        fails(E_DENIED),
    );

    let s = check_create("C2-1: SEC_RESERVE", CREATED, || {
        create2(FILE_MAP_ALL_ACCESS, RW, SEC_RESERVE, 0x2000, None, &mut [])
    })
    .unwrap();
    let v = map("C2-1", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped_reserved(v.at(0), v.at(0), RW, 0x2000),
        "C2-1: SEC_RESERVE"
    );

    let s = check_create("C2-1: executable", CREATED, || {
        create2(READ | WRITE | SX, XRW, 0, 0x2000, None, &mut [])
    })
    .unwrap();
    let v = map(
        "C2-1: SECTION_MAP_EXECUTE maps executable views",
        s.h(),
        READ | WRITE | FX,
        0,
        0,
        OK,
    )
    .unwrap();
    assert_eq!(vq(v.at(0)).ap, XRW, "C2-1: an executable view");
    let s = check_create("C2-1: no execute right", CREATED, || {
        create2(READ | WRITE, XRW, 0, 0x2000, None, &mut [])
    })
    .unwrap();
    map(
        "C2-1: without SECTION_MAP_EXECUTE no executable view",
        s.h(),
        READ | FX,
        0,
        0,
        fails(E_DENIED),
    );
    check_create("C2-1 / CF2: an invalid protection", Err(E_PARAM), || {
        create2(READ, NA, 0, 0x2000, None, &mut [])
    });
    check_create("C2-1 / CF3: size 0", Err(E_PARAM), || {
        create2(READ, RW, 0, 0, None, &mut [])
    });
    check_create("C2-1 / CF4: SEC_COMMIT | SEC_RESERVE", Err(E_PARAM), || {
        create2(READ, RW, SEC_COMMIT | SEC_RESERVE, 0x2000, None, &mut [])
    });
}

/// C2-2: only a NUMA-node extended parameter is accepted; any other type, or one type twice,
/// fails with 87.
#[test]
fn c2_2_create_file_mapping2_extended_parameters() {
    let _t = shared();
    check_create("C2-2: a NUMA node", CREATED, || {
        create2(
            READ,
            RW,
            0,
            0x1000,
            None,
            &mut [ext(MemExtendedParameterNumaNode, 0)],
        )
    });
    let mut a = requirements(0, 0, 0);
    check_create("C2-2: address requirements", Err(E_PARAM), || {
        create2(READ, RW, 0, 0x1000, None, &mut [ext_address(&mut a)])
    });
    check_create("C2-2: the NUMA node twice", Err(E_PARAM), || {
        create2(
            READ,
            RW,
            0,
            0x1000,
            None,
            &mut [
                ext(MemExtendedParameterNumaNode, 0),
                ext(MemExtendedParameterNumaNode, 0),
            ],
        )
    });
    for ty in [
        MemExtendedParameterInvalidType,
        MemExtendedParameterAttributeFlags,
        MemExtendedParameterMax,
    ] {
        check_create(&format!("C2-2: parameter type {ty}"), Err(E_PARAM), || {
            create2(READ, RW, 0, 0x1000, None, &mut [ext(ty, 0)])
        });
    }
}

/// C2-2: the last-error rules of CF8 apply to CreateFileMapping2 (a name: 0, then 183).
#[test]
fn c2_2_create_file_mapping2_names() {
    let _t = shared();
    let name = unique("c2");
    let h1 = check_create("C2-2: a new name", CREATED, || {
        create2(READ | WRITE, RW, 0, 0x1000, Some(&name), &mut [])
    })
    .unwrap();
    let h2 = check_create("C2-2: the same name", EXISTED, || {
        create2(READ, RW, 0, 0x1000, Some(&name), &mut [])
    })
    .unwrap();
    let v = map("C2-2", h1.h(), WRITE, 0, 0, OK).unwrap();
    v.write(5, 55);
    let r = map("C2-2", h2.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(r.read(5), 55, "C2-2: the same section");
    map(
        "C2-1: the opened handle has exactly FILE_MAP_READ",
        h2.h(),
        WRITE,
        0,
        0,
        fails(E_DENIED),
    );
}

/// C2-3: CreateFileMappingFromApp accepts PAGE_EXECUTE_READWRITE (KB:572-578) and its handle
/// maps executable views.
#[test]
fn c2_3_create_file_mapping_from_app() {
    let _t = shared();
    let s = check_create("C2-3: PAGE_EXECUTE_READWRITE", CREATED, || unsafe {
        CreateFileMappingFromApp(INVALID_HANDLE_VALUE, null(), XRW, 1024, null())
    })
    .unwrap();
    let v = map("C2-3: an executable view", s.h(), FX | WRITE, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), XRW, P, XRW),
        "C2-3: the view of a 1024-byte PAGE_EXECUTE_READWRITE section"
    );
    check_create("C2-3: size 0", Err(E_PARAM), || unsafe {
        CreateFileMappingFromApp(INVALID_HANDLE_VALUE, null(), RW, 0, null())
    });
    check_create("C2-3: PAGE_EXECUTE", Err(E_PARAM), || unsafe {
        CreateFileMappingFromApp(INVALID_HANDLE_VALUE, null(), X, 0x1000, null())
    });
    let s = check_create("C2-3: SEC_RESERVE", CREATED, || unsafe {
        CreateFileMappingFromApp(
            INVALID_HANDLE_VALUE,
            null(),
            RW | SEC_RESERVE,
            0x2000,
            null(),
        )
    })
    .unwrap();
    let v = map("C2-3", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(vq(v.at(0)).st, MEM_RESERVE, "C2-3: = CreateFileMappingW");
}

// ---------------------------------------------------------------------------------------------
// OF1–OF3: OpenFileMapping
// ---------------------------------------------------------------------------------------------

/// OF1: a NULL name fails with 87; a name no section has with 2 (K:1083-1086).
#[test]
fn of1_open_errors() {
    let _t = shared();
    check(
        "OF1: OpenFileMappingA(NULL)",
        null_mut(),
        fails(E_PARAM),
        || unsafe { OpenFileMappingA(READ, FALSE, null()) },
    );
    check(
        "OF1: OpenFileMappingW(NULL)",
        null_mut(),
        fails(E_PARAM),
        || unsafe { OpenFileMappingW(READ, FALSE, null()) },
    );
    let name = unique("of1-nobody");
    check(
        "OF1: an unknown name (A)",
        null_mut(),
        fails(E_NOTFOUND),
        || open_a(READ, &name),
    );
    check(
        "OF1: an unknown name (W)",
        null_mut(),
        fails(E_NOTFOUND),
        || open_w(READ, &name),
    );
}

/// OF2, OF3: the handle gets exactly the access asked for (K:770-789, K:801-820), FILE_MAP_COPY
/// alone is FILE_MAP_READ; success leaves the last error alone.
#[test]
fn of2_of3_open_access() {
    let _t = shared();
    let name = unique("of2");
    let s = check_create("OF2", CREATED, || create_a(RW, 4090, &name)).unwrap();
    let w = map("OF2", s.h(), WRITE, 0, 0, OK).unwrap();
    w.write(0, 42);

    let r = check(
        "OF3: OpenFileMapping(FILE_MAP_READ)",
        null_mut(),
        OK,
        || open_a(READ, &name),
    );
    let r = Section(r);
    map(
        "OF2: a FILE_MAP_READ handle maps no FILE_MAP_WRITE view",
        r.h(),
        WRITE,
        0,
        0,
        fails(E_DENIED),
    );
    let v = map("OF2: a FILE_MAP_READ view", r.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RO, 0x1000, RO),
        "OF2: a read-only view of the 4090-byte section's page-rounded size (K:777-789)"
    );
    assert_eq!(v.read(0), 42, "OF2: the same section");

    let wr = Section(check(
        "OF3: OpenFileMapping(FILE_MAP_WRITE)",
        null_mut(),
        OK,
        || open_w(WRITE, &name),
    ));
    map(
        "OF2: a FILE_MAP_WRITE handle maps no FILE_MAP_READ view",
        wr.h(),
        READ,
        0,
        0,
        fails(E_DENIED),
    );
    map(
        "OF2/MV2: nor a FILE_MAP_COPY view",
        wr.h(),
        COPY,
        0,
        0,
        fails(E_DENIED),
    );
    map(
        "OF2/MV2: nor an access-0 view",
        wr.h(),
        0,
        0,
        0,
        fails(E_DENIED),
    );
    let v = map("OF2: a FILE_MAP_WRITE view", wr.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RW, 0x1000, RW),
        "OF2: FILE_MAP_WRITE view"
    );

    let c = Section(check(
        "OF3: OpenFileMapping(FILE_MAP_COPY)",
        null_mut(),
        OK,
        || open_a(COPY, &name),
    ));
    let v = map(
        "OF2: FILE_MAP_COPY alone is taken as FILE_MAP_READ",
        c.h(),
        READ,
        0,
        0,
        OK,
    )
    .unwrap();
    assert_eq!(vq(v.at(0)).ap, RO, "OF2");
    map(
        "OF2: a FILE_MAP_COPY(=READ) handle maps no FILE_MAP_WRITE view",
        c.h(),
        WRITE,
        0,
        0,
        fails(E_DENIED),
    );

    let all = Section(check(
        "OF3: OpenFileMapping(FILE_MAP_ALL_ACCESS, bInherit TRUE)",
        null_mut(),
        OK,
        || {
            let n = a_str(&name);
            unsafe { OpenFileMappingA(FILE_MAP_ALL_ACCESS, TRUE, n.as_ptr()) }
        },
    ));
    map(
        "OF2: FILE_MAP_ALL_ACCESS maps FILE_MAP_WRITE",
        all.h(),
        WRITE,
        0,
        0,
        OK,
    );
}

// ---------------------------------------------------------------------------------------------
// H1, H2: CloseHandle, DuplicateHandle
// ---------------------------------------------------------------------------------------------

/// H1: CloseHandle(GetCurrentProcess()) succeeds and does nothing; a handle that was never
/// open fails with 6; closing the last handle leaves views working (O3, K:1052-1081).
#[test]
fn h1_close_handle() {
    let _t = shared();
    check(
        "H1: CloseHandle(GetCurrentProcess())",
        FALSE,
        OK,
        || unsafe { CloseHandle(GetCurrentProcess()) },
    );
    check(
        "H1: CloseHandle of a made-up handle",
        FALSE,
        fails(E_HANDLE),
        || unsafe { CloseHandle(BOGUS) },
    );
    check("H1: CloseHandle(NULL)", FALSE, fails(E_HANDLE), || unsafe {
        CloseHandle(null_mut())
    });
    let s = pagefile("H1", RW, 0x2000);
    let v = map("H1", s.h(), WRITE, 0, 0, OK).unwrap();
    v.write(0x1fff, 7);
    s.close("H1: closing the last handle");
    assert_eq!(v.read(0x1fff), 7, "O3/H1: the view outlives the handle");
    v.write(0, 9);
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RW, 0x2000, RW),
        "O3/H1"
    );
    v.unmap("O3: unmapping after the handle is closed");
}

fn dup(ctx: &str, h: HANDLE, access: u32, options: u32, want: Want) -> HANDLE {
    let mut out = null_mut();
    check(ctx, FALSE, want, || unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            h,
            GetCurrentProcess(),
            &mut out,
            access,
            FALSE,
            options,
        )
    });
    out
}

/// H2: DuplicateHandle gives a new handle to the same section with exactly dwDesiredAccess
/// (K:612-642); DUPLICATE_SAME_ACCESS copies it, DUPLICATE_CLOSE_SOURCE closes the source; both
/// process handles must be the current process; lpTargetHandle NULL fails with 87.
#[test]
fn h2_duplicate_handle() {
    let _t = shared();
    let s = pagefile("H2", RW, 0x1000);
    let w = map("H2", s.h(), WRITE, 0, 0, OK).unwrap();
    w.write(1, 11);

    let d = Section(dup("H2: READ|WRITE", s.h(), READ | WRITE, 0, OK));
    assert_ne!(d.h(), s.h(), "H2: a new handle");
    let v = map(
        "H2: a READ|WRITE duplicate maps FILE_MAP_WRITE (K:612-618)",
        d.h(),
        WRITE,
        0,
        0x1000,
        OK,
    )
    .unwrap();
    assert_eq!(v.read(1), 11, "H2: the same section");
    drop(d);
    let d = Section(dup("H2: READ", s.h(), READ, 0, OK));
    map(
        "H2: a READ duplicate cannot map FILE_MAP_WRITE (K:620-627)",
        d.h(),
        WRITE,
        0,
        0x1000,
        fails(E_DENIED),
    );
    let v = map(
        "H2: a READ duplicate maps an access-0 view (K:637-641)",
        d.h(),
        0,
        0,
        0x1000,
        OK,
    )
    .unwrap();
    assert_eq!(vq(v.at(0)).ap, NA, "H2/MV1: access 0 = PAGE_NOACCESS");
    drop(d);
    let d = Section(dup("H2: access 0", s.h(), 0, 0, OK));
    map(
        "H2: an access-0 duplicate cannot map even an access-0 view (K:628-634)",
        d.h(),
        0,
        0,
        0x1000,
        fails(E_DENIED),
    );
    let d2 = Section(dup(
        "H2: DUPLICATE_SAME_ACCESS of an access-0 handle",
        d.h(),
        FILE_MAP_ALL_ACCESS,
        DUPLICATE_SAME_ACCESS,
        OK,
    ));
    map(
        "H2: DUPLICATE_SAME_ACCESS copies access 0",
        d2.h(),
        READ,
        0,
        0,
        fails(E_DENIED),
    );
    let d3 = Section(dup(
        "H2: DUPLICATE_SAME_ACCESS",
        s.h(),
        0,
        DUPLICATE_SAME_ACCESS,
        OK,
    ));
    map(
        "H2: DUPLICATE_SAME_ACCESS copies READ|WRITE",
        d3.h(),
        WRITE,
        0,
        0,
        OK,
    );

    let mut out = null_mut();
    for (ctx, src, dst) in [
        ("H2: source process NULL", null_mut(), GetCurrentProcess()),
        ("H2: target process NULL", GetCurrentProcess(), null_mut()),
        (
            "H2: a section handle as the process",
            s.h(),
            GetCurrentProcess(),
        ),
    ] {
        check(ctx, FALSE, fails(E_HANDLE), || unsafe {
            DuplicateHandle(src, s.h(), dst, &mut out, READ, FALSE, 0)
        });
    }
    check(
        "H2: lpTargetHandle NULL",
        FALSE,
        fails(E_PARAM),
        || unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                s.h(),
                GetCurrentProcess(),
                null_mut(),
                READ,
                FALSE,
                0,
            )
        },
    );
    check(
        "H2: a made-up source handle",
        FALSE,
        fails(E_HANDLE),
        || unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                BOGUS,
                GetCurrentProcess(),
                &mut out,
                READ,
                FALSE,
                0,
            )
        },
    );
}

/// H2: DUPLICATE_CLOSE_SOURCE closes the source handle.
#[test]
fn h2_duplicate_close_source() {
    let _t = alone();
    let s = pagefile("H2", RW, 0x1000);
    let src = s.into_raw();
    let d = Section(dup(
        "H2: DUPLICATE_CLOSE_SOURCE",
        src,
        0,
        DUPLICATE_CLOSE_SOURCE | DUPLICATE_SAME_ACCESS,
        OK,
    ));
    assert_ne!(
        d.h(),
        src,
        "H2: the duplicate is a new handle (made before the source is closed)"
    );
    check(
        "H2: the source is closed",
        FALSE,
        fails(E_HANDLE),
        || unsafe { CloseHandle(src) },
    );
    map("H2: the duplicate works", d.h(), WRITE, 0, 0, OK);
    // "This occurs regardless of any error status returned" (DuplicateHandle documentation).
    let src = pagefile("H2", RW, 0x1000).into_raw();
    check(
        "H2: DUPLICATE_CLOSE_SOURCE with lpTargetHandle NULL",
        FALSE,
        fails(E_PARAM),
        || unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                src,
                GetCurrentProcess(),
                null_mut(),
                0,
                FALSE,
                DUPLICATE_CLOSE_SOURCE,
            )
        },
    );
    check(
        "H2: the source is closed even though the call failed",
        FALSE,
        fails(E_HANDLE),
        || unsafe { CloseHandle(src) },
    );
}

// ---------------------------------------------------------------------------------------------
// MV1–MV9: MapViewOfFile, MapViewOfFileEx, MapViewOfFileFromApp
// ---------------------------------------------------------------------------------------------

/// MV1: the 32 combinations of FILE_MAP_COPY / WRITE / READ / EXECUTE and SECTION_MAP_EXECUTE
/// against a PAGE_EXECUTE_READWRITE section (whose handle allows them all): each view's
/// Protect and AllocationProtect (K:4160-4186), and a few more bits that change nothing.
#[test]
fn mv1_desired_access_gives_the_view_protection() {
    let _t = shared();
    let s = pagefile("MV1", XRW, 2 * P as u64);
    let mut errs = Vec::new();
    let extra = [
        (FILE_MAP_ALL_ACCESS, RW),
        (FILE_MAP_ALL_ACCESS | FX, XRW),
        (SECTION_EXTEND_SIZE | READ, RO),
        (0x000F_0000 | READ, RO), // standard rights
        (FILE_MAP_TARGETS_INVALID | FX | READ, XR),
        (0x40, NA), // MV9: a PAGE_* value as the desired access
    ];
    for &(access, prot) in ACCESS_TABLE.iter().chain(extra.iter()) {
        let ctx = format!("MV1: access {access:#x}");
        let Some(v) = soft_map(&mut errs, &ctx, s.h(), access, 0, 0, OK) else {
            continue;
        };
        soft_eq(
            &mut errs,
            &format!("{ctx}: VirtualQuery"),
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), prot, 2 * P, prot),
        );
    }
    no_errors(errs);
}

/// MV2 / CF10: which of the 32 desired accesses each section allows: its handle has the rights
/// CF10 derives from its protection, and a view needs those of MV2 (K:4135-4148 with
/// K:4193-4203); refused views fail with ERROR_ACCESS_DENIED. Also MapViewOfFile3 with each
/// view protection succeeds exactly when MapViewOfFile does (M3-2, K:4118-4133).
#[test]
fn mv2_cf10_which_views_each_section_allows() {
    let _t = shared();
    let mut errs = Vec::new();
    for (label, s, granted) in mapping_sections(2 * P as u64) {
        for &(access, prot) in ACCESS_TABLE.iter() {
            let ok = may_map(granted, prot);
            let ctx = format!("MV2/CF10: {label}, access {access:#x} (view {prot:#x})");
            let v = soft_map(
                &mut errs,
                &ctx,
                s.h(),
                access,
                0,
                0,
                if ok { OK } else { fails(E_DENIED) },
            );
            if let Some(v) = v {
                soft_eq(
                    &mut errs,
                    &format!("{ctx}: VirtualQuery"),
                    vq(v.at(0)),
                    mapped(v.at(0), v.at(0), prot, 2 * P, prot),
                );
            }
        }
        for prot in VIEW_PROTS {
            let ok = may_map(granted, prot);
            let ctx = format!("M3-2: {label}, MapViewOfFile3 protection {prot:#x}");
            let r = soft(
                &mut errs,
                &ctx,
                0usize,
                if ok { OK } else { fails(E_DENIED) },
                || unsafe {
                    MapViewOfFile3(s.h(), null_mut(), null(), 0, 0, 0, prot, null_mut(), 0).Value
                        as usize
                },
            );
            if r != 0 {
                let v = View(r);
                soft_eq(
                    &mut errs,
                    &format!("{ctx}: VirtualQuery"),
                    vq(v.at(0)),
                    mapped(v.at(0), v.at(0), prot, 2 * P, prot),
                );
            }
        }
    }
    no_errors(errs);
}

/// MV2 examples of the spec: FILE_MAP_WRITE of a PAGE_READONLY section → 5 (K:666-670);
/// FILE_MAP_COPY of a PAGE_READONLY section → a WRITECOPY view (K:656-658); an executable view
/// of a section without PAGE_EXECUTE_* → 5.
#[test]
fn mv2_examples() {
    let _t = shared();
    let ro = pagefile("MV2", RO, 0x1000);
    map(
        "MV2: FILE_MAP_WRITE of a PAGE_READONLY section",
        ro.h(),
        WRITE,
        0,
        0,
        fails(E_DENIED),
    );
    let v = map(
        "MV2: FILE_MAP_COPY of a PAGE_READONLY section",
        ro.h(),
        COPY,
        0,
        0,
        OK,
    )
    .unwrap();
    assert_eq!(vq(v.at(0)).ap, WC, "MV2: a WRITECOPY view");
    let wc = pagefile("MV2", WC, 0x1000);
    map(
        "MV2: FILE_MAP_WRITE of a PAGE_WRITECOPY section",
        wc.h(),
        WRITE,
        0,
        0,
        fails(E_DENIED),
    );
    let rw = pagefile("MV2", RW, 0x1000);
    map(
        "MV2: FILE_MAP_EXECUTE|READ of a PAGE_READWRITE section",
        rw.h(),
        FX | READ,
        0,
        0,
        fails(E_DENIED),
    );
    map(
        "MV2: FILE_MAP_EXECUTE|COPY of a PAGE_READWRITE section",
        rw.h(),
        FX | COPY,
        0,
        0,
        fails(E_DENIED),
    );
    let xr = pagefile("MV2", XR, 0x1000);
    map(
        "MV2: FILE_MAP_EXECUTE|WRITE of a PAGE_EXECUTE_READ section",
        xr.h(),
        FX | WRITE,
        0,
        0,
        fails(E_DENIED),
    );
    let v = map(
        "MV2: FILE_MAP_EXECUTE|READ of a PAGE_EXECUTE_READ section",
        xr.h(),
        FX | READ,
        0,
        0,
        OK,
    )
    .unwrap();
    assert_eq!(vq(v.at(0)).ap, XR);
}

/// MV3: the offset must be a multiple of G, else ERROR_MAPPED_ALIGNMENT.
#[test]
fn mv3_offset_alignment() {
    let _t = shared();
    let s = pagefile("MV3", RW, 3 * G as u64);
    for off in [1u64, 0x1000, 0x8000, G as u64 + 0x1000, 0xFFFF] {
        map(
            &format!("MV3: offset {off:#x}"),
            s.h(),
            READ,
            off,
            0x1000,
            fails(E_ALIGN),
        );
    }
    let w = map("MV3", s.h(), WRITE, 0, 0, OK).unwrap();
    w.write(G + 3, 33);
    w.write(2 * G, 44);
    let v = map("MV3: offset G", s.h(), READ, G as u64, 0, OK).unwrap();
    assert_eq!(
        (v.read(3), v.read(G)),
        (33, 44),
        "MV3: the view starts at its offset"
    );
    assert_eq!(
        vq(v.at(0)).rs,
        2 * G,
        "MV4: size 0 maps to the section's end"
    );
    let v = map("MV3: offset 2G", s.h(), READ, 2 * G as u64, 0x1000, OK).unwrap();
    assert_eq!(v.read(0), 44);
}

/// MV4: size 0 maps from the offset to the end; otherwise offset + size may not exceed the
/// section (5); any size is accepted and rounded up to pages; an offset at or past the end
/// fails with 5.
#[test]
fn mv4_view_size() {
    let _t = shared();
    let s = pagefile("MV4", RW, 0x18000);
    let mut errs = Vec::new();
    for (off, size, want, rs) in [
        (0u64, 0usize, OK, 0x18000usize),
        (G as u64, 0, OK, 0x8000),
        (0, 0x18000, OK, 0x18000),
        (0, 0x18001, fails(E_DENIED), 0),
        (G as u64, 0x8000, OK, 0x8000),
        (G as u64, 0x8001, fails(E_DENIED), 0),
        (0, 0x1234, OK, 0x2000),
        (0, 1, OK, 0x1000),
        (G as u64, 0x3452, OK, 0x4000),
        (2 * G as u64, 0, fails(E_DENIED), 0),
        (2 * G as u64, 0x1000, fails(E_DENIED), 0),
        (16 * G as u64, 0, fails(E_DENIED), 0),
        (G as u64, usize::MAX - 0x1000, fails(E_DENIED), 0),
        (0x1_0000_0000, 0x1000, fails(E_DENIED), 0),
    ] {
        let ctx = format!("MV4: offset {off:#x} size {size:#x}");
        if let Some(v) = soft_map(&mut errs, &ctx, s.h(), READ, off, size, want) {
            soft_eq(&mut errs, &format!("{ctx}: RegionSize"), vq(v.at(0)).rs, rs);
        }
    }
    no_errors(errs);
}

/// MV5: the system picks G-aligned addresses, different for each view (K:865-867).
#[test]
fn mv5_system_picks_aligned_addresses() {
    let _t = shared();
    let s = pagefile("MV5", RW, 0x3000);
    let views: Vec<View> = (0..8)
        .map(|_| map("MV5", s.h(), READ, 0, 0, OK).unwrap())
        .collect();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(
            v.at(0) % G,
            0,
            "MV5: view {i} at {:#x} is not G-aligned",
            v.at(0)
        );
        assert!(
            views[..i].iter().all(|o| o.at(0) != v.at(0)),
            "MV5: two views at the same address"
        );
    }
}

/// MV6: MapViewOfFileEx at a free, G-aligned address maps there; a base that is not a multiple
/// of G fails with 1132 (N:1581-1593), an occupied range with 487 (N:1567-1572), also a
/// placeholder; NULL lets the system choose. MV7: alignment errors come before the occupied
/// check.
#[test]
fn mv6_base_address() {
    let _t = shared();
    let s = pagefile("MV6", RW, 2 * G as u64);
    let v = retry(2 * G, |h| {
        try_map_at("MV6: a free G-aligned address", s.h(), WRITE, 0, 0, h)
    });
    let base = v.at(0);
    assert_eq!(vq(base), mapped(base, base, RW, 2 * G, RW), "MV6");
    // The address is taken now.
    map_ex(
        "MV6: the same address again",
        s.h(),
        READ,
        0,
        0,
        base,
        fails(E_ADDR),
    );
    map_ex(
        "MV6: an address inside the view",
        s.h(),
        READ,
        0,
        G,
        base + G,
        fails(E_ADDR),
    );
    map_ex(
        "MV6/MV7: base+42 (also occupied)",
        s.h(),
        READ,
        0,
        0,
        base + 42,
        fails(E_ALIGN),
    );
    map_ex(
        "MV6/MV7: base+0x1000 (also occupied)",
        s.h(),
        READ,
        0,
        0,
        base + 0x1000,
        fails(E_ALIGN),
    );
    drop(v);
    // A range whose second granule is private memory.
    let (_m, h) = retry(2 * G, |h| {
        try_alloc_at(h + G, G, MEM_RESERVE, NA).map(|m| (m, h))
    });
    map_ex(
        "MV6: a range that runs into an allocation",
        s.h(),
        READ,
        0,
        2 * G,
        h,
        fails(E_ADDR),
    );
    map_ex(
        "MV6: a misaligned free address",
        s.h(),
        READ,
        0,
        G,
        h + 0x1000,
        fails(E_ALIGN),
    );
    // Placeholders are not free.
    let ph = Mem(placeholder("MV6", G));
    map_ex(
        "MV6: a placeholder is not free",
        s.h(),
        READ,
        0,
        G,
        ph.0,
        fails(E_ADDR),
    );
    // NULL = anywhere.
    let v = map_ex("MV6: NULL", s.h(), READ, 0, 0, 0, OK).unwrap();
    assert_eq!(v.at(0) % G, 0);
    let r = check("MV6: MapViewOfFileExNuma", 0usize, OK, || unsafe {
        MapViewOfFileExNuma(s.h(), READ, 0, 0, 0, null(), 0).Value as usize
    });
    drop(View(r));
}

/// MV7: the order of the checks: the handle (6), its rights (5), the offset's alignment
/// (1132), the base's alignment (1132), the size (5), the address range (487).
#[test]
fn mv7_order_of_checks() {
    let _t = shared();
    let s = pagefile("MV7", RW, G as u64);
    let ro = pagefile("MV7", RO, G as u64);
    let occupied = map("MV7", s.h(), READ, 0, 0, OK).unwrap();
    let b = occupied.at(0);
    map_ex(
        "MV7: bad handle before the rest",
        BOGUS,
        WRITE,
        1,
        2 * G,
        b + 1,
        fails(E_HANDLE),
    );
    map_ex(
        "MV7: rights before alignment",
        ro.h(),
        WRITE,
        1,
        2 * G,
        b + 1,
        fails(E_DENIED),
    );
    map_ex(
        "MV7: offset alignment before the rest",
        s.h(),
        READ,
        1,
        2 * G,
        b,
        fails(E_ALIGN),
    );
    map_ex(
        "MV7: base alignment before the size",
        s.h(),
        READ,
        0,
        2 * G,
        b + 0x1000,
        fails(E_ALIGN),
    );
    map_ex(
        "MV7: base alignment before an offset past the end",
        s.h(),
        READ,
        G as u64,
        0,
        b + 0x1000,
        fails(E_ALIGN),
    );
    map_ex(
        "MV7: the size before the address range",
        s.h(),
        READ,
        0,
        2 * G,
        b,
        fails(E_DENIED),
    );
    map_ex(
        "MV7: an offset past the end before the address range",
        s.h(),
        READ,
        G as u64,
        0,
        b,
        fails(E_DENIED),
    );
    map_ex(
        "MV7: the address range",
        s.h(),
        READ,
        0,
        G,
        b,
        fails(E_ADDR),
    );
}

/// MV9: MapViewOfFileFromApp: a 64-bit offset; a desired access with none of the FILE_MAP_*
/// bits (PAGE_EXECUTE_READWRITE's value) maps a view (KB:596-609).
#[test]
fn mv9_map_view_of_file_from_app() {
    let _t = shared();
    let s = pagefile("MV9", RW, 2 * G as u64);
    let w = map("MV9", s.h(), WRITE, 0, 0, OK).unwrap();
    w.write(G + 1, 91);
    let r = check("MV9: access 0x40", 0usize, OK, || unsafe {
        MapViewOfFileFromApp(s.h(), PAGE_EXECUTE_READWRITE, 0, 4096).Value as usize
    });
    let v = View(r);
    assert_eq!(
        vq(v.at(0)).ap,
        NA,
        "MV9/MV1: no FILE_MAP_* bit: PAGE_NOACCESS"
    );
    let r = check("MV9: offset G", 0usize, OK, || unsafe {
        MapViewOfFileFromApp(s.h(), READ, G as u64, 0).Value as usize
    });
    let v = View(r);
    assert_eq!(
        (v.read(1), vq(v.at(0)).rs),
        (91, G),
        "MV9: the view at offset G"
    );
    check("MV9/MV3: offset G+P", 0usize, fails(E_ALIGN), || unsafe {
        MapViewOfFileFromApp(s.h(), READ, G as u64 + 0x1000, 0).Value as usize
    });
    check(
        "MV9/MV4: an offset above 4 GiB",
        0usize,
        fails(E_DENIED),
        || unsafe { MapViewOfFileFromApp(s.h(), READ, 0x1_0000_0000, 0).Value as usize },
    );
}

// ---------------------------------------------------------------------------------------------
// M3-1 … M3-9: MapViewOfFile3, MapViewOfFile3FromApp, MapViewOfFileNuma2
// ---------------------------------------------------------------------------------------------

/// M3-1: the process is GetCurrentProcess() or NULL (KB:134-136); any other handle fails with 6.
#[test]
fn m3_1_process_handle() {
    let _t = shared();
    let s = pagefile("M3-1", RW, G as u64);
    map3("M3-1: NULL", s.h(), null_mut(), 0, 0, 0, 0, RW, &mut [], OK);
    map3(
        "M3-1: GetCurrentProcess()",
        s.h(),
        GetCurrentProcess(),
        0,
        0,
        0,
        0,
        RW,
        &mut [],
        OK,
    );
    map3(
        "M3-1: a section handle",
        s.h(),
        s.h(),
        0,
        0,
        0,
        0,
        RW,
        &mut [],
        fails(E_HANDLE),
    );
    map3(
        "M3-1: a made-up handle",
        s.h(),
        BOGUS,
        0,
        0,
        0,
        0,
        RW,
        &mut [],
        fails(E_HANDLE),
    );
}

/// M3-2: PageProtection is the view's protection; values other than the seven fail with 87.
#[test]
fn m3_2_page_protection() {
    let _t = shared();
    let s = pagefile("M3-2", XRW, 2 * P as u64);
    for prot in VIEW_PROTS {
        let v = map3(
            &format!("M3-2: {prot:#x}"),
            s.h(),
            null_mut(),
            0,
            0,
            0,
            0,
            prot,
            &mut [],
            OK,
        )
        .unwrap();
        assert_eq!(
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), prot, 2 * P, prot),
            "M3-2: protection {prot:#x}"
        );
    }
    for prot in [
        0,
        X,
        0x3,
        0x06,
        0x30,
        RW | PAGE_GUARD,
        RW | PAGE_NOCACHE,
        RW | PAGE_WRITECOMBINE,
        0x100,
    ] {
        map3(
            &format!("M3-2: protection {prot:#x}"),
            s.h(),
            null_mut(),
            0,
            0,
            0,
            0,
            prot,
            &mut [],
            fails(E_PARAM),
        );
    }
    let ro = pagefile("M3-2", RO, P as u64);
    map3(
        "M3-2/MV2: PAGE_READWRITE view of a PAGE_READONLY section",
        ro.h(),
        null_mut(),
        0,
        0,
        0,
        0,
        RW,
        &mut [],
        fails(E_DENIED),
    );
}

/// M3-3: BaseAddress NULL → the system picks (G-aligned); a page-aligned free address that is
/// not a multiple of G fails with 1132 (KB:189-203); a G-aligned free address is used.
#[test]
fn m3_3_base_address() {
    let _t = shared();
    let s = pagefile("M3-3", RW, 8 * G as u64);
    let v = map3("M3-3: NULL", s.h(), null_mut(), 0, 0, P, 0, RW, &mut [], OK).unwrap();
    assert_eq!(v.at(0) % G, 0, "M3-3: G-aligned");
    drop(v);
    let h = hole(2 * G);
    map3(
        "M3-3: a page-aligned free address",
        s.h(),
        GetCurrentProcess(),
        h + P,
        P as u64,
        0,
        0,
        RW,
        &mut [],
        fails(E_ALIGN),
    );
    map3(
        "M3-3: offset and base misaligned",
        s.h(),
        GetCurrentProcess(),
        h + P,
        P as u64,
        P,
        0,
        RW,
        &mut [],
        fails(E_ALIGN),
    );
    // M3-4: a G-aligned base with offset 0 and 4·G (KB:205-217).
    let v = retry(G, |h| {
        let r = unsafe {
            MapViewOfFile3(
                s.h(),
                GetCurrentProcess(),
                h as *const c_void,
                0,
                P,
                0,
                RW,
                null_mut(),
                0,
            )
            .Value as usize
        };
        if r == 0 {
            assert_eq!(GetLastError(), E_ADDR, "M3-3: a free G-aligned base");
            return None;
        }
        assert_eq!(r, h, "M3-3: the base asked for");
        Some(View(r))
    });
    let at = v.into_raw();
    check("M3-3", FALSE, OK, || unsafe { UnmapViewOfFile(mva(at)) });
    let v = retry(G, |h| {
        let r = unsafe {
            MapViewOfFile3(
                s.h(),
                GetCurrentProcess(),
                h as *const c_void,
                4 * G as u64,
                P,
                0,
                RW,
                null_mut(),
                0,
            )
            .Value as usize
        };
        if r == 0 {
            assert_eq!(
                GetLastError(),
                E_ADDR,
                "M3-4: offset 4G at a G-aligned base"
            );
            return None;
        }
        Some(View(r))
    });
    assert_eq!(vq(v.at(0)).rs, P, "M3-4");
}

/// M3-4: the offset must be a multiple of G (1132), or of P with MEM_REPLACE_PLACEHOLDER
/// (KB:144-181).
#[test]
fn m3_4_offset() {
    let _t = shared();
    let s = pagefile("M3-4", RW, 0x100000);
    for off in [1u64, P as u64, G as u64 / 2] {
        map3(
            &format!("M3-4: offset {off:#x}"),
            s.h(),
            null_mut(),
            0,
            off,
            P,
            0,
            RW,
            &mut [],
            fails(E_ALIGN),
        );
    }
    let w = map3("M3-4", s.h(), null_mut(), 0, 0, 0, 0, RW, &mut [], OK).unwrap();
    w.write(P + 7, 77);
    // KB:144-181: a placeholder split off at +P takes a view of offset P.
    let alloc = Mem(placeholder("M3-4", 0x100000));
    let start = alloc.0 + P;
    split("M3-4: split a page off at +P", start, P);
    let rest = Mem(start + P);
    let v = map3(
        "M3-4: offset P into the placeholder at +P",
        s.h(),
        GetCurrentProcess(),
        start,
        P as u64,
        P,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    assert_eq!(
        (v.at(0), v.read(7)),
        (start, 77),
        "M3-4/PH1: the placeholder's address, offset P"
    );
    v.unmap("M3-4");
    map3(
        "M3-4: a base that is not page-aligned",
        s.h(),
        GetCurrentProcess(),
        start - 1,
        P as u64,
        P,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ALIGN),
    );
    map3(
        "M3-4: an offset that is not page-aligned",
        s.h(),
        GetCurrentProcess(),
        start,
        P as u64 - 1,
        P,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ALIGN),
    );
    drop((alloc, rest));
}

/// M3-5: ViewSize 0 maps to the end (MV4); with MEM_REPLACE_PLACEHOLDER base and size must
/// cover exactly one placeholder, else 487.
#[test]
fn m3_5_view_size() {
    let _t = shared();
    let s = pagefile("M3-5", RW, 4 * G as u64);
    let v = map3(
        "M3-5: size 0",
        s.h(),
        null_mut(),
        0,
        G as u64,
        0,
        0,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    assert_eq!(vq(v.at(0)).rs, 3 * G, "M3-5: size 0 = to the end");
    map3(
        "M3-5: past the end",
        s.h(),
        null_mut(),
        0,
        G as u64,
        3 * G + 1,
        0,
        RW,
        &mut [],
        fails(E_DENIED),
    );
    let ph = Mem(placeholder("M3-5", 2 * G));
    map3(
        "M3-5: smaller than the placeholder",
        s.h(),
        null_mut(),
        ph.0,
        0,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ADDR),
    );
    map3(
        "M3-5: larger than the placeholder",
        s.h(),
        null_mut(),
        ph.0,
        0,
        3 * G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ADDR),
    );
    map3(
        "M3-5: inside the placeholder",
        s.h(),
        null_mut(),
        ph.0 + G,
        0,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ADDR),
    );
    let m = Mem(va("M3-5", 0, G, MEM_RESERVE, NA, OK));
    map3(
        "M3-5: reserved private memory is no placeholder",
        s.h(),
        null_mut(),
        m.0,
        0,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ADDR),
    );
    let v = map3(
        "M3-5: exactly the placeholder",
        s.h(),
        null_mut(),
        ph.0,
        0,
        2 * G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    assert_eq!(v.at(0), ph.0);
    std::mem::forget(ph); // the view took its place
}

/// M3-6: AllocationType: 0, MEM_REPLACE_PLACEHOLDER, MEM_LARGE_PAGES, MEM_RESERVE (virtmem:
/// ERROR_NOT_SUPPORTED); other bits fail with 87.
#[test]
fn m3_6_allocation_type() {
    let _t = shared();
    let s = pagefile("M3-6", RW, G as u64);
    map3(
        "M3-6: MEM_RESERVE",
        s.h(),
        null_mut(),
        0,
        0,
        0,
        MEM_RESERVE,
        RW,
        &mut [],
        fails(E_NS),
    );
    for ty in [
        MEM_COMMIT,
        MEM_COMMIT | MEM_RESERVE,
        MEM_TOP_DOWN,
        MEM_RESET,
        1,
        MEM_RESERVE_PLACEHOLDER,
    ] {
        map3(
            &format!("M3-6: type {ty:#x}"),
            s.h(),
            null_mut(),
            0,
            0,
            0,
            ty,
            RW,
            &mut [],
            fails(E_PARAM),
        );
    }
}

/// M3-7: extended parameters (N:1904-1999): type 0 or MemExtendedParameterMax → 87; address
/// requirements all zero work; a type twice → 87; HighestEndingAddress must be one less than a
/// multiple of P and at most lpMaximumApplicationAddress, and the view lies below it; not with
/// a base address; every non-zero Alignment → 87; a NUMA node is accepted.
#[test]
fn m3_7_extended_parameters() {
    let _t = shared();
    let s = pagefile("M3-7", RW, 0x40000);
    let h = s.h();
    let m =
        |ctx: &str, base: usize, size: usize, params: &mut [MEM_EXTENDED_PARAMETER], want: Want| {
            map3(
                ctx,
                h,
                GetCurrentProcess(),
                base,
                0,
                size,
                0,
                RW,
                params,
                want,
            )
        };
    m("M3-7: type 0", 0, P, &mut [ext(0, 0)], fails(E_PARAM));
    m(
        "M3-7: MemExtendedParameterMax",
        0,
        P,
        &mut [ext(MemExtendedParameterMax, 0)],
        fails(E_PARAM),
    );
    m(
        "M3-7: MemExtendedParameterAttributeFlags",
        0,
        P,
        &mut [ext(MemExtendedParameterAttributeFlags, 0)],
        fails(E_PARAM),
    );
    m(
        "M3-7: MemExtendedParameterImageMachine",
        0,
        P,
        &mut [ext(MemExtendedParameterImageMachine, 0)],
        fails(E_PARAM),
    );
    let mut a = requirements(0, 0, 0);
    m(
        "M3-7: address requirements all zero",
        0,
        P,
        &mut [ext_address(&mut a)],
        OK,
    );
    let mut b = requirements(0, 0, 0);
    m(
        "M3-7: address requirements twice",
        0,
        P,
        &mut [ext_address(&mut a), ext_address(&mut b)],
        fails(E_PARAM),
    );
    m(
        "M3-7: a NUMA node",
        0,
        P,
        &mut [ext(MemExtendedParameterNumaNode, 0)],
        OK,
    );
    m(
        "M3-7: the NUMA node twice",
        0,
        P,
        &mut [
            ext(MemExtendedParameterNumaNode, 0),
            ext(MemExtendedParameterNumaNode, 0),
        ],
        fails(E_PARAM),
    );
    m(
        "M3-7: a NUMA node and address requirements",
        0,
        P,
        &mut [ext(MemExtendedParameterNumaNode, 0), ext_address(&mut a)],
        OK,
    );
    let max = max_app_address();
    for highest in [
        0x2000_1000 + 1,
        0x2000_1000 - 2,
        0x2000_0800 - 1,
        max + 0x1000,
    ] {
        let mut a = requirements(0, highest, 0);
        m(
            &format!("M3-7: HighestEndingAddress {highest:#x}"),
            0,
            G,
            &mut [ext_address(&mut a)],
            fails(E_PARAM),
        );
    }
    let mut a = requirements(0, max, 0);
    m(
        "M3-7: HighestEndingAddress = lpMaximumApplicationAddress",
        0,
        G,
        &mut [ext_address(&mut a)],
        OK,
    );
    let mut a = requirements(0, 0x2000_1000 - 1, 0);
    let v = m(
        "M3-7: HighestEndingAddress 0x20000fff",
        0,
        0x40000,
        &mut [ext_address(&mut a)],
        OK,
    )
    .unwrap();
    assert_eq!(v.at(0) % G, 0, "M3-7: G-aligned");
    assert!(
        v.at(0) + 0x40000 <= 0x2000_1000,
        "M3-7: the view at {:#x} ends above the limit",
        v.at(0)
    );
    drop(v);
    let free = hole(0x40000);
    m(
        "M3-7: HighestEndingAddress with a base address",
        free,
        0x40000,
        &mut [ext_address(&mut a)],
        fails(E_PARAM),
    );
    let mut a = requirements(0, 0, 0x30000);
    m(
        "M3-7: Alignment 0x30000",
        0,
        P,
        &mut [ext_address(&mut a)],
        fails(E_PARAM),
    );
    let mut errs = Vec::new();
    for shift in 0..usize::BITS {
        let mut a = requirements(0, 0, 1usize << shift);
        let mut params = [ext_address(&mut a)];
        let r = soft(
            &mut errs,
            &format!("M3-7: Alignment {:#x}", 1usize << shift),
            0usize,
            fails(E_PARAM),
            || unsafe {
                MapViewOfFile3(
                    h,
                    GetCurrentProcess(),
                    null(),
                    0,
                    P,
                    0,
                    RW,
                    params.as_mut_ptr(),
                    1,
                )
                .Value as usize
            },
        );
        if r != 0 {
            drop(View(r));
        }
    }
    no_errors(errs);
}

/// M3-8: MapViewOfFile3FromApp follows MapViewOfFile3, execute protections included.
#[test]
fn m3_8_map_view_of_file3_from_app() {
    let _t = shared();
    let s = pagefile("M3-8", XRW, P as u64);
    let r = check("M3-8: PAGE_EXECUTE_READWRITE", 0usize, OK, || unsafe {
        MapViewOfFile3FromApp(s.h(), null_mut(), null(), 0, 0, 0, XRW, null_mut(), 0).Value as usize
    });
    let v = View(r);
    assert_eq!(vq(v.at(0)).ap, XRW, "M3-8");
    check(
        "M3-8: a bad process handle",
        0usize,
        fails(E_HANDLE),
        || unsafe {
            MapViewOfFile3FromApp(s.h(), BOGUS, null(), 0, 0, 0, XRW, null_mut(), 0).Value as usize
        },
    );
    check("M3-8: offset P", 0usize, fails(E_ALIGN), || unsafe {
        MapViewOfFile3FromApp(
            s.h(),
            null_mut(),
            null(),
            P as u64,
            0,
            0,
            XRW,
            null_mut(),
            0,
        )
        .Value as usize
    });
}

/// M3-9: MapViewOfFileNuma2 takes the offset before the base address; the node is ignored.
#[test]
fn m3_9_map_view_of_file_numa2() {
    let _t = shared();
    let s = pagefile("M3-9", RW, 2 * G as u64);
    let w = map("M3-9", s.h(), WRITE, 0, 0, OK).unwrap();
    w.write(G + 9, 99);
    for node in [NUMA_NO_PREFERRED_NODE, 0] {
        let r = check(&format!("M3-9: node {node:#x}"), 0usize, OK, || unsafe {
            MapViewOfFileNuma2(s.h(), GetCurrentProcess(), G as u64, null(), 0, 0, RO, node).Value
                as usize
        });
        let v = View(r);
        assert_eq!(
            (v.read(9), vq(v.at(0)).rs, vq(v.at(0)).ap),
            (99, G, RO),
            "M3-9: a view of offset G"
        );
    }
    check("M3-9: offset P", 0usize, fails(E_ALIGN), || unsafe {
        MapViewOfFileNuma2(s.h(), null_mut(), P as u64, null(), 0, 0, RO, 0).Value as usize
    });
}

// ---------------------------------------------------------------------------------------------
// U1–U7: UnmapViewOfFile, UnmapViewOfFileEx, UnmapViewOfFile2
// ---------------------------------------------------------------------------------------------

/// U1, U3: any address inside a view unmaps the whole view (K:1214-1230); the range is then
/// free, with Protect PAGE_NOACCESS (K:1113-1123).
#[test]
fn u1_u3_any_address_unmaps_the_whole_view() {
    // Asserts that an address is free: alone, or another test may allocate there.
    let _t = alone();
    let s = pagefile("U1", RO, 0x3000);
    for off in [0, 100, 0x1000, 0x1064, 0x2fff] {
        let v = map("U1", s.h(), READ, 0, 0x3000, OK).unwrap().into_raw();
        check(
            &format!("U1: UnmapViewOfFile(view+{off:#x})"),
            FALSE,
            OK,
            || unsafe { UnmapViewOfFile(mva(v + off)) },
        );
        for page in [0, P, 2 * P] {
            assert_free(
                &format!("U1/U3: view+{page:#x} after unmapping at +{off:#x}"),
                v + page,
            );
        }
    }
}

/// U2: an address that is not in a view fails with ERROR_INVALID_ADDRESS (K:1034-1050).
#[test]
fn u2_not_a_view() {
    let _t = shared();
    let m = Mem(va("U2", 0, G, MEM_COMMIT, RO, OK));
    for (what, addr) in [
        ("VirtualAlloc memory", m.0),
        ("VirtualAlloc memory +0x3000", m.0 + 0x3000),
        ("0xdeadbeef", 0xdead_beef),
        ("NULL", 0),
        ("free memory", 0x2000),
    ] {
        check(
            &format!("U2: UnmapViewOfFile of {what}"),
            FALSE,
            fails(E_ADDR),
            || unsafe { UnmapViewOfFile(mva(addr)) },
        );
        check(
            &format!("U2: UnmapViewOfFileEx of {what}"),
            FALSE,
            fails(E_ADDR),
            || unsafe { UnmapViewOfFileEx(mva(addr), 0) },
        );
    }
    let ph = Mem(placeholder("U2", G));
    check(
        "U2: UnmapViewOfFile of a placeholder",
        FALSE,
        fails(E_ADDR),
        || unsafe { UnmapViewOfFile(mva(ph.0)) },
    );
}

/// U4: unmapping the last view of a section whose handles are closed destroys it; the
/// unmapping succeeds and the range is free.
#[test]
fn u4_last_view_of_a_closed_section() {
    // Asserts that an address is free: alone, or another test may allocate there.
    let _t = alone();
    let s = pagefile("U4", RW, 0x2000);
    let v = map("U4", s.h(), WRITE, 0, 0, OK).unwrap();
    let w = map("U4", s.h(), WRITE, 0, 0, OK).unwrap();
    drop(s);
    v.write(0, 1);
    assert_eq!(w.read(0), 1, "U4: both views still show the section");
    let at = v.at(0);
    v.unmap("U4");
    assert_free("U4", at);
    let at = w.at(0);
    w.unmap("U4: the last view");
    assert_free("U4", at);
}

/// U5: UnmapFlags: 0, MEM_UNMAP_WITH_TRANSIENT_BOOST, MEM_PRESERVE_PLACEHOLDER or both;
/// anything else fails with 87 (KB:326-327 for MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER).
#[test]
fn u5_unmap_flags() {
    // Asserts that an address is free: alone, or another test may allocate there.
    let _t = alone();
    let s = pagefile("U5", RW, G as u64);
    for flags in [
        4,
        0x10,
        MEM_RELEASE,
        MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
        MEM_DECOMMIT,
        0x8000_0000,
    ] {
        let v = map("U5", s.h(), WRITE, 0, 0, OK).unwrap();
        check(
            &format!("U5: UnmapViewOfFileEx flags {flags:#x}"),
            FALSE,
            fails(E_PARAM),
            || unsafe { UnmapViewOfFileEx(mva(v.at(0)), flags) },
        );
        check(
            &format!("U5: UnmapViewOfFile2 flags {flags:#x}"),
            FALSE,
            fails(E_PARAM),
            || unsafe { UnmapViewOfFile2(GetCurrentProcess(), mva(v.at(0)), flags) },
        );
        assert_eq!(vq(v.at(0)).ty, MEM_MAPPED, "U5: the view is still there");
    }
    for flags in [0, MEM_UNMAP_WITH_TRANSIENT_BOOST] {
        let v = map("U5", s.h(), WRITE, 0, 0, OK).unwrap().into_raw();
        check(
            &format!("U5: UnmapViewOfFileEx flags {flags:#x}"),
            FALSE,
            OK,
            || unsafe { UnmapViewOfFileEx(mva(v), flags) },
        );
        assert_free("U5", v);
        let v = map("U5", s.h(), WRITE, 0, 0, OK).unwrap().into_raw();
        check(
            &format!("U5: UnmapViewOfFile2 flags {flags:#x}"),
            FALSE,
            OK,
            || unsafe { UnmapViewOfFile2(GetCurrentProcess(), mva(v), flags) },
        );
        assert_free("U5", v);
    }
}

/// U6: UnmapViewOfFile2's process must be GetCurrentProcess(); NULL fails with 6 (KB:323-324).
#[test]
fn u6_unmap2_process() {
    let _t = shared();
    let s = pagefile("U6", RW, G as u64);
    let v = map("U6", s.h(), WRITE, 0, 0, OK).unwrap();
    for (what, p) in [
        ("NULL", null_mut()),
        ("a section handle", s.h()),
        ("a made-up handle", BOGUS),
    ] {
        check(
            &format!("U6: UnmapViewOfFile2({what})"),
            FALSE,
            fails(E_HANDLE),
            || unsafe { UnmapViewOfFile2(p, mva(v.at(0)), 0) },
        );
    }
    assert_eq!(vq(v.at(0)).ty, MEM_MAPPED, "U6: the view is still there");
}

/// U7: MEM_PRESERVE_PLACEHOLDER on a view that did not replace a placeholder → 487
/// (KB:294-299); on one that did, the range becomes a placeholder again (KB:331-339), which
/// UnmapViewOfFile no longer takes (KB:341-342); without the flag such a range becomes free.
#[test]
fn u7_preserve_placeholder() {
    // Asserts that an address is free: alone, or another test may allocate there.
    let _t = alone();
    let size = 0x80000;
    let s = pagefile("U7", RW, size as u64);
    let v = map3("U7", s.h(), null_mut(), 0, 0, size, 0, RW, &mut [], OK).unwrap();
    vf(
        "U7/VF2: MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER on a view",
        v.at(0),
        size,
        MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
        fails(E_PARAM),
    );
    check(
        "U7: MEM_PRESERVE_PLACEHOLDER on an ordinary view",
        FALSE,
        fails(E_ADDR),
        || unsafe { UnmapViewOfFile2(GetCurrentProcess(), mva(v.at(0)), MEM_PRESERVE_PLACEHOLDER) },
    );
    check(
        "U7: MEM_PRESERVE_PLACEHOLDER on an ordinary view (Ex)",
        FALSE,
        fails(E_ADDR),
        || unsafe {
            UnmapViewOfFileEx(
                mva(v.at(0)),
                MEM_PRESERVE_PLACEHOLDER | MEM_UNMAP_WITH_TRANSIENT_BOOST,
            )
        },
    );
    v.write(0, 5);
    check("U7: then unmapped plainly", FALSE, OK, || unsafe {
        UnmapViewOfFile2(GetCurrentProcess(), mva(v.into_raw()), 0)
    });

    let ph = placeholder("U7", size);
    let v = map3(
        "U7",
        s.h(),
        null_mut(),
        ph,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    assert_eq!(v.read(0), 5, "U7: the section's data");
    check("U7: back to a placeholder", FALSE, OK, || unsafe {
        UnmapViewOfFile2(
            GetCurrentProcess(),
            mva(v.into_raw()),
            MEM_PRESERVE_PLACEHOLDER,
        )
    });
    assert_eq!(
        vq(ph),
        Region {
            base: ph,
            ab: ph,
            ap: NA,
            rs: size,
            st: MEM_RESERVE,
            pr: 0,
            ty: MEM_PRIVATE
        },
        "U7: the placeholder again"
    );
    assert!(
        faults(ph, false),
        "U7: the view's contents are gone from the placeholder"
    );
    check(
        "U7: a placeholder is no view",
        FALSE,
        fails(E_ADDR),
        || unsafe { UnmapViewOfFile2(GetCurrentProcess(), mva(ph), MEM_PRESERVE_PLACEHOLDER) },
    );
    check(
        "U7: a placeholder is no view (UnmapViewOfFile)",
        FALSE,
        fails(E_ADDR),
        || unsafe { UnmapViewOfFile(mva(ph)) },
    );
    // Mapped again; the section handle closed meanwhile; BOOST | PRESERVE works the same.
    let v = map3(
        "U7",
        s.h(),
        null_mut(),
        ph,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    drop(s);
    assert_eq!(v.read(0), 5, "U7: mapped again");
    vf(
        "U7/VF2: MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER on a placeholder view",
        v.at(0),
        size,
        MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
        fails(E_PARAM),
    );
    check("U7: BOOST|PRESERVE", FALSE, OK, || unsafe {
        UnmapViewOfFile2(
            GetCurrentProcess(),
            mva(v.into_raw()),
            MEM_UNMAP_WITH_TRANSIENT_BOOST | MEM_PRESERVE_PLACEHOLDER,
        )
    });
    assert_eq!(
        (vq(ph).st, vq(ph).ty, vq(ph).rs),
        (MEM_RESERVE, MEM_PRIVATE, size),
        "U7"
    );
    // Without MEM_PRESERVE_PLACEHOLDER the range becomes free.
    let s = pagefile("U7", RW, size as u64);
    let v = map3(
        "U7",
        s.h(),
        null_mut(),
        ph,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    v.unmap("U7: a placeholder view unmapped plainly");
    assert_free("U7: the range is free", ph);
}

// ---------------------------------------------------------------------------------------------
// FV1, FV2: FlushViewOfFile on pagefile views
// ---------------------------------------------------------------------------------------------

/// FV1/FV2: on a pagefile view FlushViewOfFile succeeds and does nothing (size 0 = to the
/// view's end, unaligned addresses rounded down); on committed private memory too; on free
/// memory → 487; a range past the view's end → 87.
#[test]
fn fv1_fv2_flush_pagefile_views() {
    let _t = shared();
    let s = pagefile("FV2", RW, 2 * P as u64);
    let v = map("FV2", s.h(), WRITE, 0, 0, OK).unwrap();
    v.write(5, 5);
    for (addr, size) in [
        (v.at(0), 0),
        (v.at(0), P),
        (v.at(5), 10),
        (v.at(P + 1), 0),
        (v.at(0), 2 * P),
    ] {
        check(
            &format!("FV2: FlushViewOfFile({addr:#x}, {size:#x})"),
            FALSE,
            OK,
            || unsafe { FlushViewOfFile(addr as *const c_void, size) },
        );
    }
    assert_eq!(v.read(5), 5, "FV2: nothing changes");
    check(
        "FV2: a range past the view's end",
        FALSE,
        fails(E_PARAM),
        || unsafe { FlushViewOfFile(v.at(0) as *const c_void, 3 * P) },
    );
    let m = Mem(va("FV2", 0, G, MEM_COMMIT, RW, OK));
    check("FV2: committed private memory", FALSE, OK, || unsafe {
        FlushViewOfFile(m.0 as *const c_void, P)
    });
    check("FV2: free memory", FALSE, fails(E_ADDR), || unsafe {
        FlushViewOfFile(0x2000 as *const c_void, P)
    });
}

// ---------------------------------------------------------------------------------------------
// VQ1–VQ4: VirtualQuery on views
// ---------------------------------------------------------------------------------------------

/// VQ1: the fields for an address in a view; RegionSize runs over pages of equal State and
/// Protect and never past the view's end.
#[test]
fn vq1_fields() {
    let _t = shared();
    let s = pagefile("VQ1", RW, 3 * P as u64);
    let v = map("VQ1", s.h(), WRITE, 0, 0, OK).unwrap();
    let b = v.at(0);
    assert_eq!(
        vq(b + 0x1234),
        mapped(b + P, b, RW, 2 * P, RW),
        "VQ1: view+0x1234"
    );
    vp("VQ1", b + P, P, RO, OK);
    assert_eq!(vq(b), mapped(b, b, RW, P, RW), "VQ1: page 0");
    assert_eq!(
        vq(b + P + 5),
        mapped(b + P, b, RW, P, RO),
        "VQ1: page 1 after VirtualProtect"
    );
    assert_eq!(
        vq(b + 2 * P),
        mapped(b + 2 * P, b, RW, P, RW),
        "VQ1: page 2 (not past the view)"
    );
    check(
        "VQ1: VirtualQueryEx(GetCurrentProcess())",
        0usize,
        OK,
        || {
            let mut m: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
            unsafe { VirtualQueryEx(GetCurrentProcess(), b as *const c_void, &mut m, MBI_LEN) }
        },
    );
}

/// VQ2: a SEC_COMMIT view starts committed with Protect = AllocationProtect (K:955-963); a
/// SEC_RESERVE view starts reserved, Protect 0 (K:869-892).
#[test]
fn vq2_initial_state() {
    let _t = shared();
    let size = 0x100000;
    let c = pagefile("VQ2", RW | SEC_COMMIT, size as u64);
    let r = pagefile("VQ2", RW | SEC_RESERVE, size as u64);
    for access in [WRITE, READ, COPY, 0] {
        let prot = lookup(&ACCESS_TABLE, access);
        let v = map("VQ2", c.h(), access, 0, 0, OK).unwrap();
        assert_eq!(
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), prot, size, prot),
            "VQ2: SEC_COMMIT, access {access:#x}"
        );
        let v = map("VQ2", r.h(), access, 0, 0, OK).unwrap();
        assert_eq!(
            vq(v.at(0)),
            mapped_reserved(v.at(0), v.at(0), prot, size),
            "VQ2: SEC_RESERVE, access {access:#x}"
        );
    }
}

/// VQ3: SEC_NOCACHE / SEC_WRITECOMBINE put PAGE_NOCACHE / PAGE_WRITECOMBINE into
/// AllocationProtect and every committed page's Protect, and a commit or VirtualProtect with
/// another protection keeps the modifier (K:990-1027: 0x204, then 0x202).
#[test]
fn vq3_nocache_and_writecombine_views() {
    let _t = shared();
    let size = 0x40000;
    for (sec, m) in [
        (SEC_NOCACHE, PAGE_NOCACHE),
        (SEC_WRITECOMBINE, PAGE_WRITECOMBINE),
    ] {
        let s = pagefile("VQ3", RW | SEC_COMMIT | sec, size as u64);
        let v = map("VQ3", s.h(), WRITE, 0, 0, OK).unwrap();
        let b = v.at(0);
        assert_eq!(
            vq(b),
            mapped(b, b, RW | m, size, RW | m),
            "VQ3: SEC_COMMIT|{sec:#x} view"
        );
        assert_eq!(va("VQ3", b, 0x10000, MEM_COMMIT, RO, OK), b);
        assert_eq!(
            vq(b),
            mapped(b, b, RW | m, 0x10000, RO | m),
            "VQ3: after MEM_COMMIT PAGE_READONLY ({sec:#x})"
        );
        let old = vp("VQ3", b + 0x10000, P, RO, OK);
        assert_eq!(
            old,
            RW | m,
            "VQ3: the old protection has the modifier ({sec:#x})"
        );
        assert_eq!(
            vq(b + 0x10000).pr,
            RO | m,
            "VQ3: after VirtualProtect PAGE_READONLY ({sec:#x})"
        );
        v.write(0x20000, 1);
        assert_eq!(v.read(0x20000), 1);
    }
}

/// VQ4: adjacent views are separate regions, even of adjacent parts of one section
/// (KB:309-321); a view does not merge with neighbouring private memory.
#[test]
fn vq4_adjacent_views_are_separate_regions() {
    let _t = shared();
    let s = pagefile("VQ4", RW, 2 * G as u64);
    let ph = placeholder("VQ4", 4 * G);
    split("VQ4", ph, G);
    split("VQ4", ph + G, G);
    split("VQ4", ph + 2 * G, G);
    let v1 = map3(
        "VQ4",
        s.h(),
        null_mut(),
        ph,
        0,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    let v2 = map3(
        "VQ4",
        s.h(),
        null_mut(),
        ph + G,
        G as u64,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    assert_eq!(vq(ph), mapped(ph, ph, RW, G, RW), "VQ4: the first view");
    assert_eq!(
        vq(ph + G),
        mapped(ph + G, ph + G, RW, G, RW),
        "VQ4: the second view"
    );
    // Private memory, same protection, right after the second view.
    let p = check(
        "VQ4: private memory in the third placeholder",
        0usize,
        OK,
        || unsafe {
            VirtualAlloc2(
                null_mut(),
                (ph + 2 * G) as *const c_void,
                G,
                MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
                RW,
                null_mut(),
                0,
            ) as usize
        },
    );
    let p = Mem(p);
    va("VQ4", p.0, G, MEM_COMMIT, RW, OK);
    assert_eq!(
        vq(ph + G),
        mapped(ph + G, ph + G, RW, G, RW),
        "VQ4: the view next to private memory"
    );
    let r = vq(p.0);
    assert_eq!(
        (r.ab, r.rs, r.ty),
        (p.0, G, MEM_PRIVATE),
        "VQ4: the private memory next to a view"
    );
    drop((v1, v2, p));
    vf("VQ4", ph + 3 * G, 0, MEM_RELEASE, OK);
}

// ---------------------------------------------------------------------------------------------
// AC, VA1–VA4, RS1, VF1, VF2, VP1–VP3: VirtualAlloc, MEM_RESET, VirtualFree, VirtualProtect
// ---------------------------------------------------------------------------------------------

/// The views of Wine's test_mapping for pagefile sections: every section of
/// [`mapping_sections`] and every desired access it allows. Calls `f(label, view protection,
/// view)` for each.
fn for_each_view(size: u64, mut f: impl FnMut(&str, u32, View)) {
    for (label, s, granted) in mapping_sections(size) {
        for &(access, prot) in ACCESS_TABLE.iter() {
            if !may_map(granted, prot) {
                continue;
            }
            let v = map("setup", s.h(), access, 0, 0, OK).unwrap();
            f(&format!("{label}, access {access:#x}"), prot, v);
        }
    }
}

/// AC, VA2: VirtualAlloc(MEM_COMMIT) on a pagefile view succeeds exactly with the protections
/// compatible with the view, and sets that page's protection (K:4241-4268); PAGE_WRITECOPY
/// and PAGE_EXECUTE_WRITECOPY are valid here; invalid values → 87; the result is the
/// page-rounded address.
#[test]
fn ac_va2_commit_on_pagefile_views() {
    let _t = shared();
    let mut errs = Vec::new();
    for_each_view(2 * P as u64, |label, view, v| {
        for prot in PAGE_PROTS {
            let ctx = format!("AC/VA2: {label}: MEM_COMMIT {prot:#x} on a {view:#x} view");
            let want = if compatible(view, prot) {
                OK
            } else {
                fails(E_PARAM)
            };
            let r = soft(&mut errs, &ctx, 0usize, want, || unsafe {
                VirtualAlloc(v.at(0x123) as *const c_void, P - 0x123, MEM_COMMIT, prot) as usize
            });
            if r != 0 {
                soft_eq(&mut errs, &format!("{ctx}: result"), r, v.at(0));
                let q = vq(v.at(0));
                // Page 1 keeps the view's protection: one region when they are equal.
                let rs = if prot == view { 2 * P } else { P };
                soft_eq(
                    &mut errs,
                    &format!("{ctx}: VirtualQuery (Pr, AP, RS)"),
                    (q.pr, q.ap, q.rs),
                    (prot, view, rs),
                );
            }
        }
        for bad in [0, 0x3, 0x11, 0x300] {
            soft(
                &mut errs,
                &format!("VA2: {label}: MEM_COMMIT {bad:#x}"),
                0usize,
                fails(E_PARAM),
                || unsafe { VirtualAlloc(v.at(0) as *const c_void, P, MEM_COMMIT, bad) as usize },
            );
        }
    });
    no_errors(errs);
}

/// VA2: on a SEC_COMMIT view MEM_COMMIT works like VirtualProtect (K:965-976).
#[test]
fn va2_commit_on_a_sec_commit_view() {
    let _t = shared();
    let s = pagefile("VA2", RW | SEC_COMMIT, 0x40000);
    let v = map("VA2", s.h(), WRITE, 0, 0, OK).unwrap();
    v.write(0x10, 3);
    assert_eq!(va("VA2", v.at(0), 0x10000, MEM_COMMIT, RO, OK), v.at(0));
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RW, 0x10000, RO),
        "VA2"
    );
    assert_eq!(v.read(0x10), 3, "VA2: the data stays");
    assert!(faults(v.at(0), true), "VA2: the page is read-only now");
    assert!(
        !faults(v.at(0x10000), true),
        "VA2: the next page is still writable"
    );
}

/// VA3, SR1: for a SEC_RESERVE section a commit belongs to the section: every view sees the
/// pages committed, with its own protection (K:908-925); views mapped later too; the data is
/// shared.
#[test]
fn va3_sr1_commit_belongs_to_the_section() {
    let _t = shared();
    let size = 0x40000;
    let s = pagefile("VA3", RW | SEC_RESERVE, size as u64);
    let a = map("VA3", s.h(), WRITE, 0, 0, OK).unwrap();
    let b = map("VA3", s.h(), WRITE, 0, 0, OK).unwrap();
    let r = map("VA3", s.h(), READ, 0, 0, OK).unwrap();
    assert_ne!(a.at(0), b.at(0));
    assert_eq!(
        va(
            "VA3: commit through view A",
            a.at(0),
            0x10000,
            MEM_COMMIT,
            RO,
            OK
        ),
        a.at(0)
    );
    assert_eq!(
        vq(a.at(0)),
        mapped(a.at(0), a.at(0), RW, 0x10000, RO),
        "VA3: view A"
    );
    assert_eq!(
        vq(b.at(0)),
        mapped(b.at(0), b.at(0), RW, 0x10000, RW),
        "VA3: view B shows its own protection"
    );
    assert_eq!(
        vq(r.at(0)),
        mapped(r.at(0), r.at(0), RO, 0x10000, RO),
        "VA3: a read-only view"
    );
    assert_eq!(
        vq(b.at(0x10000)),
        mapped_reserved(b.at(0x10000), b.at(0), RW, size - 0x10000),
        "VA3: the rest is reserved"
    );
    b.write(0x20, 0x5a);
    assert_eq!(
        (a.read(0x20), r.read(0x20)),
        (0x5a, 0x5a),
        "VA3: shared data"
    );
    let c = map("VA3: a later view", s.h(), COPY, 0, 0, OK).unwrap();
    assert_eq!(
        vq(c.at(0)),
        mapped(c.at(0), c.at(0), WC, 0x10000, WC),
        "VA3: a later view sees the commit"
    );
    assert_eq!(c.read(0x20), 0x5a);
    // A commit through a view at an offset shows at that offset in the others.
    let o = map("VA3", s.h(), WRITE, G as u64, 0, OK).unwrap();
    va(
        "VA3: commit through a view of offset G",
        o.at(P),
        P,
        MEM_COMMIT,
        RW,
        OK,
    );
    assert_eq!(
        vq(a.at(G + P)),
        mapped(a.at(G + P), a.at(0), RW, P, RW),
        "VA3: view A at G+P"
    );
}

/// VA3, SR1: a commit made in another process (a forked child, through its copy of the view)
/// shows in this process's views: VirtualQuery reports the pages committed with the view's
/// own protection, and they can be read and written without a fault.
#[test]
fn va3_sr1_commit_in_another_process() {
    let _t = shared();
    let s = pagefile("VA3", RW | SEC_RESERVE, 4 * P as u64);
    let v = map("VA3", s.h(), WRITE, 0, 0, OK).unwrap();
    let r = map("VA3", s.h(), READ, 0, 0, OK).unwrap();
    let (vb, rb) = (v.at(0), r.at(0));
    let ok = in_forked_child(|| {
        va(
            "VA3 (child): commit through the inherited view",
            vb + P,
            2 * P,
            MEM_COMMIT,
            RO,
            OK,
        );
        vp("VA3 (child)", vb + P, 2 * P, RW, OK);
        unsafe {
            std::ptr::write_volatile((vb + P) as *mut u8, 0x42);
            std::ptr::write_volatile((vb + 2 * P) as *mut u8, 0x43);
        }
    });
    assert!(ok, "VA3: the forked child failed");
    assert_eq!(
        vq(vb),
        mapped_reserved(vb, vb, RW, P),
        "VA3: page 0 is still reserved"
    );
    assert_eq!(
        vq(vb + P),
        mapped(vb + P, vb, RW, 2 * P, RW),
        "VA3: the pages committed in the child"
    );
    assert_eq!(
        vq(rb + P),
        mapped(rb + P, rb, RO, 2 * P, RO),
        "VA3: another view, its own protection"
    );
    assert!(
        !faults(vb + P, false),
        "VA3: the committed page is readable here"
    );
    assert_eq!(v.read(P), 0x42, "VA3: the child's data");
    assert!(
        !faults(vb + P, true),
        "VA3: the committed page is writable here"
    );
    assert!(!faults(rb + 2 * P, false), "VA3: the committed page reads");
    assert_eq!(
        r.read(2 * P),
        0x43,
        "VA3: the child's data through the other view"
    );
    assert!(faults(vb + 3 * P, false), "SR3: page 3 is still reserved");
}

/// VA3: a page committed in another process can be touched at once, before any VirtualQuery
/// (the fault handler finds it committed).
#[test]

fn va3_commit_in_another_process_then_touch() {
    let _t = shared();
    let s = pagefile("VA3", RW | SEC_RESERVE, 2 * P as u64);
    let v = map("VA3", s.h(), WRITE, 0, 0, OK).unwrap();
    let vb = v.at(0);
    let ok = in_forked_child(|| {
        va("VA3 (child)", vb + P, P, MEM_COMMIT, RW, OK);
        unsafe { std::ptr::write_volatile((vb + P) as *mut u8, 0x44) };
    });
    assert!(ok, "VA3: the forked child failed");
    assert!(
        !faults(vb + P, false),
        "VA3: a page committed elsewhere is readable here at once"
    );
    assert_eq!(v.read(P), 0x44, "VA3: and shows the data");
    assert!(!faults(vb + P, true), "VA3: and is writable");
    assert_eq!(vq(vb + P).st, MEM_COMMIT);
}

/// VA4: the range must lie inside one view (487); MEM_RESERVE in a view → 487.
#[test]
fn va4_range_inside_one_view() {
    let _t = shared();
    let s = pagefile("VA4", RW | SEC_RESERVE, 2 * P as u64);
    let v = map("VA4", s.h(), WRITE, 0, 0, OK).unwrap();
    va(
        "VA4: a range leaving the view",
        v.at(P),
        2 * P,
        MEM_COMMIT,
        RW,
        fails(E_ADDR),
    );
    va(
        "VA4: MEM_RESERVE in a view",
        v.at(0),
        P,
        MEM_RESERVE,
        RW,
        fails(E_ADDR),
    );
    va(
        "VA4: MEM_RESERVE|MEM_COMMIT in a view",
        v.at(0),
        P,
        MEM_RESERVE | MEM_COMMIT,
        RW,
        fails(E_ADDR),
    );
    assert_eq!(vq(v.at(0)).st, MEM_RESERVE, "VA4: nothing was committed");
    // Across two adjacent views.
    let t = pagefile("VA4", RW | SEC_RESERVE, G as u64);
    let ph = placeholder("VA4", 2 * G);
    split("VA4", ph, G);
    let v1 = map3(
        "VA4",
        t.h(),
        null_mut(),
        ph,
        0,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    let v2 = map3(
        "VA4",
        t.h(),
        null_mut(),
        ph + G,
        0,
        G,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    va(
        "VA4: a range across two views",
        ph + G - P,
        2 * P,
        MEM_COMMIT,
        RW,
        fails(E_ADDR),
    );
    drop((v1, v2));
}

/// RS1: MEM_RESET on a pagefile view (SEC_COMMIT or SEC_RESERVE, partly committed) succeeds
/// and returns the address (K:927-928, K:978-979).
#[test]
fn rs1_mem_reset_on_pagefile_views() {
    let _t = shared();
    let size = 0x40000;
    for sec in [SEC_COMMIT, SEC_RESERVE] {
        let s = pagefile("RS1", RW | sec, size as u64);
        let v = map("RS1", s.h(), WRITE, 0, 0, OK).unwrap();
        va("RS1", v.at(0), 0x10000, MEM_COMMIT, RO, OK);
        assert_eq!(
            va(
                &format!("RS1: MEM_RESET on a {sec:#x} view"),
                v.at(0),
                size,
                MEM_RESET,
                RO,
                OK
            ),
            v.at(0)
        );
        assert_eq!(
            va(
                &format!("RS1: MEM_RESET of a part ({sec:#x})"),
                v.at(P),
                P,
                MEM_RESET,
                NA,
                OK
            ),
            v.at(P)
        );
    }
}

/// VF1: views cannot be decommitted (87), SEC_COMMIT and SEC_RESERVE alike (K:930-932,
/// K:981-983); VF2: MEM_RELEASE on a view → 87.
#[test]
fn vf1_vf2_virtual_free_on_views() {
    let _t = shared();
    for sec in [SEC_COMMIT, SEC_RESERVE] {
        let s = pagefile("VF1", RW | sec, 0x20000);
        let v = map("VF1", s.h(), WRITE, 0, 0, OK).unwrap();
        va("VF1", v.at(0), 0x10000, MEM_COMMIT, RW, OK);
        v.write(0, 1);
        vf(
            &format!("VF1: MEM_DECOMMIT of a {sec:#x} view"),
            v.at(0),
            0x10000,
            MEM_DECOMMIT,
            fails(E_PARAM),
        );
        vf(
            &format!("VF1: MEM_DECOMMIT of a whole {sec:#x} view"),
            v.at(0),
            0,
            MEM_DECOMMIT,
            fails(E_PARAM),
        );
        vf(
            &format!("VF2: MEM_RELEASE of a {sec:#x} view"),
            v.at(0),
            0,
            MEM_RELEASE,
            fails(E_PARAM),
        );
        vf(
            &format!("VF2: MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER of a {sec:#x} view"),
            v.at(0),
            0x20000,
            MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
            fails(E_PARAM),
        );
        assert_eq!(
            (vq(v.at(0)).st, v.read(0)),
            (MEM_COMMIT, 1),
            "VF1: nothing changed"
        );
        check(
            "VF1: VirtualFreeEx(GetCurrentProcess()) too",
            FALSE,
            fails(E_PARAM),
            || unsafe {
                VirtualFreeEx(GetCurrentProcess(), v.at(0) as *mut c_void, P, MEM_DECOMMIT)
            },
        );
    }
}

/// VP1, VP2: VirtualProtect on view pages succeeds exactly with protections compatible with
/// the view's AllocationProtect, else 87 (K:4204-4234); *lpflOldProtect is the previous
/// protection; AllocationProtect never changes.
#[test]
fn vp1_vp2_protect_on_views() {
    let _t = shared();
    let mut errs = Vec::new();
    for_each_view(2 * P as u64, |label, view, v| {
        let mut prev = view;
        for prot in PAGE_PROTS {
            let ctx = format!("VP1: {label}: VirtualProtect {prot:#x} on a {view:#x} view");
            let want = if compatible(view, prot) {
                OK
            } else {
                fails(E_PARAM)
            };
            let mut old = SENTINEL;
            let r = soft(&mut errs, &ctx, FALSE, want, || unsafe {
                VirtualProtect(v.at(0) as *const c_void, P, prot, &mut old)
            });
            if r != FALSE {
                soft_eq(&mut errs, &format!("VP2: {ctx}: old protection"), old, prev);
                let q = vq(v.at(0));
                let rs = if prot == view { 2 * P } else { P };
                soft_eq(
                    &mut errs,
                    &format!("{ctx}: VirtualQuery (Pr, AP, RS)"),
                    (q.pr, q.ap, q.rs),
                    (prot, view, rs),
                );
                prev = prot;
            }
        }
    });
    no_errors(errs);
}

/// VP1: the K:3656-3688 table of 32 protection values on a view mapped READ|WRITE|EXECUTE of
/// a PAGE_EXECUTE_READWRITE section (K:3778-3859): the eight base protections work, the
/// combinations fail with 87; a written WRITECOPY page reports READWRITE (CW1).
#[test]
fn vp1_protection_values_on_an_rwx_view() {
    let _t = shared();
    let s = pagefile("VP1", XRW, P as u64);
    let mut prots: Vec<u32> = (0..0x10).collect();
    prots.extend((1..0x10).map(|i| i << 4));
    let mut errs = Vec::new();
    for prot in prots {
        let ctx = format!("VP1: VirtualProtect {prot:#x}");
        let v = map("VP1", s.h(), READ | WRITE | FX, 0, 0, OK).unwrap();
        let mut old = SENTINEL;
        unsafe { VirtualProtect(v.at(0) as *const c_void, P, NA, &mut old) };
        soft_eq(
            &mut errs,
            &format!("{ctx}: the view's first old protection"),
            old,
            XRW,
        );
        let valid = PAGE_PROTS.contains(&prot);
        let r = soft(
            &mut errs,
            &ctx,
            FALSE,
            if valid { OK } else { fails(E_PARAM) },
            || unsafe { VirtualProtect(v.at(0) as *const c_void, P, prot, &mut old) },
        );
        if r == FALSE {
            continue;
        }
        soft_eq(&mut errs, &format!("{ctx}: old"), old, NA);
        soft_eq(
            &mut errs,
            &format!("{ctx}: VirtualQuery"),
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), XRW, P, prot),
        );
        if class(prot).1 || prot == WC || prot == XWC {
            v.write(0, 0xfe);
            soft_eq(
                &mut errs,
                &format!("CW1: {ctx}: after a write"),
                vq(v.at(0)).pr,
                written(prot),
            );
        }
        unsafe { VirtualProtect(v.at(0) as *const c_void, P, NA, &mut old) };
        soft_eq(
            &mut errs,
            &format!("CW1: {ctx}: the old protection after the write"),
            old,
            if class(prot).1 || prot == WC || prot == XWC {
                written(prot)
            } else {
                prot
            },
        );
    }
    no_errors(errs);
}

/// VP1 examples: a READONLY view refuses PAGE_READWRITE (K:3756-3759) and accepts
/// PAGE_WRITECOPY (K:3752-3755).
#[test]
fn vp1_examples() {
    let _t = shared();
    let s = pagefile("VP1", RW, 2 * P as u64);
    let v = map("VP1", s.h(), READ, 0, 0, OK).unwrap();
    vp(
        "VP1: PAGE_READWRITE on a READONLY view",
        v.at(0),
        P,
        RW,
        fails(E_PARAM),
    );
    vp(
        "VP1: PAGE_EXECUTE_READ on a READONLY view",
        v.at(0),
        P,
        XR,
        fails(E_PARAM),
    );
    assert_eq!(
        vp("VP1: PAGE_WRITECOPY on a READONLY view", v.at(0), P, WC, OK),
        RO
    );
    assert_eq!(vp("VP1: PAGE_NOACCESS", v.at(0), P, NA, OK), WC);
    assert_eq!(vq(v.at(0)).ap, RO, "VP2: AllocationProtect never changes");
    let mut old = 0;
    check(
        "VP1: VirtualProtectEx(GetCurrentProcess())",
        FALSE,
        OK,
        || unsafe {
            VirtualProtectEx(
                GetCurrentProcess(),
                v.at(P) as *const c_void,
                P,
                NA,
                &mut old,
            )
        },
    );
    assert_eq!(old, RO);
}

/// VP2: *lpflOldProtect is the first page's protection before the call.
#[test]
fn vp2_old_protection_is_the_first_pages() {
    let _t = shared();
    let s = pagefile("VP2", RW, 3 * P as u64);
    let v = map("VP2", s.h(), WRITE, 0, 0, OK).unwrap();
    vp("VP2", v.at(0), P, RO, OK);
    vp("VP2", v.at(P), P, NA, OK);
    assert_eq!(vp("VP2: three pages", v.at(0), 3 * P, RW, OK), RO, "VP2");
    assert_eq!(vq(v.at(0)), mapped(v.at(0), v.at(0), RW, 3 * P, RW), "VP2");
}

/// VP3: reserved pages of a SEC_RESERVE view, or a range leaving the view → 487.
#[test]
fn vp3_reserved_pages_and_ranges_leaving_the_view() {
    let _t = shared();
    let s = pagefile("VP3", RW | SEC_RESERVE, 2 * P as u64);
    let v = map("VP3", s.h(), WRITE, 0, 0, OK).unwrap();
    vp("VP3: a reserved page", v.at(0), P, RO, fails(E_ADDR));
    va("VP3", v.at(0), P, MEM_COMMIT, RW, OK);
    vp(
        "VP3: a committed and a reserved page",
        v.at(0),
        2 * P,
        RO,
        fails(E_ADDR),
    );
    vp(
        "VP3: a range leaving the view",
        v.at(0),
        3 * P,
        RO,
        fails(E_ADDR),
    );
    assert_eq!(vp("VP3: the committed page", v.at(0), P, RO, OK), RW);
}

// ---------------------------------------------------------------------------------------------
// CW1–CW4: copy-on-write
// ---------------------------------------------------------------------------------------------

/// CW1: the first write to a page of a FILE_MAP_COPY view makes that page PAGE_READWRITE and a
/// region of its own; its unwritten neighbours stay PAGE_WRITECOPY (K:4277-4299); with
/// FILE_MAP_EXECUTE, EXECUTE_WRITECOPY → EXECUTE_READWRITE.
#[test]
fn cw1_a_write_makes_a_private_page() {
    let _t = shared();
    for (sec, access, wc) in [
        (RW, COPY, WC),
        (XRW, COPY | FX, XWC),
        (RO, COPY, WC),
        (XR, COPY | FX, XWC),
    ] {
        let ctx = format!("CW1: section {sec:#x}, access {access:#x}");
        let s = pagefile(&ctx, sec, 4 * P as u64);
        let v = map(&ctx, s.h(), access, 0, 0, OK).unwrap();
        let b = v.at(0);
        assert_eq!(
            vq(b),
            mapped(b, b, wc, 4 * P, wc),
            "{ctx}: before the write"
        );
        v.write(P + 17, 1);
        assert_eq!(
            vq(b),
            mapped(b, b, wc, P, wc),
            "{ctx}: page 0 stays copy-on-write"
        );
        assert_eq!(
            vq(b + P),
            mapped(b + P, b, wc, P, written(wc)),
            "{ctx}: the written page"
        );
        assert_eq!(
            vq(b + 2 * P),
            mapped(b + 2 * P, b, wc, 2 * P, wc),
            "{ctx}: pages 2-3 stay copy-on-write"
        );
        v.write(3 * P, 1);
        assert_eq!(
            vq(b + 2 * P),
            mapped(b + 2 * P, b, wc, P, wc),
            "{ctx}: page 2"
        );
        assert_eq!(
            vq(b + 3 * P),
            mapped(b + 3 * P, b, wc, P, written(wc)),
            "{ctx}: page 3 written"
        );
        assert_eq!(
            vp(&ctx, b, 4 * P, NA, OK),
            wc,
            "{ctx}: VirtualProtect's old protection is page 0's"
        );
    }
}

/// CW1: a page that was copied stays this view's private copy whatever VirtualProtect does
/// later: set to PAGE_WRITECOPY again it reports PAGE_READWRITE (PAGE_EXECUTE_READWRITE) —
/// K:4301-4322
/// observes this on file views — and it keeps the data written to it.
#[test]
fn cw1_a_copied_page_stays_private() {
    let _t = shared();
    for (sec, access, wc) in [(RW, COPY, WC), (XRW, COPY | FX, XWC)] {
        let ctx = format!("CW1: section {sec:#x}, access {access:#x}");
        let s = pagefile(&ctx, sec, 2 * P as u64);
        let w = map(&ctx, s.h(), WRITE, 0, 0, OK).unwrap();
        w.write(P, 1);
        let v = map(&ctx, s.h(), access, 0, 0, OK).unwrap();
        let b = v.at(0);
        v.write(P, 2);
        assert_eq!(
            vp(&ctx, b + P, P, NA, OK),
            written(wc),
            "{ctx}: the copied page's old protection"
        );
        assert_eq!(vp(&ctx, b + P, P, wc, OK), NA, "{ctx}");
        assert_eq!(
            v.read(P),
            2,
            "{ctx}: the copy keeps its data through NOACCESS and back to WRITECOPY"
        );
        assert_eq!(w.read(P), 1, "{ctx}: the section is unchanged");
        assert_eq!(
            vq(b + P).pr,
            written(wc),
            "{ctx}: a copied page set to WRITECOPY again reports READWRITE (K:4301-4322)"
        );
        assert_eq!(
            vp(&ctx, b + P, P, NA, OK),
            written(wc),
            "{ctx}: and VirtualProtect's old protection says so"
        );
        assert_eq!(vp(&ctx, b + P, P, RO, OK), NA, "{ctx}");
        assert_eq!(
            v.read(P),
            2,
            "{ctx}: the copy keeps its data through READONLY"
        );
        w.write(P, 3);
        assert_eq!(
            v.read(P),
            2,
            "CW2: {ctx}: the shared view's later writes do not reach the copy"
        );
    }
}

/// CW1: VirtualProtect(PAGE_WRITECOPY) on a page of a shared view: the first write makes it
/// private, PAGE_READWRITE, a region of its own (K:4277-4299).
#[test]
fn cw1_writecopy_set_by_virtual_protect() {
    let _t = shared();
    let s = pagefile("CW1", RW, 2 * P as u64);
    let w = map("CW1", s.h(), WRITE, 0, 0, OK).unwrap();
    let other = map("CW1", s.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(vp("CW1", w.at(0), 2 * P, WC, OK), RW);
    w.write_u32(0, 0xdead_beef);
    assert_eq!(
        vq(w.at(0)),
        mapped(w.at(0), w.at(0), RW, P, RW),
        "CW1: the written page"
    );
    assert_eq!(
        vq(w.at(P)),
        mapped(w.at(P), w.at(0), RW, P, WC),
        "CW1: the other page stays WRITECOPY"
    );
    assert_eq!(
        other.read_u32(0),
        0,
        "CW2: the private copy is not seen by other views"
    );
}

/// CW2: a private copy is seen by no other view; pages not yet copied still show the
/// section's data; the copy is lost when the view is unmapped.
#[test]
fn cw2_copies_are_private() {
    let _t = shared();
    let s = pagefile("CW2", RW, 2 * P as u64);
    let w = map("CW2", s.h(), WRITE, 0, 0, OK).unwrap();
    w.write(0, 1);
    w.write(P, 2);
    let c1 = map("CW2", s.h(), COPY, 0, 0, OK).unwrap();
    let c2 = map("CW2", s.h(), COPY, 0, 0, OK).unwrap();
    assert_eq!(
        (c1.read(0), c1.read(P)),
        (1, 2),
        "CW2: a COPY view shows the section"
    );
    c1.write(0, 10);
    assert_eq!(w.read(0), 1, "CW2: the write view does not see the copy");
    assert_eq!(
        c2.read(0),
        1,
        "CW2: another COPY view does not see the copy"
    );
    w.write(0, 3);
    w.write(P, 4);
    assert_eq!(c1.read(0), 10, "CW2: the copied page keeps its own data");
    assert_eq!(
        c1.read(P),
        4,
        "CW2: an uncopied page shows the section's new data"
    );
    assert_eq!(c2.read(0), 3);
    c1.unmap("CW2");
    let c3 = map("CW2", s.h(), COPY, 0, 0, OK).unwrap();
    assert_eq!(c3.read(0), 3, "CW2: the copy was lost with its view");
}

/// CW4: VirtualAlloc(MEM_COMMIT, PAGE_WRITECOPY) on a pagefile view page follows VA2 then CW1.
#[test]
fn cw4_commit_writecopy() {
    let _t = shared();
    let s = pagefile("CW4", RW | SEC_RESERVE, 2 * P as u64);
    let w = map("CW4", s.h(), WRITE, 0, 0, OK).unwrap();
    let other = map("CW4", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(va("CW4", w.at(0), 2 * P, MEM_COMMIT, WC, OK), w.at(0));
    assert_eq!(
        vq(w.at(0)),
        mapped(w.at(0), w.at(0), RW, 2 * P, WC),
        "CW4: committed WRITECOPY"
    );
    other.write(0, 6);
    assert_eq!(w.read(0), 6, "CW4: an uncopied page shows the section");
    w.write(P, 8);
    assert_eq!(
        vq(w.at(P)),
        mapped(w.at(P), w.at(0), RW, P, RW),
        "CW4: the written page"
    );
    assert_eq!(
        vq(w.at(0)),
        mapped(w.at(0), w.at(0), RW, P, WC),
        "CW4: its neighbour"
    );
    assert_eq!(other.read(P), 0, "CW4: the copy is private");
}

// ---------------------------------------------------------------------------------------------
// OC1: other calls on views
// ---------------------------------------------------------------------------------------------

/// OC1: VirtualLock / VirtualUnlock work on views; GetWriteWatch / ResetWriteWatch on a view
/// → 87; the *Ex calls with the current process behave the same.
#[test]
fn oc1_other_calls_on_views() {
    let _t = shared();
    let s = pagefile("OC1", RW, 2 * P as u64);
    let v = map("OC1", s.h(), WRITE, 0, 0, OK).unwrap();
    check("OC1: VirtualLock on a view", FALSE, OK, || unsafe {
        VirtualLock(v.at(0) as *const c_void, 2 * P)
    });
    check("OC1: VirtualUnlock on a view", FALSE, OK, || unsafe {
        VirtualUnlock(v.at(0) as *const c_void, 2 * P)
    });
    let mut addrs = [null_mut::<c_void>(); 16];
    let mut count = addrs.len();
    let mut gran = 0u32;
    check(
        "OC1: GetWriteWatch on a view",
        u32::MAX,
        fails(E_PARAM),
        || unsafe {
            GetWriteWatch(
                0,
                v.at(0) as *const c_void,
                2 * P,
                addrs.as_mut_ptr(),
                &mut count,
                &mut gran,
            )
        },
    );
    check(
        "OC1: ResetWriteWatch on a view",
        u32::MAX,
        fails(E_PARAM),
        || unsafe { ResetWriteWatch(v.at(0) as *const c_void, 2 * P) },
    );
    assert_eq!(
        check(
            "OC1: VirtualAllocEx(GetCurrentProcess()) MEM_COMMIT on a view",
            0usize,
            OK,
            || unsafe {
                VirtualAllocEx(
                    GetCurrentProcess(),
                    v.at(P) as *const c_void,
                    P,
                    MEM_COMMIT,
                    RO,
                ) as usize
            }
        ),
        v.at(P)
    );
    assert_eq!(vq(v.at(P)).pr, RO, "OC1");
}

// ---------------------------------------------------------------------------------------------
// SR1–SR3: SEC_RESERVE
// ---------------------------------------------------------------------------------------------

/// SR2: committed pages stay committed when every view is unmapped: a later view sees them
/// committed, with its own protection, and their data.
#[test]
fn sr2_commits_survive_unmapping() {
    let _t = shared();
    let s = pagefile("SR2", RW | SEC_RESERVE, 4 * P as u64);
    let v = map("SR2", s.h(), WRITE, 0, 0, OK).unwrap();
    va("SR2", v.at(P), P, MEM_COMMIT, RO, OK);
    vp("SR2", v.at(P), P, RW, OK);
    v.write(P + 1, 21);
    v.unmap("SR2");
    let v = map("SR2: a later view", s.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)),
        mapped_reserved(v.at(0), v.at(0), RO, P),
        "SR2: page 0 still reserved"
    );
    assert_eq!(
        vq(v.at(P)),
        mapped(v.at(P), v.at(0), RO, P, RO),
        "SR2: page 1 still committed"
    );
    assert_eq!(
        vq(v.at(2 * P)),
        mapped_reserved(v.at(2 * P), v.at(0), RO, 2 * P),
        "SR2: pages 2-3"
    );
    assert_eq!(v.read(P + 1), 21, "SR2: the data stays");
}

/// SR3: accessing a reserved page of a view is an access violation (a forked child touching it
/// dies of SIGSEGV / SIGBUS); committed pages follow their protection.
#[test]
fn sr3_reserved_pages_fault() {
    let _t = shared();
    let s = pagefile("SR3", RW | SEC_RESERVE, 3 * P as u64);
    let v = map("SR3", s.h(), WRITE, 0, 0, OK).unwrap();
    let o = map("SR3", s.h(), WRITE, 0, 0, OK).unwrap();
    va("SR3", v.at(P), P, MEM_COMMIT, RW, OK);
    va("SR3", v.at(2 * P), P, MEM_COMMIT, RO, OK);
    assert!(faults(v.at(0), false), "SR3: reading a reserved page");
    assert!(faults(v.at(0), true), "SR3: writing a reserved page");
    assert!(
        faults(o.at(0), false),
        "SR3: reading a reserved page of another view"
    );
    assert!(!faults(v.at(P), true), "SR3: a committed READWRITE page");
    assert!(
        !faults(o.at(P), true),
        "SR3/VA3: the page committed through the other view"
    );
    assert!(
        !faults(o.at(2 * P), true),
        "SR3/VA3: the other view's own protection (READWRITE)"
    );
    assert!(
        faults(v.at(2 * P), true),
        "SR3: writing a committed READONLY page"
    );
    assert!(
        !faults(v.at(2 * P), false),
        "SR3: reading a committed READONLY page"
    );
}

/// AC: page access in views follows the protection (forked children).
#[test]
fn ac_page_access_in_views() {
    let _t = shared();
    let s = pagefile("AC", XRW, 2 * P as u64);
    for (access, read, write) in [
        (READ, true, false),
        (WRITE, true, true),
        (COPY, true, true),
        (0, false, false),
        (FX | READ, true, false),
    ] {
        let v = map("AC", s.h(), access, 0, 0, OK).unwrap();
        assert_eq!(
            !faults(v.at(0), false),
            read,
            "AC: reading a view of access {access:#x}"
        );
        assert_eq!(
            !faults(v.at(0), true),
            write,
            "AC: writing a view of access {access:#x}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// LP1, IM1, NC1: SEC_LARGE_PAGES, SEC_IMAGE, SEC_NOCACHE / SEC_WRITECOMBINE
// ---------------------------------------------------------------------------------------------

/// HugePages_Free of /proc/meminfo (0 if unknown).
fn huge_pages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("HugePages_Free:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// LP1: SEC_LARGE_PAGES: only with SEC_COMMIT (CF4), a size that is a multiple of
/// GetLargePageMinimum() (87), and without huge pages free the call fails with 1450 or 1314 —
/// never a section of small pages. With huge pages free (the host's pool; this test does not
/// change it) a view is made of huge pages.
#[test]
fn lp1_large_page_sections() {
    let _t = shared();
    let lp = GetLargePageMinimum();
    if lp == 0 {
        println!("SKIPPED lp1_large_page_sections: GetLargePageMinimum() is 0 (no huge pages)");
        return;
    }
    let flags = RW | SEC_COMMIT | SEC_LARGE_PAGES;
    check_create(
        "LP1: a size that is not a multiple of the large-page size",
        Err(E_PARAM),
        || unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                null(),
                flags,
                0,
                (lp + P) as u32,
                null(),
            )
        },
    );
    let free = huge_pages_free();
    SetLastError(SENTINEL);
    let h =
        unsafe { CreateFileMappingW(INVALID_HANDLE_VALUE, null(), flags, 0, lp as u32, null()) };
    let le = GetLastError();
    if free == 0 {
        assert!(
            h.is_null(),
            "LP1: no huge page is free (HugePages_Free 0), yet the section was created"
        );
        assert!(
            le == E_NORES || le == E_PRIV,
            "LP1: expected 1450 or 1314, got {le}"
        );
        println!("lp1_large_page_sections: no huge pages free: checked the failure ({le}) only");
        return;
    }
    if h.is_null() {
        assert!(
            le == E_NORES || le == E_PRIV,
            "LP1: expected success, 1450 or 1314, got {le}"
        );
        println!(
            "SKIPPED the rest of lp1_large_page_sections: the pool ({free} free) refused ({le})"
        );
        return;
    }
    assert_eq!(le, 0, "LP1/CF8: the last error after creating");
    let s = Section(h);
    let r = check(
        "LP2: FILE_MAP_WRITE|FILE_MAP_LARGE_PAGES",
        0usize,
        OK,
        || unsafe { MapViewOfFile(s.h(), WRITE | FILE_MAP_LARGE_PAGES, 0, 0, 0).Value as usize },
    );
    let v = View(r);
    assert_eq!(
        v.at(0) % lp,
        0,
        "LP2: the view is aligned to the large-page size"
    );
    v.write(0, 1);
    assert_eq!(vq(v.at(0)), mapped(v.at(0), v.at(0), RW, lp, RW), "LP2");
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    // /proc/self/smaps pads addresses to at least eight hex digits.
    let head = format!("{:08x}-", v.at(0));
    let block: Vec<&str> = smaps
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .take(25)
        .collect();
    assert!(
        block
            .iter()
            .any(|l| l.starts_with("KernelPageSize:") && l.contains(&format!("{} kB", lp / 1024))),
        "LP1: the view is not made of huge pages:\n{}",
        block.join("\n")
    );
}

/// IM1: SEC_IMAGE of the paging file → 193 (K:1499), also with SEC_NOCACHE (accepted and
/// dropped) and as SEC_IMAGE_NO_EXECUTE; with SEC_FILE, SEC_RESERVE, SEC_COMMIT,
/// SEC_LARGE_PAGES or SEC_WRITECOMBINE → 87 (K:1500-1501, K:1530-1536).
#[test]
fn im1_sec_image_pagefile() {
    let _t = shared();
    let mut errs = Vec::new();
    for (flags, want) in [
        (SEC_IMAGE, E_BADEXE),
        (SEC_IMAGE | SEC_NOCACHE, E_BADEXE),
        (SEC_IMAGE_NO_EXECUTE, E_BADEXE),
        (SEC_IMAGE | SEC_FILE, E_PARAM),
        (SEC_IMAGE | SEC_RESERVE, E_PARAM),
        (SEC_IMAGE | SEC_COMMIT, E_PARAM),
        (SEC_IMAGE | SEC_LARGE_PAGES, E_PARAM),
        (SEC_IMAGE | SEC_WRITECOMBINE, E_PARAM),
    ] {
        for prot in [RO, WC, XWC] {
            soft_create(
                &mut errs,
                &format!("IM1: pagefile {prot:#x} | {flags:#x}"),
                Err(want),
                || unsafe {
                    CreateFileMappingW(
                        INVALID_HANDLE_VALUE,
                        null(),
                        prot | flags,
                        0,
                        P as u32,
                        null(),
                    )
                },
            );
        }
    }
    no_errors(errs);
}

/// NC1: SEC_NOCACHE / SEC_WRITECOMBINE need SEC_COMMIT or SEC_RESERVE (CF4); with SEC_RESERVE
/// the modifier is in AllocationProtect and in each committed page's Protect (VQ3).
#[test]
fn nc1_modifiers_with_sec_reserve() {
    let _t = shared();
    for (sec, m) in [
        (SEC_NOCACHE, PAGE_NOCACHE),
        (SEC_WRITECOMBINE, PAGE_WRITECOMBINE),
    ] {
        let s = pagefile("NC1", RW | SEC_RESERVE | sec, 2 * P as u64);
        let v = map("NC1", s.h(), WRITE, 0, 0, OK).unwrap();
        assert_eq!(
            vq(v.at(0)),
            mapped_reserved(v.at(0), v.at(0), RW | m, 2 * P),
            "NC1: {sec:#x}"
        );
        va("NC1", v.at(0), P, MEM_COMMIT, RW, OK);
        assert_eq!(
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), RW | m, P, RW | m),
            "NC1: committed READWRITE ({sec:#x})"
        );
        va("NC1", v.at(P), P, MEM_COMMIT, RO, OK);
        assert_eq!(
            vq(v.at(P)),
            mapped(v.at(P), v.at(0), RW | m, P, RO | m),
            "NC1: committed READONLY ({sec:#x})"
        );
        let r = map("NC1", s.h(), READ, 0, 0, OK).unwrap();
        assert_eq!(
            vq(r.at(0)),
            mapped(r.at(0), r.at(0), RO | m, 2 * P, RO | m),
            "NC1: a read-only view ({sec:#x})"
        );
        for bad in [sec, sec | SEC_LARGE_PAGES, sec | SEC_FILE] {
            check_create(
                &format!("NC1: {bad:#x} without SEC_COMMIT / SEC_RESERVE"),
                Err(E_PARAM),
                || unsafe {
                    CreateFileMappingW(INVALID_HANDLE_VALUE, null(), RW | bad, 0, P as u32, null())
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PH1–PH3: placeholders
// ---------------------------------------------------------------------------------------------

/// PH1, PH2: a view replaces a placeholder and looks like any view (KB:303-321): AllocationBase
/// its base, MEM_COMMIT, MEM_MAPPED, RegionSize the placeholder's; VirtualAlloc2's own
/// placeholder rules apply (VF2 on it: 87).
#[test]
fn ph1_ph2_views_replace_placeholders() {
    let _t = shared();
    let size = 0x80000;
    let s = pagefile("PH1", RW, size as u64);
    let ph = placeholder("PH1", 2 * size);
    split("PH1: halves", ph, size);
    let (p1, p2) = (ph, ph + size);
    let v1 = map3(
        "PH1",
        s.h(),
        null_mut(),
        p1,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    let v2 = map3(
        "PH1",
        s.h(),
        null_mut(),
        p2,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RO,
        &mut [],
        OK,
    )
    .unwrap();
    assert_eq!(
        (v1.at(0), v2.at(0)),
        (p1, p2),
        "PH1: the placeholders' addresses"
    );
    assert_eq!(vq(p1), mapped(p1, p1, RW, size, RW), "PH2: the first view");
    assert_eq!(
        vq(p2 + 0x1234),
        mapped(p2 + P, p2, RO, size - P, RO),
        "PH2: the second view"
    );
    v1.write(100, 1);
    assert_eq!(v2.read(100), 1, "PH1: both show the section");
    // A view cannot replace a view.
    map3(
        "PH1: a view is no placeholder",
        s.h(),
        null_mut(),
        p1,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        fails(E_ADDR),
    );
    drop((v1, v2));
}

/// PH3: the circular buffer of VirtualAlloc2's documentation: a section of `size` mapped into
/// both halves of a 2×size placeholder, with NULL as the process handle; a record written
/// across the middle is read at the start.
#[test]
fn ph3_circular_buffer() {
    let _t = shared();
    let size = 4 * G;
    let ph = check("PH3: reserve 2×size", 0usize, OK, || unsafe {
        VirtualAlloc2(
            null_mut(),
            null(),
            2 * size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        ) as usize
    });
    check("PH3: split", FALSE, OK, || unsafe {
        VirtualFree(
            ph as *mut c_void,
            size,
            MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
        )
    });
    let s = pagefile("PH3", RW, size as u64);
    let v1 = map3(
        "PH3: first half",
        s.h(),
        null_mut(),
        ph,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    let v2 = map3(
        "PH3: second half",
        s.h(),
        null_mut(),
        ph + size,
        0,
        size,
        MEM_REPLACE_PLACEHOLDER,
        RW,
        &mut [],
        OK,
    )
    .unwrap();
    drop(s);
    let record = *b"0123456789abcdef";
    let at = size - 7;
    unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), v1.byte(at), record.len()) };
    let mut back = [0u8; 16];
    unsafe { std::ptr::copy_nonoverlapping(v1.byte(at) as *const u8, back.as_mut_ptr(), 16) };
    assert_eq!(back, record, "PH3: the record reads back across the middle");
    let tail: Vec<u8> = (0..9).map(|i| v1.read(i)).collect();
    assert_eq!(
        tail,
        &record[7..],
        "PH3: the part past the middle is at the buffer's start"
    );
    assert_eq!(
        v2.read(size - 1),
        record[6],
        "PH3: the second view shows the same memory"
    );
    assert_eq!(
        vq(ph + size - 1).rs,
        P,
        "VQ4: the views stay separate regions"
    );
    assert_eq!(vq(ph + size).ab, ph + size, "VQ4");
    drop((v1, v2));
}

// ---------------------------------------------------------------------------------------------
// NS1, NS2: named sections, across processes
// ---------------------------------------------------------------------------------------------

/// NS2: the name lives as long as a handle: once every handle is closed the name is gone
/// although a view still works — OpenFileMapping fails with 2, CreateFileMapping makes a new
/// section and sets 0 (K:1052-1107).
#[test]
fn ns2_the_name_goes_with_the_last_handle() {
    // Asserts that an address is free: alone, or another test may allocate there.
    let _t = alone();
    let name = unique("ns2");
    let size = 0x20000;
    let s = check_create("NS2", CREATED, || create_a(RW, size as u32, &name)).unwrap();
    let v = map("NS2", s.h(), WRITE, 0, 0, OK).unwrap();
    v.write(0, 0x77);
    let o = Section(check("NS2: OpenFileMapping", null_mut(), OK, || {
        open_a(READ, &name)
    }));
    o.close("NS2");
    s.close("NS2: the last handle");
    assert_eq!(v.read(0), 0x77, "NS2: the view still works");
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RW, size, RW),
        "NS2: the view"
    );
    check(
        "NS2: the name is gone",
        null_mut(),
        fails(E_NOTFOUND),
        || open_a(READ, &name),
    );
    let n = check_create("NS2: the name makes a new section", CREATED, || {
        create_a(RW, size as u32, &name)
    })
    .unwrap();
    let nv = map("NS2", n.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(nv.read(0), 0, "NS2: a new section");
    n.close("NS2");
    assert_eq!(v.read(0), 0x77);
    let at = v.at(0);
    v.unmap("NS2");
    assert_free("NS2/U3", at);
}

/// NS1 in a forked child: the child opens the parent's name and reads its data; the child's
/// FILE_MAP_COPY write is invisible to the parent, its FILE_MAP_WRITE write is seen
/// (K:4391-4467).
#[test]
fn ns1_named_section_in_a_forked_child() {
    let _t = shared();
    let name = unique("ns1-fork");
    let s = check_create("NS1", CREATED, || create_a(RW, 4096, &name)).unwrap();
    let v = map("NS1", s.h(), READ | WRITE, 0, 4096, OK).unwrap();
    v.write_u32(0, 0x1a2b_3c4d);
    let child_name = name.clone();
    let ok = in_forked_child(move || {
        let h = check_create(
            "NS1 (child): CreateFileMapping of the parent's name",
            EXISTED,
            || create_a(RW, 4096, &child_name),
        )
        .unwrap();
        let p = map("NS1 (child)", h.h(), READ | WRITE, 0, 4096, OK).unwrap();
        assert_eq!(p.read_u32(0), 0x1a2b_3c4d, "NS1 (child): the parent's data");
        let c = map("NS1 (child)", h.h(), COPY, 0, 4096, OK).unwrap();
        c.write_u32(0, 0xdead_beef);
        p.write_u32(4, 0x600d);
        let o = Section(check(
            "NS1 (child): OpenFileMapping",
            null_mut(),
            OK,
            || open_a(READ, &child_name),
        ));
        let r = map("NS1 (child)", o.h(), READ, 0, 0, OK).unwrap();
        assert_eq!(r.read_u32(0), 0x1a2b_3c4d, "NS1/CW2 (child)");
    });
    assert!(ok, "NS1: the forked child failed (see its output)");
    assert_eq!(
        v.read_u32(0),
        0x1a2b_3c4d,
        "CW2: the child's FILE_MAP_COPY write stays in the child"
    );
    assert_eq!(
        v.read_u32(4),
        0x600d,
        "NS1: the child's FILE_MAP_WRITE write is shared"
    );
}

/// NS1 with a new process (this binary run again): it opens the name by CreateFileMapping
/// (ERROR_ALREADY_EXISTS) and OpenFileMapping, reads 0x1a2b3c4d, writes through a shared view
/// and through a FILE_MAP_COPY view (K:4391-4467); NS2: the child's exit leaves the name to the
/// parent's handle, and the parent's closing removes it.
#[test]
fn ns1_ns2_named_section_in_another_process() {
    let _t = shared();
    let name = unique("ns1-exec");
    let s = check_create("NS1", CREATED, || create_a(RW, 4096, &name)).unwrap();
    let v = map("NS1", s.h(), READ | WRITE, 0, 4096, OK).unwrap();
    v.write_u32(0, 0x1a2b_3c4d);
    in_new_process("NS1", &format!("ns1:{name}"));
    assert_eq!(
        v.read_u32(0),
        0x1a2b_3c4d,
        "CW2: the child's FILE_MAP_COPY write stays in the child"
    );
    assert_eq!(
        v.read_u32(4),
        0x600d,
        "NS1: the child's FILE_MAP_WRITE write is shared"
    );
    let o = Section(check(
        "NS2: the name outlives the child",
        null_mut(),
        OK,
        || open_a(READ, &name),
    ));
    drop(o);
    s.close("NS2");
    in_new_process(
        "NS2: the name is gone for other processes",
        &format!("ns2-gone:{name}"),
    );
    check(
        "NS2: the name is gone",
        null_mut(),
        fails(E_NOTFOUND),
        || open_a(READ, &name),
    );
    assert_eq!(v.read_u32(0), 0x1a2b_3c4d, "NS2: the view still works");
}

/// The child side of the tests that need another process; does nothing unless
/// `VIRTMEM_SECTIONS_CHILD` names a job.
#[test]
fn child_process_entry() {
    let Ok(job) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (what, name) = job.split_once(':').expect("job:name");
    match what {
        "ns1" => {
            let h = check_create(
                "NS1 (child): CreateFileMapping of the parent's name",
                EXISTED,
                || create_a(RW, 4096, name),
            )
            .unwrap();
            let p = map("NS1 (child)", h.h(), READ | WRITE, 0, 4096, OK).unwrap();
            assert_eq!(p.read_u32(0), 0x1a2b_3c4d, "NS1 (child): the parent's data");
            let c = map("NS1 (child)", h.h(), COPY, 0, 4096, OK).unwrap();
            c.write_u32(0, 0xdead_beef);
            assert_eq!(p.read_u32(0), 0x1a2b_3c4d, "CW2 (child)");
            p.write_u32(4, 0x600d);
            let o = Section(check(
                "NS1 (child): OpenFileMapping",
                null_mut(),
                OK,
                || open_a(READ, name),
            ));
            let r = map("NS1 (child)", o.h(), READ, 0, 0, OK).unwrap();
            assert_eq!(
                (r.read_u32(0), r.read_u32(4)),
                (0x1a2b_3c4d, 0x600d),
                "NS1 (child)"
            );
            assert_eq!(vq(r.at(0)).rs, P, "NS1 (child): the section's size");
            // Exits holding its handles and views: the process's end releases them.
            std::mem::forget((h, p, c, o, r));
        }
        "ns2-gone" => {
            check(
                "NS2 (child): OpenFileMapping of a closed name",
                null_mut(),
                fails(E_NOTFOUND),
                || open_a(READ, name),
            );
            let h = check_create("NS2 (child): the name makes a new section", CREATED, || {
                create_a(RW, 4096, name)
            })
            .unwrap();
            let v = map("NS2 (child)", h.h(), READ, 0, 0, OK).unwrap();
            assert_eq!(v.read_u32(0), 0, "NS2 (child): a new, zero-filled section");
        }
        other => panic!("unknown child job {other:?}"),
    }
}
