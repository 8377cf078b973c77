//! Conformance of file-backed sections (`sections.md` CF4–CF6, CF11, FB1–FB6, VA1, RS2, FV1,
//! IM1, NS2, O5 for files) through the Win32 face, with virtmem's small file API (§17):
//! CreateFileA, ReadFile, WriteFile, SetFilePointer, SetEndOfFile, GetFileSize, CloseHandle,
//! DeleteFileA, with the signatures of `windows-sys`.
//!
//! The conventions are those of `sections.rs` (pagefile-backed sections): the last error is
//! preset to 0xdeadbeef, a success leaves it alone (CreateFileMapping* sets 0 or 183), a
//! failure sets exactly the expected code; every assertion names its rule. The files live in
//! the temporary directory, named after the process and the test; the tests check their
//! contents with `std::fs` as well as with the file API.

#![allow(clippy::missing_safety_doc, clippy::identity_op)]

use core::ffi::c_void;
use std::path::PathBuf;
use std::ptr::{null, null_mut};
use virtmem::win32::*;

const P: usize = 0x1000;

// The file API's constants (winnt.h / fileapi.h values), spelled here so that this file does
// not depend on which of them the library exports.
const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_EXECUTE: u32 = 0x2000_0000;
const FILE_SHARE_READ: u32 = 1;
const FILE_SHARE_WRITE: u32 = 2;
const FILE_SHARE_DELETE: u32 = 4;
const CREATE_ALWAYS: u32 = 2;
const OPEN_EXISTING: u32 = 3;
const FILE_BEGIN: u32 = 0;
const INVALID_SET_FILE_POINTER: u32 = 0xFFFF_FFFF;

const E_DENIED: u32 = 5;
const E_HANDLE: u32 = 6;
const E_NOMEM: u32 = 8;
const E_NS: u32 = 50;
const E_PARAM: u32 = 87;
const E_EXISTS: u32 = 183;
const E_BADEXE: u32 = 193;
const E_FILE_INVALID: u32 = 1006;
const E_USER_MAPPED: u32 = 1224;
const E_NOTFOUND: u32 = 2;

const NA: u32 = PAGE_NOACCESS;
const RO: u32 = PAGE_READONLY;
const RW: u32 = PAGE_READWRITE;
const WC: u32 = PAGE_WRITECOPY;
const X: u32 = PAGE_EXECUTE;
const XR: u32 = PAGE_EXECUTE_READ;
const XRW: u32 = PAGE_EXECUTE_READWRITE;
const XWC: u32 = PAGE_EXECUTE_WRITECOPY;
const PAGE_PROTS: [u32; 8] = [NA, RO, RW, WC, X, XR, XRW, XWC];
const SECTION_PROTS: [u32; 6] = [RO, RW, WC, XR, XRW, XWC];

const COPY: u32 = FILE_MAP_COPY;
const WRITE: u32 = FILE_MAP_WRITE;
const READ: u32 = FILE_MAP_READ;

// Test isolation and checked calls: tests/sections_checks/mod.rs.
mod sections_checks;
use sections_checks::*;

fn soft_create(
    errs: &mut Vec<String>,
    ctx: &str,
    want: WantCreate,
    f: impl FnOnce() -> HANDLE,
) -> Option<Handle> {
    SetLastError(SENTINEL);
    let h = f();
    let le = GetLastError();
    let got = if h.is_null() { Err(le) } else { Ok(le) };
    if got != want {
        errs.push(format!(
            "{ctx}: expected {want:?}, got {got:?} (handle {h:?})"
        ));
    }
    (!h.is_null()).then_some(Handle(h))
}

#[track_caller]
fn check_create(ctx: &str, want: WantCreate, f: impl FnOnce() -> HANDLE) -> Option<Handle> {
    let mut errs = Vec::new();
    let h = soft_create(&mut errs, ctx, want, f);
    no_errors(errs);
    h
}

// ---------------------------------------------------------------------------------------------
// Files, sections, views
// ---------------------------------------------------------------------------------------------

/// A section or file handle, closed on drop.
struct Handle(HANDLE);

impl Handle {
    fn h(&self) -> HANDLE {
        self.0
    }
    fn into_raw(self) -> HANDLE {
        let h = self.0;
        std::mem::forget(self);
        h
    }
    #[track_caller]
    fn close(self, ctx: &str) {
        let h = self.into_raw();
        check(ctx, FALSE, OK, || unsafe { CloseHandle(h) });
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { CloseHandle(self.0) };
    }
}

