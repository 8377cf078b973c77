//! MEM_WRITE_WATCH, GetWriteWatch and ResetWriteWatch (`windows-cases.md` §H), on both ways
//! of tracking writes: the kernel's (userfaultfd + PAGEMAP_SCAN) and signals (mprotect +
//! SIGSEGV). Every case runs on both.

use std::ffi::c_void;
use std::ptr::null;
use std::sync::Mutex;
use virtmem::win32::*;
use virtmem::WatchKind;

const P: usize = 4096;

/// The mode is chosen when an allocation is made; tests that switch it take this lock.
static MODE: Mutex<()> = Mutex::new(());

/// Allocates with write watch tracked the `kind` way.
fn watched(kind: WatchKind, size: usize, ty: u32, prot: u32) -> *mut u8 {
    let _g = MODE.lock().unwrap_or_else(|e| e.into_inner());
    virtmem::set_write_watch_mode(kind);
    let p = unsafe { VirtualAlloc(null(), size, ty | MEM_WRITE_WATCH, prot) };
    assert!(!p.is_null(), "VirtualAlloc failed: {}", GetLastError());
    p as *mut u8
}

fn kinds() -> Vec<WatchKind> {
    let mut k = vec![WatchKind::Signal];
    let _g = MODE.lock().unwrap_or_else(|e| e.into_inner());
    virtmem::set_write_watch_mode(WatchKind::Kernel);
    if virtmem::write_watch_mode() == WatchKind::Kernel {
        k.push(WatchKind::Kernel);
    } else {
        eprintln!("kernel write tracking unavailable here: testing the signal path only");
    }
    k
}

/// GetWriteWatch → (return value, last error, pages as offsets from `b`, granularity).
fn gww(
    flags: u32,
    b: *mut u8,
    base: usize,
    size: usize,
    count: usize,
) -> (u32, u32, Vec<usize>, u32) {
    let mut out = vec![std::ptr::null_mut::<c_void>(); count.max(1)];
    let mut cnt = count;
    let mut gran = 0u32;
    unsafe {
        SetLastError(0xdead_beef);
        let r = GetWriteWatch(
            flags,
            base as *const c_void,
            size,
            out.as_mut_ptr(),
            &mut cnt,
            &mut gran,
        );
        let le = GetLastError();
        let pages = if r == 0 {
            out[..cnt]
                .iter()
                .map(|&p| p as usize - b as usize)
                .collect()
        } else {
            Vec::new()
        };
        (r, le, pages, gran)
    }
}

fn written(b: *mut u8, reset: bool) -> Vec<usize> {
    let (r, le, pages, gran) = gww(
        if reset { WRITE_WATCH_FLAG_RESET } else { 0 },
        b,
        b as usize,
        0x10000,
        64,
    );
    assert_eq!((r, gran), (0, 4096), "GetWriteWatch failed with {le}");
    pages
}

