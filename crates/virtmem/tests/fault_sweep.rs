//! Fault-injection sweep: every operation × every kernel call it makes × each errno in
//! {ENOMEM, EAGAIN, EPERM, EINVAL}. The failing call fails before the kernel sees it; the
//! operation must then fail with the Win32 code the real backend's classification of that
//! errno implies, and nothing may have changed: the space's allocations and VirtualQuery of
//! every page, the kernel's mappings of the ranges (permissions and lock flag,
//! `/proc/self/smaps`), the process's reservations, the data of every committed page (read
//! through `/proc/self/mem`, whatever its protection), the pages write watch reports, and
//! AWE's frames. The same operation then succeeds on the same state.
//!
//! `rollback.rs` covers the plain operations with `FailingOs` and half-done kernel calls;
//! this sweep adds write watch (reserve, scan, reset, decommit, MEM_RESET_UNDO), guard pages,
//! placeholders (reserve, split, coalesce, replace, preserve), AWE (window, allocate, map,
//! scatter, unmap, free), large pages, VirtualProtect on foreign memory, and every fallible
//! `Os` method (also `resident` and `fill_holes`, which `FailingOs` does not inject), with
//! real errnos. A few outcomes that differ from "fail and change nothing" are by design; they
//! are listed in `ALLOWED` with the reason, and the sweep fails on any other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use virtmem::engine::Space;
use virtmem::os::linux::LinuxOs;
use virtmem::os::{
    HostProt, KernelRegion, Os, OsError, OsErrorKind, Placement, Syscall, UndoReport,
};
use virtmem::rules::requests::AllocFlavor;
use virtmem::win32::consts::*;
use virtmem::{Layout, MemoryInfo, State, WatchKind};

const P: usize = 0x1000;
const G: usize = 0x10000;
const F: AllocFlavor = AllocFlavor { from_app: false };
const ERRNOS: [(i32, &str); 4] = [
    (libc::ENOMEM, "ENOMEM"),
    (libc::EAGAIN, "EAGAIN"),
    (libc::EPERM, "EPERM"),
    (libc::EINVAL, "EINVAL"),
];

// ------------------------------------------------------------------------------------------
// The backend: real memory, one call failing on demand
// ------------------------------------------------------------------------------------------

/// Every fallible method of `Os`, one kind each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Call {
    Map,
    Unmap,
    Protect,
    Replace,
    FillHoles,
    LazyFree,
    Resident,
    UndoLazyFree,
    Lock,
    Unlock,
    WatchRegister,
    WatchAdopt,
    WatchScan,
    WatchClean,
    MapLarge,
    PhysReserve,
    PhysMap,
    PhysDiscard,
}

/// The kind the real backend (`LinuxOs`) gives this errno from this call.
fn classify(call: Call, errno: i32, writable: bool) -> (Syscall, OsErrorKind) {
    use OsErrorKind::*;
    let nomem = errno == libc::ENOMEM;
    match call {
        Call::Map => (
            Syscall::Map,
            match errno {
                libc::ENOMEM if writable => CommitLimit,
                libc::ENOMEM => OutOfAddressSpace,
                libc::EEXIST => AddressInUse,
                _ => Other,
            },
        ),
        Call::FillHoles => (Syscall::Map, if nomem { OutOfAddressSpace } else { Other }),
        Call::Unmap => (Syscall::Unmap, if nomem { MapCountLimit } else { Other }),
        Call::Protect => (
            Syscall::Protect,
            match (nomem, writable) {
                (true, true) => CommitLimit,
                (true, false) => NotMapped,
                _ => Other,
            },
        ),
        Call::Replace => (
            Syscall::Replace,
            if nomem { OutOfAddressSpace } else { Other },
        ),
        Call::LazyFree => (Syscall::LazyFree, Other),
        Call::Resident => (Syscall::ResetUndo, NotMapped),
        Call::UndoLazyFree => (Syscall::ResetUndo, if nomem { NotMapped } else { Other }),
        Call::Lock => (
            Syscall::Lock,
            match errno {
                libc::ENOMEM | libc::EPERM | libc::EAGAIN => LockQuota,
                _ => Other,
            },
        ),
        Call::Unlock => (Syscall::Unlock, Other),
        Call::WatchRegister | Call::WatchAdopt | Call::WatchScan | Call::WatchClean => {
            (Syscall::Watch, Other)
        }
        Call::MapLarge => (
            Syscall::MapLarge,
            match errno {
                libc::EPERM | libc::EACCES => LockQuota,
                libc::EEXIST => AddressInUse,
                _ => Other,
            },
        ),
        Call::PhysReserve | Call::PhysDiscard => {
            (Syscall::Physical, if nomem { CommitLimit } else { Other })
        }
        Call::PhysMap => (Syscall::Physical, if nomem { MapCountLimit } else { Other }),
    }
}

struct SweepOs {
    inner: LinuxOs,
    /// (call, calls of that kind to let through first, errno)
    armed: Mutex<Option<(Call, usize, i32)>>,
    counts: Mutex<BTreeMap<Call, usize>>,
    /// What the last injected failure was classified as.
    injected: Mutex<Option<OsError>>,
    /// `map_large` aligns to the large-page size only, ignoring a larger requested alignment
    /// (as the hugetlb path did before issue 12 item 4), and misses it on purpose.
    large_ignores_align: std::sync::atomic::AtomicBool,
}

