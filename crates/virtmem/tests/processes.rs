//! Other processes (issue 15 item 1, item 7): OpenProcess, ReadProcessMemory,
//! WriteProcessMemory, VirtualQueryEx, the `...Ex` functions' refusal, access rights, and the
//! safe `Process` type — against a real child process.
//!
//! The child is this test binary run again with `VIRTMEM_PROCESSES_CHILD` set: its
//! `child_main` test allocates known memory, prints the addresses, and waits for its standard
//! input to close. Nothing waits for a time: the child is ready when it has printed its line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
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

const CHILD_ENV: &str = "VIRTMEM_PROCESSES_CHILD";
const NOBODY_ENV: &str = "VIRTMEM_PROCESSES_NOBODY";

fn page() -> usize {
    let mut si = unsafe { std::mem::zeroed::<SYSTEM_INFO>() };
    unsafe { GetSystemInfo(&mut si) };
    si.dwPageSize as usize
}

/// The pattern byte at offset `i` of the child's read-write pages.
fn pattern(i: usize) -> u8 {
    (i * 7 + 3) as u8
}

/// The child: allocates, prints `ready rw ro rx`, waits for stdin to close.
///
/// * `rw`: three pages — two PAGE_READWRITE filled with [`pattern`], then one PAGE_NOACCESS;
/// * `ro`: one PAGE_READONLY page;
/// * `rx`: one PAGE_EXECUTE_READ page of 0xC3.
#[test]
fn child_main() {
    let _order = shared();
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let p = page();
    unsafe {
        let rw = VirtualAlloc(
            std::ptr::null(),
            3 * p,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        ) as *mut u8;
        assert!(!rw.is_null());
        for i in 0..2 * p {
            *rw.add(i) = pattern(i);
        }
        let mut old = 0;
        assert_eq!(
            VirtualProtect(rw.add(2 * p).cast(), p, PAGE_NOACCESS, &mut old),
            TRUE
        );
        let ro = VirtualAlloc(
            std::ptr::null(),
            p,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        ) as *mut u8;
        std::ptr::write_bytes(ro, 0x11, p);
        assert_eq!(VirtualProtect(ro.cast(), p, PAGE_READONLY, &mut old), TRUE);
        let rx = VirtualAlloc(
            std::ptr::null(),
            p,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        ) as *mut u8;
        std::ptr::write_bytes(rx, 0xC3, p);
        assert_eq!(
            VirtualProtect(rx.cast(), p, PAGE_EXECUTE_READ, &mut old),
            TRUE
        );
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "ready {:x} {:x} {:x}",
            rw as usize, ro as usize, rx as usize
        )
        .unwrap();
        out.flush().unwrap();
    }
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    std::process::exit(0);
}

/// A running child and the addresses it printed; killed when dropped.
struct Kid {
    child: Child,
    pid: u32,
    rw: usize,
    ro: usize,
    rx: usize,
}