/// A file path in the temporary directory, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        let p = std::env::temp_dir().join(format!("virtmem-sections-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempPath(p)
    }
    fn c(&self) -> Vec<u8> {
        let mut v = self
            .0
            .to_str()
            .expect("a UTF-8 temporary path")
            .as_bytes()
            .to_vec();
        v.push(0);
        v
    }
    fn contents(&self) -> Vec<u8> {
        std::fs::read(&self.0).expect("read the file")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// CreateFileA, checked to succeed.
#[track_caller]
fn open_file(ctx: &str, path: &TempPath, access: u32, share: u32, disposition: u32) -> Handle {
    let name = path.c();
    SetLastError(SENTINEL);
    let h = unsafe {
        CreateFileA(
            name.as_ptr(),
            access,
            share,
            null(),
            disposition,
            0,
            null_mut(),
        )
    };
    assert!(
        h != INVALID_HANDLE_VALUE && !h.is_null(),
        "{ctx}: CreateFileA({:?}) failed: {}",
        path.0,
        GetLastError()
    );
    Handle(h)
}

/// SetFilePointer + SetEndOfFile.
fn set_size(h: HANDLE, size: u64) -> Want {
    let mut hi = (size >> 32) as i32;
    SetLastError(SENTINEL);
    let r = unsafe { SetFilePointer(h, size as u32 as i32, &mut hi, FILE_BEGIN) };
    if r == INVALID_SET_FILE_POINTER && GetLastError() != SENTINEL {
        return Err(GetLastError());
    }
    SetLastError(SENTINEL);
    if unsafe { SetEndOfFile(h) } == FALSE {
        return Err(GetLastError());
    }
    Ok(())
}

fn file_size(h: HANDLE) -> u64 {
    let mut hi = 0u32;
    let lo = unsafe { GetFileSize(h, &mut hi) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// WriteFile of `data` at the file pointer.
#[track_caller]
fn write_file(ctx: &str, h: HANDLE, data: &[u8]) {
    let mut n = 0u32;
    check(ctx, FALSE, OK, || unsafe {
        WriteFile(h, data.as_ptr(), data.len() as u32, &mut n, null_mut())
    });
    assert_eq!(n as usize, data.len(), "{ctx}: bytes written");
}

/// ReadFile of `len` bytes at `offset`.
#[track_caller]
fn read_file(ctx: &str, h: HANDLE, offset: u32, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut n = 0u32;
    unsafe { SetFilePointer(h, offset as i32, null_mut(), FILE_BEGIN) };
    check(ctx, FALSE, OK, || unsafe {
        ReadFile(h, buf.as_mut_ptr(), len as u32, &mut n, null_mut())
    });
    buf.truncate(n as usize);
    buf
}

/// A new file of `size` bytes (zeros, or `fill`), open with `access`.
#[track_caller]
fn new_file(tag: &str, access: u32, size: u64, fill: Option<u8>) -> (TempPath, Handle) {
    let path = TempPath::new(tag);
    let h = open_file(
        tag,
        &path,
        GENERIC_READ | GENERIC_WRITE,
        FILE_SHARE_READ | FILE_SHARE_WRITE,
        CREATE_ALWAYS,
    );
    match fill {
        Some(b) => write_file(tag, h.h(), &vec![b; size as usize]),
        None => assert_eq!(set_size(h.h(), size), OK, "{tag}: size the file"),
    }
    if access == GENERIC_READ | GENERIC_WRITE {
        return (path, h);
    }
    drop(h);
    let h = open_file(
        tag,
        &path,
        access,
        FILE_SHARE_READ | FILE_SHARE_WRITE,
        OPEN_EXISTING,
    );
    (path, h)
}

/// CreateFileMappingA of a file.
fn create_section(file: HANDLE, flprotect: u32, size: u64, name: Option<&str>) -> HANDLE {
    let n = name.map(|s| s.bytes().chain([0]).collect::<Vec<u8>>());
    unsafe {
        CreateFileMappingA(
            file,
            null(),
            flprotect,
            (size >> 32) as u32,
            size as u32,
            n.as_ref().map_or(null(), |n| n.as_ptr()),
        )
    }
}

#[track_caller]
fn section(ctx: &str, file: HANDLE, flprotect: u32, size: u64) -> Handle {
    check_create(ctx, CREATED, || create_section(file, flprotect, size, None)).expect("checked")
}

/// A mapped view, unmapped on drop.
struct View(usize);

impl View {
    fn at(&self, off: usize) -> usize {
        self.0 + off
    }
    fn read(&self, off: usize) -> u8 {
        unsafe { std::ptr::read_volatile((self.0 + off) as *const u8) }
    }
    fn write(&self, off: usize, v: u8) {
        unsafe { std::ptr::write_volatile((self.0 + off) as *mut u8, v) }
    }
    fn into_raw(self) -> usize {
        let b = self.0;
        std::mem::forget(self);
        b
    }
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

#[track_caller]
fn map(ctx: &str, h: HANDLE, access: u32, offset: u64, size: usize, want: Want) -> Option<View> {
    let r = check(ctx, 0usize, want, || unsafe {
        MapViewOfFile(h, access, (offset >> 32) as u32, offset as u32, size).Value as usize
    });
    (r != 0).then_some(View(r))
}

/// A minimal PE image: an MZ header whose e_lfanew points at a "PE\0\0" signature and an
/// x64 COFF / optional header.
fn pe_image() -> Vec<u8> {
    let mut f = vec![0u8; 0x400];
    f[0..2].copy_from_slice(b"MZ");
    f[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    f[0x80..0x84].copy_from_slice(b"PE\0\0");
    f[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes()); // Machine
    f[0x94..0x96].copy_from_slice(&0xF0u16.to_le_bytes()); // SizeOfOptionalHeader
    f[0x96..0x98].copy_from_slice(&0x0022u16.to_le_bytes()); // Characteristics
    f[0x98..0x9a].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+ magic
    f
}

// ---------------------------------------------------------------------------------------------
// O5, CF4–CF6, CF11
// ---------------------------------------------------------------------------------------------

/// O5: a file handle given to MapViewOfFile, a section handle given to ReadFile / WriteFile /
/// SetEndOfFile / GetFileSize, and a closed file handle fail with ERROR_INVALID_HANDLE.
#[test]
fn o5_handles_of_the_wrong_kind() {
    let _t = alone();
    let (_p, f) = new_file("o5", GENERIC_READ | GENERIC_WRITE, 0x2000, None);
    let h = f.h() as usize;
    assert!(
        h != 0 && h != usize::MAX && h % 4 == 0,
        "O5: file handle {h:#x}"
    );
    map(
        "O5: MapViewOfFile of a file handle",
        f.h(),
        READ,
        0,
        0,
        fails(E_HANDLE),
    );
    let s = section("O5", f.h(), RW, 0);
    let mut buf = [0u8; 4];
    let mut n = 0u32;
    check(
        "O5: ReadFile of a section handle",
        FALSE,
        fails(E_HANDLE),
        || unsafe { ReadFile(s.h(), buf.as_mut_ptr(), 4, &mut n, null_mut()) },
    );
    check(
        "O5: WriteFile of a section handle",
        FALSE,
        fails(E_HANDLE),
        || unsafe { WriteFile(s.h(), buf.as_ptr(), 4, &mut n, null_mut()) },
    );
    check(
        "O5: SetEndOfFile of a section handle",
        FALSE,
        fails(E_HANDLE),
        || unsafe { SetEndOfFile(s.h()) },
    );
    let (_q, g) = new_file("o5-closed", GENERIC_READ | GENERIC_WRITE, 0x2000, None);
    let closed = g.into_raw();
    check("O5: CloseHandle of a file", FALSE, OK, || unsafe {
        CloseHandle(closed)
    });
    check(
        "O5/CF5: CreateFileMapping of a closed file handle",
        null_mut(),
        fails(E_HANDLE),
        || create_section(closed, RW, 0x1000, None),
    );
}

/// CF4: the SEC_* combinations for a data file (K:1488-1536, rows 18-36): SEC_RESERVE and
/// SEC_COMMIT are accepted (the section is SEC_FILE: views of the SEC_COMMIT ones are checked
/// committed here, those of SEC_RESERVE ones in `sr1_…`), so are SEC_NOCACHE and
/// SEC_WRITECOMBINE with one of them; the rest fail with 87, SEC_IMAGE of a data file with 193.
#[test]
fn cf4_sec_combinations_file() {
    let _t = shared();
    let (_p, f) = new_file("cf4", GENERIC_READ | GENERIC_WRITE, 0x2000, None);
    let rows: [(u32, WantCreate); 19] = [
        (SEC_RESERVE, CREATED),
        (SEC_RESERVE | SEC_NOCACHE, CREATED),
        (SEC_RESERVE | SEC_LARGE_PAGES, Err(E_PARAM)),
        (SEC_RESERVE | SEC_WRITECOMBINE, CREATED),
        (SEC_COMMIT, CREATED),
        (SEC_COMMIT | SEC_NOCACHE, CREATED),
        (SEC_COMMIT | SEC_LARGE_PAGES, Err(E_PARAM)),
        (SEC_COMMIT | SEC_WRITECOMBINE, CREATED),
        (SEC_RESERVE | SEC_COMMIT, Err(E_PARAM)),
        (SEC_IMAGE, Err(E_BADEXE)),
        (SEC_IMAGE | SEC_RESERVE, Err(E_PARAM)),
        (SEC_IMAGE | SEC_COMMIT, Err(E_PARAM)),
        (SEC_NOCACHE, Err(E_PARAM)),
        (SEC_LARGE_PAGES, Err(E_PARAM)),
        (SEC_WRITECOMBINE, Err(E_PARAM)),
        (SEC_FILE, Err(E_PARAM)),
        (SEC_FILE | SEC_RESERVE, Err(E_PARAM)),
        (SEC_FILE | SEC_COMMIT, Err(E_PARAM)),
        (0, CREATED),
    ];
    let mut errs = Vec::new();
    for (flags, want) in rows {
        let ctx = format!("CF4: file RW | {flags:#x}");
        let Some(s) = soft_create(&mut errs, &ctx, want, || {
            create_section(f.h(), flags | RW, 0x1000, None)
        }) else {
            continue;
        };
        if flags & SEC_RESERVE != 0 {
            continue; // sr1_sec_reserve_file_views_are_committed
        }
        let r = unsafe { MapViewOfFile(s.h(), WRITE, 0, 0, 0).Value as usize };
        if r == 0 {
            errs.push(format!("{ctx}: MapViewOfFile failed: {}", GetLastError()));
            continue;
        }
        let v = View(r);
        let q = vq(v.at(0));
        soft_eq(
            &mut errs,
            &format!("{ctx}: the view is committed (SEC_FILE)"),
            (q.st, q.pr & 0xff, q.rs),
            (MEM_COMMIT, RW, 0x1000),
        );
    }
    no_errors(errs);
}

/// CF5: the file handle must allow what the protection needs (K:4051-4058, K:711-754): a
/// GENERIC_READ file takes PAGE_READONLY and PAGE_WRITECOPY only; a file with no access
/// nothing; PAGE_EXECUTE_* need GENERIC_EXECUTE; otherwise 5.
#[test]
fn cf5_file_access() {
    let _t = shared();
    let rw = GENERIC_READ | GENERIC_WRITE;
    let rwx = rw | GENERIC_EXECUTE;
    let rx = GENERIC_READ | GENERIC_EXECUTE;
    // (file access, section protections that work)
    let cases: [(u32, &[u32]); 5] = [
        (GENERIC_READ, &[RO, WC]),
        (0, &[]),
        (rw, &[RO, RW, WC]),
        (rx, &[RO, WC, XR, XWC]),
        (rwx, &[RO, RW, WC, XR, XRW, XWC]),
    ];
    let mut errs = Vec::new();
    for (access, works) in cases {
        let (_p, f) = new_file(&format!("cf5-{access:x}"), access, 0x1000, None);
        for prot in SECTION_PROTS {
            let want = if works.contains(&prot) {
                CREATED
            } else {
                Err(E_DENIED)
            };
            let ctx = format!("CF5: a {prot:#x} section of a file opened with {access:#x}");
            drop(soft_create(&mut errs, &ctx, want, || {
                create_section(f.h(), prot, 0x1000, None)
            }));
            drop(soft_create(
                &mut errs,
                &format!("{ctx}, size 0"),
                want,
                || create_section(f.h(), prot | SEC_COMMIT, 0, None),
            ));
        }
        // CF11: the protection is checked before the file.
        drop(soft_create(
            &mut errs,
            &format!("CF11: PAGE_NOACCESS of a file opened with {access:#x}"),
            Err(E_PARAM),
            || create_section(f.h(), NA, 0x1000, None),
        ));
    }
    no_errors(errs);
}

/// CF6: sizes of file sections: 0 = the file's size to the byte (K:1247-1259); a given size
/// is kept to the byte (36 stays 36, K:1234-1244; MV4: a 0x3452-byte section takes a
/// 0x3452-byte view, not 0x3453, K:1270-1289); a writable section larger than the file extends
/// it (K:1126-1136); a read-only one fails with 8 (K:1262-1265); an empty file with size 0
/// fails with 1006 (KF:3243-3249); a size beyond the file system's limit with 8 or 87.
#[test]
fn cf6_file_section_sizes() {
    let _t = shared();
    let (_p, f) = new_file("cf6", GENERIC_READ | GENERIC_WRITE, 0x3456, None);
    let s = section("CF6: size 0", f.h(), RO, 0);
    let v = map("CF6", s.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(
        vq(v.at(0)).rs,
        0x4000,
        "CF6: a view of the 0x3456-byte section"
    );
    map("MV4: a view of the file's size", s.h(), READ, 0, 0x3456, OK);
    map(
        "MV4: one byte more",
        s.h(),
        READ,
        0,
        0x3457,
        fails(E_DENIED),
    );
    drop((v, s));
    let s = section("CF6: size 0x3452", f.h(), RO, 0x3452);
    map(
        "MV4: a 0x3452-byte view of a 0x3452-byte section",
        s.h(),
        READ,
        0,
        0x3452,
        OK,
    );
    map(
        "MV4: a 0x3453-byte view of a 0x3452-byte section",
        s.h(),
        READ,
        0,
        0x3453,
        fails(E_DENIED),
    );
    let s = section("CF6: size 36", f.h(), RO, 36);
    let v = map("CF6", s.h(), READ, 0, 36, OK).unwrap();
    assert_eq!(
        vq(v.at(0)).rs,
        P,
        "CF6: the 36-byte section's view is one page"
    );
    map(
        "CF6: 37 bytes of a 36-byte section",
        s.h(),
        READ,
        0,
        37,
        fails(E_DENIED),
    );
    drop((v, s));
    check_create(
        "CF6: a read-only section larger than the file",
        Err(E_NOMEM),
        || create_section(f.h(), RO, 0x3457, None),
    );
    assert_eq!(file_size(f.h()), 0x3456, "CF6: the file is unchanged");

    let (_q, g) = new_file("cf6-grow", GENERIC_READ | GENERIC_WRITE, 4096, None);
    let s = section(
        "CF6: a 1 MiB PAGE_READWRITE section of a 4096-byte file",
        g.h(),
        RW,
        0x10_0000,
    );
    assert_eq!(
        file_size(g.h()),
        0x10_0000,
        "CF6: the file grew to the section's size"
    );
    let v = map("CF6", s.h(), WRITE, 0, 0, OK).unwrap();
    assert_eq!(vq(v.at(0)).rs, 0x10_0000);
    v.write(0xF_FFFF, 1);
    drop((v, s));
    let s = section(
        "CF6: now a read-only 12288-byte section works (K:1211)",
        g.h(),
        RO,
        12288,
    );
    drop(s);

    let (_e, empty) = new_file("cf6-empty", GENERIC_READ | GENERIC_WRITE, 0, None);
    check_create("CF6: size 0 of an empty file", Err(E_FILE_INVALID), || {
        create_section(empty.h(), RO, 0, None)
    });
    check_create(
        "CF6: size 0 of an empty file (RW)",
        Err(E_FILE_INVALID),
        || create_section(empty.h(), RW, 0, None),
    );
    SetLastError(SENTINEL);
    let h = create_section(empty.h(), RW, u64::MAX, None);
    let le = GetLastError();
    assert!(
        h.is_null() && (le == E_NOMEM || le == E_PARAM),
        "CF6: a size beyond the file system: {h:?}, {le}"
    );
}

// ---------------------------------------------------------------------------------------------
// FB1–FB6
// ---------------------------------------------------------------------------------------------

/// FB1, FB2: the file handle may be closed right after CreateFileMapping (K:1152-1167); writes
/// through a shared view reach the file (FlushViewOfFile, and after the last unmap); views of
/// the file, ReadFile and WriteFile are coherent.
#[test]
fn fb1_fb2_views_write_the_file() {
    let _t = shared();
    let (p, f) = new_file("fb1", GENERIC_READ | GENERIC_WRITE, 0x2000, None);
    let s = section("FB1", f.h(), RW, 0);
    f.close("FB1: the file handle closed right away");
    let v = map(
        "FB1: a view after the file handle is closed",
        s.h(),
        WRITE,
        0,
        0,
        OK,
    )
    .unwrap();
    v.write(0x10, b'h');
    v.write(0x1ff0, b'w');
    check("FV1: FlushViewOfFile", FALSE, OK, || unsafe {
        FlushViewOfFile(v.at(0) as *const c_void, 0)
    });
    let c = p.contents();
    assert_eq!(
        (c.len(), c[0x10], c[0x1ff0]),
        (0x2000, b'h', b'w'),
        "FB2: the file after FlushViewOfFile"
    );
    // Coherence with file I/O (virtmem: one page cache).
    let f = open_file(
        "FB2",
        &p,
        GENERIC_READ | GENERIC_WRITE,
        FILE_SHARE_READ | FILE_SHARE_WRITE,
        OPEN_EXISTING,
    );
    assert_eq!(
        read_file("FB2", f.h(), 0x10, 1),
        b"h",
        "FB2: ReadFile sees the view's write"
    );
    unsafe { SetFilePointer(f.h(), 0x20, null_mut(), FILE_BEGIN) };
    write_file("FB2", f.h(), b"xyz");
    assert_eq!(
        (v.read(0x20), v.read(0x22)),
        (b'x', b'z'),
        "FB2: the view sees WriteFile"
    );
    // Another section of the same file shows the same data.
    let s2 = section("FB2", f.h(), RO, 0);
    let r = map("FB2", s2.h(), READ, 0, 0, OK).unwrap();
    v.write(0x30, 7);
    assert_eq!(
        r.read(0x30),
        7,
        "FB2: two sections of one file are coherent"
    );
    drop((r, s2));
    v.write(0x40, 9);
    v.unmap("FB2");
    drop(s);
    assert_eq!(
        p.contents()[0x40],
        9,
        "FB2: the data is in the file after the last unmap"
    );
}

/// FB3: a file cannot shrink while a section of it exists — a handle or only a view
/// (KF:6628-6670): SetEndOfFile to a smaller size fails with 1224 and the size stays, even
/// when the section would still fit; growing works.
#[test]
fn fb3_a_mapped_file_cannot_shrink() {
    let _t = shared();
    let (_p, f) = new_file("fb3", GENERIC_READ | GENERIC_WRITE, 8192, None);
    let s = section("FB3", f.h(), RW, 4);
    assert_eq!(
        set_size(f.h(), 8191),
        fails(E_USER_MAPPED),
        "FB3: 8192 → 8191 with a 4-byte section"
    );
    assert_eq!(file_size(f.h()), 8192, "FB3: the size stays");
    assert_eq!(set_size(f.h(), 8193), OK, "FB3: growing is allowed");
    assert_eq!(file_size(f.h()), 8193);
    let v = map("FB3", s.h(), READ, 0, 0, OK).unwrap();
    s.close("FB3");
    assert_eq!(
        set_size(f.h(), 4096),
        fails(E_USER_MAPPED),
        "FB3: a view alone keeps the rule"
    );
    assert_eq!(file_size(f.h()), 8193);
    v.unmap("FB3");
    assert_eq!(
        set_size(f.h(), 4096),
        OK,
        "FB3: without sections the file can shrink"
    );
    assert_eq!(file_size(f.h()), 4096);
}

/// FB4: a data section imposes no share mode: a file opened exclusively afterwards (share 0)
/// opens although a section of it exists (KF:2621-2667).
#[test]
fn fb4_sections_impose_no_share_mode() {
    let _t = shared();
    let (p, f) = new_file("fb4", GENERIC_READ | GENERIC_WRITE, 0x1000, None);
    let s = section("FB4", f.h(), RW, 0);
    let v = map("FB4", s.h(), WRITE, 0, 0, OK).unwrap();
    drop(f);
    let name = p.c();
    SetLastError(SENTINEL);
    let g = unsafe {
        CreateFileA(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            null(),
            OPEN_EXISTING,
            0,
            null_mut(),
        )
    };
    assert!(
        g != INVALID_HANDLE_VALUE,
        "FB4: an exclusive open with a section: {}",
        GetLastError()
    );
    drop(Handle(g));
    let g = open_file(
        "FB4",
        &p,
        GENERIC_READ,
        FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
        OPEN_EXISTING,
    );
    drop((g, v, s));
}

/// FB5: the bytes of a view's last page beyond the file's end read as zero.
#[test]
fn fb5_the_last_page_past_the_end_reads_zero() {
    let _t = shared();
    let (_p, f) = new_file("fb5", GENERIC_READ | GENERIC_WRITE, 0x1800, Some(0xAA));
    let s = section("FB5", f.h(), RO, 0);
    let v = map("FB5", s.h(), READ, 0, 0, OK).unwrap();
    assert_eq!(vq(v.at(0)).rs, 0x2000);
    assert_eq!(v.read(0x17ff), 0xAA);
    assert!(
        (0x1800..0x2000).all(|i| v.read(i) == 0),
        "FB5: the tail of the last page reads zero"
    );
}

// ---------------------------------------------------------------------------------------------
// MV2 on files, VA1, RS2, FV1, CW2, SR1, IM1
// ---------------------------------------------------------------------------------------------

/// MV2 on file sections (K:588-680): a PAGE_READWRITE section maps READ, COPY, 0 and WRITE
/// views; PAGE_READONLY and PAGE_WRITECOPY sections refuse WRITE with 5; DuplicateHandle
/// examples K:612-634.
#[test]
fn mv2_h2_file_sections() {
    let _t = shared();
    let (_p, f) = new_file("mv2", GENERIC_READ | GENERIC_WRITE, 12288, None);
    let s = section("MV2", f.h(), RW, 4096);
    for access in [READ, COPY, 0, WRITE] {
        map(
            &format!("MV2: access {access:#x} of a PAGE_READWRITE file section"),
            s.h(),
            access,
            0,
            4096,
            OK,
        );
    }
    let mut d = null_mut();
    check("H2", FALSE, OK, || unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            s.h(),
            GetCurrentProcess(),
            &mut d,
            READ | WRITE,
            FALSE,
            0,
        )
    });
    let d = Handle(d);
    map(
        "H2: READ|WRITE duplicate, FILE_MAP_WRITE",
        d.h(),
        WRITE,
        0,
        4096,
        OK,
    );
    let mut e = null_mut();
    check("H2", FALSE, OK, || unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            s.h(),
            GetCurrentProcess(),
            &mut e,
            READ,
            FALSE,
            0,
        )
    });
    let e = Handle(e);
    map(
        "H2: READ duplicate, FILE_MAP_WRITE",
        e.h(),
        WRITE,
        0,
        4096,
        fails(E_DENIED),
    );
    map("H2: READ duplicate, access 0", e.h(), 0, 0, 4096, OK);
    for prot in [RO, WC] {
        let s = section("MV2", f.h(), prot, 4096);
        for access in [READ, COPY, 0] {
            map(
                &format!("MV2: access {access:#x} of a {prot:#x} file section"),
                s.h(),
                access,
                0,
                4096,
                OK,
            );
        }
        map(
            &format!("MV2: FILE_MAP_WRITE of a {prot:#x} file section"),
            s.h(),
            WRITE,
            0,
            4096,
            fails(E_DENIED),
        );
    }
}

/// VA1: MEM_COMMIT on a view of a file fails with 5 whatever the protection (K:3747-3750,
/// K:4270-4274) (SEC_RESERVE file sections: `sr1_…`); VP1: a FILE_MAP_READ view
/// accepts PAGE_READONLY and PAGE_WRITECOPY and refuses the others with 87 (K:3752-3760).
#[test]
fn va1_commit_on_file_views() {
    let _t = shared();
    let (_p, f) = new_file(
        "va1",
        GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE,
        P as u64,
        None,
    );
    let mut errs = Vec::new();
    for prot in SECTION_PROTS {
        for sec in [0, SEC_COMMIT] {
            let ctx = format!("VA1: a {prot:#x}|{sec:#x} file section");
            let Some(s) = soft_create(&mut errs, &ctx, CREATED, || {
                create_section(f.h(), prot | sec, P as u64, None)
            }) else {
                continue;
            };
            let r = soft(&mut errs, &ctx, 0usize, OK, || unsafe {
                MapViewOfFile(s.h(), READ, 0, 0, 0).Value as usize
            });
            if r == 0 {
                continue;
            }
            let v = View(r);
            soft_eq(
                &mut errs,
                &format!("{ctx}: VirtualQuery"),
                vq(v.at(0)),
                mapped(v.at(0), v.at(0), RO, P, RO),
            );
            for commit in PAGE_PROTS {
                soft(
                    &mut errs,
                    &format!("{ctx}: MEM_COMMIT {commit:#x}"),
                    0usize,
                    fails(E_DENIED),
                    || unsafe {
                        VirtualAlloc(v.at(0) as *const c_void, P, MEM_COMMIT, commit) as usize
                    },
                );
            }
            let mut old = 0;
            let want = if prot == RO || prot == WC {
                OK
            } else {
                fails(E_PARAM)
            };
            soft(
                &mut errs,
                &format!("{ctx}: VirtualProtect({prot:#x}) on a FILE_MAP_READ view"),
                FALSE,
                want,
                || unsafe { VirtualProtect(v.at(0) as *const c_void, P, prot, &mut old) },
            );
        }
    }
    no_errors(errs);
}

/// RS2: MEM_RESET on a view of a file fails with ERROR_USER_MAPPED_FILE.
#[test]
fn rs2_mem_reset_on_file_views() {
    let _t = shared();
    let (_p, f) = new_file("rs2", GENERIC_READ | GENERIC_WRITE, 0x4000, Some(1));
    let s = section("RS2", f.h(), RW, 0);
    let v = map("RS2", s.h(), WRITE, 0, 0, OK).unwrap();
    check(
        "RS2: MEM_RESET on a file view",
        0usize,
        fails(E_USER_MAPPED),
        || unsafe { VirtualAlloc(v.at(0) as *const c_void, 0x4000, MEM_RESET, RW) as usize },
    );
    check(
        "RS2: MEM_RESET of one page",
        0usize,
        fails(E_USER_MAPPED),
        || unsafe { VirtualAlloc(v.at(P) as *const c_void, P, MEM_RESET, NA) as usize },
    );
    assert_eq!(v.read(P), 1, "RS2: the data stays");
}

/// FV1: FlushViewOfFile writes the modified pages of a file view to the file (size 0: to the
/// view's end; the address rounded down); a range past the view's end → 87.
#[test]
fn fv1_flush_file_views() {
    let _t = shared();
    let (p, f) = new_file("fv1", GENERIC_READ | GENERIC_WRITE, 0x3000, None);
    let s = section("FV1", f.h(), RW, 0);
    let v = map("FV1", s.h(), WRITE, 0, 0, OK).unwrap();
    v.write(0x1001, 0x11);
    check(
        "FV1: an unaligned address, a small size",
        FALSE,
        OK,
        || unsafe { FlushViewOfFile(v.at(0x1001) as *const c_void, 1) },
    );
    assert_eq!(p.contents()[0x1001], 0x11, "FV1");
    v.write(0x2fff, 0x22);
    check("FV1: size 0", FALSE, OK, || unsafe {
        FlushViewOfFile(v.at(P) as *const c_void, 0)
    });
    assert_eq!(p.contents()[0x2fff], 0x22, "FV1");
    check(
        "FV2: past the view's end",
        FALSE,
        fails(E_PARAM),
        || unsafe { FlushViewOfFile(v.at(0) as *const c_void, 0x4000) },
    );
}

/// CW2: a FILE_MAP_COPY write never reaches the file (K:4359-4364) and is lost with the view.
#[test]
fn cw2_copies_never_reach_the_file() {
    let _t = shared();
    let (p, f) = new_file("cw2", GENERIC_READ | GENERIC_WRITE, 0x2000, Some(5));
    let s = section("CW2", f.h(), RW, 0);
    let c = map("CW2", s.h(), COPY, 0, 0, OK).unwrap();
    c.write(0, 6);
    let q = vq(c.at(0));
    assert_eq!(
        (q.pr, q.rs),
        (RW, P),
        "CW1: the written page of a file COPY view"
    );
    check(
        "CW2: FlushViewOfFile of a COPY view",
        FALSE,
        OK,
        || unsafe { FlushViewOfFile(c.at(0) as *const c_void, 0) },
    );
    c.unmap("CW2");
    drop(s);
    assert_eq!(p.contents()[0], 5, "CW2: the file is unchanged");
    assert_eq!(read_file("CW2", f.h(), 0, 1), [5], "CW2: ReadFile agrees");
}

/// SR1 / CF4 / O1: SEC_RESERVE means nothing for a file: the section is SEC_FILE (K:1488-1536
/// attributes) and its views are committed, as for every file section (VA1: MEM_COMMIT on them
/// fails with 5, STATUS_ALREADY_COMMITTED), also in a sparse file.
#[test]
fn sr1_sec_reserve_file_views_are_committed() {
    let _t = shared();
    let (_p, f) = new_file(
        "sr1",
        GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE,
        0x2000,
        None,
    );
    let mut errs = Vec::new();
    for extra in [0, SEC_NOCACHE, SEC_WRITECOMBINE] {
        let ctx = format!("SR1: a RW|SEC_RESERVE|{extra:#x} file section");
        let s = section(&ctx, f.h(), RW | SEC_RESERVE | extra, 0);
        let v = map(&ctx, s.h(), WRITE, 0, 0, OK).unwrap();
        let q = vq(v.at(0));
        soft_eq(
            &mut errs,
            &format!("{ctx}: the view is committed"),
            (q.st, q.pr & 0xff, q.rs),
            (MEM_COMMIT, RW, 0x2000),
        );
    }
    for prot in SECTION_PROTS {
        let ctx = format!("SR1/VA1: a {prot:#x}|SEC_RESERVE file section");
        let s = section(&ctx, f.h(), prot | SEC_RESERVE, 0);
        let v = map(&ctx, s.h(), READ, 0, 0, OK).unwrap();
        soft_eq(
            &mut errs,
            &format!("{ctx}: VirtualQuery"),
            vq(v.at(0)),
            mapped(v.at(0), v.at(0), RO, 0x2000, RO),
        );
        let mut old = 0;
        let want = if prot == RO || prot == WC {
            OK
        } else {
            fails(E_PARAM)
        };
        soft(
            &mut errs,
            &format!("{ctx}: VirtualProtect({prot:#x}) on a FILE_MAP_READ view"),
            FALSE,
            want,
            || unsafe { VirtualProtect(v.at(0) as *const c_void, P, prot, &mut old) },
        );
        soft(
            &mut errs,
            &format!("{ctx}: MEM_COMMIT"),
            0usize,
            fails(E_DENIED),
            || unsafe { VirtualAlloc(v.at(0) as *const c_void, P, MEM_COMMIT, RO) as usize },
        );
    }
    no_errors(errs);
}

/// IM1: SEC_IMAGE of a file that is not a PE image — including an empty file — fails with 193
/// (K:1326-1328, K:1519); with SEC_NOCACHE too (accepted and dropped); with SEC_FILE /
/// SEC_RESERVE / SEC_COMMIT / SEC_LARGE_PAGES / SEC_WRITECOMBINE → 87 (K:1530-1536, also for a
/// PE file); a PE image → 50 (virtmem loads no images).
#[test]
fn im1_sec_image_files() {
    let _t = shared();
    let (_p, data) = new_file("im1", GENERIC_READ | GENERIC_WRITE, 0x2000, Some(b'x'));
    let (_e, empty) = new_file("im1-empty", GENERIC_READ | GENERIC_WRITE, 0, None);
    let pe_path = TempPath::new("im1-pe");
    let pe = open_file(
        "IM1",
        &pe_path,
        GENERIC_READ | GENERIC_WRITE,
        FILE_SHARE_READ,
        CREATE_ALWAYS,
    );
    write_file("IM1", pe.h(), &pe_image());
    let mut errs = Vec::new();
    for (what, file) in [("a data file", data.h()), ("an empty file", empty.h())] {
        for flags in [SEC_IMAGE, SEC_IMAGE | SEC_NOCACHE] {
            drop(soft_create(
                &mut errs,
                &format!("IM1: {flags:#x} of {what}"),
                Err(E_BADEXE),
                || create_section(file, RO | flags, 0, None),
            ));
        }
    }
    for (what, file) in [("a data file", data.h()), ("a PE file", pe.h())] {
        for flags in [
            SEC_FILE,
            SEC_RESERVE,
            SEC_COMMIT,
            SEC_LARGE_PAGES,
            SEC_WRITECOMBINE,
        ] {
            drop(soft_create(
                &mut errs,
                &format!("IM1: SEC_IMAGE|{flags:#x} of {what}"),
                Err(E_PARAM),
                || create_section(file, RO | SEC_IMAGE | flags, 0, None),
            ));
        }
    }
    drop(soft_create(
        &mut errs,
        "IM1: SEC_IMAGE of a PE file (virtmem: not supported)",
        Err(E_NS),
        || create_section(pe.h(), RO | SEC_IMAGE, 0, None),
    ));
    no_errors(errs);
}

// ---------------------------------------------------------------------------------------------
// NS2 for a file-backed section
// ---------------------------------------------------------------------------------------------

/// NS2 (K:1125-1193): a named file-backed section's name goes with its last handle while the
/// view keeps working; the name then makes a new section (last error 0); after unmapping the
/// range is free.
#[test]
fn ns2_named_file_section() {
    let _t = shared();
    let (_p, f) = new_file("ns2", GENERIC_READ | GENERIC_WRITE, 4096, None);
    let name = format!("Local\\virtmem-sections-files-{}-ns2", std::process::id());
    let size = 0x10_0000;
    let s = check_create("NS2: a named file section", CREATED, || {
        create_section(f.h(), RW, size, Some(&name))
    })
    .unwrap();
    let v = map("NS2", s.h(), WRITE, 0, 0, OK).unwrap();
    let n = {
        let mut v = name.as_bytes().to_vec();
        v.push(0);
        v
    };
    let o = check("NS2: OpenFileMapping", null_mut(), OK, || unsafe {
        OpenFileMappingA(READ, FALSE, n.as_ptr())
    });
    Handle(o).close("NS2");
    check_create("NS2: the name while a handle lives", Ok(E_EXISTS), || {
        create_section(f.h(), RW, size, Some(&name))
    });
    s.close("NS2: the last handle");
    assert_eq!(
        vq(v.at(0)),
        mapped(v.at(0), v.at(0), RW, size as usize, RW),
        "NS2: the view works"
    );
    v.write(0, 1);
    check(
        "NS2: the name is gone",
        null_mut(),
        fails(E_NOTFOUND),
        || unsafe { OpenFileMappingA(READ, FALSE, n.as_ptr()) },
    );
    let s = check_create("NS2: the name makes a new section", CREATED, || {
        create_section(f.h(), RW, size, Some(&name))
    })
    .unwrap();
    s.close("NS2");
    assert_eq!(v.read(0), 1);
    let at = v.at(0);
    v.unmap("NS2");
    let r = vq(at);
    assert_eq!(
        (r.base, r.ab, r.ap, r.st, r.pr, r.ty),
        (at, 0, 0, MEM_FREE, NA, 0),
        "NS2/U3: free after the unmap"
    );
}

/// CF11: the file's access and size are checked before the name is looked up: an existing
/// name does not turn an invalid request into ERROR_ALREADY_EXISTS.
#[test]
fn cf11_file_checks_before_the_name() {
    let _t = shared();
    let name = format!("Local\\virtmem-sections-files-{}-cf11", std::process::id());
    let n = check_create("CF11: a named pagefile section", CREATED, || unsafe {
        let c: Vec<u8> = name.bytes().chain([0]).collect();
        CreateFileMappingA(INVALID_HANDLE_VALUE, null(), RW, 0, 0x1000, c.as_ptr())
    })
    .unwrap();
    let (_e, empty) = new_file("cf11-empty", GENERIC_READ | GENERIC_WRITE, 0, None);
    let (_r, ro) = new_file("cf11-ro", GENERIC_READ, 0x1000, None);
    let mut errs = Vec::new();
    for (ctx, file, prot, size, want) in [
        (
            "CF11: an empty file, size 0, an existing name",
            empty.h(),
            RO,
            0,
            Err(E_FILE_INVALID),
        ),
        (
            "CF11: a read-only file for PAGE_READWRITE, an existing name",
            ro.h(),
            RW,
            0x1000,
            Err(E_DENIED),
        ),
        (
            "CF11: a read-only section larger than its file, an existing name",
            ro.h(),
            RO,
            0x2000,
            Err(E_NOMEM),
        ),
        (
            "CF11: a file that is no PE image with SEC_IMAGE, an existing name",
            ro.h(),
            RO | SEC_IMAGE,
            0,
            Err(E_BADEXE),
        ),
        (
            "CF8: a valid file request with an existing name",
            ro.h(),
            RO,
            0x1000,
            Ok(E_EXISTS),
        ),
    ] {
        drop(soft_create(&mut errs, ctx, want, || {
            create_section(file, prot, size, Some(&name))
        }));
    }
    no_errors(errs);
    drop(n);
}

/// H1, H2 for file handles: a duplicate with DUPLICATE_SAME_ACCESS keeps the file's access
/// (CF5 sees it), one with another access has that access; CloseHandle closes either.
#[test]
fn h2_duplicate_file_handles() {
    let _t = shared();
    let (_p, f) = new_file("h2", GENERIC_READ, 0x1000, None);
    let mut d = null_mut();
    check(
        "H2: DUPLICATE_SAME_ACCESS of a file handle",
        FALSE,
        OK,
        || unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                f.h(),
                GetCurrentProcess(),
                &mut d,
                0,
                FALSE,
                2,
            )
        },
    );
    let d = Handle(d);
    check_create("H2/CF5: the duplicate reads", CREATED, || {
        create_section(d.h(), RO, 0, None)
    });
    check_create(
        "H2/CF5: the duplicate does not write",
        Err(E_DENIED),
        || create_section(d.h(), RW, 0, None),
    );
    let (_q, g) = new_file("h2-rw", GENERIC_READ | GENERIC_WRITE, 0x1000, None);
    let mut e = null_mut();
    check(
        "H2: a GENERIC_READ duplicate of a read/write file handle",
        FALSE,
        OK,
        || unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                g.h(),
                GetCurrentProcess(),
                &mut e,
                GENERIC_READ,
                FALSE,
                0,
            )
        },
    );
    let e = Handle(e);
    check_create(
        "H2/CF5: the GENERIC_READ duplicate does not write",
        Err(E_DENIED),
        || create_section(e.h(), RW, 0, None),
    );
    e.close("H1: CloseHandle of a duplicated file handle");
    d.close("H1");
}