impl Default for SweepOs {
    fn default() -> SweepOs {
        SweepOs {
            // SAFETY: the sweep acts only on memory its spaces allocate.
            inner: unsafe { LinuxOs::new() },
            armed: Mutex::default(),
            counts: Mutex::default(),
            injected: Mutex::default(),
            large_ignores_align: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl SweepOs {
    fn check(&self, call: Call, writable: bool) -> Result<(), OsError> {
        *self.counts.lock().unwrap().entry(call).or_default() += 1;
        let mut a = self.armed.lock().unwrap();
        match *a {
            Some((c, 0, errno)) if c == call => {
                *a = None;
                let (sys, kind) = classify(call, errno, writable);
                let e = OsError {
                    call: sys,
                    errno,
                    kind,
                };
                *self.injected.lock().unwrap() = Some(e);
                Err(e)
            }
            Some((c, ref mut n, _)) if c == call => {
                *n -= 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }
    fn arm(&self, call: Call, after: usize, errno: i32) {
        *self.armed.lock().unwrap() = Some((call, after, errno));
        *self.injected.lock().unwrap() = None;
    }
    fn disarm(&self) -> bool {
        self.armed.lock().unwrap().take().is_none()
    }
    fn reset_counts(&self) {
        self.counts.lock().unwrap().clear();
    }
    fn counts(&self) -> BTreeMap<Call, usize> {
        self.counts.lock().unwrap().clone()
    }
}

// SAFETY: forwards to the real backend (or fails a call before making it).
unsafe impl Os for SweepOs {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }
    fn map(&self, placement: Placement, len: usize, prot: HostProt) -> Result<usize, OsError> {
        self.check(Call::Map, prot.write())?;
        self.inner.map(placement, len, prot)
    }
    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::Unmap, false)?;
        self.inner.unmap(addr, len)
    }
    fn protect(&self, addr: usize, len: usize, prot: HostProt) -> Result<(), OsError> {
        self.check(Call::Protect, prot.write())?;
        self.inner.protect(addr, len, prot)
    }
    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::Replace, false)?;
        self.inner.replace_with_reserved(addr, len)
    }
    fn is_mapped(&self, addr: usize, len: usize) -> bool {
        self.inner.is_mapped(addr, len)
    }
    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::FillHoles, false)?;
        self.inner.fill_holes(addr, len)
    }
    fn lazy_free(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::LazyFree, false)?;
        self.inner.lazy_free(addr, len)
    }
    fn resident(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        self.check(Call::Resident, false)?;
        self.inner.resident(addr, len, out)
    }
    fn undo_lazy_free(&self, addr: usize, len: usize, w: bool) -> Result<UndoReport, OsError> {
        self.check(Call::UndoLazyFree, false)?;
        self.inner.undo_lazy_free(addr, len, w)
    }
    fn lock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::Lock, false)?;
        self.inner.lock(addr, len)
    }
    fn unlock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::Unlock, false)?;
        self.inner.unlock(addr, len)
    }
    fn kernel_region(&self, addr: usize) -> KernelRegion {
        self.inner.kernel_region(addr)
    }
    fn flush_instruction_cache(&self, addr: usize, len: usize) {
        self.inner.flush_instruction_cache(addr, len)
    }
    fn real_memory(&self) -> bool {
        true
    }
    fn watch_supported(&self) -> bool {
        self.inner.watch_supported()
    }
    fn watch_register(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::WatchRegister, false)?;
        self.inner.watch_register(addr, len)
    }
    fn watch_adopt(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::WatchAdopt, false)?;
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
        self.check(Call::WatchScan, false)?;
        self.inner.watch_scan(addr, len, reset, max, out)
    }
    fn watch_clean(&self, addr: usize, len: usize) -> Result<(), OsError> {
        self.check(Call::WatchClean, false)?;
        self.inner.watch_clean(addr, len)
    }
    /// Large pages on ordinary memory aligned to the large-page size (this machine has no
    /// hugetlb pool; the engine's side of the call is the same).
    fn map_large(
        &self,
        placement: Placement,
        len: usize,
        prot: HostProt,
        _page: usize,
    ) -> Result<usize, OsError> {
        self.check(Call::MapLarge, prot.write())?;
        if self
            .large_ignores_align
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            if let Placement::Anywhere { align, .. } | Placement::TopDown { align, .. } = placement
            {
                let lp = 0x20_0000;
                let p = self.inner.map(
                    Placement::Anywhere {
                        align: lp,
                        lowest: 0x1_0000,
                        highest_end: 1 << 46,
                    },
                    len + lp,
                    prot,
                )?;
                // Keep the 2 MiB-aligned piece that is not `align`-aligned.
                let (keep, drop_at) = if p % align == 0 {
                    (p + lp, p)
                } else {
                    (p, p + len)
                };
                self.inner.unmap(drop_at, lp)?;
                return Ok(keep);
            }
        }
        self.inner.map(placement, len, prot)
    }
    fn phys_reserve(&self, pages: usize) -> Result<(), OsError> {
        self.check(Call::PhysReserve, false)?;
        self.inner.phys_reserve(pages)
    }
    fn phys_map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: HostProt,
    ) -> Result<(), OsError> {
        self.check(Call::PhysMap, false)?;
        self.inner.phys_map(addr, first, count, prot)
    }
    fn phys_discard(&self, first: usize, count: usize) -> Result<(), OsError> {
        self.check(Call::PhysDiscard, false)?;
        self.inner.phys_discard(first, count)
    }
}

type S = Space<SweepOs>;

fn new_space() -> S {
    assert_eq!(Layout::native().page_size, P, "4 KiB pages assumed");
    let mut l = Layout::native();
    if l.large_page_size == 0 {
        l.large_page_size = 0x20_0000;
    }
    Space::new(l, SweepOs::default())
}

// ------------------------------------------------------------------------------------------
// What must not change
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct Line {
    start: usize,
    end: usize,
    perms: String,
    locked: bool,
}