impl Kid {
    fn spawn() -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let line = loop {
            let l = lines
                .next()
                .expect("the child ended before it was ready")
                .unwrap();
            // libtest prints "test child_main ... " before the test's own output.
            if let Some((_, rest)) = l.split_once("ready ") {
                break rest.to_string();
            }
        };
        let v: Vec<usize> = line
            .split(' ')
            .map(|x| usize::from_str_radix(x, 16).unwrap())
            .collect();
        let pid = child.id();
        Kid {
            child,
            pid,
            rw: v[0],
            ro: v[1],
            rx: v[2],
        }
    }

    fn open(&self, access: u32) -> HANDLE {
        let h = unsafe { OpenProcess(access, FALSE, self.pid) };
        assert!(!h.is_null(), "OpenProcess: {}", GetLastError());
        h
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(h: HANDLE, addr: usize, len: usize) -> (BOOL, u32, usize, Vec<u8>) {
    let mut buf = vec![0u8; len];
    let mut n = usize::MAX;
    SetLastError(0);
    let ok =
        unsafe { ReadProcessMemory(h, addr as *const _, buf.as_mut_ptr().cast(), len, &mut n) };
    (ok, GetLastError(), n, buf)
}

fn write(h: HANDLE, addr: usize, data: &[u8]) -> (BOOL, u32, usize) {
    let mut n = 12345usize;
    SetLastError(0);
    let ok = unsafe {
        WriteProcessMemory(
            h,
            addr as *const _,
            data.as_ptr().cast(),
            data.len(),
            &mut n,
        )
    };
    (ok, GetLastError(), n)
}

fn vq(h: HANDLE, addr: usize) -> Result<MEMORY_BASIC_INFORMATION, u32> {
    let mut mbi = unsafe { std::mem::zeroed::<MEMORY_BASIC_INFORMATION>() };
    let n = unsafe {
        VirtualQueryEx(
            h,
            addr as *const _,
            &mut mbi,
            size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    if n == 0 {
        Err(GetLastError())
    } else {
        assert_eq!(n, size_of::<MEMORY_BASIC_INFORMATION>());
        Ok(mbi)
    }
}

fn vq_err(h: HANDLE, addr: usize) -> u32 {
    vq(h, addr).err().expect("VirtualQueryEx succeeded")
}

#[test]
fn read_and_write_another_process() {
    let _order = shared();
    let kid = Kid::spawn();
    let p = page();
    let h = kid.open(PROCESS_ALL_ACCESS);
    // A whole read of the two read-write pages.
    let (ok, _, n, buf) = read(h, kid.rw, 2 * p);
    assert_eq!((ok, n), (TRUE, 2 * p));
    assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    // The count pointer may be NULL.
    let mut one = [0u8; 1];
    let ok = unsafe {
        ReadProcessMemory(
            h,
            (kid.rw + 5) as *const _,
            one.as_mut_ptr().cast(),
            1,
            std::ptr::null_mut(),
        )
    };
    assert_eq!((ok, one[0]), (TRUE, pattern(5)));
    // Zero bytes: success, nothing done.
    let (ok, _, n, _) = read(h, kid.rw, 0);
    assert_eq!((ok, n), (TRUE, 0));
    // Across into the no-access page: a partial copy. Windows counts only whole chunks of its
    // copy (14 pages): nothing here (case 141), though the readable bytes did arrive.
    let (ok, err, n, buf) = read(h, kid.rw + p + 16, p);
    assert_eq!((ok, err, n), (FALSE, ERROR_PARTIAL_COPY, 0));
    assert!(buf[..p - 16]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(p + 16 + i)));
    // Starting in the no-access page: nothing.
    let (ok, err, n, _) = read(h, kid.rw + 2 * p, 8);
    assert_eq!((ok, err, n), (FALSE, ERROR_PARTIAL_COPY, 0));

    // Writes into a read-write page, read back.
    let (ok, _, n) = write(h, kid.rw + 100, b"hello, child");
    assert_eq!((ok, n), (TRUE, 12));
    assert_eq!(&read(h, kid.rw + 100, 12).3[..], b"hello, child");
    // A read-only page: ERROR_NOACCESS, the count untouched, nothing written.
    let (ok, err, n) = write(h, kid.ro, &[0x22; 4]);
    assert_eq!((ok, err, n), (FALSE, ERROR_NOACCESS, 12345));
    assert_eq!(read(h, kid.ro, 4).3, vec![0x11; 4]);
    // A range running from a writable page into the no-access page: refused as a whole.
    let (ok, err, n) = write(h, kid.rw + 2 * p - 4, &[0x33; 8]);
    assert_eq!((ok, err, n), (FALSE, ERROR_NOACCESS, 12345));
    assert!(read(h, kid.rw + 2 * p - 4, 4)
        .3
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(2 * p - 4 + i)));
    // An execute-read page takes the write (Windows makes it writable for the copy) and keeps
    // its protection.
    let (ok, _, n) = write(h, kid.rx + 8, &[0x90; 4]);
    assert_eq!((ok, n), (TRUE, 4), "error {}", GetLastError());
    assert_eq!(
        read(h, kid.rx + 6, 8).3,
        vec![0xC3, 0xC3, 0x90, 0x90, 0x90, 0x90, 0xC3, 0xC3]
    );
    assert_eq!(vq(h, kid.rx).unwrap().Protect, PAGE_EXECUTE_READ);
    unsafe { assert_eq!(CloseHandle(h), TRUE) };
}

#[test]
fn a_bad_local_buffer_is_no_access() {
    let _order = shared();
    let kid = Kid::spawn();
    let h = kid.open(PROCESS_ALL_ACCESS);
    let p = page();
    unsafe {
        let local = VirtualAlloc(std::ptr::null(), p, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY);
        let mut n = 7usize;
        SetLastError(0);
        assert_eq!(
            ReadProcessMemory(h, kid.rw as *const _, local, 16, &mut n),
            FALSE
        );
        assert_eq!((GetLastError(), n), (ERROR_NOACCESS, 0));
        let mut old = 0;
        assert_eq!(VirtualProtect(local, p, PAGE_NOACCESS, &mut old), TRUE);
        n = 7;
        assert_eq!(
            WriteProcessMemory(h, kid.rw as *const _, local, 16, &mut n),
            FALSE
        );
        assert_eq!((GetLastError(), n), (ERROR_NOACCESS, 0));
        // Nothing reached the child.
        assert_eq!(read(h, kid.rw, 1).3[0], pattern(0));
        assert_eq!(VirtualFree(local, 0, MEM_RELEASE), TRUE);
        CloseHandle(h);
    }
}

#[test]
fn access_rights_are_checked() {
    let _order = shared();
    let kid = Kid::spawn();
    unsafe {
        let limited = kid.open(PROCESS_QUERY_LIMITED_INFORMATION);
        assert_eq!(GetProcessId(limited), kid.pid);
        let (ok, err, _, _) = read(limited, kid.rw, 4);
        assert_eq!((ok, err), (FALSE, ERROR_ACCESS_DENIED));
        assert_eq!(vq_err(limited, kid.rw), ERROR_ACCESS_DENIED);

        let read_only = kid.open(PROCESS_VM_READ);
        assert_eq!(read(read_only, kid.rw, 4).0, TRUE);
        let (ok, err, n) = write(read_only, kid.rw, &[1]);
        assert_eq!((ok, err, n), (FALSE, ERROR_ACCESS_DENIED, 12345));
        SetLastError(0);
        assert_eq!(GetProcessId(read_only), 0);
        assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);

        // Writing needs PROCESS_VM_OPERATION too.
        let write_only = kid.open(PROCESS_VM_WRITE);
        assert_eq!(write(write_only, kid.rw, &[1]).1, ERROR_ACCESS_DENIED);
        let writer = kid.open(PROCESS_VM_WRITE | PROCESS_VM_OPERATION);
        assert_eq!(write(writer, kid.rw, &[pattern(0)]).0, TRUE);

        // QUERY_INFORMATION implies the limited right; generic rights map to process rights.
        let q = kid.open(PROCESS_QUERY_INFORMATION);
        assert!(vq(q, kid.rw).is_ok());
        assert_eq!(GetProcessId(q), kid.pid);
        let g = kid.open(GENERIC_READ);
        assert_eq!(read(g, kid.rw, 4).0, TRUE);
        assert!(vq(g, kid.rw).is_ok());
        assert_eq!(write(g, kid.rw, &[1]).1, ERROR_ACCESS_DENIED);
        for h in [limited, read_only, write_only, writer, q, g] {
            assert_eq!(CloseHandle(h), TRUE);
        }
    }
}