fn release(b: *mut u8) {
    assert_eq!(unsafe { VirtualFree(b as _, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn cases_89_91_93_96_writes_resets_and_protection() {
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert_eq!(
            written(b, false),
            Vec::<usize>::new(),
            "{k:?}: committing is not a write"
        );
        unsafe { *b.add(P + 1) = 1 };
        assert_eq!(written(b, false), [P], "{k:?} case 89");
        assert_eq!(written(b, true), [P], "{k:?}");
        assert_eq!(written(b, false), Vec::<usize>::new(), "{k:?} after reset");
        // Reading is not writing.
        let _ = unsafe { std::ptr::read_volatile(b.add(5 * P)) };
        unsafe {
            *b.add(2 * P + 3) = 1;
            *b.add(4 * P + 8) = 1;
        }
        assert_eq!(written(b, false), [2 * P, 4 * P], "{k:?} case 91");
        // Case 96: protection changes do not touch the watch state.
        let mut old = 0;
        unsafe {
            assert_eq!(VirtualProtect(b as _, 3 * P, PAGE_READONLY, &mut old), TRUE);
            assert_eq!(
                VirtualProtect(b as _, 3 * P, PAGE_READWRITE, &mut old),
                TRUE
            );
        }
        assert_eq!(written(b, false), [2 * P, 4 * P], "{k:?} case 96");
        // Case 93: ResetWriteWatch of a prefix.
        assert_eq!(unsafe { ResetWriteWatch(b as _, 3 * P) }, 0);
        assert_eq!(written(b, false), [4 * P], "{k:?} case 93");
        // A page written again after its reset is reported again.
        unsafe { *b.add(2 * P) = 7 };
        assert_eq!(written(b, false), [2 * P, 4 * P], "{k:?}");
        release(b);
    }
}

#[test]
fn a_full_array_rearms_only_the_pages_reported() {
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        for i in [1, 3, 5, 7, 9] {
            unsafe { *b.add(i * P) = 1 };
        }
        let (r, _, pages, _) = gww(WRITE_WATCH_FLAG_RESET, b, b as usize, 0x10000, 2);
        assert_eq!((r, pages), (0, vec![P, 3 * P]), "{k:?}");
        assert_eq!(written(b, false), [5 * P, 7 * P, 9 * P], "{k:?}");
        // A sub-range query sees only its pages.
        let (r, _, pages, _) = gww(0, b, b as usize + 6 * P, 4 * P, 64);
        assert_eq!((r, pages), (0, vec![7 * P, 9 * P]), "{k:?}");
        release(b);
    }
}

#[test]
fn case_100_reserve_only_and_commit_later() {
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE, PAGE_READWRITE);
        assert_eq!(written(b, false), Vec::<usize>::new());
        unsafe {
            assert!(!VirtualAlloc(b as _, 4 * P, MEM_COMMIT, PAGE_READWRITE).is_null());
            *b.add(3 * P) = 1;
        }
        assert_eq!(written(b, false), [3 * P], "{k:?}");
        release(b);
    }
}

/// Cases 104–105's start: 64 KiB reserved with write watch (`reserve_prot`), committed
/// PAGE_NOACCESS, its first six pages made read-write.
fn watched_then_opened(k: WatchKind, reserve_prot: u32) -> *mut u8 {
    let b = watched(k, 0x10000, MEM_RESERVE, reserve_prot);
    let mut old = 0;
    unsafe {
        assert!(!VirtualAlloc(b as _, 0x10000, MEM_COMMIT, PAGE_NOACCESS).is_null());
        assert_eq!(
            VirtualProtect(b as _, 6 * P, PAGE_READWRITE, &mut old),
            TRUE
        );
    }
    b
}

#[test]
fn case_104_decommit_clears_the_written_state() {
    for k in kinds() {
        let b = watched_then_opened(k, PAGE_READWRITE);
        unsafe {
            *b.add(3 * P) = 1;
            *b.add(5 * P) = 1;
        }
        assert_eq!(written(b, false), [3 * P, 5 * P], "{k:?}");
        assert_eq!(unsafe { VirtualFree(b as _, 0x10000, MEM_DECOMMIT) }, TRUE);
        assert_eq!(
            written(b, false),
            Vec::<usize>::new(),
            "{k:?} after decommit"
        );
        unsafe { assert!(!VirtualAlloc(b as _, 0x10000, MEM_COMMIT, PAGE_READWRITE).is_null()) };
        assert_eq!(
            written(b, false),
            Vec::<usize>::new(),
            "{k:?} after recommit"
        );
        // Tracking still works on the recommitted pages.
        unsafe { *b.add(2 * P) = 1 };
        assert_eq!(written(b, false), [2 * P], "{k:?}");
        release(b);
    }
}

/// Case 105 (issue 15: virtmem lost these pages): a page written *before* a VirtualProtect
/// is latched by it and stays reported through MEM_DECOMMIT and a new commit, until a reset;
/// a page written after the VirtualProtect is cleared by the decommit (case 104).
#[test]
fn case_105_virtualprotect_latches_the_written_state() {
    for k in kinds() {
        let b = watched_then_opened(k, PAGE_READWRITE);
        let mut old = 0;
        unsafe {
            *b.add(3 * P) = 1;
            assert_eq!(
                VirtualProtect(b as _, 6 * P, PAGE_READWRITE, &mut old),
                TRUE
            );
            assert_eq!(old, PAGE_READWRITE);
            *b.add(5 * P) = 1;
        }
        assert_eq!(written(b, false), [3 * P, 5 * P], "{k:?}");
        assert_eq!(unsafe { VirtualFree(b as _, 0x10000, MEM_DECOMMIT) }, TRUE);
        assert_eq!(written(b, false), [3 * P], "{k:?} after decommit");
        unsafe { assert!(!VirtualAlloc(b as _, 0x10000, MEM_COMMIT, PAGE_READWRITE).is_null()) };
        assert_eq!(written(b, false), [3 * P], "{k:?} after recommit");
        unsafe {
            *b.add(4 * P) = 1;
            *b.add(2 * P) = 1;
            *b.add(6 * P) = 1;
        }
        assert_eq!(written(b, false), [2 * P, 3 * P, 4 * P, 6 * P], "{k:?}");
        // A reset clears the latch too.
        assert_eq!(written(b, true), [2 * P, 3 * P, 4 * P, 6 * P], "{k:?}");
        assert_eq!(written(b, false), Vec::<usize>::new(), "{k:?} after reset");
        release(b);
    }
}

