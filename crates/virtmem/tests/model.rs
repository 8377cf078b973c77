//! Model-based test: random sequences of VirtualAlloc / VirtualFree / VirtualProtect / MEM_RESET
//! calls and writes run on an instance `Space` on real memory, checked after every step against
//! a simple per-page reference model written from `semantics.md` §1–5 (it does not use the
//! library's `rules` module).
//!
//! After every step the test checks:
//! (a) success / failure of the call and its Win32 error code;
//! (b) `Space::query` of every allocated page of the arena (and of every page of the
//!     allocations the system placed elsewhere) against the model — state, protection,
//!     allocation base and protection, region size — and of a sample of its free pages (the
//!     edges of every free stretch and one page in 16: a free-memory query asks the kernel);
//! (c) `/proc/self/maps`: every page of an allocation is mapped with the kernel protection its
//!     state implies, and every free page of the arena is unmapped;
//! (d) the data of committed readable pages: what was written is still there, recommitted
//!     pages read as zero, and reset pages read as before or as zero;
//! and that each allocation's `run_count` never exceeds the number of distinct runs of the
//! model.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use virtmem::engine::Space;
use virtmem::os::failing::FailingOs;
use virtmem::os::linux::LinuxOs;
use virtmem::rules::requests::AllocFlavor;
use virtmem::win32::consts::*;
use virtmem::{Layout, MemoryInfo, RegionType, State};

const P: usize = 0x1000;
const G: usize = 0x10000;
const ARENA_GRANULES: usize = 64;
const ARENA_SIZE: usize = ARENA_GRANULES * G;
const ARENA_PAGES: usize = ARENA_SIZE / P;

type TestSpace = Space<FailingOs<LinuxOs>>;

// ------------------------------------------------------------------------------------------
// The arena: 64 granules the test reserved from the kernel once and gave back, far below the
// region where the kernel places mappings that name no address, so nothing else lands there.
// ------------------------------------------------------------------------------------------

fn arena() -> usize {
    static ARENA: OnceLock<usize> = OnceLock::new();
    *ARENA.get_or_init(|| {
        assert_eq!(
            Layout::native().page_size,
            P,
            "this test assumes 4 KiB pages"
        );
        for i in 0..256usize {
            let want = 0x10_0000_0000usize + i * 0x1_0000_0000;
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
            let p = unsafe {
                libc::mmap(
                    want as *mut libc::c_void,
                    ARENA_SIZE,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            if p as usize != want {
                // SAFETY: our own fresh mapping.
                unsafe { libc::munmap(p, ARENA_SIZE) };
                continue;
            }
            // SAFETY: our own fresh mapping; from now on the addresses are free.
            assert_eq!(unsafe { libc::munmap(p, ARENA_SIZE) }, 0);
            return want;
        }
        panic!("no free arena found");
    })
}

// ------------------------------------------------------------------------------------------
// /proc/self/maps and mincore
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Vma {
    start: usize,
    end: usize,
    perms: String,
}

fn maps() -> Vec<Vma> {
    let text = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let mut out: Vec<Vma> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?.to_string();
            let (s, e) = range.split_once('-')?;
            Some(Vma {
                start: usize::from_str_radix(s, 16).ok()?,
                end: usize::from_str_radix(e, 16).ok()?,
                perms,
            })
        })
        .collect();
    out.sort_by_key(|v| v.start);
    out
}

fn vma_at(maps: &[Vma], addr: usize) -> Option<&Vma> {
    let i = maps.partition_point(|v| v.start <= addr);
    if i == 0 {
        return None;
    }
    let v = &maps[i - 1];
    (addr < v.end).then_some(v)
}

/// Residency of each page of `[addr, addr + pages*P)`.
fn resident(addr: usize, pages: usize) -> Vec<bool> {
    let mut v = vec![0u8; pages];
    // SAFETY: `v` has one byte per page; the range is mapped (pages of one allocation).
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, pages * P, v.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore failed");
    v.iter().map(|b| b & 1 != 0).collect()
}

// ------------------------------------------------------------------------------------------
// The reference model
// ------------------------------------------------------------------------------------------

/// What a committed page holds, as far as the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Data {
    /// Zero-filled.
    Zero,
    /// Holds the pattern of this value.
    Known(u64),
    /// MEM_RESET: either the pattern of this value or zero.
    Either(u64),
}