/// PH1: a view of a data-file section can replace a placeholder.
#[test]
fn ph1_file_view_in_a_placeholder() {
    let _t = shared();
    let (_p, f) = new_file("ph1", GENERIC_READ | GENERIC_WRITE, 0x20000, Some(9));
    let s = section("PH1", f.h(), RW, 0);
    let ph = check("PH1: a placeholder", 0usize, OK, || unsafe {
        VirtualAlloc2(
            null_mut(),
            null(),
            0x20000,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            NA,
            null_mut(),
            0,
        ) as usize
    });
    let v = check("PH1: a file view replaces it", 0usize, OK, || unsafe {
        MapViewOfFile3(
            s.h(),
            null_mut(),
            ph as *const c_void,
            0,
            0x20000,
            MEM_REPLACE_PLACEHOLDER,
            RW,
            null_mut(),
            0,
        )
        .Value as usize
    });
    let v = View(v);
    assert_eq!(v.at(0), ph, "PH1: at the placeholder");
    assert_eq!(
        vq(ph),
        mapped(ph, ph, RW, 0x20000, RW),
        "PH2: a file view in a placeholder"
    );
    assert_eq!(v.read(0x1ffff), 9, "PH1: the file's data");
    check("U7: back to a placeholder", FALSE, OK, || unsafe {
        UnmapViewOfFileEx(mva(v.into_raw()), MEM_PRESERVE_PLACEHOLDER)
    });
    let q = vq(ph);
    assert_eq!(
        (q.st, q.ty, q.rs),
        (MEM_RESERVE, MEM_PRIVATE, 0x20000),
        "U7"
    );
    unsafe { VirtualFree(ph as *mut c_void, 0, MEM_RELEASE) };
}
