//! Sections and views through the safe face: RAII (a dropped view is unmapped, a dropped
//! section handle leaves its views working), owner checks, names, copy-on-write, the growable
//! buffer and the growable file. The compile-time half is `crates/virtmem-ui`.
//!
//! Named and file-backed sections need the named-object and file backends; where this build
//! has them not, those tests say so and stop (`NotSupported`).

use std::sync::atomic::Ordering;
use virtmem::win32::*;
use virtmem::{
    Error, GrowableFile, GrowableView, RegionType, Section, SectionOptions, SectionProtect, State,
    UniqueView, ViewAccess,
};

/// Tests that assert a released address is free run alone (placement reuses the last released
/// slot, so another test's new view could take it); the others share.
static ORDER: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ORDER.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    ORDER.write().unwrap_or_else(|e| e.into_inner())
}

/// Unwraps `r`, or ends the test when this build lacks the backend it needs.
macro_rules! or_skip {
    ($r:expr, $what:expr) => {
        match $r {
            Err(Error::NotSupported(why)) => {
                eprintln!("skipped ({}): {why}", $what);
                return;
            }
            r => r.unwrap(),
        }
    };
}

fn unique_name(tag: &str) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "Local\\virtmem-safe-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary file's path, removed when dropped (also when a test stops early).
struct TempPath(std::path::PathBuf);

