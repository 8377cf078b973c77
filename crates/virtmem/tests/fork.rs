//! Fork safety (issue 12, item 3): a child forked from a process that uses virtmem — from any
//! thread, while other threads may be inside virtmem calls — can use the whole API, and
//! nothing it does changes the parent.
//!
//! Each test prepares memory of one kind in the parent, forks, and runs a call sequence in
//! the child: the child reports failure by its exit code (the step that failed) and a line on
//! stderr written with `write(2)`, and always leaves with `_exit`. The parent waits at most
//! 20 s (a hung child is killed and the test fails), then checks its own memory and state.
//! The tests run in parallel threads of one process, so most forks happen while other threads
//! are inside virtmem calls; one test forks while threads hammer virtmem on purpose.

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use virtmem::win32::*;
use virtmem::WatchKind;

const P: usize = 4096;

/// Tests that switch the process-wide write-watch mode hold this while they allocate.
static MODE: Mutex<()> = Mutex::new(());

static HITS: AtomicUsize = AtomicUsize::new(0);

/// A guard-page handler that counts and continues (the same for every test).
fn counting_handler() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        // SAFETY: the handler only increments an atomic.
        unsafe {
            virtmem::set_guard_page_handler(Some(Box::new(|_| {
                HITS.fetch_add(1, Ordering::SeqCst);
                true
            })))
        };
    });
}

/// In the child: if `ok` is false, says `what` on stderr (raw `write`) and exits with `code`.
fn ensure(ok: bool, code: i32, what: &str) {
    if !ok {
        // SAFETY: writing a buffer to stderr, then ending the process.
        unsafe {
            libc::write(2, what.as_ptr() as *const c_void, what.len());
            libc::write(2, b"\n".as_ptr() as *const c_void, 1);
            libc::_exit(code);
        }
    }
}

/// Forks; the child runs `body` then `_exit(0)` (a panic: `_exit(101)`). The parent runs
/// `after_fork` at once, then waits for the child (20 s at most) and asserts it succeeded.
fn fork_child(body: impl FnOnce(), after_fork: impl FnOnce()) {
    // SAFETY: the child only runs `body` (virtmem calls, raw writes) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        // SAFETY: ending the child without running the parent's destructors or atexit hooks.
        unsafe { libc::_exit(if r.is_ok() { 0 } else { 101 }) };
    }
    after_fork();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        // SAFETY: polling our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "waitpid");
        if Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung (killed after 20 s)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed: {}",
        if libc::WIFEXITED(status) {
            format!("exit code {} (the failed step)", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        }
    );
}

fn vq(p: usize) -> MEMORY_BASIC_INFORMATION {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: VirtualQuery writes one MEMORY_BASIC_INFORMATION.
    let n = unsafe { VirtualQuery(p as *const c_void, &mut m, size_of_val(&m)) };
    assert_ne!(n, 0);
    m
}

fn alloc(size: usize, ty: u32, prot: u32) -> usize {
    // SAFETY: a new allocation anywhere.
    unsafe { VirtualAlloc(null(), size, ty, prot) as usize }
}

fn write(p: usize, v: u8) {
    // SAFETY: the callers write only committed, writable pages they own.
    unsafe { (p as *mut u8).write_volatile(v) }
}

fn read(p: usize) -> u8 {
    // SAFETY: the callers read only committed, readable pages they own.
    unsafe { (p as *const u8).read_volatile() }
}

/// GetWriteWatch of `[base, base+size)` as page indices (`None` on failure).
fn written(base: usize, size: usize, reset: bool) -> Option<Vec<usize>> {
    let mut addrs = [null_mut::<c_void>(); 256];
    let mut count = addrs.len();
    let mut gran = 0u32;
    let flags = if reset { WRITE_WATCH_FLAG_RESET } else { 0 };
    // SAFETY: `addrs` holds `count` entries.
    let r = unsafe {
        GetWriteWatch(
            flags,
            base as *const c_void,
            size,
            addrs.as_mut_ptr(),
            &mut count,
            &mut gran,
        )
    };
    (r == 0).then(|| {
        addrs[..count]
            .iter()
            .map(|&a| (a as usize - base) / P)
            .collect()
    })
}