#[test]
fn unknown_pids_and_closed_handles() {
    let _order = shared();
    unsafe {
        SetLastError(0);
        assert!(OpenProcess(PROCESS_ALL_ACCESS, FALSE, 0).is_null());
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        // No pid reaches pid_max.
        let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        SetLastError(0);
        assert!(OpenProcess(PROCESS_VM_READ, FALSE, max).is_null());
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);

        let kid = Kid::spawn();
        let h = kid.open(PROCESS_ALL_ACCESS);
        assert_eq!(CloseHandle(h), TRUE);
        SetLastError(0);
        assert_eq!(GetProcessId(h), 0);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(read(h, kid.rw, 4).1, ERROR_INVALID_HANDLE);
        assert_eq!(write(h, kid.rw, &[1]).1, ERROR_INVALID_HANDLE);
        assert_eq!(vq_err(h, kid.rw), ERROR_INVALID_HANDLE);
        assert_eq!(CloseHandle(h), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        // NULL is no process handle.
        assert_eq!(GetProcessId(std::ptr::null_mut()), 0);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        // A section handle is none either.
        let s = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            0,
            4096,
            std::ptr::null(),
        );
        assert!(!s.is_null());
        assert_eq!(read(s, kid.rw, 4).1, ERROR_INVALID_HANDLE);
        assert_eq!(CloseHandle(s), TRUE);
    }
}

#[test]
fn an_exited_process_is_access_denied() {
    let _order = shared();
    let mut kid = Kid::spawn();
    let h = kid.open(PROCESS_ALL_ACCESS);
    drop(kid.child.stdin.take());
    kid.child.wait().unwrap();
    assert_eq!(read(h, kid.rw, 4).1, ERROR_ACCESS_DENIED);
    assert_eq!(write(h, kid.rw, &[1]).1, ERROR_ACCESS_DENIED);
    assert_eq!(vq_err(h, kid.rw), ERROR_ACCESS_DENIED);
    // The handle itself stays valid until closed.
    unsafe {
        assert_eq!(GetProcessId(h), kid.pid);
        assert_eq!(CloseHandle(h), TRUE);
    }
}

/// `/proc/<pid>/maps` as `(start, end, perms, inode)`, below the kernel half.
fn maps_of(pid: u32) -> Vec<(usize, usize, String, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, e) = f[0].split_once('-')?;
            let s = usize::from_str_radix(s, 16).ok()?;
            let e = usize::from_str_radix(e, 16).ok()?;
            (s < 1 << 63).then(|| (s, e, f[1].to_string(), f[4].parse().unwrap()))
        })
        .collect()
}

fn protect_of(perms: &str) -> u32 {
    match &perms[..3] {
        "---" => PAGE_NOACCESS,
        "r--" => PAGE_READONLY,
        "rw-" => PAGE_READWRITE,
        "--x" => PAGE_EXECUTE,
        "r-x" => PAGE_EXECUTE_READ,
        "rwx" | "-wx" => PAGE_EXECUTE_READWRITE,
        "-w-" => PAGE_READWRITE,
        other => panic!("perms {other}"),
    }
}

