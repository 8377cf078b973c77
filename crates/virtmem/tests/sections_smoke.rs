//! First checks of sections and views through the Win32 face.
use std::ptr::{null, null_mut};
use virtmem::win32::*;

fn q(p: *const core::ffi::c_void) -> MEMORY_BASIC_INFORMATION {
    let mut m: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    assert_ne!(
        unsafe { VirtualQuery(p, &mut m, std::mem::size_of_val(&m)) },
        0
    );
    m
}

#[test]
fn pagefile_section_two_views() {
    unsafe {
        SetLastError(77);
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x3457,
            null(),
        );
        assert!(!h.is_null());
        assert_eq!(GetLastError(), 0);
        let a = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        let b = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0).Value as *mut u8;
        assert!(!a.is_null() && !b.is_null() && a != b);
        *a.add(100) = 42;
        assert_eq!(*b.add(100), 42);
        let m = q(a.cast());
        assert_eq!(
            (m.State, m.Protect, m.Type, m.RegionSize),
            (MEM_COMMIT, PAGE_READWRITE, MEM_MAPPED, 0x4000)
        );
        assert_eq!(m.AllocationBase, a.cast());
        let m = q(b.add(0x1000).cast());
        assert_eq!(
            (m.Protect, m.AllocationProtect, m.RegionSize),
            (PAGE_READONLY, PAGE_READONLY, 0x3000)
        );
        assert_eq!(VirtualFree(a.cast(), 0, MEM_RELEASE), FALSE);
        assert_eq!(GetLastError(), 87);
        assert_eq!(
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                Value: a.add(0x1064).cast()
            }),
            TRUE
        );
        let m = q(a.cast());
        assert_eq!((m.State, m.Protect), (MEM_FREE, PAGE_NOACCESS));
        assert_eq!(CloseHandle(h), TRUE);
        assert_eq!(*b.add(100), 42, "the view keeps the section alive");
        assert_eq!(
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: b.cast() }),
            TRUE
        );
        // (Closing `h` again could close another test's handle: values are reused.)
        assert_eq!(CloseHandle(0x7fff_fff0 as HANDLE), FALSE);
        assert_eq!(GetLastError(), 6);
    }
}

#[test]
fn sec_reserve_commit_is_shared() {
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE | SEC_RESERVE,
            0,
            0x10000,
            null(),
        );
        assert!(!h.is_null());
        let a = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        let b = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        let m = q(a.cast());
        assert_eq!(
            (m.State, m.Protect, m.AllocationProtect, m.RegionSize),
            (MEM_RESERVE, 0, PAGE_READWRITE, 0x10000)
        );
        let r = VirtualAlloc(a.add(0x2000).cast(), 0x1000, MEM_COMMIT, PAGE_READONLY);
        assert_eq!(r, a.add(0x2000).cast());
        let m = q(a.add(0x2000).cast());
        assert_eq!(
            (m.State, m.Protect, m.RegionSize),
            (MEM_COMMIT, PAGE_READONLY, 0x1000)
        );
        let m = q(b.add(0x2000).cast());
        assert_eq!(
            (m.State, m.Protect, m.RegionSize),
            (MEM_COMMIT, PAGE_READWRITE, 0x1000)
        );
        *b.add(0x2000) = 7;
        assert_eq!(*a.add(0x2000), 7);
        assert_eq!(
            VirtualFree(a.add(0x2000).cast(), 0x1000, MEM_DECOMMIT),
            FALSE
        );
        assert_eq!(GetLastError(), 87);
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: a.cast() });
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: b.cast() });
        CloseHandle(h);
    }
}

