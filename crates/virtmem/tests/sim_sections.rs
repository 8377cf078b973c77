//! Sections and views on the simulated backend, through the public face
//! (`virtmem::sim::SimSpace`): the `sections.md` rules that hold on real memory
//! (`tests/sections_smoke.rs`) hold in a simulated 32-bit process too, and named sections are
//! shared by the simulated processes of one machine.

use virtmem::sim::{SimMachine, SimSpace};
use virtmem::win32::*;
use virtmem::{Access, Layout, MapRequest, RegionType, SectionSource, State};

fn code<T: std::fmt::Debug>(r: virtmem::Result<T>) -> u32 {
    r.expect_err("the call should fail").win32_code()
}

/// A MapViewOfFile request: the whole section, anywhere, with the protection MV1 gives
/// `access`.
fn view(handle: usize, access: u32) -> MapRequest {
    MapRequest {
        handle,
        protect: virtmem::sim::view_protection(access),
        offset: 0,
        size: 0,
        base: None,
        replace_placeholder: false,
        highest_end: None,
    }
}

fn pagefile(s: &SimSpace, protect: u32, size: u64, name: Option<&str>) -> usize {
    s.create_section(SectionSource::Pagefile, protect, size, name)
        .expect("CreateFileMapping")
        .handle
}

fn read_byte(s: &SimSpace, addr: usize) -> u8 {
    let mut b = [0u8];
    s.read(addr, &mut b).expect("readable");
    b[0]
}

#[test]
fn two_views_share_the_data_and_the_section_outlives_its_handle() {
    let s = SimSpace::new(Layout::WIN32);
    let h = pagefile(&s, PAGE_READWRITE, 0x3457, None);
    let a = s.map_view(view(h, FILE_MAP_WRITE)).unwrap();
    let b = s.map_view(view(h, FILE_MAP_READ)).unwrap();
    assert_ne!(a, b);
    assert_eq!(a % 0x10000, 0);
    assert_eq!(b % 0x10000, 0);
    s.write(a + 100, &[42]).unwrap();
    assert_eq!(read_byte(&s, b + 100), 42);
    let m = s.query(a).unwrap();
    assert_eq!(
        (m.state, m.protect, m.kind, m.region_size, m.allocation_base),
        (State::Commit, PAGE_READWRITE, RegionType::Mapped, 0x4000, a)
    );
    let m = s.query(b + 0x1000).unwrap();
    assert_eq!(
        (m.protect, m.allocation_protect, m.region_size),
        (PAGE_READONLY, PAGE_READONLY, 0x3000)
    );
    // A read-only view faults on a write.
    assert!(matches!(
        s.write(b, &[1]),
        Err(virtmem::sim::AccessError::AccessViolation {
            access: Access::Write,
            ..
        })
    ));
    // Views are freed only by UnmapViewOfFile (VF2), by any address inside (U1).
    assert_eq!(code(s.virtual_free(a, 0, MEM_RELEASE)), 87);
    s.unmap_view(a + 0x1064, false).unwrap();
    let m = s.query(a).unwrap();
    assert_eq!((m.state, m.protect), (State::Free, PAGE_NOACCESS));
    s.close_handle(h).unwrap();
    assert_eq!(
        read_byte(&s, b + 100),
        42,
        "the view keeps the section alive"
    );
    assert_eq!(s.machine().section_objects(), 1);
    s.unmap_view(b, false).unwrap();
    assert_eq!(s.machine().section_objects(), 0, "the last view frees it");
    assert_eq!(s.stored_pages(), 0);
    assert_eq!(code(s.close_handle(h)), 6);
    assert_eq!(code(s.unmap_view(b, false)), 487);
}

#[test]
fn creation_errors_follow_windows_order() {
    let s = SimSpace::new(Layout::WIN32);
    let create = |src, p, size| s.create_section(src, p, size, None);
    assert_eq!(
        code(create(SectionSource::Pagefile, PAGE_NOACCESS, 0x1000)),
        87
    );
    assert_eq!(code(create(SectionSource::Pagefile, PAGE_READWRITE, 0)), 87);
    assert_eq!(
        code(create(
            SectionSource::Pagefile,
            PAGE_READWRITE | SEC_COMMIT | SEC_RESERVE,
            0x1000
        )),
        87
    );
    assert_eq!(
        code(create(
            SectionSource::Pagefile,
            PAGE_READWRITE | SEC_IMAGE,
            0x1000
        )),
        193
    );
    // The simulated machine has no files: a clear ERROR_NOT_SUPPORTED, after the checks of
    // the protection.
    assert_eq!(code(create(SectionSource::File(4), PAGE_NOACCESS, 0)), 87);
    let e = create(SectionSource::File(4), PAGE_READWRITE, 0).unwrap_err();
    assert_eq!(e.win32_code(), 50);
    assert!(e.to_string().contains("no files"), "{e}");
    assert_eq!(
        code(s.create_section(
            SectionSource::Pagefile,
            PAGE_READWRITE,
            0x1000,
            Some("Local\\a\\b")
        )),
        3
    );
    assert_eq!(code(s.open_section(FILE_MAP_READ, None)), 87);
    assert_eq!(code(s.open_section(FILE_MAP_READ, Some("nobody"))), 2);
}