#[test]
fn virtual_query_ex_matches_the_childs_maps() {
    // Asserts that a released address is free: alone, or another test may allocate there.
    let _order = alone();
    let kid = Kid::spawn();
    let h = kid.open(PROCESS_QUERY_INFORMATION);
    let maps = maps_of(kid.pid);
    // Every region from 0 up: committed ones are exactly the kernel's mappings.
    let mut si = unsafe { std::mem::zeroed::<SYSTEM_INFO>() };
    unsafe { GetSystemInfo(&mut si) };
    let top = si.lpMaximumApplicationAddress as usize;
    let mut at = 0usize;
    let mut committed = Vec::new();
    while at <= top {
        let m = vq(h, at).unwrap();
        assert_eq!(m.BaseAddress as usize, at);
        if m.State == MEM_COMMIT {
            committed.push((
                at,
                at + m.RegionSize,
                m.Protect,
                m.Type,
                m.AllocationBase as usize,
            ));
        } else {
            assert_eq!((m.State, m.Protect, m.Type), (MEM_FREE, PAGE_NOACCESS, 0));
        }
        at += m.RegionSize;
    }
    let expect: Vec<(usize, usize)> = maps
        .iter()
        .filter(|m| m.0 <= top)
        .map(|m| (m.0, m.1.min(top + 1)))
        .collect();
    let got: Vec<(usize, usize)> = committed.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(got, expect);
    for (c, m) in committed.iter().zip(&maps) {
        assert_eq!(c.2, protect_of(&m.2), "{m:?}");
        assert_eq!(c.4, m.0, "a mapping is its own allocation");
        if m.3 == 0 {
            assert_eq!(c.3, MEM_PRIVATE, "{m:?}");
        } else {
            assert!(c.3 == MEM_IMAGE || c.3 == MEM_MAPPED, "{m:?}");
        }
    }
    // The test binary's own code is an image.
    let exe = maps.iter().find(|m| m.2.contains('x') && m.3 != 0).unwrap();
    assert_eq!(vq(h, exe.0).unwrap().Type, MEM_IMAGE);
    // The child's known pages.
    let p = page();
    let rw = vq(h, kid.rw).unwrap();
    assert_eq!(
        (rw.State, rw.Protect, rw.Type),
        (MEM_COMMIT, PAGE_READWRITE, MEM_PRIVATE)
    );
    assert_eq!(rw.RegionSize, 2 * p);
    let na = vq(h, kid.rw + 2 * p).unwrap();
    assert_eq!((na.State, na.Protect), (MEM_COMMIT, PAGE_NOACCESS));
    assert_eq!(vq(h, kid.ro).unwrap().Protect, PAGE_READONLY);
    assert_eq!(vq(h, kid.rx).unwrap().Protect, PAGE_EXECUTE_READ);
    // Above user space: ERROR_INVALID_PARAMETER.
    assert_eq!(vq_err(h, top + 1), ERROR_INVALID_PARAMETER);
    unsafe { CloseHandle(h) };
}

#[test]
fn changing_another_address_space_is_not_supported() {
    let _order = shared();
    let kid = Kid::spawn();
    let p = page();
    unsafe {
        let all = kid.open(PROCESS_ALL_ACCESS);
        let no_op = kid.open(PROCESS_VM_READ | PROCESS_QUERY_INFORMATION);
        for (h, code) in [(all, ERROR_NOT_SUPPORTED), (no_op, ERROR_ACCESS_DENIED)] {
            SetLastError(0);
            assert!(VirtualAllocEx(h, std::ptr::null(), p, MEM_COMMIT, PAGE_READWRITE).is_null());
            assert_eq!(GetLastError(), code);
            SetLastError(0);
            assert!(
                VirtualAllocExNuma(h, std::ptr::null(), p, MEM_COMMIT, PAGE_READWRITE, 0).is_null()
            );
            assert_eq!(GetLastError(), code);
            SetLastError(0);
            assert!(VirtualAlloc2(
                h,
                std::ptr::null(),
                p,
                MEM_COMMIT,
                PAGE_READWRITE,
                std::ptr::null_mut(),
                0
            )
            .is_null());
            assert_eq!(GetLastError(), code);
            SetLastError(0);
            assert!(VirtualAlloc2FromApp(
                h,
                std::ptr::null(),
                p,
                MEM_COMMIT,
                PAGE_READWRITE,
                std::ptr::null_mut(),
                0
            )
            .is_null());
            assert_eq!(GetLastError(), code);
            assert_eq!(VirtualFreeEx(h, kid.rw as *mut _, 0, MEM_RELEASE), FALSE);
            assert_eq!(GetLastError(), code);
            let mut old = 0;
            assert_eq!(
                VirtualProtectEx(h, kid.rw as *const _, p, PAGE_READONLY, &mut old),
                FALSE
            );
            assert_eq!(GetLastError(), code);
            assert_eq!(VirtualUnlockEx(h, kid.rw as *const _, p), FALSE);
            assert_eq!(GetLastError(), code);
            let mut n = 1usize;
            let mut pfn = 0usize;
            assert_eq!(AllocateUserPhysicalPages(h, &mut n, &mut pfn), FALSE);
            assert_eq!(GetLastError(), code);
            let view = MEMORY_MAPPED_VIEW_ADDRESS {
                Value: kid.rw as *mut _,
            };
            assert_eq!(UnmapViewOfFile2(h, view, 0), FALSE);
            assert_eq!(GetLastError(), code);
            let s = CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                0,
                4096,
                std::ptr::null(),
            );
            let v = MapViewOfFile3(
                s,
                h,
                std::ptr::null(),
                0,
                0,
                0,
                PAGE_READWRITE,
                std::ptr::null_mut(),
                0,
            );
            assert!(v.Value.is_null());
            assert_eq!(GetLastError(), code);
            CloseHandle(s);
        }
        // Nothing changed in the child.
        let m = vq(all, kid.rw).unwrap();
        assert_eq!((m.Protect, m.RegionSize), (PAGE_READWRITE, 2 * p));
        CloseHandle(all);
        CloseHandle(no_op);
    }
}