#[test]
fn copy_on_write_view() {
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x4000,
            null(),
        );
        let w = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        let c = MapViewOfFile(h, FILE_MAP_COPY, 0, 0, 0).Value as *mut u8;
        *w = 1;
        assert_eq!(*c, 1);
        let m = q(c.cast());
        assert_eq!(
            (m.Protect, m.AllocationProtect, m.RegionSize),
            (PAGE_WRITECOPY, PAGE_WRITECOPY, 0x4000)
        );
        *c.add(0x1000) = 9;
        assert_eq!(*w.add(0x1000), 0, "a copy is private");
        let m = q(c.add(0x1000).cast());
        assert_eq!((m.Protect, m.RegionSize), (PAGE_READWRITE, 0x1000));
        let m = q(c.cast());
        assert_eq!((m.Protect, m.RegionSize), (PAGE_WRITECOPY, 0x1000));
        // VirtualProtect(PAGE_WRITECOPY) on a shared view: writes stay private.
        let mut old = 0;
        assert_eq!(
            VirtualProtect(w.add(0x2000).cast(), 0x1000, PAGE_WRITECOPY, &mut old),
            TRUE,
            "err {}",
            GetLastError()
        );
        assert_eq!(old, PAGE_READWRITE);
        *w.add(0x2000) = 5;
        assert_eq!(*c.add(0x2000), 0);
        assert_eq!(q(w.add(0x2000).cast()).Protect, PAGE_READWRITE);
        // A read-only view refuses PAGE_READWRITE.
        let r = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0).Value;
        assert_eq!(VirtualProtect(r, 0x1000, PAGE_READWRITE, &mut old), FALSE);
        assert_eq!(GetLastError(), 87);
        assert_eq!(VirtualProtect(r, 0x1000, PAGE_WRITECOPY, &mut old), TRUE);
        for v in [w.cast(), c.cast(), r] {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v });
        }
        CloseHandle(h);
    }
}

#[test]
fn ring_buffer_in_placeholders() {
    unsafe {
        let size = 0x10000;
        let p = VirtualAlloc2(
            null_mut(),
            null(),
            2 * size,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        ) as *mut u8;
        assert!(!p.is_null());
        assert_eq!(
            VirtualFree(p.cast(), size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER),
            TRUE
        );
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            size as u32,
            null(),
        );
        let v1 = MapViewOfFile3(
            h,
            null_mut(),
            p.cast(),
            0,
            size,
            MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE,
            null_mut(),
            0,
        )
        .Value as *mut u8;
        assert_eq!(v1, p, "{}", GetLastError());
        let v2 = MapViewOfFile3(
            h,
            null_mut(),
            p.add(size).cast(),
            0,
            size,
            MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE,
            null_mut(),
            0,
        )
        .Value as *mut u8;
        assert_eq!(v2, p.add(size));
        *v1.add(size - 1) = 3;
        assert_eq!(*v2.add(size - 1), 3);
        assert_eq!(*v1.add(2 * size - 1), 3);
        assert_eq!(
            UnmapViewOfFile2(
                null_mut(),
                MEMORY_MAPPED_VIEW_ADDRESS { Value: v1.cast() },
                MEM_PRESERVE_PLACEHOLDER
            ),
            FALSE
        );
        assert_eq!(GetLastError(), 6);
        assert_eq!(
            UnmapViewOfFileEx(
                MEMORY_MAPPED_VIEW_ADDRESS { Value: v1.cast() },
                MEM_PRESERVE_PLACEHOLDER
            ),
            TRUE
        );
        let m = q(v1.cast());
        assert_eq!(
            (m.State, m.Type, m.RegionSize),
            (MEM_RESERVE, MEM_PRIVATE, size)
        );
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v2.cast() });
        CloseHandle(h);
        VirtualFree(p.cast(), 0, MEM_RELEASE);
    }
}

#[test]
fn names_in_one_process() {
    unsafe {
        let name = b"Local\\virtmem-smoke-name\0";
        let h = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            4096,
            name.as_ptr(),
        );
        assert!(!h.is_null());
        assert_eq!(GetLastError(), 0);
        let h2 = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            4096,
            name.as_ptr(),
        );
        assert_eq!(GetLastError(), ERROR_ALREADY_EXISTS);
        let o = OpenFileMappingA(FILE_MAP_READ, FALSE, name.as_ptr());
        assert!(!o.is_null());
        let v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        *v = 11;
        let r = MapViewOfFile(o, FILE_MAP_READ, 0, 0, 0).Value as *mut u8;
        assert_eq!(*r, 11);
        assert!(MapViewOfFile(o, FILE_MAP_WRITE, 0, 0, 0).Value.is_null());
        assert_eq!(GetLastError(), 5);
        CloseHandle(h);
        CloseHandle(h2);
        CloseHandle(o);
        assert!(OpenFileMappingA(FILE_MAP_READ, FALSE, name.as_ptr()).is_null());
        assert_eq!(GetLastError(), 2);
        assert_eq!(*r, 11);
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: r.cast() });
    }
}