/// A MEM_WRITE_WATCH allocation of `pages` committed pages, tracked by `kind` (`None` if
/// this kernel cannot track writes that way).
fn watched(pages: usize, kind: WatchKind) -> Option<usize> {
    let _m = MODE.lock().unwrap_or_else(|e| e.into_inner());
    virtmem::set_write_watch_mode(kind);
    let ok = virtmem::write_watch_mode() == kind;
    let b = ok.then(|| {
        alloc(
            pages * P,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        )
    });
    virtmem::set_write_watch_mode(WatchKind::Kernel);
    b.inspect(|&b| assert_ne!(b, 0))
}

/// The call sequence every child runs on memory of its own; exit codes 10..=49.
fn child_sequence() {
    // Allocate, commit, write, protect, query, free.
    let b = alloc(16 * P, MEM_RESERVE, PAGE_NOACCESS);
    ensure(b != 0, 10, "reserve");
    // SAFETY: committing pages of our reservation.
    let c = unsafe { VirtualAlloc(b as *const c_void, 4 * P, MEM_COMMIT, PAGE_READWRITE) };
    ensure(c as usize == b, 11, "commit");
    write(b + P, 7);
    ensure(read(b + P) == 7, 12, "write");
    let mut old = 0;
    // SAFETY: our committed pages.
    let ok = unsafe { VirtualProtect(b as *const c_void, 2 * P, PAGE_READONLY, &mut old) };
    ensure(ok != 0 && old == PAGE_READWRITE, 13, "protect");
    let m = vq(b);
    ensure(
        m.State == MEM_COMMIT && m.Protect == PAGE_READONLY && m.RegionSize == 2 * P,
        14,
        "query after protect",
    );
    ensure(vq(b + 4 * P).State == MEM_RESERVE, 15, "query reserved");
    // A guard page hit, continued by the handler; one shot.
    let hits = HITS.load(Ordering::SeqCst);
    // SAFETY: our committed pages.
    let ok = unsafe {
        VirtualProtect(
            (b + 2 * P) as *const c_void,
            P,
            PAGE_READWRITE | PAGE_GUARD,
            &mut old,
        )
    };
    ensure(ok != 0, 16, "protect guard");
    write(b + 2 * P, 1);
    ensure(HITS.load(Ordering::SeqCst) == hits + 1, 17, "guard hit");
    write(b + 2 * P, 2);
    ensure(
        HITS.load(Ordering::SeqCst) == hits + 1,
        18,
        "guard one shot",
    );
    ensure(vq(b + 2 * P).Protect == PAGE_READWRITE, 19, "guard gone");
    // SAFETY: releasing our allocation.
    ensure(
        unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) } != 0,
        20,
        "release",
    );
    ensure(vq(b).State == MEM_FREE, 21, "released");
    // Write watch of a new allocation, both ways (the child is single-threaded: the mode is
    // its own).
    for (i, kind) in [WatchKind::Kernel, WatchKind::Signal]
        .into_iter()
        .enumerate()
    {
        let code = 22 + 5 * i as i32;
        virtmem::set_write_watch_mode(kind);
        if virtmem::write_watch_mode() != kind {
            continue;
        }
        let w = alloc(
            8 * P,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
        );
        ensure(w != 0, code, "watched allocation");
        write(w + P, 1);
        write(w + 3 * P, 1);
        ensure(
            written(w, 8 * P, true) == Some(vec![1, 3]),
            code + 1,
            "GetWriteWatch of a new allocation",
        );
        write(w + 5 * P, 1);
        ensure(
            written(w, 8 * P, false) == Some(vec![5]),
            code + 2,
            "GetWriteWatch after reset",
        );
        // SAFETY: our watched allocation.
        ensure(
            unsafe { ResetWriteWatch(w as *const c_void, 8 * P) } == 0
                && written(w, 8 * P, false) == Some(vec![]),
            code + 3,
            "ResetWriteWatch",
        );
        // SAFETY: releasing it.
        unsafe { VirtualFree(w as *mut c_void, 0, MEM_RELEASE) };
    }
    virtmem::set_write_watch_mode(WatchKind::Kernel);
    // AWE: a window, frames, map, write.
    let w = alloc(4 * P, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
    ensure(w != 0, 40, "AWE window");
    let mut n = 2usize;
    let mut pfns = [0usize; 2];
    // SAFETY: `pfns` holds `n` entries.
    let ok = unsafe { AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, pfns.as_mut_ptr()) };
    ensure(ok != 0 && n == 2, 41, "AllocateUserPhysicalPages");
    // SAFETY: mapping our frames into our window.
    let ok = unsafe { MapUserPhysicalPages(w as *const c_void, 2, pfns.as_ptr()) };
    ensure(ok != 0, 42, "MapUserPhysicalPages");
    write(w, 0x5A);
    write(w + P, 0x5B);
    ensure(read(w) == 0x5A && read(w + P) == 0x5B, 43, "AWE write");
    // SAFETY: freeing our frames and window.
    unsafe {
        let mut n = 2usize;
        ensure(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut n, pfns.as_ptr()) != 0,
            44,
            "FreeUserPhysicalPages",
        );
        ensure(
            VirtualFree(w as *mut c_void, 0, MEM_RELEASE) != 0,
            45,
            "release window",
        );
    }
}