/// Windows' own test (Wine's `test_write_watch`, end): written while read-write, then
/// VirtualProtect to NOACCESS, then the whole region decommitted: still reported; reported
/// pages limited by the count, and ResetWriteWatch, clear it.
#[test]
fn a_latched_page_survives_decommit_and_resets_cleanly() {
    for k in kinds() {
        let b = watched_then_opened(k, PAGE_NOACCESS);
        let mut old = 0;
        unsafe {
            *b.add(5 * P + 200) = 3;
            assert_eq!(VirtualProtect(b as _, 6 * P, PAGE_NOACCESS, &mut old), TRUE);
            assert_eq!(old, PAGE_READWRITE);
        }
        assert_eq!(written(b, false), [5 * P], "{k:?}");
        assert_eq!(unsafe { VirtualFree(b as _, 0x10000, MEM_DECOMMIT) }, TRUE);
        assert_eq!(written(b, false), [5 * P], "{k:?} after decommit");
        // Latched and freshly written pages together, one at a time with the reset flag.
        unsafe {
            assert!(!VirtualAlloc(b as _, 0x10000, MEM_COMMIT, PAGE_READWRITE).is_null());
            *b.add(P) = 1;
            *b.add(7 * P) = 1;
        }
        let one = |b| {
            let (r, _, pages, _) = gww(WRITE_WATCH_FLAG_RESET, b, b as usize, 0x10000, 1);
            assert_eq!(r, 0);
            pages
        };
        assert_eq!(one(b), [P], "{k:?}");
        assert_eq!(one(b), [5 * P], "{k:?}");
        assert_eq!(one(b), [7 * P], "{k:?}");
        assert_eq!(one(b), Vec::<usize>::new(), "{k:?}");
        // ResetWriteWatch clears a latched page.
        unsafe {
            *b.add(2 * P) = 1;
            assert_eq!(
                VirtualProtect(b as _, 0x10000, PAGE_READONLY, &mut old),
                TRUE
            );
            assert_eq!(VirtualFree(b as _, 0x10000, MEM_DECOMMIT), TRUE);
        }
        assert_eq!(written(b, false), [2 * P], "{k:?}");
        assert_eq!(unsafe { ResetWriteWatch(b as _, 0x10000) }, 0);
        assert_eq!(
            written(b, false),
            Vec::<usize>::new(),
            "{k:?} after ResetWriteWatch"
        );
        release(b);
    }
}

#[test]
fn case_24_write_watch_does_not_show_in_virtualquery() {
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        unsafe { *b.add(P) = 1 };
        let mut mbi = MEMORY_BASIC_INFORMATION::default();
        unsafe { VirtualQuery(b as _, &mut mbi, size_of_val(&mbi)) };
        assert_eq!(
            (
                mbi.AllocationProtect,
                mbi.RegionSize,
                mbi.State,
                mbi.Protect,
                mbi.Type
            ),
            (
                PAGE_READWRITE,
                0x10000,
                MEM_COMMIT,
                PAGE_READWRITE,
                MEM_PRIVATE
            ),
            "{k:?}"
        );
        release(b);
    }
}