#[test]
fn a_named_section_is_shared_with_another_process() {
    unsafe {
        let name = format!("Local\\virtmem-smoke-xproc-{}\0", std::process::id());
        let h = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE | SEC_RESERVE,
            0,
            0x20000,
            name.as_ptr(),
        );
        assert!(!h.is_null(), "{}", GetLastError());
        let v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        assert!(!v.is_null());
        assert!(!VirtualAlloc(v.cast(), 0x1000, MEM_COMMIT, PAGE_READWRITE).is_null());
        *v = 0x4d;
        // Another process (this test binary again, running only `xproc_child`): it knows
        // the name and nothing else.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "xproc_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("VIRTMEM_XPROC_NAME", name.trim_end_matches('\0'))
            .output()
            .unwrap();
        let status = out.status.code().unwrap_or(-1);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "child: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(status, 0);
        // The parent's view learns of the child's commit at its first touch.
        assert_eq!(*v.add(0x10000), 0x7e);
        let mut m: MEMORY_BASIC_INFORMATION = std::mem::zeroed();
        VirtualQuery(v.add(0x10000).cast(), &mut m, std::mem::size_of_val(&m));
        assert_eq!((m.State, m.Protect), (MEM_COMMIT, PAGE_READWRITE));
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        CloseHandle(h);
        assert!(OpenFileMappingA(FILE_MAP_READ, FALSE, name.as_ptr()).is_null());
        assert_eq!(GetLastError(), ERROR_FILE_NOT_FOUND);
    }
}

