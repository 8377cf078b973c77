//! GlobalMemoryStatusEx, GlobalMemoryStatus, GetPhysicallyInstalledSystemMemory and the safe
//! `virtmem::memory_status()` (issue 15 item 2): the figures are the kernel's, checked
//! against /proc/meminfo read here independently; the address-space figures follow this
//! process's reservations.

use std::ptr::null;
use virtmem::win32::*;

/// A /proc/meminfo value in bytes.
fn meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in /proc/meminfo"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn status() -> MEMORYSTATUSEX {
    let mut m = MEMORYSTATUSEX {
        dwLength: size_of::<MEMORYSTATUSEX>() as u32,
        ..Default::default()
    };
    assert_eq!(
        unsafe { GlobalMemoryStatusEx(&mut m) },
        TRUE,
        "{}",
        GetLastError()
    );
    m
}

#[test]
fn physical_memory_and_the_commit_limit_are_the_kernels() {
    let m = status();
    assert_eq!(m.dwLength as usize, size_of::<MEMORYSTATUSEX>());
    assert_eq!(size_of::<MEMORYSTATUSEX>(), 64);
    assert_eq!(m.ullTotalPhys, meminfo("MemTotal"));
    assert!(m.ullAvailPhys > 0 && m.ullAvailPhys <= m.ullTotalPhys);
    assert!(m.dwMemoryLoad <= 100);
    let strict = std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
        .map(|s| s.trim() == "2")
        .unwrap_or(false);
    let limit = if strict {
        meminfo("CommitLimit")
    } else {
        meminfo("MemTotal") + meminfo("SwapTotal")
    };
    assert_eq!(m.ullTotalPageFile, limit);
    assert!(m.ullAvailPageFile <= m.ullTotalPageFile);
    assert_eq!(m.ullAvailExtendedVirtual, 0);
    let mut kib = 0u64;
    assert_eq!(
        unsafe { GetPhysicallyInstalledSystemMemory(&mut kib) },
        TRUE
    );
    assert_eq!(kib * 1024, m.ullTotalPhys);
    let safe = virtmem::memory_status().unwrap();
    assert_eq!(safe.total_phys, m.ullTotalPhys);
    assert_eq!(safe.total_page_file, m.ullTotalPageFile);
}

#[test]
fn the_address_space_shrinks_by_a_reservation() {
    let info = virtmem::system_info();
    let before = status();
    assert_eq!(
        before.ullTotalVirtual,
        (info.max_address + 1 - info.min_address) as u64
    );
    assert!(before.ullAvailVirtual < before.ullTotalVirtual);
    const TIB: usize = 1 << 40;
    let p = unsafe { VirtualAlloc(null(), TIB, MEM_RESERVE, PAGE_NOACCESS) };
    assert!(!p.is_null());
    let during = status();
    // Other test threads map and unmap meanwhile: allow them 1 GiB either way.
    let shrunk = before.ullAvailVirtual as i128 - during.ullAvailVirtual as i128;
    assert!(
        (shrunk - TIB as i128).abs() < 1 << 30,
        "shrunk by {shrunk:#x}"
    );
    assert_eq!(unsafe { VirtualFree(p, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn wrong_lengths_and_null_pointers() {
    for len in [0, size_of::<MEMORYSTATUSEX>() as u32 - 1, 1000] {
        let mut m = MEMORYSTATUSEX {
            dwLength: len,
            ..Default::default()
        };
        SetLastError(0);
        assert_eq!(unsafe { GlobalMemoryStatusEx(&mut m) }, FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER, "dwLength {len}");
        assert_eq!(m.ullTotalPhys, 0, "nothing written");
    }
    SetLastError(0);
    assert_eq!(unsafe { GlobalMemoryStatusEx(std::ptr::null_mut()) }, FALSE);
    assert_eq!(GetLastError(), ERROR_NOACCESS);
    SetLastError(0);
    assert_eq!(
        unsafe { GetPhysicallyInstalledSystemMemory(std::ptr::null_mut()) },
        FALSE
    );
    assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
    // The legacy call has no error path: NULL is ignored.
    unsafe { GlobalMemoryStatus(std::ptr::null_mut()) };
}

#[test]
fn the_legacy_form_sets_its_own_length() {
    let mut m = MEMORYSTATUS::default();
    unsafe { GlobalMemoryStatus(&mut m) };
    assert_eq!(m.dwLength as usize, size_of::<MEMORYSTATUS>());
    let ex = status();
    assert_eq!(m.dwTotalPhys as u64, ex.ullTotalPhys);
    assert_eq!(m.dwTotalPageFile as u64, ex.ullTotalPageFile);
    assert_eq!(m.dwTotalVirtual as u64, ex.ullTotalVirtual);
    assert!(m.dwMemoryLoad <= 100);
}