#[test]
fn view_placement_and_size_rules() {
    let s = SimSpace::new(Layout::WIN32);
    let h = pagefile(&s, PAGE_READWRITE, 0x30000, None);
    let req = |offset, size, base| MapRequest {
        offset,
        size,
        base,
        ..view(h, FILE_MAP_WRITE)
    };
    assert_eq!(code(s.map_view(req(0x1000, 0, None))), 1132);
    assert_eq!(code(s.map_view(req(0, 0x1000, Some(0x4000_1000)))), 1132);
    assert_eq!(code(s.map_view(req(0, 0x30001, None))), 5);
    assert_eq!(code(s.map_view(req(0x30000, 0, None))), 5);
    let v = s.map_view(req(0x10000, 0x3452, Some(0x4000_0000))).unwrap();
    assert_eq!(v, 0x4000_0000);
    assert_eq!(
        s.query(v).unwrap().region_size,
        0x4000,
        "rounded up to pages"
    );
    assert_eq!(code(s.map_view(req(0, 0, Some(0x4000_0000)))), 487);
    // The offset is honoured: the view at offset 0x10000 shows that part of the section.
    let all = s.map_view(req(0, 0, None)).unwrap();
    s.write(all + 0x10005, b"x").unwrap();
    assert_eq!(read_byte(&s, v + 5), b'x');
    // Access rights: a read-only section refuses a writable view.
    let ro = pagefile(&s, PAGE_READONLY, 0x1000, None);
    assert_eq!(code(s.map_view(view(ro, FILE_MAP_WRITE))), 5);
    assert!(s.map_view(view(ro, FILE_MAP_COPY)).is_ok());
    assert_eq!(code(s.map_view(view(0x1234, FILE_MAP_READ))), 6);
}

#[test]
fn copy_on_write_views_keep_private_copies() {
    let s = SimSpace::new(Layout::WIN32);
    let h = pagefile(&s, PAGE_READWRITE, 0x4000, None);
    let w = s.map_view(view(h, FILE_MAP_WRITE)).unwrap();
    let c = s.map_view(view(h, FILE_MAP_COPY)).unwrap();
    s.write(w, &[1]).unwrap();
    assert_eq!(
        read_byte(&s, c),
        1,
        "an unwritten copy-on-write page shows the section"
    );
    let m = s.query(c).unwrap();
    assert_eq!(
        (m.protect, m.allocation_protect, m.region_size),
        (PAGE_WRITECOPY, PAGE_WRITECOPY, 0x4000)
    );
    s.write(c + 0x1000, &[9]).unwrap();
    assert_eq!(read_byte(&s, w + 0x1000), 0, "a copy is private");
    assert_eq!(read_byte(&s, c + 0x1000), 9);
    let m = s.query(c + 0x1000).unwrap();
    assert_eq!((m.protect, m.region_size), (PAGE_READWRITE, 0x1000), "CW1");
    assert_eq!(s.query(c).unwrap().region_size, 0x1000);
    // Later writes to the section no longer reach the copied page, but still reach the others.
    s.write(w + 0x1000, &[7]).unwrap();
    s.write(w + 0x2000, &[8]).unwrap();
    assert_eq!(read_byte(&s, c + 0x1000), 9);
    assert_eq!(read_byte(&s, c + 0x2000), 8);
    // Protection changes keep the copy.
    assert_eq!(
        s.virtual_protect(c + 0x1000, 0x1000, PAGE_READONLY)
            .unwrap(),
        PAGE_READWRITE
    );
    assert_eq!(read_byte(&s, c + 0x1000), 9);
    // VirtualProtect(PAGE_WRITECOPY) on a shared view: its next write stays private.
    assert_eq!(
        s.virtual_protect(w + 0x3000, 0x1000, PAGE_WRITECOPY)
            .unwrap(),
        PAGE_READWRITE
    );
    s.write(w + 0x3000, &[5]).unwrap();
    assert_eq!(read_byte(&s, c + 0x3000), 0);
    assert_eq!(read_byte(&s, w + 0x3000), 5);
    assert_eq!(s.query(w + 0x3000).unwrap().protect, PAGE_READWRITE);
    // A read-only view refuses PAGE_READWRITE (VP1) and accepts PAGE_WRITECOPY.
    let r = s.map_view(view(h, FILE_MAP_READ)).unwrap();
    assert_eq!(code(s.virtual_protect(r, 0x1000, PAGE_READWRITE)), 87);
    assert_eq!(
        s.virtual_protect(r, 0x1000, PAGE_WRITECOPY).unwrap(),
        PAGE_READONLY
    );
    // Unmapping drops the private copies with the view.
    let before = s.stored_pages();
    s.unmap_view(c, false).unwrap();
    assert_eq!(s.stored_pages(), before - 1);
}