/// The other process of `a_named_section_is_shared_with_another_process` (run by it).
#[test]
#[ignore = "run by a_named_section_is_shared_with_another_process as a second process"]
fn xproc_child() {
    let Ok(name) = std::env::var("VIRTMEM_XPROC_NAME") else {
        return;
    };
    let name = format!("{name}\0");
    unsafe {
        let o = OpenFileMappingA(FILE_MAP_WRITE, FALSE, name.as_ptr());
        assert!(!o.is_null(), "OpenFileMapping: {}", GetLastError());
        let c = MapViewOfFile(o, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        assert!(!c.is_null(), "MapViewOfFile: {}", GetLastError());
        let mut m: MEMORY_BASIC_INFORMATION = std::mem::zeroed();
        VirtualQuery(c.add(0x10000).cast(), &mut m, std::mem::size_of_val(&m));
        assert_eq!(m.State, MEM_RESERVE, "the section's commit state is shared");
        assert_eq!(*c, 0x4d);
        // Commit a page the parent's view has reserved, and write it.
        assert!(!VirtualAlloc(c.add(0x10000).cast(), 0x1000, MEM_COMMIT, PAGE_READWRITE).is_null());
        *c.add(0x10000) = 0x7e;
    }
}

#[test]
fn a_file_backed_section() {
    unsafe {
        let path = format!("/tmp/virtmem-smoke-file-{}\0", std::process::id());
        let f = CreateFileA(
            path.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            null(),
            CREATE_ALWAYS,
            FILE_ATTRIBUTE_NORMAL,
            null_mut(),
        );
        assert_ne!(f, INVALID_HANDLE_VALUE, "{}", GetLastError());
        let data = [0x11u8; 0x3456];
        let mut n = 0;
        assert_eq!(
            WriteFile(f, data.as_ptr(), data.len() as u32, &mut n, null_mut()),
            TRUE
        );
        // Size 0: the file's size, to the byte (CF6).
        let s = CreateFileMappingA(f, null(), PAGE_READWRITE, 0, 0, null());
        assert!(!s.is_null(), "{}", GetLastError());
        let v = MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        assert!(!v.is_null(), "{}", GetLastError());
        assert_eq!(*v.add(0x3455), 0x11);
        assert_eq!(*v.add(0x3456), 0, "past the end of the file: zero (FB5)");
        *v = 0x22;
        assert_eq!(FlushViewOfFile(v.cast(), 0), TRUE);
        // MV4: a view one byte larger than the section is refused.
        assert!(MapViewOfFile(s, FILE_MAP_READ, 0, 0, 0x3457)
            .Value
            .is_null());
        assert_eq!(GetLastError(), 5);
        // VA1, RS2.
        assert!(VirtualAlloc(v.cast(), 0x1000, MEM_COMMIT, PAGE_READWRITE).is_null());
        assert_eq!(GetLastError(), 5);
        assert!(VirtualAlloc(v.cast(), 0x1000, MEM_RESET, PAGE_READWRITE).is_null());
        assert_eq!(GetLastError(), ERROR_USER_MAPPED_FILE);
        // FB3: the file cannot shrink while the section exists, even with its handle closed.
        assert_eq!(CloseHandle(s), TRUE);
        assert_eq!(SetFilePointer(f, 0x1000, null_mut(), FILE_BEGIN), 0x1000);
        assert_eq!(SetEndOfFile(f), FALSE);
        assert_eq!(GetLastError(), ERROR_USER_MAPPED_FILE);
        assert_eq!(
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() }),
            TRUE
        );
        assert_eq!(SetEndOfFile(f), TRUE, "{}", GetLastError());
        // The write through the view reached the file.
        assert_eq!(SetFilePointer(f, 0, null_mut(), FILE_BEGIN), 0);
        let mut b = [0u8; 2];
        assert_eq!(ReadFile(f, b.as_mut_ptr(), 2, &mut n, null_mut()), TRUE);
        assert_eq!(b, [0x22, 0x11]);
        // CF6: a read-only section larger than the file → 8; a writable one extends it.
        assert!(CreateFileMappingA(f, null(), PAGE_READONLY, 0, 0x2000, null()).is_null());
        assert_eq!(GetLastError(), 8);
        let s = CreateFileMappingA(f, null(), PAGE_READWRITE, 0, 0x2000, null());
        assert!(!s.is_null());
        let mut hi = 0;
        assert_eq!(GetFileSize(f, &mut hi), 0x2000);
        CloseHandle(s);
        CloseHandle(f);
        assert_eq!(DeleteFileA(path.as_ptr()), TRUE);
    }
}

#[test]
fn other_calls_on_views() {
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x4000,
            null(),
        );
        let v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        // OC1: VirtualLock works, GetWriteWatch does not.
        assert_eq!(VirtualLock(v.cast(), 0x2000), TRUE, "{}", GetLastError());
        assert_eq!(VirtualUnlock(v.cast(), 0x2000), TRUE);
        let mut addrs = [null_mut::<core::ffi::c_void>(); 4];
        let mut n = 4usize;
        let mut g = 0u32;
        assert_ne!(
            GetWriteWatch(0, v.cast(), 0x4000, addrs.as_mut_ptr(), &mut n, &mut g),
            0
        );
        assert_eq!(GetLastError(), 87);
        // RS1: MEM_RESET on a pagefile view returns the address.
        assert_eq!(
            VirtualAlloc(v.cast(), 0x1000, MEM_RESET, PAGE_READWRITE),
            v.cast()
        );
        // A guard page on a view: one shot.
        let mut old = 0;
        assert_eq!(
            VirtualProtect(
                v.add(0x1000).cast(),
                0x1000,
                PAGE_READWRITE | PAGE_GUARD,
                &mut old
            ),
            TRUE
        );
        let mut m: MEMORY_BASIC_INFORMATION = std::mem::zeroed();
        VirtualQuery(v.add(0x1000).cast(), &mut m, std::mem::size_of_val(&m));
        assert_eq!(m.Protect, PAGE_READWRITE | PAGE_GUARD);
        // VirtualLock meets the guard: STATUS_GUARD_PAGE_VIOLATION, and the guard is gone.
        assert_eq!(VirtualLock(v.add(0x1000).cast(), 0x1000), FALSE);
        VirtualQuery(v.add(0x1000).cast(), &mut m, std::mem::size_of_val(&m));
        assert_eq!(m.Protect, PAGE_READWRITE);
        *v.add(0x1000) = 1;
        // MEM_RESERVE at a view's address: taken.
        assert!(VirtualAlloc(v.cast(), 0x1000, MEM_RESERVE, PAGE_READWRITE).is_null());
        assert_eq!(GetLastError(), 487);
        // U2: not a view.
        let p = VirtualAlloc(null(), 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
        assert_eq!(
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: p }),
            FALSE
        );
        assert_eq!(GetLastError(), 487);
        VirtualFree(p, 0, MEM_RELEASE);
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        CloseHandle(h);
    }
}

