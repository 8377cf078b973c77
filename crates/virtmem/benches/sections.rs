//! virtmem's sections and views against the raw Linux mechanism, measured in the same run.
//!
//! Every criterion group holds one pair, so the report shows both side by side and
//! `scripts/bench-ratios.sh` prints the ratios from
//! `target/criterion/<group>/<fn>/new/estimates.json`:
//!
//! | group | first | second | goal |
//! |---|---|---|---|
//! | `view64k` | `virtmem`: MapViewOfFile 64 KiB (FILE_MAP_WRITE) of one pagefile section + touch every page + UnmapViewOfFile | `raw`: `mmap(MAP_SHARED)` 64 KiB of one memfd + touch + `munmap` | ≤ 1.15× |
//! | `section_create` | `virtmem`: CreateFileMappingW(INVALID_HANDLE_VALUE, PAGE_READWRITE, 64 KiB) + CloseHandle | `raw`: `memfd_create` + `ftruncate` + `close` | ≤ 1.2× |
//! | `query_view` | `view`: VirtualQuery of a page of a read-write view | `private`: VirtualQuery of a page of committed VirtualAlloc memory | none (informational) |
//!
//! `query_view` also measures `writecopy`, VirtualQuery of a FILE_MAP_COPY view (which asks
//! the kernel whether the page was copied), and prints its ratio to `private` too. In every
//! group the last side is the reference: the denominator of the ratios.
//!
//! The section (and the raw memfd) live for the whole group, so after the first iteration
//! every touch on both sides is a minor fault that maps a page already in the memfd's page
//! cache: both sides do the same work per page. virtmem's views are 64 KiB-aligned (MV5),
//! which its backend gets with a `PROT_NONE` reservation and a `MAP_FIXED` view over it; the
//! raw side maps wherever the kernel likes, as the plain `mmap` a C program would write.
//!
//! Criterion measures the two sides one after the other, so a machine whose speed drifts over
//! seconds moves its ratio. After each group an interleaved cross-check therefore alternates
//! the two sides ten times and prints
//! `interleaved <group> <side> <ns> <reference> <ns> ratio <r>` (median of the per-round
//! ratios; `benches/common/mod.rs`, shared with `ops.rs` and `fault.rs`);
//! `scripts/bench-ratios.sh` shows both ratios.

mod common;

use common::{munmap, release, run_group, selected, timed, touch, Side, K64, PAGE};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::ptr::{self, null, null_mut};
use std::time::Duration;
use virtmem::win32::{
    CloseHandle, CreateFileMappingW, MapViewOfFile, UnmapViewOfFile, VirtualAlloc, VirtualQuery,
    FILE_MAP_COPY, FILE_MAP_WRITE, HANDLE, INVALID_HANDLE_VALUE, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, MEM_COMMIT, MEM_MAPPED, MEM_PRIVATE, MEM_RESERVE, PAGE_READWRITE,
    PAGE_WRITECOPY, TRUE,
};

// ---------------------------------------------------------------------------------------------
// Raw building blocks
// ---------------------------------------------------------------------------------------------

/// A memfd of `len` bytes, as virtmem's backend makes one for a pagefile section.
fn raw_memfd(len: usize) -> i32 {
    // SAFETY: a NUL-terminated name; the call creates a new descriptor and touches no memory.
    let fd = unsafe { libc::memfd_create(c"raw-section".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: our new descriptor.
    let r = unsafe { libc::ftruncate(fd, len as libc::off_t) };
    assert_eq!(r, 0, "ftruncate");
    fd
}

fn raw_close(fd: i32) {
    // SAFETY: a descriptor this file opened and nothing else uses.
    assert_eq!(unsafe { libc::close(fd) }, 0, "close");
}

/// `mmap(MAP_SHARED)` of the first `len` bytes of `fd`, read-write, where the kernel likes.
fn raw_map_shared(fd: i32, len: usize) -> *mut u8 {
    // SAFETY: a new shared mapping chosen by the kernel (no MAP_FIXED): nothing is replaced.
    let p = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap");
    p.cast()
}

// ---------------------------------------------------------------------------------------------
// virtmem building blocks
// ---------------------------------------------------------------------------------------------

/// A pagefile-backed read-write section of `len` bytes.
fn section(len: usize) -> HANDLE {
    // SAFETY: plain Win32 call with no name and no security attributes.
    let h = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            len as u32,
            null(),
        )
    };
    assert!(!h.is_null(), "CreateFileMappingW");
    h
}

fn close(h: HANDLE) {
    // SAFETY: a handle this file opened.
    assert_eq!(unsafe { CloseHandle(h) }, TRUE, "CloseHandle");
}

/// A view of the whole section with `access`.
fn map(h: HANDLE, access: u32, len: usize) -> *mut u8 {
    // SAFETY: plain Win32 call on our section handle.
    let v = unsafe { MapViewOfFile(h, access, 0, 0, len) }.Value;
    assert!(!v.is_null(), "MapViewOfFile");
    v.cast()
}