#[test]
fn plain_allocation() {
    counting_handler();
    let b = alloc(8 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_ne!(b, 0);
    for i in 0..8 {
        write(b + i * P, 0x30 + i as u8);
    }
    fork_child(
        || {
            let m = vq(b);
            ensure(
                m.State == MEM_COMMIT && m.Protect == PAGE_READWRITE && m.RegionSize == 8 * P,
                1,
                "query of the parent's allocation",
            );
            ensure(read(b + 3 * P) == 0x33, 2, "contents");
            write(b + 3 * P, 0x99);
            let mut old = 0;
            // SAFETY: the inherited allocation.
            let ok = unsafe { VirtualProtect(b as *const c_void, P, PAGE_NOACCESS, &mut old) };
            ensure(ok != 0 && vq(b).Protect == PAGE_NOACCESS, 3, "protect");
            // SAFETY: decommitting a page of it.
            let ok = unsafe { VirtualFree((b + 4 * P) as *mut c_void, P, MEM_DECOMMIT) };
            ensure(ok != 0 && vq(b + 4 * P).State == MEM_RESERVE, 4, "decommit");
            child_sequence();
            // SAFETY: releasing it (in the child).
            let ok = unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) };
            ensure(ok != 0 && vq(b).State == MEM_FREE, 5, "release");
        },
        || {},
    );
    let m = vq(b);
    assert_eq!(
        (m.State, m.Protect, m.RegionSize),
        (MEM_COMMIT, PAGE_READWRITE, 8 * P)
    );
    for i in 0..8 {
        assert_eq!(read(b + i * P), 0x30 + i as u8);
    }
    // SAFETY: releasing it.
    assert_ne!(unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) }, 0);
}

#[test]
fn guard_pages() {
    counting_handler();
    let b = alloc(4 * P, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_ne!(b, 0);
    let mut old = 0;
    // SAFETY: our pages.
    assert_ne!(
        unsafe { VirtualProtect(b as *const c_void, P, PAGE_READWRITE | PAGE_GUARD, &mut old) },
        0
    );
    fork_child(
        || {
            ensure(
                vq(b).Protect == PAGE_READWRITE | PAGE_GUARD,
                1,
                "the guard is inherited",
            );
            let h = HITS.load(Ordering::SeqCst);
            write(b, 1);
            ensure(
                HITS.load(Ordering::SeqCst) == h + 1,
                2,
                "inherited guard hit",
            );
            ensure(vq(b).Protect == PAGE_READWRITE, 3, "guard consumed");
            // A new guard on a page the parent has writable: the handler must ask the child's
            // kernel, not the parent's (else it retries forever).
            let mut old = 0;
            // SAFETY: the inherited allocation.
            let ok = unsafe {
                VirtualProtect(
                    (b + P) as *const c_void,
                    P,
                    PAGE_READWRITE | PAGE_GUARD,
                    &mut old,
                )
            };
            ensure(ok != 0, 4, "protect guard");
            write(b + P, 1);
            ensure(HITS.load(Ordering::SeqCst) == h + 2, 5, "new guard hit");
            child_sequence();
        },
        || {},
    );
    // The parent's guard is still armed: the child's hit was the child's.
    assert_eq!(vq(b).Protect, PAGE_READWRITE | PAGE_GUARD);
    let h = HITS.load(Ordering::SeqCst);
    write(b, 1);
    assert!(HITS.load(Ordering::SeqCst) > h);
    assert_eq!(vq(b).Protect, PAGE_READWRITE);
    assert_eq!(vq(b + P).Protect, PAGE_READWRITE);
    // SAFETY: releasing it.
    assert_ne!(unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) }, 0);
}