#[test]
fn a_handle_with_more_access_still_maps_only_what_the_section_allows() {
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READONLY,
            0,
            0x1000,
            null(),
        );
        assert!(!h.is_null());
        let mut d: HANDLE = null_mut();
        assert_eq!(
            DuplicateHandle(
                CURRENT_PROCESS,
                h,
                CURRENT_PROCESS,
                &mut d,
                FILE_MAP_ALL_ACCESS | FILE_MAP_EXECUTE,
                FALSE,
                0
            ),
            TRUE
        );
        for access in [FILE_MAP_WRITE, FILE_MAP_READ | FILE_MAP_EXECUTE] {
            assert!(
                MapViewOfFile(d, access, 0, 0, 0).Value.is_null(),
                "{access:#x}"
            );
            assert_eq!(GetLastError(), 5, "{access:#x}");
        }
        // Copy-on-write and read views are what a PAGE_READONLY section allows (K:656-658).
        for access in [FILE_MAP_COPY, FILE_MAP_READ] {
            let v = MapViewOfFile(d, access, 0, 0, 0);
            assert!(!v.Value.is_null(), "{access:#x}: {}", GetLastError());
            UnmapViewOfFile(v);
        }
        CloseHandle(d);
        CloseHandle(h);
    }
}

/// Issue 13 item 3: a named section is its creating user's only, whatever the umask: its
/// object in /dev/shm is mode 0600, another user can neither open the object nor find the name
/// (names are per user). Needs root (to become another user in a child); skips otherwise.
#[test]
fn a_named_section_is_the_creating_users_only() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (to run a child as another user)");
        return;
    }
    let marker = format!("OnlyMine{}", std::process::id());
    let name = format!("Local\\{marker}\0");
    unsafe {
        let old_umask = libc::umask(0);
        let h = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x1000,
            name.as_ptr(),
        );
        libc::umask(old_umask);
        assert!(!h.is_null(), "{}", GetLastError());
        let object = std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains(&marker))
            .expect("the section's object in /dev/shm");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&object).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: whatever the umask", object.display());
        // Another user's process (this test binary again, as `nobody`).
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "other_user_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("VIRTMEM_OTHER_NAME", name.trim_end_matches('\0'))
            .env("VIRTMEM_OTHER_OBJECT", &object)
            .uid(65534)
            .gid(65534)
            .output();
        let Ok(out) = out else {
            eprintln!("skipped the other user's half: cannot run this binary as nobody");
            CloseHandle(h);
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("CANNOT-RUN") || !out.status.success() && !text.contains("running") {
            eprintln!(
                "skipped the other user's half: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert!(
                text.contains("OTHER-USER-OK"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        CloseHandle(h);
        assert!(!object.exists(), "the name goes with the last handle");
    }
}

/// The other user's half of `a_named_section_is_the_creating_users_only`.
#[test]
#[ignore = "run by a_named_section_is_the_creating_users_only as another user"]
fn other_user_child() {
    let (Ok(name), Ok(object)) = (
        std::env::var("VIRTMEM_OTHER_NAME"),
        std::env::var("VIRTMEM_OTHER_OBJECT"),
    ) else {
        return;
    };
    assert_ne!(unsafe { libc::geteuid() }, 0, "runs as another user");
    let path = std::ffi::CString::new(object).unwrap();
    // SAFETY: opening a path; a descriptor opened by mistake is never used.
    let opened = unsafe {
        libc::open(path.as_ptr(), libc::O_RDWR) >= 0
            || libc::open(path.as_ptr(), libc::O_RDONLY) >= 0
    };
    assert!(!opened, "another user opened the section's object");
    let name = format!("{name}\0");
    // SAFETY: a NUL-terminated name.
    let h = unsafe { OpenFileMappingA(FILE_MAP_READ, FALSE, name.as_ptr()) };
    assert!(h.is_null(), "another user found the name");
    assert_eq!(GetLastError(), ERROR_FILE_NOT_FOUND);
    println!("OTHER-USER-OK");
}

/// Issue 13 item 3: a process killed while it holds a named section leaves nothing behind that
/// blocks the next run: the next CreateFileMapping of the name creates a new, zero-filled
/// section (last error 0, not 183), and the dead process's object is gone.
#[test]
fn a_killed_holder_leaves_no_stale_name() {
    use std::io::{BufRead, BufReader};
    let marker = format!("Crashed{}", std::process::id());
    let name = format!("Local\\{marker}");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VIRTMEM_CRASH_NAME", &name)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("HOLDING"))),
        "the child did not create the section"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let cname = format!("{name}\0");
    unsafe {
        // Opening finds no live section of that name.
        assert!(OpenFileMappingA(FILE_MAP_READ, FALSE, cname.as_ptr()).is_null());
        assert_eq!(GetLastError(), ERROR_FILE_NOT_FOUND);
        SetLastError(77);
        let h = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x1000,
            cname.as_ptr(),
        );
        assert!(!h.is_null(), "{}", GetLastError());
        assert_eq!(GetLastError(), 0, "a new section, not the dead process's");
        let v = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0).Value as *const u8;
        assert_eq!(*v, 0, "zero-filled: not the dead process's pages");
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v as *mut _ });
        CloseHandle(h);
    }
    let left = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(&marker));
    assert!(!left, "an object of the name is left in /dev/shm");
}