#[derive(Clone, Copy, Debug)]
struct Page {
    alloc: usize,
    committed: bool,
    /// The Win32 protection VirtualQuery reports (0 for reserved pages), modifiers included.
    protect: u32,
    data: Data,
    /// Lazily freed by MEM_RESET while resident (the library's bookkeeping keeps this flag;
    /// used only for the run-count bound).
    reset: bool,
}

#[derive(Clone, Copy, Debug)]
struct Alloc {
    base: usize,
    size: usize,
    alloc_protect: u32,
    modifiers: u32,
}

#[derive(Default)]
struct Model {
    pages: BTreeMap<usize, Page>,
    allocs: BTreeMap<usize, Alloc>,
}

/// Checks `flProtect` by §2: one base value, optional NOCACHE / WRITECOMBINE / GUARD with the
/// allowed mixes, no copy-on-write on private memory. Returns (base, modifiers).
fn parse_protect(v: u32) -> Option<(u32, u32)> {
    let base = v & 0xFF;
    let mods = v & !0xFF;
    if mods & !(PAGE_GUARD | PAGE_NOCACHE | PAGE_WRITECOMBINE) != 0 {
        return None;
    }
    let bases = [
        PAGE_NOACCESS,
        PAGE_READONLY,
        PAGE_READWRITE,
        PAGE_EXECUTE,
        PAGE_EXECUTE_READ,
        PAGE_EXECUTE_READWRITE,
    ];
    if !bases.contains(&base) {
        return None;
    }
    let guard = mods & PAGE_GUARD != 0;
    let nocache = mods & PAGE_NOCACHE != 0;
    let wc = mods & PAGE_WRITECOMBINE != 0;
    let na = base == PAGE_NOACCESS;
    if (guard && na) || (wc && (na || guard)) || (nocache && (guard || na || wc)) {
        return None;
    }
    Some((base, mods & (PAGE_NOCACHE | PAGE_WRITECOMBINE)))
}

fn kernel_perms(committed: bool, protect: u32) -> &'static str {
    if !committed {
        return "---p";
    }
    match protect & 0xFF {
        PAGE_NOACCESS => "---p",
        PAGE_READONLY => "r--p",
        PAGE_READWRITE => "rw-p",
        PAGE_EXECUTE => "--xp",
        PAGE_EXECUTE_READ => "r-xp",
        PAGE_EXECUTE_READWRITE => "rwxp",
        other => panic!("unexpected protection {other:#x}"),
    }
}

fn readable(protect: u32) -> bool {
    matches!(
        protect & 0xFF,
        PAGE_READONLY | PAGE_READWRITE | PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE
    )
}

fn writable(protect: u32) -> bool {
    matches!(protect & 0xFF, PAGE_READWRITE | PAGE_EXECUTE_READWRITE)
}

fn page_floor(a: usize) -> usize {
    a & !(P - 1)
}

fn page_ceil(a: usize) -> usize {
    (a + P - 1) & !(P - 1)
}

/// The three words of a page the test writes and checks, and their values for `v`.
const OFFSETS: [usize; 3] = [0, P / 2 + 8, P - 8];

fn pattern(v: u64, i: usize) -> u64 {
    v.rotate_left(i as u32 * 21) ^ (i as u64 + 1)
}

impl Model {
    fn alloc_of(&self, page: usize) -> Option<usize> {
        self.pages.get(&page).map(|p| p.alloc)
    }

    /// The allocation holding every page of `[start, end)`, if one does.
    fn one_alloc(&self, start: usize, end: usize) -> Option<usize> {
        let a = self.alloc_of(start)?;
        let al = self.allocs[&a];
        (end <= al.base + al.size).then_some(a)
    }

    fn insert_alloc(&mut self, base: usize, size: usize, commit: bool, base_prot: u32, prot: u32) {
        let modifiers = prot & (PAGE_NOCACHE | PAGE_WRITECOMBINE);
        self.allocs.insert(
            base,
            Alloc {
                base,
                size,
                alloc_protect: prot,
                modifiers,
            },
        );
        for pg in (base..base + size).step_by(P) {
            let page = Page {
                alloc: base,
                committed: commit,
                protect: if commit { base_prot | modifiers } else { 0 },
                data: Data::Zero,
                reset: false,
            };
            assert!(self.pages.insert(pg, page).is_none());
        }
    }