/// The parent writes pages 2 and 4 after a reset; the child's first GetWriteWatch reports
/// exactly those (kernel tracking: the parent's written pages are carried over the fork, see
/// `engine/fork.rs`), then the child's own writes on top, and so does a grandchild; the
/// parent's record is untouched.
fn write_watch(kind: WatchKind) {
    counting_handler();
    let Some(b) = watched(16, kind) else {
        eprintln!("skipped: no {kind:?} write watch here");
        return;
    };
    // SAFETY: our watched allocation.
    assert_eq!(unsafe { ResetWriteWatch(b as *const c_void, 16 * P) }, 0);
    // Decommit the last 4 pages: never reported.
    // SAFETY: our pages.
    assert_ne!(
        unsafe { VirtualFree((b + 12 * P) as *mut c_void, 4 * P, MEM_DECOMMIT) },
        0
    );
    // Page 6 is read (present in memory, not written): never reported either.
    let _ = read(b + 6 * P);
    write(b + 2 * P, 1);
    write(b + 4 * P, 1);
    assert_eq!(written(b, 16 * P, false), Some(vec![2, 4]));
    fork_child(
        || {
            let first = written(b, 16 * P, false);
            ensure(first.is_some(), 1, "GetWriteWatch in the child");
            ensure(
                first == Some(vec![2, 4]),
                2,
                "the child's first GetWriteWatch is exactly the parent's writes",
            );
            write(b + 7 * P, 1);
            ensure(
                written(b, 16 * P, false) == Some(vec![2, 4, 7]),
                3,
                "the child's write is reported with the parent's",
            );
            // A grandchild inherits the child's record, exactly.
            fork_child(
                || {
                    ensure(
                        written(b, 16 * P, false) == Some(vec![2, 4, 7]),
                        1,
                        "the grandchild's first GetWriteWatch",
                    );
                    write(b + 8 * P, 1);
                    ensure(
                        written(b, 16 * P, true) == Some(vec![2, 4, 7, 8]),
                        2,
                        "the grandchild's write",
                    );
                    ensure(
                        written(b, 16 * P, false) == Some(vec![]),
                        3,
                        "clean after the grandchild's reset",
                    );
                },
                || {},
            );
            ensure(
                written(b, 16 * P, true) == Some(vec![2, 4, 7]),
                4,
                "the grandchild changed the child's record",
            );
            ensure(
                written(b, 16 * P, false) == Some(vec![]),
                5,
                "clean after the child's reset",
            );
            write(b + 9 * P, 1);
            ensure(
                written(b, 16 * P, false) == Some(vec![9]),
                6,
                "exact after the child's reset",
            );
            // SAFETY: the inherited watched allocation.
            ensure(
                unsafe { ResetWriteWatch(b as *const c_void, 16 * P) } == 0,
                7,
                "ResetWriteWatch",
            );
            // SAFETY: recommitting the decommitted pages.
            let c = unsafe {
                VirtualAlloc(
                    (b + 12 * P) as *const c_void,
                    4 * P,
                    MEM_COMMIT,
                    PAGE_READWRITE,
                )
            };
            ensure(c as usize == b + 12 * P, 8, "recommit");
            write(b + 13 * P, 1);
            write(b + P, 1);
            ensure(
                written(b, 16 * P, true) == Some(vec![1, 13]),
                9,
                "exact in recommitted pages",
            );
            child_sequence();
        },
        || {},
    );
    assert_eq!(
        written(b, 16 * P, false),
        Some(vec![2, 4]),
        "the child changed the parent's write-watch state"
    );
    write(b + 5 * P, 1);
    assert_eq!(written(b, 16 * P, true), Some(vec![2, 4, 5]));
    assert_eq!(written(b, 16 * P, false), Some(vec![]));
    // SAFETY: releasing it.
    assert_ne!(unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) }, 0);
}

#[test]
fn write_watch_kernel() {
    write_watch(WatchKind::Kernel);
}

#[test]
fn write_watch_signal() {
    write_watch(WatchKind::Signal);
}