#[test]
fn a_handle_to_our_own_pid_is_this_process() {
    let _order = shared();
    let p = page();
    unsafe {
        let me = OpenProcess(PROCESS_ALL_ACCESS, FALSE, GetCurrentProcessId());
        assert!(!me.is_null());
        assert_eq!(GetCurrentProcessId(), std::process::id());
        assert_eq!(GetProcessId(me), std::process::id());
        assert_eq!(GetProcessId(GetCurrentProcess()), std::process::id());
        let a = VirtualAllocEx(
            me,
            std::ptr::null(),
            3 * p,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        ) as *mut u8;
        assert!(!a.is_null());
        std::ptr::write_bytes(a, 0x5A, 3 * p);
        let mut old = 0;
        assert_eq!(
            VirtualProtectEx(me, a.add(p).cast(), p, PAGE_NOACCESS, &mut old),
            TRUE
        );
        assert_eq!(
            VirtualProtectEx(me, a.add(2 * p).cast(), p, PAGE_EXECUTE_READ, &mut old),
            TRUE
        );
        // A read across into the no-access page: partial, and no whole chunk done (case 141).
        let (ok, err, n, _) = read(me, a as usize + p - 8, 16);
        assert_eq!((ok, err, n), (FALSE, ERROR_PARTIAL_COPY, 0));
        // The same through the pseudo-handle; case 141 exactly: two pages, the second
        // no-access → 0; the first page alone → TRUE, P.
        let (ok, err, n, _) = read(GetCurrentProcess(), a as usize + p - 8, 16);
        assert_eq!((ok, err, n), (FALSE, ERROR_PARTIAL_COPY, 0));
        let (ok, err, n, _) = read(GetCurrentProcess(), a as usize, 2 * p);
        assert_eq!((ok, err, n), (FALSE, ERROR_PARTIAL_COPY, 0));
        let (ok, _, n, _) = read(GetCurrentProcess(), a as usize, p);
        assert_eq!((ok, n), (TRUE, p));
        // A long read stopping in its second chunk counts the first chunk (14 pages).
        let big = VirtualAlloc(
            std::ptr::null(),
            21 * p,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        ) as usize;
        assert_eq!(
            VirtualProtect((big + 20 * p) as *const _, p, PAGE_NOACCESS, &mut old),
            TRUE
        );
        let (ok, err, n, _) = read(me, big, 21 * p);
        assert_eq!((ok, err, n), (FALSE, ERROR_PARTIAL_COPY, 14 * p));
        assert_eq!(VirtualFree(big as *mut _, 0, MEM_RELEASE), TRUE);
        // A write into the no-access page: refused, nothing written.
        let (ok, err, n) = write(me, a as usize + p - 2, &[1, 2, 3, 4]);
        assert_eq!((ok, err, n), (FALSE, ERROR_NOACCESS, 12345));
        assert_eq!(*a.add(p - 1), 0x5A);
        // A write into the execute-read page: done, the protection restored.
        let (ok, _, n) = write(me, a as usize + 2 * p, &[0xC3; 3]);
        assert_eq!((ok, n), (TRUE, 3));
        assert_eq!(
            std::slice::from_raw_parts(a.add(2 * p), 4),
            &[0xC3, 0xC3, 0xC3, 0x5A]
        );
        let m = vq(me, a as usize + 2 * p).unwrap();
        assert_eq!((m.Protect, m.RegionSize), (PAGE_EXECUTE_READ, p));
        // A read-only page: ERROR_NOACCESS.
        assert_eq!(
            VirtualProtectEx(me, a.cast(), p, PAGE_READONLY, &mut old),
            TRUE
        );
        assert_eq!(write(me, a as usize, &[0]).1, ERROR_NOACCESS);
        assert_eq!(
            VirtualProtectEx(me, a.cast(), p, PAGE_READWRITE, &mut old),
            TRUE
        );
        assert_eq!(write(me, a as usize, &[9, 8]).0, TRUE);
        assert_eq!((*a, *a.add(1)), (9, 8));
        // The handle's access mask still counts.
        let reader = OpenProcess(PROCESS_VM_READ, FALSE, GetCurrentProcessId());
        SetLastError(0);
        assert!(VirtualAllocEx(reader, std::ptr::null(), p, MEM_COMMIT, PAGE_READWRITE).is_null());
        assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
        assert_eq!(read(reader, a as usize, 2).3, vec![9, 8]);
        assert_eq!(VirtualFreeEx(me, a.cast(), 0, MEM_RELEASE), TRUE);
        CloseHandle(reader);
        CloseHandle(me);
    }
}