/// The process `a_killed_holder_leaves_no_stale_name` kills while it holds a named section.
#[test]
#[ignore = "run by a_killed_holder_leaves_no_stale_name, which kills it"]
fn crash_child() {
    let Ok(name) = std::env::var("VIRTMEM_CRASH_NAME") else {
        return;
    };
    let cname = format!("{name}\0");
    unsafe {
        let h = CreateFileMappingA(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE,
            0,
            0x1000,
            cname.as_ptr(),
        );
        assert!(!h.is_null());
        let v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        *v = 0x99;
    }
    println!("HOLDING");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Two threads committing through two views of one SEC_RESERVE section at once: each commit
/// reaches the other view, and neither waits for the other (a commit once held its view's
/// lock while taking the other view's: two such commits deadlocked, as did a `fork` between
/// them).
#[test]
fn commits_through_two_views_at_once_do_not_wait_for_each_other() {
    const PAGES: usize = 256;
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE | SEC_RESERVE,
            0,
            (2 * PAGES * 0x1000) as u32,
            null(),
        );
        assert!(!h.is_null());
        let a = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as usize;
        let b = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as usize;
        let run = |view: usize, first: usize| {
            move || {
                for i in 0..PAGES {
                    let page = view + (first + i) * 0x1000;
                    assert!(
                        !VirtualAlloc(page as *const _, 0x1000, MEM_COMMIT, PAGE_READWRITE)
                            .is_null()
                    );
                    *(page as *mut u8) = 1;
                }
            }
        };
        let t1 = std::thread::spawn(run(a, 0));
        let t2 = std::thread::spawn(run(b, PAGES));
        t1.join().unwrap();
        t2.join().unwrap();
        // Every page is committed in both views, and holds what either view wrote.
        for v in [a, b] {
            let mut m: MEMORY_BASIC_INFORMATION = std::mem::zeroed();
            VirtualQuery(v as *const _, &mut m, std::mem::size_of_val(&m));
            assert_eq!((m.State, m.RegionSize), (MEM_COMMIT, 2 * PAGES * 0x1000));
            assert!((0..2 * PAGES).all(|i| *((v + i * 0x1000) as *const u8) == 1));
        }
        for v in [a, b] {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v as *mut _ });
        }
        CloseHandle(h);
    }
}