#[test]
fn awe_window_with_mapped_frames() {
    counting_handler();
    let w = alloc(4 * P, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
    assert_ne!(w, 0);
    let mut n = 3usize;
    let mut pfns = [0usize; 3];
    // SAFETY: `pfns` holds `n` entries; then mapping our frames into our window.
    unsafe {
        assert_ne!(
            AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, pfns.as_mut_ptr()),
            0
        );
        // Frame 2 gets contents, then is unmapped: it lives only in the store.
        assert_ne!(
            MapUserPhysicalPages((w + 2 * P) as *const c_void, 1, pfns[2..].as_ptr()),
            0
        );
        write(w + 2 * P, 0xA2);
        assert_ne!(
            MapUserPhysicalPages((w + 2 * P) as *const c_void, 1, null()),
            0
        );
        assert_ne!(
            MapUserPhysicalPages(w as *const c_void, 2, pfns.as_ptr()),
            0
        );
    }
    write(w, 0xA0);
    write(w + P, 0xA1);
    let pfns2 = pfns;
    fork_child(
        move || {
            ensure(
                read(w) == 0xA0 && read(w + P) == 0xA1,
                1,
                "inherited frames",
            );
            // Give the parent time to write after its fork returned: not visible here.
            std::thread::sleep(Duration::from_millis(100));
            ensure(
                read(w + 1) == 0,
                2,
                "a parent write after fork shows in the child",
            );
            write(w, 0xC0);
            write(w + P, 0xC1);
            // The unmapped frame kept its contents in the child's copy of the store.
            // SAFETY: mapping our frame into our window.
            let ok = unsafe {
                MapUserPhysicalPages((w + 3 * P) as *const c_void, 1, pfns2[2..].as_ptr())
            };
            ensure(
                ok != 0 && read(w + 3 * P) == 0xA2,
                3,
                "unmapped frame's contents",
            );
            write(w + 3 * P, 0xC2);
            // Frames move between addresses, keeping contents.
            // SAFETY: as above.
            let ok = unsafe {
                MapUserPhysicalPages(w as *const c_void, 1, null())
                    & MapUserPhysicalPages((w + 2 * P) as *const c_void, 1, pfns2.as_ptr())
            };
            ensure(ok != 0 && read(w + 2 * P) == 0xC0, 4, "moved frame");
            child_sequence();
        },
        || write(w + 1, 0xEE),
    );
    // The child's writes went to its own frames.
    assert_eq!((read(w), read(w + 1), read(w + P)), (0xA0, 0xEE, 0xA1));
    // SAFETY: mapping our frame into our window.
    unsafe {
        assert_ne!(
            MapUserPhysicalPages((w + 2 * P) as *const c_void, 1, pfns[2..].as_ptr()),
            0
        );
    }
    assert_eq!(read(w + 2 * P), 0xA2);
    // SAFETY: freeing our frames and window.
    unsafe {
        let mut n = 3usize;
        assert_ne!(
            FreeUserPhysicalPages(GetCurrentProcess(), &mut n, pfns.as_ptr()),
            0
        );
        assert_ne!(VirtualFree(w as *mut c_void, 0, MEM_RELEASE), 0);
    }
}

#[test]
fn placeholder() {
    counting_handler();
    const G: usize = 0x10000;
    // SAFETY: a new placeholder anywhere.
    let b = unsafe {
        VirtualAlloc2(
            null_mut(),
            null(),
            4 * G,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            PAGE_NOACCESS,
            null_mut(),
            0,
        )
    } as usize;
    assert_ne!(b, 0);
    fork_child(
        || {
            ensure(vq(b).RegionSize == 4 * G, 1, "inherited placeholder");
            // Split off the first granule and replace it.
            // SAFETY: our placeholder.
            let ok =
                unsafe { VirtualFree(b as *mut c_void, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) };
            ensure(ok != 0, 2, "split");
            // SAFETY: replacing our placeholder.
            let r = unsafe {
                VirtualAlloc2(
                    null_mut(),
                    b as *const c_void,
                    G,
                    MEM_RESERVE | MEM_REPLACE_PLACEHOLDER | MEM_COMMIT,
                    PAGE_READWRITE,
                    null_mut(),
                    0,
                )
            };
            ensure(r as usize == b, 3, "replace");
            write(b + P, 3);
            let m = vq(b);
            ensure(
                m.State == MEM_COMMIT && m.RegionSize == G && read(b + P) == 3,
                4,
                "replaced",
            );
            ensure(
                vq(b + G).RegionSize == 3 * G,
                5,
                "the rest is a placeholder",
            );
            child_sequence();
        },
        || {},
    );
    let m = vq(b);
    assert_eq!(
        (m.State, m.RegionSize, m.Type),
        (MEM_RESERVE, 4 * G, MEM_PRIVATE)
    );
    // SAFETY: releasing it.
    assert_ne!(unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) }, 0);
}