#[test]
fn duplicate_handle_of_process_handles() {
    let _order = shared();
    let kid = Kid::spawn();
    unsafe {
        let h = kid.open(PROCESS_VM_READ | PROCESS_QUERY_LIMITED_INFORMATION);
        let mut d: HANDLE = std::ptr::null_mut();
        let me = GetCurrentProcess();
        assert_eq!(
            DuplicateHandle(me, h, me, &mut d, 0, FALSE, DUPLICATE_SAME_ACCESS),
            TRUE
        );
        assert_ne!(d, h);
        assert_eq!(GetProcessId(d), kid.pid);
        assert_eq!(read(d, kid.rw, 1).3[0], pattern(0));
        assert_eq!(CloseHandle(h), TRUE);
        // The duplicate outlives the source.
        assert_eq!(read(d, kid.rw, 1).0, TRUE);
        // A new access: granted as OpenProcess grants it.
        let mut w: HANDLE = std::ptr::null_mut();
        assert_eq!(
            DuplicateHandle(
                me,
                d,
                me,
                &mut w,
                PROCESS_VM_WRITE | PROCESS_VM_OPERATION,
                FALSE,
                0
            ),
            TRUE
        );
        assert_eq!(write(w, kid.rw, &[pattern(0)]).0, TRUE);
        assert_eq!(read(w, kid.rw, 1).1, ERROR_ACCESS_DENIED);
        // Another process as source or target of a duplication: not supported.
        let all = kid.open(PROCESS_ALL_ACCESS);
        let mut x: HANDLE = std::ptr::null_mut();
        assert_eq!(
            DuplicateHandle(all, d, me, &mut x, 0, FALSE, DUPLICATE_SAME_ACCESS),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOT_SUPPORTED);
        // Duplicating the pseudo-handle gives a real handle to this process.
        let mut real: HANDLE = std::ptr::null_mut();
        assert_eq!(
            DuplicateHandle(me, me, me, &mut real, 0, FALSE, DUPLICATE_SAME_ACCESS),
            TRUE
        );
        assert_ne!(real, me);
        assert_eq!(GetProcessId(real), std::process::id());
        for x in [d, w, all, real] {
            assert_eq!(CloseHandle(x), TRUE);
        }
    }
}

/// Run as `nobody` (see [`a_process_we_may_not_trace_is_access_denied`]): exits 0 when
/// OpenProcess(PROCESS_VM_READ, pid 1) fails with ERROR_ACCESS_DENIED and a limited handle
/// still opens, else with a code saying what went wrong.
#[test]
fn nobody_main() {
    let _order = shared();
    if std::env::var_os(NOBODY_ENV).is_none() {
        return;
    }
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(65534) != 0
            || libc::setuid(65534) != 0
        {
            std::process::exit(10);
        }
        SetLastError(0);
        let h = OpenProcess(PROCESS_VM_READ, FALSE, 1);
        if !h.is_null() {
            std::process::exit(11);
        }
        if GetLastError() != ERROR_ACCESS_DENIED {
            std::process::exit(12);
        }
        let l = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, 1);
        if l.is_null() || GetProcessId(l) != 1 {
            std::process::exit(13);
        }
        if virtmem::Process::open(1, PROCESS_VM_READ).unwrap_err()
            != virtmem::Error::AccessDenied("the kernel does not let this process trace that one")
        {
            std::process::exit(14);
        }
        // MAXIMUM_ALLOWED: only what an unprivileged caller may have.
        let m = virtmem::Process::open(1, MAXIMUM_ALLOWED)
            .map(|p| p.access())
            .unwrap_or(0);
        if m & PROCESS_VM_READ != 0 || m & PROCESS_QUERY_LIMITED_INFORMATION == 0 {
            std::process::exit(15);
        }
    }
    std::process::exit(0);
}

#[test]
fn a_process_we_may_not_trace_is_access_denied() {
    let _order = shared();
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root, to drop to uid nobody in a child");
        return;
    }
    let st = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "nobody_main", "--nocapture", "--test-threads=1"])
        .env(NOBODY_ENV, "1")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        st.code(),
        Some(0),
        "the nobody child's verdict (see nobody_main)"
    );
}

#[test]
fn the_safe_process_type() {
    let _order = shared();
    let kid = Kid::spawn();
    let p = page();
    let child = virtmem::Process::open(kid.pid, PROCESS_ALL_ACCESS).unwrap();
    assert_eq!(child.id(), kid.pid);
    let mut buf = vec![0u8; 2 * p];
    assert_eq!(child.read(kid.rw, &mut buf).unwrap(), 2 * p);
    assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    // A partial read is a short count.
    assert_eq!(child.read(kid.rw + p, &mut buf).unwrap(), p);
    // Writes into another process are safe.
    assert_eq!(child.write(kid.rw + 1, &[0xEE]).unwrap(), 1);
    let mut one = [0u8];
    child.read(kid.rw + 1, &mut one).unwrap();
    assert_eq!(one[0], 0xEE);
    assert_eq!(
        child.write(kid.ro, &[1]).unwrap_err().win32_code(),
        ERROR_NOACCESS
    );
    // Regions match VirtualQueryEx.
    let h = kid.open(PROCESS_QUERY_INFORMATION);
    let regions: Vec<_> = child.regions().collect();
    assert!(regions.len() > 5);
    for r in &regions {
        let m = vq(h, r.base_address).unwrap();
        assert_eq!(
            (m.RegionSize, m.State, m.Protect),
            (r.region_size, r.state.win32(), r.protect)
        );
    }
    assert!(regions
        .windows(2)
        .all(|w| w[0].base_address + w[0].region_size == w[1].base_address));
    assert!(regions.iter().any(|r| r.base_address == kid.rw));
    unsafe { CloseHandle(h) };
    // Rights count.
    let reader = virtmem::Process::open(kid.pid, PROCESS_VM_READ).unwrap();
    assert_eq!(
        reader.write(kid.rw, &[1]).unwrap_err().win32_code(),
        ERROR_ACCESS_DENIED
    );
    assert_eq!(reader.regions().count(), 0);
    assert_eq!(
        reader.query(kid.rw).unwrap_err().win32_code(),
        ERROR_ACCESS_DENIED
    );
    // Unknown pid.
    assert_eq!(
        virtmem::Process::open(0, PROCESS_VM_READ)
            .unwrap_err()
            .win32_code(),
        ERROR_INVALID_PARAMETER
    );
}