#[test]
fn sec_reserve_commits_belong_to_the_section() {
    let s = SimSpace::new(Layout::WIN32);
    let h = pagefile(&s, PAGE_READWRITE | SEC_RESERVE, 0x10000, None);
    let a = s.map_view(view(h, FILE_MAP_WRITE)).unwrap();
    let b = s.map_view(view(h, FILE_MAP_WRITE)).unwrap();
    let m = s.query(a).unwrap();
    assert_eq!(
        (m.state, m.protect, m.allocation_protect, m.region_size),
        (State::Reserve, 0, PAGE_READWRITE, 0x10000)
    );
    assert!(s.write(a + 0x2000, &[1]).is_err(), "reserved pages fault");
    assert_eq!(
        s.virtual_alloc(a + 0x2000, 0x1000, MEM_COMMIT, PAGE_READONLY, false)
            .unwrap(),
        a + 0x2000
    );
    let m = s.query(a + 0x2000).unwrap();
    assert_eq!(
        (m.state, m.protect, m.region_size),
        (State::Commit, PAGE_READONLY, 0x1000)
    );
    let m = s.query(b + 0x2000).unwrap();
    assert_eq!(
        (m.state, m.protect, m.region_size),
        (State::Commit, PAGE_READWRITE, 0x1000),
        "VA3: the other view sees the commit with its own protection"
    );
    s.write(b + 0x2000, &[7]).unwrap();
    assert_eq!(read_byte(&s, a + 0x2000), 7);
    assert_eq!(code(s.virtual_free(a + 0x2000, 0x1000, MEM_DECOMMIT)), 87);
    // A view mapped later sees the commit too.
    let c = s.map_view(view(h, FILE_MAP_READ)).unwrap();
    let m = s.query(c + 0x2000).unwrap();
    assert_eq!((m.state, m.protect), (State::Commit, PAGE_READONLY));
    assert_eq!(s.query(c).unwrap().state, State::Reserve);
    assert_eq!(read_byte(&s, c + 0x2000), 7);
}

#[test]
fn placeholders_take_views_a_circular_buffer() {
    // PH3: a section of 64 KiB mapped twice, back to back, into the halves of a placeholder.
    let s = SimSpace::new(Layout::WIN32);
    let size = 0x10000;
    let p = s
        .virtual_alloc2(
            0,
            2 * size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            &[],
            false,
        )
        .unwrap();
    s.virtual_free(p, size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)
        .unwrap();
    let h = pagefile(&s, PAGE_READWRITE, size as u64, None);
    let into = |base| MapRequest {
        base: Some(base),
        size,
        replace_placeholder: true,
        ..view(h, FILE_MAP_WRITE)
    };
    assert_eq!(s.map_view(into(p)).unwrap(), p);
    assert_eq!(s.map_view(into(p + size)).unwrap(), p + size);
    s.close_handle(h).unwrap();
    // A record across the middle is contiguous, and wraps to the start.
    s.write(p + size - 2, b"abcd").unwrap();
    let mut b = [0u8; 4];
    s.read(p + size - 2, &mut b).unwrap();
    assert_eq!(&b, b"abcd");
    s.read(p, &mut b[..2]).unwrap();
    assert_eq!(&b[..2], b"cd");
    let m = s.query(p + size).unwrap();
    assert_eq!(
        (m.kind, m.allocation_base, m.region_size),
        (RegionType::Mapped, p + size, size)
    );
    // Back to a placeholder (U7): the contents are gone from it.
    s.unmap_view(p, true).unwrap();
    let m = s.query(p).unwrap();
    assert_eq!(
        (m.state, m.kind, m.allocation_protect, m.region_size),
        (State::Reserve, RegionType::Private, PAGE_NOACCESS, size)
    );
    s.unmap_view(p + size, false).unwrap();
    assert_eq!(s.query(p + size).unwrap().state, State::Free);
    assert_eq!(s.machine().section_objects(), 0);
    // MEM_PRESERVE_PLACEHOLDER on a view that replaced no placeholder: 487.
    let h = pagefile(&s, PAGE_READWRITE, 0x1000, None);
    let v = s.map_view(view(h, FILE_MAP_WRITE)).unwrap();
    assert_eq!(code(s.unmap_view(v, true)), 487);
}