#[test]
fn case_99_invalid_parameters() {
    let b = watched(
        WatchKind::Signal,
        0x10000,
        MEM_RESERVE | MEM_COMMIT,
        PAGE_READWRITE,
    );
    let base = b as usize;
    let mut out = [std::ptr::null_mut::<c_void>(); 4];
    let mut gran = 0u32;
    unsafe {
        let call =
            |flags, base: usize, size, arr: *mut *mut c_void, cnt: *mut usize, g: *mut u32| {
                SetLastError(0);
                (
                    GetWriteWatch(flags, base as _, size, arr, cnt, g),
                    GetLastError(),
                )
            };
        let mut zero = 0usize;
        let mut four = 4usize;
        assert_eq!(
            call(0, base, 0x10000, out.as_mut_ptr(), &mut zero, &mut gran),
            (u32::MAX, 87),
            "a"
        );
        assert_eq!(
            call(
                0,
                base,
                0x10000,
                out.as_mut_ptr(),
                std::ptr::null_mut(),
                &mut gran
            ),
            (u32::MAX, 998),
            "b"
        );
        assert_eq!(
            call(
                0,
                base,
                0x10000,
                out.as_mut_ptr(),
                &mut four,
                std::ptr::null_mut()
            ),
            (u32::MAX, 998),
            "c"
        );
        assert_eq!(
            call(0, base, 0x10000, std::ptr::null_mut(), &mut four, &mut gran),
            (u32::MAX, 998),
            "d"
        );
        assert_eq!(
            call(0, base, 0x10000, std::ptr::null_mut(), &mut zero, &mut gran),
            (u32::MAX, 87),
            "e"
        );
        assert_eq!(
            call(
                0xdeadbeef,
                base,
                0x10000,
                out.as_mut_ptr(),
                &mut four,
                &mut gran
            ),
            (u32::MAX, 87),
            "f"
        );
        assert_eq!(
            call(0, base, 0, out.as_mut_ptr(), &mut four, &mut gran),
            (u32::MAX, 87),
            "g"
        );
        assert_eq!(
            call(0, base, 0x20000, out.as_mut_ptr(), &mut four, &mut gran),
            (u32::MAX, 87),
            "h"
        );
        assert_eq!(
            call(
                0,
                base + 0x10000 - P,
                P + 1,
                out.as_mut_ptr(),
                &mut four,
                &mut gran
            ),
            (u32::MAX, 87),
            "i"
        );
        assert_eq!(
            call(0, 0, 0x10000, out.as_mut_ptr(), &mut four, &mut gran),
            (u32::MAX, 87),
            "86"
        );
        let code = case_87_image_address();
        assert_eq!(
            call(0, code, 0x1000, out.as_mut_ptr(), &mut four, &mut gran),
            (u32::MAX, 87),
            "87"
        );
        SetLastError(0);
        assert_eq!(
            (ResetWriteWatch(b as _, 0), GetLastError()),
            (u32::MAX, 87),
            "j"
        );
        SetLastError(0);
        assert_eq!(
            (ResetWriteWatch(code as _, 0x1000), GetLastError()),
            (u32::MAX, 87),
            "k"
        );
        // Write watch needs MEM_RESERVE (case 11).
        SetLastError(0);
        assert!(VirtualAlloc(
            null(),
            0x10000,
            MEM_WRITE_WATCH | MEM_COMMIT,
            PAGE_READWRITE
        )
        .is_null());
        assert_eq!(GetLastError(), 87);
        // An ordinary allocation is not a write-watch region.
        let plain = VirtualAlloc(null(), 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert_eq!(
            call(
                0,
                plain as usize,
                0x1000,
                out.as_mut_ptr(),
                &mut four,
                &mut gran
            ),
            (u32::MAX, 87)
        );
        VirtualFree(plain, 0, MEM_RELEASE);
    }
    release(b);
}

fn case_87_image_address() -> usize {
    case_87_image_address as *const () as usize & !(P - 1)
}

#[test]
fn case_98_kernel_writes_into_a_watched_buffer() {
    let (r, w) = {
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    };
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        assert_eq!(
            unsafe { libc::write(w, b"0123456789ab".as_ptr() as _, 12) },
            12
        );
        let n = unsafe { libc::read(r, b.add(3 * P) as _, 0x1000) };
        match k {
            // The kernel's writes are tracked: exactly the page written.
            WatchKind::Kernel => {
                assert_eq!(n, 12);
                assert_eq!(written(b, true), [3 * P]);
            }
            // Documented limit of the signal path: the kernel cannot write a clean page.
            WatchKind::Signal => {
                assert_eq!(n, -1);
                assert_eq!(
                    std::io::Error::last_os_error().raw_os_error(),
                    Some(libc::EFAULT)
                );
                // Drain the pipe for the next round.
                let mut buf = [0u8; 12];
                assert_eq!(unsafe { libc::read(r, buf.as_mut_ptr() as _, 12) }, 12);
                assert_eq!(written(b, true), Vec::<usize>::new());
            }
        }
        release(b);
    }
    unsafe {
        libc::close(r);
        libc::close(w);
    }
}