#[test]
fn safe_code_cannot_write_this_process() {
    let _order = shared();
    let mut v = [1u8; 64];
    let addr = v.as_ptr() as usize;
    let cur = virtmem::Process::current();
    assert_eq!(cur.id(), std::process::id());
    assert_eq!(
        cur.write(addr, &[2]).unwrap_err().win32_code(),
        ERROR_ACCESS_DENIED
    );
    let own = virtmem::Process::open(std::process::id(), PROCESS_ALL_ACCESS).unwrap();
    assert_eq!(
        own.write(addr, &[2]).unwrap_err().win32_code(),
        ERROR_ACCESS_DENIED
    );
    // Reading our own memory is fine.
    let mut out = [0u8; 4];
    assert_eq!(cur.read(addr, &mut out).unwrap(), 4);
    assert_eq!(out, [1; 4]);
    // The unsafe write does it, under its contract (no borrow of `v` is alive here).
    assert_eq!(unsafe { own.write_unchecked(addr, &[3, 4]) }.unwrap(), 2);
    v[10] = 0;
    assert_eq!(&v[..3], &[3, 4, 1]);
}

// ---- NtReadVirtualMemory / NtWriteVirtualMemory ----

#[test]
fn nt_read_and_write_virtual_memory() {
    let _order = shared();
    let kid = Kid::spawn();
    let p = page();
    let h = kid.open(PROCESS_ALL_ACCESS);
    unsafe {
        // A whole read of the child's two read-write pages.
        let mut buf = vec![0u8; 2 * p];
        let mut n = 12345usize;
        let st = NtReadVirtualMemory(
            h,
            kid.rw as *const _,
            buf.as_mut_ptr().cast(),
            2 * p,
            &mut n,
        );
        assert_eq!((st, n), (STATUS_SUCCESS, 2 * p));
        assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        // Into the no-access page: STATUS_PARTIAL_COPY, whole chunks only (case 141).
        let st = NtReadVirtualMemory(
            h,
            (kid.rw + p) as *const _,
            buf.as_mut_ptr().cast(),
            2 * p,
            &mut n,
        );
        assert_eq!((st, n), (STATUS_PARTIAL_COPY, 0));
        // A local buffer we cannot write: STATUS_ACCESS_VIOLATION, nothing counted.
        let st = NtReadVirtualMemory(h, kid.rw as *const _, 8 as *mut _, 4, &mut n);
        assert_eq!((st, n), (STATUS_ACCESS_VIOLATION, 0));
        // The count pointer is optional.
        let st = NtReadVirtualMemory(
            h,
            kid.rw as *const _,
            buf.as_mut_ptr().cast(),
            1,
            std::ptr::null_mut(),
        );
        assert_eq!(st, STATUS_SUCCESS);

        // A write into a read-write page of the child.
        let msg = b"through ntdll";
        let st = NtWriteVirtualMemory(
            h,
            (kid.rw + 64) as *mut _,
            msg.as_ptr().cast(),
            msg.len(),
            &mut n,
        );
        assert_eq!((st, n), (STATUS_SUCCESS, msg.len()));
        let mut back = [0u8; 13];
        ReadProcessMemory(
            h,
            (kid.rw + 64) as *const _,
            back.as_mut_ptr().cast(),
            13,
            std::ptr::null_mut(),
        );
        assert_eq!(&back, msg);
        // Unlike WriteProcessMemory, the NT call changes no protection: the read-only and the
        // execute-read pages are not written (partial copy, nothing counted, bytes unchanged).
        for (addr, was) in [(kid.ro, 0x11u8), (kid.rx, 0xC3u8)] {
            let st = NtWriteVirtualMemory(h, addr as *mut _, [0u8; 4].as_ptr().cast(), 4, &mut n);
            assert_eq!((st, n), (STATUS_PARTIAL_COPY, 0), "{addr:#x}");
            let mut one = [0u8];
            ReadProcessMemory(
                h,
                addr as *const _,
                one.as_mut_ptr().cast(),
                1,
                std::ptr::null_mut(),
            );
            assert_eq!(one[0], was);
        }
        // Handles: NULL, a handle without the right, a closed handle.
        let st = NtReadVirtualMemory(
            std::ptr::null_mut(),
            kid.rw as *const _,
            buf.as_mut_ptr().cast(),
            1,
            &mut n,
        );
        assert_eq!(st, STATUS_INVALID_HANDLE);
        let q = kid.open(PROCESS_QUERY_INFORMATION);
        let st = NtReadVirtualMemory(q, kid.rw as *const _, buf.as_mut_ptr().cast(), 1, &mut n);
        assert_eq!(st, STATUS_ACCESS_DENIED);
        let st = NtWriteVirtualMemory(q, kid.rw as *mut _, msg.as_ptr().cast(), 1, &mut n);
        assert_eq!(st, STATUS_ACCESS_DENIED);
        assert_eq!(CloseHandle(q), TRUE);
        let st = NtReadVirtualMemory(q, kid.rw as *const _, buf.as_mut_ptr().cast(), 1, &mut n);
        assert_eq!(st, STATUS_INVALID_HANDLE);
        // The NT functions leave the last error alone.
        SetLastError(777);
        let _ = NtReadVirtualMemory(q, kid.rw as *const _, buf.as_mut_ptr().cast(), 1, &mut n);
        assert_eq!(GetLastError(), 777);
        assert_eq!(CloseHandle(h), TRUE);
    }
}