    /// Maximal runs of (state, protection, reset flag) of an allocation.
    fn runs(&self, base: usize) -> usize {
        let a = self.allocs[&base];
        let mut n = 0;
        let mut last = None;
        for pg in (a.base..a.base + a.size).step_by(P) {
            let p = self.pages[&pg];
            let key = (p.committed, p.protect, p.reset);
            if last != Some(key) {
                n += 1;
                last = Some(key);
            }
        }
        n
    }

    /// What VirtualQuery must say about `page` if it is allocated.
    fn expect_query(&self, page: usize) -> Option<MemoryInfo> {
        let p = self.pages.get(&page)?;
        let a = self.allocs[&p.alloc];
        let mut end = page;
        while end < a.base + a.size {
            let q = self.pages[&end];
            if q.committed != p.committed || q.protect != p.protect {
                break;
            }
            end += P;
        }
        Some(MemoryInfo {
            base_address: page,
            allocation_base: a.base,
            allocation_protect: a.alloc_protect,
            region_size: end - page,
            state: if p.committed {
                State::Commit
            } else {
                State::Reserve
            },
            protect: p.protect,
            kind: RegionType::Private,
            managed: true,
        })
    }
}

// ------------------------------------------------------------------------------------------
// Operations
// ------------------------------------------------------------------------------------------

/// An address, resolved against the state at the time the operation runs.
#[derive(Clone, Debug)]
struct Target {
    /// Inside an existing allocation (if there is one) rather than anywhere in the arena.
    in_alloc: bool,
    /// At a committed page (if there is one): the start of most useful protect ranges.
    committed: bool,
    pick: u32,
    page: u32,
    offset: u16,
}

#[derive(Clone, Debug)]
struct Size {
    pages: u32,
    extra: u16,
}

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        at: Target,
        size: Size,
        commit: bool,
        prot: u32,
    },
    ReserveNull {
        size: Size,
        /// 0 = MEM_RESERVE, 1 = MEM_RESERVE|MEM_COMMIT, 2 = MEM_COMMIT alone.
        how: u8,
        prot: u32,
    },
    Commit {
        at: Target,
        size: Size,
        prot: u32,
    },
    Decommit {
        at: Target,
        size: Size,
    },
    Protect {
        at: Target,
        size: Size,
        prot: u32,
    },
    Reset {
        at: Target,
        size: Size,
        prot: u32,
    },
    Release {
        at: Target,
    },
    Write {
        at: Target,
        value: u64,
    },
}

fn target(p_alloc: f64, p_committed: f64) -> impl Strategy<Value = Target> {
    (
        prop::bool::weighted(p_alloc),
        prop::bool::weighted(p_committed),
        any::<u32>(),
        any::<u32>(),
        prop_oneof![3 => Just(0u16), 1 => 1u16..P as u16],
    )
        .prop_map(|(in_alloc, committed, pick, page, offset)| Target {
            in_alloc,
            committed,
            pick,
            page,
            offset,
        })
}

/// Mostly an allocation's base (for MEM_RELEASE and MEM_DECOMMIT with size 0).
fn base_target() -> impl Strategy<Value = Target> {
    (
        prop::bool::weighted(0.9),
        any::<u32>(),
        prop_oneof![4 => Just(0u32), 1 => any::<u32>()],
        prop_oneof![4 => Just(0u16), 1 => 1u16..P as u16],
    )
        .prop_map(|(in_alloc, pick, page, offset)| Target {
            in_alloc,
            committed: false,
            pick,
            page,
            offset,
        })
}

/// Granule-aligned arena addresses mostly (new reservations), sometimes anywhere.
fn reserve_target() -> impl Strategy<Value = Target> {
    (
        prop::bool::weighted(0.1),
        any::<u32>(),
        prop_oneof![
            4 => (0u32..ARENA_GRANULES as u32).prop_map(|g| g * (G / P) as u32),
            1 => any::<u32>(),
        ],
        prop_oneof![4 => Just(0u16), 1 => 1u16..P as u16],
    )
        .prop_map(|(in_alloc, pick, page, offset)| Target {
            in_alloc,
            committed: false,
            pick,
            page,
            offset,
        })
}

fn size(max_pages: u32) -> impl Strategy<Value = Size> {
    prop_oneof![
        1 => Just(Size { pages: 0, extra: 0 }),
        6 => (1..=max_pages).prop_map(|pages| Size { pages, extra: 0 }),
        3 => (0..=max_pages, 1u16..P as u16).prop_map(|(pages, extra)| Size { pages, extra }),
    ]
}