impl AsRef<std::path::Path> for TempPath {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(tag: &str) -> (TempPath, std::fs::File) {
    let path = std::env::temp_dir().join(format!(
        "virtmem-safe-sections-{tag}-{}",
        std::process::id()
    ));
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    (TempPath(path), f)
}

#[test]
fn dropping_a_view_unmaps_it() {
    // Asserts that a released address is free: alone, or another test may map there.
    let _g = alone();
    let s = Section::new(3 * 4096).unwrap();
    let v = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    let base = v.as_ptr() as usize;
    let i = virtmem::query(base).unwrap();
    assert_eq!(
        (i.state, i.kind, i.allocation_base, i.region_size),
        (State::Commit, RegionType::Mapped, base, 3 * 4096)
    );
    assert_eq!(i.allocation_protect, PAGE_READWRITE);
    drop(v);
    let i = virtmem::query(base).unwrap();
    assert_eq!((i.state, i.protect), (State::Free, PAGE_NOACCESS));
    // Explicitly, with the result.
    let v = s.map(0, 4096, ViewAccess::Read).unwrap();
    let base = v.as_ptr() as usize;
    v.unmap().unwrap();
    assert_eq!(virtmem::query(base).unwrap().state, State::Free);
}

#[test]
fn a_view_keeps_its_section_alive() {
    let _g = shared();
    let s = Section::new(65536).unwrap();
    let v = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    v.write(1000, b"still here").unwrap();
    s.close().unwrap(); // the handle goes, the section stays while the view is mapped
    let mut buf = [0; 10];
    v.read(1000, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    v.write(0, b"and writable").unwrap();

    // A clone of the handle maps the same section after the first one is dropped.
    let a = Section::new(4096).unwrap();
    let b = a.try_clone().unwrap();
    a.map(0, 0, ViewAccess::ReadWrite)
        .unwrap()
        .write(0, &[42])
        .unwrap();
    drop(a);
    let mut one = [0];
    b.map(0, 0, ViewAccess::Read)
        .unwrap()
        .read(0, &mut one)
        .unwrap();
    assert_eq!(one, [42], "the section kept the byte");
}

#[test]
fn views_of_one_section_share_pages() {
    let _g = shared();
    let s = Section::new(2 * 65536).unwrap();
    assert_eq!(s.size(), 2 * 65536);
    assert_eq!(s.protection(), SectionProtect::ReadWrite);
    assert!(!s.is_reserve() && !s.is_file_backed());
    let a = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    let b = s.map(65536, 65536, ViewAccess::Read).unwrap();
    assert_ne!(a.as_ptr(), b.as_ptr());
    assert_eq!((a.len(), b.len()), (2 * 65536, 65536));
    assert_eq!(b.access(), ViewAccess::Read);
    a.write(65536 + 7, b"xyz").unwrap();
    let mut buf = [0; 3];
    b.read(7, &mut buf).unwrap();
    assert_eq!(&buf, b"xyz");
    // A read-only view refuses writes and lends no atomics.
    assert!(matches!(b.write(0, b"no"), Err(Error::NoAccess(_))));
    assert!(matches!(b.atomic_bytes(0, 1), Err(Error::NoAccess(_))));
    // Ranges are checked against the view.
    assert!(matches!(
        b.read(65535, &mut buf),
        Err(Error::InvalidParameter(_))
    ));
    assert!(b.read(65536, &mut []).is_ok());
    // Atomics of one view see the other's writes.
    let bytes = a.atomic_bytes(65536, 16).unwrap();
    bytes[0].store(0xEE, Ordering::Release);
    b.read(0, &mut buf[..1]).unwrap();
    assert_eq!(buf[0], 0xEE);
    // A handle of a read-only section cannot map writable views.
    let ro = SectionOptions::new(4096)
        .protection(SectionProtect::ReadOnly)
        .create()
        .unwrap();
    assert!(matches!(
        ro.map(0, 0, ViewAccess::ReadWrite),
        Err(Error::AccessDenied(_))
    ));
    assert!(matches!(
        ro.map(0, 0, ViewAccess::ExecuteRead),
        Err(Error::AccessDenied(_))
    ));
    // A misaligned offset, an offset past the end.
    assert!(matches!(
        s.map(4096, 0, ViewAccess::Read),
        Err(Error::MappedAlignment(_))
    ));
    assert!(matches!(
        s.map(4 * 65536, 0, ViewAccess::Read),
        Err(Error::AccessDenied(_))
    ));
}

#[test]
fn threads_write_one_page_through_two_views() {
    let _g = shared();
    let s = Section::new(4096).unwrap();
    let a = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    let b = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    std::thread::scope(|t| {
        for v in [&a, &b] {
            t.spawn(move || {
                let counter = &v.atomic_bytes(0, 1).unwrap()[0];
                for _ in 0..100 {
                    counter.fetch_add(1, Ordering::Relaxed);
                    v.write(100, &[1, 2, 3, 4]).unwrap();
                    let mut buf = [0; 4];
                    v.read(100, &mut buf).unwrap();
                    assert_eq!(buf, [1, 2, 3, 4]);
                }
            });
        }
    });
    let mut n = [0];
    a.read(0, &mut n).unwrap();
    assert_eq!(n[0], 200);
}

#[test]
fn copy_on_write_views_keep_their_writes() {
    let _g = shared();
    let s = Section::new(4 * 4096).unwrap();
    let w = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    let c = s.map(0, 0, ViewAccess::CopyOnWrite).unwrap();
    assert_eq!(c.access(), ViewAccess::CopyOnWrite);
    w.write(0, b"shared").unwrap();
    let mut buf = [0; 6];
    c.read(0, &mut buf).unwrap();
    assert_eq!(
        &buf, b"shared",
        "an unwritten copy-on-write page shows the section"
    );
    c.write(4096, b"mine").unwrap();
    w.read(4096, &mut buf[..4]).unwrap();
    assert_eq!(&buf[..4], &[0; 4], "the copy is private");
    c.read(4096, &mut buf[..4]).unwrap();
    assert_eq!(&buf[..4], b"mine");
    assert_eq!(c.query(4096).unwrap().protect, PAGE_READWRITE);
    assert_eq!(c.query(0).unwrap().protect, PAGE_WRITECOPY);
    // Atomic stores copy too.
    c.atomic_bytes(2 * 4096, 1).unwrap()[0].store(5, Ordering::Relaxed);
    w.read(2 * 4096, &mut buf[..1]).unwrap();
    assert_eq!(buf[0], 0);
    // A read-only section allows copy-on-write views.
    let ro = SectionOptions::new(4096)
        .protection(SectionProtect::ReadOnly)
        .create()
        .unwrap();
    let c = ro.map(0, 0, ViewAccess::CopyOnWrite).unwrap();
    c.write(0, b"private").unwrap();
}

#[test]
fn a_section_never_closes_a_reused_handle() {
    let _g = shared();
    let s = Section::new(4096).unwrap();
    let h = s.raw_handle();
    // Someone closes the handle behind the section's back (the unsafe face allows it)...
    // SAFETY: a handle of this test, closed once; `s` never uses it again successfully.
    assert_eq!(unsafe { CloseHandle(h) }, TRUE);
    // ...and the value is given out again (to this test, unless a test running at the same
    // time takes it first: either way `s` must not touch it).
    let other = Section::new(4096).unwrap();
    assert!(matches!(
        s.map(0, 0, ViewAccess::Read),
        Err(Error::InvalidHandle)
    ));
    assert!(matches!(s.close(), Err(Error::InvalidHandle)));
    // The new owner's handle still works.
    other.map(0, 0, ViewAccess::ReadWrite).unwrap();
}

#[test]
fn a_view_never_touches_a_reused_range() {
    let _g = shared();
    let s = Section::new(65536).unwrap();
    let v = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    let base = v.as_ptr();
    // SAFETY: nothing borrows `v`; its range is unmapped once, behind its back.
    assert_eq!(
        unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: base.cast() }) },
        TRUE
    );
    assert!(!v.is_live());
    // SAFETY: fresh memory at a free address, released below.
    let p = unsafe { VirtualAlloc(base.cast(), 65536, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) };
    if p.is_null() {
        return; // another thread took the range first
    }
    // SAFETY: the new owner's committed page.
    unsafe { *(p as *mut u8) = 0x5A };
    assert!(matches!(v.write(0, &[1]), Err(Error::InvalidAddress(_))));
    assert!(matches!(v.read(0, &mut [0]), Err(Error::InvalidAddress(_))));
    assert!(matches!(v.commit(0, 1), Err(Error::InvalidAddress(_))));
    drop(v);
    let i = virtmem::query(p as usize).unwrap();
    assert_eq!((i.state, i.kind), (State::Commit, RegionType::Private));
    // SAFETY: still the new owner's page.
    assert_eq!(unsafe { *(p as *const u8) }, 0x5A);
    // SAFETY: released once by its owner.
    assert_eq!(unsafe { VirtualFree(p, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn sec_reserve_views_commit_for_everyone() {
    let _g = shared();
    let s = SectionOptions::new(1 << 20).reserve(true).create().unwrap();
    assert!(s.is_reserve());
    let a = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    let b = s.map(0, 0, ViewAccess::Read).unwrap();
    assert_eq!(a.query(0).unwrap().state, State::Reserve);
    let mut buf = [0; 4];
    assert!(matches!(b.read(0, &mut buf), Err(Error::NoAccess(_))));
    a.commit(4096, 1).unwrap();
    let i = b.query(4096).unwrap();
    assert_eq!(
        (i.state, i.protect, i.region_size),
        (State::Commit, PAGE_READONLY, 4096)
    );
    a.write(4096, b"data").unwrap();
    b.read(4096, &mut buf).unwrap();
    assert_eq!(&buf, b"data");
    // A view mapped later sees the commit too.
    let c = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    assert_eq!(c.query(4096).unwrap().state, State::Commit);
    assert!(matches!(c.write(0, &[1]), Err(Error::NoAccess(_))));
    // Committing nothing is fine; committing past the view is not.
    a.commit(0, 0).unwrap();
    assert_eq!(a.query(0).unwrap().state, State::Reserve);
    assert!(matches!(
        a.commit(1 << 20, 1),
        Err(Error::InvalidParameter(_))
    ));
}

#[test]
fn growable_view_grows_its_committed_prefix() {
    let _g = shared();
    let g = GrowableView::new(1 << 24).unwrap();
    assert_eq!((g.capacity(), g.committed_len()), (1 << 24, 0));
    assert!(matches!(g.read(0, &mut [0]), Err(Error::NoAccess(_))));
    g.commit(10_000).unwrap();
    assert_eq!(g.committed_len(), 3 * 4096);
    g.write(0, b"head").unwrap();
    g.write(3 * 4096 - 1, &[9]).unwrap();
    assert!(matches!(g.write(3 * 4096, &[9]), Err(Error::NoAccess(_))));
    assert!(matches!(
        g.read(3 * 4096 - 1, &mut [0, 0]),
        Err(Error::NoAccess(_))
    ));
    g.commit(100).unwrap(); // never shrinks
    assert_eq!(g.committed_len(), 3 * 4096);
    // Another view of the section sees the buffer, and grows it for both.
    let r = GrowableView::from_section(g.section(), ViewAccess::ReadWrite).unwrap();
    assert_eq!(r.committed_len(), 3 * 4096);
    let mut buf = [0; 4];
    r.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"head");
    r.commit(1 << 20).unwrap();
    assert_eq!(g.committed_len(), 1 << 20);
    g.atomic_bytes((1 << 20) - 1, 1).unwrap()[0].store(3, Ordering::Relaxed);
    r.read((1 << 20) - 1, &mut buf[..1]).unwrap();
    assert_eq!(buf[0], 3);
    assert!(matches!(
        g.commit((1 << 24) + 1),
        Err(Error::InvalidParameter(_))
    ));
    assert_eq!(g.view().len(), 1 << 24);
}

#[test]
fn unique_views_lend_slices() {
    // Asserts that a released address is free: alone, or another test may map there.
    let _g = alone();
    let mut u = UniqueView::new(8192).unwrap();
    assert_eq!(u.len(), 8192);
    u.as_mut_slice(0, 8192).unwrap().fill(0xAB);
    assert!(u.as_slice(0, 8192).unwrap().iter().all(|&b| b == 0xAB));
    assert!(matches!(
        u.as_slice(8000, 500),
        Err(Error::InvalidParameter(_))
    ));
    let base = u.as_ptr() as usize;
    assert_eq!(u.query(0).unwrap().kind, RegionType::Mapped);
    let (section, view) = u.into_shared();
    let other = section.map(0, 0, ViewAccess::Read).unwrap();
    let mut b = [0];
    other.read(8191, &mut b).unwrap();
    assert_eq!(b[0], 0xAB);
    drop(view);
    assert_eq!(virtmem::query(base).unwrap().state, State::Free);

    let mut r = UniqueView::reserved(1 << 20).unwrap();
    assert!(matches!(r.as_slice(0, 1), Err(Error::NoAccess(_))));
    r.commit(65536, 4096).unwrap();
    r.as_mut_slice(65536, 4096).unwrap()[0] = 1;
    assert!(matches!(
        r.as_mut_slice(65536, 4097),
        Err(Error::NoAccess(_))
    ));
    let base = r.as_ptr() as usize;
    drop(r);
    assert_eq!(virtmem::query(base).unwrap().state, State::Free);
}

#[test]
fn names_are_checked_before_anything_else() {
    let _g = shared();
    for bad in ["", "Local\\", "\0x"] {
        assert!(
            matches!(
                Section::create_named(bad, 4096),
                Err(Error::InvalidParameter(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        Section::create_named("Local\\a\\b", 4096),
        Err(Error::PathNotFound(_))
    ));
    assert!(matches!(
        Section::open("Global\\a\\b", ViewAccess::Read),
        Err(Error::PathNotFound(_))
    ));
}

#[test]
fn named_sections_share_and_their_name_goes_with_the_last_handle() {
    let _g = shared();
    let name = unique_name("named");
    let (a, existed) = or_skip!(Section::create_named(&name, 10_000), "named sections");
    assert!(!existed);
    assert_eq!(a.size(), 12288);
    let (b, existed) = Section::create_named(&name, 1).unwrap();
    assert!(existed, "the name is in use: the same section");
    let c = Section::open(&name, ViewAccess::Read).unwrap();
    assert!(matches!(
        c.map(0, 0, ViewAccess::ReadWrite),
        Err(Error::AccessDenied(_))
    ));
    let w = a.map(0, 0, ViewAccess::ReadWrite).unwrap();
    w.write(0, b"named").unwrap();
    let r = c.map(0, 0, ViewAccess::Read).unwrap();
    let mut buf = [0; 5];
    r.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"named");
    let cw = b.map(0, 0, ViewAccess::CopyOnWrite).unwrap();
    cw.write(0, b"N").unwrap();
    r.read(0, &mut buf[..1]).unwrap();
    assert_eq!(buf[0], b'n');
    drop((a, b, c));
    // The name went with the last handle; the views still work.
    assert!(matches!(
        Section::open(&name, ViewAccess::Read),
        Err(Error::FileNotFound(_))
    ));
    r.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"named");
    let (fresh, existed) = Section::create_named(&name, 4096).unwrap();
    assert!(!existed, "a new section under the old name");
    fresh
        .map(0, 0, ViewAccess::Read)
        .unwrap()
        .read(0, &mut buf)
        .unwrap();
    assert_eq!(buf, [0; 5]);
}

#[test]
fn named_growable_views() {
    let _g = shared();
    let name = unique_name("growable");
    let (w, existed) = or_skip!(GrowableView::named(&name, 1 << 20), "named sections");
    assert!(!existed);
    let (r, existed) = GrowableView::named(&name, 1).unwrap();
    assert!(existed);
    assert_eq!(r.capacity(), 1 << 20);
    w.commit(4096).unwrap();
    w.write(0, b"rec").unwrap();
    assert_eq!(r.committed_len(), 4096);
    let mut buf = [0; 3];
    r.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"rec");
}

/// The child half of `named_sections_work_across_processes` (does nothing unless started by
/// it).
#[test]
fn child_of_named_sections_work_across_processes() {
    let _g = shared();
    let Ok(name) = std::env::var("VIRTMEM_SAFE_SECTIONS_CHILD") else {
        return;
    };
    let s = Section::open(&name, ViewAccess::ReadWrite).unwrap();
    let mut buf = [0; 6];
    s.map(0, 0, ViewAccess::Read)
        .unwrap()
        .read(0, &mut buf)
        .unwrap();
    assert_eq!(&buf, b"parent");
    let (g, existed) = GrowableView::named(&name, 1).unwrap();
    assert!(existed);
    assert_eq!(g.committed_len(), 4096);
    g.commit(8192).unwrap();
    g.write(4096, b"child").unwrap();
}

#[test]
fn named_sections_work_across_processes() {
    let _g = shared();
    let name = unique_name("processes");
    let (g, _) = or_skip!(GrowableView::named(&name, 1 << 20), "named sections");
    g.commit(4096).unwrap();
    g.write(0, b"parent").unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_of_named_sections_work_across_processes",
            "--test-threads=1",
        ])
        .env("VIRTMEM_SAFE_SECTIONS_CHILD", &name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The child's commit belongs to the section: this view sees it.
    assert_eq!(g.committed_len(), 8192);
    let mut buf = [0; 5];
    g.read(4096, &mut buf).unwrap();
    assert_eq!(&buf, b"child");
}

#[test]
fn file_sections_map_the_file() {
    let _g = shared();
    use std::io::{Read, Seek, Write};
    let (path, mut f) = temp_file("map");
    f.write_all(&[b'a'; 5000]).unwrap();
    let s = or_skip!(
        Section::from_file(&f, SectionProtect::ReadWrite, 0),
        "file-backed sections"
    );
    assert!(s.is_file_backed());
    assert_eq!(s.size(), 5000);
    let v = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
    assert_eq!(v.len(), 8192);
    let mut buf = [0; 3];
    v.read(4997, &mut buf).unwrap();
    assert_eq!(&buf, b"aaa");
    v.write(0, b"XYZ").unwrap();
    v.flush().unwrap();
    // A view of a file cannot be committed (its pages always are).
    assert!(matches!(v.commit(0, 1), Err(Error::AccessDenied(_))));
    // Copy-on-write writes stay out of the file.
    let c = s.map(0, 0, ViewAccess::CopyOnWrite).unwrap();
    c.write(3, b"cow").unwrap();
    drop((c, v, s));
    let mut back = Vec::new();
    f.rewind().unwrap();
    f.read_to_end(&mut back).unwrap();
    assert_eq!(&back[..6], b"XYZaaa");
    assert_eq!(back.len(), 5000);
    // A larger section extends a file open for writing; a read-only file refuses writes.
    let s = Section::from_file(&f, SectionProtect::ReadWrite, 70_000).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 70_000);
    drop(s);
    let ro = std::fs::File::open(&path).unwrap();
    assert!(matches!(
        Section::from_file(&ro, SectionProtect::ReadWrite, 0),
        Err(Error::AccessDenied(_))
    ));
    assert!(matches!(
        Section::from_file(&ro, SectionProtect::ReadOnly, 80_000),
        Err(Error::NotEnoughMemory(_))
    ));
    let s = Section::from_file(&ro, SectionProtect::WriteCopy, 0).unwrap();
    drop(f);
    drop(ro); // the section keeps its own descriptor
    let v = s.map(0, 0, ViewAccess::Read).unwrap();
    v.read(0, &mut buf).unwrap();
    assert_eq!(&buf, b"XYZ");
}