#[test]
fn getwritewatch_output_array_inside_the_watched_region() {
    // virtmem's own writes into user buffers work on both paths (the output array here lives
    // in a clean page of the watched region itself).
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        unsafe { *b.add(P) = 1 };
        let arr = unsafe { b.add(8 * P) } as *mut *mut c_void;
        let mut cnt = 4usize;
        let mut gran = 0u32;
        let r = unsafe {
            GetWriteWatch(
                WRITE_WATCH_FLAG_RESET,
                b as _,
                0x10000,
                arr,
                &mut cnt,
                &mut gran,
            )
        };
        assert_eq!((r, cnt), (0, 1), "{k:?}");
        assert_eq!(unsafe { *arr } as usize, b as usize + P);
        // Writing the array was a write.
        assert_eq!(written(b, false), [8 * P], "{k:?}");
        release(b);
    }
}

#[test]
fn mem_reset_undo_is_not_a_write() {
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        unsafe { std::ptr::write_bytes(b, 0x5A, 4 * P) };
        assert_eq!(written(b, true).len(), 4);
        unsafe {
            assert!(!VirtualAlloc(b as _, 4 * P, MEM_RESET, PAGE_NOACCESS).is_null());
            assert!(!VirtualAlloc(b as _, 4 * P, MEM_RESET_UNDO, PAGE_NOACCESS).is_null());
        }
        assert_eq!(written(b, false), Vec::<usize>::new(), "{k:?}");
        assert!((0..4 * P).all(|i| unsafe { *b.add(i) } == 0x5A));
        release(b);
    }
}

#[test]
fn threads_write_concurrently() {
    for k in kinds() {
        let b = watched(k, 64 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) as usize;
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in (t..64).step_by(4).filter(|i| i % 3 == 0) {
                        unsafe { *((b + i * P) as *mut u8) = 1 };
                    }
                });
            }
        });
        let expect: Vec<usize> = (0..64).filter(|i| i % 3 == 0).map(|i| i * P).collect();
        let (r, _, pages, _) = gww(WRITE_WATCH_FLAG_RESET, b as *mut u8, b, 64 * P, 64);
        assert_eq!((r, pages), (0, expect), "{k:?}");
        release(b as *mut u8);
    }
}

#[test]
fn fork_child_view_is_defined() {
    // After fork the child inherits the memory and its write-watch record: tracking goes on
    // in the child exactly, both ways (kernel path: the fork handlers carry the parent's
    // written pages over to the child's own userfaultfd). The parent is unaffected.
    for k in kinds() {
        let b = watched(k, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        unsafe { *b.add(P) = 1 };
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = std::panic::catch_unwind(|| {
                let first = written(b, true);
                assert_eq!(first, [P], "{k:?}");
                assert_eq!(written(b, false), Vec::<usize>::new());
                unsafe { *b.add(6 * P) = 1 };
                assert_eq!(written(b, false), [6 * P]);
            })
            .is_ok();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{k:?}: child failed"
        );
        assert_eq!(
            written(b, false),
            [P],
            "{k:?}: the parent's view is unchanged"
        );
        release(b);
    }
}

#[test]
fn a_huge_watched_reservation_costs_nothing_up_front() {
    // 16 TiB reserved with write watch: only committed pages are ever write-protected, so no
    // page tables are built for the rest (it used to exhaust memory on the kernel path).
    for k in kinds() {
        let size = 16usize << 40;
        let b = watched(k, size, MEM_RESERVE, PAGE_READWRITE);
        let mid = unsafe { b.add(size / 2) };
        unsafe {
            assert!(!VirtualAlloc(mid as _, 4 * P, MEM_COMMIT, PAGE_READWRITE).is_null());
            *mid.add(P) = 1;
        }
        let (r, _, pages, _) = gww(WRITE_WATCH_FLAG_RESET, b, b as usize, size, 64);
        assert_eq!((r, pages), (0, vec![size / 2 + P]), "{k:?}");
        release(b);
    }
}