fn prot() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(PAGE_NOACCESS),
        3 => Just(PAGE_READONLY),
        6 => Just(PAGE_READWRITE),
        1 => Just(PAGE_EXECUTE),
        2 => Just(PAGE_EXECUTE_READ),
        2 => Just(PAGE_EXECUTE_READWRITE),
        1 => Just(PAGE_READWRITE | PAGE_NOCACHE),
        1 => Just(PAGE_READONLY | PAGE_WRITECOMBINE),
        1 => prop_oneof![
            Just(0),
            Just(PAGE_WRITECOPY),
            Just(PAGE_READONLY | PAGE_READWRITE),
            Just(PAGE_NOACCESS | PAGE_NOCACHE),
            Just(PAGE_READWRITE | PAGE_NOCACHE | PAGE_WRITECOMBINE),
        ],
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (reserve_target(), size(72), any::<bool>(), prot())
            .prop_map(|(at, size, commit, prot)| Op::Reserve { at, size, commit, prot }),
        1 => (size(40), 0u8..3, prot()).prop_map(|(size, how, prot)| Op::ReserveNull { size, how, prot }),
        6 => (target(0.9, 0.2), size(16), prot()).prop_map(|(at, size, prot)| Op::Commit { at, size, prot }),
        3 => (target(0.9, 0.5), size(16)).prop_map(|(at, size)| Op::Decommit { at, size }),
        1 => base_target().prop_map(|at| Op::Decommit { at, size: Size { pages: 0, extra: 0 } }),
        6 => (target(0.9, 0.8), size(8), prot()).prop_map(|(at, size, prot)| Op::Protect { at, size, prot }),
        2 => (target(0.9, 0.6), size(16), prot()).prop_map(|(at, size, prot)| Op::Reset { at, size, prot }),
        1 => base_target().prop_map(|at| Op::Release { at }),
        6 => (target(0.95, 0.9), any::<u64>()).prop_map(|(at, value)| Op::Write { at, value }),
    ]
}

// ------------------------------------------------------------------------------------------
// The harness
// ------------------------------------------------------------------------------------------

struct Harness {
    /// Only one harness uses the arena at a time.
    _arena_lock: MutexGuard<'static, ()>,
    space: TestSpace,
    model: Model,
    arena: usize,
    log: Vec<String>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Give everything back even when a check failed, so the next case finds a free arena.
        for (base, _, _) in self.space.allocations() {
            let _ = self.space.virtual_free(base, 0, MEM_RELEASE);
        }
    }
}

fn code<T>(r: &virtmem::Result<T>) -> u32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.win32_code(),
    }
}

impl Harness {
    fn new() -> Harness {
        static ARENA_LOCK: Mutex<()> = Mutex::new(());
        let lock = ARENA_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let arena = arena();
        let m = maps();
        for pg in (arena..arena + ARENA_SIZE).step_by(P) {
            assert!(
                vma_at(&m, pg).is_none(),
                "arena page {pg:#x} is mapped at case start"
            );
        }
        Harness {
            _arena_lock: lock,
            space: Space::new(Layout::native(), FailingOs::new(unsafe { LinuxOs::new() })),
            model: Model::default(),
            arena,
            log: Vec::new(),
        }
    }

    fn arena_end(&self) -> usize {
        self.arena + ARENA_SIZE
    }

    fn in_arena(&self, a: usize) -> bool {
        a >= self.arena && a < self.arena_end()
    }

    fn resolve(&self, t: &Target) -> usize {
        let off = t.offset as usize % P;
        if t.committed {
            let committed: Vec<usize> = self
                .model
                .pages
                .iter()
                .filter(|(_, p)| p.committed)
                .map(|(&a, _)| a)
                .collect();
            if !committed.is_empty() {
                return committed[t.pick as usize % committed.len()] + off;
            }
        }
        if t.in_alloc && !self.model.allocs.is_empty() {
            let allocs: Vec<&Alloc> = self.model.allocs.values().collect();
            let a = allocs[t.pick as usize % allocs.len()];
            let pages = a.size / P;
            if self.in_arena(a.base) {
                // May point just past the end (into free memory or the next allocation).
                let idx = t.page as usize % (pages + 2);
                let addr = a.base + idx * P;
                if addr < self.arena_end() {
                    return addr + off;
                }
                return a.base + off;
            }
            // An allocation the system placed: stay inside it (its neighbours are not ours).
            return a.base + (t.page as usize % pages) * P + off;
        }
        self.arena + (t.page as usize % ARENA_PAGES) * P + off
    }