#[test]
fn growable_file_grows_and_is_truncated_when_closed() {
    // Asserts that a released address is free: alone, or another test may map there.
    let _g = alone();
    use std::io::Write;
    let (path, mut f) = temp_file("grow");
    f.write_all(b"header\n").unwrap();
    let mut g = or_skip!(GrowableFile::open(&f, 1 << 30), "file-backed sections");
    assert_eq!(g.len(), 7);
    assert_eq!((g.views(), g.capacity()), (1, 65536));
    let base = g.as_ptr() as usize;
    let mut expected = b"header\n".to_vec();
    for i in 0..20_000u32 {
        let rec = format!("record {i}\n");
        assert_eq!(g.append(rec.as_bytes()).unwrap(), expected.len());
        expected.extend_from_slice(rec.as_bytes());
    }
    assert_eq!(g.len(), expected.len());
    assert!(g.views() <= 6, "{} views", g.views());
    assert_eq!(g.as_ptr() as usize, base, "the mapping never moves");
    // While open, the file is as long as the mapping.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), g.capacity() as u64);
    let mut buf = vec![0; expected.len()];
    g.read(0, &mut buf).unwrap();
    assert_eq!(buf, expected);
    assert!(matches!(
        g.read(expected.len() - 1, &mut [0, 0]),
        Err(Error::NoAccess(_))
    ));
    // The views are adjacent regions of one range.
    let i = virtmem::query(base).unwrap();
    assert_eq!((i.kind, i.allocation_base), (RegionType::Mapped, base));
    // Atomics across view boundaries.
    let all = g.atomic_bytes(0, g.len()).unwrap();
    assert_eq!(all[expected.len() - 1].load(Ordering::Relaxed), b'\n');
    g.write(0, b"RECORD").unwrap();
    expected[..6].copy_from_slice(b"RECORD");
    g.flush().unwrap();
    g.set_len(10).unwrap();
    g.set_len(20).unwrap();
    let mut tail = [1; 10];
    g.read(10, &mut tail).unwrap();
    assert_eq!(tail, [0; 10], "bytes cut off and grown again read as zero");
    g.set_len(expected.len()).unwrap();
    g.write(10, &expected[10..]).unwrap();
    g.close().unwrap();
    assert_eq!(virtmem::query(base).unwrap().state, State::Free);
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    // Opening it again maps what is there.
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut g = GrowableFile::open(&f, 1 << 20).unwrap();
    assert_eq!(g.len(), expected.len());
    g.append(b"end").unwrap();
    drop(g);
    expected.extend_from_slice(b"end");
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    // Past the maximum.
    let mut g = GrowableFile::open(&f, 1 << 20).unwrap();
    assert!(matches!(g.set_len(2 << 20), Err(Error::NotEnoughMemory(_))));
    drop(g);
    assert!(matches!(
        GrowableFile::open(&f, 10),
        Err(Error::InvalidParameter(_))
    ));
    // An empty file maps nothing until it grows.
    let (path2, empty) = temp_file("empty");
    let mut g = GrowableFile::open(&empty, 1 << 20).unwrap();
    assert!(g.is_empty());
    assert_eq!((g.views(), g.capacity()), (0, 0));
    g.append(b"x").unwrap();
    g.close().unwrap();
    assert_eq!(std::fs::read(&path2).unwrap(), b"x");
}

#[test]
fn large_page_sections_are_all_or_nothing() {
    let _g = shared();
    let lp = virtmem::system_info().large_page_minimum;
    if lp == 0 {
        return;
    }
    match SectionOptions::new(lp as u64).large_pages(true).create() {
        Ok(s) => {
            let v = s.map(0, 0, ViewAccess::ReadWrite).unwrap();
            v.write(lp - 1, &[1]).unwrap();
            assert!(matches!(
                s.map(0, 4096, ViewAccess::Read),
                Err(Error::InvalidParameter(_))
            ));
        }
        Err(Error::NoSystemResources(_) | Error::PrivilegeNotHeld(_) | Error::NotSupported(_)) => {}
        Err(e) => panic!("{e:?}"),
    }
    assert!(matches!(
        SectionOptions::new(4096).large_pages(true).create(),
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(
        SectionOptions::new(lp as u64)
            .large_pages(true)
            .reserve(true)
            .create(),
        Err(Error::InvalidParameter(_))
    ));
}