fn unmap(v: *mut u8) {
    // SAFETY: a view this file mapped, which nothing references any more.
    let ok = unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() }) };
    assert_eq!(ok, TRUE, "UnmapViewOfFile");
}

fn query(p: *const u8) -> MEMORY_BASIC_INFORMATION {
    // SAFETY: MEMORY_BASIC_INFORMATION is plain data; all zeroes is a valid value.
    let mut mbi: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let n = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
    // SAFETY: a writable buffer of the right size.
    let r = unsafe { VirtualQuery(p.cast(), &mut mbi, n) };
    assert_eq!(r, n, "VirtualQuery");
    mbi
}

// ---------------------------------------------------------------------------------------------
// 1. view64k
// ---------------------------------------------------------------------------------------------

fn view64k(c: &mut Criterion) {
    if !selected("view64k") {
        return;
    }
    let h = section(K64);
    let fd = raw_memfd(K64);
    // Both sides show their backing's data: a write through one mapping is seen by the next.
    let v = map(h, FILE_MAP_WRITE, K64);
    // SAFETY: a read-write view of 64 KiB.
    unsafe { touch(v, K64) };
    unmap(v);
    let v = map(h, FILE_MAP_WRITE, K64);
    // SAFETY: as above; the byte was written through the previous view.
    assert_eq!(unsafe { ptr::read_volatile(v.add(PAGE)) }, 1);
    assert_eq!(v as usize % K64, 0, "views are 64 KiB-aligned");
    unmap(v);
    let r = raw_map_shared(fd, K64);
    // SAFETY: a read-write shared mapping of 64 KiB.
    unsafe { touch(r, K64) };
    munmap(r as usize, K64);

    run_group(
        c,
        "view64k",
        2000,
        vec![
            (
                "virtmem",
                Box::new(|iters| {
                    timed(iters, || {
                        let v = map(h, FILE_MAP_WRITE, K64);
                        // SAFETY: a read-write view of 64 KiB.
                        unsafe { touch(black_box(v), K64) };
                        unmap(v);
                    })
                }),
            ),
            (
                "raw",
                Box::new(|iters| {
                    timed(iters, || {
                        let r = raw_map_shared(fd, K64);
                        // SAFETY: a read-write shared mapping of 64 KiB.
                        unsafe { touch(black_box(r), K64) };
                        munmap(r as usize, K64);
                    })
                }),
            ),
        ],
    );
    close(h);
    raw_close(fd);
}

// ---------------------------------------------------------------------------------------------
// 2. section_create
// ---------------------------------------------------------------------------------------------

fn section_create(c: &mut Criterion) {
    if !selected("section_create") {
        return;
    }
    run_group(
        c,
        "section_create",
        5000,
        vec![
            (
                "virtmem",
                Box::new(|iters| timed(iters, || close(black_box(section(K64))))),
            ),
            (
                "raw",
                Box::new(|iters| timed(iters, || raw_close(black_box(raw_memfd(K64))))),
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 3. query_view
// ---------------------------------------------------------------------------------------------

fn query_view(c: &mut Criterion) {
    if !selected("query_view") {
        return;
    }
    let h = section(K64);
    let v = map(h, FILE_MAP_WRITE, K64);
    let w = map(h, FILE_MAP_COPY, K64);
    // SAFETY: read-write view / copy-on-write view: one copied page in the middle.
    unsafe {
        touch(v, K64);
        ptr::write_volatile(w.add(8 * PAGE), 2);
    }
    // SAFETY: a plain allocation, released at the end.
    let p = unsafe { VirtualAlloc(null(), K64, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) };
    assert!(!p.is_null(), "VirtualAlloc");
    let p: *mut u8 = p.cast();
    // SAFETY: committed read-write.
    unsafe { touch(p, K64) };
    // A page in the middle of each, so every query describes one run of several pages.
    let (qv, qw, qp) = (
        v.wrapping_add(4 * PAGE),
        w.wrapping_add(4 * PAGE),
        p.wrapping_add(4 * PAGE),
    );
    let (mv, mw, mp) = (query(qv), query(qw), query(qp));
    assert_eq!((mv.Type, mv.Protect), (MEM_MAPPED, PAGE_READWRITE));
    assert_eq!((mw.Type, mw.Protect), (MEM_MAPPED, PAGE_WRITECOPY));
    assert_eq!(
        mw.RegionSize,
        4 * PAGE,
        "pages 4-7 are not copied, page 8 is"
    );
    assert_eq!((mp.Type, mp.Protect), (MEM_PRIVATE, PAGE_READWRITE));

    let side = |at: *const u8| -> Side<'static> {
        let at = at as usize;
        Box::new(move |iters| {
            timed(iters, || {
                black_box(query(black_box(at) as *const u8).RegionSize);
            })
        })
    };
    run_group(
        c,
        "query_view",
        20_000,
        vec![
            ("view", side(qv)),
            ("writecopy", side(qw)),
            ("private", side(qp)),
        ],
    );
    release(p as usize);
    unmap(v);
    unmap(w);
    close(h);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    targets = view64k, section_create, query_view
}
criterion_main!(benches);
