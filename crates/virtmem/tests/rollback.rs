//! All-or-nothing: every operation, with each of its kernel calls failing in turn, must fail
//! with the Win32 code the failure implies and leave everything as it was — the space's
//! VirtualQuery of every page, the kernel's mappings of the range (`/proc/self/smaps` lines,
//! lock flag included) and the data of committed pages.
//!
//! `FailingOs` fails a call *before* the kernel sees it. Kernel calls that fail half-way
//! (`mprotect` works VMA by VMA; `mmap(MAP_FIXED)` can leave a hole) are simulated by
//! `PartialOs` below, which really applies part of the request and then reports a failure.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use virtmem::engine::Space;
use virtmem::os::failing::{FailingOs, Fault};
use virtmem::os::linux::LinuxOs;
use virtmem::os::{
    HostProt, KernelRegion, Os, OsError, OsErrorKind, Placement, Syscall, UndoReport,
};
use virtmem::rules::requests::AllocFlavor;
use virtmem::win32::consts::*;
use virtmem::{Layout, MemoryInfo, State, WatchKind};

const P: usize = 0x1000;
const G: usize = 0x10000;
const ENOMEM: i32 = 12;

type FS = Space<FailingOs<LinuxOs>>;

/// The tests share the process's lock quota and address space: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_space<O: Os>(os: O) -> Space<O> {
    assert_eq!(
        Layout::native().page_size,
        P,
        "this test assumes 4 KiB pages"
    );
    Space::new(Layout::native(), os)
}

// ------------------------------------------------------------------------------------------
// The kernel's view: /proc/self/smaps
// ------------------------------------------------------------------------------------------

/// One kernel mapping: start, end, permissions ("rw-p"), path, locked (VmFlags "lo").
#[derive(Clone, Debug, PartialEq, Eq)]
struct Line {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    locked: bool,
}

fn smaps() -> Vec<Line> {
    let text = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
    let mut out: Vec<Line> = Vec::new();
    for l in text.lines() {
        if let Some(flags) = l.strip_prefix("VmFlags:") {
            if let Some(last) = out.last_mut() {
                last.locked = flags.split_whitespace().any(|f| f == "lo");
            }
            continue;
        }
        let mut it = l.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(s, 16), usize::from_str_radix(e, 16))
        else {
            continue;
        };
        let path = it.nth(3).unwrap_or("").to_string();
        out.push(Line {
            start,
            end,
            perms: perms.to_string(),
            path,
            locked: false,
        });
    }
    out
}

/// The mappings overlapping `[lo, hi)`, clipped to it (so merges with neighbours that are not
/// ours do not show).
fn lines_in(all: &[Line], lo: usize, hi: usize) -> Vec<Line> {
    all.iter()
        .filter(|l| l.end > lo && l.start < hi)
        .map(|l| Line {
            start: l.start.max(lo),
            end: l.end.min(hi),
            ..l.clone()
        })
        .collect()
}

/// Mappings that only our kind of call creates: inaccessible anonymous ones (reservations),
/// except those that adjoin accessible anonymous memory (malloc's heaps keep a PROT_NONE tail
/// that moves as they grow; thread stacks have guard pages).
fn reservations(all: &[Line]) -> Vec<Line> {
    let anon_rw = |l: &Line| l.path.is_empty() && l.perms != "---p";
    all.iter()
        .enumerate()
        .filter(|(i, l)| {
            let prev = i.checked_sub(1).map(|j| &all[j]);
            let next = all.get(i + 1);
            l.perms == "---p"
                && l.path.is_empty()
                && !prev.is_some_and(|p| p.end == l.start && anon_rw(p))
                && !next.is_some_and(|n| n.start == l.end && anon_rw(n))
        })
        .map(|(_, l)| l.clone())
        .collect()
}

// ------------------------------------------------------------------------------------------
// Snapshots
// ------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Snap {
    allocations: Vec<(usize, usize, u64)>,
    queries: Vec<MemoryInfo>,
    lines: Vec<Line>,
    reservations: Vec<Line>,
    data: Vec<(usize, Vec<u8>)>,
}

fn snapshot<O: Os>(space: &Space<O>, ranges: &[(usize, usize)]) -> Snap {
    let all = smaps();
    let mut queries = Vec::new();
    let mut lines = Vec::new();
    let mut data = Vec::new();
    for &(lo, hi) in ranges {
        lines.extend(lines_in(&all, lo, hi));
        for pg in (lo..hi).step_by(P) {
            let q = space.query(pg).expect("query");
            if q.state == State::Commit && matches!(q.protect & 0xFF, 0x02 | 0x04 | 0x20 | 0x40) {
                // SAFETY: committed and readable (the smaps lines are compared too).
                let bytes = unsafe { std::slice::from_raw_parts(pg as *const u8, P) }.to_vec();
                data.push((pg, bytes));
            }
            queries.push(q);
        }
    }
    Snap {
        allocations: space.allocations(),
        queries,
        lines,
        reservations: reservations(&all),
        data,
    }
}