#[test]
fn names_and_handles() {
    let s = SimSpace::new(Layout::WIN32);
    let c = s
        .create_section(
            SectionSource::Pagefile,
            PAGE_READWRITE,
            0x1000,
            Some("Local\\x"),
        )
        .unwrap();
    assert!(!c.existed);
    // The same name in this process: the existing section.
    let again = s
        .create_section(SectionSource::Pagefile, PAGE_READWRITE, 0x2000, Some("x"))
        .unwrap();
    assert!(again.existed, "no prefix is Local\\");
    let v1 = s.map_view(view(c.handle, FILE_MAP_WRITE)).unwrap();
    let v2 = s.map_view(view(again.handle, FILE_MAP_READ)).unwrap();
    s.write(v1, b"!").unwrap();
    assert_eq!(read_byte(&s, v2), b'!');
    // Opened with FILE_MAP_READ: no writable view (OF2).
    let r = s.open_section(FILE_MAP_READ, Some("Local\\x")).unwrap();
    assert_eq!(code(s.map_view(view(r, FILE_MAP_WRITE))), 5);
    // DuplicateHandle: access as asked, or the source's.
    let d = s
        .duplicate_handle(r, FILE_MAP_WRITE | FILE_MAP_READ, false, false)
        .unwrap();
    assert!(s.map_view(view(d, FILE_MAP_WRITE)).is_ok());
    // DUPLICATE_CLOSE_SOURCE (the closed value may be given out again at once).
    let d2 = s.duplicate_handle(r, 0, true, true).unwrap();
    assert_eq!(code(s.map_view(view(d2, FILE_MAP_WRITE))), 5);
    assert!(s.map_view(view(d2, FILE_MAP_READ)).is_ok());
    // The name lives while a handle does (NS2), views or not.
    for h in [c.handle, again.handle, d, d2] {
        s.close_handle(h).unwrap();
    }
    assert_eq!(code(s.open_section(FILE_MAP_READ, Some("x"))), 2);
    assert!(s.machine().section_names().is_empty());
    assert_eq!(read_byte(&s, v2), b'!', "the views still work");
    let fresh = s
        .create_section(SectionSource::Pagefile, PAGE_READWRITE, 0x1000, Some("x"))
        .unwrap();
    assert!(!fresh.existed, "a new section under the old name");
    let v3 = s.map_view(view(fresh.handle, FILE_MAP_READ)).unwrap();
    assert_eq!(read_byte(&s, v3), 0);
    assert_eq!(s.machine().section_names(), vec!["Local\\x".to_string()]);
}