#[test]
fn nt_copies_within_this_process() {
    let _order = shared();
    let p = page();
    unsafe {
        let a = VirtualAlloc(
            std::ptr::null(),
            2 * p,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
        ) as *mut u8;
        std::ptr::write_bytes(a, 0x42, 2 * p);
        let mut old = 0;
        assert_eq!(
            VirtualProtect(a.add(p).cast(), p, PAGE_READONLY, &mut old),
            TRUE
        );
        let me = GetCurrentProcess();
        let src = [7u8; 32];
        let mut n = 0usize;
        // Across into the read-only page: the writable part is written, nothing counted
        // (whole chunks), STATUS_PARTIAL_COPY; the read-only page is untouched.
        let st = NtWriteVirtualMemory(me, a.add(p - 16).cast(), src.as_ptr().cast(), 32, &mut n);
        assert_eq!((st, n), (STATUS_PARTIAL_COPY, 0));
        assert_eq!(*a.add(p - 1), 7);
        assert_eq!(*a.add(p), 0x42);
        // Within the writable page: done.
        let st = NtWriteVirtualMemory(me, a.cast(), src.as_ptr().cast(), 32, &mut n);
        assert_eq!((st, n), (STATUS_SUCCESS, 32));
        assert_eq!(*a.add(31), 7);
        // Reads of both pages succeed.
        let mut buf = vec![0u8; 2 * p];
        let st = NtReadVirtualMemory(me, a.cast(), buf.as_mut_ptr().cast(), 2 * p, &mut n);
        assert_eq!((st, n), (STATUS_SUCCESS, 2 * p));
        assert_eq!((buf[0], buf[p]), (7, 0x42));
        assert_eq!(VirtualFree(a.cast(), 0, MEM_RELEASE), TRUE);
    }
}

#[test]
fn nt_query_virtual_memory_of_another_process() {
    let _order = shared();
    let kid = Kid::spawn();
    let h = kid.open(PROCESS_QUERY_INFORMATION);
    unsafe {
        let mut mbi = std::mem::zeroed::<MEMORY_BASIC_INFORMATION>();
        let mut n = 0usize;
        let st = NtQueryVirtualMemory(
            h,
            kid.ro as *const _,
            MemoryBasicInformation,
            (&mut mbi as *mut MEMORY_BASIC_INFORMATION).cast(),
            size_of::<MEMORY_BASIC_INFORMATION>(),
            &mut n,
        );
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(n, size_of::<MEMORY_BASIC_INFORMATION>());
        // The same answer as VirtualQueryEx.
        let mut ex = std::mem::zeroed::<MEMORY_BASIC_INFORMATION>();
        assert_ne!(
            VirtualQueryEx(
                h,
                kid.ro as *const _,
                &mut ex,
                size_of::<MEMORY_BASIC_INFORMATION>()
            ),
            0
        );
        assert_eq!(
            (mbi.BaseAddress, mbi.RegionSize, mbi.State, mbi.Protect),
            (ex.BaseAddress, ex.RegionSize, ex.State, ex.Protect)
        );
        assert_eq!(mbi.Protect, PAGE_READONLY);
        // Another class of another process: not supported.
        let mut region = [0u8; 64];
        let st = NtQueryVirtualMemory(
            h,
            kid.ro as *const _,
            MemoryRegionInformation,
            region.as_mut_ptr().cast(),
            region.len(),
            &mut n,
        );
        assert_eq!(st, STATUS_NOT_SUPPORTED);
        // Without PROCESS_QUERY_INFORMATION: access denied.
        let r = kid.open(PROCESS_VM_READ);
        let st = NtQueryVirtualMemory(
            r,
            kid.ro as *const _,
            MemoryBasicInformation,
            (&mut mbi as *mut MEMORY_BASIC_INFORMATION).cast(),
            size_of::<MEMORY_BASIC_INFORMATION>(),
            &mut n,
        );
        assert_eq!(st, STATUS_ACCESS_DENIED);
        CloseHandle(r);
        CloseHandle(h);
    }
}