    /// `size` bytes from `addr`, kept inside the arena when `addr` is in it.
    fn resolve_size(&self, addr: usize, s: &Size) -> usize {
        let size = s.pages as usize * P + s.extra as usize;
        if self.in_arena(addr) {
            size.min(self.arena_end() - addr)
        } else {
            size
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Reserve {
                at,
                size,
                commit,
                prot,
            } => {
                let mut addr = self.resolve(at);
                if !self.in_arena(addr) {
                    addr = self.arena + (at.page as usize % ARENA_PAGES) * P;
                }
                let size = self.resolve_size(addr, size);
                let ty = if *commit {
                    MEM_RESERVE | MEM_COMMIT
                } else {
                    MEM_RESERVE
                };
                self.log.push(format!(
                    "VirtualAlloc({addr:#x}, {size:#x}, {ty:#x}, {prot:#x})"
                ));
                let r = self
                    .space
                    .virtual_alloc(addr, size, ty, *prot, AllocFlavor::default());
                // Model.
                let expect: Result<usize, u32> = (|| {
                    if size == 0 {
                        return Err(87);
                    }
                    let (bp, _) = parse_protect(*prot).ok_or(87u32)?;
                    let base = addr & !(G - 1);
                    let end = page_ceil(addr + size);
                    if (base..end)
                        .step_by(P)
                        .any(|pg| self.model.pages.contains_key(&pg))
                    {
                        return Err(487);
                    }
                    self.model
                        .insert_alloc(base, end - base, *commit, bp, *prot);
                    Ok(base)
                })();
                self.check_result(&r, expect);
            }
            Op::ReserveNull { size, how, prot } => {
                let size = size.pages.min(40) as usize * P + size.extra as usize;
                let ty = match how {
                    0 => MEM_RESERVE,
                    1 => MEM_RESERVE | MEM_COMMIT,
                    _ => MEM_COMMIT,
                };
                self.log
                    .push(format!("VirtualAlloc(NULL, {size:#x}, {ty:#x}, {prot:#x})"));
                let r = self
                    .space
                    .virtual_alloc(0, size, ty, *prot, AllocFlavor::default());
                let expect: Result<(), u32> = (|| {
                    if size == 0 {
                        return Err(87);
                    }
                    parse_protect(*prot).ok_or(87u32)?;
                    Ok(())
                })();
                match (&r, expect) {
                    (Ok(base), Ok(())) => {
                        let base = *base;
                        let (bp, _) = parse_protect(*prot).unwrap();
                        assert_eq!(base % G, 0, "system-chosen base {base:#x} not 64K aligned");
                        let end = base + page_ceil(size);
                        assert!(
                            (base..end)
                                .step_by(P)
                                .all(|pg| !self.model.pages.contains_key(&pg)),
                            "system-chosen range {base:#x}+{size:#x} overlaps an allocation"
                        );
                        self.model
                            .insert_alloc(base, end - base, ty & MEM_COMMIT != 0, bp, *prot);
                    }
                    (r, e) => self.check_result(r, e.map(|()| 0)),
                }
            }
            Op::Commit { at, size, prot } => {
                let addr = self.resolve(at);
                let size = self.resolve_size(addr, size);
                self.log.push(format!(
                    "VirtualAlloc({addr:#x}, {size:#x}, MEM_COMMIT, {prot:#x})"
                ));
                let r =
                    self.space
                        .virtual_alloc(addr, size, MEM_COMMIT, *prot, AllocFlavor::default());
                let expect: Result<usize, u32> = (|| {
                    if size == 0 {
                        return Err(87);
                    }
                    let (bp, _) = parse_protect(*prot).ok_or(87u32)?;
                    let (s, e) = (page_floor(addr), page_ceil(addr + size));
                    let a = self.model.one_alloc(s, e).ok_or(487u32)?;
                    let mods = self.model.allocs[&a].modifiers;
                    for pg in (s..e).step_by(P) {
                        let p = self.model.pages.get_mut(&pg).unwrap();
                        if !p.committed {
                            p.data = Data::Zero;
                            p.reset = false;
                        }
                        p.committed = true;
                        p.protect = bp | mods;
                    }
                    Ok(s)
                })();
                self.check_result(&r, expect);
            }
            Op::Decommit { at, size } => {
                let addr = self.resolve(at);
                let size = self.resolve_size(addr, size);
                self.log
                    .push(format!("VirtualFree({addr:#x}, {size:#x}, MEM_DECOMMIT)"));
                let r = self.space.virtual_free(addr, size, MEM_DECOMMIT);
                let expect: Result<usize, u32> = (|| {
                    let (s, e) = if size == 0 {
                        let b = page_floor(addr);
                        if !self.model.allocs.contains_key(&b) {
                            return Err(487);
                        }
                        (b, b + self.model.allocs[&b].size)
                    } else {
                        let (s, e) = (page_floor(addr), page_ceil(addr + size));
                        if self.model.alloc_of(s).is_none() {
                            return Err(487);
                        }
                        if self.model.one_alloc(s, e).is_none() {
                            return Err(87);
                        }
                        (s, e)
                    };
                    for pg in (s..e).step_by(P) {
                        let p = self.model.pages.get_mut(&pg).unwrap();
                        p.committed = false;
                        p.protect = 0;
                        p.data = Data::Zero;
                        p.reset = false;
                    }
                    Ok(0)
                })();
                self.check_result(&r.map(|()| 0), expect);
            }
            Op::Protect { at, size, prot } => {
                let addr = self.resolve(at);
                let size = self.resolve_size(addr, size);
                self.log
                    .push(format!("VirtualProtect({addr:#x}, {size:#x}, {prot:#x})"));
                let r = self.space.virtual_protect(addr, size, *prot);
                let expect: Result<usize, u32> = (|| {
                    let (bp, _) = parse_protect(*prot).ok_or(87u32)?;
                    if size == 0 {
                        return Err(87);
                    }
                    let (s, e) = (page_floor(addr), page_ceil(addr + size));
                    let a = self.model.one_alloc(s, e).ok_or(487u32)?;
                    if (s..e).step_by(P).any(|pg| !self.model.pages[&pg].committed) {
                        return Err(487);
                    }
                    let mods = self.model.allocs[&a].modifiers;
                    let old = self.model.pages[&s].protect;
                    for pg in (s..e).step_by(P) {
                        self.model.pages.get_mut(&pg).unwrap().protect = bp | mods;
                    }
                    Ok(old as usize)
                })();
                self.check_result(&r.map(|v| v as usize), expect);
            }
            Op::Reset { at, size, prot } => {
                let addr = self.resolve(at);
                let size = self.resolve_size(addr, size);
                self.log.push(format!(
                    "VirtualAlloc({addr:#x}, {size:#x}, MEM_RESET, {prot:#x})"
                ));
                // Which pages are resident now: the library lazily frees only those.
                let (s, e) = (page_floor(addr), page_ceil(addr + size));
                let res = match self.model.one_alloc(s, e) {
                    Some(_) if size > 0 => resident(s, (e - s) / P),
                    _ => Vec::new(),
                };
                let r =
                    self.space
                        .virtual_alloc(addr, size, MEM_RESET, *prot, AllocFlavor::default());
                let expect: Result<usize, u32> = (|| {
                    if size == 0 {
                        return Err(87);
                    }
                    parse_protect(*prot).ok_or(87u32)?;
                    self.model.one_alloc(s, e).ok_or(487u32)?;
                    for (i, pg) in (s..e).step_by(P).enumerate() {
                        let p = self.model.pages.get_mut(&pg).unwrap();
                        if p.committed {
                            p.data = match p.data {
                                Data::Zero => Data::Zero,
                                Data::Known(v) | Data::Either(v) => Data::Either(v),
                            };
                            if res[i] {
                                p.reset = true;
                            }
                        }
                    }
                    Ok(s)
                })();
                self.check_result(&r, expect);
            }
            Op::Release { at } => {
                let addr = self.resolve(at);
                self.log
                    .push(format!("VirtualFree({addr:#x}, 0, MEM_RELEASE)"));
                let r = self.space.virtual_free(addr, 0, MEM_RELEASE);
                let expect: Result<usize, u32> = (|| {
                    let b = page_floor(addr);
                    let a = self.model.allocs.remove(&b).ok_or(487u32)?;
                    for pg in (a.base..a.base + a.size).step_by(P) {
                        self.model.pages.remove(&pg);
                    }
                    Ok(0)
                })();
                self.check_result(&r.map(|()| 0), expect);
            }
            Op::Write { at, value } => {
                let pg = page_floor(self.resolve(at));
                let Some(p) = self.model.pages.get_mut(&pg) else {
                    return;
                };
                if !p.committed || !writable(p.protect) {
                    return;
                }
                self.log.push(format!("write {value:#x} to page {pg:#x}"));
                for (i, off) in OFFSETS.iter().enumerate() {
                    // SAFETY: the page is committed and writable (checked by the model, and
                    // the maps check of the previous step confirmed the kernel agrees).
                    unsafe { ((pg + off) as *mut u64).write_volatile(pattern(*value, i)) };
                }
                p.data = Data::Known(*value);
            }
        }
    }