#[test]
fn large_pages_if_available() {
    counting_handler();
    let lp = GetLargePageMinimum();
    if lp == 0 {
        eprintln!("skipped: no large pages");
        return;
    }
    let b = alloc(
        lp,
        MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES,
        PAGE_READWRITE,
    );
    if b == 0 {
        eprintln!("skipped: no large pages available ({})", GetLastError());
        return;
    }
    write(b, 1);
    fork_child(
        || {
            ensure(read(b) == 1, 1, "contents");
            write(b, 2);
            ensure(vq(b).State == MEM_COMMIT, 2, "query");
            child_sequence();
        },
        || {},
    );
    assert_eq!(read(b), 1);
    // SAFETY: releasing it.
    assert_ne!(unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) }, 0);
}

/// Forks while threads hammer virtmem (allocate, commit, protect, guard, query, write watch,
/// placeholders, AWE, free), from the test's thread and from a thread spawned for it: every
/// child must still finish its call sequence (no lock left held, no stale state).
#[test]
fn fork_while_other_threads_hammer_virtmem() {
    counting_handler();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    hammer_once(t, i);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    for round in 0..20 {
        if round % 2 == 0 {
            fork_child(child_sequence, || {});
        } else {
            std::thread::spawn(|| fork_child(child_sequence, || {}))
                .join()
                .unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

/// One round of worker `t`'s calls.
fn hammer_once(t: usize, i: usize) {
    let mut old = 0;
    match t {
        0 | 1 => {
            let b = alloc(8 * P, MEM_RESERVE, PAGE_NOACCESS);
            assert_ne!(b, 0);
            // SAFETY: our reservation.
            unsafe {
                VirtualAlloc(b as *const c_void, 4 * P, MEM_COMMIT, PAGE_READWRITE);
                write(b, 1);
                let g = if i % 2 == 0 { PAGE_GUARD } else { 0 };
                VirtualProtect(b as *const c_void, P, PAGE_READONLY | g, &mut old);
                let _ = vq(b + 2 * P);
                VirtualFree((b + 3 * P) as *mut c_void, P, MEM_DECOMMIT);
                VirtualFree(b as *mut c_void, 0, MEM_RELEASE);
            }
        }
        2 => {
            let b = alloc(
                8 * P,
                MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
                PAGE_READWRITE,
            );
            assert_ne!(b, 0);
            write(b + (i % 8) * P, 1);
            let w = written(b, 8 * P, true);
            assert_eq!(w, Some(vec![i % 8]));
            // SAFETY: our allocation.
            unsafe { VirtualFree(b as *mut c_void, 0, MEM_RELEASE) };
        }
        _ => {
            let w = alloc(2 * P, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
            assert_ne!(w, 0);
            let mut n = 1usize;
            let mut f = [0usize; 1];
            // SAFETY: our window and frame.
            unsafe {
                AllocateUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_mut_ptr());
                MapUserPhysicalPages(w as *const c_void, 1, f.as_ptr());
                write(w, 1);
                FreeUserPhysicalPages(GetCurrentProcess(), &mut n, f.as_ptr());
                VirtualFree(w as *mut c_void, 0, MEM_RELEASE);
            }
            const G: usize = 0x10000;
            // SAFETY: a placeholder of our own, split and replaced, then released.
            unsafe {
                let b = VirtualAlloc2(
                    null_mut(),
                    null(),
                    2 * G,
                    MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                    PAGE_NOACCESS,
                    null_mut(),
                    0,
                ) as usize;
                assert_ne!(b, 0);
                VirtualFree(b as *mut c_void, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER);
                VirtualAlloc2(
                    null_mut(),
                    b as *const c_void,
                    G,
                    MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
                    PAGE_READWRITE,
                    null_mut(),
                    0,
                );
                VirtualFree(b as *mut c_void, 0, MEM_RELEASE);
                VirtualFree((b + G) as *mut c_void, 0, MEM_RELEASE);
            }
        }
    }
}