#[test]
fn two_processes_share_a_named_section() {
    let machine = SimMachine::new();
    let a = machine.space(Layout::WIN32);
    let b = machine.space(Layout::WIN32);
    let ha = a
        .create_section(
            SectionSource::Pagefile,
            PAGE_READWRITE,
            0x2000,
            Some("Local\\compartida"),
        )
        .unwrap();
    assert!(!ha.existed);
    let va = a.map_view(view(ha.handle, FILE_MAP_ALL_ACCESS)).unwrap();
    a.write(va, b"hola desde A\0").unwrap();
    // B opens it by name: the same bytes.
    let hb = b
        .open_section(FILE_MAP_READ, Some("Local\\compartida"))
        .unwrap();
    let vb = b.map_view(view(hb, FILE_MAP_READ)).unwrap();
    let mut buf = [0u8; 12];
    b.read(vb, &mut buf).unwrap();
    assert_eq!(&buf, b"hola desde A");
    assert_eq!(b.query(vb).unwrap().kind, RegionType::Mapped);
    assert_eq!(code(b.map_view(view(hb, FILE_MAP_WRITE))), 5);
    // CreateFileMapping of the name in B: ERROR_ALREADY_EXISTS, the same section.
    let hb2 = b
        .create_section(
            SectionSource::Pagefile,
            PAGE_READWRITE,
            0x1000,
            Some("Local\\compartida"),
        )
        .unwrap();
    assert!(hb2.existed);
    let vb2 = b.map_view(view(hb2.handle, FILE_MAP_WRITE)).unwrap();
    b.write(vb2 + 0x1000, b"B").unwrap();
    let mut one = [0u8];
    a.read(va + 0x1000, &mut one).unwrap();
    assert_eq!(&one, b"B", "B's writes reach A");
    // Copy-on-write in B stays in B (NS1, CW2).
    let cb = b.map_view(view(hb2.handle, FILE_MAP_COPY)).unwrap();
    b.write(cb, b"X").unwrap();
    a.read(va, &mut one).unwrap();
    assert_eq!(&one, b"h");
    // Another namespace is another name.
    assert_eq!(
        code(b.open_section(FILE_MAP_READ, Some("Global\\compartida"))),
        2
    );
    // A closes its handle: B's handles keep the name alive.
    a.close_handle(ha.handle).unwrap();
    assert!(b
        .open_section(FILE_MAP_READ, Some("Local\\compartida"))
        .is_ok());
    let ha2 = a
        .open_section(FILE_MAP_READ, Some("Local\\compartida"))
        .unwrap();
    // B ends (its handles close, its views go): the name still lives in A.
    drop(b);
    assert_eq!(
        machine.section_names(),
        vec!["Local\\compartida".to_string()]
    );
    a.close_handle(ha2).unwrap();
    assert!(machine.section_names().is_empty());
    assert_eq!(machine.section_objects(), 1, "A's view still maps it");
    a.unmap_view(va, false).unwrap();
    assert_eq!(machine.section_objects(), 0);
}

#[test]
fn processes_on_different_machines_do_not_share_names() {
    let a = SimSpace::new(Layout::WIN32);
    let b = SimSpace::new(Layout::WIN32);
    a.create_section(SectionSource::Pagefile, PAGE_READWRITE, 0x1000, Some("n"))
        .unwrap();
    assert_eq!(code(b.open_section(FILE_MAP_READ, Some("n"))), 2);
}

#[test]
fn custom_page_sizes_and_flush() {
    let l = Layout {
        page_size: 0x4000,
        granularity: 0x40000,
        ..Layout::WIN32
    };
    let s = SimSpace::new(l);
    let h = pagefile(&s, PAGE_READWRITE, 0x4001, None);
    let v = s.map_view(view(h, FILE_MAP_WRITE)).unwrap();
    assert_eq!(v % 0x40000, 0);
    let m = s.query(v).unwrap();
    assert_eq!(m.region_size, 0x8000, "two 16 KiB pages");
    s.write(v + 0x7fff, b"z").unwrap();
    let w = s.map_view(view(h, FILE_MAP_READ)).unwrap();
    assert_eq!(read_byte(&s, w + 0x7fff), b'z');
    s.flush_view(v, 0).unwrap();
    assert_eq!(code(s.flush_view(v, 0x10000)), 87);
    assert_eq!(code(s.flush_view(0x7000_0000, 0)), 487);
}

#[test]
fn a_commit_in_one_process_reaches_the_other_processes_views() {
    // VA3 across processes: B's view learns of A's commit at B's next access, as the fault
    // handler makes it learn on real memory.
    let machine = SimMachine::new();
    let a = machine.space(Layout::WIN32);
    let b = machine.space(Layout::WIN32);
    let name = Some("Local\\reserva");
    let ha = pagefile(&a, PAGE_READWRITE | SEC_RESERVE, 0x10000, name);
    let va = a.map_view(view(ha, FILE_MAP_WRITE)).unwrap();
    let hb = b.open_section(FILE_MAP_ALL_ACCESS, name).unwrap();
    let vb = b.map_view(view(hb, FILE_MAP_WRITE)).unwrap();
    a.virtual_alloc(va + 0x3000, 0x1000, MEM_COMMIT, PAGE_READWRITE, false)
        .unwrap();
    a.write(va + 0x3000, b"A").unwrap();
    assert_eq!(read_byte(&b, vb + 0x3000), b'A');
    b.write(vb + 0x3001, b"B").unwrap();
    assert_eq!(read_byte(&a, va + 0x3001), b'B');
    assert!(b.read(vb + 0x4000, &mut [0u8]).is_err(), "still reserved");
    let m = b.query(vb + 0x3000).unwrap();
    assert_eq!(
        (m.state, m.protect, m.region_size),
        (State::Commit, PAGE_READWRITE, 0x1000)
    );
}