    fn check_result(&self, got: &virtmem::Result<usize>, expect: Result<usize, u32>) {
        match (got, expect) {
            (Ok(g), Ok(e)) => assert_eq!(*g, e, "return value differs\n{}", self.log.join("\n")),
            (Err(g), Err(e)) => assert_eq!(
                g.win32_code(),
                e,
                "error code differs ({g})\n{}",
                self.log.join("\n")
            ),
            (g, e) => panic!(
                "success/failure differs: library {:?} (code {}), model {:?}\n{}",
                g,
                code(g),
                e,
                self.log.join("\n")
            ),
        }
    }

    /// Free pages whose VirtualQuery is checked: the first two and the last of every free
    /// stretch of the arena, and one in 16 besides. (A query of free memory asks the kernel,
    /// which costs tens of microseconds; every free page of every step would take minutes.)
    fn free_sample(&self, pg: usize) -> bool {
        let allocated = |a: usize| self.model.pages.contains_key(&a);
        pg == self.arena
            || pg + P == self.arena_end()
            || allocated(pg - P)
            || allocated(pg + P)
            || (pg > self.arena && allocated(pg - 2 * P))
            || (pg / P) % 16 == 7
    }

    /// Checks (b), (c), (d) and the run-count bound.
    fn check(&self) {
        let ctx = || self.log.join("\n");
        let m = maps();
        // Every page to look at: the arena, and the allocations placed elsewhere.
        let mut pages: Vec<usize> = (self.arena..self.arena_end()).step_by(P).collect();
        for a in self.model.allocs.values() {
            if !self.in_arena(a.base) {
                pages.extend((a.base..a.base + a.size).step_by(P));
            }
        }
        for &pg in &pages {
            if !self.model.pages.contains_key(&pg) && !self.free_sample(pg) {
                assert!(
                    vma_at(&m, pg).is_none(),
                    "maps: free arena page {pg:#x} is mapped\n{}",
                    ctx()
                );
                continue;
            }
            let got = self
                .space
                .query(pg + (pg / P * 37) % P)
                .unwrap_or_else(|e| panic!("query({pg:#x}) failed: {e}\n{}", ctx()));
            let vma = vma_at(&m, pg);
            match self.model.expect_query(pg) {
                Some(want) => {
                    assert_eq!(got, want, "query({pg:#x})\n{}", ctx());
                    let p = self.model.pages[&pg];
                    let perms = kernel_perms(p.committed, p.protect);
                    match vma {
                        Some(v) => assert_eq!(
                            v.perms,
                            perms,
                            "maps: page {pg:#x} (committed {}, protect {:#x}) has {v:?}\n{}",
                            p.committed,
                            p.protect,
                            ctx()
                        ),
                        None => {
                            panic!("maps: page {pg:#x} of an allocation is unmapped\n{}", ctx())
                        }
                    }
                    if p.committed && readable(p.protect) {
                        let words: Vec<u64> = OFFSETS
                            .iter()
                            // SAFETY: committed and readable, and the kernel agrees (above).
                            .map(|off| unsafe { ((pg + off) as *const u64).read_volatile() })
                            .collect();
                        let is =
                            |v: u64| words.iter().enumerate().all(|(i, w)| *w == pattern(v, i));
                        let zero = words.iter().all(|w| *w == 0);
                        let ok = match p.data {
                            Data::Zero => zero,
                            Data::Known(v) => is(v),
                            Data::Either(v) => zero || is(v),
                        };
                        assert!(
                            ok,
                            "data of page {pg:#x}: read {words:x?}, model {:?}\n{}",
                            p.data,
                            ctx()
                        );
                    }
                }
                None => {
                    assert_eq!(got.state, State::Free, "query({pg:#x}) {got:?}\n{}", ctx());
                    assert_eq!(got.base_address, pg);
                    assert_eq!(got.protect, PAGE_NOACCESS, "query({pg:#x})\n{}", ctx());
                    assert_eq!(got.allocation_base, 0, "query({pg:#x})\n{}", ctx());
                    assert_eq!(got.allocation_protect, 0, "query({pg:#x})\n{}", ctx());
                    assert_eq!(got.kind, RegionType::None, "query({pg:#x})\n{}", ctx());
                    // The free run: up to the next allocated page in the arena, else at least
                    // to the arena's end.
                    let next = self
                        .model
                        .pages
                        .range(pg..self.arena_end())
                        .next()
                        .map(|(&a, _)| a);
                    match next {
                        Some(n) => assert_eq!(
                            got.region_size,
                            n - pg,
                            "query({pg:#x}) free region size\n{}",
                            ctx()
                        ),
                        None => assert!(
                            got.region_size >= self.arena_end() - pg,
                            "query({pg:#x}) free region size {:#x}\n{}",
                            got.region_size,
                            ctx()
                        ),
                    }
                    assert!(
                        vma.is_none(),
                        "maps: free arena page {pg:#x} is mapped: {vma:?}\n{}",
                        ctx()
                    );
                }
            }
        }
        // The allocation list and the metadata size.
        let listed: Vec<(usize, usize)> = self
            .space
            .allocations()
            .iter()
            .map(|&(b, s, _)| (b, s))
            .collect();
        let model: Vec<(usize, usize)> = self
            .model
            .allocs
            .values()
            .map(|a| (a.base, a.size))
            .collect();
        assert_eq!(listed, model, "allocations()\n{}", ctx());
        for a in self.model.allocs.values() {
            let got = self.space.run_count(a.base).expect("run_count");
            let want = self.model.runs(a.base);
            assert!(
                got <= want,
                "run_count({:#x}) = {got}, model has {want} runs\n{}",
                a.base,
                ctx()
            );
        }
    }

