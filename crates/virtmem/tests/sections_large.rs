//! SEC_LARGE_PAGES with a huge-page pool (LP1, LP2): the host pass (`VIRTMEM_HOST_TESTS=1`,
//! root) grows `vm.nr_hugepages` by 4 for the test and puts it back; the test itself runs in a
//! second process. Without a pool, `tests/sections.rs` checks the errors (1450 / 1314).

use std::ptr::null;
use virtmem::win32::*;

/// The KernelPageSize (bytes) of the mapping containing `addr`, from /proc/self/smaps.
fn kernel_page_size(addr: usize) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = a <= addr && addr < b;
                    continue;
                }
            }
        }
        if inside {
            if let Some(kb) = line.strip_prefix("KernelPageSize:") {
                return kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .unwrap()
                    * 1024;
            }
        }
    }
    0
}

fn child() {
    let lp = GetLargePageMinimum();
    assert!(lp > 0);
    unsafe {
        let h = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE | SEC_COMMIT | SEC_LARGE_PAGES,
            0,
            (2 * lp) as u32,
            null(),
        );
        assert!(!h.is_null(), "LP1: with a pool: {}", GetLastError());
        // LP1: a size that is not a multiple of the large-page size → 87.
        let bad = CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            null(),
            PAGE_READWRITE | SEC_COMMIT | SEC_LARGE_PAGES,
            0,
            (lp + 4096) as u32,
            null(),
        );
        assert!(bad.is_null());
        assert_eq!(GetLastError(), 87, "LP1: size not a multiple");
        let a = MapViewOfFile(h, FILE_MAP_WRITE | FILE_MAP_LARGE_PAGES, 0, 0, 0).Value as *mut u8;
        let b = MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_LARGE_PAGES, 0, 0, 0).Value as *mut u8;
        assert!(!a.is_null() && !b.is_null(), "LP2: {}", GetLastError());
        assert_eq!(
            a as usize % lp,
            0,
            "LP2: a large-page view is large-page aligned"
        );
        *a.add(lp + 5) = 0x5a;
        assert_eq!(*b.add(lp + 5), 0x5a, "views share the huge pages");
        assert_eq!(
            kernel_page_size(a as usize),
            lp,
            "LP2: backed by huge pages"
        );
        let mut m: MEMORY_BASIC_INFORMATION = std::mem::zeroed();
        VirtualQuery(a.cast(), &mut m, std::mem::size_of_val(&m));
        assert_eq!(
            (m.State, m.Type, m.RegionSize),
            (MEM_COMMIT, MEM_MAPPED, 2 * lp)
        );
        // LP2: an offset that is not a large-page multiple → 87 (a granule multiple is not enough).
        assert!(MapViewOfFile(h, FILE_MAP_READ, 0, 0x10000, 0x10000)
            .Value
            .is_null());
        assert_eq!(GetLastError(), 87);
        for v in [a, b] {
            assert_eq!(
                UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() }),
                TRUE
            );
        }
        assert_eq!(CloseHandle(h), TRUE);
    }
    println!("SECTIONS-LARGE-OK");
}

#[test]
fn host_sec_large_pages_with_a_pool() {
    if std::env::var_os("VIRTMEM_SECTIONS_LARGE_CHILD").is_some() {
        child();
        return;
    }
    let host = std::env::var("VIRTMEM_HOST_TESTS").as_deref() == Ok("1");
    if !host || unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root and VIRTMEM_HOST_TESTS=1 (it changes vm.nr_hugepages)");
        return;
    }
    let path = "/proc/sys/vm/nr_hugepages";
    let before = std::fs::read_to_string(path).unwrap();
    struct Restore<'a>(&'a str, String);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0, self.1.trim());
        }
    }
    let _restore = Restore(path, before.clone());
    let want = before.trim().parse::<usize>().unwrap_or(0) + 4;
    std::fs::write(path, want.to_string()).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "host_sec_large_pages_with_a_pool", "--nocapture"])
        .env("VIRTMEM_SECTIONS_LARGE_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SECTIONS-LARGE-OK"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