fn smaps() -> Vec<(Line, String)> {
    let text = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut out: Vec<(Line, String)> = Vec::new();
    for l in text.lines() {
        if let Some(flags) = l.strip_prefix("VmFlags:") {
            if let Some(last) = out.last_mut() {
                last.0.locked = flags.split_whitespace().any(|f| f == "lo");
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
        out.push((
            Line {
                start,
                end,
                perms: perms.into(),
                locked: false,
            },
            path,
        ));
    }
    out
}

#[derive(Debug, PartialEq)]
struct Snap {
    allocations: Vec<(usize, usize, u64)>,
    queries: Vec<MemoryInfo>,
    lines: Vec<Line>,
    /// Inaccessible anonymous mappings anywhere (a reservation left behind shows here).
    reservations: Vec<Line>,
    data: Vec<(usize, Vec<u8>)>,
    written: Vec<(usize, Vec<usize>)>,
    /// Every file-backed mapping of the process (executable, libraries, the AWE memfd):
    /// none may change — a rollback or quarantine must never touch a mapping not ours.
    foreign: Vec<(Line, String)>,
}

fn read_mem(addr: usize, len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    static MEM: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    let f = MEM.get_or_init(|| std::fs::File::open("/proc/self/mem").expect("/proc/self/mem"));
    let mut v = vec![0u8; len];
    f.read_exact_at(&mut v, addr as u64).ok()?;
    Some(v)
}

fn snapshot(s: &S, ranges: &[(usize, usize)]) -> Snap {
    let all = smaps();
    let mut queries = Vec::new();
    let mut lines = Vec::new();
    let mut data = Vec::new();
    for &(lo, hi) in ranges {
        for (l, _) in all.iter().filter(|(l, _)| l.end > lo && l.start < hi) {
            lines.push(Line {
                start: l.start.max(lo),
                end: l.end.min(hi),
                ..l.clone()
            });
        }
        for pg in (lo..hi).step_by(P) {
            let q = s.query(pg).expect("query");
            if q.state == State::Commit {
                if let Some(d) = read_mem(pg, P) {
                    data.push((pg, d));
                }
            }
            queries.push(q);
        }
    }
    let mut written = Vec::new();
    for (b, sz, _) in s.allocations() {
        if let Ok(w) = s.get_write_watch(b, sz, false, usize::MAX) {
            written.push((b, w));
        }
    }
    // glibc's non-main arenas grow by `mprotect` inside a 64 MiB-aligned block whose first
    // page is read-write: their `---p` tail is malloc's own, not a reservation.
    const HEAP_MAX: usize = 64 << 20;
    let malloc_heap = |l: &Line| {
        let block = l.start & !(HEAP_MAX - 1);
        l.end == block + HEAP_MAX
            && all
                .iter()
                .any(|(m, p)| m.start == block && m.perms == "rw-p" && p.is_empty())
    };
    let reservations = all
        .iter()
        .filter(|(l, p)| l.perms == "---p" && p.is_empty() && !malloc_heap(l))
        .map(|(l, _)| Line {
            locked: false,
            ..l.clone()
        })
        .collect();
    let foreign = all
        .iter()
        .filter(|(_, p)| p.starts_with('/') && !p.starts_with("/memfd:"))
        .cloned()
        .collect();
    Snap {
        allocations: s.allocations(),
        queries,
        lines,
        reservations,
        data,
        written,
        foreign,
    }
}

/// Differences between two snapshots, as text (empty: the same).
fn diff(a: &Snap, b: &Snap, reservations: bool) -> Vec<String> {
    let mut out = Vec::new();
    if a.allocations != b.allocations {
        out.push(format!(
            "allocations {:x?} -> {:x?}",
            a.allocations, b.allocations
        ));
    }
    for (x, y) in a.queries.iter().zip(&b.queries) {
        if x != y {
            out.push(format!(
                "VirtualQuery({:#x}): {x:x?} -> {y:x?}",
                x.base_address
            ));
            break;
        }
    }
    if a.lines != b.lines {
        out.push(format!("kernel mappings {:x?} -> {:x?}", a.lines, b.lines));
    }
    if reservations {
        // Other threads of the test binary may map and unmap meanwhile: compare only those
        // that appeared inside or next to the ranges... simply: a new reservation must not
        // remain. (The sweep runs serially; only this thread reserves.)
        let new: Vec<&Line> = b
            .reservations
            .iter()
            .filter(|l| !a.reservations.contains(l))
            .collect();
        if !new.is_empty() {
            out.push(format!("new reservations {new:x?}"));
        }
    }
    if a.data != b.data {
        let d = a
            .data
            .iter()
            .zip(&b.data)
            .find(|(x, y)| x != y)
            .map(|(x, _)| x.0);
        out.push(format!("data changed (first page {d:x?})"));
    }
    if a.foreign != b.foreign {
        let changed: Vec<_> = a
            .foreign
            .iter()
            .filter(|l| !b.foreign.contains(l))
            .collect();
        out.push(format!(
            "foreign (file-backed) mappings changed: {changed:x?}"
        ));
    }
    if a.written != b.written {
        out.push(format!("write watch {:x?} -> {:x?}", a.written, b.written));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Scenarios
// ------------------------------------------------------------------------------------------

struct Ctx {
    addr: usize,
    ranges: Vec<(usize, usize)>,
    reservations: bool,
    frames: Vec<usize>,
    /// A foreign mapping to unmap at the end.
    foreign: Option<(usize, usize)>,
}

impl Ctx {
    fn at(addr: usize, len: usize) -> Ctx {
        Ctx {
            addr,
            ranges: vec![(addr, addr + len)],
            reservations: false,
            frames: Vec::new(),
            foreign: None,
        }
    }
}

type Op = fn(&S, &Ctx) -> virtmem::Result<usize>;

struct Scenario {
    name: &'static str,
    setup: fn(&S) -> Ctx,
    op: Op,
    /// How a kernel failure's kind becomes the Win32 code for this operation.
    code: fn(OsErrorKind) -> u32,
}

/// README / semantics §11: commit charge refused → 1455, lock quota → 1453, a range not
/// mapped or taken → 487, out of address space, map count or anything else → 8.
fn std_code(k: OsErrorKind) -> u32 {
    match k {
        OsErrorKind::CommitLimit => 1455,
        OsErrorKind::LockQuota => 1453,
        OsErrorKind::AddressInUse | OsErrorKind::NotMapped => 487,
        OsErrorKind::OutOfAddressSpace | OsErrorKind::MapCountLimit | OsErrorKind::Other => 8,
        OsErrorKind::Unsupported => 50,
        OsErrorKind::NoSpace => 112,
    }
}

fn large_code(k: OsErrorKind) -> u32 {
    match k {
        OsErrorKind::AddressInUse => 487,
        OsErrorKind::LockQuota => 1314,
        OsErrorKind::CommitLimit => 1455,
        OsErrorKind::OutOfAddressSpace | OsErrorKind::MapCountLimit => 8,
        _ => 1450,
    }
}

fn foreign_code(k: OsErrorKind) -> u32 {
    match k {
        OsErrorKind::Other => 87,
        k => std_code(k),
    }
}

fn reserve(s: &S, size: usize, t: u32) -> usize {
    s.virtual_alloc(0, size, MEM_RESERVE | t, PAGE_READWRITE, F)
        .expect("reserve")
}

fn commit(s: &S, addr: usize, pages: usize, prot: u32) {
    s.virtual_alloc(addr, pages * P, MEM_COMMIT, prot, F)
        .expect("commit");
}

/// Commits read-write, writes a pattern (and so marks watched pages written), then `prot`.
fn commit_data(s: &S, addr: usize, pages: usize, prot: u32, seed: u8) {
    commit(s, addr, pages, PAGE_READWRITE);
    for i in 0..pages * P / 8 {
        // SAFETY: committed read-write just above.
        unsafe { ((addr + i * 8) as *mut u64).write_volatile((seed as u64) << 56 | i as u64) };
    }
    if prot != PAGE_READWRITE {
        s.virtual_protect(addr, pages * P, prot).expect("protect");
    }
}

/// 4 granules: pages 0-1 RW (data), 2-3 reserved, 4-5 READONLY (data), 6 reserved,
/// 7 EXECUTE_READ (data), 8 NOACCESS, 9 RW (data), the rest reserved.
fn mixed(s: &S, t: u32) -> usize {
    let b = reserve(s, 4 * G, t);
    commit_data(s, b, 2, PAGE_READWRITE, 1);
    commit_data(s, b + 4 * P, 2, PAGE_READONLY, 2);
    commit_data(s, b + 7 * P, 1, PAGE_EXECUTE_READ, 3);
    commit(s, b + 8 * P, 1, PAGE_NOACCESS);
    commit_data(s, b + 9 * P, 1, PAGE_READWRITE, 4);
    b
}

fn free_range(s: &S, size: usize) -> usize {
    let b = reserve(s, size, 0);
    s.virtual_free(b, 0, MEM_RELEASE).expect("release");
    b
}

fn window(s: &S, pages: usize) -> (usize, Vec<usize>) {
    let w = s
        .virtual_alloc(0, pages * P, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE, F)
        .expect("window");
    let frames = s.allocate_physical_pages(pages).expect("frames");
    (w, frames)
}

fn scenarios() -> Vec<Scenario> {
    let sc = |name, setup, op| Scenario {
        name,
        setup,
        op,
        code: std_code,
    };
    vec![
        // --- the plain operations, with real errnos (rollback.rs covers their kinds) ---
        sc(
            "reserve NULL",
            |_| Ctx {
                reservations: true,
                ..Ctx::at(0, 0)
            },
            |s, _| s.virtual_alloc(0, 4 * G, MEM_RESERVE, PAGE_READWRITE, F),
        ),
        sc(
            "reserve+commit fixed",
            |s| {
                let a = free_range(s, 4 * G);
                Ctx {
                    reservations: true,
                    ..Ctx::at(a, 4 * G)
                }
            },
            |s, c| {
                s.virtual_alloc(
                    c.addr + 5,
                    3 * G,
                    MEM_RESERVE | MEM_COMMIT,
                    PAGE_READWRITE,
                    F,
                )
            },
        ),
        sc(
            "commit mixed runs",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_alloc(c.addr, 12 * P, MEM_COMMIT, PAGE_READWRITE, F),
        ),
        sc(
            "decommit",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_free(c.addr + P, 8 * P, MEM_DECOMMIT).map(|()| 0),
        ),
        sc(
            "release",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_free(c.addr, 0, MEM_RELEASE).map(|()| 0),
        ),
        sc(
            "protect mixed runs",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_protect(c.addr + 7 * P, 3 * P, PAGE_READWRITE)
                    .map(|v| v as usize)
            },
        ),
        sc(
            "reset",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_alloc(c.addr, 10 * P, MEM_RESET, PAGE_READWRITE, F),
        ),
        sc(
            "reset undo",
            |s| {
                let b = mixed(s, 0);
                s.virtual_alloc(b, 10 * P, MEM_RESET, PAGE_READWRITE, F)
                    .unwrap();
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_alloc(c.addr, 10 * P, MEM_RESET_UNDO, PAGE_READWRITE, F),
        ),
        sc(
            "lock",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_lock(c.addr, 2 * P).map(|()| 0),
        ),
        sc(
            "unlock",
            |s| {
                let b = mixed(s, 0);
                s.virtual_lock(b, 2 * P).unwrap();
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_unlock(c.addr, 2 * P).map(|()| 0),
        ),
        // --- guard pages ---
        sc(
            "protect to PAGE_GUARD",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_protect(c.addr, 2 * P, PAGE_READWRITE | PAGE_GUARD)
                    .map(|v| v as usize)
            },
        ),
        sc(
            "commit with PAGE_GUARD",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_alloc(c.addr, 2 * P, MEM_COMMIT, PAGE_READWRITE | PAGE_GUARD, F),
        ),
        sc(
            "protect guard pages back",
            |s| {
                let b = mixed(s, 0);
                s.virtual_protect(b, 2 * P, PAGE_READWRITE | PAGE_GUARD)
                    .unwrap();
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_protect(c.addr, 2 * P, PAGE_READONLY)
                    .map(|v| v as usize)
            },
        ),
        sc(
            "lock over a guard page",
            |s| {
                let b = mixed(s, 0);
                s.virtual_protect(b + P, P, PAGE_READWRITE | PAGE_GUARD)
                    .unwrap();
                Ctx::at(b, 4 * G)
            },
            |s, c| match s.virtual_lock(c.addr, 2 * P) {
                // By design (case 113): the guard is consumed and the call fails with
                // STATUS_GUARD_PAGE_VIOLATION; here the kernel call removing the guard fails.
                Err(virtmem::Error::GuardPageViolation) => Ok(1),
                r => r.map(|()| 0),
            },
        ),
        // --- write watch, kernel tracking ---
        sc(
            "reserve MEM_WRITE_WATCH",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                Ctx {
                    reservations: true,
                    ..Ctx::at(0, 0)
                }
            },
            |s, _| {
                s.virtual_alloc(
                    0,
                    4 * G,
                    MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
                    PAGE_READWRITE,
                    F,
                )
            },
        ),
        sc(
            "GetWriteWatch",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                let b = mixed(s, MEM_WRITE_WATCH);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.get_write_watch(c.addr, 4 * G, false, 64).map(|v| v.len()),
        ),
        sc(
            "GetWriteWatch reset",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                let b = mixed(s, MEM_WRITE_WATCH);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.get_write_watch(c.addr, 4 * G, true, 64).map(|v| v.len()),
        ),
        sc(
            "ResetWriteWatch",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                let b = mixed(s, MEM_WRITE_WATCH);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.reset_write_watch(c.addr, 4 * G).map(|()| 0),
        ),
        sc(
            "decommit watched",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                let b = mixed(s, MEM_WRITE_WATCH);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_free(c.addr, 2 * P, MEM_DECOMMIT).map(|()| 0),
        ),
        sc(
            "reset undo watched",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                let b = mixed(s, MEM_WRITE_WATCH);
                s.virtual_alloc(b, 10 * P, MEM_RESET, PAGE_READWRITE, F)
                    .unwrap();
                s.reset_write_watch(b, 4 * G).unwrap();
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_alloc(c.addr, 10 * P, MEM_RESET_UNDO, PAGE_READWRITE, F),
        ),
        sc(
            "commit watched",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
                let b = mixed(s, MEM_WRITE_WATCH);
                s.reset_write_watch(b, 4 * G).unwrap();
                Ctx::at(b, 4 * G)
            },
            // Pages 2-3 and 6 are reserved, 4-5 committed: newly committed pages start clean.
            |s, c| s.virtual_alloc(c.addr + 2 * P, 5 * P, MEM_COMMIT, PAGE_READWRITE, F),
        ),
        // --- write watch, signal tracking ---
        sc(
            "reserve MEM_WRITE_WATCH (signal)",
            |s| {
                s.set_write_watch_mode(WatchKind::Signal);
                Ctx {
                    reservations: true,
                    ..Ctx::at(0, 0)
                }
            },
            |s, _| {
                s.virtual_alloc(
                    0,
                    4 * G,
                    MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
                    PAGE_READWRITE,
                    F,
                )
            },
        ),
        sc(
            "GetWriteWatch reset (signal)",
            |s| {
                s.set_write_watch_mode(WatchKind::Signal);
                let b = mixed(s, MEM_WRITE_WATCH);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.get_write_watch(c.addr, 4 * G, true, 64).map(|v| v.len()),
        ),
        sc(
            "ResetWriteWatch (signal)",
            |s| {
                s.set_write_watch_mode(WatchKind::Signal);
                let b = mixed(s, MEM_WRITE_WATCH);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.reset_write_watch(c.addr, 4 * G).map(|()| 0),
        ),
        sc(
            "lock watched (signal)",
            |s| {
                s.set_write_watch_mode(WatchKind::Signal);
                let b = mixed(s, MEM_WRITE_WATCH);
                s.reset_write_watch(b, 4 * G).unwrap();
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_lock(c.addr, 2 * P).map(|()| 0),
        ),
        // --- placeholders ---
        sc(
            "reserve placeholder",
            |_| Ctx {
                reservations: true,
                ..Ctx::at(0, 0)
            },
            |s, _| {
                s.virtual_alloc2(
                    0,
                    4 * G,
                    MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                    PAGE_NOACCESS,
                    &[],
                    F,
                )
            },
        ),
        sc(
            "split placeholder",
            |s| {
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
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_free(c.addr, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)
                    .map(|()| 0)
            },
        ),
        sc(
            "coalesce placeholders",
            |s| {
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
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_free(c.addr, 4 * G, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS)
                    .map(|()| 0)
            },
        ),
        sc(
            "replace placeholder (commit)",
            |s| {
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
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_alloc2(
                    c.addr,
                    G,
                    MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                    PAGE_READWRITE,
                    &[],
                    F,
                )
            },
        ),
        sc(
            "replace placeholder (write watch)",
            |s| {
                s.set_write_watch_mode(WatchKind::Kernel);
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
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_alloc2(
                    c.addr,
                    G,
                    MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER | MEM_WRITE_WATCH,
                    PAGE_READWRITE,
                    &[],
                    F,
                )
            },
        ),
        sc(
            "preserve a replaced placeholder",
            |s| {
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
                    MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
                    PAGE_READWRITE,
                    &[],
                    F,
                )
                .unwrap();
                commit_data(s, b, 2, PAGE_READWRITE, 9);
                Ctx::at(b, 4 * G)
            },
            |s, c| {
                s.virtual_free(c.addr, G, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)
                    .map(|()| 0)
            },
        ),
        // --- AWE ---
        sc(
            "reserve AWE window",
            |_| Ctx {
                reservations: true,
                ..Ctx::at(0, 0)
            },
            |s, _| s.virtual_alloc(0, 4 * G, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE, F),
        ),
        sc(
            "AllocateUserPhysicalPages",
            |_| Ctx::at(0, 0),
            |s, _| s.allocate_physical_pages(4).map(|v| v[0]),
        ),
        sc(
            "MapUserPhysicalPages",
            |s| {
                let (w, frames) = window(s, 4);
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| {
                s.map_physical_pages(c.addr, 3, Some(&c.frames[..3]))
                    .map(|()| 0)
            },
        ),
        sc(
            "MapUserPhysicalPages remap",
            |s| {
                let (w, frames) = window(s, 4);
                s.map_physical_pages(w, 2, Some(&frames[..2])).unwrap();
                for i in 0..2 {
                    // SAFETY: mapped read-write just above.
                    unsafe { ((w + i * P) as *mut u64).write_volatile(0xAB + i as u64) };
                }
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| {
                s.map_physical_pages(c.addr, 3, Some(&[c.frames[2], c.frames[3], 0]))
                    .map(|()| 0)
            },
        ),
        sc(
            "MapUserPhysicalPagesScatter",
            |s| {
                let (w, frames) = window(s, 4);
                s.map_physical_pages(w, 1, Some(&frames[..1])).unwrap();
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| {
                s.map_physical_pages_scatter(
                    &[c.addr, c.addr + 2 * P, c.addr + 3 * P],
                    Some(&[0, c.frames[2], c.frames[3]]),
                )
                .map(|()| 0)
            },
        ),
        sc(
            "unmap physical pages",
            |s| {
                let (w, frames) = window(s, 4);
                s.map_physical_pages(w, 3, Some(&frames[..3])).unwrap();
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| s.map_physical_pages(c.addr, 3, None).map(|()| 0),
        ),
        sc(
            "FreeUserPhysicalPages",
            |s| {
                let (w, frames) = window(s, 4);
                s.map_physical_pages(w, 2, Some(&frames[..2])).unwrap();
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| {
                let (n, r) = s.free_physical_pages(&c.frames[..1]);
                r.map(|()| n)
            },
        ),
        sc(
            "VirtualProtect AWE window",
            |s| {
                // Frames at pages 0 and 2: one protect call per mapped page.
                let (w, frames) = window(s, 4);
                s.map_physical_pages_scatter(&[w, w + 2 * P], Some(&frames[..2]))
                    .unwrap();
                for i in [0, 2] {
                    // SAFETY: mapped read-write just above.
                    unsafe { ((w + i * P) as *mut u64).write_volatile(0xC0 + i as u64) };
                }
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| {
                s.virtual_protect(c.addr, 4 * P, PAGE_READONLY)
                    .map(|v| v as usize)
            },
        ),
        sc(
            "release AWE window",
            |s| {
                let (w, frames) = window(s, 4);
                s.map_physical_pages(w, 2, Some(&frames[..2])).unwrap();
                Ctx {
                    frames,
                    ..Ctx::at(w, 4 * P)
                }
            },
            |s, c| s.virtual_free(c.addr, 0, MEM_RELEASE).map(|()| 0),
        ),
        // --- large pages ---
        Scenario {
            name: "reserve large pages",
            setup: |_| Ctx {
                reservations: true,
                ..Ctx::at(0, 0)
            },
            op: |s, _| {
                let lp = s.layout().large_page_size;
                s.virtual_alloc(
                    0,
                    2 * lp,
                    MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES,
                    PAGE_READWRITE,
                    F,
                )
            },
            code: large_code,
        },
        Scenario {
            name: "reserve large pages, Alignment 4 large pages",
            setup: |_| Ctx {
                reservations: true,
                ..Ctx::at(0, 0)
            },
            op: |s, _| {
                let lp = s.layout().large_page_size;
                s.virtual_alloc2(
                    0,
                    lp,
                    MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES,
                    PAGE_READWRITE,
                    &[virtmem::rules::ExtendedParameter::AddressRequirements {
                        lowest: 0,
                        highest: 0,
                        alignment: 4 * lp,
                    }],
                    F,
                )
            },
            code: large_code,
        },
        sc(
            "AllocateUserPhysicalPages with a frame left dirty",
            |s| {
                let (w, frames) = window(s, 2);
                s.map_physical_pages(w, 1, Some(&frames[..1])).unwrap();
                // SAFETY: mapped read-write just above.
                unsafe { (w as *mut u64).write_volatile(0xD1D1) };
                s.os().arm(Call::PhysDiscard, 0, libc::EIO);
                let (_, r) = s.free_physical_pages(&frames[..1]);
                r.unwrap();
                s.os().disarm();
                Ctx {
                    frames: frames[1..].to_vec(),
                    ..Ctx::at(w, 2 * P)
                }
            },
            |s, _| s.allocate_physical_pages(1).map(|v| v[0]),
        ),
        // --- memory virtmem did not allocate ---
        Scenario {
            name: "VirtualProtect foreign",
            setup: |_| {
                // SAFETY: a fresh mapping of the test's own.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        4 * P,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                } as usize;
                // SAFETY: as above.
                unsafe { (p as *mut u64).write_volatile(77) };
                Ctx {
                    foreign: Some((p, 4 * P)),
                    ..Ctx::at(p, 4 * P)
                }
            },
            op: |s, c| {
                s.virtual_protect(c.addr, 2 * P, PAGE_READONLY)
                    .map(|v| v as usize)
            },
            code: foreign_code,
        },
        sc(
            "VirtualLock foreign + ours",
            |s| {
                let b = mixed(s, 0);
                Ctx::at(b, 4 * G)
            },
            |s, c| s.virtual_lock(c.addr, 2 * P).map(|()| 0),
        ),
    ]
}

fn cleanup(s: &S, c: &Ctx) {
    let (_, r) = s.free_physical_pages(&c.frames);
    let _ = r;
    for (b, _, _) in s.allocations() {
        s.virtual_free(b, 0, MEM_RELEASE).expect("cleanup");
    }
    if let Some((p, l)) = c.foreign {
        // SAFETY: the test's own mapping.
        unsafe { libc::munmap(p as *mut libc::c_void, l) };
    }
}

/// Outcomes other than "failed with the expected code, nothing changed" that are by design.
/// (scenario, call) → why.
const ALLOWED: &[(&str, Call, &str)] = &[
    (
        "decommit watched",
        Call::WatchAdopt,
        "decommit succeeds; the fresh (reserved) pages are not re-registered; they are never \
         reported while reserved, and a later commit cleans them (engine/free.rs)",
    ),
    (
        "GetWriteWatch",
        Call::WatchScan,
        "a failed PAGEMAP_SCAN is taken as a registration lost by fork: the range is \
         re-adopted and scanned again, and the call succeeds",
    ),
    ("GetWriteWatch reset", Call::WatchScan, "as above"),
    (
        "ResetWriteWatch",
        Call::WatchClean,
        "a failed clean is retried after re-adopting the range (succeeds)",
    ),
    (
        "reset undo watched",
        Call::WatchClean,
        "re-cleaning pages MEM_RESET_UNDO touched is best effort: undo succeeds, those pages \
         read as written (over-reporting)",
    ),
    (
        "commit watched",
        Call::WatchClean,
        "cleaning the newly committed pages of a kernel-watched range is best effort: the \
         commit succeeds (its pages are fresh and zero either way); GetWriteWatch may report \
         them as written until the next reset (over-reporting, never a missed write; \
         engine/alloc.rs)",
    ),
    (
        "FreeUserPhysicalPages",
        Call::PhysDiscard,
        "the frame is freed anyway; only its memory is not given back at once",
    ),
    (
        "AllocateUserPhysicalPages with a frame left dirty",
        Call::PhysDiscard,
        "the dirty frame's discard fails again: it stays out of the free pool and a fresh \
         frame is handed out (the call succeeds; issue 12 item 3)",
    ),
    (
        "reset",
        Call::LazyFree,
        "pages freed before the failing call stay recorded as reset (documented partial \
         effect: MEM_RESET_UNDO must check them)",
    ),
];

/// The sweep compares the process's reservations before and after each run, so nothing else
/// may map memory meanwhile: a test thread that libtest spawns mid-sweep brings a stack guard
/// page that looks exactly like a leaked reservation. This binary therefore has one test,
/// which runs its three parts in sequence.
#[test]
fn fault_sweep_runs_alone() {
    every_call_of_every_operation_fails_cleanly();
    a_frame_that_could_not_be_discarded_is_never_handed_out_dirty();
    large_pages_honour_an_alignment_above_the_large_page_size();
}

fn every_call_of_every_operation_fails_cleanly() {
    let t0 = std::time::Instant::now();
    let mut runs = 0;
    let mut summary: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut allowed_seen: HashMap<(&str, Call), usize> = HashMap::new();
    for sc in scenarios() {
        // Dry run: which calls, how many of each.
        let s = new_space();
        let ctx = (sc.setup)(&s);
        let _ = snapshot(&s, &ctx.ranges);
        s.os().reset_counts();
        (sc.op)(&s, &ctx).unwrap_or_else(|e| panic!("{}: dry run failed: {e}", sc.name));
        let counts = s.os().counts();
        cleanup(&s, &ctx);
        summary.push(format!("{}: {counts:?}", sc.name));
        for (&call, &n) in &counts {
            for after in 0..n {
                for (errno, ename) in ERRNOS {
                    runs += 1;
                    let what = format!("{} with {call:?} #{after} failing with {ename}", sc.name);
                    let s = new_space();
                    let ctx = (sc.setup)(&s);
                    let before = snapshot(&s, &ctx.ranges);
                    s.os().arm(call, after, errno);
                    let r = (sc.op)(&s, &ctx);
                    let fired = s.os().disarm();
                    let injected = *s.os().injected.lock().unwrap();
                    let after_snap = snapshot(&s, &ctx.ranges);
                    let changes = diff(&before, &after_snap, ctx.reservations);
                    let allowed = ALLOWED.iter().any(|a| a.0 == sc.name && a.1 == call);
                    let mut bad = Vec::new();
                    match (&r, injected) {
                        (_, None) if !fired => bad.push("the call was not made".to_string()),
                        (Ok(_), Some(_)) if !allowed => bad.push("succeeded".into()),
                        (Err(e), Some(inj)) => {
                            let want = (sc.code)(inj.kind);
                            if e.win32_code() != want {
                                bad.push(format!(
                                    "error {} ({e}), expected {want}",
                                    e.win32_code()
                                ));
                            }
                        }
                        _ => {}
                    }
                    if !changes.is_empty() && !allowed {
                        bad.push(format!("changed: {}", changes.join("; ")));
                    }
                    if allowed && (r.is_ok() || !changes.is_empty()) {
                        let n = allowed_seen.entry((sc.name, call)).or_default();
                        if *n == 0 {
                            let mut c = changes.join("; ");
                            c.truncate(240);
                            eprintln!(
                                "  by design: {what}: {} {c}",
                                if r.is_ok() { "succeeded;" } else { "failed;" },
                            );
                        }
                        *n += 1;
                    }
                    if bad.is_empty() {
                        // Still usable: the same operation now succeeds.
                        if let Err(e) = (sc.op)(&s, &ctx) {
                            if !allowed && r.is_err() {
                                bad.push(format!("retry after the failure failed: {e}"));
                            }
                        }
                    }
                    cleanup(&s, &ctx);
                    if !bad.is_empty() {
                        problems.push(format!("{what}: {}", bad.join(", ")));
                    }
                }
            }
        }
    }
    eprintln!(
        "fault sweep: {runs} injected failures over {} operations in {:.1} s\n  {}",
        summary.len(),
        t0.elapsed().as_secs_f64(),
        summary.join("\n  ")
    );
    for ((name, call), n) in &allowed_seen {
        eprintln!("  by design: {name} / {call:?} ({n} runs)");
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Reads `len` bytes at `addr` (mapped readable) and says whether all are zero.
fn all_zero(addr: usize, len: usize) -> bool {
    // SAFETY: the caller maps `[addr, addr+len)` readable.
    unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
        .iter()
        .all(|&b| b == 0)
}

/// Issue 12 item 3: a frame whose `phys_discard` failed still holds its old data. It must
/// never be handed out again as a fresh, zero-filled frame: it stays out of the free pool
/// until a later discard works (then it is reused, reading zero), else a fresh frame is
/// given.
fn a_frame_that_could_not_be_discarded_is_never_handed_out_dirty() {
    for discard_works_later in [true, false] {
        let what = format!("discard failed, later discard works: {discard_works_later}");
        let s = new_space();
        let (w, frames) = window(&s, 2);
        s.map_physical_pages(w, 1, Some(&frames[..1])).unwrap();
        // SAFETY: frame 0 is mapped read-write at `w`.
        unsafe { std::ptr::write_bytes(w as *mut u8, 0x5A, P) };
        s.os().arm(Call::PhysDiscard, 0, libc::EINVAL);
        let (n, r) = s.free_physical_pages(&frames[..1]);
        assert!(s.os().disarm(), "{what}: phys_discard was not called");
        assert_eq!((n, r), (1, Ok(())), "{what}: the frame is freed anyway");
        if !discard_works_later {
            s.os().arm(Call::PhysDiscard, 0, libc::EINVAL);
        }
        let again = s.allocate_physical_pages(1).expect("allocate");
        let retried = s.os().disarm();
        if discard_works_later {
            assert_eq!(again, frames[..1], "{what}: the discarded frame is reused");
        } else {
            assert!(retried, "{what}: the dirty frame's discard was not retried");
            assert_ne!(
                again[0], frames[0],
                "{what}: the dirty frame was handed out"
            );
        }
        s.map_physical_pages(w, 1, Some(&again)).unwrap();
        assert!(
            all_zero(w, P),
            "{what}: frame {} handed out with old data",
            again[0]
        );
        let (_, r) = s.free_physical_pages(&again);
        r.unwrap();
        let (_, r) = s.free_physical_pages(&frames[1..]);
        r.unwrap();
        // Flush a frame left dirty (discards work again now).
        let f = s.allocate_physical_pages(1).unwrap();
        s.free_physical_pages(&f).1.unwrap();
        s.virtual_free(w, 0, MEM_RELEASE).unwrap();
    }
}

/// Issue 12 item 4: VirtualAlloc2 with MEM_LARGE_PAGES and MEM_ADDRESS_REQUIREMENTS.Alignment
/// above the large-page size (2 MiB) returns a base with that alignment, or fails with 8
/// leaving nothing behind — never a base aligned to 2 MiB only.
fn large_pages_honour_an_alignment_above_the_large_page_size() {
    use virtmem::rules::ExtendedParameter;
    for ignoring_backend in [false, true] {
        let what = format!("backend ignoring the alignment: {ignoring_backend}");
        let s = new_space();
        let lp = s.layout().large_page_size;
        s.os()
            .large_ignores_align
            .store(ignoring_backend, std::sync::atomic::Ordering::Relaxed);
        for align in [2 * lp, 4 * lp, 32 * lp] {
            let before = s.allocations();
            let r = s.virtual_alloc2(
                0,
                lp,
                MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES,
                PAGE_READWRITE,
                &[ExtendedParameter::AddressRequirements {
                    lowest: 0,
                    highest: 0,
                    alignment: align,
                }],
                F,
            );
            match r {
                Ok(b) => {
                    assert_eq!(b % align, 0, "{what}: base {b:#x}, alignment {align:#x}");
                    s.virtual_free(b, 0, MEM_RELEASE).unwrap();
                }
                Err(e) => {
                    assert!(ignoring_backend, "{what}: alignment {align:#x}: {e}");
                    assert_eq!(e.win32_code(), 8, "{what}: {e}");
                    assert_eq!(s.allocations(), before, "{what}: an allocation was left");
                }
            }
        }
    }
}