    /// Releases everything and checks the arena is free again.
    fn finish(&mut self) {
        let bases: Vec<usize> = self.model.allocs.keys().copied().collect();
        for b in bases {
            self.run(&Op::Release {
                at: Target {
                    in_alloc: true,
                    committed: false,
                    pick: self.model.allocs.keys().position(|&k| k == b).unwrap() as u32,
                    page: 0,
                    offset: 0,
                },
            });
        }
        self.check();
        assert!(self.space.allocations().is_empty());
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 4096,
        ..Config::default()
    })]

    #[test]
    fn random_sequences_match_the_model(ops in prop::collection::vec(op(), 1..=40)) {
        let mut h = Harness::new();
        h.check();
        for op in &ops {
            h.run(op);
            h.check();
        }
        h.finish();
    }
}

/// A fixed sequence that exercises MEM_RESET between committed pages of one protection: the
/// reset pages must not split VirtualQuery's regions (§5: RegionSize follows State and Protect
/// only).
#[test]
fn reset_does_not_split_regions() {
    let h = Harness::new();
    let base = h.arena;
    let rw = PAGE_READWRITE;
    let flavor = AllocFlavor::default();
    assert_eq!(
        h.space
            .virtual_alloc(base, 8 * P, MEM_RESERVE | MEM_COMMIT, rw, flavor)
            .unwrap(),
        base
    );
    // SAFETY: committed read-write.
    unsafe { ((base + 2 * P) as *mut u8).write_volatile(1) };
    h.space
        .virtual_alloc(base + 2 * P, P, MEM_RESET, rw, flavor)
        .unwrap();
    let info = h.space.query(base).unwrap();
    assert_eq!(
        info.region_size,
        8 * P,
        "VirtualQuery(base) after MEM_RESET of page 2: RegionSize {:#x}, expected {:#x}",
        info.region_size,
        8 * P
    );
}

/// The same for VirtualLock: §5 "Write-watch and lock state do not show", so locking one page
/// of a committed read-write run must not split VirtualQuery's region.
#[test]
fn lock_does_not_split_regions() {
    let h = Harness::new();
    let base = h.arena;
    let flavor = AllocFlavor::default();
    h.space
        .virtual_alloc(
            base,
            8 * P,
            MEM_RESERVE | MEM_COMMIT,
            PAGE_READWRITE,
            flavor,
        )
        .unwrap();
    h.space.virtual_lock(base + 2 * P, P).unwrap();
    let info = h.space.query(base).unwrap();
    assert_eq!(
        info.region_size,
        8 * P,
        "VirtualQuery(base) after VirtualLock of page 2: RegionSize {:#x}, expected {:#x}",
        info.region_size,
        8 * P
    );
}