fn assert_same(before: &Snap, after: &Snap, what: &str, check_reservations: bool) {
    assert_eq!(
        before.allocations, after.allocations,
        "{what}: allocations()"
    );
    for (b, a) in before.queries.iter().zip(&after.queries) {
        assert_eq!(b, a, "{what}: VirtualQuery({:#x})", b.base_address);
    }
    assert_eq!(before.queries.len(), after.queries.len());
    assert_eq!(
        before.lines, after.lines,
        "{what}: kernel mappings of the range"
    );
    if check_reservations {
        assert_eq!(
            before.reservations, after.reservations,
            "{what}: the process's reservations"
        );
    }
    assert_eq!(
        before.data.len(),
        after.data.len(),
        "{what}: number of readable pages"
    );
    for ((pb, db), (pa, da)) in before.data.iter().zip(&after.data) {
        assert_eq!(pb, pa, "{what}: readable pages");
        if db != da {
            let i = db.iter().zip(da).position(|(x, y)| x != y).unwrap();
            panic!(
                "{what}: data of page {pb:#x} changed at offset {i:#x}: {:#x} -> {:#x}",
                db[i], da[i]
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Building blocks for setups
// ------------------------------------------------------------------------------------------

const F: AllocFlavor = AllocFlavor { from_app: false };

fn reserve<O: Os>(s: &Space<O>, size: usize) -> usize {
    s.virtual_alloc(0, size, MEM_RESERVE, PAGE_READWRITE, F)
        .expect("reserve")
}

fn commit<O: Os>(s: &Space<O>, addr: usize, pages: usize, prot: u32) {
    s.virtual_alloc(addr, pages * P, MEM_COMMIT, prot, F)
        .expect("commit");
}

/// Commits read-write, writes a pattern, then sets `prot`.
fn commit_data<O: Os>(s: &Space<O>, addr: usize, pages: usize, prot: u32, seed: u8) {
    commit(s, addr, pages, PAGE_READWRITE);
    for i in 0..pages * P / 8 {
        let v = (seed as u64) << 56 | (addr + i * 8) as u64;
        // SAFETY: committed read-write just above.
        unsafe { ((addr + i * 8) as *mut u64).write_volatile(v) };
    }
    if prot != PAGE_READWRITE {
        s.virtual_protect(addr, pages * P, prot).expect("protect");
    }
}

/// A free, 64 KiB-aligned range of `size` bytes (reserved and released by the space).
fn free_range<O: Os>(s: &Space<O>, size: usize) -> usize {
    let b = reserve(s, size);
    s.virtual_free(b, 0, MEM_RELEASE).expect("release");
    b
}

/// A reservation of 4 granules with a mix of runs:
/// pages 0-1 RW (data), 2-3 reserved, 4-5 READONLY (data), 6 reserved, 7 EXECUTE_READ (data),
/// 8 NOACCESS, 9 RW (data), the rest reserved.
fn mixed<O: Os>(s: &Space<O>) -> usize {
    let b = reserve(s, 4 * G);
    commit_data(s, b, 2, PAGE_READWRITE, 1);
    commit_data(s, b + 4 * P, 2, PAGE_READONLY, 2);
    commit_data(s, b + 7 * P, 1, PAGE_EXECUTE_READ, 3);
    commit(s, b + 8 * P, 1, PAGE_NOACCESS);
    commit_data(s, b + 9 * P, 1, PAGE_READWRITE, 4);
    b
}

// ------------------------------------------------------------------------------------------
// Scenarios
// ------------------------------------------------------------------------------------------

/// What a setup made: the address the operation works on and the ranges to compare.
struct Ctx {
    addr: usize,
    ranges: Vec<(usize, usize)>,
    /// Compare the process's whole list of reservations too (for reserving operations).
    reservations: bool,
}

struct Scenario {
    name: &'static str,
    setup: fn(&FS) -> Ctx,
    op: fn(&FS, &Ctx) -> virtmem::Result<usize>,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "reserve NULL",
            setup: |s| {
                let b = mixed(s);
                Ctx {
                    addr: 0,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: true,
                }
            },
            op: |s, _| s.virtual_alloc(0, 4 * G, MEM_RESERVE, PAGE_READWRITE, F),
        },
        Scenario {
            name: "reserve fixed",
            setup: |s| {
                let a = free_range(s, 4 * G);
                Ctx {
                    addr: a,
                    ranges: vec![(a, a + 4 * G)],
                    reservations: true,
                }
            },
            op: |s, c| s.virtual_alloc(c.addr + 0x1234, 3 * G, MEM_RESERVE, PAGE_READONLY, F),
        },
        Scenario {
            name: "reserve+commit NULL",
            setup: |_| Ctx {
                addr: 0,
                ranges: vec![],
                reservations: true,
            },
            op: |s, _| s.virtual_alloc(0, 2 * G + 5, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, F),
        },
        Scenario {
            name: "reserve+commit fixed",
            setup: |s| {
                let a = free_range(s, 4 * G);
                Ctx {
                    addr: a,
                    ranges: vec![(a, a + 4 * G)],
                    reservations: true,
                }
            },
            op: |s, c| {
                s.virtual_alloc(
                    c.addr,
                    4 * G,
                    MEM_RESERVE | MEM_COMMIT,
                    PAGE_EXECUTE_READ,
                    F,
                )
            },
        },
        Scenario {
            name: "commit reserved pages",
            setup: |s| {
                let b = reserve(s, 4 * G);
                commit_data(s, b, 2, PAGE_READWRITE, 7);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_alloc(c.addr + 4 * P + 1, 8 * P, MEM_COMMIT, PAGE_READWRITE, F),
        },
        Scenario {
            name: "commit mixed committed/reserved runs",
            setup: |s| {
                let b = mixed(s);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_alloc(c.addr, 12 * P, MEM_COMMIT, PAGE_READWRITE, F),
        },
        Scenario {
            name: "commit mixed runs to NOACCESS",
            setup: |s| {
                let b = mixed(s);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_alloc(c.addr + P, 9 * P, MEM_COMMIT, PAGE_NOACCESS, F),
        },
        Scenario {
            name: "decommit",
            setup: |s| {
                let b = mixed(s);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_free(c.addr + P, 8 * P, MEM_DECOMMIT).map(|()| 0),
        },
        Scenario {
            name: "decommit all (size 0)",
            setup: |s| {
                let b = mixed(s);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_free(c.addr, 0, MEM_DECOMMIT).map(|()| 0),
        },
        Scenario {
            name: "protect spanning several runs",
            setup: |s| {
                let b = reserve(s, 4 * G);
                commit_data(s, b, 2, PAGE_READWRITE, 1);
                commit_data(s, b + 2 * P, 2, PAGE_READONLY, 2);
                commit_data(s, b + 4 * P, 2, PAGE_EXECUTE_READWRITE, 3);
                commit(s, b + 6 * P, 1, PAGE_NOACCESS);
                commit_data(s, b + 7 * P, 1, PAGE_READWRITE, 4);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| {
                s.virtual_protect(c.addr + 1, 8 * P - 2, PAGE_READONLY)
                    .map(|v| v as usize)
            },
        },
        Scenario {
            name: "protect spanning several runs to RW",
            setup: |s| {
                let b = reserve(s, 4 * G);
                commit_data(s, b, 2, PAGE_READONLY, 1);
                commit_data(s, b + 2 * P, 2, PAGE_READWRITE, 2);
                commit(s, b + 4 * P, 2, PAGE_NOACCESS);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| {
                s.virtual_protect(c.addr, 6 * P, PAGE_READWRITE)
                    .map(|v| v as usize)
            },
        },
        Scenario {
            name: "release",
            setup: |s| {
                let b = mixed(s);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_free(c.addr, 0, MEM_RELEASE).map(|()| 0),
        },
        Scenario {
            name: "reset",
            setup: |s| {
                // Resident runs separated by a reserved page and an untouched NOACCESS page,
                // so MEM_RESET makes several kernel calls.
                let b = reserve(s, 4 * G);
                commit_data(s, b, 2, PAGE_READWRITE, 1);
                commit_data(s, b + 3 * P, 2, PAGE_READWRITE, 2);
                commit(s, b + 5 * P, 1, PAGE_NOACCESS);
                commit_data(s, b + 6 * P, 1, PAGE_READWRITE, 3);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_alloc(c.addr, 8 * P, MEM_RESET, PAGE_READWRITE, F),
        },
        Scenario {
            name: "lock",
            setup: |s| {
                let b = reserve(s, 4 * G);
                commit_data(s, b, 4, PAGE_READWRITE, 1);
                commit_data(s, b + 4 * P, 2, PAGE_READONLY, 2);
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_lock(c.addr + 1, 6 * P - 1).map(|()| 0),
        },
        Scenario {
            name: "lock with part already locked",
            setup: |s| {
                let b = reserve(s, 4 * G);
                commit_data(s, b, 4, PAGE_READWRITE, 1);
                commit_data(s, b + 4 * P, 2, PAGE_READONLY, 2);
                s.virtual_lock(b + P, 2 * P).expect("lock");
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_lock(c.addr, 6 * P).map(|()| 0),
        },
        Scenario {
            name: "lock across two allocations",
            setup: |s| {
                let a = free_range(s, 2 * G);
                s.virtual_alloc(a, G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, F)
                    .expect("a");
                s.virtual_alloc(a + G, G, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY, F)
                    .expect("b");
                Ctx {
                    addr: a,
                    ranges: vec![(a, a + 2 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_lock(c.addr + G - 2 * P, 4 * P).map(|()| 0),
        },
        Scenario {
            name: "unlock",
            setup: |s| {
                let b = reserve(s, 4 * G);
                commit_data(s, b, 4, PAGE_READWRITE, 1);
                s.virtual_lock(b, 4 * P).expect("lock");
                Ctx {
                    addr: b,
                    ranges: vec![(b, b + 4 * G)],
                    reservations: false,
                }
            },
            op: |s, c| s.virtual_unlock(c.addr + P, 2 * P).map(|()| 0),
        },
    ]
}

/// The Win32 code a kernel failure of this kind must give (`semantics.md` §11).
fn expected_code(kind: OsErrorKind) -> u32 {
    match kind {
        OsErrorKind::CommitLimit => 1455,
        OsErrorKind::LockQuota => 1453,
        OsErrorKind::AddressInUse | OsErrorKind::NotMapped => 487,
        OsErrorKind::MapCountLimit | OsErrorKind::OutOfAddressSpace | OsErrorKind::Other => 8,
        OsErrorKind::Unsupported => 50,
        OsErrorKind::NoSpace => 112,
    }
}

fn kinds_for(call: Syscall) -> Vec<OsErrorKind> {
    let mut k = vec![
        OsErrorKind::MapCountLimit,
        OsErrorKind::CommitLimit,
        OsErrorKind::OutOfAddressSpace,
        OsErrorKind::Other,
    ];
    match call {
        Syscall::Lock | Syscall::Unlock => k.push(OsErrorKind::LockQuota),
        Syscall::Map => k.push(OsErrorKind::AddressInUse),
        _ => {}
    }
    k
}

fn cleanup<O: Os>(s: &Space<O>) {
    for (b, _, _) in s.allocations() {
        s.virtual_free(b, 0, MEM_RELEASE).expect("cleanup release");
    }
}

#[test]
fn every_failing_syscall_rolls_back() {
    let _g = serial();
    let mut summary = Vec::new();
    for sc in scenarios() {
        // Dry run: which calls does the operation make?
        let space = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
        let ctx = (sc.setup)(&space);
        let _ = snapshot(&space, &ctx.ranges); // the same page touches as the real runs
        space.os().reset_counts();
        (sc.op)(&space, &ctx).unwrap_or_else(|e| panic!("{}: dry run failed: {e}", sc.name));
        let mut counts: Vec<(Syscall, usize)> = space.os().counts().into_iter().collect();
        counts.sort_by_key(|(k, _)| format!("{k:?}"));
        cleanup(&space);
        assert!(!counts.is_empty(), "{}: no kernel call at all", sc.name);
        summary.push(format!("{}: {counts:?}", sc.name));

        for &(call, n) in &counts {
            for after in 0..n {
                for kind in kinds_for(call) {
                    let what = format!("{} with {call:?} #{after} failing as {kind:?}", sc.name);
                    let space = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
                    let ctx = (sc.setup)(&space);
                    let before = snapshot(&space, &ctx.ranges);
                    space.os().arm(Fault {
                        call,
                        after,
                        errno: ENOMEM,
                        kind,
                        once: true,
                    });
                    let r = (sc.op)(&space, &ctx);
                    space.os().disarm();
                    match r {
                        Ok(v) => panic!("{what}: succeeded ({v:#x})"),
                        Err(e) => {
                            assert_eq!(e.win32_code(), expected_code(kind), "{what}: error {e}")
                        }
                    }
                    let after_snap = snapshot(&space, &ctx.ranges);
                    assert_same(&before, &after_snap, &what, ctx.reservations);
                    // The state is still usable: the same operation now succeeds.
                    (sc.op)(&space, &ctx)
                        .unwrap_or_else(|e| panic!("{what}: retry after the failure: {e}"));
                    cleanup(&space);
                }
            }
        }
    }
    eprintln!("kernel calls per operation:\n  {}", summary.join("\n  "));
}

// ------------------------------------------------------------------------------------------
// Kernel calls that fail half-way
// ------------------------------------------------------------------------------------------

/// How the next call of a kind misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Partial {
    /// `protect`: apply to the first half of the range (rounded to pages, at least one page),
    /// then fail.
    ProtectHalf,
    /// `replace_with_reserved`: unmap the range, then fail (the hole an old kernel's
    /// `MAP_FIXED` could leave).
    ReplaceHole,
    /// `lock`: lock the first half of the range, then fail.
    LockHalf,
    /// `unlock`: unlock the first half of the range, then fail.
    UnlockHalf,
    /// `lazy_free`: discard the first half of the range (`MADV_DONTNEED`, which the `Os`
    /// contract allows as the lazy free), then fail.
    LazyFreeHalf,
}

/// A real-memory backend whose next `protect` / `replace_with_reserved` / `lock` fails after
/// doing part of its work, and whose later `protect` or `replace_with_reserved` calls can be
/// made to fail outright.
struct PartialOs {
    inner: LinuxOs,
    next: Mutex<Option<(Partial, OsErrorKind)>>,
    /// Every `protect` after the partial one fails (before the kernel sees it).
    fail_protects: Mutex<bool>,
    /// Every `replace_with_reserved` after the partial one fails the same way (a new hole).
    keep_holing: Mutex<bool>,
    /// The next hole made gets a foreign mapping in its first page at once (another thread
    /// mapping there before the engine looks): its address, once planted.
    plant_foreign: Mutex<bool>,
    planted: Mutex<Option<usize>>,
    /// Every `replace_with_reserved` fails before the kernel sees it (the old mapping stays).
    keep_old_on_replace: Mutex<bool>,
    /// `phys_map` call #n from now unmaps its range and fails (a hole); `None`: off.
    phys_hole_at: Mutex<Option<usize>>,
    /// `replace_with_reserved` call #n from now unmaps its range and fails; `None`: off.
    replace_hole_at: Mutex<Option<usize>>,
    /// Every `phys_map` after the first hole (of any call) makes a hole too.
    phys_keep_holing: Mutex<bool>,
    /// Whether a hole has been made.
    holed: Mutex<bool>,
    /// The next this many `unmap` calls fail before the kernel sees them.
    fail_unmaps: Mutex<usize>,
    /// `watch_register` / `watch_adopt` fail before the kernel sees them.
    fail_watch: Mutex<bool>,
    /// The next this many `lock` calls (after a partial one) fail before the kernel sees them.
    fail_locks: Mutex<usize>,
    /// The next this many `unlock` calls (after a partial one) fail before the kernel sees
    /// them.
    fail_unlocks: Mutex<usize>,
    /// The next this many `protect` calls (after a partial one) fail before the kernel sees
    /// them.
    fail_next_protects: Mutex<usize>,
}

/// Counts `n` down; true while it was above zero (the call fails).
fn take_one(n: &Mutex<usize>) -> bool {
    let mut n = n.lock().unwrap();
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

/// Counts `at` down; true when it reaches the call to fail (and switches it off).
fn countdown(at: &Mutex<Option<usize>>) -> bool {
    let mut a = at.lock().unwrap();
    match *a {
        Some(0) => {
            *a = None;
            true
        }
        Some(ref mut n) => {
            *n -= 1;
            false
        }
        None => false,
    }
}

impl Default for PartialOs {
    fn default() -> PartialOs {
        PartialOs {
            // SAFETY: the rollback tests act only on memory their spaces allocate.
            inner: unsafe { LinuxOs::new() },
            next: Mutex::default(),
            fail_protects: Mutex::default(),
            keep_holing: Mutex::default(),
            plant_foreign: Mutex::default(),
            planted: Mutex::default(),
            keep_old_on_replace: Mutex::default(),
            phys_hole_at: Mutex::default(),
            replace_hole_at: Mutex::default(),
            phys_keep_holing: Mutex::default(),
            holed: Mutex::default(),
            fail_unmaps: Mutex::default(),
            fail_watch: Mutex::default(),
            fail_locks: Mutex::default(),
            fail_unlocks: Mutex::default(),
            fail_next_protects: Mutex::default(),
        }
    }
}

impl PartialOs {
    fn arm(&self, p: Partial, kind: OsErrorKind) {
        *self.next.lock().unwrap() = Some((p, kind));
    }
    fn take(&self, p: Partial) -> Option<OsErrorKind> {
        let mut n = self.next.lock().unwrap();
        match *n {
            Some((q, kind)) if q == p => {
                *n = None;
                Some(kind)
            }
            _ => None,
        }
    }
    fn half(len: usize) -> usize {
        ((len / 2) & !(P - 1)).max(P)
    }
}

fn os_err(call: Syscall, kind: OsErrorKind) -> OsError {
    OsError {
        call,
        errno: ENOMEM,
        kind,
    }
}

// SAFETY: forwards to the real backend (or fails a call before making it).
unsafe impl Os for PartialOs {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }
    fn map(&self, placement: Placement, len: usize, prot: HostProt) -> Result<usize, OsError> {
        self.inner.map(placement, len, prot)
    }
    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError> {
        {
            let mut n = self.fail_unmaps.lock().unwrap();
            if *n > 0 {
                *n -= 1;
                return Err(os_err(Syscall::Unmap, OsErrorKind::MapCountLimit));
            }
        }
        self.inner.unmap(addr, len)
    }
    fn protect(&self, addr: usize, len: usize, prot: HostProt) -> Result<(), OsError> {
        if let Some(kind) = self.take(Partial::ProtectHalf) {
            self.inner.protect(addr, Self::half(len), prot)?;
            return Err(os_err(Syscall::Protect, kind));
        }
        if *self.fail_protects.lock().unwrap() || take_one(&self.fail_next_protects) {
            return Err(os_err(Syscall::Protect, OsErrorKind::Other));
        }
        self.inner.protect(addr, len, prot)
    }
    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let hole = |kind| {
            // SAFETY: the range belongs to the space under test, which asked to replace it.
            assert_eq!(unsafe { libc::munmap(addr as *mut libc::c_void, len) }, 0);
            *self.holed.lock().unwrap() = true;
            if std::mem::take(&mut *self.plant_foreign.lock().unwrap()) {
                *self.planted.lock().unwrap() = Some(plant_canary(addr));
            }
            Err(os_err(Syscall::Replace, kind))
        };
        if let Some(kind) = self.take(Partial::ReplaceHole) {
            return hole(kind);
        }
        if countdown(&self.replace_hole_at) {
            return hole(OsErrorKind::MapCountLimit);
        }
        if *self.keep_old_on_replace.lock().unwrap() {
            return Err(os_err(Syscall::Replace, OsErrorKind::OutOfAddressSpace));
        }
        if *self.keep_holing.lock().unwrap() {
            return hole(OsErrorKind::OutOfAddressSpace);
        }
        self.inner.replace_with_reserved(addr, len)
    }
    fn is_mapped(&self, addr: usize, len: usize) -> bool {
        self.inner.is_mapped(addr, len)
    }
    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.inner.fill_holes(addr, len)
    }
    fn lazy_free(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if let Some(kind) = self.take(Partial::LazyFreeHalf) {
            let half = Self::half(len);
            // SAFETY: committed pages of the space under test, which asked to reset them.
            let r = unsafe { libc::madvise(addr as *mut libc::c_void, half, libc::MADV_DONTNEED) };
            assert_eq!(r, 0);
            return Err(os_err(Syscall::LazyFree, kind));
        }
        self.inner.lazy_free(addr, len)
    }
    fn resident(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        self.inner.resident(addr, len, out)
    }
    fn undo_lazy_free(
        &self,
        addr: usize,
        len: usize,
        writable: bool,
    ) -> Result<UndoReport, OsError> {
        self.inner.undo_lazy_free(addr, len, writable)
    }
    fn lock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if let Some(kind) = self.take(Partial::LockHalf) {
            self.inner.lock(addr, Self::half(len))?;
            return Err(os_err(Syscall::Lock, kind));
        }
        if take_one(&self.fail_locks) {
            return Err(os_err(Syscall::Lock, OsErrorKind::LockQuota));
        }
        self.inner.lock(addr, len)
    }
    fn unlock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if let Some(kind) = self.take(Partial::UnlockHalf) {
            self.inner.unlock(addr, Self::half(len))?;
            return Err(os_err(Syscall::Unlock, kind));
        }
        if take_one(&self.fail_unlocks) {
            return Err(os_err(Syscall::Unlock, OsErrorKind::MapCountLimit));
        }
        self.inner.unlock(addr, len)
    }
    fn kernel_region(&self, addr: usize) -> KernelRegion {
        self.inner.kernel_region(addr)
    }
    fn flush_instruction_cache(&self, addr: usize, len: usize) {
        self.inner.flush_instruction_cache(addr, len)
    }
    fn real_memory(&self) -> bool {
        self.inner.real_memory()
    }
    fn watch_supported(&self) -> bool {
        self.inner.watch_supported()
    }
    fn watch_register(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if *self.fail_watch.lock().unwrap() {
            return Err(os_err(Syscall::Watch, OsErrorKind::Other));
        }
        self.inner.watch_register(addr, len)
    }
    fn watch_adopt(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if *self.fail_watch.lock().unwrap() {
            return Err(os_err(Syscall::Watch, OsErrorKind::Other));
        }
        self.inner.watch_adopt(addr, len)
    }
    fn watch_scan(
        &self,
        addr: usize,
        len: usize,
        reset: bool,
        max: usize,
        out: &mut Vec<usize>,
    ) -> Result<(), OsError> {
        self.inner.watch_scan(addr, len, reset, max, out)
    }
    fn watch_clean(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.inner.watch_clean(addr, len)
    }
    fn map_large(
        &self,
        placement: Placement,
        len: usize,
        prot: HostProt,
        page: usize,
    ) -> Result<usize, OsError> {
        self.inner.map_large(placement, len, prot, page)
    }
    fn phys_reserve(&self, pages: usize) -> Result<(), OsError> {
        self.inner.phys_reserve(pages)
    }
    fn phys_map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: HostProt,
    ) -> Result<(), OsError> {
        if countdown(&self.phys_hole_at)
            || (*self.phys_keep_holing.lock().unwrap() && *self.holed.lock().unwrap())
        {
            *self.holed.lock().unwrap() = true;
            // SAFETY: the window pages belong to the space under test, which asked to
            // replace them.
            assert_eq!(
                unsafe { libc::munmap(addr as *mut libc::c_void, count * P) },
                0
            );
            if std::mem::take(&mut *self.plant_foreign.lock().unwrap()) {
                *self.planted.lock().unwrap() = Some(plant_canary(addr));
            }
            return Err(os_err(Syscall::Physical, OsErrorKind::MapCountLimit));
        }
        self.inner.phys_map(addr, first, count, prot)
    }
    fn phys_discard(&self, first: usize, count: usize) -> Result<(), OsError> {
        self.inner.phys_discard(first, count)
    }
}

/// The first protect really changes part of the range in the kernel, then fails: the engine
/// must put the changed part back. (The engine makes a single `protect` call per commit or
/// VirtualProtect — the hull of the pages that change — so a later call failing after an
/// earlier one succeeded cannot happen; this is the kernel-level equivalent.)
#[test]
fn protect_failing_half_way_rolls_back() {
    let _g = serial();
    type Op = fn(&Space<PartialOs>, usize) -> virtmem::Result<usize>;
    let ops: [(&str, Op); 4] = [
        ("commit mixed runs RW", |s, b| {
            s.virtual_alloc(b, 12 * P, MEM_COMMIT, PAGE_READWRITE, F)
        }),
        ("commit mixed runs NOACCESS", |s, b| {
            s.virtual_alloc(b + P, 9 * P, MEM_COMMIT, PAGE_NOACCESS, F)
        }),
        ("protect runs READONLY", |s, b| {
            s.virtual_protect(b + 7 * P, 3 * P, PAGE_READONLY)
                .map(|v| v as usize)
        }),
        ("protect EXECUTE_READWRITE", |s, b| {
            s.virtual_protect(b + 4 * P, 2 * P, PAGE_EXECUTE_READWRITE)
                .map(|v| v as usize)
        }),
    ];
    for (name, op) in ops {
        for kind in [OsErrorKind::CommitLimit, OsErrorKind::MapCountLimit] {
            let what = format!("{name}, protect failing half-way as {kind:?}");
            let s = new_space(PartialOs::default());
            let b = mixed(&s);
            let before = snapshot(&s, &[(b, b + 4 * G)]);
            s.os().arm(Partial::ProtectHalf, kind);
            let e = op(&s, b).expect_err(&what);
            assert_eq!(e.win32_code(), expected_code(kind), "{what}: {e}");
            assert!(
                s.os().next.lock().unwrap().is_none(),
                "{what}: no protect call made"
            );
            assert_same(&before, &snapshot(&s, &[(b, b + 4 * G)]), &what, false);
            op(&s, b).unwrap_or_else(|e| panic!("{what}: retry: {e}"));
            cleanup(&s);
        }
    }
}

/// mlock locks part of the range, then fails: the part must be unlocked again, and what was
/// locked before stays locked.
#[test]
fn lock_failing_half_way_rolls_back() {
    let _g = serial();
    for prelocked in [false, true] {
        let what = format!("lock failing half-way (part locked before: {prelocked})");
        let s = new_space(PartialOs::default());
        let b = reserve(&s, 4 * G);
        commit_data(&s, b, 8, PAGE_READWRITE, 1);
        if prelocked {
            s.virtual_lock(b + 6 * P, 2 * P).expect("lock");
        }
        let before = snapshot(&s, &[(b, b + 4 * G)]);
        s.os().arm(Partial::LockHalf, OsErrorKind::LockQuota);
        let e = s.virtual_lock(b, 8 * P).expect_err(&what);
        assert_eq!(e.win32_code(), 1453, "{what}: {e}");
        assert_same(&before, &snapshot(&s, &[(b, b + 4 * G)]), &what, false);
        // Bookkeeping: the pages that were not locked before are not locked now.
        assert_eq!(
            s.virtual_unlock(b, 2 * P).map_err(|e| e.win32_code()),
            Err(158),
            "{what}: pages 0-1 must not be locked"
        );
        if prelocked {
            s.virtual_unlock(b + 6 * P, 2 * P)
                .unwrap_or_else(|e| panic!("{what}: pages 6-7 must still be locked: {e}"));
        }
        cleanup(&s);
    }
}

/// munlock unlocks part of the range, then fails (it can, splitting VMAs at the map-count
/// limit): VirtualUnlock fails, so every page must still be locked, in the bookkeeping and in
/// the kernel.
#[test]
fn unlock_failing_half_way_rolls_back() {
    let _g = serial();
    let what = "unlock failing half-way";
    let s = new_space(PartialOs::default());
    let b = reserve(&s, 4 * G);
    commit_data(&s, b, 8, PAGE_READWRITE, 1);
    s.virtual_lock(b, 8 * P).expect("lock");
    let before = snapshot(&s, &[(b, b + 4 * G)]);
    s.os().arm(Partial::UnlockHalf, OsErrorKind::MapCountLimit);
    let e = s.virtual_unlock(b, 8 * P).expect_err(what);
    assert_eq!(e.win32_code(), 8, "{what}: {e}");
    assert_same(&before, &snapshot(&s, &[(b, b + 4 * G)]), what, false);
    cleanup(&s);
}

/// More failures than the bounded retry makes (`retry::MAX_ATTEMPTS` is 64): "the kernel
/// keeps refusing".
const KEEPS_FAILING: usize = 10_000;

/// Whether each page of `[lo, hi)` is locked in the kernel (VmFlags `lo` in
/// `/proc/self/smaps`).
fn kernel_locked(lo: usize, hi: usize) -> Vec<bool> {
    let lines = lines_in(&smaps(), lo, hi);
    (lo..hi)
        .step_by(P)
        .map(|pg| {
            lines
                .iter()
                .any(|l| l.start <= pg && pg < l.end && l.locked)
        })
        .collect()
}

/// Issue 12 item 4 (VirtualLock): mlock locks half the range and fails, and the undo
/// munlock fails too. A few failures are retried (all or nothing); if the kernel keeps
/// refusing, the range is locked completely where it can be and recorded as locked, so the
/// record never hides a kernel lock: VirtualUnlock releases it all, VirtualQuery is
/// unchanged, and VirtualLock works afterwards.
#[test]
fn lock_whose_undo_fails_records_what_the_kernel_has() {
    let _g = serial();
    // (munlock failures in the undo, mlock failures after them)
    for (unlocks, locks) in [(3, 0), (KEEPS_FAILING, 0), (KEEPS_FAILING, KEEPS_FAILING)] {
        let what =
            format!("lock failing half-way, undo munlock failing {unlocks}x, mlock {locks}x");
        let s = new_space(PartialOs::default());
        let b = reserve(&s, 4 * G);
        commit_data(&s, b, 8, PAGE_READWRITE, 1);
        let before = snapshot(&s, &[(b, b + 4 * G)]);
        s.os().arm(Partial::LockHalf, OsErrorKind::LockQuota);
        *s.os().fail_unlocks.lock().unwrap() = unlocks;
        *s.os().fail_locks.lock().unwrap() = locks;
        let e = s.virtual_lock(b, 8 * P).expect_err(&what);
        assert_eq!(e.win32_code(), 1453, "{what}: {e}");
        *s.os().fail_unlocks.lock().unwrap() = 0;
        *s.os().fail_locks.lock().unwrap() = 0;
        let after = snapshot(&s, &[(b, b + 4 * G)]);
        assert_eq!(before.queries, after.queries, "{what}: VirtualQuery");
        assert_eq!(before.data, after.data, "{what}: data");
        let kernel = kernel_locked(b, b + 8 * P);
        if unlocks < KEEPS_FAILING {
            // Retried: nothing changed, nothing locked.
            assert_same(&before, &after, &what, false);
            assert_eq!(
                s.virtual_unlock(b, 8 * P).map_err(|e| e.win32_code()),
                Err(158),
                "{what}: nothing is recorded as locked"
            );
        } else {
            if locks == 0 {
                assert_eq!(kernel, [true; 8], "{what}: locked completely");
            } else {
                assert_eq!(
                    kernel,
                    [true, true, true, true, false, false, false, false],
                    "{what}: the half mlock locked stays locked"
                );
            }
            // Recorded as locked: VirtualUnlock takes it all back.
            s.virtual_unlock(b, 8 * P)
                .unwrap_or_else(|e| panic!("{what}: the pages must be recorded as locked: {e}"));
            assert_eq!(
                kernel_locked(b, b + 8 * P),
                [false; 8],
                "{what}: after unlock"
            );
            assert_eq!(
                s.virtual_unlock(b, 8 * P).map_err(|e| e.win32_code()),
                Err(158),
                "{what}: unlocked twice"
            );
        }
        s.virtual_lock(b, 8 * P)
            .unwrap_or_else(|e| panic!("{what}: lock afterwards: {e}"));
        assert_eq!(
            kernel_locked(b, b + 8 * P),
            [true; 8],
            "{what}: locked afterwards"
        );
        s.virtual_unlock(b, 8 * P).expect("unlock");
        cleanup(&s);
    }
}

/// Issue 12 item 4 (VirtualUnlock): munlock unlocks half the range and fails, and the
/// re-lock fails too. A few failures are retried (every page still locked); if the kernel
/// keeps refusing, the unlock is finished and the range recorded as not locked (exact); if
/// that fails as well, the record keeps "locked" (an upper bound VirtualUnlock clears).
#[test]
fn unlock_whose_undo_fails_records_what_the_kernel_has() {
    let _g = serial();
    // (mlock failures in the undo, munlock failures after them)
    for (locks, unlocks) in [(3, 0), (KEEPS_FAILING, 0), (KEEPS_FAILING, KEEPS_FAILING)] {
        let what =
            format!("unlock failing half-way, undo mlock failing {locks}x, munlock {unlocks}x");
        let s = new_space(PartialOs::default());
        let b = reserve(&s, 4 * G);
        commit_data(&s, b, 8, PAGE_READWRITE, 1);
        s.virtual_lock(b, 8 * P).expect("lock");
        let before = snapshot(&s, &[(b, b + 4 * G)]);
        s.os().arm(Partial::UnlockHalf, OsErrorKind::MapCountLimit);
        *s.os().fail_locks.lock().unwrap() = locks;
        *s.os().fail_unlocks.lock().unwrap() = unlocks;
        let e = s.virtual_unlock(b, 8 * P).expect_err(&what);
        assert_eq!(e.win32_code(), 8, "{what}: {e}");
        *s.os().fail_locks.lock().unwrap() = 0;
        *s.os().fail_unlocks.lock().unwrap() = 0;
        let after = snapshot(&s, &[(b, b + 4 * G)]);
        assert_eq!(before.queries, after.queries, "{what}: VirtualQuery");
        assert_eq!(before.data, after.data, "{what}: data");
        let kernel = kernel_locked(b, b + 8 * P);
        match (locks < KEEPS_FAILING, unlocks < KEEPS_FAILING) {
            (true, _) => {
                assert_same(&before, &after, &what, false);
                s.virtual_unlock(b, 8 * P)
                    .unwrap_or_else(|e| panic!("{what}: still recorded as locked: {e}"));
            }
            (false, true) => {
                assert_eq!(kernel, [false; 8], "{what}: the unlock was finished");
                assert_eq!(
                    s.virtual_unlock(b, 8 * P).map_err(|e| e.win32_code()),
                    Err(158),
                    "{what}: recorded as not locked"
                );
            }
            (false, false) => {
                assert_eq!(
                    kernel,
                    [false, false, false, false, true, true, true, true],
                    "{what}: the half munlock left"
                );
                s.virtual_unlock(b, 8 * P)
                    .unwrap_or_else(|e| panic!("{what}: still recorded as locked: {e}"));
            }
        }
        assert_eq!(
            kernel_locked(b, b + 8 * P),
            [false; 8],
            "{what}: after unlock"
        );
        s.virtual_lock(b, 8 * P)
            .unwrap_or_else(|e| panic!("{what}: lock afterwards: {e}"));
        assert_eq!(
            kernel_locked(b, b + 8 * P),
            [true; 8],
            "{what}: locked afterwards"
        );
        s.virtual_unlock(b, 8 * P).expect("unlock");
        cleanup(&s);
    }
}

/// Issue 12 item 4 (VirtualProtect on memory virtmem did not allocate): mprotect changes
/// half the range and fails, and restoring the old protection fails too. A few failures are
/// retried (the mapping is as before, the usual error); if the kernel keeps refusing there is
/// no quarantine (it is someone else's memory): the call fails with the code the rules give
/// and says that the old protection could not be restored.
#[test]
fn foreign_protect_whose_restore_fails_says_so() {
    let _g = serial();
    for (kind, code) in [(OsErrorKind::MapCountLimit, 8), (OsErrorKind::Other, 87)] {
        for restores in [3, KEEPS_FAILING] {
            let what = format!(
                "foreign protect failing half-way as {kind:?}, restore failing {restores}x"
            );
            let s = new_space(PartialOs::default());
            // SAFETY: a fresh mapping of the test's own.
            let m = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4 * P,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            } as usize;
            assert_ne!(m, libc::MAP_FAILED as usize);
            // SAFETY: as above.
            unsafe { (m as *mut u64).write_volatile(77) };
            let before = lines_in(&smaps(), m, m + 4 * P);
            s.os().arm(Partial::ProtectHalf, kind);
            *s.os().fail_next_protects.lock().unwrap() = restores;
            let e = s.virtual_protect(m, 4 * P, PAGE_READONLY).expect_err(&what);
            *s.os().fail_next_protects.lock().unwrap() = 0;
            assert_eq!(e.win32_code(), code, "{what}: {e}");
            let after = lines_in(&smaps(), m, m + 4 * P);
            let says = e.to_string().contains("could not be restored");
            if restores < KEEPS_FAILING {
                assert_eq!(before, after, "{what}: the protection is restored");
                assert!(!says, "{what}: {e}");
            } else {
                assert!(says, "{what}: the error must say the restore failed: {e}");
                let perms: Vec<_> = after.iter().map(|l| (l.end - l.start, &*l.perms)).collect();
                assert_eq!(perms, [(2 * P, "r--p"), (2 * P, "rw-p")], "{what}");
            }
            // SAFETY: readable either way.
            assert_eq!(
                unsafe { (m as *const u64).read_volatile() },
                77,
                "{what}: data"
            );
            // The call works once the kernel does.
            s.virtual_protect(m, 4 * P, PAGE_READWRITE)
                .unwrap_or_else(|e| panic!("{what}: afterwards: {e}"));
            assert_eq!(
                lines_in(&smaps(), m, m + 4 * P)
                    .iter()
                    .map(|l| l.perms.as_str())
                    .collect::<Vec<_>>(),
                ["rw-p"],
                "{what}: afterwards"
            );
            // SAFETY: the test's own mapping.
            unsafe { libc::munmap(m as *mut libc::c_void, 4 * P) };
        }
    }
}

/// MEM_RESET whose lazy free discards part of the range and then fails: whatever happens,
/// a later MEM_RESET_UNDO must not report success when data was lost (§2: "Never report
/// success after a loss").
#[test]
fn reset_failing_half_way_never_hides_a_loss() {
    let _g = serial();
    let what = "MEM_RESET failing half-way, then MEM_RESET_UNDO";
    let s = new_space(PartialOs::default());
    let b = reserve(&s, 4 * G);
    commit_data(&s, b, 8, PAGE_READWRITE, 1);
    s.os().arm(Partial::LazyFreeHalf, OsErrorKind::Other);
    let e = s
        .virtual_alloc(b, 8 * P, MEM_RESET, PAGE_READWRITE, F)
        .expect_err(what);
    assert_eq!(e.win32_code(), 8, "{what}: {e}");
    // SAFETY: committed read-write.
    let lost = unsafe { (b as *const u64).read_volatile() } == 0;
    assert!(
        lost,
        "{what}: the partial lazy free should have discarded page 0"
    );
    let r = s.virtual_alloc(b, 8 * P, MEM_RESET_UNDO, PAGE_READWRITE, F);
    assert!(
        r.is_err(),
        "{what}: MEM_RESET_UNDO reported success although page 0 now reads zero"
    );
    cleanup(&s);
}

/// Asserts `[lo, hi)` is recorded reserved and is mapped PROT_NONE in the kernel, no hole.
fn assert_reserved_no_hole<O: Os>(s: &Space<O>, lo: usize, hi: usize, what: &str) {
    for pg in (lo..hi).step_by(P) {
        let q = s.query(pg).unwrap();
        assert_eq!(
            q.state,
            State::Reserve,
            "{what}: page {pg:#x} must be recorded reserved: {q:?}"
        );
        assert_eq!(q.protect, 0, "{what}: page {pg:#x}");
    }
    let lines = lines_in(&smaps(), lo, hi);
    let mut at = lo;
    for l in &lines {
        assert_eq!(
            l.start, at,
            "{what}: hole at {at:#x} in the kernel: {lines:?}"
        );
        assert_eq!(l.perms, "---p", "{what}: kernel protection of {l:?}");
        assert!(!l.locked, "{what}: still locked: {l:?}");
        at = l.end;
    }
    assert_eq!(at, hi, "{what}: hole at {at:#x} in the kernel: {lines:?}");
}

/// The rollback's own syscall fails: the apply fails, and so does every restoring protect.
/// The engine must record the affected runs as reserved and leave the kernel range mapped
/// PROT_NONE (no hole); pages outside the changed span stay as they were.
#[test]
fn failing_rollback_quarantines_the_range() {
    let _g = serial();
    // With FailingOs: the kernel never saw the failing calls.
    {
        let what = "commit with every protect failing (FailingOs)";
        let s = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
        let b = mixed(&s);
        let before = snapshot(&s, &[(b + 12 * P, b + 4 * G)]);
        s.os().arm(Fault {
            call: Syscall::Protect,
            after: 0,
            errno: ENOMEM,
            kind: OsErrorKind::CommitLimit,
            once: false,
        });
        let e = s
            .virtual_alloc(b, 12 * P, MEM_COMMIT, PAGE_READWRITE, F)
            .expect_err(what);
        s.os().disarm();
        assert_eq!(e.win32_code(), 1455, "{what}: {e}");
        // The changed span is the hull of the pages whose kernel protection differs from RW:
        // pages 2-8 and 10-11 (0-1 and 9 are already RW), so pages 2..12.
        let span = (b + 2 * P, b + 12 * P);
        assert_reserved_no_hole(&s, span.0, span.1, what);
        assert_same(
            &before,
            &snapshot(&s, &[(b + 12 * P, b + 4 * G)]),
            what,
            false,
        );
        let q = s.query(b).unwrap();
        assert_eq!(
            (q.state, q.protect),
            (State::Commit, PAGE_READWRITE),
            "{what}: page 0"
        );
        cleanup(&s);
    }
    // With a real half-applied protect, then every restore failing.
    {
        let what = "commit with a half-applied protect and every restore failing";
        let s = new_space(PartialOs::default());
        let b = mixed(&s);
        s.os().arm(Partial::ProtectHalf, OsErrorKind::CommitLimit);
        *s.os().fail_protects.lock().unwrap() = true;
        let e = s
            .virtual_alloc(b, 12 * P, MEM_COMMIT, PAGE_READWRITE, F)
            .expect_err(what);
        *s.os().fail_protects.lock().unwrap() = false;
        assert_eq!(e.win32_code(), 1455, "{what}: {e}");
        assert_reserved_no_hole(&s, b + 2 * P, b + 12 * P, what);
        cleanup(&s);
    }
    // VirtualProtect: the same.
    {
        let what = "protect with every protect failing";
        let s = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
        let b = mixed(&s);
        s.os().arm(Fault {
            call: Syscall::Protect,
            after: 0,
            errno: ENOMEM,
            kind: OsErrorKind::MapCountLimit,
            once: false,
        });
        let e = s
            .virtual_protect(b + 4 * P, 2 * P, PAGE_READWRITE)
            .expect_err(what);
        s.os().disarm();
        assert_eq!(e.win32_code(), 8, "{what}: {e}");
        assert_reserved_no_hole(&s, b + 4 * P, b + 6 * P, what);
        cleanup(&s);
    }
}

/// Decommit whose `mmap(MAP_FIXED)` leaves a hole: the engine must fill it and record the
/// range reserved (PROT_NONE, mapped), also when its first repair attempt makes a hole again.
#[test]
fn decommit_leaving_a_hole_is_repaired() {
    let _g = serial();
    for keep_holing in [false, true] {
        let what = format!("decommit leaving a hole (repair also holes: {keep_holing})");
        let s = new_space(PartialOs::default());
        let b = mixed(&s);
        let outside = snapshot(&s, &[(b + 10 * P, b + 4 * G)]);
        s.os().arm(Partial::ReplaceHole, OsErrorKind::MapCountLimit);
        *s.os().keep_holing.lock().unwrap() = keep_holing;
        let e = s.virtual_free(b + P, 8 * P, MEM_DECOMMIT).expect_err(&what);
        *s.os().keep_holing.lock().unwrap() = false;
        assert_eq!(e.win32_code(), 8, "{what}: {e}");
        assert_reserved_no_hole(&s, b + P, b + 9 * P, &what);
        let q = s.query(b).unwrap();
        assert_eq!(
            (q.state, q.protect),
            (State::Commit, PAGE_READWRITE),
            "{what}: page 0"
        );
        assert_same(
            &outside,
            &snapshot(&s, &[(b + 10 * P, b + 4 * G)]),
            &what,
            false,
        );
        // Page 9 is outside the decommitted range (pages 1-8): unchanged.
        let q = s.query(b + 9 * P).unwrap();
        assert_eq!(
            (q.state, q.protect),
            (State::Commit, PAGE_READWRITE),
            "{what}: page 9"
        );
        cleanup(&s);
    }
}

#[test]
fn counts_are_what_the_engine_promises() {
    // A commit or VirtualProtect over several runs is one `protect` call (the hull); a
    // decommit is one `replace`. (Reported so the partial-failure coverage above is read
    // correctly.)
    let _g = serial();
    let s = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
    let b = mixed(&s);
    s.os().reset_counts();
    s.virtual_alloc(b, 12 * P, MEM_COMMIT, PAGE_READWRITE, F)
        .unwrap();
    let c: HashMap<Syscall, usize> = s.os().counts();
    assert_eq!(c.get(&Syscall::Protect), Some(&1), "{c:?}");
    cleanup(&s);
}

/// RELIABILITY O2: VirtualLock on a signal-watched allocation whose `mlock` fails (lock
/// quota) must change nothing — in particular the clean pages must not be reported as
/// written afterwards, nor left writable (a later write must still be seen).
#[test]
fn failed_lock_on_signal_watched_pages_reports_no_write() {
    let _g = serial();
    let what = "VirtualLock on signal-watched pages, mlock failing";
    let s = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
    s.set_write_watch_mode(WatchKind::Signal);
    let b = s
        .virtual_alloc(
            0,
            G,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            PAGE_READWRITE,
            F,
        )
        .expect("reserve");
    // SAFETY: committed read-write above.
    unsafe { (b as *mut u64).write_volatile(1) };
    s.reset_write_watch(b, G).expect("reset");
    let before = snapshot(&s, &[(b, b + G)]);
    s.os().arm(Fault {
        call: Syscall::Lock,
        after: 0,
        errno: ENOMEM,
        kind: OsErrorKind::LockQuota,
        once: true,
    });
    let e = s.virtual_lock(b, 4 * P).expect_err(what);
    s.os().disarm();
    assert_eq!(e.win32_code(), 1453, "{what}: {e}");
    assert_eq!(
        s.get_write_watch(b, G, false, 64).expect("GetWriteWatch"),
        Vec::<usize>::new(),
        "{what}: pages reported as written"
    );
    assert_same(&before, &snapshot(&s, &[(b, b + G)]), what, false);
    // The pages are still watched: a write now is reported.
    // SAFETY: committed read-write.
    unsafe { ((b + P) as *mut u64).write_volatile(2) };
    assert_eq!(
        s.get_write_watch(b, G, false, 64).expect("GetWriteWatch"),
        vec![b + P],
        "{what}: a later write"
    );
    // And the lock works once the quota allows it, reporting the pages as written (case 114).
    s.virtual_lock(b, 4 * P).expect("lock");
    assert_eq!(
        s.get_write_watch(b, G, false, 64).expect("GetWriteWatch"),
        vec![b, b + P, b + 2 * P, b + 3 * P],
        "{what}: VirtualLock touches the pages for writing"
    );
    s.virtual_unlock(b, 4 * P).expect("unlock");
    cleanup(&s);
}

const CANARY: u8 = 0xC5;

/// Maps one read-write page of "another thread's" at `addr` (free now), filled with CANARY.
fn plant_canary(addr: usize) -> usize {
    // SAFETY: a fresh anonymous page at a free address (MAP_FIXED_NOREPLACE).
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            P,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    assert_eq!(p as usize, addr, "could not plant the foreign page");
    // SAFETY: mapped read-write just above.
    unsafe { std::ptr::write_bytes(addr as *mut u8, CANARY, P) };
    addr
}

/// The foreign page is exactly as planted: read-write, its own mapping, its bytes.
fn assert_canary_untouched(at: usize, what: &str) {
    let lines = lines_in(&smaps(), at, at + P);
    assert_eq!(lines.len(), 1, "{what}: foreign page {at:#x}: {lines:?}");
    assert_eq!(
        lines[0].perms, "rw-p",
        "{what}: the foreign page's protection changed"
    );
    // SAFETY: still mapped read-write (checked just above).
    let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, P) };
    assert!(
        bytes.iter().all(|&b| b == CANARY),
        "{what}: the foreign page's contents changed"
    );
}

/// The kernel range `[lo, hi)` has no hole.
fn assert_no_hole(lo: usize, hi: usize, what: &str) {
    let lines = lines_in(&smaps(), lo, hi);
    let mut at = lo;
    for l in &lines {
        assert_eq!(l.start, at, "{what}: hole at {at:#x}: {lines:?}");
        at = l.end;
    }
    assert_eq!(at, hi, "{what}: hole at {at:#x}: {lines:?}");
}

/// Issue 12 item 2: a replacement (`MAP_FIXED`) that fails leaving a hole, into which
/// another thread maps before the engine repairs it. The repair (decommit's, the failed
/// rollback's quarantine, placeholder preserve) fills only the hole; the foreign mapping
/// keeps its protection and contents.
#[test]
fn repairs_never_touch_a_foreign_mapping_in_the_hole() {
    let _g = serial();
    type Op = fn(&Space<PartialOs>, usize) -> virtmem::Result<usize>;
    let cases: [(&str, bool, Op, usize, usize, u32); 3] = [
        (
            "decommit leaving a hole",
            false,
            |s, b| {
                s.os().arm(Partial::ReplaceHole, OsErrorKind::MapCountLimit);
                s.virtual_free(b + P, 8 * P, MEM_DECOMMIT).map(|()| 0)
            },
            1,
            9,
            8,
        ),
        (
            "commit whose rollback fails, quarantine leaving a hole",
            false,
            |s, b| {
                s.os().arm(Partial::ProtectHalf, OsErrorKind::CommitLimit);
                *s.os().fail_protects.lock().unwrap() = true;
                *s.os().keep_holing.lock().unwrap() = true;
                let r = s.virtual_alloc(b, 12 * P, MEM_COMMIT, PAGE_READWRITE, F);
                *s.os().fail_protects.lock().unwrap() = false;
                *s.os().keep_holing.lock().unwrap() = false;
                r
            },
            2,
            12,
            1455,
        ),
        (
            "placeholder preserve leaving a hole",
            true,
            |s, b| {
                s.os().arm(Partial::ReplaceHole, OsErrorKind::MapCountLimit);
                s.virtual_free(b, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)
                    .map(|()| 0)
            },
            0,
            16,
            8,
        ),
    ];
    for (what, placeholder, op, lo, hi, code) in cases {
        let s = new_space(PartialOs::default());
        let b = if placeholder {
            let b = s
                .virtual_alloc2(
                    0,
                    4 * G,
                    MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                    PAGE_NOACCESS,
                    &[],
                    F,
                )
                .unwrap();
            s.virtual_free(b, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)
                .unwrap();
            s.virtual_alloc2(
                b,
                G,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                PAGE_READWRITE,
                &[],
                F,
            )
            .unwrap();
            commit_data(&s, b, 4, PAGE_READWRITE, 7);
            b
        } else {
            mixed(&s)
        };
        *s.os().plant_foreign.lock().unwrap() = true;
        let e = op(&s, b).expect_err(what);
        assert_eq!(e.win32_code(), code, "{what}: {e}");
        let at = s
            .os()
            .planted
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| panic!("{what}: no hole was made"));
        assert_canary_untouched(at, what);
        // Everything else of the range is mapped again, inaccessible and recorded so.
        assert_no_hole(b + lo * P, b + hi * P, what);
        for pg in (b + lo * P..b + hi * P).step_by(P).filter(|&pg| pg != at) {
            let l = lines_in(&smaps(), pg, pg + P);
            assert_eq!(l[0].perms, "---p", "{what}: page {pg:#x}");
            let q = s.query(pg).unwrap();
            assert_eq!(q.state, State::Reserve, "{what}: page {pg:#x}: {q:?}");
        }
        // SAFETY: the test's own foreign page.
        unsafe { libc::munmap(at as *mut libc::c_void, P) };
        // Release unmaps the allocation's range; the hole left by the canary is harmless.
        cleanup(&s);
    }
}

/// Issue 12 item 1: MEM_REPLACE_PLACEHOLDER whose `mprotect` changes part of the range and
/// then fails (the kernel works VMA by VMA), and one whose rollback also fails: the
/// placeholder must be exactly as it was — recorded a placeholder, every page `---p`.
#[test]
fn placeholder_replace_failing_half_way_rolls_back() {
    let _g = serial();
    for rollback_fails in [false, true] {
        let what =
            format!("replace placeholder, protect half-applied (rollback fails: {rollback_fails})");
        let s = new_space(PartialOs::default());
        let b = s
            .virtual_alloc2(
                0,
                4 * G,
                MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                PAGE_NOACCESS,
                &[],
                F,
            )
            .unwrap();
        s.virtual_free(b, 2 * G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)
            .unwrap();
        let before = snapshot(&s, &[(b, b + 4 * G)]);
        s.os().arm(Partial::ProtectHalf, OsErrorKind::CommitLimit);
        if rollback_fails {
            // The rollback's replacement fails and keeps the old mapping: the engine must
            // fall back to mprotect(PROT_NONE).
            *s.os().keep_old_on_replace.lock().unwrap() = true;
        }
        let e = s
            .virtual_alloc2(
                b,
                2 * G,
                MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                PAGE_READWRITE,
                &[],
                F,
            )
            .expect_err(&what);
        *s.os().keep_old_on_replace.lock().unwrap() = false;
        assert_eq!(e.win32_code(), 1455, "{what}: {e}");
        assert_same(&before, &snapshot(&s, &[(b, b + 4 * G)]), &what, false);
        let q = s.query(b).unwrap();
        assert_eq!((q.state, q.protect), (State::Reserve, 0), "{what}: {q:?}");
        // The same call now works.
        s.virtual_alloc2(
            b,
            2 * G,
            MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            PAGE_READWRITE,
            &[],
            F,
        )
        .unwrap_or_else(|e| panic!("{what}: retry: {e}"));
        cleanup(&s);
    }
}

// ------------------------------------------------------------------------------------------
// Issue 12 item 4: AWE page replacement leaving holes, FreeUserPhysicalPages, reserve rollback
// ------------------------------------------------------------------------------------------

/// The value every word of frame `f` holds in the AWE tests.
fn frame_pattern(f: usize) -> u64 {
    0xF0F0_0000_0000 | f as u64
}

/// An AWE window of one granule with four frames; frame 0 mapped at page 0, frame 1 at
/// page 1, each filled with its pattern.
fn awe_setup(s: &Space<PartialOs>) -> (usize, Vec<usize>) {
    let w = s
        .virtual_alloc(0, G, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE, F)
        .expect("window");
    let frames = s.allocate_physical_pages(4).expect("frames");
    s.map_physical_pages(w, 2, Some(&frames[..2])).expect("map");
    for (i, &f) in frames[..2].iter().enumerate() {
        for o in (0..P).step_by(8) {
            // SAFETY: mapped read-write just above.
            unsafe { ((w + i * P + o) as *mut u64).write_volatile(frame_pattern(f)) };
        }
    }
    (w, frames)
}

/// The first four pages of window `w` hold exactly `expect` (a frame with its data, or no
/// frame: committed PAGE_NOACCESS, `---p`), as both the bookkeeping and the kernel say; the
/// whole window has no hole. `foreign` is a page of someone else's inside the window.
fn assert_window(
    s: &Space<PartialOs>,
    w: usize,
    expect: &[Option<usize>],
    foreign: Option<usize>,
    what: &str,
) {
    assert_no_hole(w, w + G, what);
    for (i, e) in expect.iter().enumerate() {
        let pg = w + i * P;
        let q = s.query(pg).unwrap();
        assert_eq!(q.state, State::Commit, "{what}: page {i}: {q:?}");
        let l = lines_in(&smaps(), pg, pg + P);
        match e {
            Some(f) => {
                assert_eq!(q.protect, PAGE_READWRITE, "{what}: page {i}: {q:?}");
                assert_eq!(l[0].perms, "rw-s", "{what}: page {i}: {l:?}");
                // SAFETY: a frame is mapped read-write there (checked just above).
                let bytes = unsafe { std::slice::from_raw_parts(pg as *const u64, P / 8) };
                assert!(
                    bytes.iter().all(|&v| v == frame_pattern(*f)),
                    "{what}: page {i} does not hold frame {f}'s data"
                );
            }
            None => {
                assert_eq!(q.protect, PAGE_NOACCESS, "{what}: page {i}: {q:?}");
                if foreign != Some(pg) {
                    assert_eq!(l[0].perms, "---p", "{what}: page {i}: {l:?}");
                }
            }
        }
    }
}

/// Issue 12 item 4.1: MapUserPhysicalPages replaces each page with `MAP_FIXED`; a call that
/// fails leaving a hole (the old kernels' `MAP_FIXED` unmaps first) must fill the hole, put
/// the frame that was there back, and put back the pages it already changed: all or
/// nothing, bookkeeping ≡ kernel, the same call then works.
#[test]
fn awe_map_leaving_a_hole_is_all_or_nothing() {
    let _g = serial();
    // The call maps frame 2 at page 0 (phys_map #0), unmaps page 1 (replace #0) and maps
    // frame 3 at page 2 (phys_map #1).
    let cases: [(&str, Option<usize>, Option<usize>); 3] = [
        ("first page's phys_map leaves a hole", Some(0), None),
        ("the unmap of page 1 leaves a hole", None, Some(0)),
        ("the third page's phys_map leaves a hole", Some(1), None),
    ];
    for (what, phys, replace) in cases {
        let s = new_space(PartialOs::default());
        let (w, f) = awe_setup(&s);
        let before = snapshot(&s, &[(w, w + G)]);
        *s.os().phys_hole_at.lock().unwrap() = phys;
        *s.os().replace_hole_at.lock().unwrap() = replace;
        let e = s
            .map_physical_pages(w, 3, Some(&[f[2], 0, f[3]]))
            .expect_err(what);
        assert_eq!(e.win32_code(), 8, "{what}: {e}");
        assert!(
            s.os().phys_hole_at.lock().unwrap().is_none()
                && s.os().replace_hole_at.lock().unwrap().is_none(),
            "{what}: no hole was made"
        );
        assert_window(&s, w, &[Some(f[0]), Some(f[1]), None, None], None, what);
        assert_same(&before, &snapshot(&s, &[(w, w + G)]), what, false);
        s.map_physical_pages(w, 3, Some(&[f[2], 0, f[3]]))
            .unwrap_or_else(|e| panic!("{what}: retry: {e}"));
        let q = s.query(w + P).unwrap();
        assert_eq!(q.protect, PAGE_NOACCESS, "{what}: retry unmapped page 1");
        assert_eq!(s.free_physical_pages(&f), (4, Ok(())), "{what}: free");
        cleanup(&s);
    }
}

/// Issue 12 item 4.1, where all or nothing is impossible: the hole cannot be given its
/// frame back (every later mapping of a frame holes too), or another thread mapped into the
/// hole first. The call fails; the window has no hole (except none where a foreign page now
/// is, which is left exactly as it is); the bookkeeping says the page holds no frame; the
/// frame stays owned with its data and can be mapped again.
#[test]
fn awe_map_hole_that_cannot_be_restored_reports_the_state() {
    let _g = serial();
    for foreign in [false, true] {
        for unmap_step in [false, true] {
            let what = format!(
                "AWE hole not restorable (foreign mapping in it: {foreign}, at the unmap \
                 step: {unmap_step})"
            );
            let s = new_space(PartialOs::default());
            let (w, f) = awe_setup(&s);
            // The page that holes and the frame it loses.
            let (hole_page, lost) = if unmap_step { (1, f[1]) } else { (0, f[0]) };
            if unmap_step {
                *s.os().replace_hole_at.lock().unwrap() = Some(0);
            } else {
                *s.os().phys_hole_at.lock().unwrap() = Some(0);
            }
            if foreign {
                *s.os().plant_foreign.lock().unwrap() = true;
            } else {
                *s.os().phys_keep_holing.lock().unwrap() = true;
            }
            let e = s
                .map_physical_pages(w, 3, Some(&[f[2], 0, f[3]]))
                .expect_err(&what);
            *s.os().phys_keep_holing.lock().unwrap() = false;
            assert_eq!(e.win32_code(), 8, "{what}: {e}");
            let planted = s.os().planted.lock().unwrap().take();
            assert_eq!(planted.is_some(), foreign, "{what}: planted");
            let mut expect = vec![Some(f[0]), Some(f[1]), None, None];
            expect[hole_page] = None;
            if unmap_step && !foreign {
                // Page 0 was already changed: putting frame 0 back holes too (every
                // phys_map holes), so page 0 ends without a frame as well.
                expect[0] = None;
            }
            assert_window(&s, w, &expect, planted, &what);
            if let Some(at) = planted {
                assert_eq!(at, w + hole_page * P, "{what}: where the canary went");
                assert_canary_untouched(at, &what);
            }
            // The lost frame is still ours, with its data: map it at page 3.
            s.map_physical_pages(w + 3 * P, 1, Some(&[lost]))
                .unwrap_or_else(|e| panic!("{what}: mapping the lost frame again: {e}"));
            expect[3] = Some(lost);
            assert_window(&s, w, &expect, planted, &what);
            if let Some(at) = planted {
                // SAFETY: the test's own foreign page.
                unsafe { libc::munmap(at as *mut libc::c_void, P) };
            }
            assert_eq!(s.free_physical_pages(&f), (4, Ok(())), "{what}: free");
            cleanup(&s);
        }
    }
}

/// Issue 12 item 4.2: FreeUserPhysicalPages unmaps mapped frames first; an unmap that fails
/// leaving a hole must not leave the hole, and the frame is not freed: it is mapped back
/// where the kernel allows (else recorded unmapped, still owned). Frames freed before it stay
/// freed and are counted.
#[test]
fn free_physical_pages_leaving_a_hole_is_repaired() {
    let _g = serial();
    for (restorable, foreign) in [(true, false), (false, false), (false, true)] {
        let what =
            format!("FreeUserPhysicalPages hole (restorable: {restorable}, foreign: {foreign})");
        let s = new_space(PartialOs::default());
        let (w, f) = awe_setup(&s);
        // Frame 1 is unmapped (replace #0) and freed; frame 0's unmap (replace #1) holes.
        *s.os().replace_hole_at.lock().unwrap() = Some(1);
        *s.os().phys_keep_holing.lock().unwrap() = !restorable;
        *s.os().plant_foreign.lock().unwrap() = foreign;
        let (n, r) = s.free_physical_pages(&[f[1], f[0]]);
        *s.os().phys_keep_holing.lock().unwrap() = false;
        assert_eq!(n, 1, "{what}: freed count");
        assert_eq!(r.map_err(|e| e.win32_code()), Err(8), "{what}");
        let planted = s.os().planted.lock().unwrap().take();
        assert_eq!(planted, foreign.then_some(w), "{what}: planted");
        let page0 = restorable.then_some(f[0]);
        assert_window(&s, w, &[page0, None, None, None], planted, &what);
        if let Some(at) = planted {
            assert_canary_untouched(at, &what);
        }
        // Frame 0 is still ours (with its data): mapping it elsewhere works unless it is
        // mapped at page 0 already; frame 1 is freed.
        if !restorable {
            s.map_physical_pages(w + 2 * P, 1, Some(&[f[0]]))
                .unwrap_or_else(|e| panic!("{what}: frame 0 lost: {e}"));
            assert_window(&s, w, &[None, None, Some(f[0]), None], planted, &what);
        }
        assert_eq!(
            s.map_physical_pages(w + 3 * P, 1, Some(&[f[1]]))
                .map_err(|e| e.win32_code()),
            Err(87),
            "{what}: frame 1 must be freed"
        );
        if let Some(at) = planted {
            assert_canary_untouched(at, &what);
            // SAFETY: the test's own foreign page.
            unsafe { libc::munmap(at as *mut libc::c_void, P) };
        }
        assert_eq!(
            s.free_physical_pages(&[f[0], f[2], f[3]]),
            (3, Ok(())),
            "{what}"
        );
        cleanup(&s);
    }
}

/// Issue 12 item 4.3: reserve with kernel write watch whose registration fails unmaps its
/// fresh mapping; if that `munmap` fails too, it is tried again (bounded), and if it keeps
/// failing the range is never left mapped and unlisted: it is listed as a reserved
/// allocation (`---p`, no hole) that MEM_RELEASE gives back.
#[test]
fn reserve_rollback_never_leaves_its_mapping_unlisted() {
    let _g = serial();
    for commit in [false, true] {
        for unmaps_failing in [3, 1000] {
            let what = format!(
                "reserve (commit: {commit}) with write watch failing, then {unmaps_failing} \
                 munmaps failing"
            );
            let s = new_space(PartialOs::default());
            if s.write_watch_mode() != WatchKind::Kernel {
                eprintln!("{what}: skipped, no kernel write tracking here");
                return;
            }
            let allocs = s.allocations();
            let before = reservations(&smaps());
            *s.os().fail_watch.lock().unwrap() = true;
            *s.os().fail_unmaps.lock().unwrap() = unmaps_failing;
            let t = MEM_RESERVE | MEM_WRITE_WATCH | if commit { MEM_COMMIT } else { 0 };
            let e = s
                .virtual_alloc(0, 4 * G, t, PAGE_READWRITE, F)
                .expect_err(&what);
            *s.os().fail_watch.lock().unwrap() = false;
            let left = std::mem::take(&mut *s.os().fail_unmaps.lock().unwrap());
            assert_eq!(e.win32_code(), 8, "{what}: {e}");
            if unmaps_failing < 64 {
                assert_eq!(left, 0, "{what}: the munmap was not retried");
                assert_eq!(s.allocations(), allocs, "{what}: allocations");
                assert_eq!(reservations(&smaps()), before, "{what}: reservations");
            } else {
                let now = s.allocations();
                assert_eq!(now.len(), allocs.len() + 1, "{what}: the range is listed");
                let (b, size, _) = *now.iter().find(|a| !allocs.contains(a)).unwrap();
                assert_eq!(size, 4 * G, "{what}");
                let q = s.query(b).unwrap();
                assert_eq!(
                    (q.state, q.allocation_base, q.region_size),
                    (State::Reserve, b, 4 * G),
                    "{what}: {q:?}"
                );
                assert_no_hole(b, b + 4 * G, &what);
                for l in lines_in(&smaps(), b, b + 4 * G) {
                    assert_eq!(l.perms, "---p", "{what}: {l:?}");
                }
                s.virtual_free(b, 0, MEM_RELEASE)
                    .unwrap_or_else(|e| panic!("{what}: release: {e}"));
                assert!(
                    lines_in(&smaps(), b, b + 4 * G).is_empty(),
                    "{what}: still mapped"
                );
            }
            // The call works once the kernel does.
            let b = s
                .virtual_alloc(0, 4 * G, t, PAGE_READWRITE, F)
                .expect("reserve");
            s.virtual_free(b, 0, MEM_RELEASE).expect("release");
            cleanup(&s);
        }
    }
}

/// Issue 12 item 4 (found while checking the other multi-call operations): VirtualProtect
/// of an AWE window protects each mapped page; if a later page fails and putting an earlier
/// page's protection back fails too, that page must not keep a protection the bookkeeping
/// does not know: its frame is taken out (the page reads PAGE_NOACCESS, `---p`), and the
/// frame stays owned with its data.
#[test]
fn awe_protect_whose_rollback_fails_takes_the_frame_out() {
    let _g = serial();
    let what = "VirtualProtect of an AWE window, rollback failing";
    let s = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
    let w = s
        .virtual_alloc(0, G, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE, F)
        .expect("window");
    let f = s.allocate_physical_pages(3).expect("frames");
    s.map_physical_pages_scatter(&[w, w + 2 * P], Some(&f[..2]))
        .expect("map");
    for (i, pg) in [w, w + 2 * P].into_iter().enumerate() {
        // SAFETY: mapped read-write just above.
        unsafe { (pg as *mut u64).write_volatile(frame_pattern(f[i])) };
    }
    // Protect #0 (page 0) works; #1 (page 2) and every later one (the restore) fail.
    s.os().arm(Fault {
        call: Syscall::Protect,
        after: 1,
        errno: ENOMEM,
        kind: OsErrorKind::NotMapped,
        once: false,
    });
    let e = s.virtual_protect(w, 4 * P, PAGE_READONLY).expect_err(what);
    s.os().disarm();
    assert_eq!(e.win32_code(), 487, "{what}: {e}");
    assert_no_hole(w, w + G, what);
    for (i, (prot, perms)) in [
        (PAGE_NOACCESS, "---p"),
        (PAGE_NOACCESS, "---p"),
        (PAGE_READWRITE, "rw-s"),
        (PAGE_NOACCESS, "---p"),
    ]
    .into_iter()
    .enumerate()
    {
        let pg = w + i * P;
        let q = s.query(pg).unwrap();
        assert_eq!(
            (q.state, q.protect),
            (State::Commit, prot),
            "{what}: page {i}"
        );
        assert_eq!(
            lines_in(&smaps(), pg, pg + P)[0].perms,
            perms,
            "{what}: page {i}"
        );
    }
    // Frame 0 is still ours with its data.
    s.map_physical_pages(w + 3 * P, 1, Some(&f[..1]))
        .expect("map frame 0 again");
    // SAFETY: mapped read-write just above.
    assert_eq!(
        unsafe { ((w + 3 * P) as *const u64).read_volatile() },
        frame_pattern(f[0]),
        "{what}: frame 0's data"
    );
    assert_eq!(s.free_physical_pages(&f), (3, Ok(())), "{what}: free");
    cleanup(&s);
}

/// A heap block placed over HeapCompact's holes commits them first, all or nothing: with the
/// commit failing, HeapAlloc fails with ERROR_NOT_ENOUGH_MEMORY and the heap is as it was —
/// the same walk (the block's granules back in their free range, the holes still listed),
/// the same summary, the holes still reserved — and with the fault gone it succeeds. (A
/// block lies in one free range, whose holes are one span: one commit at most, or the
/// committed prefix's extension for a block at the end.)
#[test]
fn heap_block_over_holes_is_all_or_nothing() {
    use virtmem::engine::heap::Heaps;
    use virtmem::engine::HeapWalkEntry;
    let _g = serial();
    let space = new_space(FailingOs::new(unsafe { LinuxOs::new() }));
    let hs = Heaps::new(&space);
    let h = hs.create(HEAP_NO_SERIALIZE, 0, 0).unwrap();
    // Blocks of 5,000 bytes with one kept in eight: free runs of seven blocks between them.
    let ps: Vec<usize> = (0..64).map(|_| hs.alloc(h, 0, 5000).unwrap()).collect();
    for (k, &p) in ps.iter().enumerate() {
        if k % 8 != 0 {
            hs.free(h, 0, p).unwrap();
        }
    }
    hs.compact(h, 0).unwrap();
    let walk = |hs: &Heaps<'_, FailingOs<LinuxOs>>| {
        let (mut out, mut cur) = (Vec::new(), HeapWalkEntry::default());
        while let Some(e) = hs.walk(h, &cur).unwrap() {
            out.push(e);
            cur = e;
        }
        out
    };
    let before = walk(hs);
    let holes: Vec<(usize, usize)> = before
        .iter()
        .filter(|e| e.flags == 0x2 && e.data < ps[63])
        .map(|e| (e.data, e.size))
        .collect();
    assert!(holes.len() >= 2, "{holes:?}");
    let committed = hs.summary(h, 0).unwrap().committed;
    space.os().arm(Fault {
        call: Syscall::Protect,
        after: 0,
        errno: ENOMEM,
        kind: OsErrorKind::CommitLimit,
        once: false,
    });
    // Seven blocks' worth: the first free range that fits, over its hole.
    let e = hs.alloc(h, 0, 7 * 5000).expect_err("the commit fails");
    space.os().disarm();
    assert_eq!(e.win32_code(), ERROR_NOT_ENOUGH_MEMORY, "{e}");
    assert_eq!(walk(hs), before);
    assert_eq!(hs.summary(h, 0).unwrap().committed, committed);
    for &(s, n) in &holes {
        // (A segment's uncommitted tail is reported less its last page: H60.)
        let q = space.query(s).unwrap();
        assert_eq!(q.state, State::Reserve, "hole {s:#x}");
        assert!(q.region_size == n || q.region_size == n + P, "hole {s:#x}");
    }
    let p = hs.alloc(h, 0, 7 * 5000).unwrap();
    // SAFETY: a live block of the heap, of that size.
    unsafe { std::ptr::write_bytes(p as *mut u8, 0xA5, 7 * 5000) };
    assert!(hs.validate(h, 0, 0).unwrap());
    hs.destroy(h).unwrap();
}
